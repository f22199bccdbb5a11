//! The sweep of expired claim reservations (dex::offers::sweep) on the fakes: a claim whose
//! debit request got no answer keeps its place for the lease; when its HAT never comes back,
//! the sweep gives the place back, disables the claim's credential user on the HAT and logs
//! it; a live lease, a resumed claim and a HAT that cannot be reached are each left as the
//! rules say.

use std::time::Duration;

use dex::offers::claims::CLAIM_LEASE;
use dex::offers::sweep::{SWEEP_LEASE, SweepReport, SweepService};
use dex::offers::{ClaimState, OfferStore, ReservationSweepStore};
use dex::ports::Clock;
use dex::testing::{Fail, FakeHats, MemorySecrets, MemoryStore};
use dex::txlog::Subject;

use crate::offer_service::Market;
use crate::support::status;

const HAT: &str = "alice.hubat.net";
const BOB: &str = "bob.hubat.net";

impl Market {
    async fn sweep(&self) -> SweepReport {
        let calls = self.calls();
        let sweep: SweepService<'_, MemoryStore, FakeHats, MemorySecrets> = SweepService {
            store: &self.w.store,
            calls: &calls,
            clock: &*self.w.clock,
            random: &*self.w.random,
            allow_ports: false,
        };
        sweep.sweep().await.unwrap()
    }

    /// `hat` claims `offer` and its debit request gets no answer (the HAT made the debit):
    /// 502, and the place stays reserved for it.
    async fn claim_losing_the_answer(&self, offer: &str, hat: &str) {
        self.w.hats.fail(
            hat,
            "POST /api/v2.6/data-debit",
            Fail::DroppedAfter,
            Some(1),
        );
        status(self.claim(offer, hat).await, 502);
        let claim = self.w.store.get_claim(offer, hat).await.unwrap().unwrap();
        assert!(
            matches!(claim.state, ClaimState::Reserved { .. }),
            "{claim:?}"
        );
    }

    async fn state(&self, offer: &str, hat: &str) -> Option<ClaimState> {
        let claim = self.w.store.get_claim(offer, hat).await.unwrap();
        claim.map(|c| c.state)
    }

    fn user_enabled(&self, hat: &str, offer: &str) -> bool {
        self.offer_user(hat, offer).expect("the offer's user").1
    }
}

fn released(n: usize) -> SweepReport {
    SweepReport {
        expired: n,
        released: n,
        ..SweepReport::default()
    }
}

#[tokio::test]
async fn an_expired_reservation_gives_its_place_back_disables_its_user_and_is_logged() {
    let m = Market::new().await;
    m.hat(BOB).await;
    m.offer("s1", 1, 1).await;
    m.claim_losing_the_answer("s1", HAT).await;
    assert!(m.user_enabled(HAT, "s1"));
    assert_eq!(m.w.hats.debits(HAT).len(), 1);

    // Within the lease nothing is swept: alice may still resume.
    m.w.clock.advance(CLAIM_LEASE - Duration::from_secs(1));
    assert_eq!(m.sweep().await, SweepReport::default());
    assert_eq!(m.places("s1").await, (1, 0));
    assert!(m.user_enabled(HAT, "s1"));

    m.w.clock.advance(Duration::from_secs(2));
    assert_eq!(m.sweep().await, released(1));
    assert_eq!(m.places("s1").await, (0, 0));
    assert_eq!(m.state("s1", HAT).await, Some(ClaimState::Released));
    assert!(
        !m.user_enabled(HAT, "s1"),
        "the swept claim's user is disabled"
    );
    let chain = m.w.history(Subject::hat(HAT)).await;
    let last = chain.last().unwrap();
    assert_eq!(last.kind.as_str(), "offer.claim-released");
    assert_eq!(last.actor, "sweeper");
    assert_eq!(last.details["offerId"], "s1");
    // Swept once: the next run finds nothing.
    assert_eq!(m.sweep().await, SweepReport::default());

    // The place is free for another HAT; alice finds the offer full.
    assert_eq!(m.claim("s1", BOB).await.unwrap(), 1);
    let err = status(m.claim("s1", HAT).await, 400);
    assert_eq!(err.body().cause, "offer is full");
    assert!(!m.user_enabled(HAT, "s1"));
}

#[tokio::test]
async fn a_swept_hat_claims_again_as_a_resumed_claim_without_a_second_debit() {
    let m = Market::new().await;
    m.offer("s2", 1, 2).await;
    m.claim_losing_the_answer("s2", HAT).await;
    m.w.clock.advance(CLAIM_LEASE + Duration::from_secs(1));
    assert_eq!(m.sweep().await, released(1));
    // The debit of the dead attempt still exists: the HAT refuses a second one with 400,
    // which the resumed claim takes as its own.
    assert_eq!(m.claim("s2", HAT).await.unwrap(), 1);
    assert_eq!(m.w.hats.debits(HAT).len(), 1);
    assert_eq!(m.w.hats.users(HAT).len(), 1);
    assert!(
        m.user_enabled(HAT, "s2"),
        "the claim enabled its user again"
    );
    assert_eq!(m.places("s2").await, (1, 1));
    assert_eq!(
        m.state("s2", HAT).await,
        Some(ClaimState::Kept { claimer_number: 1 })
    );
}

