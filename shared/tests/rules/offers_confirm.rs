//! Confirmation through `POST /stats/report` (docs/decisions.md §13 "Confirmation"), on the
//! in-memory store: a `datadebit` `Enable` / `Disable` of the offer's debit from the HAT that
//! claimed it confirms / unconfirms the claim, exactly once and in item-time order, on that
//! HAT's chain; anything else changes no claim.

use std::sync::Arc;

use dex::accounts::Actor;
use dex::hats::verify::VerifiedHat;
use dex::offers::rules::{Confirmation, validate_registration};
use dex::offers::{ClaimState, Offer, OfferHat, OfferStatus, OfferStore, Reservation};
use dex::ports::Clock;
use dex::stats::ingest::ingest;
use dex::stats::report::parse_item;
use dex::stats::{OFFER_CLAIMS, StatsStore};
use dex::txlog::{Kind, LogEvent, Subject};
use serde_json::{Value, json};

use crate::support::World;

fn verified(address: &str) -> VerifiedHat {
    crate::support::verified_hat(address)
}

/// A v2.6 `datadebit` item as HAT2.0 sends it (docs/hats.md §4); `time` in epoch ms.
fn debit_item(key: &str, operation: &str, time: i64) -> Value {
    json!({
        "dataDebit": {
            "dataDebitKey": key, "dateCreated": "2026-12-01T10:00:00+0000", "permissions": [],
            "requestClientName": "Buyer", "requestClientUrl": "", "requestClientLogoUrl": "",
            "active": operation == "Enable()", "accepted": true
        },
        "operation": operation, "time": time,
        "user": {"userId": "8a6e0000-0000-0000-0000-000000000000", "email": "owner", "name": "Owner",
                 "role": "owner", "roles": [{"role": "owner"}]},
        "logEntry": operation, "statsType": "datadebit"
    })
}

fn body(items: &[Value]) -> Vec<u8> {
    serde_json::to_vec(items).unwrap()
}

struct Market {
    world: World,
}

impl Market {
    async fn new() -> Self {
        Self {
            world: World::new().await,
        }
    }

    fn now(&self) -> i64 {
        self.world.clock.now_millis()
    }

    async fn offer(&self, id: &str) {
        let now = self.now();
        let terms = validate_registration(
            serde_json::from_value(json!({
                "offerId": id, "title": "t", "description": "d",
                "starts": now - 1_000, "expires": now + 86_400_000,
                "requiredData": {"name": "b", "bundle": {"x": {"endpoints": [{"endpoint": "a/b"}]}}},
                "requiredMinUser": 1, "requiredMaxUser": 10
            }))
            .unwrap(),
        )
        .unwrap();
        let offer = Offer {
            terms,
            credentials: dex::offers::OfferCredentials {
                password_sealed: "v1.k.sealed".into(),
                password_hash: "$2a$10$hash".into(),
            },
            provider: "buyer".into(),
            status: OfferStatus::Approved,
            created: now,
            claims_kept: 0,
            places_taken: 0,
            claims_released: false,
            version: 1,
        };
        let event = LogEvent::new(
            Subject::offer(id),
            Kind::OfferRegistered,
            &Actor::Operator,
            json!({}),
        );
        self.world.store.insert_offer(&offer, event).await.unwrap();
    }

    /// Takes a place for `hat`; keeps the claim when `keep`.
    async fn claim(&self, offer: &str, hat: &str, keep: bool) {
        let now = self.now();
        let attempt = format!("attempt-{hat}");
        let taken = self
            .world
            .store
            .reserve_place(
                offer,
                &OfferHat {
                    address: hat.into(),
                    public_key: "pem".into(),
                },
                &attempt,
                now,
                now + 120_000,
            )
            .await
            .unwrap();
        assert!(matches!(taken, Reservation::Taken { .. }), "{taken:?}");
        if keep {
            let event = LogEvent::new(
                Subject::hat(hat),
                Kind::OfferClaimed,
                &Actor::Hat(hat.into()),
                json!({ "offerId": offer }),
            );
            self.world
                .store
                .keep_claim(offer, hat, &attempt, event)
                .await
                .unwrap();
        }
    }

    async fn report(&self, hat: &str, items: &[Value]) -> dex::stats::service::ReportResponse {
        self.world
            .stats()
            .report(&verified(hat), &body(items))
            .await
            .expect("report")
    }

    async fn confirmation(&self, offer: &str, hat: &str) -> Confirmation {
        self.world
            .store
            .get_claim(offer, hat)
            .await
            .unwrap()
            .expect("a claim")
            .confirmation
    }

