//! The run: setup (a certified test HAT cluster, registered HATs, capped offers, approved
//! plugs, published applications), the mix, and the end-of-run reads that `check` compares.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use dex::offers::OfferStore as _;
use dex::txlog::{LogEntry, verify_chain};
use dex_tests::hat_support::{certify_cluster, register_hat_ok};
use dex_tests::stats_support::{
    self as stats, EndpointStats, HatUser, add_totals, flatten_namespace, stats_lag,
};
use dex_tests::support::{Dex, create_account, dex_url, public_url, url_encode};
use dex_tests::test_hat::{TestHat, TestHatCluster};
use reqwest::Method;
use serde_json::{Value, json};

use crate::Args;
use crate::check::{self, Expected, Figures, HatObserved, Observed, OfferExpect};
use crate::metrics::{self, Metrics, NO_ANSWER};

/// Field paths the HATs report (a dot path is a nested field, `[]` an array).
const FIELDS: [&str; 6] = [
    "id",
    "timestamp",
    "location.latitude",
    "location.longitude",
    "tags[]",
    "body.text",
];
const ENDPOINTS: usize = 3;
const NAMESPACES: usize = 4;
const PREFIXES: [&str; 3] = ["/api/v2", "/api/v2.6", "/api/v3"];
const PLUG_PASSWORD: &str = "a plug password for the load test";
/// Batches a HAT keeps to send again.
const KEPT_BATCHES: usize = 6;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// xorshift64*: the mix needs cheap, not secure, randomness.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

struct LoadHat {
    hat: TestHat,
    address: String,
    /// Its `validate` token for DEX (30 days: a HAT mints one per upload, which only costs
    /// the driver CPU the stack needs).
    token: String,
    sent: Mutex<Vec<Arc<String>>>,
}

/// What the run accumulates for the checks.
#[derive(Default)]
struct Live {
    expected: Expected,
    /// Items in every report sent (first sends, resends, racing copies).
    items_sent: u64,
    /// Distinct items.
    items_unique: u64,
    accepted: u64,
    duplicates: u64,
    /// Reports that got no answer (their accepted/duplicates are unknown).
    reports_unanswered: u64,
}

struct World {
    base: String,
    http: reqwest::Client,
    metrics: Metrics,
    hats: Vec<LoadHat>,
    namespaces: Vec<String>,
    offers: Vec<String>,
    /// (id, name).
    plugs: Vec<(String, String)>,
    plug_owner: String,
    apps: Vec<String>,
    etags: Mutex<HashMap<String, String>>,
    live: Mutex<Live>,
    item_seq: AtomicU64,
    requests: AtomicU64,
    max_requests: u64,
    measuring: AtomicBool,
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Report,
    HatLog,
    Notices,
    UserClaim,
    Stats,
    AvailableData,
    AppGet,
    AppsList,
    Consent,
    Claim,
    PlugConnect,
    PlugsList,
}

/// The mix (weights out of 100): mostly stats reports, as in the ecosystem.
const MIX: [(Op, u64); 12] = [
    (Op::Report, 34),
    (Op::HatLog, 7),
    (Op::Notices, 4),
    (Op::UserClaim, 3),
    (Op::Stats, 8),
    (Op::AvailableData, 6),
    (Op::AppGet, 9),
    (Op::AppsList, 4),
    (Op::Consent, 3),
    (Op::Claim, 12),
    (Op::PlugConnect, 6),
    (Op::PlugsList, 4),
];

fn pick(rng: &mut Rng) -> Op {
    let total: u64 = MIX.iter().map(|(_, w)| w).sum();
    let mut n = rng.next() % total;
    for (op, w) in MIX {
        if n < w {
            return op;
        }
        n -= w;
    }
    Op::Report
}

/// The statuses each endpoint may answer under this mix; anything else fails the run.
fn allowed(endpoint: &str, status: u16) -> bool {
    match status {
        200 => true,
        // The race: 400 "offer is full" / "already claimed"; 409 and 429 "claim again"
        // (the driver does, as a HAT would).
        400 | 409 | 429 => endpoint.ends_with("/claim"),
        404 => endpoint.ends_with("/userClaim"),
        304 => endpoint.contains("/applications"),
        _ => false,
    }
}

