//! A counting HTTP proxy in front of an AWS service emulator (DynamoDB Local, moto): the
//! functions talk to it through `AWS_ENDPOINT_URL_*`, it forwards every request unchanged
//! (the `Host` header too, so SigV4 signatures stay valid) and counts requests per
//! `X-Amz-Target` (e.g. `DynamoDB_20120810.GetItem`). `make bench` counts a function's
//! round trips with it; the fault tests also hold one operation with it (never forwarded,
//! never answered), to kill a function at that step of a request.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub type Counts = BTreeMap<String, u64>;

pub struct CountingProxy {
    /// The URL to give the functions (`http://127.0.0.1:<port>`).
    pub url: String,
    pub upstream: String,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

struct Shared {
    authority: String,
    client: Client<HttpConnector, Full<Bytes>>,
    counts: Mutex<Counts>,
    /// (operation, its count past which requests are held), set by [`CountingProxy::hold`].
    hold: Mutex<Option<(String, u64)>>,
    held: AtomicU64,
}

impl CountingProxy {
    /// Starts a proxy forwarding to `upstream` (an `http://host:port` URL).
    pub async fn start(upstream: &str) -> Result<Self, String> {
        let uri: Uri = upstream
            .parse()
            .map_err(|e| format!("bad endpoint URL {upstream:?}: {e}"))?;
        if uri.scheme_str() != Some("http") {
            return Err(format!(
                "the counting proxy only forwards to http:// endpoints, not {upstream:?}"
            ));
        }
        let authority = uri
            .authority()
            .ok_or_else(|| format!("no host in {upstream:?}"))?
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let url = format!(
            "http://{}",
            listener.local_addr().map_err(|e| e.to_string())?
        );
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let shared = Arc::new(Shared {
            authority,
            client: Client::builder(TokioExecutor::new()).build(connector),
            counts: Mutex::new(Counts::new()),
            hold: Mutex::new(None),
            held: AtomicU64::new(0),
        });
        let server = crate::serve::spawn(listener, shared.clone(), forward);
        Ok(Self {
            url,
            upstream: upstream.to_owned(),
            shared,
            server,
        })
    }

    pub fn snapshot(&self) -> Counts {
        self.shared.counts.lock().expect("counts lock").clone()
    }

    /// From now on, forwards `pass` more requests of `operation` (an `X-Amz-Target`), then
    /// holds every later one: never forwarded, never answered, until the caller's
    /// connection or this proxy goes away.
    pub fn hold(&self, operation: &str, pass: u64) {
        let counts = self.shared.counts.lock().expect("counts lock");
        let seen = counts.get(operation).copied().unwrap_or(0);
        *self.shared.hold.lock().expect("hold lock") = Some((operation.to_owned(), seen + pass));
    }

    /// Forwards every later request again (the held ones stay held).
    pub fn release(&self) {
        *self.shared.hold.lock().expect("hold lock") = None;
    }

    /// How many requests are held (or were, before their caller went away).
    pub fn held(&self) -> u64 {
        self.shared.held.load(Ordering::SeqCst)
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// `after - before`, per operation (operations with no requests left out).
pub fn diff(after: &Counts, before: &Counts) -> Counts {
    after
        .iter()
        .map(|(op, n)| (op.clone(), n - before.get(op).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

pub fn total(counts: &Counts) -> u64 {
    counts.values().sum()
}

async fn forward(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (mut parts, body) = request.into_parts();
    let operation = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{} {}", parts.method, parts.uri.path()));
    let count = {
        let mut counts = shared.counts.lock().expect("counts lock");
        let count = counts.entry(operation.clone()).or_default();
        *count += 1;
        *count
    };
    let held = matches!(
        &*shared.hold.lock().expect("hold lock"),
        Some((op, past)) if *op == operation && count > *past
    );
    if held {
        shared.held.fetch_add(1, Ordering::SeqCst);
        return std::future::pending().await;
    }

    let body = match body.collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => return Ok(bad_gateway(format!("reading the request: {e}"))),
    };
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    parts.uri = match format!("http://{}{path}", shared.authority).parse() {
        Ok(uri) => uri,
        Err(e) => return Ok(bad_gateway(format!("bad upstream URI: {e}"))),
    };
    let upstream = match shared
        .client
        .request(Request::from_parts(parts, Full::new(body)))
        .await
    {
        Ok(response) => response,
        Err(e) => return Ok(bad_gateway(format!("upstream {}: {e}", shared.authority))),
    };
    let (mut parts, body) = upstream.into_parts();
    let body = match body.collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => return Ok(bad_gateway(format!("reading the upstream response: {e}"))),
    };
    // The body is forwarded whole: its framing is recomputed.
    parts.headers.remove("transfer-encoding");
    parts.headers.remove("connection");
    Ok(Response::from_parts(parts, Full::new(body)))
}

fn bad_gateway(message: String) -> Response<Full<Bytes>> {
    eprintln!("counting proxy: {message}");
    Response::builder()
        .status(StatusCode::BAD_GATEWAY)
        .body(Full::new(Bytes::from(message)))
        .expect("valid response parts")
}
