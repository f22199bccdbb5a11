//! `POST /stats/report` at DynamoDB's limits and at DEX's caps (issue 8 §1 and the caps
//! bullet; README "Statistics, exactly once"), over real HTTP with DynamoDB Local behind the
//! functions: every report answers 200 and counts each item exactly once, whatever its
//! width, its hours, its resends and races; a greedy HAT at its caps never breaks another
//! HAT's reports.
//!
//! Each test has its own cluster and namespace, so per-namespace totals compare exactly.

use dex::stats::ingest::{OTHER_FIELDS, field_shard};
use dex::stats::limits::{
    ITEM_BYTES, MAX_ENDPOINTS_PER_REPORT, MAX_FIELDS_PER_ACTION, MAX_FIELDS_PER_SHARD_ITEM,
};
use dex_tests::stats_support::{
    EndpointStats, FieldTotals, HatUser, Json, ReportOutcome, StatsCluster, add_totals, batch,
    inbound, namespace_totals, now_millis, register_hat, report, unique_namespace,
};
use dex_tests::support::Dex;
use dex_tests::test_hat::TestHat;

/// The start of the previous UTC hour: 1000 items a second apart stay in it.
fn hour_start() -> i64 {
    (now_millis() / 3_600_000 - 1) * 3_600_000
}

/// Item `i` of a batch: one endpoint of `namespace`, a few fields, unique by `salt`.
fn item(namespace: &str, time_ms: i64, i: usize, salt: &str) -> (Json, EndpointStats) {
    let stats = EndpointStats::new(
        format!("{namespace}/ep{}", i % 4),
        &[("a", 1), ("b", 1 + (i % 3) as i64)],
    );
    let json = inbound(
        time_ms,
        &HatUser::owner("owner"),
        std::slice::from_ref(&stats),
        &format!("saved batch {salt} {i}"),
    );
    (json, stats)
}

/// `n` items a second apart from `start_ms` (or an hour apart), and their totals.
fn items(
    namespace: &str,
    start_ms: i64,
    step_ms: i64,
    n: usize,
    salt: &str,
) -> (String, FieldTotals) {
    let mut totals = FieldTotals::new();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let (json, stats) = item(namespace, start_ms + i as i64 * step_ms, i, salt);
        add_totals(&mut totals, namespace, &[stats]);
        out.push(json);
    }
    (batch(&out), totals)
}

fn assert_outcome(outcome: &ReportOutcome, accepted: u64, duplicates: u64) {
    assert_eq!(
        (outcome.accepted, outcome.duplicates),
        (accepted, duplicates),
        "{outcome:?}"
    );
    assert!(outcome.skipped.is_empty(), "{outcome:?}");
}

fn sum(totals: &FieldTotals, other: &FieldTotals) -> FieldTotals {
    let mut out = totals.clone();
    for (k, v) in other {
        *out.entry(k.clone()).or_default() += v;
    }
    out
}

#[tokio::test]
async fn a_thousand_items_of_one_hour_count_once_fresh_resent_and_raced() {
    let dex = Dex::new();
    let cluster = StatsCluster::start(&["thousand"]).await;
    let hat = &cluster.hats[0];
    let ns = unique_namespace();
    let (body, totals) = items(&ns, hour_start(), 1000, 1000, "fresh");
    // Was a 500 ("operator count: 301"): 125 markers a bucket in one condition.
    assert_outcome(&report(&dex, hat, &body).await, 1000, 0);
    assert_eq!(namespace_totals(&dex, &ns).await, totals);
    assert_outcome(&report(&dex, hat, &body).await, 0, 1000);
    assert_eq!(
        namespace_totals(&dex, &ns).await,
        totals,
        "a resend counts nothing"
    );

    // Two copies of another batch of the same hour at once: each item counted once.
    let (raced, raced_totals) = items(&ns, hour_start(), 1000, 1000, "raced");
    let (one, two) = tokio::join!(report(&dex, hat, &raced), report(&dex, hat, &raced));
    assert!(
        one.skipped.is_empty() && two.skipped.is_empty(),
        "{one:?} {two:?}"
    );
    assert_eq!(one.accepted + two.accepted, 1000, "{one:?} {two:?}");
    assert_eq!(one.duplicates + two.duplicates, 1000, "{one:?} {two:?}");
    assert_eq!(
        namespace_totals(&dex, &ns).await,
        sum(&totals, &raced_totals)
    );
}

