//! The HTTP side of the test HAT cluster: a hyper 1 HTTP/1.1 server, one task per
//! connection, every request routed to a HAT by its `Host` header.
//!
//! Nothing here may panic on what a client sends: malformed input answers 400, an
//! impossible scripted answer 500.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use hyper::body::{Body, Frame, Incoming};
use hyper::header::{CONTENT_TYPE, HOST, HeaderName, HeaderValue, LOCATION};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use super::api::{self, RouteFail};
use super::cluster::{Behaviour, HatInner, RecordedRequest, Shared, lock};
use super::token::TokenBuilder;

type ResponseBody = BoxBody<Bytes, Infallible>;

/// Largest request body the server reads (and records); larger ones answer 413.
const MAX_REQUEST_BODY: usize = 16 * 1024 * 1024;

/// The accept loop. Returns when `shutdown` fires or its sender is dropped; the caller
/// then drops the runtime, which cancels the connection tasks.
pub(crate) async fn run(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    ready: oneshot::Sender<std::io::Result<()>>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let listener = match TcpListener::from_std(listener) {
        Ok(listener) => {
            let _ = ready.send(Ok(()));
            listener
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let shared = Arc::clone(&shared);
                    connections.spawn(async move {
                        let service = service_fn(move |req| handle(req, Arc::clone(&shared)));
                        // Connection errors (client hung up, bad HTTP) only end this
                        // connection.
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
                // E.g. too many open files: back off instead of spinning.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            },
            // Reap finished connection tasks so the set does not grow without bound.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// A failure switch's dropped connection: hyper closes the connection without an answer.
#[derive(Debug)]
pub(crate) struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by a failure switch")
    }
}

impl std::error::Error for DropConnection {}

async fn handle(
    req: Request<Incoming>,
    shared: Arc<Shared>,
) -> Result<Response<ResponseBody>, DropConnection> {
    let (parts, body) = req.into_parts();
    let host = parts
        .headers
        .get(HOST)
        .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned());

    let (body, body_error) = match Limited::new(body, MAX_REQUEST_BODY).collect().await {
        Ok(collected) => (collected.to_bytes().to_vec(), None),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => (
            Vec::new(),
            Some(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Payload Too Large",
                "Request body too large",
            )),
        ),
        Err(_) => (
            Vec::new(),
            Some(error(
                StatusCode::BAD_REQUEST,
                "Bad Request",
                "Unreadable request body",
            )),
        ),
    };

    // Record first, so a request is visible even if the client gives up waiting.
    let recorded = RecordedRequest {
        hat: host.clone().unwrap_or_default(),
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.clone(),
    };
    lock(&shared.requests).push(recorded);

    if let Some(response) = body_error {
        return Ok(response);
    }
    let Some(host) = host else {
        return Ok(error(
            StatusCode::BAD_REQUEST,
            "Bad Request",
            "Missing Host header",
        ));
    };
    let Some(hat) = lock(&shared.hats).get(&host).cloned() else {
        return Ok(hat_unavailable());
    };
    answer(&shared, &hat, &parts, &body).await
}

/// The answer of a known HAT, in order: `Slow` delay, `Redirect`, scripted answers,
/// built-in endpoints, default `200 {}`.
async fn answer(
    shared: &Shared,
    hat: &HatInner,
    parts: &hyper::http::request::Parts,
    body: &[u8],
) -> Result<Response<ResponseBody>, DropConnection> {
    let (behaviour, key, decoy_pem) = {
        let state = lock(&hat.state);
        (
            state.behaviour.clone(),
            Arc::clone(&state.key),
            state.decoy_pem.clone(),
        )
    };

    match &behaviour {
        Behaviour::Slow(delay) => tokio::time::sleep(*delay).await,
        Behaviour::Redirect(location) => {
            return Ok(match HeaderValue::from_str(location) {
                Ok(location) => {
                    let mut response = empty(StatusCode::FOUND);
                    response.headers_mut().insert(LOCATION, location);
                    response
                }
                Err(_) => error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal Server Error",
                    "Redirect location is not a valid header value",
                ),
            });
        }
        _ => {}
    }

    let path = parts.uri.path();
    let route = format!("{} {path}", parts.method);
    let (mut drop_after, mut late) = (false, None);
    match api::failure(hat, &route) {
        None => {}
        Some(RouteFail::Status(status)) => {
            return Ok(match StatusCode::from_u16(status) {
                Ok(code) => error(code, "Failure switch", "Scripted failure"),
                Err(_) => error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal Server Error",
                    "Scripted status code is invalid",
                ),
            });
        }
        Some(RouteFail::Slow(delay)) => tokio::time::sleep(delay).await,
        Some(RouteFail::Drop) => return Err(DropConnection),
        Some(RouteFail::DropAfter) => drop_after = true,
        Some(RouteFail::SlowAfter(delay)) => late = Some(delay),
    }
    let response = answer_normally(shared, hat, parts, body, key, &behaviour, decoy_pem);
    if drop_after {
        return Err(DropConnection);
    }
    if let Some(delay) = late {
        tokio::time::sleep(delay).await;
    }
    Ok(response)
}

