//! The targets, judged from the results, and the tables printed from them.

use crate::floor::{FLOOR, FLOOR_CASE};
use crate::results::{
    ColdResult, Counts, IngestPhase, KeyReads, Onboarding, Outcome, PerOp, ReadsFlat, Results,
    Targets, WarmEntry,
};

const TARGET_COLD_MS: f64 = 50.0;
const TARGET_ZIP_BYTES: u64 = 8_000_000;
const TARGET_INIT_RATIO: f64 = 2.0;
const TARGET_WARM_JWKS_RATIO: f64 = 1.5;
/// The functions that hash a password (argon2id) on purpose: their first response may be slow.
const PASSWORD_HASHING: [&str; 2] = ["access-token", "admin-accounts-create"];

pub fn targets(
    functions: &[ColdResult],
    warm: &[WarmEntry],
    onboarding: &Option<Outcome<Onboarding>>,
    stats_reads_flat: Option<ReadsFlat>,
) -> Targets {
    let names = |keep: &dyn Fn(&ColdResult) -> bool| {
        functions
            .iter()
            .filter(|f| keep(f))
            .map(|f| f.name.clone())
            .collect()
    };
    let p50 = |name: &str| {
        warm.iter()
            .find(|w| w.name == name)
            .and_then(WarmEntry::result)
            .map(|r| r.p50_ms)
    };
    Targets {
        cold_first_response_ms_below: TARGET_COLD_MS,
        cold_first_response_exempt: PASSWORD_HASHING.to_vec(),
        cold_start_over: names(&|f| {
            !PASSWORD_HASHING.contains(&f.name.as_str())
                && f.measured
                    .as_ref()
                    .is_some_and(|m| m.times.first_response_ms >= TARGET_COLD_MS)
        }),
        zip_bytes_at_most: TARGET_ZIP_BYTES,
        zip_over: names(&|f| f.zip_bytes > TARGET_ZIP_BYTES),
        init_floor_ratio_at_most: TARGET_INIT_RATIO,
        init_over: names(&|f| f.ratios().is_some_and(|(init, _)| init > TARGET_INIT_RATIO)),
        warm_jwks_floor_ratio_at_most: TARGET_WARM_JWKS_RATIO,
        warm_jwks_floor_ratio: p50("jwks").zip(p50(FLOOR_CASE)).map(|(j, f)| j / f),
        verified_hat_request: onboarding
            .as_ref()
            .and_then(Outcome::measured)
            .and_then(|o| o.verified_request.as_ref())
            .map(|v| v.met),
        forged_tokens: warm
            .iter()
            .find(|w| w.name == "hat-log-forged")
            .and_then(WarmEntry::result)
            .and_then(forged_tokens),
        stats_reads_flat,
    }
}

/// The key re-reads allowed: one per HAT per `RefreshLimits::per_hat` (5 s) of the run.
fn forged_tokens(r: &crate::results::WarmResult) -> Option<crate::results::ForgedTokens> {
    let per_request = r.per_request.dynamodb?;
    let seconds = r.requests as f64 / r.throughput_per_s;
    let per_hat = dex::hats::verify::RefreshLimits::default()
        .per_hat
        .as_secs_f64();
    let bound = 1.0 + (seconds / per_hat).floor();
    let dynamodb_requests = per_request * r.requests as f64;
    Some(crate::results::ForgedTokens {
        requests: r.requests,
        seconds,
        dynamodb_requests,
        bound,
        met: dynamodb_requests <= bound + 1e-9,
    })
}

fn num(value: Option<f64>, decimals: usize) -> String {
    match value {
        Some(v) if v.is_finite() => format!("{v:.decimals$}"),
        _ => "-".into(),
    }
}

fn count(value: Option<u64>) -> String {
    value.map_or("-".into(), |v| v.to_string())
}

