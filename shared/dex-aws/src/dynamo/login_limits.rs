//! `LoginLimitStore` on the table: one item per counter, `LOGINFAIL#<key>` / `LOGINFAIL`,
//! attributes `failures`, `lastFailure` (epoch ms) and the TTL attribute `expiresAt` (epoch
//! seconds). A failure is one conditional UpdateItem; only a counter that expired but that
//! TTL has not deleted yet takes a second write (a conditional Put starting it again). A
//! success sets `failures` to 0.

use super::item::{get_n, get_s, n};
use super::keys::{LOGIN_FAILURES, login_failures as key};
use super::{DynamoStore, sdk_error};
use dex::accounts::{FailureCount, LoginLimitStore};
use dex::error::{DexError, DexResult};

impl LoginLimitStore for DynamoStore {
    async fn failure_counts(&self, keys: &[String]) -> DexResult<Vec<(String, FailureCount)>> {
        let items = self
            .batch_get(keys.iter().map(|k| key(k)).collect(), true)
            .await?;
        let prefix = format!("{LOGIN_FAILURES}#");
        items
            .iter()
            .map(|item| {
                let pk = get_s(item, "pk")?;
                let name = pk.strip_prefix(&prefix).unwrap_or(&pk).to_owned();
                Ok((
                    name,
                    FailureCount {
                        failures: get_n(item, "failures")?,
                        last_failure_ms: get_n(item, "lastFailure")?,
                        expires_at: get_n(item, "expiresAt")?,
                    },
                ))
            })
            .collect()
    }

    async fn count_failure(&self, name: &str, now_ms: i64, expires_at: i64) -> DexResult<()> {
        let now_secs = now_ms.div_euclid(1000);
        for _ in 0..3 {
            let counted = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(name)))
                .update_expression("SET #f = if_not_exists(#f, :zero) + :one, #l = :now, #e = :exp")
                .condition_expression("attribute_not_exists(#e) OR #e > :nows")
                .expression_attribute_names("#f", "failures")
                .expression_attribute_names("#l", "lastFailure")
                .expression_attribute_names("#e", "expiresAt")
                .expression_attribute_values(":zero", n(0))
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":now", n(now_ms))
                .expression_attribute_values(":exp", n(expires_at))
                .expression_attribute_values(":nows", n(now_secs))
                .send()
                .await;
            match counted {
                Ok(_) => return Ok(()),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
                Err(e) => return Err(sdk_error(e)),
            }
            // Expired, not yet deleted: start again, unless another failure just did.
            let mut item = key(name);
            item.insert("failures".into(), n(1));
            item.insert("lastFailure".into(), n(now_ms));
            item.insert("expiresAt".into(), n(expires_at));
            let restarted = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("#e <= :nows")
                .expression_attribute_names("#e", "expiresAt")
                .expression_attribute_values(":nows", n(now_secs))
                .send()
                .await;
            match restarted {
                Ok(_) => return Ok(()),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
                Err(e) => return Err(sdk_error(e)),
            }
        }
        Err(DexError::Throttled(
            "the failed-login counter kept changing".into(),
        ))
    }

    async fn clear_failures(&self, name: &str) -> DexResult<()> {
        // An UpdateItem, not a DeleteItem: the writer policy grants no deletes. A counter at
        // zero locks nothing and is forgotten by TTL as any other.
        let cleared = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(name)))
            .update_expression("SET #f = :zero")
            .condition_expression("attribute_exists(#f)")
            .expression_attribute_names("#f", "failures")
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        match cleared {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(sdk_error(e)),
        }
    }
}
