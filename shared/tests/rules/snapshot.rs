//! The public read models' snapshots (`dex::stats::snapshot`): how often a reader builds,
//! the lease, and the lag after which every figure is exact.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dex::ports::Clock;
use dex::stats::SnapshotStore;
use dex::stats::snapshot::{FIGURES, MAX_SNAPSHOT_BYTES, PublicStats, SnapshotCache};
use dex::testing::{MemoryStore, SeededRandom, SettableClock};
use serde_json::{Value, json};

use crate::support::World;

const T0: i64 = 1_764_000_000_000;
const FRESH: Duration = Duration::from_secs(2);

struct Reads {
    clock: Arc<SettableClock>,
    store: MemoryStore,
    builds: AtomicUsize,
}

impl Reads {
    fn new() -> Self {
        let clock = Arc::new(SettableClock::at_millis(T0));
        let store = MemoryStore::new(clock.clone(), Arc::new(SeededRandom::new(7)));
        Self {
            clock,
            store,
            builds: AtomicUsize::new(0),
        }
    }

    /// A read by `container`; the build answers the build's number.
    async fn read(&self, container: &SnapshotCache, size: usize) -> Vec<u8> {
        let body = container
            .read(
                &self.store,
                || self.clock.now_millis(),
                FIGURES,
                || async {
                    let n = self.builds.fetch_add(1, Ordering::SeqCst) + 1;
                    let mut body = n.to_string().into_bytes();
                    body.resize(size.max(body.len()), b' ');
                    Ok(body)
                },
            )
            .await
            .unwrap();
        body.to_vec()
    }

    fn builds(&self) -> usize {
        self.builds.load(Ordering::SeqCst)
    }

    fn advance_ms(&self, ms: u64) {
        self.clock.advance(Duration::from_millis(ms));
    }
}

fn text(body: &[u8]) -> &str {
    std::str::from_utf8(body).unwrap().trim_end()
}

#[tokio::test]
async fn one_build_serves_every_container_while_fresh() {
    let r = Reads::new();
    let (a, b) = (SnapshotCache::new(FRESH), SnapshotCache::new(FRESH));
    assert_eq!(text(&r.read(&a, 0).await), "1");
    assert_eq!(
        text(&r.read(&b, 0).await),
        "1",
        "b reads the stored snapshot"
    );
    r.advance_ms(1_900);
    assert_eq!(text(&r.read(&a, 0).await), "1");
    assert_eq!(text(&r.read(&b, 0).await), "1");
    assert_eq!(r.builds(), 1);
    // Stale: the first reader refreshes, the next one reads the new snapshot.
    r.advance_ms(200);
    assert_eq!(text(&r.read(&b, 0).await), "2");
    assert_eq!(text(&r.read(&a, 0).await), "2");
    assert_eq!(r.builds(), 2);
}

#[tokio::test]
async fn while_another_caller_refreshes_the_stale_snapshot_is_served_within_the_lag() {
    let r = Reads::new();
    let (a, b) = (SnapshotCache::new(FRESH), SnapshotCache::new(FRESH));
    r.read(&a, 0).await;
    r.advance_ms(2_500);
    // Someone else is refreshing: it holds the lease.
    let now = r.clock.now_millis();
    assert!(
        r.store
            .take_snapshot_lease(FIGURES, now, now + 2_000)
            .await
            .unwrap()
    );
    assert!(
        !r.store
            .take_snapshot_lease(FIGURES, now, now + 2_000)
            .await
            .unwrap()
    );
    assert_eq!(
        text(&r.read(&b, 0).await),
        "1",
        "stale but within 2 x fresh"
    );
    assert_eq!(r.builds(), 1, "no second refresh while the lease is held");
    // Past the lag the stale snapshot is never served: the reader builds (without saving).
    r.advance_ms(1_600);
    assert_eq!(text(&r.read(&b, 0).await), "2");
    assert_eq!(
        text(&r.store.read_snapshot(FIGURES).await.unwrap().unwrap().body),
        "1",
        "only the lease holder saves"
    );
    // The lease expires: the next reader refreshes and saves.
    r.advance_ms(500);
    assert_eq!(text(&r.read(&a, 0).await), "3");
    assert_eq!(
        text(&r.store.read_snapshot(FIGURES).await.unwrap().unwrap().body),
        "3"
    );
}

#[tokio::test]
async fn a_dead_refresher_holds_nothing_up_beyond_its_lease() {
    let r = Reads::new();
    let a = SnapshotCache::new(FRESH);
    // A lease taken before any snapshot exists (its holder died): readers build meanwhile.
    assert!(
        r.store
            .take_snapshot_lease(FIGURES, T0, T0 + 2_000)
            .await
            .unwrap()
    );
    assert_eq!(text(&r.read(&a, 0).await), "1");
    assert!(
        r.store
            .read_snapshot(FIGURES)
            .await
            .unwrap()
            .unwrap()
            .built_at
            == 0
    );
    r.advance_ms(2_000);
    assert_eq!(text(&r.read(&a, 0).await), "2");
    assert_eq!(
        r.store
            .read_snapshot(FIGURES)
            .await
            .unwrap()
            .unwrap()
            .built_at,
        T0 + 2_000
    );
}

#[tokio::test]
async fn a_body_too_large_for_a_snapshot_is_built_by_every_reader() {
    let r = Reads::new();
    let a = SnapshotCache::new(FRESH);
    r.read(&a, MAX_SNAPSHOT_BYTES + 1).await;
    r.read(&a, MAX_SNAPSHOT_BYTES + 1).await;
    assert_eq!(r.builds(), 2);
    r.advance_ms(2_000);
    r.read(&a, MAX_SNAPSHOT_BYTES).await;
    r.read(&a, MAX_SNAPSHOT_BYTES).await;
    assert_eq!(r.builds(), 3, "at the limit it is stored");
}

#[tokio::test]
async fn a_reported_value_shows_in_the_figures_once_the_lag_has_passed() {
    let w = World::new().await;
    let cache = SnapshotCache::new(FRESH);
    let public = || PublicStats {
        stats: w.stats(),
        cache: &cache,
    };
    let data_in = |body: &[u8]| -> i64 {
        let figures: Vec<Value> = serde_json::from_slice(body).unwrap();
        figures.iter().find(|f| f["title"] == "Data In").unwrap()["value"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(data_in(&public().figures().await.unwrap()), 0);
    let hat = crate::support::verified_hat("a.hubat.net");
    let item = json!({"time": w.clock.now_millis(), "user": {"userId": "u"}, "logEntry": "x",
        "statsType": "inbound", "stats": [{"endpoint": "ns/ep", "propertyStats": {"a": 5}}]});
    let body = serde_json::to_vec(&[item]).unwrap();
    assert_eq!(w.stats().report(&hat, &body).await.unwrap().accepted, 1);
    assert_eq!(
        data_in(&public().figures().await.unwrap()),
        0,
        "a container serves its copy while it is fresh"
    );
    w.clock.advance(cache.lag());
    assert_eq!(data_in(&public().figures().await.unwrap()), 5);
    let tree: Vec<Value> =
        serde_json::from_slice(&public().available_data().await.unwrap()).unwrap();
    assert_eq!(tree[0]["namespace"], "ns");
}
