//! Statistics on DynamoDB.
//! - `SEEN#<hat>#<hour>` / `<bucket>`: string set `h` of the markers of counted items (TTL).
//! - `COUNTER#data-in` etc. / `SHARD#nn`: sharded figures (see `counters`).
//! - `FIELDS#<shard>` / `<namespace>/<endpoint>`: one attribute `f:<field path>` per field.
//! - `DESC` / `<json [namespace, endpoint?, field?]>`: descriptions.
//! - `HAT#<hat>` / `DEBIT#<key>#<time>#<operation>`: data debit events; the latest is the state.
//!
//! A chunk of a report is one transaction: its duplicate markers (conditioned on not being
//! there yet), its counter and field increments, its data debit events and its log entry. So a
//! marker exists exactly when the item was counted, whatever fails or races. Which chunks to
//! commit, and what a refused one means, is the statistics domain's (`stats::ingest`).

use std::collections::{BTreeMap, HashMap, HashSet};

use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};

use super::{CommitFailure, DynamoStore, Item, get_n, get_s, n, s, sdk_error};
use crate::error::{DexError, DexResult};
use crate::stats::ingest::ChunkPlan;
use crate::stats::report::DebitEvent;
use crate::stats::tree::{DescriptionTarget, FieldCounts};
use crate::stats::{ChunkCommit, DATA_IN, DATA_OUT, DebitState, StatsStore};
use crate::txlog::LogEvent;

/// Field counters are spread over this many partitions.
pub const FIELD_SHARDS: u64 = 16;
/// Markers are kept this long after their hour: far beyond the HATs' resend window (10 × 30 min).
const MARKER_TTL_SECS: i64 = 30 * 24 * 3600;

fn key(pk: String, sk: String) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

fn update(
    store: &DynamoStore,
    key: Item,
    expression: String,
) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
    Update::builder()
        .table_name(&store.table)
        .set_key(Some(key))
        .update_expression(expression)
}

fn wrap(update: aws_sdk_dynamodb::types::builders::UpdateBuilder) -> TransactWriteItem {
    TransactWriteItem::builder()
        .update(update.build().expect("table, key and expression set"))
        .build()
}

impl DynamoStore {
    /// The transaction actions of one chunk; the first `plan.seen.len()` are the markers.
    fn chunk_writes(&self, hat: &str, plan: &ChunkPlan) -> Vec<TransactWriteItem> {
        let now = self.clock.now_millis();
        let mut writes = Vec::new();
        for ((hour, bucket), markers) in &plan.seen {
            let conditions: Vec<String> = (0..markers.len())
                .map(|i| format!("NOT contains(#h, :m{i})"))
                .collect();
            let expires =
                chrono::NaiveDateTime::parse_from_str(&format!("{hour}0000"), "%Y%m%d%H%M%S")
                    .map(|t| t.and_utc().timestamp())
                    .unwrap_or(now / 1000)
                    .max(now / 1000)
                    + MARKER_TTL_SECS;
            let mut u = update(
                self,
                key(format!("SEEN#{hat}#{hour}"), format!("{bucket}")),
                "ADD #h :new SET #x = :x".into(),
            )
            .condition_expression(conditions.join(" AND "))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .expression_attribute_names("#h", "h")
            .expression_attribute_names("#x", super::schema::TTL_ATTRIBUTE)
            .expression_attribute_values(":new", AttributeValue::Ss(markers.clone()))
            .expression_attribute_values(":x", n(expires));
            for (i, m) in markers.iter().enumerate() {
                u = u.expression_attribute_values(format!(":m{i}"), s(m));
            }
            writes.push(wrap(u));
        }
        if plan.data_in > 0 {
            writes.push(self.counter_add(DATA_IN, plan.data_in));
        }
        if plan.data_out > 0 {
            writes.push(self.counter_add(DATA_OUT, plan.data_out));
        }
        let shard = self.random.below(FIELD_SHARDS);
        for ((namespace, endpoint), fields) in &plan.fields {
            let adds: Vec<String> = (0..fields.len()).map(|i| format!("#f{i} :f{i}")).collect();
            let mut u = update(
                self,
                key(
                    format!("FIELDS#{shard:02}"),
                    format!("{namespace}/{endpoint}"),
                ),
                format!("ADD {} SET #ns = :ns, #ep = :ep, #t = :t", adds.join(", ")),
            )
            .expression_attribute_names("#ns", "namespace")
            .expression_attribute_names("#ep", "endpoint")
            .expression_attribute_names("#t", "updatedAt")
            .expression_attribute_values(":ns", s(namespace))
            .expression_attribute_values(":ep", s(endpoint))
            .expression_attribute_values(":t", n(now));
            for (i, (field, count)) in fields.iter().enumerate() {
                u = u
                    .expression_attribute_names(format!("#f{i}"), format!("f:{field}"))
                    .expression_attribute_values(format!(":f{i}"), n(count));
            }
            writes.push(wrap(u));
        }
        for (time, event) in &plan.debits {
            let mut item = key(
                format!("HAT#{hat}"),
                format!(
                    "DEBIT#{}#{time:013}#{}",
                    event.data_debit_key, event.operation
                ),
            );
            item.insert(
                "event".to_owned(),
                s(serde_json::to_string(event).expect("serialisable")),
            );
            item.insert("time".to_owned(), n(time));
            writes.push(self.put(item, None, &[], vec![]));
        }
        writes
    }

