//! HatVerifier's bounded re-reads (issue 11 §1): a flood of forged tokens naming a real `iss`
//! costs a bounded number of table reads, per HAT and per container, and a real key change
//! is still picked up once the per-HAT interval has passed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dex::DexResult;
use dex::hats::register::RegisterHat;
use dex::hats::verify::{HatVerifier, RefreshLimits};
use dex::hats::{Cluster, HatStore, RegisteredHat};
use dex::page::{Page, PageRequest};
use dex::ports::Clock;
use dex::testing::MemoryStore;
use dex::txlog::LogEvent;
use jsonwebtoken::{Algorithm, Header};
use serde_json::json;

use crate::support::{DEX_URL, World, hat_key, status};

/// The memory store, counting the verifier's reads (the HAT and its clusters).
struct Counting<'a> {
    inner: &'a MemoryStore,
    reads: AtomicUsize,
}

impl Counting<'_> {
    fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }
}

impl HatStore for Counting<'_> {
    async fn get_hat(&self, address: &str) -> DexResult<Option<RegisteredHat>> {
        self.inner.get_hat(address).await
    }
    async fn get_hat_and_clusters(
        &self,
        address: &str,
        candidates: &[String],
    ) -> DexResult<(Option<RegisteredHat>, Vec<Cluster>)> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.get_hat_and_clusters(address, candidates).await
    }
    async fn insert_hat(&self, hat: &RegisteredHat, event: LogEvent) -> DexResult<bool> {
        self.inner.insert_hat(hat, event).await
    }
    async fn replace_hat_key(
        &self,
        hat: &RegisteredHat,
        expected_version: u64,
        event: LogEvent,
    ) -> DexResult<()> {
        self.inner
            .replace_hat_key(hat, expected_version, event)
            .await
    }
    async fn list_hats(
        &self,
        cluster: Option<&str>,
        page: PageRequest,
    ) -> DexResult<Page<RegisteredHat>> {
        self.inner.list_hats(cluster, page).await
    }
}

async fn register(w: &World, address: &str, key: usize) {
    let provisioner = w
        .account(&format!("p{key}-{address}"), &["provisioner:hubat.net"])
        .await;
    let token = w.token(&provisioner.username).await;
    register_as(w, address, key, &token).await;
}

/// Registers (or re-keys) `address` with a provisioner's token made beforehand: no password
/// work, so it takes well under the per-HAT interval.
async fn register_as(w: &World, address: &str, key: usize, token: &str) {
    w.hats.serve_key(address, &hat_key(key).public_pem);
    w.registration()
        .register(
            RegisterHat {
                hat_address: address.into(),
                application_id: None,
            },
            Some(token),
        )
        .await
        .expect("register");
}

fn token(w: &World, hat: &str, key: usize) -> String {
    let now = w.clock.now().timestamp();
    let claims = json!({"iss": hat, "sub": "1-validate", "iat": now, "exp": now + 3600,
                        "accessScope": "validate", "resource": DEX_URL});
    jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &claims,
        &hat_key(key).encoding,
    )
    .unwrap()
}

fn verifier(limits: RefreshLimits) -> HatVerifier {
    HatVerifier::new(DEX_URL, false, Duration::from_secs(60)).with_refresh_limits(limits)
}

#[tokio::test]
async fn forged_tokens_for_one_hat_cost_one_read_per_interval_and_a_new_key_is_picked_up() {
    let w = World::new().await;
    w.cluster("hubat.net", &[]).await;
    register(&w, "alice.hubat.net", 0).await;
    let provisioner = w.account("rekeyer", &["provisioner:hubat.net"]).await;
    let rekeyer = w.token(&provisioner.username).await;
    let store = Counting {
        inner: &w.store,
        reads: AtomicUsize::new(0),
    };
    let per_hat = Duration::from_millis(1500);
    let v = verifier(RefreshLimits {
        per_hat,
        budget: 1000,
        window: Duration::from_secs(1),
    });
    let now = w.clock.now().timestamp();
    let good = token(&w, "alice.hubat.net", 0);
    assert!(v.verify(&store, now, Some(&good)).await.is_ok());
    assert_eq!(store.reads(), 1);
    // 100 forged tokens (another key) naming the real HAT: one re-read, then none.
    let forged = token(&w, "alice.hubat.net", 1);
    for _ in 0..100 {
        status(v.verify(&store, now, Some(&forged)).await, 401);
    }
    assert_eq!(store.reads(), 2, "a flood re-read the table more than once");
    // The HAT really is re-keyed to that key now: within the interval its tokens are still
    // refused without a read, after it the next one re-reads and is accepted.
    register_as(&w, "alice.hubat.net", 1, &rekeyer).await;
    status(v.verify(&store, now, Some(&forged)).await, 401);
    assert_eq!(store.reads(), 2);
    tokio::time::sleep(per_hat + Duration::from_millis(50)).await;
    assert!(v.verify(&store, now, Some(&forged)).await.is_ok());
    assert_eq!(store.reads(), 3);
    // The cached key is the new one: no read for its tokens, the old key is refused.
    assert!(v.verify(&store, now, Some(&forged)).await.is_ok());
    status(v.verify(&store, now, Some(&good)).await, 401);
    assert_eq!(store.reads(), 3);
}

#[tokio::test]
async fn forged_tokens_over_many_hats_are_bounded_by_the_container_budget() {
    let w = World::new().await;
    w.cluster("hubat.net", &[]).await;
    let hats: Vec<String> = (0..6).map(|i| format!("hat{i}.hubat.net")).collect();
    for hat in &hats {
        register(&w, hat, 0).await;
    }
    let store = Counting {
        inner: &w.store,
        reads: AtomicUsize::new(0),
    };
    let v = verifier(RefreshLimits {
        per_hat: Duration::from_millis(1),
        budget: 3,
        window: Duration::from_secs(3600),
    });
    let now = w.clock.now().timestamp();
    for hat in &hats {
        assert!(
            v.verify(&store, now, Some(&token(&w, hat, 0)))
                .await
                .is_ok()
        );
    }
    assert_eq!(store.reads(), hats.len());
    // Every HAT flooded, the per-HAT interval long past each time: only the budget's 3
    // re-reads in the window.
    for round in 0..20 {
        for hat in &hats {
            status(v.verify(&store, now, Some(&token(&w, hat, 1))).await, 401);
        }
        if round == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    assert_eq!(store.reads(), hats.len() + 3);
    // Good tokens still verify from the cache.
    for hat in &hats {
        assert!(
            v.verify(&store, now, Some(&token(&w, hat, 0)))
                .await
                .is_ok()
        );
    }
    assert_eq!(store.reads(), hats.len() + 3);
}
