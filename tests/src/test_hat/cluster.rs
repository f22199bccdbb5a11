//! The public handles: [`TestHatCluster`] (the server and its many HATs) and [`TestHat`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use serde_json::Value;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::keys::{
    HatKey, RSA1024_PUBLIC_KEY_PEM, fresh_ec_p256_public_key_pem, fresh_rsa2048_public_key_pem,
};
use super::server;
use super::token::TokenBuilder;

/// Default username of every HAT's `platform` user (hat-database-schema's `hatdex.org`).
pub const DEFAULT_PLATFORM_USERNAME: &str = "hatdex.org";

/// How a HAT misbehaves. Set with [`TestHat::set_behaviour`].
///
/// `Slow` and `Redirect` apply to every request to the HAT; the others change only what
/// `GET /publickey` answers (login and other endpoints keep working).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Behaviour {
    /// Answers like a healthy HAT.
    #[default]
    Normal,
    /// `/publickey` answers 404 `{"error":"Not Found","message":"HAT unavailable"}`.
    NotFound,
    /// `/publickey` serves a different, freshly generated 2048-bit RSA key than the one
    /// the HAT signs with.
    WrongKey,
    /// Sleeps this long before answering anything (then answers normally).
    Slow(Duration),
    /// Answers everything with 302 and this `Location`.
    Redirect(String),
    /// `/publickey` answers 200 with this many bytes of PEM-looking junk, streamed with
    /// chunked encoding (no `Content-Length`, so only reading stops it).
    HugeBody(usize),
    /// `/publickey` serves a valid EC P-256 SPKI PEM (not RSA).
    NonRsaKey,
    /// `/publickey` serves a 1024-bit RSA SPKI PEM (too small).
    SmallRsaKey,
    /// `/publickey` answers 200 with text that is not a PEM.
    Garbage,
}

/// One request the cluster received (whatever the HAT or the answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// The `Host` header exactly as sent (the HAT address, port included); empty if absent.
    pub hat: String,
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, without the query string.
    pub path: String,
    /// The raw query string (no `?`), if any.
    pub query: Option<String>,
    /// Headers in arrival order, names lowercased, values lossily decoded as UTF-8.
    pub headers: Vec<(String, String)>,
    /// The body bytes (empty if the body was too large or unreadable).
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON, if it is JSON.
    #[must_use]
    pub fn body_json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// A scripted answer: for `hat`, a request with `method` whose path starts with
/// `path_prefix` gets `status` with `body` as JSON.
#[derive(Debug, Clone)]
pub(crate) struct ScriptedResponse {
    pub(crate) hat: String,
    pub(crate) method: String,
    pub(crate) path_prefix: String,
    pub(crate) status: u16,
    pub(crate) body: Value,
}

/// State shared by the handles and the server thread.
pub(crate) struct Shared {
    pub(crate) port: u16,
    pub(crate) hats: Mutex<HashMap<String, Arc<HatInner>>>,
    pub(crate) requests: Mutex<Vec<RecordedRequest>>,
    pub(crate) responses: Mutex<Vec<ScriptedResponse>>,
    /// `(username, password)` of the platform user every HAT of the cluster has.
    pub(crate) platform: Mutex<(String, String)>,
}

pub(crate) struct HatInner {
    pub(crate) address: String,
    pub(crate) platform_user_id: Uuid,
    pub(crate) state: Mutex<HatState>,
}

pub(crate) struct HatState {
    /// The key the HAT signs with (and serves, when `Normal`). Replaced by `rotate_key`;
    /// an `Arc` so a request or a token builder keeps using the key it started with.
    pub(crate) key: Arc<HatKey>,
    pub(crate) behaviour: Behaviour,
    /// The PEM `/publickey` serves instead of the real one (`WrongKey`, `NonRsaKey`,
    /// `SmallRsaKey`), made when the behaviour is set so the server never generates keys.
    pub(crate) decoy_pem: Option<String>,
    pub(crate) login_tokens: Vec<String>,
    /// The HAT API's data and failure switches (`api`).
    pub(crate) api: super::api::ApiState,
}

