//! End-to-end tests of the statistics endpoints (docs/decisions.md §2, §7, §11; docs/wire-contract.md §3.2,
//! §4.5, §6.1, §6.2; docs/hats.md §3.1, §4) over real HTTP against the functions
//! `cargo lambda watch` serves (DEX_TEST_URL), with DynamoDB Local and moto behind them.
//!
//! HATs are real test HATs (`TestHatCluster`) registered with DEX; every report carries a
//! real RS256 HAT→DEX token and DataStats written exactly as HAT2.0 writes them
//! (`dex_tests::stats_support`). Every test has its own cluster domain and namespace, so
//! per-namespace figures and per-HAT logs are compared exactly while other tests (of this
//! binary or another) run; global figures (`Data In`, `HATs`, ...) are compared with `>=`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use dex::page::PageRequest;
use dex::stats::StatsStore;
use dex::txlog::LogStore;
use dex::txlog::{LogEntry, verify_chain};
use dex_tests::stats_support::{
    DataDebit, EndpointStats, FieldTotals, HatUser, Json, ReportOutcome, StatsCluster,
    accepted_entries, add_totals, available_data, batch, data_table_stats, datacredit, datadebit,
    datadebit_event, decertify_cluster, figure_value, figures, flatten_namespace, hat_log, inbound,
    namespace_totals, namespace_tree, now_millis, outbound, parse_outcome, post_report, report,
    report_token, rich_data_debit, storage, unique_hex, unique_namespace,
};
use dex_tests::support::{self, Dex, admin_token, assert_error, create_account, expect_json};
use dex_tests::test_hat::TestHat;
use futures::StreamExt;
use futures::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};

/// The documented `/stats` list, in order (docs/wire-contract.md §6.1, docs/decisions.md §7).
const FIGURES: [&str; 6] = [
    "Data Plugs",
    "Total Offer Claims",
    "Data Out",
    "Data In",
    "Top Datapoints",
    "HATs",
];

/// Reports on the wire at once in the many-HATs test. `cargo lambda watch` (1.9.2, the local
/// stand-in for API Gateway + Lambda) stops dispatching for good once too many slow
/// invocations queue at once: observed here with 160 and with 640 reports in flight (every
/// function of the watch hangs until it is restarted), never with 64. So every report is
/// started at once but the client keeps this many on the wire (6x the instances per
/// function), leaving room for the other tests running at the same time.
const MAX_IN_FLIGHT: usize = 48;

/// A client with a long timeout: the concurrency tests queue hundreds of requests on the
/// few function instances `cargo lambda watch` runs.
fn patient_dex() -> Dex {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .pool_max_idle_per_host(64)
        .build()
        .expect("reqwest client");
    Dex {
        base: support::dex_url(),
        http,
    }
}

/// An hour ago, to the second (HAT times have no milliseconds).
fn base_time() -> i64 {
    (now_millis() / 1000 - 3600) * 1000
}

/// A HAT's log entries, read straight from the table (for HATs that can no longer
/// authenticate, or never could).
async fn stored_log(address: &str) -> Vec<LogEntry> {
    let store = support::store().await;
    store
        .subject_history(&dex::hats::hat_subject(address), PageRequest::first(200))
        .await
        .expect("read the HAT's log")
        .items
}

/// Sorts endpoints and fields by name, recursively, so trees compare whatever order DEX
/// lists them in.
fn normalise(tree: &Value) -> Value {
    fn fields(list: &Value) -> Value {
        let mut items: Vec<Value> = list.as_array().cloned().unwrap_or_default();
        for f in &mut items {
            if let Some(children) = f.get("fields").cloned() {
                f["fields"] = fields(&children);
            }
        }
        items.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        Value::Array(items)
    }
    let mut ns = tree.clone();
    let mut endpoints: Vec<Value> = ns["endpoints"].as_array().cloned().unwrap_or_default();
    for ep in &mut endpoints {
        let f = fields(&ep["fields"]);
        ep["fields"] = f;
    }
    endpoints.sort_by(|a, b| a["endpoint"].as_str().cmp(&b["endpoint"].as_str()));
    ns["endpoints"] = Value::Array(endpoints);
    ns
}

fn totals(entries: &[(&str, &str, i64)]) -> FieldTotals {
    entries
        .iter()
        .map(|(ep, f, c)| (((*ep).to_owned(), (*f).to_owned()), *c))
        .collect()
}

fn assert_accepted(outcome: &ReportOutcome, accepted: u64, duplicates: u64) {
    assert_eq!(
        (outcome.accepted, outcome.duplicates),
        (accepted, duplicates),
        "{outcome:?}"
    );
    assert!(outcome.skipped.is_empty(), "{outcome:?}");
}

/// `n` distinct inbound items for `namespace`, and what they add to its available data.
/// `salt` makes the content unique to one batch.
fn inbound_batch(
    namespace: &str,
    user: &HatUser,
    start_ms: i64,
    n: usize,
    salt: usize,
) -> (Vec<Json>, FieldTotals) {
    let mut expected = FieldTotals::new();
    let items = (0..n)
        .map(|i| {
            let stats = vec![EndpointStats::new(
                format!("{namespace}/ep{}", i % 3),
                &[
                    ("a", 1),
                    ("b.c", 1 + ((i + salt) % 4) as i64),
                    ("list[]", 1 + i as i64),
                    ("list[].x", 2),
                ],
            )];
            add_totals(&mut expected, namespace, &stats);
            inbound(
                start_ms + (salt * 1000 + i) as i64 * 1000,
                user,
                &stats,
                &format!("saved batch for {namespace}/ep{}", i % 3),
            )
        })
        .collect();
    (items, expected)
}

fn sum(totals: &FieldTotals) -> i64 {
    totals.values().sum()
}

// ---- every variant -----------------------------------------------------------------------

