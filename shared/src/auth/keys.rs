//! DEX's own signing keys (docs/decisions.md §3). The key set lives in one Secrets Manager secret as
//! JSON; the first key signs, the others (previous keys) still verify until every token they
//! signed has expired.

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{DecodingKey, EncodingKey};
use serde::{Deserialize, Serialize};

use crate::error::DexError;

/// The JSON stored in the signing-key secret.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct StoredKeySet {
    pub keys: Vec<StoredKey>,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredKey {
    pub kid: String,
    /// PKCS#8 PEM of the RSA private key.
    pub private_key_pem: String,
    pub created_at: i64,
    /// When a newer key replaced it (epoch ms); `None` for the current key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<i64>,
}

impl std::fmt::Debug for StoredKey {
    // Never print key material, even in a debug dump.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .finish()
    }
}

impl StoredKey {
    pub fn generate(kid: String, now_ms: i64) -> Result<Self, DexError> {
        let pair = KeyPair::generate(KeySize::Rsa2048).map_err(DexError::internal)?;
        let der: Pkcs8V1Der<'static> = pair.as_der().map_err(DexError::internal)?;
        Ok(Self {
            kid,
            private_key_pem: pem("PRIVATE KEY", der.as_ref()),
            created_at: now_ms,
            retired_at: None,
        })
    }
}

impl StoredKeySet {
    /// Puts `new` in front and retires the previous current key. Keys retired longer ago than
    /// `keep_ms` (the token lifetime) can no longer have valid tokens and are dropped.
    pub fn rotate(&mut self, new: StoredKey, now_ms: i64, keep_ms: i64) {
        if let Some(current) = self.keys.first_mut() {
            current.retired_at.get_or_insert(now_ms);
        }
        self.keys
            .retain(|k| k.retired_at.is_none_or(|at| now_ms - at <= keep_ms));
        self.keys.insert(0, new);
    }
}

/// One usable key: what signs and what verifies, with its public forms.
pub struct LoadedKey {
    pub kid: String,
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
    pub public_pem: String,
    pub jwk: serde_json::Value,
}

/// The loaded key set: `keys[0]` signs.
pub struct KeyRing {
    pub keys: Vec<LoadedKey>,
}

impl KeyRing {
    pub fn load(set: &StoredKeySet) -> Result<Self, DexError> {
        if set.keys.is_empty() {
            return Err(DexError::internal(
                "the signing-key secret holds no key: run `dexctl init` for this deployment",
            ));
        }
        let keys = set
            .keys
            .iter()
            .map(load_key)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { keys })
    }

    pub fn current(&self) -> &LoadedKey {
        &self.keys[0]
    }

    pub fn by_kid(&self, kid: &str) -> Option<&LoadedKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": self.keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() })
    }
}

fn load_key(stored: &StoredKey) -> Result<LoadedKey, DexError> {
    let bad = |what: &str| DexError::internal(format!("signing key {}: {what}", stored.kid));
    let der = pem_body(&stored.private_key_pem).ok_or_else(|| bad("not a PEM"))?;
    let pair = KeyPair::from_pkcs8(&der).map_err(|_| bad("not an RSA PKCS#8 key"))?;
    let public = pair.public_key();
    let spki: PublicKeyX509Der<'static> = public.as_der().map_err(|_| bad("public key export"))?;
    let public_pem = pem("PUBLIC KEY", spki.as_ref());
    let n = URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero());
    let e = URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero());
    let decoding = DecodingKey::from_rsa_components(&n, &e).map_err(|_| bad("public key"))?;
    let encoding = EncodingKey::from_rsa_pem(stored.private_key_pem.as_bytes())
        .map_err(|_| bad("private key"))?;
    let jwk = serde_json::json!({
        "kty": "RSA", "use": "sig", "alg": "RS256", "kid": stored.kid, "n": n, "e": e,
    });
    Ok(LoadedKey {
        kid: stored.kid.clone(),
        encoding,
        decoding,
        public_pem,
        jwk,
    })
}

/// PEM with 64-character lines, every line ending in `\n` (the HATs' convention too).
pub fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The DER inside a single-block PEM, whatever its label.
pub fn pem_body(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    let begin = text.strip_prefix("-----BEGIN ")?;
    let (_, rest) = begin.split_once("-----")?;
    let end = rest.find("-----END ")?;
    let b64: String = rest[..end].chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD.decode(b64).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_load_and_rotate() {
        let first = StoredKey::generate("k1".into(), 1_000).unwrap();
        let mut set = StoredKeySet { keys: vec![first] };
        let ring = KeyRing::load(&set).unwrap();
        assert_eq!(ring.current().kid, "k1");
        assert!(
            ring.current()
                .public_pem
                .starts_with("-----BEGIN PUBLIC KEY-----\n")
        );
        assert_eq!(ring.jwks()["keys"][0]["e"], "AQAB");

        set.rotate(
            StoredKey::generate("k2".into(), 2_000).unwrap(),
            2_000,
            10_000,
        );
        assert_eq!(
            set.keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(),
            ["k2", "k1"]
        );
        assert_eq!(set.keys[1].retired_at, Some(2_000));
        // A third rotation long after k1 retired drops it: no token it signed is still valid.
        set.rotate(
            StoredKey::generate("k3".into(), 50_000).unwrap(),
            50_000,
            10_000,
        );
        assert_eq!(
            set.keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(),
            ["k3", "k2"]
        );
    }

    #[test]
    fn debug_never_shows_key_material() {
        let key = StoredKey::generate("k1".into(), 0).unwrap();
        assert!(!format!("{key:?}").contains("PRIVATE"));
    }

    #[test]
    fn empty_set_is_a_clear_error() {
        let err = KeyRing::load(&StoredKeySet::default()).err().unwrap();
        assert!(err.to_string().contains("dexctl init"));
    }
}
