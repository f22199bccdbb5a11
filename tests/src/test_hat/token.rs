//! JWTs minted the way HAT2.0 mints them (Silhouette's `JWTRS256Authenticator`), plus a
//! builder that bends every part of them for negative tests.
//!
//! HAT2.0 token anatomy (see `docs/hats.md` §2):
//! - header exactly `{"typ":"JWT","alg":"RS256"}`, no `kid`;
//! - claims `iss` (HAT address, with port here), `sub` (opaque `"1-"` + base64),
//!   `iat`, `exp` = `iat` + 30 days, `jti` (256 lowercase hex), then flat string claims;
//! - the JSON is written by json-smart, which escapes every `/` as `\/`;
//! - segments are base64url without padding; the signature is RSASSA-PKCS1-v1_5 SHA-256.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RSA_PKCS1_SHA512, RsaEncoding};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value};

use super::keys::HatKey;

/// `exp - iat` of every HAT token: 30 days (`silhouette.authenticator.authenticatorExpiry`).
pub const TOKEN_LIFETIME_SECS: i64 = 2_592_000;

/// The signature algorithm (and `alg` header) of a token built by [`TokenBuilder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    /// What real HATs use: RSASSA-PKCS1-v1_5 with SHA-256 under the HAT's private key.
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-512 under the HAT's private key (valid signature,
    /// algorithm DEX must refuse).
    Rs512,
    /// `"alg":"none"` and an empty signature segment (`header.payload.`).
    None,
    /// `"alg":"HS256"` with the HAT's public key PEM bytes as the HMAC secret: the classic
    /// key-confusion attack against verifiers that let the token pick the algorithm.
    Hs256WithPublicKey,
}

impl Alg {
    fn header_name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Rs512 => "RS512",
            Alg::None => "none",
            Alg::Hs256WithPublicKey => "HS256",
        }
    }
}

/// Builds a HAT token; by default exactly the HAT→DEX platform token HAT2.0 sends
/// (`accessScope: "validate"`, `resource: <dex_url>`). Obtain one with
/// [`TestHat::token_builder`](super::TestHat::token_builder).
///
/// Claims keep their insertion order; setting an existing claim replaces it in place.
#[derive(Clone)]
pub struct TokenBuilder {
    key: Arc<HatKey>,
    alg: Alg,
    typ: bool,
    header_extra: Vec<(String, Value)>,
    claims: Vec<(String, Value)>,
    /// Once `exp` was set or removed explicitly, changing `iat` no longer moves it.
    exp_explicit: bool,
}

impl std::fmt::Debug for TokenBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenBuilder")
            .field("alg", &self.alg)
            .field("typ", &self.typ)
            .field("header_extra", &self.header_extra)
            .field("claims", &self.claims)
            .finish_non_exhaustive()
    }
}

impl TokenBuilder {
    /// A token from `issuer` signed with `key`, with the reserved claims filled in as
    /// Silhouette does and then `custom` string claims.
    pub(crate) fn new(key: Arc<HatKey>, issuer: &str, custom: &[(&str, &str)]) -> Self {
        let iat = now_secs();
        let mut claims = vec![
            ("iss".to_owned(), Value::from(issuer)),
            ("sub".to_owned(), Value::from(random_sub())),
            ("iat".to_owned(), Value::from(iat)),
            ("exp".to_owned(), Value::from(iat + TOKEN_LIFETIME_SECS)),
            ("jti".to_owned(), Value::from(random_jti())),
        ];
        claims.extend(
            custom
                .iter()
                .map(|(k, v)| ((*k).to_owned(), Value::from(*v))),
        );
        Self {
            key,
            alg: Alg::Rs256,
            typ: true,
            header_extra: Vec::new(),
            claims,
            exp_explicit: false,
        }
    }

    /// Signature algorithm and `alg` header.
    #[must_use]
    pub fn alg(mut self, alg: Alg) -> Self {
        self.alg = alg;
        self
    }

    /// Leaves `"typ":"JWT"` out of the header (as a 2016 HAT fixture does).
    #[must_use]
    pub fn without_typ(mut self) -> Self {
        self.typ = false;
        self
    }

