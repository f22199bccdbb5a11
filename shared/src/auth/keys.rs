//! DEX's own signing keys (docs/decisions.md §3). The key set lives in one Secrets Manager secret as
//! JSON; the first key signs, the others (previous keys) still verify until every token they
//! signed has expired. Its public halves live in a second secret ([`PublicKeySet`]), the only
//! one that functions which verify or publish tokens may read.

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

/// The JSON stored in the public-key secret: the public halves of [`StoredKeySet`], in the
/// same order (the first is the key that signs).
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PublicKeySet {
    pub keys: Vec<PublicKeyEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PublicKeyEntry {
    pub kid: String,
    /// RSA modulus and exponent, base64url without padding (as in a JWK).
    pub n: String,
    pub e: String,
    /// SPKI PEM, as `/publickey` serves it.
    pub public_key_pem: String,
}

impl PublicKeySet {
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.kid.as_str())
    }

    /// Whether every key of `ring` is published here (so tokens it signs can be verified).
    pub fn covers(&self, ring: &KeyRing) -> bool {
        ring.keys.iter().all(|k| self.kids().any(|p| p == k.kid))
    }
}

/// What token verification needs: a public key by id.
pub trait VerifyingKeys {
    fn decoding_key(&self, kid: &str) -> Option<&DecodingKey>;
}

/// One usable key: what signs and what verifies, with its public forms.
pub struct LoadedKey {
    pub kid: String,
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
    pub public_pem: String,
    pub jwk: serde_json::Value,
    public: PublicKeyEntry,
}

/// One published key, loaded from the public-key secret.
pub struct PublicKey {
    pub kid: String,
    pub decoding: DecodingKey,
    pub public_pem: String,
    pub jwk: serde_json::Value,
}

/// The loaded public keys: `keys[0]` is the one that signs. Empty until the deployment's
/// first key is made (at its first login).
pub struct PublicKeyRing {
    pub keys: Vec<PublicKey>,
}

impl PublicKeyRing {
    pub fn load(set: &PublicKeySet) -> Result<Self, DexError> {
        let keys = set
            .keys
            .iter()
            .map(|k| {
                let decoding = DecodingKey::from_rsa_components(&k.n, &k.e).map_err(|_| {
                    DexError::internal(format!("published key {}: not an RSA key", k.kid))
                })?;
                Ok(PublicKey {
                    kid: k.kid.clone(),
                    decoding,
                    public_pem: k.public_key_pem.clone(),
                    jwk: jwk(&k.kid, &k.n, &k.e),
                })
            })
            .collect::<Result<Vec<_>, DexError>>()?;
        Ok(Self { keys })
    }

    pub fn current(&self) -> Option<&PublicKey> {
        self.keys.first()
    }

    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": self.keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() })
    }
}

impl VerifyingKeys for PublicKeyRing {
    fn decoding_key(&self, kid: &str) -> Option<&DecodingKey> {
        self.keys.iter().find(|k| k.kid == kid).map(|k| &k.decoding)
    }
}

impl VerifyingKeys for KeyRing {
    fn decoding_key(&self, kid: &str) -> Option<&DecodingKey> {
        self.by_kid(kid).map(|k| &k.decoding)
    }
}

fn jwk(kid: &str, n: &str, e: &str) -> serde_json::Value {
    serde_json::json!({ "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e })
}

/// The loaded key set: `keys[0]` signs.
pub struct KeyRing {
    pub keys: Vec<LoadedKey>,
}

impl KeyRing {
    pub fn load(set: &StoredKeySet) -> Result<Self, DexError> {
        if set.keys.is_empty() {
            return Err(DexError::internal("the signing-key secret holds no key"));
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

    /// The public halves, in the same order: what the public-key secret holds.
    pub fn public_set(&self) -> PublicKeySet {
        PublicKeySet {
            keys: self.keys.iter().map(|k| k.public.clone()).collect(),
        }
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
    Ok(LoadedKey {
        kid: stored.kid.clone(),
        encoding,
        decoding,
        jwk: jwk(&stored.kid, &n, &e),
        public: PublicKeyEntry {
            kid: stored.kid.clone(),
            n,
            e,
            public_key_pem: public_pem.clone(),
        },
        public_pem,
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
    fn the_public_set_verifies_what_the_private_set_signs() {
        let mut set = StoredKeySet {
            keys: vec![StoredKey::generate("k1".into(), 0).unwrap()],
        };
        set.rotate(StoredKey::generate("k2".into(), 1).unwrap(), 1, 10);
        let ring = KeyRing::load(&set).unwrap();
        let public = ring.public_set();
        assert_eq!(public.kids().collect::<Vec<_>>(), ["k2", "k1"]);
        assert!(public.covers(&ring));
        let text = serde_json::to_string(&public).unwrap();
        assert!(
            !text.contains("PRIVATE"),
            "the public set holds private material"
        );
        let published = PublicKeyRing::load(&public).unwrap();
        assert_eq!(published.jwks(), ring.jwks());
        assert_eq!(
            published.current().unwrap().public_pem,
            ring.current().public_pem
        );
        assert!(published.decoding_key("k1").is_some());
        assert!(published.decoding_key("k3").is_none());
        // A set that lacks a key of the ring does not cover it.
        let older = PublicKeySet {
            keys: public.keys[1..].to_vec(),
        };
        assert!(!older.covers(&ring));
        assert!(
            PublicKeyRing::load(&PublicKeySet::default())
                .unwrap()
                .current()
                .is_none()
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
        assert!(err.to_string().contains("no key"));
    }
}
