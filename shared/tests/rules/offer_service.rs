//! The offer use cases on the fakes (docs/decisions.md §9, §13 "Offers"): registration with
//! sealed credentials, statuses, and claims whose HAT side runs over `hats::calls` against
//! the fake HATs: the exact user and debit DEX makes, every failing step giving the place
//! back, an unanswered debit resumed without a second debit, and 500 distinct HATs racing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use dex::accounts::{Account, Actor};
use dex::auth::sealing::EncryptionKeys;
use dex::hats::calls::{HatCalls, HatSessions};
use dex::hats::register::RegisterHat;
use dex::offers::claims::{ClaimService, ClaimSetup};
use dex::offers::rules::Confirmation;
use dex::offers::service::OfferService;
use dex::offers::{ClaimState, Offer, OfferHat, OfferStore, Reservation};
use dex::ports::Clock;
use dex::testing::{Fail, FakeHats, MemorySecrets, MemoryStore};
use dex::txlog::{Kind, LogEvent, Subject};
use serde_json::{Value, json};

use crate::support::{World, hat_key, status};

const HAT: &str = "alice.hubat.net";

pub(crate) struct Market {
    pub(crate) w: World,
    keys: EncryptionKeys<MemorySecrets>,
    sessions: HatSessions,
    buyer: Account,
}

impl Market {
    pub(crate) async fn new() -> Self {
        let w = World::new().await;
        let buyer = w.account("buyer@market.example", &["marketplace"]).await;
        w.cluster("hubat.net", &[]).await;
        let keys = EncryptionKeys::new(
            w.secrets.clone(),
            w.config.encryption_key_secret(),
            w.clock.clone(),
            w.random.clone(),
        );
        let market = Self {
            w,
            keys,
            sessions: HatSessions::new(),
            buyer,
        };
        market.hat(HAT).await;
        market
    }

    /// A registered HAT of the certified cluster, its platform user as `World::cluster` set it.
    pub(crate) async fn hat(&self, address: &str) {
        self.w.hats.serve_key(address, &hat_key(0).public_pem);
        self.w
            .registration()
            .register(
                RegisterHat {
                    hat_address: address.into(),
                    application_id: None,
                },
                None,
            )
            .await
            .unwrap();
        self.w
            .hats
            .add_hat(address, "platform", "platform password");
    }

    pub(crate) fn offers(&self) -> OfferService<'_, MemoryStore, MemorySecrets> {
        OfferService {
            store: &self.w.store,
            keys: &self.keys,
            clock: &*self.w.clock,
            random: &*self.w.random,
            allow_ports: false,
        }
    }

    pub(crate) fn calls(&self) -> HatCalls<'_, FakeHats, MemorySecrets> {
        HatCalls {
            http: &self.w.hats,
            secrets: &self.w.secrets,
            sessions: &self.sessions,
            clock: &*self.w.clock,
            timeout: Duration::from_secs(5),
            budget: Duration::from_secs(20),
        }
    }

    /// An approved offer of the buyer, running now, for `max` HATs.
    pub(crate) async fn offer(&self, id: &str, min: u32, max: u32) -> Offer {
        let now = self.w.clock.now_millis();
        let body = json!({
            "offerId": id, "title": "Locations", "description": "a month of locations",
            "starts": now - 1_000, "expires": now + 86_400_000, "collectionDuration": 3_600_000,
            "requiredData": {"name": "locations", "bundle": {
                "locations": {"endpoints": [{"endpoint": "rumpel/locations"}]}}},
            "dataConditions": {"name": "cond", "bundle": {
                "c": {"endpoints": [{"endpoint": "rumpel/profile"}]}}},
            "requiredMinUser": min, "requiredMaxUser": max, "status": "approved"
        });
        self.offers()
            .register(&self.buyer, serde_json::from_value(body).unwrap())
            .await
            .unwrap();
        self.offers()
            .set_status(&self.buyer, id, Some("approved"))
            .await
            .unwrap()
    }

    pub(crate) async fn claim(&self, offer: &str, hat: &str) -> dex::DexResult<u32> {
        let verified = self.w.verified_hat(hat);
        self.offers()
            .claim_by_hat(&self.calls(), &verified, offer)
            .await
            .map(|c| c.claimer_number)
    }

    pub(crate) async fn places(&self, offer: &str) -> (u32, u32) {
        let o = self.w.store.get_offer(offer).await.unwrap().unwrap();
        (o.places_taken, o.claims_kept)
    }

    pub(crate) fn routes(&self, hat: &str) -> Vec<String> {
        self.w.hats.api_calls_to(hat)
    }

    pub(crate) fn debit_posts(&self, hat: &str) -> usize {
        self.routes(hat)
            .iter()
            .filter(|r| r.starts_with("POST /api/v2.6/data-debit/"))
            .count()
    }

    /// The offer user on `hat`: (user JSON, enabled).
    pub(crate) fn offer_user(&self, hat: &str, offer: &str) -> Option<(Value, bool)> {
        self.w
            .hats
            .users(hat)
            .into_iter()
            .find(|(u, _)| u["email"] == format!("offer-{offer}"))
    }
}

