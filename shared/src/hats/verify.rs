//! Verifying HAT-signed requests (docs/decisions.md §5, docs/hats.md §2): RS256 only, signed by the key
//! pinned at registration (never fetched from the HAT at request time), `iss` a registered HAT
//! of a certified cluster, `exp` in the future, `iat` neither in the future nor older than
//! three days, `accessScope` = `validate`, `resource` = DEX's public URL.
//!
//! Keys are cached per container for `hat_key_cache`; a signature that fails against a cached
//! key is retried once against the table, so a re-keyed HAT's new tokens work at once. Old
//! tokens of a re-keyed HAT stop working when the cache entry expires.
//!
//! That re-read is bounded (issue 11 §1: forged tokens naming a real `iss`): at most one per
//! HAT per `RefreshLimits::per_hat` (an entry a re-read loaded is not re-read again before
//! then), and at most `budget` per `window` for the whole container. A token refused for
//! lack of a re-read is refused as any bad signature; a real key change is picked up by the
//! next re-read allowed, at the latest when the cache entry expires.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::sync::Mutex;

use super::HatStore;
use super::address::HatAddress;
use crate::accounts::Actor;
use crate::error::{DexError, DexResult};
use crate::txlog::Subject;

/// Clock skew tolerated on `exp` and `iat`.
const SKEW_SECS: i64 = 60;
/// Keys a container keeps at most.
const MAX_CACHED_HATS: usize = 10_000;
/// The HATs' own idle rule: a token issued more than three days ago is stale.
const MAX_TOKEN_AGE_SECS: i64 = 3 * 24 * 3600;

/// The HAT a request verifiably comes from, with what the verifier read of its
/// registration (as fresh as the verifier's cache, `DEX_HAT_KEY_CACHE_SECS`), so that a
/// handler calling the HAT back does not read it again.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedHat {
    pub address: String,
    pub cluster: String,
    /// The registered public key, PEM.
    pub public_key_pem: String,
    /// The Secrets Manager name of its certified cluster's platform credentials.
    pub cluster_secret: String,
}

impl VerifiedHat {
    pub fn subject(&self) -> Subject {
        Subject::hat(&self.address)
    }

    /// The HAT as the actor of what it asks for.
    pub fn actor(&self) -> Actor {
        Actor::Hat(self.address.clone())
    }
}

#[derive(Deserialize)]
struct HatClaims {
    iss: String,
    iat: Option<i64>,
    #[serde(rename = "accessScope")]
    access_scope: Option<String>,
    resource: Option<String>,
    application: Option<String>,
}

struct CachedHat {
    key: Arc<DecodingKey>,
    public_key_pem: String,
    cluster: String,
    /// The certified cluster's credentials secret; `None`: the cluster is not certified.
    cluster_secret: Option<String>,
    loaded: Instant,
    /// Loaded by a re-read after a failed signature.
    forced: bool,
}

/// How often failed signatures may make the verifier read a HAT's key again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshLimits {
    /// At most one re-read per HAT in this time.
    pub per_hat: Duration,
    /// At most this many re-reads per `window`, all HATs together.
    pub budget: u32,
    pub window: Duration,
}

impl Default for RefreshLimits {
    fn default() -> Self {
        Self {
            per_hat: Duration::from_secs(5),
            budget: 20,
            window: Duration::from_secs(1),
        }
    }
}

pub struct HatVerifier {
    /// DEX's public URL: the `resource` HAT tokens must carry.
    public_url: String,
    /// Whether HAT addresses may carry a `:port` (only when HAT hosts are pinned, locally).
    allow_ports: bool,
    /// How long a key read from the table is trusted.
    cache_for: Duration,
    cache: Mutex<HashMap<String, Arc<CachedHat>>>,
    limits: RefreshLimits,
    /// (start of the current window, re-reads in it).
    spent: std::sync::Mutex<(Instant, u32)>,
}

fn refused(why: impl Into<String>) -> DexError {
    DexError::Unauthorized(why.into())
}

impl HatVerifier {
    pub fn new(public_url: impl Into<String>, allow_ports: bool, cache_for: Duration) -> Self {
        Self {
            public_url: public_url.into(),
            allow_ports,
            cache_for,
            cache: Mutex::default(),
            limits: RefreshLimits::default(),
            spent: std::sync::Mutex::new((Instant::now(), 0)),
        }
    }

