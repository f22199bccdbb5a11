//! `local-gateway LISTEN_PORT UPSTREAM_PORT`: the local stack's HTTP edge, in front of
//! `cargo lambda watch` (scripts/run-local.sh and scripts/test.sh start it on DEX_PORT).
//! It forwards every request unchanged except where the emulator (cargo-lambda 1.9.2) and
//! API Gateway differ, so that local clients see what a deployment answers:
//!
//! - A body that is not UTF-8 under a text content type (or none): API Gateway hands it to
//!   the function base64-encoded, and DEX answers its own 400. The emulator fails to build the
//!   event and answers 500 with an http-api-problem document without calling the function.
//!   The gateway forwards such a body as `application/octet-stream`, which the emulator
//!   base64-encodes, so the function gets the same bytes as on AWS.
//! - The emulator's Runtime API answers the function before it has read the posted response
//!   and sometimes loses a large one (500, the same problem document; the function logged its
//!   answer). API Gateway never does. The gateway sends a request again when exactly that
//!   document comes back and the request is idempotent: GET, HEAD, PUT, DELETE, and the two
//!   POSTs DEX makes idempotent (`IDEMPOTENT_POSTS`: a resent stats batch counts once, a
//!   description merge is the same merge); other requests get the document as is.
//! - The emulator also, rarely and under load, never answers a request at all: the function
//!   logged its answer in milliseconds and the client waits forever (seen on CI for
//!   `GET .../applications-history` and `POST /stats/available-data/descriptions`). API
//!   Gateway never does. A read (GET, HEAD) whose answer has not come within
//!   `Waits::read_resend_after` (18 s) is sent again, at most `READ_SENDS` times, and then
//!   answered 504 like API Gateway's integration timeout; no DEX read takes more than a few
//!   seconds here. One of the `IDEMPOTENT_POSTS` is sent again once, after
//!   `Waits::post_resend_after` (25 s): longer than a stats report may take (its retry
//!   deadline, `dex::retry::REPORT_RETRY`, is 24 s), so the resend never races an answer
//!   still coming. Every resend is logged. Any other request is sent once and answered 504 after `Waits::give_up_after` (60 s:
//!   twice API Gateway's limit, as a local instance can take that long to start under load),
//!   so that no client of the local stack waits forever.
//! - A method the local router has no entry for (`QUERY`, ...): API Gateway hands it to the
//!   `$default` route; the emulator answers 404 with a document listing the workspace's
//!   binaries. The gateway sends it to the default-route function instead (the emulator's
//!   `/lambda-url/default-route/...`), which answers DEX's 405 or 404.
//!
//! With `DEX_CAPTURE_FILE` set (scripts/test.sh sets it), every exchange is appended to that
//! file as one JSON line (method, path, request headers and body, status, answer headers and
//! body) for the secrets scan of `make test` (tests/src/secrets_scan.rs), which learns the
//! passwords and tokens clients sent from it and looks for them in every answer. It holds
//! those secrets: a test-only file, never set by `make run`.

use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

/// The capture file, when `DEX_CAPTURE_FILE` names one.
static CAPTURE: OnceLock<Mutex<std::fs::File>> = OnceLock::new();

/// Sends of one idempotent request when the emulator keeps losing its answer.
const ATTEMPTS: usize = 5;

/// How long the gateway waits for the emulator's answer.
#[derive(Clone, Copy)]
struct Waits {
    /// Before a read is sent again.
    read_resend_after: Duration,
    /// Before an idempotent POST is sent again.
    post_resend_after: Duration,
    /// Before any other request is answered 504 (it is never sent twice).
    give_up_after: Duration,
}

const WAITS: Waits = Waits {
    read_resend_after: Duration::from_secs(18),
    post_resend_after: Duration::from_secs(25),
    give_up_after: Duration::from_secs(60),
};

/// Sends of one read whose answer never comes (3 x 18 s stays under the fuzzer's 60 s).
const READ_SENDS: usize = 3;

/// Sends of one idempotent POST whose answer never comes (2 x 25 s, the same bound).
const POST_SENDS: usize = 2;

