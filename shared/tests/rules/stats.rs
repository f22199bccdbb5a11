//! StatsService: exactly once across resends, races and copies; chunking; skipped items;
//! descriptions.

use dex::hats::verify::VerifiedHat;
use dex::stats::ingest::{ChunkPlan, MAX_MARKERS_PER_ACTION, plan_chunks};
use dex::stats::report::parse_item;
use dex::stats::{ChunkCommit, DATA_IN, DATA_OUT, StatsStore};
use dex::testing::MemoryStore;
use serde_json::{Value, json};

use crate::support::{World, status};

const T0: i64 = 1_764_000_000_000;

fn hat(address: &str) -> VerifiedHat {
    crate::support::verified_hat(address)
}

/// Item `i`: `endpoints` endpoints of namespace `ns<i % 3>`, fields `a` (1) and `b.c` (2).
fn inbound(i: usize, endpoints: usize) -> Value {
    let stats: Vec<Value> = (0..endpoints)
        .map(|e| json!({"endpoint": format!("ns{}/ep{e}", i % 3), "propertyStats": {"a": 1, "b.c": 2}}))
        .collect();
    json!({"time": T0 + i as i64 * 1000, "user": {"userId": "u"}, "stats": stats, "logEntry": "x", "statsType": "inbound"})
}

fn body(items: &[Value]) -> Vec<u8> {
    serde_json::to_vec(items).unwrap()
}

async fn data_in(w: &World) -> i64 {
    w.store.figures(&[DATA_IN]).await.unwrap()[DATA_IN].0
}

#[tokio::test]
async fn a_report_counts_once_and_its_resend_counts_nothing() {
    let w = World::new().await;
    let items: Vec<Value> = (0..100).map(|i| inbound(i, 1)).collect();
    let first = w
        .stats()
        .report(&hat("a.hubat.net"), &body(&items))
        .await
        .unwrap();
    assert_eq!((first.accepted, first.duplicates), (100, 0));
    assert!(first.skipped.is_empty());
    assert_eq!(data_in(&w).await, 300);
    assert_eq!(w.store.marker_count("a.hubat.net"), 100);
    let (counts, _) = w.store.field_counts().await.unwrap();
    let ns0_a: i64 = counts
        .iter()
        .filter(|((ns, _, f), _)| ns == "ns0" && f == "a")
        .map(|(_, c)| c)
        .sum();
    assert_eq!(ns0_a, 34, "items 0, 3, ..., 99");
    let log = w.history("hat:a.hubat.net").await;
    assert_eq!(log.len(), 1, "a typical report is one chunk");
    assert_eq!(log[0].kind, "stats.accepted");
    assert_eq!(
        log[0].details,
        json!({"items": 100, "dataIn": 300, "dataOut": 0, "endpoints": 3, "dataDebitEvents": 0})
    );

    let resend = w
        .stats()
        .report(&hat("a.hubat.net"), &body(&items))
        .await
        .unwrap();
    assert_eq!((resend.accepted, resend.duplicates), (0, 100));
    assert_eq!(data_in(&w).await, 300);
    assert_eq!(
        w.history("hat:a.hubat.net").await.len(),
        1,
        "nothing logged"
    );
    // The same items from another HAT are that HAT's.
    let other = w
        .stats()
        .report(&hat("b.hubat.net"), &body(&items))
        .await
        .unwrap();
    assert_eq!(other.accepted, 100);
}

#[tokio::test]
async fn a_partial_resend_counts_only_the_new_items() {
    let w = World::new().await;
    let items: Vec<Value> = (0..60).map(|i| inbound(i, 1)).collect();
    w.stats()
        .report(&hat("a.hubat.net"), &body(&items[..40]))
        .await
        .unwrap();
    let r = w
        .stats()
        .report(&hat("a.hubat.net"), &body(&items))
        .await
        .unwrap();
    assert_eq!((r.accepted, r.duplicates), (20, 40));
    assert_eq!(data_in(&w).await, 180);
    assert_eq!(w.store.marker_count("a.hubat.net"), 60);
}

#[tokio::test]
async fn copies_in_one_batch_are_duplicates() {
    let w = World::new().await;
    let one = inbound(1, 1);
    let r = w
        .stats()
        .report(
            &hat("a.hubat.net"),
            &body(&[one.clone(), one.clone(), inbound(2, 1), one]),
        )
        .await
        .unwrap();
    assert_eq!((r.accepted, r.duplicates), (2, 2));
    assert_eq!(data_in(&w).await, 6);
}