    /// The same verifier with other re-read limits.
    pub fn with_refresh_limits(mut self, limits: RefreshLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Whether a failed signature against `hat` may read the table again now.
    fn may_refresh(&self, hat: &CachedHat) -> bool {
        if hat.forced && hat.loaded.elapsed() < self.limits.per_hat {
            return false;
        }
        let mut spent = self.spent.lock().expect("refresh budget");
        if spent.0.elapsed() >= self.limits.window {
            *spent = (Instant::now(), 0);
        }
        if spent.1 >= self.limits.budget {
            return false;
        }
        spent.1 += 1;
        true
    }

    pub async fn verify<S: HatStore>(
        &self,
        store: &S,
        now_secs: i64,
        token: Option<&str>,
    ) -> DexResult<VerifiedHat> {
        let token = token.ok_or_else(|| refused("X-Auth-Token header missing"))?;
        let header = jsonwebtoken::decode_header(token).map_err(|_| refused("malformed token"))?;
        if header.alg != Algorithm::RS256 {
            return Err(refused("HAT tokens must be RS256"));
        }
        let iss = unverified_issuer(token).ok_or_else(|| refused("malformed token"))?;
        let parsed = HatAddress::parse(&iss, self.allow_ports)
            .map_err(|_| refused("the token's issuer is not a HAT address"))?;
        let address = parsed.to_string();

        let (mut hat, mut fresh) = self.lookup(store, &parsed, false).await?;
        let claims = loop {
            if hat.cluster_secret.is_none() {
                return Err(refused(format!(
                    "the cluster of HAT {address} is not certified"
                )));
            }
            match decode(token, &hat.key) {
                Ok(claims) => break claims,
                // The HAT may have been re-keyed since we cached its key: look again once.
                // Bounded (`RefreshLimits`): forged tokens must not cost a read each.
                Err(_) if !fresh && self.may_refresh(&hat) => {
                    (hat, fresh) = self.lookup(store, &parsed, true).await?
                }
                Err(why) => return Err(refused(why)),
            }
        };
        if claims.iss != iss {
            return Err(refused("malformed token"));
        }
        check_claims(&claims, &self.public_url, now_secs)?;
        Ok(VerifiedHat {
            address,
            cluster: hat.cluster.clone(),
            public_key_pem: hat.public_key_pem.clone(),
            cluster_secret: hat.cluster_secret.clone().unwrap_or_default(),
        })
    }

    /// The cached entry, or a fresh one from the table (one read: the HAT and its candidate
    /// clusters together). Returns whether the entry is fresh.
    async fn lookup<S: HatStore>(
        &self,
        store: &S,
        parsed: &HatAddress,
        force: bool,
    ) -> DexResult<(Arc<CachedHat>, bool)> {
        let address = parsed.to_string();
        if !force
            && let Some(hat) = self.cache.lock().await.get(&address)
            && hat.loaded.elapsed() < self.cache_for
        {
            return Ok((hat.clone(), false));
        }
        let candidates: Vec<String> = parsed.parent_domains().map(str::to_owned).collect();
        let (hat, clusters) = store.get_hat_and_clusters(&address, &candidates).await?;
        let hat = hat.ok_or_else(|| refused(format!("HAT {address} is not registered")))?;
        let key = DecodingKey::from_rsa_pem(hat.public_key_pem.as_bytes())
            .map_err(|_| DexError::internal(format!("stored key of {address} does not parse")))?;
        let cluster_secret = clusters
            .into_iter()
            .find(|c| c.domain == hat.cluster && c.certified)
            .map(|c| c.secret_name);
        let entry = Arc::new(CachedHat {
            key: Arc::new(key),
            public_key_pem: hat.public_key_pem,
            cluster: hat.cluster,
            cluster_secret,
            loaded: Instant::now(),
            forced: force,
        });
        let mut cache = self.cache.lock().await;
        // A warm container may see many HATs: keep the cache bounded (an entry costs one
        // read to load again).
        if cache.len() >= MAX_CACHED_HATS {
            cache.clear();
        }
        cache.insert(address.to_owned(), entry.clone());
        Ok((entry, true))
    }
}

fn unverified_issuer(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.get("iss")?.as_str().map(str::to_owned)
}

fn decode(token: &str, key: &DecodingKey) -> Result<HatClaims, &'static str> {
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_required_spec_claims(&["exp", "iss"]);
    validation.leeway = SKEW_SECS as u64;
    validation.validate_aud = false;
    jsonwebtoken::decode::<HatClaims>(token, key, &validation)
        .map(|d| d.claims)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => "token expired",
            jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                "token signature does not match the HAT's registered key"
            }
            _ => "invalid token",
        })
}

fn check_claims(claims: &HatClaims, public_url: &str, now: i64) -> DexResult<()> {
    if claims.application.is_some() {
        return Err(refused("application tokens are not accepted here"));
    }
    let iat = claims.iat.ok_or_else(|| refused("token without iat"))?;
    if iat > now + SKEW_SECS {
        return Err(refused("token issued in the future"));
    }
    // Checked: a forged `iat` near i64::MIN must not overflow.
    if now
        .checked_sub(iat)
        .is_none_or(|age| age > MAX_TOKEN_AGE_SECS)
    {
        return Err(refused("token issued more than 3 days ago"));
    }
    if claims.access_scope.as_deref() != Some("validate") {
        return Err(refused("token accessScope must be validate"));
    }
    let resource = claims.resource.as_deref().map(|r| r.trim_end_matches('/'));
    if resource != Some(public_url) {
        return Err(refused(format!("token resource must be {public_url}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(iat: Option<i64>) -> HatClaims {
        HatClaims {
            iss: "alice.hubat.net".into(),
            iat,
            access_scope: Some("validate".into()),
            resource: Some("https://dex.example.com/".into()),
            application: None,
        }
    }

    const PUBLIC_URL: &str = "https://dex.example.com";

    #[test]
    fn iat_is_checked_without_overflow() {
        let now = 1_800_000_000;
        assert!(check_claims(&claims(Some(now - 10)), PUBLIC_URL, now).is_ok());
        for iat in [i64::MIN, i64::MIN + 1, now - MAX_TOKEN_AGE_SECS - 1] {
            let err = check_claims(&claims(Some(iat)), PUBLIC_URL, now).unwrap_err();
            assert!(err.to_string().contains("3 days"), "{iat}: {err}");
        }
        let err = check_claims(&claims(Some(i64::MAX)), PUBLIC_URL, now).unwrap_err();
        assert!(err.to_string().contains("future"));
        assert!(check_claims(&claims(None), PUBLIC_URL, now).is_err());
    }
}
