//! What the fault test files share (each file under tests/ is a test binary of its own:
//! `mod common;` in each).

#![allow(dead_code)] // each test binary uses a part

use std::time::{Duration, Instant};

use reqwest::Response;
use serde_json::{Value, json};

use dex_tests::hat_support::subject_log;
use dex_tests::market::Market;
use dex_tests::stats_support::{
    EndpointStats, FieldTotals, HatUser, Json, accepted_entries, add_totals, hat_log, inbound,
    now_millis,
};
use dex_tests::support::{Dex, create_account};
use dex_tests::test_hat::TestHat;

/// Waits until `what` holds (a safety bound, not a timing assertion).
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(Instant::now() < deadline, "{what}: still not so after 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `n` distinct inbound items for `namespace` (salted by `salt`) over `endpoints` endpoints,
/// and what they add.
pub fn inbound_items(
    namespace: &str,
    salt: i64,
    n: i64,
    endpoints: i64,
) -> (Vec<Json>, FieldTotals) {
    let user = HatUser::owner("alice");
    let start = (now_millis() / 1000 - 3600) * 1000;
    let mut totals = FieldTotals::new();
    let items = (0..n)
        .map(|i| {
            let stats = vec![EndpointStats::new(
                format!("{namespace}/ep{}", i % endpoints),
                &[("a", 1 + i), ("b.c", 2)],
            )];
            add_totals(&mut totals, namespace, &stats);
            inbound(start + (salt * 1000 + i) * 1000, &user, &stats, "saved")
        })
        .collect();
    (items, totals)
}

pub fn sum_into(totals: &mut FieldTotals, more: &FieldTotals) {
    for (k, v) in more {
        *totals.entry(k.clone()).or_default() += v;
    }
}

/// The items counted for `hat` as its log states them, and that its chain verifies.
pub async fn logged_items(dex: &Dex, hat: &TestHat) -> u64 {
    let log = hat_log(dex, hat).await;
    let entries: Vec<dex::txlog::LogEntry> = log
        .iter()
        .map(|e| serde_json::from_value(e.clone()).expect("a log entry"))
        .collect();
    assert_eq!(
        dex::txlog::verify_chain(&entries),
        Ok(()),
        "the HAT's chain verifies"
    );
    accepted_entries(&log)
        .iter()
        .map(|e| e["details"]["items"].as_u64().unwrap())
        .sum()
}

/// A running, approved offer of the market's buyer for at most `max` HATs.
pub async fn running_offer(m: &Market, max: u32) -> String {
    m.running_offer("fault", max).await
}

/// The entries of `kind` on `hat`'s chain (as the admin reads it), once the chain verifies.
pub async fn chain_entries(admin: &str, hat: &TestHat, kind: &str) -> Vec<Value> {
    let log = subject_log(admin, &format!("hat:{}", hat.address())).await;
    assert_eq!(
        dex::txlog::verify_chain(&log),
        Ok(()),
        "the HAT's chain verifies"
    );
    log.into_iter()
        .filter(|e| e.kind == kind)
        .map(|e| e.details)
        .collect()
}

/// The `offer.claimed` entries on `hat`'s chain.
pub async fn claimed(m: &Market, hat: &TestHat) -> Vec<Value> {
    chain_entries(&m.admin, hat, "offer.claimed").await
}

pub async fn claim(id: &str, hat: &TestHat) -> Response {
    Market::claim(id, hat).await
}

/// An approved plug of a new owner account: (plug id, owner token).
pub async fn approved_plug(admin: &str) -> (String, String) {
    let (owner_id, username, password) = create_account(admin, &[]).await;
    let owner = Dex::new().token(&username, &password).await;
    let dex = Dex::new();
    let name = format!("plug{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let body = json!({
        "name": name, "description": "syncs a calendar",
        "url": "https://plug.example.com/connect",
        "illustrationUrl": "https://plug.example.com/logo.png",
        "providerId": owner_id, "password": "a long plug password",
    });
    let resp = dex
        .post_json("/api/admin/dataplugs", Some(admin), &body)
        .await;
    assert_eq!(resp.status().as_u16(), 201);
    let created: Value = resp.json().await.unwrap();
    let id = created["uuid"].as_str().unwrap().to_owned();
    let resp = dex
        .put_json(
            &format!("/api/admin/dataplugs/{id}"),
            Some(admin),
            &json!({"approved": true}),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 200);
    (id, owner)
}

pub async fn connect(plug: &str, hat: &str, token: &str) -> Response {
    Dex::new()
        .get(
            &format!(
                "/api/dataplugs/{plug}/connect?hat={}",
                dex_tests::support::url_encode(hat)
            ),
            Some(token),
        )
        .await
}
