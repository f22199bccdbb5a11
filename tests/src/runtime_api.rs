//! A minimal local Lambda Runtime API (the 2018-06-01 interface a `provided.al2023` function
//! polls) and the function process it serves: what `make bench` measures functions with, and
//! what the fault tests kill a function under (tests/faults/tests/killed_e2e.rs).
//!
//! Every function process gets its own server on 127.0.0.1:<free port>. The caller queues
//! events; `GET /runtime/invocation/next` long-polls that queue, exactly as the real service
//! does, and every step is reported as a [`Note`] stamped with the instant it happened.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

const PREFIX: &str = "/2018-06-01/runtime/";

/// What the function did, and when.
#[derive(Debug)]
pub enum Note {
    /// The function asked for its next event (the first one ends its init phase).
    NextRequested { at: Instant },
    /// An event was handed out as the answer to `/next`.
    HandedOut { id: String, at: Instant },
    /// `POST /invocation/<id>/response` arrived (body complete).
    Response {
        id: String,
        at: Instant,
        body: Bytes,
    },
    /// `POST /invocation/<id>/error`.
    InvocationError {
        id: String,
        error_type: String,
        body: Bytes,
    },
    /// `POST /init/error`.
    InitError { error_type: String, body: Bytes },
    /// A request the Runtime API does not know.
    Unknown { method: String, path: String },
}

struct Shared {
    function_arn: String,
    queue: Mutex<mpsc::UnboundedReceiver<(String, Bytes)>>,
    notes: mpsc::UnboundedSender<Note>,
}

/// One Runtime API server; dropping it stops the server and its connections.
pub struct RuntimeApi {
    pub addr: SocketAddr,
    queue: mpsc::UnboundedSender<(String, Bytes)>,
    notes: mpsc::UnboundedReceiver<Note>,
    server: JoinHandle<()>,
}

