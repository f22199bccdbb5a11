//! HAT onboarding: the test HAT cluster and its HATs for the HAT-facing cases, and the
//! verified-request target judged from the `hat-log` case.

use std::time::Instant;

use crate::events::{Ctx, WarmCase};
use crate::hats::{self, HatSetup};
use crate::results::{KeyReads, Onboarding, Outcome, PerOp, Requests, WarmResult};

/// What the functions run with: `DEX_HAT_KEY_CACHE_SECS` is left at its default.
pub const HAT_KEY_CACHE_SECS: u64 = 60;
/// The DynamoDB operations that read a HAT's key (with its cluster) for verification.
const KEY_READS: [&str; 2] = [
    "DynamoDB_20120810.BatchGetItem",
    "DynamoDB_20120810.GetItem",
];

/// A registered HAT's address and the token it signed for DEX.
pub type HatToken = (String, String);

/// Starts the test HAT cluster, certifies its domain and makes the HATs the cases need:
/// `registered` ones (through DEX's registration path, at least 2) for `hat-log`,
/// `register-hat-again` and the ingestion, and `requests + 1` unregistered ones for
/// `register-hat` (one per request) when that case runs.
pub async fn prepare_hats(
    cases: &[WarmCase],
    registered: usize,
    requests: usize,
    ctx: &mut Ctx,
) -> Result<(HatSetup, Onboarding, Vec<HatToken>), String> {
    eprintln!(
        "dex-bench: starting the test HAT cluster, certifying {}",
        hats::CLUSTER_DOMAIN
    );
    let mut setup = hats::setup(&ctx.public_url).await?;
    let registered_count = registered.max(2);
    let fresh_count = if cases.iter().any(|c| c.name == "register-hat") {
        requests + 1
    } else {
        0
    };
    eprint!(
        "dex-bench: making {} test HATs (a 2048-bit RSA key each)…",
        registered_count + fresh_count
    );
    let hats_registered = setup.add_hats("hat", registered_count);
    let fresh = setup.add_hats("new", fresh_count);
    eprintln!(" {:.1} s", setup.keygen_seconds);
    let started = Instant::now();
    let mut already = 0;
    for hat in &hats_registered {
        if setup.register(hat).await? != dex::hats::register::Outcome::Registered {
            already += 1;
        }
    }
    let register_seconds = started.elapsed().as_secs_f64();
    let pairs: Vec<HatToken> = hats_registered
        .iter()
        .map(|h| (h.address().to_owned(), setup.token(h)))
        .collect();
    ctx.forged_hat_token = Some(
        hats_registered[0]
            .token_builder(&setup.public_url)
            .sign_with(&hats_registered[1])
            .build(),
    );
    ctx.hat = Some(pairs[0].clone());
    ctx.other_hat = Some(pairs[1].clone());
    ctx.fresh_hats = fresh.iter().map(|h| h.address().to_owned()).collect();
    let info = Onboarding {
        cluster_domain: hats::CLUSTER_DOMAIN,
        cluster_certified_now: setup.certified_now,
        test_hat_cluster: setup.cluster.base_url(),
        test_hats: setup.hats_made,
        keygen_seconds: setup.keygen_seconds,
        registered_in_setup: pairs.len(),
        registered_before: already,
        register_seconds,
        unregistered_for_register_hat: fresh.len(),
        hat_key_cache_secs: HAT_KEY_CACHE_SECS,
        verified_request: None,
    };
    Ok((setup, info, pairs))
}

/// The test HAT cluster and its HATs when a case needs them (`ok` turns false if it fails):
/// the set-up, what it did, and the registered HATs' tokens (for the ingestion).
pub async fn setup(
    plan: &crate::cli::Plan,
    o: &crate::cli::Options,
    ctx: &mut Ctx,
    ok: &mut bool,
) -> (
    Option<HatSetup>,
    Option<Outcome<Onboarding>>,
    Option<Vec<HatToken>>,
) {
    if !plan.needs_hats() {
        return (None, None, None);
    }
    let registered = if plan.ingest { o.ingest.hats } else { 2 };
    match prepare_hats(&plan.cases, registered, o.requests, ctx).await {
        Ok((setup, info, hats)) => (Some(setup), Some(Outcome::Measured(info)), Some(hats)),
        Err(error) => {
            eprintln!("dex-bench: HAT set-up: {error}");
            *ok = false;
            (None, Some(Outcome::Failed { error }), None)
        }
    }
}

/// Judges the verified-request target from the `hat-log` case, when both ran.
pub fn judge(onboarding: &mut Option<Outcome<Onboarding>>, warm: &[crate::results::WarmEntry]) {
    let hat_log = warm.iter().find(|w| w.name == "hat-log");
    if let (Some(Outcome::Measured(info)), Some(hat_log)) =
        (onboarding, hat_log.and_then(|w| w.result()))
    {
        info.verified_request = verified_request(hat_log);
    }
}

/// (key reads, the endpoint's own requests) of per-operation counts.
fn split_key_reads(ops: &PerOp) -> (f64, PerOp) {
    let mut key = 0.0;
    let mut rest = PerOp::new();
    for (op, n) in ops {
        if KEY_READS.contains(&op.as_str()) {
            key += n;
        } else {
            rest.insert(op.clone(), *n);
        }
    }
    (key, rest)
}

fn as_per_op(requests: &Requests) -> PerOp {
    crate::results::per_op(&requests.dynamodb_ops, 1.0)
}

fn key_reads(ops: PerOp, ms: Option<f64>, p50_ms: Option<f64>, p99_ms: Option<f64>) -> KeyReads {
    let (key_reads, endpoint) = split_key_reads(&ops);
    KeyReads {
        key_reads,
        endpoint,
        ops,
        ms,
        p50_ms,
        p99_ms,
    }
}

/// The verified-request target from the `hat-log` case: at most one key read for a HAT's
/// first request on a container (cold, or warm with another HAT's key cached), none while its
/// key is cached, and otherwise exactly what the endpoint needs (its Query). `None` without
/// the counting proxy or the probe.
pub fn verified_request(hat_log: &WarmResult) -> Option<crate::results::VerifiedRequest> {
    hat_log.per_request.dynamodb?;
    let probe = hat_log.probe.as_ref()?;
    // A cold container's first request also carries the init's warm-up (one GetItem of a
    // key nothing writes, `DynamoStore::warm_up`): it opens the connection, it reads no key.
    let mut cold_first = as_per_op(&hat_log.cold_first);
    if let Some(get_items) = cold_first.get_mut("DynamoDB_20120810.GetItem") {
        *get_items -= 1.0;
        if *get_items <= 0.0 {
            cold_first.remove("DynamoDB_20120810.GetItem");
        }
    }
    let first = key_reads(cold_first, Some(hat_log.cold_first_response_ms), None, None);
    let new_hat = key_reads(as_per_op(&probe.requests), Some(probe.ms), None, None);
    let warm = key_reads(
        hat_log.per_request.dynamodb_ops.clone(),
        None,
        Some(hat_log.p50_ms),
        Some(hat_log.p99_ms),
    );
    let others = |k: &KeyReads| k.endpoint.values().sum::<f64>();
    let met = first.key_reads <= 1.0
        && new_hat.key_reads <= 1.0
        && warm.key_reads == 0.0
        && (others(&first) - others(&warm)).abs() < 1e-9
        && (others(&new_hat) - others(&warm)).abs() < 1e-9;
    Some(crate::results::VerifiedRequest {
        met,
        first_request: first,
        warm_container_new_hat: new_hat,
        warm_cached_per_request: warm,
    })
}
