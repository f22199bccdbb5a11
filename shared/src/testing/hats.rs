//! The outbound HAT HTTP port, faked: each HAT serves the key the test set and a small HAT
//! API (platform login, users, data debits, applications) in memory, with failure switches
//! per route, and every call is recorded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::error::{DexError, DexResult};
use crate::hats::address::HatAddress;
use crate::hats::{HatHttp, HatMethod, HatRequest, HatResponse, HatTransport};

/// What a fake HAT answers to `GET /publickey`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HatReply {
    /// 200 with this body.
    Body(String),
    /// Another status (redirects are not followed by the real client either).
    Status(u16),
    /// No answer in time: the real client's 504.
    Timeout,
    /// No connection: the real client's 502.
    Unreachable,
}

/// A failure switch of one route of the HAT API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fail {
    /// Answers this status (body `{"error": ..}`).
    Status(u16),
    /// Takes this long before answering normally (a timeout when longer than the attempt's).
    Slow(Duration),
    /// No connection.
    Unreachable,
    /// The connection breaks before the answer (the request may have had its effect: see
    /// `Fail::DroppedAfter`).
    Dropped,
    /// The request has its effect, then the connection breaks before the answer.
    DroppedAfter,
}

/// One call DEX made, as the fake saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeCall {
    pub hat: String,
    pub method: &'static str,
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<Value>,
}

impl FakeCall {
    /// `"METHOD /path"`.
    pub fn route(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct FakeHat {
    /// `(username, password)` its platform login accepts.
    platform: Option<(String, String)>,
    /// Tokens it accepts.
    tokens: Vec<String>,
    logins: usize,
    users: Vec<Value>,
    /// userId -> enabled.
    enabled: HashMap<String, bool>,
    debits: HashMap<String, Value>,
    applications: Vec<Value>,
}

#[derive(Default)]
struct State {
    keys: HashMap<String, HatReply>,
    hats: HashMap<String, FakeHat>,
    /// (hat, "METHOD /path prefix") -> (failure, how many more times; None = always).
    failures: Vec<(String, String, Fail, Option<usize>)>,
    /// The `exp` of the tokens the fake mints (epoch seconds).
    token_exp: i64,
}

#[derive(Clone)]
pub struct FakeHats {
    state: Arc<Mutex<State>>,
    key_calls: Arc<Mutex<Vec<String>>>,
    calls: Arc<Mutex<Vec<FakeCall>>>,
}

impl Default for FakeHats {
    fn default() -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                token_exp: 4_000_000_000,
                ..State::default()
            })),
            key_calls: Arc::default(),
            calls: Arc::default(),
        }
    }
}

fn url_decode(v: &str) -> String {
    percent_encoding::percent_decode_str(v)
        .decode_utf8_lossy()
        .into_owned()
}

fn answer(status: u16, body: Value) -> Result<HatResponse, HatTransport> {
    Ok(HatResponse {
        status,
        body: body.to_string().into_bytes(),
    })
}