#[tokio::test]
async fn racing_copies_count_each_item_once() {
    let w = World::new().await;
    let items: Vec<Value> = (0..100).map(|i| inbound(i, 1)).collect();
    let (a, b, c) = (body(&items[..70]), body(&items[30..]), body(&items));
    let stats = w.stats();
    let h = hat("race.hubat.net");
    let (ra, rb, rc) = tokio::join!(
        stats.report(&h, &a),
        stats.report(&h, &b),
        stats.report(&h, &c)
    );
    let (ra, rb, rc) = (ra.unwrap(), rb.unwrap(), rc.unwrap());
    assert_eq!(
        ra.accepted + rb.accepted + rc.accepted,
        100,
        "{ra:?} {rb:?} {rc:?}"
    );
    assert_eq!(
        ra.duplicates + rb.duplicates + rc.duplicates,
        70 + 70 + 100 - 100
    );
    assert_eq!(data_in(&w).await, 300);
    assert_eq!(w.store.marker_count("race.hubat.net"), 100);
    let logged: u64 = w
        .history("hat:race.hubat.net")
        .await
        .iter()
        .map(|e| e.details["items"].as_u64().unwrap())
        .sum();
    assert_eq!(logged, 100, "each counted item is logged once");
}

#[tokio::test]
async fn wide_reports_are_chunked_and_each_chunk_is_logged() {
    let w = World::new().await;
    let items: Vec<Value> = (0..50).map(|i| inbound(i, 40)).collect();
    let parsed: Vec<_> = items.iter().map(|v| parse_item(v).unwrap()).collect();
    let (chunks, _) = plan_chunks(&parsed);
    assert!(chunks.len() > 1);
    let r = w
        .stats()
        .report(&hat("wide.hubat.net"), &body(&items))
        .await
        .unwrap();
    assert_eq!(r.accepted, 50);
    assert_eq!(data_in(&w).await, 50 * 40 * 3);
    let log = w.history("hat:wide.hubat.net").await;
    assert_eq!(log.len(), chunks.len());
    assert_eq!(
        log.iter()
            .map(|e| e.details["items"].as_u64().unwrap())
            .sum::<u64>(),
        50
    );
    assert_eq!(dex::txlog::verify_chain(&log), Ok(()));
    let again = w
        .stats()
        .report(&hat("wide.hubat.net"), &body(&items))
        .await
        .unwrap();
    assert_eq!((again.accepted, again.duplicates), (0, 50));
}

#[tokio::test]
async fn bad_items_are_skipped_and_the_rest_counts() {
    let w = World::new().await;
    let items = vec![
        inbound(0, 1),
        json!({"statsType": "inbound"}),
        json!({"time": T0, "statsType": "telepathy"}),
        inbound(1, 120),
        json!({"time": T0, "statsType": "outbound", "dataDebitId": "dd", "user": {}, "logEntry": "x",
               "stats": [{"endpoint": "rumpel/locations", "propertyStats": {"lat": 5}}]}),
        json!("not an object"),
    ];
    let r = w
        .stats()
        .report(&hat("a.hubat.net"), &body(&items))
        .await
        .unwrap();
    assert_eq!(r.accepted, 2);
    assert_eq!(
        r.skipped.iter().map(|s| s.index).collect::<Vec<_>>(),
        [1, 2, 3, 5]
    );
    let figures = w.store.figures(&[DATA_IN, DATA_OUT]).await.unwrap();
    assert_eq!((figures[DATA_IN].0, figures[DATA_OUT].0), (3, 5));

    status(w.stats().report(&hat("a.hubat.net"), b"{").await, 400);
    status(w.stats().report(&hat("a.hubat.net"), b"{}").await, 400);
    let too_many: Vec<Value> = (0..1001).map(|i| inbound(i, 1)).collect();
    status(
        w.stats()
            .report(&hat("a.hubat.net"), &body(&too_many))
            .await,
        413,
    );
    assert_eq!(data_in(&w).await, 3, "refused reports count nothing");
}

