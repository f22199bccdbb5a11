//! Encryption of values DEX must keep but never store in clear (docs/decisions.md §9: the offers'
//! generated HAT passwords). AES-256-GCM with a key kept in Secrets Manager, generated on
//! first use and stored race-free like the signing key, so racing cold containers end with
//! one key. Only the functions that seal or open values may read that secret.
//!
//! A sealed value is `v1.<kid>.<base64url(nonce || ciphertext || tag)>`; the `kid` lets a
//! later key rotation keep opening values sealed with older keys.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::sync::OnceCell;

use crate::auth::keyring::load_or_create;
use crate::error::{DexError, DexResult};
use crate::ports::{Clock, Random, SecretStore};

const KEY_LEN: usize = 32;

/// The JSON stored in the encryption-key secret; the first key seals.
#[derive(Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct StoredEncryptionKeys {
    pub keys: Vec<StoredEncryptionKey>,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredEncryptionKey {
    pub kid: String,
    /// 32 random bytes, base64url.
    pub key: String,
    pub created_at: i64,
}

impl std::fmt::Debug for StoredEncryptionKey {
    // Never print key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredEncryptionKey")
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

impl StoredEncryptionKey {
    pub fn generate(random: &dyn Random, now_ms: i64) -> Self {
        Self {
            kid: random.hex(8),
            key: URL_SAFE_NO_PAD.encode(random.bytes(KEY_LEN)),
            created_at: now_ms,
        }
    }
}

/// Loaded keys that seal with the first and open with any.
pub struct Sealer {
    keys: Vec<(String, LessSafeKey)>,
}

impl Sealer {
    pub fn load(stored: &StoredEncryptionKeys) -> DexResult<Self> {
        if stored.keys.is_empty() {
            return Err(DexError::internal("the encryption-key secret holds no key"));
        }
        let keys = stored
            .keys
            .iter()
            .map(|k| {
                let bad = || DexError::internal(format!("encryption key {}: malformed", k.kid));
                let bytes = URL_SAFE_NO_PAD.decode(&k.key).map_err(|_| bad())?;
                if bytes.len() != KEY_LEN {
                    return Err(bad());
                }
                let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| bad())?;
                Ok((k.kid.clone(), LessSafeKey::new(key)))
            })
            .collect::<DexResult<Vec<_>>>()?;
        Ok(Self { keys })
    }

    /// Encrypts `plain`, bound to `context` (e.g. the offer id: a sealed value copied to
    /// another record does not open there).
    pub fn seal(&self, random: &dyn Random, context: &str, plain: &[u8]) -> DexResult<String> {
        let (kid, key) = &self.keys[0];
        let mut nonce = [0u8; NONCE_LEN];
        random.fill(&mut nonce);
        let mut in_out = plain.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(context.as_bytes()),
            &mut in_out,
        )
        .map_err(|_| DexError::internal("sealing failed"))?;
        let mut out = nonce.to_vec();
        out.append(&mut in_out);
        Ok(format!("v1.{kid}.{}", URL_SAFE_NO_PAD.encode(out)))
    }

    /// Decrypts what `seal` made with the same `context`.
    pub fn open(&self, context: &str, sealed: &str) -> DexResult<Vec<u8>> {
        let refused = || DexError::internal("a sealed value does not open");
        let mut parts = sealed.splitn(3, '.');
        let (Some("v1"), Some(kid), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(refused());
        };
        let (_, key) = self
            .keys
            .iter()
            .find(|(k, _)| k == kid)
            .ok_or_else(refused)?;
        let bytes = URL_SAFE_NO_PAD.decode(body).map_err(|_| refused())?;
        if bytes.len() < NONCE_LEN {
            return Err(refused());
        }
        let (nonce, cipher) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| refused())?;
        let mut in_out = cipher.to_vec();
        let plain = key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut in_out)
            .map_err(|_| refused())?;
        Ok(plain.to_vec())
    }
}

