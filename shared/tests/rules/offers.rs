//! Offer claims on the in-memory store: the cap holds under a race, failed HATs give their
//! place back, an interrupted claim is resumed, a dead attempt's place is taken over.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dex::accounts::Actor;
use dex::error::DexError;
use dex::offers::claims::{CLAIM_LEASE, ClaimService, ClaimSetup, SetupError};
use dex::offers::rules::validate_registration;
use dex::offers::{ClaimState, Offer, OfferHat, OfferStatus, OfferStore};
use dex::testing::{MemoryStore, SeededRandom, SettableClock};
use dex::txlog::{Kind, LogEvent, Subject};
use serde_json::json;

/// How the fake HAT side answers a claim's setup.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Outcome {
    Works,
    /// The HAT refused (e.g. 500 on the user): nothing the claim needs exists.
    Refuses,
    /// The debit request got no answer: it may exist.
    NoAnswer,
}

#[derive(Default)]
struct FakeSetup {
    outcomes: Mutex<BTreeMap<String, Outcome>>,
    /// HAT → (setups, of which resumed).
    calls: Mutex<BTreeMap<String, (u32, u32)>>,
    /// HATs whose debit exists (set up successfully at least once).
    debits: Mutex<BTreeSet<String>>,
    undone: Mutex<Vec<String>>,
}

impl FakeSetup {
    fn answer(&self, hat: &str, outcome: Outcome) {
        self.outcomes
            .lock()
            .unwrap()
            .insert(hat.to_owned(), outcome);
    }
}

impl ClaimSetup for FakeSetup {
    async fn set_up(
        &self,
        _offer: &Offer,
        hat: &OfferHat,
        resumed: bool,
        _now: i64,
    ) -> Result<(), SetupError> {
        tokio::task::yield_now().await;
        {
            let mut calls = self.calls.lock().unwrap();
            let entry = calls.entry(hat.address.clone()).or_default();
            entry.0 += 1;
            entry.1 += u32::from(resumed);
        }
        let outcome = *self
            .outcomes
            .lock()
            .unwrap()
            .get(&hat.address)
            .unwrap_or(&Outcome::Works);
        match outcome {
            Outcome::Works => {
                self.debits.lock().unwrap().insert(hat.address.clone());
                Ok(())
            }
            Outcome::Refuses => Err(SetupError {
                error: DexError::BadGateway(format!("{}: create user answered 500", hat.address)),
                debit_outcome_unknown: false,
            }),
            Outcome::NoAnswer => {
                // The HAT made the debit, but its answer never came.
                self.debits.lock().unwrap().insert(hat.address.clone());
                Err(SetupError {
                    error: DexError::GatewayTimeout(format!(
                        "{}: create data debit did not answer",
                        hat.address
                    )),
                    debit_outcome_unknown: true,
                })
            }
        }
    }

    async fn undo(&self, _offer: &Offer, hat: &OfferHat) {
        self.undone.lock().unwrap().push(hat.address.clone());
    }
}

struct Market {
    clock: Arc<SettableClock>,
    random: Arc<SeededRandom>,
    store: MemoryStore,
    setup: FakeSetup,
}

const STARTS: i64 = 1_800_000_000_000;

impl Market {
    fn new() -> Self {
        let clock = Arc::new(SettableClock::at_millis(STARTS + 1_000));
        let random = Arc::new(SeededRandom::new(7));
        let store = MemoryStore::new(clock.clone(), random.clone());
        Self {
            clock,
            random,
            store,
            setup: FakeSetup::default(),
        }
    }

