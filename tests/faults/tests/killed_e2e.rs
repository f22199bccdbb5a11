//! A function process killed mid-request (issue 11 §2), on the fault phase's stack
//! (scripts/faults.sh). `cargo lambda watch` neither answers a request whose process died
//! nor replaces the process, so these tests run the function's binary (DEX_FAULTS_BIN_DIR)
//! under the local Lambda Runtime API of `dex_tests::runtime_api`, with the environment the
//! watch gives it. Each hands the process a request, waits until the request has reached an
//! observed step (the test HAT holding the answer to the call DEX made, or the counting
//! proxy in front of DynamoDB holding a write), SIGKILLs the process there, then gives the
//! same request to a new process of the same binary (a cold start, as Lambda would), and
//! shows through the HTTP API and the test HAT that nothing half-done stayed and that the
//! totals are exact. The watch's functions (DEX_TEST_URL) serve the other requests.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::Response;
use serde_json::Value;

use dex_tests::aws_proxy::CountingProxy;
use dex_tests::gateway_event::{Event, response_json};
use dex_tests::market::Market;
use dex_tests::routes::target_dir;
use dex_tests::runtime_api::{self, FunctionProcess, Note, RuntimeApi};
use dex_tests::stats_support::{
    StatsCluster, batch, namespace_totals, report, report_token, unique_namespace,
};
use dex_tests::support::{Dex, assert_error, expect_json, public_url};
use dex_tests::test_hat::{RouteFail, TestHat};

mod common;
use common::{
    approved_plug, chain_entries, claim, claimed, inbound_items, logged_items, running_offer,
};

/// How long the HAT or the proxy holds the answer the killed process waits for: far longer
/// than it takes to kill it.
const HELD: Duration = Duration::from_secs(60);
/// A safety bound for a step of the emulated function, not a timing assertion.
const STEP: Duration = Duration::from_secs(60);

/// One function binary under a local Runtime API, started again after a kill.
struct Function {
    name: &'static str,
    binary: PathBuf,
    log: PathBuf,
    env: Vec<(String, String)>,
    api: RuntimeApi,
    process: FunctionProcess,
}

