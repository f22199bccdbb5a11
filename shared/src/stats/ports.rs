//! The statistics' storage port.

use std::collections::BTreeMap;
use std::future::Future;

use super::ingest::ChunkPlan;
use super::model::{ChunkCommit, DebitState};
use super::tree::{DescriptionTarget, FieldCounts};
use crate::error::DexResult;
use crate::txlog::LogEvent;

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