#[tokio::test]
async fn every_stats_type_is_accepted_and_inbound_counts_show_up_nested() {
    let dex = Dex::new();
    let sc = StatsCluster::start(&["alice"]).await;
    let hat = &sc.hats[0];
    let ns = unique_namespace();
    let out_ns = format!("{ns}out");
    let t = base_time();
    let owner = HatUser::owner("alice");
    let plug = HatUser::plug("facebook", &ns);
    let client = HatUser::debit_client("buyer");
    let before = figures(&dex).await;

    let feed = EndpointStats::new(
        format!("{ns}/feed"),
        &[
            ("message", 3),
            ("place.location.latitude", 1),
            ("place.location.longitude", 1),
            ("tags[]", 4),
            ("array[].interest", 2),
            ("array[].weight", 5),
        ],
    );
    let dietary = EndpointStats::new(format!("{ns}/priorities/dietary"), &[("name", 2)]);
    let debit_key = format!("offer-{}", unique_hex());
    let legacy_key = format!("legacy-{}", unique_hex());
    let mut debit = DataDebit::new(&debit_key, &format!("{ns}/feed"), t);
    debit.application_id = Some("notables".into());
    let variants = [
        (
            "inbound",
            inbound(
                t,
                &plug,
                &[feed, dietary],
                &format!("saved batch for {ns}/feed"),
            ),
        ),
        (
            "outbound",
            outbound(
                t + 1000,
                &client,
                &legacy_key,
                &[EndpointStats::new(
                    format!("{out_ns}/feed"),
                    &[("message", 3)],
                )],
                "retrieved",
            ),
        ),
        ("datadebit", datadebit(t + 2000, &owner, &debit, "Create()")),
        (
            "datadebitEvent",
            datadebit_event(
                t + 3000,
                &owner,
                rich_data_debit(&legacy_key, t, &client, &format!("{ns}/feed"), true),
                "Enable()",
            ),
        ),
        (
            "datacredit",
            datacredit(
                t + 4000,
                &plug,
                "Create()",
                Some(vec![data_table_stats(
                    "feed",
                    "facebook",
                    &[("message", 3)],
                )]),
            ),
        ),
        (
            "storage",
            storage(
                t + 5000,
                vec![data_table_stats(
                    "feed",
                    "facebook",
                    &[("message", 3), ("story", 1)],
                )],
                "storage",
            ),
        ),
    ];
    for (name, item) in &variants {
        assert_eq!(item.to_value()["statsType"], *name);
        let outcome = report(&dex, hat, &batch(std::slice::from_ref(item))).await;
        assert_eq!(
            (outcome.accepted, outcome.duplicates),
            (1, 0),
            "{name}: {outcome:?}"
        );
        assert!(outcome.skipped.is_empty(), "{name}: {outcome:?}");
    }

    // The namespace's tree: exact counts, `.` nests, `[]` marks arrays.
    let tree = namespace_tree(&dex, &ns)
        .await
        .unwrap_or_else(|| panic!("namespace {ns} not listed"));
    let expected = json!({"namespace": ns, "endpoints": [
        {"endpoint": "feed", "fields": [
            {"name": "array[]", "fields": [{"name": "interest", "count": 2}, {"name": "weight", "count": 5}]},
            {"name": "message", "count": 3},
            {"name": "place", "fields": [{"name": "location", "fields": [
                {"name": "latitude", "count": 1}, {"name": "longitude", "count": 1}]}]},
            {"name": "tags[]", "count": 4}]},
        {"endpoint": "priorities/dietary", "fields": [{"name": "name", "count": 2}]}]});
    assert_eq!(normalise(&tree), expected, "{tree}");

    // The figures moved at least by this HAT's data (other tests run at the same time).
    let after = figures(&dex).await;
    assert!(
        figure_value(&after, "Data In") >= figure_value(&before, "Data In") + 18,
        "{before:?} -> {after:?}"
    );
    assert!(
        figure_value(&after, "Data Out") >= figure_value(&before, "Data Out") + 3,
        "{before:?} -> {after:?}"
    );

    // Debit events are the HAT's debit state.
    let store = support::store().await;
    let state = store
        .debit_state(hat.address(), &debit_key)
        .await
        .unwrap()
        .expect("the Create() is recorded");
    assert!(
        !state.event.enabled,
        "a created, inactive debit is not enabled: {state:?}"
    );
    assert_eq!(state.event.operation, "Create");
    assert_eq!(state.event.source, "datadebit");
    assert_eq!(state.event.application_id.as_deref(), Some("notables"));
    assert_eq!(state.time, t + 2000);
    let legacy = store
        .debit_state(hat.address(), &legacy_key)
        .await
        .unwrap()
        .expect("the legacy Enable() is recorded");
    assert!(legacy.event.enabled, "{legacy:?}");
    assert_eq!(
        (
            legacy.event.operation.as_str(),
            legacy.event.source.as_str()
        ),
        ("Enable", "datadebitEvent")
    );

    // One log entry per accepted batch.
    let log = hat_log(&dex, hat).await;
    assert_eq!(accepted_entries(&log).len(), variants.len(), "{log:?}");
}

#[tokio::test]
async fn data_debit_events_set_the_latest_debit_state_per_hat() {
    let dex = Dex::new();
    let sc = StatsCluster::start(&["alice", "bob"]).await;
    let (alice, bob) = (&sc.hats[0], &sc.hats[1]);
    let owner = HatUser::owner("alice");
    let store = support::store().await;
    let t = base_time();
    let key = format!("offer-{}", unique_hex());
    let endpoint = format!("{}/feed", unique_namespace());

    let post = |time: i64, operation: &'static str, active: bool| {
        let mut debit = DataDebit::new(&key, &endpoint, t);
        debit.active = active;
        debit.accepted = active;
        let body = batch(&[datadebit(time, &owner, &debit, operation)]);
        let dex = dex.clone();
        async move {
            let outcome = report(&dex, alice, &body).await;
            assert_accepted(&outcome, 1, 0);
        }
    };
    let state = || async {
        store
            .debit_state(alice.address(), &key)
            .await
            .unwrap()
            .expect("a state")
    };

    assert!(
        store
            .debit_state(alice.address(), &key)
            .await
            .unwrap()
            .is_none(),
        "no event yet"
    );
    post(t, "Create()", false).await;
    assert!(!state().await.event.enabled);
    post(t + 1000, "Enable()", true).await;
    let s = state().await;
    assert!(s.event.enabled, "{s:?}");
    assert_eq!((s.event.operation.as_str(), s.time), ("Enable", t + 1000));
    post(t + 2000, "Disable()", false).await;
    let s = state().await;
    assert!(!s.event.enabled, "{s:?}");
    assert_eq!(s.event.operation, "Disable");
    // Without parentheses, as some HAT versions write it.
    post(t + 3000, "Enable", true).await;
    let s = state().await;
    assert!(s.event.enabled, "{s:?}");
    assert_eq!((s.event.operation.as_str(), s.time), ("Enable", t + 3000));
    // A late-arriving older event does not override the latest one.
    post(t + 1500, "Disable()", false).await;
    let s = state().await;
    assert!(
        s.event.enabled,
        "the latest event (Enable at t+3s) wins over a resent older Disable: {s:?}"
    );
    assert_eq!(s.time, t + 3000);

    // Legacy debits (datadebitEvent) too.
    let client = HatUser::debit_client("buyer");
    let legacy_key = format!("legacy-{}", unique_hex());
    let body = batch(&[datadebit_event(
        t + 4000,
        &owner,
        rich_data_debit(&legacy_key, t, &client, &endpoint, true),
        "Enable()",
    )]);
    assert_accepted(&report(&dex, alice, &body).await, 1, 0);
    assert!(
        store
            .debit_state(alice.address(), &legacy_key)
            .await
            .unwrap()
            .unwrap()
            .event
            .enabled
    );
    let body = batch(&[datadebit_event(
        t + 5000,
        &owner,
        rich_data_debit(&legacy_key, t, &client, &endpoint, false),
        "Disable()",
    )]);
    assert_accepted(&report(&dex, alice, &body).await, 1, 0);
    assert!(
        !store
            .debit_state(alice.address(), &legacy_key)
            .await
            .unwrap()
            .unwrap()
            .event
            .enabled
    );

    // The state is per HAT.
    assert!(
        store
            .debit_state(bob.address(), &key)
            .await
            .unwrap()
            .is_none()
    );
}

