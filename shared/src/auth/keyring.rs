//! DEX's signing keys as a container sees them: loaded from Secrets Manager, kept for
//! `REFRESH_AFTER` (so a rotation reaches every warm function within that time: they then
//! sign with the new key and publish it), and reloaded early when a token names a key this
//! container has not seen yet.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::accounts::Actor;
use crate::auth::dex_token::{self, DexClaims, TokenRejection};
use crate::auth::keys::{KeyRing, StoredKey, StoredKeySet};
use crate::error::{DexError, DexResult};
use crate::ports::SecretStore;
use crate::ports::{Clock, Random};
use crate::txlog::{Kind, LogEvent, LogStore, Subject};

/// How long a loaded key set is used before it is read again.
const REFRESH_AFTER: Duration = Duration::from_secs(20);
/// Reloads for unknown key ids are at most this frequent, so forged `kid`s cannot turn every
/// request into a Secrets Manager call.
const RELOAD_INTERVAL: Duration = Duration::from_secs(2);

pub struct SigningKeys<K> {
    secrets: K,
    secret_name: String,
    loaded: Mutex<Option<(Arc<KeyRing>, Instant)>>,
}

impl<K: SecretStore> SigningKeys<K> {
    pub fn new(secrets: K, secret_name: String) -> Self {
        Self {
            secrets,
            secret_name,
            loaded: Mutex::new(None),
        }
    }

    pub async fn ring(&self) -> DexResult<Arc<KeyRing>> {
        let mut loaded = self.loaded.lock().await;
        if let Some((ring, at)) = loaded.as_ref()
            && at.elapsed() < REFRESH_AFTER
        {
            return Ok(ring.clone());
        }
        let ring = match (self.load().await, loaded.as_ref()) {
            (Ok(ring), _) => ring,
            // Secrets Manager hiccup on a refresh: keep serving with the keys we have.
            (Err(e), Some((previous, _))) => {
                tracing::warn!(error = %e, "signing key refresh failed; keeping the loaded keys");
                previous.clone()
            }
            (Err(e), None) => return Err(e),
        };
        *loaded = Some((ring.clone(), Instant::now()));
        Ok(ring)
    }

    async fn load(&self) -> DexResult<Arc<KeyRing>> {
        let set: StoredKeySet = self
            .secrets
            .get_json(&self.secret_name)
            .await?
            .unwrap_or_default();
        Ok(Arc::new(KeyRing::load(&set)?))
    }

    /// Verifies a DEX token; on an unknown `kid` reloads the key set once (rate limited).
    pub async fn verify(&self, issuer: &str, token: &str) -> DexResult<DexClaims> {
        let ring = self.ring().await?;
        match dex_token::verify(&ring, issuer, token) {
            Err(TokenRejection::UnknownKey) => {
                let fresh = {
                    let mut loaded = self.loaded.lock().await;
                    match loaded.as_ref() {
                        Some((_, at)) if at.elapsed() < RELOAD_INTERVAL => None,
                        _ => {
                            let ring = self.load().await?;
                            *loaded = Some((ring.clone(), Instant::now()));
                            Some(ring)
                        }
                    }
                };
                match fresh {
                    Some(ring) => Ok(dex_token::verify(&ring, issuer, token)?),
                    None => Err(TokenRejection::UnknownKey.into()),
                }
            }
            other => Ok(other?),
        }
    }
}

/// The operator's key management: the first key and rotations, each logged under
/// `dex:signing-key` (the keys themselves live in the secret, never in the log).
pub struct SigningKeyAdmin<'a, K, L> {
    pub secrets: &'a K,
    pub log: &'a L,
    pub secret_name: String,
    pub clock: &'a dyn Clock,
    pub random: &'a dyn Random,
}

impl<K: SecretStore, L: LogStore> SigningKeyAdmin<'_, K, L> {
    /// Creates the first signing key if the secret has none. Returns whether it created one.
    pub async fn ensure(&self, actor: &Actor) -> DexResult<bool> {
        let set: Option<StoredKeySet> = self.secrets.get_json(&self.secret_name).await?;
        if set.as_ref().is_some_and(|s| !s.keys.is_empty()) {
            return Ok(false);
        }
        let key = StoredKey::generate(self.random.hex(8), self.clock.now_millis())?;
        self.secrets
            .put_json(&self.secret_name, &StoredKeySet { keys: vec![key] })
            .await?;
        self.log
            .append_log(vec![LogEvent::new(
                Subject::signing_key(),
                Kind::SigningKeyCreated,
                actor,
                serde_json::json!({}),
            )])
            .await?;
        Ok(true)
    }

    /// Makes a new key current; the previous one keeps verifying for `keep` (the token
    /// lifetime). Returns the new and the previous key id.
    pub async fn rotate(
        &self,
        actor: &Actor,
        keep: Duration,
    ) -> DexResult<(String, Option<String>)> {
        let mut set: StoredKeySet = self
            .secrets
            .get_json(&self.secret_name)
            .await?
            .unwrap_or_default();
        let previous = set.keys.first().map(|k| k.kid.clone());
        let now = self.clock.now_millis();
        let key = StoredKey::generate(self.random.hex(8), now)?;
        let kid = key.kid.clone();
        set.rotate(
            key,
            now,
            i64::try_from(keep.as_millis()).map_err(DexError::internal)?,
        );
        self.secrets.put_json(&self.secret_name, &set).await?;
        self.log
            .append_log(vec![LogEvent::new(
                Subject::signing_key(),
                Kind::SigningKeyRotated,
                actor,
                serde_json::json!({ "kid": kid, "previousKid": previous }),
            )])
            .await?;
        Ok((kid, previous))
    }
}