#[tokio::test]
async fn data_debit_events_make_the_debit_state() {
    let w = World::new().await;
    let debit = |t: i64, op: &str| {
        json!({"time": T0 + t, "statsType": "datadebit", "operation": op,
               "dataDebit": {"dataDebitKey": "dd-1", "active": false, "requestApplicationId": "notables"}})
    };
    w.stats()
        .report(
            &hat("a.hubat.net"),
            &body(&[
                debit(0, "Create()"),
                debit(2000, "Enable"),
                debit(1000, "Change"),
            ]),
        )
        .await
        .unwrap();
    let state = w
        .store
        .debit_state("a.hubat.net", "dd-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            state.event.operation.as_str(),
            state.event.enabled,
            state.time
        ),
        ("Enable", true, T0 + 2000)
    );
    assert!(
        w.store
            .debit_state("a.hubat.net", "dd-2")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        w.store
            .debit_state("b.hubat.net", "dd-1")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn many_descriptions_are_merged_in_logged_parts() {
    let w = World::new().await;
    w.stats()
        .report(&hat("a.hubat.net"), &body(&[inbound(0, 1)]))
        .await
        .unwrap();
    let fields: Vec<Value> = (0..150)
        .map(|i| json!({"name": format!("f{i}"), "description": format!("field {i}")}))
        .collect();
    let posted = json!([{"namespace": "ns0", "description": "namespace zero",
                          "endpoints": [{"endpoint": "ep0", "description": "endpoint zero", "fields": fields}]}]);
    let tree = w
        .stats()
        .describe(
            &dex::accounts::Actor::Operator,
            &serde_json::to_vec(&posted).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(tree[0].description.as_deref(), Some("namespace zero"));
    assert_eq!(w.store.descriptions().await.unwrap().len(), 152);
    let log = w.history("dex:available-data").await;
    assert_eq!(
        log.iter()
            .map(|e| e.details["part"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["1/2", "2/2"]
    );
    assert_eq!(
        log.iter()
            .map(|e| e.details["descriptions"].as_u64().unwrap())
            .sum::<u64>(),
        152
    );
    assert!(log.iter().all(|e| e.actor == "dexctl"));
    let bad = json!([{"namespace": "ns0", "endpoints": [{"endpoint": "ep0", "fields": [{"name": "a.b", "description": "x"}]}]}]);
    status(
        w.stats()
            .describe(
                &dex::accounts::Actor::Operator,
                &serde_json::to_vec(&bad).unwrap(),
            )
            .await,
        400,
    );
}

/// A namespace posted twice in one request (the fuzzer's finding: DynamoDB refuses a
/// transaction writing one item twice, which answered 500) is merged once, the last wins.
#[tokio::test]
async fn a_namespace_posted_twice_is_described_once_with_its_last_description() {
    let w = World::new().await;
    let posted = json!([{"namespace": "twice", "description": "first"},
                        {"namespace": "twice", "description": "second", "endpoints": [{"endpoint": "ep"}]}]);
    let tree = w
        .stats()
        .describe(
            &dex::accounts::Actor::Operator,
            &serde_json::to_vec(&posted).unwrap(),
        )
        .await
        .unwrap();
    let described: Vec<_> = tree.iter().filter(|n| n.namespace == "twice").collect();
    assert_eq!(described.len(), 1);
    assert_eq!(described[0].description.as_deref(), Some("second"));
    assert_eq!(w.store.descriptions().await.unwrap().len(), 1);
    let log = w.history("dex:available-data").await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].details["descriptions"], 1);
}

/// The fast tier refuses what DynamoDB would: a marker bucket whose condition passes 300
/// operators (99 markers: the room clause's 5, then 99 NOT, 99 contains, 98 AND), all or
/// nothing.
#[tokio::test]
async fn a_chunk_dynamodb_would_refuse_is_refused_and_writes_nothing() {
    let store = MemoryStore::default();
    let parsed: Vec<_> = (0..=MAX_MARKERS_PER_ACTION)
        .map(|i| {
            parse_item(&json!({"time": T0, "statsType": "storage", "dataTableStats": [], "n": i}))
                .unwrap()
        })
        .collect();
    let mut plan = ChunkPlan::default();
    plan.seen.insert(
        ("2025112500".into(), 0),
        parsed.iter().map(dex::stats::ingest::marker).collect(),
    );
    plan.items = MAX_MARKERS_PER_ACTION + 1;
    let event = dex::stats::ingest::accepted_event("a.hubat.net", &plan);
    let err = status(
        store
            .commit_chunk("a.hubat.net", &plan, event.clone())
            .await,
        500,
    );
    assert!(err.to_string().contains("too many operators"), "{err}");
    assert_eq!(store.marker_count("a.hubat.net"), 0);
    // 98 markers fit (298 operators), and the same markers again are refused as counted.
    plan.seen
        .values_mut()
        .for_each(|m| m.truncate(MAX_MARKERS_PER_ACTION));
    plan.items = MAX_MARKERS_PER_ACTION;
    assert_eq!(
        store
            .commit_chunk("a.hubat.net", &plan, event.clone())
            .await
            .unwrap(),
        ChunkCommit::Committed
    );
    match store
        .commit_chunk("a.hubat.net", &plan, event)
        .await
        .unwrap()
    {
        ChunkCommit::Refused(r) => assert_eq!(r.counted.len(), MAX_MARKERS_PER_ACTION),
        other => panic!("{other:?}"),
    }
}
