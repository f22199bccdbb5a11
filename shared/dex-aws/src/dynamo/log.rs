//! The transaction log on DynamoDB: the entry codec, and reading it by subject (the table),
//! by actor (gsi1), by kind (gsi2), or by time alone (gsi3, one partition per day, walked
//! newest first). Entries are written only by `commit`.

use chrono::{DateTime, Duration, NaiveDate};

use super::cursor::{KeyCursor, cursor_from_key, key_from_cursor};
use super::item::{Codec, get_n, get_s, n, s};
use super::keys::{self, gsi};
use super::{DynamoStore, Filter, Item, Query, Sort};
use dex::error::{DexError, DexResult};
use dex::page::{Page, PageRequest};
use dex::txlog::{LogEntry, LogEvent, LogFilter, LogStore};

/// A listing without subject, actor or kind covers at most this many days.
const MAX_DAYS_WALKED: i64 = 366;

impl Codec for LogEntry {
    fn to_item(&self) -> Item {
        let e = self;
        let sort = keys::log_sort(e.at, &e.subject, e.seq);
        let day = DateTime::from_timestamp_millis(e.at)
            .unwrap_or_default()
            .format("%Y-%m-%d")
            .to_string();
        let mut item = keys::log_entry(&e.subject, e.seq);
        item.extend([
            ("subject".to_owned(), s(&e.subject)),
            ("seq".to_owned(), n(e.seq)),
            ("kind".to_owned(), s(&e.kind)),
            ("actor".to_owned(), s(&e.actor)),
            ("at".to_owned(), n(e.at)),
            ("details".to_owned(), s(e.details.to_string())),
            ("hash".to_owned(), s(&e.hash)),
            ("prevHash".to_owned(), s(&e.prev_hash)),
        ]);
        item.extend(gsi("gsi1", keys::log_by_actor(&e.actor), &sort));
        item.extend(gsi("gsi2", keys::log_by_kind(&e.kind), &sort));
        item.extend(gsi("gsi3", keys::log_by_day(&day), sort));
        item
    }

    fn from_item(item: &Item) -> DexResult<Self> {
        Ok(LogEntry {
            subject: get_s(item, "subject")?,
            seq: get_n(item, "seq")?,
            kind: get_s(item, "kind")?,
            actor: get_s(item, "actor")?,
            at: get_n(item, "at")?,
            details: serde_json::from_str(&get_s(item, "details")?).map_err(DexError::internal)?,
            hash: get_s(item, "hash")?,
            prev_hash: get_s(item, "prevHash")?,
        })
    }
}

impl LogStore for DynamoStore {
    async fn append_log(&self, events: Vec<LogEvent>) -> DexResult<Vec<LogEntry>> {
        self.commit(vec![], events)
            .await?
            .unconditional("log append had a domain condition")
    }

    async fn query_log(&self, filter: &LogFilter, page: PageRequest) -> DexResult<Page<LogEntry>> {
        filter.check()?;
        let start = KeyCursor::of(&page)?;
        let from = filter.from.unwrap_or(0);
        let to = filter.to.unwrap_or(i64::MAX / 2);
        if from > to {
            return Err(DexError::bad_request("from is after to"));
        }
        // The most selective key first; the other filters become a filter expression.
        let (index, partition) = if let Some(subject) = &filter.subject {
            (None, keys::log_partition(subject))
        } else if let Some(actor) = &filter.actor {
            (Some("gsi1"), keys::log_by_actor(actor))
        } else if let Some(kind) = &filter.kind {
            (Some("gsi2"), keys::log_by_kind(kind))
        } else {
            return self
                .query_by_days(filter, from, to, page.limit, start)
                .await;
        };
        let (items, last) = self
            .query_partition(
                index,
                &partition,
                filter,
                (from, to),
                page.limit,
                start.as_ref(),
            )
            .await?;
        Ok(Page {
            items,
            cursor: cursor_from_key(last.as_ref(), None),
        })
    }

    async fn subject_history(&self, subject: &str, page: PageRequest) -> DexResult<Page<LogEntry>> {
        let partition = keys::log_partition(subject);
        let query = Query {
            partition: &partition,
            sort: Some(Sort::BeginsWith(keys::LOG_ENTRY_PREFIX.into())),
            ..Query::default()
        };
        self.query_page(query, &page).await
    }
}

