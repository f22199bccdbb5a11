//! Statistics benchmarks (docs/decisions.md §7): concurrent ingestion through `stats-report`, and
//! `--scale` seeding of many HATs and reported values through DEX's own write paths.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use dex::accounts::Actor;
use dex::hats::key::HatKey;
use dex::hats::{HatStore, RegisteredHat};
use dex::ports::Clock;
use dex::stats::report::parse_item;
use dex::txlog::{Kind, LogEvent};
use dex_lambda::App;
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::{Value, json};

use crate::events::{self, Event};
use crate::harness::{Bench, ms, percentile};
use crate::results::{
    DataSet, IngestPhase, IngestResult, Outcome, ReadPair, ReadsFlat, Seeding, WarmEntry, per_op,
};
use dex_tests::aws_proxy::{self as proxy, Counts};
use dex_tests::runtime_api::{self as runtime, FunctionProcess, RuntimeApi};

/// The endpoints reported data lands in: 10 namespaces × 5 endpoints.
const NAMESPACES: [(&str, [&str; 5]); 10] = [
    (
        "rumpel",
        ["locations", "notables", "profile", "diary", "settings"],
    ),
    ("facebook", ["feed", "profile", "events", "likes", "posts"]),
    (
        "twitter",
        ["tweets", "profile", "followers", "mentions", "likes"],
    ),
    (
        "fitbit",
        ["activity", "sleep", "weight", "profile", "steps"],
    ),
    (
        "spotify",
        ["feed", "profile", "playlists", "recent", "tracks"],
    ),
    ("google", ["calendar", "contacts", "drive", "gmail", "fit"]),
    (
        "instagram",
        ["feed", "profile", "stories", "likes", "comments"],
    ),
    (
        "monzo",
        ["transactions", "accounts", "pots", "balance", "feed"],
    ),
    (
        "strava",
        ["activities", "athlete", "routes", "segments", "clubs"],
    ),
    (
        "she",
        ["insights", "sentiment", "activity", "weekly", "feed"],
    ),
];

/// Field paths of reported records (`propertyStats` keys); each endpoint has four.
const FIELDS: [&str; 8] = [
    "id",
    "createdTime",
    "data.message",
    "data.tags[]",
    "location.latitude",
    "location.longitude",
    "source.name",
    "source.url",
];

pub const ENDPOINTS: usize = 50;

/// The concurrent ingestion benchmark's name (and function).
pub const INGEST: &str = "stats-report";

fn endpoint(index: usize) -> (String, [&'static str; 4]) {
    let index = index % ENDPOINTS;
    let (namespace, endpoints) = NAMESPACES[index / 5];
    let f = index % 5;
    (
        format!("{namespace}/{}", endpoints[f]),
        [FIELDS[f], FIELDS[f + 1], FIELDS[f + 2], FIELDS[f + 3]],
    )
}

/// `2021-03-10T13:34:59+0000`: the HAT's time format.
fn hat_time(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%z")
        .to_string()
}

/// A HAT owner as the HAT writes it into DataStats (`pass` left out).
fn user(run: u32, hat: usize) -> Value {
    json!({
        "userId": format!("{run:08x}-{:04x}-4000-8000-{hat:012x}", (hat >> 16) & 0xffff),
        "email": format!("owner-{hat}@bench.hubat.net"),
        "name": format!("Bench owner {hat}"),
        "role": "owner",
        "roles": [{ "role": "owner" }],
    })
}

/// One `inbound` item, exactly as a HAT posts it.
fn inbound(time: i64, user: &Value, endpoint: &str, fields: &[(&str, i64)]) -> Value {
    let stats: serde_json::Map<String, Value> = fields
        .iter()
        .map(|(f, c)| ((*f).to_owned(), json!(c)))
        .collect();
    json!({
        "time": hat_time(time),
        "user": user,
        "stats": [{ "endpoint": endpoint, "propertyStats": stats }],
        "logEntry": format!("saved batch for {endpoint}"),
        "statsType": "inbound",
    })
}

/// An hour two days before now, whole: reports sit in their own hour (as a HAT's batch of
/// 100 writes or 60 s does), so a report's duplicate markers fall in at most 8 buckets.
fn base_hour() -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    now / 3600 * 3600 - 48 * 3600
}

