//! The statistics' storage port.

use std::collections::BTreeMap;
use std::future::Future;

use super::model::{DebitState, IngestOutcome};
use super::report::StatsItem;
use super::tree::{DescriptionTarget, FieldCounts};
use crate::error::DexResult;
use crate::txlog::LogEvent;

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
