//! Helpers for the end-to-end and store suites: where the running DEX is, an HTTP client
//! for it, accounts made on the fly, direct access to the same table and secrets, and the
//! one assertion every error response must pass (docs/decisions.md §2).
//!
//! Everything here reads the environment `make test` (scripts/test.sh) sets up: DEX_TEST_URL
//! (the served functions), DEX_PUBLIC_URL, DEX_TABLE, the AWS_* endpoint variables and
//! DEX_LOCAL_ADMIN_USERNAME/PASSWORD. Without it the tests fail with a message saying so;
//! they never skip silently.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;
use tokio::sync::OnceCell;

/// The base URL of the DEX under test (no trailing slash).
pub fn dex_url() -> String {
    match std::env::var("DEX_TEST_URL") {
        Ok(url) if !url.trim().is_empty() => url.trim().trim_end_matches('/').to_owned(),
        _ => panic!(
            "DEX_TEST_URL is not set: these tests need the local DEX stack (DynamoDB Local, moto, \
             `cargo lambda watch`). Run them with `make test`, which starts the stack and sets \
             DEX_TEST_URL, DEX_PUBLIC_URL, DEX_TABLE and the AWS_* endpoint variables."
        ),
    }
}

/// DEX's configured public URL (the `iss` of its tokens), without a trailing slash.
pub fn public_url() -> String {
    config().public_url
}

/// The bootstrap admin's credentials (`dexctl ensure-admin` creates that account).
pub fn admin_credentials() -> (String, String) {
    let username =
        std::env::var("DEX_LOCAL_ADMIN_USERNAME").unwrap_or_else(|_| "admin@dex.local".into());
    let password =
        std::env::var("DEX_LOCAL_ADMIN_PASSWORD").unwrap_or_else(|_| "dex-local-admin".into());
    (username, password)
}

/// The configuration the functions run with, read from the same environment.
pub fn config() -> dex::config::Config {
    let _ = dex_url();
    dex::config::Config::from_env().unwrap_or_else(|e| {
        panic!("{e}: run the tests with `make test`, which sets DEX's environment")
    })
}

/// The domain `App` (store, secrets, signing keys) built exactly as a function builds it.
pub async fn app() -> dex_lambda::App {
    let config = config();
    let (dynamodb, secrets) = dex_aws::aws_clients().await;
    dex_lambda::App::with_clients(config, dynamodb, secrets)
}

/// The DynamoDB store the functions use (DEX_TABLE, AWS_ENDPOINT_URL_DYNAMODB), built as
/// `App` builds it.
pub async fn store() -> dex_aws::dynamo::DynamoStore {
    let config = config();
    let (dynamodb, _) = dex_aws::aws_clients().await;
    dex_aws::dynamo::DynamoStore::new(
        dynamodb,
        config.table,
        std::sync::Arc::new(dex::ports::SystemClock),
        std::sync::Arc::new(dex::ports::SystemRandom),
    )
}

/// A DynamoStore on a new table of its own (`<prefix>-<random>`), for tests whose items must
/// not be seen by the rest of the suite or the fuzzer (ids checked from 1, offers whose
/// sealed password is a placeholder). Delete it with `drop_table` when done.
pub async fn fresh_store(prefix: &str) -> dex_aws::dynamo::DynamoStore {
    let shared = store().await;
    let table = format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    dex_aws::dynamo::schema::ensure_table(shared.client(), &table)
        .await
        .expect("a table of the test's own");
    dex_aws::dynamo::DynamoStore::new(
        shared.client().clone(),
        table,
        std::sync::Arc::new(dex::ports::SystemClock),
        std::sync::Arc::new(dex::ports::SystemRandom),
    )
}

/// Deletes the table of a `fresh_store` (best effort: DynamoDB Local is thrown away anyway).
pub async fn drop_table(store: &dex_aws::dynamo::DynamoStore) {
    let table = store.table().to_owned();
    let _ = store.client().delete_table().table_name(table).send().await;
}

