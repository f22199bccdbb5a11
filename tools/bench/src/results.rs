//! The bench's results as types: what `report` prints and what `results.json` holds
//! (`serde_json` of [`Results`]). A field that is not measured is `None` (`null` in the JSON,
//! `-` in the tables); one that does not exist does not compile.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::harness::{Proxies, Snapshot};
use crate::stats::{IngestSettings, ScaleSettings};
use dex_tests::aws_proxy as proxy;
pub use dex_tests::aws_proxy::Counts;

/// Requests per operation, averaged over several requests.
pub type PerOp = BTreeMap<String, f64>;

/// A part of the bench that ran, was skipped, or failed.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Outcome<T> {
    Measured(T),
    Skipped { skipped: String },
    Failed { error: String },
}

impl<T> Outcome<T> {
    pub fn measured(&self) -> Option<&T> {
        match self {
            Outcome::Measured(t) => Some(t),
            _ => None,
        }
    }

    /// Why there is no figure (skipped or failed).
    pub fn reason(&self) -> Option<&str> {
        match self {
            Outcome::Measured(_) => None,
            Outcome::Skipped { skipped } => Some(skipped),
            Outcome::Failed { error } => Some(error),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Results {
    pub generated_at_unix: u64,
    pub machine: Machine,
    pub settings: Settings,
    pub build_seconds: Option<f64>,
    pub phase_seconds: Phases,
    /// The hello-world `lambda_http` function the functions are compared with.
    pub floor: Option<Floor>,
    /// Where a DEX function's init goes (the init probe).
    pub init_breakdown: Option<Outcome<InitBreakdown>>,
    pub functions: Vec<ColdResult>,
    pub warm: Vec<WarmEntry>,
    pub hat_onboarding: Option<Outcome<Onboarding>>,
    pub stats_ingest: Option<Outcome<IngestResult>>,
    pub stats_scale: Option<Outcome<Seeding>>,
    /// HATs per second of update-application, with and without slow HATs.
    pub update_application: Option<Outcome<crate::push::PushThroughput>>,
    /// The HAT requests of the warm `offer-claim` case's claims.
    pub claim_hat_requests: Option<Outcome<crate::exchange::ClaimHatRequests>>,
    /// 500 HATs racing for a 10-place offer through several `offer-claim` processes.
    pub claim_race: Option<Outcome<crate::exchange::ClaimRace>>,
    /// A single application and a v3 page as the registry grows.
    pub registry_growth: Option<Outcome<crate::registry::RegistryGrowth>>,
    pub targets: Targets,
}

impl Results {
    /// Writes the results as pretty JSON to `out`, and says where they and the logs are.
    pub fn write(&self, out: &std::path::Path, logs: &std::path::Path) -> Result<(), String> {
        if let Some(dir) = out.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let json = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        std::fs::write(out, json).map_err(|e| format!("{}: {e}", out.display()))?;
        println!(
            "\nresults: {}   function logs: {}",
            out.display(),
            logs.display()
        );
        Ok(())
    }
}

#[derive(Debug, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub os: &'static str,
    pub arch: &'static str,
    /// `/proc/loadavg` (1, 5, 15 minutes) when the bench started and when it ended.
    pub load_at_start: Option<[f64; 3]>,
    pub load_at_end: Option<[f64; 3]>,
}

#[derive(Debug, Serialize)]
pub struct Settings {
    pub cold_runs: usize,
    pub warm_requests: usize,
    pub memory_size_mb: u32,
    pub counting_proxy: bool,
    pub dynamodb_upstream: Option<String>,
    pub secrets_upstream: Option<String>,
    pub public_url: String,
    pub hat_scheme: &'static str,
    pub hat_resolve: &'static str,
    pub hat_key_cache_secs: u64,
    pub ingest: Option<IngestSettings>,
    pub scale: Option<ScaleSettings>,
}

#[derive(Debug, Default, Serialize)]
pub struct Phases {
    pub laps: Vec<Lap>,
    pub total: f64,
}

#[derive(Debug, Serialize)]
pub struct Lap {
    pub name: &'static str,
    pub seconds: f64,
}

/// The requests the functions sent to DynamoDB and Secrets Manager (`None`: not counted).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Requests {
    pub dynamodb: Option<u64>,
    pub dynamodb_ops: Counts,
    pub secrets: Option<u64>,
    pub secrets_ops: Counts,
}

impl Requests {
    pub fn of(counted: &Snapshot, proxies: &Proxies) -> Self {
        Self {
            dynamodb: proxies
                .dynamodb
                .as_ref()
                .map(|_| proxy::total(&counted.dynamodb)),
            dynamodb_ops: counted.dynamodb.clone(),
            secrets: proxies
                .secrets
                .as_ref()
                .map(|_| proxy::total(&counted.secrets)),
            secrets_ops: counted.secrets.clone(),
        }
    }
}

/// Requests per request, over `n` requests.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PerRequest {
    pub dynamodb: Option<f64>,
    pub dynamodb_ops: PerOp,
    pub secrets: Option<f64>,
}