/// POST routes whose repetition changes nothing (docs/decisions.md §7: exactly-once reports;
/// merging the same descriptions twice is one merge).
const IDEMPOTENT_POSTS: [&str; 2] = ["/stats/report", "/stats/available-data/descriptions"];

/// Headers that belong to one hop, never forwarded.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
];

#[tokio::main]
async fn main() {
    let args: Vec<u16> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap_or(0))
        .collect();
    let [listen, upstream] = args[..] else {
        eprintln!("usage: local-gateway LISTEN_PORT UPSTREAM_PORT");
        std::process::exit(2);
    };
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], listen)))
        .await
        .unwrap_or_else(|e| {
            eprintln!("local-gateway: cannot listen on 127.0.0.1:{listen}: {e}");
            std::process::exit(1);
        });
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .expect("an HTTP client");
    let upstream = format!("http://127.0.0.1:{upstream}");
    if let Some(path) = std::env::var_os("DEX_CAPTURE_FILE").filter(|p| !p.is_empty()) {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| {
                eprintln!("local-gateway: cannot open the capture file {path:?}: {e}");
                std::process::exit(1);
            });
        let _ = CAPTURE.set(Mutex::new(file));
        eprintln!("local-gateway: capturing every exchange for the secrets scan");
    }
    eprintln!("local-gateway: 127.0.0.1:{listen} -> {upstream}");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (client, upstream) = (client.clone(), upstream.clone());
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let (client, upstream) = (client.clone(), upstream.clone());
                async move { Ok::<_, Infallible>(forward(&client, &upstream, request).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn forward(
    client: &reqwest::Client,
    upstream: &str,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => return plain(StatusCode::BAD_REQUEST, format!("unreadable body: {e}")),
    };
    relay(client, upstream, &parts, body, WAITS).await
}

/// Sends one request on to the emulator, with the corrections the module describes.
async fn relay(
    client: &reqwest::Client,
    upstream: &str,
    parts: &hyper::http::request::Parts,
    body: Bytes,
    waits: Waits,
) -> Response<Full<Bytes>> {
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{upstream}{path}");
    let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes())
        .unwrap_or(reqwest::Method::GET);
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in &parts.headers {
        if !HOP_BY_HOP.contains(&name.as_str()) && name != "host" {
            headers.append(name.clone(), value.clone());
        }
    }
    if needs_binary_passing(&headers, &body)
        && let Ok(value) = "application/octet-stream".parse()
    {
        headers.insert("content-type", value);
    }
    let read = matches!(method, reqwest::Method::GET | reqwest::Method::HEAD);
    let idempotent_post = method == reqwest::Method::POST
        && IDEMPOTENT_POSTS.contains(&parts.uri.path().trim_end_matches('/'));
    let idempotent =
        read || idempotent_post || matches!(method, reqwest::Method::PUT | reqwest::Method::DELETE);
    // Sent again when unanswered: only what a resend cannot change, after longer than the
    // request can take (a PUT or DELETE could answer differently the second time).
    let (wait, sends) = if read {
        (waits.read_resend_after, READ_SENDS)
    } else if idempotent_post {
        (waits.post_resend_after, POST_SENDS)
    } else {
        (waits.give_up_after, 1)
    };
    let mut attempt = 0;
    let mut unanswered = 0;
    let mut url = url;
    loop {
        attempt += 1;
        let exchange = async {
            let response = client
                .request(method.clone(), &url)
                .headers(headers.clone())
                .body(body.clone())
                .send()
                .await?;
            let status = response.status();
            let response_headers = response.headers().clone();
            let bytes = response.bytes().await.unwrap_or_default();
            Ok::<_, reqwest::Error>((status, response_headers, bytes))
        };
        let sent = match tokio::time::timeout(wait, exchange).await {
            Ok(sent) => sent,
            Err(_) => {
                unanswered += 1;
                if unanswered < sends {
                    note(&format!(
                        "the emulator did not answer {method} {path} in {}s; sending it again",
                        wait.as_secs()
                    ));
                    continue;
                }
                note(&format!(
                    "the emulator did not answer {method} {path} ({unanswered} sends, {}s each); answering 504",
                    wait.as_secs()
                ));
                return plain(
                    StatusCode::GATEWAY_TIMEOUT,
                    "the function did not answer in time".to_owned(),
                );
            }
        };
        let (status, response_headers, bytes) = match sent {
            Ok(r) => r,
            Err(e) => return plain(StatusCode::BAD_GATEWAY, format!("the emulator: {e}")),
        };
        if idempotent && attempt < ATTEMPTS && status == 500 && is_lost_answer(&bytes) {
            note(&format!(
                "the emulator lost the answer to {method} {path}; sending it again"
            ));
            continue;
        }
        if status == 404 && is_no_route(&bytes) && !url.contains("/lambda-url/") {
            url = format!("{upstream}/lambda-url/default-route{path}");
            continue;
        }
        capture(parts, &body, status.as_u16(), &response_headers, &bytes);
        let mut out = Response::new(Full::new(bytes));
        *out.status_mut() =
            StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        for (name, value) in &response_headers {
            if !HOP_BY_HOP.contains(&name.as_str()) {
                out.headers_mut().append(name.clone(), value.clone());
            }
        }
        return out;
    }
}