/// Report `report` of HAT `hat`: `items` unique inbound items over 5 endpoints, all in one
/// hour.
fn report_items(run: u32, base: i64, hat: usize, report: usize, items: usize) -> Vec<Value> {
    let owner = user(run, hat);
    let step = (3600 / items.max(1)).max(1) as i64;
    (0..items)
        .map(|i| {
            let (name, fields) = endpoint(hat * 7 + report * 3 + i % 5);
            let counts: Vec<(&str, i64)> = fields
                .iter()
                .enumerate()
                .map(|(k, f)| (*f, 1 + ((i + k) % 3) as i64))
                .collect();
            inbound(
                base + report as i64 * 3600 + i as i64 * step,
                &owner,
                &name,
                &counts,
            )
        })
        .collect()
}

fn report_event(token: &str, items: Vec<Value>) -> Bytes {
    Bytes::from(
        Event::post("/stats/report")
            .header("accept", "application/json")
            .header("x-auth-token", token)
            .json_body(&Value::Array(items))
            .build()
            .to_string(),
    )
}

#[derive(Clone, Debug, Serialize)]
pub struct IngestSettings {
    pub hats: usize,
    #[serde(rename = "reports_per_hat")]
    pub reports: usize,
    #[serde(rename = "items_per_report")]
    pub items: usize,
}

struct Worker {
    address: String,
    api: RuntimeApi,
    process: Option<FunctionProcess>,
    /// Report 0 (the cold one) and reports 1..=R.
    reports: Vec<Bytes>,
}

/// What one report's answer says.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Answer {
    status: u16,
    accepted: u64,
    duplicates: u64,
}

impl Worker {
    /// Sends report `index`; returns the latency (from spawn when `since` is given) and answer.
    async fn send(
        &mut self,
        index: usize,
        timeout: Duration,
        since: Option<Instant>,
    ) -> Result<(f64, Answer, String), String> {
        let process = self.process.as_mut().ok_or("process not started")?;
        let invocation = self
            .api
            .invoke(process, self.reports[index].clone(), timeout)
            .await?;
        let latency = match since {
            Some(start) => ms(invocation.responded.saturating_duration_since(start)),
            None => ms(invocation.latency()),
        };
        let response = invocation.response();
        let body = events::response_json(&response).unwrap_or_default();
        let answer = Answer {
            status: runtime::status_of(&response),
            accepted: body.get("accepted").and_then(Value::as_u64).unwrap_or(0),
            duplicates: body.get("duplicates").and_then(Value::as_u64).unwrap_or(0),
        };
        Ok((latency, answer, events::response_body(&response)))
    }
}

fn phase(
    latencies: &mut [f64],
    counts: &Counts,
    reports: usize,
    items: usize,
    seconds: f64,
) -> IngestPhase {
    latencies.sort_by(f64::total_cmp);
    let n = reports.max(1) as f64;
    IngestPhase {
        reports,
        items: reports * items,
        seconds,
        items_per_s: (reports * items) as f64 / seconds,
        reports_per_s: reports as f64 / seconds,
        p50_ms: percentile(latencies, 50.0),
        p99_ms: percentile(latencies, 99.0),
        max_ms: latencies.last().copied().unwrap_or(f64::NAN),
        dynamodb_per_report: proxy::total(counts) as f64 / n,
        dynamodb_ops_per_report: per_op(counts, n),
    }
}

