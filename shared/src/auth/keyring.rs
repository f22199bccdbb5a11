//! DEX's signing keys as a container sees them. Two secrets: the private key set, which only
//! the functions that sign tokens read, and its public halves, all that verifiers and
//! publishers (`jwks`, `publickey`, every token-verifying function) read. Each is loaded
//! from Secrets Manager, kept for `REFRESH_AFTER` (so a rotation reaches every warm function
//! within that time), and the public keys are reloaded early when a token names a key this
//! container has not seen yet.
//!
//! No key is ever in the deployment's template: the first signer to need a key creates it
//! (`load_or_create`, race-free: racing cold containers end with one key) and publishes its
//! public half before signing anything with it.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::digest::{SHA256, digest};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;

use crate::accounts::Actor;
use crate::auth::dex_token::{self, DexClaims, TokenRejection};
use crate::auth::keys::{KeyRing, PublicKeyRing, PublicKeySet, StoredKey, StoredKeySet};
use crate::error::{DexError, DexResult};
use crate::ports::{Clock, FIRST_VERSION, Random, SecretStore};
use crate::txlog::{Kind, LogEvent, LogStore, Subject};

/// How long a loaded key set is used before it is read again.
const REFRESH_AFTER: Duration = Duration::from_secs(20);
/// Reloads for unknown key ids are at most this frequent, so forged `kid`s cannot turn every
/// request into a Secrets Manager call.
const RELOAD_INTERVAL: Duration = Duration::from_secs(2);

/// A value loaded from a secret, shared by the container's requests.
struct Cached<T> {
    loaded: Mutex<Option<(Arc<T>, Instant)>>,
}

impl<T> Cached<T> {
    fn new() -> Self {
        Self {
            loaded: Mutex::new(None),
        }
    }

    /// The value, loaded again (given the previous one) when older than `REFRESH_AFTER`.
    async fn get<F, Fut>(&self, load: F) -> DexResult<Arc<T>>
    where
        F: FnOnce(Option<Arc<T>>) -> Fut,
        Fut: Future<Output = DexResult<T>>,
    {
        let mut loaded = self.loaded.lock().await;
        if let Some((value, at)) = loaded.as_ref()
            && at.elapsed() < REFRESH_AFTER
        {
            return Ok(value.clone());
        }
        let previous = loaded.as_ref().map(|(v, _)| v.clone());
        let value = match (load(previous.clone()).await, previous) {
            (Ok(value), _) => Arc::new(value),
            // Secrets Manager hiccup on a refresh: keep serving with the keys we have.
            (Err(e), Some(previous)) => {
                tracing::warn!(error = %e, "signing key refresh failed; keeping the loaded keys");
                previous
            }
            (Err(e), None) => return Err(e),
        };
        *loaded = Some((value.clone(), Instant::now()));
        Ok(value)
    }

    /// Loads again now unless the last load is younger than `RELOAD_INTERVAL`.
    async fn reload<Fut>(&self, load: Fut) -> DexResult<Option<Arc<T>>>
    where
        Fut: Future<Output = DexResult<T>>,
    {
        let mut loaded = self.loaded.lock().await;
        if let Some((_, at)) = loaded.as_ref()
            && at.elapsed() < RELOAD_INTERVAL
        {
            return Ok(None);
        }
        let value = Arc::new(load.await?);
        *loaded = Some((value.clone(), Instant::now()));
        Ok(Some(value))
    }
}

/// The published public keys: what verifies DEX tokens and what `jwks`/`publickey` serve.
pub struct PublicKeys<K> {
    secrets: K,
    secret_name: String,
    cache: Cached<PublicKeyRing>,
}

impl<K: SecretStore> PublicKeys<K> {
    pub fn new(secrets: K, secret_name: String) -> Self {
        Self {
            secrets,
            secret_name,
            cache: Cached::new(),
        }
    }

    /// The published keys; empty before the deployment's first key exists.
    pub async fn ring(&self) -> DexResult<Arc<PublicKeyRing>> {
        self.cache.get(|_| self.load()).await
    }

