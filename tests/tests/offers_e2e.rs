//! Data offers end to end (docs/decisions.md §9, §13 "Offers"), over real HTTP against the
//! served functions and the test HAT cluster: every path on `/api/v2`, `/api/v2.6` and
//! `/api/v3`, every refusal with its status, the HAT side of a claim (the credential user and
//! the exact debit on the HAT), HAT failures at each step giving the place back, a retry
//! after an unknown outcome making no second debit, the credentials sealed in the table, and
//! 500 claims racing for 10 places. Run through `make test`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::StreamExt;
use reqwest::Response;
use serde_json::{Value, json};

use dex_tests::hat_support::{register_hat_ok, subject_log, table_items};
use dex_tests::market::Market;
use dex_tests::support::{Dex, assert_error, expect_json, public_url, url_encode};
use dex_tests::test_hat::{RouteFail, TestHat};

const PREFIXES: [&str; 3] = ["/api/v2", "/api/v2.6", "/api/v3"];

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn unique_offer_id() -> String {
    format!("e2e-{}", &uuid::Uuid::new_v4().simple().to_string()[..16])
}

/// A registration running from a minute ago for a day (or the window given).
fn offer_body(id: &str, min: u32, max: u32, window: (i64, i64)) -> Value {
    json!({
        "offerId": id,
        "title": "Locations for a study",
        "description": "a month of locations",
        "starts": window.0,
        "expires": window.1,
        "collectionDuration": 2_592_000_000i64,
        "requiredData": {"name": "locations", "bundle": {
            "locations": {"endpoints": [{"endpoint": "rumpel/locations", "mapping": {"lat": "latitude"}}]}}},
        "requiredMinUser": min,
        "requiredMaxUser": max,
        "status": "approved"
    })
}

fn running() -> (i64, i64) {
    let now = now_ms();
    (now - 60_000, now + 86_400_000)
}

/// A running, approved offer of the market's buyer for `min`..`max` HATs.
async fn running_offer(m: &Market, min: u32, max: u32) -> String {
    let id = unique_offer_id();
    m.register_offer("/api/v2", &offer_body(&id, min, max, running()), true)
        .await;
    id
}

async fn status(prefix: &str, id: &str, status: &str, token: &str) -> Response {
    Dex::new()
        .request(
            reqwest::Method::PUT,
            &format!("{prefix}/offer/{id}?status={status}"),
            Some(token),
        )
        .send()
        .await
        .expect("PUT status")
}

fn hat_token(hat: &TestHat) -> String {
    hat.dex_token(&public_url())
}

async fn claim(prefix: &str, id: &str, hat: &TestHat) -> Response {
    Dex::new()
        .get(&format!("{prefix}/offer/{id}/claim"), Some(&hat_token(hat)))
        .await
}

async fn register_claim(prefix: &str, id: &str, hat: Option<&str>, token: &str) -> Response {
    let path = match hat {
        Some(h) => format!("{prefix}/offer/{id}/registerClaim?hat={}", url_encode(h)),
        None => format!("{prefix}/offer/{id}/registerClaim"),
    };
    Dex::new()
        .request(reqwest::Method::PUT, &path, Some(token))
        .send()
        .await
        .expect("PUT registerClaim")
}

/// The `claims` answer: 200, never cached, the one body with a password and a hash.
async fn claims(prefix: &str, id: &str, token: &str) -> Value {
    let resp = Dex::new()
        .get(&format!("{prefix}/offer/{id}/claims"), Some(token))
        .await;
    let status = resp.status().as_u16();
    let cache = resp
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = resp.text().await.unwrap_or_default();
    assert_eq!(status, 200, "{text}");
    assert_eq!(cache, "no-store");
    for bad in ["panicked", "DexError", "$argon2", "PRIVATE KEY"] {
        assert!(!text.contains(bad), "{text}");
    }
    serde_json::from_str(&text).unwrap()
}

