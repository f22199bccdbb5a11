//! DEX tokens as a deployment issues them: signed with the current private key, `iss` = DEX's
//! public URL, for the configured lifetime; verified against the published public keys only.

use std::sync::Arc;
use std::time::Duration;

use super::dex_token::{self, DexClaims};
use super::keyring::{PublicKeys, SigningKeys};
use super::keys::PublicKeyRing;
use crate::error::{DexError, DexResult};
use crate::ports::SecretStore;

pub struct TokenIssuer<K> {
    public: PublicKeys<K>,
    /// Read only by `issue`: a function that never signs never reads the private keys (and
    /// its IAM policy does not let it).
    signing: SigningKeys<K>,
    issuer: String,
    lifetime_secs: i64,
}

/// What a token says about its account besides who it is.
pub struct Grant {
    pub roles: Vec<String>,
    /// The account's password version (`pwv`).
    pub password_version: u64,
}

impl<K: SecretStore> TokenIssuer<K> {
    pub fn new(
        public: PublicKeys<K>,
        signing: SigningKeys<K>,
        issuer: impl Into<String>,
        lifetime: Duration,
    ) -> Self {
        Self {
            public,
            signing,
            issuer: issuer.into(),
            lifetime_secs: lifetime.as_secs() as i64,
        }
    }

    /// A token for account `sub`, issued at `now_secs`; creates the deployment's first key
    /// when there is none.
    pub async fn issue(
        &self,
        sub: &str,
        grant: Grant,
        now_secs: i64,
        jti: String,
    ) -> DexResult<String> {
        let claims = DexClaims {
            iss: self.issuer.clone(),
            sub: sub.to_owned(),
            iat: now_secs,
            exp: now_secs + self.lifetime_secs,
            jti,
            roles: grant.roles,
            pwv: grant.password_version,
        };
        dex_token::sign(&*self.signing.ring().await?, &claims)
    }

    /// Signature (against the published keys), expiry and issuer.
    pub async fn verify(&self, token: &str) -> DexResult<DexClaims> {
        self.public.verify(&self.issuer, token).await
    }

    /// The published keys (empty before the first login of a new deployment).
    pub async fn published(&self) -> DexResult<Arc<PublicKeyRing>> {
        self.public.ring().await
    }

    /// `/publickey`: the current public key as SPKI PEM.
    pub async fn public_pem(&self) -> DexResult<String> {
        let ring = self.public.ring().await?;
        let key = ring.current().ok_or_else(|| {
            DexError::NotFound(
                "DEX has no signing key yet: the first login of a new deployment makes it".into(),
            )
        })?;
        Ok(key.public_pem.clone())
    }

    /// The private keys, for the signer's tests and tools.
    pub fn signing(&self) -> &SigningKeys<K> {
        &self.signing
    }
}
