//! Statistics on DynamoDB (key shapes in `keys`; docs/data-model.md §4): the seen buckets hold
//! a string set `h` of the markers of counted items (TTL), at most `MAX_MARKERS_PER_BUCKET`;
//! the field-count items one attribute `f:<field path>` per field and the string set `n` of
//! those names, at most `MAX_FIELDS_PER_SHARD_ITEM`; the latest data debit event of a debit
//! is its state.
//!
//! A chunk of a report is one transaction: its duplicate markers (conditioned on not being
//! there yet), its counter and field increments, its data debit events and its log entry. So a
//! marker exists exactly when the item was counted, whatever fails or races. Which chunks to
//! commit, and what a refused one means, is the statistics domain's (`stats::ingest`).

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};

use super::item::{get_n, get_s, n, s};
use super::{Commit, DynamoStore, Item, Query, Sort, keys};
use dex::error::{DexError, DexResult};
use dex::stats::ingest::{ChunkPlan, OTHER_FIELDS, field_shard};
use dex::stats::limits::{FIELD_SHARDS, MAX_FIELDS_PER_SHARD_ITEM, MAX_MARKERS_PER_BUCKET};
use dex::stats::report::DebitEvent;
use dex::stats::tree::{DescriptionTarget, FieldCounts};
use dex::stats::{ChunkAction, ChunkCommit, DATA_IN, DATA_OUT, DebitState, Refusal, StatsStore};
use dex::txlog::LogEvent;

/// Markers are kept this long after their hour: far beyond the HATs' resend window (10 × 30 min).
const MARKER_TTL_SECS: i64 = 30 * 24 * 3600;

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
    /// The transaction actions of one chunk, and what each one is.
    fn chunk_writes(
        &self,
        hat: &str,
        plan: &ChunkPlan,
    ) -> (Vec<TransactWriteItem>, Vec<ChunkAction>) {
        let now = self.clock.now_millis();
        let mut writes = Vec::new();
        let mut targets = Vec::new();
        for ((hour, bucket), markers) in &plan.seen {
            // The room clause keeps the bucket under MAX_MARKERS_PER_BUCKET (400 KB).
            let mut conditions = vec!["(attribute_not_exists(#h) OR size(#h) <= :room)".to_owned()];
            conditions.extend((0..markers.len()).map(|i| format!("NOT contains(#h, :m{i})")));
            let expires =
                chrono::NaiveDateTime::parse_from_str(&format!("{hour}0000"), "%Y%m%d%H%M%S")
                    .map(|t| t.and_utc().timestamp())
                    .unwrap_or(now / 1000)
                    .max(now / 1000)
                    + MARKER_TTL_SECS;
            let mut u = update(
                self,
                keys::seen(hat, hour, *bucket),
                "ADD #h :new SET #x = :x".into(),
            )
            .condition_expression(conditions.join(" AND "))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .expression_attribute_names("#h", "h")
            .expression_attribute_names("#x", super::schema::TTL_ATTRIBUTE)
            .expression_attribute_values(":new", AttributeValue::Ss(markers.clone()))
            .expression_attribute_values(":x", n(expires))
            .expression_attribute_values(
                ":room",
                n(MAX_MARKERS_PER_BUCKET.saturating_sub(markers.len())),
            );
            for (i, m) in markers.iter().enumerate() {
                u = u.expression_attribute_values(format!(":m{i}"), s(m));
            }
            writes.push(wrap(u));
            targets.push(ChunkAction::Bucket(hour.clone(), *bucket));
        }
        if plan.data_in > 0 {
            writes.push(self.counter_add(DATA_IN, plan.data_in));
            targets.push(ChunkAction::Other);
        }
        if plan.data_out > 0 {
            writes.push(self.counter_add(DATA_OUT, plan.data_out));
            targets.push(ChunkAction::Other);
        }
        let shard = field_shard(hat);
        for ((namespace, endpoint), fields) in &plan.fields {
            let adds: Vec<String> = (0..fields.len()).map(|i| format!("#f{i} :f{i}")).collect();
            let names: Vec<String> = fields
                .keys()
                .filter(|f| *f != OTHER_FIELDS)
                .cloned()
                .collect();
            let mut expression = format!("ADD {}", adds.join(", "));
            if !names.is_empty() {
                expression.push_str(", #n :names");
            }
            expression.push_str(" SET #ns = :ns, #ep = :ep, #t = :t");
            let mut u = update(self, keys::fields(shard, namespace, endpoint), expression)
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
            if !names.is_empty() {
                // New names only while the item has room; known names always.
                let known: Vec<String> = (0..names.len())
                    .map(|i| format!("contains(#n, :n{i})"))
                    .collect();
                u = u
                    .condition_expression(format!(
                        "attribute_not_exists(#n) OR size(#n) <= :room OR ({})",
                        known.join(" AND ")
                    ))
                    .expression_attribute_names("#n", "n")
                    .expression_attribute_values(":names", AttributeValue::Ss(names.clone()))
                    .expression_attribute_values(
                        ":room",
                        n(MAX_FIELDS_PER_SHARD_ITEM.saturating_sub(names.len())),
                    );
                for (i, name) in names.iter().enumerate() {
                    u = u.expression_attribute_values(format!(":n{i}"), s(name));
                }
            }
            writes.push(wrap(u));
            targets.push(ChunkAction::Endpoint(namespace.clone(), endpoint.clone()));
        }
        for (time, event) in &plan.debits {
            let mut item = keys::debit(hat, &event.data_debit_key, *time, &event.operation);
            item.insert(
                "event".to_owned(),
                s(serde_json::to_string(event).expect("serialisable")),
            );
            item.insert("time".to_owned(), n(time));
            writes.push(self.put(item, None, &[], vec![]));
            targets.push(ChunkAction::Other);
        }
        (writes, targets)
    }

    /// What the refused actions tell: the markers and sizes of refused buckets (from the
    /// returned old item, or read again), and the endpoints whose field item is full.
    async fn refusal(
        &self,
        hat: &str,
        targets: &[ChunkAction],
        failed: &[(usize, Option<Item>)],
    ) -> DexResult<Refusal> {
        let mut refusal = Refusal::default();
        for (index, item) in failed {
            let action = targets.get(*index);
            let item = match (action, item) {
                (Some(ChunkAction::Bucket(hour, bucket)), None) => self
                    .get_item(keys::seen(hat, hour, *bucket), true)
                    .await?
                    .unwrap_or_default(),
                (_, item) => item.clone().unwrap_or_default(),
            };
            refusal.record(action, || match item.get("h") {
                Some(AttributeValue::Ss(set)) => set.clone(),
                _ => Vec::new(),
            })?;
        }
        Ok(refusal)
    }
}

