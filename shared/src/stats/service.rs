//! The statistics use cases: ingest a report, the public figures, available data and its
//! descriptions.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;

use super::ingest::{description_parts, ingest, too_large};
use super::limits::{MAX_ENDPOINTS_PER_REPORT, MAX_FIELDS_PER_REPORT, MAX_NAMESPACES_PER_REPORT};
use super::report::{MAX_ITEMS, Skipped, StatsItem, StatsKind, parse_report};
use super::tree::{self, NamespaceStructure};
use super::{DATA_IN, DATA_OUT, DATA_PLUGS, OFFER_CLAIMS, StatsStore};
use crate::accounts::Actor;
use crate::error::{DexError, DexResult};
use crate::hats::verify::VerifiedHat;
use crate::offers::OfferStore;
use crate::offers::confirm::{confirm_claims, debit_reports};
use crate::ports::Clock;
use crate::stats::HATS_COUNTER;
use crate::txlog::{Kind, LogEvent, Subject};

pub const TOP_DATAPOINTS: usize = 20;

#[derive(Debug, Serialize, PartialEq)]
pub struct ReportResponse {
    pub message: String,
    pub accepted: usize,
    pub duplicates: usize,
    pub skipped: Vec<Skipped>,
}

/// One public figure (`StatsItem` of docs/wire-contract.md §6.1).
#[derive(Debug, Serialize, PartialEq)]
pub struct Figure {
    pub title: String,
    pub value: i64,
    pub updated: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub children: Option<serde_json::Map<String, Value>>,
}

/// The distinct names one report has brought so far, against the per-report caps.
#[derive(Default)]
struct ReportCaps {
    namespaces: BTreeSet<String>,
    endpoints: BTreeSet<(String, String)>,
    fields: BTreeSet<(String, String, String)>,
}

impl ReportCaps {
    /// Takes the item's names if they stay within the caps; else why not (nothing taken).
    fn admit(&mut self, item: &StatsItem) -> Option<String> {
        // Only inbound fields are stored by name.
        let StatsKind::Inbound(fields) = &item.kind else {
            return None;
        };
        let mut next = (
            self.namespaces.clone(),
            self.endpoints.clone(),
            self.fields.clone(),
        );
        for f in fields {
            next.0.insert(f.namespace.clone());
            next.1.insert((f.namespace.clone(), f.endpoint.clone()));
            next.2
                .insert((f.namespace.clone(), f.endpoint.clone(), f.field.clone()));
        }
        if next.0.len() > MAX_NAMESPACES_PER_REPORT {
            return Some(format!(
                "a report brings at most {MAX_NAMESPACES_PER_REPORT} namespaces"
            ));
        }
        if next.1.len() > MAX_ENDPOINTS_PER_REPORT {
            return Some(format!(
                "a report brings at most {MAX_ENDPOINTS_PER_REPORT} endpoints"
            ));
        }
        if next.2.len() > MAX_FIELDS_PER_REPORT {
            return Some(format!(
                "a report brings at most {MAX_FIELDS_PER_REPORT} distinct fields"
            ));
        }
        (self.namespaces, self.endpoints, self.fields) = next;
        None
    }
}

pub struct StatsService<'a, S> {
    pub store: &'a S,
    pub clock: &'a dyn Clock,
}