/// `settings.hats` stats-report processes, one per HAT, each with its own Runtime API, post
/// their reports concurrently: first one report each (cold processes), then `reports` more
/// each (the throughput figure), then each resends an already counted report (duplicates).
pub async fn ingest(
    bench: &Bench,
    hats: &[(String, String)],
    settings: &IngestSettings,
) -> Result<IngestResult, String> {
    const FUNCTION: &str = INGEST;
    let run = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0);
    let base = base_hour();
    let mut workers = Vec::with_capacity(hats.len());
    for (h, (address, token)) in hats.iter().enumerate() {
        let reports = (0..=settings.reports)
            .map(|r| report_event(token, report_items(run, base, h, r, settings.items)))
            .collect();
        workers.push(Worker {
            address: address.clone(),
            api: RuntimeApi::start(FUNCTION)
                .await
                .map_err(|e| e.to_string())?,
            process: None,
            reports,
        });
    }
    let timeout = bench.timeout.max(Duration::from_secs(60));
    let mut unexpected: Vec<String> = Vec::new();
    let mut expect = |phase: &str, address: &str, answer: Answer, body: &str, want: (u64, u64)| {
        if answer.status != 200 || (answer.accepted, answer.duplicates) != want {
            unexpected.push(format!(
                "{phase} report of {address}: status {}, {body}",
                answer.status
            ));
        }
    };
    let items = settings.items as u64;

    // 1. Cold: every process starts and counts its first report.
    let before = bench.proxies.snapshot();
    let started = Instant::now();
    for worker in &mut workers {
        worker.process = Some(bench.spawn(FUNCTION, &worker.api)?);
    }
    let firsts = futures_util::future::join_all(
        workers
            .iter_mut()
            .map(|w| w.send(0, timeout, Some(started))),
    )
    .await;
    let seconds = started.elapsed().as_secs_f64();
    let counts = bench.proxies.since(&before).dynamodb;
    let mut latencies = Vec::new();
    for (worker, first) in workers.iter().zip(firsts) {
        let (latency, answer, body) = first?;
        expect("first", &worker.address, answer, &body, (items, 0));
        latencies.push(latency);
    }
    let first = phase(
        &mut latencies,
        &counts,
        workers.len(),
        settings.items,
        seconds,
    );

    // 2. Warm: every process counts its other reports, in sequence; all processes at once.
    let before = bench.proxies.snapshot();
    let started = Instant::now();
    let runs = futures_util::future::join_all(workers.iter_mut().map(|w| async move {
        let mut out = Vec::new();
        for r in 1..w.reports.len() {
            out.push(w.send(r, timeout, None).await?);
        }
        Ok::<_, String>(out)
    }))
    .await;
    let seconds = started.elapsed().as_secs_f64();
    let counts = bench.proxies.since(&before).dynamodb;
    let mut latencies = Vec::new();
    for (worker, run) in workers.iter().zip(runs) {
        for (latency, answer, body) in run? {
            expect("fresh", &worker.address, answer, &body, (items, 0));
            latencies.push(latency);
        }
    }
    let fresh = phase(
        &mut latencies,
        &counts,
        workers.len() * settings.reports,
        settings.items,
        seconds,
    );

    // 3. Duplicates: every HAT resends its second report (counted in step 2), all at once.
    let before = bench.proxies.snapshot();
    let started = Instant::now();
    let resent = futures_util::future::join_all(
        workers
            .iter_mut()
            .map(|w| w.send(1.min(w.reports.len() - 1), timeout, None)),
    )
    .await;
    let seconds = started.elapsed().as_secs_f64();
    let counts = bench.proxies.since(&before).dynamodb;
    let mut latencies = Vec::new();
    for (worker, resend) in workers.iter().zip(resent) {
        let (latency, answer, body) = resend?;
        expect("resent", &worker.address, answer, &body, (0, items));
        latencies.push(latency);
    }
    let duplicate = phase(
        &mut latencies,
        &counts,
        workers.len(),
        settings.items,
        seconds,
    );
    drop(workers);

    Ok(IngestResult {
        name: FUNCTION,
        function: FUNCTION,
        processes: hats.len(),
        reports_per_hat: settings.reports,
        items_per_report: settings.items,
        endpoints_per_report: 5.min(settings.items),
        first,
        fresh,
        duplicate,
        unexpected: unexpected
            .first()
            .map(|u| format!("{} of them, first: {u}", unexpected.len())),
    })
}