    /// Adds (or replaces) a header field after `typ`/`alg`, e.g. `kid`, `jku`, `x5u`.
    #[must_use]
    pub fn header_extra(mut self, key: &str, value: impl Into<Value>) -> Self {
        set(&mut self.header_extra, key, value.into());
        self
    }

    /// Sets `iss` (default: the HAT address, with port).
    #[must_use]
    pub fn iss(mut self, iss: &str) -> Self {
        set(&mut self.claims, "iss", Value::from(iss));
        self
    }

    /// Sets `iat`. Unless `exp` was set explicitly, `exp` follows as `iat` + 30 days, so
    /// `.iat(now - 4 days)` gives an old but unexpired token.
    #[must_use]
    pub fn iat(mut self, iat: i64) -> Self {
        set(&mut self.claims, "iat", Value::from(iat));
        if !self.exp_explicit {
            set(
                &mut self.claims,
                "exp",
                Value::from(iat + TOKEN_LIFETIME_SECS),
            );
        }
        self
    }

    /// Sets `exp` (default: `iat` + 2592000).
    #[must_use]
    pub fn exp(mut self, exp: i64) -> Self {
        set(&mut self.claims, "exp", Value::from(exp));
        self.exp_explicit = true;
        self
    }

    /// Sets the `resource` claim, or removes it with `None`.
    #[must_use]
    pub fn resource(self, resource: Option<&str>) -> Self {
        self.optional_claim("resource", resource)
    }

    /// Sets the `accessScope` claim, or removes it with `None`.
    #[must_use]
    pub fn access_scope(self, scope: Option<&str>) -> Self {
        self.optional_claim("accessScope", scope)
    }

    /// Turns the token into an application token as HAT2.0 mints them: no `resource`,
    /// no `accessScope`, only `application` and `applicationVersion` custom claims.
    #[must_use]
    pub fn app_token(mut self, app_id: &str, version: &str) -> Self {
        remove(&mut self.claims, "resource");
        remove(&mut self.claims, "accessScope");
        set(&mut self.claims, "application", Value::from(app_id));
        set(&mut self.claims, "applicationVersion", Value::from(version));
        self
    }

    /// Sets any claim, reserved ones included (`sub`, `jti`, or `exp` as a string...).
    #[must_use]
    pub fn claim(mut self, key: &str, value: impl Into<Value>) -> Self {
        set(&mut self.claims, key, value.into());
        if key == "exp" {
            self.exp_explicit = true;
        }
        self
    }

    /// Removes any claim, reserved ones included (e.g. a token without `exp`).
    #[must_use]
    pub fn without_claim(mut self, key: &str) -> Self {
        remove(&mut self.claims, key);
        if key == "exp" {
            self.exp_explicit = true;
        }
        self
    }

    /// Signs with another HAT's current private key (its public PEM is then the HMAC
    /// secret for [`Alg::Hs256WithPublicKey`]); `iss` stays as it is.
    #[must_use]
    pub fn sign_with(mut self, other: &super::TestHat) -> Self {
        self.key = other.current_key();
        self
    }

    /// The compact JWS: `base64url(header).base64url(payload).base64url(signature)`.
    #[must_use]
    pub fn build(&self) -> String {
        let mut header = Vec::with_capacity(2 + self.header_extra.len());
        if self.typ {
            header.push(("typ".to_owned(), Value::from("JWT")));
        }
        header.push(("alg".to_owned(), Value::from(self.alg.header_name())));
        for (k, v) in &self.header_extra {
            set(&mut header, k, v.clone());
        }
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(json_smart_object(&header)),
            URL_SAFE_NO_PAD.encode(json_smart_object(&self.claims))
        );
        let signature = sign(self.alg, &self.key, signing_input.as_bytes());
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    fn optional_claim(mut self, key: &str, value: Option<&str>) -> Self {
        match value {
            Some(v) => set(&mut self.claims, key, Value::from(v)),
            None => remove(&mut self.claims, key),
        }
        self
    }
}