impl StatsStore for DynamoStore {
    async fn commit_chunk(
        &self,
        hat: &str,
        plan: &ChunkPlan,
        event: LogEvent,
    ) -> DexResult<ChunkCommit> {
        let (writes, targets) = self.chunk_writes(hat, plan);
        match self.commit(writes, vec![event]).await? {
            Commit::Done(_) => Ok(ChunkCommit::Committed),
            Commit::Refused(failed) => Ok(ChunkCommit::Refused(
                self.refusal(hat, &targets, &failed).await?,
            )),
        }
    }

    async fn figures(&self, names: &[&str]) -> DexResult<HashMap<String, (i64, i64)>> {
        self.read_counters(names).await
    }

    async fn field_counts(&self) -> DexResult<(FieldCounts, i64)> {
        let partitions: Vec<String> = (0..FIELD_SHARDS).map(keys::fields_partition).collect();
        let queries = partitions.iter().map(|partition| async move {
            // Consistent: a snapshot built after a commit holds it (stats::snapshot).
            let query = Query {
                partition,
                consistent: true,
                ..Query::default()
            };
            self.query_all(&query).await
        });
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
        let query = Query {
            partition: keys::DESCRIPTIONS,
            consistent: true,
            ..Query::default()
        };
        for item in self.query_all(&query).await? {
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
                let mut item = keys::description(&target_text);
                item.insert("target".to_owned(), s(target_text));
                item.insert("description".to_owned(), s(description));
                self.put(item, None, &[], vec![])
            })
            .collect();
        self.commit(writes, vec![event])
            .await?
            .unconditional("descriptions have no conditions")?;
        Ok(())
    }

    async fn debit_state(&self, hat: &str, data_debit_key: &str) -> DexResult<Option<DebitState>> {
        let partition = keys::hat_partition(hat);
        let query = Query {
            partition: &partition,
            sort: Some(Sort::BeginsWith(keys::debit_prefix(data_debit_key))),
            newest_first: true,
            consistent: true,
            limit: Some(1),
            ..Query::default()
        };
        let (items, _) = self.query(&query, None).await?;
        match items.first() {
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