#[tokio::test]
async fn registration_keeps_a_draft_with_the_password_sealed_and_logs_no_secret() {
    let m = Market::new().await;
    let offer = m.offer("locations-1", 1, 10).await;
    assert_eq!(offer.provider, m.buyer.account_id);
    let c = &offer.credentials;
    assert!(c.password_sealed.starts_with("v1.") && c.password_hash.starts_with("$2a$10$"));
    let info = m.offers().claims(&m.buyer, "locations-1").await.unwrap();
    assert_eq!(info.credentials.login, "offer-locations-1");
    assert!(info.credentials.password_plain.len() >= 24);
    assert!(bcrypt::verify(&info.credentials.password_plain, &c.password_hash).unwrap());
    assert!(!c.password_sealed.contains(&info.credentials.password_plain));
    // The offer's chain names the registration and the status change, never a secret.
    let history = m.w.history("offer:locations-1").await;
    let kinds: Vec<_> = history.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["offer.registered", "offer.status-changed"]);
    let logged = serde_json::to_string(&history).unwrap();
    assert!(!logged.contains(&info.credentials.password_plain) && !logged.contains("$2a$"));
    // The id is unique.
    let again = serde_json::from_value(json!({
        "offerId": "locations-1", "title": "t", "description": "d", "starts": 1, "expires": 2,
        "requiredData": {"name": "b", "bundle": {"x": {"endpoints": [{"endpoint": "a/b"}]}}},
        "requiredMinUser": 1, "requiredMaxUser": 1
    }))
    .unwrap();
    status(m.offers().register(&m.buyer, again).await, 409);
}