/// Re-encodes the payload of `token` after `edit` changed its claims, keeping the original
/// header and signature segments (so the signature no longer matches). The payload is
/// written json-smart style (`/` as `\/`). Panics if `token` is not three segments with a
/// base64url JSON-object payload.
pub fn tamper_payload(token: &str, edit: impl FnOnce(&mut Map<String, Value>)) -> String {
    let segments: Vec<&str> = token.split('.').collect();
    assert_eq!(segments.len(), 3, "a JWT has three segments: {token}");
    let payload = URL_SAFE_NO_PAD
        .decode(segments[1])
        .expect("payload segment is base64url");
    let mut claims: Map<String, Value> =
        serde_json::from_slice(&payload).expect("payload is a JSON object");
    edit(&mut claims);
    let fields: Vec<(String, Value)> = claims.into_iter().collect();
    format!(
        "{}.{}.{}",
        segments[0],
        URL_SAFE_NO_PAD.encode(json_smart_object(&fields)),
        segments[2]
    )
}

/// The decoded segments of a compact JWS, exactly as transmitted (for assertions on
/// the raw JSON text, e.g. the header's field order or the `\/` escapes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenParts {
    /// The header JSON text.
    pub header_json: String,
    /// The payload JSON text.
    pub payload_json: String,
    /// The raw signature bytes (empty for `alg: none`).
    pub signature: Vec<u8>,
}

/// Splits and base64url-decodes a compact JWS; `None` unless it has three decodable
/// segments with UTF-8 header and payload.
#[must_use]
pub fn split_token(token: &str) -> Option<TokenParts> {
    let mut segments = token.split('.');
    let (h, p, s) = (segments.next()?, segments.next()?, segments.next()?);
    if segments.next().is_some() {
        return None;
    }
    Some(TokenParts {
        header_json: String::from_utf8(URL_SAFE_NO_PAD.decode(h).ok()?).ok()?,
        payload_json: String::from_utf8(URL_SAFE_NO_PAD.decode(p).ok()?).ok()?,
        signature: URL_SAFE_NO_PAD.decode(s).ok()?,
    })
}

/// Seconds since the Unix epoch.
pub(crate) fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Writes a JSON object with fields in the given order, as json-smart would: compact, and
/// every `/` escaped as `\/`. serde_json never escapes `/` and a `/` can only occur inside
/// a string (keys and values alike), so replacing it in the finished text is exact.
fn json_smart_object(fields: &[(String, Value)]) -> String {
    let mut json = String::from("{");
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push_str(&Value::from(k.as_str()).to_string());
        json.push(':');
        json.push_str(&v.to_string());
    }
    json.push('}');
    json.replace('/', "\\/")
}

fn sign(alg: Alg, key: &HatKey, input: &[u8]) -> Vec<u8> {
    let rsa = |encoding: &'static dyn RsaEncoding| {
        let mut sig = vec![0; key.pair.public_modulus_len()];
        key.pair
            .sign(encoding, &SystemRandom::new(), input, &mut sig)
            .expect("RSA signing");
        sig
    };
    match alg {
        Alg::Rs256 => rsa(&RSA_PKCS1_SHA256),
        Alg::Rs512 => rsa(&RSA_PKCS1_SHA512),
        Alg::None => Vec::new(),
        Alg::Hs256WithPublicKey => {
            let secret = hmac::Key::new(hmac::HMAC_SHA256, key.pem.as_bytes());
            hmac::sign(&secret, input).as_ref().to_vec()
        }
    }
}

fn set(fields: &mut Vec<(String, Value)>, key: &str, value: Value) {
    match fields.iter_mut().find(|(k, _)| k == key) {
        Some((_, v)) => *v = value,
        None => fields.push((key.to_owned(), value)),
    }
}

fn remove(fields: &mut Vec<(String, Value)>, key: &str) {
    fields.retain(|(k, _)| k != key);
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("system random generator");
    bytes
}

/// Silhouette's `sub` is the encrypted LoginInfo, `"1-" + base64(IV ‖ ciphertext)`; it is
/// opaque to DEX, so random bytes of a realistic length stand in for it.
fn random_sub() -> String {
    format!("1-{}", STANDARD.encode(random_bytes::<48>()))
}

/// Silhouette's `SecureRandomIDGenerator`: 128 random bytes as 256 lowercase hex chars.
fn random_jti() -> String {
    hex::encode(random_bytes::<128>())
}