    async fn load(&self) -> DexResult<PublicKeyRing> {
        let set: PublicKeySet = self
            .secrets
            .get_json(&self.secret_name)
            .await?
            .unwrap_or_default();
        PublicKeyRing::load(&set)
    }

    /// Verifies a DEX token; on an unknown `kid` reloads the key set once (rate limited).
    pub async fn verify(&self, issuer: &str, token: &str) -> DexResult<DexClaims> {
        let ring = self.ring().await?;
        match dex_token::verify(&*ring, issuer, token) {
            Err(TokenRejection::UnknownKey) => match self.cache.reload(self.load()).await? {
                Some(ring) => Ok(dex_token::verify(&*ring, issuer, token)?),
                None => Err(TokenRejection::UnknownKey.into()),
            },
            other => Ok(other?),
        }
    }
}

/// The private key set, for the functions that sign tokens: loaded, created on first use,
/// and published (its public halves) before any token is signed with it.
pub struct SigningKeys<K> {
    secrets: K,
    private_name: String,
    public_name: String,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
    cache: Cached<KeyRing>,
    /// The key this container stored as the deployment's first, until it is logged.
    created: std::sync::Mutex<Option<String>>,
}

impl<K: SecretStore> SigningKeys<K> {
    pub fn new(
        secrets: K,
        private_name: String,
        public_name: String,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Random>,
    ) -> Self {
        Self {
            secrets,
            private_name,
            public_name,
            clock,
            random,
            cache: Cached::new(),
            created: std::sync::Mutex::new(None),
        }
    }

    /// The private keys (nothing reads them before the first token is signed).
    pub async fn ring(&self) -> DexResult<Arc<KeyRing>> {
        self.cache
            .get(|previous| async move {
                let (ring, created) = ensure_signing_key(
                    &self.secrets,
                    &self.private_name,
                    &*self.clock,
                    &*self.random,
                )
                .await?;
                if let Some(kid) = created {
                    *self.created.lock().expect("not poisoned") = Some(kid);
                }
                let same_keys = previous.is_some_and(|p| {
                    p.keys
                        .iter()
                        .map(|k| &k.kid)
                        .eq(ring.keys.iter().map(|k| &k.kid))
                });
                if !same_keys {
                    publish(&self.secrets, &self.public_name, &ring).await?;
                }
                Ok(ring)
            })
            .await
    }

    /// The id of the key this container created as the deployment's first, once.
    pub fn take_created(&self) -> Option<String> {
        self.created.lock().expect("not poisoned").take()
    }
}

/// The secret's value, or else `make()`'s, stored as the secret's first version: of several
/// callers racing on an empty secret exactly one stores its candidate and all return that
/// one. `usable` says whether a stored value counts (a key set with no key does not). The
/// flag is true for the caller whose candidate was stored.
pub async fn load_or_create<T, S>(
    secrets: &S,
    name: &str,
    usable: impl Fn(&T) -> bool,
    make: impl FnOnce() -> DexResult<T>,
) -> DexResult<(T, bool)>
where
    T: Serialize + DeserializeOwned + Send + Sync,
    S: SecretStore,
{
    if let Some(value) = secrets.get_json::<T>(name).await?
        && usable(&value)
    {
        return Ok((value, false));
    }
    let candidate = make()?;
    if secrets.put_version(name, FIRST_VERSION, &candidate).await? {
        return Ok((candidate, true));
    }
    // Another container stored its candidate first: use that one. Reads may lag the write
    // for a moment, so try a few times.
    for attempt in 1..=5u64 {
        if let Some(value) = secrets.get_json::<T>(name).await?
            && usable(&value)
        {
            return Ok((value, false));
        }
        tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
    }
    Err(DexError::internal(format!(
        "secret {name}: its first version exists but cannot be read"
    )))
}