#[derive(Clone, Debug, Serialize)]
pub struct ScaleSettings {
    pub hats: usize,
    pub values: u64,
    pub reports: usize,
    #[serde(rename = "seed_concurrency")]
    pub concurrency: usize,
}

/// Seeds `settings.hats` registered HATs (`HatStore::insert_hat`, as registration does) and
/// `settings.reports` one-item reports whose counts sum to `settings.values`
/// (`stats::ingest::ingest`, as stats-report does), over [`ENDPOINTS`] endpoints, with at most
/// `settings.concurrency` writes in flight.
pub async fn seed(app: &App, domain: &str, settings: &ScaleSettings) -> Result<Seeding, String> {
    let run = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0);
    let pem = dex_tests::test_hat::fresh_rsa2048_public_key_pem();
    let key = HatKey::parse(&pem)?;
    let address = |k: usize| format!("s{run:08x}-{k:05}.{domain}");
    let concurrency = settings.concurrency.max(1);
    // The store as `App` builds it (the bench seeds below the services, as the functions' store).
    let (dynamodb, _) = dex_aws::aws_clients().await;
    let store = &dex_aws::dynamo::DynamoStore::new(
        dynamodb,
        app.config().table.clone(),
        std::sync::Arc::new(dex::ports::SystemClock),
        std::sync::Arc::new(dex::ports::SystemRandom),
    );
    let fail = |what: &str, e: dex::DexError| format!("{what}: {}", crate::hats::describe(&e));

    // HATs.
    eprint!("dex-bench: seeding {} HATs ", settings.hats);
    let started = Instant::now();
    let now = dex::ports::SystemClock.now_millis();
    let mut inserts = futures_util::stream::iter(0..settings.hats)
        .map(|k| {
            let hat = RegisteredHat {
                address: address(k),
                cluster: domain.to_owned(),
                public_key_pem: key.pem.clone(),
                key_fingerprint: key.fingerprint.clone(),
                registered_at: now,
                key_updated_at: now,
                application_id: None,
                version: 1,
            };
            let event = LogEvent::new(
                hat.subject(),
                Kind::HatRegistered,
                &Actor::Anonymous,
                json!({
                    "cluster": domain, "keyFingerprint": key.fingerprint, "keyBits": key.bits,
                    "applicationId": null,
                }),
            );
            async move { store.insert_hat(&hat, event).await }
        })
        .buffer_unordered(concurrency);
    let mut inserted = 0usize;
    let mut done = 0usize;
    while let Some(result) = inserts.next().await {
        inserted += usize::from(result.map_err(|e| fail("inserting a HAT", e))?);
        done += 1;
        if done.is_multiple_of(1000) {
            eprint!(".");
        }
    }
    drop(inserts);
    let hat_seconds = started.elapsed().as_secs_f64();
    eprintln!(" {hat_seconds:.0} s");

    // Reported values: report k comes from seeded HAT k (mod the HATs), one item whose four
    // counts make its share of the total.
    eprint!(
        "dex-bench: seeding {} reports ({} values) ",
        settings.reports, settings.values
    );
    let started = Instant::now();
    let base = base_hour() - 24 * 3600;
    let reports = settings.reports.max(1) as u64;
    let per_report = settings.values / reports;
    let extra = settings.values % reports;
    let mut ingests = futures_util::stream::iter(0..settings.reports)
        .map(|k| {
            let total = (per_report + u64::from((k as u64) < extra)) as i64;
            let (name, fields) = endpoint(k);
            let counts: Vec<(&str, i64)> = fields
                .iter()
                .enumerate()
                .map(|(i, f)| (*f, total / 4 + i64::from((i as i64) < total % 4)))
                .filter(|(_, c)| *c > 0)
                .collect();
            let hat = k % settings.hats.max(1);
            let value = inbound(base + k as i64, &user(run, hat), &name, &counts);
            let address = address(hat);
            async move {
                let item = parse_item(&value).map_err(|e| format!("seed item: {e}"))?;
                dex::stats::ingest::ingest(store, &address, &[item])
                    .await
                    .map_err(|e| fail("ingesting a report", e))
            }
        })
        .buffer_unordered(concurrency);
    let (mut accepted, mut duplicates, mut done) = (0usize, 0usize, 0usize);
    while let Some(result) = ingests.next().await {
        let outcome = result?;
        accepted += outcome.accepted;
        duplicates += outcome.duplicates;
        done += 1;
        if done.is_multiple_of(1000) {
            eprint!(".");
        }
    }
    drop(ingests);
    let value_seconds = started.elapsed().as_secs_f64();
    eprintln!(" {value_seconds:.0} s");

    Ok(Seeding {
        hats: settings.hats,
        hats_inserted: inserted,
        hat_seconds,
        hats_per_s: settings.hats as f64 / hat_seconds,
        reports: settings.reports,
        values: settings.values,
        items_accepted: accepted,
        items_duplicate: duplicates,
        endpoints: ENDPOINTS.min(settings.reports),
        value_seconds,
        reports_per_s: settings.reports as f64 / value_seconds,
        concurrency,
        seconds: hat_seconds + value_seconds,
    })
}

