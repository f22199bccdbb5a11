//! Sharded counters: a hot figure (Data In, HATs, ...) is spread over `SHARDS` items with
//! distinct partition keys, so thousands of concurrent writers neither queue on one item nor
//! on one partition. Reading every figure at once is a single BatchGetItem.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{TransactWriteItem, Update};

use super::DynamoStore;
use super::item::{get_n, get_s, n, s};
use super::keys::counter_shard as shard_key;
use dex::error::DexResult;

pub const SHARDS: u64 = 16;

impl DynamoStore {
    /// A transaction action adding `by` to a random shard of counter `name`.
    pub(crate) fn counter_add(&self, name: &str, by: i64) -> TransactWriteItem {
        let shard = self.random.below(SHARDS);
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(shard_key(name, shard)))
            .update_expression("ADD #n :by SET #name = :name, #t = :now")
            .expression_attribute_names("#n", "n")
            .expression_attribute_names("#name", "counter")
            .expression_attribute_names("#t", "updatedAt")
            .expression_attribute_values(":by", n(by))
            .expression_attribute_values(":name", s(name))
            .expression_attribute_values(":now", n(self.clock.now_millis()))
            .build()
            .expect("table, key and expression set");
        TransactWriteItem::builder().update(update).build()
    }

    /// Each counter's value and last update (epoch ms; 0 when never written), in one
    /// BatchGetItem (at most 6 counters: 16 shards each, 100 keys per call).
    pub async fn read_counters(&self, names: &[&str]) -> DexResult<HashMap<String, (i64, i64)>> {
        debug_assert!(names.len() as u64 * SHARDS <= 100);
        let keys = names
            .iter()
            .flat_map(|name| (0..SHARDS).map(move |shard| shard_key(name, shard)))
            .collect();
        let mut out: HashMap<String, (i64, i64)> =
            names.iter().map(|n| (n.to_string(), (0, 0))).collect();
        // Consistent: a snapshot built after a commit holds it (stats::snapshot).
        for item in self.batch_get(keys, true).await? {
            let Ok(name) = get_s(&item, "counter") else {
                continue;
            };
            let entry = out.entry(name).or_default();
            entry.0 += get_n::<i64>(&item, "n").unwrap_or(0);
            entry.1 = entry.1.max(get_n::<i64>(&item, "updatedAt").unwrap_or(0));
        }
        Ok(out)
    }
}
