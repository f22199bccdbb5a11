//! update-application throughput (issue 10 §6): HATs per second pushed to loopback test HATs,
//! with and without slow ones, through DEX as a library (`App::pushes`, the code the
//! `update-application` function runs) with the bench's HAT settings, following `next` to
//! the end as `dexctl apps push` does.

use std::time::{Duration, Instant};

use dex::hats::push::{PushRequest, PushStatus};
use dex_tests::test_hat::RouteFail;
use serde::Serialize;

use crate::hats::{CLUSTER_DOMAIN, HatSetup, describe};
use crate::results::Outcome;

/// Test HATs pushed to (one key shared: the push never looks at keys).
pub const HATS: usize = 200;
/// Every this many HATs answers the push later than DEX's HAT timeout in the second run.
const SLOW_EVERY: usize = 5;
const PUSH: &str = "POST /api/v2/application";

#[derive(Debug, Serialize)]
pub struct PushThroughput {
    pub hats: usize,
    pub hat_timeout_secs: u64,
    pub push_budget_secs: u64,
    pub register_seconds: f64,
    pub runs: Vec<PushRun>,
}

#[derive(Debug, Serialize)]
pub struct PushRun {
    pub case: &'static str,
    pub slow_hats: usize,
    pub calls: usize,
    pub seconds: f64,
    pub hats_per_second: f64,
    pub updated: usize,
    pub failed: usize,
}

pub async fn run(setup: &mut HatSetup) -> Outcome<PushThroughput> {
    match measure(setup).await {
        Ok(t) => Outcome::Measured(t),
        Err(error) => {
            eprintln!("dex-bench: update-application: {error}");
            Outcome::Failed { error }
        }
    }
}

fn service() -> Vec<u8> {
    serde_json::json!({
        "title": "bench", "namespace": "bench", "description": "dex-bench",
        "logoUrl": "https://bench.example/logo.png", "url": "https://bench.example",
        "authUrl": "", "browser": false, "category": "testapp", "setup": false,
        "loginAvailable": false
    })
    .to_string()
    .into_bytes()
}

async fn measure(setup: &mut HatSetup) -> Result<PushThroughput, String> {
    let prefix = format!("push{}", std::process::id());
    let started = Instant::now();
    let hats = setup.registered_hats_sharing_key(&prefix, HATS).await?;
    let register_seconds = started.elapsed().as_secs_f64();
    let filter = format!("{prefix}-*");
    let config = setup.app.config();
    let timeout = config.hat_timeout;
    let mut runs = vec![follow(setup, &filter, "every HAT answers", 0).await?];
    for hat in hats.iter().step_by(SLOW_EVERY) {
        hat.fail_route(
            PUSH,
            RouteFail::Slow(timeout + Duration::from_secs(1)),
            None,
        );
    }
    let slow = HATS.div_ceil(SLOW_EVERY);
    runs.push(follow(setup, &filter, "1 in 5 slower than the HAT timeout", slow).await?);
    let config = setup.app.config();
    Ok(PushThroughput {
        hats: HATS,
        hat_timeout_secs: config.hat_timeout.as_secs(),
        push_budget_secs: config.push_budget.as_secs(),
        register_seconds,
        runs,
    })
}

async fn follow(
    setup: &HatSetup,
    filter: &str,
    case: &'static str,
    slow_hats: usize,
) -> Result<PushRun, String> {
    let calls = setup.app.hat_calls().map_err(|e| describe(&e))?;
    let body = service();
    let (mut cursor, mut made, mut updated, mut failed) = (None::<String>, 0, 0, 0);
    let started = Instant::now();
    loop {
        let answer = setup
            .app
            .pushes()
            .push(
                &calls,
                PushRequest {
                    cluster: Some(CLUSTER_DOMAIN),
                    hat_filter: Some(filter),
                    cursor: cursor.as_deref(),
                    body: &body,
                },
            )
            .await
            .map_err(|e| describe(&e))?;
        made += 1;
        for r in &answer.results {
            match r.status {
                PushStatus::Updated => updated += 1,
                PushStatus::Failed => failed += 1,
            }
        }
        match answer.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    if updated + failed != HATS {
        return Err(format!(
            "{case}: {} results for {HATS} HATs",
            updated + failed
        ));
    }
    Ok(PushRun {
        case,
        slow_hats,
        calls: made,
        seconds,
        hats_per_second: HATS as f64 / seconds,
        updated,
        failed,
    })
}
