//! DEX calling HATs (docs/decisions.md §6): the one component everything that acts on a HAT
//! uses (plug connect, offer claims, update-application).
//!
//! - It logs in as the cluster's platform user (`GET /users/access_token`, `username` and
//!   `password` headers URL-encoded), with the credentials of the cluster's secret, read once
//!   per container and cluster and never logged, and reuses the HAT's token until it expires
//!   or the HAT answers 401 (then it logs in once more): HATs rate-limit logins.
//! - Every attempt has a timeout (`DEX_HAT_TIMEOUT_SECS`, cut to what is left of the
//!   request's deadline), follows no redirect, reads a bounded body and goes through the
//!   private-address guard (the `HatHttp` adapter).
//! - A connection that could not be made or broke is retried (at most `MAX_ATTEMPTS`
//!   attempts, backoff 100 ms then 200 ms); an answer, a timeout or an oversized body is not.
//!   The data debit's creation is the exception: it is not idempotent, so a broken
//!   connection is not retried but reported as an unknown outcome (`DebitCreated::NoAnswer`).
//! - One `Deadline` covers every HAT call of a request (`DEX_HAT_BUDGET_SECS`, well before
//!   the function's timeout), so DEX always has time left to answer and to record.
//! - Errors name the HAT and the step (`login`, `create user`, ...): 504 when the HAT did not
//!   answer in time or the deadline is spent, 502 for anything else the HAT did wrong.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::OnceCell;
use tokio::time::Instant;

use super::address::HatAddress;
use super::clusters::PlatformCredentials;
use super::ports::{HatHttp, HatMethod, HatRequest, HatResponse, HatTransport};
use crate::error::{DexError, DexResult};
use crate::ports::{Clock, SecretStore};

/// Attempts of one call when the connection fails or breaks.
pub const MAX_ATTEMPTS: u32 = 3;
/// The first retry's backoff; it doubles for each further attempt.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// An attempt needs at least this much of the deadline, or the call is not made.
pub const MIN_ATTEMPT: Duration = Duration::from_millis(50);
/// A HAT token is not used in its last minute (clocks differ; the call takes time).
pub const TOKEN_EXPIRY_MARGIN_SECS: i64 = 60;
/// A token whose `exp` cannot be read is reused for this long.
pub const UNKNOWN_EXPIRY_SECS: i64 = 300;
/// Body limits: a login or a single object is small; the user list of a HAT is larger.
pub const SMALL_BODY_LIMIT: usize = 64 * 1024;
pub const LIST_BODY_LIMIT: usize = 1024 * 1024;
/// A warm container forgets its HAT tokens past this many HATs (memory stays bounded).
const MAX_CACHED_TOKENS: usize = 10_000;

/// What is escaped in a path segment (a user id, a debit key): everything but RFC 3986's
/// unreserved characters, so a UUID or `offer-1` goes as it is.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The steps DEX names in its errors.
pub mod step {
    pub const LOGIN: &str = "login";
    pub const CREATE_USER: &str = "create user";
    pub const FIND_USER: &str = "find user";
    pub const ENABLE_USER: &str = "enable user";
    pub const DISABLE_USER: &str = "disable user";
    pub const CREATE_DATA_DEBIT: &str = "create data debit";
    pub const GET_DATA_DEBIT: &str = "get data debit";
    pub const UPDATE_APPLICATION: &str = "update application";
}

/// When the HAT calls of one request must be over.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    ends: Instant,
}

impl Deadline {
    pub fn after(budget: Duration) -> Self {
        Self {
            ends: Instant::now() + budget,
        }
    }

    pub fn remaining(&self) -> Duration {
        self.ends.saturating_duration_since(Instant::now())
    }
}

#[derive(Clone)]
struct CachedToken {
    token: String,
    /// Epoch seconds after which the token is not used.
    use_until: i64,
}

/// What a warm container keeps between requests: each cluster's platform credentials (read
/// once) and each HAT's token. One login per HAT at a time: concurrent requests wait for it.
#[derive(Default)]
pub struct HatSessions {
    credentials: Mutex<HashMap<String, Arc<OnceCell<Arc<PlatformCredentials>>>>>,
    tokens: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<CachedToken>>>>>,
}

impl HatSessions {
    pub fn new() -> Self {
        Self::default()
    }

    fn credentials_cell(&self, secret: &str) -> Arc<OnceCell<Arc<PlatformCredentials>>> {
        let mut map = self.credentials.lock().expect("credentials cache");
        map.entry(secret.to_owned()).or_default().clone()
    }

