//! One DEX in memory: the fakes wired like `App` wires the real adapters.

use std::sync::{Arc, LazyLock};

use dex::accounts::{Account, AccountService, Actor, FirstAdmin, LoginService, NewAccount};
use dex::auth::keyring::{PublicKeys, SigningKeyAdmin, SigningKeys};
use dex::auth::keys::{KeyRing, LoadedKey, StoredKey, StoredKeySet};
use dex::auth::tokens::TokenIssuer;
use dex::config::Config;
use dex::hats::clusters::{ClusterService, NewCluster};
use dex::hats::register::Registration;
use dex::hats::verify::HatVerifier;
use dex::hats::verify::VerifiedHat;
use dex::page::PageRequest;
use dex::ports::SecretStore;
use dex::roles::Role;
use dex::stats::service::StatsService;
use dex::testing::{FakeHats, MemorySecrets, MemoryStore, SeededRandom, SettableClock};
use dex::txlog::{LogEntry, LogStore};

pub const DEX_URL: &str = "https://dex.test";
pub const PASSWORD: &str = "a long enough password";

pub struct World {
    pub clock: Arc<SettableClock>,
    pub random: Arc<SeededRandom>,
    pub store: MemoryStore,
    pub secrets: MemorySecrets,
    pub tokens: TokenIssuer<MemorySecrets>,
    pub hats: FakeHats,
    pub config: Config,
    pub verifier: HatVerifier,
}

pub fn config(cache_secs: u64) -> Config {
    let cache = cache_secs.to_string();
    Config::from_lookup(|name| match name {
        "DEX_PUBLIC_URL" => Some(DEX_URL.to_owned()),
        "DEX_HAT_KEY_CACHE_SECS" => Some(cache.clone()),
        _ => None,
    })
    .expect("test configuration")
}

impl World {
    pub async fn new() -> Self {
        Self::with_cache(60).await
    }

    /// A world whose HAT key cache keeps entries `cache_secs`.
    pub async fn with_cache(cache_secs: u64) -> Self {
        let world = Self::fresh_with_cache(cache_secs);
        world
            .key_admin()
            .ensure(&Actor::Operator)
            .await
            .expect("signing key");
        world
    }

    /// A new deployment: no signing key, no account.
    pub fn fresh() -> Self {
        Self::fresh_with_cache(60)
    }

    fn fresh_with_cache(cache_secs: u64) -> Self {
        // Tokens are checked by jsonwebtoken against the system clock: start there.
        let clock = Arc::new(SettableClock::now_ish());
        let random = Arc::new(SeededRandom::new(42));
        let store = MemoryStore::new(clock.clone(), random.clone());
        let secrets = MemorySecrets::new();
        let config = config(cache_secs);
        Self {
            tokens: issuer(&secrets, &config, DEX_URL, &clock, &random),
            verifier: HatVerifier::new(DEX_URL, false, std::time::Duration::from_secs(cache_secs)),
            clock,
            random,
            store,
            secrets,
            hats: FakeHats::new(),
            config,
        }
    }

    pub fn key_admin(&self) -> SigningKeyAdmin<'_, MemorySecrets, MemoryStore> {
        SigningKeyAdmin::new(
            &self.secrets,
            &self.store,
            &self.config,
            &*self.clock,
            &*self.random,
        )
    }

    pub fn accounts(&self) -> AccountService<'_, MemoryStore, MemorySecrets> {
        AccountService {
            store: &self.store,
            tokens: &self.tokens,
            clock: &*self.clock,
            random: &*self.random,
        }
    }

    /// Logins with `first_admin` configured.
    pub fn logins<'a>(
        &'a self,
        first_admin: &'a FirstAdmin,
    ) -> LoginService<'a, MemoryStore, MemorySecrets> {
        LoginService {
            accounts: self.accounts(),
            secrets: &self.secrets,
            first_admin,
            limits: &self.config.login_limits,
        }
    }

    pub fn clusters(&self) -> ClusterService<'_, MemoryStore, MemorySecrets> {
        ClusterService {
            store: &self.store,
            secrets: &self.secrets,
            secrets_prefix: &self.config.secrets_prefix,
            clock: &*self.clock,
        }
    }

    pub fn registration(&self) -> Registration<'_, MemoryStore, FakeHats, MemorySecrets> {
        Registration {
            store: &self.store,
            hats: &self.hats,
            accounts: self.accounts(),
            allow_ports: false,
            clock: &*self.clock,
        }
    }

    pub fn stats(&self) -> StatsService<'_, MemoryStore> {
        StatsService {
            store: &self.store,
            clock: &*self.clock,
        }
    }

    /// An account created by the operator.
    pub async fn account(&self, username: &str, roles: &[&str]) -> Account {
        self.accounts()
            .create(
                &Actor::Operator,
                NewAccount {
                    username: username.to_owned(),
                    password: PASSWORD.to_owned(),
                    roles: roles.iter().map(|r| r.to_string()).collect(),
                },
            )
            .await
            .expect("create account")
    }

    pub async fn token(&self, username: &str) -> String {
        self.accounts()
            .login(username, PASSWORD)
            .await
            .expect("login")
            .0
    }

    pub async fn authorize(&self, token: &str, role: &Role) -> dex::DexResult<Account> {
        self.accounts().authorize(Some(token), role).await
    }

    /// A certified cluster `domain` with these provisioner accounts.
    pub async fn cluster(&self, domain: &str, provisioners: &[&Account]) {
        self.clusters()
            .certify(
                &Actor::Operator,
                NewCluster {
                    domain: domain.to_owned(),
                    platform_username: "platform".into(),
                    platform_password: "platform password".into(),
                    provisioners: provisioners.iter().map(|a| a.account_id.clone()).collect(),
                },
            )
            .await
            .expect("certify");
    }

    pub async fn history(&self, subject: impl ToString) -> Vec<LogEntry> {
        self.store
            .subject_history(&subject.to_string(), PageRequest::first(200))
            .await
            .expect("history")
            .items
    }

    pub async fn kinds(&self, subject: impl ToString) -> Vec<String> {
        self.history(subject)
            .await
            .into_iter()
            .map(|e| e.kind)
            .collect()
    }
}