struct Answer {
    status: u16,
    body: Vec<u8>,
    etag: Option<String>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

impl World {
    fn request(&self, method: Method, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
        let mut r = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            r = r.header("X-Auth-Token", t);
        }
        r
    }

    /// Sends `request`, recording its latency and status under `endpoint`; a request that got
    /// no answer is recorded as such and sent again (at most 3 times), as a HAT resends.
    async fn call(&self, endpoint: &'static str, request: reqwest::RequestBuilder) -> Answer {
        for _ in 0..3 {
            let Some(copy) = request.try_clone() else {
                break;
            };
            let started = Instant::now();
            let outcome = match copy.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let etag = resp
                        .headers()
                        .get("etag")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    resp.bytes().await.ok().map(|b| Answer {
                        status,
                        body: b.to_vec(),
                        etag,
                    })
                }
                Err(_) => None,
            };
            let took = started.elapsed();
            if self.measuring.load(Ordering::Relaxed) {
                self.requests.fetch_add(1, Ordering::Relaxed);
            }
            match outcome {
                Some(answer) => {
                    self.metrics.record(endpoint, answer.status, took);
                    if answer.status >= 500 || !allowed(endpoint, answer.status) {
                        eprintln!(
                            "{endpoint}: {} {}",
                            answer.status,
                            String::from_utf8_lossy(&answer.body)
                                .chars()
                                .take(300)
                                .collect::<String>()
                        );
                    }
                    return answer;
                }
                None => self.metrics.record(endpoint, NO_ANSWER, took),
            }
        }
        Answer {
            status: NO_ANSWER,
            body: Vec::new(),
            etag: None,
        }
    }

    fn hat(&self, rng: &mut Rng) -> &LoadHat {
        &self.hats[rng.below(self.hats.len())]
    }

    /// A new batch of 1-20 distinct items (85% inbound, the rest outbound), added to the
    /// expected totals now: the driver sends it until it is answered.
    fn new_batch(&self, rng: &mut Rng, hat: &LoadHat) -> (Arc<String>, u64) {
        let n = 1 + rng.below(20);
        let user = HatUser::owner("load");
        let now = stats::now_millis();
        let mut items = Vec::with_capacity(n);
        let mut live = lock(&self.live);
        for _ in 0..n {
            let seq = self.item_seq.fetch_add(1, Ordering::Relaxed);
            let mut endpoints: Vec<EndpointStats> = Vec::new();
            let first = rng.below(NAMESPACES * ENDPOINTS);
            for k in 0..1 + rng.below(2) {
                let slot = (first + k) % (NAMESPACES * ENDPOINTS);
                let ns = &self.namespaces[slot / ENDPOINTS];
                let start = rng.below(FIELDS.len());
                let fields: Vec<(&str, i64)> = (0..1 + rng.below(3))
                    .map(|f| (FIELDS[(start + f) % FIELDS.len()], 1 + rng.below(20) as i64))
                    .collect();
                endpoints.push(EndpointStats::new(
                    format!("{ns}/e{}", slot % ENDPOINTS),
                    &fields,
                ));
            }
            let sum: i64 = endpoints
                .iter()
                .flat_map(|e| e.property_stats.iter().map(|(_, c)| c))
                .sum();
            // A unique log entry: two items are the same item exactly when they are equal.
            let log_entry = format!("load item {seq}");
            if rng.chance(85) {
                for ns in &self.namespaces {
                    let totals = live.expected.namespaces.entry(ns.clone()).or_default();
                    add_totals(totals, ns, &endpoints);
                }
                live.expected.figures.data_in += sum;
                items.push(stats::inbound(now, &user, &endpoints, &log_entry));
            } else {
                live.expected.figures.data_out += sum;
                items.push(stats::outbound(
                    now,
                    &user,
                    "load-debit",
                    &endpoints,
                    &log_entry,
                ));
            }
        }
        live.items_unique += n as u64;
        live.expected
            .hats
            .entry(hat.address.clone())
            .or_default()
            .stats_items += n as u64;
        drop(live);
        let body = Arc::new(stats::batch(&items));
        let mut sent = lock(&hat.sent);
        sent.push(Arc::clone(&body));
        if sent.len() > KEPT_BATCHES {
            sent.remove(0);
        }
        (body, n as u64)
    }

    async fn report(&self, hat: &LoadHat, body: &Arc<String>, items: u64) {
        let request = self
            .request(Method::POST, "/stats/report", Some(&hat.token))
            .header("content-type", "application/json")
            .body(body.as_ref().clone());
        let answer = self.call("POST /stats/report", request).await;
        let json = answer.json();
        let mut live = lock(&self.live);
        live.items_sent += items;
        if answer.status == 200 {
            live.accepted += json["accepted"].as_u64().unwrap_or(0);
            live.duplicates += json["duplicates"].as_u64().unwrap_or(0);
        } else {
            live.reports_unanswered += 1;
        }
    }

    async fn step(&self, rng: &mut Rng) {
        match pick(rng) {
            Op::Report => {
                let hat = self.hat(rng);
                let old = {
                    let sent = lock(&hat.sent);
                    (rng.chance(20) && !sent.is_empty())
                        .then(|| Arc::clone(&sent[rng.below(sent.len())]))
                };
                match old {
                    // A HAT resending a batch (the same bytes): nothing counts twice.
                    Some(body) => {
                        let items = serde_json::from_str::<Value>(&body)
                            .ok()
                            .and_then(|v| v.as_array().map(|a| a.len() as u64))
                            .unwrap_or(0);
                        self.report(hat, &body, items).await;
                    }
                    None => {
                        let (body, items) = self.new_batch(rng, hat);
                        if rng.chance(6) {
                            // Two copies at the same time.
                            tokio::join!(
                                self.report(hat, &body, items),
                                self.report(hat, &body, items)
                            );
                        } else {
                            self.report(hat, &body, items).await;
                        }
                    }
                }
            }
            Op::HatLog => {
                let hat = self.hat(rng);
                let r = self.request(Method::GET, "/api/hat/log?limit=20", Some(&hat.token));
                self.call("GET /api/hat/log", r).await;
            }
            Op::Notices => {
                let hat = self.hat(rng);
                let r = self.request(Method::GET, "/api/notices", Some(&hat.token));
                self.call("GET /api/notices", r).await;
            }
            Op::UserClaim => {
                let hat = self.hat(rng);
                let offer = &self.offers[rng.below(self.offers.len())];
                let r = self.request(
                    Method::GET,
                    &format!("/api/v3/offer/{offer}/userClaim"),
                    Some(&hat.token),
                );
                self.call("GET /api/v3/offer/{id}/userClaim", r).await;
            }
            Op::Stats => {
                let r = self.request(Method::GET, "/stats", None);
                self.call("GET /stats", r).await;
            }
            Op::AvailableData => {
                let r = self.request(Method::GET, "/stats/available-data", None);
                self.call("GET /stats/available-data", r).await;
            }
            Op::AppGet => {
                let app = &self.apps[rng.below(self.apps.len())];
                let path = format!("/api/v3/applications/{app}");
                let mut r = self.request(Method::GET, &path, None);
                let etag = lock(&self.etags).get(app).cloned();
                if let Some(tag) = etag.filter(|_| rng.chance(50)) {
                    r = r.header("if-none-match", tag);
                }
                let answer = self.call("GET /api/v3/applications/{id}", r).await;
                if let Some(tag) = answer.etag.filter(|_| answer.status == 200) {
                    lock(&self.etags).insert(app.clone(), tag);
                }
            }
            Op::AppsList => {
                let r = self.request(Method::GET, "/api/v3/applications?limit=50", None);
                self.call("GET /api/v3/applications", r).await;
            }
            Op::Consent => {
                let hat = self.hat(rng);
                let app = &self.apps[rng.below(self.apps.len())];
                let r = self.request(
                    Method::GET,
                    &format!("/api/users/register-consent/{app}"),
                    Some(&hat.token),
                );
                let answer = self.call("GET /api/users/register-consent/{id}", r).await;
                if answer.status == 200 {
                    lock(&self.live)
                        .expected
                        .hats
                        .entry(hat.address.clone())
                        .or_default()
                        .consents += 1;
                }
            }
            Op::Claim => {
                let hat = self.hat(rng);
                let offer = &self.offers[rng.below(self.offers.len())];
                let prefix = PREFIXES[rng.below(PREFIXES.len())];
                if let Some(o) = lock(&self.live).expected.offers.get_mut(offer) {
                    o.claimers.insert(hat.address.clone());
                }
                let r = self.request(
                    Method::GET,
                    &format!("{prefix}/offer/{offer}/claim"),
                    Some(&hat.token),
                );
                let endpoint = match prefix {
                    "/api/v2" => "GET /api/v2/offer/{id}/claim",
                    "/api/v2.6" => "GET /api/v2.6/offer/{id}/claim",
                    _ => "GET /api/v3/offer/{id}/claim",
                };
                let mut answer = self.call(endpoint, r).await;
                // 429 (too many claims at once) and 409 (the place went to another HAT
                // meanwhile) ask the HAT to claim again, as a HAT does, after Retry-After.
                for _ in 0..10 {
                    if answer.status != 429 && answer.status != 409 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    let again = self.request(
                        Method::GET,
                        &format!("{prefix}/offer/{offer}/claim"),
                        Some(&hat.token),
                    );
                    answer = self.call(endpoint, again).await;
                }
                if answer.status == 200 {
                    let number = answer.json()["claimerNumber"].as_u64().unwrap_or(0);
                    let mut live = lock(&self.live);
                    if let Some(o) = live.expected.offers.get_mut(offer) {
                        match o.answered.insert(number, hat.address.clone()) {
                            Some(other) if other != hat.address => o.numbered_twice.push(number),
                            _ => {}
                        }
                    }
                }
            }
            Op::PlugConnect => {
                let hat = self.hat(rng);
                let (id, name) = &self.plugs[rng.below(self.plugs.len())];
                let r = self.request(
                    Method::GET,
                    &format!(
                        "/api/dataplugs/{id}/connect?hat={}",
                        url_encode(&hat.address)
                    ),
                    Some(&self.plug_owner),
                );
                let answer = self.call("GET /api/dataplugs/{id}/connect", r).await;
                if answer.status == 200 {
                    lock(&self.live)
                        .expected
                        .hats
                        .entry(hat.address.clone())
                        .or_default()
                        .plugs
                        .insert(name.clone());
                }
            }
            Op::PlugsList => {
                let r = self.request(Method::GET, "/api/dataplugs", None);
                self.call("GET /api/dataplugs", r).await;
            }
        }
    }
}

