//! Confirming claims from the HATs' own reports (docs/decisions.md §13 "Confirmation"): a
//! `datadebit` item of `POST /stats/report` whose `dataDebit.dataDebitKey` is an offer the
//! reporting HAT claimed confirms its claim (`Enable`) or unconfirms it (`Disable`).
//!
//! Exactly once and in item-time order: a claim keeps the time of the item that last set
//! it, and only a newer item changes it (`rules::apply_confirmation`). So a resent report, a
//! copy racing the original, or a late `Disable` older than the last `Enable` changes
//! nothing, and a report that failed half-way can be sent again. The report's duplicates
//! (items counted before) are applied too: a first attempt that counted the items but
//! died before confirming leaves the confirmation to its resend.

use super::ports::{ClaimState, OfferStore};
use super::rules::{apply_confirmation, is_offer_id};
use crate::accounts::Actor;
use crate::error::{DexError, DexResult};
use crate::stats::report::{StatsItem, StatsKind};
use crate::txlog::{Kind, LogEvent, Subject};

/// Rounds of read-then-write per item when concurrent copies of a report race.
const MAX_ROUNDS: usize = 8;

/// A HAT's word on one of its debits: `Enable` (`enabled`) or `Disable` at item time `at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebitReport {
    pub offer_id: String,
    pub enabled: bool,
    pub at: i64,
}

/// The items that may confirm a claim: v2.6 `datadebit` items with `Enable` or `Disable`
/// on a key that can be an offer id, oldest first (the order they apply in).
pub fn debit_reports<'a>(items: impl IntoIterator<Item = &'a StatsItem>) -> Vec<DebitReport> {
    let mut reports: Vec<DebitReport> = items
        .into_iter()
        .filter_map(|item| match &item.kind {
            StatsKind::DataDebit(event)
                if event.source == "datadebit"
                    && matches!(event.operation.as_str(), "Enable" | "Disable")
                    && is_offer_id(&event.data_debit_key) =>
            {
                Some(DebitReport {
                    offer_id: event.data_debit_key.clone(),
                    enabled: event.operation == "Enable",
                    at: item.time,
                })
            }
            _ => None,
        })
        .collect();
    reports.sort_by_key(|r| r.at);
    reports
}

/// Applies `reports` (oldest first) to `hat`'s claims; answers how many claims changed.
/// A key that is no offer this HAT holds a kept claim of changes nothing.
pub async fn confirm_claims<S: OfferStore>(
    store: &S,
    hat: &str,
    actor: &Actor,
    reports: &[DebitReport],
) -> DexResult<usize> {
    let mut changed = 0;
    for report in reports {
        if apply_one(store, hat, actor, report).await? {
            changed += 1;
        }
    }
    Ok(changed)
}

async fn apply_one<S: OfferStore>(
    store: &S,
    hat: &str,
    actor: &Actor,
    report: &DebitReport,
) -> DexResult<bool> {
    for _ in 0..MAX_ROUNDS {
        let Some(claim) = store.get_claim(&report.offer_id, hat).await? else {
            return Ok(false);
        };
        if !matches!(claim.state, ClaimState::Kept { .. }) {
            return Ok(false);
        }
        let Some(new) = apply_confirmation(claim.confirmation, report.enabled, report.at) else {
            return Ok(false);
        };
        let kind = if new.confirmed {
            Kind::OfferClaimConfirmed
        } else {
            Kind::OfferClaimUnconfirmed
        };
        let event = LogEvent::new(
            Subject::hat(hat),
            kind,
            actor,
            serde_json::json!({
                "offerId": report.offer_id,
                "confirmed": new.confirmed,
                "itemTime": report.at,
            }),
        );
        match store
            .set_confirmation(&report.offer_id, hat, claim.confirmation, new, event)
            .await
        {
            Ok(()) => return Ok(true),
            // A concurrent copy of the report (or a newer item) changed it: read again.
            Err(DexError::Conflict(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(DexError::Throttled(
        "too many concurrent reports on this claim; retry".into(),
    ))
}
