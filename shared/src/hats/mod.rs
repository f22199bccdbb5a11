//! HATs: addresses, certified clusters, registration, and verification of HAT-signed
//! requests.

pub mod address;
pub mod client;
pub mod clusters;
pub mod key;
pub mod register;
pub mod verify;

use std::future::Future;

use serde::Serialize;

use crate::accounts::Account;
use crate::error::DexResult;
use crate::store::{Page, PageRequest};
use crate::txlog::LogEvent;

/// A certified (or decertified) HAT domain. The platform credentials live in Secrets Manager
/// under `secret_name`; the table never holds them.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    pub domain: String,
    pub provisioners: Vec<String>,
    pub certified: bool,
    pub secret_name: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterView {
    pub domain: String,
    pub provisioners: Vec<String>,
    pub certified: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<&Cluster> for ClusterView {
    fn from(c: &Cluster) -> Self {
        Self {
            domain: c.domain.clone(),
            provisioners: c.provisioners.clone(),
            certified: c.certified,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// A registered HAT and its pinned key.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisteredHat {
    pub address: String,
    pub cluster: String,
    pub public_key_pem: String,
    pub key_fingerprint: String,
    pub registered_at: i64,
    pub key_updated_at: i64,
    pub application_id: Option<String>,
    pub version: u64,
}

impl RegisteredHat {
    pub fn subject(&self) -> String {
        hat_subject(&self.address)
    }
}

pub fn hat_subject(address: &str) -> String {
    format!("hat:{address}")
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HatView {
    pub hat_address: String,
    pub cluster: String,
    pub key_fingerprint: String,
    pub registered_at: i64,
    pub key_updated_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application_id: Option<String>,
}

impl From<&RegisteredHat> for HatView {
    fn from(h: &RegisteredHat) -> Self {
        Self {
            hat_address: h.address.clone(),
            cluster: h.cluster.clone(),
            key_fingerprint: h.key_fingerprint.clone(),
            registered_at: h.registered_at,
            key_updated_at: h.key_updated_at,
            application_id: h.application_id.clone(),
        }
    }
}

pub trait ClusterStore: Send + Sync {
    /// The clusters among `domains` that exist (certified or not), in one read.
    fn get_clusters(
        &self,
        domains: &[String],
    ) -> impl Future<Output = DexResult<Vec<Cluster>>> + Send;
    fn list_clusters(&self) -> impl Future<Output = DexResult<Vec<Cluster>>> + Send;
    /// Writes the cluster (new when `expected_version` is `None`) and the provisioner accounts
    /// (each at its expected version) with the events, in one transaction. `Conflict` when
    /// any of them changed meanwhile.
    fn save_cluster(
        &self,
        cluster: &Cluster,
        expected_version: Option<u64>,
        accounts: &[(Account, u64)],
        events: Vec<LogEvent>,
    ) -> impl Future<Output = DexResult<()>> + Send;
}

pub trait HatStore: Send + Sync {
    fn get_hat(
        &self,
        address: &str,
    ) -> impl Future<Output = DexResult<Option<RegisteredHat>>> + Send;
    /// The HAT and the clusters among `cluster_candidates`, in one round trip.
    fn get_hat_and_clusters(
        &self,
        address: &str,
        cluster_candidates: &[String],
    ) -> impl Future<Output = DexResult<(Option<RegisteredHat>, Vec<Cluster>)>> + Send;
    /// Stores a new registration (counted in the HATs figure); `Ok(false)` when the address
    /// was registered meanwhile.
    fn insert_hat(
        &self,
        hat: &RegisteredHat,
        event: LogEvent,
    ) -> impl Future<Output = DexResult<bool>> + Send;
    /// Replaces the pinned key if the record is still at `expected_version`.
    fn replace_hat_key(
        &self,
        hat: &RegisteredHat,
        expected_version: u64,
        event: LogEvent,
    ) -> impl Future<Output = DexResult<()>> + Send;
    fn list_hats(
        &self,
        cluster: Option<&str>,
        page: PageRequest,
    ) -> impl Future<Output = DexResult<Page<RegisteredHat>>> + Send;
}