#[tokio::test]
async fn a_thousand_items_over_a_thousand_hours_count_once() {
    let dex = Dex::new();
    let cluster = StatsCluster::start(&["hours"]).await;
    let hat = &cluster.hats[0];
    let ns = unique_namespace();
    // One item an hour: a marker bucket each, 96 actions a transaction.
    let start = hour_start() - 999 * 3_600_000;
    let (body, totals) = items(&ns, start, 3_600_000, 1000, "hours");
    assert_outcome(&report(&dex, hat, &body).await, 1000, 0);
    assert_outcome(&report(&dex, hat, &body).await, 0, 1000);
    assert_eq!(namespace_totals(&dex, &ns).await, totals);
}

/// A HAT sending full reports for an hour: 20,000 markers of one hour, 440 KB of markers
/// (22 bytes each), more than one 400 KB item could hold; spread over the hour's buckets,
/// every item counts once.
#[tokio::test]
async fn a_busy_hats_hour_of_full_reports_counts_every_item() {
    let dex = Dex::new();
    let cluster = StatsCluster::start(&["busy"]).await;
    let hat = &cluster.hats[0];
    let ns = unique_namespace();
    const REPORTS: usize = 20;
    const { assert!(REPORTS * 1000 * 22 > ITEM_BYTES) };
    let mut expected = FieldTotals::new();
    let mut resend = None;
    for r in 0..REPORTS {
        // 1000 items in one second of the hour, unique by report.
        let (body, totals) = items(
            &ns,
            hour_start() + r as i64 * 1000,
            0,
            1000,
            &format!("r{r}"),
        );
        assert_outcome(&report(&dex, hat, &body).await, 1000, 0);
        expected = sum(&expected, &totals);
        resend = Some(body);
    }
    assert_outcome(&report(&dex, hat, &resend.unwrap()).await, 0, 1000);
    assert_eq!(namespace_totals(&dex, &ns).await, expected);
}

/// A report as wide as the caps allow: 100 endpoints with 20 long field names each (2,000
/// distinct fields) is split by actions and bytes into transactions that DynamoDB takes; an
/// item wider than one action and a malformed name are skipped, not fatal.
#[tokio::test]
async fn a_report_with_very_many_endpoints_and_fields_counts_once() {
    let dex = Dex::new();
    let cluster = StatsCluster::start(&["wide"]).await;
    let hat = &cluster.hats[0];
    let ns = unique_namespace();
    let long = |f: usize| format!("{}{f:03}", "field_".repeat(20));
    let mut totals = FieldTotals::new();
    let mut jsons = Vec::new();
    for e in 0..100 {
        let names: Vec<String> = (0..20).map(long).collect();
        let props: Vec<(&str, i64)> = names.iter().map(|n| (n.as_str(), 1)).collect();
        let stats = EndpointStats::new(format!("{ns}/endpoint{e}"), &props);
        add_totals(&mut totals, &ns, std::slice::from_ref(&stats));
        jsons.push(inbound(
            hour_start() + e as i64 * 1000,
            &HatUser::owner("o"),
            &[stats],
            "wide",
        ));
    }
    let too_wide: Vec<String> = (0..=MAX_FIELDS_PER_ACTION)
        .map(|f| format!("w{f}"))
        .collect();
    let props: Vec<(&str, i64)> = too_wide.iter().map(|n| (n.as_str(), 1)).collect();
    jsons.push(inbound(
        hour_start(),
        &HatUser::owner("o"),
        &[EndpointStats::new(format!("{ns}/endpoint0"), &props)],
        "too wide",
    ));
    jsons.push(inbound(
        hour_start(),
        &HatUser::owner("o"),
        &[EndpointStats::new(format!("{ns}/end point"), &[("a", 1)])],
        "bad name",
    ));
    let body = batch(&jsons);
    let outcome = report(&dex, hat, &body).await;
    assert_eq!(
        (outcome.accepted, outcome.duplicates),
        (100, 0),
        "{outcome:?}"
    );
    assert_eq!(
        outcome.skipped.iter().map(|s| s.0).collect::<Vec<_>>(),
        [100, 101],
        "{outcome:?}"
    );
    assert!(outcome.skipped[0].1.contains("too large"), "{outcome:?}");
    assert!(outcome.skipped[1].1.contains("endpoint"), "{outcome:?}");
    let again = report(&dex, hat, &body).await;
    assert_eq!((again.accepted, again.duplicates), (0, 100), "{again:?}");
    assert_eq!(namespace_totals(&dex, &ns).await, totals);
}

