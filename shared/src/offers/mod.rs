//! Data offers (docs/decisions.md §9, §13 "Offers"): buyers with the `marketplace` role
//! register offers, HATs claim them, DEX sets the data debit up on each claiming HAT and
//! releases the buyer's access once `requiredMinUser` claims are confirmed.
//!
//! This module holds the models and the rules that need no store; the claim itself (a
//! place taken with a conditional write before any HAT call, given back when the HAT fails)
//! builds on them.

pub mod claims;
pub mod confirm;
pub mod credentials;
pub mod hat_setup;
pub mod model;
pub mod ports;
pub mod rules;
pub mod service;
pub mod sweep;

pub use model::{
    ClaimView, ClaimsInfo, CredentialsView, Offer, OfferCredentials, OfferHat, OfferRegistration,
    OfferStatus, OfferTerms, OfferView, credentials_login,
};
pub use ports::{Claim, ClaimState, OfferStore, Reservation, ReservationSweepStore};
