//! `make load` (scripts/load.sh): the ecosystem's mix against the local stack for minutes.
//!
//! Hundreds of test HATs (real RSA keys, RS256 tokens) report stats with resends and racing
//! copies, read their own log, notices and claims, claim capped offers all at once and get
//! plugs connected, while anonymous callers read `/stats`, `/stats/available-data`, the
//! applications and the plugs. At the end it prints throughput, p50/p99 and statuses per
//! endpoint, and checks that every total is exact (see `check.rs`) and every HAT chain
//! verifies. Exit 1 when a total is off, a chain is broken, or any answer is a 5xx, missing or
//! a status the mix does not expect.

mod check;
mod metrics;
mod world;

use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Args {
    /// Measured seconds (after the warm-up).
    pub secs: u64,
    pub warmup: u64,
    pub hats: usize,
    pub workers: usize,
    /// A bound on the measured requests, whatever the time.
    pub max_requests: u64,
    /// One capped offer per entry: its `requiredMaxUser`.
    pub caps: Vec<u32>,
    pub plugs: usize,
    pub apps: usize,
}

const USAGE: &str = "dex-load [--quick] [--secs N] [--warmup N] [--hats N] [--workers N] \
[--max-requests N] [--caps 5,10,25,50] [--plugs N] [--apps N]
  (needs the environment scripts/load.sh sets: DEX_TEST_URL, DEX_PUBLIC_URL, DEX_TABLE, AWS_*)
  --secs defaults to LOAD_SECS, else 180; --quick: 20 s, 30 HATs, 8 workers";

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let secs_env = std::env::var("LOAD_SECS").ok();
    let mut a = Args {
        secs: match secs_env {
            Some(s) => s
                .parse()
                .map_err(|_| format!("LOAD_SECS={s} is not a number"))?,
            None => 180,
        },
        warmup: 60,
        hats: 300,
        workers: 16,
        max_requests: 2_000_000,
        caps: vec![5, 10, 25, 50],
        plugs: 3,
        apps: 3,
    };
    let mut it = args.into_iter();
    while let Some(flag) = it.next() {
        if flag == "--quick" {
            a.secs = 20;
            a.warmup = 10;
            a.hats = 30;
            a.workers = 8;
            a.caps = vec![3, 10];
            a.plugs = 2;
            a.apps = 2;
            continue;
        }
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.to_owned());
        }
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{flag} {value}: not a number"))
        };
        match flag.as_str() {
            "--secs" => a.secs = number()?,
            "--warmup" => a.warmup = number()?,
            "--hats" => a.hats = number()? as usize,
            "--workers" => a.workers = number()? as usize,
            "--max-requests" => a.max_requests = number()?,
            "--plugs" => a.plugs = number()? as usize,
            "--apps" => a.apps = number()? as usize,
            "--caps" => {
                a.caps = value
                    .split(',')
                    .map(|c| c.trim().parse::<u32>())
                    .collect::<Result<_, _>>()
                    .map_err(|_| format!("--caps {value}: comma-separated numbers"))?;
            }
            _ => return Err(format!("unknown argument {flag}\n{USAGE}")),
        }
    }
    if a.hats == 0 || a.workers == 0 || a.apps == 0 || a.plugs == 0 || a.caps.is_empty() {
        return Err(format!(
            "--hats, --workers, --apps, --plugs and --caps must not be 0\n{USAGE}"
        ));
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let ok = runtime.block_on(world::run(args));
    // The test HAT cluster and idle connections go with the runtime.
    runtime.shutdown_timeout(Duration::from_secs(2));
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        parse_args(args.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn arguments_bound_the_run() {
        let a = parse(&["--quick", "--secs", "7", "--caps", "2,4"]).unwrap();
        assert_eq!((a.secs, a.hats, a.caps), (7, 30, vec![2, 4]));
        assert!(parse(&["--hats", "0"]).is_err());
        assert!(parse(&["--secs"]).is_err());
        assert!(parse(&["--bogus", "1"]).is_err());
    }
}
