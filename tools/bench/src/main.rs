//! dex-bench (`make bench`): figures for the function binaries, measured on this machine.
//!
//! 1. the size of every release binary under functions/ and of its Lambda zip (`bootstrap`,
//!    deflate level 9);
//! 2. cold starts: each binary is spawned against a local Lambda Runtime API; init is the time
//!    from spawn to its first `GET /next`, first response the time from spawn to the response of
//!    its first event (median of `--runs`);
//! 3. warm latency: one process per case answers `--requests` events in sequence (time from
//!    handing out the event on `/next` to its response; p50/p99);
//! 4. DynamoDB (and Secrets Manager) requests per request, counted by a proxy in front of the
//!    emulators the environment points at (`AWS_ENDPOINT_URL_DYNAMODB`, ...);
//! 5. HAT onboarding: a test HAT cluster (dex-tests) runs in-process, `hubat.net` is certified,
//!    `register-hat` registers a new HAT per request (and one again, idempotently) and
//!    `hat-log` answers HAT-verified requests (key read once, then cached);
//! 6. statistics: `--ingest-hats` stats-report processes post reports concurrently (items per
//!    second, DynamoDB requests per fresh and per resent report); `GET /stats` and
//!    `GET /stats/available-data` on that small data set and, with `--scale`, again after
//!    seeding 10,000 HATs and 1,000,000 reported values through DEX's own write paths.
//!
//! The environment is the local stack's (scripts/bench.sh sets it up): the functions get the
//! bench's `DEX_*` and `AWS_*` variables. Results: a table on stdout and
//! `<target dir>/bench/results.json`.

mod events;
mod hats;
mod proxy;
mod runtime;
mod serve;
mod stats;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde_json::{Value, json};

use events::{Ctx, Event, Stage, WarmCase};
use proxy::{CountingProxy, Counts};
use runtime::{FunctionProcess, Note, RuntimeApi};

const USAGE: &str = "\
dex-bench: sizes, cold starts, warm latency and DynamoDB round trips of the DEX functions

usage: dex-bench [options]
  --build                  build the release binaries first (cargo build --release --bins -p ...)
  --runs N                 cold starts per function (default 5)
  --requests M             warm requests per warm case (default 200)
  --functions a,b          only these functions (sizes and cold starts; default: all under functions/;
                           `--functions none` skips them)
  --warm a,b               only these warm cases (default: all; `--warm none` skips them);
                           `stats-report` names the concurrent ingestion benchmark
  --warm-event FN=FILE     add a warm case: FILE (an API Gateway v2 event) sent to FN, any 2xx
  --no-proxy               talk to the emulators directly (no request counts)
  --timeout-secs S         per-event timeout (default 30)
  --root DIR               the workspace root (default: found from the current directory)
  --out FILE               the JSON results (default: <target dir>/bench/results.json)
  --list                   list the functions and warm cases, then exit

HAT onboarding and statistics (a test HAT cluster runs in-process; the functions get
DEX_HAT_SCHEME=http, DEX_HAT_RESOLVE=127.0.0.1 and DEX_HAT_KEY_CACHE_SECS at its default):
  --ingest-hats N          concurrent stats-report processes, one HAT each (default 20)
  --ingest-reports N       reports per HAT after its first (default 10)
  --ingest-items N         items per report (default 100)
  --scale                  seed many HATs and values, then measure GET /stats and
                           GET /stats/available-data again (scripts/bench.sh: on)
  --no-scale               do not (the default)
  --scale-hats N           HATs to seed (default 10000)
  --scale-values N         reported values to seed (default 1000000)
  --scale-reports N        one-item reports carrying them (default 10000)
  --seed-concurrency N     seeding writes in flight (default 32)

Targets: cold start to first response under 50 ms; no zip over 8 MB (MB = 10^6 bytes); a
HAT-verified request reads the HAT's key at most once on a warm container (never while
cached) besides what its endpoint needs; GET /stats and GET /stats/available-data cost the
same number of DynamoDB requests whatever the number of HATs and reports.
";

const TARGET_COLD_MS: f64 = 50.0;
const TARGET_ZIP_BYTES: u64 = 8_000_000;
/// The concurrent ingestion benchmark's name (and function).
const INGEST: &str = "stats-report";
/// What the functions run with: `DEX_HAT_KEY_CACHE_SECS` is left at its default.
const HAT_KEY_CACHE_SECS: u64 = 60;
/// The DynamoDB operations that read a HAT's key (with its cluster) for verification.
const KEY_READS: [&str; 2] = [
    "DynamoDB_20120810.BatchGetItem",
    "DynamoDB_20120810.GetItem",
];

struct Options {
    build: bool,
    runs: usize,
    requests: usize,
    functions: Option<Vec<String>>,
    warm: Option<Vec<String>>,
    warm_events: Vec<(String, PathBuf)>,
    proxy: bool,
    timeout: Duration,
    root: Option<PathBuf>,
    out: Option<PathBuf>,
    list: bool,
    ingest: stats::IngestSettings,
    scale: Option<stats::ScaleSettings>,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        build: false,
        runs: 5,
        requests: 200,
        functions: None,
        warm: None,
        warm_events: Vec::new(),
        proxy: true,
        timeout: Duration::from_secs(30),
        root: None,
        out: None,
        list: false,
        ingest: stats::IngestSettings {
            hats: 20,
            reports: 10,
            items: 100,
        },
        scale: None,
    };
    let mut scale = false;
    let mut scale_settings = stats::ScaleSettings {
        hats: 10_000,
        values: 1_000_000,
        reports: 10_000,
        concurrency: 32,
    };
    let mut args = std::env::args().skip(1);
    let list = |s: String| {
        s.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--build" => options.build = true,
            "--runs" => options.runs = value()?.parse().map_err(|e| format!("--runs: {e}"))?,
            "--requests" => {
                options.requests = value()?.parse().map_err(|e| format!("--requests: {e}"))?
            }
            "--functions" => options.functions = Some(list(value()?)),
            "--warm" => options.warm = Some(list(value()?)),
            "--warm-event" => {
                let spec = value()?;
                let (function, file) = spec
                    .split_once('=')
                    .ok_or("--warm-event takes FUNCTION=FILE")?;
                options
                    .warm_events
                    .push((function.to_owned(), PathBuf::from(file)));
            }
            "--no-proxy" => options.proxy = false,
            "--timeout-secs" => {
                options.timeout = Duration::from_secs(
                    value()?
                        .parse()
                        .map_err(|e| format!("--timeout-secs: {e}"))?,
                )
            }
            "--root" => options.root = Some(PathBuf::from(value()?)),
            "--out" => options.out = Some(PathBuf::from(value()?)),
            "--list" => options.list = true,
            "--ingest-hats" => options.ingest.hats = number(&arg, value()?)?,
            "--ingest-reports" => options.ingest.reports = number(&arg, value()?)?,
            "--ingest-items" => options.ingest.items = number(&arg, value()?)?,
            "--scale" => scale = true,
            "--no-scale" => scale = false,
            "--scale-hats" => scale_settings.hats = number(&arg, value()?)?,
            "--scale-values" => scale_settings.values = number(&arg, value()?)?,
            "--scale-reports" => scale_settings.reports = number(&arg, value()?)?,
            "--seed-concurrency" => scale_settings.concurrency = number(&arg, value()?)?,
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
        }
    }
    if options.runs == 0 || options.requests == 0 {
        return Err("--runs and --requests must be at least 1".into());
    }
    if options.ingest.hats < 2 || options.ingest.items == 0 || options.ingest.items > 1000 {
        return Err("--ingest-hats must be at least 2, --ingest-items 1 to 1000".into());
    }
    if scale_settings.hats == 0 || scale_settings.reports == 0 || scale_settings.concurrency == 0 {
        return Err(
            "--scale-hats, --scale-reports and --seed-concurrency must be at least 1".into(),
        );
    }
    if scale {
        options.scale = Some(scale_settings);
    }
    Ok(options)
}

