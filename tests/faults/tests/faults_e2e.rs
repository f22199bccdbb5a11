//! Faults (issue 11 §2), on the fault phase's own stack (scripts/faults.sh), one test at a
//! time: DynamoDB Local killed and started again on its data on disk, Secrets Manager cut
//! off at its port (moto itself keeps running), and HATs that hang while DynamoDB goes
//! down. (A function process killed mid-request is in killed_e2e.rs: `cargo lambda watch`
//! 1.9.2 neither answers that request nor replaces the instance, so those tests run the
//! function under a Runtime API of their own.) Each test shows the status and message DEX answers
//! during the fault, that nothing half-done stays (markers and counts, places and claims,
//! log entries and their changes), that resends after the fault end with exact totals,
//! and that the function that saw the fault recovers in the same process (its pid under
//! the watch is unchanged: no cold start). Run through `make test` or
//! `DEX_FAULTS=only make test`.

use std::future::Future;
use std::time::{Duration, Instant};

use reqwest::Response;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use dex_tests::hat_support::subject_log;
use dex_tests::market::Market;
use dex_tests::stats_support::{
    StatsCluster, batch, namespace_totals, parse_outcome, post_report, report, report_token,
    unique_namespace,
};
use dex_tests::support::{Dex, assert_error, expect_json};
use dex_tests::test_hat::{RouteFail, TestHat, TestHatCluster};

mod common;
use common::{
    approved_plug, claim, claimed, connect, eventually, inbound_items, logged_items, running_offer,
    sum_into,
};

// ---- the fault controller and the function processes ------------------------------------

/// Sends one command to fault-ctl (scripts/faults.sh) and expects `ok`.
async fn ctl(command: &str) -> String {
    let address = std::env::var("DEX_FAULTS_CONTROL").expect(
        "DEX_FAULTS_CONTROL is not set: run the fault tests with `make test` (scripts/faults.sh)",
    );
    let mut socket = tokio::net::TcpStream::connect(&address)
        .await
        .unwrap_or_else(|e| panic!("fault-ctl at {address}: {e}"));
    socket
        .write_all(format!("{command}\n").as_bytes())
        .await
        .unwrap();
    let mut line = String::new();
    BufReader::new(socket).read_line(&mut line).await.unwrap();
    assert!(line.starts_with("ok "), "fault-ctl {command}: {line}");
    eprintln!("fault-ctl {command}: {}", line.trim_end());
    line
}

