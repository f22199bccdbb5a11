//! `App`: the one place that wires DEX together, built once per container at init. It owns
//! the configuration and the adapters, and hands out services that own (borrow) what they
//! need; handlers call only those services. Generic over its adapters, with the AWS ones as
//! defaults, so the same wiring runs on other implementations of the ports.

use std::sync::{Arc, OnceLock};

mod apps;

use dex::accounts::{
    Account, AccountService, AccountStore, FirstAdmin, LoginLimitStore, LoginService,
};
use dex::auth::keyring::{PublicKeys, SigningKeyAdmin, SigningKeys};
use dex::auth::sealing::EncryptionKeys;
use dex::auth::tokens::TokenIssuer;
use dex::config::{Config, ConfigError};
use dex::error::{DexError, DexResult};
use dex::hats::calls::{HatCalls, HatSessions};
use dex::hats::clusters::ClusterService;
use dex::hats::register::Registration;
use dex::hats::verify::{HatVerifier, VerifiedHat};
use dex::hats::{ClusterStore, HatHttp, HatStore};
use dex::offers::OfferStore;
use dex::offers::service::OfferService;
use dex::plugs::PlugStore;
use dex::plugs::service::PlugService;
use dex::ports::{Clock, Random, SecretStore, SystemClock, SystemRandom};
use dex::roles::Role;
use dex::stats::service::StatsService;
use dex::stats::{PublicStats, SnapshotCache, SnapshotStore, StatsStore};
use dex::txlog::{LogService, LogStore};
use dex_aws::dynamo::DynamoStore;
use dex_aws::hat_http::HatClient;
use dex_aws::secrets_manager::SecretsManager;

/// Builds the outbound HAT client from the configuration, on first use.
pub type HatHttpFactory<H> = fn(&Config) -> DexResult<H>;

pub struct App<S = DynamoStore, K = SecretsManager, H = HatClient> {
    config: Config,
    store: S,
    secrets: K,
    tokens: TokenIssuer<K>,
    first_admin: FirstAdmin,
    verifier: HatVerifier,
    /// This container's copies of the public read models' snapshots.
    stats_cache: SnapshotCache,
    /// Only the functions that call HATs build the HTTP client (its TLS setup and resolver).
    hat_http: OnceLock<Result<H, String>>,
    make_hat_http: HatHttpFactory<H>,
    /// Platform credentials and HAT tokens kept between requests (dex::hats::calls).
    hat_sessions: HatSessions,
    /// The encryption key sealing the offers' passwords, loaded on first use (only the
    /// functions that seal or open one read it).
    encryption_keys: EncryptionKeys<K>,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
}

/// What a function's first request will need from outside, started at init without
/// waiting for it (`App::warm`). Each function declares its own in `lambda_main!`
/// (tests/tests/warm.rs checks them against routes.toml).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// The DynamoDB connection.
    pub table: bool,
    /// DEX's signing keys (Secrets Manager: the connection and the key set).
    pub signing_keys: bool,
    /// The HAT HTTP client (its TLS roots and resolver).
    pub hats: bool,
}

impl Needs {
    pub const NOTHING: Self = Self {
        table: false,
        signing_keys: false,
        hats: false,
    };
    pub const TABLE: Self = Self {
        table: true,
        ..Self::NOTHING
    };
    pub const SIGNING_KEYS: Self = Self {
        signing_keys: true,
        ..Self::NOTHING
    };
    pub const HATS: Self = Self {
        hats: true,
        ..Self::NOTHING
    };

