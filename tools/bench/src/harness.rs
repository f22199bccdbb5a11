//! What every measurement uses: the workspace and its binaries, the counting proxies, the
//! functions' environment, and the [`Bench`] that spawns a binary against a Runtime API.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::results::{Lap, Phases};
use crate::{events, hats};
use dex_tests::aws_proxy::{self as proxy, CountingProxy, Counts};
use dex_tests::runtime_api::{FunctionProcess, RuntimeApi};

/// The counting proxies (`None`: that service is not counted).
pub struct Proxies {
    pub dynamodb: Option<CountingProxy>,
    pub secrets: Option<CountingProxy>,
}

/// Requests counted so far (or between two snapshots).
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub dynamodb: Counts,
    pub secrets: Counts,
}

impl Proxies {
    /// The proxies in front of the emulators the environment points at (or none).
    pub async fn start(enabled: bool) -> Result<Self, String> {
        if !enabled {
            return Ok(Self {
                dynamodb: None,
                secrets: None,
            });
        }
        Ok(Self {
            dynamodb: start_proxy("DynamoDB", "AWS_ENDPOINT_URL_DYNAMODB").await?,
            secrets: start_proxy("Secrets Manager", "AWS_ENDPOINT_URL_SECRETS_MANAGER").await?,
        })
    }

    pub fn snapshot(&self) -> Snapshot {
        let counts =
            |p: &Option<CountingProxy>| p.as_ref().map(CountingProxy::snapshot).unwrap_or_default();
        Snapshot {
            dynamodb: counts(&self.dynamodb),
            secrets: counts(&self.secrets),
        }
    }

    pub fn since(&self, before: &Snapshot) -> Snapshot {
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
/// cluster (docs/decisions.md §6), the public URL the bench's HAT tokens name, and the HAT key cache
/// at its default.
fn function_env(proxies: &Proxies) -> Vec<(String, String)> {
    let mut env = dex_tests::runtime_api::stack_env();
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

/// Spawns release binaries against local Runtime APIs, with the functions' environment.
pub struct Bench {
    pub target: PathBuf,
    pub logs: PathBuf,
    pub env: Vec<(String, String)>,
    pub proxies: Proxies,
    pub timeout: Duration,
}

impl Bench {
    pub fn new(target: &Path, logs: &Path, proxies: Proxies, timeout: Duration) -> Self {
        Self {
            env: function_env(&proxies),
            target: target.to_owned(),
            logs: logs.to_owned(),
            proxies,
            timeout,
        }
    }

    pub fn binary(&self, function: &str) -> PathBuf {
        self.target.join("release").join(function)
    }

    pub fn spawn(&self, function: &str, api: &RuntimeApi) -> Result<FunctionProcess, String> {
        self.spawn_with(function, api, &[])
    }

    /// [`Bench::spawn`] with more environment variables.
    pub fn spawn_with(
        &self,
        function: &str,
        api: &RuntimeApi,
        extra: &[(String, String)],
    ) -> Result<FunctionProcess, String> {
        let env: Vec<(String, String)> = self.env.iter().chain(extra).cloned().collect();
        FunctionProcess::spawn(
            &self.binary(function),
            function,
            api.addr,
            &env,
            &self.logs.join(format!("{function}.log")),
        )
    }
}

/// The workspace root: `--root`, else the nearest ancestor of the current directory with a
/// `functions/` folder, else the one this tool was built in.
pub fn find_root(explicit: Option<PathBuf>) -> Result<PathBuf, String> {
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

pub fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    }
}

/// The package names under functions/ (one binary each, named like the package).
pub fn function_names(root: &Path) -> Result<Vec<String>, String> {
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

/// The bench's phases, timed one after the other.
pub struct Laps {
    started: Instant,
    lap_started: Instant,
    laps: Vec<Lap>,
}

impl Laps {
    pub fn start() -> Self {
        Self {
            started: Instant::now(),
            lap_started: Instant::now(),
            laps: Vec::new(),
        }
    }

    /// Ends the current phase.
    pub fn lap(&mut self, name: &'static str) {
        let seconds = self.lap_started.elapsed().as_secs_f64();
        self.laps.push(Lap { name, seconds });
        self.lap_started = Instant::now();
    }

    pub fn finish(self) -> Phases {
        Phases {
            laps: self.laps,
            total: self.started.elapsed().as_secs_f64(),
        }
    }
}

/// This machine, with the load average at the start and now.
pub fn machine(load_at_start: Option<[f64; 3]>) -> crate::results::Machine {
    crate::results::Machine {
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        os: std::env::consts::OS,
        arch: std::env::consts::ARCH,
        load_at_start,
        load_at_end: load_average(),
    }
}

pub fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Empties (or makes) `dir`.
pub fn fresh_dir(dir: &Path) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))
}

/// `/proc/loadavg`: the 1, 5 and 15 minute load averages (Linux).
pub fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut parts = text.split_whitespace().map(|p| p.parse::<f64>().ok());
    Some([parts.next()??, parts.next()??, parts.next()??])
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn median(values: &[f64]) -> f64 {
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
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
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
    }
}
