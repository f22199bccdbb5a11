//! The storage port of data plugs.

use std::future::Future;

use super::model::{DataPlug, PlugConnection};
use crate::error::DexResult;
use crate::txlog::LogEvent;

pub trait PlugStore: Send + Sync {
    /// Stores a new plug; 409 when its name (without regard to case) is taken.
    fn insert_plug(
        &self,
        plug: &DataPlug,
        event: LogEvent,
    ) -> impl Future<Output = DexResult<()>> + Send;
    fn get_plug(&self, id: &str) -> impl Future<Output = DexResult<Option<DataPlug>>> + Send;
    /// Replaces the plug if it is still at `expected_version` (409 otherwise), adding
    /// `approved_delta` (-1, 0, 1) to the Data Plugs counter in the same transaction.
    fn update_plug(
        &self,
        plug: &DataPlug,
        expected_version: u64,
        approved_delta: i64,
        event: LogEvent,
    ) -> impl Future<Output = DexResult<()>> + Send;
    /// Every plug (`approved_only`: the approved ones), oldest first.
    fn list_plugs(
        &self,
        approved_only: bool,
    ) -> impl Future<Output = DexResult<Vec<DataPlug>>> + Send;
    /// Records the connection with its event (on the HAT's chain); `Ok(false)` and nothing
    /// written when that plug is already connected to that HAT.
    fn record_connection(
        &self,
        connection: &PlugConnection,
        event: LogEvent,
    ) -> impl Future<Output = DexResult<bool>> + Send;
    fn get_connection(
        &self,
        plug_id: &str,
        hat: &str,
    ) -> impl Future<Output = DexResult<Option<PlugConnection>>> + Send;
}