    fn service(&self) -> ClaimService<'_, MemoryStore, FakeSetup> {
        ClaimService {
            store: &self.store,
            setup: &self.setup,
            clock: &*self.clock,
            random: &*self.random,
        }
    }

    async fn offer(&self, id: &str, max: i64, status: OfferStatus) {
        let terms = validate_registration(
            serde_json::from_value(json!({
                "offerId": id, "title": "t", "description": "d",
                "starts": STARTS, "expires": STARTS + 86_400_000,
                "requiredData": {"name": "b", "bundle": {"x": {"endpoints": [{"endpoint": "a/b"}]}}},
                "requiredMinUser": 1, "requiredMaxUser": max
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
            status,
            created: STARTS,
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
        self.store.insert_offer(&offer, event).await.unwrap();
    }

    async fn claim(&self, offer: &str, hat: &str) -> Result<u32, DexError> {
        self.service()
            .claim(offer, offer_hat(hat), &Actor::Hat(hat.to_owned()))
            .await
            .map(|view| view.claimer_number)
    }

    async fn places(&self, offer: &str) -> (u32, u32) {
        let o = self.store.get_offer(offer).await.unwrap().unwrap();
        (o.places_taken, o.claims_kept)
    }
}

fn offer_hat(address: &str) -> OfferHat {
    OfferHat {
        address: address.to_owned(),
        public_key: "-----BEGIN PUBLIC KEY-----".into(),
    }
}

#[tokio::test]
async fn five_hundred_racing_claims_on_ten_places_keep_exactly_ten_numbered_one_to_ten() {
    let market = Arc::new(Market::new());
    market.offer("race", 10, OfferStatus::Approved).await;
    // Some HATs fail during the race; their places go back to the others.
    for i in (0..500).step_by(37) {
        market
            .setup
            .answer(&format!("h{i}.hubat.net"), Outcome::Refuses);
    }
    let mut tasks = Vec::new();
    for i in 0..500 {
        let market = market.clone();
        tasks.push(tokio::spawn(async move {
            let hat = format!("h{i}.hubat.net");
            (hat.clone(), market.claim("race", &hat).await)
        }));
    }
    let mut kept = BTreeMap::new();
    let mut refusals = BTreeMap::<String, usize>::new();
    for task in tasks {
        let (hat, result) = task.await.unwrap();
        match result {
            Ok(number) => {
                kept.insert(number, hat);
            }
            Err(e) => *refusals.entry(e.body().cause).or_default() += 1,
        }
    }
    assert_eq!(kept.len(), 10, "{refusals:?}");
    assert_eq!(
        kept.keys().copied().collect::<Vec<_>>(),
        (1..=10).collect::<Vec<_>>()
    );
    assert_eq!(market.places("race").await, (10, 10));
    assert_eq!(refusals.values().sum::<usize>(), 490);
    assert!(refusals.contains_key("offer is full"), "{refusals:?}");
    // Exactly the kept HATs hold a debit; every refused setup was undone.
    let debits = market.setup.debits.lock().unwrap().clone();
    assert_eq!(debits, kept.values().cloned().collect::<BTreeSet<_>>());
    let undone = market.setup.undone.lock().unwrap().len();
    let failed_setups = refusals
        .iter()
        .filter(|(cause, _)| cause.contains("create user"))
        .map(|(_, n)| n)
        .sum::<usize>();
    assert_eq!(undone, failed_setups);
    // Each kept claim is on its HAT's chain, and only there.
    for hat in kept.values() {
        let claim = market.store.get_claim("race", hat).await.unwrap().unwrap();
        assert!(matches!(claim.state, ClaimState::Kept { .. }));
    }
}

#[tokio::test]
async fn a_refused_setup_gives_the_place_back_and_a_second_claim_is_already_claimed() {
    let market = Market::new();
    market.offer("one", 1, OfferStatus::Approved).await;
    market.setup.answer("a.hubat.net", Outcome::Refuses);
    let err = market.claim("one", "a.hubat.net").await.unwrap_err();
    assert_eq!(err.status(), 502);
    assert_eq!(market.places("one").await, (0, 0));
    assert!(
        market
            .store
            .get_claim("one", "a.hubat.net")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(*market.setup.undone.lock().unwrap(), ["a.hubat.net"]);
    // The place is free for another HAT, then the offer is full.
    assert_eq!(market.claim("one", "b.hubat.net").await.unwrap(), 1);
    let err = market.claim("one", "c.hubat.net").await.unwrap_err();
    assert_eq!(err.body().cause, "offer is full");
    let err = market.claim("one", "b.hubat.net").await.unwrap_err();
    assert_eq!(
        (err.status(), err.body().cause.as_str()),
        (400, "already claimed")
    );
}

#[tokio::test]
async fn an_interrupted_claim_is_resumed_by_the_same_hat_without_a_second_place() {
    let market = Market::new();
    market.offer("resume", 2, OfferStatus::Approved).await;
    market.setup.answer("a.hubat.net", Outcome::NoAnswer);
    let err = market.claim("resume", "a.hubat.net").await.unwrap_err();
    assert_eq!(err.status(), 504);
    // The debit may exist: the place stays reserved for that HAT.
    assert_eq!(market.places("resume").await, (1, 0));
    assert!(market.setup.undone.lock().unwrap().is_empty());
    market.setup.answer("a.hubat.net", Outcome::Works);
    assert_eq!(market.claim("resume", "a.hubat.net").await.unwrap(), 1);
    assert_eq!(market.places("resume").await, (1, 1));
    assert_eq!(market.setup.calls.lock().unwrap()["a.hubat.net"], (2, 1));
}

#[tokio::test]
async fn a_dead_attempts_place_goes_to_another_hat_once_its_lease_has_ended() {
    let market = Market::new();
    market.offer("lease", 1, OfferStatus::Approved).await;
    market.setup.answer("dead.hubat.net", Outcome::NoAnswer);
    market.claim("lease", "dead.hubat.net").await.unwrap_err();
    let err = market.claim("lease", "b.hubat.net").await.unwrap_err();
    assert_eq!(err.body().cause, "offer is full", "the lease still runs");
    market.clock.advance(CLAIM_LEASE + Duration::from_secs(1));
    assert_eq!(market.claim("lease", "b.hubat.net").await.unwrap(), 1);
    assert_eq!(market.places("lease").await, (1, 1));
    assert!(
        market
            .store
            .get_claim("lease", "dead.hubat.net")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn only_known_approved_offers_take_claims() {
    let market = Market::new();
    market.offer("draft", 5, OfferStatus::Draft).await;
    assert_eq!(
        market
            .claim("nope", "a.hubat.net")
            .await
            .unwrap_err()
            .status(),
        404
    );
    let err = market.claim("draft", "a.hubat.net").await.unwrap_err();
    assert_eq!(err.status(), 400);
    assert_eq!(market.places("draft").await, (0, 0));
    assert!(
        market.setup.calls.lock().unwrap().is_empty(),
        "no HAT was called"
    );
}