    pub const fn and(self, other: Self) -> Self {
        Self {
            table: self.table || other.table,
            signing_keys: self.signing_keys || other.signing_keys,
            hats: self.hats || other.hats,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl App {
    /// Reads the configuration and creates the AWS clients (see `config_from_env` and `on_aws`).
    pub async fn init() -> Result<Self, InitError> {
        Ok(Self::on_aws(Self::config_from_env()?).await)
    }

    /// The configuration from the environment, checked (a container with a wrong one must
    /// not start); the local-stack settings in force are logged loudly.
    pub fn config_from_env() -> Result<Config, InitError> {
        let config = Config::from_env()?;
        for setting in config.local_overrides() {
            tracing::warn!(
                setting,
                "LOCAL STACK SETTING IN FORCE; never in a deployment"
            );
        }
        Ok(config)
    }

    /// Creates the AWS clients (region, credentials and `AWS_ENDPOINT_URL_*` overrides come
    /// from the standard environment) and wires the App on them. Nothing is connected yet
    /// (see `warm`), but building the first SDK client reads and parses the system's TLS
    /// roots (milliseconds of CPU), which is why `web::init_app` runs this in the background.
    pub async fn on_aws(config: Config) -> Self {
        let (dynamodb, secrets) = dex_aws::aws_clients().await;
        Self::with_clients(config, dynamodb, secrets)
    }

    /// Starts what the first request will need (`needs`) in background tasks and returns at
    /// once: the first poll of the Runtime API never waits on a network round trip, and a
    /// dependency that is down fails nothing here. The first request then awaits what is
    /// still in flight (the signing keys' load holds their lock) or tries again itself,
    /// answering 503 if it cannot be had.
    pub fn warm(&'static self, needs: Needs) {
        if needs.signing_keys {
            tokio::spawn(async move {
                // The published (public) keys: every token-checking function reads them; the
                // signer loads its private key on its first login.
                if let Err(e) = self.tokens.published().await {
                    tracing::warn!(error = %e, "warm-up: DEX's keys not loaded; the first request retries");
                }
            });
        }
        if needs.table {
            tokio::spawn(async move {
                if let Err(e) = self.store.warm_up().await {
                    tracing::warn!(error = %e, "warm-up: DynamoDB not reached; the first request retries");
                }
            });
        }
        if needs.hats {
            // CPU only (reading and parsing the system roots): off the async workers.
            tokio::task::spawn_blocking(move || {
                if let Err(e) = self.hat_http() {
                    tracing::warn!(error = %e, "warm-up: HAT client not built");
                }
            });
        }
    }

    /// The AWS wiring: DynamoDB store, Secrets Manager, the reqwest HAT client.
    pub fn with_clients(
        config: Config,
        dynamodb: aws_sdk_dynamodb::Client,
        secrets: aws_sdk_secretsmanager::Client,
    ) -> Self {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let random: Arc<dyn Random> = Arc::new(SystemRandom);
        let store = DynamoStore::new(
            dynamodb,
            config.table.clone(),
            clock.clone(),
            random.clone(),
        );
        Self::new(
            config,
            store,
            SecretsManager::new(secrets),
            HatClient::new,
            clock,
            random,
        )
    }
}

impl<S, K: SecretStore + Clone, H> App<S, K, H> {
    /// Wires DEX over any implementation of its ports.
    pub fn new(
        config: Config,
        store: S,
        secrets: K,
        make_hat_http: HatHttpFactory<H>,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Random>,
    ) -> Self {
        // Verifiers read only the public keys; the private ones are read (and on a new
        // deployment created) by the first token signed.
        let public = PublicKeys::new(secrets.clone(), config.public_keys_secret());
        let signing = SigningKeys::new(
            secrets.clone(),
            config.signing_key_secret(),
            config.public_keys_secret(),
            clock.clone(),
            random.clone(),
        );
        Self {
            tokens: TokenIssuer::new(
                public,
                signing,
                config.public_url.clone(),
                config.token_lifetime,
            ),
            first_admin: FirstAdmin {
                username: config.first_admin.clone(),
                secret_name: config.first_admin_secret(),
            },
            verifier: HatVerifier::new(
                config.public_url.clone(),
                config.hat_resolve.is_some(),
                config.hat_key_cache,
            ),
            stats_cache: SnapshotCache::new(config.stats_cache),
            encryption_keys: EncryptionKeys::new(
                secrets.clone(),
                config.encryption_key_secret(),
                clock.clone(),
                random.clone(),
            ),
            hat_http: OnceLock::new(),
            make_hat_http,
            hat_sessions: HatSessions::new(),
            config,
            store,
            secrets,
            clock,
            random,
        }
    }
}

impl<S, K, H> App<S, K, H>
where
    S: AccountStore
        + ClusterStore
        + HatStore
        + LogStore
        + StatsStore
        + SnapshotStore
        + PlugStore
        + OfferStore
        + LoginLimitStore,
    K: SecretStore,
    H: HatHttp,
{
    pub fn accounts(&self) -> AccountService<'_, S, K> {
        AccountService {
            store: &self.store,
            tokens: &self.tokens,
            clock: &*self.clock,
            random: &*self.random,
        }
    }

    /// Username/password login (with the deployment's first admin).
    pub fn logins(&self) -> LoginService<'_, S, K> {
        LoginService {
            accounts: self.accounts(),
            secrets: &self.secrets,
            first_admin: &self.first_admin,
            limits: &self.config.login_limits,
        }
    }

    pub fn clusters(&self) -> ClusterService<'_, S, K> {
        ClusterService {
            store: &self.store,
            secrets: &self.secrets,
            secrets_prefix: &self.config.secrets_prefix,
            clock: &*self.clock,
        }
    }

    /// The HAT client, built on first use (or by the warm-up).
    fn hat_http(&self) -> DexResult<&H> {
        self.hat_http
            .get_or_init(|| (self.make_hat_http)(&self.config).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| DexError::internal(format!("cannot build the HAT client: {e}")))
    }

