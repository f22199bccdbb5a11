//! `LoginLimitStore` in memory, as the adapter: one item per counter, a failure on an
//! expired (not yet deleted) counter starts it again, expired counters are still returned
//! until "TTL" removes them (never here: the rule must ignore them).

use super::MemoryStore;
use crate::accounts::{FailureCount, LoginLimitStore};
use crate::error::DexResult;

impl LoginLimitStore for MemoryStore {
    async fn failure_counts(&self, keys: &[String]) -> DexResult<Vec<(String, FailureCount)>> {
        tokio::task::yield_now().await;
        let state = self.lock();
        Ok(keys
            .iter()
            .filter_map(|k| state.login_failures.get(k).map(|c| (k.clone(), *c)))
            .collect())
    }

    async fn count_failure(&self, key: &str, now_ms: i64, expires_at: i64) -> DexResult<()> {
        tokio::task::yield_now().await;
        let mut state = self.lock();
        let failures = match state.login_failures.get(key) {
            Some(c) if c.expires_at.saturating_mul(1000) > now_ms => c.failures.saturating_add(1),
            _ => 1,
        };
        state.login_failures.insert(
            key.to_owned(),
            FailureCount {
                failures,
                last_failure_ms: now_ms,
                expires_at,
            },
        );
        Ok(())
    }

    async fn clear_failures(&self, key: &str) -> DexResult<()> {
        tokio::task::yield_now().await;
        if let Some(count) = self.lock().login_failures.get_mut(key) {
            count.failures = 0;
        }
        Ok(())
    }
}
