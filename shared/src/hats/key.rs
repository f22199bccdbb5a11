//! HAT public keys: SPKI PEM of an RSA key of at least 2048 bits (docs/decisions.md §4.3).

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rsa::PublicEncryptingKey;

use crate::auth::keys::pem_body;

pub const MIN_RSA_BITS: usize = 2048;

/// A HAT key that passed the checks; `pem` is kept verbatim (it reappears in offer claims).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HatKey {
    pub pem: String,
    /// SHA-256 of the DER, hex: what "the same key" means.
    pub fingerprint: String,
    pub bits: usize,
}

impl HatKey {
    pub fn parse(pem: &str) -> Result<Self, String> {
        if !pem.trim_start().starts_with("-----BEGIN PUBLIC KEY-----") {
            return Err("its /publickey is not an SPKI PEM public key".into());
        }
        let der = pem_body(pem).ok_or("its /publickey is not valid PEM")?;
        let key =
            PublicEncryptingKey::from_der(&der).map_err(|_| "its public key is not an RSA key")?;
        let bits = key.key_size_bits();
        if bits < MIN_RSA_BITS {
            return Err(format!(
                "its RSA key has {bits} bits; at least {MIN_RSA_BITS} are required"
            ));
        }
        Ok(Self {
            pem: pem.to_owned(),
            fingerprint: hex::encode(digest(&SHA256, &der)),
            bits,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::keys::{KeyRing, StoredKey, StoredKeySet};

    #[test]
    fn accepts_a_2048_bit_rsa_key() {
        let ring = KeyRing::load(&StoredKeySet {
            keys: vec![StoredKey::generate("k".into(), 0).unwrap()],
        })
        .unwrap();
        let pem = &ring.current().public_pem;
        let key = HatKey::parse(pem).unwrap();
        assert_eq!(key.bits, 2048);
        assert_eq!(key.fingerprint.len(), 64);
        assert_eq!(&key.pem, pem);
    }

    #[test]
    fn rejects_what_is_not_an_rsa_spki() {
        assert!(HatKey::parse("hello").is_err());
        assert!(
            HatKey::parse("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n").is_err()
        );
        assert!(
            HatKey::parse("-----BEGIN RSA PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----\n")
                .is_err()
        );
    }
}