    /// The offer's kinds on the HAT's chain, stats batches left out.
    async fn claim_kinds(&self, hat: &str) -> Vec<String> {
        self.world
            .kinds(Subject::hat(hat))
            .await
            .into_iter()
            .filter(|k| k.starts_with("offer."))
            .collect()
    }
}

const T0: i64 = 1_764_000_000_000;

fn at(confirmed: bool, at: i64) -> Confirmation {
    Confirmation { confirmed, at }
}

#[tokio::test]
async fn enable_confirms_and_disable_unconfirms_exactly_once_in_item_time_order() {
    let m = Market::new().await;
    m.offer("conf").await;
    m.claim("conf", "a.hubat.net", true).await;
    assert_eq!(m.confirmation("conf", "a.hubat.net").await, at(false, 0));

    let enable = debit_item("conf", "Enable()", T0);
    let first = m.report("a.hubat.net", std::slice::from_ref(&enable)).await;
    assert_eq!((first.accepted, first.duplicates), (1, 0));
    assert_eq!(m.confirmation("conf", "a.hubat.net").await, at(true, T0));
    let confirmed = m.world.store.confirmed_claims("conf").await.unwrap();
    assert_eq!(confirmed.len(), 1);
    assert_eq!(confirmed[0].hat.address, "a.hubat.net");

    // The HAT resends: nothing changes, nothing more is logged.
    let again = m.report("a.hubat.net", std::slice::from_ref(&enable)).await;
    assert_eq!((again.accepted, again.duplicates), (0, 1));
    assert_eq!(
        m.claim_kinds("a.hubat.net").await,
        ["offer.claimed", "offer.claim-confirmed"]
    );

    m.report(
        "a.hubat.net",
        &[debit_item("conf", "Disable()", T0 + 2_000)],
    )
    .await;
    assert_eq!(
        m.confirmation("conf", "a.hubat.net").await,
        at(false, T0 + 2_000)
    );
    assert!(
        m.world
            .store
            .confirmed_claims("conf")
            .await
            .unwrap()
            .is_empty()
    );
    // A late Enable older than that Disable (a new item, counted) changes no claim.
    let late = m
        .report("a.hubat.net", &[debit_item("conf", "Enable()", T0 + 1_000)])
        .await;
    assert_eq!(late.accepted, 1);
    assert_eq!(
        m.confirmation("conf", "a.hubat.net").await,
        at(false, T0 + 2_000)
    );
    let log = m.world.history(Subject::hat("a.hubat.net")).await;
    let offer_entries: Vec<_> = log
        .iter()
        .filter(|e| e.kind.starts_with("offer."))
        .collect();
    assert_eq!(
        offer_entries
            .iter()
            .map(|e| e.kind.as_str())
            .collect::<Vec<_>>(),
        [
            "offer.claimed",
            "offer.claim-confirmed",
            "offer.claim-unconfirmed"
        ]
    );
    // Each names the offer and the item time, and the HAT as actor.
    assert_eq!(offer_entries[2].details["offerId"], json!("conf"));
    assert_eq!(offer_entries[2].details["itemTime"], json!(T0 + 2_000));
    assert_eq!(offer_entries[2].actor, "hat:a.hubat.net");
    // Nothing on the offer's own chain but its registration.
    assert_eq!(
        m.world.kinds(Subject::offer("conf")).await,
        ["offer.registered"]
    );
}

#[tokio::test]
async fn items_of_one_report_apply_oldest_first_whatever_their_order() {
    let m = Market::new().await;
    m.offer("order").await;
    m.claim("order", "a.hubat.net", true).await;
    m.report(
        "a.hubat.net",
        &[
            debit_item("order", "Disable()", T0 + 2_000),
            debit_item("order", "Enable()", T0 + 1_000),
        ],
    )
    .await;
    assert_eq!(
        m.confirmation("order", "a.hubat.net").await,
        at(false, T0 + 2_000)
    );
    assert_eq!(
        m.claim_kinds("a.hubat.net").await,
        [
            "offer.claimed",
            "offer.claim-confirmed",
            "offer.claim-unconfirmed"
        ]
    );
}