impl RuntimeApi {
    pub async fn start(function_name: &str) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (queue_tx, queue_rx) = mpsc::unbounded_channel();
        let (notes_tx, notes_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            function_arn: format!("arn:aws:lambda:us-east-1:000000000000:function:{function_name}"),
            queue: Mutex::new(queue_rx),
            notes: notes_tx,
        });
        let server = crate::serve::spawn(listener, shared, handle);
        Ok(Self {
            addr,
            queue: queue_tx,
            notes: notes_rx,
            server,
        })
    }

    /// Queues an event for the next `/next`; returns its request id.
    pub fn enqueue(&mut self, event: Bytes) -> String {
        // Unique across the whole run (the logs of every process go to one file).
        let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let id = format!("{:08x}-0000-4000-8000-{n:012x}", std::process::id());
        let _ = self.queue.send((id.clone(), event));
        id
    }

    /// The next note, failing if the function exits or stays silent past `timeout`.
    pub async fn next_note(
        &mut self,
        function: &mut FunctionProcess,
        timeout: Duration,
    ) -> Result<Note, String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            tokio::select! {
                note = self.notes.recv() => return note.ok_or_else(|| "the Runtime API server stopped".to_string()),
                _ = tokio::time::sleep(Duration::from_millis(25)) => {
                    if let Some(status) = function.exited() {
                        // A last note may have arrived just before the exit.
                        if let Ok(note) = self.notes.try_recv() {
                            return Ok(note);
                        }
                        return Err(format!("{} exited ({status}); see {}", function.name, function.log.display()));
                    }
                    if tokio::time::Instant::now() >= deadline {
                        return Err(format!(
                            "{} did not answer within {} s; see {}",
                            function.name,
                            timeout.as_secs(),
                            function.log.display()
                        ));
                    }
                }
            }
        }
    }

    /// Waits for the function's first `/next` (the end of its init phase) and answers when
    /// it came; a note that means failure, an exit or `timeout` is an error.
    pub async fn first_poll(
        &mut self,
        function: &mut FunctionProcess,
        timeout: Duration,
    ) -> Result<Instant, String> {
        loop {
            match self.next_note(function, timeout).await? {
                Note::NextRequested { at } => return Ok(at),
                other => check(&function.name, other)?,
            }
        }
    }

    /// A note that has arrived already, without waiting.
    pub fn try_note(&mut self) -> Option<Note> {
        self.notes.try_recv().ok()
    }

    /// Queues `event` and waits for its outcome.
    pub async fn invoke(
        &mut self,
        function: &mut FunctionProcess,
        event: Bytes,
        timeout: Duration,
    ) -> Result<Invocation, String> {
        let id = self.enqueue(event);
        let mut handed_out = None;
        loop {
            match self.next_note(function, timeout).await? {
                Note::HandedOut { id: got, at } if got == id => handed_out = Some(at),
                Note::Response { id: got, at, body } if got == id => {
                    let handed_out =
                        handed_out.ok_or("a response came before its event was handed out")?;
                    return Ok(Invocation {
                        handed_out,
                        responded: at,
                        body,
                    });
                }
                other => check(&function.name, other)?,
            }
        }
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Turns the notes that mean failure into errors; the others are fine at any time.
pub fn check(function: &str, note: Note) -> Result<(), String> {
    match note {
        Note::InitError { error_type, body } => Err(format!(
            "{function}: init error {error_type}: {}",
            String::from_utf8_lossy(&body)
        )),
        Note::InvocationError {
            id,
            error_type,
            body,
        } => Err(format!(
            "{function}: invocation {id} failed ({error_type}): {}",
            String::from_utf8_lossy(&body)
        )),
        Note::Unknown { method, path } => Err(format!(
            "{function}: unexpected Runtime API call {method} {path}"
        )),
        _ => Ok(()),
    }
}

/// One completed invocation.
pub struct Invocation {
    pub handed_out: Instant,
    pub responded: Instant,
    pub body: Bytes,
}

impl Invocation {
    pub fn latency(&self) -> Duration {
        self.responded.saturating_duration_since(self.handed_out)
    }

    /// The API Gateway (v2) response the function returned.
    pub fn response(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// The HTTP status inside an API Gateway v2 response (0 when missing); a scheduled
/// function's JSON answer that is no Lambda error counts as 200.
pub fn status_of(response: &serde_json::Value) -> u16 {
    match response.get("statusCode") {
        Some(status) => status.as_u64().unwrap_or(0) as u16,
        // A scheduled function (offer-sweep) answers its report, not an HTTP response.
        None if response.is_object() && response.get("errorType").is_none() => 200,
        None => 0,
    }
}

async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let route = path.strip_prefix(PREFIX).unwrap_or("");
    let error_type = || {
        request
            .headers()
            .get("lambda-runtime-function-error-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("unknown")
            .to_owned()
    };
    if method == Method::GET && route == "invocation/next" {
        let _ = shared
            .notes
            .send(Note::NextRequested { at: Instant::now() });
        let next = shared.queue.lock().await.recv().await;
        let Some((id, event)) = next else {
            // The caller is done with this function: like Lambda, never answer.
            return std::future::pending().await;
        };
        let deadline = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            + Duration::from_secs(30);
        let trace = format!(
            "Root=1-{:08x}-{:024x};Parent={:016x};Sampled=0",
            deadline.as_secs(),
            deadline.as_nanos(),
            1
        );
        let response = Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .header("lambda-runtime-aws-request-id", &id)
            .header(
                "lambda-runtime-deadline-ms",
                deadline.as_millis().to_string(),
            )
            .header("lambda-runtime-invoked-function-arn", &shared.function_arn)
            .header("lambda-runtime-trace-id", trace)
            .body(Full::new(event))
            .expect("valid response parts");
        let _ = shared.notes.send(Note::HandedOut {
            id,
            at: Instant::now(),
        });
        return Ok(response);
    }
    if method == Method::POST && route == "init/error" {
        let error_type = error_type();
        let body = collect(request).await;
        let _ = shared.notes.send(Note::InitError { error_type, body });
        return Ok(accepted());
    }
    if method == Method::POST
        && let Some(rest) = route.strip_prefix("invocation/")
    {
        if let Some(id) = rest.strip_suffix("/response") {
            let id = id.to_owned();
            let body = collect(request).await;
            let _ = shared.notes.send(Note::Response {
                id,
                at: Instant::now(),
                body,
            });
            return Ok(accepted());
        }
        if let Some(id) = rest.strip_suffix("/error") {
            let (id, error_type) = (id.to_owned(), error_type());
            let body = collect(request).await;
            let _ = shared.notes.send(Note::InvocationError {
                id,
                error_type,
                body,
            });
            return Ok(accepted());
        }
    }
    let _ = shared.notes.send(Note::Unknown {
        method: method.to_string(),
        path,
    });
    Ok(Response::builder()
        .status(StatusCode::NOT_FOUND)
        .body(Full::new(Bytes::new()))
        .expect("valid response parts"))
}

async fn collect(request: Request<Incoming>) -> Bytes {
    request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default()
}

fn accepted() -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::ACCEPTED)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(br#"{"status":"OK"}"#)))
        .expect("valid response parts")
}

/// What a function gets from this process's environment: DEX's configuration (`DEX_*`), the
/// AWS settings and endpoints (`AWS_*` but `AWS_LAMBDA_*`, which belong to the Runtime API)
/// and `RUST_LOG`, as the local stack's `cargo lambda watch` passes them on.
pub fn stack_env() -> BTreeMap<String, String> {
    std::env::vars()
        .filter(|(k, _)| {
            k.starts_with("DEX_")
                || (k.starts_with("AWS_") && !k.starts_with("AWS_LAMBDA_"))
                || k == "RUST_LOG"
        })
        .collect()
}

/// A log file of its own for one function process of a test, in the temporary directory
/// (unique across the run, like the request ids).
pub fn scratch_log(function: &str) -> PathBuf {
    let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("dex-{function}-{}-{n}.log", std::process::id()))
}

/// A function binary started under a Runtime API of its own, past its init.
pub struct StartedFunction {
    pub api: RuntimeApi,
    pub process: FunctionProcess,
    /// From the spawn to the first `/next`.
    pub init: Duration,
}

/// Starts `binary` as function `name` with the environment the local stack's watch gives it
/// (`stack_env`) and `overrides` over it, its output in a `scratch_log`, and waits up to
/// `timeout` for its first poll.
pub async fn start_function(
    binary: &Path,
    name: &str,
    overrides: &[(&str, &str)],
    timeout: Duration,
) -> Result<StartedFunction, String> {
    let mut env = stack_env();
    for (key, value) in overrides {
        env.insert((*key).to_owned(), (*value).to_owned());
    }
    let env: Vec<(String, String)> = env.into_iter().collect();
    let mut api = RuntimeApi::start(name).await.map_err(|e| e.to_string())?;
    let spawned = Instant::now();
    let mut process = FunctionProcess::spawn(binary, name, api.addr, &env, &scratch_log(name))?;
    let polled = api
        .first_poll(&mut process, timeout)
        .await
        .map_err(|e| format!("{name} never polled: {e}"))?;
    Ok(StartedFunction {
        api,
        process,
        init: polled.saturating_duration_since(spawned),
    })
}

/// A running function binary; dropping it kills the process.
pub struct FunctionProcess {
    pub name: String,
    pub log: PathBuf,
    child: Child,
    exit: Option<String>,
}

impl FunctionProcess {
    /// Spawns `binary` as Lambda would: a clean environment with the `AWS_LAMBDA_*` variables,
    /// plus `env` (the DEX and AWS configuration). Output is appended to `log`.
    pub fn spawn(
        binary: &Path,
        name: &str,
        runtime_api: SocketAddr,
        env: &[(String, String)],
        log: &Path,
    ) -> Result<Self, String> {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| format!("cannot open {}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let mut command = Command::new(binary);
        command.env_clear();
        for (key, value) in env {
            command.env(key, value);
        }
        command
            .envs(crate::support::lambda_runtime_env(runtime_api, name))
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        Ok(Self {
            name: name.to_owned(),
            log: log.to_owned(),
            child,
            exit: None,
        })
    }

    /// The OS process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process outright (SIGKILL on unix: no handler, no flush, no goodbye to the
    /// Runtime API, as when Lambda's host loses the instance) and reaps it.
    pub fn kill(&mut self) -> std::io::Result<()> {
        self.child.kill()?;
        let status = self.child.wait()?;
        self.exit = Some(status.to_string());
        Ok(())
    }

    /// The exit status, once the process has ended.
    pub fn exited(&mut self) -> Option<String> {
        if self.exit.is_none()
            && let Ok(Some(status)) = self.child.try_wait()
        {
            self.exit = Some(status.to_string());
        }
        self.exit.clone()
    }
}

impl Drop for FunctionProcess {
    fn drop(&mut self) {
        if self.exit.is_none() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
