//! The DynamoDB adapter: attribute helpers, error mapping, and `commit`, the one way state
//! changes are written (with their chained log entries, in one transaction).

pub mod accounts;
pub mod counters;
pub mod cursor;
pub mod hats;
pub mod log;
pub mod schema;
pub mod stats;

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};

use crate::error::{DexError, DexResult};
use crate::page::{Page, PageRequest};
use crate::ports::{Clock, Random};
use crate::txlog::{GENESIS_HASH, LogEntry, LogEvent};
use cursor::{KeyCursor, cursor_from_key, key_from_cursor};
use std::sync::Arc;

pub(crate) type Item = HashMap<String, AttributeValue>;

/// DynamoDB accepts at most 100 actions in one transaction.
pub const MAX_TRANSACTION_ITEMS: usize = 100;
/// How long `commit` keeps retrying a transaction that lost a race (chain head moved,
/// transaction conflict) before answering 429. A time budget rather than an attempt count:
/// with many writers on one subject, each round lets only one through, so the number of
/// rounds a writer may need grows with the number of contenders.
const COMMIT_RETRY_BUDGET: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct DynamoStore {
    pub(crate) client: Client,
    pub(crate) table: String,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) random: Arc<dyn Random>,
}

/// Why a commit did not happen.
#[derive(Debug)]
pub(crate) enum CommitFailure {
    /// The conditions of these `writes` failed (index into `writes`, and the item as it was
    /// when DynamoDB returned it). Never empty; the first is the lowest index.
    Condition(Vec<(usize, Option<Item>)>),
    Error(DexError),
}

impl CommitFailure {
    /// The lowest index whose condition failed, if that is why the commit failed.
    pub(crate) fn failed_index(&self) -> Option<usize> {
        match self {
            Self::Condition(failed) => failed.first().map(|(i, _)| *i),
            Self::Error(_) => None,
        }
    }
}

impl From<DexError> for CommitFailure {
    fn from(e: DexError) -> Self {
        Self::Error(e)
    }
}