// ---- partly invalid batches --------------------------------------------------------------

#[tokio::test]
async fn a_mixed_batch_skips_invalid_items_with_reasons_and_counts_the_rest() {
    let dex = Dex::new();
    let sc = StatsCluster::start(&["alice"]).await;
    let hat = &sc.hats[0];
    let ns = unique_namespace();
    let user = HatUser::plug("plug", &ns);
    let t = base_time();
    let time = |s: i64| Json::str(&dex_tests::stats_support::hat_time(t + s * 1000));
    let good = EndpointStats::new(format!("{ns}/feed"), &[("a", 2), ("b.c", 1)]);
    let negative = EndpointStats::new(format!("{ns}/feed"), &[("b.c", 7), ("d", -1)]);
    let debit = DataDebit::new(&format!("offer-{}", unique_hex()), &format!("{ns}/feed"), t);
    let items = vec![
        /* 0 */ inbound(t, &user, &[good], "saved"),
        /* 1 */
        Json::obj(vec![
            ("time", time(1)),
            ("user", user.json()),
            ("logEntry", Json::str("x")),
            ("statsType", Json::str("telemetry")),
        ]),
        /* 2 */ Json::num(42),
        /* 3 */
        Json::obj(vec![
            ("time", Json::str("last tuesday")),
            ("user", user.json()),
            (
                "stats",
                Json::arr(vec![
                    EndpointStats::new(format!("{ns}/feed"), &[("e", 5)]).json(),
                ]),
            ),
            ("logEntry", Json::str("x")),
            ("statsType", Json::str("inbound")),
        ]),
        /* 4 */ inbound(t + 4000, &user, &[negative], "saved"),
        /* 5 */ datadebit(t + 5000, &user, &debit, "Enable()"),
        /* 6 */ Json::str("not an item"),
        /* 7 */
        storage(
            t + 7000,
            vec![data_table_stats("feed", "plug", &[("a", 1)])],
            "storage",
        ),
        /* 8 */
        Json::obj(vec![
            ("time", time(8)),
            ("user", user.json()),
            (
                "stats",
                Json::arr(vec![
                    EndpointStats::new(format!("{ns}/feed"), &[("f", 5)]).json(),
                ]),
            ),
            ("logEntry", Json::str("x")),
        ]),
        /* 9 */ Json::value(&Value::Null),
    ];
    let outcome = report(&dex, hat, &batch(&items)).await;
    assert_eq!(
        (outcome.accepted, outcome.duplicates),
        (3, 0),
        "{outcome:?}"
    );
    let indices: Vec<u64> = outcome.skipped.iter().map(|(i, _)| *i).collect();
    assert_eq!(indices, [1, 2, 3, 4, 6, 8, 9], "{outcome:?}");
    let reason = |i: u64| {
        outcome
            .skipped
            .iter()
            .find(|(j, _)| *j == i)
            .unwrap()
            .1
            .to_lowercase()
    };
    assert!(
        reason(1).contains("statstype") && reason(1).contains("telemetry"),
        "{outcome:?}"
    );
    assert!(reason(2).contains("object"), "{outcome:?}");
    assert!(reason(3).contains("time"), "{outcome:?}");
    assert!(reason(4).contains("count"), "{outcome:?}");
    assert!(reason(6).contains("object"), "{outcome:?}");
    assert!(reason(8).contains("statstype"), "{outcome:?}");
    assert!(reason(9).contains("object"), "{outcome:?}");

    // Only the valid inbound item counts (nothing of the skipped ones, not even their
    // valid-looking fields).
    assert_eq!(
        namespace_totals(&dex, &ns).await,
        totals(&[("feed", "a", 2), ("feed", "b.c", 1)])
    );

    // Sent again: the valid items are duplicates, the invalid ones skipped again.
    let again = report(&dex, hat, &batch(&items)).await;
    assert_eq!(
        (again.accepted, again.duplicates, again.skipped.len()),
        (0, 3, 7),
        "{again:?}"
    );
    assert_eq!(
        namespace_totals(&dex, &ns).await,
        totals(&[("feed", "a", 2), ("feed", "b.c", 1)])
    );

    // A batch of invalid items only is still a 200 that counts nothing.
    let only_bad = report(&dex, hat, &batch(&items[1..5])).await;
    assert_eq!(
        (
            only_bad.accepted,
            only_bad.duplicates,
            only_bad.skipped.len()
        ),
        (0, 0, 4),
        "{only_bad:?}"
    );
}

// ---- exactly once ------------------------------------------------------------------------

#[tokio::test]
async fn a_resent_batch_is_counted_once() {
    let dex = Dex::new();
    let mut sc = StatsCluster::start(&["alice"]).await;
    let hat = &sc.hats[0].clone();
    let ns = unique_namespace();
    let user = HatUser::owner("alice");
    let (items, expected) = inbound_batch(&ns, &user, base_time(), 10, 0);
    let body = batch(&items);

    assert_accepted(&report(&dex, hat, &body).await, 10, 0);
    assert_eq!(namespace_totals(&dex, &ns).await, expected);
    assert_accepted(&report(&dex, hat, &body).await, 0, 10);
    assert_eq!(namespace_totals(&dex, &ns).await, expected);

    // An overlapping resend (HAT2.0's overlapping upload runs): half old, half new.
    let (more, _) = inbound_batch(&ns, &user, base_time(), 10, 1);
    let mut overlap = items[5..].to_vec();
    overlap.extend(more[..5].iter().cloned());
    assert_accepted(&report(&dex, hat, &batch(&overlap)).await, 5, 5);
    let mut want = expected.clone();
    for (k, v) in inbound_totals_of(&ns, &more[..5]) {
        *want.entry(k).or_default() += v;
    }
    assert_eq!(namespace_totals(&dex, &ns).await, want);

    // The same items from another HAT are that HAT's data: counted for it.
    let bob = sc.add_registered(&["bob"]).await.remove(0);
    assert_accepted(&report(&dex, &bob, &body).await, 10, 0);
    for (k, v) in &expected {
        *want.entry(k.clone()).or_default() += v;
    }
    assert_eq!(namespace_totals(&dex, &ns).await, want);
}

