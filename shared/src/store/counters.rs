//! Sharded counters: a hot figure (Data In, HATs, ...) is spread over `SHARDS` items so that
//! thousands of concurrent writers do not queue on one item; reading it is one Query over
//! its shards, whatever the number of writers.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{TransactWriteItem, Update};

use super::dynamo::{DynamoStore, get_n, n, s, sdk_error};
use crate::error::DexResult;

pub const SHARDS: u64 = 16;

impl DynamoStore {
    /// A transaction action adding `by` to a random shard of counter `name`.
    pub(crate) fn counter_add(&self, name: &str, by: i64) -> TransactWriteItem {
        let mut b = [0u8; 8];
        self.random.fill(&mut b);
        let shard = u64::from_le_bytes(b) % SHARDS;
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(HashMap::from([
                ("pk".to_owned(), s(format!("COUNTER#{name}"))),
                ("sk".to_owned(), s(format!("SHARD#{shard:02}"))),
            ])))
            .update_expression("ADD #n :by SET #t = :now")
            .expression_attribute_names("#n", "n")
            .expression_attribute_names("#t", "updatedAt")
            .expression_attribute_values(":by", n(by))
            .expression_attribute_values(":now", n(self.clock.now_millis()))
            .build()
            .expect("table, key and expression set");
        TransactWriteItem::builder().update(update).build()
    }

    /// The counters' values and last update times (epoch ms), one Query per counter.
    pub async fn read_counter(&self, name: &str) -> DexResult<(i64, i64)> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :p")
            .expression_attribute_values(":p", s(format!("COUNTER#{name}")))
            .send()
            .await
            .map_err(sdk_error)?;
        let mut total = 0;
        let mut updated = 0;
        for item in out.items() {
            total += get_n::<i64>(item, "n").unwrap_or(0);
            updated = updated.max(get_n::<i64>(item, "updatedAt").unwrap_or(0));
        }
        Ok((total, updated))
    }
}
