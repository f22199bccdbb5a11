//! The DynamoDB adapter: the client and table, `commit` (the one way state changes are
//! written, with their chained log entries, in one transaction), `batch_get`, one query
//! helper, and the SDK error mapping. Keys are in `keys`, item encoding in `item`, each
//! aggregate's port in its own file.

pub mod accounts;
pub mod apps;
pub mod counters;
pub mod cursor;
pub mod hats;
pub mod item;
pub mod keys;
pub mod log;
pub mod login_limits;
pub mod notices;
pub mod offers;
pub mod plugs;
pub mod schema;
pub mod snapshot;
pub mod stats;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
pub(crate) use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::types::{
    KeysAndAttributes, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};

use cursor::{KeyCursor, cursor_from_key, key_from_cursor};
use dex::error::{DexError, DexResult};
use dex::page::{Page, PageRequest};
use dex::ports::{Clock, Random};
use dex::txlog::{LogEntry, LogEvent, chain_events};
use item::{Codec, get_n, get_s, n, s};

pub(crate) type Item = HashMap<String, AttributeValue>;

/// DynamoDB accepts at most 100 actions in one transaction.
pub const MAX_TRANSACTION_ITEMS: usize = 100;
/// How long `commit` keeps retrying a transaction that lost a race (chain head moved,
/// transaction conflict) before answering 429. A time budget rather than an attempt count:
/// with many writers on one subject, each round lets only one through, so the number of
/// rounds a writer may need grows with the number of contenders.
const COMMIT_RETRY_BUDGET: Duration = Duration::from_secs(10);

/// DynamoDB reads at most this many keys in one BatchGetItem.
const MAX_BATCH_GET_KEYS: usize = 100;

#[derive(Clone)]
pub struct DynamoStore {
    pub(crate) client: Client,
    pub(crate) table: String,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) random: Arc<dyn Random>,
}

/// Chain heads by subject: (sequence number, hash) of each subject's last log entry.
pub(crate) type Heads = HashMap<String, (u64, String)>;

/// The chain heads among `items` (what a batch read of `keys::log_head` keys answered,
/// maybe beside other items); a subject with no head has no entry.
pub(crate) fn heads_in(items: &[Item]) -> DexResult<Heads> {
    let mut heads = HashMap::new();
    for item in items {
        if get_s(item, "sk").ok().as_deref() != Some(keys::LOG_HEAD_SORT) {
            continue;
        }
        let subject = keys::subject_of(&get_s(item, "pk")?).to_owned();
        heads.insert(subject, (get_n(item, "seq")?, get_s(item, "hash")?));
    }
    Ok(heads)
}

/// What a commit did.
#[derive(Debug)]
pub(crate) enum Commit {
    /// Written, with these log entries.
    Done(Vec<LogEntry>),
    /// Nothing written: the conditions of these `writes` failed (index into `writes`, and the
    /// item as it was when DynamoDB returned it). Never empty; the first is the lowest index.
    Refused(Vec<(usize, Option<Item>)>),
}

impl Commit {
    /// A refused write means the records changed since they were read: 409 `why`.
    pub(crate) fn or_conflict(self, why: &str) -> DexResult<Vec<LogEntry>> {
        match self {
            Self::Done(entries) => Ok(entries),
            Self::Refused(_) => Err(DexError::Conflict(why.to_owned())),
        }
    }

    /// For writes that carry no condition of their own: a refusal is a bug (`what` says
    /// which, in the log only).
    pub(crate) fn unconditional(self, what: &str) -> DexResult<Vec<LogEntry>> {
        match self {
            Self::Done(entries) => Ok(entries),
            Self::Refused(_) => Err(DexError::internal(what)),
        }
    }

    /// The lowest index whose condition failed, if the commit was refused.
    pub(crate) fn refused_index(&self) -> Option<usize> {
        match self {
            Self::Done(_) => None,
            Self::Refused(failed) => failed.first().map(|(i, _)| *i),
        }
    }
}

/// One query of a partition of the table or of a GSI, in key order (or reversed).
#[derive(Default)]
pub(crate) struct Query<'a> {
    pub index: Option<&'a str>,
    pub partition: &'a str,
    pub sort: Option<Sort>,
    pub newest_first: bool,
    pub consistent: bool,
    pub limit: Option<i32>,
    /// A filter expression with its own `#name` / `:value` placeholders.
    pub filter: Option<Filter>,
    /// Only these attributes (a projection expression of plain names), not whole items.
    pub projection: Option<&'a str>,
}

