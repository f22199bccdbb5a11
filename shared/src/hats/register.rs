//! registerHat (decisions §4): validate the address, find its certified cluster, fetch and
//! check its key, then register it, confirm it, or (for the cluster's provisioner) re-key it.

use serde::Deserialize;

use super::address::HatAddress;
use super::key::HatKey;
use super::{HatHttp, HatStore, RegisteredHat};
use crate::accounts::{AccountService, AccountStore, Actor};
use crate::error::{DexError, DexResult};
use crate::ports::{Clock, SecretStore};
use crate::roles::Role;
use crate::txlog::{Kind, LogEvent};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterHat {
    pub hat_address: String,
    #[serde(default)]
    pub application_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Registered,
    AlreadyRegistered,
    KeyReplaced,
}

impl Outcome {
    pub fn message(self) -> &'static str {
        match self {
            Outcome::Registered => "HAT registered",
            Outcome::AlreadyRegistered => "HAT already registered with this key",
            Outcome::KeyReplaced => "HAT key replaced",
        }
    }
}

pub struct Registration<'a, S, H, K> {
    pub store: &'a S,
    pub hats: &'a H,
    /// Authorises the provisioner who re-keys a HAT.
    pub accounts: AccountService<'a, S, K>,
    /// Whether HAT addresses may carry a `:port` (only when HAT hosts are pinned, locally).
    pub allow_ports: bool,
    pub clock: &'a dyn Clock,
}

impl<S: HatStore + AccountStore, H: HatHttp, K: SecretStore> Registration<'_, S, H, K> {
    pub async fn register(
        &self,
        request: RegisterHat,
        token: Option<&str>,
    ) -> DexResult<(RegisteredHat, Outcome)> {
        let address =
            HatAddress::parse(request.hat_address.trim(), self.allow_ports).map_err(|e| {
                DexError::invalid("invalid hatAddress", vec![format!("hatAddress: {e}")])
            })?;
        if let Some(app) = &request.application_id
            && (app.is_empty() || app.len() > 256)
        {
            return Err(DexError::invalid(
                "invalid applicationId",
                vec!["applicationId: 1 to 256 characters".into()],
            ));
        }
        let candidates: Vec<String> = address.parent_domains().map(str::to_owned).collect();
        let (existing, clusters) = self
            .store
            .get_hat_and_clusters(&address.to_string(), &candidates)
            .await?;
        let cluster = address
            .cluster_of(
                clusters
                    .iter()
                    .filter(|c| c.certified)
                    .map(|c| c.domain.as_str()),
            )
            .map(str::to_owned)
            .ok_or_else(|| {
                DexError::bad_request(format!("{address} is not under a certified cluster domain"))
            })?;

        let pem = self.hats.fetch_public_key(&address).await?;
        let key =
            HatKey::parse(&pem).map_err(|e| DexError::BadGateway(format!("HAT {address}: {e}")))?;

        let now = self.clock.now_millis();
        let mut current = existing;
        for _ in 0..3 {
            match current {
                Some(hat) if hat.key_fingerprint == key.fingerprint => {
                    return Ok((hat, Outcome::AlreadyRegistered));
                }
                Some(hat) => return self.replace_key(hat, key, &cluster, token).await,
                None => {
                    let hat = RegisteredHat {
                        address: address.to_string(),
                        cluster: cluster.clone(),
                        public_key_pem: key.pem.clone(),
                        key_fingerprint: key.fingerprint.clone(),
                        registered_at: now,
                        key_updated_at: now,
                        application_id: request.application_id.clone(),
                        version: 1,
                    };
                    let event = LogEvent::new(
                        hat.subject(),
                        Kind::HatRegistered,
                        &Actor::Anonymous,
                        serde_json::json!({
                            "cluster": cluster, "keyFingerprint": key.fingerprint, "keyBits": key.bits,
                            "applicationId": request.application_id,
                        }),
                    );
                    if self.store.insert_hat(&hat, event).await? {
                        return Ok((hat, Outcome::Registered));
                    }
                    // Registered concurrently: decide again against what is stored now.
                    current = self.store.get_hat(&address.to_string()).await?;
                }
            }
        }
        Err(DexError::Conflict(format!(
            "HAT {address} is being registered concurrently; retry"
        )))
    }

    /// A different key for a registered address: only the cluster's provisioner may replace it.
    async fn replace_key(
        &self,
        hat: RegisteredHat,
        key: HatKey,
        cluster: &str,
        token: Option<&str>,
    ) -> DexResult<(RegisteredHat, Outcome)> {
        let Some(token) = token else {
            return Err(DexError::Conflict(format!(
                "HAT {} is registered with a different key; only a provisioner of {cluster} can replace it",
                hat.address
            )));
        };
        let provisioner = self
            .accounts
            .authorize(Some(token), &Role::Provisioner(cluster.to_owned()))
            .await?;
        let mut next = hat.clone();
        next.public_key_pem = key.pem;
        next.key_fingerprint = key.fingerprint.clone();
        next.key_updated_at = self.clock.now_millis();
        next.cluster = cluster.to_owned();
        next.version = hat.version + 1;
        let event = LogEvent::new(
            hat.subject(),
            Kind::HatKeyReplaced,
            &Actor::Account(provisioner),
            serde_json::json!({ "from": hat.key_fingerprint, "to": key.fingerprint, "keyBits": key.bits }),
        );
        self.store
            .replace_hat_key(&next, hat.version, event)
            .await?;
        Ok((next, Outcome::KeyReplaced))
    }
}
