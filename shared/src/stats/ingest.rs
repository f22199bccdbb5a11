//! Planning the ingestion of a report: items are grouped into chunks that each fit one
//! DynamoDB transaction, and each chunk's effect is aggregated (one action per counter shard,
//! per touched endpoint, per duplicate-marker bucket) so the transaction stays small.
//!
//! Duplicate markers: an item's identity goes into a string set in a "seen" bucket keyed by the
//! HAT, the hour of the item's own `time` and 1 of `SEEN_BUCKETS` by identity. The same item
//! always lands in the same bucket, so a resend hits the marker whatever day it comes back.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;

use super::report::{DebitEvent, StatsItem, StatsKind};
use super::{ChunkCommit, IngestOutcome, StatsStore};
use crate::accounts::Actor;
use crate::error::{DexError, DexResult};
use crate::txlog::{Kind, LogEvent, Subject};

pub const SEEN_BUCKETS: u8 = 8;
/// Room left for the log entry and its chain head in a 100-action transaction.
pub const MAX_CHUNK_ACTIONS: usize = 96;
/// Fields of one endpoint updated by one action: keeps its update expression under
/// DynamoDB's 4 KB expression limit.
pub const MAX_FIELDS_PER_ENDPOINT: usize = 250;
/// Each pass removes at least one duplicate, so this bounds a report with many races.
pub const INGEST_PASSES: usize = 24;
/// Descriptions written by one transaction (with its log entry and chain head).
pub const DESCRIPTIONS_PER_COMMIT: usize = 95;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct ChunkPlan {
    /// (hour `YYYYMMDDHH`, bucket) → marker strings of the chunk's items.
    pub seen: BTreeMap<(String, u8), Vec<String>>,
    pub data_in: i64,
    pub data_out: i64,
    /// (namespace, endpoint) → field path → count, inbound only (what is available in HATs).
    pub fields: BTreeMap<(String, String), BTreeMap<String, i64>>,
    pub debits: Vec<(i64, DebitEvent)>,
    pub items: usize,
}

impl ChunkPlan {
    pub fn actions(&self) -> usize {
        self.seen.len()
            + usize::from(self.data_in > 0)
            + usize::from(self.data_out > 0)
            + self.fields.len()
            + self.debits.len()
    }

    /// Whether the plan fits one transaction.
    pub fn fits(&self) -> bool {
        self.actions() <= MAX_CHUNK_ACTIONS
            && self
                .fields
                .values()
                .all(|f| f.len() <= MAX_FIELDS_PER_ENDPOINT)
    }

    fn add(&mut self, item: &StatsItem) {
        self.items += 1;
        self.seen
            .entry(seen_bucket(item))
            .or_default()
            .push(marker(item));
        match &item.kind {
            StatsKind::Inbound(fields) => {
                for f in fields {
                    self.data_in += f.count;
                    *self
                        .fields
                        .entry((f.namespace.clone(), f.endpoint.clone()))
                        .or_default()
                        .entry(f.field.clone())
                        .or_default() += f.count;
                }
            }
            StatsKind::Outbound { fields, .. } => {
                self.data_out += fields.iter().map(|f| f.count).sum::<i64>()
            }
            StatsKind::DataDebit(event) => self.debits.push((item.time, event.clone())),
            StatsKind::DataCredit | StatsKind::Storage => {}
        }
    }
}

/// The marker of an item: its identity's first 16 bytes (collisions need 2^64 items).
pub fn marker(item: &StatsItem) -> String {
    STANDARD_NO_PAD.encode(&item.identity[..16])
}

pub fn seen_bucket(item: &StatsItem) -> (String, u8) {
    let hour = chrono::DateTime::from_timestamp_millis(item.time)
        .unwrap_or_default()
        .format("%Y%m%d%H")
        .to_string();
    (hour, item.identity[31] % SEEN_BUCKETS)
}

/// Why an item cannot be counted even alone in a transaction, if it cannot.
pub fn too_large(item: &StatsItem) -> Option<String> {
    let mut alone = ChunkPlan::default();
    alone.add(item);
    (!alone.fits()).then(|| {
        format!(
            "touches {} endpoints or over {MAX_FIELDS_PER_ENDPOINT} fields of one endpoint; at most {MAX_CHUNK_ACTIONS} endpoints",
            alone.fields.len()
        )
    })
}

/// Splits items into chunks whose plans fit one transaction. An item that alone does not fit
/// is returned separately, to be skipped.
pub fn plan_chunks(items: &[StatsItem]) -> (Vec<(Vec<usize>, ChunkPlan)>, Vec<usize>) {
    let mut chunks = Vec::new();
    let mut too_large = Vec::new();
    let mut current: (Vec<usize>, ChunkPlan) = Default::default();
    for (i, item) in items.iter().enumerate() {
        let mut alone = ChunkPlan::default();
        alone.add(item);
        if !alone.fits() {
            too_large.push(i);
            continue;
        }
        let mut next = current.1.clone();
        next.add(item);
        if !next.fits() {
            chunks.push(std::mem::take(&mut current));
            current = (vec![i], alone);
        } else {
            current.0.push(i);
            current.1 = next;
        }
    }
    if current.1.items > 0 {
        chunks.push(current);
    }
    (chunks, too_large)
}

