//! Notices on DynamoDB: the id counter `NOTICES` / `COUNTER` (its `last` id), one item per
//! notice `NOTICE#<id:010>` / `NOTICE` (gsi1 `NOTICES` / `<id:010>`, the whole list), and one
//! item per read in the HAT's partition `HAT#<address>` / `NOTICE#<id:010>`.
//!
//! A posting reads the counter and commits the counter moved from that id to the next one,
//! the notice and its log entry in one transaction conditioned on the counter: of racing
//! posts exactly one takes each id and the others read again, so ids run 1, 2, ... with no
//! gap and no repeat.

use std::time::Duration;

use super::item::{Codec, get_n, get_s, n, s};
use super::keys::{self, gsi};
use super::{Commit, DynamoStore, Item, Query, Sort};
use dex::error::{DexError, DexResult};
use dex::notices::ports::PostedEvent;
use dex::notices::{Notice, NoticeStore, NoticeTarget};
use dex::txlog::LogEvent;

/// How long a posting keeps losing the race for an id before answering 429 (each round lets
/// one of the racing posts through; well within the functions' 29 s).
const POST_RETRY_BUDGET: Duration = Duration::from_secs(20);

impl Codec for Notice {
    fn to_item(&self) -> Item {
        let mut item = keys::notice(self.id);
        item.extend([
            ("noticeId".to_owned(), n(self.id)),
            ("message".to_owned(), s(&self.message)),
            ("dateCreated".to_owned(), n(self.date_created)),
            (
                "target".to_owned(),
                s(serde_json::to_string(&self.target).expect("a target serialises")),
            ),
        ]);
        item.extend(gsi("gsi1", keys::ALL_NOTICES, keys::notice_sort(self.id)));
        item
    }

    fn from_item(item: &Item) -> DexResult<Self> {
        let target: NoticeTarget = serde_json::from_str(&get_s(item, "target")?)
            .map_err(|e| DexError::internal(format!("stored notice target: {e}")))?;
        Ok(Notice {
            id: get_n(item, "noticeId")?,
            message: get_s(item, "message")?,
            date_created: get_n(item, "dateCreated")?,
            target,
        })
    }
}

impl NoticeStore for DynamoStore {
    async fn insert_notice(
        &self,
        message: &str,
        target: &NoticeTarget,
        date_created: i64,
        event: PostedEvent<'_>,
    ) -> DexResult<Notice> {
        let started = tokio::time::Instant::now();
        let mut attempt = 0;
        // The counter as a refused attempt found it (DynamoDB returns the item with the
        // cancellation): the next attempt needs no read.
        let mut known: Option<u64> = None;
        loop {
            attempt += 1;
            let last: u64 = match known.take() {
                Some(last) => last,
                None => match self.get_item(keys::notice_counter(), true).await? {
                    Some(item) => get_n(&item, "last")?,
                    None => 0,
                },
            };
            let notice = Notice {
                id: last + 1,
                message: message.to_owned(),
                date_created,
                target: target.clone(),
            };
            let mut counter = keys::notice_counter();
            counter.insert("last".to_owned(), n(notice.id));
            let counter = if last == 0 {
                self.put_new(counter)
            } else {
                self.put(
                    counter,
                    Some("#last = :last"),
                    &[("#last", "last")],
                    vec![(":last", n(last))],
                )
            };
            let writes = vec![counter, self.put_new(notice.to_item())];
            match self.commit(writes, vec![event(&notice)]).await? {
                Commit::Done(_) => return Ok(notice),
                Commit::Refused(failed) if failed[0].0 == 0 => {
                    known = failed[0]
                        .1
                        .as_ref()
                        .and_then(|item| get_n(item, "last").ok());
                    if started.elapsed() >= POST_RETRY_BUDGET {
                        return Err(DexError::Throttled(
                            "too many notices posted at once; retry".into(),
                        ));
                    }
                    self.backoff(attempt).await;
                }
                Commit::Refused(_) => {
                    return Err(DexError::internal(format!(
                        "notice {} exists beyond the counter",
                        notice.id
                    )));
                }
            }
        }
    }

    async fn get_notice(&self, id: u64) -> DexResult<Option<Notice>> {
        self.get_item(keys::notice(id), true)
            .await?
            .as_ref()
            .map(Notice::from_item)
            .transpose()
    }

    async fn list_notices(&self) -> DexResult<Vec<Notice>> {
        let query = Query {
            index: Some("gsi1"),
            partition: keys::ALL_NOTICES,
            newest_first: true,
            ..Query::default()
        };
        self.query_all(&query)
            .await?
            .iter()
            .map(Notice::from_item)
            .collect()
    }

    async fn notice_reads(&self, hat: &str) -> DexResult<Vec<(u64, i64)>> {
        let partition = keys::hat_partition(hat);
        let query = Query {
            partition: &partition,
            sort: Some(Sort::BeginsWith(keys::NOTICE_READ_PREFIX.to_owned())),
            consistent: true,
            ..Query::default()
        };
        self.query_all(&query)
            .await?
            .iter()
            .map(|item| Ok((get_n(item, "noticeId")?, get_n(item, "readAt")?)))
            .collect()
    }

    async fn mark_notice_read(
        &self,
        hat: &str,
        id: u64,
        at: i64,
        event: LogEvent,
    ) -> DexResult<i64> {
        let mut item = keys::notice_read(hat, id);
        item.extend([
            ("noticeId".to_owned(), n(id)),
            ("hat".to_owned(), s(hat)),
            ("readAt".to_owned(), n(at)),
        ]);
        match self.commit(vec![self.put_new(item)], vec![event]).await? {
            Commit::Done(_) => Ok(at),
            Commit::Refused(failed) => {
                // Read before: the first time stays (DynamoDB returned the item as it was).
                let existing = match failed.into_iter().next().and_then(|(_, item)| item) {
                    Some(item) => item,
                    None => self
                        .get_item(keys::notice_read(hat, id), true)
                        .await?
                        .ok_or_else(|| DexError::internal("a refused read left no read"))?,
                };
                get_n(&existing, "readAt")
            }
        }
    }
}