impl PerRequest {
    pub fn of(counted: &Snapshot, proxies: &Proxies, n: usize) -> Self {
        let n = n.max(1) as f64;
        Self {
            dynamodb: proxies
                .dynamodb
                .as_ref()
                .map(|_| proxy::total(&counted.dynamodb) as f64 / n),
            dynamodb_ops: per_op(&counted.dynamodb, n),
            secrets: proxies
                .secrets
                .as_ref()
                .map(|_| proxy::total(&counted.secrets) as f64 / n),
        }
    }
}

pub fn per_op(counts: &Counts, n: f64) -> PerOp {
    counts
        .iter()
        .map(|(op, c)| (op.clone(), *c as f64 / n))
        .collect()
}

/// One function's size and cold starts.
#[derive(Debug, Serialize)]
pub struct ColdResult {
    pub name: String,
    pub binary_bytes: u64,
    pub zip_bytes: u64,
    /// Where its cold-start event came from.
    pub event: String,
    #[serde(flatten)]
    pub measured: Option<ColdMeasured>,
    /// The floor's cold starts, measured interleaved with this function's.
    pub floor: Option<ColdTimes>,
    pub error: Option<String>,
}

impl ColdResult {
    /// (init, first response) as multiples of the floor measured alongside.
    pub fn ratios(&self) -> Option<(f64, f64)> {
        let (m, f) = (self.measured.as_ref()?, self.floor.as_ref()?);
        Some((
            m.times.init_ms / f.init_ms,
            m.times.first_response_ms / f.first_response_ms,
        ))
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ColdTimes {
    /// Median of the runs: process start → first poll of the Runtime API.
    pub init_ms: f64,
    /// Median of the runs: process start → first answer.
    pub first_response_ms: f64,
    pub init_ms_runs: Vec<f64>,
    pub first_response_ms_runs: Vec<f64>,
}

#[derive(Debug, Serialize)]
pub struct ColdMeasured {
    #[serde(flatten)]
    pub times: ColdTimes,
    pub first_status: u16,
    pub first_request: Requests,
}

/// The floor: its size, and its cold starts over every run of the bench.
#[derive(Debug, Serialize)]
pub struct Floor {
    pub binary_bytes: u64,
    pub zip_bytes: u64,
    pub cold: Option<ColdTimes>,
}

/// Where init goes, from the init probe's stamps (medians over its runs, in ms).
#[derive(Debug, Serialize)]
pub struct InitBreakdown {
    pub runs: usize,
    /// The init steps in order; they add up to `init_ms`.
    pub init: Vec<Step>,
    pub init_ms: f64,
    /// What init's background task does (the AWS clients, the App, the warm-ups' spawn),
    /// timed in the foreground after init's own steps.
    pub background: Vec<Step>,
    /// Calls that are not part of init, timed after it: what its steps are made of.
    pub extra: Vec<Step>,
    /// The first event (as `jwks` answers it), in parts.
    pub first: Vec<Step>,
}

#[derive(Debug, Serialize)]
pub struct Step {
    pub step: String,
    /// Wall clock.
    pub ms: f64,
    /// CPU time of all the process's threads (the load does not inflate it).
    pub cpu_ms: Option<f64>,
    pub ms_runs: Vec<f64>,
}

/// One warm benchmark.
#[derive(Debug, Serialize)]
pub struct WarmEntry {
    pub name: String,
    pub function: String,
    #[serde(flatten)]
    pub outcome: Outcome<WarmResult>,
    /// The stats reads: what the read saw.
    pub data_set: Option<DataSet>,
}

impl WarmEntry {
    pub fn result(&self) -> Option<&WarmResult> {
        self.outcome.measured()
    }
}

#[derive(Debug, Serialize)]
pub struct WarmResult {
    pub requests: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
    pub throughput_per_s: f64,
    pub statuses: BTreeMap<u16, usize>,
    pub unexpected: Option<String>,
    pub cold_first_response_ms: f64,
    pub cold_first_status: u16,
    pub cold_first: Requests,
    pub per_request: PerRequest,
    /// The case's extra request after the warm ones, measured on its own.
    pub probe: Option<ProbeResult>,
}

#[derive(Debug, Serialize)]
pub struct ProbeResult {
    pub ms: f64,
    pub status: u16,
    pub requests: Requests,
}

/// What a stats read saw: the HATs and Data In figures (GET /stats) or the tree's size
/// (GET /stats/available-data).
#[derive(Debug, Default, Serialize)]
pub struct DataSet {
    pub label: &'static str,
    pub hats: Option<i64>,
    pub data_in: Option<i64>,
    pub namespaces: Option<usize>,
    pub endpoints: Option<usize>,
}

#[derive(Debug, Serialize)]
pub struct Onboarding {
    pub cluster_domain: &'static str,
    pub cluster_certified_now: bool,
    pub test_hat_cluster: String,
    pub test_hats: usize,
    pub keygen_seconds: f64,
    pub registered_in_setup: usize,
    pub registered_before: usize,
    pub register_seconds: f64,
    pub unregistered_for_register_hat: usize,
    pub hat_key_cache_secs: u64,
    /// From the `hat-log` case (`None`: not measured, e.g. without the counting proxy).
    pub verified_request: Option<VerifiedRequest>,
}

/// The verified-request target: at most one key read for a HAT's first request on a
/// container, none while its key is cached, otherwise exactly what the endpoint needs.
#[derive(Debug, Serialize)]
pub struct VerifiedRequest {
    pub met: bool,
    pub first_request: KeyReads,
    pub warm_container_new_hat: KeyReads,
    pub warm_cached_per_request: KeyReads,
}

#[derive(Debug, Serialize)]
pub struct KeyReads {
    /// Reads of the HAT's key (with its cluster).
    pub key_reads: f64,
    /// The endpoint's own requests.
    pub endpoint: PerOp,
    pub ops: PerOp,
    /// One request's time, or (warm) p50 and p99.
    pub ms: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct IngestResult {
    pub name: &'static str,
    pub function: &'static str,
    pub processes: usize,
    pub reports_per_hat: usize,
    pub items_per_report: usize,
    pub endpoints_per_report: usize,
    pub first: IngestPhase,
    pub fresh: IngestPhase,
    pub duplicate: IngestPhase,
    pub unexpected: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct IngestPhase {
    pub reports: usize,
    pub items: usize,
    pub seconds: f64,
    pub items_per_s: f64,
    pub reports_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub dynamodb_per_report: f64,
    pub dynamodb_ops_per_report: PerOp,
}

#[derive(Debug, Serialize)]
pub struct Seeding {
    pub hats: usize,
    pub hats_inserted: usize,
    pub hat_seconds: f64,
    pub hats_per_s: f64,
    pub reports: usize,
    pub values: u64,
    pub items_accepted: usize,
    pub items_duplicate: usize,
    pub endpoints: usize,
    pub value_seconds: f64,
    pub reports_per_s: f64,
    pub concurrency: usize,
    pub seconds: f64,
}

#[derive(Debug, Serialize)]
pub struct Targets {
    pub cold_first_response_ms_below: f64,
    /// Functions that hash a password: their first response is exempt.
    pub cold_first_response_exempt: Vec<&'static str>,
    pub cold_start_over: Vec<String>,
    pub zip_bytes_at_most: u64,
    pub zip_over: Vec<String>,
    pub init_floor_ratio_at_most: f64,
    /// Functions whose init is over that ratio.
    pub init_over: Vec<String>,
    pub warm_jwks_floor_ratio_at_most: f64,
    /// `jwks` p50 / the floor's p50, warm.
    pub warm_jwks_floor_ratio: Option<f64>,
    pub verified_hat_request: Option<bool>,
    /// The `hat-log-forged` case: the key reads its forged tokens caused.
    pub forged_tokens: Option<ForgedTokens>,
    pub stats_reads_flat: Option<ReadsFlat>,
}

/// Forged tokens naming a registered HAT: DynamoDB requests over the warm run against the
/// bound (one key re-read per HAT per 5 s).
#[derive(Debug, Serialize)]
pub struct ForgedTokens {
    pub requests: usize,
    pub seconds: f64,
    pub dynamodb_requests: f64,
    pub bound: f64,
    pub met: bool,
}

/// Whether the stats reads cost as many DynamoDB requests at scale as on the small data set.
#[derive(Debug, Serialize)]
pub struct ReadsFlat {
    pub met: bool,
    pub reads: Vec<ReadPair>,
}

#[derive(Debug, Serialize)]
pub struct ReadPair {
    pub name: String,
    pub small_dynamodb_per_request: f64,
    pub scale_dynamodb_per_request: f64,
    pub small_p50_ms: f64,
    pub scale_p50_ms: f64,
    pub small_p99_ms: f64,
    pub scale_p99_ms: f64,
}
