//! The HTTP edge shared by every function: request helpers, JSON responses, the body limit,
//! logging, and the one place where a `DexError` becomes an HTTP response.

use std::future::Future;
use std::time::Instant;

pub use lambda_http::Error;
pub use lambda_http::http::HeaderValue;
pub use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response, service_fn};
use serde::Serialize;
use serde::de::DeserializeOwned;

use dex::error::{DexError, DexResult};
use dex::page::{Page, PageRequest};

/// The default request body limit; endpoints that take large batches pass their own.
pub const DEFAULT_BODY_LIMIT: usize = 256 * 1024;

pub type HttpResponse = Response<Body>;

/// A request as handlers see it.
pub struct ApiRequest {
    inner: Request,
}

impl ApiRequest {
    pub fn new(inner: Request) -> Self {
        Self { inner }
    }

    pub fn method(&self) -> &str {
        self.inner.method().as_str()
    }

    /// A header's value as text (header names are case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.inner.headers().get(name).and_then(|v| v.to_str().ok())
    }

    /// A header's value, URL-decoded (the HAT convention for `username`/`password`).
    pub fn decoded_header(&self, name: &str) -> Option<String> {
        let raw = self.header(name)?;
        percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .ok()
            .map(|s| s.into_owned())
    }

    /// The client's address as API Gateway saw it (the request context's `sourceIp`, never a
    /// header a client could set).
    pub fn source_ip(&self) -> Option<&str> {
        match self.inner.request_context_ref()? {
            lambda_http::request::RequestContext::ApiGatewayV2(context) => {
                context.http.source_ip.as_deref()
            }
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// The `X-Auth-Token` header, if non-empty.
    pub fn auth_token(&self) -> Option<&str> {
        self.header("x-auth-token")
            .map(str::trim)
            .filter(|t| !t.is_empty())
    }

    /// A path parameter of the route (`{accountId}`), URL-decoded; a 400 naming it when absent.
    pub fn path(&self, name: &str) -> DexResult<String> {
        self.path_param(name)
            .ok_or_else(|| DexError::bad_request(format!("{name} is required")))
    }

    /// The `limit` and `cursor` query values of a listing; a bad limit is a 400.
    pub fn page(&self) -> DexResult<PageRequest> {
        PageRequest::parse(
            self.query("limit").as_deref(),
            self.query("cursor").as_deref(),
        )
    }

    pub fn path_param(&self, name: &str) -> Option<String> {
        self.inner
            .path_parameters_ref()
            .and_then(|p| p.first(name))
            .map(|v| {
                percent_encoding::percent_decode_str(v)
                    .decode_utf8_lossy()
                    .into_owned()
            })
    }

    pub fn query(&self, name: &str) -> Option<String> {
        self.inner
            .query_string_parameters_ref()
            .and_then(|q| q.first(name))
            .map(str::to_owned)
    }

    /// The request's path as routed (the canonical path: the default route rewrites aliases).
    pub fn uri_path(&self) -> &str {
        self.inner.uri().path()
    }

    pub fn body(&self) -> &[u8] {
        self.inner.body().as_ref()
    }

    /// The body parsed as JSON; unknown fields are ignored, malformed or too deeply nested
    /// input is a 400 that says where (`dex::limits::parse_json`).
    pub fn json<T: DeserializeOwned>(&self) -> DexResult<T> {
        let body = self.body();
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(DexError::bad_request("a JSON body is required"));
        }
        dex::limits::parse_json(body, "JSON body")
    }
}

pub fn json<T: Serialize>(status: StatusCode, body: &T) -> HttpResponse {
    match serde_json::to_vec(body) {
        Ok(bytes) => Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Body::Binary(bytes))
            .expect("static response parts"),
        Err(e) => error_response(&DexError::internal(e)),
    }
}

/// An already serialised JSON body (e.g. a read model's snapshot).
pub fn json_bytes(status: StatusCode, body: &[u8]) -> HttpResponse {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::Binary(body.to_vec()))
        .expect("static response parts")
}

/// A page of a listing, each item shown through `view` (e.g. `AccountView::from`).
pub fn page<'a, T, V: Serialize>(
    status: StatusCode,
    page: &'a Page<T>,
    view: impl Fn(&'a T) -> V,
) -> HttpResponse {
    json(status, &page.map(view))
}