impl DynamoStore {
    pub fn new(
        client: Client,
        table: impl Into<String>,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Random>,
    ) -> Self {
        Self {
            client,
            table: table.into(),
            clock,
            random,
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub(crate) fn put(
        &self,
        item: Item,
        condition: Option<&str>,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
    ) -> TransactWriteItem {
        let mut put = Put::builder().table_name(&self.table).set_item(Some(item));
        if let Some(c) = condition {
            put = put
                .condition_expression(c)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                );
        }
        for (k, v) in names {
            put = put.expression_attribute_names(*k, *v);
        }
        for (k, v) in values {
            put = put.expression_attribute_values(k, v);
        }
        TransactWriteItem::builder()
            .put(put.build().expect("table, item set"))
            .build()
    }

    /// Writes `writes` and one chained log entry per event in a single transaction. Chain
    /// heads are read first and conditioned on, so concurrent appends to the same subject
    /// retry instead of forking the chain. A failed condition of one of `writes` is returned
    /// to the caller, who knows what it means.
    pub(crate) async fn commit(
        &self,
        writes: Vec<TransactWriteItem>,
        events: Vec<LogEvent>,
    ) -> Result<Vec<LogEntry>, CommitFailure> {
        let subjects: Vec<String> = {
            let mut s: Vec<String> = events.iter().map(|e| e.subject.clone()).collect();
            s.sort();
            s.dedup();
            s
        };
        if writes.len() + events.len() + subjects.len() > MAX_TRANSACTION_ITEMS {
            return Err(DexError::internal("transaction over DynamoDB's 100-item limit").into());
        }
        let started = tokio::time::Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let heads = self.read_heads(&subjects).await?;
            let at = self.clock.now_millis();
            let mut entries = Vec::with_capacity(events.len());
            let mut next: HashMap<&str, (u64, String)> = subjects
                .iter()
                .map(|s| {
                    (
                        s.as_str(),
                        heads
                            .get(s)
                            .cloned()
                            .unwrap_or((0, GENESIS_HASH.to_owned())),
                    )
                })
                .collect();
            for event in &events {
                let (seq, prev) = next
                    .get_mut(event.subject.as_str())
                    .expect("subject collected");
                *seq += 1;
                let entry = LogEntry::chain(event.clone(), *seq, at, prev.clone());
                *prev = entry.hash.clone();
                entries.push(entry);
            }
            let mut items = writes.clone();
            for entry in &entries {
                items.push(self.put(
                    log_entry_item(entry),
                    Some("attribute_not_exists(pk)"),
                    &[],
                    vec![],
                ));
            }
            for subject in &subjects {
                let (seq, hash) = &next[subject.as_str()];
                let head = HashMap::from([
                    ("pk".to_owned(), s(format!("LOG#{subject}"))),
                    ("sk".to_owned(), s("#HEAD")),
                    ("seq".to_owned(), n(seq)),
                    ("hash".to_owned(), s(hash)),
                ]);
                items.push(match heads.get(subject) {
                    None => self.put(head, Some("attribute_not_exists(pk)"), &[], vec![]),
                    Some((old, _)) => self.put(
                        head,
                        Some("#seq = :seq"),
                        &[("#seq", "seq")],
                        vec![(":seq", n(old))],
                    ),
                });
            }
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items))
                .client_request_token(self.random.uuid().to_string())
                .send()
                .await;
            match result {
                Ok(_) => return Ok(entries),
                Err(err) => match classify_cancellation(&err, writes.len()) {
                    Cancellation::Domain(failed) => return Err(CommitFailure::Condition(failed)),
                    Cancellation::Retry if started.elapsed() < COMMIT_RETRY_BUDGET => {
                        self.backoff(attempt).await
                    }
                    Cancellation::Retry => {
                        return Err(DexError::Throttled(
                            "too many concurrent changes to the same records; retry".into(),
                        )
                        .into());
                    }
                    Cancellation::Fatal => return Err(sdk_error(err).into()),
                },
            }
        }
    }

    /// Full-jitter exponential backoff: 0..min(5ms * 2^attempt, 400ms).
    pub(crate) async fn backoff(&self, attempt: u32) {
        let cap = (5u64 << attempt.min(7)).min(400);
        tokio::time::sleep(Duration::from_millis(self.random.below(cap + 1))).await;
    }

    /// One page of a partition of the table (optionally only sort keys starting with
    /// `sort_prefix`) or of a GSI, in key order.
    pub(crate) async fn query_page<T>(
        &self,
        index: Option<&str>,
        partition: &str,
        sort_prefix: Option<&str>,
        page: &PageRequest,
        parse: impl Fn(&Item) -> DexResult<T>,
    ) -> DexResult<Page<T>> {
        let partition_key = index.map_or("pk".to_owned(), |i| format!("{i}pk"));
        let mut condition = format!("{partition_key} = :p");
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .set_index_name(index.map(str::to_owned))
            .expression_attribute_values(":p", s(partition))
            .limit(page.limit)
            .set_exclusive_start_key(key_from_cursor(
                KeyCursor::of(page)?.as_ref(),
                index,
                partition,
            )?);
        if let Some(prefix) = sort_prefix {
            condition.push_str(" AND begins_with(sk, :prefix)");
            query = query.expression_attribute_values(":prefix", s(prefix));
        }
        let out = query
            .key_condition_expression(condition)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(Page {
            items: out.items().iter().map(parse).collect::<DexResult<_>>()?,
            cursor: cursor_from_key(out.last_evaluated_key(), None),
        })
    }

    async fn read_heads(&self, subjects: &[String]) -> DexResult<HashMap<String, (u64, String)>> {
        let keys = subjects
            .iter()
            .map(|subject| {
                HashMap::from([
                    ("pk".to_owned(), s(format!("LOG#{subject}"))),
                    ("sk".to_owned(), s("#HEAD")),
                ])
            })
            .collect();
        let mut heads = HashMap::new();
        for item in self.batch_get(keys, true).await? {
            let subject = get_s(&item, "pk")?.trim_start_matches("LOG#").to_owned();
            heads.insert(subject, (get_n(&item, "seq")?, get_s(&item, "hash")?));
        }
        Ok(heads)
    }
}

enum Cancellation {
    Domain(Vec<(usize, Option<Item>)>),
    Retry,
    Fatal,
}

