//! `NoticeStore` in memory, with the adapter's items: the id counter `NOTICES` / `COUNTER`
//! (conditioned on the last id read), each notice `NOTICE#<id:010>` / `NOTICE`, and each read
//! `HAT#<address>` / `NOTICE#<id:010>` (written only if absent).

use std::collections::BTreeMap;

use super::{Failure, MemoryStore, Write, shape};
use crate::error::{DexError, DexResult};
use crate::notices::ports::PostedEvent;
use crate::notices::{Notice, NoticeStore, NoticeTarget};
use crate::testing::limits::{self, ItemSize};
use crate::txlog::LogEvent;

/// The notices' part of the memory store's state.
#[derive(Default)]
pub(super) struct NoticesState {
    last_id: u64,
    notices: BTreeMap<u64, Notice>,
    /// (HAT address, notice id) → first read time.
    reads: BTreeMap<(String, u64), i64>,
}

fn notice_size(n: &Notice) -> ItemSize {
    ItemSize::default()
        .n("noticeId", n.id)
        .s("message", &n.message)
        .n("dateCreated", n.date_created)
        .s(
            "target",
            &serde_json::to_string(&n.target).unwrap_or_default(),
        )
        .s("gsi1pk", "NOTICES")
        .s("gsi1sk", &format!("{:010}", n.id))
}

impl NoticeStore for MemoryStore {
    async fn insert_notice(
        &self,
        message: &str,
        target: &NoticeTarget,
        date_created: i64,
        event: PostedEvent<'_>,
    ) -> DexResult<Notice> {
        loop {
            tokio::task::yield_now().await;
            // Read the counter, let others run, then write conditioned on it: racing posts
            // retry as they do against the table.
            let last = self.lock().notices.last_id;
            tokio::task::yield_now().await;
            let notice = Notice {
                id: last + 1,
                message: message.to_owned(),
                date_created,
                target: target.clone(),
            };
            let counter_condition = if last == 0 {
                "attribute_not_exists(pk)"
            } else {
                "#last = :last"
            };
            let id = notice.id;
            let stored = notice.clone();
            let writes = vec![
                Write::new(
                    shape(
                        "NOTICES".into(),
                        "COUNTER",
                        ItemSize::default().n("last", id),
                        Some(counter_condition),
                    ),
                    move |st| st.notices.last_id == last,
                    move |st| st.notices.last_id = id,
                ),
                Write::new(
                    shape(
                        format!("NOTICE#{id:010}"),
                        "NOTICE",
                        notice_size(&notice),
                        Some("attribute_not_exists(pk)"),
                    ),
                    move |st| !st.notices.notices.contains_key(&id),
                    move |st| {
                        st.notices.notices.insert(id, stored);
                    },
                ),
            ];
            let mut st = self.lock();
            match self.commit(&mut st, writes, vec![event(&notice)]) {
                Ok(_) => return Ok(notice),
                Err(Failure::Condition(failed)) if failed.first() == Some(&0) => continue,
                Err(Failure::Condition(_)) => {
                    return Err(DexError::internal("a notice exists beyond the counter"));
                }
                Err(Failure::Error(e)) => return Err(e),
            }
        }
    }

    async fn get_notice(&self, id: u64) -> DexResult<Option<Notice>> {
        tokio::task::yield_now().await;
        Ok(self.lock().notices.notices.get(&id).cloned())
    }

    async fn list_notices(&self) -> DexResult<Vec<Notice>> {
        tokio::task::yield_now().await;
        Ok(self
            .lock()
            .notices
            .notices
            .values()
            .rev()
            .cloned()
            .collect())
    }

    async fn notice_reads(&self, hat: &str) -> DexResult<Vec<(u64, i64)>> {
        tokio::task::yield_now().await;
        limits::check_key(&format!("HAT#{hat}"), "NOTICE#")?;
        Ok(self
            .lock()
            .notices
            .reads
            .iter()
            .filter(|((h, _), _)| h == hat)
            .map(|((_, id), at)| (*id, *at))
            .collect())
    }

    async fn mark_notice_read(
        &self,
        hat: &str,
        id: u64,
        at: i64,
        event: LogEvent,
    ) -> DexResult<i64> {
        tokio::task::yield_now().await;
        let key = (hat.to_owned(), id);
        let (check, apply) = (key.clone(), key.clone());
        let write = Write::new(
            shape(
                format!("HAT#{hat}"),
                format!("NOTICE#{id:010}"),
                ItemSize::default().n("noticeId", id).n("readAt", at),
                Some("attribute_not_exists(pk)"),
            ),
            move |st| !st.notices.reads.contains_key(&check),
            move |st| {
                st.notices.reads.insert(apply, at);
            },
        );
        let mut st = self.lock();
        match self.commit(&mut st, vec![write], vec![event]) {
            Ok(_) => Ok(at),
            Err(Failure::Condition(_)) => st
                .notices
                .reads
                .get(&key)
                .copied()
                .ok_or_else(|| DexError::internal("a refused read left no read")),
            Err(Failure::Error(e)) => Err(e),
        }
    }
}