/// A JSON read with a validator: `ETag` over the body, and 304 without a body when the
/// request's `If-None-Match` names it (a HAT revalidating its cached registry).
pub fn json_with_etag<T: Serialize>(request: &ApiRequest, body: &T) -> HttpResponse {
    let bytes = match serde_json::to_vec(body) {
        Ok(bytes) => bytes,
        Err(e) => return error_response(&DexError::internal(e)),
    };
    let etag = dex::apps::etag(&bytes);
    let fresh = request
        .header("if-none-match")
        .is_some_and(|tags| dex::apps::matches_etag(tags, &etag));
    let mut response = if fresh {
        Response::builder()
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::Empty)
            .expect("static response parts")
    } else {
        json_bytes(StatusCode::OK, &bytes)
    };
    if let Ok(value) = lambda_http::http::HeaderValue::from_str(&etag) {
        response.headers_mut().insert("etag", value);
    }
    response
}

/// Marks an answer that carries a token or a secret: no cache (browser, proxy or CDN) may
/// keep it.
pub fn no_store(mut response: HttpResponse) -> HttpResponse {
    response.headers_mut().insert(
        "cache-control",
        lambda_http::http::HeaderValue::from_static("no-store"),
    );
    response
}

pub fn text(status: StatusCode, content_type: &str, body: String) -> HttpResponse {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Body::Text(body))
        .expect("static response parts")
}

/// The single mapping from `DexError` to an HTTP response (docs/decisions.md §2).
pub fn error_response(err: &DexError) -> HttpResponse {
    if let DexError::Internal(detail) = err {
        tracing::error!(error = %detail, "internal error");
    }
    let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = json(status, &err.body());
    if status == StatusCode::SERVICE_UNAVAILABLE {
        // docs/decisions.md §2: a dependency is down; most outages of one call are short.
        response.headers_mut().insert(
            "retry-after",
            lambda_http::http::HeaderValue::from_static(RETRY_AFTER_SECS),
        );
    }
    if let Some(secs) = err.retry_after_secs() {
        response
            .headers_mut()
            .insert("retry-after", lambda_http::http::HeaderValue::from(secs));
    }
    response
}

/// The `Retry-After` of a 503, in seconds.
pub const RETRY_AFTER_SECS: &str = "2";

/// The log filter for a level name (`AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG`): DEX's own logs at
/// that level, every dependency at most at info. Below info, `lambda_runtime` logs each raw
/// event (headers with passwords and tokens, bodies) and the AWS SDK each request and
/// response (secret values, signing headers): those levels are never enabled. Only a plain
/// level is taken; anything else (e.g. per-target directives) means info.
pub fn log_filter(level: &str) -> tracing_subscriber::EnvFilter {
    use tracing_subscriber::filter::LevelFilter;
    let level = match level.trim().to_lowercase().as_str() {
        "trace" => LevelFilter::TRACE,
        "debug" => LevelFilter::DEBUG,
        "warn" => LevelFilter::WARN,
        "error" | "fatal" => LevelFilter::ERROR,
        "off" => LevelFilter::OFF,
        _ => LevelFilter::INFO,
    };
    let dependencies = level.min(LevelFilter::INFO);
    // DEX's three library crates; each function binary logs through them.
    tracing_subscriber::EnvFilter::new(format!(
        "{dependencies},dex={level},dex_aws={level},dex_lambda={level}"
    ))
}

/// Initialises JSON logging: each line carries the request's span (the runtime's span holds
/// the Lambda request id). Level from `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG` (see `log_filter`),
/// default info.
pub fn init_logging() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into());
    let filter = log_filter(&level);
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .try_init();
}

