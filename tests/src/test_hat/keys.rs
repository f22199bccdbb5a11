//! Key material of test HATs: RSA signing keys and the PEM text `/publickey` serves.

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// A 1024-bit RSA public key (SPKI PEM, no private half anywhere). aws-lc-rs refuses to
/// generate keys this small, so it is a committed fixture made with
/// `openssl genrsa 1024 | openssl rsa -pubout`.
pub const RSA1024_PUBLIC_KEY_PEM: &str = include_str!("../../fixtures/rsa1024.pub.pem");

/// Encodes DER bytes as PEM the way HAT2.0 does (BouncyCastle's PEM writer): the
/// `-----BEGIN {label}-----` line, the base64 text in 64-character lines, the footer, and
/// every line (footer included) ending with `\n`.
#[must_use]
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    // base64 text is ASCII, so splitting the bytes on any boundary keeps valid UTF-8.
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

/// SPKI (`BEGIN PUBLIC KEY`) PEM of a DER-encoded SubjectPublicKeyInfo.
#[must_use]
pub fn public_key_pem(spki_der: &[u8]) -> String {
    pem_encode("PUBLIC KEY", spki_der)
}

/// One HAT key pair: the RSA private key it signs with and the SPKI PEM of its public half.
pub(crate) struct HatKey {
    pub(crate) pair: KeyPair,
    pub(crate) pem: String,
}

impl HatKey {
    /// A fresh 2048-bit RSA key pair (aws-lc-rs always uses e = 65537).
    pub(crate) fn generate() -> Self {
        let pair = KeyPair::generate(KeySize::Rsa2048).expect("generate a 2048-bit RSA key");
        // The secrets scan of `make test` looks for it in DEX's logs, answers and table.
        let private: Pkcs8V1Der<'static> = pair.as_der().expect("encode the RSA key as PKCS#8");
        crate::secrets_ledger::record(
            "a test HAT's private key",
            &pem_encode("PRIVATE KEY", private.as_ref()),
        );
        let spki = pair
            .public_key()
            .as_der()
            .expect("encode the RSA public key as SPKI DER");
        let pem = public_key_pem(spki.as_ref());
        Self { pair, pem }
    }
}

/// SPKI PEM of a freshly generated 2048-bit RSA public key (its private half is discarded).
#[must_use]
pub fn fresh_rsa2048_public_key_pem() -> String {
    HatKey::generate().pem
}

/// SPKI PEM of a freshly generated EC P-256 public key: a valid key that is not RSA.
#[must_use]
pub fn fresh_ec_p256_public_key_pem() -> String {
    let pair =
        EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).expect("generate an EC P-256 key");
    let spki = pair
        .public_key()
        .as_der()
        .expect("encode the EC public key as SPKI DER");
    public_key_pem(spki.as_ref())
}
