//! The offers' storage port. The claim protocol is the store's: a place is taken by one
//! conditional write before DEX calls the HAT, kept (numbered) or given back after, so the
//! cap holds whatever the number of racing claimers (docs/decisions.md §13.2).

use std::future::Future;

use super::model::{Offer, OfferHat};
use super::rules::Confirmation;
use crate::error::DexResult;
use crate::txlog::LogEvent;

/// One HAT's claim of one offer, as the store keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    pub offer_id: String,
    pub hat: OfferHat,
    pub state: ClaimState,
    /// Epoch ms when the place was first taken.
    pub created: i64,
    pub confirmation: Confirmation,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimState {
    /// A place is held while DEX sets the claim up on the HAT; after `lease_until` (epoch
    /// ms) the attempt is taken as dead and the place may go to another HAT.
    Reserved { attempt: String, lease_until: i64 },
    /// The claim is final, with its number among the offer's kept claims (1..N).
    Kept { claimer_number: u32 },
    /// The sweeper gave the place of an expired reservation back and is disabling the
    /// claim's credential user on the HAT, under its own `attempt` until `lease_until`
    /// (after which the next sweep takes it over). A claim by this HAT waits meanwhile.
    Releasing { attempt: String, lease_until: i64 },
    /// Swept: no place, but the HAT may hold the debit of the dead attempt, so this HAT's
    /// next claim resumes (a debit the HAT refuses as existing is its own).
    Released,
}

/// What asking for a place gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Reservation {
    /// A new place, held under `attempt` until the lease ends.
    Taken { attempt: String },
    /// This HAT already held a place from an attempt that did not finish: it is this
    /// attempt's now (same place, new lease); the HAT may hold the user and the debit.
    Resumed { attempt: String },
    /// This HAT's claim is kept already.
    AlreadyClaimed,
    /// No place is free (none held past its lease either).
    Full,
    /// The offer is not `approved` (any more).
    NotOpen,
    /// The sweeper is undoing this HAT's expired reservation on the HAT: claim again later.
    BeingReleased,
}

pub trait OfferStore: Send + Sync {
    /// Creates the offer with its log entry; `Conflict` when the id is taken.
    fn insert_offer(
        &self,
        offer: &Offer,
        event: LogEvent,
    ) -> impl Future<Output = DexResult<()>> + Send;
    fn get_offer(&self, offer_id: &str) -> impl Future<Output = DexResult<Option<Offer>>> + Send;
    /// Offers whose status is listed publicly, newest first.
    fn listed_offers(&self) -> impl Future<Output = DexResult<Vec<Offer>>> + Send;
    /// Replaces the offer's status if the offer is still at `expected_version`; `Conflict`
    /// otherwise. The claim counters are never written here.
    fn update_offer_status(
        &self,
        offer: &Offer,
        expected_version: u64,
        event: LogEvent,
    ) -> impl Future<Output = DexResult<()>> + Send;

    /// Takes a place for `hat` in one conditional write: the offer approved and not full,
    /// and no claim of this HAT yet; a place of another HAT whose lease ended (`now`) is
    /// taken over when the offer is full. `attempt` names this attempt; the lease ends at
    /// `lease_until`.
    fn reserve_place(
        &self,
        offer_id: &str,
        hat: &OfferHat,
        attempt: &str,
        now: i64,
        lease_until: i64,
    ) -> impl Future<Output = DexResult<Reservation>> + Send;
    /// Keeps the claim `attempt` holds: numbered next among the kept claims, with its log
    /// entry, in one commit; `Conflict` when the attempt no longer holds the place.
    fn keep_claim(
        &self,
        offer_id: &str,
        hat: &str,
        attempt: &str,
        event: LogEvent,
    ) -> impl Future<Output = DexResult<Claim>> + Send;
    /// Gives the place `attempt` holds back to the offer (nothing when it holds none).
    fn give_back_place(
        &self,
        offer_id: &str,
        hat: &str,
        attempt: &str,
    ) -> impl Future<Output = DexResult<()>> + Send;
    fn get_claim(
        &self,
        offer_id: &str,
        hat: &str,
    ) -> impl Future<Output = DexResult<Option<Claim>>> + Send;
    /// Sets a kept claim's confirmation if it is still `expected`, with its log entry;
    /// `Conflict` otherwise (a concurrent report: read again).
    fn set_confirmation(
        &self,
        offer_id: &str,
        hat: &str,
        expected: Confirmation,
        new: Confirmation,
        event: LogEvent,
    ) -> impl Future<Output = DexResult<()>> + Send;
    /// The kept claims of the offer that are confirmed.
    fn confirmed_claims(
        &self,
        offer_id: &str,
    ) -> impl Future<Output = DexResult<Vec<Claim>>> + Send;
}

/// The sweeper's view of the claims (docs/decisions.md §13.2 "Expired reservations"): the
/// reservations whose attempt died, taken over and released in two conditional steps around
/// the HAT call that disables the claim's credential user.
pub trait ReservationSweepStore: Send + Sync {
    /// Up to `limit` claims `Reserved` or `Releasing` whose lease ended before `now`, of
    /// every offer.
    fn expired_reservations(
        &self,
        now: i64,
        limit: usize,
    ) -> impl Future<Output = DexResult<Vec<Claim>>> + Send;
    /// Takes `claim` (as read) for the sweep `attempt`, leased until `lease_until`, if it is
    /// still in that state with its lease ended at `now`. From `Reserved`: the place goes
    /// back to the offer and `event` is logged, in one commit. From `Releasing` (a sweep
    /// that died): only the attempt and lease change. `false` when the claim changed
    /// meanwhile (resumed, kept, or taken by another sweep).
    fn begin_release(
        &self,
        claim: &Claim,
        attempt: &str,
        now: i64,
        lease_until: i64,
        event: LogEvent,
    ) -> impl Future<Output = DexResult<bool>> + Send;
    /// `Releasing` under `attempt` becomes `Released`; `false` when the sweep no longer
    /// holds it (its lease ended and another sweep took it).
    fn finish_release(
        &self,
        offer_id: &str,
        hat: &str,
        attempt: &str,
    ) -> impl Future<Output = DexResult<bool>> + Send;
}