/// (pid, parent pid, executable name) of every process.
fn processes() -> Vec<(u32, u32, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`: comm may hold spaces, so split after its `)`.
        let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) else {
            continue;
        };
        let ppid = rest.split(' ').nth(1).and_then(|p| p.parse().ok());
        let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_default();
        if let Some(ppid) = ppid {
            out.push((pid, ppid, exe));
        }
    }
    out
}

/// The processes running `function` under this stack's `cargo lambda watch`.
fn function_pids(function: &str) -> Vec<u32> {
    let watch: u32 = std::env::var("DEX_FAULTS_WATCH_PID")
        .expect("DEX_FAULTS_WATCH_PID is not set: run through `make test` (scripts/faults.sh)")
        .parse()
        .unwrap();
    let all = processes();
    let mut under = vec![watch];
    let mut i = 0;
    while i < under.len() {
        let parent = under[i];
        under.extend(all.iter().filter(|p| p.1 == parent).map(|p| p.0));
        i += 1;
    }
    let mut pids: Vec<u32> = all
        .iter()
        .filter(|(pid, _, exe)| exe == function && under.contains(pid))
        .map(|p| p.0)
        .collect();
    pids.sort_unstable();
    pids
}

/// The one process serving `function` (the fault stack runs one instance per function).
fn function_pid(function: &str) -> u32 {
    let pids = function_pids(function);
    assert_eq!(pids.len(), 1, "processes of {function}: {pids:?}");
    pids[0]
}

/// DEX's 503 for a dependency that is down: its JSON error naming `service`, and a
/// `Retry-After` in seconds.
async fn assert_unavailable(resp: Response, service: &str) {
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = assert_error(resp, 503, service).await;
    assert_eq!(body["message"], "Service unavailable", "{body}");
    assert!(
        retry_after
            .as_deref()
            .is_some_and(|s| s.parse::<u32>().is_ok_and(|n| n > 0)),
        "Retry-After: {retry_after:?}"
    );
}

// ---- statistics while DynamoDB is down ---------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_down_answers_503_after_retries_and_resends_end_with_exact_totals() {
    let dex = Dex::new();
    let sc = StatsCluster::start(&["alice"]).await;
    let hat = &sc.hats[0];
    let ns = unique_namespace();
    let (a, a_totals) = inbound_items(&ns, 0, 10, 2);
    let (b, b_totals) = inbound_items(&ns, 1, 10, 2);
    let (c, c_totals) = inbound_items(&ns, 2, 10, 2);
    let outcome = report(&dex, hat, &batch(&a)).await;
    assert_eq!(
        (outcome.accepted, outcome.duplicates),
        (10, 0),
        "{outcome:?}"
    );
    let reporter = function_pid("stats-report");

    // Down for longer than the report's retries: 503, nothing of the batch counted.
    ctl("dynamodb stop").await;
    let started = Instant::now();
    let resp = post_report(&dex, Some(&report_token(hat)), batch(&b)).await;
    eprintln!("503 after {:?}", started.elapsed());
    assert_unavailable(resp, "DynamoDB").await;
    ctl("dynamodb start").await;
    assert_eq!(function_pid("stats-report"), reporter, "no cold start");

    // A resend after the fault: all of it counted now, once.
    let outcome = report(&dex, hat, &batch(&b)).await;
    assert_eq!(
        (outcome.accepted, outcome.duplicates),
        (10, 0),
        "{outcome:?}"
    );

    // Down while a report is on its way: answered 200 and counted when DynamoDB is back
    // within the report's retries (dex::retry::REPORT_RETRY), else the same 503 (a
    // restart of DynamoDB Local takes 5-30 s on a loaded machine), and the resend counts it.
    ctl("dynamodb stop").await;
    let (token, body) = (report_token(hat), batch(&c));
    let sent = Instant::now();
    let in_flight = tokio::spawn(async move { post_report(&Dex::new(), Some(&token), body).await });
    tokio::time::sleep(Duration::from_secs(1)).await;
    ctl("dynamodb start").await;
    let back_after = sent.elapsed();
    let resp = in_flight.await.unwrap();
    eprintln!(
        "DynamoDB back {back_after:?} after the report was sent: {}",
        resp.status()
    );
    if resp.status().as_u16() == 200 {
        let outcome = parse_outcome(resp).await;
        assert_eq!(
            (outcome.accepted, outcome.duplicates),
            (10, 0),
            "{outcome:?}"
        );
    } else {
        assert!(
            back_after > Duration::from_secs(10),
            "a 503 although DynamoDB was back after {back_after:?}"
        );
        assert_unavailable(resp, "DynamoDB").await;
        let outcome = report(&dex, hat, &batch(&c)).await;
        assert_eq!(
            (outcome.accepted, outcome.duplicates),
            (10, 0),
            "{outcome:?}"
        );
    }
    assert_eq!(function_pid("stats-report"), reporter, "no cold start");

    // Everything again: each item was counted exactly once, with its marker.
    let mut all = a.clone();
    all.extend(b.iter().cloned());
    all.extend(c.iter().cloned());
    let outcome = report(&dex, hat, &batch(&all)).await;
    assert_eq!(
        (outcome.accepted, outcome.duplicates),
        (0, 30),
        "{outcome:?}"
    );
    let mut want = a_totals;
    sum_into(&mut want, &b_totals);
    sum_into(&mut want, &c_totals);
    assert_eq!(namespace_totals(&dex, &ns).await, want);
    assert_eq!(
        logged_items(&dex, hat).await,
        30,
        "one log entry per counted batch"
    );
    assert_eq!(function_pid("stats-report"), reporter, "no cold start");
}

// ---- Secrets Manager unreachable ---------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_start_without_secrets_manager_answers_503_then_recovers_in_the_same_process() {
    let dex = Dex::new();
    eprintln!("jwks processes before: {:?}", function_pids("jwks"));
    ctl("secrets cut").await;
    assert_unavailable(
        dex.get("/.well-known/jwks.json", None).await,
        "Secrets Manager",
    )
    .await;
    let jwks = function_pid("jwks");
    assert_unavailable(
        dex.get("/.well-known/jwks.json", None).await,
        "Secrets Manager",
    )
    .await;
    ctl("secrets open").await;
    let keys = expect_json(dex.get("/.well-known/jwks.json", None).await, 200).await;
    assert!(
        keys["keys"].as_array().is_some_and(|k| !k.is_empty()),
        "{keys}"
    );
    assert_eq!(function_pid("jwks"), jwks, "no cold start");
}

// ---- a claim and a plug connection meeting DynamoDB down after the HAT acted ------------

/// Starts `request` and, once the HAT holds the call `route` (which it answers after a
/// pause), kills DynamoDB: the HAT then does what it was asked, and what DEX writes after
/// it meets DynamoDB down. Answers the request's response; DynamoDB is started again.
async fn dynamodb_down_after_the_hat_acted(
    hat: &TestHat,
    hats: &TestHatCluster,
    route: (&str, &str),
    request: impl Future<Output = Response> + Send + 'static,
) -> Response {
    let (method, path) = route;
    let seen = |hats: &TestHatCluster| {
        hats.requests_for(hat.address())
            .iter()
            .filter(|r| r.method == method && r.path.starts_with(path))
            .count()
    };
    let before = seen(hats);
    // Below the HAT timeout of the test settings (2 s): the HAT answers, in time.
    hat.fail_route(
        &format!("{method} {path}"),
        RouteFail::Slow(Duration::from_millis(1500)),
        Some(1),
    );
    let pending = tokio::spawn(request);
    eventually("the HAT holds the call", || seen(hats) > before).await;
    ctl("dynamodb stop").await;
    let resp = pending.await.unwrap();
    ctl("dynamodb start").await;
    resp
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_kept_while_dynamodb_is_down_keeps_its_place_and_resumes_once() {
    let m = Market::start().await;
    let alice = m.hat("alice").await;
    let bob = m.hat("bob").await;
    let id = running_offer(&m, 1).await;
    assert_error(claim(&format!("{id}-none"), &alice).await, 404, "").await;
    let claimer = function_pid("offer-claim");

    let request = {
        let (id, alice) = (id.clone(), alice.clone());
        async move { claim(&id, &alice).await }
    };
    let resp = dynamodb_down_after_the_hat_acted(
        &alice,
        &m.hats,
        ("POST", "/api/v2.6/data-debit/"),
        request,
    )
    .await;
    assert_unavailable(resp, "DynamoDB").await;
    // The HAT made the debit; DEX kept no claim, and the place stays with alice.
    assert_eq!(alice.data_debits().len(), 1);
    assert!(claimed(&m, &alice).await.is_empty());
    assert_error(claim(&id, &bob).await, 400, "offer is full").await;
    // Alice again: resumed, the HAT's 400 on the second create taken as the debit.
    let kept = expect_json(claim(&id, &alice).await, 200).await;
    assert_eq!(kept["claimerNumber"], 1, "{kept}");
    assert_eq!(m.debit_posts(&alice), 2);
    assert_eq!(alice.data_debits().len(), 1);
    assert_eq!(alice.users().len(), 1);
    let claimed = claimed(&m, &alice).await;
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    assert_eq!(claimed[0]["resumed"], true, "{claimed:?}");
    assert_eq!(function_pid("offer-claim"), claimer, "no cold start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_recorded_while_dynamodb_is_down_is_made_again_once() {
    let m = Market::start().await;
    let hat = m.hat("carol").await;
    let (plug, owner) = approved_plug(&m.admin).await;
    assert_error(
        connect(&plug, "nobody.example.com", &owner).await,
        400,
        "not registered",
    )
    .await;
    let connector = function_pid("dataplug-connect");

    let request = {
        let (plug, address, owner) = (plug.clone(), hat.address().to_owned(), owner.clone());
        async move { connect(&plug, &address, &owner).await }
    };
    let resp =
        dynamodb_down_after_the_hat_acted(&hat, &m.hats, ("POST", "/users/user"), request).await;
    assert_unavailable(resp, "DynamoDB").await;
    // The HAT has the plug's user; DEX recorded no connection.
    assert_eq!(hat.users().len(), 1);
    let connected =
        |log: &[dex::txlog::LogEntry]| log.iter().filter(|e| e.kind == "plug.connected").count();
    let subject = format!("hat:{}", hat.address());
    assert_eq!(connected(&subject_log(&m.admin, &subject).await), 0);
    // Connecting again finds the user, enables it and records the connection, once.
    let resp = connect(&plug, hat.address(), &owner).await;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(hat.users().len(), 1);
    assert!(hat.users()[0].enabled);
    assert_eq!(connected(&subject_log(&m.admin, &subject).await), 1);
    assert_eq!(function_pid("dataplug-connect"), connector, "no cold start");
}
