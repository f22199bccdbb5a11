//! StatsService at DynamoDB's limits and at DEX's caps, on the fake that enforces the same
//! limits: 1000 items of one hour, a HAT at its hourly marker cap, an endpoint whose field
//! item is full, names and per-report caps.

use dex::hats::verify::VerifiedHat;
use dex::stats::StatsStore;
use dex::stats::ingest::{
    ChunkPlan, MAX_MARKERS_PER_ACTION, OTHER_FIELDS, accepted_event, field_shard, marker,
    seen_bucket,
};
use dex::stats::limits::{
    MAX_ENDPOINTS_PER_REPORT, MAX_FIELDS_PER_ACTION, MAX_FIELDS_PER_SHARD_ITEM,
    MAX_MARKERS_PER_BUCKET,
};
use dex::stats::report::parse_item;
use serde_json::{Value, json};

use crate::support::World;

const T0: i64 = 1_764_000_000_000;

fn hat(address: &str) -> VerifiedHat {
    crate::support::verified_hat(address)
}

fn item(i: usize, endpoint: &str, fields: &[String]) -> Value {
    let properties: serde_json::Map<String, Value> =
        fields.iter().map(|f| (f.clone(), json!(1))).collect();
    json!({"time": T0 + i as i64, "statsType": "inbound", "n": i,
        "stats": [{"endpoint": endpoint, "propertyStats": properties}]})
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:04}")).collect()
}

async fn count(w: &World, ns: &str, ep: &str, field: &str) -> i64 {
    let (counts, _) = w.store.field_counts().await.unwrap();
    counts
        .get(&(ns.to_owned(), ep.to_owned(), field.to_owned()))
        .copied()
        .unwrap_or(0)
}

#[tokio::test]
async fn a_thousand_items_of_one_hour_count_once_resent_or_raced() {
    let w = World::new().await;
    let items: Vec<Value> = (0..1000)
        .map(|i| item(i, "ns/ep", &["a".to_owned()]))
        .collect();
    let body = serde_json::to_vec(&items).unwrap();
    let service = w.stats();
    let h = hat("a.hubat.net");
    let (one, two) = tokio::join!(service.report(&h, &body), service.report(&h, &body));
    let (one, two) = (one.unwrap(), two.unwrap());
    assert_eq!(one.accepted + two.accepted, 1000);
    assert_eq!(one.duplicates + two.duplicates, 1000);
    let again = service.report(&h, &body).await.unwrap();
    assert_eq!((again.accepted, again.duplicates), (0, 1000));
    assert_eq!(count(&w, "ns", "ep", "a").await, 1000);
    assert_eq!(w.store.marker_count("a.hubat.net"), 1000);
}

/// A bucket holds at most MAX_MARKERS_PER_BUCKET markers (352 KB): items past it are skipped
/// with a reason, the report still answers, and the HAT's other buckets still count.
#[tokio::test]
async fn a_hat_at_its_hourly_marker_cap_gets_skips_not_failures() {
    let w = World::new().await;
    let address = "busy.hubat.net";
    // Fill bucket 0 of one hour to the cap, 98 markers a transaction.
    let hour = seen_bucket(&parse_item(&item(0, "ns/ep", &[])).unwrap()).0;
    let mut filled = 0;
    while filled < MAX_MARKERS_PER_BUCKET {
        let n = MAX_MARKERS_PER_ACTION.min(MAX_MARKERS_PER_BUCKET - filled);
        let mut plan = ChunkPlan::default();
        plan.seen.insert(
            (hour.clone(), 0),
            (filled..filled + n)
                .map(|m| format!("filler-{m:06}"))
                .collect(),
        );
        plan.items = n;
        w.store
            .commit_chunk(address, &plan, accepted_event(address, &plan))
            .await
            .unwrap();
        filled += n;
    }
    let items: Vec<Value> = (0..200)
        .map(|i| item(i, "ns/ep", &["a".to_owned()]))
        .collect();
    let in_full: usize = items
        .iter()
        .filter(|v| seen_bucket(&parse_item(v).unwrap()) == (hour.clone(), 0))
        .count();
    assert!(in_full > 0 && in_full < 200);
    let report = w
        .stats()
        .report(&hat(address), &serde_json::to_vec(&items).unwrap())
        .await
        .unwrap();
    assert_eq!(report.accepted, 200 - in_full);
    assert_eq!(report.skipped.len(), in_full);
    assert!(
        report.skipped[0]
            .reason
            .contains("items counted in this part of hour"),
        "{:?}",
        report.skipped[0]
    );
    assert_eq!(count(&w, "ns", "ep", "a").await, (200 - in_full) as i64);
    // Sent again: the counted ones are duplicates, the others still skipped.
    let again = w
        .stats()
        .report(&hat(address), &serde_json::to_vec(&items).unwrap())
        .await
        .unwrap();
    assert_eq!((again.accepted, again.duplicates), (0, 200 - in_full));
    assert_eq!(again.skipped.len(), in_full);
    let counted: usize = items
        .iter()
        .filter(|v| {
            let m = marker(&parse_item(v).unwrap());
            !m.starts_with("filler")
        })
        .count();
    assert_eq!(counted, 200);
}