fn ratio(value: Option<f64>) -> String {
    match value {
        Some(v) if v.is_finite() => format!("{v:.1}x"),
        _ => "-".into(),
    }
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn short(op: &str) -> &str {
    op.rsplit('.').next().unwrap_or(op)
}

fn ops(counts: &Counts) -> String {
    let list: Vec<String> = counts
        .iter()
        .map(|(op, n)| format!("{}×{n}", short(op)))
        .collect();
    list.join(" ")
}

fn per_ops(counts: &PerOp) -> String {
    let list: Vec<String> = counts
        .iter()
        .map(|(op, v)| match v.fract() == 0.0 {
            true => format!("{}×{v}", short(op)),
            false => format!("{}×{v:.2}", short(op)),
        })
        .collect();
    list.join(" ")
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

pub fn print(r: &Results) {
    println!();
    if let Some(seconds) = r.build_seconds {
        println!("release build: {seconds:.0} s");
    }
    let load = |l: Option<[f64; 3]>| {
        l.map_or("-".into(), |l| {
            format!("{:.1} {:.1} {:.1}", l[0], l[1], l[2])
        })
    };
    println!(
        "machine: {} cpus; load average (1/5/15 min) {} at the start, {} at the end",
        r.machine.cpus,
        load(r.machine.load_at_start),
        load(r.machine.load_at_end)
    );
    print_cold(r);
    print_init(r);
    print_warm(r);
    if let Some(onboarding) = &r.hat_onboarding {
        print_onboarding(onboarding);
    }
    if let Some(ingest) = &r.stats_ingest {
        print_ingest(ingest);
    }
    print_reads(r);
    if let Some(push) = &r.update_application {
        print_push(push);
    }
    print_exchange(r);
    if let Some(growth) = &r.registry_growth {
        print_growth(growth);
    }
    let parts: Vec<String> = r
        .phase_seconds
        .laps
        .iter()
        .map(|l| format!("{} {:.0} s", l.name, l.seconds))
        .collect();
    println!();
    println!(
        "time: {}; dex-bench total {:.0} s",
        parts.join(", "),
        r.phase_seconds.total
    );
    print_targets(r);
}

fn print_cold(r: &Results) {
    println!();
    if let Some(floor) = &r.floor {
        let cold = floor.cold.as_ref();
        println!(
            "floor ({FLOOR}: hello-world lambda_http, same release profile): binary {:.2} MB, zip {:.2} MB, init {} ms, first response {} ms (median of {} runs, one before each function run)",
            mb(floor.binary_bytes),
            mb(floor.zip_bytes),
            num(cold.map(|c| c.init_ms), 2),
            num(cold.map(|c| c.first_response_ms), 2),
            cold.map_or(0, |c| c.init_ms_runs.len()),
        );
    }
    if r.functions.is_empty() {
        return;
    }
    println!(
        "cold starts: median of {} runs; init = process start → first poll of the Runtime API; ×floor = / the floor runs beside it; MB = 10^6 bytes; zip = `bootstrap`, deflate -9",
        r.settings.cold_runs
    );
    println!(
        "{:<24} {:>9} {:>7} {:>8} {:>7} {:>9} {:>7} {:>6} {:>7}  first request",
        "function",
        "binary MB",
        "zip MB",
        "init ms",
        "×floor",
        "first ms",
        "×floor",
        "status",
        "DDB/SM"
    );
    for f in &r.functions {
        let m = f.measured.as_ref();
        let ratios = f.ratios();
        let requests = m.map(|m| &m.first_request);
        let detail = match &f.error {
            Some(e) => format!("ERROR {e}"),
            None => {
                let (d, s) = requests.map_or((String::new(), String::new()), |q| {
                    (ops(&q.dynamodb_ops), ops(&q.secrets_ops))
                });
                format!("{d} {s}  ({})", f.event).trim().to_owned()
            }
        };
        println!(
            "{:<24} {:>9.2} {:>7.2} {:>8} {:>7} {:>9} {:>7} {:>6} {:>7}  {}",
            f.name,
            mb(f.binary_bytes),
            mb(f.zip_bytes),
            num(m.map(|m| m.times.init_ms), 1),
            ratio(ratios.map(|r| r.0)),
            num(m.map(|m| m.times.first_response_ms), 1),
            ratio(ratios.map(|r| r.1)),
            m.map_or("-".into(), |m| m.first_status.to_string()),
            format!(
                "{}/{}",
                count(requests.and_then(|q| q.dynamodb)),
                count(requests.and_then(|q| q.secrets))
            ),
            detail
        );
    }
}

fn print_init(r: &Results) {
    let Some(breakdown) = &r.init_breakdown else {
        return;
    };
    println!();
    let b = match breakdown {
        Outcome::Measured(b) => b,
        other => {
            println!("init breakdown: {}", other.reason().unwrap_or_default());
            return;
        }
    };
    let floor = r
        .floor
        .as_ref()
        .and_then(|f| f.cold.as_ref())
        .map(|c| c.init_ms);
    println!(
        "init breakdown (init-probe: web::init_app's calls one by one, then web::serve; median of {} runs): {} ms, {} the floor's init",
        b.runs,
        num(Some(b.init_ms), 2),
        ratio(floor.map(|f| b.init_ms / f))
    );
    for (title, steps) in [
        ("init", &b.init),
        (
            "init's background task, timed in the foreground after it",
            &b.background,
        ),
        ("not init, timed after it: the parts of its steps", &b.extra),
        ("the first event, in parts (as jwks answers it)", &b.first),
    ] {
        println!("  {title}  (wall ms, CPU ms)");
        for s in steps {
            println!(
                "    {:>8} {:>8}  {}",
                num(Some(s.ms), 2),
                num(s.cpu_ms, 2),
                s.step
            );
        }
    }
}

fn print_warm(r: &Results) {
    println!();
    println!(
        "warm: {} sequential requests per process (time from handing out the event on /next to its response); ×floor = p50 / the floor's p50",
        r.settings.warm_requests
    );
    println!(
        "{:<28} {:>7} {:>7} {:>7} {:>7} {:>8} {:>7} {:>13} {:>10}  DynamoDB ops per warm request",
        "benchmark",
        "p50 ms",
        "×floor",
        "p99 ms",
        "max ms",
        "DDB/req",
        "SM/req",
        "cold first ms",
        "cold DDB/SM"
    );
    let floor_p50 = r
        .warm
        .iter()
        .find(|w| w.name == FLOOR_CASE)
        .and_then(WarmEntry::result)
        .map(|w| w.p50_ms);
    for w in r.warm.iter().filter(|w| w.data_set.is_none()) {
        let Some(m) = w.result() else {
            println!("{:<28} {}", w.name, w.outcome.reason().unwrap_or_default());
            continue;
        };
        let mut detail = per_ops(&m.per_request.dynamodb_ops);
        if let Some(u) = &m.unexpected {
            detail = format!("{detail}  UNEXPECTED {u}");
        }
        let name = match w.name == FLOOR_CASE {
            true => format!("{} ({FLOOR})", w.name),
            false => w.name.clone(),
        };
        println!(
            "{:<28} {:>7} {:>7} {:>7} {:>7} {:>8} {:>7} {:>13} {:>10}  {}",
            name,
            num(Some(m.p50_ms), 2),
            ratio(floor_p50.map(|f| m.p50_ms / f)),
            num(Some(m.p99_ms), 2),
            num(Some(m.max_ms), 2),
            num(m.per_request.dynamodb, 2),
            num(m.per_request.secrets, 2),
            num(Some(m.cold_first_response_ms), 1),
            format!(
                "{}/{}",
                count(m.cold_first.dynamodb),
                count(m.cold_first.secrets)
            ),
            detail
        );
    }
}

fn print_onboarding(onboarding: &Outcome<Onboarding>) {
    println!();
    let o = match onboarding {
        Outcome::Measured(o) => o,
        other => {
            println!(
                "HAT onboarding: ERROR {}",
                other.reason().unwrap_or_default()
            );
            return;
        }
    };
    println!(
        "HAT onboarding: test HAT cluster {} (cluster {}), {} test HATs (keys made in {:.1} s), {} registered in set-up ({:.1} s)",
        o.test_hat_cluster,
        o.cluster_domain,
        o.test_hats,
        o.keygen_seconds,
        o.registered_in_setup,
        o.register_seconds,
    );
    let Some(v) = &o.verified_request else {
        return;
    };
    println!(
        "verified HAT request (hat-log, GET /api/hat/log, DEX_HAT_KEY_CACHE_SECS={}):",
        o.hat_key_cache_secs
    );
    println!(
        "  {:<44} {:>11} {:>10}  DynamoDB ops",
        "", "ms", "key reads"
    );
    let row = |label: &str, part: &KeyReads, time: String| {
        println!(
            "  {:<44} {:>11} {:>10}  {}",
            label,
            time,
            num(Some(part.key_reads), 0),
            per_ops(&part.ops)
        );
    };
    let first = &v.first_request;
    row("first request (cold container)", first, num(first.ms, 1));
    let new_hat = &v.warm_container_new_hat;
    row(
        "another HAT's first request (warm container)",
        new_hat,
        num(new_hat.ms, 1),
    );
    let warm = &v.warm_cached_per_request;
    row(
        "warm, key cached (per request)",
        warm,
        format!("{}/{}", num(warm.p50_ms, 2), num(warm.p99_ms, 2)),
    );
    println!("  (warm: p50/p99; key reads: BatchGetItem of the HAT and its cluster)");
}

fn print_ingest(ingest: &Outcome<crate::results::IngestResult>) {
    println!();
    let i = match ingest {
        Outcome::Measured(i) => i,
        other => {
            println!(
                "statistics ingestion: {}",
                other.reason().unwrap_or_default()
            );
            return;
        }
    };
    println!(
        "statistics ingestion: {} stats-report processes (one HAT each, own Runtime API) post concurrently; {} unique inbound items per report over {} endpoints",
        i.processes, i.items_per_report, i.endpoints_per_report
    );
    println!(
        "{:<34} {:>7} {:>8} {:>10} {:>10} {:>8} {:>8} {:>8} {:>9}  DynamoDB ops per report",
        "phase", "reports", "items", "seconds", "items/s", "p50 ms", "p99 ms", "max ms", "DDB/rep"
    );
    let row = |label: &str, p: &IngestPhase| {
        println!(
            "{:<34} {:>7} {:>8} {:>10.2} {:>10.0} {:>8.1} {:>8.1} {:>8.1} {:>9.2}  {}",
            label,
            p.reports,
            p.items,
            p.seconds,
            p.items_per_s,
            p.p50_ms,
            p.p99_ms,
            p.max_ms,
            p.dynamodb_per_report,
            per_ops(&p.dynamodb_ops_per_report)
        );
    };
    row("first report (cold processes)", &i.first);
    row("fresh reports (warm, throughput)", &i.fresh);
    row("resent reports (all duplicates)", &i.duplicate);
    println!(
        "  (first: latency from spawn; fresh: {} reports per process in sequence, all processes at once)",
        i.reports_per_hat
    );
    if let Some(u) = &i.unexpected {
        println!("  UNEXPECTED {u}");
    }
}

fn print_reads(r: &Results) {
    let reads: Vec<&WarmEntry> = r.warm.iter().filter(|w| w.data_set.is_some()).collect();
    if reads.is_empty() && r.stats_scale.is_none() {
        return;
    }
    println!();
    println!("statistics reads against the data set (warm p50/p99, DynamoDB requests per call)");
    match &r.stats_scale {
        Some(Outcome::Measured(s)) => println!(
            "  seeding ({} writes in flight, through HatStore::insert_hat and StatsStore::ingest): {} HATs in {:.1} s ({:.0}/s); {} reports carrying {} values in {:.1} s ({:.0}/s)",
            s.concurrency,
            s.hats,
            s.hat_seconds,
            s.hats_per_s,
            s.reports,
            s.values,
            s.value_seconds,
            s.reports_per_s,
        ),
        Some(other) => println!("  seeding: ERROR {}", other.reason().unwrap_or_default()),
        None => {}
    }
    println!(
        "  {:<28} {:>10} {:>12} {:>11} {:>7} {:>7} {:>8}  DynamoDB ops per call",
        "benchmark", "HATs", "Data In", "tree size", "p50 ms", "p99 ms", "DDB/call"
    );
    let figure = |v: Option<i64>| v.map_or(String::new(), |v| v.to_string());
    for w in reads {
        let Some(m) = w.result() else {
            println!(
                "  {:<28} {}",
                w.name,
                w.outcome.reason().unwrap_or_default()
            );
            continue;
        };
        let d = w.data_set.as_ref().expect("filtered on data_set");
        let tree = match (d.namespaces, d.endpoints) {
            (Some(n), Some(e)) => format!("{n} ns/{e} ep"),
            _ => String::new(),
        };
        println!(
            "  {:<28} {:>10} {:>12} {:>11} {:>7.2} {:>7.2} {:>8}  {}",
            w.name,
            figure(d.hats),
            figure(d.data_in),
            tree,
            m.p50_ms,
            m.p99_ms,
            num(m.per_request.dynamodb, 2),
            per_ops(&m.per_request.dynamodb_ops)
        );
    }
}

fn print_targets(r: &Results) {
    let t = &r.targets;
    println!();
    if !r.functions.is_empty() {
        let unmeasured: Vec<&str> = r
            .functions
            .iter()
            .filter(|f| f.measured.is_none())
            .map(|f| f.name.as_str())
            .collect();
        let exempt = t.cold_first_response_exempt.join(", ");
        println!(
            "target cold start to first response < {TARGET_COLD_MS} ms (except {exempt}, which hash a password): {}",
            match (t.cold_start_over.is_empty(), unmeasured.is_empty()) {
                (true, true) => "met".to_string(),
                (true, false) =>
                    format!("met by the others; no figure for {}", unmeasured.join(", ")),
                (false, _) => format!("MISSED by {}", t.cold_start_over.join(", ")),
            }
        );
        if r.functions.iter().any(|f| f.ratios().is_some()) {
            println!(
                "target init <= {TARGET_INIT_RATIO}x the floor's: {}",
                match t.init_over.is_empty() {
                    true => "met".to_string(),
                    false => format!(
                        "MISSED by {} of {} ({})",
                        t.init_over.len(),
                        r.functions.len(),
                        t.init_over.join(", ")
                    ),
                }
            );
        }
        println!(
            "target zip <= {} MB: {}",
            TARGET_ZIP_BYTES / 1_000_000,
            match t.zip_over.is_empty() {
                true => "met".to_string(),
                false => format!("MISSED by {}", t.zip_over.join(", ")),
            }
        );
    }
    if let Some(ratio) = t.warm_jwks_floor_ratio {
        println!(
            "target warm jwks p50 <= {TARGET_WARM_JWKS_RATIO}x the floor's: {} ({ratio:.2}x)",
            met(ratio <= TARGET_WARM_JWKS_RATIO)
        );
    }
    if let Some(ok) = t.verified_hat_request {
        println!(
            "target verified HAT request: <= 1 DynamoDB read for the key on a warm container, 0 while cached, plus the endpoint's own: {}",
            met(ok)
        );
    }
    if let Some(f) = &t.forged_tokens {
        println!(
            "target forged HAT tokens re-read the key at most once per HAT per 5 s: {} ({} forged requests in {:.1} s: {:.0} DynamoDB requests, bound {:.0})",
            met(f.met),
            f.requests,
            f.seconds,
            f.dynamodb_requests,
            f.bound
        );
    }
    if let Some(reads) = &t.stats_reads_flat {
        let detail: Vec<String> = reads
            .reads
            .iter()
            .map(|p| {
                format!(
                    "{} {:.0} → {:.0}",
                    p.name, p.small_dynamodb_per_request, p.scale_dynamodb_per_request
                )
            })
            .collect();
        println!(
            "target GET /stats and /stats/available-data cost does not grow with HATs/reports: {} (DynamoDB requests per call: {})",
            met(reads.met),
            detail.join(", ")
        );
    }
}

fn print_push(push: &Outcome<crate::push::PushThroughput>) {
    println!();
    let p = match push {
        Outcome::Measured(p) => p,
        other => {
            println!(
                "update-application: ERROR {}",
                other.reason().unwrap_or_default()
            );
            return;
        }
    };
    println!(
        "update-application (DEX as a library, {} loopback test HATs registered in {:.1} s; DEX_HAT_TIMEOUT_SECS={}, DEX_PUSH_BUDGET_SECS={}):",
        p.hats, p.register_seconds, p.hat_timeout_secs, p.push_budget_secs
    );
    println!(
        "  {:<40} {:>6} {:>9} {:>7} {:>7} {:>7}",
        "", "calls", "seconds", "HATs/s", "updated", "failed"
    );
    for r in &p.runs {
        println!(
            "  {:<40} {:>6} {:>9.1} {:>7.1} {:>7} {:>7}",
            r.case, r.calls, r.seconds, r.hats_per_second, r.updated, r.failed
        );
    }
}

/// The claim's requests (from the warm case and the HATs' records) and the race.
fn print_exchange(r: &Results) {
    if r.claim_hat_requests.is_none() && r.claim_race.is_none() {
        return;
    }
    println!();
    let claim = r
        .warm
        .iter()
        .find(|w| w.name == crate::exchange::CLAIM)
        .and_then(|w| w.result());
    if let Some(c) = claim {
        let ops: Vec<String> = c
            .per_request
            .dynamodb_ops
            .iter()
            .map(|(op, n)| format!("{} {n:.1}", op.trim_start_matches("DynamoDB_20120810.")))
            .collect();
        println!(
            "offer claim (warm, a new HAT each request): p50 {:.1} ms, p99 {:.1} ms; DynamoDB requests per claim {} ({})",
            c.p50_ms,
            c.p99_ms,
            num(c.per_request.dynamodb, 1),
            ops.join(", ")
        );
    }
    match &r.claim_hat_requests {
        Some(Outcome::Measured(h)) => {
            let routes: Vec<String> = h
                .by_route
                .iter()
                .map(|(route, n)| format!("{route} {n:.1}"))
                .collect();
            println!(
                "  HAT requests per claim ({} claims): {:.1} ({})",
                h.claims,
                h.hat_requests_per_claim,
                routes.join(", ")
            );
        }
        Some(other) => println!(
            "  HAT requests per claim: ERROR {}",
            other.reason().unwrap_or_default()
        ),
        None => {}
    }
    match &r.claim_race {
        Some(Outcome::Measured(race)) => {
            let statuses: Vec<String> = race
                .statuses
                .iter()
                .map(|(s, n)| format!("{s}×{n}"))
                .collect();
            println!(
                "claim race: {} HATs (1 in 9 failing the debit: {}) for {} places, {} offer-claim processes: {:.1} s ({:.0} claims/s), p50 {:.0} ms, p99 {:.0} ms; answers {}; {} kept, {} debits on HATs, {:.1} DynamoDB requests per claim; exact: {}",
                race.hats,
                race.failing_hats,
                race.places,
                race.instances,
                race.seconds,
                race.claims_per_s,
                race.p50_ms,
                race.p99_ms,
                statuses.join(" "),
                race.kept,
                race.debits_on_hats,
                race.dynamodb_per_claim,
                met(race.exact && race.unexpected.is_none())
            );
            if let Some(u) = &race.unexpected {
                println!("  unexpected: {u}");
            }
        }
        Some(other) => println!("claim race: ERROR {}", other.reason().unwrap_or_default()),
        None => {}
    }
}

fn print_growth(growth: &Outcome<crate::registry::RegistryGrowth>) {
    println!();
    let g = match growth {
        Outcome::Measured(g) => g,
        other => {
            println!(
                "registry growth: ERROR {}",
                other.reason().unwrap_or_default()
            );
            return;
        }
    };
    println!(
        "registry growth (DynamoDB requests per request, warm): flat from 10 to 1,000 applications: {}",
        met(g.flat)
    );
    println!(
        "target the bare lists (v1.1, history) of 1,000 applications fit Lambda's 6 MB answer: {}",
        met(g.bare_lists_fit)
    );
    println!(
        "  {:<20} {:>12} {:>10} {:>9} {:>9} {:>12}",
        "", "applications", "DynamoDB", "p50 ms", "p99 ms", "answer bytes"
    );
    for p in &g.points {
        println!(
            "  {:<20} {:>12} {:>10.1} {:>9.1} {:>9.1} {:>12}",
            p.case, p.applications, p.dynamodb_per_request, p.p50_ms, p.p99_ms, p.answer_bytes
        );
    }
}
