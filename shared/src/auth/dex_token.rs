//! DEX-issued account tokens (docs/decisions.md §3): RS256 with a `kid`, `iss` = DEX's public URL.

use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};

use super::keys::{KeyRing, VerifyingKeys};
use crate::error::DexError;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DexClaims {
    pub iss: String,
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    pub roles: Vec<String>,
    /// The account's password version when the token was issued: a password change makes
    /// every earlier token of the account invalid. Absent (0) in tokens from before it.
    #[serde(default)]
    pub pwv: u64,
}

pub fn sign(ring: &KeyRing, claims: &DexClaims) -> Result<String, DexError> {
    let key = ring.current();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &key.encoding).map_err(DexError::internal)
}

/// Why a token was refused. `UnknownKey` lets the caller reload the key set once (a key
/// rotated after this container loaded it) before giving up.
#[derive(Debug, PartialEq)]
pub enum TokenRejection {
    UnknownKey,
    Invalid(&'static str),
}

/// Verifies signature (current or previous key), algorithm, expiry and issuer.
pub fn verify(
    ring: &impl VerifyingKeys,
    issuer: &str,
    token: &str,
) -> Result<DexClaims, TokenRejection> {
    let header = jsonwebtoken::decode_header(token)
        .map_err(|_| TokenRejection::Invalid("malformed token"))?;
    if header.alg != Algorithm::RS256 {
        return Err(TokenRejection::Invalid("unsupported token algorithm"));
    }
    let kid = header
        .kid
        .ok_or(TokenRejection::Invalid("token without key id"))?;
    let key = ring.decoding_key(&kid).ok_or(TokenRejection::UnknownKey)?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[issuer]);
    validation.set_required_spec_claims(&["exp", "iss", "sub"]);
    validation.leeway = 30;
    validation.validate_aud = false;
    jsonwebtoken::decode::<DexClaims>(token, key, &validation)
        .map(|data| data.claims)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                TokenRejection::Invalid("token expired")
            }
            jsonwebtoken::errors::ErrorKind::InvalidIssuer => {
                TokenRejection::Invalid("token issued by someone else")
            }
            _ => TokenRejection::Invalid("invalid token"),
        })
}

impl From<TokenRejection> for DexError {
    fn from(r: TokenRejection) -> Self {
        match r {
            TokenRejection::UnknownKey => {
                DexError::Unauthorized("token signed with an unknown key".into())
            }
            TokenRejection::Invalid(why) => DexError::Unauthorized(why.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::keys::{StoredKey, StoredKeySet};

    fn ring(kid: &str) -> KeyRing {
        KeyRing::load(&StoredKeySet {
            keys: vec![StoredKey::generate(kid.into(), 0).unwrap()],
        })
        .unwrap()
    }

    fn claims(exp: i64) -> DexClaims {
        DexClaims {
            iss: "https://dex.example.com".into(),
            sub: "acc-1".into(),
            iat: chrono::Utc::now().timestamp(),
            exp,
            jti: "j".into(),
            roles: vec!["admin".into()],
            pwv: 2,
        }
    }

    #[test]
    fn sign_then_verify() {
        let ring = ring("k1");
        let exp = chrono::Utc::now().timestamp() + 600;
        let token = sign(&ring, &claims(exp)).unwrap();
        assert_eq!(
            verify(&ring, "https://dex.example.com", &token).unwrap(),
            claims(exp)
        );
    }

    #[test]
    fn rejections() {
        let ring1 = ring("k1");
        let now = chrono::Utc::now().timestamp();
        let expired = sign(&ring1, &claims(now - 3600)).unwrap();
        assert_eq!(
            verify(&ring1, "https://dex.example.com", &expired),
            Err(TokenRejection::Invalid("token expired"))
        );
        let good = sign(&ring1, &claims(now + 600)).unwrap();
        assert_eq!(
            verify(&ring1, "https://other.example.com", &good),
            Err(TokenRejection::Invalid("token issued by someone else"))
        );
        // Same kid, other key material: a forgery.
        let forger = ring("k1");
        let forged = sign(&forger, &claims(now + 600)).unwrap();
        assert_eq!(
            verify(&ring1, "https://dex.example.com", &forged),
            Err(TokenRejection::Invalid("invalid token"))
        );
        let other_kid = sign(&ring("k9"), &claims(now + 600)).unwrap();
        assert_eq!(
            verify(&ring1, "https://dex.example.com", &other_kid),
            Err(TokenRejection::UnknownKey)
        );
        assert!(verify(&ring1, "https://dex.example.com", "garbage").is_err());
    }
}
