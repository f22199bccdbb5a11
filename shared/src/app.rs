//! Everything a function needs, built once per container at init: configuration, AWS clients,
//! the store, the signing keys, clock and randomness.

use std::sync::Arc;

use crate::accounts::AccountService;
use crate::config::Config;
use crate::error::DexResult;
use crate::hats::client::HatClient;
use crate::hats::clusters::ClusterService;
use crate::hats::register::Registration;
use crate::hats::verify::{HatVerifier, VerifiedHat};
use crate::keyring::SigningKeys;
use crate::ports::{Clock, Random, SystemClock, SystemRandom};
use crate::secrets::SecretsManager;
use crate::store::DynamoStore;

pub struct App {
    pub config: Config,
    pub store: DynamoStore,
    pub secrets: SecretsManager,
    pub keys: SigningKeys,
    pub hat_client: HatClient,
    pub hat_verifier: HatVerifier,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn Random>,
}

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot build the HAT client: {0}")]
    HatClient(crate::error::DexError),
}

impl App {
    /// Reads the configuration and creates the AWS clients (region, credentials and
    /// `AWS_ENDPOINT_URL_*` overrides come from the standard environment).
    pub async fn init() -> Result<Self, InitError> {
        let config = Config::from_env()?;
        for setting in config.local_overrides() {
            tracing::warn!(
                setting,
                "LOCAL STACK SETTING IN FORCE; never in a deployment"
            );
        }
        let (dynamodb, secrets) = aws_clients().await;
        Self::with_clients(config, dynamodb, secrets)
    }

    pub fn with_clients(
        config: Config,
        dynamodb: aws_sdk_dynamodb::Client,
        secrets: aws_sdk_secretsmanager::Client,
    ) -> Result<Self, InitError> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let random: Arc<dyn Random> = Arc::new(SystemRandom);
        let secrets = SecretsManager::new(secrets);
        Ok(Self {
            store: DynamoStore::new(
                dynamodb,
                config.table.clone(),
                clock.clone(),
                random.clone(),
            ),
            keys: SigningKeys::new(secrets.clone(), config.signing_key_secret()),
            hat_client: HatClient::new(&config).map_err(InitError::HatClient)?,
            hat_verifier: HatVerifier::new(),
            secrets,
            config,
            clock,
            random,
        })
    }

    pub fn accounts(&self) -> AccountService<'_, DynamoStore> {
        AccountService {
            store: &self.store,
            clock: &*self.clock,
            random: &*self.random,
        }
    }

    pub fn stats(&self) -> crate::stats::service::StatsService<'_, DynamoStore> {
        crate::stats::service::StatsService {
            store: &self.store,
            clock: &*self.clock,
        }
    }

    pub fn clusters(&self) -> ClusterService<'_, DynamoStore, SecretsManager> {
        ClusterService {
            store: &self.store,
            secrets: &self.secrets,
            config: &self.config,
            clock: &*self.clock,
        }
    }

    pub fn registration(&self) -> Registration<'_, DynamoStore> {
        Registration {
            store: &self.store,
            client: &self.hat_client,
            config: &self.config,
            keys: &self.keys,
            clock: &*self.clock,
            random: &*self.random,
        }
    }

    /// Verifies a HAT-signed token (decisions §5): the HAT every HAT endpoint acts for.
    pub async fn verify_hat(&self, token: Option<&str>) -> DexResult<VerifiedHat> {
        let now = self.clock.now().timestamp();
        self.hat_verifier
            .verify(&self.store, &self.config, now, token)
            .await
    }

    /// Verifies the caller's DEX token and requires `role` (the shared authorisation step).
    pub async fn authorize(
        &self,
        token: Option<&str>,
        role: &crate::roles::Role,
    ) -> crate::error::DexResult<crate::accounts::Account> {
        self.accounts()
            .authorize(&self.keys, &self.config.public_url, token, role)
            .await
    }
}

/// The AWS clients, from the standard environment (region, credentials, and the
/// `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL_SECRETS_MANAGER` overrides used locally).
pub async fn aws_clients() -> (aws_sdk_dynamodb::Client, aws_sdk_secretsmanager::Client) {
    let aws = aws_config::load_from_env().await;
    (
        aws_sdk_dynamodb::Client::new(&aws),
        aws_sdk_secretsmanager::Client::new(&aws),
    )
}
