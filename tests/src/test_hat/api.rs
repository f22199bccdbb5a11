//! The HAT API DEX calls as the platform user (`docs/hats.md` §4): `POST/GET /users/user`,
//! `PUT /users/user/{id}/enable|disable`, `POST/GET /api/v2.6/data-debit/{id}`,
//! `POST /api/v2/application`, each answering like HAT2.0 and each with failure switches
//! (a status, a delay, a dropped connection), plus the plug users' own login.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

use super::cluster::{HatInner, TestHat, lock};

/// A failure switch of one route of a test HAT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteFail {
    /// Answers this status with `{"error", "message"}`, doing nothing.
    Status(u16),
    /// Waits this long, then answers normally.
    Slow(Duration),
    /// Does what the request asks, then waits this long before answering (a HAT that acted
    /// and whose answer is late: whoever gives up waiting cannot tell it acted).
    SlowAfter(Duration),
    /// Closes the connection without an answer, doing nothing.
    Drop,
    /// Does what the request asks, then closes the connection without an answer.
    DropAfter,
}

/// A user of a test HAT as it keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HatUserRecord {
    /// The user JSON as DEX sent it (`pass` included).
    pub user: Value,
    pub enabled: bool,
}

impl HatUserRecord {
    #[must_use]
    pub fn id(&self) -> &str {
        self.user["userId"].as_str().unwrap_or_default()
    }

    #[must_use]
    pub fn email(&self) -> &str {
        self.user["email"].as_str().unwrap_or_default()
    }
}

#[derive(Default)]
pub(crate) struct ApiState {
    pub(crate) users: Vec<HatUserRecord>,
    pub(crate) debits: HashMap<String, Value>,
    pub(crate) applications: Vec<Value>,
    /// ("METHOD /path prefix", failure, remaining times or None for always).
    pub(crate) failures: Vec<(String, RouteFail, Option<usize>)>,
    /// Login tokens handed out before this index are refused (401).
    pub(crate) revoked_before: usize,
}

/// A status and its JSON body.
type Outcome = (u16, Value);

/// The failure switch for `route`, counted.
pub(crate) fn failure(hat: &HatInner, route: &str) -> Option<RouteFail> {
    let mut state = lock(&hat.state);
    let failures = &mut state.api.failures;
    let index = failures
        .iter()
        .rposition(|(r, _, times)| route.starts_with(r.as_str()) && *times != Some(0))?;
    if let Some(n) = failures[index].2.as_mut() {
        *n -= 1;
    }
    Some(failures[index].1.clone())
}

/// Whether `token` is a login token of this HAT that is still accepted.
pub(crate) fn token_valid(hat: &HatInner, token: Option<&str>) -> bool {
    let state = lock(&hat.state);
    token.is_some_and(|t| {
        state
            .login_tokens
            .iter()
            .skip(state.api.revoked_before)
            .any(|issued| issued == t)
    })
}

/// A plug or offer user logging in with its own password (checked against its bcrypt hash).
pub(crate) fn user_login(hat: &HatInner, username: &str, password: &str) -> bool {
    let state = lock(&hat.state);
    state.api.users.iter().any(|u| {
        u.enabled
            && u.email().eq_ignore_ascii_case(username)
            && u.user["pass"]
                .as_str()
                .is_some_and(|hash| bcrypt::verify(password, hash).unwrap_or(false))
    })
}

fn error(status: u16, message: &str) -> Outcome {
    let error = match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Error",
    };
    (status, json!({ "error": error, "message": message }))
}

