//! Clusters and registered HATs as DEX keeps them and shows them.

use serde::Serialize;

use crate::txlog::Subject;

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
    pub fn subject(&self) -> Subject {
        Subject::hat(&self.address)
    }
}

/// A HAT's log subject as stored (`hat:<address>`).
pub fn hat_subject(address: &str) -> String {
    Subject::hat(address).into()
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