/// Runs each body of a store contract on both stores: `memory::<name>` on the in-memory
/// `MemoryStore` and `dynamo::<name>` on DynamoDB Local, the judge. Each body is an
/// `async fn <name>(store: impl ...)` beside the call. With `table: "<prefix>";` first, each
/// DynamoDB body gets a table of its own (`fresh_store`), dropped when it is done: for items
/// the rest of the suite and the fuzzer must not see. Multi-threaded runtimes, so that the
/// bodies that race requests really race.
#[macro_export]
macro_rules! store_contract {
    (table: $prefix:literal; $($name:ident),* $(,)?) => {
        $crate::store_contract!(@memory $($name),*);
        mod dynamo {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let store = $crate::support::fresh_store($prefix).await;
                    super::$name(store.clone()).await;
                    $crate::support::drop_table(&store).await;
                }
            )*
        }
    };
    (@memory $($name:ident),*) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(::dex::testing::MemoryStore::default()).await
                }
            )*
        }
    };
    ($($name:ident),* $(,)?) => {
        $crate::store_contract!(@memory $($name),*);
        mod dynamo {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::support::store().await).await
                }
            )*
        }
    };
}

/// The Secrets Manager adapter the functions use (AWS_ENDPOINT_URL_SECRETS_MANAGER).
pub async fn secrets() -> dex_aws::secrets_manager::SecretsManager {
    let (_, secrets) = dex_aws::aws_clients().await;
    dex_aws::secrets_manager::SecretsManager::new(secrets)
}

/// Percent-encodes everything but RFC 3986 unreserved characters, as HAT clients encode the
/// `username`/`password` headers.
pub fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A client for the DEX under test. Paths start with `/`; `token` goes in `X-Auth-Token`.
#[derive(Clone)]
pub struct Dex {
    pub base: String,
    pub http: reqwest::Client,
}

impl Default for Dex {
    fn default() -> Self {
        Self::new()
    }
}

impl Dex {
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            // `cargo lambda watch` compiles a function on its first request after a change.
            .timeout(Duration::from_secs(600))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("reqwest client");
        Self {
            base: dex_url(),
            http,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request builder for anything the helpers below do not cover.
    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let mut request = self.http.request(method, self.url(path));
        if let Some(token) = token {
            request = request.header("X-Auth-Token", token);
        }
        request
    }

    async fn send(request: RequestBuilder, what: String) -> Response {
        Self::send_again_if_lost(request, what, false).await
    }

    /// Sends `request`; when it has no side effects (GET, HEAD, or `idempotent`) and
    /// `cargo lambda watch` lost the function's answer, sends it again.
    ///
    /// Why: cargo-lambda 1.9.2's Runtime API sometimes drops a large response body the
    /// function posted (its handler answers the function before the body has been read) and
    /// answers 500 with an http-api-problem body, which DEX itself never produces. Measured
    /// here: about 2 in 100 answers of 240 KB are lost that way, none of 400 small ones; the
    /// function's own log shows 200 for each. AWS does not behave like this.
    async fn send_again_if_lost(
        request: RequestBuilder,
        what: String,
        idempotent: bool,
    ) -> Response {
        const ATTEMPTS: usize = 5;
        let (client, request) = request.build_split();
        let request = request.unwrap_or_else(|e| panic!("{what}: invalid request ({e})"));
        let safe = idempotent || matches!(*request.method(), Method::GET | Method::HEAD);
        let execute = |request| async {
            client.execute(request).await.unwrap_or_else(|e| {
                panic!("{what}: DEX did not answer ({e}); is the stack running (`make test`)?")
            })
        };
        for attempt in 1..ATTEMPTS {
            let Some(copy) = safe.then(|| request.try_clone()).flatten() else {
                break;
            };
            let response = execute(copy).await;
            if response.status() != StatusCode::INTERNAL_SERVER_ERROR {
                return response;
            }
            let headers = response.headers().clone();
            let body = response.bytes().await.unwrap_or_default();
            if !is_lost_by_the_emulator(&body) {
                let mut rebuilt = hyper::Response::new(body);
                *rebuilt.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                *rebuilt.headers_mut() = headers;
                return Response::from(rebuilt);
            }
            eprintln!(
                "{what}: cargo lambda watch lost the answer (attempt {attempt}); sending it again"
            );
        }
        execute(request).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        Self::send(
            self.request(Method::GET, path, token),
            format!("GET {path}"),
        )
        .await
    }