    fn token_slot(&self, hat: &str) -> Arc<tokio::sync::Mutex<Option<CachedToken>>> {
        let mut map = self.tokens.lock().expect("token cache");
        if map.len() >= MAX_CACHED_TOKENS && !map.contains_key(hat) {
            map.clear();
        }
        map.entry(hat.to_owned()).or_default().clone()
    }
}

/// The HAT-calling component; `App` builds it per request over the container's sessions.
pub struct HatCalls<'a, H, K> {
    pub http: &'a H,
    pub secrets: &'a K,
    pub sessions: &'a HatSessions,
    pub clock: &'a dyn Clock,
    /// Timeout of one attempt (`DEX_HAT_TIMEOUT_SECS`).
    pub timeout: Duration,
    /// The deadline of a request's HAT calls (`DEX_HAT_BUDGET_SECS`).
    pub budget: Duration,
}

impl<'a, H: HatHttp, K: SecretStore> HatCalls<'a, H, K> {
    /// A new deadline for one request's HAT calls.
    pub fn deadline(&self) -> Deadline {
        Deadline::after(self.budget)
    }

    /// Calls on `hat` as the platform user of its cluster (credentials in `secret_name`).
    pub fn session<'s>(
        &'s self,
        hat: &'s HatAddress,
        secret_name: &'s str,
        deadline: Deadline,
    ) -> HatSession<'s, 'a, H, K> {
        HatSession {
            calls: self,
            hat,
            secret_name,
            deadline,
        }
    }
}

/// The calls on one HAT within one request.
pub struct HatSession<'s, 'a, H, K> {
    calls: &'s HatCalls<'a, H, K>,
    hat: &'s HatAddress,
    secret_name: &'s str,
    deadline: Deadline,
}

/// A HAT user (HAT2.0's `User`), as DEX creates and finds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HatUser {
    pub user_id: String,
    pub email: String,
    /// The password hash, as given (HAT2.0 keeps it as the user's hash); HATs never send it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass: Option<String>,
    pub name: String,
    pub role: String,
    #[serde(default)]
    pub roles: Vec<UserRole>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRole {
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// What making sure of a user did on the HAT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnsuredUser {
    /// `POST /users/user` created it.
    Created,
    /// It existed: found and (re-)enabled, with this id.
    Enabled(String),
}

/// What `POST /api/v2.6/data-debit/{key}` answered.
#[derive(Debug)]
pub enum DebitCreated {
    Created(Value),
    /// 400: the HAT refused it (HAT2.0 refuses a key that exists).
    Refused(String),
    /// The request was sent and no answer came back (no answer in time, a dropped
    /// connection, an answer over the size limit): the debit may exist on the HAT.
    NoAnswer(DexError),
}

/// A call that failed, and whether the HAT may have acted on it anyway.
struct CallFailure {
    error: DexError,
    /// The request was sent and its answer never came back.
    no_answer: bool,
}

impl From<DexError> for CallFailure {
    fn from(error: DexError) -> Self {
        Self {
            error,
            no_answer: false,
        }
    }
}

impl<H: HatHttp, K: SecretStore> HatSession<'_, '_, H, K> {
    /// The HAT this session calls.
    pub fn hat(&self) -> &HatAddress {
        self.hat
    }

    fn fail(&self, step: &str, why: impl std::fmt::Display) -> DexError {
        DexError::BadGateway(format!("HAT {}: {step}: {why}", self.hat))
    }

