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
//!    emulators the environment points at (`AWS_ENDPOINT_URL_DYNAMODB`, ...).
//!
//! The environment is the local stack's (scripts/bench.sh sets it up): the functions get the
//! bench's `DEX_*` and `AWS_*` variables. Results: a table on stdout and
//! `<target dir>/bench/results.json`.

mod events;
mod proxy;
mod runtime;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde_json::{Value, json};

use events::{Ctx, Event, WarmCase};
use proxy::{CountingProxy, Counts};
use runtime::{FunctionProcess, Note, RuntimeApi};

const USAGE: &str = "\
dex-bench: sizes, cold starts, warm latency and DynamoDB round trips of the DEX functions

usage: dex-bench [options]
  --build                  build the release binaries first (cargo build --release --bins -p ...)
  --runs N                 cold starts per function (default 5)
  --requests M             warm requests per warm case (default 200)
  --functions a,b          only these functions (sizes and cold starts; default: all under functions/)
  --warm a,b               only these warm cases (default: all; `--warm none` skips them)
  --warm-event FN=FILE     add a warm case: FILE (an API Gateway v2 event) sent to FN, any 2xx
  --no-proxy               talk to the emulators directly (no request counts)
  --timeout-secs S         per-event timeout (default 30)
  --root DIR               the workspace root (default: found from the current directory)
  --out FILE               the JSON results (default: <target dir>/bench/results.json)
  --list                   list the functions and warm cases, then exit

Targets: cold start to first response under 50 ms; no zip over 8 MB (MB = 10^6 bytes).
";

const TARGET_COLD_MS: f64 = 50.0;
const TARGET_ZIP_BYTES: u64 = 8_000_000;

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
    Ok(options)
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
/// endpoints replaced by the counting proxies.
fn function_env(proxies: &Proxies) -> Vec<(String, String)> {
    let mut env: BTreeMap<String, String> = std::env::vars()
        .filter(|(k, _)| {
            k.starts_with("DEX_")
                || (k.starts_with("AWS_") && !k.starts_with("AWS_LAMBDA_"))
                || k == "RUST_LOG"
        })
        .collect();
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

    /// A warm case: one process, a first (cold) event, then `requests` more in sequence.
    async fn warm(&self, case: &WarmCase, ctx: &mut Ctx, requests: usize) -> Result<Value, String> {
        let event = Bytes::from((case.event)(ctx)?.to_string());
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
                "{}: first response has status {first_status}: {}",
                case.name,
                events::response_body(&first_response)
            ));
        }
        if let Some(after) = case.after {
            after(ctx, &first_response);
        }

        let before = self.proxies.snapshot();
        let mut latencies = Vec::with_capacity(requests);
        let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
        let mut unexpected = None;
        let started = Instant::now();
        for _ in 0..requests {
            let invocation = api
                .invoke(&mut process, event.clone(), self.timeout)
                .await?;
            latencies.push(ms(invocation.latency()));
            let response = invocation.response();
            let status = runtime::status_of(&response);
            *statuses.entry(status).or_default() += 1;
            if !expected(status) && unexpected.is_none() {
                unexpected = Some(format!(
                    "status {status}: {}",
                    events::response_body(&response)
                ));
            }
        }
        let elapsed = started.elapsed();
        let warm_requests = self.proxies.since(&before);
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
        Ok(json!({
            "name": case.name,
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
        }))
    }
}

async fn run(options: Options) -> Result<bool, String> {
    let root = find_root(options.root.clone())?;
    let target = target_dir(&root);
    let all_functions = function_names(&root)?;
    let functions: Vec<String> = match &options.functions {
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
    if options.list {
        println!("functions: {}", functions.join(", "));
        println!(
            "warm cases: {}",
            cases
                .iter()
                .map(|c| format!("{} ({})", c.name, c.function))
                .collect::<Vec<_>>()
                .join(", ")
        );
        return Ok(true);
    }

    let bench_dir = target.join("bench");
    let logs = bench_dir.join("logs");
    let _ = std::fs::remove_dir_all(&logs);
    std::fs::create_dir_all(&logs).map_err(|e| format!("{}: {e}", logs.display()))?;
    let mut ok = true;

    // 0. The build (optional), timed.
    let build_seconds = if options.build {
        let mut to_build = functions.clone();
        for case in &cases {
            if all_functions.contains(&case.function) && !to_build.contains(&case.function) {
                to_build.push(case.function.clone());
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

    // 3. Warm latency and 4. requests per request.
    let mut ctx = Ctx::from_env();
    let mut warm_results = Vec::new();
    for case in &cases {
        if !bench.binary(&case.function).is_file() {
            eprintln!(
                "dex-bench: warm {}: no release binary for {}, skipped",
                case.name, case.function
            );
            warm_results.push(json!({ "name": case.name, "function": case.function, "skipped": "no release binary" }));
            continue;
        }
        eprintln!(
            "dex-bench: warm {} ({} requests)",
            case.name, options.requests
        );
        match bench.warm(case, &mut ctx, options.requests).await {
            Ok(result) => {
                if !result["unexpected"].is_null() {
                    ok = false;
                    eprintln!(
                        "dex-bench: warm {}: unexpected {}",
                        case.name, result["unexpected"]
                    );
                }
                warm_results.push(result);
            }
            Err(e) => {
                eprintln!("dex-bench: warm {}: {e}", case.name);
                ok = false;
                warm_results
                    .push(json!({ "name": case.name, "function": case.function, "error": e }));
            }
        }
    }

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
        },
        "build_seconds": build_seconds,
        "functions": cold_results,
        "warm": warm_results,
        "targets": {
            "cold_first_response_ms_below": TARGET_COLD_MS,
            "zip_bytes_at_most": TARGET_ZIP_BYTES,
            "cold_start_over": slow,
            "zip_over": big,
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
        "{:<24} {:>7} {:>7} {:>7} {:>20} {:>13} {:>15} {:>14}  DynamoDB ops per warm request",
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
            println!("{name:<24} {e}");
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
            "{:<24} {:>7} {:>7} {:>7} {:>20} {:>13} {:>15} {:>14}  {}",
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
