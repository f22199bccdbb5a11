//! The registry as it grows (issue 10 §6): the DynamoDB requests of a single application and
//! of a v3 page with 10, 100 and 1,000 published applications in the table (both should stay flat: a
//! single application is one read, a page one query whatever the registry's size), and the
//! bare-array lists (v1.1 list, history), which read the whole registry: their requests and
//! answer bytes at the design point, 1,000 applications within Lambda's 6 MB answer.
//!
//! The seeded documents carry a 3,000-character description (about 4.3 KB of JSON each, the
//! upper half of real applications' 3-6 KB).

use futures_util::StreamExt;
use serde::Serialize;

use crate::events::{self, Ctx, Event, WarmCase};
use crate::harness::Bench;
use crate::hats::describe;
use crate::results::{Outcome, PerOp};

/// The registry sizes measured.
pub const SIZES: [usize; 3] = [10, 100, 1_000];
/// Warm requests per case and size (the counts, not the times, are the point).
const REQUESTS: usize = 20;
/// Warm requests of the bare lists (each reads the whole registry).
const BARE_REQUESTS: usize = 5;
/// The v3 page size asked.
const PAGE: &str = "20";

#[derive(Debug, Serialize)]
pub struct RegistryGrowth {
    pub points: Vec<GrowthPoint>,
    /// Whether the single application and the v3 page cost as many DynamoDB requests at every
    /// size.
    pub flat: bool,
    /// Whether every bare-array answer at 1,000 applications fits Lambda's 6 MB.
    pub bare_lists_fit: bool,
}

#[derive(Debug, Serialize)]
pub struct GrowthPoint {
    pub applications: usize,
    pub case: &'static str,
    pub dynamodb_per_request: f64,
    pub dynamodb_ops: PerOp,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// The answer's body, bytes.
    pub answer_bytes: usize,
}

/// Lambda's limit on a synchronous answer.
pub const LAMBDA_ANSWER_BYTES: usize = 6 * 1024 * 1024;

pub async fn run(bench: &Bench, app: &dex_lambda::App, ctx: &mut Ctx) -> Outcome<RegistryGrowth> {
    if !bench.binary("app-get").is_file() || !bench.binary("apps-list").is_file() {
        let skipped = "no release binary of app-get or apps-list".to_owned();
        return Outcome::Skipped { skipped };
    }
    match measure(bench, app, ctx).await {
        Ok(growth) => Outcome::Measured(growth),
        Err(error) => {
            eprintln!("dex-bench: registry growth: {error}");
            Outcome::Failed { error }
        }
    }
}

async fn measure(
    bench: &Bench,
    app: &dex_lambda::App,
    ctx: &mut Ctx,
) -> Result<RegistryGrowth, String> {
    let mut points = Vec::new();
    let mut seeded = 0usize;
    let first_id = events::bench_app_id(1_000_000);
    for size in SIZES {
        // Published applications: the lists below read the published ones only, so the
        // unpublished ones earlier cases created (apps-create) are not counted.
        let have = app
            .apps()
            .all()
            .await
            .map_err(|e| describe(&e))?
            .iter()
            .filter(|a| a.published && !a.suspended)
            .count();
        let add = size.saturating_sub(have);
        eprintln!("dex-bench: registry growth: {have} published applications, adding {add}");
        let created: Vec<Result<(), String>> = futures_util::stream::iter(0..add)
            .map(|i| {
                let id = events::bench_app_id(1_000_000 + seeded + i);
                async move {
                    let operator = dex::accounts::Actor::Operator;
                    let apps = app.apps();
                    let fail = |e: dex::DexError| format!("creating {id}: {}", describe(&e));
                    apps.create(&operator, seeded_document(&id))
                        .await
                        .map_err(fail)?;
                    apps.publish(&operator, &id).await.map(|_| ()).map_err(fail)
                }
            })
            .buffer_unordered(8)
            .collect()
            .await;
        created.into_iter().collect::<Result<Vec<_>, _>>()?;
        seeded += add;
        let applications = have + add;
        let id = if seeded > 0 {
            first_id.clone()
        } else {
            events::bench_app_id(0)
        };
        let single = WarmCase::new("app-get", "app-get", 200, move |_| {
            Ok(Event::get("/api/v3/applications/{applicationId}")
                .param("applicationId", &id)
                .query("lang", "en")
                .build())
        });
        let page = WarmCase::new("apps-list-v3-page", "apps-list", 200, |_| {
            Ok(Event::get("/api/v3/applications")
                .query("limit", PAGE)
                .build())
        });
        let bare = WarmCase::new("apps-list", "apps-list", 200, |_| {
            Ok(Event::get("/api/v1.1/applications").build())
        });
        let history = WarmCase::new("apps-history", "apps-history", 200, |_| {
            Ok(Event::get("/api/v1.1/applications-history").build())
        });
        let cases = [
            ("app-get", single, REQUESTS),
            ("apps-list-v3-page", page, REQUESTS),
            ("apps-list", bare, BARE_REQUESTS),
            ("apps-history", history, BARE_REQUESTS),
        ];
        for (label, case, requests) in cases {
            let mut ok = true;
            let name = format!("{label}@{applications}");
            let (entry, first) = bench.run_case(&case, &name, ctx, requests, &mut ok).await;
            let answer_bytes = first.as_ref().map_or(0, |r| events::response_body(r).len());
            let result = entry
                .result()
                .ok_or_else(|| format!("{name}: {}", entry.outcome.reason().unwrap_or("failed")))?;
            if let Some(u) = &result.unexpected {
                return Err(format!("{name}: {u}"));
            }
            points.push(GrowthPoint {
                applications,
                case: label,
                dynamodb_per_request: result.per_request.dynamodb.unwrap_or(f64::NAN),
                dynamodb_ops: result.per_request.dynamodb_ops.clone(),
                p50_ms: result.p50_ms,
                p99_ms: result.p99_ms,
                answer_bytes,
            });
        }
    }
    let flat = ["app-get", "apps-list-v3-page"].iter().all(|case| {
        let counts: Vec<f64> = points
            .iter()
            .filter(|p| p.case == *case)
            .map(|p| p.dynamodb_per_request)
            .collect();
        counts.windows(2).all(|w| (w[0] - w[1]).abs() < 1e-9)
            && counts.iter().all(|c| c.is_finite())
    });
    let largest = SIZES[SIZES.len() - 1];
    let bare_lists_fit = points
        .iter()
        .filter(|p| p.applications >= largest && matches!(p.case, "apps-list" | "apps-history"))
        .all(|p| p.answer_bytes > 0 && p.answer_bytes < LAMBDA_ANSWER_BYTES);
    Ok(RegistryGrowth {
        points,
        flat,
        bare_lists_fit,
    })
}

/// A bench application with a realistic description (see the module's comment).
fn seeded_document(id: &str) -> serde_json::Value {
    let mut doc = events::app_document(id);
    let sentence =
        "This application reads the owner's notes and locations to build a weekly summary. ";
    let text: String = sentence
        .repeat(3_000 / sentence.len() + 1)
        .chars()
        .take(3_000)
        .collect();
    doc["info"]["description"]["text"] = serde_json::Value::String(text);
    doc
}