    pub async fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        Self::send(
            self.request(Method::POST, path, token).json(body),
            format!("POST {path}"),
        )
        .await
    }

    /// A POST whose repetition changes nothing (e.g. merging the same descriptions): sent
    /// again when the local emulator loses the answer, like a GET.
    pub async fn post_json_idempotent(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> Response {
        Self::send_again_if_lost(
            self.request(Method::POST, path, token).json(body),
            format!("POST {path}"),
            true,
        )
        .await
    }

    pub async fn put_json(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        Self::send(
            self.request(Method::PUT, path, token).json(body),
            format!("PUT {path}"),
        )
        .await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Response {
        Self::send(
            self.request(Method::DELETE, path, token),
            format!("DELETE {path}"),
        )
        .await
    }

    /// A raw body with a JSON content type (for malformed or oversized bodies).
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> Response {
        let request = self
            .request(method.clone(), path, token)
            .header("content-type", "application/json")
            .body(body);
        Self::send(request, format!("{method} {path}")).await
    }

    /// `GET /api/users/access_token` with URL-encoded `username`/`password` headers.
    pub async fn login(&self, username: &str, password: &str) -> Response {
        self.login_raw(Some(&url_encode(username)), Some(&url_encode(password)))
            .await
    }

    /// `GET /api/users/access_token` with the header values exactly as given (absent = not sent).
    pub async fn login_raw(&self, username: Option<&str>, password: Option<&str>) -> Response {
        let mut request = self.request(Method::GET, "/api/users/access_token", None);
        if let Some(u) = username {
            request = request.header("username", u);
        }
        if let Some(p) = password {
            request = request.header("password", p);
        }
        Self::send(request, "GET /api/users/access_token".into()).await
    }

    /// Logs in and returns the token, failing the test when DEX refuses.
    pub async fn token(&self, username: &str, password: &str) -> String {
        let resp = self.login(username, password).await;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert_eq!(status, StatusCode::OK, "login as {username} failed: {text}");
        let body: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("login answer is not JSON ({e}): {text}"));
        body["accessToken"]
            .as_str()
            .unwrap_or_else(|| panic!("login answer has no accessToken: {text}"))
            .to_owned()
    }
}

/// `GET /api/users/access_token` as `username`/`password` (URL-encoded headers).
pub async fn login(username: &str, password: &str) -> Response {
    Dex::new().login(username, password).await
}

static ADMIN_TOKEN: OnceCell<String> = OnceCell::const_new();

/// A token of the bootstrap admin (fetched once per test binary).
pub async fn admin_token() -> String {
    ADMIN_TOKEN
        .get_or_init(|| async {
            let (username, password) = admin_credentials();
            Dex::new().token(&username, &password).await
        })
        .await
        .clone()
}

/// A unique username for one test (`<uuid>@dex.test`, mixed case to exercise normalisation
/// only where a test asks for it).
pub fn unique_username(prefix: &str) -> String {
    format!("{prefix}-{}@dex.test", uuid::Uuid::new_v4().simple())
}

/// A password that satisfies DEX's policy.
pub fn unique_password() -> String {
    format!("pw-{}", uuid::Uuid::new_v4().simple())
}

/// Creates an account through the API as `admin_token`; returns `(account_id, username,
/// password)`.
pub async fn create_account(admin_token: &str, roles: &[&str]) -> (String, String, String) {
    let username = unique_username("acct");
    let password = unique_password();
    let resp = Dex::new()
        .post_json(
            "/api/admin/accounts",
            Some(admin_token),
            &serde_json::json!({ "username": username, "password": password, "roles": roles }),
        )
        .await;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    assert_eq!(
        status,
        StatusCode::CREATED,
        "creating account {username} with roles {roles:?} failed: {text}"
    );
    let body: Value = serde_json::from_str(&text).expect("account creation answers JSON");
    let id = body["accountId"]
        .as_str()
        .unwrap_or_else(|| panic!("no accountId in {text}"))
        .to_owned();
    (id, username, password)
}

/// Things no response body may ever contain (docs/decisions.md §2).
const FORBIDDEN_IN_BODIES: &[&str] = &[
    "$argon2",
    "passwordHash",
    "password_hash",
    "PRIVATE KEY",
    "privateKeyPem",
    "panicked at",
    "stack backtrace",
    "RUST_BACKTRACE",
    ".rs:",
    "DexError",
    "Internal(",
    "SdkError",
    "DisplayErrorContext",
];