/// A greedy HAT fills the field item it shares with another HAT; the other HAT's known
/// fields still count by name, its new ones under OTHER_FIELDS, and its report answers.
#[tokio::test]
async fn a_greedy_hat_cannot_break_another_hats_reports() {
    let w = World::new().await;
    let greedy = "greedy.hubat.net";
    let normal = (0..)
        .map(|i| format!("normal{i}.hubat.net"))
        .find(|h| field_shard(h) == field_shard(greedy))
        .unwrap();
    // Items of at most 140 fields whose names reach the item's 500 exactly, then 60 more.
    let fields = names("g", MAX_FIELDS_PER_SHARD_ITEM + 60);
    let mut items = Vec::new();
    let mut start = 0;
    for n in [140, 140, 140, 80, 60] {
        assert!(n <= MAX_FIELDS_PER_ACTION);
        items.push(item(items.len(), "ns/ep", &fields[start..start + n]));
        start += n;
    }
    assert_eq!(start, fields.len());
    // One report each: a chunk that brings a new name to a full item overflows as a whole.
    for i in &items {
        let report = w
            .stats()
            .report(&hat(greedy), &serde_json::to_vec(&[i]).unwrap())
            .await
            .unwrap();
        assert_eq!(report.accepted, 1, "{report:?}");
    }
    let (counts, _) = w.store.field_counts().await.unwrap();
    let named = counts
        .keys()
        .filter(|(ns, ep, f)| ns == "ns" && ep == "ep" && f != OTHER_FIELDS)
        .count();
    assert_eq!(named, MAX_FIELDS_PER_SHARD_ITEM);
    let greedy_other = count(&w, "ns", "ep", OTHER_FIELDS).await;
    assert_eq!(named as i64 + greedy_other, fields.len() as i64);

    let mine = vec!["g0000".to_owned(), "brand.new".to_owned()];
    let report = w
        .stats()
        .report(
            &hat(&normal),
            &serde_json::to_vec(&[item(0, "ns/ep", &mine)]).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        (report.accepted, report.skipped.len()),
        (1, 0),
        "{report:?}"
    );
    // The chunk carried a new name into a full item: all its fields went to the overflow.
    assert_eq!(count(&w, "ns", "ep", OTHER_FIELDS).await, greedy_other + 2);
    // A report of known fields only still counts them by name.
    let known = vec!["g0001".to_owned()];
    let before = count(&w, "ns", "ep", "g0001").await;
    w.stats()
        .report(
            &hat(&normal),
            &serde_json::to_vec(&[item(1, "ns/ep", &known)]).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(count(&w, "ns", "ep", "g0001").await, before + 1);
}

#[tokio::test]
async fn a_report_brings_at_most_its_caps_of_names() {
    let w = World::new().await;
    let items: Vec<Value> = (0..MAX_ENDPOINTS_PER_REPORT + 5)
        .map(|i| item(i, &format!("ns{}/ep{i}", i % 4), &["a".to_owned()]))
        .collect();
    let report = w
        .stats()
        .report(&hat("wide.hubat.net"), &serde_json::to_vec(&items).unwrap())
        .await
        .unwrap();
    assert_eq!(report.accepted, MAX_ENDPOINTS_PER_REPORT);
    assert_eq!(report.skipped.len(), 5);
    assert!(
        report
            .skipped
            .iter()
            .all(|s| s.reason.contains("endpoints"))
    );
    assert_eq!(
        report.skipped.iter().map(|s| s.index).collect::<Vec<_>>(),
        (MAX_ENDPOINTS_PER_REPORT..MAX_ENDPOINTS_PER_REPORT + 5).collect::<Vec<_>>()
    );
    let bad = vec![
        item(0, "n s/ep", &["a".to_owned()]),
        item(1, "ns/ep", &["x\u{1}".to_owned()]),
    ];
    let report = w
        .stats()
        .report(&hat("wide.hubat.net"), &serde_json::to_vec(&bad).unwrap())
        .await
        .unwrap();
    assert_eq!((report.accepted, report.skipped.len()), (0, 2));
}
