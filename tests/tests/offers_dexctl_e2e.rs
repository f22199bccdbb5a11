//! `dexctl offers list|status` against the test stack's table: the operator sets any status
//! (like an admin), the public list follows, each change is logged on the offer's chain by
//! `dexctl`, and refusals name what is wrong. Run through `make test`.

use std::process::{Command, Output};

use dex::accounts::Actor;
use dex::offers::rules::validate_registration;
use dex::offers::{Offer, OfferStatus, OfferStore};
use dex::page::PageRequest;
use dex::txlog::{Kind, LogEvent, LogStore, Subject};
use dex_tests::routes::{built_binary, workspace_root};
use serde_json::{Value, json};

/// dexctl on the test's own table (`DEX_TABLE`), the rest of the stack's settings as given.
async fn dexctl(table: &str, args: &[&str]) -> Output {
    let mut command = Command::new(built_binary("dexctl"));
    command
        .args(args)
        .env("DEX_TABLE", table)
        .current_dir(workspace_root());
    tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("dexctl thread")
        .unwrap_or_else(|e| panic!("cannot run dexctl: {e}"))
}

async fn dexctl_json(table: &str, args: &[&str]) -> Value {
    let out = dexctl(table, args).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "dexctl {args:?} failed ({}): {}{stdout}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("dexctl {args:?} printed no JSON ({e}): {stdout}"))
}

fn offer(id: &str) -> Offer {
    let terms = validate_registration(
        serde_json::from_value(json!({
            "offerId": id, "title": "Locations", "description": "d",
            "starts": 1_000, "expires": 4_000_000_000_000i64,
            "requiredData": {"name": "b", "bundle": {"x": {"endpoints": [{"endpoint": "a/b"}]}}},
            "requiredMinUser": 1, "requiredMaxUser": 3
        }))
        .unwrap(),
    )
    .unwrap();
    Offer {
        terms,
        credentials: dex::offers::OfferCredentials {
            password_sealed: "v1.k.sealed".into(),
            password_hash: "$2a$10$hash".into(),
        },
        provider: "buyer-account".into(),
        status: OfferStatus::Draft,
        created: chrono::Utc::now().timestamp_millis(),
        claims_kept: 0,
        places_taken: 0,
        claims_released: false,
        version: 1,
    }
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("a JSON array")
        .iter()
        .map(|o| o["offerId"].as_str().expect("offerId").to_owned())
        .collect()
}

#[tokio::test]
async fn the_operator_lists_offers_and_sets_any_status() {
    // A table of its own: this offer's sealed password is a placeholder that `claims` could
    // not open, so the fuzzer must not find it.
    let store = dex_tests::support::fresh_store("dex-offers-dexctl").await;
    let table = store.table().to_owned();
    let id = format!("dexctl-{}", uuid::Uuid::new_v4().simple());
    let event = LogEvent::new(
        Subject::offer(&id),
        Kind::OfferRegistered,
        &Actor::Operator,
        json!({}),
    );
    store.insert_offer(&offer(&id), event).await.unwrap();

    assert!(ids(&dexctl_json(&table, &["offers", "list"]).await).contains(&id));
    assert!(!ids(&dexctl_json(&table, &["offers", "list", "--listed"]).await).contains(&id));

    let approved = dexctl_json(&table, &["offers", "status", &id, "approved"]).await;
    assert_eq!(approved["status"], json!("approved"));
    assert_eq!(approved["offerId"], json!(id));
    assert!(ids(&dexctl_json(&table, &["offers", "list", "--listed"]).await).contains(&id));
    // Any status, the owner's rules notwithstanding: rejected, then back to approved.
    dexctl_json(&table, &["offers", "status", &id, "rejected"]).await;
    let again = dexctl_json(&table, &["offers", "status", &id, "approved"]).await;
    assert_eq!(again["status"], json!("approved"));
    let stored = store.get_offer(&id).await.unwrap().unwrap();
    assert_eq!((stored.status, stored.version), (OfferStatus::Approved, 4));

    let log = store
        .subject_history(&Subject::offer(&id).to_string(), PageRequest::first(10))
        .await
        .unwrap()
        .items;
    let changes: Vec<_> = log
        .iter()
        .filter(|e| e.kind == "offer.status-changed")
        .collect();
    assert_eq!(changes.len(), 3);
    assert!(changes.iter().all(|e| e.actor == "dexctl"));
    assert_eq!(changes[1].details["status"], json!("rejected"));

    // Refusals: an unknown status, an unknown offer; neither changes anything.
    let out = dexctl(&table, &["offers", "status", &id, "open"]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown status"));
    let out = dexctl(
        &table,
        &["offers", "status", "no-such-offer-here", "approved"],
    )
    .await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no offer no-such-offer-here"));
    assert_eq!(store.get_offer(&id).await.unwrap().unwrap().version, 4);
}