fn now_ms() -> i64 {
    stats::now_millis()
}

fn tag() -> String {
    stats::unique_hex()
}

/// `GET /stats` read into the counters the checks compare.
async fn figures(dex: &Dex) -> Result<Figures, String> {
    let resp = dex.get("/stats", None).await;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.map_err(|e| format!("/stats: {e}"))?;
    if status != 200 {
        return Err(format!("/stats answered {status}: {body}"));
    }
    let list = body.as_array().cloned().unwrap_or_default();
    let value = |title: &str| {
        list.iter()
            .find(|f| f["title"] == title)
            .and_then(|f| f["value"].as_i64())
            .ok_or_else(|| format!("/stats has no {title}: {body}"))
    };
    Ok(Figures {
        data_in: value("Data In")?,
        data_out: value("Data Out")?,
        hats: value("HATs")?,
        data_plugs: value("Data Plugs")?,
        offer_claims: value("Total Offer Claims")?,
    })
}

/// Fails setup unless DEX answered `status`.
async fn expect(resp: reqwest::Response, status: u16, what: &str) -> Value {
    let got = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    assert_eq!(got, status, "setup: {what}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

fn application(id: &str, developer: &str) -> Value {
    json!({
        "id": id,
        "kind": {"kind": "App", "url": format!("https://{id}.example.com"), "iosUrl": "ios://x"},
        "info": {
            "version": "1.0.0",
            "updateNotes": {"header": "What is new", "notes": ["faster"]},
            "published": true,
            "name": format!("App {id}"),
            "headline": "Notes that stay yours",
            "description": {"text": "A notes app", "markdown": "*A notes app*"},
            "termsUrl": "https://example.com/terms",
            "dataUsePurpose": "to show your notes",
            "supportContact": "support@example.com",
            "rating": {"score": "Z***"},
            "dataPreview": [],
            "graphics": {"banner": {"normal": "https://example.com/b.png"},
                         "logo": {"normal": "https://example.com/l.png"},
                         "screenshots": []},
            "primaryColor": "#ffffff"
        },
        "developer": {"id": developer, "name": "Developer", "url": "https://dev.example.com", "country": "UK"},
        "permissions": {"rolesGranted": [{"role": "namespacewrite", "detail": "rumpel"}],
                        "dataRetrieved": {"name": format!("{id}-bundle"), "bundle": {"notes": {"endpoints": []}}}},
        "dependencies": {"plugs": [], "tools": [], "contracts": []},
        "setup": {"kind": "External", "validRedirectUris": [], "url": "https://example.com/setup",
                  "onboarding": []},
        "status": {"kind": "Internal", "compatibility": "1.0.0",
                   "versionReleaseDate": "2021-03-01T00:00:00.000Z"}
    })
}

async fn setup(args: &Args, cluster: &TestHatCluster, admin: &str) -> World {
    let dex = Dex::new();
    let (user, password) = cluster.platform_credentials();
    let domain = format!("l{}.net", tag());
    certify_cluster(admin, &domain, (&user, &password)).await;
    eprintln!("setup: {} HATs under {domain}", args.hats);
    let first = cluster.add_hat(&format!("h0000.{domain}"));
    let mut test_hats = vec![first.clone()];
    for i in 1..args.hats {
        test_hats.push(cluster.add_hat_sharing_key(&format!("h{i:04}.{domain}"), &first));
    }
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in test_hats.chunks(test_hats.len().div_ceil(8)) {
        let addresses: Vec<String> = chunk.iter().map(|h| h.address().to_owned()).collect();
        tasks.spawn(async move {
            for a in addresses {
                register_hat_ok(&a).await;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("registration task");
    }
    let public = public_url();
    let hats: Vec<LoadHat> = test_hats
        .into_iter()
        .map(|hat| LoadHat {
            address: hat.address().to_owned(),
            token: hat.dex_token(&public),
            hat,
            sent: Mutex::new(Vec::new()),
        })
        .collect();

    // Capped offers, running from a minute ago for a day.
    let (_, username, password) = create_account(admin, &["marketplace"]).await;
    let buyer = dex.token(&username, &password).await;
    let mut offers = Vec::new();
    let mut expected_offers = BTreeMap::new();
    for cap in &args.caps {
        let id = format!("load-{}", tag());
        let body = json!({
            "offerId": id, "title": "Locations under load", "description": "load test",
            "starts": now_ms() - 60_000, "expires": now_ms() + 86_400_000,
            "collectionDuration": 2_592_000_000i64,
            "requiredData": {"name": "locations", "bundle": {
                "locations": {"endpoints": [{"endpoint": "rumpel/locations"}]}}},
            "requiredMinUser": 1, "requiredMaxUser": cap, "status": "draft"
        });
        expect(
            dex.post_json("/api/v2/offer", Some(&buyer), &body).await,
            201,
            "offer",
        )
        .await;
        let approve = dex
            .request(
                Method::PUT,
                &format!("/api/v2/offer/{id}?status=approved"),
                Some(&buyer),
            )
            .send()
            .await
            .expect("approve the offer");
        expect(approve, 200, "approve the offer").await;
        expected_offers.insert(
            id.clone(),
            OfferExpect {
                cap: *cap,
                ..OfferExpect::default()
            },
        );
        offers.push(id);
    }

    // Approved plugs of one owner.
    let (owner_id, username, password) = create_account(admin, &[]).await;
    let plug_owner = dex.token(&username, &password).await;
    let mut plugs = Vec::new();
    for _ in 0..args.plugs {
        let name = format!("plug{}", tag());
        let body = json!({
            "name": name, "description": "syncs a calendar",
            "url": "https://plug.example.com/connect",
            "illustrationUrl": "https://plug.example.com/logo.png",
            "providerId": owner_id, "password": PLUG_PASSWORD,
        });
        let created = expect(
            dex.post_json("/api/admin/dataplugs", Some(admin), &body)
                .await,
            201,
            "plug",
        )
        .await;
        let id = created["uuid"].as_str().expect("plug uuid").to_owned();
        expect(
            dex.put_json(
                &format!("/api/admin/dataplugs/{id}"),
                Some(admin),
                &json!({"approved": true}),
            )
            .await,
            200,
            "approve the plug",
        )
        .await;
        plugs.push((id, name));
    }

    // Published applications of one developer.
    let developer = format!("dev-{}", tag());
    let (_, username, password) = create_account(admin, &[&format!("developer:{developer}")]).await;
    let dev = dex.token(&username, &password).await;
    let mut apps = Vec::new();
    for _ in 0..args.apps {
        let id = format!("load-{}", tag());
        expect(
            dex.post_json(
                "/api/v3/applications",
                Some(&dev),
                &application(&id, &developer),
            )
            .await,
            201,
            "application",
        )
        .await;
        expect(
            dex.get(&format!("/api/v3/applications/{id}/publish"), Some(&dev))
                .await,
            200,
            "publish",
        )
        .await;
        apps.push(id);
    }
    // A notice to every HAT.
    expect(
        dex.post_json(
            "/api/notices",
            Some(admin),
            &json!({"message": "load test notice"}),
        )
        .await,
        200,
        "notice",
    )
    .await;

    let namespaces = (0..NAMESPACES).map(|i| format!("ld{}{i}", tag())).collect();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(args.workers * 2)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("reqwest client");
    let mut live = Live::default();
    live.expected.offers = expected_offers;
    live.expected.figures.hats = hats.len() as i64;
    live.expected.figures.data_plugs = plugs.len() as i64;
    World {
        base: dex_url(),
        http,
        metrics: Metrics::default(),
        hats,
        namespaces,
        offers,
        plugs,
        plug_owner,
        apps,
        etags: Mutex::new(HashMap::new()),
        live: Mutex::new(live),
        item_seq: AtomicU64::new(0),
        requests: AtomicU64::new(0),
        max_requests: args.max_requests,
        measuring: AtomicBool::new(false),
    }
}

/// One HAT's chain and what the test HAT holds.
async fn observe_hat(world: &World, hat: &LoadHat) -> Result<HatObserved, String> {
    let mut entries: Vec<LogEntry> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/hat/log?limit=200&cursor={}", url_encode(c)),
            None => "/api/hat/log?limit=200".to_owned(),
        };
        let r = world.request(Method::GET, &path, Some(&hat.token));
        let resp = r
            .send()
            .await
            .map_err(|e| format!("{}: log: {e}", hat.address))?;
        let status = resp.status().as_u16();
        let page: Value = resp
            .json()
            .await
            .map_err(|e| format!("{}: log: {e}", hat.address))?;
        if status != 200 {
            return Err(format!("{}: log answered {status}: {page}", hat.address));
        }
        for item in page["items"].as_array().cloned().unwrap_or_default() {
            entries.push(
                serde_json::from_value(item)
                    .map_err(|e| format!("{}: a log entry: {e}", hat.address))?,
            );
        }
        match page["cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let mut o = HatObserved {
        broken_at: verify_chain(&entries).err(),
        ..HatObserved::default()
    };
    for e in &entries {
        let detail = |k: &str| e.details[k].as_str().unwrap_or_default().to_owned();
        match e.kind.as_str() {
            "hat.registered" => o.registered += 1,
            "stats.accepted" => o.stats_items += e.details["items"].as_u64().unwrap_or(0),
            "consent.recorded" => o.consents += 1,
            "plug.connected" => *o.plug_connections.entry(detail("plugId")).or_default() += 1,
            "offer.claimed" => *o.claims.entry(detail("offerId")).or_default() += 1,
            _ => {}
        }
    }
    o.debits = hat.hat.data_debits().into_keys().collect();
    o.users = hat
        .hat
        .users()
        .iter()
        .map(|u| u.email().to_owned())
        .collect();
    Ok(o)
}

async fn observe(world: &Arc<World>, dex: &Dex, base: Figures) -> Result<Observed, String> {
    let mut observed = Observed {
        figures: figures(dex).await?.minus(base),
        plug_names: world.plugs.iter().cloned().collect(),
        ..Observed::default()
    };
    let resp = dex.get("/stats/available-data", None).await;
    let tree: Value = resp
        .json()
        .await
        .map_err(|e| format!("available-data: {e}"))?;
    for ns in &world.namespaces {
        if let Some(n) = tree
            .as_array()
            .into_iter()
            .flatten()
            .find(|n| n["namespace"] == ns.as_str())
        {
            observed.namespaces.insert(ns.clone(), flatten_namespace(n));
        }
    }
    let store = dex_tests::support::store().await;
    for id in &world.offers {
        let offer = store
            .get_offer(id)
            .await
            .map_err(|e| format!("offer {id}: {e}"))?
            .ok_or_else(|| format!("offer {id} is not in the table"))?;
        observed.offers_kept.insert(id.clone(), offer.claims_kept);
    }
    let mut tasks = tokio::task::JoinSet::new();
    let workers = 8;
    for w in 0..workers {
        let world = Arc::clone(world);
        tasks.spawn(async move {
            let mut out = Vec::new();
            for hat in world.hats.iter().skip(w).step_by(workers) {
                out.push((hat.address.clone(), observe_hat(&world, hat).await));
            }
            out
        });
    }
    while let Some(done) = tasks.join_next().await {
        for (address, o) in done.map_err(|e| format!("a check task: {e}"))? {
            observed.hats.insert(address, o?);
        }
    }
    Ok(observed)
}

/// The whole run; true when every check passed.
pub async fn run(args: Args) -> bool {
    let dex = Dex::new();
    let (username, password) = dex_tests::support::admin_credentials();
    let admin = dex.token(&username, &password).await;
    // Whatever the stack counted before: the checks compare growth.
    tokio::time::sleep(stats_lag()).await;
    let base = match figures(&dex).await {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            return false;
        }
    };
    let cluster = TestHatCluster::start().await;
    let setup_started = Instant::now();
    let world = Arc::new(setup(&args, &cluster, &admin).await);
    eprintln!(
        "setup took {:.1} s; warm-up {} s, then {} s measured ({} workers, at most {} requests)",
        setup_started.elapsed().as_secs_f64(),
        args.warmup,
        args.secs,
        args.workers,
        args.max_requests
    );

    let warm_until = Instant::now() + Duration::from_secs(args.warmup);
    let end = warm_until + Duration::from_secs(args.secs);
    let mut workers = tokio::task::JoinSet::new();
    let seed = now_ms() as u64;
    for w in 0..args.workers {
        let world = Arc::clone(&world);
        workers.spawn(async move {
            let mut rng = Rng::new(seed ^ (w as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            while Instant::now() < end
                && world.requests.load(Ordering::Relaxed) < world.max_requests
            {
                world.step(&mut rng).await;
            }
        });
    }
    tokio::time::sleep_until(warm_until.into()).await;
    world.metrics.reset();
    world.measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let mut progress = tokio::time::interval(Duration::from_secs(30));
    progress.tick().await;
    loop {
        tokio::select! {
            done = workers.join_next() => match done {
                Some(r) => r.expect("a load worker"),
                None => break,
            },
            _ = progress.tick() => eprintln!(
                "{:>4.0} s: {} requests",
                started.elapsed().as_secs_f64(),
                world.requests.load(Ordering::Relaxed)
            ),
        }
    }
    let elapsed = started.elapsed();
    let endpoints = world.metrics.snapshot();

    eprintln!("waiting {:?} for the public figures' lag", stats_lag());
    tokio::time::sleep(stats_lag()).await;
    let observed = observe(&world, &dex, base).await;

    println!(
        "\nmeasured {:.1} s, {} workers, {} HATs, offers capped at {:?}, {} plugs, {} applications",
        elapsed.as_secs_f64(),
        args.workers,
        world.hats.len(),
        args.caps,
        world.plugs.len(),
        world.apps.len()
    );
    print!("{}", metrics::table(&endpoints, elapsed));

    let mut failures: Vec<String> = Vec::new();
    for (name, e) in &endpoints {
        for (status, n) in &e.statuses {
            if *status == NO_ANSWER || !allowed(name, *status) {
                failures.push(format!("{name}: {n} answers {status}"));
            }
        }
    }
    let live = lock(&world.live);
    let claims: usize = live.expected.offers.values().map(OfferExpect::kept).sum();
    let mut expected = live.expected.clone();
    expected.figures.offer_claims = claims as i64;
    for hat in &world.hats {
        expected.hats.entry(hat.address.clone()).or_default();
    }
    println!(
        "stats items: {} distinct, {} sent (resends and racing copies); DEX answered {} accepted, {} duplicates",
        live.items_unique, live.items_sent, live.accepted, live.duplicates
    );
    if live.reports_unanswered == 0
        && (live.accepted != live.items_unique
            || live.duplicates != live.items_sent - live.items_unique)
    {
        failures.push(format!(
            "reports: {} accepted and {} duplicates answered for {} distinct of {} sent items",
            live.accepted, live.duplicates, live.items_unique, live.items_sent
        ));
    }
    drop(live);
    for (id, o) in &expected.offers {
        println!(
            "offer {id}: cap {}, {} HATs claimed, {} kept",
            o.cap,
            o.claimers.len(),
            o.kept()
        );
    }
    match observed {
        Ok(observed) => {
            let chains_ok = observed
                .hats
                .values()
                .filter(|h| h.broken_at.is_none())
                .count();
            println!(
                "chains verified: {chains_ok} of {} HATs; /stats grew by {:?}",
                observed.hats.len(),
                observed.figures
            );
            failures.extend(check::compare(&expected, &observed));
        }
        Err(e) => failures.push(format!("reading the totals: {e}")),
    }
    drop(cluster);
    if failures.is_empty() {
        println!("every total is exact, every chain verifies, no 5xx");
        true
    } else {
        println!("FAILED ({} problems):", failures.len());
        for f in failures.iter().take(50) {
            println!("  {f}");
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use dex_tests::stats_support::Json;

    use super::*;

    #[test]
    fn the_mix_picks_every_operation() {
        let mut rng = Rng::new(42);
        let mut seen = BTreeSet::new();
        for _ in 0..10_000 {
            seen.insert(format!("{:?}", pick(&mut rng)));
        }
        assert_eq!(seen.len(), MIX.len(), "{seen:?}");
    }

    #[test]
    fn only_the_race_may_refuse() {
        assert!(allowed("GET /api/v2/offer/{id}/claim", 400));
        assert!(allowed("GET /api/v3/offer/{id}/userClaim", 404));
        assert!(allowed("GET /api/v2/offer/{id}/claim", 429));
        assert!(!allowed("POST /stats/report", 429));
        assert!(!allowed("POST /stats/report", 503));
        assert!(!allowed("GET /api/v3/offer/{id}/claim", 500));
        assert!(!allowed("GET /stats", NO_ANSWER));
    }

    #[test]
    fn items_differ_by_their_log_entry() {
        let user = HatUser::owner("x");
        let stats = [EndpointStats::new("ns/e0", &[("id", 1)])];
        let items: Vec<Json> = (0..2)
            .map(|seq| stats::inbound(0, &user, &stats, &format!("load item {seq}")))
            .collect();
        assert_ne!(items[0], items[1]);
        let v: Value = serde_json::from_str(&stats::batch(&items)).unwrap();
        assert_eq!(v.as_array().map(Vec::len), Some(2));
    }
}