fn offer_user(hat: &TestHat, id: &str) -> Option<(Value, bool)> {
    hat.users()
        .into_iter()
        .find(|u| u.email() == format!("offer-{id}"))
        .map(|u| (u.user.clone(), u.enabled))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_path_works_on_the_three_prefixes() {
    let m = Market::start().await;
    let alice = m.hat("alice").await;
    let bob = m.hat("bob").await;
    for prefix in PREFIXES {
        let id = unique_offer_id();
        let body = offer_body(&id, 1, 10, running());
        let created = m.register_offer(prefix, &body, false).await;
        assert_eq!(created["status"], "draft", "the body's status is ignored");
        assert_eq!(created["provider"], m.buyer_id.as_str());
        assert_eq!(created["requiredData"], body["requiredData"]);
        assert_eq!(created["collectionDuration"], 2_592_000_000i64);
        assert!(created["created"].as_i64().unwrap() > 0);
        let listed = |offers: &Value| {
            offers
                .as_array()
                .unwrap()
                .iter()
                .any(|o| o["offerId"] == id.as_str())
        };
        let offers =
            expect_json(Dex::new().get(&format!("{prefix}/offers"), None).await, 200).await;
        assert!(!listed(&offers), "a draft is not listed");
        let approved = expect_json(status(prefix, &id, "approved", &m.buyer).await, 200).await;
        assert_eq!(approved["status"], "approved");
        let offers =
            expect_json(Dex::new().get(&format!("{prefix}/offers"), None).await, 200).await;
        assert!(listed(&offers), "{prefix}: an approved offer is listed");

        // The HAT's own claim, then the owner's for another HAT.
        let mine = expect_json(claim(prefix, &id, &alice).await, 200).await;
        assert_eq!(mine["offerId"], id.as_str());
        assert_eq!(mine["relationship"], "claim");
        assert_eq!(mine["confirmed"], false);
        assert_eq!(mine["dataDebitId"], id.as_str());
        assert_eq!(mine["claimerNumber"], 1);
        assert_eq!(mine["user"]["address"], alice.address());
        assert_eq!(mine["user"]["publicKey"], alice.public_key_pem().as_str());
        let again = expect_json(
            Dex::new()
                .get(
                    &format!("{prefix}/offer/{id}/userClaim"),
                    Some(&hat_token(&alice)),
                )
                .await,
            200,
        )
        .await;
        assert_eq!(again, mine);
        let owners = expect_json(
            register_claim(prefix, &id, Some(bob.address()), &m.buyer).await,
            200,
        )
        .await;
        assert_eq!(owners["claimerNumber"], 2);
        assert_eq!(owners["user"]["address"], bob.address());

        // On the HAT: the credential user and the debit, as docs/decisions.md §13.2 says.
        let (user, enabled) = offer_user(&alice, &id).expect("the credential user");
        assert!(enabled);
        assert_eq!(user["role"], "validate");
        assert_eq!(
            user["roles"],
            json!([{"role": "validate"}, {"role": "datadebit", "detail": id}])
        );
        assert_eq!(user["name"], "Locations for a study");
        let debit = alice.data_debits()[&id].clone();
        assert_eq!(debit["dataDebitKey"], id.as_str());
        assert_eq!(debit["bundle"], body["requiredData"]);
        assert_eq!(debit["period"], 2_592_000_000i64);
        assert_eq!(debit["purpose"], "Locations for a study");
        assert_eq!(debit["cancelAtPeriodEnd"], false);
        let start = debit["start"].as_str().unwrap();
        assert!(start.ends_with("+0000") && start.len() == 24, "{start}");

        // The buyer's view: the credentials (the user's password hash), no claim confirmed.
        let info = claims(prefix, &id, &m.buyer).await;
        let credentials = &info["credentials"];
        assert_eq!(credentials["login"], format!("offer-{id}"));
        assert_eq!(credentials["offerId"], id.as_str());
        let plain = credentials["passwordPlain"].as_str().unwrap();
        let hash = credentials["passwordHash"].as_str().unwrap();
        assert!(plain.len() >= 24 && hash.starts_with("$2a$10$"), "{info}");
        assert_eq!(user.get("pass").and_then(Value::as_str), Some(hash));
        assert!(bcrypt::verify(plain, hash).unwrap());
        assert_eq!(info["claims"], json!([]));
        // The admin may read it too.
        claims(prefix, &id, &m.admin).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_answers_its_status_and_cause() {
    let m = Market::start().await;
    let alice = m.hat("alice").await;
    let other = m.other_buyer().await;
    let dex = Dex::new();
    let id = unique_offer_id();
    let body = offer_body(&id, 1, 1, running());

    // Registration.
    assert_error(dex.post_json("/api/v3/offer", None, &body).await, 401, "").await;
    assert_error(
        dex.post_json("/api/v3/offer", Some(&m.admin), &body).await,
        403,
        "marketplace",
    )
    .await;
    let mut bad = body.clone();
    bad["starts"] = bad["expires"].clone();
    bad["requiredMinUser"] = json!(5);
    let err = assert_error(
        dex.post_json("/api/v3/offer", Some(&m.buyer), &bad).await,
        400,
        "",
    )
    .await;
    let details = err["details"].to_string();
    assert!(
        details.contains("starts") && details.contains("requiredMaxUser"),
        "{err}"
    );
    m.register_offer("/api/v3", &body, false).await;
    assert_error(
        dex.post_json("/api/v3/offer", Some(&m.buyer), &body).await,
        409,
        "",
    )
    .await;

    // Claims of a draft.
    assert_error(claim("/api/v2", &id, &alice).await, 400, "not open").await;

    // Status changes.
    assert_error(
        status("/api/v2", &id, "approved", &other).await,
        403,
        "owner",
    )
    .await;
    assert_error(
        status("/api/v2", &id, "open", &m.buyer).await,
        400,
        "status",
    )
    .await;
    assert_error(
        status("/api/v2", "no-such-offer", "draft", &m.buyer).await,
        404,
        "",
    )
    .await;
    assert_error(status("/api/v2", &id, "paid", &m.buyer).await, 403, "").await;
    expect_json(status("/api/v2", &id, "rejected", &m.admin).await, 200).await;
    assert_error(
        status("/api/v2", &id, "approved", &m.buyer).await,
        403,
        "rejected",
    )
    .await;
    assert_error(claim("/api/v2", &id, &alice).await, 400, "rejected").await;
    expect_json(status("/api/v2", &id, "approved", &m.admin).await, 200).await;

    // Claims.
    assert_error(claim("/api/v2.6", "no-such-offer", &alice).await, 404, "").await;
    assert_error(
        dex.get(&format!("/api/v2.6/offer/{id}/claim"), None).await,
        401,
        "",
    )
    .await;
    let unregistered =
        tokio::task::block_in_place(|| m.hats.add_hat(&format!("nobody.{}", m.cluster.domain)));
    assert_error(claim("/api/v2.6", &id, &unregistered).await, 401, "").await;
    expect_json(claim("/api/v2.6", &id, &alice).await, 200).await;
    assert_error(
        claim("/api/v2.6", &id, &alice).await,
        400,
        "already claimed",
    )
    .await;
    let bob = m.hat("bob").await;
    assert_error(claim("/api/v2.6", &id, &bob).await, 400, "offer is full").await;
    let future = unique_offer_id();
    let now = now_ms();
    m.register_offer(
        "/api/v2",
        &offer_body(&future, 1, 1, (now + 3_600_000, now + 7_200_000)),
        true,
    )
    .await;
    assert_error(claim("/api/v2", &future, &bob).await, 400, "not started").await;
    let past = unique_offer_id();
    m.register_offer(
        "/api/v2",
        &offer_body(&past, 1, 1, (now - 7_200_000, now - 3_600_000)),
        true,
    )
    .await;
    assert_error(claim("/api/v2", &past, &bob).await, 400, "expired").await;

    // registerClaim.
    let open = running_offer(&m, 1, 5).await;
    assert_error(
        register_claim("/api/v3", &open, Some(bob.address()), &other).await,
        403,
        "owner",
    )
    .await;
    assert_error(
        register_claim("/api/v3", &open, None, &m.buyer).await,
        400,
        "hat",
    )
    .await;
    assert_error(
        register_claim("/api/v3", &open, Some(unregistered.address()), &m.buyer).await,
        400,
        "not registered",
    )
    .await;
    assert_error(
        register_claim("/api/v3", "no-such-offer", Some(bob.address()), &m.buyer).await,
        404,
        "",
    )
    .await;

    // userClaim and claims.
    assert_error(
        dex.get(
            &format!("/api/v3/offer/{open}/userClaim"),
            Some(&hat_token(&bob)),
        )
        .await,
        404,
        "",
    )
    .await;
    assert_error(
        dex.get(&format!("/api/v3/offer/{open}/userClaim"), None)
            .await,
        401,
        "",
    )
    .await;
    assert_error(
        dex.get(&format!("/api/v3/offer/{open}/claims"), Some(&other))
            .await,
        403,
        "owner",
    )
    .await;
    assert_error(
        dex.get("/api/v3/offer/no-such-offer/claims", Some(&m.buyer))
            .await,
        404,
        "",
    )
    .await;
    assert_error(
        dex.get(&format!("/api/v3/offer/{open}/claims"), None).await,
        401,
        "",
    )
    .await;
    // Nothing of this reached a HAT but the two kept claims.
    assert_eq!(m.debit_posts(&alice), 1);
    assert_eq!(m.debit_posts(&bob), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_hat_at_each_step_gives_the_place_back() {
    let m = Market::start().await;
    let alice = m.hat("alice").await;
    let id = running_offer(&m, 1, 1).await;
    for (route, step) in [
        ("GET /users/access_token", "login"),
        ("POST /users/user", "create user"),
        ("POST /api/v2.6/data-debit", "create data debit"),
    ] {
        // DEX's HAT token is refused, so that every attempt logs in again.
        alice.revoke_login_tokens();
        alice.fail_route(route, RouteFail::Status(500), Some(1));
        assert_error(claim("/api/v2", &id, &alice).await, 502, step).await;
        assert_error(
            Dex::new()
                .get(
                    &format!("/api/v2/offer/{id}/userClaim"),
                    Some(&hat_token(&alice)),
                )
                .await,
            404,
            "",
        )
        .await;
        if let Some((_, enabled)) = offer_user(&alice, &id) {
            assert!(!enabled, "{route}: the credential user was left enabled");
        }
    }
    assert!(alice.data_debits().is_empty());
    // A HAT that does not answer in time: 504 once the attempt's timeout is spent, and the
    // place is still free for another HAT (the user step timed out, before any debit).
    let bob = m.hat("bob").await;
    alice.fail_route(
        "POST /users/user",
        RouteFail::Slow(Duration::from_secs(8)),
        Some(1),
    );
    assert_error(claim("/api/v2", &id, &alice).await, 504, "create user").await;
    // The place went back each time: bob takes it.
    let kept = expect_json(claim("/api/v2", &id, &bob).await, 200).await;
    assert_eq!(kept["claimerNumber"], 1);
    assert_eq!(bob.data_debits().len(), 1);
    assert_error(claim("/api/v2", &id, &alice).await, 400, "offer is full").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_an_unknown_outcome_resumes_without_a_second_debit() {
    let m = Market::start().await;
    let alice = m.hat("alice").await;
    let bob = m.hat("bob").await;
    let id = running_offer(&m, 1, 1).await;
    // The HAT makes the debit, then drops the connection: DEX cannot know it worked.
    alice.fail_route("POST /api/v2.6/data-debit", RouteFail::DropAfter, Some(1));
    assert_error(
        claim("/api/v2.6", &id, &alice).await,
        502,
        "create data debit",
    )
    .await;
    assert_eq!(m.debit_posts(&alice), 1, "a debit create is not sent again");
    assert_eq!(alice.data_debits().len(), 1);
    // The place stays reserved for alice; bob finds the offer full.
    assert_error(claim("/api/v2.6", &id, &bob).await, 400, "offer is full").await;
    // Alice again: the claim resumes; the HAT's 400 on the second create is the debit.
    let kept = expect_json(claim("/api/v2.6", &id, &alice).await, 200).await;
    assert_eq!(kept["claimerNumber"], 1);
    assert_eq!(m.debit_posts(&alice), 2);
    assert_eq!(alice.data_debits().len(), 1);
    assert_eq!(alice.users().len(), 1);
    assert!(offer_user(&alice, &id).unwrap().1);
    // On alice's chain, once.
    let chain = subject_log(&m.admin, &format!("hat:{}", alice.address())).await;
    let claimed: Vec<_> = chain.iter().filter(|e| e.kind == "offer.claimed").collect();
    assert_eq!(claimed.len(), 1, "{chain:?}");
    assert_eq!(claimed[0].details["resumed"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_password_is_never_in_clear_in_the_table_or_the_log() {
    let m = Market::start().await;
    let alice = m.hat("alice").await;
    let id = running_offer(&m, 1, 3).await;
    expect_json(claim("/api/v3", &id, &alice).await, 200).await;
    let info = claims("/api/v3", &id, &m.buyer).await;
    let plain = info["credentials"]["passwordPlain"]
        .as_str()
        .unwrap()
        .to_owned();
    let items = table_items(&format!("OFFER#{id}")).await;
    assert!(items.len() >= 2, "the offer and its claim: {items:?}");
    let offer_item = items
        .iter()
        .find(|i| i.get("sk").is_some_and(|sk| sk.contains("\"OFFER\"")))
        .expect("the offer item");
    assert!(
        offer_item["passwordSealed"].contains("v1."),
        "{offer_item:?}"
    );
    for item in &items {
        for (name, value) in item {
            assert!(
                !value.contains(&plain),
                "{name} holds the password in clear"
            );
        }
    }
    for subject in [format!("offer:{id}"), format!("hat:{}", alice.address())] {
        let log = serde_json::to_string(&subject_log(&m.admin, &subject).await).unwrap();
        assert!(
            !log.contains(&plain) && !log.contains("$2a$"),
            "{subject}: {log}"
        );
    }
}

/// What the race's requests answered, by status.
type Outcomes = BTreeMap<u16, usize>;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_hundred_claims_from_five_hundred_hats_race_for_ten_places() {
    const HATS: usize = 500;
    const IN_FLIGHT: usize = 64;
    let m = Market::start().await;
    // 500 distinct HATs (addresses, platform users, debits), one RSA key between them: the
    // race is about places, not keys, and 500 key generations would dominate the test.
    let hats: Vec<TestHat> = tokio::task::block_in_place(|| {
        let first = m.hats.add_hat(&format!("r000.{}", m.cluster.domain));
        let mut hats = vec![first.clone()];
        hats.extend((1..HATS).map(|i| {
            m.hats
                .add_hat_sharing_key(&format!("r{i:03}.{}", m.cluster.domain), &first)
        }));
        hats
    });
    futures::stream::iter(hats.iter().map(|h| register_hat_ok(h.address())))
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    // Some HATs fail at the debit during the race: their places go back.
    for hat in hats.iter().step_by(9) {
        hat.fail_route("POST /api/v2.6/data-debit", RouteFail::Status(500), None);
    }
    let failing: BTreeSet<String> = hats
        .iter()
        .step_by(9)
        .map(|h| h.address().to_owned())
        .collect();
    let id = running_offer(&m, 1, 10).await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .pool_max_idle_per_host(IN_FLIGHT)
        .build()
        .unwrap();
    let dex = Dex {
        base: dex_tests::support::dex_url(),
        http,
    };
    // Every HAT claims once, on one of the three prefixes.
    let requests: Vec<(TestHat, String)> = hats
        .iter()
        .enumerate()
        .map(|(i, hat)| (hat.clone(), format!("{}/offer/{id}/claim", PREFIXES[i % 3])))
        .collect();
    let started = std::time::Instant::now();
    let answers: Vec<(String, u16, Value)> =
        futures::stream::iter(requests.into_iter().map(|(hat, path)| {
            let dex = dex.clone();
            async move {
                let resp = dex.get(&path, Some(&hat_token(&hat))).await;
                let status = resp.status().as_u16();
                let body: Value = resp.json().await.unwrap_or(Value::Null);
                (hat.address().to_owned(), status, body)
            }
        }))
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    eprintln!(
        "[timing] {} claims from {HATS} HATs, {IN_FLIGHT} in flight: {:?}",
        answers.len(),
        started.elapsed()
    );
    let mut outcomes = Outcomes::new();
    let mut kept = BTreeMap::new();
    for (hat, status, body) in &answers {
        *outcomes.entry(*status).or_default() += 1;
        if *status == 200 {
            let n = body["claimerNumber"].as_u64().unwrap();
            assert!(
                kept.insert(n, hat.clone()).is_none(),
                "number {n} twice: {outcomes:?}"
            );
        } else {
            assert!(
                [400, 409, 429, 502].contains(status),
                "{hat}: {status} {body}"
            );
        }
    }
    assert_eq!(answers.len(), HATS);
    assert_eq!(
        kept.keys().copied().collect::<Vec<_>>(),
        (1..=10).collect::<Vec<_>>(),
        "{outcomes:?}"
    );
    let winners: BTreeSet<String> = kept.values().cloned().collect();
    assert_eq!(winners.len(), 10, "one claim per HAT");
    assert!(winners.is_disjoint(&failing));
    // Exactly the ten winners hold the offer's debit, and each exactly one.
    for hat in &hats {
        let has = hat.data_debits().contains_key(&id);
        assert_eq!(has, winners.contains(hat.address()), "{}", hat.address());
        if has {
            let (_, enabled) = offer_user(hat, &id).unwrap();
            assert!(enabled);
        }
    }
    // The offer is full for anyone else now.
    let late = m.hat("late").await;
    assert_error(claim("/api/v2", &id, &late).await, 400, "offer is full").await;
}

/// A v2.6 `datadebit` item of the offer's debit as HAT2.0 reports it; `time` epoch ms.
fn debit_item(key: &str, operation: &str, time: i64) -> Value {
    json!({
        "dataDebit": {
            "dataDebitKey": key, "dateCreated": "2026-12-01T10:00:00+0000", "permissions": [],
            "requestClientName": "Locations for a study", "requestClientUrl": "",
            "requestClientLogoUrl": "", "active": operation == "Enable()", "accepted": true
        },
        "operation": operation, "time": time,
        "user": {"userId": "8a6e0000-0000-0000-0000-000000000000", "email": "owner",
                 "name": "Owner", "role": "owner", "roles": [{"role": "owner"}]},
        "logEntry": operation, "statsType": "datadebit"
    })
}

async fn report(hat: &TestHat, items: &[Value]) {
    let body = serde_json::to_string(items).unwrap();
    dex_tests::stats_support::report(&Dex::new(), hat, &body).await;
}

fn claimer_numbers(info: &Value) -> Vec<u64> {
    let mut numbers: Vec<u64> = info["claims"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["claimerNumber"].as_u64().unwrap())
        .collect();
    numbers.sort_unstable();
    numbers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_claims_are_released_once_required_min_user_are_confirmed_by_stats_reports() {
    let m = Market::start().await;
    let alice = m.hat("alice").await;
    let bob = m.hat("bob").await;
    let id = running_offer(&m, 2, 5).await;
    expect_json(claim("/api/v2", &id, &alice).await, 200).await;
    expect_json(claim("/api/v2", &id, &bob).await, 200).await;
    let t = now_ms() - 600_000;
    // One of two confirmed: nothing released.
    report(&alice, &[debit_item(&id, "Enable()", t)]).await;
    assert_eq!(
        claimer_numbers(&claims("/api/v3", &id, &m.buyer).await),
        Vec::<u64>::new()
    );
    // Another offer's debit, or a HAT that did not claim it, confirms nothing.
    let carol = m.hat("carol").await;
    report(&carol, &[debit_item(&id, "Enable()", t + 1_000)]).await;
    report(&bob, &[debit_item("another-offer", "Enable()", t + 1_000)]).await;
    assert!(claimer_numbers(&claims("/api/v3", &id, &m.buyer).await).is_empty());
    // Both: released.
    let bob_enable = [debit_item(&id, "Enable()", t + 2_000)];
    report(&bob, &bob_enable).await;
    let info = claims("/api/v3", &id, &m.buyer).await;
    assert_eq!(claimer_numbers(&info), [1, 2]);
    assert!(
        info["claims"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["confirmed"] == true)
    );
    // A resend and a late Disable older than alice's Enable change nothing.
    report(&bob, &bob_enable).await;
    report(&alice, &[debit_item(&id, "Disable()", t - 1_000)]).await;
    assert_eq!(
        claimer_numbers(&claims("/api/v3", &id, &m.buyer).await),
        [1, 2]
    );
    // Alice disables: the list stays released and shows bob's claim only.
    report(&alice, &[debit_item(&id, "Disable()", t + 3_000)]).await;
    assert_eq!(
        claimer_numbers(&claims("/api/v3", &id, &m.buyer).await),
        [2]
    );
    let own = |hat: &TestHat| {
        let token = hat_token(hat);
        let id = id.clone();
        async move {
            expect_json(
                Dex::new()
                    .get(&format!("/api/v2.6/offer/{id}/userClaim"), Some(&token))
                    .await,
                200,
            )
            .await
        }
    };
    assert_eq!(own(&alice).await["confirmed"], false);
    assert_eq!(own(&bob).await["confirmed"], true);
    // Each confirmation is on its HAT's chain.
    let chain = subject_log(&m.admin, &format!("hat:{}", bob.address())).await;
    assert!(
        chain.iter().any(|e| e.kind == "offer.claim-confirmed"),
        "{chain:?}"
    );
}