    /// Which of `plan`'s markers the failed buckets already hold.
    async fn already_counted(
        &self,
        hat: &str,
        plan: &ChunkPlan,
        failed: &[(usize, Option<Item>)],
    ) -> DexResult<HashSet<String>> {
        let buckets: Vec<&(String, u8)> = plan.seen.keys().collect();
        let mut present = HashSet::new();
        for (index, item) in failed {
            let Some((hour, bucket)) = buckets.get(*index) else {
                return Err(DexError::internal(
                    "a non-marker condition failed in stats ingestion",
                ));
            };
            let item = match item {
                Some(item) => item.clone(),
                None => self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .set_key(Some(key(format!("SEEN#{hat}#{hour}"), format!("{bucket}"))))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(sdk_error)?
                    .item
                    .unwrap_or_default(),
            };
            if let Some(AttributeValue::Ss(set)) = item.get("h") {
                present.extend(set.iter().cloned());
            }
        }
        Ok(present)
    }
}

impl StatsStore for DynamoStore {
    async fn commit_chunk(
        &self,
        hat: &str,
        plan: &ChunkPlan,
        event: LogEvent,
    ) -> DexResult<ChunkCommit> {
        match self.commit(self.chunk_writes(hat, plan), vec![event]).await {
            Ok(_) => Ok(ChunkCommit::Committed),
            Err(CommitFailure::Condition(failed)) => Ok(ChunkCommit::AlreadyCounted(
                self.already_counted(hat, plan, &failed).await?,
            )),
            Err(CommitFailure::Error(e)) => Err(e),
        }
    }

    async fn figures(&self, names: &[&str]) -> DexResult<HashMap<String, (i64, i64)>> {
        self.read_counters(names).await
    }

    async fn field_counts(&self) -> DexResult<(FieldCounts, i64)> {
        let queries =
            (0..FIELD_SHARDS).map(|shard| self.query_all(None, format!("FIELDS#{shard:02}")));
        let mut counts = FieldCounts::new();
        let mut updated = 0;
        for items in futures_util::future::try_join_all(queries).await? {
            for item in items {
                let namespace = get_s(&item, "namespace")?;
                let endpoint = get_s(&item, "endpoint")?;
                updated = updated.max(get_n::<i64>(&item, "updatedAt").unwrap_or(0));
                for (name, value) in &item {
                    if let (Some(field), AttributeValue::N(v)) = (name.strip_prefix("f:"), value) {
                        *counts
                            .entry((namespace.clone(), endpoint.clone(), field.to_owned()))
                            .or_default() += v.parse::<i64>().unwrap_or(0);
                    }
                }
            }
        }
        Ok((counts, updated))
    }

    async fn descriptions(&self) -> DexResult<BTreeMap<DescriptionTarget, String>> {
        let mut out = BTreeMap::new();
        for item in self.query_all(None, "DESC".to_owned()).await? {
            let target: DescriptionTarget =
                serde_json::from_str(&get_s(&item, "target")?).map_err(DexError::internal)?;
            out.insert(target, get_s(&item, "description")?);
        }
        Ok(out)
    }

    async fn save_descriptions(
        &self,
        descriptions: &[(DescriptionTarget, String)],
        event: LogEvent,
    ) -> DexResult<()> {
        let writes = descriptions
            .iter()
            .map(|(target, description)| {
                let target_text = serde_json::to_string(target).expect("serialisable");
                let mut item = key("DESC".to_owned(), target_text.clone());
                item.insert("target".to_owned(), s(target_text));
                item.insert("description".to_owned(), s(description));
                self.put(item, None, &[], vec![])
            })
            .collect();
        self.commit(writes, vec![event])
            .await
            .map(|_| ())
            .map_err(|f| match f {
                CommitFailure::Error(e) => e,
                CommitFailure::Condition(_) => {
                    DexError::internal("descriptions have no conditions")
                }
            })
    }

    async fn debit_state(&self, hat: &str, data_debit_key: &str) -> DexResult<Option<DebitState>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :p AND begins_with(sk, :d)")
            .expression_attribute_values(":p", s(format!("HAT#{hat}")))
            .expression_attribute_values(":d", s(format!("DEBIT#{data_debit_key}#")))
            .scan_index_forward(false)
            .limit(1)
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        match out.items().first() {
            None => Ok(None),
            Some(item) => {
                let event: DebitEvent =
                    serde_json::from_str(&get_s(item, "event")?).map_err(DexError::internal)?;
                Ok(Some(DebitState {
                    event,
                    time: get_n(item, "time")?,
                }))
            }
        }
    }
}

impl DynamoStore {
    /// Every item of a partition of the table or of a GSI (following pages).
    pub(crate) async fn query_all(
        &self,
        index: Option<&str>,
        partition: String,
    ) -> DexResult<Vec<Item>> {
        let mut items = Vec::new();
        let mut start = None;
        let partition_key = index.map_or("pk".to_owned(), |i| format!("{i}pk"));
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(index.map(str::to_owned))
                .key_condition_expression(format!("{partition_key} = :p"))
                .expression_attribute_values(":p", s(&partition))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(sdk_error)?;
            items.extend(out.items().iter().cloned());
            match out.last_evaluated_key() {
                Some(k) => start = Some(k.clone()),
                None => return Ok(items),
            }
        }
    }
}
