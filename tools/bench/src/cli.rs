//! The command line.

use std::path::PathBuf;
use std::time::Duration;

use crate::events::{self, Stage, WarmCase};
use crate::floor::{FLOOR, FLOOR_CASE};
use crate::stats::{INGEST, IngestSettings, ScaleSettings};

pub const USAGE: &str = "\
dex-bench: sizes, cold starts, warm latency and DynamoDB round trips of the DEX functions,
against a hello-world lambda_http function (the floor) measured in the same run

usage: dex-bench [options]
  --build                  build the release binaries first (cargo build --release --bins -p ...)
  --quick                  a short run for trying changes: --runs 3 --requests 50
                           --ingest-hats 4 --ingest-reports 2 --no-scale (later options win)
  --runs N                 cold starts per function, and init probe runs (default 5)
  --requests M             warm requests per warm case (default 200)
  --functions a,b          only these functions (sizes and cold starts; default: all under functions/;
                           `--functions none` skips them)
  --warm a,b               only these warm cases (default: all; `--warm none` skips them);
                           `stats-report` names the concurrent ingestion benchmark; the floor's
                           case runs whenever a warm case does
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

The exchange and the registry (with the test HAT cluster): offer-claim (each warm request a
new HAT claiming a running offer) with the HAT requests a claim makes, dataplug-connect (a new
HAT each request), then a race of 500 HATs for a 10-place offer through 8 offer-claim
processes at once (1 HAT in 9 failing the debit; exact: 10 claims numbered 1..10, 10 debits),
update-application's HATs per second, and app-get / a v3 page of apps-list with 10, 100 and
1,000 applications in the table (`--warm` without offer-claim skips the race, without app-get
the growth).

Targets: cold start to first response under 50 ms except for the functions that hash a
password; init at most 2x the floor's, warm jwks at most 1.5x the floor's (p50); no zip over
8 MB (MB = 10^6 bytes); a HAT-verified request reads the HAT's key at most once on a warm
container (never while cached) besides what its endpoint needs; GET /stats and
GET /stats/available-data cost the same number of DynamoDB requests whatever the number of
HATs and reports.
";

pub struct Options {
    pub build: bool,
    pub runs: usize,
    pub requests: usize,
    pub functions: Option<Vec<String>>,
    pub warm: Option<Vec<String>>,
    pub warm_events: Vec<(String, PathBuf)>,
    pub proxy: bool,
    pub timeout: Duration,
    pub root: Option<PathBuf>,
    pub out: Option<PathBuf>,
    pub list: bool,
    pub ingest: IngestSettings,
    pub scale: Option<ScaleSettings>,
}

impl Options {
    /// The settings as the results record them.
    pub fn settings(
        &self,
        bench: &crate::harness::Bench,
        public_url: &str,
        ingest: bool,
    ) -> crate::results::Settings {
        let upstream = |p: &Option<dex_tests::aws_proxy::CountingProxy>| {
            p.as_ref().map(|p| p.upstream.clone())
        };
        crate::results::Settings {
            cold_runs: self.runs,
            warm_requests: self.requests,
            memory_size_mb: 256,
            counting_proxy: self.proxy,
            dynamodb_upstream: upstream(&bench.proxies.dynamodb),
            secrets_upstream: upstream(&bench.proxies.secrets),
            public_url: public_url.to_owned(),
            hat_scheme: crate::hats::HAT_SCHEME,
            hat_resolve: crate::hats::HAT_RESOLVE,
            hat_key_cache_secs: crate::onboarding::HAT_KEY_CACHE_SECS,
            ingest: ingest.then(|| self.ingest.clone()),
            scale: self.scale.clone(),
        }
    }
}

fn list(s: String) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn number<T: std::str::FromStr>(arg: &str, value: String) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    value.parse().map_err(|e| format!("{arg}: {e}"))
}

/// The options of `args` (without the program name); `Ok(None)` for `--help`.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Option<Options>, String> {
    let mut o = Options {
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
        ingest: IngestSettings {
            hats: 20,
            reports: 10,
            items: 100,
        },
        scale: None,
    };
    let mut scale = false;
    let mut s = ScaleSettings {
        hats: 10_000,
        values: 1_000_000,
        reports: 10_000,
        concurrency: 32,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--build" => o.build = true,
            "--quick" => {
                (o.runs, o.requests, scale) = (3, 50, false);
                (o.ingest.hats, o.ingest.reports) = (4, 2);
            }
            "--runs" => o.runs = number(&arg, value()?)?,
            "--requests" => o.requests = number(&arg, value()?)?,
            "--functions" => o.functions = Some(list(value()?)),
            "--warm" => o.warm = Some(list(value()?)),
            "--warm-event" => {
                let spec = value()?;
                let (function, file) = spec
                    .split_once('=')
                    .ok_or("--warm-event takes FUNCTION=FILE")?;
                o.warm_events
                    .push((function.to_owned(), PathBuf::from(file)));
            }
            "--no-proxy" => o.proxy = false,
            "--timeout-secs" => o.timeout = Duration::from_secs(number(&arg, value()?)?),
            "--root" => o.root = Some(PathBuf::from(value()?)),
            "--out" => o.out = Some(PathBuf::from(value()?)),
            "--list" => o.list = true,
            "--ingest-hats" => o.ingest.hats = number(&arg, value()?)?,
            "--ingest-reports" => o.ingest.reports = number(&arg, value()?)?,
            "--ingest-items" => o.ingest.items = number(&arg, value()?)?,
            "--scale" => scale = true,
            "--no-scale" => scale = false,
            "--scale-hats" => s.hats = number(&arg, value()?)?,
            "--scale-values" => s.values = number(&arg, value()?)?,
            "--scale-reports" => s.reports = number(&arg, value()?)?,
            "--seed-concurrency" => s.concurrency = number(&arg, value()?)?,
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
        }
    }
    if o.runs == 0 || o.requests == 0 {
        return Err("--runs and --requests must be at least 1".into());
    }
    if o.ingest.hats < 2 || o.ingest.items == 0 || o.ingest.items > 1000 {
        return Err("--ingest-hats must be at least 2, --ingest-items 1 to 1000".into());
    }
    if s.hats == 0 || s.reports == 0 || s.concurrency == 0 {
        return Err(
            "--scale-hats, --scale-reports and --seed-concurrency must be at least 1".into(),
        );
    }
    o.scale = scale.then_some(s);
    Ok(Some(o))
}