/// What inbound items add to `namespace` (read back from their JSON).
fn inbound_totals_of(namespace: &str, items: &[Json]) -> FieldTotals {
    let mut out = FieldTotals::new();
    for item in items {
        let v = item.to_value();
        for s in v["stats"].as_array().unwrap() {
            let props: Vec<(String, i64)> = s["propertyStats"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, c)| (k.clone(), c.as_i64().unwrap()))
                .collect();
            let refs: Vec<(&str, i64)> = props.iter().map(|(k, c)| (k.as_str(), *c)).collect();
            add_totals(
                &mut out,
                namespace,
                &[EndpointStats::new(s["endpoint"].as_str().unwrap(), &refs)],
            );
        }
    }
    out
}

#[tokio::test]
async fn the_same_batch_twenty_times_at_once_is_counted_once() {
    const COPIES: u64 = 20;
    const N: usize = 10;
    let dex = patient_dex();
    let sc = StatsCluster::start(&["alice"]).await;
    let hat = &sc.hats[0];
    let ns = unique_namespace();
    let (items, expected) = inbound_batch(&ns, &HatUser::owner("alice"), base_time(), N, 0);
    let body = batch(&items);
    let log_before = accepted_entries(&hat_log(&dex, hat).await).len();

    let started = Instant::now();
    let outcomes = join_all((0..COPIES).map(|_| report(&dex, hat, &body))).await;
    eprintln!(
        "[timing] 20 concurrent copies of a {N}-item batch: {:?}",
        started.elapsed()
    );

    let accepted: u64 = outcomes.iter().map(|o| o.accepted).sum();
    let duplicates: u64 = outcomes.iter().map(|o| o.duplicates).sum();
    assert_eq!(accepted, N as u64, "{outcomes:?}");
    assert_eq!(duplicates, (COPIES - 1) * N as u64, "{outcomes:?}");
    assert!(
        outcomes.iter().all(|o| o.skipped.is_empty()),
        "{outcomes:?}"
    );
    assert_eq!(namespace_totals(&dex, &ns).await, expected);
    let log = hat_log(&dex, hat).await;
    let entries = accepted_entries(&log);
    let logged: u64 = entries[log_before..]
        .iter()
        .map(|e| e["details"]["items"].as_u64().unwrap())
        .sum();
    assert_eq!(
        logged, N as u64,
        "the log holds exactly the counted items: {entries:?}"
    );
}

#[tokio::test]
async fn twenty_hats_posting_twenty_five_batches_with_resends_at_once_are_counted_exactly() {
    const HATS: usize = 20;
    const BATCHES: usize = 25;
    const ITEMS: usize = 10;
    let dex = patient_dex();
    let labels: Vec<String> = (0..HATS).map(|i| format!("h{i:02}")).collect();
    let label_refs: Vec<&str> = labels.iter().map(String::as_str).collect();
    let started = Instant::now();
    let sc = StatsCluster::start(&label_refs).await;
    eprintln!(
        "[timing] certify a cluster and register {HATS} HATs: {:?}",
        started.elapsed()
    );
    let ns = unique_namespace();
    let t = base_time();

    // Every batch of every HAT, and the ones resent (every third).
    let mut expected = FieldTotals::new();
    let mut posts: Vec<(usize, String)> = Vec::new();
    let mut resends: Vec<(usize, String)> = Vec::new();
    for h in 0..HATS {
        let user = HatUser::owner(&format!("owner{h}"));
        for b in 0..BATCHES {
            let (items, adds) = inbound_batch(&ns, &user, t, ITEMS, b);
            for (k, v) in adds {
                *expected.entry(k).or_default() += v;
            }
            let body = batch(&items);
            if b % 3 == 0 {
                resends.push((h, body.clone()));
            }
            posts.push((h, body));
        }
    }
    let resent = resends.len();
    // Interleave the copies with the originals so they race.
    let mut all = Vec::with_capacity(posts.len() + resent);
    let mut resend_iter = resends.into_iter();
    for (i, post) in posts.into_iter().enumerate() {
        all.push(post);
        if i % 3 == 1
            && let Some(copy) = resend_iter.next()
        {
            all.push(copy);
        }
    }
    all.extend(resend_iter);
    let requests = all.len();
    let data_in_before = figure_value(&figures(&dex).await, "Data In");

    // Every report is started at once; at most MAX_IN_FLIGHT of them are on the wire at a
    // time (see MAX_IN_FLIGHT).
    let started = Instant::now();
    let outcomes: Vec<(usize, ReportOutcome)> =
        futures::stream::iter(all.iter().map(|(h, body)| {
            let dex = dex.clone();
            let hat: TestHat = sc.hats[*h].clone();
            async move { (*h, report(&dex, &hat, body).await) }
        }))
        .buffer_unordered(MAX_IN_FLIGHT)
        .collect()
        .await;
    let elapsed = started.elapsed();
    eprintln!(
        "[timing] {HATS} HATs x {BATCHES} batches of {ITEMS} items + {resent} resends = {requests} reports, {MAX_IN_FLIGHT} in flight: {elapsed:?} ({:.1} reports/s)",
        requests as f64 / elapsed.as_secs_f64()
    );

    let mut per_hat: BTreeMap<usize, (u64, u64)> = BTreeMap::new();
    for (h, o) in &outcomes {
        assert!(o.skipped.is_empty(), "{o:?}");
        let e = per_hat.entry(*h).or_default();
        e.0 += o.accepted;
        e.1 += o.duplicates;
    }
    let resends_per_hat = BATCHES.div_ceil(3) as u64;
    for h in 0..HATS {
        assert_eq!(
            per_hat.get(&h),
            Some(&((BATCHES * ITEMS) as u64, resends_per_hat * ITEMS as u64)),
            "HAT {h}"
        );
    }

    // The namespace's available data is exactly what was sent once.
    let actual = namespace_totals(&dex, &ns).await;
    assert_eq!(actual, expected);
    // Data In moved by at least this much: other tests (and other suites) report at the same
    // time and nothing isolates this figure from them, so only `>=` can be asserted here;
    // the exact figure is the per-namespace one above.
    let data_in_after = figure_value(&figures(&dex).await, "Data In");
    assert!(
        data_in_after - data_in_before >= sum(&expected),
        "{data_in_before} -> {data_in_after}, expected +{}",
        sum(&expected)
    );

    // Each HAT's log: one entry per counted batch, together exactly its items.
    for hat in &sc.hats {
        let entries = accepted_entries(&hat_log(&dex, hat).await);
        let items: u64 = entries
            .iter()
            .map(|e| e["details"]["items"].as_u64().unwrap())
            .sum();
        assert_eq!(
            (entries.len(), items),
            (BATCHES, (BATCHES * ITEMS) as u64),
            "{}",
            hat.address()
        );
    }

    // Top Datapoints titles.
    let figs = figures(&dex).await;
    let top = figs
        .iter()
        .find(|f| f["title"] == "Top Datapoints")
        .unwrap();
    let children = top["children"]
        .as_object()
        .expect("Top Datapoints has children");
    assert!(!children.is_empty() && children.len() <= 20, "{top}");
    for (key, child) in children {
        assert_top_title(key, child);
    }
}

