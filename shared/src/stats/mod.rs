//! Statistics (decisions §7): exactly-once ingestion of HAT reports and the public figures.

pub mod ingest;
pub mod report;
pub mod service;
pub mod tree;

use std::collections::{BTreeMap, HashSet};
use std::future::Future;

use crate::error::DexResult;
use crate::txlog::LogEvent;
use ingest::ChunkPlan;
use report::DebitEvent;
use tree::{DescriptionTarget, FieldCounts};

/// Counter names of the public figures.
pub const DATA_IN: &str = "data-in";
pub const DATA_OUT: &str = "data-out";
pub const DATA_PLUGS: &str = "plugs";
pub const OFFER_CLAIMS: &str = "offer-claims";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestOutcome {
    pub accepted: usize,
    pub duplicates: usize,
}

/// What committing one chunk did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkCommit {
    /// Every item of the chunk is counted now, with its marker.
    Committed,
    /// Nothing was written: some markers were there already. These are the markers the
    /// refused buckets hold (a superset of the chunk's items counted before).
    AlreadyCounted(HashSet<String>),
}

/// The latest known state of one data debit on one HAT.
#[derive(Debug, Clone, PartialEq)]
pub struct DebitState {
    pub event: DebitEvent,
    /// Epoch ms of the event on the HAT.
    pub time: i64,
}

pub trait StatsStore: Send + Sync {
    /// Commits one chunk (it must `fit`) as one transaction: its duplicate markers, each
    /// bucket conditioned on holding none of them yet, its counter and field increments, its
    /// data debit events and `event`, chained. All or nothing: when a marker is already
    /// there, nothing is written and the markers of the refused buckets are returned.
    fn commit_chunk(
        &self,
        hat: &str,
        plan: &ChunkPlan,
        event: LogEvent,
    ) -> impl Future<Output = DexResult<ChunkCommit>> + Send;
    /// Counters' values and last updates (epoch ms; 0 when never written), read together.
    fn figures(
        &self,
        names: &[&str],
    ) -> impl Future<Output = DexResult<std::collections::HashMap<String, (i64, i64)>>> + Send;
    /// Field counts of all data available in HATs, and when they last changed.
    fn field_counts(&self) -> impl Future<Output = DexResult<(FieldCounts, i64)>> + Send;
    fn descriptions(
        &self,
    ) -> impl Future<Output = DexResult<BTreeMap<DescriptionTarget, String>>> + Send;
    /// Writes (creates or replaces) descriptions with `event`, in one transaction; at most
    /// `ingest::DESCRIPTIONS_PER_COMMIT` of them.
    fn save_descriptions(
        &self,
        descriptions: &[(DescriptionTarget, String)],
        event: LogEvent,
    ) -> impl Future<Output = DexResult<()>> + Send;
    fn debit_state(
        &self,
        hat: &str,
        data_debit_key: &str,
    ) -> impl Future<Output = DexResult<Option<DebitState>>> + Send;
}