/// Locks a mutex even if a panicking thread poisoned it: the data are plain records, so
/// a half-finished update cannot break an invariant, and one failed test must not take
/// the server down for others.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running HAT cluster: one HTTP server on `127.0.0.1:PORT` hosting many HATs, each
/// selected by the `Host` header (`alice.hubat.net:PORT`), like a real multi-tenant HAT2.0
/// deployment.
///
/// The server runs on its own thread and Tokio runtime, so it works from any test
/// runtime (current-thread or not) and can be shared between tests. Dropping the handle
/// (or [`shutdown`](Self::shutdown)) stops it and closes every connection.
pub struct TestHatCluster {
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    stopped: Option<oneshot::Receiver<()>>,
}

impl std::fmt::Debug for TestHatCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestHatCluster")
            .field("port", &self.shared.port)
            .field("hats", &lock(&self.shared.hats).keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl TestHatCluster {
    /// Binds `127.0.0.1:0` and starts serving. Panics if the socket or the server thread
    /// cannot be created (a broken test environment).
    pub async fn start() -> Self {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("make the listener non-blocking");
        let port = listener.local_addr().expect("listener address").port();

        let shared = Arc::new(Shared {
            port,
            hats: Mutex::new(HashMap::new()),
            requests: Mutex::new(Vec::new()),
            responses: Mutex::new(Vec::new()),
            platform: Mutex::new((DEFAULT_PLATFORM_USERNAME.to_owned(), random_password())),
        });

        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        let (stopped_tx, stopped_rx) = oneshot::channel();
        let (ready_tx, ready_rx) = oneshot::channel();
        let server_shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name(format!("test-hat-cluster-{port}"))
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name(format!("test-hat-{port}"))
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                runtime.block_on(server::run(listener, server_shared, ready_tx, shutdown_rx));
                // Dropping the runtime cancels every connection task still running.
                drop(runtime);
                let _ = stopped_tx.send(());
            })
            .expect("spawn the test HAT cluster thread");
        ready_rx
            .await
            .expect("the test HAT cluster thread reports readiness")
            .expect("the test HAT cluster starts");

        Self {
            shared,
            shutdown: Some(shutdown_tx),
            stopped: Some(stopped_rx),
        }
    }

    /// The port every HAT of the cluster listens on.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.shared.port
    }

    /// `http://127.0.0.1:PORT` (send the HAT address as `Host`).
    #[must_use]
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.shared.port)
    }

    /// The HAT address `add_hat(label)` gives: `label:PORT`.
    #[must_use]
    pub fn address_for(&self, label: &str) -> String {
        format!("{label}:{}", self.shared.port)
    }

    /// Creates the HAT `label:PORT` (e.g. `alice.hubat.net:40123`) with a fresh 2048-bit
    /// RSA key. Generating the key takes a moment and blocks the calling thread.
    /// Panics if that HAT already exists.
    pub fn add_hat(&self, label: &str) -> TestHat {
        self.add_hat_with_key(label, Arc::new(HatKey::generate()))
    }

    /// Creates the HAT `label:PORT` with the same RSA key as `other` (no key to generate:
    /// for suites that need hundreds of HATs and never tell them apart by key).
    pub fn add_hat_sharing_key(&self, label: &str, other: &TestHat) -> TestHat {
        self.add_hat_with_key(label, other.current_key())
    }

    fn add_hat_with_key(&self, label: &str, key: Arc<HatKey>) -> TestHat {
        let address = self.address_for(label);
        let inner = Arc::new(HatInner {
            address: address.clone(),
            platform_user_id: Uuid::new_v4(),
            state: Mutex::new(HatState {
                key,
                behaviour: Behaviour::Normal,
                decoy_pem: None,
                login_tokens: Vec::new(),
                api: super::api::ApiState::default(),
            }),
        });
        let previous = lock(&self.shared.hats).insert(address.clone(), Arc::clone(&inner));
        assert!(previous.is_none(), "test HAT {address} already exists");
        TestHat {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }

    /// The HAT with this address (`label:PORT`), if it exists.
    #[must_use]
    pub fn hat(&self, address: &str) -> Option<TestHat> {
        lock(&self.shared.hats).get(address).map(|inner| TestHat {
            inner: Arc::clone(inner),
            shared: Arc::clone(&self.shared),
        })
    }

    /// Every HAT of the cluster, in no particular order.
    #[must_use]
    pub fn hats(&self) -> Vec<TestHat> {
        lock(&self.shared.hats)
            .values()
            .map(|inner| TestHat {
                inner: Arc::clone(inner),
                shared: Arc::clone(&self.shared),
            })
            .collect()
    }

    /// The cluster's platform user credentials (shared by all its HATs).
    #[must_use]
    pub fn platform_credentials(&self) -> (String, String) {
        lock(&self.shared.platform).clone()
    }

    /// Replaces the platform user credentials of every HAT of the cluster.
    pub fn set_platform_credentials(&self, username: &str, password: &str) {
        crate::secrets_ledger::record("a test HAT cluster's platform password", password);
        *lock(&self.shared.platform) = (username.to_owned(), password.to_owned());
    }

    /// Scripts an answer for the HAT `address`: a request with `method` (case-insensitive)
    /// whose path starts with `path_prefix` (plain string prefix, query excluded) gets
    /// `status` with `body` as JSON. Consulted before the built-in endpoints
    /// (`/publickey`, `/users/access_token`) and the default `200 {}`; the most recently
    /// set matching rule wins. `Slow` and `Redirect` behaviours still apply first.
    pub fn set_response(
        &self,
        address: &str,
        method: &str,
        path_prefix: &str,
        status: u16,
        body: Value,
    ) {
        push_response(&self.shared, address, method, path_prefix, status, body);
    }

    /// Forgets every scripted answer of every HAT.
    pub fn clear_responses(&self) {
        lock(&self.shared.responses).clear();
    }

    /// Every request received so far, in arrival order.
    #[must_use]
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// The requests whose `Host` was exactly `address`, in arrival order.
    #[must_use]
    pub fn requests_for(&self, address: &str) -> Vec<RecordedRequest> {
        requests_for(&self.shared, address)
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }

    /// Stops the server and waits until its port is closed and its connections are gone.
    pub async fn shutdown(mut self) {
        self.shutdown.take();
        if let Some(stopped) = self.stopped.take() {
            let _ = stopped.await;
        }
    }
}

