//! Warm latency and requests per request: one process per case answers a first (cold) event,
//! then `--requests` more in sequence (time from handing out the event on `/next` to its
//! response), then the case's probe if it has one.

use std::collections::BTreeMap;
use std::time::Instant;

use bytes::Bytes;
use serde_json::Value;

use crate::events::{self, Ctx, WarmCase};
use crate::harness::{Bench, ms, percentile};
use crate::results::{Outcome, PerRequest, ProbeResult, Requests, WarmEntry, WarmResult};
use dex_tests::runtime_api::{self as runtime, RuntimeApi};

impl Bench {
    /// One warm case. Returns the result and the first response.
    async fn warm(
        &self,
        case: &WarmCase,
        name: &str,
        ctx: &mut Ctx,
        requests: usize,
    ) -> Result<(WarmResult, Value), String> {
        let event = Bytes::from((case.event)(ctx)?.to_string());
        // Every event is built before the clock starts.
        let warm_events: Vec<Bytes> = match &case.each {
            Some(each) => (0..requests)
                .map(|i| each(ctx, i).map(|e| Bytes::from(e.to_string())))
                .collect::<Result<_, _>>()?,
            None => vec![event.clone(); requests],
        };
        let probe_event = match &case.probe {
            Some(probe) => Some(Bytes::from(probe(ctx)?.to_string())),
            None => None,
        };
        let mut api = RuntimeApi::start(&case.function)
            .await
            .map_err(|e| e.to_string())?;
        let before = self.proxies.snapshot();
        let spawned = Instant::now();
        let mut process = self.spawn(&case.function, &api)?;
        let first = api
            .invoke(&mut process, event.clone(), self.timeout)
            .await?;
        let cold_first_response_ms = ms(first.responded.saturating_duration_since(spawned));
        let cold_first = Requests::of(&self.proxies.since(&before), &self.proxies);
        let first_response = first.response();
        let expected = |status: u16| match case.expect_status {
            Some(expected) => status == expected,
            None => (200..300).contains(&status),
        };
        let cold_first_status = runtime::status_of(&first_response);
        if !expected(cold_first_status) {
            return Err(format!(
                "{name}: first response has status {cold_first_status}: {}",
                events::response_body(&first_response)
            ));
        }
        if let Some(check) = case.check {
            check(&first_response).map_err(|e| format!("{name}: first response: {e}"))?;
        }
        if let Some(after) = case.after {
            after(ctx, &first_response);
        }

        let before = self.proxies.snapshot();
        let mut latencies = Vec::with_capacity(requests);
        let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
        let mut unexpected = None;
        let started = Instant::now();
        for event in warm_events {
            let invocation = api.invoke(&mut process, event, self.timeout).await?;
            latencies.push(ms(invocation.latency()));
            let response = invocation.response();
            let status = runtime::status_of(&response);
            *statuses.entry(status).or_default() += 1;
            if unexpected.is_none() {
                if !expected(status) {
                    unexpected = Some(format!(
                        "status {status}: {}",
                        events::response_body(&response)
                    ));
                } else if let Some(Err(e)) = case.check.map(|check| check(&response)) {
                    unexpected = Some(e);
                }
            }
        }
        let elapsed = started.elapsed();
        let per_request = PerRequest::of(&self.proxies.since(&before), &self.proxies, requests);

        let probe = match probe_event {
            None => None,
            Some(event) => {
                let before = self.proxies.snapshot();
                let invocation = api.invoke(&mut process, event, self.timeout).await?;
                let counted = self.proxies.since(&before);
                let status = runtime::status_of(&invocation.response());
                if !expected(status) && unexpected.is_none() {
                    unexpected = Some(format!(
                        "probe: status {status}: {}",
                        events::response_body(&invocation.response())
                    ));
                }
                Some(ProbeResult {
                    ms: ms(invocation.latency()),
                    status,
                    requests: Requests::of(&counted, &self.proxies),
                })
            }
        };
        drop(process);

        latencies.sort_by(f64::total_cmp);
        let n = requests as f64;
        let result = WarmResult {
            requests,
            p50_ms: percentile(&latencies, 50.0),
            p90_ms: percentile(&latencies, 90.0),
            p99_ms: percentile(&latencies, 99.0),
            max_ms: latencies.last().copied().unwrap_or(f64::NAN),
            mean_ms: latencies.iter().sum::<f64>() / n,
            throughput_per_s: n / elapsed.as_secs_f64(),
            statuses,
            unexpected,
            cold_first_response_ms,
            cold_first_status,
            cold_first,
            per_request,
            probe,
        };
        Ok((result, first_response))
    }

    /// Runs one warm case (skipped when its function has no release binary); `ok` turns false
    /// on an error or an unexpected response. Returns the entry and the first response.
    pub async fn run_case(
        &self,
        case: &WarmCase,
        name: &str,
        ctx: &mut Ctx,
        requests: usize,
        ok: &mut bool,
    ) -> (WarmEntry, Option<Value>) {
        let entry = |outcome| WarmEntry {
            name: name.to_owned(),
            function: case.function.clone(),
            outcome,
            data_set: None,
        };
        if !self.binary(&case.function).is_file() {
            eprintln!(
                "dex-bench: warm {name}: no release binary for {}, skipped",
                case.function
            );
            let skipped = "no release binary".to_owned();
            return (entry(Outcome::Skipped { skipped }), None);
        }
        eprintln!("dex-bench: warm {name} ({requests} requests)");
        match self.warm(case, name, ctx, requests).await {
            Ok((result, first)) => {
                if let Some(u) = &result.unexpected {
                    *ok = false;
                    eprintln!("dex-bench: warm {name}: unexpected {u}");
                }
                (entry(Outcome::Measured(result)), Some(first))
            }
            Err(error) => {
                eprintln!("dex-bench: warm {name}: {error}");
                *ok = false;
                (entry(Outcome::Failed { error }), None)
            }
        }
    }
}

/// A case that cannot run.
pub fn skipped(case: &WarmCase, why: &str) -> WarmEntry {
    WarmEntry {
        name: case.name.clone(),
        function: case.function.clone(),
        outcome: Outcome::Skipped {
            skipped: why.to_owned(),
        },
        data_set: None,
    }
}

/// Runs `cases` in order (those that need the test HAT cluster are skipped without it).
pub async fn run_cases<'a>(
    bench: &Bench,
    cases: impl Iterator<Item = &'a WarmCase>,
    has_hats: bool,
    ctx: &mut Ctx,
    requests: usize,
    ok: &mut bool,
) -> Vec<WarmEntry> {
    let mut entries = Vec::new();
    for case in cases {
        let entry = match case.hats && !has_hats {
            true => skipped(case, "no test HAT cluster"),
            false => bench.run_case(case, &case.name, ctx, requests, ok).await.0,
        };
        entries.push(entry);
    }
    entries
}
