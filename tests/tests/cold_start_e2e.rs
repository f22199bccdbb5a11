//! Cold start (issue 8 §2), on the binaries `make test` builds, each against a fake Lambda
//! Runtime API and with its DynamoDB / Secrets Manager endpoint behind a gate this test opens
//! and closes: a function polls for its first event without waiting on a dependency (even
//! one that never answers), having already started connecting to what it needs; while a
//! dependency is unreachable it answers DEX's 503 (with `Retry-After`), and once the
//! dependency is back it answers normally, in the same process.

use dex_tests::routes::{built_binary as binary, workspace_root};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinSet;

/// The real endpoint the test stack exported for `variable` (host:port).
fn stack_endpoint(variable: &str) -> SocketAddr {
    let url = std::env::var(variable)
        .unwrap_or_else(|_| panic!("{variable} is not set: run through `make test`"));
    let host = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .replace("localhost", "127.0.0.1");
    host.parse()
        .unwrap_or_else(|e| panic!("{variable}={url}: {e}"))
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum GateState {
    /// Nothing listens: connections are refused.
    Closed,
    /// Connections are accepted and never answered.
    Stalled,
    /// Connections are forwarded to the real endpoint.
    Open,
}

/// A TCP port in front of a dependency that the test can close, stall or open. Closing or
/// stalling it also drops every connection it carried, so a pooled connection cannot
/// bypass it.
struct Gate {
    port: u16,
    target: SocketAddr,
    accepted: Arc<AtomicUsize>,
    tasks: Mutex<JoinSet<()>>,
}

impl Gate {
    async fn new(target: SocketAddr, state: GateState) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let gate = Self {
            port,
            target,
            accepted: Arc::new(AtomicUsize::new(0)),
            tasks: Mutex::new(JoinSet::new()),
        };
        gate.set(state).await;
        gate
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    async fn set(&self, state: GateState) {
        let mut tasks = self.tasks.lock().await;
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        if state == GateState::Closed {
            return;
        }
        let listener = {
            let mut tries = 0;
            loop {
                match TcpListener::bind(("127.0.0.1", self.port)).await {
                    Ok(l) => break l,
                    Err(e) if tries < 50 => {
                        tries += 1;
                        eprintln!("gate {}: rebinding: {e}", self.port);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => panic!("gate {}: {e}", self.port),
                }
            }
        };
        let (target, accepted) = (self.target, self.accepted.clone());
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
                connections.spawn(async move {
                    if state == GateState::Stalled {
                        // Hold the connection open, read nothing, answer nothing.
                        std::future::pending::<()>().await;
                    }
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
    }
}

/// A Lambda Runtime API that hands out the events the test queues, one per `/next`, and
/// reports every answer (`/response`, and the `/error` posts as `{"error": ...}`).
struct FakeRuntime {
    addr: SocketAddr,
    events: mpsc::UnboundedSender<Value>,
    polls: Arc<AtomicUsize>,
    answers: mpsc::UnboundedReceiver<Value>,
}

impl FakeRuntime {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (events_tx, events_rx) = mpsc::unbounded_channel::<Value>();
        let (answers_tx, answers_rx) = mpsc::unbounded_channel::<Value>();
        let events_rx = Arc::new(Mutex::new(events_rx));
        let polls = Arc::new(AtomicUsize::new(0));
        let (p, ids) = (polls.clone(), Arc::new(AtomicUsize::new(0)));
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (events, answers, polls, ids) = (
                    events_rx.clone(),
                    answers_tx.clone(),
                    p.clone(),
                    ids.clone(),
                );
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let (events, answers, polls, ids) =
                                (events.clone(), answers.clone(), polls.clone(), ids.clone());
                            async move {
                                use http_body_util::BodyExt;
                                let path = req.uri().path().to_owned();
                                let body = req
                                    .into_body()
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes())
                                    .unwrap_or_default();
                                let reply = |status: u16, body: String| {
                                    hyper::Response::builder()
                                        .status(status)
                                        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                                        .unwrap()
                                };
                                if path.ends_with("/invocation/next") {
                                    polls.fetch_add(1, Ordering::SeqCst);
                                    let Some(event) = events.lock().await.recv().await else {
                                        std::future::pending::<()>().await;
                                        unreachable!();
                                    };
                                    let id = format!("cold-{}", ids.fetch_add(1, Ordering::SeqCst));
                                    let deadline = chrono::Utc::now().timestamp_millis() + 30_000;
                                    let mut response = reply(200, event.to_string());
                                    let headers = response.headers_mut();
                                    for (name, value) in [
                                        ("lambda-runtime-aws-request-id", id),
                                        ("lambda-runtime-deadline-ms", deadline.to_string()),
                                        (
                                            "lambda-runtime-invoked-function-arn",
                                            "arn:aws:lambda:us-east-1:123456789012:function:cold"
                                                .to_owned(),
                                        ),
                                        (
                                            "lambda-runtime-trace-id",
                                            "Root=1-00000000-000000000000000000000000".to_owned(),
                                        ),
                                    ] {
                                        headers.insert(name, value.parse().unwrap());
                                    }
                                    return Ok::<_, std::convert::Infallible>(response);
                                }
                                let text = String::from_utf8_lossy(&body).into_owned();
                                if path.ends_with("/response") {
                                    let answer = serde_json::from_str(&text)
                                        .unwrap_or_else(|_| serde_json::json!({ "raw": text }));
                                    let _ = answers.send(answer);
                                } else if path.ends_with("/error") {
                                    let _ = answers.send(serde_json::json!({ "error": text }));
                                }
                                Ok(reply(202, "{}".to_owned()))
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(socket), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            events: events_tx,
            polls,
            answers: answers_rx,
        }
    }

    fn lambda_env(&self, name: &str) -> Vec<(String, String)> {
        dex_tests::support::lambda_runtime_env(self.addr, name)
    }

    /// Waits for the first `/next`; returns how long it took from `since`.
    async fn first_poll(&self, since: Instant, function: &mut Function) -> Duration {
        let deadline = since + Duration::from_secs(60);
        while self.polls.load(Ordering::SeqCst) == 0 {
            assert!(Instant::now() < deadline, "{} never polled", function.name);
            function.assert_running();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        since.elapsed()
    }

    /// Hands out `event` and returns the function's answer: (status, headers, JSON body).
    async fn invoke(&mut self, event: &Value) -> (u16, Value, Value) {
        self.events.send(event.clone()).unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(40), self.answers.recv())
            .await
            .expect("no answer within 40 s")
            .expect("the runtime stopped");
        assert!(
            answer.get("statusCode").is_some(),
            "not an answer: {answer}"
        );
        let raw = answer["body"].as_str().unwrap_or_default();
        let body = if answer["isBase64Encoded"] == true {
            base64::engine::general_purpose::STANDARD
                .decode(raw)
                .unwrap()
        } else {
            raw.as_bytes().to_vec()
        };
        let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
        (
            answer["statusCode"].as_u64().unwrap() as u16,
            answer["headers"].clone(),
            body,
        )
    }
}

/// A function process, killed when dropped.
struct Function {
    name: String,
    child: Child,
}

impl Function {
    fn spawn(name: &str, runtime: &FakeRuntime, env: &[(&str, String)]) -> Self {
        let child = Command::new(binary(name))
            .envs(runtime.lambda_env(name))
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        Self {
            name: name.to_owned(),
            child,
        }
    }

    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("{} exited during init: {status}", self.name);
        }
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sample_event(function: &str) -> Value {
    let path = workspace_root().join(format!("events/{function}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// DEX's 503: its JSON error body, and `Retry-After`.
fn assert_unavailable(function: &str, (status, headers, body): &(u16, Value, Value)) {
    assert_eq!(*status, 503, "{function}: {body}");
    assert_eq!(body["message"], "Service unavailable", "{function}: {body}");
    assert!(body["cause"].is_string(), "{function}: {body}");
    assert!(
        headers["retry-after"]
            .as_str()
            .is_some_and(|s| s.parse::<u32>().is_ok()),
        "{function}: {headers}"
    );
}

/// With DynamoDB and Secrets Manager both accepting connections and never answering (each
/// call of the SDK would wait 10 s), a function that needs both polls for its first event
/// at once, and has by then already started connecting to both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_never_waits_on_a_dependency_that_does_not_answer() {
    let dynamodb = Gate::new(
        stack_endpoint("AWS_ENDPOINT_URL_DYNAMODB"),
        GateState::Stalled,
    )
    .await;
    let secrets = Gate::new(
        stack_endpoint("AWS_ENDPOINT_URL_SECRETS_MANAGER"),
        GateState::Stalled,
    )
    .await;
    let runtime = FakeRuntime::start().await;
    let started = Instant::now();
    let mut function = Function::spawn(
        "admin-accounts-list",
        &runtime,
        &[
            ("AWS_ENDPOINT_URL_DYNAMODB", dynamodb.url()),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", secrets.url()),
        ],
    );
    let init = runtime.first_poll(started, &mut function).await;
    // Far below the 10 s a stalled call takes to fail: the poll did not wait on either.
    assert!(init < Duration::from_secs(5), "first poll after {init:?}");
    // The warm-ups were started at init, without any event.
    let deadline = Instant::now() + Duration::from_secs(10);
    while dynamodb.accepted() == 0 || secrets.accepted() == 0 {
        assert!(
            Instant::now() < deadline,
            "no warm-up connection: DynamoDB {}, Secrets Manager {}",
            dynamodb.accepted(),
            secrets.accepted()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    function.assert_running();
}

/// `function` (whose dependency is behind `variable`) starts with it unreachable, polls,
/// answers 503 while it stays so, and answers `ok` once it is back, without a restart.
async fn unavailable_then_recovers(function: &str, variable: &str, ok: u16) {
    let gate = Gate::new(stack_endpoint(variable), GateState::Closed).await;
    let mut runtime = FakeRuntime::start().await;
    let started = Instant::now();
    let mut process = Function::spawn(function, &runtime, &[(variable, gate.url())]);
    let init = runtime.first_poll(started, &mut process).await;
    eprintln!("{function}: first poll after {init:?} with {variable} refusing connections");
    let event = sample_event(function);
    let first = runtime.invoke(&event).await;
    assert_unavailable(function, &first);
    let again = runtime.invoke(&event).await;
    assert_unavailable(function, &again);
    process.assert_running();

    gate.set(GateState::Open).await;
    let (status, _, body) = runtime.invoke(&event).await;
    assert_eq!(status, ok, "{function} after recovery: {body}");
    process.assert_running();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_answers_503_without_secrets_manager_then_recovers() {
    unavailable_then_recovers("jwks", "AWS_ENDPOINT_URL_SECRETS_MANAGER", 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_answers_503_without_dynamodb_then_recovers() {
    unavailable_then_recovers("stats", "AWS_ENDPOINT_URL_DYNAMODB", 200).await;
}