#[tokio::test]
async fn only_the_claiming_hats_own_enable_of_the_offers_debit_confirms() {
    let m = Market::new().await;
    m.offer("mine").await;
    m.claim("mine", "a.hubat.net", true).await;
    m.claim("mine", "pending.hubat.net", false).await;
    // Another HAT's word on a's claim, an app's debit, a Create, a legacy event, a
    // still-reserved claim: none confirms anything.
    m.report("b.hubat.net", &[debit_item("mine", "Enable()", T0)])
        .await;
    let legacy = json!({"dataDebit": {"dataDebitKey": "mine", "dateCreated": "2026-12-01T10:00:00+0000",
        "client": {}, "bundles": [{"enabled": true}]}, "operation": "Enable()", "time": T0 + 1,
        "user": {}, "logEntry": "Enable()", "statsType": "datadebitEvent"});
    m.report(
        "a.hubat.net",
        &[
            debit_item("app-notables", "Enable()", T0),
            debit_item("mine", "Create()", T0 + 2),
            legacy,
        ],
    )
    .await;
    m.report("pending.hubat.net", &[debit_item("mine", "Enable()", T0)])
        .await;
    assert_eq!(m.confirmation("mine", "a.hubat.net").await, at(false, 0));
    assert_eq!(
        m.confirmation("mine", "pending.hubat.net").await,
        at(false, 0)
    );
    assert!(
        m.world
            .store
            .get_claim("mine", "b.hubat.net")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        m.world
            .store
            .confirmed_claims("mine")
            .await
            .unwrap()
            .is_empty()
    );
    for hat in ["a.hubat.net", "b.hubat.net", "pending.hubat.net"] {
        assert!(
            !m.claim_kinds(hat)
                .await
                .iter()
                .any(|k| k.starts_with("offer.claim-")),
            "{hat}"
        );
    }
    // The HAT's own Enable, with the HAT's ISO time, does.
    let mut iso = debit_item("mine", "Enable()", 0);
    iso["time"] = json!("2026-12-01T10:00:05+0000");
    m.report("a.hubat.net", &[iso]).await;
    assert!(m.confirmation("mine", "a.hubat.net").await.confirmed);
}

#[tokio::test]
async fn a_report_counted_before_its_confirmation_confirms_on_its_resend() {
    // The first attempt counted the item and died before confirming: the HAT's resend finds
    // the item counted (a duplicate) and still confirms, once.
    let m = Market::new().await;
    m.offer("resend").await;
    m.claim("resend", "a.hubat.net", true).await;
    let enable = debit_item("resend", "Enable()", T0);
    let item = parse_item(&enable).unwrap();
    ingest(&m.world.store, "a.hubat.net", &[item])
        .await
        .unwrap();
    assert_eq!(m.confirmation("resend", "a.hubat.net").await, at(false, 0));
    let resend = m.report("a.hubat.net", std::slice::from_ref(&enable)).await;
    assert_eq!((resend.accepted, resend.duplicates), (0, 1));
    assert_eq!(m.confirmation("resend", "a.hubat.net").await, at(true, T0));
    m.report("a.hubat.net", &[enable]).await;
    assert_eq!(
        m.claim_kinds("a.hubat.net").await,
        ["offer.claimed", "offer.claim-confirmed"]
    );
}

#[tokio::test]
async fn concurrent_copies_of_a_report_confirm_once() {
    let m = Arc::new(Market::new().await);
    m.offer("copies").await;
    m.claim("copies", "a.hubat.net", true).await;
    let items = [debit_item("copies", "Enable()", T0)];
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (m, items) = (m.clone(), items.clone());
        tasks.push(tokio::spawn(async move {
            m.report("a.hubat.net", &items).await
        }));
    }
    let mut accepted = 0;
    for task in tasks {
        accepted += task.await.unwrap().accepted;
    }
    assert_eq!(accepted, 1, "counted once");
    assert_eq!(m.confirmation("copies", "a.hubat.net").await, at(true, T0));
    assert_eq!(
        m.claim_kinds("a.hubat.net").await,
        ["offer.claimed", "offer.claim-confirmed"]
    );
}

#[tokio::test]
async fn every_kept_claim_counts_in_total_offer_claims_and_reservations_do_not() {
    let m = Market::new().await;
    m.offer("count").await;
    m.claim("count", "a.hubat.net", true).await;
    m.claim("count", "b.hubat.net", true).await;
    m.claim("count", "c.hubat.net", false).await;
    let figures = m.world.store.figures(&[OFFER_CLAIMS]).await.unwrap();
    assert_eq!(figures[OFFER_CLAIMS].0, 2);
    let claim = m
        .world
        .store
        .get_claim("count", "b.hubat.net")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claim.state, ClaimState::Kept { claimer_number: 2 });
}