    /// DEX calling HATs as their clusters' platform user (docs/decisions.md §6).
    pub fn hat_calls(&self) -> DexResult<HatCalls<'_, H, K>> {
        Ok(HatCalls {
            http: self.hat_http()?,
            secrets: &self.secrets,
            sessions: &self.hat_sessions,
            clock: &*self.clock,
            timeout: self.config.hat_timeout,
            budget: self.config.hat_budget,
        })
    }

    /// Data plugs: registration, approval, the listing, connect (with `hat_calls`).
    pub fn plugs(&self) -> PlugService<'_, S> {
        PlugService {
            store: &self.store,
            clock: &*self.clock,
            random: &*self.random,
            allow_ports: self.config.hat_resolve.is_some(),
        }
    }

    /// Offers: registration, the list, statuses, claims (with `hat_calls`), the buyer's
    /// claims.
    pub fn offers(&self) -> OfferService<'_, S, K> {
        OfferService {
            store: &self.store,
            keys: &self.encryption_keys,
            clock: &*self.clock,
            random: &*self.random,
            allow_ports: self.config.hat_resolve.is_some(),
        }
    }

    /// The sweep of expired claim reservations (with `hat_calls`).
    pub fn reservation_sweep<'s>(
        &'s self,
        calls: &'s HatCalls<'s, H, K>,
    ) -> dex::offers::sweep::SweepService<'s, S, H, K> {
        dex::offers::sweep::SweepService {
            store: &self.store,
            calls,
            clock: &*self.clock,
            random: &*self.random,
            allow_ports: self.config.hat_resolve.is_some(),
        }
    }

    /// HAT registration; builds the HAT client on first use.
    pub fn registration(&self) -> DexResult<Registration<'_, S, H, K>> {
        let hats = self.hat_http()?;
        Ok(Registration {
            store: &self.store,
            hats,
            accounts: self.accounts(),
            allow_ports: self.config.hat_resolve.is_some(),
            clock: &*self.clock,
        })
    }

    pub fn stats(&self) -> StatsService<'_, S> {
        StatsService {
            store: &self.store,
            clock: &*self.clock,
        }
    }

    /// The public read models (`GET /stats`, `/stats/available-data`), through snapshots.
    pub fn public_stats(&self) -> PublicStats<'_, S> {
        PublicStats {
            stats: self.stats(),
            cache: &self.stats_cache,
        }
    }

    pub fn log(&self) -> LogService<'_, S> {
        LogService { store: &self.store }
    }

    /// DEX's own tokens: issuing, verifying, and the published keys.
    pub fn tokens(&self) -> &TokenIssuer<K> {
        &self.tokens
    }

    /// The operator's signing-key management (dexctl).
    pub fn signing_key_admin(&self) -> SigningKeyAdmin<'_, K, S> {
        SigningKeyAdmin::new(
            &self.secrets,
            &self.store,
            &self.config,
            &*self.clock,
            &*self.random,
        )
    }

    /// Verifies a HAT-signed token (docs/decisions.md §5): the HAT every HAT endpoint acts for.
    pub async fn verify_hat(&self, token: Option<&str>) -> DexResult<VerifiedHat> {
        let now = self.clock.now().timestamp();
        self.verifier.verify(&self.store, now, token).await
    }

    /// `POST /stats/report`: verifies the HAT and counts its report, both tried again while
    /// DynamoDB is unavailable, within the report's budget (`dex::retry::REPORT_RETRY`,
    /// docs/decisions.md §7): a HAT drops its batch after any answer.
    pub async fn report_stats(
        &self,
        token: Option<&str>,
        body: &[u8],
    ) -> DexResult<dex::stats::service::ReportResponse> {
        dex::retry::while_unavailable(dex::retry::REPORT_RETRY, || async {
            let hat = self.verify_hat(token).await?;
            self.stats().report(&hat, body).await
        })
        .await
    }

    /// Verifies the caller's DEX token and requires `role` (the shared authorisation step).
    pub async fn authorize(&self, token: Option<&str>, role: &Role) -> DexResult<Account> {
        self.accounts().authorize(token, role).await
    }

    pub fn config(&self) -> &Config {
        &self.config
    }
}

/// Notices and update-application (docs/decisions.md §13), in a block of their own.
impl<S, K, H> App<S, K, H>
where
    S: dex::notices::NoticeStore + ClusterStore + HatStore,
{
    /// Notices: posting (admins), a HAT's list and marking read.
    pub fn notices(&self) -> dex::notices::NoticeService<'_, S> {
        dex::notices::NoticeService {
            store: &self.store,
            clock: &*self.clock,
        }
    }

    /// update-application: the legacy app pushed to a cluster's HATs (with `hat_calls`),
    /// starting pushes for `DEX_PUSH_BUDGET_SECS`.
    pub fn pushes(&self) -> dex::hats::push::PushService<'_, S> {
        dex::hats::push::PushService {
            store: &self.store,
            allow_ports: self.config.hat_resolve.is_some(),
            budget: self.config.push_budget,
        }
    }
}
