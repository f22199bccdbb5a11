//! Planning the ingestion of a report: items are grouped into chunks that each fit one
//! DynamoDB transaction, and each chunk's effect is aggregated (one action per counter shard,
//! per touched endpoint, per duplicate-marker bucket) so the transaction stays small.
//!
//! Duplicate markers: an item's identity goes into a string set in a "seen" bucket keyed by the
//! HAT, the hour of the item's own `time` and 1 of `SEEN_BUCKETS` by identity. The same item
//! always lands in the same bucket, so a resend hits the marker whatever day it comes back.

use std::collections::{BTreeMap, BTreeSet};

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;

pub use super::limits::{
    FIELD_SHARDS, MAX_CHUNK_ACTIONS, MAX_CHUNK_BYTES, MAX_FIELDS_PER_ACTION,
    MAX_MARKERS_PER_ACTION, MAX_MARKERS_PER_BUCKET, SEEN_BUCKETS,
};
use super::report::{DebitEvent, StatsItem, StatsKind};
use super::{ChunkCommit, IngestOutcome, StatsStore};
use crate::accounts::Actor;
use crate::error::{DexError, DexResult};
use crate::txlog::{Kind, LogEvent, Subject};

/// Each pass removes at least one duplicate, so this bounds a report with many races.
pub const INGEST_PASSES: usize = 24;
/// Descriptions written by one transaction (with its log entry and chain head).
pub const DESCRIPTIONS_PER_COMMIT: usize = 95;
/// The field under which an endpoint counts new fields once its field item is full.
pub const OTHER_FIELDS: &str = "(other fields)";
/// A data debit event is one item: far below 400 KB even with its application id.
const MAX_DEBIT_EVENT_BYTES: usize = 4096;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct ChunkPlan {
    /// (hour `YYYYMMDDHH`, bucket) → marker strings of the chunk's items.
    pub seen: BTreeMap<(String, u8), Vec<String>>,
    pub data_in: i64,
    pub data_out: i64,
    /// (namespace, endpoint) → field path → count, inbound only (what is available in HATs).
    /// [`OTHER_FIELDS`] holds the counts of fields its item had no room for.
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

    /// An upper bound of what the chunk's actions send: keys, names, values and expressions.
    pub fn request_bytes(&self) -> usize {
        let markers: usize = self.seen.values().map(|m| 400 + 80 * m.len()).sum();
        let counters = 300 * (usize::from(self.data_in > 0) + usize::from(self.data_out > 0));
        let fields: usize = self
            .fields
            .iter()
            .map(|((ns, ep), f)| {
                500 + 2 * (ns.len() + ep.len())
                    + f.keys().map(|name| 2 * name.len() + 64).sum::<usize>()
            })
            .sum();
        let debits: usize = self.debits.iter().map(|(_, e)| 300 + debit_bytes(e)).sum();
        markers + counters + fields + debits
    }

    /// Whether the plan fits one transaction, every expression within DynamoDB's limits.
    pub fn fits(&self) -> bool {
        self.actions() <= MAX_CHUNK_ACTIONS
            && self
                .seen
                .values()
                .all(|m| m.len() <= MAX_MARKERS_PER_ACTION)
            && self.fields.values().all(|f| {
                f.keys().filter(|name| *name != OTHER_FIELDS).count() <= MAX_FIELDS_PER_ACTION
            })
            && self
                .debits
                .iter()
                .all(|(_, e)| debit_bytes(e) <= MAX_DEBIT_EVENT_BYTES)
            && self.request_bytes() <= MAX_CHUNK_BYTES
    }

    /// Adds an item; the fields of endpoints in `full` go to their [`OTHER_FIELDS`].
    fn add(&mut self, item: &StatsItem, full: &BTreeSet<(String, String)>) {
        self.items += 1;
        self.seen
            .entry(seen_bucket(item))
            .or_default()
            .push(marker(item));
        match &item.kind {
            StatsKind::Inbound(fields) => {
                for f in fields {
                    self.data_in += f.count;
                    let endpoint = (f.namespace.clone(), f.endpoint.clone());
                    let name = if full.contains(&endpoint) {
                        OTHER_FIELDS.to_owned()
                    } else {
                        f.field.clone()
                    };
                    *self
                        .fields
                        .entry(endpoint)
                        .or_default()
                        .entry(name)
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

fn debit_bytes(event: &DebitEvent) -> usize {
    serde_json::to_string(event).map_or(usize::MAX, |t| t.len())
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

/// The field shard a HAT writes: always the same one, so that a field item found full stays
/// the one the next pass writes to; HATs spread evenly over the shards.
pub fn field_shard(hat: &str) -> u64 {
    let hash = digest(&SHA256, hat.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash.as_ref()[..8]);
    u64::from_be_bytes(first) % FIELD_SHARDS
}

/// Why an item cannot be counted even alone in a transaction, if it cannot.
pub fn too_large(item: &StatsItem) -> Option<String> {
    let mut alone = ChunkPlan::default();
    alone.add(item, &BTreeSet::new());
    (!alone.fits()).then(|| {
        format!(
            "too large for one transaction: {} endpoints (at most {MAX_CHUNK_ACTIONS} with the \
             rest of the item), over {MAX_FIELDS_PER_ACTION} fields of one endpoint, or over \
             {MAX_DEBIT_EVENT_BYTES} bytes of data debit",
            alone.fields.len()
        )
    })
}

/// Splits items into chunks whose plans fit one transaction. An item that alone does not fit
/// is returned separately, to be skipped.
pub fn plan_chunks(items: &[StatsItem]) -> (Vec<(Vec<usize>, ChunkPlan)>, Vec<usize>) {
    plan_chunks_with(items, &BTreeSet::new())
}

/// [`plan_chunks`], counting the fields of the `full` endpoints as [`OTHER_FIELDS`].
pub fn plan_chunks_with(
    items: &[StatsItem],
    full: &BTreeSet<(String, String)>,
) -> (Vec<(Vec<usize>, ChunkPlan)>, Vec<usize>) {
    let mut chunks = Vec::new();
    let mut too_large = Vec::new();
    let mut current: (Vec<usize>, ChunkPlan) = Default::default();
    for (i, item) in items.iter().enumerate() {
        let mut alone = ChunkPlan::default();
        alone.add(item, full);
        if !alone.fits() {
            too_large.push(i);
            continue;
        }
        let mut next = current.1.clone();
        next.add(item, full);
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
/// just won) counts those as duplicates and tries the rest again in the next pass. A refused
/// bucket at its cap skips the items it has no room for; a field item at its cap makes the
/// next pass count that endpoint's fields as [`OTHER_FIELDS`].
pub async fn ingest<S: StatsStore>(
    store: &S,
    hat: &str,
    items: &[StatsItem],
) -> DexResult<IngestOutcome> {
    let mut outcome = IngestOutcome::default();
    let mut pending: Vec<usize> = (0..items.len()).collect();
    let mut full = BTreeSet::new();
    for _ in 0..INGEST_PASSES {
        if pending.is_empty() {
            return Ok(outcome);
        }
        let subset: Vec<StatsItem> = pending.iter().map(|&i| items[i].clone()).collect();
        let (chunks, too_large) = plan_chunks_with(&subset, &full);
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
                ChunkCommit::Refused(refusal) => {
                    full.extend(refusal.full_endpoints);
                    let mut room: BTreeMap<(String, u8), usize> = refusal
                        .bucket_sizes
                        .into_iter()
                        .map(|(bucket, held)| (bucket, MAX_MARKERS_PER_BUCKET.saturating_sub(held)))
                        .collect();
                    for i in indices {
                        let item = &subset[i];
                        if refusal.counted.contains(&marker(item)) {
                            outcome.duplicates += 1;
                            continue;
                        }
                        let bucket = seen_bucket(item);
                        match room.get_mut(&bucket) {
                            Some(0) => outcome.skipped.push((
                                pending[i],
                                format!(
                                    "this HAT has {MAX_MARKERS_PER_BUCKET} items counted in this \
                                     part of hour {}; no more are counted for it",
                                    bucket.0
                                ),
                            )),
                            Some(left) => {
                                *left -= 1;
                                retry.push(pending[i]);
                            }
                            None => retry.push(pending[i]),
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
    use crate::stats::limits::MAX_FIELD_BYTES;
    use crate::stats::report::parse_item;
    use serde_json::json;

    const T0: i64 = 1_615_383_299_000;

    fn inbound(i: usize, endpoints: usize) -> StatsItem {
        let stats: Vec<_> = (0..endpoints)
            .map(|e| json!({"endpoint": format!("ns{}/ep{e}", i % 3), "propertyStats": {"a": 1, "b.c": 2}}))
            .collect();
        parse_item(&json!({"time": T0 + i as i64, "user": {}, "stats": stats, "logEntry": "x", "statsType": "inbound"})).unwrap()
    }

    fn at(i: usize, time: i64) -> StatsItem {
        parse_item(&json!({"time": time, "statsType": "storage", "dataTableStats": [], "n": i}))
            .unwrap()
    }

    fn wide(i: usize, endpoint: &str, fields: usize, name_bytes: usize) -> StatsItem {
        let properties: serde_json::Map<String, serde_json::Value> = (0..fields)
            .map(|f| (format!("{f:0name_bytes$}"), json!(1)))
            .collect();
        parse_item(&json!({"time": T0 + i as i64, "statsType": "inbound",
            "stats": [{"endpoint": endpoint, "propertyStats": properties}]}))
        .unwrap()
    }

    fn covers(chunks: &[(Vec<usize>, ChunkPlan)], n: usize) {
        let mut all: Vec<usize> = chunks.iter().flat_map(|(i, _)| i.clone()).collect();
        all.sort_unstable();
        assert_eq!(
            all,
            (0..n).collect::<Vec<_>>(),
            "every item in exactly one chunk"
        );
        assert!(chunks.iter().all(|(i, p)| p.fits() && p.items == i.len()));
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
    fn a_thousand_items_of_one_hour_keep_each_bucket_within_the_operator_limit() {
        let items: Vec<_> = (0..1000).map(|i| inbound(i, 1)).collect();
        assert!(
            items
                .iter()
                .all(|i| seen_bucket(i).0 == seen_bucket(&items[0]).0)
        );
        let (chunks, set_apart) = plan_chunks(&items);
        assert!(set_apart.is_empty());
        covers(&chunks, 1000);
        // 125 a bucket on average: more than one action's 98, so at least two chunks.
        assert!(chunks.len() >= 2, "{}", chunks.len());
        assert!(
            chunks
                .iter()
                .flat_map(|(_, p)| p.seen.values())
                .all(|m| m.len() <= MAX_MARKERS_PER_ACTION)
        );
    }

    #[test]
    fn one_bucket_takes_98_markers_and_the_99th_opens_a_chunk() {
        let one: Vec<StatsItem> = (0..5000)
            .map(|i| at(i, T0))
            .filter(|i| seen_bucket(i).1 == 0)
            .take(MAX_MARKERS_PER_ACTION + 1)
            .collect();
        let (chunks, _) = plan_chunks(&one[..MAX_MARKERS_PER_ACTION]);
        assert_eq!(chunks.len(), 1);
        let (chunks, _) = plan_chunks(&one);
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].0.len(), MAX_MARKERS_PER_ACTION);
        covers(&chunks, one.len());
    }

    #[test]
    fn items_over_many_hours_fill_chunks_to_96_actions() {
        let items: Vec<_> = (0..1000)
            .map(|i| at(i, T0 + i as i64 * 3_600_000))
            .collect();
        let (chunks, _) = plan_chunks(&items);
        covers(&chunks, 1000);
        assert_eq!(chunks[0].1.actions(), MAX_CHUNK_ACTIONS);
        assert_eq!(chunks.len(), 1000usize.div_ceil(MAX_CHUNK_ACTIONS));
    }

    #[test]
    fn fields_of_one_endpoint_stop_at_140_an_item() {
        assert!(too_large(&wide(0, "ns/ep", MAX_FIELDS_PER_ACTION, 8)).is_none());
        assert!(too_large(&wide(0, "ns/ep", MAX_FIELDS_PER_ACTION + 1, 8)).is_some());
        // Two items of 100 fields each on one endpoint cannot share an action.
        let (chunks, _) = plan_chunks(&[wide(0, "ns/ep", 100, 8), wide(1, "ns/ep", 100, 9)]);
        assert_eq!(chunks.len(), 2);
    }

    #[test]
    fn long_field_names_on_many_endpoints_split_by_bytes_before_actions() {
        let items: Vec<_> = (0..90)
            .map(|i| {
                wide(
                    i,
                    &format!("ns/ep{i}"),
                    MAX_FIELDS_PER_ACTION,
                    MAX_FIELD_BYTES,
                )
            })
            .collect();
        let (chunks, set_apart) = plan_chunks(&items);
        assert!(set_apart.is_empty());
        covers(&chunks, 90);
        assert!(chunks.len() >= 2);
        let first = &chunks[0].1;
        assert!(first.actions() < MAX_CHUNK_ACTIONS, "the bytes closed it");
        assert!(first.request_bytes() <= MAX_CHUNK_BYTES);
        let mut one_more = first.clone();
        one_more.add(&items[chunks[0].0.len()], &BTreeSet::new());
        assert!(one_more.request_bytes() > MAX_CHUNK_BYTES);
    }

    #[test]
    fn full_endpoints_count_their_fields_as_other_fields() {
        let item = wide(0, "ns/ep", 3, 4);
        let full = BTreeSet::from([("ns".to_owned(), "ep".to_owned())]);
        let (chunks, _) = plan_chunks_with(std::slice::from_ref(&item), &full);
        let fields = &chunks[0].1.fields[&("ns".to_owned(), "ep".to_owned())];
        assert_eq!(fields.len(), 1);
        assert_eq!(fields[OTHER_FIELDS], 3);
        let (chunks, _) = plan_chunks(&[item]);
        assert_eq!(chunks[0].1.fields.values().next().unwrap().len(), 3);
    }

    #[test]
    fn a_hat_always_writes_the_same_field_shard() {
        assert_eq!(field_shard("a.hubat.net"), field_shard("a.hubat.net"));
        let shards: BTreeSet<u64> = (0..200)
            .map(|i| field_shard(&format!("h{i}.hubat.net")))
            .collect();
        assert_eq!(
            shards.len() as u64,
            FIELD_SHARDS,
            "HATs spread over every shard"
        );
    }

    #[test]
    fn huge_debit_events_are_set_apart() {
        let debit = |app: &str| {
            parse_item(
                &json!({"time": T0, "statsType": "datadebit", "operation": "Create",
                "dataDebit": {"dataDebitKey": "k", "active": true, "requestApplicationId": app}}),
            )
            .unwrap()
        };
        assert!(too_large(&debit("app-1")).is_none());
        assert!(too_large(&debit(&"a".repeat(5000))).is_some());
    }
}
