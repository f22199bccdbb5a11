//! Everything a function needs, built once per container at init: configuration, AWS clients,
//! the store, the signing keys, clock and randomness.

use std::sync::Arc;

use crate::accounts::AccountService;
use crate::config::Config;
use crate::keyring::SigningKeys;
use crate::ports::{Clock, Random, SystemClock, SystemRandom};
use crate::secrets::SecretsManager;
use crate::store::DynamoStore;

pub struct App {
    pub config: Config,
    pub store: DynamoStore,
    pub secrets: SecretsManager,
    pub keys: SigningKeys,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn Random>,
}

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

impl App {
    /// Reads the configuration and creates the AWS clients (region, credentials and
    /// `AWS_ENDPOINT_URL_*` overrides come from the standard environment).
    pub async fn init() -> Result<Self, InitError> {
        let config = Config::from_env()?;
        let (dynamodb, secrets) = aws_clients().await;
        Ok(Self::with_clients(config, dynamodb, secrets))
    }

    pub fn with_clients(config: Config, dynamodb: aws_sdk_dynamodb::Client, secrets: aws_sdk_secretsmanager::Client) -> Self {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let random: Arc<dyn Random> = Arc::new(SystemRandom);
        let secrets = SecretsManager::new(secrets);
        Self {
            store: DynamoStore::new(dynamodb, config.table.clone(), clock.clone(), random.clone()),
            keys: SigningKeys::new(secrets.clone(), config.signing_key_secret()),
            secrets,
            config,
            clock,
            random,
        }
    }

    pub fn accounts(&self) -> AccountService<'_, DynamoStore> {
        AccountService { store: &self.store, clock: &*self.clock, random: &*self.random }
    }

    /// Verifies the caller's DEX token and requires `role` (the shared authorisation step).
    pub async fn authorize(&self, token: Option<&str>, role: &crate::roles::Role) -> crate::error::DexResult<crate::accounts::Account> {
        self.accounts().authorize(&self.keys, &self.config.public_url, token, role).await
    }
}

/// The AWS clients, from the standard environment (region, credentials, and the
/// `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL_SECRETS_MANAGER` overrides used locally).
pub async fn aws_clients() -> (aws_sdk_dynamodb::Client, aws_sdk_secretsmanager::Client) {
    let aws = aws_config::load_from_env().await;
    (aws_sdk_dynamodb::Client::new(&aws), aws_sdk_secretsmanager::Client::new(&aws))
}
