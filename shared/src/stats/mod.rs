//! Statistics (docs/decisions.md §7): exactly-once ingestion of HAT reports and the public figures.

pub mod ingest;
pub mod report;
pub mod service;
pub mod tree;

use std::collections::BTreeMap;
use std::future::Future;

use crate::error::DexResult;
use crate::txlog::LogEvent;
use report::{DebitEvent, StatsItem};
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

/// The latest known state of one data debit on one HAT.
#[derive(Debug, Clone, PartialEq)]
pub struct DebitState {
    pub event: DebitEvent,
    /// Epoch ms of the event on the HAT.
    pub time: i64,
}

pub trait StatsStore: Send + Sync {
    /// Counts `items` for `hat` exactly once: items already counted are reported as
    /// duplicates; the rest are counted with their markers in the same transaction.
    fn ingest(
        &self,
        hat: &str,
        items: &[StatsItem],
    ) -> impl Future<Output = DexResult<IngestOutcome>> + Send;
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
    fn save_descriptions(
        &self,
        descriptions: Vec<(DescriptionTarget, String)>,
        event: LogEvent,
    ) -> impl Future<Output = DexResult<()>> + Send;
    fn debit_state(
        &self,
        hat: &str,
        data_debit_key: &str,
    ) -> impl Future<Output = DexResult<Option<DebitState>>> + Send;
}