fn number<T: std::str::FromStr>(arg: &str, value: String) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    value.parse().map_err(|e| format!("{arg}: {e}"))
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("dex-bench: {e}");
            return ExitCode::from(2);
        }
    };
    // One thread: the bench's servers do little work, and the functions (and DynamoDB Local)
    // get the rest of the machine.
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

/// The workspace root: `--root`, else the nearest ancestor of the current directory with a
/// `functions/` folder, else the one this tool was built in.
fn find_root(explicit: Option<PathBuf>) -> Result<PathBuf, String> {
    if let Some(root) = explicit {
        return Ok(root);
    }
    let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
    if let Some(root) = cwd
        .ancestors()
        .find(|d| d.join("functions").is_dir() && d.join("Cargo.toml").is_file())
    {
        return Ok(root.to_owned());
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if built.join("functions").is_dir() {
        return Ok(built);
    }
    Err("cannot find the workspace root (give --root)".into())
}

fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    }
}

/// The package names under functions/ (one binary each, named like the package).
fn function_names(root: &Path) -> Result<Vec<String>, String> {
    let dir = root.join("functions");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let manifest = entry.map_err(|e| e.to_string())?.path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        let value: toml::Table = text
            .parse()
            .map_err(|e| format!("{}: {e}", manifest.display()))?;
        if let Some(name) = value
            .get("package")
            .and_then(|p| p.get("name"))
            .and_then(|n| n.as_str())
        {
            names.push(name.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn counts_json(counts: &Counts) -> Value {
    json!(counts)
}

/// Builds the release binaries, returning the wall time.
fn build(root: &Path, functions: &[String]) -> Result<f64, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(root)
        .args(["build", "--release", "--bins"]);
    for f in functions {
        command.args(["-p", f]);
    }
    eprintln!("dex-bench: building {} release binaries…", functions.len());
    let started = Instant::now();
    let status = command
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build failed ({status})"));
    }
    Ok(started.elapsed().as_secs_f64())
}

/// The size of the Lambda zip: one entry named `bootstrap`, deflate level 9 (the `zip` CLI, or
/// Python's zipfile when it is missing).
fn zipped_size(binary: &Path, work: &Path) -> Result<u64, String> {
    let _ = std::fs::remove_dir_all(work);
    std::fs::create_dir_all(work).map_err(|e| format!("{}: {e}", work.display()))?;
    let bootstrap = work.join("bootstrap");
    if std::fs::hard_link(binary, &bootstrap).is_err() {
        std::fs::copy(binary, &bootstrap)
            .map_err(|e| format!("copying {}: {e}", binary.display()))?;
    }
    let zip = work.join("function.zip");
    let output = match Command::new("zip").current_dir(work).args(["-q", "-9", "-X", "function.zip", "bootstrap"]).output() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Command::new("python3")
            .current_dir(work)
            .args([
                "-c",
                "import zipfile\n\
                 with zipfile.ZipFile('function.zip', 'w', zipfile.ZIP_DEFLATED, compresslevel=9) as z:\n    \
                 z.write('bootstrap')",
            ])
            .output()
            .map_err(|e| format!("neither zip nor python3 can run: {e}"))?,
        other => other.map_err(|e| format!("zip: {e}"))?,
    };
    if !output.status.success() {
        return Err(format!(
            "zipping {}: {}",
            binary.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let size = std::fs::metadata(&zip)
        .map_err(|e| format!("{}: {e}", zip.display()))?
        .len();
    let _ = std::fs::remove_dir_all(work);
    Ok(size)
}

/// The counting proxies, keyed by the service's endpoint variable suffix.
struct Proxies {
    dynamodb: Option<CountingProxy>,
    secrets: Option<CountingProxy>,
}

#[derive(Clone, Default)]
struct Snapshot {
    dynamodb: Counts,
    secrets: Counts,
}

impl Proxies {
    fn snapshot(&self) -> Snapshot {
        Snapshot {
            dynamodb: self
                .dynamodb
                .as_ref()
                .map(CountingProxy::snapshot)
                .unwrap_or_default(),
            secrets: self
                .secrets
                .as_ref()
                .map(CountingProxy::snapshot)
                .unwrap_or_default(),
        }
    }

    fn since(&self, before: &Snapshot) -> Snapshot {
        let now = self.snapshot();
        Snapshot {
            dynamodb: proxy::diff(&now.dynamodb, &before.dynamodb),
            secrets: proxy::diff(&now.secrets, &before.secrets),
        }
    }
}

async fn start_proxy(service: &str, variable: &str) -> Result<Option<CountingProxy>, String> {
    let upstream = std::env::var(variable)
        .ok()
        .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
    let Some(upstream) = upstream.filter(|u| !u.is_empty()) else {
        eprintln!("dex-bench: {variable} is not set: {service} requests are not counted");
        return Ok(None);
    };
    CountingProxy::start(&upstream)
        .await
        .map(Some)
        .map_err(|e| format!("{service} proxy: {e}"))
}

/// The environment every function gets: the bench's DEX_* and AWS_* (and RUST_LOG), with the
/// endpoints replaced by the counting proxies, the HAT settings that reach the test HAT
/// cluster (decisions §6), the public URL the bench's HAT tokens name, and the HAT key cache
/// at its default.
fn function_env(proxies: &Proxies) -> Vec<(String, String)> {
    let mut env: BTreeMap<String, String> = std::env::vars()
        .filter(|(k, _)| {
            k.starts_with("DEX_")
                || (k.starts_with("AWS_") && !k.starts_with("AWS_LAMBDA_"))
                || k == "RUST_LOG"
        })
        .collect();
    env.insert("DEX_HAT_SCHEME".into(), hats::HAT_SCHEME.into());
    env.insert("DEX_HAT_RESOLVE".into(), hats::HAT_RESOLVE.into());
    env.insert("DEX_LOCAL_STACK".into(), "1".into());
    env.insert("DEX_PUBLIC_URL".into(), events::public_url());
    env.remove("DEX_HAT_KEY_CACHE_SECS");
    if let Ok(log_level) = std::env::var("AWS_LAMBDA_LOG_LEVEL") {
        env.insert("AWS_LAMBDA_LOG_LEVEL".into(), log_level);
    }
    if let Some(p) = &proxies.dynamodb {
        env.insert("AWS_ENDPOINT_URL_DYNAMODB".into(), p.url.clone());
    }
    if let Some(p) = &proxies.secrets {
        env.insert("AWS_ENDPOINT_URL_SECRETS_MANAGER".into(), p.url.clone());
    }
    env.into_iter().collect()
}

struct Bench {
    target: PathBuf,
    logs: PathBuf,
    env: Vec<(String, String)>,
    proxies: Proxies,
    timeout: Duration,
}

struct ColdRun {
    init: Duration,
    first_response: Duration,
    status: u16,
    requests: Snapshot,
}

impl Bench {
    fn binary(&self, function: &str) -> PathBuf {
        self.target.join("release").join(function)
    }

    fn spawn(&self, function: &str, api: &RuntimeApi) -> Result<FunctionProcess, String> {
        FunctionProcess::spawn(
            &self.binary(function),
            function,
            api.addr,
            &self.env,
            &self.logs.join(format!("{function}.log")),
        )
    }

    /// One cold start: spawn, first `/next`, first response; then the process is stopped.
    async fn cold_start(&self, function: &str, event: &Bytes) -> Result<ColdRun, String> {
        let mut api = RuntimeApi::start(function)
            .await
            .map_err(|e| e.to_string())?;
        let id = api.enqueue(event.clone());
        let before = self.proxies.snapshot();
        let spawned = Instant::now();
        let mut process = self.spawn(function, &api)?;
        let mut init = None;
        loop {
            match api.next_note(&mut process, self.timeout).await? {
                Note::NextRequested { at } => {
                    init.get_or_insert(at.saturating_duration_since(spawned));
                }
                Note::Response { id: got, at, body } if got == id => {
                    let status =
                        runtime::status_of(&serde_json::from_slice(&body).unwrap_or(Value::Null));
                    let first_response = at.saturating_duration_since(spawned);
                    drop(process);
                    return Ok(ColdRun {
                        init: init.ok_or("a response before the first /next")?,
                        first_response,
                        status,
                        requests: self.proxies.since(&before),
                    });
                }
                other => runtime::check(function, other)?,
            }
        }
    }

    /// A warm case: one process, a first (cold) event, then `requests` more in sequence, then
    /// the case's probe (if any). `name` is the case's name in the results. Returns the result
    /// and the first response.
    async fn warm(
        &self,
        case: &WarmCase,
        name: &str,
        ctx: &mut Ctx,
        requests: usize,
    ) -> Result<(Value, Value), String> {
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
        let cold_ms = ms(first.responded.saturating_duration_since(spawned));
        let cold_requests = self.proxies.since(&before);
        let first_response = first.response();
        let expected = |status: u16| match case.expect_status {
            Some(expected) => status == expected,
            None => (200..300).contains(&status),
        };
        let first_status = runtime::status_of(&first_response);
        if !expected(first_status) {
            return Err(format!(
                "{name}: first response has status {first_status}: {}",
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
        let warm_requests = self.proxies.since(&before);

        let probe = match probe_event {
            None => Value::Null,
            Some(event) => {
                let before = self.proxies.snapshot();
                let invocation = api.invoke(&mut process, event, self.timeout).await?;
                let requests = self.proxies.since(&before);
                let response = invocation.response();
                let status = runtime::status_of(&response);
                if !expected(status) && unexpected.is_none() {
                    unexpected = Some(format!(
                        "probe: status {status}: {}",
                        events::response_body(&response)
                    ));
                }
                json!({
                    "ms": ms(invocation.latency()),
                    "status": status,
                    "dynamodb": self.proxies.dynamodb.as_ref().map(|_| proxy::total(&requests.dynamodb)),
                    "dynamodb_ops": counts_json(&requests.dynamodb),
                })
            }
        };
        drop(process);

        latencies.sort_by(f64::total_cmp);
        let n = requests as f64;
        let per_request = |counts: &Counts| proxy::total(counts) as f64 / n;
        let per_op = |counts: &Counts| -> Value {
            counts
                .iter()
                .map(|(op, c)| (op.clone(), json!(*c as f64 / n)))
                .collect::<serde_json::Map<_, _>>()
                .into()
        };
        let result = json!({
            "name": name,
            "function": case.function,
            "requests": requests,
            "p50_ms": percentile(&latencies, 50.0),
            "p90_ms": percentile(&latencies, 90.0),
            "p99_ms": percentile(&latencies, 99.0),
            "max_ms": latencies.last().copied().unwrap_or(f64::NAN),
            "mean_ms": latencies.iter().sum::<f64>() / n,
            "throughput_per_s": n / elapsed.as_secs_f64(),
            "statuses": statuses.iter().map(|(s, c)| (s.to_string(), json!(c))).collect::<serde_json::Map<_, _>>(),
            "unexpected": unexpected,
            "cold_first_response_ms": cold_ms,
            "cold_first_status": first_status,
            "dynamodb_per_request": self.proxies.dynamodb.as_ref().map(|_| per_request(&warm_requests.dynamodb)),
            "dynamodb_ops_per_request": per_op(&warm_requests.dynamodb),
            "dynamodb_cold_first": self.proxies.dynamodb.as_ref().map(|_| proxy::total(&cold_requests.dynamodb)),
            "dynamodb_cold_first_ops": counts_json(&cold_requests.dynamodb),
            "secrets_per_request": self.proxies.secrets.as_ref().map(|_| per_request(&warm_requests.secrets)),
            "secrets_cold_first": self.proxies.secrets.as_ref().map(|_| proxy::total(&cold_requests.secrets)),
            "secrets_cold_first_ops": counts_json(&cold_requests.secrets),
            "probe": probe,
        });
        Ok((result, first_response))
    }

    /// Runs one warm case (skipped when its function has no release binary); `ok` turns false
    /// on an error or an unexpected response.
    async fn run_case(
        &self,
        case: &WarmCase,
        name: &str,
        ctx: &mut Ctx,
        requests: usize,
        ok: &mut bool,
    ) -> (Value, Option<Value>) {
        if !self.binary(&case.function).is_file() {
            eprintln!(
                "dex-bench: warm {name}: no release binary for {}, skipped",
                case.function
            );
            return (
                json!({ "name": name, "function": case.function, "skipped": "no release binary" }),
                None,
            );
        }
        eprintln!("dex-bench: warm {name} ({requests} requests)");
        match self.warm(case, name, ctx, requests).await {
            Ok((result, first)) => {
                if !result["unexpected"].is_null() {
                    *ok = false;
                    eprintln!(
                        "dex-bench: warm {name}: unexpected {}",
                        result["unexpected"]
                    );
                }
                (result, Some(first))
            }
            Err(e) => {
                eprintln!("dex-bench: warm {name}: {e}");
                *ok = false;
                (
                    json!({ "name": name, "function": case.function, "error": e }),
                    None,
                )
            }
        }
    }
}

async fn run(options: Options) -> Result<bool, String> {
    let root = find_root(options.root.clone())?;
    let target = target_dir(&root);
    let all_functions = function_names(&root)?;
    let functions: Vec<String> = match &options.functions {
        Some(only) if only.iter().all(|f| f == "none") => Vec::new(),
        Some(only) => {
            if let Some(unknown) = only.iter().find(|f| !all_functions.contains(f)) {
                return Err(format!(
                    "no function {unknown:?} under functions/ (have: {})",
                    all_functions.join(", ")
                ));
            }
            all_functions
                .iter()
                .filter(|f| only.contains(f))
                .cloned()
                .collect()
        }
        None => all_functions.clone(),
    };
    let routes = events::routes(&root)?;
    let mut cases = events::warm_cases();
    for (function, file) in &options.warm_events {
        cases.push(events::file_case(function, &root.join(file))?);
    }
    if let Some(only) = &options.warm {
        cases.retain(|c| only.contains(&c.name));
    }
    let ingest_selected = options
        .warm
        .as_ref()
        .is_none_or(|only| only.iter().any(|w| w == INGEST));
    if options.list {
        println!("functions: {}", functions.join(", "));
        let mut names: Vec<String> = cases
            .iter()
            .map(|c| format!("{} ({})", c.name, c.function))
            .collect();
        if ingest_selected {
            names.push(format!("{INGEST} (stats-report, concurrent ingestion)"));
        }
        println!("warm cases: {}", names.join(", "));
        if options.scale.is_some() {
            println!("--scale: the stats reads again after seeding");
        }
        return Ok(true);
    }

    let bench_dir = target.join("bench");
    let logs = bench_dir.join("logs");
    let _ = std::fs::remove_dir_all(&logs);
    std::fs::create_dir_all(&logs).map_err(|e| format!("{}: {e}", logs.display()))?;
    let mut ok = true;
    let bench_started = Instant::now();
    let mut phases = serde_json::Map::new();
    let mut phase_started = Instant::now();
    let mut lap = |phases: &mut serde_json::Map<String, Value>, name: &str| {
        phases.insert(name.into(), json!(phase_started.elapsed().as_secs_f64()));
        phase_started = Instant::now();
    };

    // 0. The build (optional), timed.
    let build_seconds = if options.build {
        let mut to_build = functions.clone();
        let mut needed: Vec<&str> = cases.iter().map(|c| c.function.as_str()).collect();
        if ingest_selected {
            needed.push(INGEST);
        }
        for function in needed {
            if all_functions.iter().any(|f| f == function)
                && !to_build.iter().any(|f| f == function)
            {
                to_build.push(function.to_owned());
            }
        }
        Some(build(&root, &to_build)?)
    } else {
        None
    };

    // 1. Sizes.
    let mut sizes = BTreeMap::new();
    for function in &functions {
        let binary = target.join("release").join(function);
        let size = std::fs::metadata(&binary)
            .map_err(|e| {
                format!(
                    "{}: {e} (build with --build, or cargo build --release --bins -p {function})",
                    binary.display()
                )
            })?
            .len();
        let zipped = zipped_size(&binary, &bench_dir.join("zip").join(function))?;
        sizes.insert(function.clone(), (size, zipped));
    }
    let _ = std::fs::remove_dir_all(bench_dir.join("zip"));

    // The proxies and the functions' environment.
    let proxies = if options.proxy {
        Proxies {
            dynamodb: start_proxy("DynamoDB", "AWS_ENDPOINT_URL_DYNAMODB").await?,
            secrets: start_proxy("Secrets Manager", "AWS_ENDPOINT_URL_SECRETS_MANAGER").await?,
        }
    } else {
        Proxies {
            dynamodb: None,
            secrets: None,
        }
    };
    let bench = Bench {
        env: function_env(&proxies),
        target: target.clone(),
        logs: logs.clone(),
        proxies,
        timeout: options.timeout,
    };

    lap(&mut phases, "build_and_sizes");
    // 2. Cold starts.
    let mut cold_results = Vec::new();
    for function in &functions {
        let file = root.join("events").join(format!("{function}.json"));
        let (event, source) = if file.is_file() {
            (
                events::event_file(&file)?,
                format!("events/{function}.json"),
            )
        } else if let Some(route) = routes.get(function) {
            (
                Event::new(&route.method, &route.path).build(),
                format!("{} {}", route.method, route.path),
            )
        } else {
            (Event::get("/").build(), "GET / (no route)".to_string())
        };
        let event = Bytes::from(event.to_string());
        eprint!("dex-bench: cold start {function} ");
        let mut runs = Vec::new();
        let mut error = None;
        for _ in 0..options.runs {
            match bench.cold_start(function, &event).await {
                Ok(run) => {
                    eprint!(".");
                    runs.push(run);
                }
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        eprintln!();
        let (size, zipped) = sizes[function];
        let mut entry = json!({
            "name": function,
            "binary_bytes": size,
            "zip_bytes": zipped,
            "event": source,
        });
        if let Some(e) = &error {
            eprintln!("dex-bench: {e}");
            ok = false;
            entry["error"] = json!(e);
        }
        if !runs.is_empty() {
            let init: Vec<f64> = runs.iter().map(|r| ms(r.init)).collect();
            let first: Vec<f64> = runs.iter().map(|r| ms(r.first_response)).collect();
            entry["init_ms"] = json!(median(&init));
            entry["first_response_ms"] = json!(median(&first));
            entry["init_ms_runs"] = json!(init);
            entry["first_response_ms_runs"] = json!(first);
            entry["first_status"] = json!(runs[0].status);
            entry["dynamodb_first_request"] = json!(
                bench
                    .proxies
                    .dynamodb
                    .as_ref()
                    .map(|_| proxy::total(&runs[0].requests.dynamodb))
            );
            entry["dynamodb_first_request_ops"] = counts_json(&runs[0].requests.dynamodb);
            entry["secrets_first_request"] = json!(
                bench
                    .proxies
                    .secrets
                    .as_ref()
                    .map(|_| proxy::total(&runs[0].requests.secrets))
            );
            entry["secrets_first_request_ops"] = counts_json(&runs[0].requests.secrets);
        }
        cold_results.push(entry);
    }

    lap(&mut phases, "cold_starts");
    // 3. Warm latency and 4. requests per request.
    let mut ctx = Ctx::from_env();
    let mut warm_results = Vec::new();

    // The test HAT cluster and its registered HATs, when a case needs them.
    let needs_hats = ingest_selected || cases.iter().any(|c| c.hats);
    let mut onboarding = json!(null);
    let mut ingest_hats: Vec<(String, String)> = Vec::new();
    let mut setup = None;
    if needs_hats {
        match prepare_hats(&cases, &options, ingest_selected, &mut ctx).await {
            Ok((s, info, hats)) => {
                onboarding = info;
                ingest_hats = hats;
                setup = Some(s);
            }
            Err(e) => {
                eprintln!("dex-bench: HAT set-up: {e}");
                ok = false;
                onboarding = json!({ "error": e });
            }
        }
    }

    for case in cases.iter().filter(|c| c.stage == Stage::Basic) {
        if case.hats && setup.is_none() {
            warm_results.push(json!({ "name": case.name, "function": case.function, "skipped": "no test HAT cluster" }));
            continue;
        }
        let (result, _) = bench
            .run_case(case, &case.name, &mut ctx, options.requests, &mut ok)
            .await;
        warm_results.push(result);
    }
    if let Some(hat_log) = warm_results.iter().find(|r| r["name"] == "hat-log") {
        onboarding["verified_request"] = verified_request_target(hat_log);
    }

    lap(&mut phases, "hat_setup_and_warm");
    // Statistics: concurrent ingestion, then the reads on that small data set.
    let mut ingest = json!(null);
    if ingest_selected {
        ingest = if setup.is_none() {
            json!({ "skipped": "no test HAT cluster" })
        } else if !bench.binary(INGEST).is_file() {
            json!({ "skipped": "no release binary" })
        } else {
            let s = &options.ingest;
            eprintln!(
                "dex-bench: {INGEST}: {} processes × {} reports × {} items, concurrently",
                s.hats,
                s.reports + 1,
                s.items
            );
            match stats::ingest(&bench, &ingest_hats, s).await {
                Ok(result) => {
                    if let Some(u) = result["unexpected"].as_str() {
                        eprintln!("dex-bench: {INGEST}: unexpected {u}");
                        ok = false;
                    }
                    result
                }
                Err(e) => {
                    eprintln!("dex-bench: {INGEST}: {e}");
                    ok = false;
                    json!({ "error": e })
                }
            }
        };
    }
    let read_cases: Vec<&WarmCase> = cases
        .iter()
        .filter(|c| c.stage == Stage::StatsRead)
        .collect();
    let mut reads = Vec::new();
    for case in &read_cases {
        let (mut result, first) = bench
            .run_case(case, &case.name, &mut ctx, options.requests, &mut ok)
            .await;
        result["data_set"] = data_set(first.as_ref(), "small");
        reads.push(result);
    }

    lap(&mut phases, "stats_ingest_and_reads");
    // --scale: seed, then the same reads again.
    let mut scale = json!(null);
    if let Some(settings) = &options.scale {
        let seeded = match &setup {
            Some(s) => stats::seed(&s.app, hats::CLUSTER_DOMAIN, settings).await,
            None => match hats::dex_app(&ctx.public_url).await {
                Ok(app) => stats::seed(&app, hats::CLUSTER_DOMAIN, settings).await,
                Err(e) => Err(e),
            },
        };
        match seeded {
            Ok(seeding) => {
                scale = json!({ "seeding": seeding });
                for case in &read_cases {
                    let name = format!("{}@scale", case.name);
                    let (mut result, first) = bench
                        .run_case(case, &name, &mut ctx, options.requests, &mut ok)
                        .await;
                    result["data_set"] = data_set(first.as_ref(), "scale");
                    reads.push(result);
                }
            }
            Err(e) => {
                eprintln!("dex-bench: seeding: {e}");
                ok = false;
                scale = json!({ "error": e });
            }
        }
    }
    if options.scale.is_some() {
        lap(&mut phases, "scale_seed_and_reads");
    }
    phases.insert("total".into(), json!(bench_started.elapsed().as_secs_f64()));
    let read_target = reads_target(&reads);
    warm_results.extend(reads);
    drop(setup);

    // Targets.
    let slow: Vec<String> = cold_results
        .iter()
        .filter(|r| {
            r["first_response_ms"]
                .as_f64()
                .is_some_and(|v| v >= TARGET_COLD_MS)
        })
        .map(|r| r["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    let big: Vec<String> = cold_results
        .iter()
        .filter(|r| {
            r["zip_bytes"]
                .as_u64()
                .is_some_and(|v| v > TARGET_ZIP_BYTES)
        })
        .map(|r| r["name"].as_str().unwrap_or_default().to_owned())
        .collect();

    let results = json!({
        "generated_at_unix": SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        "machine": {
            "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "os": std::env::consts::OS,
            "arch": std::env::consts::ARCH,
        },
        "settings": {
            "cold_runs": options.runs,
            "warm_requests": options.requests,
            "memory_size_mb": 256,
            "counting_proxy": options.proxy,
            "dynamodb_upstream": bench.proxies.dynamodb.as_ref().map(|p| p.upstream.clone()),
            "secrets_upstream": bench.proxies.secrets.as_ref().map(|p| p.upstream.clone()),
            "public_url": ctx.public_url,
            "hat_scheme": hats::HAT_SCHEME,
            "hat_resolve": hats::HAT_RESOLVE,
            "hat_key_cache_secs": HAT_KEY_CACHE_SECS,
            "ingest": ingest_selected.then(|| json!({
                "hats": options.ingest.hats,
                "reports_per_hat": options.ingest.reports,
                "items_per_report": options.ingest.items,
            })),
            "scale": options.scale.as_ref().map(|s| json!({
                "hats": s.hats,
                "values": s.values,
                "reports": s.reports,
                "seed_concurrency": s.concurrency,
            })),
        },
        "build_seconds": build_seconds,
        "phase_seconds": phases,
        "functions": cold_results,
        "warm": warm_results,
        "hat_onboarding": onboarding,
        "stats_ingest": ingest,
        "stats_scale": scale,
        "targets": {
            "cold_first_response_ms_below": TARGET_COLD_MS,
            "zip_bytes_at_most": TARGET_ZIP_BYTES,
            "cold_start_over": slow,
            "zip_over": big,
            "verified_hat_request": results_target(&onboarding),
            "stats_reads_flat": read_target,
        },
    });

    print_tables(&results);
    let out = options
        .out
        .clone()
        .unwrap_or_else(|| bench_dir.join("results.json"));
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(
        &out,
        serde_json::to_string_pretty(&results).expect("serialisable"),
    )
    .map_err(|e| format!("{}: {e}", out.display()))?;
    println!(
        "\nresults: {}   function logs: {}",
        out.display(),
        logs.display()
    );
    Ok(ok)
}

/// Starts the test HAT cluster, certifies its domain and makes the HATs the cases need:
/// registered ones (through DEX's registration path) for `hat-log`, `register-hat-again` and
/// the ingestion, and unregistered ones for `register-hat` (one per request).
async fn prepare_hats(
    cases: &[WarmCase],
    options: &Options,
    ingest: bool,
    ctx: &mut Ctx,
) -> Result<(hats::HatSetup, Value, Vec<(String, String)>), String> {
    eprintln!(
        "dex-bench: starting the test HAT cluster, certifying {}",
        hats::CLUSTER_DOMAIN
    );
    let mut setup = hats::setup(&ctx.public_url).await?;
    let registered_count = if ingest { options.ingest.hats } else { 2 }.max(2);
    let fresh_count = if cases.iter().any(|c| c.name == "register-hat") {
        options.requests + 1
    } else {
        0
    };
    eprint!(
        "dex-bench: making {} test HATs (a 2048-bit RSA key each)…",
        registered_count + fresh_count
    );
    let registered = setup.add_hats("hat", registered_count);
    let fresh = setup.add_hats("new", fresh_count);
    eprintln!(" {:.1} s", setup.keygen_seconds);
    let started = Instant::now();
    let mut already = 0;
    for hat in &registered {
        if setup.register(hat).await? != dex::hats::register::Outcome::Registered {
            already += 1;
        }
    }
    let register_seconds = started.elapsed().as_secs_f64();
    let pairs: Vec<(String, String)> = registered
        .iter()
        .map(|h| (h.address().to_owned(), setup.token(h)))
        .collect();
    ctx.hat = Some(pairs[0].clone());
    ctx.other_hat = Some(pairs[1].clone());
    ctx.fresh_hats = fresh.iter().map(|h| h.address().to_owned()).collect();
    let info = json!({
        "cluster_domain": hats::CLUSTER_DOMAIN,
        "cluster_certified_now": setup.certified_now,
        "test_hat_cluster": setup.cluster.base_url(),
        "test_hats": setup.hats_made,
        "keygen_seconds": setup.keygen_seconds,
        "registered_in_setup": pairs.len(),
        "registered_before": already,
        "register_seconds": register_seconds,
        "unregistered_for_register_hat": fresh.len(),
        "hat_key_cache_secs": HAT_KEY_CACHE_SECS,
    });
    Ok((setup, info, pairs))
}

/// (key reads, other requests, other operations) of per-operation counts.
fn split_key_reads(ops: &Value) -> (f64, f64, Value) {
    let mut key = 0.0;
    let mut other = 0.0;
    let mut rest = serde_json::Map::new();
    for (op, n) in ops.as_object().into_iter().flatten() {
        let n = n.as_f64().unwrap_or(0.0);
        if KEY_READS.contains(&op.as_str()) {
            key += n;
        } else {
            other += n;
            rest.insert(op.clone(), json!(n));
        }
    }
    (key, other, Value::Object(rest))
}

/// The verified-request target from the `hat-log` case: at most one key read for a HAT's
/// first request on a container (cold, or warm with another HAT's key cached), none while its
/// key is cached, and otherwise exactly what the endpoint needs (its Query).
fn verified_request_target(hat_log: &Value) -> Value {
    // Without the counting proxy there is nothing to judge.
    if hat_log["p50_ms"].is_null() || hat_log["dynamodb_per_request"].is_null() {
        return json!({ "measured": false });
    }
    let first = split_key_reads(&hat_log["dynamodb_cold_first_ops"]);
    let probe = split_key_reads(&hat_log["probe"]["dynamodb_ops"]);
    let warm = split_key_reads(&hat_log["dynamodb_ops_per_request"]);
    let met = first.0 <= 1.0
        && probe.0 <= 1.0
        && warm.0 == 0.0
        && (first.1 - warm.1).abs() < 1e-9
        && (probe.1 - warm.1).abs() < 1e-9;
    json!({
        "measured": true,
        "met": met,
        "first_request": { "key_reads": first.0, "endpoint": first.2, "ops": hat_log["dynamodb_cold_first_ops"], "ms": hat_log["cold_first_response_ms"] },
        "warm_container_new_hat": { "key_reads": probe.0, "endpoint": probe.2, "ops": hat_log["probe"]["dynamodb_ops"], "ms": hat_log["probe"]["ms"] },
        "warm_cached_per_request": { "key_reads": warm.0, "endpoint": warm.2, "ops": hat_log["dynamodb_ops_per_request"], "p50_ms": hat_log["p50_ms"], "p99_ms": hat_log["p99_ms"] },
    })
}

fn results_target(onboarding: &Value) -> Value {
    onboarding["verified_request"]["met"].clone()
}

/// What a stats read saw: the HATs and Data In figures (GET /stats) or the tree's size
/// (GET /stats/available-data).
fn data_set(first: Option<&Value>, label: &str) -> Value {
    let mut out = json!({ "label": label });
    let Some(Value::Array(items)) = first.and_then(events::response_json) else {
        return out;
    };
    for item in &items {
        match item["title"].as_str() {
            Some("HATs") => out["hats"] = item["value"].clone(),
            Some("Data In") => out["data_in"] = item["value"].clone(),
            _ => {}
        }
    }
    if items.iter().all(|i| i.get("namespace").is_some()) {
        let endpoints: usize = items
            .iter()
            .map(|n| n["endpoints"].as_array().map_or(0, Vec::len))
            .sum();
        out["namespaces"] = json!(items.len());
        out["endpoints"] = json!(endpoints);
    }
    out
}

/// Whether the stats reads cost as many DynamoDB requests at scale as on the small data set.
fn reads_target(reads: &[Value]) -> Value {
    let mut pairs = Vec::new();
    let mut met = true;
    for small in reads.iter().filter(|r| r["data_set"]["label"] == "small") {
        let name = small["name"].as_str().unwrap_or_default();
        let Some(scale) = reads
            .iter()
            .find(|r| r["name"].as_str() == Some(&format!("{name}@scale")))
        else {
            continue;
        };
        let (Some(a), Some(b)) = (
            small["dynamodb_per_request"].as_f64(),
            scale["dynamodb_per_request"].as_f64(),
        ) else {
            continue;
        };
        met &= b <= a + 1e-9;
        pairs.push(json!({
            "name": name,
            "small_dynamodb_per_request": a,
            "scale_dynamodb_per_request": b,
            "small_p50_ms": small["p50_ms"],
            "scale_p50_ms": scale["p50_ms"],
            "small_p99_ms": small["p99_ms"],
            "scale_p99_ms": scale["p99_ms"],
        }));
    }
    if pairs.is_empty() {
        return json!({ "measured": false });
    }
    json!({ "measured": true, "met": met, "reads": pairs })
}

fn num(value: &Value, decimals: usize) -> String {
    match value.as_f64() {
        Some(v) => format!("{v:.decimals$}"),
        None => "-".into(),
    }
}

fn ops(value: &Value) -> String {
    let Some(map) = value.as_object() else {
        return String::new();
    };
    map.iter()
        .map(|(op, n)| {
            let op = op.rsplit('.').next().unwrap_or(op);
            match n.as_f64() {
                Some(v) if v.fract() == 0.0 => format!("{op}×{v}"),
                Some(v) => format!("{op}×{v:.2}"),
                None => op.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn print_tables(results: &Value) {
    let settings = &results["settings"];
    println!();
    if let Some(seconds) = results["build_seconds"].as_f64() {
        println!("release build: {seconds:.0} s");
    }
    println!(
        "cold starts: median of {} runs; MB = 10^6 bytes; zip = `bootstrap`, deflate -9",
        settings["cold_runs"]
    );
    println!(
        "{:<24} {:>9} {:>7} {:>8} {:>18} {:>6} {:>9}  first request",
        "function", "binary MB", "zip MB", "init ms", "first response ms", "status", "DDB/SM"
    );
    for f in results["functions"].as_array().into_iter().flatten() {
        let requests = format!(
            "{}/{}",
            f["dynamodb_first_request"]
                .as_u64()
                .map_or("-".into(), |v| v.to_string()),
            f["secrets_first_request"]
                .as_u64()
                .map_or("-".into(), |v| v.to_string())
        );
        let detail = if let Some(e) = f["error"].as_str() {
            format!("ERROR {e}")
        } else {
            format!(
                "{} {}  ({})",
                ops(&f["dynamodb_first_request_ops"]),
                ops(&f["secrets_first_request_ops"]),
                f["event"].as_str().unwrap_or("")
            )
            .trim()
            .to_owned()
        };
        println!(
            "{:<24} {:>9.2} {:>7.2} {:>8} {:>18} {:>6} {:>9}  {}",
            f["name"].as_str().unwrap_or(""),
            mb(f["binary_bytes"].as_u64().unwrap_or(0)),
            mb(f["zip_bytes"].as_u64().unwrap_or(0)),
            num(&f["init_ms"], 1),
            num(&f["first_response_ms"], 1),
            f["first_status"]
                .as_u64()
                .map_or("-".into(), |s| s.to_string()),
            requests,
            detail
        );
    }

    println!();
    println!(
        "warm: {} sequential requests per process (time from handing out the event on /next to its response)",
        settings["warm_requests"]
    );
    println!(
        "{:<28} {:>7} {:>7} {:>7} {:>20} {:>13} {:>15} {:>14}  DynamoDB ops per warm request",
        "benchmark",
        "p50 ms",
        "p99 ms",
        "max ms",
        "DynamoDB req/request",
        "SM req/request",
        "cold first ms",
        "cold DDB/SM"
    );
    for w in results["warm"].as_array().into_iter().flatten() {
        let name = w["name"].as_str().unwrap_or("");
        if let Some(e) = w["error"].as_str().or(w["skipped"].as_str()) {
            println!("{name:<28} {e}");
            continue;
        }
        let cold = format!(
            "{}/{}",
            w["dynamodb_cold_first"]
                .as_u64()
                .map_or("-".into(), |v| v.to_string()),
            w["secrets_cold_first"]
                .as_u64()
                .map_or("-".into(), |v| v.to_string())
        );
        let mut detail = ops(&w["dynamodb_ops_per_request"]);
        if let Some(u) = w["unexpected"].as_str() {
            detail = format!("{detail}  UNEXPECTED {u}");
        }
        println!(
            "{:<28} {:>7} {:>7} {:>7} {:>20} {:>13} {:>15} {:>14}  {}",
            name,
            num(&w["p50_ms"], 2),
            num(&w["p99_ms"], 2),
            num(&w["max_ms"], 2),
            num(&w["dynamodb_per_request"], 2),
            num(&w["secrets_per_request"], 2),
            num(&w["cold_first_response_ms"], 1),
            cold,
            detail
        );
    }

    print_onboarding(&results["hat_onboarding"]);
    print_ingest(&results["stats_ingest"]);
    print_reads(results);
    let phases = &results["phase_seconds"];
    if phases.is_object() {
        let part =
            |key: &str, label: &str| phases[key].as_f64().map(|v| format!("{label} {v:.0} s"));
        let parts: Vec<String> = [
            part("build_and_sizes", "build and sizes"),
            part("cold_starts", "cold starts"),
            part("hat_setup_and_warm", "HAT set-up and warm cases"),
            part("stats_ingest_and_reads", "ingestion and stats reads"),
            part("scale_seed_and_reads", "seeding and stats reads"),
        ]
        .into_iter()
        .flatten()
        .collect();
        println!();
        println!(
            "time: {}; dex-bench total {} s",
            parts.join(", "),
            num(&phases["total"], 0)
        );
    }

    let targets = &results["targets"];
    let list = |v: &Value| {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    println!();
    let slow = list(&targets["cold_start_over"]);
    let big = list(&targets["zip_over"]);
    let unmeasured = results["functions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["first_response_ms"].is_null())
        .filter_map(|f| f["name"].as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let sized = results["functions"]
        .as_array()
        .is_some_and(|f| !f.is_empty());
    if sized {
        println!(
            "target cold start to first response < {TARGET_COLD_MS} ms: {}",
            match (slow.is_empty(), unmeasured.is_empty()) {
                (true, true) => "met".to_string(),
                (true, false) => format!("met by the others; no figure for {unmeasured}"),
                (false, _) => format!("MISSED by {slow}"),
            }
        );
        println!(
            "target zip <= {} MB: {}",
            TARGET_ZIP_BYTES / 1_000_000,
            if big.is_empty() {
                "met".to_string()
            } else {
                format!("MISSED by {big}")
            }
        );
    }
    let verified = &results["hat_onboarding"]["verified_request"];
    if verified["measured"] == true {
        println!(
            "target verified HAT request: <= 1 DynamoDB read for the key on a warm container, 0 while cached, plus the endpoint's own: {}",
            if verified["met"] == true {
                "met"
            } else {
                "MISSED"
            }
        );
    }
    let reads = &targets["stats_reads_flat"];
    if reads["measured"] == true {
        let detail = reads["reads"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                format!(
                    "{} {} → {}",
                    r["name"].as_str().unwrap_or(""),
                    num(&r["small_dynamodb_per_request"], 0),
                    num(&r["scale_dynamodb_per_request"], 0)
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        println!(
            "target GET /stats and /stats/available-data cost does not grow with HATs/reports: {} (DynamoDB requests per call: {detail})",
            if reads["met"] == true {
                "met"
            } else {
                "MISSED"
            }
        );
    }
}

fn print_onboarding(onboarding: &Value) {
    if onboarding.is_null() {
        return;
    }
    println!();
    if let Some(e) = onboarding["error"].as_str() {
        println!("HAT onboarding: ERROR {e}");
        return;
    }
    println!(
        "HAT onboarding: test HAT cluster {} (cluster {}), {} test HATs (keys made in {} s), {} registered in set-up ({} s)",
        onboarding["test_hat_cluster"].as_str().unwrap_or(""),
        onboarding["cluster_domain"].as_str().unwrap_or(""),
        onboarding["test_hats"],
        num(&onboarding["keygen_seconds"], 1),
        onboarding["registered_in_setup"],
        num(&onboarding["register_seconds"], 1),
    );
    let v = &onboarding["verified_request"];
    if v["measured"] != true {
        return;
    }
    println!(
        "verified HAT request (hat-log, GET /api/hat/log, DEX_HAT_KEY_CACHE_SECS={}):",
        onboarding["hat_key_cache_secs"]
    );
    println!(
        "  {:<44} {:>11} {:>10}  DynamoDB ops",
        "", "ms", "key reads"
    );
    let row = |label: &str, part: &Value, time: String| {
        println!(
            "  {:<44} {:>11} {:>10}  {}",
            label,
            time,
            num(&part["key_reads"], 0),
            ops(&part["ops"])
        );
    };
    row(
        "first request (cold container)",
        &v["first_request"],
        num(&v["first_request"]["ms"], 1),
    );
    row(
        "another HAT's first request (warm container)",
        &v["warm_container_new_hat"],
        num(&v["warm_container_new_hat"]["ms"], 1),
    );
    row(
        "warm, key cached (per request)",
        &v["warm_cached_per_request"],
        format!(
            "{}/{}",
            num(&v["warm_cached_per_request"]["p50_ms"], 2),
            num(&v["warm_cached_per_request"]["p99_ms"], 2)
        ),
    );
    println!("  (warm: p50/p99; key reads: BatchGetItem of the HAT and its cluster)");
}

fn print_ingest(ingest: &Value) {
    if ingest.is_null() {
        return;
    }
    println!();
    if let Some(e) = ingest["error"].as_str().or(ingest["skipped"].as_str()) {
        println!("statistics ingestion: {e}");
        return;
    }
    println!(
        "statistics ingestion: {} stats-report processes (one HAT each, own Runtime API) post concurrently; {} unique inbound items per report over {} endpoints",
        ingest["processes"], ingest["items_per_report"], ingest["endpoints_per_report"]
    );
    println!(
        "{:<34} {:>7} {:>8} {:>10} {:>10} {:>8} {:>8} {:>8} {:>9}  DynamoDB ops per report",
        "phase", "reports", "items", "seconds", "items/s", "p50 ms", "p99 ms", "max ms", "DDB/rep"
    );
    for (key, label) in [
        ("first", "first report (cold processes)"),
        ("fresh", "fresh reports (warm, throughput)"),
        ("duplicate", "resent reports (all duplicates)"),
    ] {
        let p = &ingest[key];
        println!(
            "{:<34} {:>7} {:>8} {:>10} {:>10} {:>8} {:>8} {:>8} {:>9}  {}",
            label,
            num(&p["reports"], 0),
            num(&p["items"], 0),
            num(&p["seconds"], 2),
            num(&p["items_per_s"], 0),
            num(&p["p50_ms"], 1),
            num(&p["p99_ms"], 1),
            num(&p["max_ms"], 1),
            num(&p["dynamodb_per_report"], 2),
            ops(&p["dynamodb_ops_per_report"])
        );
    }
    println!(
        "  (first: latency from spawn; fresh: {} reports per process in sequence, all processes at once)",
        ingest["reports_per_hat"]
    );
    if let Some(u) = ingest["unexpected"].as_str() {
        println!("  UNEXPECTED {u}");
    }
}

fn print_reads(results: &Value) {
    let scale = &results["stats_scale"];
    let reads: Vec<&Value> = results["warm"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|w| w["data_set"].is_object())
        .collect();
    if reads.is_empty() && scale.is_null() {
        return;
    }
    println!();
    println!("statistics reads against the data set (warm p50/p99, DynamoDB requests per call)");
    if let Some(e) = scale["error"].as_str() {
        println!("  seeding: ERROR {e}");
    } else if scale["seeding"].is_object() {
        let s = &scale["seeding"];
        println!(
            "  seeding ({} writes in flight, through HatStore::insert_hat and StatsStore::ingest): {} HATs in {} s ({}/s); {} reports carrying {} values in {} s ({}/s)",
            s["concurrency"],
            s["hats"],
            num(&s["hat_seconds"], 1),
            num(&s["hats_per_s"], 0),
            s["reports"],
            s["values"],
            num(&s["value_seconds"], 1),
            num(&s["reports_per_s"], 0),
        );
    }
    println!(
        "  {:<28} {:>10} {:>12} {:>11} {:>7} {:>7} {:>7}  DynamoDB ops per call",
        "benchmark", "HATs", "Data In", "tree size", "p50 ms", "p99 ms", "DDB/call"
    );
    let figure = |v: &Value| v.as_i64().map_or("".to_string(), |v| v.to_string());
    for r in reads {
        let name = r["name"].as_str().unwrap_or("");
        if let Some(e) = r["error"].as_str().or(r["skipped"].as_str()) {
            println!("  {name:<28} {e}");
            continue;
        }
        let d = &r["data_set"];
        let tree = match (d["namespaces"].as_u64(), d["endpoints"].as_u64()) {
            (Some(n), Some(e)) => format!("{n} ns/{e} ep"),
            _ => String::new(),
        };
        println!(
            "  {:<28} {:>10} {:>12} {:>11} {:>7} {:>7} {:>7}  {}",
            name,
            figure(&d["hats"]),
            figure(&d["data_in"]),
            tree,
            num(&r["p50_ms"], 2),
            num(&r["p99_ms"], 2),
            num(&r["dynamodb_per_request"], 2),
            ops(&r["dynamodb_ops_per_request"])
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<f64> = (1..=200).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 100.0);
        assert_eq!(percentile(&v, 99.0), 198.0);
        assert_eq!(percentile(&[3.0], 99.0), 3.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn events_fill_path_parameters() {
        let e = Event::get("/api/admin/accounts/{accountId}")
            .param("accountId", "a b")
            .build();
        assert_eq!(e["rawPath"], "/api/admin/accounts/a%20b");
        assert_eq!(e["pathParameters"]["accountId"], "a b");
        assert_eq!(e["requestContext"]["http"]["method"], "GET");
        let e = Event::post("/x/{id}")
            .json_body(&json!({"a": 1}))
            .query("q", "1")
            .build();
        assert_eq!(e["rawPath"], "/x/bench-id");
        assert_eq!(e["rawQueryString"], "q=1");
        assert_eq!(e["body"], "{\"a\":1}");
    }

    #[test]
    fn request_counts_are_differences() {
        let before: Counts = [("A".to_string(), 1), ("B".to_string(), 2)].into();
        let after: Counts = [
            ("A".to_string(), 1),
            ("B".to_string(), 5),
            ("C".to_string(), 1),
        ]
        .into();
        let d = proxy::diff(&after, &before);
        assert_eq!(d, [("B".to_string(), 3), ("C".to_string(), 1)].into());
        assert_eq!(ops(&counts_json(&d)), "B×3 C×1");
    }
}