impl<S: StatsStore> StatsService<'_, S> {
    /// Counts a HAT's report exactly once per item; malformed or unknown items are skipped
    /// and listed, the rest still count. Then its `datadebit` `Enable`/`Disable` items on
    /// offers this HAT claimed confirm or unconfirm those claims (`offers::confirm`).
    pub async fn report(&self, hat: &VerifiedHat, body: &[u8]) -> DexResult<ReportResponse>
    where
        S: OfferStore,
    {
        let value: Value = crate::limits::parse_json(body, "JSON body")?;
        let Value::Array(items) = value else {
            return Err(DexError::bad_request(
                "the body must be a JSON array of DataStats items",
            ));
        };
        if items.len() > MAX_ITEMS {
            return Err(DexError::PayloadTooLarge(format!(
                "a report holds at most {MAX_ITEMS} items, this one {}",
                items.len()
            )));
        }
        let parsed = parse_report(&items);
        let mut skipped = parsed.skipped;
        let mut counted = Vec::with_capacity(parsed.items.len());
        let mut counted_at = Vec::with_capacity(parsed.items.len());
        let mut caps = ReportCaps::default();
        for (item, index) in parsed.items.into_iter().zip(parsed.indices) {
            match too_large(&item).or_else(|| caps.admit(&item)) {
                Some(reason) => skipped.push(Skipped { index, reason }),
                None => {
                    counted.push(item);
                    counted_at.push(index);
                }
            }
        }
        let mut outcome = ingest(self.store, &hat.address, &counted).await?;
        // Counted now or before (a resend): every item ingest did not skip.
        let not_counted: BTreeSet<usize> = outcome.skipped.iter().map(|(i, _)| *i).collect();
        let reports = debit_reports(
            counted
                .iter()
                .enumerate()
                .filter(|(i, _)| !not_counted.contains(i))
                .map(|(_, item)| item),
        );
        if !reports.is_empty() {
            let actor = Actor::Hat(hat.address.clone());
            confirm_claims(self.store, &hat.address, &actor, &reports).await?;
        }
        outcome.duplicates += parsed.copies;
        skipped.extend(outcome.skipped.into_iter().map(|(i, reason)| Skipped {
            index: counted_at[i],
            reason,
        }));
        skipped.sort_by_key(|s| s.index);
        Ok(ReportResponse {
            message: format!(
                "{} counted, {} already counted, {} skipped",
                outcome.accepted,
                outcome.duplicates,
                skipped.len()
            ),
            accepted: outcome.accepted,
            duplicates: outcome.duplicates,
            skipped,
        })
    }

    /// The public figures (docs/decisions.md §7). Cost: one BatchGetItem for the counters and one
    /// query per field shard, whatever the number of HATs or reports.
    pub async fn figures(&self) -> DexResult<Vec<Figure>> {
        let now = self.clock.now_millis();
        let names = [DATA_PLUGS, OFFER_CLAIMS, DATA_OUT, DATA_IN, HATS_COUNTER];
        let (counters, fields) =
            tokio::try_join!(self.store.figures(&names), self.store.field_counts())?;
        let value = |name: &str| counters.get(name).copied().unwrap_or_default();
        let figure = |title: &str, (value, updated): (i64, i64)| Figure {
            title: title.to_owned(),
            value,
            updated: if updated > 0 { updated } else { now },
            children: None,
        };
        let (counts, fields_updated) = fields;
        let mut top: Vec<_> = counts.iter().collect();
        top.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        top.truncate(TOP_DATAPOINTS);
        let updated = if fields_updated > 0 {
            fields_updated
        } else {
            now
        };
        let children: serde_json::Map<String, Value> = top
            .iter()
            .map(|((namespace, endpoint, field), count)| {
                let title = format!("{field} in {endpoint} of {namespace}");
                (
                    title.clone(),
                    serde_json::json!({ "title": title, "value": count, "updated": updated }),
                )
            })
            .collect();
        let top_total = top.iter().map(|(_, c)| **c).sum();
        Ok(vec![
            figure("Data Plugs", value(DATA_PLUGS)),
            figure("Total Offer Claims", value(OFFER_CLAIMS)),
            figure("Data Out", value(DATA_OUT)),
            figure("Data In", value(DATA_IN)),
            Figure {
                title: "Top Datapoints".into(),
                value: top_total,
                updated,
                children: Some(children),
            },
            figure("HATs", value(HATS_COUNTER)),
        ])
    }

    pub async fn available_data(&self) -> DexResult<Vec<NamespaceStructure>> {
        let ((counts, _), descriptions) =
            tokio::try_join!(self.store.field_counts(), self.store.descriptions())?;
        Ok(tree::build(&counts, &descriptions))
    }

    /// Merges posted descriptions (creating unknown namespaces, endpoints and fields) and
    /// answers the whole tree.
    pub async fn describe(&self, actor: &Actor, body: &[u8]) -> DexResult<Vec<NamespaceStructure>> {
        let posted: Vec<NamespaceStructure> = crate::limits::parse_json(body, "descriptions")?;
        let descriptions = tree::descriptions_of(&posted)
            .map_err(|bad| DexError::invalid("invalid descriptions", bad))?;
        if !descriptions.is_empty() {
            let event = LogEvent::new(
                Subject::available_data(),
                Kind::StatsDescriptionsUpdated,
                actor,
                serde_json::json!({}),
            );
            // Several transactions when there are many; each is logged with its part.
            for (part, event) in description_parts(&descriptions, &event) {
                self.store.save_descriptions(&part, event).await?;
            }
        }
        self.available_data().await
    }
}
