//! The transaction log's storage port.

use std::future::Future;

use super::{LogEntry, LogEvent, LogFilter};
use crate::error::DexResult;
use crate::page::{Page, PageRequest};

pub trait LogStore: Send + Sync {
    /// Appends events that accompany no other state change (e.g. a key rotation, whose state
    /// lives in Secrets Manager).
    fn append_log(
        &self,
        events: Vec<LogEvent>,
    ) -> impl Future<Output = DexResult<Vec<LogEntry>>> + Send;
    /// Newest first.
    fn query_log(
        &self,
        filter: &LogFilter,
        page: PageRequest,
    ) -> impl Future<Output = DexResult<Page<LogEntry>>> + Send;
    /// One subject's history, oldest first, for chain verification.
    fn subject_history(
        &self,
        subject: &str,
        page: PageRequest,
    ) -> impl Future<Output = DexResult<Page<LogEntry>>> + Send;
}
