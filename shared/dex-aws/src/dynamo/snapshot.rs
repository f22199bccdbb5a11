//! The public read models' snapshots (`stats::snapshot`): item `SNAPSHOT#<model>` /
//! `PART#<i>` for i < `SNAPSHOT_PARTS`; part 0 holds `builtAt`, `parts` and the refresh lease
//! `leaseUntil`, every part a slice `body` of the answer. Written in one TransactWriteItems
//! and read in one TransactGetItems, so a reader never mixes two snapshots.

use std::sync::Arc;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{Delete, Get, Put, TransactGetItem, TransactWriteItem};

use super::item::{get_n, n};
use super::{AttributeValue, DynamoStore, Item, sdk_error};
use dex::error::{DexError, DexResult};
use dex::stats::snapshot::{
    MAX_SNAPSHOT_BYTES, PART_BYTES, SNAPSHOT_PARTS, Snapshot, SnapshotStore,
};

use super::keys::snapshot_part as part_key;

fn body_of(item: &Item) -> &[u8] {
    match item.get("body") {
        Some(AttributeValue::B(blob)) => blob.as_ref(),
        _ => &[],
    }
}

impl SnapshotStore for DynamoStore {
    async fn read_snapshot(&self, model: &str) -> DexResult<Option<Snapshot>> {
        let gets = (0..SNAPSHOT_PARTS)
            .map(|part| {
                let get = Get::builder()
                    .table_name(&self.table)
                    .set_key(Some(part_key(model, part)))
                    .build()
                    .map_err(DexError::internal)?;
                Ok(TransactGetItem::builder().get(get).build())
            })
            .collect::<DexResult<Vec<_>>>()?;
        // A read racing the snapshot's write is cancelled: ask again shortly.
        let mut attempt = 0;
        let out = loop {
            attempt += 1;
            match self
                .client
                .transact_get_items()
                .set_transact_items(Some(gets.clone()))
                .send()
                .await
            {
                Ok(out) => break out,
                Err(e)
                    if attempt < 4
                        && e.as_service_error()
                            .is_some_and(|e| e.is_transaction_canceled_exception()) =>
                {
                    self.backoff(attempt).await;
                }
                Err(e) => return Err(sdk_error(e)),
            }
        };
        let items: Vec<Option<Item>> = out
            .responses
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.item)
            .collect();
        let Some(Some(head)) = items.first() else {
            return Ok(None);
        };
        let built_at = get_n::<i64>(head, "builtAt").unwrap_or(0);
        let lease_until = get_n::<i64>(head, "leaseUntil").unwrap_or(0);
        let parts = get_n::<usize>(head, "parts").unwrap_or(0);
        let mut body = Vec::new();
        for part in 0..parts.min(SNAPSHOT_PARTS) {
            let Some(Some(item)) = items.get(part) else {
                return Err(DexError::internal(format!(
                    "snapshot {model} lacks part {part}"
                )));
            };
            body.extend_from_slice(body_of(item));
        }
        Ok(Some(Snapshot {
            body: Arc::new(body),
            built_at: if parts == 0 { 0 } else { built_at },
            lease_until,
        }))
    }

    async fn take_snapshot_lease(&self, model: &str, now: i64, until: i64) -> DexResult<bool> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(part_key(model, 0)))
            .update_expression("SET #l = :until")
            .condition_expression("attribute_not_exists(#l) OR #l <= :now")
            .expression_attribute_names("#l", "leaseUntil")
            .expression_attribute_values(":until", n(until))
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(sdk_error(e)),
        }
    }

    async fn save_snapshot(&self, model: &str, body: &[u8], built_at: i64) -> DexResult<bool> {
        if body.len() > MAX_SNAPSHOT_BYTES {
            return Ok(false);
        }
        let chunks: Vec<&[u8]> = if body.is_empty() {
            vec![body]
        } else {
            body.chunks(PART_BYTES).collect()
        };
        let mut writes = Vec::with_capacity(SNAPSHOT_PARTS);
        for part in 0..SNAPSHOT_PARTS {
            let write = match chunks.get(part) {
                Some(chunk) => {
                    let mut item = part_key(model, part);
                    item.insert("builtAt".to_owned(), n(built_at));
                    item.insert(
                        "body".to_owned(),
                        AttributeValue::B(Blob::new(chunk.to_vec())),
                    );
                    if part == 0 {
                        item.insert("parts".to_owned(), n(chunks.len()));
                    }
                    let put = Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(item))
                        .build()
                        .map_err(DexError::internal)?;
                    TransactWriteItem::builder().put(put).build()
                }
                None => {
                    let delete = Delete::builder()
                        .table_name(&self.table)
                        .set_key(Some(part_key(model, part)))
                        .build()
                        .map_err(DexError::internal)?;
                    TransactWriteItem::builder().delete(delete).build()
                }
            };
            writes.push(write);
        }
        self.client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(true)
    }
}
