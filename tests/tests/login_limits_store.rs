//! The failed-login counters' store contract (`dex::accounts::LoginLimitStore`): each body
//! runs on `MemoryStore` (`memory::*`) and on DynamoDB Local (`dynamo::*`, the judge), like
//! `store.rs`. Every test uses its own keys.

use dex::accounts::{FailureCount, LoginLimitStore};

dex_tests::store_contract!(
    failures_count_up_and_an_expired_counter_starts_again,
    concurrent_failures_are_all_counted,
    clearing_forgets_one_counter_only,
);

fn unique(prefix: &str) -> String {
    format!("{prefix}#{}", uuid::Uuid::new_v4().simple())
}

async fn counts<S: LoginLimitStore>(store: &S, keys: &[String]) -> Vec<(String, FailureCount)> {
    let mut found = store.failure_counts(keys).await.expect("read counters");
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

async fn failures_count_up_and_an_expired_counter_starts_again<S: LoginLimitStore>(store: S) {
    let key = unique("user");
    assert!(counts(&store, std::slice::from_ref(&key)).await.is_empty());
    // Counter times are the caller's (epoch ms / s), so the test can place them anywhere.
    store.count_failure(&key, 1_000_000, 1_900).await.unwrap();
    store.count_failure(&key, 1_200_000, 2_100).await.unwrap();
    assert_eq!(
        counts(&store, std::slice::from_ref(&key)).await,
        vec![(
            key.clone(),
            FailureCount {
                failures: 2,
                last_failure_ms: 1_200_000,
                expires_at: 2_100
            }
        )]
    );
    // At 2,100 s the counter has expired (TTL has not deleted it): it starts again at 1.
    store.count_failure(&key, 2_100_000, 3_000).await.unwrap();
    assert_eq!(
        counts(&store, std::slice::from_ref(&key)).await,
        vec![(
            key.clone(),
            FailureCount {
                failures: 1,
                last_failure_ms: 2_100_000,
                expires_at: 3_000
            }
        )]
    );
}

async fn concurrent_failures_are_all_counted<S: LoginLimitStore + Clone + 'static>(store: S) {
    let key = unique("source");
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            let key = key.clone();
            tokio::spawn(async move { store.count_failure(&key, 5_000_000 + i, 6_000).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let found = counts(&store, std::slice::from_ref(&key)).await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].1.failures, 20);
    assert_eq!(found[0].1.expires_at, 6_000);
}

async fn clearing_forgets_one_counter_only<S: LoginLimitStore>(store: S) {
    let alice = unique("user");
    let source = unique("source");
    let never = unique("user");
    store.count_failure(&alice, 1_000, 900).await.unwrap();
    store.count_failure(&alice, 2_000, 900).await.unwrap();
    store.count_failure(&source, 1_000, 900).await.unwrap();
    let all = vec![alice.clone(), source.clone(), never.clone()];
    let failures = |found: Vec<(String, FailureCount)>| -> Vec<(String, u32)> {
        found.into_iter().map(|(k, c)| (k, c.failures)).collect()
    };
    let mut want = vec![(alice.clone(), 2), (source.clone(), 1)];
    want.sort();
    assert_eq!(failures(counts(&store, &all).await), want);
    store.clear_failures(&alice).await.unwrap();
    // Clearing what does not exist is no error and creates nothing.
    store.clear_failures(&never).await.unwrap();
    let mut want = vec![(alice.clone(), 0), (source.clone(), 1)];
    want.sort();
    assert_eq!(failures(counts(&store, &all).await), want);
    // A cleared counter counts again from zero.
    store.count_failure(&alice, 3_000, 900).await.unwrap();
    let found = counts(&store, std::slice::from_ref(&alice)).await;
    assert_eq!(failures(found), vec![(alice.clone(), 1)]);
}