/// A condition on the sort key of the queried table or index.
pub(crate) enum Sort {
    BeginsWith(String),
    Between(String, String),
    /// Sort keys from this one on (inclusive).
    AtLeast(String),
}

#[derive(Default)]
pub(crate) struct Filter {
    pub conditions: Vec<String>,
    pub names: Vec<(String, String)>,
    pub values: Vec<(String, AttributeValue)>,
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

    /// A put of a new item (none at its key yet).
    pub(crate) fn put_new(&self, item: Item) -> TransactWriteItem {
        self.put(item, Some("attribute_not_exists(pk)"), &[], vec![])
    }

    /// A put replacing the item if it is still at `version` (`must_exist`: and exists).
    pub(crate) fn put_at_version(
        &self,
        item: Item,
        version: u64,
        must_exist: bool,
    ) -> TransactWriteItem {
        let condition = if must_exist {
            "attribute_exists(pk) AND #v = :v"
        } else {
            "#v = :v"
        };
        self.put(
            item,
            Some(condition),
            &[("#v", "version")],
            vec![(":v", n(version))],
        )
    }

    /// Writes `writes` and one chained log entry per event in a single transaction. Chain
    /// heads are read first and conditioned on, so concurrent appends to the same subject
    /// retry instead of forking the chain. A failed condition of one of `writes` is returned
    /// to the caller, who knows what it means.
    pub(crate) async fn commit(
        &self,
        writes: Vec<TransactWriteItem>,
        events: Vec<LogEvent>,
    ) -> DexResult<Commit> {
        self.commit_with_heads(writes, events, None).await
    }