impl Function {
    /// Starts `name` with the stack's environment (runtime_api::stack_env) and `overrides`,
    /// and waits for its first poll (its init done). Its HAT timeout and budget are long,
    /// so the process is still waiting when the test kills it.
    async fn start(name: &'static str, overrides: &[(&str, &str)]) -> Self {
        let dir = std::env::var_os("DEX_FAULTS_BIN_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| target_dir().join("debug"));
        let binary = dir.join(name);
        assert!(
            binary.exists(),
            "{} is missing: scripts/faults.sh builds it (cargo build -p {name})",
            binary.display()
        );
        let logs = std::env::var_os("DEX_FAULTS_LOG_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let mut env: BTreeMap<String, String> = runtime_api::stack_env();
        env.insert("DEX_HAT_TIMEOUT_SECS".into(), "20".into());
        env.insert("DEX_HAT_BUDGET_SECS".into(), "24".into());
        for (key, value) in overrides {
            env.insert((*key).to_owned(), (*value).to_owned());
        }
        let api = RuntimeApi::start(name).await.expect("a local Runtime API");
        let env: Vec<(String, String)> = env.into_iter().collect();
        let log = logs.join(format!("killed-{name}.log"));
        let process = FunctionProcess::spawn(&binary, name, api.addr, &env, &log).unwrap();
        let mut function = Self {
            name,
            binary,
            log,
            env,
            api,
            process,
        };
        function.ready().await;
        function
    }

    /// Waits for the process's first `/next`.
    async fn ready(&mut self) {
        if let Err(e) = self.api.first_poll(&mut self.process, STEP).await {
            panic!("{e}");
        }
    }

    /// A new process of the same binary on the same Runtime API: a cold start.
    async fn cold_start(&mut self) {
        assert!(self.process.exited().is_some(), "the old process is gone");
        self.process =
            FunctionProcess::spawn(&self.binary, self.name, self.api.addr, &self.env, &self.log)
                .unwrap();
        eprintln!("{}: new process {}", self.name, self.process.pid());
        self.ready().await;
    }

    /// Hands `event` out and answers the function's (status, JSON body).
    async fn invoke(&mut self, event: &Value) -> (u16, Value) {
        let invocation = self
            .api
            .invoke(&mut self.process, Bytes::from(event.to_string()), STEP)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let response = invocation.response();
        let status = runtime_api::status_of(&response);
        (status, response_json(&response).unwrap_or(Value::Null))
    }

    /// Hands `event` out, waits until `reached` (the request is at `point`) without the
    /// function having answered, and SIGKILLs the process there.
    async fn kill_at(&mut self, event: &Value, point: &str, mut reached: impl FnMut() -> bool) {
        let id = self.api.enqueue(Bytes::from(event.to_string()));
        loop {
            match self.api.next_note(&mut self.process, STEP).await {
                Ok(Note::HandedOut { id: got, .. }) if got == id => break,
                Ok(other) => runtime_api::check(self.name, other).unwrap(),
                Err(e) => panic!("{e}"),
            }
        }
        let deadline = Instant::now() + STEP;
        while !reached() {
            while let Some(note) = self.api.try_note() {
                if let Note::Response { body, .. } = &note {
                    panic!(
                        "{} answered before {point}: {}",
                        self.name,
                        String::from_utf8_lossy(body)
                    );
                }
                runtime_api::check(self.name, note).unwrap();
            }
            assert!(
                self.process.exited().is_none(),
                "{} exited before {point}; see {}",
                self.name,
                self.log.display()
            );
            assert!(Instant::now() < deadline, "{}: never {point}", self.name);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let pid = self.process.pid();
        self.process.kill().expect("SIGKILL");
        eprintln!(
            "{}: process {pid} killed (SIGKILL) {point}: {:?}",
            self.name,
            self.process.exited()
        );
    }
}

// ---- offer-claim -------------------------------------------------------------------------

fn claim_event(id: &str, hat: &TestHat) -> Value {
    Event::get("/api/v2.6/offer/{offerId}/claim")
        .param("offerId", id)
        .header("x-auth-token", &hat.dex_token(&public_url()))
        .build()
}

async fn user_claim(id: &str, hat: &TestHat) -> Response {
    Dex::new()
        .get(
            &format!("/api/v2.6/offer/{id}/userClaim"),
            Some(&hat.dex_token(&public_url())),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_killed_while_the_hat_holds_its_debit_keeps_its_place_and_a_new_process_resumes_it_once()
 {
    let m = Market::start().await;
    let alice = m.hat("alice").await;
    let bob = m.hat("bob").await;
    let id = running_offer(&m, 1).await;
    let mut function = Function::start("offer-claim", &[]).await;

    // The HAT makes the debit, then holds its answer: the process dies not knowing.
    alice.fail_route(
        "POST /api/v2.6/data-debit/",
        RouteFail::SlowAfter(HELD),
        Some(1),
    );
    let event = claim_event(&id, &alice);
    function
        .kill_at(&event, "while the HAT holds the debit's answer", || {
            m.debit_posts(&alice) == 1
        })
        .await;
    assert_eq!(alice.data_debits().len(), 1, "the HAT made the debit");
    assert_eq!(alice.users().len(), 1, "and the claim's credential user");
    // DEX kept no claim, and the place stays with alice: the offer (max 1) is full for bob.
    assert_error(user_claim(&id, &alice).await, 404, "no claim").await;
    assert!(claimed(&m, &alice).await.is_empty());
    assert_error(claim(&id, &bob).await, 400, "offer is full").await;

    // The retry, in a new process: resumed, the HAT's 400 on the second create taken as
    // the debit.
    function.cold_start().await;
    let (status, kept) = function.invoke(&claim_event(&id, &alice)).await;
    assert_eq!(status, 200, "{kept}");
    assert_eq!(kept["claimerNumber"], 1, "{kept}");
    assert_eq!(m.debit_posts(&alice), 2);
    assert_eq!(alice.data_debits().len(), 1, "one debit");
    let users = alice.users();
    assert_eq!(users.len(), 1, "one credential user");
    assert!(users[0].enabled, "{:?}", users[0]);
    let claimed = claimed(&m, &alice).await;
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    assert_eq!(claimed[0]["resumed"], true, "{claimed:?}");
    let mine = expect_json(user_claim(&id, &alice).await, 200).await;
    assert_eq!(mine["claimerNumber"], 1, "{mine}");
    assert_error(claim(&id, &bob).await, 400, "offer is full").await;
}

// ---- dataplug-connect --------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_killed_while_the_hat_holds_the_new_user_is_made_once_by_a_new_process() {
    let m = Market::start().await;
    let hat = m.hat("carol").await;
    let (plug, owner) = approved_plug(&m.admin).await;
    let mut function = Function::start("dataplug-connect", &[]).await;
    let event = Event::get("/api/dataplugs/{dataplugId}/connect")
        .param("dataplugId", &plug)
        .query("hat", hat.address())
        .header("x-auth-token", &owner)
        .build();
    let user_posts = || {
        m.hats
            .requests_for(hat.address())
            .iter()
            .filter(|r| r.method == "POST" && r.path.starts_with("/users/user"))
            .count()
    };

    // The HAT makes the plug's user, then holds its answer: the process dies not knowing.
    hat.fail_route("POST /users/user", RouteFail::SlowAfter(HELD), Some(1));
    function
        .kill_at(&event, "while the HAT holds the new user's answer", || {
            user_posts() == 1
        })
        .await;
    assert_eq!(hat.users().len(), 1, "the HAT made the user");
    assert!(
        chain_entries(&m.admin, &hat, "plug.connected")
            .await
            .is_empty(),
        "DEX recorded no connection"
    );

    // The retry, in a new process: finds the user, enables it, records the connection once.
    function.cold_start().await;
    let (status, body) = function.invoke(&event).await;
    assert_eq!(status, 200, "{body}");
    let users = hat.users();
    assert_eq!(users.len(), 1, "one user on the HAT");
    assert!(users[0].enabled, "{:?}", users[0]);
    let connected = chain_entries(&m.admin, &hat, "plug.connected").await;
    assert_eq!(connected.len(), 1, "{connected:?}");
}

// ---- stats-report ------------------------------------------------------------------------

const TRANSACT: &str = "DynamoDB_20120810.TransactWriteItems";

fn report_event(hat: &TestHat, body: &str) -> Value {
    let items: Value = serde_json::from_str(body).expect("a JSON batch");
    Event::post("/stats/report")
        .header("x-auth-token", &report_token(hat))
        .json_body(&items)
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_killed_between_its_transactions_is_counted_exactly_once_when_resent() {
    let dex = Dex::new();
    let sc = StatsCluster::start(&["dave"]).await;
    let hat = &sc.hats[0];
    let ns = unique_namespace();
    // 100 endpoints: more actions than one transaction holds, so the batch is committed in
    // chunks, one transaction each (dex::stats::ingest::plan_chunks).
    let (items, want) = inbound_items(&ns, 0, 100, 100);
    let body = batch(&items);
    let upstream = std::env::var("AWS_ENDPOINT_URL_DYNAMODB")
        .expect("AWS_ENDPOINT_URL_DYNAMODB: run through `make test` (scripts/faults.sh)");
    let dynamodb = CountingProxy::start(&upstream).await.unwrap();
    let mut function = Function::start(
        "stats-report",
        &[("AWS_ENDPOINT_URL_DYNAMODB", dynamodb.url.as_str())],
    )
    .await;

    // The first chunk's transaction goes through; the second is held, and the process dies.
    dynamodb.hold(TRANSACT, 1);
    function
        .kill_at(
            &report_event(hat, &body),
            "while DynamoDB holds the report's second transaction",
            || dynamodb.held() == 1,
        )
        .await;
    dynamodb.release();
    let first = logged_items(&dex, hat).await;
    eprintln!("counted before the kill: {first} of 100 items");
    assert!(
        0 < first && first < 100,
        "the first chunk is counted (with its log entry), not the rest: {first}"
    );

    // The HAT resends the batch (a fresh token, as HAT2.0 mints one per upload) to a new
    // process: only the rest counts, the first chunk's items hit their markers.
    function.cold_start().await;
    let (status, outcome) = function.invoke(&report_event(hat, &body)).await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["accepted"], 100 - first, "{outcome}");
    assert_eq!(outcome["duplicates"], first, "{outcome}");
    assert_eq!(dynamodb.held(), 1, "nothing else was held");

    // Every item counted once, with its marker and in one log entry.
    let again = report(&dex, hat, &body).await;
    assert_eq!((again.accepted, again.duplicates), (0, 100), "{again:?}");
    assert_eq!(namespace_totals(&dex, &ns).await, want);
    assert_eq!(logged_items(&dex, hat).await, 100);
}
