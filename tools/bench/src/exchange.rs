//! The exchange's figures (issue 9 §5): a buyer's running offer and an approved data plug for
//! the warm `offer-claim` and `dataplug-connect` cases (one fresh registered test HAT per
//! request), the HAT requests a claim makes, and the 500-claim race: 500 distinct HATs claim
//! a 10-place offer through [`RACE_INSTANCES`] `offer-claim` processes at once.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dex::accounts::{Account, Actor, NewAccount};
use dex::offers::model::OfferRegistration;
use dex::plugs::service::{NewPlug, PlugChange};
use dex_tests::test_hat::{RouteFail, TestHat};
use serde::Serialize;
use serde_json::{Value, json};

use crate::events::{self, Ctx, Event};
use crate::harness::{Bench, ms, percentile};
use crate::hats::{HatSetup, describe};
use crate::results::{Outcome, PerOp, per_op};
use dex_tests::aws_proxy as proxy;
use dex_tests::runtime_api::{self as runtime, RuntimeApi};

pub const CLAIM: &str = "offer-claim";
/// HATs in the race, each claiming once.
pub const RACE_HATS: usize = 500;
/// Places of the raced offer.
pub const RACE_PLACES: usize = 10;
/// `offer-claim` processes serving the race at once (the local stack's
/// `DEX_CONCURRENCY` default; API Gateway would run as many as the burst needs).
pub const RACE_INSTANCES: usize = 8;
/// One HAT in this many fails the data debit during the race: its place goes back.
const RACE_FAIL_EVERY: usize = 9;

/// What the warm exchange cases use, kept for counting the HATs' requests afterwards.
pub struct Exchange {
    claimers: Vec<TestHat>,
    /// Requests the claimers' HATs had received before the claims (their registration).
    before: usize,
}

/// The HAT requests of the warm claims (the `offer-claim` case's cold and warm requests).
#[derive(Debug, Serialize)]
pub struct ClaimHatRequests {
    pub claims: usize,
    pub hat_requests_per_claim: f64,
    /// `METHOD path` → requests per claim.
    pub by_route: BTreeMap<String, f64>,
}

#[derive(Debug, Serialize)]
pub struct ClaimRace {
    pub hats: usize,
    pub places: usize,
    pub instances: usize,
    pub failing_hats: usize,
    pub seconds: f64,
    pub claims_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub statuses: BTreeMap<u16, usize>,
    pub kept: usize,
    pub debits_on_hats: usize,
    pub dynamodb_per_claim: f64,
    pub dynamodb_ops_per_claim: PerOp,
    /// Whether exactly `places` claims were kept, numbered 1..=places, one per HAT, none for a
    /// failing HAT, and exactly those HATs hold the offer's debit.
    pub exact: bool,
    pub unexpected: Option<String>,
}

/// A new marketplace account: the offers' owner.
async fn create_buyer(setup: &HatSetup) -> Result<Account, String> {
    let buyer = NewAccount {
        username: dex_tests::support::unique_username("bench-buyer"),
        password: dex_tests::support::unique_password(),
        roles: vec!["marketplace".into()],
    };
    setup
        .app
        .accounts()
        .create(&Actor::Operator, buyer)
        .await
        .map_err(|e| format!("creating the buyer: {}", describe(&e)))
}

/// A name or password no earlier run used (the table may be reused).
fn uuid_text() -> String {
    dex_tests::support::unique_password()
}

/// A running offer of `buyer` with `places` places, approved.
async fn running_offer(setup: &HatSetup, buyer: &Account, places: usize) -> Result<String, String> {
    let id = format!("bench-offer-{}", uuid_text());
    let now = chrono::Utc::now().timestamp_millis();
    let registration: OfferRegistration = serde_json::from_value(json!({
        "offerId": id, "title": "bench", "description": "dex-bench",
        "starts": now - 60_000, "expires": now + 86_400_000,
        "collectionDuration": 2_592_000_000i64,
        "requiredData": {"name": "bench", "bundle": {
            "bench": {"endpoints": [{"endpoint": "rumpel/locations", "mapping": {"lat": "latitude"}}]}}},
        "requiredMinUser": 1, "requiredMaxUser": places
    }))
    .map_err(|e| e.to_string())?;
    let offers = setup.app.offers();
    offers
        .register(buyer, registration)
        .await
        .map_err(|e| format!("registering the offer: {}", describe(&e)))?;
    offers
        .set_status(buyer, &id, Some("approved"))
        .await
        .map_err(|e| format!("approving the offer: {}", describe(&e)))?;
    Ok(id)
}

