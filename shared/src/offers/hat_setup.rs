//! A claim's HAT side (docs/decisions.md §13 "Offers"), over `hats::calls`: as the HAT's
//! platform user, the offer's credential user (role `validate`, and `datadebit` with the
//! offer id as detail, so the buyer can read the debit's values), then the data debit
//! `POST /api/v2.6/data-debit/{offerId}`. All of it, the undo included, within the one
//! deadline of the request's HAT calls.

use std::sync::atomic::{AtomicBool, Ordering};

use chrono::DateTime;
use serde_json::{Value, json};

use super::claims::{ClaimSetup, SetupError};
use super::model::{Offer, OfferHat, credentials_login};
use crate::error::DexError;
use crate::hats::HatHttp;
use crate::hats::calls::{DebitCreated, HatSession, HatUser, UserRole, step};
use crate::ports::{Random, SecretStore};

/// The role of the offer's credential user, and the one that lets it read the debit.
pub const CREDENTIAL_ROLE: &str = "validate";
pub const DEBIT_ROLE: &str = "datadebit";

/// An instant in the HAT's `yyyy-MM-dd'T'HH:mm:ssZ` format (UTC, `+0000`).
pub fn hat_time(epoch_ms: i64) -> String {
    DateTime::from_timestamp_millis(epoch_ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%z")
        .to_string()
}

/// The offer's credential user, as DEX creates it on a claiming HAT.
pub fn credential_user(offer: &Offer, user_id: String) -> HatUser {
    let id = &offer.terms.offer_id;
    HatUser {
        user_id,
        email: credentials_login(id),
        pass: Some(offer.credentials.password_hash.clone()),
        name: offer.terms.title.clone(),
        role: CREDENTIAL_ROLE.into(),
        roles: vec![
            UserRole {
                role: CREDENTIAL_ROLE.into(),
                detail: None,
            },
            UserRole {
                role: DEBIT_ROLE.into(),
                detail: Some(id.clone()),
            },
        ],
    }
}

/// The body of `POST /api/v2.6/data-debit/{offerId}` for a claim at `now_ms`.
pub fn debit_request(offer: &Offer, now_ms: i64) -> Value {
    let t = &offer.terms;
    let mut body = json!({
        "dataDebitKey": t.offer_id,
        "bundle": t.required_data,
        "start": hat_time(now_ms),
        "period": t.collection_duration,
        "termsUrl": "",
        "purpose": t.title,
        "cancelAtPeriodEnd": false,
        "requestClientName": t.title,
        "requestClientUrl": "",
        "requestClientLogoUrl": "",
    });
    if let Some(conditions) = &t.data_conditions {
        body["conditions"] = conditions.clone();
    }
    body
}

/// [`ClaimSetup`] on the one HAT of a session (one claim request).
pub struct HatClaimSetup<'s, 'a, H, K> {
    session: HatSession<'s, 'a, H, K>,
    random: &'s dyn Random,
    /// Whether this attempt got as far as the user (so undo has one to disable).
    reached_user: AtomicBool,
}

impl<'s, 'a, H, K> HatClaimSetup<'s, 'a, H, K> {
    pub fn new(session: HatSession<'s, 'a, H, K>, random: &'s dyn Random) -> Self {
        Self {
            session,
            random,
            reached_user: AtomicBool::new(false),
        }
    }
}

impl<H: HatHttp, K: SecretStore> ClaimSetup for HatClaimSetup<'_, '_, H, K> {
    async fn set_up(
        &self,
        offer: &Offer,
        hat: &OfferHat,
        resumed: bool,
        now: i64,
    ) -> Result<(), SetupError> {
        if hat.address != self.session.hat().to_string() {
            return Err(SetupError {
                error: DexError::internal("a claim's setup was asked of another HAT"),
                debit_outcome_unknown: false,
            });
        }
        // When resuming, an earlier attempt's debit request may have worked: whatever fails
        // now, the debit may exist, so the place stays reserved for this HAT.
        let failed = |error| SetupError {
            error,
            debit_outcome_unknown: resumed,
        };
        self.reached_user.store(true, Ordering::Relaxed);
        let user = credential_user(offer, self.random.uuid().to_string());
        self.session.ensure_user(&user).await.map_err(failed)?;
        let key = &offer.terms.offer_id;
        match self
            .session
            .create_data_debit(key, &debit_request(offer, now))
            .await
        {
            Ok(DebitCreated::Created(_)) => Ok(()),
            // A repeated create: HAT2.0 refuses an existing key, and its platform user cannot
            // read a debit back, so the refusal is the debit existing.
            Ok(DebitCreated::Refused(_)) if resumed => Ok(()),
            Ok(DebitCreated::Refused(why)) => Err(SetupError {
                error: DexError::BadGateway(format!(
                    "HAT {}: {}: refused (400): {why}",
                    hat.address,
                    step::CREATE_DATA_DEBIT
                )),
                debit_outcome_unknown: false,
            }),
            Ok(DebitCreated::NoAnswer(error)) => Err(SetupError {
                error,
                debit_outcome_unknown: true,
            }),
            Err(error) => Err(failed(error)),
        }
    }

    async fn undo(&self, offer: &Offer, hat: &OfferHat) {
        if !self.reached_user.load(Ordering::Relaxed) {
            return;
        }
        let login = credentials_login(&offer.terms.offer_id);
        let result = match self.session.find_user(&login).await {
            Ok(Some(user)) => self.session.disable_user(&user.user_id).await,
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::warn!(
                hat = %hat.address,
                offer = %offer.terms.offer_id,
                error = %e,
                "a failed claim's credential user could not be disabled"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hat_times_are_utc_without_a_colon() {
        assert_eq!(hat_time(1_506_608_475_000), "2017-09-28T14:21:15+0000");
    }
}
