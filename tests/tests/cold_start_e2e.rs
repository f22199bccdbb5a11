//! Cold start (issue 8 §2), on the binaries `make test` builds, each under the local Lambda
//! Runtime API of `dex_tests::runtime_api` and with its DynamoDB / Secrets Manager endpoint behind a gate this test opens
//! and closes: a function polls for its first event without waiting on a dependency (even
//! one that never answers), having already started connecting to what it needs; while a
//! dependency is unreachable it answers DEX's 503 (with `Retry-After`), and once the
//! dependency is back it answers normally, in the same process.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dex_tests::gateway_event::response_json;
use dex_tests::routes::{built_binary as binary, workspace_root};
use dex_tests::runtime_api::{self, FunctionProcess, RuntimeApi};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
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
    /// While closed: the port bound but not listening (connections are refused), so that no
    /// other socket of the test (a Runtime API on port 0) is given it meanwhile.
    reserved: Mutex<Option<tokio::net::TcpSocket>>,
}

/// A socket bound to 127.0.0.1:`port` (0: any free one) that does not listen.
fn reserve(port: u16) -> tokio::net::TcpSocket {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket
        .bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .unwrap();
    socket
}

impl Gate {
    async fn new(target: SocketAddr, state: GateState) -> Self {
        let socket = reserve(0);
        let port = socket.local_addr().unwrap().port();
        let gate = Self {
            port,
            target,
            accepted: Arc::new(AtomicUsize::new(0)),
            tasks: Mutex::new(JoinSet::new()),
            reserved: Mutex::new(Some(socket)),
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
        let mut reserved = self.reserved.lock().await;
        if state == GateState::Closed {
            reserved.get_or_insert_with(|| reserve(self.port));
            return;
        }
        drop(reserved.take());
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

/// One function binary under a local Runtime API (`dex_tests::runtime_api`), with the
/// stack's environment and the test's endpoints; killed when dropped.
struct Function {
    api: RuntimeApi,
    process: FunctionProcess,
}

impl Function {
    /// Starts `name` with `overrides` over the stack's environment and waits for its first
    /// poll; answers the function and how long that poll took from the spawn.
    async fn start(name: &str, overrides: &[(&str, &str)]) -> (Self, Duration) {
        let started =
            runtime_api::start_function(&binary(name), name, overrides, Duration::from_secs(60))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        let function = Self {
            api: started.api,
            process: started.process,
        };
        (function, started.init)
    }

    fn assert_running(&mut self) {
        if let Some(status) = self.process.exited() {
            panic!(
                "{} exited: {status}; see {}",
                self.process.name,
                self.process.log.display()
            );
        }
    }

    /// Hands out `event` and returns the function's answer: (status, headers, JSON body).
    async fn invoke(&mut self, event: &Value) -> (u16, Value, Value) {
        let invocation = self
            .api
            .invoke(
                &mut self.process,
                Bytes::from(event.to_string()),
                Duration::from_secs(40),
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let response = invocation.response();
        assert!(
            response.get("statusCode").is_some(),
            "not an answer: {response}"
        );
        (
            runtime_api::status_of(&response),
            response["headers"].clone(),
            response_json(&response).unwrap_or(Value::Null),
        )
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
    let (mut function, init) = Function::start(
        "admin-accounts-list",
        &[
            ("AWS_ENDPOINT_URL_DYNAMODB", dynamodb.url().as_str()),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", secrets.url().as_str()),
        ],
    )
    .await;
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
    let (mut process, init) = Function::start(function, &[(variable, gate.url().as_str())]).await;
    eprintln!("{function}: first poll after {init:?} with {variable} refusing connections");
    let event = sample_event(function);
    let first = process.invoke(&event).await;
    assert_unavailable(function, &first);
    let again = process.invoke(&event).await;
    assert_unavailable(function, &again);
    process.assert_running();

    gate.set(GateState::Open).await;
    let (status, _, body) = process.invoke(&event).await;
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