/// What the options select: the functions (sizes and cold starts) and the warm cases.
pub struct Plan {
    pub all_functions: Vec<String>,
    pub functions: Vec<String>,
    pub cases: Vec<WarmCase>,
    /// Whether the concurrent ingestion benchmark runs.
    pub ingest: bool,
}

impl Plan {
    pub fn new(root: &std::path::Path, o: &Options) -> Result<Self, String> {
        let all_functions = crate::harness::function_names(root)?;
        let functions = match &o.functions {
            Some(only) if only.iter().all(|f| f == "none") => Vec::new(),
            Some(only) => {
                if let Some(unknown) = only.iter().find(|f| !all_functions.contains(f)) {
                    return Err(format!(
                        "no function {unknown:?} under functions/ (have: {})",
                        all_functions.join(", ")
                    ));
                }
                let mut only = only.clone();
                only.retain(|f| all_functions.contains(f));
                only.sort();
                only
            }
            None => all_functions.clone(),
        };
        let mut cases = events::warm_cases();
        for (function, file) in &o.warm_events {
            cases.push(events::file_case(function, &root.join(file))?);
        }
        if let Some(only) = &o.warm {
            cases.retain(|c| only.contains(&c.name));
        }
        // The floor's warm case, just before jwks (or first), whenever a warm case runs.
        if !cases.is_empty() {
            let at = cases.iter().position(|c| c.name == "jwks").unwrap_or(0);
            cases.insert(at, crate::floor::warm_case());
        }
        let ingest = o
            .warm
            .as_ref()
            .is_none_or(|only| only.iter().any(|w| w == INGEST));
        Ok(Self {
            all_functions,
            functions,
            cases,
            ingest,
        })
    }

    pub fn cases(&self, stage: Stage) -> impl Iterator<Item = &WarmCase> {
        self.cases.iter().filter(move |c| c.stage == stage)
    }

    /// Whether the warm case `name` is in the plan.
    pub fn has_case(&self, name: &str) -> bool {
        self.cases.iter().any(|c| c.name == name)
    }

    /// Whether the test HAT cluster is needed.
    pub fn needs_hats(&self) -> bool {
        self.ingest || self.cases.iter().any(|c| c.hats)
    }

    /// The packages `--build` builds: the functions measured or used by a case, the floor.
    pub fn packages(&self) -> Vec<String> {
        let mut packages = self.functions.clone();
        let used = self.cases.iter().map(|c| c.function.as_str());
        for function in used.chain(self.ingest.then_some(INGEST)) {
            if self.all_functions.iter().any(|f| f == function)
                && !packages.iter().any(|p| p == function)
            {
                packages.push(function.to_owned());
            }
        }
        packages.push(FLOOR.to_owned());
        packages
    }

    pub fn print(&self, scale: bool) {
        println!("functions: {}", self.functions.join(", "));
        let mut names: Vec<String> = self
            .cases
            .iter()
            .filter(|c| c.name != FLOOR_CASE)
            .map(|c| format!("{} ({})", c.name, c.function))
            .collect();
        if self.ingest {
            names.push(format!("{INGEST} (stats-report, concurrent ingestion)"));
        }
        println!("warm cases: {}", names.join(", "));
        println!("floor: {FLOOR} (cold starts beside every function, warm before jwks)");
        if scale {
            println!("--scale: the stats reads again after seeding");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn quick_turns_scale_off_and_later_options_win() {
        let o = parse(args("--scale --quick --requests 7"))
            .unwrap()
            .unwrap();
        assert!(o.scale.is_none());
        assert_eq!((o.runs, o.requests, o.ingest.hats), (3, 7, 4));
        let o = parse(args("--quick --scale")).unwrap().unwrap();
        assert_eq!(o.scale.map(|s| s.hats), Some(10_000));
        assert!(parse(args("--help")).unwrap().is_none());
        assert!(parse(args("--runs 0")).is_err());
    }
}