/// A registered HAT of `cluster` whose field shard is `shard` (they share field items).
async fn hat_on_shard(cluster: &StatsCluster, prefix: &str, shard: u64) -> TestHat {
    for i in 0.. {
        let hat = cluster.add_unregistered(&format!("{prefix}{i}"));
        if field_shard(hat.address()) == shard {
            register_hat(hat.address()).await;
            return hat;
        }
    }
    unreachable!()
}

/// A greedy HAT at its caps (endpoints of a report, field names of an endpoint's item) gets
/// skips and overflow, never an error; a normal HAT writing to the same field item still
/// counts, by name for known fields.
#[tokio::test]
async fn a_greedy_hat_at_its_caps_never_breaks_another_hats_reports() {
    let dex = Dex::new();
    let mut cluster = StatsCluster::start(&["greedy"]).await;
    let greedy = cluster.hats[0].clone();
    let normal = hat_on_shard(&cluster, "normal", field_shard(greedy.address())).await;
    cluster.hats.push(normal.clone());
    let ns = unique_namespace();
    let user = HatUser::owner("o");

    // Too many endpoints in one report: the ones past the cap are skipped.
    let wide: Vec<Json> = (0..MAX_ENDPOINTS_PER_REPORT + 3)
        .map(|e| {
            inbound(
                hour_start() + e as i64 * 1000,
                &user,
                &[EndpointStats::new(format!("{ns}/many{e}"), &[("a", 1)])],
                "many",
            )
        })
        .collect();
    let outcome = report(&dex, &greedy, &batch(&wide)).await;
    assert_eq!(
        outcome.accepted, MAX_ENDPOINTS_PER_REPORT as u64,
        "{outcome:?}"
    );
    assert_eq!(outcome.skipped.len(), 3, "{outcome:?}");
    assert!(outcome.skipped.iter().all(|s| s.1.contains("endpoints")));

    // Fill the shared field item of `<ns>/shared` with 500 names, then 60 more.
    let names: Vec<String> = (0..MAX_FIELDS_PER_SHARD_ITEM + 60)
        .map(|f| format!("g{f:04}"))
        .collect();
    let mut start = 0;
    for (r, n) in [140, 140, 140, 80, 60].into_iter().enumerate() {
        let props: Vec<(&str, i64)> = names[start..start + n]
            .iter()
            .map(|f| (f.as_str(), 1))
            .collect();
        let one = inbound(
            hour_start() + r as i64 * 1000,
            &user,
            &[EndpointStats::new(format!("{ns}/shared"), &props)],
            "greedy",
        );
        assert_outcome(&report(&dex, &greedy, &batch(&[one])).await, 1, 0);
        start += n;
    }
    let after_greedy = namespace_totals(&dex, &ns).await;
    let named = after_greedy
        .keys()
        .filter(|(ep, f)| ep == "shared" && f != OTHER_FIELDS)
        .count();
    assert_eq!(named, MAX_FIELDS_PER_SHARD_ITEM);
    let other = |t: &FieldTotals| {
        t.get(&("shared".to_owned(), OTHER_FIELDS.to_owned()))
            .copied()
            .unwrap_or(0)
    };
    assert_eq!(other(&after_greedy), 60);

    // The normal HAT: a known field and a new one (the full item takes no new name, so
    // this chunk counts under the overflow), then known fields only (by name).
    let mixed = inbound(
        hour_start(),
        &user,
        &[EndpointStats::new(
            format!("{ns}/shared"),
            &[("g0000", 2), ("brand_new", 3)],
        )],
        "normal",
    );
    assert_outcome(&report(&dex, &normal, &batch(&[mixed])).await, 1, 0);
    let known = inbound(
        hour_start() + 1000,
        &user,
        &[EndpointStats::new(format!("{ns}/shared"), &[("g0001", 4)])],
        "normal",
    );
    assert_outcome(&report(&dex, &normal, &batch(&[known])).await, 1, 0);
    let now = namespace_totals(&dex, &ns).await;
    assert_eq!(other(&now), 60 + 5);
    assert_eq!(
        now.get(&("shared".to_owned(), "g0001".to_owned())),
        Some(&(after_greedy[&("shared".to_owned(), "g0001".to_owned())] + 4))
    );
}