/// A Top Datapoints child: keyed and titled `"<field> in <endpoint> of <namespace>"`, with
/// an integer value and an epoch-ms `updated`.
fn assert_top_title(key: &str, child: &Value) {
    assert_eq!(child["title"], key, "{child}");
    let (rest, namespace) = key
        .rsplit_once(" of ")
        .unwrap_or_else(|| panic!("title {key:?} lacks \" of \""));
    let (field, endpoint) = rest
        .split_once(" in ")
        .unwrap_or_else(|| panic!("title {key:?} lacks \" in \""));
    assert!(
        !field.is_empty() && !endpoint.is_empty() && !namespace.is_empty(),
        "{key:?}"
    );
    assert!(child["value"].as_i64().is_some_and(|v| v > 0), "{child}");
    assert_epoch_ms(&child["updated"]);
}

fn assert_epoch_ms(v: &Value) {
    let ms = v
        .as_i64()
        .unwrap_or_else(|| panic!("updated is not an integer: {v}"));
    assert!(
        ms > 1_577_836_800_000 && ms <= now_millis() + 60_000,
        "updated {ms} is not a recent epoch-ms time"
    );
}

// ---- the public figures ------------------------------------------------------------------

#[tokio::test]
async fn stats_answer_the_documented_figures_in_order() {
    let dex = Dex::new();
    let mut sc = StatsCluster::start(&["alice"]).await;
    let hat = sc.hats[0].clone();

    let figs = figures(&dex).await;
    let titles: Vec<&str> = figs
        .iter()
        .map(|f| f["title"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(titles, FIGURES, "{figs:?}");
    for f in &figs {
        let object = f.as_object().unwrap();
        for key in object.keys() {
            assert!(
                ["title", "value", "updated", "children"].contains(&key.as_str()),
                "{f}"
            );
        }
        assert!(f["value"].as_i64().is_some_and(|v| v >= 0), "{f}");
        assert_epoch_ms(&f["updated"]);
        assert_eq!(
            object.contains_key("children"),
            f["title"] == "Top Datapoints",
            "{f}"
        );
    }
    // "Data Plugs" counts the approved plugs, which other suites register on this stack:
    // plugs_e2e checks it against the listing. "Total Offer Claims" counts the kept claims,
    // which other suites keep on this table too (offers_store): the rules tier checks it
    // exactly (offers_confirm::every_kept_claim_counts_in_total_offer_claims_...).
    assert!(
        figure_value(&figs, "HATs") >= 1,
        "alice is registered: {figs:?}"
    );

    // A field counted more than any other becomes a Top Datapoint titled
    // "<field> in <endpoint> of <namespace>".
    let top = &figs[4];
    let children = top["children"].as_object().unwrap();
    assert!(children.len() <= 20, "{top}");
    children.iter().for_each(|(k, c)| assert_top_title(k, c));
    let highest = children
        .values()
        .filter_map(|c| c["value"].as_i64())
        .max()
        .unwrap_or(0);
    let count = (highest + 1).max(10_000_000);
    let ns = unique_namespace();
    let user = HatUser::owner("alice");
    let t = base_time();
    // A count is at most 10^9 per item: split a larger one.
    let mut items = Vec::new();
    let mut left = count;
    while left > 0 {
        let part = left.min(1_000_000_000);
        items.push(inbound(
            t + items.len() as i64 * 1000,
            &user,
            &[EndpointStats::new(format!("{ns}/feed"), &[("top", part)])],
            "saved",
        ));
        left -= part;
    }
    let data_in_before = figure_value(&figs, "Data In");
    assert_accepted(
        &report(&dex, &hat, &batch(&items)).await,
        items.len() as u64,
        0,
    );
    let figs = figures(&dex).await;
    let title = format!("top in feed of {ns}");
    let child = &figs[4]["children"][&title];
    assert_eq!(child["value"], count, "{}", figs[4]);
    assert_top_title(&title, child);
    assert!(figs[4]["children"].as_object().unwrap().len() <= 20);
    assert!(figure_value(&figs, "Data In") >= data_in_before + count);

    // One more registered HAT: the HATs figure moves (by at least one: other tests register
    // HATs concurrently).
    let hats_before = figure_value(&figs, "HATs");
    sc.add_registered(&["bob"]).await;
    let hats_after = figure_value(&figures(&dex).await, "HATs");
    assert!(hats_after > hats_before, "{hats_before} -> {hats_after}");
}

// ---- refused reports ---------------------------------------------------------------------

#[tokio::test]
async fn reports_without_a_valid_registered_hat_token_are_refused_and_count_nothing() {
    let dex = Dex::new();
    let sc = StatsCluster::start(&["alice"]).await;
    let alice = sc.hats[0].clone();
    let stranger = sc.add_unregistered("stranger");
    let ns = unique_namespace();
    let user = HatUser::owner("alice");
    let t = base_time();
    let item = |i: i64| {
        batch(&[inbound(
            t + i * 1000,
            &user,
            &[EndpointStats::new(format!("{ns}/feed"), &[("n", 1 + i)])],
            "saved",
        )])
    };

    assert_error(post_report(&dex, None, item(0)).await, 401, "").await;
    assert_error(post_report(&dex, Some(""), item(0)).await, 401, "").await;
    assert_error(
        post_report(&dex, Some("not-a-token"), item(0)).await,
        401,
        "",
    )
    .await;
    // A real HAT of a certified cluster, but never registered.
    assert_error(
        post_report(&dex, Some(&report_token(&stranger)), item(0)).await,
        401,
        "",
    )
    .await;
    // Alice's token for another DEX.
    let elsewhere = alice.dex_token("https://dex.example.com");
    assert_error(post_report(&dex, Some(&elsewhere), item(0)).await, 401, "").await;
    assert!(
        namespace_tree(&dex, &ns).await.is_none(),
        "nothing was counted"
    );

    // Alice reports; then her cluster is decertified and her reports are refused.
    assert_accepted(&report(&dex, &alice, &item(1)).await, 1, 0);
    decertify_cluster(&sc.domain).await;
    // HAT keys and certification are cached for DEX_HAT_KEY_CACHE_SECS (1 s here).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_error(
        post_report(&dex, Some(&report_token(&alice)), item(2)).await,
        401,
        "",
    )
    .await;
    assert_error(
        post_report(&dex, Some(&report_token(&alice)), item(1)).await,
        401,
        "",
    )
    .await;

    assert_eq!(
        namespace_totals(&dex, &ns).await,
        totals(&[("feed", "n", 2)])
    );
    let log = stored_log(alice.address()).await;
    assert_eq!(
        log.iter().filter(|e| e.kind == "stats.accepted").count(),
        1,
        "{log:?}"
    );
    assert!(stored_log(stranger.address()).await.is_empty());
}

#[tokio::test]
async fn oversized_deep_and_malformed_bodies_are_refused_and_count_nothing() {
    let dex = patient_dex();
    let sc = StatsCluster::start(&["alice"]).await;
    let hat = &sc.hats[0];
    let ns = unique_namespace();
    let user = HatUser::owner("alice");
    let t = base_time();
    let token = || report_token(hat);

    // 1001 valid items: over the 1000-item limit.
    let items: Vec<Json> = (0..1001)
        .map(|i| {
            inbound(
                t + i * 1000,
                &user,
                &[EndpointStats::new(format!("{ns}/feed"), &[("n", 1)])],
                "saved",
            )
        })
        .collect();
    let resp = post_report(&dex, Some(&token()), batch(&items)).await;
    let status = resp.status().as_u16();
    assert!(status == 413 || status == 400, "1001 items: {status}");
    assert_error(resp, status, "").await;

    // Not an array.
    let one = inbound(
        t,
        &user,
        &[EndpointStats::new(format!("{ns}/feed"), &[("n", 1)])],
        "saved",
    );
    assert_error(
        post_report(&dex, Some(&token()), one.0.clone()).await,
        400,
        "",
    )
    .await;
    assert_error(
        post_report(&dex, Some(&token()), "\"a string\"").await,
        400,
        "",
    )
    .await;
    assert_error(post_report(&dex, Some(&token()), "42").await, 400, "").await;
    assert_error(post_report(&dex, Some(&token()), "null").await, 400, "").await;
    // Empty and malformed.
    assert_error(post_report(&dex, Some(&token()), "").await, 400, "").await;
    assert_error(
        post_report(&dex, Some(&token()), format!("[{}", one.0)).await,
        400,
        "",
    )
    .await;
    assert_error(
        post_report(&dex, Some(&token()), format!("[{}]]", one.0)).await,
        400,
        "",
    )
    .await;
    assert_error(
        post_report(&dex, Some(&token()), "[{\"statsType\":\"inbound\",}]").await,
        400,
        "",
    )
    .await;
    // 10 000 nested arrays.
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert_error(post_report(&dex, Some(&token()), deep).await, 400, "").await;
    // Deep inside an otherwise valid item.
    let deep_item = one.0.replace(
        "\"logEntry\":\"saved\"",
        &format!("\"logEntry\":{}{}", "[".repeat(5000), "]".repeat(5000)),
    );
    let resp = post_report(&dex, Some(&token()), format!("[{deep_item}]")).await;
    assert_error(resp, 400, "").await;
    // Over 5 MiB.
    let huge_item = one.0.replace(
        "\"logEntry\":\"saved\"",
        &format!("\"logEntry\":\"{}\"", "x".repeat(5 * 1024 * 1024 + 10)),
    );
    assert_error(
        post_report(&dex, Some(&token()), format!("[{huge_item}]")).await,
        413,
        "",
    )
    .await;

    assert!(
        namespace_tree(&dex, &ns).await.is_none(),
        "nothing was counted"
    );
    assert!(accepted_entries(&hat_log(&dex, hat).await).is_empty());

    // The same HAT's well-formed report still works.
    assert_accepted(&report(&dex, hat, &batch(&[one])).await, 1, 0);
    assert_eq!(
        namespace_totals(&dex, &ns).await,
        totals(&[("feed", "n", 1)])
    );
}

// ---- descriptions ------------------------------------------------------------------------

#[tokio::test]
async fn admins_merge_descriptions_and_get_the_whole_tree() {
    let dex = Dex::new();
    let admin = admin_token().await;
    let sc = StatsCluster::start(&["alice"]).await;
    let hat = &sc.hats[0];
    let ns = unique_namespace();
    let described_only = unique_namespace();
    let user = HatUser::owner("alice");
    let stats = [EndpointStats::new(
        format!("{ns}/feed"),
        &[("message", 2), ("place.location.latitude", 1)],
    )];
    assert_accepted(
        &report(
            &dex,
            hat,
            &batch(&[inbound(base_time(), &user, &stats, "saved")]),
        )
        .await,
        1,
        0,
    );

    let posted = json!([
        {"namespace": ns, "description": "Test namespace", "endpoints": [
            {"endpoint": "feed", "description": "The feed", "fields": [
                {"name": "place", "fields": [{"name": "location", "fields": [
                    {"name": "latitude", "description": "Latitude in degrees", "count": 999}]}]}]},
            {"endpoint": "new/endpoint", "description": "Described before any data", "fields": [
                {"name": "x", "description": "X"}]}]},
        {"namespace": described_only, "description": "Only described", "endpoints": [
            {"endpoint": "later", "fields": [{"name": "y[]", "fields": [{"name": "z", "description": "Z"}]}]}]}
    ]);
    let path = "/stats/available-data/descriptions";
    let answer = expect_json(
        dex.post_json_idempotent(path, Some(&admin), &posted).await,
        200,
    )
    .await;
    let answer = answer
        .as_array()
        .unwrap_or_else(|| panic!("the answer is the whole tree (an array): {answer}"))
        .clone();
    let find = |tree: &[Value], name: &str| -> Value {
        normalise(
            tree.iter()
                .find(|n| n["namespace"] == name)
                .unwrap_or_else(|| panic!("{name} missing from {tree:?}")),
        )
    };
    let expected_ns = json!({"namespace": ns, "description": "Test namespace", "endpoints": [
        {"endpoint": "feed", "description": "The feed", "fields": [
            {"name": "message", "count": 2},
            {"name": "place", "fields": [{"name": "location", "fields": [
                {"name": "latitude", "description": "Latitude in degrees", "count": 1}]}]}]},
        {"endpoint": "new/endpoint", "description": "Described before any data", "fields": [{"name": "x", "description": "X"}]}]});
    let expected_only = json!({"namespace": described_only, "description": "Only described", "endpoints": [
        {"endpoint": "later", "fields": [{"name": "y[]", "fields": [{"name": "z", "description": "Z"}]}]}]});
    assert_eq!(find(&answer, &ns), expected_ns);
    assert_eq!(find(&answer, &described_only), expected_only);
    // The whole tree: GET /stats/available-data answers the same for these namespaces.
    let listed = available_data(&dex).await;
    assert_eq!(find(&listed, &ns), expected_ns);
    assert_eq!(find(&listed, &described_only), expected_only);
    assert!(
        flatten_namespace(&find(&listed, &ns))
            .get(&("feed".into(), "place.location.latitude".into()))
            == Some(&1)
    );

    // Merging: a later post changes only what it names.
    let update = json!([{"namespace": ns, "description": "Renamed", "endpoints": [
        {"endpoint": "feed", "fields": [{"name": "message", "description": "The text"}]}]}]);
    let answer = expect_json(
        dex.post_json_idempotent(path, Some(&admin), &update).await,
        200,
    )
    .await;
    let merged = find(answer.as_array().unwrap(), &ns);
    assert_eq!(merged["description"], "Renamed");
    assert_eq!(
        merged["endpoints"][0]["description"], "The feed",
        "{merged}"
    );
    assert_eq!(
        merged["endpoints"][0]["fields"][0],
        json!({"name": "message", "description": "The text", "count": 2})
    );
    assert_eq!(
        merged["endpoints"][0]["fields"][1]["fields"][0]["fields"][0]["description"],
        "Latitude in degrees"
    );

    // Only admins.
    let sneaky = json!([{"namespace": described_only, "description": "Hijacked"}]);
    let (_, username, password) = create_account(&admin, &["marketplace"]).await;
    let market = dex.token(&username, &password).await;
    assert_error(dex.post_json(path, Some(&market), &sneaky).await, 403, "").await;
    assert_error(dex.post_json(path, None, &sneaky).await, 401, "").await;
    assert_error(
        dex.post_json(path, Some(&report_token(hat)), &sneaky).await,
        401,
        "",
    )
    .await;
    assert_error(dex.post_json(path, Some("garbage"), &sneaky).await, 401, "").await;
    // Malformed descriptions.
    assert_error(
        dex.post_json(path, Some(&admin), &json!({"namespace": "x"}))
            .await,
        400,
        "",
    )
    .await;
    assert_error(
        dex.send_raw(Method::POST, path, Some(&admin), "[{").await,
        400,
        "",
    )
    .await;
    assert_error(
        dex.post_json(path, Some(&admin), &json!([{"namespace": ""}]))
            .await,
        400,
        "",
    )
    .await;
    assert_eq!(
        find(&available_data(&dex).await, &described_only)["description"],
        "Only described"
    );
}

// ---- the transaction log -----------------------------------------------------------------

#[tokio::test]
async fn accepted_batches_are_logged_with_counts_only_and_duplicates_are_not() {
    let dex = Dex::new();
    let sc = StatsCluster::start(&["alice"]).await;
    let hat = &sc.hats[0];
    let ns = unique_namespace();
    let user = HatUser::owner("alice");
    let t = base_time();
    let debit_key = format!("offer-{}", unique_hex());
    let subject = dex::hats::hat_subject(hat.address());

    let before = hat_log(&dex, hat).await;
    assert!(accepted_entries(&before).is_empty());
    let a = vec![
        inbound(
            t,
            &user,
            &[EndpointStats::new(
                format!("{ns}/feed"),
                &[("secretfield", 3), ("other.path", 2)],
            )],
            "saved",
        ),
        inbound(
            t + 1000,
            &user,
            &[EndpointStats::new(format!("{ns}/notes"), &[("body", 4)])],
            "saved",
        ),
        datadebit(
            t + 2000,
            &user,
            &DataDebit::new(&debit_key, &format!("{ns}/feed"), t),
            "Enable()",
        ),
    ];
    assert_accepted(&report(&dex, hat, &batch(&a)).await, 3, 0);
    let log = hat_log(&dex, hat).await;
    assert_eq!(log.len(), before.len() + 1, "{log:?}");
    let entry = log.last().unwrap();
    assert_eq!(entry["kind"], "stats.accepted");
    assert_eq!(entry["subject"], subject);
    assert_eq!(entry["actor"], subject);
    assert_eq!(entry["details"]["items"], 3, "{entry}");
    assert_eq!(entry["details"]["dataIn"], 9, "{entry}");
    assert_eq!(entry["details"]["dataDebitEvents"], 1, "{entry}");
    // Counts, never payloads.
    let text = entry.to_string();
    for payload in [
        ns.as_str(),
        "secretfield",
        "other.path",
        debit_key.as_str(),
        &user.user_id.to_string(),
        "Enable",
    ] {
        assert!(
            !text.contains(payload),
            "the log entry carries {payload:?}: {text}"
        );
    }

    // A duplicates-only batch, and a batch of invalid items only, add no entry.
    assert_accepted(&report(&dex, hat, &batch(&a)).await, 0, 3);
    let bad = report(&dex, hat, "[1, {\"statsType\":\"nope\"}]").await;
    assert_eq!((bad.accepted, bad.skipped.len()), (0, 2), "{bad:?}");
    assert_eq!(hat_log(&dex, hat).await.len(), before.len() + 1);

    // A partly new batch is logged with its new items only.
    let mut b = a[1..].to_vec();
    b.push(inbound(
        t + 3000,
        &user,
        &[EndpointStats::new(
            format!("{ns}/feed"),
            &[("secretfield", 1)],
        )],
        "saved",
    ));
    assert_accepted(&report(&dex, hat, &batch(&b)).await, 1, 2);
    let log = hat_log(&dex, hat).await;
    assert_eq!(log.len(), before.len() + 2, "{log:?}");
    assert_eq!(log.last().unwrap()["details"]["items"], 1);
    assert_eq!(log.last().unwrap()["details"]["dataIn"], 1);

    // The HAT's history is an intact hash chain.
    let entries: Vec<LogEntry> = log
        .iter()
        .map(|e| serde_json::from_value(e.clone()).expect("log entry"))
        .collect();
    assert_eq!(verify_chain(&entries), Ok(()));
}

// ---- lenient inputs ----------------------------------------------------------------------

#[tokio::test]
async fn lenient_inputs_paths_and_resources_are_accepted() {
    let dex = Dex::new();
    let sc = StatsCluster::start(&["alice"]).await;
    let hat = &sc.hats[0];
    let ns = unique_namespace();
    let user = HatUser::owner("alice");
    let t = base_time();
    let hat_t = dex_tests::stats_support::hat_time(t);
    // `time` in every form the ecosystem writes (docs/decisions.md §1), the same instant each time.
    let times = [
        Json::str(&hat_t),
        Json::num(t),
        Json::str(&hat_t.replace("+0000", "+00:00")),
        Json::str(&hat_t.replace("+0000", "Z")),
        Json::str(&dex_tests::stats_support::iso_time(t)),
        Json::str(&dex_tests::stats_support::hat_time(t + 3_600_000).replace("+0000", "+0100")),
    ];
    let mut items: Vec<Json> = times
        .into_iter()
        .enumerate()
        .map(|(i, time)| {
            Json::obj(vec![
                ("time", time),
                ("user", user.json()),
                (
                    "stats",
                    Json::arr(vec![
                        EndpointStats::new(format!("{ns}/feed"), &[(&format!("f{i}"), 1)]).json(),
                    ]),
                ),
                ("logEntry", Json::str("saved")),
                ("statsType", Json::str("inbound")),
            ])
        })
        .collect();
    // Unknown fields anywhere are ignored (a user with `pass`, extra keys).
    let mut odd_user = user.json().to_value();
    odd_user["pass"] = json!("$2a$10$notreallyahash");
    items.push(Json::obj(vec![
        ("time", Json::str(&hat_t)),
        ("user", Json::value(&odd_user)),
        (
            "stats",
            Json::arr(vec![
                EndpointStats::new(format!("{ns}/feed"), &[("f6", 1)]).json(),
            ]),
        ),
        ("logEntry", Json::str("saved")),
        ("hatVersion", Json::str("v2.8.18")),
        ("extra", Json::value(&json!({"nested": [1, 2, 3]}))),
        ("statsType", Json::str("inbound")),
    ]));
    let n = items.len() as u64;
    assert_accepted(&report(&dex, hat, &batch(&items)).await, n, 0);
    let want: FieldTotals = (0..n)
        .map(|i| (("feed".to_owned(), format!("f{i}")), 1))
        .collect();
    assert_eq!(namespace_totals(&dex, &ns).await, want);

    // A HAT whose DEX address ends with a slash: its token's resource has one, and it posts
    // to //stats/report (docs/hats.md §2, §3.4); a trailing slash on the path too.
    let slash_token = hat
        .token_builder(&format!("{}/", support::public_url()))
        .build();
    let more = |i: i64| {
        batch(&[inbound(
            t + i * 1000,
            &user,
            &[EndpointStats::new(format!("{ns}/more"), &[("g", 1)])],
            "saved",
        )])
    };
    let resp = dex
        .send_raw(Method::POST, "/stats/report", Some(&slash_token), more(1))
        .await;
    assert_accepted(&parse_outcome(resp).await, 1, 0);
    let resp = dex
        .send_raw(
            Method::POST,
            "//stats/report",
            Some(&report_token(hat)),
            more(2),
        )
        .await;
    assert_accepted(&parse_outcome(resp).await, 1, 0);
    let resp = dex
        .send_raw(
            Method::POST,
            "/stats/report/",
            Some(&report_token(hat)),
            more(3),
        )
        .await;
    assert_accepted(&parse_outcome(resp).await, 1, 0);
    // The same item through another path is the same item.
    let resp = dex
        .send_raw(
            Method::POST,
            "//stats/report",
            Some(&report_token(hat)),
            more(1),
        )
        .await;
    assert_accepted(&parse_outcome(resp).await, 0, 1);
    assert_eq!(
        namespace_totals(&dex, &ns)
            .await
            .get(&("more".to_owned(), "g".to_owned())),
        Some(&3)
    );
}

#[tokio::test]
async fn a_copy_inside_one_batch_is_reported_as_a_duplicate() {
    let dex = Dex::new();
    let sc = StatsCluster::start(&["alice"]).await;
    let hat = &sc.hats[0];
    let ns = unique_namespace();
    let user = HatUser::owner("alice");
    let t = base_time();
    let a = inbound(
        t,
        &user,
        &[EndpointStats::new(format!("{ns}/feed"), &[("a", 2)])],
        "saved",
    );
    let b = inbound(
        t + 1000,
        &user,
        &[EndpointStats::new(format!("{ns}/feed"), &[("b", 3)])],
        "saved",
    );
    // HAT2.0's overlapping upload runs can put the same row twice into what DEX receives;
    // the copy is counted once, and every item of the batch is accounted for in the answer.
    let outcome = report(&dex, hat, &batch(&[a.clone(), b, a])).await;
    assert_eq!(
        namespace_totals(&dex, &ns).await,
        totals(&[("feed", "a", 2), ("feed", "b", 3)])
    );
    assert_eq!(
        (outcome.accepted, outcome.duplicates, outcome.skipped.len()),
        (2, 1, 0),
        "3 items posted, 2 counted: the third (a copy of the first) must be reported as a duplicate: {outcome:?}"
    );
}

// ---- the sample events -------------------------------------------------------------------

fn sample_event(name: &str) -> Value {
    let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"))
}

/// The sample events' bodies are what DEX accepts (their shape and routing are checked by the
/// fast tests in tests/tests/routes.rs, for every function).
#[tokio::test]
async fn the_sample_stats_bodies_count_and_merge() {
    // The report body is a real HAT2.0 batch: posted by a registered HAT (under a namespace
    // of this test), every item counts.
    let dex = Dex::new();
    let sc = StatsCluster::start(&["alice"]).await;
    let ns = unique_namespace();
    let body = sample_event("stats-report.json")["body"]
        .as_str()
        .unwrap()
        .replace("rumpel/", &format!("{ns}/"));
    assert_accepted(&report(&dex, &sc.hats[0], &body).await, 2, 0);
    assert_eq!(
        namespace_totals(&dex, &ns).await,
        totals(&[
            ("locations", "latitude", 2),
            ("locations", "longitude", 2),
            ("locations", "place.name", 1),
            ("locations", "tags[]", 3)
        ])
    );
    // The descriptions body merges as an admin's.
    let body = sample_event("stats-descriptions.json")["body"]
        .as_str()
        .unwrap()
        .replace("\"rumpel\"", &format!("\"{ns}\""));
    let body: Value = serde_json::from_str(&body).expect("the sample body is JSON");
    let answer = expect_json(
        dex.post_json_idempotent(
            "/stats/available-data/descriptions",
            Some(&admin_token().await),
            &body,
        )
        .await,
        200,
    )
    .await;
    let tree = answer
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["namespace"] == ns)
        .cloned()
        .expect("the namespace is in the answer");
    assert_eq!(tree["description"], "Data written by Rumpel");
    assert_eq!(
        flatten_namespace(&tree).get(&("locations".into(), "place.name".into())),
        Some(&1)
    );
}