/// Loads the private key set, creating the first key if there is none. Returns the ring and,
/// when this call created the key, its id.
pub async fn ensure_signing_key(
    secrets: &impl SecretStore,
    name: &str,
    clock: &dyn Clock,
    random: &dyn Random,
) -> DexResult<(KeyRing, Option<String>)> {
    let (set, created) = load_or_create(
        secrets,
        name,
        |set: &StoredKeySet| !set.keys.is_empty(),
        || {
            Ok(StoredKeySet {
                keys: vec![StoredKey::generate(random.hex(8), clock.now_millis())?],
            })
        },
    )
    .await?;
    let ring = KeyRing::load(&set)?;
    let created = created.then(|| ring.current().kid.clone());
    Ok((ring, created))
}

/// Makes sure the public-key secret lists every key of `ring`; writes it (the public halves
/// of `ring`, in order) when one is missing. A stale container never removes a newer key: it
/// only writes when the published set lacks a key it has. Returns whether it wrote.
pub async fn publish(secrets: &impl SecretStore, name: &str, ring: &KeyRing) -> DexResult<bool> {
    let published: Option<PublicKeySet> = secrets.get_json(name).await?;
    if published.is_some_and(|p| p.covers(ring)) {
        return Ok(false);
    }
    let set = ring.public_set();
    // Named by its content: signers publishing the same set at once store one version.
    let text = serde_json::to_string(&set).map_err(DexError::internal)?;
    let version = hex::encode(digest(&SHA256, text.as_bytes()));
    secrets.put_version(name, &version, &set).await?;
    Ok(true)
}

/// The operator's key management: the first key and rotations, each logged under
/// `dex:signing-key` (the keys themselves live in the secrets, never in the log).
pub struct SigningKeyAdmin<'a, K, L> {
    pub secrets: &'a K,
    pub log: &'a L,
    pub private_name: String,
    pub public_name: String,
    pub clock: &'a dyn Clock,
    pub random: &'a dyn Random,
}

impl<'a, K: SecretStore, L: LogStore> SigningKeyAdmin<'a, K, L> {
    /// The key management of a deployment: its secret names come from its config.
    pub fn new(
        secrets: &'a K,
        log: &'a L,
        config: &crate::config::Config,
        clock: &'a dyn Clock,
        random: &'a dyn Random,
    ) -> Self {
        SigningKeyAdmin {
            secrets,
            log,
            private_name: config.signing_key_secret(),
            public_name: config.public_keys_secret(),
            clock,
            random,
        }
    }

    /// Creates the first signing key if there is none (as a first login would) and publishes
    /// the public halves when they are missing (a repair). Returns whether it created a key.
    pub async fn ensure(&self, actor: &Actor) -> DexResult<bool> {
        let (ring, created) =
            ensure_signing_key(self.secrets, &self.private_name, self.clock, self.random).await?;
        publish(self.secrets, &self.public_name, &ring).await?;
        if let Some(kid) = &created {
            self.log
                .append_log(vec![signing_key_created(kid, actor)])
                .await?;
        }
        Ok(created.is_some())
    }

    /// Makes a new key current; the previous one keeps verifying for `keep` (the token
    /// lifetime). The public halves are published before the private set changes, so no
    /// token is signed with a key verifiers cannot find. Returns the new and the previous
    /// key id.
    pub async fn rotate(
        &self,
        actor: &Actor,
        keep: Duration,
    ) -> DexResult<(String, Option<String>)> {
        let mut set: StoredKeySet = self
            .secrets
            .get_json(&self.private_name)
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
        let ring = KeyRing::load(&set)?;
        self.secrets
            .put_json(&self.public_name, &ring.public_set())
            .await?;
        self.secrets.put_json(&self.private_name, &set).await?;
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

/// The log entry of the deployment's first signing key (the key id, never the key).
pub fn signing_key_created(kid: &str, actor: &Actor) -> LogEvent {
    LogEvent::new(
        Subject::signing_key(),
        Kind::SigningKeyCreated,
        actor,
        serde_json::json!({ "kid": kid }),
    )
}
