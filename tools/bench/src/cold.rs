//! Cold starts: each binary is spawned against its own Runtime API with one event queued;
//! init is spawn → first `GET /next`, first response spawn → the event's response. The floor
//! is started before each of a function's runs, so every ratio compares runs a few
//! milliseconds apart on this noisy machine.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::events::{self, Event};
use crate::floor::FLOOR;
use crate::harness::{Bench, Snapshot, median, ms};
use crate::results::{ColdMeasured, ColdResult, ColdTimes, Requests};
use crate::sizes::Size;
use dex_tests::runtime_api::{self as runtime, Note, RuntimeApi};

pub struct ColdRun {
    pub init: Duration,
    pub first_response: Duration,
    pub status: u16,
    pub requests: Snapshot,
}

impl Bench {
    /// One cold start: spawn, first `/next`, first response; then the process is stopped.
    /// `extra` is added to the environment.
    pub async fn cold_start(
        &self,
        function: &str,
        event: &Bytes,
        extra: &[(String, String)],
    ) -> Result<ColdRun, String> {
        let mut api = RuntimeApi::start(function)
            .await
            .map_err(|e| e.to_string())?;
        let id = api.enqueue(event.clone());
        let before = self.proxies.snapshot();
        let spawned = Instant::now();
        let mut process = self.spawn_with(function, &api, extra)?;
        let mut init = None;
        loop {
            match api.next_note(&mut process, self.timeout).await? {
                Note::NextRequested { at } => {
                    init.get_or_insert(at.saturating_duration_since(spawned));
                }
                Note::Response { id: got, at, body } if got == id => {
                    let response = serde_json::from_slice(&body).unwrap_or_default();
                    let first_response = at.saturating_duration_since(spawned);
                    drop(process);
                    return Ok(ColdRun {
                        init: init.ok_or("a response before the first /next")?,
                        first_response,
                        status: runtime::status_of(&response),
                        requests: self.proxies.since(&before),
                    });
                }
                other => runtime::check(function, other)?,
            }
        }
    }
}

fn times(runs: &[(Duration, Duration)]) -> ColdTimes {
    let init: Vec<f64> = runs.iter().map(|r| ms(r.0)).collect();
    let first: Vec<f64> = runs.iter().map(|r| ms(r.1)).collect();
    ColdTimes {
        init_ms: median(&init),
        first_response_ms: median(&first),
        init_ms_runs: init,
        first_response_ms_runs: first,
    }
}

/// The event a function's cold start gets: `events/<function>.json`, else one built from its
/// route, else `GET /`; and where it came from.
fn cold_event(
    root: &Path,
    function: &str,
    routes: &BTreeMap<String, (String, String)>,
) -> Result<(Bytes, String), String> {
    let file = root.join("events").join(format!("{function}.json"));
    let (event, source) = if file.is_file() {
        (
            events::event_file(&file)?,
            format!("events/{function}.json"),
        )
    } else if let Some((method, path)) = routes.get(function) {
        (Event::new(method, path).build(), format!("{method} {path}"))
    } else {
        (Event::get("/").build(), "GET / (no route)".to_string())
    };
    Ok((Bytes::from(event.to_string()), source))
}

/// `runs` cold starts of every function, each after one of the floor; returns the functions'
/// results and the floor's times over all of them. `ok` turns false on an error.
pub async fn cold_starts(
    bench: &Bench,
    root: &Path,
    functions: &[String],
    sizes: &BTreeMap<String, Size>,
    runs: usize,
    ok: &mut bool,
) -> Result<(Vec<ColdResult>, Option<ColdTimes>), String> {
    let routes = events::routes(root)?;
    let floor_event = Bytes::from(Event::get("/").build().to_string());
    let has_floor = bench.binary(FLOOR).is_file();
    if !has_floor {
        eprintln!("dex-bench: no release binary for {FLOOR}: no ratios to the floor");
    }
    let mut all_floor = Vec::new();
    let mut results = Vec::new();
    for function in functions {
        let (event, source) = cold_event(root, function, &routes)?;
        eprint!("dex-bench: cold start {function} ");
        let mut runs_done: Vec<ColdRun> = Vec::new();
        let mut floor_runs = Vec::new();
        let mut error = None;
        for _ in 0..runs {
            if has_floor {
                match bench.cold_start(FLOOR, &floor_event, &[]).await {
                    Ok(run) => floor_runs.push((run.init, run.first_response)),
                    Err(e) => {
                        error = Some(format!("floor: {e}"));
                        break;
                    }
                }
            }
            match bench.cold_start(function, &event, &[]).await {
                Ok(run) => {
                    eprint!(".");
                    runs_done.push(run);
                }
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        eprintln!();
        if let Some(e) = &error {
            eprintln!("dex-bench: {e}");
            *ok = false;
        }
        all_floor.extend(floor_runs.iter().copied());
        let size = sizes[function];
        let measured = runs_done.first().map(|first| ColdMeasured {
            times: times(
                &runs_done
                    .iter()
                    .map(|r| (r.init, r.first_response))
                    .collect::<Vec<_>>(),
            ),
            first_status: first.status,
            first_request: Requests::of(&first.requests, &bench.proxies),
        });
        results.push(ColdResult {
            name: function.clone(),
            binary_bytes: size.binary,
            zip_bytes: size.zip,
            event: source,
            measured,
            floor: (!floor_runs.is_empty()).then(|| times(&floor_runs)),
            error,
        });
    }
    Ok((results, (!all_floor.is_empty()).then(|| times(&all_floor))))
}
