//! The storage port of notices.

use std::future::Future;

use super::model::{Notice, NoticeTarget};
use crate::error::DexResult;
use crate::txlog::LogEvent;

/// The event of a notice's posting, once its id is known.
pub type PostedEvent<'a> = &'a (dyn Fn(&Notice) -> LogEvent + Send + Sync);

pub trait NoticeStore: Send + Sync {
    /// Stores a new notice under the next id (1, 2, ...: no gaps and no repeats, however
    /// many are posted at once) with its event, in one transaction.
    fn insert_notice(
        &self,
        message: &str,
        target: &NoticeTarget,
        date_created: i64,
        event: PostedEvent<'_>,
    ) -> impl Future<Output = DexResult<Notice>> + Send;
    fn get_notice(&self, id: u64) -> impl Future<Output = DexResult<Option<Notice>>> + Send;
    /// Every notice, newest first.
    fn list_notices(&self) -> impl Future<Output = DexResult<Vec<Notice>>> + Send;
    /// The notices `hat` marked read: `(notice id, first read time)`.
    fn notice_reads(&self, hat: &str) -> impl Future<Output = DexResult<Vec<(u64, i64)>>> + Send;
    /// Records that `hat` read notice `id` at `at` with its event (on the HAT's chain),
    /// unless it was read before: then nothing is written. Answers the first read time.
    fn mark_notice_read(
        &self,
        hat: &str,
        id: u64,
        at: i64,
        event: LogEvent,
    ) -> impl Future<Output = DexResult<i64>> + Send;
}