/// Fails when `body` contains a stack trace, a `Debug` dump, a password hash or a private
/// key. Call it on every body a test reads.
pub fn assert_clean(body: &str) {
    for bad in FORBIDDEN_IN_BODIES {
        assert!(
            !body.contains(bad),
            "response body contains {bad:?}: {body}"
        );
    }
}

/// The answer `cargo lambda watch` gives when it lost the function's response: an
/// http-api-problem document (DEX's errors are `{"message", "cause"}`).
fn is_lost_by_the_emulator(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body).is_ok_and(|v| {
        v["type"] == "https://httpstatuses.com/500"
            && v["status"] == 500
            && v.get("message").is_none()
    })
}

/// The response's content type ("" when absent or not text).
pub fn content_type(resp: &Response) -> String {
    resp.headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Reads a response as JSON after checking its status and that it is clean.
pub async fn expect_json(resp: Response, status: u16) -> Value {
    let actual = resp.status().as_u16();
    let url = resp.url().clone();
    let text = resp.text().await.unwrap_or_default();
    assert_clean(&text);
    assert_eq!(
        actual, status,
        "{url}: expected {status}, got {actual}: {text}"
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: body is not JSON ({e}): {text}"))
}

/// Checks an error response: the status, the JSON shape `{"message", "cause", "details"?}`
/// with non-empty strings, `cause` containing `cause_contains` (case-insensitive; "" for
/// any), and no leaked internals. Returns the body.
pub async fn assert_error(resp: Response, status: u16, cause_contains: &str) -> Value {
    let actual = resp.status().as_u16();
    let url = resp.url().clone();
    let content_type = content_type(&resp);
    let text = resp.text().await.unwrap_or_default();
    assert_eq!(
        actual, status,
        "{url}: expected {status}, got {actual}: {text}"
    );
    assert_clean(&text);
    assert!(
        content_type.starts_with("application/json"),
        "{url}: error content-type is {content_type:?}: {text}"
    );
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{url}: error body is not JSON ({e}): {text}"));
    let object = body
        .as_object()
        .unwrap_or_else(|| panic!("{url}: error body is not an object: {text}"));
    for key in object.keys() {
        assert!(
            ["message", "cause", "details"].contains(&key.as_str()),
            "{url}: unexpected field {key:?}: {text}"
        );
    }
    for key in ["message", "cause"] {
        let value = object.get(key).and_then(Value::as_str);
        assert!(
            value.is_some_and(|v| !v.trim().is_empty()),
            "{url}: {key:?} missing or empty: {text}"
        );
    }
    if let Some(details) = object.get("details") {
        let list = details
            .as_array()
            .unwrap_or_else(|| panic!("{url}: details is not an array: {text}"));
        assert!(
            !list.is_empty() && list.iter().all(Value::is_string),
            "{url}: details must be strings: {text}"
        );
    }
    let cause = body["cause"].as_str().unwrap_or_default();
    assert!(
        cause
            .to_lowercase()
            .contains(&cause_contains.to_lowercase()),
        "{url}: cause {cause:?} does not mention {cause_contains:?}"
    );
    body
}

/// The environment the Lambda service gives a function, pointed at a fake Runtime API on
/// `runtime_api` (the cold-start and hardening suites run binaries against one).
pub fn lambda_runtime_env(
    runtime_api: std::net::SocketAddr,
    function: &str,
) -> Vec<(String, String)> {
    [
        ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME", function.to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256".to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "1".to_owned()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{function}"),
        ),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "test".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::is_lost_by_the_emulator;

    #[test]
    fn only_the_emulators_problem_document_counts_as_a_lost_answer() {
        let lost = br#"{"type":"https://httpstatuses.com/500","status":500,"title":"Internal Server Error"}"#;
        assert!(is_lost_by_the_emulator(lost));
        let dex_error = br#"{"message":"Internal error","cause":"see the logs"}"#;
        assert!(!is_lost_by_the_emulator(dex_error));
        let panic_report = br#"{"errorType":"&str","errorMessage":"boom"}"#;
        assert!(!is_lost_by_the_emulator(panic_report));
        assert!(!is_lost_by_the_emulator(b"Internal Server Error"));
    }
}