impl FakeHats {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("fake HATs")
    }

    /// Sets what `address` answers to `GET /publickey`; unknown HATs are unreachable.
    pub fn set(&self, address: &str, reply: HatReply) {
        self.lock().keys.insert(address.to_owned(), reply);
    }

    pub fn serve_key(&self, address: &str, pem: &str) {
        self.set(address, HatReply::Body(pem.to_owned()));
    }

    /// The addresses asked for their key, in order.
    pub fn calls(&self) -> Vec<String> {
        self.key_calls.lock().expect("calls").clone()
    }

    /// Makes `address` a HAT whose platform user is `username`/`password`.
    pub fn add_hat(&self, address: &str, username: &str, password: &str) {
        self.lock()
            .hats
            .entry(address.to_owned())
            .or_default()
            .platform = Some((username.to_owned(), password.to_owned()));
    }

    /// Fails requests to `address` whose `"METHOD /path"` starts with `route`, `times` times
    /// (`None`: until cleared).
    pub fn fail(&self, address: &str, route: &str, fail: Fail, times: Option<usize>) {
        self.lock()
            .failures
            .push((address.to_owned(), route.to_owned(), fail, times));
    }

    pub fn clear_failures(&self) {
        self.lock().failures.clear();
    }

    /// The HAT stops accepting every token it handed out (they answer 401).
    pub fn revoke_tokens(&self, address: &str) {
        if let Some(h) = self.lock().hats.get_mut(address) {
            h.tokens.clear();
        }
    }

    /// The `exp` of tokens minted from now on.
    pub fn set_token_exp(&self, exp: i64) {
        self.lock().token_exp = exp;
    }

    /// How many platform logins `address` accepted.
    pub fn logins(&self, address: &str) -> usize {
        self.lock().hats.get(address).map_or(0, |h| h.logins)
    }

    /// The users of `address` with their enabled flag.
    pub fn users(&self, address: &str) -> Vec<(Value, bool)> {
        let st = self.lock();
        st.hats.get(address).map_or(vec![], |h| {
            h.users
                .iter()
                .map(|u| {
                    let id = u["userId"].as_str().unwrap_or_default();
                    (u.clone(), h.enabled.get(id).copied().unwrap_or(false))
                })
                .collect()
        })
    }

    /// Disables a user the way the HAT's owner could.
    pub fn set_user_enabled(&self, address: &str, user_id: &str, enabled: bool) {
        if let Some(h) = self.lock().hats.get_mut(address) {
            h.enabled.insert(user_id.to_owned(), enabled);
        }
    }

    pub fn debits(&self, address: &str) -> HashMap<String, Value> {
        self.lock()
            .hats
            .get(address)
            .map_or(HashMap::new(), |h| h.debits.clone())
    }

    /// Every API call (not key fetches), in order.
    pub fn api_calls(&self) -> Vec<FakeCall> {
        self.calls.lock().expect("calls").clone()
    }

    pub fn api_calls_to(&self, address: &str) -> Vec<String> {
        self.api_calls()
            .into_iter()
            .filter(|c| c.hat == address)
            .map(|c| c.route())
            .collect()
    }

    /// The failure for this call, if one is set (and counts it).
    fn failure(&self, hat: &str, route: &str) -> Option<Fail> {
        let mut st = self.lock();
        let index = st
            .failures
            .iter()
            .rposition(|(h, r, _, times)| h == hat && route.starts_with(r) && times != &Some(0))?;
        let entry = &mut st.failures[index];
        if let Some(n) = entry.3.as_mut() {
            *n -= 1;
        }
        Some(entry.2.clone())
    }

    fn serve(&self, hat: &str, request: &HatRequest) -> Result<HatResponse, HatTransport> {
        let mut st = self.lock();
        let exp = st.token_exp;
        let Some(h) = st.hats.get_mut(hat) else {
            return answer(
                404,
                json!({"error": "Not Found", "message": "HAT unavailable"}),
            );
        };
        let header = |name: &str| {
            request
                .headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
        };
        let path = request.path.as_str();
        if request.method == HatMethod::Get && path == "/users/access_token" {
            let given = (
                header("username").map(|v| url_decode(&v)),
                header("password").map(|v| url_decode(&v)),
            );
            return match (&h.platform, given) {
                (Some((u, p)), (Some(gu), Some(gp))) if *u == gu && *p == gp => {
                    h.logins += 1;
                    let payload =
                        URL_SAFE_NO_PAD.encode(json!({"exp": exp, "iss": hat}).to_string());
                    let token = format!("eyJhbGciOiJSUzI1NiJ9.{payload}.sig{}", h.logins);
                    h.tokens.push(token.clone());
                    answer(200, json!({"accessToken": token, "userId": "platform"}))
                }
                _ => answer(401, json!({"error": "Unauthorized"})),
            };
        }
        if !header("x-auth-token").is_some_and(|t| h.tokens.contains(&t)) {
            return answer(401, json!({"error": "Unauthorized"}));
        }
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (request.method, segments.as_slice()) {
            (HatMethod::Post, ["users", "user"]) => {
                let user = request.body.clone().unwrap_or(Value::Null);
                let email = user["email"].as_str().unwrap_or_default().to_lowercase();
                let exists = h
                    .users
                    .iter()
                    .any(|u| u["email"].as_str().unwrap_or_default().to_lowercase() == email);
                if exists || email.is_empty() {
                    return answer(
                        400,
                        json!({"error": "Bad Request", "message": "User exists"}),
                    );
                }
                let id = user["userId"].as_str().unwrap_or_default().to_owned();
                h.enabled.insert(id, true);
                h.users.push(user.clone());
                answer(201, user)
            }
            (HatMethod::Get, ["users", "user"]) => {
                let listed: Vec<Value> = h
                    .users
                    .iter()
                    .map(|u| {
                        let mut u = u.clone();
                        u.as_object_mut().map(|o| o.remove("pass"));
                        u
                    })
                    .collect();
                answer(200, Value::Array(listed))
            }
            (HatMethod::Put, ["users", "user", id, verb @ ("enable" | "disable")]) => {
                let id = url_decode(id);
                if !h.enabled.contains_key(&id) {
                    return answer(404, json!({"error": "Not Found"}));
                }
                h.enabled.insert(id, *verb == "enable");
                answer(200, json!({"message": "done"}))
            }
            (HatMethod::Post, ["api", "v2.6", "data-debit", key]) => {
                let key = url_decode(key);
                if h.debits.contains_key(&key) {
                    return answer(400, json!({"error": "Bad Request", "message": "exists"}));
                }
                let debit = request.body.clone().unwrap_or(Value::Null);
                h.debits.insert(key, debit.clone());
                answer(201, debit)
            }
            (HatMethod::Get, ["api", "v2.6", "data-debit", key]) => {
                match h.debits.get(&url_decode(key)) {
                    Some(d) => answer(200, d.clone()),
                    None => answer(404, json!({"error": "Not Found"})),
                }
            }
            (HatMethod::Post, ["api", "v2", "application"]) => {
                h.applications
                    .push(request.body.clone().unwrap_or(Value::Null));
                answer(200, json!({"message": "updated"}))
            }
            _ => answer(404, json!({"error": "Not Found"})),
        }
    }
}

