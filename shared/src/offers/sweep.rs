//! The sweep of expired claim reservations (docs/decisions.md §13.2 "Expired reservations"),
//! run on a schedule by the `offer-sweep` function.
//!
//! A claim whose answer was lost after its debit request (the function timed out or died)
//! keeps its reservation for the lease, so that the same HAT's retry resumes it. When the
//! HAT never retries, the place stays taken and the HAT keeps an enabled credential user
//! with a debit DEX has no claim for. For each such reservation the sweep:
//! 1. takes it under its own attempt and gives its place back (`Reserved` -> `Releasing`, one
//!    conditional commit with its log entry): from here on a claim of that HAT waits (409)
//!    instead of racing the HAT call below;
//! 2. disables the claim's credential user on the HAT (as the cluster's platform user);
//! 3. marks it `Released`: that HAT's next claim resumes, as the debit may exist.
//!
//! A sweep that dies between 1 and 3 leaves `Releasing` with a lease; the next sweep after
//! that lease takes it over and does 2 and 3 again (both are idempotent).

use std::time::Duration;

use serde::Serialize;

use super::model::credentials_login;
use super::ports::{Claim, ClaimState, ReservationSweepStore};
use crate::accounts::Actor;
use crate::error::{DexError, DexResult};
use crate::hats::HatStore;
use crate::hats::calls::{Deadline, HatCalls};
use crate::hats::{HatHttp, certified_hat};
use crate::ports::{Clock, Random, SecretStore};
use crate::txlog::{Kind, LogEvent, Subject};

/// How long one sweep holds a reservation it is releasing: longer than the function's
/// timeout, so a live sweep never loses it to the next one.
pub const SWEEP_LEASE: Duration = Duration::from_secs(120);
/// Reservations released per run at most (the function's timeout bounds a run: each one
/// costs a few HAT calls).
pub const SWEEP_BATCH: usize = 25;

/// What one sweep did, as the function answers it (counts, and the HATs it could not
/// reach, for the operator).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    /// Expired reservations found.
    pub expired: usize,
    /// Released: the place given back and the credential user disabled on the HAT.
    pub released: usize,
    /// Released without the HAT side: the HAT is no longer registered under a certified
    /// cluster, so DEX cannot call it.
    pub released_unreachable: usize,
    /// Taken by its HAT's retry, or by another sweep, before this one: left alone.
    pub changed_meanwhile: usize,
    /// `offerId hat: error` of the HAT calls that failed; each stays `Releasing` and the
    /// next sweep after its lease tries again.
    pub failed: Vec<String>,
    /// Found but not started: the run's HAT budget was spent (the next run takes them).
    pub left_for_next_run: usize,
}

pub struct SweepService<'a, S, H, K> {
    pub store: &'a S,
    pub calls: &'a HatCalls<'a, H, K>,
    pub clock: &'a dyn Clock,
    pub random: &'a dyn Random,
    /// Whether HAT addresses may carry a `:port` (only when HAT hosts are pinned, locally).
    pub allow_ports: bool,
}

/// What undoing a claim on its HAT came to.
enum Undone {
    Done,
    /// The HAT is not registered under a certified cluster (any more).
    Unreachable(String),
}

impl<S: ReservationSweepStore + HatStore, H: HatHttp, K: SecretStore> SweepService<'_, S, H, K> {
    /// One sweep: every expired reservation (up to [`SWEEP_BATCH`]) released.
    pub async fn sweep(&self) -> DexResult<SweepReport> {
        let now = self.clock.now_millis();
        let expired = self.store.expired_reservations(now, SWEEP_BATCH).await?;
        let mut report = SweepReport {
            expired: expired.len(),
            ..SweepReport::default()
        };
        // One deadline for the whole run's HAT calls, so the run ends within the function's
        // timeout; what it does not reach waits for the next run.
        let deadline = self.calls.deadline();
        for claim in &expired {
            if deadline.remaining().is_zero() {
                report.left_for_next_run += 1;
                continue;
            }
            self.release(claim, now, deadline, &mut report).await?;
        }
        Ok(report)
    }

    async fn release(
        &self,
        claim: &Claim,
        now: i64,
        deadline: Deadline,
        report: &mut SweepReport,
    ) -> DexResult<()> {
        let attempt = self.random.hex(16);
        let lease_until = now + SWEEP_LEASE.as_millis() as i64;
        let event = LogEvent::new(
            Subject::hat(&claim.hat.address),
            Kind::OfferClaimReleased,
            &Actor::Sweeper,
            serde_json::json!({
                "offerId": claim.offer_id,
                "reason": "the claim's reservation expired unfinished",
            }),
        );
        if !self
            .store
            .begin_release(claim, &attempt, now, lease_until, event)
            .await?
        {
            report.changed_meanwhile += 1;
            return Ok(());
        }
        let (offer_id, hat) = (claim.offer_id.as_str(), claim.hat.address.as_str());
        match self.undo_on_hat(offer_id, hat, deadline).await {
            Ok(Undone::Done) => report.released += 1,
            Ok(Undone::Unreachable(why)) => {
                tracing::warn!(offer = %offer_id, hat = %hat, why = %why,
                    "an expired claim was released without disabling its user on the HAT");
                report.released_unreachable += 1;
            }
            Err(error) => {
                tracing::warn!(offer = %offer_id, hat = %hat, error = %error,
                    "an expired claim's user could not be disabled; the next sweep tries again");
                report.failed.push(format!("{offer_id} {hat}: {error}"));
                return Ok(());
            }
        }
        if !self.store.finish_release(offer_id, hat, &attempt).await? {
            tracing::warn!(offer = %offer_id, hat = %hat,
                "a release outlived its lease; the next sweep finishes it");
        }
        Ok(())
    }

    /// Disables the offer's credential user on `hat`, if it exists there.
    async fn undo_on_hat(
        &self,
        offer_id: &str,
        hat: &str,
        deadline: Deadline,
    ) -> DexResult<Undone> {
        let (address, _, cluster) = match certified_hat(self.store, hat, self.allow_ports).await {
            Ok(found) => found,
            // Not registered, not under a certified cluster, or not a HAT address any more.
            Err(DexError::BadRequest { cause, .. }) => return Ok(Undone::Unreachable(cause)),
            Err(e) => return Err(e),
        };
        let session = self.calls.session(&address, &cluster.secret_name, deadline);
        if let Some(user) = session.find_user(&credentials_login(offer_id)).await? {
            session.disable_user(&user.user_id).await?;
        }
        Ok(Undone::Done)
    }
}

/// Whether `claim` is one the sweep releases at `now`.
pub fn is_expired(claim: &Claim, now: i64) -> bool {
    match claim.state {
        ClaimState::Reserved { lease_until, .. } | ClaimState::Releasing { lease_until, .. } => {
            lease_until < now
        }
        ClaimState::Kept { .. } | ClaimState::Released => false,
    }
}