/// The buyer, its offer (a place per request), an approved plug and `requests + 1` registered
/// HATs for each of the two cases, into `ctx`.
pub async fn prepare(
    setup: &mut HatSetup,
    ctx: &mut Ctx,
    requests: usize,
) -> Result<Exchange, String> {
    let buyer = create_buyer(setup).await?;
    ctx.claim_offer = Some(running_offer(setup, &buyer, requests + 1).await?);
    let plugs = setup.app.plugs();
    let plug = plugs
        .register(
            &Actor::Operator,
            NewPlug {
                // Plug names are letters and digits only.
                name: Some(format!("benchplug{}", uuid_text().replace('-', ""))),
                description: Some("dex-bench".into()),
                url: Some("https://plug.bench.example".into()),
                illustration_url: Some("https://plug.bench.example/i.png".into()),
                provider_id: Some(buyer.account_id.clone()),
                password: Some(uuid_text()),
            },
        )
        .await
        .map_err(|e| format!("registering the plug: {}", describe(&e)))?;
    let approve = PlugChange {
        approved: Some(true),
        ..PlugChange::default()
    };
    plugs
        .update(&Actor::Operator, &plug.id, approve)
        .await
        .map_err(|e| format!("approving the plug: {}", describe(&e)))?;
    ctx.plug = Some(plug.id);
    let claimers = setup
        .registered_hats_sharing_key("claim", requests + 1)
        .await?;
    let connected = setup
        .registered_hats_sharing_key("plug", requests + 1)
        .await?;
    ctx.claimers = claimers
        .iter()
        .map(|h| (h.address().to_owned(), setup.token(h)))
        .collect();
    ctx.plug_hats = connected.iter().map(|h| h.address().to_owned()).collect();
    let before = claimers
        .iter()
        .map(|h| setup.cluster.requests_for(h.address()).len())
        .sum();
    Ok(Exchange { claimers, before })
}

impl Exchange {
    /// What the claims asked of the HATs, once the `offer-claim` case has run.
    pub fn hat_requests(&self, setup: &HatSetup) -> ClaimHatRequests {
        let mut by_route: BTreeMap<String, f64> = BTreeMap::new();
        let mut total = 0usize;
        for hat in &self.claimers {
            for r in setup.cluster.requests_for(hat.address()) {
                *by_route
                    .entry(format!("{} {}", r.method, r.path))
                    .or_default() += 1.0;
                total += 1;
            }
        }
        // The registration's key fetches are not the claim's.
        let claims = self.claimers.len();
        if let Some(key) = by_route.get_mut("GET /publickey") {
            *key -= self.before as f64;
            if *key <= 0.0 {
                by_route.remove("GET /publickey");
            }
        }
        let n = claims.max(1) as f64;
        by_route.values_mut().for_each(|v| *v /= n);
        ClaimHatRequests {
            claims,
            hat_requests_per_claim: (total - self.before) as f64 / n,
            by_route,
        }
    }
}

/// `GET /api/v2/offer/{offerId}/claim` signed by a HAT.
pub fn claim_event(offer: &str, token: &str) -> Value {
    Event::get("/api/v2/offer/{offerId}/claim")
        .param("offerId", offer)
        .header("accept", "application/json")
        .header("x-auth-token", token)
        .build()
}

/// `GET /api/dataplugs/{dataplugId}/connect?hat=` as the admin.
pub fn connect_event(plug: &str, hat: &str, token: &str) -> Value {
    Event::get("/api/dataplugs/{dataplugId}/connect")
        .param("dataplugId", plug)
        .query("hat", hat)
        .header("accept", "application/json")
        .header("x-auth-token", token)
        .build()
}

pub async fn race(bench: &Bench, setup: &mut HatSetup) -> Outcome<ClaimRace> {
    if !bench.binary(CLAIM).is_file() {
        let skipped = "no release binary".to_owned();
        return Outcome::Skipped { skipped };
    }
    eprintln!(
        "dex-bench: claim race: {RACE_HATS} HATs, {RACE_PLACES} places, {RACE_INSTANCES} {CLAIM} processes"
    );
    match run_race(bench, setup).await {
        Ok(race) => Outcome::Measured(race),
        Err(error) => {
            eprintln!("dex-bench: claim race: {error}");
            Outcome::Failed { error }
        }
    }
}

struct RaceWorker {
    api: RuntimeApi,
    process: runtime::FunctionProcess,
    events: Vec<(String, Bytes)>,
}