fn classify_cancellation(
    err: &SdkError<TransactWriteItemsError>,
    domain_writes: usize,
) -> Cancellation {
    let Some(service) = err.as_service_error() else {
        return Cancellation::Fatal;
    };
    match service {
        TransactWriteItemsError::TransactionCanceledException(cancel) => {
            let failed: Vec<(usize, Option<Item>)> = cancel
                .cancellation_reasons()
                .iter()
                .enumerate()
                .filter(|(index, reason)| {
                    reason.code() == Some("ConditionalCheckFailed") && *index < domain_writes
                })
                .map(|(index, reason)| (index, reason.item().cloned()))
                .collect();
            if !failed.is_empty() {
                return Cancellation::Domain(failed);
            }
            // A chain head moved, or another transaction touched the same items: retry.
            Cancellation::Retry
        }
        TransactWriteItemsError::TransactionInProgressException(_)
        | TransactWriteItemsError::ProvisionedThroughputExceededException(_)
        | TransactWriteItemsError::ThrottlingException(_)
        | TransactWriteItemsError::RequestLimitExceeded(_) => Cancellation::Retry,
        _ => Cancellation::Fatal,
    }
}

/// Maps an SDK failure: throttling is a 429, everything else an internal error (logged,
/// never shown).
pub(crate) fn sdk_error<E, R>(err: SdkError<E, R>) -> DexError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let code = err
        .as_service_error()
        .and_then(|e| e.code())
        .unwrap_or_default();
    if matches!(
        code,
        "ThrottlingException" | "ProvisionedThroughputExceededException" | "RequestLimitExceeded"
    ) {
        DexError::Throttled("the store is busy; retry shortly".into())
    } else {
        DexError::internal(DisplayErrorContext(err))
    }
}

pub(crate) fn log_entry_item(e: &LogEntry) -> Item {
    let sort = format!("{:013}#{}#{:010}", e.at, e.subject, e.seq);
    let day = chrono::DateTime::from_timestamp_millis(e.at)
        .unwrap_or_default()
        .format("%Y-%m-%d")
        .to_string();
    HashMap::from([
        ("pk".to_owned(), s(format!("LOG#{}", e.subject))),
        ("sk".to_owned(), s(format!("E#{:010}", e.seq))),
        ("subject".to_owned(), s(&e.subject)),
        ("seq".to_owned(), n(e.seq)),
        ("kind".to_owned(), s(&e.kind)),
        ("actor".to_owned(), s(&e.actor)),
        ("at".to_owned(), n(e.at)),
        ("details".to_owned(), s(e.details.to_string())),
        ("hash".to_owned(), s(&e.hash)),
        ("prevHash".to_owned(), s(&e.prev_hash)),
        ("gsi1pk".to_owned(), s(format!("LOGACTOR#{}", e.actor))),
        ("gsi1sk".to_owned(), s(&sort)),
        ("gsi2pk".to_owned(), s(format!("LOGKIND#{}", e.kind))),
        ("gsi2sk".to_owned(), s(&sort)),
        ("gsi3pk".to_owned(), s(format!("LOGDAY#{day}"))),
        ("gsi3sk".to_owned(), s(sort)),
    ])
}

pub(crate) fn log_entry_from(item: &Item) -> DexResult<LogEntry> {
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

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn get_s(item: &Item, name: &str) -> DexResult<String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v.clone()),
        _ => Err(DexError::internal(format!(
            "stored item lacks string attribute {name}"
        ))),
    }
}

pub(crate) fn get_opt_s(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

pub(crate) fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> DexResult<T> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v
            .parse()
            .map_err(|_| DexError::internal(format!("attribute {name} is not a number"))),
        _ => Err(DexError::internal(format!(
            "stored item lacks number attribute {name}"
        ))),
    }
}

pub(crate) fn get_bool(item: &Item, name: &str) -> bool {
    matches!(item.get(name), Some(AttributeValue::Bool(true)))
}

pub(crate) fn string_list(values: impl IntoIterator<Item = String>) -> AttributeValue {
    AttributeValue::L(values.into_iter().map(AttributeValue::S).collect())
}

pub(crate) fn get_string_list(item: &Item, name: &str) -> Vec<String> {
    match item.get(name) {
        Some(AttributeValue::L(values)) => values
            .iter()
            .filter_map(|v| v.as_s().ok().cloned())
            .collect(),
        _ => Vec::new(),
    }
}