/// The deployment's encryption keys, creating the first one if the secret has none.
/// Returns the sealer and whether this call created the key.
pub async fn ensure_encryption_key(
    secrets: &impl SecretStore,
    name: &str,
    clock: &dyn Clock,
    random: &dyn Random,
) -> DexResult<(Sealer, bool)> {
    let (stored, created) = load_or_create(
        secrets,
        name,
        |s: &StoredEncryptionKeys| !s.keys.is_empty(),
        || {
            Ok(StoredEncryptionKeys {
                keys: vec![StoredEncryptionKey::generate(random, clock.now_millis())],
            })
        },
    )
    .await?;
    Ok((Sealer::load(&stored)?, created))
}

/// The deployment's sealer for one container: loaded (its key made, on a new deployment)
/// on first use, then kept. Only the functions that seal or open values use it, so only
/// they read the secret.
pub struct EncryptionKeys<K> {
    secrets: K,
    name: String,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
    sealer: OnceCell<Sealer>,
}

impl<K: SecretStore> EncryptionKeys<K> {
    pub fn new(secrets: K, name: String, clock: Arc<dyn Clock>, random: Arc<dyn Random>) -> Self {
        Self {
            secrets,
            name,
            clock,
            random,
            sealer: OnceCell::new(),
        }
    }

    /// The sealer; a failed load is tried again by the next call.
    pub async fn sealer(&self) -> DexResult<&Sealer> {
        self.sealer
            .get_or_try_init(|| async {
                ensure_encryption_key(&self.secrets, &self.name, &*self.clock, &*self.random)
                    .await
                    .map(|(sealer, _)| sealer)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::SystemRandom;

    fn keys(n: usize) -> StoredEncryptionKeys {
        StoredEncryptionKeys {
            keys: (0..n)
                .map(|_| StoredEncryptionKey::generate(&SystemRandom, 0))
                .collect(),
        }
    }

    #[test]
    fn seal_then_open() {
        let sealer = Sealer::load(&keys(1)).unwrap();
        let a = sealer
            .seal(&SystemRandom, "offer-1", b"hat password")
            .unwrap();
        let b = sealer
            .seal(&SystemRandom, "offer-1", b"hat password")
            .unwrap();
        assert_ne!(a, b, "a fresh nonce per value");
        assert!(!a.contains("hat password"));
        assert_eq!(sealer.open("offer-1", &a).unwrap(), b"hat password");
    }

    #[test]
    fn refuses_tampering_another_context_and_another_key() {
        let sealer = Sealer::load(&keys(1)).unwrap();
        let sealed = sealer.seal(&SystemRandom, "offer-1", b"secret").unwrap();
        assert!(sealer.open("offer-2", &sealed).is_err());
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(
            sealer
                .open("offer-1", std::str::from_utf8(&tampered).unwrap())
                .is_err()
        );
        let other = Sealer::load(&keys(1)).unwrap();
        assert!(other.open("offer-1", &sealed).is_err());
        assert!(sealer.open("offer-1", "garbage").is_err());
    }

    #[test]
    fn older_keys_still_open() {
        let mut stored = keys(1);
        let old = Sealer::load(&stored).unwrap();
        let sealed = old.seal(&SystemRandom, "c", b"x").unwrap();
        stored
            .keys
            .insert(0, StoredEncryptionKey::generate(&SystemRandom, 1));
        let rotated = Sealer::load(&stored).unwrap();
        assert_eq!(rotated.open("c", &sealed).unwrap(), b"x");
        assert!(
            rotated
                .seal(&SystemRandom, "c", b"x")
                .unwrap()
                .starts_with(&format!("v1.{}.", stored.keys[0].kid))
        );
    }

    #[test]
    fn debug_never_shows_key_material() {
        let key = StoredEncryptionKey::generate(&SystemRandom, 0);
        assert!(!format!("{key:?}").contains(&key.key));
    }
}