/// One line of the gateway's log, timed (UTC), so that it can be set beside the functions'
/// log and a test's failure.
fn note(message: &str) {
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
    eprintln!("{now} local-gateway: {message}");
}

/// Appends one exchange to the capture file, if there is one (a failed write stops the
/// gateway: a scan over a partial capture would pass for the wrong reason).
fn capture(
    request: &hyper::http::request::Parts,
    request_body: &[u8],
    status: u16,
    response_headers: &reqwest::header::HeaderMap,
    response_body: &[u8],
) {
    let Some(file) = CAPTURE.get() else {
        return;
    };
    let headers = |map: &hyper::HeaderMap| -> Vec<(String, String)> {
        map.iter()
            .map(|(n, v)| {
                let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
                (n.as_str().to_owned(), value)
            })
            .collect()
    };
    let line = serde_json::json!({
        "method": request.method.as_str(),
        "path": request.uri.path_and_query().map_or("/", |p| p.as_str()),
        "requestHeaders": headers(&request.headers),
        "requestBody": String::from_utf8_lossy(request_body),
        "status": status,
        "responseHeaders": headers(response_headers),
        "responseBody": String::from_utf8_lossy(response_body),
    });
    let mut text = line.to_string();
    text.push('\n');
    let mut file = file
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Err(e) = file.write_all(text.as_bytes()) {
        eprintln!("local-gateway: cannot write the capture file: {e}");
        std::process::exit(1);
    }
}

/// A non-empty body the emulator would refuse to put in an event as text.
fn needs_binary_passing(headers: &reqwest::header::HeaderMap, body: &[u8]) -> bool {
    let text_type = headers
        .get("content-type")
        .map(|v| v.to_str().unwrap_or_default())
        .is_none_or(|c| c.starts_with("text/") || c.starts_with("application/json"));
    !body.is_empty() && text_type && std::str::from_utf8(body).is_err()
}

/// The http-api-problem document the emulator answers when it lost the function's answer
/// (DEX's own errors are `{"message", "cause"}`).
fn is_lost_answer(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body).is_ok_and(|v| {
        v["type"] == "https://httpstatuses.com/500"
            && v["status"] == 500
            && v.get("message").is_none()
    })
}

/// The emulator's answer for a request no router entry matches (it names the default function).
fn is_no_route(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body).is_ok_and(|v| {
        v.get("message").is_none()
            && v["detail"]
                .as_str()
                .is_some_and(|d| d.contains("default function route is disabled"))
    })
}