/// The log event of an accepted chunk: counts, never payloads.
pub fn accepted_event(hat: &str, plan: &ChunkPlan) -> LogEvent {
    LogEvent::new(
        Subject::hat(hat),
        Kind::StatsAccepted,
        &Actor::Hat(hat.to_owned()),
        serde_json::json!({
            "items": plan.items, "dataIn": plan.data_in, "dataOut": plan.data_out,
            "endpoints": plan.fields.len(), "dataDebitEvents": plan.debits.len(),
        }),
    )
}

/// Counts `items` for `hat` exactly once. Each chunk is committed with its markers; a chunk
/// refused because some of its items were counted before (a resend, or a concurrent copy that
/// just won) counts those as duplicates and tries the rest again in the next pass.
pub async fn ingest<S: StatsStore>(
    store: &S,
    hat: &str,
    items: &[StatsItem],
) -> DexResult<IngestOutcome> {
    let mut outcome = IngestOutcome::default();
    let mut pending: Vec<StatsItem> = items.to_vec();
    for _ in 0..INGEST_PASSES {
        if pending.is_empty() {
            return Ok(outcome);
        }
        let (chunks, too_large) = plan_chunks(&pending);
        if !too_large.is_empty() {
            return Err(DexError::internal(
                "oversized items must be skipped before ingestion",
            ));
        }
        let mut retry = Vec::new();
        for (indices, plan) in chunks {
            match store
                .commit_chunk(hat, &plan, accepted_event(hat, &plan))
                .await?
            {
                ChunkCommit::Committed => outcome.accepted += plan.items,
                ChunkCommit::AlreadyCounted(present) => {
                    for i in indices {
                        if present.contains(&marker(&pending[i])) {
                            outcome.duplicates += 1;
                        } else {
                            retry.push(pending[i].clone());
                        }
                    }
                }
            }
        }
        pending = retry;
    }
    Err(DexError::Throttled(
        "the report raced too many concurrent copies; retry".into(),
    ))
}

/// The log events of a descriptions merge split into transactions: each names its part.
pub fn description_parts<T: Clone>(items: &[T], event: &LogEvent) -> Vec<(Vec<T>, LogEvent)> {
    let parts: Vec<&[T]> = items.chunks(DESCRIPTIONS_PER_COMMIT).collect();
    let total = parts.len();
    parts
        .into_iter()
        .enumerate()
        .map(|(i, part)| {
            let mut event = event.clone();
            event.details["part"] = serde_json::json!(format!("{}/{total}", i + 1));
            event.details["descriptions"] = serde_json::json!(part.len());
            (part.to_vec(), event)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::report::parse_item;
    use serde_json::json;

    fn inbound(i: usize, endpoints: usize) -> StatsItem {
        let stats: Vec<_> = (0..endpoints)
            .map(|e| json!({"endpoint": format!("ns{}/ep{e}", i % 3), "propertyStats": {"a": 1, "b.c": 2}}))
            .collect();
        parse_item(&json!({"time": 1_615_383_299_000i64 + i as i64, "user": {}, "stats": stats, "logEntry": "x", "statsType": "inbound"})).unwrap()
    }

    #[test]
    fn a_typical_report_is_one_transaction() {
        let items: Vec<_> = (0..100).map(|i| inbound(i, 1)).collect();
        let (chunks, set_apart) = plan_chunks(&items);
        assert!(set_apart.is_empty());
        assert_eq!(chunks.len(), 1);
        let plan = &chunks[0].1;
        assert_eq!(plan.items, 100);
        assert_eq!(plan.data_in, 300);
        assert!(plan.actions() <= MAX_CHUNK_ACTIONS, "{}", plan.actions());
        assert_eq!(plan.seen.values().map(Vec::len).sum::<usize>(), 100);
    }

    #[test]
    fn wide_reports_split_and_oversized_items_are_set_apart() {
        let items: Vec<_> = (0..50).map(|i| inbound(i, 40)).collect();
        let (chunks, set_apart) = plan_chunks(&items);
        assert!(set_apart.is_empty());
        assert!(chunks.len() > 1);
        assert!(chunks.iter().all(|(_, p)| p.actions() <= MAX_CHUNK_ACTIONS));
        assert_eq!(chunks.iter().map(|(idx, _)| idx.len()).sum::<usize>(), 50);
        let (_, set_apart) = plan_chunks(&[inbound(0, 120)]);
        assert_eq!(set_apart, vec![0]);
        assert!(too_large(&inbound(0, 120)).is_some());
        assert!(too_large(&inbound(0, 2)).is_none());
    }
}