/// Runs the Lambda loop for one endpoint: enforces the body limit, calls the handler, maps
/// errors, logs one line per request.
pub async fn serve<H, Fut>(body_limit: usize, handler: H) -> Result<(), lambda_http::Error>
where
    H: Fn(ApiRequest) -> Fut + Send + Sync,
    Fut: Future<Output = DexResult<HttpResponse>> + Send,
{
    let handler = &handler;
    lambda_http::run(service_fn(move |request: Request| async move {
        let started = Instant::now();
        let method = request.method().to_string();
        let path = request.uri().path().to_owned();
        let request_id = request
            .lambda_context_ref()
            .map(|c| c.request_id.clone())
            .unwrap_or_default();
        let response = if request.body().len() > body_limit {
            error_response(&DexError::PayloadTooLarge(format!(
                "the body is limited to {body_limit} bytes"
            )))
        } else {
            match handler(ApiRequest::new(request)).await {
                Ok(response) => response,
                Err(err) => error_response(&err),
            }
        };
        tracing::info!(
            request_id,
            method,
            path,
            status = response.status().as_u16(),
            ms = started.elapsed().as_millis() as u64,
            "request"
        );
        Ok::<_, lambda_http::Error>(response)
    }))
    .await
}

/// The loop of a function that no HTTP route reaches (an EventBridge schedule invokes it):
/// each event goes to `handler`, whose JSON answer is the invocation's result. An error is
/// logged and fails the invocation (the schedule's retry policy then applies); it is never
/// an HTTP answer.
pub async fn serve_scheduled<H, Fut>(handler: H) -> Result<(), lambda_http::Error>
where
    H: Fn(serde_json::Value) -> Fut + Send + Sync,
    Fut: Future<Output = DexResult<serde_json::Value>> + Send,
{
    let handler = &handler;
    lambda_http::lambda_runtime::run(service_fn(
        move |event: lambda_http::LambdaEvent<serde_json::Value>| async move {
            let started = Instant::now();
            let request_id = event.context.request_id.clone();
            let result = handler(event.payload).await;
            let ms = started.elapsed().as_millis() as u64;
            match result {
                Ok(answer) => {
                    tracing::info!(request_id, ms, "scheduled run");
                    Ok(answer)
                }
                Err(error) => {
                    tracing::error!(request_id, ms, error = %error, "scheduled run failed");
                    Err(lambda_http::Error::from(error.to_string()))
                }
            }
        },
    ))
    .await
}

/// A container's `App`, built once in the background: by the task `init_app` starts, or by
/// the first request if it asks before that task is done (it then waits for the same build).
pub struct LazyApp {
    config: dex::config::Config,
    needs: crate::app::Needs,
    app: tokio::sync::OnceCell<&'static crate::App>,
}

impl LazyApp {
    /// The `App`, built on the first call (then warmed with the function's `needs`); every
    /// later or concurrent call gets the same one. It lives as long as the process.
    pub async fn get(&'static self) -> &'static crate::App {
        self.app
            .get_or_init(|| async {
                let app: &'static crate::App =
                    Box::leak(Box::new(crate::App::on_aws(self.config.clone()).await));
                app.warm(self.needs);
                app
            })
            .await
    }
}

/// The init of a function: logging, then the configuration, checked here or the container
/// stops with the reason (never per request). The AWS clients, the `App` and the warm-ups
/// of what the function `needs` are started in a background task, so the first poll of the
/// Runtime API waits on neither the TLS roots' parsing nor a network round trip.
pub fn init_app(needs: crate::app::Needs) -> &'static LazyApp {
    init_logging();
    let config = match crate::App::config_from_env() {
        Ok(config) => config,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            eprintln!("cannot start: {e}");
            std::process::exit(1);
        }
    };
    let lazy: &'static LazyApp = Box::leak(Box::new(LazyApp {
        config,
        needs,
        app: tokio::sync::OnceCell::new(),
    }));
    tokio::spawn(lazy.get());
    lazy
}

/// The Lambda runtime for one function: the multi-threaded tokio runtime `#[tokio::main]`
/// builds.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts")
}

/// The `main` of a scheduled function binary (no HTTP route): as `lambda_main!`, then
/// serve `handle` (an `async fn(&App, serde_json::Value) -> DexResult<serde_json::Value>`)
/// on every event: `scheduled_main!(handle, needs: TABLE | HATS)`.
#[macro_export]
macro_rules! scheduled_main {
    ($handle:path, needs: $($need:ident)|+) => {
        fn main() -> Result<(), $crate::web::Error> {
            $crate::web::runtime().block_on(async {
                let needs = $crate::app::Needs::NOTHING $(.and($crate::app::Needs::$need))+;
                let app = $crate::web::init_app(needs);
                $crate::web::serve_scheduled(move |event| async move {
                    $handle(app.get().await, event).await
                })
                .await
            })
        }
    };
}