fn answer_normally(
    shared: &Shared,
    hat: &HatInner,
    parts: &hyper::http::request::Parts,
    body: &[u8],
    key: Arc<super::keys::HatKey>,
    behaviour: &Behaviour,
    decoy_pem: Option<String>,
) -> Response<ResponseBody> {
    let path = parts.uri.path();
    let scripted = lock(&shared.responses)
        .iter()
        .rev()
        .find(|r| {
            r.hat == hat.address
                && r.method == parts.method.as_str()
                && path.starts_with(&r.path_prefix)
        })
        .map(|r| (r.status, r.body.clone()));
    if let Some((status, body)) = scripted {
        return match StatusCode::from_u16(status) {
            Ok(status) => json_response(status, &body),
            Err(_) => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal Server Error",
                "Scripted status code is invalid",
            ),
        };
    }

    match (&parts.method, path) {
        (&Method::GET, "/publickey") => return public_key(behaviour, &key.pem, decoy_pem),
        (&Method::GET, "/users/access_token") => return login(shared, hat, key, &parts.headers),
        _ => {}
    }
    let token = parts
        .headers
        .get("x-auth-token")
        .and_then(|v| v.to_str().ok());
    let authorised = api::token_valid(hat, token);
    match api::serve(hat, authorised, parts.method.as_str(), path, body) {
        Some((status, body)) => json_response(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            &body,
        ),
        None => json_response(StatusCode::OK, &json!({})),
    }
}

/// `GET /publickey`: the SPKI PEM as `text/plain; charset=utf-8` (what Play sends for a
/// plain string), or the misbehaviour's answer.
fn public_key(
    behaviour: &Behaviour,
    pem: &str,
    decoy_pem: Option<String>,
) -> Response<ResponseBody> {
    match behaviour {
        Behaviour::NotFound => hat_unavailable(),
        Behaviour::HugeBody(len) => {
            let mut response = Response::new(JunkPem::new(*len).boxed());
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            response
        }
        Behaviour::Garbage => text(
            StatusCode::OK,
            "Welcome to your HAT! There is no key here.\n".to_owned(),
        ),
        Behaviour::WrongKey | Behaviour::NonRsaKey | Behaviour::SmallRsaKey => {
            text(StatusCode::OK, decoy_pem.unwrap_or_else(|| pem.to_owned()))
        }
        Behaviour::Normal | Behaviour::Slow(_) | Behaviour::Redirect(_) => {
            text(StatusCode::OK, pem.to_owned())
        }
    }
}

/// `GET /users/access_token` with URL-encoded `username`/`password` headers: the platform
/// user gets 200 `{"accessToken","userId"}` plus `X-Auth-Token`, anyone else 401.
fn login(
    shared: &Shared,
    hat: &HatInner,
    key: Arc<super::keys::HatKey>,
    headers: &hyper::HeaderMap,
) -> Response<ResponseBody> {
    let decoded = |name: &str| headers.get(name).map(|v| url_decode(v.as_bytes()));
    let (username, password) = match (decoded("username"), decoded("password")) {
        (Some(Some(username)), Some(Some(password))) => (username, password),
        (Some(None), _) | (_, Some(None)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "Bad Request",
                "Malformed URL-encoded credentials",
            );
        }
        _ => {
            return error(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "Credentials required",
            );
        }
    };
    let accepted = {
        let platform = lock(&shared.platform);
        platform.0 == username && platform.1 == password
    } || api::user_login(hat, &username, &password);
    if !accepted {
        return error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Wrong username or password",
        );
    }

    let token = TokenBuilder::new(
        key,
        &hat.address,
        &[("accessScope", "platform"), ("resource", &hat.address)],
    )
    .build();
    crate::secrets_ledger::record("a test HAT's login token (platform user)", &token);
    lock(&hat.state).login_tokens.push(token.clone());
    let mut response = json_response(
        StatusCode::OK,
        &json!({ "accessToken": token, "userId": hat.platform_user_id.to_string() }),
    );
    if let Ok(value) = HeaderValue::from_str(&token) {
        response
            .headers_mut()
            .insert(HeaderName::from_static("x-auth-token"), value);
    }
    response
}

/// Java's `URLDecoder.decode(s, "UTF-8")`, as HAT2.0 applies to the credential headers:
/// `+` is a space, `%XX` a byte; `None` for a malformed escape or invalid UTF-8.
fn url_decode(input: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = input.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// HAT2.0's answer for a Host it does not serve (and for a `NotFound` public key).
fn hat_unavailable() -> Response<ResponseBody> {
    error(StatusCode::NOT_FOUND, "Not Found", "HAT unavailable")
}

fn error(status: StatusCode, error: &str, message: &str) -> Response<ResponseBody> {
    json_response(status, &json!({ "error": error, "message": message }))
}

fn json_response(status: StatusCode, body: &Value) -> Response<ResponseBody> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())).boxed());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn text(status: StatusCode, body: String) -> Response<ResponseBody> {
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn empty(status: StatusCode) -> Response<ResponseBody> {
    let mut response = Response::new(Full::new(Bytes::new()).boxed());
    *response.status_mut() = status;
    response
}

/// A streamed body of exactly `remaining` bytes that looks like an endless PEM: the
/// `BEGIN PUBLIC KEY` line, then 64-character base64-ish lines. Produced chunk by chunk
/// so a huge length costs no memory; its size is unknown to hyper, so it goes out
/// chunked, without `Content-Length`.
struct JunkPem {
    remaining: usize,
    started: bool,
}

impl JunkPem {
    const HEADER: &'static [u8] = b"-----BEGIN PUBLIC KEY-----\n";
    const CHUNK_LINES: usize = 1024;

    fn new(len: usize) -> Self {
        Self {
            remaining: len,
            started: false,
        }
    }
}

impl Body for JunkPem {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let mut chunk = Vec::with_capacity(Self::HEADER.len() + Self::CHUNK_LINES * 65);
        if !self.started {
            self.started = true;
            chunk.extend_from_slice(Self::HEADER);
        }
        for _ in 0..Self::CHUNK_LINES {
            chunk.extend_from_slice(&[b'A'; 64]);
            chunk.push(b'\n');
        }
        chunk.truncate(self.remaining);
        self.remaining -= chunk.len();
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(chunk)))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }
}
