//! update-application end to end (docs/decisions.md §10, §13 "update-application"), over real
//! HTTP against the served function and a test HAT cluster of 210 HATs, some failing and
//! some slower than DEX's HAT timeout: the test stack lowers `DEX_PUSH_BUDGET_SECS` to 1 s,
//! so covering the cluster needs the cursor; following `next` covers every HAT exactly once
//! (each got exactly one push), a failing or slow HAT costs only its own result, and the same
//! push again is harmless. Also the filter over HTTP and every refusal, before any HAT is
//! called. Run through `make test`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};

use dex_tests::hat_support::{CertifiedCluster, certify_cluster, register_hat_ok, unique_domain};
use dex_tests::support::{Dex, admin_token, assert_error, create_account, expect_json, url_encode};
use dex_tests::test_hat::{RouteFail, TestHat, TestHatCluster};

const PUSH: &str = "POST /api/v2/application";

fn service() -> Value {
    json!({
        "title": "notables", "namespace": "rumpel", "description": "Notes on your HAT",
        "logoUrl": "https://notables.example/logo.png", "url": "https://notables.example",
        "authUrl": "/authenticate", "browser": false, "category": "app", "setup": true,
        "loginAvailable": true, "extra": {"kept": true}
    })
}

fn path(cluster: Option<&str>, filter: Option<&str>, cursor: Option<&str>) -> String {
    let mut query = Vec::new();
    if let Some(c) = cluster {
        query.push(format!("cluster={}", url_encode(c)));
    }
    if let Some(f) = filter {
        query.push(format!("hatFilter={}", url_encode(f)));
    }
    if let Some(c) = cursor {
        query.push(format!("cursor={}", url_encode(c)));
    }
    format!("/api/users/update-application?{}", query.join("&"))
}

async fn call(
    admin: &str,
    cluster: Option<&str>,
    filter: Option<&str>,
    cursor: Option<&str>,
    body: &Value,
) -> reqwest::Response {
    // The same push again is harmless: resending one the emulator lost is too.
    Dex::new()
        .post_json_idempotent(&path(cluster, filter, cursor), Some(admin), body)
        .await
}

/// Follows `next` to the end: every result by HAT (each HAT at most once), and the calls made.
async fn push_all(
    admin: &str,
    cluster: &str,
    filter: Option<&str>,
) -> (BTreeMap<String, Value>, usize) {
    let mut results = BTreeMap::new();
    let mut cursor: Option<String> = None;
    for calls in 1..=100 {
        let started = Instant::now();
        let answer = expect_json(
            call(admin, Some(cluster), filter, cursor.as_deref(), &service()).await,
            200,
        )
        .await;
        // 1 s of starting pushes, then at most one HAT's allowance (2 x the 2 s HAT timeout
        // and 0.5 s): well within the functions' 29 s, with room for a loaded machine.
        assert!(
            started.elapsed() < Duration::from_secs(12),
            "one call took {:?}",
            started.elapsed()
        );
        for result in answer["results"].as_array().expect("results") {
            let hat = result["hat"].as_str().expect("hat").to_owned();
            let previous = results.insert(hat.clone(), result.clone());
            assert!(previous.is_none(), "{hat} covered twice");
        }
        match answer["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => {
                assert!(answer["next"].is_null(), "{answer}");
                return (results, calls);
            }
        }
    }
    panic!("update-application never ended");
}

fn pushes(hat: &TestHat) -> usize {
    hat.requests()
        .iter()
        .filter(|r| format!("{} {}", r.method, r.path) == PUSH)
        .count()
}

struct Cluster {
    hats: TestHatCluster,
    certified: CertifiedCluster,
    registered: Vec<TestHat>,
}

