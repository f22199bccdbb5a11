//! Claiming an offer (docs/decisions.md §13.2): a place is taken in the store before any
//! HAT call, the claim is set up on the HAT, then kept (numbered) or its place given back.
//!
//! What happens to the place when the HAT fails depends on what DEX knows:
//! - the HAT answered with a refusal (or never got the debit request): nothing exists on
//!   the HAT that the claim needs, so the place goes back at once (and the credential user
//!   this attempt made is disabled, best effort);
//! - the debit request got no answer: the debit may exist. The place stays reserved for the
//!   HAT until its lease ends (longer than the function's timeout), so a retry by the same
//!   HAT resumes the claim instead of making a second debit; after the lease another HAT
//!   may take the place;
//! - the claim could not be kept after the HAT side was made (the numbering raced for too
//!   long, or the lease ran out): the place goes back and the credential user is disabled,
//!   so the debit on the HAT gives no access that DEX has no claim for.
//!
//! A reservation whose attempt died and that its HAT never resumes is swept after its lease
//! ([`super::sweep`]): its place goes back and the credential user is disabled on the HAT.

use std::future::Future;
use std::time::Duration;

use super::model::{ClaimView, Offer, OfferHat};
use super::ports::{Claim, ClaimState, OfferStore, Reservation};
use super::rules::{already_claimed, check_open, offer_full};
use crate::accounts::Actor;
use crate::error::{DexError, DexResult};
use crate::ports::{Clock, Random};
use crate::txlog::{Kind, LogEvent, Subject};

/// How long a place stays reserved for an attempt that did not finish: longer than any
/// function's timeout (template.yaml: at most 30 s), so a live attempt never loses it.
pub const CLAIM_LEASE: Duration = Duration::from_secs(120);

/// Why setting a claim up on the HAT failed.
#[derive(Debug)]
pub struct SetupError {
    pub error: DexError,
    /// The data debit may exist on the HAT: this attempt's debit request got no answer, or
    /// (when resuming) an earlier attempt's did. The place then stays reserved for the HAT.
    pub debit_outcome_unknown: bool,
}

/// What a claim needs on the HAT: the offer's credential user and its data debit.
pub trait ClaimSetup: Send + Sync {
    /// Makes both exist on `hat` (an existing user is found and enabled; a debit the HAT
    /// refuses with 400 when `resumed` is taken as existing).
    fn set_up(
        &self,
        offer: &Offer,
        hat: &OfferHat,
        resumed: bool,
        now: i64,
    ) -> impl Future<Output = Result<(), SetupError>> + Send;
    /// Best effort: disables the credential user on `hat` after a failed attempt.
    fn undo(&self, offer: &Offer, hat: &OfferHat) -> impl Future<Output = ()> + Send;
}

pub struct ClaimService<'a, S, C> {
    pub store: &'a S,
    pub setup: &'a C,
    pub clock: &'a dyn Clock,
    pub random: &'a dyn Random,
}

impl<S: OfferStore, C: ClaimSetup> ClaimService<'_, S, C> {
    /// `hat` claims `offer_id`: by itself (`actor` the HAT) or through the offer's owner.
    pub async fn claim(
        &self,
        offer_id: &str,
        hat: OfferHat,
        actor: &Actor,
    ) -> DexResult<ClaimView> {
        let offer = self
            .store
            .get_offer(offer_id)
            .await?
            .ok_or_else(|| DexError::NotFound(format!("no offer {offer_id}")))?;
        self.claim_offer(&offer, hat, actor).await
    }

    /// `claim` of an offer the caller has read already.
    pub async fn claim_offer(
        &self,
        offer: &Offer,
        hat: OfferHat,
        actor: &Actor,
    ) -> DexResult<ClaimView> {
        let now = self.clock.now_millis();
        let offer_id = offer.terms.offer_id.as_str();
        check_open(offer, now)?;
        let attempt = self.random.hex(16);
        let lease_until = now + CLAIM_LEASE.as_millis() as i64;
        let resumed = match self
            .store
            .reserve_place(offer_id, &hat, &attempt, now, lease_until)
            .await?
        {
            Reservation::Taken { .. } => false,
            Reservation::Resumed { .. } => true,
            Reservation::AlreadyClaimed => return Err(already_claimed()),
            Reservation::Full => return Err(offer_full()),
            Reservation::NotOpen => {
                return Err(DexError::bad_request("the offer is not open for claims"));
            }
            Reservation::BeingReleased => {
                return Err(DexError::Conflict(
                    "an earlier, unfinished claim of this HAT is being undone on the HAT; \
                     claim again in a few minutes"
                        .into(),
                ));
            }
        };
        if let Err(failure) = self.setup.set_up(offer, &hat, resumed, now).await {
            if !failure.debit_outcome_unknown {
                self.store
                    .give_back_place(offer_id, &hat.address, &attempt)
                    .await?;
                self.setup.undo(offer, &hat).await;
            }
            return Err(failure.error);
        }
        let event = LogEvent::new(
            Subject::hat(&hat.address),
            Kind::OfferClaimed,
            actor,
            serde_json::json!({ "offerId": offer_id, "resumed": resumed }),
        );
        let claim = match self
            .store
            .keep_claim(offer_id, &hat.address, &attempt, event)
            .await
        {
            Ok(claim) => claim,
            // Known not kept (numbering kept racing, or the lease ran out and the place went
            // to another HAT): the claim's user must not outlive its place, or the HAT keeps
            // a debit DEX has no claim for. An unavailable store is no such answer: the place
            // stays reserved and a retry resumes.
            Err(error @ (DexError::Throttled(_) | DexError::Conflict(_))) => {
                self.store
                    .give_back_place(offer_id, &hat.address, &attempt)
                    .await?;
                self.setup.undo(offer, &hat).await;
                return Err(error);
            }
            Err(error) => return Err(error),
        };
        claim_view(&claim)
    }
}

/// A kept claim as the API shows it.
pub fn claim_view(claim: &Claim) -> DexResult<ClaimView> {
    let ClaimState::Kept { claimer_number } = claim.state else {
        return Err(DexError::internal("a claim in progress has no summary"));
    };
    Ok(ClaimView {
        offer_id: claim.offer_id.clone(),
        user: claim.hat.clone(),
        relationship: "claim".into(),
        confirmed: claim.confirmation.confirmed,
        data_debit_id: claim.offer_id.clone(),
        date_created: claim.created,
        claimer_number,
    })
}