    /// `commit`, when the caller read the chain heads of the events' subjects itself
    /// (consistently, in a batch it needed anyway: `heads_in`): the first attempt uses them
    /// instead of reading them again, and a retry reads them afresh.
    pub(crate) async fn commit_with_heads(
        &self,
        writes: Vec<TransactWriteItem>,
        events: Vec<LogEvent>,
        mut known_heads: Option<Heads>,
    ) -> DexResult<Commit> {
        let subjects: Vec<String> = {
            let mut s: Vec<String> = events.iter().map(|e| e.subject.clone()).collect();
            s.sort();
            s.dedup();
            s
        };
        if writes.len() + events.len() + subjects.len() > MAX_TRANSACTION_ITEMS {
            return Err(DexError::internal(
                "transaction over DynamoDB's 100-item limit",
            ));
        }
        let started = tokio::time::Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let heads = match known_heads.take() {
                Some(heads) => heads,
                None => self.read_heads(&subjects).await?,
            };
            let at = self.clock.now_millis();
            let (entries, next) = chain_events(
                &events,
                subjects.iter().map(String::as_str),
                |s| heads.get(s).cloned(),
                at,
            );
            let mut items = writes.clone();
            for entry in &entries {
                items.push(self.put(
                    entry.to_item(),
                    Some("attribute_not_exists(pk)"),
                    &[],
                    vec![],
                ));
            }
            for subject in &subjects {
                let (seq, hash) = &next[subject.as_str()];
                let mut head = keys::log_head(subject);
                head.extend([("seq".to_owned(), n(seq)), ("hash".to_owned(), s(hash))]);
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
                Ok(_) => return Ok(Commit::Done(entries)),
                Err(err) => match classify_cancellation(&err, writes.len()) {
                    Cancellation::Domain(failed) => return Ok(Commit::Refused(failed)),
                    Cancellation::Retry if started.elapsed() < COMMIT_RETRY_BUDGET => {
                        self.backoff(attempt).await
                    }
                    Cancellation::Retry => {
                        return Err(DexError::Throttled(
                            "too many concurrent changes to the same records; retry".into(),
                        ));
                    }
                    Cancellation::Fatal => return Err(sdk_error(err)),
                },
            }
        }
    }

    /// Full-jitter exponential backoff: 0..min(5ms * 2^attempt, 400ms).
    pub(crate) async fn backoff(&self, attempt: u32) {
        let cap = (5u64 << attempt.min(7)).min(400);
        tokio::time::sleep(Duration::from_millis(self.random.below(cap + 1))).await;
    }

    async fn read_heads(&self, subjects: &[String]) -> DexResult<Heads> {
        let keys = subjects
            .iter()
            .map(|subject| keys::log_head(subject))
            .collect();
        heads_in(&self.batch_get(keys, true).await?)
    }

    /// Does what the first request would otherwise pay for (the SDK's connector and TLS
    /// roots, the credentials, the connection to DynamoDB) with one eventually consistent
    /// GetItem of a key nothing writes (`keys::warm_up`). Started at init, never awaited there.
    pub async fn warm_up(&self) -> DexResult<()> {
        self.get_item(keys::warm_up(), false).await.map(|_| ())
    }

    /// One item by key.
    pub(crate) async fn get_item(&self, key: Item, consistent: bool) -> DexResult<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(consistent)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(out.item)
    }

    /// Reads the given keys in one BatchGetItem per 100 keys, DynamoDB's limit (re-asking for
    /// unprocessed keys). Callers keep their key counts small; this only keeps a larger one
    /// from becoming a 500.
    pub(crate) async fn batch_get(
        &self,
        keys: Vec<Item>,
        consistent: bool,
    ) -> DexResult<Vec<Item>> {
        let mut found = Vec::new();
        for chunk in keys.chunks(MAX_BATCH_GET_KEYS) {
            found.extend(self.batch_get_one(chunk.to_vec(), consistent).await?);
        }
        Ok(found)
    }

    async fn batch_get_one(&self, keys: Vec<Item>, consistent: bool) -> DexResult<Vec<Item>> {
        let mut found = Vec::new();
        if keys.is_empty() {
            return Ok(found);
        }
        let request = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(consistent)
            .build()
            .map_err(DexError::internal)?;
        let mut request = HashMap::from([(self.table.clone(), request)]);
        for attempt in 1..=8 {
            let out = self
                .client
                .batch_get_item()
                .set_request_items(Some(request))
                .send()
                .await
                .map_err(sdk_error)?;
            found.extend(
                out.responses()
                    .and_then(|r| r.get(&self.table))
                    .into_iter()
                    .flatten()
                    .cloned(),
            );
            match out.unprocessed_keys() {
                Some(rest) if !rest.is_empty() => {
                    request = rest.clone();
                    self.backoff(attempt).await;
                }
                _ => return Ok(found),
            }
        }
        Err(DexError::Throttled("DynamoDB kept keys unprocessed".into()))
    }

    /// One request of `query` from `start`: the items and DynamoDB's last evaluated key.
    pub(crate) async fn query(
        &self,
        query: &Query<'_>,
        start: Option<Item>,
    ) -> DexResult<(Vec<Item>, Option<Item>)> {
        let (pk, sk) = keys::key_names(query.index);
        let mut condition = format!("{pk} = :p");
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .set_index_name(query.index.map(str::to_owned))
            .expression_attribute_values(":p", s(query.partition))
            .set_limit(query.limit)
            .set_exclusive_start_key(start);
        match &query.sort {
            None => {}
            Some(Sort::BeginsWith(prefix)) => {
                condition.push_str(&format!(" AND begins_with({sk}, :prefix)"));
                request = request.expression_attribute_values(":prefix", s(prefix));
            }
            Some(Sort::AtLeast(from)) => {
                condition.push_str(&format!(" AND {sk} >= :from"));
                request = request.expression_attribute_values(":from", s(from));
            }
            Some(Sort::Between(lo, hi)) => {
                condition.push_str(&format!(" AND {sk} BETWEEN :lo AND :hi"));
                request = request
                    .expression_attribute_values(":lo", s(lo))
                    .expression_attribute_values(":hi", s(hi));
            }
        }
        if query.newest_first {
            request = request.scan_index_forward(false);
        }
        if query.consistent {
            request = request.consistent_read(true);
        }
        if let Some(attributes) = query.projection {
            request = request.projection_expression(attributes);
        }
        if let Some(filter) = &query.filter {
            request = request.filter_expression(filter.conditions.join(" AND "));
            for (k, v) in &filter.names {
                request = request.expression_attribute_names(k, v);
            }
            for (k, v) in &filter.values {
                request = request.expression_attribute_values(k, v.clone());
            }
        }
        let out = request
            .key_condition_expression(condition)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok((out.items.unwrap_or_default(), out.last_evaluated_key))
    }

    /// Every item of `query` (following pages).
    pub(crate) async fn query_all(&self, query: &Query<'_>) -> DexResult<Vec<Item>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let (mut found, last) = self.query(query, start).await?;
            items.append(&mut found);
            match last {
                Some(k) => start = Some(k),
                None => return Ok(items),
            }
        }
    }

    /// One page of `query` (its limit is the page's), each item decoded.
    pub(crate) async fn query_page<T: Codec>(
        &self,
        query: Query<'_>,
        page: &PageRequest,
    ) -> DexResult<Page<T>> {
        let start = key_from_cursor(KeyCursor::of(page)?.as_ref(), query.index, query.partition)?;
        let query = Query {
            limit: Some(page.limit),
            ..query
        };
        let (items, last) = self.query(&query, start).await?;
        Ok(Page {
            items: items.iter().map(T::from_item).collect::<DexResult<_>>()?,
            cursor: cursor_from_key(last.as_ref(), None),
        })
    }
}

