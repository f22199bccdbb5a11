//! Reading the transaction log: by subject (the table), by actor (gsi1), by kind (gsi2), or
//! by time alone (gsi3, one partition per day, walked newest first).

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, NaiveDate};

use super::cursor::{KeyCursor, cursor_from_key, key_from_cursor};
use super::{DynamoStore, Item, log_entry_from, s, sdk_error};
use crate::error::{DexError, DexResult};
use crate::page::{Page, PageRequest};
use crate::txlog::LogStore;
use crate::txlog::{LogEntry, LogEvent, LogFilter};

/// A listing without subject, actor or kind covers at most this many days.
const MAX_DAYS_WALKED: i64 = 366;

impl LogStore for DynamoStore {
    async fn append_log(&self, events: Vec<LogEvent>) -> DexResult<Vec<LogEntry>> {
        self.commit(vec![], events).await.map_err(|f| match f {
            super::CommitFailure::Error(e) => e,
            super::CommitFailure::Condition(_) => {
                DexError::internal("log append had a domain condition")
            }
        })
    }

    async fn query_log(&self, filter: &LogFilter, page: PageRequest) -> DexResult<Page<LogEntry>> {
        let start = KeyCursor::of(&page)?;
        let from = filter.from.unwrap_or(0);
        let to = filter.to.unwrap_or(i64::MAX / 2);
        if from > to {
            return Err(DexError::bad_request("from is after to"));
        }
        // The most selective key first; the other filters become a filter expression.
        let (index, partition) = if let Some(subject) = &filter.subject {
            (None, format!("LOG#{subject}"))
        } else if let Some(actor) = &filter.actor {
            (Some("gsi1"), format!("LOGACTOR#{actor}"))
        } else if let Some(kind) = &filter.kind {
            (Some("gsi2"), format!("LOGKIND#{kind}"))
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
                from,
                to,
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
        let partition = format!("LOG#{subject}");
        self.query_page(None, &partition, Some("E#"), &page, log_entry_from)
            .await
    }
}

impl DynamoStore {
    #[allow(clippy::too_many_arguments)]
    async fn query_partition(
        &self,
        index: Option<&str>,
        partition: &str,
        filter: &LogFilter,
        from: i64,
        to: i64,
        limit: i32,
        cursor: Option<&KeyCursor>,
    ) -> DexResult<(Vec<LogEntry>, Option<Item>)> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .scan_index_forward(false)
            .limit(limit);
        let mut filters = vec!["#at BETWEEN :from AND :to".to_owned()];
        query = query
            .expression_attribute_names("#at", "at")
            .expression_attribute_values(":from", AttributeValue::N(from.to_string()))
            .expression_attribute_values(":to", AttributeValue::N(to.to_string()))
            .expression_attribute_values(":p", s(partition));
        query = match index {
            None => query
                .key_condition_expression("pk = :p AND begins_with(sk, :e)")
                .expression_attribute_values(":e", s("E#")),
            Some(gsi) => {
                // GSI sort keys start with the time, so the range narrows the key condition.
                query
                    .index_name(gsi)
                    .key_condition_expression(format!(
                        "{gsi}pk = :p AND {gsi}sk BETWEEN :lo AND :hi"
                    ))
                    .expression_attribute_values(":lo", s(format!("{from:013}")))
                    .expression_attribute_values(":hi", s(format!("{to:013}~")))
            }
        };
        for (name, value, attr) in [
            ("#actor", &filter.actor, "actor"),
            ("#kind", &filter.kind, "kind"),
        ] {
            if let Some(v) = value {
                let placeholder = format!(":{attr}");
                filters.push(format!("{name} = {placeholder}"));
                query = query
                    .expression_attribute_names(name, attr)
                    .expression_attribute_values(placeholder, s(v));
            }
        }
        if let Some(subject) = &filter.subject {
            filters.push("#subject = :subject".into());
            query = query
                .expression_attribute_names("#subject", "subject")
                .expression_attribute_values(":subject", s(subject));
        }
        let out = query
            .filter_expression(filters.join(" AND "))
            .set_exclusive_start_key(key_from_cursor(cursor, index, partition)?)
            .send()
            .await
            .map_err(sdk_error)?;
        let items = out
            .items()
            .iter()
            .map(log_entry_from)
            .collect::<DexResult<_>>()?;
        Ok((items, out.last_evaluated_key().cloned()))
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
        let mut day = match start.as_ref().and_then(|c| c.partition.as_deref()) {
            Some(d) => NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .map_err(|_| DexError::bad_request("bad cursor"))?,
            None => to_day,
        };
        let mut cursor = start.filter(|c| c.partition.is_some());
        let mut items = Vec::new();
        while day >= from_day {
            let want = limit - items.len() as i32;
            let partition = format!("LOGDAY#{}", day.format("%Y-%m-%d"));
            let (mut found, last) = self
                .query_partition(
                    Some("gsi3"),
                    &partition,
                    filter,
                    from,
                    to,
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
