//! Reading the log: the admins' filtered listing and one subject's own history.

use super::{LogEntry, LogFilter, LogStore, Subject};
use crate::error::DexResult;
use crate::page::{Page, PageRequest};

pub struct LogService<'a, L> {
    pub store: &'a L,
}

impl<L: LogStore> LogService<'_, L> {
    /// Newest first.
    pub async fn query(&self, filter: &LogFilter, page: PageRequest) -> DexResult<Page<LogEntry>> {
        filter.check()?;
        if filter.is_empty_range() {
            return Ok(Page {
                items: Vec::new(),
                cursor: None,
            });
        }
        self.store.query_log(filter, page).await
    }

    /// One subject's history, oldest first, with every hash so the reader can check it.
    pub async fn history(&self, subject: &Subject, page: PageRequest) -> DexResult<Page<LogEntry>> {
        self.store.subject_history(subject.as_str(), page).await
    }
}