async fn run_race(bench: &Bench, setup: &mut HatSetup) -> Result<ClaimRace, String> {
    let buyer = create_buyer(setup).await?;
    let offer = running_offer(setup, &buyer, RACE_PLACES).await?;
    let hats = setup.registered_hats_sharing_key("race", RACE_HATS).await?;
    for hat in hats.iter().step_by(RACE_FAIL_EVERY) {
        hat.fail_route("POST /api/v2.6/data-debit", RouteFail::Status(500), None);
    }
    let failing: Vec<&str> = hats
        .iter()
        .step_by(RACE_FAIL_EVERY)
        .map(TestHat::address)
        .collect();
    let timeout = bench.timeout.max(Duration::from_secs(60));
    let mut workers = Vec::with_capacity(RACE_INSTANCES);
    for w in 0..RACE_INSTANCES {
        let api = RuntimeApi::start(CLAIM).await.map_err(|e| e.to_string())?;
        let mut process = bench.spawn(CLAIM, &api)?;
        let mut api = api;
        // Warm: an unknown offer (404) so the race measures claims, not inits.
        let unknown = claim_event("bench-no-such-offer", &setup.token(&hats[0]));
        let warm = api
            .invoke(&mut process, Bytes::from(unknown.to_string()), timeout)
            .await?;
        let status = runtime::status_of(&warm.response());
        if status != 404 {
            return Err(format!("warming process {w}: status {status}"));
        }
        let events = hats
            .iter()
            .skip(w)
            .step_by(RACE_INSTANCES)
            .map(|h| {
                let event = claim_event(&offer, &setup.token(h));
                (h.address().to_owned(), Bytes::from(event.to_string()))
            })
            .collect();
        workers.push(RaceWorker {
            api,
            process,
            events,
        });
    }
    let before = bench.proxies.snapshot();
    let started = Instant::now();
    let runs = futures_util::future::join_all(workers.iter_mut().map(|w| async move {
        let mut out = Vec::with_capacity(w.events.len());
        for (hat, event) in &w.events {
            let invocation = w.api.invoke(&mut w.process, event.clone(), timeout).await?;
            out.push((hat.clone(), ms(invocation.latency()), invocation.response()));
        }
        Ok::<_, String>(out)
    }))
    .await;
    let seconds = started.elapsed().as_secs_f64();
    let counts = bench.proxies.since(&before).dynamodb;
    let mut latencies = Vec::with_capacity(RACE_HATS);
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut numbers: BTreeMap<u64, String> = BTreeMap::new();
    let mut unexpected = None;
    for run in runs {
        for (hat, latency, response) in run? {
            latencies.push(latency);
            let status = runtime::status_of(&response);
            *statuses.entry(status).or_default() += 1;
            let body = events::response_json(&response).unwrap_or_default();
            match status {
                200 => {
                    let n = body["claimerNumber"].as_u64().unwrap_or(0);
                    if numbers.insert(n, hat.clone()).is_some() && unexpected.is_none() {
                        unexpected = Some(format!("claimerNumber {n} twice"));
                    }
                }
                400 | 409 | 429 | 502 => {}
                _ if unexpected.is_none() => {
                    unexpected = Some(format!("{hat}: status {status}: {body}"));
                }
                _ => {}
            }
        }
    }
    drop(workers);
    let debits = hats
        .iter()
        .filter(|h| h.data_debits().contains_key(&offer))
        .count();
    let holders: Vec<&str> = hats
        .iter()
        .filter(|h| h.data_debits().contains_key(&offer))
        .map(TestHat::address)
        .collect();
    let winners: Vec<&str> = numbers.values().map(String::as_str).collect();
    let mut sorted_winners = winners.clone();
    sorted_winners.sort_unstable();
    sorted_winners.dedup();
    let exact = numbers.keys().copied().eq(1..=RACE_PLACES as u64)
        && sorted_winners.len() == RACE_PLACES
        && winners.iter().all(|w| !failing.contains(w))
        && holders.len() == RACE_PLACES
        && holders.iter().all(|h| winners.contains(h));
    latencies.sort_by(f64::total_cmp);
    let n = RACE_HATS as f64;
    Ok(ClaimRace {
        hats: RACE_HATS,
        places: RACE_PLACES,
        instances: RACE_INSTANCES,
        failing_hats: failing.len(),
        seconds,
        claims_per_s: n / seconds,
        p50_ms: percentile(&latencies, 50.0),
        p99_ms: percentile(&latencies, 99.0),
        max_ms: latencies.last().copied().unwrap_or(f64::NAN),
        statuses,
        kept: numbers.len(),
        debits_on_hats: debits,
        dynamodb_per_claim: proxy::total(&counts) as f64 / n,
        dynamodb_ops_per_claim: per_op(&counts, n),
        exact,
        unexpected,
    })
}