impl Drop for TestHatCluster {
    fn drop(&mut self) {
        // Dropping the sender wakes the accept loop, which then stops the server.
        self.shutdown.take();
    }
}

fn push_response(
    shared: &Shared,
    address: &str,
    method: &str,
    path_prefix: &str,
    status: u16,
    body: Value,
) {
    lock(&shared.responses).push(ScriptedResponse {
        hat: address.to_owned(),
        method: method.to_ascii_uppercase(),
        path_prefix: path_prefix.to_owned(),
        status,
        body,
    });
}

fn requests_for(shared: &Shared, address: &str) -> Vec<RecordedRequest> {
    lock(&shared.requests)
        .iter()
        .filter(|r| r.hat == address)
        .cloned()
        .collect()
}

/// A random platform password. It deliberately contains characters that must be
/// URL-encoded (`+`, `/`, `%`, `&`, space), as real passwords may: HAT2.0 URL-decodes the
/// `username`/`password` headers, so a client that forgets to encode them fails here.
fn random_password() -> String {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("system random generator");
    let password = format!("{}+/% &pw", hex::encode(bytes));
    crate::secrets_ledger::record("a test HAT cluster's platform password", &password);
    password
}

/// A handle to one HAT of a [`TestHatCluster`]; cheap to clone.
#[derive(Clone)]
pub struct TestHat {
    inner: Arc<HatInner>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for TestHat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestHat")
            .field("address", &self.inner.address)
            .field("behaviour", &self.behaviour())
            .finish_non_exhaustive()
    }
}

