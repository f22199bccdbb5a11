//! Public reads from a materialised snapshot (issue 8 §2): building `/stats` or
//! `/stats/available-data` costs 17 DynamoDB requests, so the answer body is stored as a
//! snapshot item per read model and shared by every container.
//!
//! With `fresh` = `DEX_STATS_CACHE_SECS`:
//! - a container answers from its own copy while that snapshot is younger than `fresh`
//!   (0 requests);
//! - otherwise it reads the snapshot (1 request); a fresh one is served;
//! - a stale one is refreshed by the caller that wins a conditional lease write (held for
//!   `fresh`): at most one refresh per `fresh` ecosystem-wide; that caller pays the build
//!   (17 reads + the lease + the write). While the lease is held by someone else, others
//!   serve the stale snapshot if it is younger than `2 × fresh`, and build without saving if
//!   it is older (only right after a long idle time), so no answer is older than the lag;
//! - the lag, after which every figure is exact, is therefore at most `2 × fresh`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::DexResult;

/// The read models with a snapshot.
pub const FIGURES: &str = "figures";
pub const AVAILABLE_DATA: &str = "available-data";

/// A snapshot is stored in at most this many items of at most `PART_BYTES` each (DynamoDB's
/// item limit is 400 KB), read together in one TransactGetItems.
pub const SNAPSHOT_PARTS: usize = 4;
pub const PART_BYTES: usize = 350_000;
pub const MAX_SNAPSHOT_BYTES: usize = SNAPSHOT_PARTS * PART_BYTES;

/// A stored snapshot: the answer body and when its build started (epoch ms).
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub body: Arc<Vec<u8>>,
    pub built_at: i64,
    /// Until when (epoch ms) a refresher holds the lease; 0 when none.
    pub lease_until: i64,
}

pub trait SnapshotStore: Send + Sync {
    /// The snapshot of `model` (one request).
    fn read_snapshot(
        &self,
        model: &str,
    ) -> impl Future<Output = DexResult<Option<Snapshot>>> + Send;
    /// Takes the refresh lease of `model` until `until` when no lease is held at `now`
    /// (one conditional write). `false` when another caller holds it.
    fn take_snapshot_lease(
        &self,
        model: &str,
        now: i64,
        until: i64,
    ) -> impl Future<Output = DexResult<bool>> + Send;
    /// Stores `body` as the snapshot of `model` built at `built_at`, releasing the lease.
    /// `false` (nothing written) when the body is larger than a snapshot can hold.
    fn save_snapshot(
        &self,
        model: &str,
        body: &[u8],
        built_at: i64,
    ) -> impl Future<Output = DexResult<bool>> + Send;
}

/// The staleness rules, and each container's copy of the snapshots.
#[derive(Debug)]
pub struct SnapshotCache {
    fresh_ms: i64,
    copies: Mutex<HashMap<String, Snapshot>>,
}

/// What a reader does with what it found.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Step {
    Serve,
    /// Stale: try to take the lease and refresh.
    Refresh,
}

impl SnapshotCache {
    pub fn new(fresh: Duration) -> Self {
        Self {
            fresh_ms: i64::try_from(fresh.as_millis()).unwrap_or(i64::MAX),
            copies: Mutex::new(HashMap::new()),
        }
    }

    /// The lag after which every figure is exact.
    pub fn lag(&self) -> Duration {
        Duration::from_millis(2 * self.fresh_ms as u64)
    }

    pub fn is_fresh(&self, snapshot: &Snapshot, now: i64) -> bool {
        now.saturating_sub(snapshot.built_at) < self.fresh_ms
    }

    /// Still within the lag: may be served while someone else refreshes.
    pub fn within_lag(&self, snapshot: &Snapshot, now: i64) -> bool {
        now.saturating_sub(snapshot.built_at) < 2 * self.fresh_ms
    }

    pub fn step(&self, snapshot: &Snapshot, now: i64) -> Step {
        if self.is_fresh(snapshot, now) {
            Step::Serve
        } else {
            Step::Refresh
        }
    }

    fn copy(&self, model: &str, now: i64) -> Option<Arc<Vec<u8>>> {
        let copies = self.copies.lock().unwrap_or_else(|e| e.into_inner());
        copies
            .get(model)
            .filter(|s| self.is_fresh(s, now))
            .map(|s| s.body.clone())
    }

    fn keep(&self, model: &str, snapshot: &Snapshot) {
        let mut copies = self.copies.lock().unwrap_or_else(|e| e.into_inner());
        let newer = copies
            .get(model)
            .is_none_or(|old| old.built_at <= snapshot.built_at);
        if newer {
            copies.insert(model.to_owned(), snapshot.clone());
        }
    }

    /// The answer body of `model`: from this container's copy, the stored snapshot, or
    /// `build` (the full read), following the rules of this module.
    pub async fn read<S, F, Fut>(
        &self,
        store: &S,
        now: impl Fn() -> i64,
        model: &str,
        build: F,
    ) -> DexResult<Arc<Vec<u8>>>
    where
        S: SnapshotStore,
        F: FnOnce() -> Fut,
        Fut: Future<Output = DexResult<Vec<u8>>>,
    {
        let start = now();
        if let Some(body) = self.copy(model, start) {
            return Ok(body);
        }
        let stored = store.read_snapshot(model).await?;
        if let Some(snapshot) = &stored
            && self.step(snapshot, start) == Step::Serve
        {
            self.keep(model, snapshot);
            return Ok(snapshot.body.clone());
        }
        let lease_free = stored.as_ref().is_none_or(|s| s.lease_until <= start);
        let leased = lease_free
            && store
                .take_snapshot_lease(model, start, start + self.fresh_ms)
                .await?;
        if !leased
            && let Some(snapshot) = &stored
            && self.within_lag(snapshot, start)
        {
            return Ok(snapshot.body.clone());
        }
        // Everything committed before `built_at` is in what `build` reads (consistent reads).
        let built_at = now();
        let body = Arc::new(build().await?);
        if leased {
            if store.save_snapshot(model, &body, built_at).await? {
                self.keep(
                    model,
                    &Snapshot {
                        body: body.clone(),
                        built_at,
                        lease_until: 0,
                    },
                );
            } else {
                tracing::warn!(
                    model,
                    bytes = body.len(),
                    "read model too large for its snapshot; every reader builds it"
                );
            }
        }
        Ok(body)
    }
}

/// The public read models as served: through the snapshots.
pub struct PublicStats<'a, S> {
    pub stats: super::service::StatsService<'a, S>,
    pub cache: &'a SnapshotCache,
}

impl<S: super::StatsStore + SnapshotStore> PublicStats<'_, S> {
    /// `GET /stats` as a JSON body.
    pub async fn figures(&self) -> DexResult<Arc<Vec<u8>>> {
        self.cache
            .read(
                self.stats.store,
                || self.stats.clock.now_millis(),
                FIGURES,
                || async { to_json(&self.stats.figures().await?) },
            )
            .await
    }

    /// `GET /stats/available-data` as a JSON body.
    pub async fn available_data(&self) -> DexResult<Arc<Vec<u8>>> {
        self.cache
            .read(
                self.stats.store,
                || self.stats.clock.now_millis(),
                AVAILABLE_DATA,
                || async { to_json(&self.stats.available_data().await?) },
            )
            .await
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> DexResult<Vec<u8>> {
    serde_json::to_vec(value).map_err(crate::error::DexError::internal)
}
