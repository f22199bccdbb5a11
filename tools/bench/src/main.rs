//! dex-bench (`make bench`): the functions' figures on this machine, beside a floor (a
//! hello-world `lambda_http` function). main keeps the command line and the order; the
//! results are typed (`results`), printed by `report`, written to `<target>/bench/results.json`.

mod cli;
mod cold;
mod events;
mod exchange;
mod floor;
mod harness;
mod hats;
mod onboarding;
mod push;
mod registry;
mod report;
mod results;
mod sizes;
mod stats;
mod warm;

use std::process::ExitCode;

use events::{Ctx, Stage};
use harness::{Bench, Proxies};
use results::{Outcome, Results};

fn main() -> ExitCode {
    let options = match cli::parse(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            print!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("dex-bench: {e}");
            return ExitCode::from(2);
        }
    };
    // One thread: the bench's servers do little; the functions get the rest of the machine.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(options)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("dex-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(o: cli::Options) -> Result<bool, String> {
    let load_at_start = harness::load_average();
    let root = harness::find_root(o.root.clone())?;
    let target = harness::target_dir(&root);
    let plan = cli::Plan::new(&root, &o)?;
    if o.list {
        plan.print(o.scale.is_some());
        return Ok(true);
    }
    let bench_dir = target.join("bench");
    let logs = bench_dir.join("logs");
    harness::fresh_dir(&logs)?;
    let mut ok = true;
    let mut laps = harness::Laps::start();

    // 0. The build (optional, timed) and 1. the sizes.
    let build_seconds = match o.build {
        true => Some(sizes::build(&root, &plan.packages())?),
        false => None,
    };
    let bench = Bench::new(&target, &logs, Proxies::start(o.proxy).await?, o.timeout);
    let work = bench_dir.join("zip");
    let sizes = sizes::sizes(&target, &plan.functions, &[floor::FLOOR], &work)?;
    laps.lap("build and sizes");

    // 2. Cold starts beside the floor, and where init goes.
    let (functions, floor_cold) =
        cold::cold_starts(&bench, &root, &plan.functions, &sizes, o.runs, &mut ok).await?;
    let floor = floor::floor(&sizes, floor_cold);
    let init_breakdown = match plan.functions.is_empty() {
        true => None,
        false => Some(floor::init_breakdown(&bench, o.runs, &logs).await),
    };
    laps.lap("cold starts");

    // 3. Warm latency and requests per request; the test HAT cluster when a case needs it.
    let mut ctx = Ctx::from_env();
    let (mut setup, mut hat_onboarding, ingest_hats) =
        onboarding::setup(&plan, &o, &mut ctx, &mut ok).await;
    // The exchange cases' offer, plug and HATs (a failed set-up fails those cases only).
    let exchange = match setup.as_mut() {
        Some(setup) if plan.has_case(exchange::CLAIM) || plan.has_case("dataplug-connect") => {
            match exchange::prepare(setup, &mut ctx, o.requests).await {
                Ok(exchange) => Some(Ok(exchange)),
                Err(error) => {
                    eprintln!("dex-bench: exchange set-up: {error}");
                    ok = false;
                    Some(Err(error))
                }
            }
        }
        _ => None,
    };
    let cases = plan.cases(Stage::Basic);
    let has_hats = setup.is_some();
    let mut warm = warm::run_cases(&bench, cases, has_hats, &mut ctx, o.requests, &mut ok).await;
    onboarding::judge(&mut hat_onboarding, &warm);
    let claim_hat_requests = match (&exchange, setup.as_ref()) {
        (Some(Ok(exchange)), Some(setup)) => Some(Outcome::Measured(exchange.hat_requests(setup))),
        (Some(Err(error)), _) => Some(Outcome::Failed {
            error: error.clone(),
        }),
        _ => None,
    };
    laps.lap("HAT set-up and warm cases");

    // 4. Statistics: concurrent ingestion, the reads on that small data set, and (--scale)
    // the same reads after seeding.
    let stats_ingest = match plan.ingest {
        true => Some(stats::run_ingest(&bench, ingest_hats.as_deref(), &o.ingest, &mut ok).await),
        false => None,
    };
    let reads = plan.cases(Stage::StatsRead);
    let mut reads =
        stats::run_reads(&bench, reads, "", "small", &mut ctx, o.requests, &mut ok).await;
    laps.lap("ingestion and stats reads");
    let app = setup.as_ref().map(|s| &s.app);
    let cases = plan.cases(Stage::StatsRead);
    let scale = o.scale.as_ref();
    let (stats_scale, scale_reads) =
        stats::run_scale(&bench, app, cases, scale, &mut ctx, o.requests, &mut ok).await;
    reads.extend(scale_reads);
    if stats_scale.is_some() {
        laps.lap("seeding and stats reads");
    }
    // 5. update-application's throughput on the same test HAT cluster, the claim race and
    // the registry's growth.
    let update_application = match setup.as_mut() {
        Some(setup) => {
            let outcome = push::run(setup).await;
            ok &= outcome.measured().is_some();
            Some(outcome)
        }
        None => None,
    };
    if update_application.is_some() {
        laps.lap("update-application");
    }
    let claim_race = match setup.as_mut() {
        Some(setup) if plan.has_case(exchange::CLAIM) => {
            let race = exchange::race(&bench, setup).await;
            ok &= race
                .measured()
                .is_some_and(|r| r.exact && r.unexpected.is_none());
            laps.lap("claim race");
            Some(race)
        }
        _ => None,
    };
    let registry_growth = match setup.as_ref() {
        Some(setup) if plan.has_case("app-get") => {
            let growth = registry::run(&bench, &setup.app, &mut ctx).await;
            ok &= growth.measured().is_some();
            laps.lap("registry growth");
            Some(growth)
        }
        _ => None,
    };
    drop(setup);
    let stats_reads_flat = stats::reads_flat(&reads);
    warm.extend(reads);

    let results = Results {
        generated_at_unix: harness::unix_seconds(),
        machine: harness::machine(load_at_start),
        settings: o.settings(&bench, &ctx.public_url, plan.ingest),
        build_seconds,
        phase_seconds: laps.finish(),
        targets: report::targets(&functions, &warm, &hat_onboarding, stats_reads_flat),
        floor,
        init_breakdown,
        functions,
        warm,
        hat_onboarding,
        stats_ingest,
        stats_scale,
        update_application,
        claim_hat_requests,
        claim_race,
        registry_growth,
    };
    report::print(&results);
    let out = o.out.clone().unwrap_or(bench_dir.join("results.json"));
    results.write(&out, &logs)?;
    Ok(ok)
}
