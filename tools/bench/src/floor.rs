//! The floor and the init breakdown (issue 8 §2).
//!
//! The floor (`tools/bench-floor`) is a hello-world `lambda_http` function built with the
//! same release profile: cold starts interleave it with every function (see `cold`), and its
//! warm case runs just before `jwks`, so each ratio compares figures taken moments apart.
//! The init probe (`src/bin/init-probe.rs`) runs a function's init step by step and stamps
//! each step; [`init_breakdown`] turns its stamps into milliseconds.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::events::{Event, WarmCase};
use crate::harness::{Bench, median};
use crate::results::{InitBreakdown, Outcome, Step};

/// The floor's package and binary.
pub const FLOOR: &str = "bench-floor";
/// The init probe's binary (a binary of dex-bench).
pub const PROBE: &str = "init-probe";
/// The floor's warm case (run just before `jwks`).
pub const FLOOR_CASE: &str = "floor";

/// The floor's warm case: `GET /` answered with a fixed JSON body.
pub fn warm_case() -> WarmCase {
    WarmCase::new(FLOOR_CASE, FLOOR, 200, |_| Ok(Event::get("/").build()))
}

/// The floor's size (when it was built) and its cold starts.
pub fn floor(
    sizes: &std::collections::BTreeMap<String, crate::sizes::Size>,
    cold: Option<crate::results::ColdTimes>,
) -> Option<crate::results::Floor> {
    sizes.get(FLOOR).map(|s| crate::results::Floor {
        binary_bytes: s.binary,
        zip_bytes: s.zip,
        cold,
    })
}

/// The probe's stamps of one run: group → [(step, wall-clock ns)].
type Stamps = serde_json::Map<String, serde_json::Value>;

fn stamps_of(group: &Stamps, name: &str) -> Vec<(String, u128)> {
    group
        .get(name)
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default()
}

/// Steps as differences of successive stamps, the first from `start` (`None`: from the
/// group's own first stamp, which is then not a step).
fn steps(stamps: &[(String, u128)], start: Option<u128>) -> Vec<(String, f64)> {
    let mut previous = start.or_else(|| stamps.first().map(|s| s.1));
    let skip = usize::from(start.is_none());
    stamps
        .iter()
        .skip(skip)
        .map(|(step, at)| {
            let from = previous.unwrap_or(*at);
            previous = Some(*at);
            (step.clone(), at.saturating_sub(from) as f64 / 1e6)
        })
        .collect()
}

/// Medians over runs of steps named alike, in the first run's order, with the CPU time of
/// the same steps (`cpu`, when the probe stamped it).
fn medians(runs: &[Vec<(String, f64)>], cpu: &[Vec<(String, f64)>]) -> Vec<Step> {
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    let values = |runs: &[Vec<(String, f64)>], name: &str| -> Vec<f64> {
        runs.iter()
            .filter_map(|r| r.iter().find(|(n, _)| n == name).map(|s| s.1))
            .collect()
    };
    first
        .iter()
        .map(|(name, _)| {
            let wall = values(runs, name);
            let cpu = values(cpu, name);
            Step {
                step: name.clone(),
                ms: median(&wall),
                cpu_ms: (!cpu.is_empty()).then(|| median(&cpu)),
                ms_runs: wall,
            }
        })
        .collect()
}

/// `runs` cold starts of the init probe, each with its own stamps file under `logs`.
pub async fn init_breakdown(bench: &Bench, runs: usize, logs: &Path) -> Outcome<InitBreakdown> {
    if !bench.binary(PROBE).is_file() {
        let skipped = format!("no release binary for {PROBE} (cargo build --release -p dex-bench)");
        return Outcome::Skipped { skipped };
    }
    eprint!("dex-bench: init breakdown ({PROBE}) ");
    let event = Bytes::from(Event::get("/").build().to_string());
    let (mut init, mut extra, mut first) = (Vec::new(), Vec::new(), Vec::new());
    let (mut init_cpu, mut extra_cpu, mut first_cpu) = (Vec::new(), Vec::new(), Vec::new());
    let (mut background, mut background_cpu) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let out = logs.join(format!("{PROBE}-{run}.json"));
        let env = [("DEX_BENCH_PROBE_OUT".to_owned(), out.display().to_string())];
        let spawned_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let cold = match bench.cold_start(PROBE, &event, &env).await {
            Ok(cold) => cold,
            Err(error) => return Outcome::Failed { error },
        };
        let stamps: Stamps = match std::fs::read_to_string(&out)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
        {
            Ok(stamps) => stamps,
            Err(e) => {
                let error = format!("{}: {e}", out.display());
                return Outcome::Failed { error };
            }
        };
        let init_stamps = stamps_of(&stamps, "init");
        let extra_stamps = stamps_of(&stamps, "extra");
        let mut run_init = steps(&init_stamps, Some(spawned_ns));
        // The probe's background steps and extra calls run between init and web::serve:
        // the last step starts after them.
        let serve_from = extra_stamps
            .last()
            .or(init_stamps.last())
            .map_or(spawned_ns, |s| s.1);
        let first_poll = spawned_ns + cold.init.as_nanos();
        run_init.push((
            "web::serve → lambda_http::run → first poll of the Runtime API".to_owned(),
            first_poll.saturating_sub(serve_from) as f64 / 1e6,
        ));
        init.push(run_init);
        background.push(steps(&stamps_of(&stamps, "background"), None));
        background_cpu.push(steps(&stamps_of(&stamps, "background:cpu"), None));
        extra.push(steps(&extra_stamps, None));
        let mut run_first = steps(&stamps_of(&stamps, "first"), None);
        run_first.retain(|(name, _)| !name.starts_with("start"));
        first.push(run_first);
        // CPU time: the process starts with none.
        init_cpu.push(steps(&stamps_of(&stamps, "init:cpu"), Some(0)));
        extra_cpu.push(steps(&stamps_of(&stamps, "extra:cpu"), None));
        let mut run_first = steps(&stamps_of(&stamps, "first:cpu"), None);
        run_first.retain(|(name, _)| !name.starts_with("start"));
        first_cpu.push(run_first);
        eprint!(".");
    }
    eprintln!();
    let init = medians(&init, &init_cpu);
    let init_ms = init.iter().map(|s| s.ms).sum();
    Outcome::Measured(InitBreakdown {
        runs,
        init,
        init_ms,
        background: medians(&background, &background_cpu),
        extra: medians(&extra, &extra_cpu),
        first: medians(&first, &first_cpu),
    })
}