fn plain(status: StatusCode, text: String) -> Response<Full<Bytes>> {
    let mut out = Response::new(Full::new(Bytes::from(text)));
    *out.status_mut() = status;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_non_utf8_text_bodies_are_passed_as_binary() {
        let mut headers = reqwest::header::HeaderMap::new();
        assert!(needs_binary_passing(&headers, b"\xff\xfe"));
        assert!(!needs_binary_passing(&headers, b"[]"));
        assert!(!needs_binary_passing(&headers, b""));
        headers.insert("content-type", "application/json".parse().unwrap());
        assert!(needs_binary_passing(&headers, b"[\xc3]"));
        headers.insert("content-type", "image/png".parse().unwrap());
        assert!(!needs_binary_passing(&headers, b"\xff"));
    }

    #[test]
    fn only_the_emulators_problem_document_is_a_lost_answer() {
        let lost = br#"{"type":"https://httpstatuses.com/500","status":500,"title":"Internal Server Error"}"#;
        assert!(is_lost_answer(lost));
        assert!(!is_lost_answer(
            br#"{"message":"Internal server error","cause":"x"}"#
        ));
        assert!(!is_lost_answer(b"Internal Server Error"));
    }

    #[test]
    fn the_emulators_no_route_document_is_recognised() {
        let no_route = br#"{"title":"Default function disabled","detail":"the default function route is disabled, use /lambda-url/:function_name to trigger a function call. Available functions: {}"}"#;
        assert!(is_no_route(no_route));
        assert!(!is_no_route(
            br#"{"message":"Not found","cause":"no route for QUERY /x"}"#
        ));
    }

    /// An emulator stand-in on 127.0.0.1: it reads each request and answers the n-th
    /// connection (1-based) after `answers(n)` milliseconds; `None` holds the connection open
    /// without a word, as the emulator did on CI.
    async fn emulator(
        answers: fn(usize) -> Option<u64>,
    ) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = std::sync::Arc::new(AtomicUsize::new(0));
        let counter = seen.clone();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = stream.read(&mut buf).await;
                    if let Some(delay) = answers(n) {
                        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
                        let body = format!("{{\"attempt\":{n}}}");
                        let head = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = stream.write_all(head.as_bytes()).await;
                        let _ = stream.write_all(body.as_bytes()).await;
                    } else {
                        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
                    }
                });
            }
        });
        (format!("http://127.0.0.1:{port}"), seen)
    }

    fn request(method: &str) -> hyper::http::request::Parts {
        request_to(method, "/api/applications-history")
    }

    fn request_to(method: &str, path: &str) -> hyper::http::request::Parts {
        Request::builder()
            .method(method)
            .uri(path)
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    /// `relay` of an empty-bodied `parts` to `upstream`, with the test `waits`.
    async fn send(
        upstream: &str,
        parts: &hyper::http::request::Parts,
        waits: Waits,
    ) -> Response<Full<Bytes>> {
        relay(
            &reqwest::Client::new(),
            upstream,
            parts,
            Bytes::new(),
            waits,
        )
        .await
    }

    async fn body_of(response: Response<Full<Bytes>>) -> String {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    /// Short waits for the tests: resend after `resend_ms`, give up after 2 s.
    fn waits(resend_ms: u64) -> Waits {
        Waits {
            read_resend_after: Duration::from_millis(resend_ms),
            post_resend_after: Duration::from_millis(resend_ms),
            give_up_after: Duration::from_secs(2),
        }
    }

    #[tokio::test]
    async fn a_read_the_emulator_never_answers_is_sent_again() {
        let (upstream, seen) = emulator(|n| (n == 2).then_some(0)).await;
        let response = send(&upstream, &request("GET"), waits(300)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(body_of(response).await, r#"{"attempt":2}"#);
        assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_read_never_answered_ends_in_504_after_its_attempts() {
        let (upstream, seen) = emulator(|_| None).await;
        let response = send(&upstream, &request("HEAD"), waits(200)).await;
        assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), READ_SENDS);
    }

    #[tokio::test]
    async fn an_idempotent_post_the_emulator_never_answers_is_sent_again() {
        let (upstream, seen) = emulator(|n| (n == 2).then_some(0)).await;
        let post = request_to("POST", "/stats/available-data/descriptions");
        let response = send(&upstream, &post, waits(300)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(body_of(response).await, r#"{"attempt":2}"#);
        assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_write_never_answered_is_sent_once_and_answered_504() {
        let (upstream, seen) = emulator(|_| None).await;
        let started = std::time::Instant::now();
        let response = send(&upstream, &request("POST"), waits(100)).await;
        assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 1);
        // It waited for the give-up bound, not the resend one.
        assert!(
            started.elapsed() >= Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn a_write_is_never_sent_twice_for_a_slow_answer() {
        // The answer comes well after a read would have been sent again.
        let (upstream, seen) = emulator(|_| Some(600)).await;
        let response = send(&upstream, &request("POST"), waits(100)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