    /// One call with retries on transport errors (a broken connection only when
    /// `retry_dropped`), within the deadline; any answer is returned.
    #[allow(clippy::too_many_arguments)]
    async fn attempt(
        &self,
        step: &str,
        method: HatMethod,
        path: &str,
        headers: Vec<(&'static str, String)>,
        body: Option<&Value>,
        body_limit: usize,
        retry_dropped: bool,
    ) -> Result<HatResponse, CallFailure> {
        let mut attempt = 0;
        // Whether an earlier attempt was sent and lost its answer.
        let mut lost = false;
        loop {
            attempt += 1;
            let remaining = self.deadline.remaining();
            if remaining < MIN_ATTEMPT {
                return Err(CallFailure {
                    error: DexError::GatewayTimeout(format!(
                        "HAT {}: {step}: no time left within the request's deadline for HAT calls",
                        self.hat
                    )),
                    no_answer: lost,
                });
            }
            let request = HatRequest {
                method,
                path: path.to_owned(),
                headers: headers.clone(),
                body: body.cloned(),
                timeout: self.calls.timeout.min(remaining),
                body_limit,
            };
            match self.calls.http.send(self.hat, &request).await {
                Ok(response) => return Ok(response),
                Err(e) if retryable(e, retry_dropped) && attempt < MAX_ATTEMPTS => {
                    lost |= e == HatTransport::Dropped;
                    let backoff = FIRST_BACKOFF * 2u32.pow(attempt - 1);
                    if self.deadline.remaining() <= backoff + MIN_ATTEMPT {
                        return Err(CallFailure {
                            error: self.transport(step, e),
                            no_answer: lost,
                        });
                    }
                    tokio::time::sleep(backoff).await;
                }
                Err(e) => {
                    let no_answer = lost
                        || matches!(
                            e,
                            HatTransport::Timeout | HatTransport::Dropped | HatTransport::TooLarge
                        );
                    return Err(CallFailure {
                        error: self.transport(step, e),
                        no_answer,
                    });
                }
            }
        }
    }

    fn transport(&self, step: &str, e: HatTransport) -> DexError {
        let hat = self.hat;
        match e {
            HatTransport::Timeout => {
                DexError::GatewayTimeout(format!("HAT {hat}: {step}: no answer in time"))
            }
            HatTransport::Unreachable => self.fail(step, "could not be reached"),
            HatTransport::Dropped => self.fail(step, "dropped the connection"),
            HatTransport::TooLarge => self.fail(step, "answered with a body over DEX's limit"),
            HatTransport::Forbidden => DexError::bad_request(format!(
                "HAT {hat} resolves only to private or reserved addresses"
            )),
        }
    }

    async fn credentials(&self) -> DexResult<Arc<PlatformCredentials>> {
        let cell = self.calls.sessions.credentials_cell(self.secret_name);
        cell.get_or_try_init(|| async {
            self.calls
                .secrets
                .get_json::<PlatformCredentials>(self.secret_name)
                .await?
                .map(Arc::new)
                .ok_or_else(|| {
                    // An operator's state, not a bug: the cluster's row outlived its secret
                    // (deleted by hand, or a restore of the table alone). Nothing DEX does
                    // fixes it, so the caller learns which HAT and the operator is told how.
                    tracing::error!(
                        secret = self.secret_name,
                        hat = %self.hat,
                        "a certified cluster has no platform credentials; certify it again"
                    );
                    DexError::Unavailable(format!(
                        "DEX holds no platform credentials for the cluster of HAT {}; \
                         an administrator must certify the cluster again",
                        self.hat
                    ))
                })
        })
        .await
        .cloned()
    }

    async fn login(&self) -> DexResult<CachedToken> {
        let credentials = self.credentials().await?;
        let encode = |v: &str| utf8_percent_encode(v, NON_ALPHANUMERIC).to_string();
        let headers = vec![
            ("username", encode(&credentials.username)),
            ("password", encode(&credentials.password)),
        ];
        let response = self
            .attempt(
                step::LOGIN,
                HatMethod::Get,
                "/users/access_token",
                headers,
                None,
                SMALL_BODY_LIMIT,
                true,
            )
            .await
            .map_err(|f| f.error)?;
        match response.status {
            200 => {}
            401 | 403 => {
                return Err(self.fail(
                    step::LOGIN,
                    format!(
                        "the HAT refused its cluster's platform credentials ({})",
                        response.status
                    ),
                ));
            }
            status => return Err(self.fail(step::LOGIN, format!("answered {status}"))),
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Login {
            access_token: String,
        }
        let token = serde_json::from_slice::<Login>(&response.body)
            .ok()
            .map(|l| l.access_token)
            .filter(|t| !t.is_empty() && t.len() <= 16 * 1024 && t.is_ascii())
            .ok_or_else(|| self.fail(step::LOGIN, "answered 200 without an accessToken"))?;
        let now = self.calls.clock.now().timestamp();
        let use_until = token_expiry(&token)
            .map(|exp| exp - TOKEN_EXPIRY_MARGIN_SECS)
            .unwrap_or(now + UNKNOWN_EXPIRY_SECS);
        Ok(CachedToken { token, use_until })
    }

    /// The cached token, or a new login when there is none or it expired. `stale`: the
    /// token the HAT just refused (401), which must not be handed out again.
    async fn token(&self, stale: Option<&str>) -> DexResult<String> {
        let slot = self.calls.sessions.token_slot(&self.hat.to_string());
        let mut cached = slot.lock().await;
        let now = self.calls.clock.now().timestamp();
        if let Some(c) = cached.as_ref()
            && c.use_until > now
            && stale != Some(c.token.as_str())
        {
            return Ok(c.token.clone());
        }
        *cached = None;
        let fresh = self.login().await?;
        let token = fresh.token.clone();
        *cached = Some(fresh);
        Ok(token)
    }

    /// A call as the platform user: the HAT token reused, one new login when the HAT answers
    /// 401. Any other answer is returned for the caller to judge.
    pub async fn call(
        &self,
        step: &str,
        method: HatMethod,
        path: &str,
        body: Option<&Value>,
        body_limit: usize,
    ) -> DexResult<HatResponse> {
        self.call_as_platform(step, method, path, body, body_limit, true)
            .await
            .map_err(|f| f.error)
    }

    async fn call_as_platform(
        &self,
        step: &str,
        method: HatMethod,
        path: &str,
        body: Option<&Value>,
        body_limit: usize,
        retry_dropped: bool,
    ) -> Result<HatResponse, CallFailure> {
        let mut token = self.token(None).await?;
        for round in 0..2 {
            let headers = vec![("x-auth-token", token.clone())];
            let response = self
                .attempt(step, method, path, headers, body, body_limit, retry_dropped)
                .await?;
            if response.status != 401 || round == 1 {
                return Ok(response);
            }
            token = self.token(Some(&token)).await?;
        }
        unreachable!("the loop returns in its second round")
    }

    /// `call`, and a 2xx answer required.
    pub async fn call_ok(
        &self,
        step: &str,
        method: HatMethod,
        path: &str,
        body: Option<&Value>,
        body_limit: usize,
    ) -> DexResult<HatResponse> {
        let response = self.call(step, method, path, body, body_limit).await?;
        if (200..300).contains(&response.status) {
            Ok(response)
        } else {
            Err(self.unexpected(step, &response))
        }
    }

    fn unexpected(&self, step: &str, response: &HatResponse) -> DexError {
        if (300..400).contains(&response.status) {
            self.fail(
                step,
                format!(
                    "answered with a redirect ({}); redirects are not followed",
                    response.status
                ),
            )
        } else {
            self.fail(step, format!("answered {}", response.status))
        }
    }

    /// `POST /users/user`: `Ok(true)` created, `Ok(false)` refused with 400 (HAT2.0's answer
    /// for a user that exists).
    pub async fn create_user(&self, user: &HatUser) -> DexResult<bool> {
        let body = serde_json::to_value(user).map_err(DexError::internal)?;
        let response = self
            .call(
                step::CREATE_USER,
                HatMethod::Post,
                "/users/user",
                Some(&body),
                SMALL_BODY_LIMIT,
            )
            .await?;
        match response.status {
            200..=299 => Ok(true),
            400 => Ok(false),
            _ => Err(self.unexpected(step::CREATE_USER, &response)),
        }
    }

    /// `GET /users/user`: the user whose `email` is `email` (HATs compare it without case).
    pub async fn find_user(&self, email: &str) -> DexResult<Option<HatUser>> {
        let response = self
            .call_ok(
                step::FIND_USER,
                HatMethod::Get,
                "/users/user",
                None,
                LIST_BODY_LIMIT,
            )
            .await?;
        let users: Vec<Value> = serde_json::from_slice(&response.body)
            .map_err(|_| self.fail(step::FIND_USER, "answered something else than a list"))?;
        Ok(users
            .into_iter()
            .filter_map(|u| serde_json::from_value::<HatUser>(u).ok())
            .find(|u| u.email.eq_ignore_ascii_case(email)))
    }

    async fn set_enabled(&self, user_id: &str, enable: bool) -> DexResult<()> {
        let (step, verb) = if enable {
            (step::ENABLE_USER, "enable")
        } else {
            (step::DISABLE_USER, "disable")
        };
        let id = utf8_percent_encode(user_id, SEGMENT);
        self.call_ok(
            step,
            HatMethod::Put,
            &format!("/users/user/{id}/{verb}"),
            None,
            SMALL_BODY_LIMIT,
        )
        .await
        .map(|_| ())
    }

    /// `PUT /users/user/{id}/enable`.
    pub async fn enable_user(&self, user_id: &str) -> DexResult<()> {
        self.set_enabled(user_id, true).await
    }

    /// `PUT /users/user/{id}/disable`.
    pub async fn disable_user(&self, user_id: &str) -> DexResult<()> {
        self.set_enabled(user_id, false).await
    }

    /// Makes sure `user` exists and is enabled: created, or (when the HAT refuses the
    /// creation) found by its email and enabled. Repeating it creates nothing new.
    pub async fn ensure_user(&self, user: &HatUser) -> DexResult<EnsuredUser> {
        if self.create_user(user).await? {
            return Ok(EnsuredUser::Created);
        }
        let existing = self.find_user(&user.email).await?.ok_or_else(|| {
            self.fail(
                step::CREATE_USER,
                format!(
                    "refused user {} (400) and has no user of that name",
                    user.email
                ),
            )
        })?;
        self.enable_user(&existing.user_id).await?;
        Ok(EnsuredUser::Enabled(existing.user_id))
    }

    /// `POST /api/v2.6/data-debit/{key}` with `body`. Not sent again after a broken
    /// connection (a second create of the same key is refused, which would hide that the
    /// first one worked): a request that lost its answer is `NoAnswer`.
    pub async fn create_data_debit(&self, key: &str, body: &Value) -> DexResult<DebitCreated> {
        let path = format!("/api/v2.6/data-debit/{}", utf8_percent_encode(key, SEGMENT));
        let response = match self
            .call_as_platform(
                step::CREATE_DATA_DEBIT,
                HatMethod::Post,
                &path,
                Some(body),
                SMALL_BODY_LIMIT,
                false,
            )
            .await
        {
            Ok(response) => response,
            Err(CallFailure {
                error,
                no_answer: true,
            }) => return Ok(DebitCreated::NoAnswer(error)),
            Err(failure) => return Err(failure.error),
        };
        match response.status {
            200..=299 => Ok(DebitCreated::Created(
                serde_json::from_slice(&response.body).unwrap_or(Value::Null),
            )),
            400 => Ok(DebitCreated::Refused(
                String::from_utf8_lossy(&response.body)
                    .chars()
                    .take(200)
                    .collect(),
            )),
            _ => Err(self.unexpected(step::CREATE_DATA_DEBIT, &response)),
        }
    }

    /// `GET /api/v2.6/data-debit/{key}`: the debit, `None` on 404.
    pub async fn get_data_debit(&self, key: &str) -> DexResult<Option<Value>> {
        let path = format!("/api/v2.6/data-debit/{}", utf8_percent_encode(key, SEGMENT));
        let response = self
            .call(
                step::GET_DATA_DEBIT,
                HatMethod::Get,
                &path,
                None,
                SMALL_BODY_LIMIT,
            )
            .await?;
        match response.status {
            200 => serde_json::from_slice(&response.body)
                .map(Some)
                .map_err(|_| self.fail(step::GET_DATA_DEBIT, "answered 200 without JSON")),
            404 => Ok(None),
            _ => Err(self.unexpected(step::GET_DATA_DEBIT, &response)),
        }
    }

    /// `POST /api/v2/application` with a legacy `HatService` definition.
    pub async fn update_application(&self, service: &Value) -> DexResult<()> {
        self.call_ok(
            step::UPDATE_APPLICATION,
            HatMethod::Post,
            "/api/v2/application",
            Some(service),
            SMALL_BODY_LIMIT,
        )
        .await
        .map(|_| ())
    }
}

/// Whether a transport error is worth another attempt: the connection could not be made
/// (nothing was sent), or it broke and the call may be sent twice.
fn retryable(e: HatTransport, retry_dropped: bool) -> bool {
    match e {
        HatTransport::Unreachable => true,
        HatTransport::Dropped => retry_dropped,
        _ => false,
    }
}

/// The `exp` claim of a JWT, read without verifying it (DEX only needs to know when the HAT
/// will stop taking it; the HAT is the judge).
fn token_expiry(token: &str) -> Option<i64> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice::<Value>(&bytes)
        .ok()?
        .get("exp")?
        .as_i64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_read_from_the_payload() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"exp":1700000000,"iss":"x"}"#);
        assert_eq!(token_expiry(&format!("h.{payload}.s")), Some(1_700_000_000));
        assert_eq!(token_expiry("not a token"), None);
        let no_exp = URL_SAFE_NO_PAD.encode(br#"{"iss":"x"}"#);
        assert_eq!(token_expiry(&format!("h.{no_exp}.s")), None);
    }

    #[test]
    fn users_serialise_as_hat_users() {
        let user = HatUser {
            user_id: "u1".into(),
            email: "plug".into(),
            pass: Some("$2a$10$x".into()),
            name: "plug".into(),
            role: "datacredit".into(),
            roles: vec![UserRole {
                role: "datacredit".into(),
                detail: Some("plug".into()),
            }],
        };
        let json = serde_json::to_value(&user).unwrap();
        assert_eq!(json["userId"], "u1");
        assert_eq!(json["roles"][0]["detail"], "plug");
        // A HAT's answer has no `pass` and may have no `roles`.
        let found: HatUser = serde_json::from_value(serde_json::json!({
            "userId": "u2", "email": "e", "name": "n", "role": "owner"
        }))
        .unwrap();
        assert!(found.pass.is_none() && found.roles.is_empty());
    }
}