impl DynamoStore {
    /// One request on one log partition, newest first, with the other filters applied.
    async fn query_partition(
        &self,
        index: Option<&str>,
        partition: &str,
        filter: &LogFilter,
        (from, to): (i64, i64),
        limit: i32,
        cursor: Option<&KeyCursor>,
    ) -> DexResult<(Vec<LogEntry>, Option<Item>)> {
        let mut conditions = Filter {
            conditions: vec!["#at BETWEEN :from AND :to".to_owned()],
            names: vec![("#at".into(), "at".into())],
            values: vec![(":from".into(), n(from)), (":to".into(), n(to))],
        };
        for (name, value, attr) in [
            ("#actor", &filter.actor, "actor"),
            ("#kind", &filter.kind, "kind"),
            ("#subject", &filter.subject, "subject"),
        ] {
            if let Some(v) = value {
                let placeholder = format!(":{attr}");
                conditions
                    .conditions
                    .push(format!("{name} = {placeholder}"));
                conditions.names.push((name.into(), attr.into()));
                conditions.values.push((placeholder, s(v)));
            }
        }
        let sort = match index {
            None => Sort::BeginsWith(keys::LOG_ENTRY_PREFIX.into()),
            // GSI sort keys start with the time, so the range narrows the key condition.
            Some(_) => Sort::Between(format!("{from:013}"), format!("{to:013}~")),
        };
        let query = Query {
            index,
            partition,
            sort: Some(sort),
            newest_first: true,
            limit: Some(limit),
            filter: Some(conditions),
            ..Query::default()
        };
        let start = key_from_cursor(cursor, index, partition)?;
        let (items, last) = self.query(&query, start).await?;
        let items = items
            .iter()
            .map(LogEntry::from_item)
            .collect::<DexResult<_>>()?;
        Ok((items, last))
    }

    async fn query_by_days(
        &self,
        filter: &LogFilter,
        from: i64,
        to: i64,
        limit: i32,
        start: Option<KeyCursor>,
    ) -> DexResult<Page<LogEntry>> {
        let now = self.clock.now_millis();
        let to_day = day_of(to.min(now));
        let from_day =
            day_of(from.max(to.min(now) - Duration::days(MAX_DAYS_WALKED).num_milliseconds()));
        // Every cursor of this walk names its day: one without is another listing's.
        if start.as_ref().is_some_and(|c| c.partition.is_none()) {
            return Err(DexError::bad_request(
                "cursor is not one this listing returned",
            ));
        }
        let mut day = match start.as_ref().and_then(|c| c.partition.as_deref()) {
            Some(d) => NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .map_err(|_| DexError::bad_request("bad cursor"))?,
            None => to_day,
        };
        let mut cursor = start.filter(|c| c.partition.is_some());
        let mut items = Vec::new();
        while day >= from_day {
            let want = limit - items.len() as i32;
            let partition = keys::log_by_day(&day.format("%Y-%m-%d").to_string());
            let (mut found, last) = self
                .query_partition(
                    Some("gsi3"),
                    &partition,
                    filter,
                    (from, to),
                    want,
                    cursor.as_ref(),
                )
                .await?;
            items.append(&mut found);
            let day_text = day.format("%Y-%m-%d").to_string();
            if let Some(last) = last {
                if items.len() as i32 >= limit {
                    return Ok(Page {
                        items,
                        cursor: cursor_from_key(Some(&last), Some(day_text)),
                    });
                }
                cursor = Some(KeyCursor {
                    partition: Some(day_text),
                    key: KeyCursor::decode(
                        &cursor_from_key(Some(&last), None).unwrap_or_default(),
                    )?
                    .key,
                });
                continue;
            }
            cursor = None;
            day -= Duration::days(1);
            if items.len() as i32 >= limit && day >= from_day {
                let next = KeyCursor {
                    partition: Some(day.format("%Y-%m-%d").to_string()),
                    key: Default::default(),
                };
                return Ok(Page {
                    items,
                    cursor: Some(next.encode()),
                });
            }
        }
        Ok(Page {
            items,
            cursor: None,
        })
    }
}

fn day_of(ms: i64) -> NaiveDate {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .date_naive()
}