#[derive(Debug)]
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
            let reasons: Vec<(usize, Option<&str>, Option<&Item>)> = cancel
                .cancellation_reasons()
                .iter()
                .enumerate()
                .map(|(index, reason)| (index, reason.code(), reason.item()))
                .collect();
            classify_reasons(&reasons, domain_writes)
        }
        TransactWriteItemsError::TransactionInProgressException(_)
        | TransactWriteItemsError::ProvisionedThroughputExceededException(_)
        | TransactWriteItemsError::ThrottlingException(_)
        | TransactWriteItemsError::RequestLimitExceeded(_) => Cancellation::Retry,
        _ => Cancellation::Fatal,
    }
}

/// What the cancellation reasons of a transaction mean (index, code, item as it was).
fn classify_reasons(
    reasons: &[(usize, Option<&str>, Option<&Item>)],
    domain_writes: usize,
) -> Cancellation {
    // A validation error (item too large, key too long, bad expression) fails again on every
    // attempt: a bug to log (inputs are validated before they reach a key), never a race.
    if reasons.iter().any(|(_, code, _)| {
        !matches!(
            code,
            None | Some(
                "None"
                    | "ConditionalCheckFailed"
                    | "TransactionConflict"
                    | "ThrottlingError"
                    | "ProvisionedThroughputExceeded"
                    | "RequestLimitExceeded"
            )
        )
    }) {
        return Cancellation::Fatal;
    }
    let failed: Vec<(usize, Option<Item>)> = reasons
        .iter()
        .filter(|(index, code, _)| {
            *code == Some("ConditionalCheckFailed") && *index < domain_writes
        })
        .map(|(index, _, item)| (*index, item.cloned()))
        .collect();
    if !failed.is_empty() {
        return Cancellation::Domain(failed);
    }
    // A chain head moved, or another transaction touched the same items: retry.
    Cancellation::Retry
}

/// Maps an SDK failure: DynamoDB unreachable or failing is a 503, throttling a 429,
/// everything else an internal error (logged, never shown).
pub(crate) fn sdk_error<E>(err: SdkError<E, HttpResponse>) -> DexError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if let Some(down) = crate::unavailable("DynamoDB", &err) {
        return down;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_races_are_retried() {
        let retry = classify_reasons(
            &[
                (0, Some("None"), None),
                (1, Some("ConditionalCheckFailed"), None),
            ],
            1,
        );
        assert!(
            matches!(retry, Cancellation::Retry),
            "head moved: {retry:?}"
        );
        let conflict = classify_reasons(&[(0, Some("TransactionConflict"), None)], 1);
        assert!(matches!(conflict, Cancellation::Retry));
        let domain = classify_reasons(
            &[
                (0, Some("ConditionalCheckFailed"), None),
                (1, Some("None"), None),
            ],
            1,
        );
        assert!(matches!(domain, Cancellation::Domain(ref f) if f[0].0 == 0));
        for code in [
            "ValidationError",
            "ItemCollectionSizeLimitExceeded",
            "SomethingNew",
        ] {
            let fatal = classify_reasons(&[(0, Some("None"), None), (1, Some(code), None)], 1);
            assert!(matches!(fatal, Cancellation::Fatal), "{code}: {fatal:?}");
        }
    }
}