#[tokio::test]
async fn statuses_follow_who_asks() {
    let m = Market::new().await;
    m.offer("s1", 1, 1).await;
    let admin = m.w.account("admin@dex.example", &["admin"]).await;
    let other = m.w.account("other@market.example", &["marketplace"]).await;
    status(
        m.offers().set_status(&other, "s1", Some("draft")).await,
        403,
    );
    status(
        m.offers().set_status(&m.buyer, "s1", Some("paid")).await,
        403,
    );
    status(
        m.offers().set_status(&m.buyer, "s1", Some("open")).await,
        400,
    );
    status(m.offers().set_status(&m.buyer, "s1", None).await, 400);
    status(
        m.offers().set_status(&m.buyer, "nope", Some("draft")).await,
        404,
    );
    let rejected = m
        .offers()
        .set_status(&admin, "s1", Some("rejected"))
        .await
        .unwrap();
    assert_eq!(rejected.status.as_str(), "rejected");
    // An admin's rejection stays for the owner.
    status(
        m.offers()
            .set_status(&m.buyer, "s1", Some("approved"))
            .await,
        403,
    );
    assert!(m.offers().listed().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_claim_makes_the_credential_user_and_the_exact_debit_then_is_kept() {
    let m = Market::new().await;
    let offer = m.offer("o1", 1, 10).await;
    let before = m.w.clock.now_millis();
    assert_eq!(m.claim("o1", HAT).await.unwrap(), 1);
    let (user, enabled) = m.offer_user(HAT, "o1").expect("the offer user");
    assert!(enabled);
    assert_eq!(user["name"], "Locations");
    assert_eq!(user["pass"], offer.credentials.password_hash.as_str());
    assert_eq!(user["role"], "validate");
    assert_eq!(
        user["roles"],
        json!([{"role": "validate"}, {"role": "datadebit", "detail": "o1"}])
    );
    let debits = m.w.hats.debits(HAT);
    let debit = &debits["o1"];
    let start = dex::offers::hat_setup::hat_time(before);
    assert_eq!(
        *debit,
        json!({
            "dataDebitKey": "o1",
            "bundle": offer.terms.required_data,
            "conditions": offer.terms.data_conditions.clone().unwrap(),
            "start": start,
            "period": 3_600_000,
            "termsUrl": "",
            "purpose": "Locations",
            "cancelAtPeriodEnd": false,
            "requestClientName": "Locations",
            "requestClientUrl": "",
            "requestClientLogoUrl": ""
        })
    );
    assert!(start.ends_with("+0000") && start.len() == 24, "{start}");
    // The claim is on the HAT's chain, not the offer's.
    assert!(
        m.w.kinds(format!("hat:{HAT}"))
            .await
            .contains(&"offer.claimed".to_owned())
    );
    assert!(
        !m.w.kinds("offer:o1")
            .await
            .contains(&"offer.claimed".to_owned())
    );
    let verified = m.w.verified_hat(HAT);
    let mine = m.offers().user_claim(&verified, "o1").await.unwrap();
    assert_eq!((mine.claimer_number, mine.confirmed), (1, false));
    assert_eq!(mine.user.public_key, hat_key(0).public_pem);
    let err = status(m.claim("o1", HAT).await, 400);
    assert_eq!(err.body().cause, "already claimed");
    assert_eq!(m.debit_posts(HAT), 1);
}

#[tokio::test]
async fn every_failing_hat_step_gives_the_place_back_and_leaves_no_enabled_user() {
    let m = Market::new().await;
    m.offer("f1", 1, 1).await;
    for (route, step) in [
        ("GET /users/access_token", "login"),
        ("POST /users/user", "create user"),
        ("POST /api/v2.6/data-debit", "create data debit"),
    ] {
        m.w.hats.fail(HAT, route, Fail::Status(500), Some(1));
        let err = status(m.claim("f1", HAT).await, 502);
        assert!(err.to_string().contains(step), "{route}: {err}");
        assert_eq!(m.places("f1").await, (0, 0), "{route}");
        assert!(m.w.store.get_claim("f1", HAT).await.unwrap().is_none());
        if let Some((_, enabled)) = m.offer_user(HAT, "f1") {
            assert!(!enabled, "{route}: the credential user was left enabled");
        }
        // Drop the HAT token so that the login step is really reached next time.
        m.w.hats.revoke_tokens(HAT);
    }
    assert!(m.w.hats.debits(HAT).is_empty());
    // A refused debit (400 on a first attempt) is a failure too.
    m.w.hats
        .fail(HAT, "POST /api/v2.6/data-debit", Fail::Status(400), Some(1));
    let err = status(m.claim("f1", HAT).await, 502);
    assert!(err.to_string().contains("refused"), "{err}");
    assert_eq!(m.places("f1").await, (0, 0));
    // Then it works, re-enabling the user the failed attempts left disabled.
    assert_eq!(m.claim("f1", HAT).await.unwrap(), 1);
    assert!(m.offer_user(HAT, "f1").unwrap().1);
    assert_eq!(m.w.hats.users(HAT).len(), 1);
}

#[tokio::test]
async fn an_unanswered_debit_keeps_the_place_and_the_retry_makes_no_second_debit() {
    let m = Market::new().await;
    m.offer("u1", 1, 1).await;
    m.hat("bob.hubat.net").await;
    // The HAT makes the debit, then the connection breaks: DEX does not send it again.
    m.w.hats.fail(
        HAT,
        "POST /api/v2.6/data-debit",
        Fail::DroppedAfter,
        Some(1),
    );
    let err = status(m.claim("u1", HAT).await, 502);
    assert!(err.to_string().contains("create data debit"), "{err}");
    assert_eq!(m.debit_posts(HAT), 1);
    assert_eq!(m.w.hats.debits(HAT).len(), 1);
    // The place stays reserved for alice; the user stays (the debit may be used).
    assert_eq!(m.places("u1").await, (1, 0));
    assert!(m.offer_user(HAT, "u1").unwrap().1);
    let err = status(m.claim("u1", "bob.hubat.net").await, 400);
    assert_eq!(err.body().cause, "offer is full");
    // Alice again: resumed, the HAT's 400 on the repeated create is the debit existing.
    assert_eq!(m.claim("u1", HAT).await.unwrap(), 1);
    assert_eq!(m.debit_posts(HAT), 2);
    assert_eq!(m.w.hats.debits(HAT).len(), 1);
    assert_eq!(m.w.hats.users(HAT).len(), 1);
    assert_eq!(m.places("u1").await, (1, 1));
}

#[tokio::test(start_paused = true)]
async fn a_debit_without_an_answer_in_time_is_an_unknown_outcome_within_one_deadline() {
    let m = Market::new().await;
    m.offer("t1", 1, 1).await;
    m.w.hats.fail(
        HAT,
        "POST /api/v2.6/data-debit",
        Fail::Slow(Duration::from_secs(30)),
        Some(1),
    );
    let started = tokio::time::Instant::now();
    let err = status(m.claim("t1", HAT).await, 504);
    assert!(err.to_string().contains("create data debit"), "{err}");
    assert!(started.elapsed() <= Duration::from_secs(20));
    assert_eq!(m.places("t1").await, (1, 0), "the place stays reserved");
    assert_eq!(m.claim("t1", HAT).await.unwrap(), 1);
}

#[tokio::test]
async fn register_claim_is_for_the_owner_or_an_admin_and_a_registered_hat() {
    let m = Market::new().await;
    m.offer("r1", 1, 5).await;
    let other = m.w.account("other@market.example", &["marketplace"]).await;
    let admin = m.w.account("admin@dex.example", &["admin"]).await;
    let calls = m.calls();
    let offers = m.offers();
    status(
        offers.register_claim(&calls, &other, "r1", Some(HAT)).await,
        403,
    );
    status(
        offers
            .register_claim(&calls, &m.buyer, "nope", Some(HAT))
            .await,
        404,
    );
    status(
        offers.register_claim(&calls, &m.buyer, "r1", None).await,
        400,
    );
    status(
        offers
            .register_claim(&calls, &m.buyer, "r1", Some("carol.hubat.net"))
            .await,
        400,
    );
    status(
        offers
            .register_claim(&calls, &m.buyer, "r1", Some("Not A Hat"))
            .await,
        400,
    );
    let claim = offers
        .register_claim(&calls, &m.buyer, "r1", Some(HAT))
        .await
        .unwrap();
    assert_eq!(
        (claim.claimer_number, claim.data_debit_id.as_str()),
        (1, "r1")
    );
    m.hat("bob.hubat.net").await;
    let claim = offers
        .register_claim(&calls, &admin, "r1", Some("bob.hubat.net"))
        .await
        .unwrap();
    assert_eq!(claim.claimer_number, 2);
    // The claims answer: to the owner or an admin only.
    status(offers.claims(&other, "r1").await, 403);
    assert!(offers.claims(&admin, "r1").await.unwrap().claims.is_empty());
}

async fn confirm(m: &Market, offer: &str, hat: &str, at: i64) {
    let event = LogEvent::new(
        Subject::hat(hat),
        Kind::OfferClaimConfirmed,
        &Actor::Hat(hat.into()),
        json!({ "offerId": offer }),
    );
    m.w.store
        .set_confirmation(
            offer,
            hat,
            Confirmation {
                confirmed: false,
                at: 0,
            },
            Confirmation {
                confirmed: true,
                at,
            },
            event,
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn the_claims_are_shown_only_once_required_min_user_are_confirmed() {
    let m = Market::new().await;
    m.offer("c1", 2, 5).await;
    m.hat("bob.hubat.net").await;
    m.claim("c1", HAT).await.unwrap();
    m.claim("c1", "bob.hubat.net").await.unwrap();
    confirm(&m, "c1", HAT, 10).await;
    let info = m.offers().claims(&m.buyer, "c1").await.unwrap();
    assert!(info.claims.is_empty(), "one of two confirmed");
    confirm(&m, "c1", "bob.hubat.net", 11).await;
    let info = m.offers().claims(&m.buyer, "c1").await.unwrap();
    let numbers: Vec<_> = info.claims.iter().map(|c| c.claimer_number).collect();
    assert_eq!(numbers, [1, 2]);
    assert!(info.claims.iter().all(|c| c.confirmed));
    // Released for good: bob disabling his debit leaves the list to alice's claim.
    let event = LogEvent::new(
        Subject::hat("bob.hubat.net"),
        Kind::OfferClaimUnconfirmed,
        &Actor::Hat("bob.hubat.net".into()),
        json!({ "offerId": "c1" }),
    );
    m.w.store
        .set_confirmation(
            "c1",
            "bob.hubat.net",
            Confirmation {
                confirmed: true,
                at: 11,
            },
            Confirmation {
                confirmed: false,
                at: 12,
            },
            event,
        )
        .await
        .unwrap();
    let info = m.offers().claims(&m.buyer, "c1").await.unwrap();
    let numbers: Vec<_> = info.claims.iter().map(|c| c.claimer_number).collect();
    assert_eq!(numbers, [1]);
}

#[tokio::test]
async fn five_hundred_distinct_hats_racing_on_ten_places_make_ten_claims_and_ten_debits() {
    let m = Arc::new(Market::new().await);
    m.offer("race", 1, 10).await;
    let hats: Vec<String> = (0..500).map(|i| format!("h{i}.hubat.net")).collect();
    for hat in &hats {
        m.hat(hat).await;
    }
    // Some HATs fail during the race, at the user or at the debit.
    for (i, hat) in hats.iter().enumerate() {
        match i % 41 {
            0 => {
                m.w.hats
                    .fail(hat, "POST /users/user", Fail::Status(500), None)
            }
            1 => {
                m.w.hats
                    .fail(hat, "POST /api/v2.6/data-debit", Fail::Status(503), None)
            }
            _ => {}
        }
    }
    let mut tasks = Vec::new();
    for hat in hats.clone() {
        let m = m.clone();
        tasks.push(tokio::spawn(async move {
            let result = m.claim("race", &hat).await;
            (hat, result)
        }));
    }
    let mut kept = BTreeMap::new();
    let mut refusals = BTreeMap::<String, usize>::new();
    for task in tasks {
        let (hat, result) = task.await.unwrap();
        match result {
            Ok(n) => assert!(kept.insert(n, hat).is_none(), "number {n} twice"),
            Err(e) => *refusals.entry(e.status().to_string()).or_default() += 1,
        }
    }
    assert_eq!(
        kept.keys().copied().collect::<Vec<_>>(),
        (1..=10).collect::<Vec<_>>()
    );
    assert_eq!(m.places("race").await, (10, 10));
    // Exactly the kept HATs hold a debit of the offer and an enabled offer user.
    let with_debit: BTreeSet<String> = hats
        .iter()
        .filter(|h| m.w.hats.debits(h).contains_key("race"))
        .cloned()
        .collect();
    assert_eq!(with_debit, kept.values().cloned().collect::<BTreeSet<_>>());
    let enabled: BTreeSet<String> = hats
        .iter()
        .filter(|h| m.offer_user(h, "race").is_some_and(|(_, on)| on))
        .cloned()
        .collect();
    assert_eq!(enabled, with_debit);
    assert_eq!(refusals.values().sum::<usize>(), 490, "{refusals:?}");
}

/// The offer store with `keep_claim` refusing as DynamoDB's adapter does after its retry
/// budget (`Throttled`) or when the lease ran out (`Conflict`).
struct RefusingKeep<'a> {
    store: &'a MemoryStore,
    refusal: Refusal,
}

/// The error `keep_claim` answers.
type Refusal = fn() -> dex::DexError;

impl OfferStore for RefusingKeep<'_> {
    async fn insert_offer(&self, offer: &Offer, event: LogEvent) -> dex::DexResult<()> {
        self.store.insert_offer(offer, event).await
    }
    async fn get_offer(&self, offer_id: &str) -> dex::DexResult<Option<Offer>> {
        self.store.get_offer(offer_id).await
    }
    async fn listed_offers(&self) -> dex::DexResult<Vec<Offer>> {
        self.store.listed_offers().await
    }
    async fn update_offer_status(
        &self,
        offer: &Offer,
        expected_version: u64,
        event: LogEvent,
    ) -> dex::DexResult<()> {
        self.store
            .update_offer_status(offer, expected_version, event)
            .await
    }
    async fn reserve_place(
        &self,
        offer_id: &str,
        hat: &OfferHat,
        attempt: &str,
        now: i64,
        lease_until: i64,
    ) -> dex::DexResult<Reservation> {
        self.store
            .reserve_place(offer_id, hat, attempt, now, lease_until)
            .await
    }
    async fn keep_claim(
        &self,
        _: &str,
        _: &str,
        _: &str,
        _: LogEvent,
    ) -> dex::DexResult<dex::offers::Claim> {
        Err((self.refusal)())
    }
    async fn give_back_place(
        &self,
        offer_id: &str,
        hat: &str,
        attempt: &str,
    ) -> dex::DexResult<()> {
        self.store.give_back_place(offer_id, hat, attempt).await
    }
    async fn get_claim(
        &self,
        offer_id: &str,
        hat: &str,
    ) -> dex::DexResult<Option<dex::offers::Claim>> {
        self.store.get_claim(offer_id, hat).await
    }
    async fn set_confirmation(
        &self,
        offer_id: &str,
        hat: &str,
        expected: Confirmation,
        new: Confirmation,
        event: LogEvent,
    ) -> dex::DexResult<()> {
        self.store
            .set_confirmation(offer_id, hat, expected, new, event)
            .await
    }
    async fn confirmed_claims(&self, offer_id: &str) -> dex::DexResult<Vec<dex::offers::Claim>> {
        self.store.confirmed_claims(offer_id).await
    }
}

/// A HAT side that always succeeds, counting set-ups and undos.
#[derive(Default)]
struct CountingSetup {
    set_ups: std::sync::atomic::AtomicUsize,
    undos: std::sync::atomic::AtomicUsize,
}

impl ClaimSetup for CountingSetup {
    async fn set_up(
        &self,
        _: &Offer,
        _: &OfferHat,
        _: bool,
        _: i64,
    ) -> Result<(), dex::offers::claims::SetupError> {
        self.set_ups
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
    async fn undo(&self, _: &Offer, _: &OfferHat) {
        self.undos
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The load test's finding: a claim whose HAT side was made but that could not be kept
/// (429 after the numbering raced too long, or 409 once its lease ran out) gave nothing
/// back, leaving a debit on the HAT without a claim. Now its place goes back and its user
/// is disabled; an unavailable store (503) still keeps the place for the retry.
#[tokio::test]
async fn a_claim_that_cannot_be_kept_gives_its_place_back_and_undoes_the_hat_side() {
    use std::sync::atomic::Ordering::Relaxed;
    let m = Market::new().await;
    let cases: [(&str, Refusal, u16, bool); 3] = [
        (
            "k1",
            || dex::DexError::Throttled("too many concurrent claims".into()),
            429,
            true,
        ),
        (
            "k2",
            || dex::DexError::Conflict("the place was given away".into()),
            409,
            true,
        ),
        (
            "k3",
            || dex::DexError::Unavailable("DynamoDB is unavailable".into()),
            503,
            false,
        ),
    ];
    for (offer, refusal, code, undone) in cases {
        m.offer(offer, 1, 1).await;
        let store = RefusingKeep {
            store: &m.w.store,
            refusal,
        };
        let setup = CountingSetup::default();
        let claims = ClaimService {
            store: &store,
            setup: &setup,
            clock: &*m.w.clock,
            random: &*m.w.random,
        };
        let hat = OfferHat {
            address: HAT.into(),
            public_key: hat_key(0).public_pem.clone(),
        };
        let err = claims
            .claim(offer, hat, &Actor::Hat(HAT.into()))
            .await
            .unwrap_err();
        assert_eq!(err.status(), code, "{offer}: {err:?}");
        assert_eq!(setup.set_ups.load(Relaxed), 1, "{offer}");
        assert_eq!(setup.undos.load(Relaxed), usize::from(undone), "{offer}");
        let held = m.w.store.get_claim(offer, HAT).await.unwrap();
        if undone {
            assert_eq!(m.places(offer).await, (0, 0), "{offer}");
            assert!(held.is_none(), "{offer}");
        } else {
            assert_eq!(m.places(offer).await, (1, 0), "{offer}");
            assert!(matches!(held.unwrap().state, ClaimState::Reserved { .. }));
        }
    }
}