impl HatHttp for FakeHats {
    async fn fetch_public_key(&self, hat: &HatAddress) -> DexResult<String> {
        let address = hat.to_string();
        self.key_calls.lock().expect("calls").push(address.clone());
        let reply = self.lock().keys.get(&address).cloned();
        // The same errors as `HatClient` for the same failures.
        match reply.unwrap_or(HatReply::Unreachable) {
            HatReply::Body(text) => Ok(text),
            HatReply::Status(status) if (300..400).contains(&status) => {
                Err(DexError::BadGateway(format!(
                    "HAT {hat} answered /publickey with a redirect ({status}); redirects are not followed"
                )))
            }
            HatReply::Status(status) => Err(DexError::BadGateway(format!(
                "HAT {hat} answered /publickey with {status}"
            ))),
            HatReply::Timeout => Err(DexError::GatewayTimeout(format!(
                "HAT {hat} did not answer in time when fetching its public key"
            ))),
            HatReply::Unreachable => Err(DexError::BadGateway(format!(
                "HAT {hat} could not be reached when fetching its public key"
            ))),
        }
    }

    async fn send(
        &self,
        hat: &HatAddress,
        request: &HatRequest,
    ) -> Result<HatResponse, HatTransport> {
        tokio::task::yield_now().await;
        let address = hat.to_string();
        self.calls.lock().expect("calls").push(FakeCall {
            hat: address.clone(),
            method: request.method.as_str(),
            path: request.path.clone(),
            headers: request.headers.clone(),
            body: request.body.clone(),
        });
        let route = format!("{} {}", request.method.as_str(), request.path);
        match self.failure(&address, &route) {
            None => {}
            Some(Fail::Status(status)) => {
                return answer(status, json!({"error": "scripted failure"}));
            }
            Some(Fail::Slow(delay)) => {
                if delay >= request.timeout {
                    tokio::time::sleep(request.timeout).await;
                    return Err(HatTransport::Timeout);
                }
                tokio::time::sleep(delay).await;
            }
            Some(Fail::Unreachable) => return Err(HatTransport::Unreachable),
            Some(Fail::Dropped) => return Err(HatTransport::Dropped),
            Some(Fail::DroppedAfter) => {
                let _ = self.serve(&address, request);
                return Err(HatTransport::Dropped);
            }
        }
        let response = self.serve(&address, request)?;
        if response.body.len() > request.body_limit {
            return Err(HatTransport::TooLarge);
        }
        Ok(response)
    }
}