/// The platform user's API: `None` when the path is not one of it; 401 without a valid
/// login token (`authorised`).
pub(crate) fn serve(
    hat: &HatInner,
    authorised: bool,
    method: &str,
    path: &str,
    body: &[u8],
) -> Option<Outcome> {
    // Path segments are percent-decoded, as Play's router does.
    let decoded: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let segments: Vec<&str> = decoded.iter().map(String::as_str).collect();
    let known = matches!(
        (method, segments.as_slice()),
        ("POST" | "GET", ["users", "user"])
            | ("PUT", ["users", "user", _, "enable" | "disable"])
            | ("POST" | "GET", ["api", "v2.6", "data-debit", _])
            | ("POST", ["api", "v2", "application"])
    );
    if !known {
        return None;
    }
    if !authorised {
        return Some(error(401, "Not authenticated"));
    }
    let json_body = || serde_json::from_slice::<Value>(body).ok();
    let mut state = lock(&hat.state);
    let api = &mut state.api;
    let outcome = match (method, segments.as_slice()) {
        ("POST", ["users", "user"]) => {
            let Some(user) = json_body().filter(Value::is_object) else {
                return Some(error(400, "Invalid user"));
            };
            let email = user["email"].as_str().unwrap_or_default();
            let role = user["role"].as_str().unwrap_or_default();
            if email.is_empty() || Uuid::parse_str(user["userId"].as_str().unwrap_or("")).is_err() {
                return Some(error(400, "Invalid user"));
            }
            if ["owner", "platform"].contains(&role) {
                return Some(error(400, "Privileged role"));
            }
            if api
                .users
                .iter()
                .any(|u| u.email().eq_ignore_ascii_case(email))
            {
                return Some(error(400, "User exists"));
            }
            api.users.push(HatUserRecord {
                user: user.clone(),
                enabled: true,
            });
            let mut clean = user;
            clean.as_object_mut().map(|o| o.remove("pass"));
            (201, clean)
        }
        ("GET", ["users", "user"]) => {
            let users: Vec<Value> = api
                .users
                .iter()
                .map(|u| {
                    let mut clean = u.user.clone();
                    clean.as_object_mut().map(|o| o.remove("pass"));
                    clean
                })
                .collect();
            (200, Value::Array(users))
        }
        ("PUT", ["users", "user", id, verb @ ("enable" | "disable")]) => {
            match api.users.iter_mut().find(|u| u.id() == *id) {
                None => error(404, "No such user"),
                Some(u) => {
                    u.enabled = *verb == "enable";
                    let mut clean = u.user.clone();
                    clean.as_object_mut().map(|o| o.remove("pass"));
                    (200, clean)
                }
            }
        }
        ("POST", ["api", "v2.6", "data-debit", key]) => {
            let Some(debit) = json_body().filter(Value::is_object) else {
                return Some(error(400, "Invalid data debit"));
            };
            if api.debits.contains_key(*key) {
                return Some(error(400, "Data debit exists"));
            }
            api.debits.insert((*key).to_owned(), debit.clone());
            (201, debit)
        }
        ("GET", ["api", "v2.6", "data-debit", key]) => match api.debits.get(*key) {
            Some(debit) => (200, debit.clone()),
            None => error(404, "No such data debit"),
        },
        ("POST", ["api", "v2", "application"]) => {
            let Some(app) = json_body() else {
                return Some(error(400, "Invalid application"));
            };
            api.applications.push(app);
            (200, json!({ "message": "Application updated" }))
        }
        _ => return None,
    };
    Some(outcome)
}

impl TestHat {
    /// Switches a failure on for requests whose `"METHOD /path"` starts with `route`
    /// (e.g. `"POST /users/user"`, `"GET /users/access_token"`), `times` times (`None`:
    /// until [`clear_failures`](Self::clear_failures)). The most recent matching switch wins.
    pub fn fail_route(&self, route: &str, fail: RouteFail, times: Option<usize>) {
        lock(&self.inner().state)
            .api
            .failures
            .push((route.to_owned(), fail, times));
    }

    pub fn clear_failures(&self) {
        lock(&self.inner().state).api.failures.clear();
    }

    /// Refuses (401) every login token handed out so far, as a HAT whose key or session
    /// store changed does.
    pub fn revoke_login_tokens(&self) {
        let mut state = lock(&self.inner().state);
        state.api.revoked_before = state.login_tokens.len();
    }

    /// The HAT's users (created through `POST /users/user`), oldest first.
    #[must_use]
    pub fn users(&self) -> Vec<HatUserRecord> {
        lock(&self.inner().state).api.users.clone()
    }

    /// Enables or disables a user, as the HAT's owner could.
    pub fn set_user_enabled(&self, user_id: &str, enabled: bool) {
        if let Some(u) = lock(&self.inner().state)
            .api
            .users
            .iter_mut()
            .find(|u| u.id() == user_id)
        {
            u.enabled = enabled;
        }
    }

    /// The data debits created on the HAT, by key.
    #[must_use]
    pub fn data_debits(&self) -> HashMap<String, Value> {
        lock(&self.inner().state).api.debits.clone()
    }

    /// The legacy application definitions posted to the HAT.
    #[must_use]
    pub fn applications(&self) -> Vec<Value> {
        lock(&self.inner().state).api.applications.clone()
    }
}