/// A certified cluster of test HATs `h000`..: all registered through `registerHat`, sharing
/// one RSA key (generating 200 keys would take longer than the test).
async fn cluster_of(admin: &str, count: usize) -> Cluster {
    let hats = TestHatCluster::start().await;
    let domain = unique_domain();
    let (user, password) = hats.platform_credentials();
    let certified = certify_cluster(admin, &domain, (&user, &password)).await;
    let first = tokio::task::block_in_place(|| hats.add_hat(&format!("h000.{domain}")));
    let mut registered = vec![first.clone()];
    for i in 1..count {
        registered.push(hats.add_hat_sharing_key(&format!("h{i:03}.{domain}"), &first));
    }
    futures::stream::iter(registered.iter().map(|h| register_hat_ok(h.address())))
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    Cluster {
        hats,
        certified,
        registered,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cluster_of_210_hats_is_covered_exactly_once_by_following_next() {
    const HATS: usize = 210;
    let admin = admin_token().await;
    let started = Instant::now();
    let c = cluster_of(&admin, HATS).await;
    eprintln!("[timing] {HATS} HATs registered in {:?}", started.elapsed());
    // What each HAT does: slower than DEX's HAT timeout (2 s on the test stack), failing the
    // push, refusing the platform login, or fine.
    let role = |i: usize| match i % 10 {
        2 | 6 => "slow",
        4 => "fails",
        8 if i % 20 == 8 => "refuses login",
        _ => "fine",
    };
    for (i, hat) in c.registered.iter().enumerate() {
        match role(i) {
            "slow" => hat.fail_route(PUSH, RouteFail::Slow(Duration::from_secs(4)), None),
            "fails" => hat.fail_route(PUSH, RouteFail::Status(500), None),
            "refuses login" => {
                hat.fail_route("GET /users/access_token", RouteFail::Status(401), None)
            }
            _ => {}
        }
    }

    let started = Instant::now();
    let (results, calls) = push_all(&admin, &c.certified.domain, None).await;
    eprintln!(
        "[timing] {HATS} HATs pushed in {calls} calls, {:?}",
        started.elapsed()
    );
    assert!(
        calls >= 2,
        "a 1 s budget over {HATS} HATs with slow ones needs the cursor"
    );
    let addresses: Vec<String> = c
        .registered
        .iter()
        .map(|h| h.address().to_owned())
        .collect();
    assert_eq!(
        results.keys().cloned().collect::<Vec<_>>(),
        addresses,
        "every HAT, once"
    );
    for (i, hat) in c.registered.iter().enumerate() {
        let result = &results[hat.address()];
        let reason = result["reason"].as_str().unwrap_or_default();
        match role(i) {
            "fine" => {
                assert_eq!(result["status"], "updated", "{result}");
                assert!(result.get("reason").is_none(), "{result}");
                assert_eq!(hat.applications(), vec![service()], "{}", hat.address());
            }
            "slow" => {
                assert_eq!(result["status"], "failed", "{result}");
                assert!(reason.contains("no answer in time"), "{result}");
            }
            "fails" => {
                assert_eq!(result["status"], "failed", "{result}");
                assert!(
                    reason.contains("answered 500") && reason.contains(hat.address()),
                    "{result}"
                );
            }
            _ => {
                assert_eq!(result["status"], "failed", "{result}");
                assert!(reason.contains("login"), "{result}");
            }
        }
        let expected = usize::from(role(i) != "refuses login");
        assert_eq!(
            pushes(hat),
            expected,
            "{}: pushed {} times",
            hat.address(),
            pushes(hat)
        );
    }

    // The same push again, to a few: harmless, each HAT keeps the app once more by title.
    let few = c.registered[..3]
        .iter()
        .map(|h| h.address().to_owned())
        .collect::<Vec<_>>()
        .join(" , ");
    let (again, _) = push_all(&admin, &c.certified.domain, Some(&few)).await;
    assert_eq!(again.len(), 3, "{again:?}");
    for hat in &c.registered[..3] {
        assert_eq!(
            again[hat.address()]["status"],
            results[hat.address()]["status"]
        );
    }
    drop(c.hats);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_filter_selects_by_address_and_pattern_and_refusals_call_no_hat() {
    let admin = admin_token().await;
    let c = cluster_of(&admin, 4).await;
    let domain = c.certified.domain.clone();
    let port = c.hats.port();
    let a = |i: usize| c.registered[i].address().to_owned();

    let hats_of = |answer: &Value| -> Vec<String> {
        answer["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["hat"].as_str().unwrap().to_owned())
            .collect()
    };
    let cases = [
        (
            format!("{} ,  {}", a(2), a(0).to_uppercase()),
            vec![a(0), a(2)],
        ),
        (
            format!("h00*.{domain}:{port}"),
            vec![a(0), a(1), a(2), a(3)],
        ),
        (format!("*{}*", a(3).split('.').next().unwrap()), vec![a(3)]),
        (format!("*:{port}"), vec![a(0), a(1), a(2), a(3)]),
        ("nobody.example.net".to_owned(), vec![]),
    ];
    for (filter, want) in cases {
        let answer = expect_json(
            call(&admin, Some(&domain), Some(&filter), None, &service()).await,
            200,
        )
        .await;
        assert_eq!(hats_of(&answer), want, "{filter}");
        assert!(answer["next"].is_null(), "{answer}");
    }
    let before: usize = c.registered.iter().map(pushes).sum();

    // Refusals, each before any HAT is called.
    let dex = Dex::new();
    assert_error(
        dex.post_json(&path(Some(&domain), None, None), None, &service())
            .await,
        401,
        "",
    )
    .await;
    let (_, username, password) = create_account(&admin, &["marketplace"]).await;
    let buyer = dex.token(&username, &password).await;
    assert_error(
        call(&buyer, Some(&domain), None, None, &service()).await,
        403,
        "admin",
    )
    .await;
    let mut incomplete = service();
    incomplete.as_object_mut().unwrap().remove("authUrl");
    let mut mistyped = service();
    mistyped["setup"] = json!("yes");
    for body in [incomplete, mistyped, json!({}), json!("notables")] {
        assert_error(
            call(&admin, Some(&domain), None, None, &body).await,
            400,
            "HatService",
        )
        .await;
    }
    assert_error(
        call(&admin, None, None, None, &service()).await,
        400,
        "cluster",
    )
    .await;
    assert_error(
        call(&admin, Some("unknown.example.net"), None, None, &service()).await,
        400,
        "certified",
    )
    .await;
    let gone = unique_domain();
    let (user, password) = c.hats.platform_credentials();
    certify_cluster(&admin, &gone, (&user, &password)).await;
    expect_json(
        dex.delete(&format!("/api/admin/clusters/{gone}"), Some(&admin))
            .await,
        200,
    )
    .await;
    assert_error(
        call(&admin, Some(&gone), None, None, &service()).await,
        400,
        "certified",
    )
    .await;
    assert_error(
        call(&admin, Some(&domain), Some(" , "), None, &service()).await,
        400,
        "hatFilter",
    )
    .await;
    assert_error(
        call(
            &admin,
            Some(&domain),
            None,
            Some("not-a-cursor"),
            &service(),
        )
        .await,
        400,
        "cursor",
    )
    .await;
    let after: usize = c.registered.iter().map(pushes).sum();
    assert_eq!(after, before, "no HAT was called by a refused push");
}