impl TestHat {
    /// The HAT address, port included (`alice.hubat.net:40123`): its `Host` and `iss`.
    #[must_use]
    pub fn address(&self) -> &str {
        &self.inner.address
    }

    /// The SPKI PEM of the key the HAT signs with: exactly what `GET /publickey` serves
    /// while the behaviour is `Normal`.
    #[must_use]
    pub fn public_key_pem(&self) -> String {
        self.current_key().pem.clone()
    }

    /// The cluster's platform user `(username, password)`, which `/users/access_token`
    /// accepts.
    #[must_use]
    pub fn platform_credentials(&self) -> (String, String) {
        lock(&self.shared.platform).clone()
    }

    /// The `userId` `/users/access_token` answers for the platform user.
    #[must_use]
    pub fn platform_user_id(&self) -> Uuid {
        self.inner.platform_user_id
    }

    /// The current misbehaviour switch.
    #[must_use]
    pub fn behaviour(&self) -> Behaviour {
        lock(&self.inner.state).behaviour.clone()
    }

    /// Switches how the HAT misbehaves (see [`Behaviour`]). `WrongKey` and `NonRsaKey`
    /// generate their decoy key now, so this may take a moment.
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        let decoy_pem = match behaviour {
            Behaviour::WrongKey => Some(fresh_rsa2048_public_key_pem()),
            Behaviour::NonRsaKey => Some(fresh_ec_p256_public_key_pem()),
            Behaviour::SmallRsaKey => Some(RSA1024_PUBLIC_KEY_PEM.to_owned()),
            _ => None,
        };
        let mut state = lock(&self.inner.state);
        state.behaviour = behaviour;
        state.decoy_pem = decoy_pem;
    }

    /// Replaces the HAT's key pair with a fresh 2048-bit one, as re-provisioning does:
    /// `/publickey` serves the new key and new tokens are signed with it.
    pub fn rotate_key(&self) {
        let key = Arc::new(HatKey::generate());
        lock(&self.inner.state).key = key;
    }

    /// The token HAT2.0 sends to DEX (stats, consent): RS256, `iss` = this HAT,
    /// `accessScope: "validate"`, `resource: dex_url`, 30-day lifetime.
    #[must_use]
    pub fn dex_token(&self, dex_url: &str) -> String {
        self.token_builder(dex_url).build()
    }

    /// A builder that starts as [`dex_token`](Self::dex_token) and can bend every part
    /// of it for negative tests.
    #[must_use]
    pub fn token_builder(&self, dex_url: &str) -> TokenBuilder {
        TokenBuilder::new(
            self.current_key(),
            &self.inner.address,
            &[("resource", dex_url), ("accessScope", "validate")],
        )
    }

    /// Every token `/users/access_token` handed out so far, oldest first.
    #[must_use]
    pub fn issued_login_tokens(&self) -> Vec<String> {
        lock(&self.inner.state).login_tokens.clone()
    }

    /// Scripts an answer for this HAT; see [`TestHatCluster::set_response`].
    pub fn set_response(&self, method: &str, path_prefix: &str, status: u16, body: Value) {
        push_response(
            &self.shared,
            &self.inner.address,
            method,
            path_prefix,
            status,
            body,
        );
    }

    /// The requests this HAT received, in arrival order.
    #[must_use]
    pub fn requests(&self) -> Vec<RecordedRequest> {
        requests_for(&self.shared, &self.inner.address)
    }

    pub(crate) fn inner(&self) -> &HatInner {
        &self.inner
    }

    pub(crate) fn current_key(&self) -> Arc<HatKey> {
        Arc::clone(&lock(&self.inner.state).key)
    }
}
