//! DEX tokens as a deployment issues them: signed with the current key, `iss` = DEX's public
//! URL, for the configured lifetime; verified against the current and previous keys.

use std::time::Duration;

use super::dex_token::{self, DexClaims};
use super::keyring::SigningKeys;
use crate::error::DexResult;
use crate::ports::SecretStore;

pub struct TokenIssuer<K> {
    keys: SigningKeys<K>,
    issuer: String,
    lifetime_secs: i64,
}

impl<K: SecretStore> TokenIssuer<K> {
    pub fn new(keys: SigningKeys<K>, issuer: impl Into<String>, lifetime: Duration) -> Self {
        Self {
            keys,
            issuer: issuer.into(),
            lifetime_secs: lifetime.as_secs() as i64,
        }
    }

    /// A token for account `sub` with `roles`, issued at `now_secs`.
    pub async fn issue(
        &self,
        sub: &str,
        roles: Vec<String>,
        now_secs: i64,
        jti: String,
    ) -> DexResult<String> {
        let claims = DexClaims {
            iss: self.issuer.clone(),
            sub: sub.to_owned(),
            iat: now_secs,
            exp: now_secs + self.lifetime_secs,
            jti,
            roles,
        };
        dex_token::sign(&*self.keys.ring().await?, &claims)
    }

    /// Signature (current or previous key), expiry and issuer.
    pub async fn verify(&self, token: &str) -> DexResult<DexClaims> {
        self.keys.verify(&self.issuer, token).await
    }

    /// `/.well-known/jwks.json`: the current and previous public keys.
    pub async fn jwks(&self) -> DexResult<serde_json::Value> {
        Ok(self.keys.ring().await?.jwks())
    }

    /// `/publickey`: the current public key as SPKI PEM.
    pub async fn public_pem(&self) -> DexResult<String> {
        Ok(self.keys.ring().await?.current().public_pem.clone())
    }

    pub fn keys(&self) -> &SigningKeys<K> {
        &self.keys
    }
}