/// What a stats read saw in its first response: the HATs and Data In figures (GET /stats) or
/// the tree's size (GET /stats/available-data).
pub fn data_set(first: Option<&Value>, label: &'static str) -> DataSet {
    let mut out = DataSet {
        label,
        ..DataSet::default()
    };
    let Some(Value::Array(items)) = first.and_then(events::response_json) else {
        return out;
    };
    for item in &items {
        match item["title"].as_str() {
            Some("HATs") => out.hats = item["value"].as_i64(),
            Some("Data In") => out.data_in = item["value"].as_i64(),
            _ => {}
        }
    }
    if items.iter().all(|i| i.get("namespace").is_some()) {
        out.namespaces = Some(items.len());
        out.endpoints = Some(
            items
                .iter()
                .map(|n| n["endpoints"].as_array().map_or(0, Vec::len))
                .sum(),
        );
    }
    out
}

/// Whether the stats reads cost as many DynamoDB requests at scale (`<name>@scale`) as on
/// the small data set (`None`: nothing to compare).
pub fn reads_flat(reads: &[WarmEntry]) -> Option<ReadsFlat> {
    let mut pairs = Vec::new();
    for small in reads
        .iter()
        .filter(|r| r.data_set.as_ref().is_some_and(|d| d.label == "small"))
    {
        let scale_name = format!("{}@scale", small.name);
        let Some(scale) = reads.iter().find(|r| r.name == scale_name) else {
            continue;
        };
        let (Outcome::Measured(a), Outcome::Measured(b)) = (&small.outcome, &scale.outcome) else {
            continue;
        };
        let (Some(da), Some(db)) = (a.per_request.dynamodb, b.per_request.dynamodb) else {
            continue;
        };
        pairs.push(ReadPair {
            name: small.name.clone(),
            small_dynamodb_per_request: da,
            scale_dynamodb_per_request: db,
            small_p50_ms: a.p50_ms,
            scale_p50_ms: b.p50_ms,
            small_p99_ms: a.p99_ms,
            scale_p99_ms: b.p99_ms,
        });
    }
    let met = pairs
        .iter()
        .all(|p| p.scale_dynamodb_per_request <= p.small_dynamodb_per_request + 1e-9);
    (!pairs.is_empty()).then_some(ReadsFlat { met, reads: pairs })
}