/// The `main` of an HTTP function binary: check the configuration at init, build the `App` and
/// start warming what the function's first request needs in the background (`Needs` constants joined by `|`: `TABLE`, `SIGNING_KEYS`,
/// `HATS`, or `NOTHING`), then serve `handle` (an `async fn(&App, ApiRequest) ->
/// DexResult<HttpResponse>`) with the default body limit or the one given:
/// `lambda_main!(handle, needs: TABLE | SIGNING_KEYS)`,
/// `lambda_main!(handle, needs: TABLE, body_limit: LIMIT)`.
#[macro_export]
macro_rules! lambda_main {
    ($handle:path, needs: $($need:ident)|+) => {
        $crate::lambda_main!($handle, needs: $($need)|+, body_limit: $crate::web::DEFAULT_BODY_LIMIT);
    };
    ($handle:path, needs: $($need:ident)|+, body_limit: $body_limit:expr) => {
        fn main() -> Result<(), $crate::web::Error> {
            $crate::web::runtime().block_on(async {
                let needs = $crate::app::Needs::NOTHING $(.and($crate::app::Needs::$need))+;
                let app = $crate::web::init_app(needs);
                $crate::web::serve($body_limit, move |request| async move {
                    $handle(app.get().await, request).await
                })
                .await
            })
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Collects what a subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged_at(level: &str) -> String {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(log_filter(level))
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            // What lambda_runtime, lambda_http and the AWS SDK emit below info.
            tracing::trace!(target: "lambda_runtime::layers::api_response", body = "password: runtime-secret", "raw JSON event received from Lambda");
            tracing::debug!(target: "lambda_http", "http-secret");
            tracing::trace!(target: "aws_smithy_runtime::client::orchestrator", "sdk-secret");
            tracing::info!(target: "lambda_runtime", "runtime-info");
            tracing::trace!(target: "dex_lambda::web", "dex-trace");
            tracing::trace!(target: "dex_aws::dynamo", "adapter-trace");
            tracing::info!(target: "dex::accounts", "dex-info");
        });
        String::from_utf8(captured.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn an_unreachable_dependency_is_a_503_with_retry_after_and_dex_body() {
        let response = error_response(&DexError::Unavailable(
            "DynamoDB cannot be reached right now; retry shortly".into(),
        ));
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()["retry-after"], RETRY_AFTER_SECS);
        let body: serde_json::Value = serde_json::from_slice(response.body().as_ref()).unwrap();
        assert_eq!(body["message"], "Service unavailable");
        assert_eq!(
            body["cause"],
            "DynamoDB cannot be reached right now; retry shortly"
        );
        // Other errors carry no Retry-After.
        let other = error_response(&DexError::Throttled("busy".into()));
        assert!(other.headers().get("retry-after").is_none());
    }

    #[test]
    fn too_many_failed_logins_is_a_429_with_its_own_retry_after() {
        let response = error_response(&DexError::TooManyAttempts {
            cause: "too many failed logins; retry later".into(),
            retry_after_secs: 17,
        });
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["retry-after"], "17");
        let body: serde_json::Value = serde_json::from_slice(response.body().as_ref()).unwrap();
        assert_eq!(body["message"], "Too many requests");
        assert_eq!(body["cause"], "too many failed logins; retry later");
    }

    #[test]
    fn no_level_enables_the_runtime_raw_event_or_sdk_dumps() {
        for level in [
            "trace",
            "TRACE",
            "debug",
            "lambda_runtime=trace",
            "trace,lambda_runtime=trace",
        ] {
            let out = logged_at(level);
            for secret in ["runtime-secret", "http-secret", "sdk-secret"] {
                assert!(!out.contains(secret), "{level}: {secret} logged:\n{out}");
            }
            assert!(
                out.contains("dex-info") && out.contains("runtime-info"),
                "{level}: {out}"
            );
        }
        let all = logged_at("trace");
        assert!(
            all.contains("dex-trace") && all.contains("adapter-trace"),
            "{all}"
        );
        assert!(!logged_at("info").contains("dex-trace"));
        let quiet = logged_at("error");
        assert!(
            !quiet.contains("dex-info") && !quiet.contains("runtime-info"),
            "{quiet}"
        );
    }
}
