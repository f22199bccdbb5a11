//! The sweep of expired claim reservations end to end (docs/decisions.md §13.2): two claims
//! lose the answer of their debit request on a real test HAT (the HAT made the debit, then
//! dropped the connection), so each keeps its place for the lease. Once the lease is over,
//! `offer-sweep` (invoked as its EventBridge schedule would, with its sample event, through
//! the local Lambda invoke API) gives each place back, disables the claim's credential user
//! on the HAT and logs it; a second run changes nothing. Then another HAT takes the freed
//! place of the one-place offer, and on the two-place offer the swept HAT claims again as a
//! resumed claim, with no second debit.
//!
//! The test waits the real lease (2 minutes): the sweep reads DEX's clock.

use std::time::Duration;

use dex::offers::claims::CLAIM_LEASE;
use dex_tests::hat_support::subject_log;
use dex_tests::market::Market;
use dex_tests::routes::read;
use dex_tests::support::{assert_error, dex_url, expect_json};
use dex_tests::test_hat::{RouteFail, TestHat};
use serde_json::Value;

/// `hat` claims `id`; the HAT makes the debit and drops the connection: 502, place held.
async fn claim_losing_the_answer(id: &str, hat: &TestHat) {
    hat.fail_route("POST /api/v2.6/data-debit/", RouteFail::DropAfter, Some(1));
    assert_error(Market::claim(id, hat).await, 502, "create data debit").await;
    assert_eq!(hat.data_debits().len(), 1);
}

/// Whether `hat`'s credential user of offer `id` is enabled.
fn user_enabled(hat: &TestHat, id: &str) -> bool {
    let login = format!("offer-{id}");
    hat.users()
        .into_iter()
        .find(|u| u.user["email"] == login.as_str())
        .unwrap_or_else(|| panic!("{}: no user {login}", hat.address()))
        .enabled
}

/// Invokes `offer-sweep` with its sample event, as the schedule does: the run's report.
async fn sweep() -> Value {
    let event: Value = serde_json::from_str(&read("events/offer-sweep.json")).unwrap();
    let url = format!("{}/2015-03-31/functions/offer-sweep/invocations", dex_url());
    let resp = reqwest::Client::new()
        .post(url)
        .json(&event)
        .send()
        .await
        .expect("invoke offer-sweep");
    assert_eq!(resp.status(), 200, "the invocation");
    let report: Value = resp.json().await.expect("the sweep's report is JSON");
    assert!(
        report.get("errorType").is_none(),
        "the sweep failed: {report}"
    );
    report
}

async fn released_entries(m: &Market, hat: &TestHat) -> Vec<(String, Value)> {
    subject_log(&m.admin, &format!("hat:{}", hat.address()))
        .await
        .into_iter()
        .filter(|e| e.kind == "offer.claim-released")
        .map(|e| (e.actor, e.details))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_reservations_are_swept_their_users_disabled_and_their_places_free_again() {
    let m = Market::start().await;
    let (alice, bob) = (m.hat("alice").await, m.hat("bob").await);
    let one = m.running_offer("sweep", 1).await;
    let two = m.running_offer("sweep", 2).await;
    claim_losing_the_answer(&one, &alice).await;
    let carol = m.hat("carol").await;
    claim_losing_the_answer(&two, &carol).await;
    assert_error(Market::claim(&one, &bob).await, 400, "offer is full").await;

    // Within the lease a sweep leaves them alone.
    let first = sweep().await;
    assert!(first["expired"].is_u64(), "{first}");
    assert!(user_enabled(&alice, &one) && user_enabled(&carol, &two));
    assert_error(Market::claim(&one, &bob).await, 400, "offer is full").await;

    tokio::time::sleep(CLAIM_LEASE + Duration::from_secs(2)).await;
    // Other suites' expired reservations may be swept in the same run; a run that spent its
    // HAT budget on them leaves the rest to the next, so run until ours are done (bounded).
    let mut reports = Vec::new();
    for _ in 0..5 {
        reports.push(sweep().await);
        if !user_enabled(&alice, &one) && !user_enabled(&carol, &two) {
            break;
        }
    }
    assert!(!user_enabled(&alice, &one), "swept: {reports:?}");
    assert!(!user_enabled(&carol, &two), "swept: {reports:?}");
    let released: u64 = reports
        .iter()
        .map(|r| r["released"].as_u64().unwrap())
        .sum();
    assert!(released >= 2, "{reports:?}");
    for (hat, id) in [(&alice, &one), (&carol, &two)] {
        let entries = released_entries(&m, hat).await;
        assert_eq!(entries.len(), 1, "{entries:?}");
        assert_eq!(entries[0].0, "sweeper");
        assert_eq!(entries[0].1["offerId"], id.as_str());
    }
    // A run after that changes nothing of ours.
    sweep().await;
    assert_eq!(released_entries(&m, &alice).await.len(), 1);
    assert!(!user_enabled(&alice, &one));

    // The one-place offer's place is free: bob takes it, alice finds it full.
    let bobs = expect_json(Market::claim(&one, &bob).await, 200).await;
    assert_eq!(bobs["claimerNumber"], 1, "{bobs}");
    assert_error(Market::claim(&one, &alice).await, 400, "offer is full").await;
    assert!(!user_enabled(&alice, &one));
    assert_eq!(alice.data_debits().len(), 1);

    // Carol claims the two-place offer again: resumed, her debit taken as existing.
    let carols = expect_json(Market::claim(&two, &carol).await, 200).await;
    assert_eq!(carols["claimerNumber"], 1, "{carols}");
    assert!(user_enabled(&carol, &two));
    assert_eq!(carol.data_debits().len(), 1);
    assert_eq!(carol.users().len(), 1);
    let claimed: Vec<Value> = subject_log(&m.admin, &format!("hat:{}", carol.address()))
        .await
        .into_iter()
        .filter(|e| e.kind == "offer.claimed")
        .map(|e| e.details)
        .collect();
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    assert_eq!(claimed[0]["resumed"], true, "{claimed:?}");
}