/// The ingestion benchmark, skipped without the test HAT cluster or the binary.
pub async fn run_ingest(
    bench: &Bench,
    hats: Option<&[(String, String)]>,
    settings: &IngestSettings,
    ok: &mut bool,
) -> Outcome<IngestResult> {
    let Some(hats) = hats else {
        let skipped = "no test HAT cluster".to_owned();
        return Outcome::Skipped { skipped };
    };
    if !bench.binary(INGEST).is_file() {
        let skipped = "no release binary".to_owned();
        return Outcome::Skipped { skipped };
    }
    eprintln!(
        "dex-bench: {INGEST}: {} processes × {} reports × {} items, concurrently",
        settings.hats,
        settings.reports + 1,
        settings.items
    );
    match ingest(bench, hats, settings).await {
        Ok(result) => {
            if let Some(u) = &result.unexpected {
                eprintln!("dex-bench: {INGEST}: unexpected {u}");
                *ok = false;
            }
            Outcome::Measured(result)
        }
        Err(error) => {
            eprintln!("dex-bench: {INGEST}: {error}");
            *ok = false;
            Outcome::Failed { error }
        }
    }
}

/// Runs the stats read cases, naming them `<name><suffix>` and labelling their data set.
pub async fn run_reads<'a>(
    bench: &Bench,
    cases: impl Iterator<Item = &'a events::WarmCase>,
    suffix: &str,
    label: &'static str,
    ctx: &mut events::Ctx,
    requests: usize,
    ok: &mut bool,
) -> Vec<WarmEntry> {
    let mut reads = Vec::new();
    for case in cases {
        let name = format!("{}{suffix}", case.name);
        let (mut entry, first) = bench.run_case(case, &name, ctx, requests, ok).await;
        entry.data_set = Some(data_set(first.as_ref(), label));
        reads.push(entry);
    }
    reads
}

/// `--scale` (`settings`): seeds (through `app`, or a DEX app of its own), then runs the
/// reads again. Nothing without settings.
pub async fn run_scale<'a>(
    bench: &Bench,
    app: Option<&App>,
    cases: impl Iterator<Item = &'a events::WarmCase>,
    settings: Option<&ScaleSettings>,
    ctx: &mut events::Ctx,
    requests: usize,
    ok: &mut bool,
) -> (Option<Outcome<Seeding>>, Vec<WarmEntry>) {
    let Some(settings) = settings else {
        return (None, Vec::new());
    };
    let seeded = match app {
        Some(app) => seed(app, crate::hats::CLUSTER_DOMAIN, settings).await,
        None => match crate::hats::dex_app(&ctx.public_url).await {
            Ok(app) => seed(&app, crate::hats::CLUSTER_DOMAIN, settings).await,
            Err(e) => Err(e),
        },
    };
    match seeded {
        Ok(seeding) => {
            let reads = run_reads(bench, cases, "@scale", "scale", ctx, requests, ok).await;
            (Some(Outcome::Measured(seeding)), reads)
        }
        Err(error) => {
            eprintln!("dex-bench: seeding: {error}");
            *ok = false;
            (Some(Outcome::Failed { error }), Vec::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_are_unique_hat_format_items() {
        let base = 1_615_383_000 / 3600 * 3600;
        let items = report_items(7, base, 3, 2, 100);
        assert_eq!(items.len(), 100);
        let first = &items[0];
        assert_eq!(first["statsType"], "inbound");
        assert!(first["time"].as_str().unwrap().ends_with("+0000"));
        let parsed: Vec<_> = items.iter().map(|i| parse_item(i).unwrap()).collect();
        let identities: std::collections::HashSet<_> = parsed.iter().map(|p| p.identity).collect();
        assert_eq!(identities.len(), 100);
        let hours: std::collections::HashSet<_> =
            parsed.iter().map(|p| p.time / 3_600_000).collect();
        assert_eq!(hours.len(), 1);
        let endpoints: std::collections::HashSet<_> = items
            .iter()
            .map(|i| i["stats"][0]["endpoint"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(endpoints.len(), 5);
        let all: std::collections::HashSet<_> = (0..ENDPOINTS).map(|i| endpoint(i).0).collect();
        assert_eq!(all.len(), ENDPOINTS);
    }
}
