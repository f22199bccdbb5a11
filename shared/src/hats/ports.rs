//! The ports of clusters and HATs: their storage and the outbound HTTP to HATs.

use std::future::Future;

use super::address::HatAddress;
use super::model::{Cluster, RegisteredHat};
use crate::accounts::Account;
use crate::error::DexResult;
use crate::page::{Page, PageRequest};
use crate::txlog::LogEvent;

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

/// Outbound HTTP to HATs (adapter: the reqwest `HatClient`).
pub trait HatHttp: Send + Sync {
    /// `GET <scheme>://<hat>/publickey`: the body as text, or a 502/504 naming the HAT and
    /// the step (400 when its name points where DEX must not go).
    fn fetch_public_key(&self, hat: &HatAddress) -> impl Future<Output = DexResult<String>> + Send;

    /// One attempt of a call to the HAT's API, as `calls::HatCalls` builds it: no retry, no
    /// redirect followed (a 3xx is an answer), the body read up to the request's limit, the
    /// private-address guard of registration.
    fn send(
        &self,
        hat: &HatAddress,
        request: &HatRequest,
    ) -> impl Future<Output = Result<HatResponse, HatTransport>> + Send;
}

/// One HTTP request to a HAT's API, as `HatCalls` builds it.
#[derive(Debug, Clone)]
pub struct HatRequest {
    pub method: HatMethod,
    /// Path and query, starting with `/`.
    pub path: String,
    /// Extra headers (credentials, the HAT token); their values are never logged.
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<serde_json::Value>,
    /// How long this one attempt may take, connection included.
    pub timeout: std::time::Duration,
    /// The largest answer body read; a larger one is a failure of the HAT.
    pub body_limit: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HatMethod {
    Get,
    Post,
    Put,
}

impl HatMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
        }
    }
}

/// A HAT's answer, whatever its status (redirects are answers too: never followed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HatResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Why an attempt got no (complete) answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HatTransport {
    /// No answer within the attempt's timeout.
    Timeout,
    /// No connection could be made (refused, DNS failure).
    Unreachable,
    /// The connection broke before a complete answer.
    Dropped,
    /// The answer's body is larger than the request's `body_limit`.
    TooLarge,
    /// The HAT's name resolves only to addresses DEX must not call (the private-address guard).
    Forbidden,
}
