//! The secrets port on AWS Secrets Manager. Values are JSON documents; nothing here logs or
//! formats a value.

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::http::HttpResponse;
use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use serde::Serialize;
use serde::de::DeserializeOwned;

use dex::error::{DexError, DexResult};
use dex::ports::{Random, SecretStore, SystemRandom};

#[derive(Clone)]
pub struct SecretsManager {
    client: Client,
}

impl SecretsManager {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

/// Secrets Manager unreachable or failing is a 503; anything else (access denied, ...) an
/// internal error.
fn secrets_error<E>(err: SdkError<E, HttpResponse>) -> DexError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if let Some(down) = crate::unavailable("Secrets Manager", &err) {
        return down;
    }
    DexError::internal(format!("secrets manager: {}", DisplayErrorContext(err)))
}

impl SecretStore for SecretsManager {
    async fn get_json<T: DeserializeOwned + Send>(&self, name: &str) -> DexResult<Option<T>> {
        match self.client.get_secret_value().secret_id(name).send().await {
            Ok(out) => {
                // Never the value or the parser's excerpt of it in the error.
                let unreadable = || {
                    DexError::internal(format!(
                        "secret {name} holds a value DEX cannot read; fix or delete it by hand"
                    ))
                };
                let text = out.secret_string().ok_or_else(unreadable)?;
                serde_json::from_str(text)
                    .map(Some)
                    .map_err(|_| unreadable())
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(secrets_error(e)),
        }
    }

    async fn put_json<T: Serialize + Sync>(&self, name: &str, value: &T) -> DexResult<()> {
        let text = serde_json::to_string(value).map_err(DexError::internal)?;
        let version = SystemRandom.uuid().to_string();
        self.write(name, &version, &text).await.map(|_| ())
    }

    async fn put_version<T: Serialize + Sync>(
        &self,
        name: &str,
        version: &str,
        value: &T,
    ) -> DexResult<bool> {
        let text = serde_json::to_string(value).map_err(DexError::internal)?;
        self.write(name, version, &text).await
    }
}

impl SecretsManager {
    /// PutSecretValue, or CreateSecret when the secret does not exist (local stacks; a
    /// deployment's secrets come from the template). `Ok(false)`: `version` exists with
    /// another value (Secrets Manager accepts a same-value repeat of a version as is).
    async fn write(&self, name: &str, version: &str, text: &str) -> DexResult<bool> {
        // Two rounds: a CreateSecret that loses to a concurrent creator goes back to
        // PutSecretValue on the secret that now exists.
        for _ in 0..2 {
            let put = self
                .client
                .put_secret_value()
                .secret_id(name)
                .client_request_token(version)
                .secret_string(text)
                .send()
                .await;
            match put {
                Ok(_) => return Ok(true),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_resource_exists_exception()) =>
                {
                    return Ok(false);
                }
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_resource_not_found_exception()) => {}
                Err(e) => return Err(secrets_error(e)),
            }
            let create = self
                .client
                .create_secret()
                .name(name)
                .client_request_token(version)
                .secret_string(text)
                .send()
                .await;
            match create {
                Ok(_) => return Ok(true),
                // Created meanwhile by someone else: PutSecretValue then says which value won.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_resource_exists_exception()) => {}
                Err(e) => return Err(secrets_error(e)),
            }
        }
        Err(DexError::internal(format!(
            "secrets manager: {name} keeps appearing and disappearing"
        )))
    }
}