#[tokio::test]
async fn a_hat_the_sweep_cannot_reach_stays_releasing_until_a_later_sweep_undoes_it() {
    let m = Market::new().await;
    m.offer("s3", 1, 1).await;
    m.claim_losing_the_answer("s3", HAT).await;
    m.w.clock.advance(CLAIM_LEASE + Duration::from_secs(1));
    m.w.hats
        .fail(HAT, "GET /users/user", Fail::Status(500), None);
    let report = m.sweep().await;
    assert_eq!(
        (report.expired, report.released, report.failed.len()),
        (1, 0, 1)
    );
    assert!(
        report.failed[0].starts_with("s3 alice.hubat.net: "),
        "{report:?}"
    );
    // The place went back at once; the user is still enabled, so the claim is kept
    // `Releasing`: alice's claim waits rather than racing the undo.
    assert_eq!(m.places("s3").await, (0, 0));
    assert!(matches!(
        m.state("s3", HAT).await,
        Some(ClaimState::Releasing { .. })
    ));
    assert!(m.user_enabled(HAT, "s3"));
    let err = status(m.claim("s3", HAT).await, 409);
    assert!(err.to_string().contains("being undone"), "{err}");

    // The same sweep's lease holds: a run within it leaves the claim alone.
    m.w.hats.clear_failures();
    assert_eq!(m.sweep().await, SweepReport::default());
    // After it, the next sweep takes it over and finishes (the place is not given twice).
    m.w.clock.advance(SWEEP_LEASE + Duration::from_secs(1));
    assert_eq!(m.sweep().await, released(1));
    assert_eq!(m.places("s3").await, (0, 0));
    assert!(!m.user_enabled(HAT, "s3"));
    assert_eq!(m.state("s3", HAT).await, Some(ClaimState::Released));
    let chain = m.w.history(Subject::hat(HAT)).await;
    let releases = chain
        .iter()
        .filter(|e| e.kind.as_str() == "offer.claim-released")
        .count();
    assert_eq!(releases, 1, "one release, logged once");
}

#[tokio::test]
async fn a_claim_resumed_or_kept_after_the_sweep_read_it_is_left_alone() {
    let m = Market::new().await;
    m.offer("s4", 1, 1).await;
    m.claim_losing_the_answer("s4", HAT).await;
    m.w.clock.advance(CLAIM_LEASE + Duration::from_secs(1));
    let now = m.w.clock.now_millis();
    let read = m.w.store.expired_reservations(now, 10).await.unwrap();
    assert_eq!(read.len(), 1);
    // Alice comes back between the sweep's read and its write: resumed and kept.
    assert_eq!(m.claim("s4", HAT).await.unwrap(), 1);
    let event = dex::txlog::LogEvent::new(
        Subject::hat(HAT),
        dex::txlog::Kind::OfferClaimReleased,
        &dex::accounts::Actor::Sweeper,
        serde_json::json!({}),
    );
    let taken =
        m.w.store
            .begin_release(&read[0], "sweep-1", now, now + 120_000, event)
            .await
            .unwrap();
    assert!(!taken, "a kept claim is never released");
    assert_eq!(m.places("s4").await, (1, 1));
    assert!(m.user_enabled(HAT, "s4"));
    assert_eq!(
        m.state("s4", HAT).await,
        Some(ClaimState::Kept { claimer_number: 1 })
    );
}

#[tokio::test]
async fn a_hat_no_longer_under_a_certified_cluster_is_released_without_its_hat_side() {
    let m = Market::new().await;
    m.offer("s5", 1, 1).await;
    m.claim_losing_the_answer("s5", HAT).await;
    m.w.clock.advance(CLAIM_LEASE + Duration::from_secs(1));
    m.w.clusters()
        .decertify(&dex::accounts::Actor::Operator, "hubat.net")
        .await
        .unwrap();
    let report = m.sweep().await;
    assert_eq!(
        report,
        SweepReport {
            expired: 1,
            released_unreachable: 1,
            ..SweepReport::default()
        }
    );
    assert_eq!(m.places("s5").await, (0, 0));
    assert_eq!(m.state("s5", HAT).await, Some(ClaimState::Released));
    let user_lookups = m
        .routes(HAT)
        .iter()
        .filter(|r| r.starts_with("GET /users/user"))
        .count();
    assert_eq!(
        user_lookups, 0,
        "DEX does not call a HAT outside a certified cluster"
    );
}