/// A token issuer over `secrets` as `App` wires one, for `issuer_url`.
pub fn issuer<K: SecretStore + Clone>(
    secrets: &K,
    config: &Config,
    issuer_url: &str,
    clock: &Arc<SettableClock>,
    random: &Arc<SeededRandom>,
) -> TokenIssuer<K> {
    TokenIssuer::new(
        PublicKeys::new(secrets.clone(), config.public_keys_secret()),
        SigningKeys::new(
            secrets.clone(),
            config.signing_key_secret(),
            config.public_keys_secret(),
            clock.clone(),
            random.clone(),
        ),
        issuer_url,
        config.token_lifetime,
    )
}

/// RSA-2048 key pairs for fake HATs, generated once per test binary.
static HAT_KEYS: LazyLock<Vec<LoadedKey>> = LazyLock::new(|| {
    let set = StoredKeySet {
        keys: (0..3)
            .map(|i| StoredKey::generate(format!("hat-{i}"), 0).expect("RSA key"))
            .collect(),
    };
    KeyRing::load(&set).expect("key ring").keys
});

pub fn hat_key(i: usize) -> &'static LoadedKey {
    &HAT_KEYS[i]
}

impl World {
    /// A HAT of the certified `hubat.net` as the verifier hands it to a handler, registered
    /// with `hat_key(0)`: for the rules that start after verification.
    pub fn verified_hat(&self, address: &str) -> VerifiedHat {
        VerifiedHat {
            address: address.to_owned(),
            cluster: "hubat.net".to_owned(),
            public_key_pem: hat_key(0).public_pem.clone(),
            cluster_secret: dex::config::cluster_secret_name(
                &self.config.secrets_prefix,
                "hubat.net",
            ),
        }
    }
}

/// A verified HAT of `hubat.net` for rules that never call it back (stats, notices, the
/// log): no registration behind it.
pub fn verified_hat(address: &str) -> VerifiedHat {
    VerifiedHat {
        address: address.to_owned(),
        cluster: "hubat.net".to_owned(),
        public_key_pem: String::new(),
        cluster_secret: String::new(),
    }
}

/// Asserts the error's HTTP status, showing the error otherwise.
#[track_caller]
pub fn status<T: std::fmt::Debug>(result: dex::DexResult<T>, want: u16) -> dex::DexError {
    match result {
        Err(e) if e.status() == want => e,
        other => panic!("wanted a {want}, got {other:?}"),
    }
}

/// Secrets that give way to other tasks after every read and before every write, so that
/// concurrent callers on one thread really interleave (every container reads the secret
/// empty before any of them writes it).
#[derive(Clone, Default)]
pub struct YieldingSecrets(pub MemorySecrets);

impl SecretStore for YieldingSecrets {
    async fn get_json<T: serde::de::DeserializeOwned + Send>(
        &self,
        name: &str,
    ) -> dex::DexResult<Option<T>> {
        let value = self.0.get_json(name).await;
        tokio::task::yield_now().await;
        value
    }

    async fn put_json<T: serde::Serialize + Sync>(
        &self,
        name: &str,
        value: &T,
    ) -> dex::DexResult<()> {
        tokio::task::yield_now().await;
        self.0.put_json(name, value).await
    }

    async fn put_version<T: serde::Serialize + Sync>(
        &self,
        name: &str,
        version: &str,
        value: &T,
    ) -> dex::DexResult<bool> {
        tokio::task::yield_now().await;
        self.0.put_version(name, version, value).await
    }
}
