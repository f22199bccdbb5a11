//! Helpers for the statistics suites (docs/decisions.md §7, docs/wire-contract.md §3.2/§4.5/§6.1/§6.2,
//! docs/hats.md §3.1/§4): DataStats payloads written exactly as HAT2.0 serialises them, HAT
//! onboarding on a throw-away cluster, and readers of what DEX answers.
//!
//! # Payloads
//!
//! HAT2.0 writes DataStats with Play JSON: the variant's fields in declaration order, then the
//! discriminator `statsType` last; `time` (and every `LocalDateTime`) as
//! `yyyy-MM-dd'T'HH:mm:ssZ` (`"2021-03-10T13:34:59+0000"`); operations as the case object's
//! text (`"Enable()"`); absent options left out. `serde_json::Value` sorts keys, so the
//! generators here write JSON text through [`Json`], which keeps the order they are given.
//!
//! # Isolation
//!
//! Every test makes its own cluster (`s<12 hex>.net`), so its HATs, their duplicate markers
//! and their logs are its own, and its own namespace (`ns<12 hex>`), so the available-data
//! figures of that namespace can be compared exactly while other tests run.

use std::collections::BTreeMap;
use std::fmt;

use reqwest::{Method, Response};
use serde_json::Value;
use uuid::Uuid;

use crate::support::{Dex, admin_token, expect_json};
use crate::test_hat::{TestHat, TestHatCluster};

// ---- unique names ------------------------------------------------------------------------

/// 12 random lowercase hex characters.
pub fn unique_hex() -> String {
    Uuid::new_v4().simple().to_string()[..12].to_owned()
}

/// A cluster domain of its own for one test: `s<12 hex>.net`.
pub fn unique_domain() -> String {
    format!("s{}.net", unique_hex())
}

/// A namespace of its own for one test: `ns<12 hex>`.
pub fn unique_namespace() -> String {
    format!("ns{}", unique_hex())
}

/// Now, in epoch milliseconds.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

// ---- ordered JSON text -------------------------------------------------------------------

/// A piece of JSON text whose object keys stay in the order they were written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Json(pub String);

impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Json {
    /// A JSON string.
    pub fn str(text: &str) -> Self {
        Self(Value::from(text).to_string())
    }

    pub fn num(n: i64) -> Self {
        Self(n.to_string())
    }

    pub fn bool(b: bool) -> Self {
        Self(b.to_string())
    }

    /// Any `serde_json::Value` (its own objects' keys sorted).
    pub fn value(v: &Value) -> Self {
        Self(v.to_string())
    }

    /// An object with exactly these fields, in this order.
    pub fn obj(fields: Vec<(&str, Json)>) -> Self {
        let body: Vec<String> = fields
            .into_iter()
            .map(|(k, v)| format!("{}:{}", Value::from(k), v.0))
            .collect();
        Self(format!("{{{}}}", body.join(",")))
    }

    /// An object whose `None` fields are left out, as Play JSON writes `Option`s.
    pub fn obj_opt(fields: Vec<(&str, Option<Json>)>) -> Self {
        Self::obj(
            fields
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k, v)))
                .collect(),
        )
    }

    pub fn arr(items: Vec<Json>) -> Self {
        let body: Vec<String> = items.into_iter().map(|j| j.0).collect();
        Self(format!("[{}]", body.join(",")))
    }

    /// The same JSON as a `Value` (for assertions).
    pub fn to_value(&self) -> Value {
        serde_json::from_str(&self.0).expect("generated JSON parses")
    }
}

/// A report body: the JSON array of `items`, as HAT2.0's `StatsReporter` posts it.
pub fn batch(items: &[Json]) -> String {
    Json::arr(items.to_vec()).0
}

// ---- times -------------------------------------------------------------------------------

/// (year, month, day) of a day number since 1970-01-01 (H. Hinnant's civil_from_days).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn utc_parts(ms: i64) -> (i64, u32, u32, i64, i64, i64, i64) {
    let secs = ms.div_euclid(1000);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    (
        y,
        mo,
        d,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms.rem_euclid(1000),
    )
}

/// A Joda `LocalDateTime` as HAT2.0 writes it (`yyyy-MM-dd'T'HH:mm:ssZ` in a UTC JVM):
/// `"2021-03-10T13:34:59+0000"`, no milliseconds, no colon in the offset.
pub fn hat_time(ms: i64) -> String {
    let (y, mo, d, h, mi, s, _) = utc_parts(ms);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}+0000")
}

/// A Joda `DateTime` as play-json-joda writes it: ISO-8601 with milliseconds.
pub fn iso_time(ms: i64) -> String {
    let (y, mo, d, h, mi, s, milli) = utc_parts(ms);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

// ---- HAT users ---------------------------------------------------------------------------

/// A HAT user as DataStats carry it (`pass` always omitted: a "clean" user).
#[derive(Debug, Clone)]
pub struct HatUser {
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
    /// The lowercase primary role.
    pub role: String,
    /// `(role, detail)`.
    pub roles: Vec<(String, Option<String>)>,
}

impl HatUser {
    /// The HAT's owner (writes made with an app token are attributed to the owner).
    pub fn owner(name: &str) -> Self {
        Self {
            user_id: Uuid::new_v4(),
            email: format!("{name}@example.com"),
            name: name.to_owned(),
            role: "owner".into(),
            roles: vec![("owner".into(), None)],
        }
    }

    /// A data plug's user: role `datacredit` for its namespace.
    pub fn plug(name: &str, namespace: &str) -> Self {
        Self {
            user_id: Uuid::new_v4(),
            email: name.to_owned(),
            name: name.to_owned(),
            role: "datacredit".into(),
            roles: vec![
                ("datacredit".into(), Some(namespace.to_owned())),
                ("namespacewrite".into(), Some(namespace.to_owned())),
            ],
        }
    }

    /// A data debit client (role `validate`), e.g. the user an offer's debit reads as.
    pub fn debit_client(name: &str) -> Self {
        Self {
            user_id: Uuid::new_v4(),
            email: format!("{name}@offers.example.com"),
            name: name.to_owned(),
            role: "validate".into(),
            roles: vec![("validate".into(), None)],
        }
    }

    pub fn json(&self) -> Json {
        let roles = self
            .roles
            .iter()
            .map(|(role, detail)| {
                Json::obj_opt(vec![
                    ("role", Some(Json::str(role))),
                    ("detail", detail.as_deref().map(Json::str)),
                ])
            })
            .collect();
        Json::obj(vec![
            ("userId", Json::str(&self.user_id.to_string())),
            ("email", Json::str(&self.email)),
            ("name", Json::str(&self.name)),
            ("role", Json::str(&self.role)),
            ("roles", Json::arr(roles)),
        ])
    }
}

// ---- DataStats items ---------------------------------------------------------------------

/// `EndpointStats`: `endpoint` is the full `<namespace>/<endpoint>`; `propertyStats` maps
/// dot paths (arrays marked `[]`) to counts, in the given order.
#[derive(Debug, Clone)]
pub struct EndpointStats {
    pub endpoint: String,
    pub property_stats: Vec<(String, i64)>,
}

impl EndpointStats {
    pub fn new(endpoint: impl Into<String>, property_stats: &[(&str, i64)]) -> Self {
        Self {
            endpoint: endpoint.into(),
            property_stats: property_stats
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect(),
        }
    }

    pub fn json(&self) -> Json {
        let props = self
            .property_stats
            .iter()
            .map(|(k, v)| (k.as_str(), Json::num(*v)))
            .collect();
        Json::obj(vec![
            ("endpoint", Json::str(&self.endpoint)),
            ("propertyStats", Json::obj(props)),
        ])
    }
}

fn stats_json(stats: &[EndpointStats]) -> Json {
    Json::arr(stats.iter().map(EndpointStats::json).collect())
}

/// `InboundDataStats` (data written to the HAT).
pub fn inbound(time_ms: i64, user: &HatUser, stats: &[EndpointStats], log_entry: &str) -> Json {
    Json::obj(vec![
        ("time", Json::str(&hat_time(time_ms))),
        ("user", user.json()),
        ("stats", stats_json(stats)),
        ("logEntry", Json::str(log_entry)),
        ("statsType", Json::str("inbound")),
    ])
}

/// `OutboundDataStats` (data read through a legacy data debit).
pub fn outbound(
    time_ms: i64,
    user: &HatUser,
    data_debit_id: &str,
    stats: &[EndpointStats],
    log_entry: &str,
) -> Json {
    Json::obj(vec![
        ("time", Json::str(&hat_time(time_ms))),
        ("user", user.json()),
        ("dataDebitId", Json::str(data_debit_id)),
        ("stats", stats_json(stats)),
        ("logEntry", Json::str(log_entry)),
        ("statsType", Json::str("outbound")),
    ])
}

/// `EndpointDataBundle` reading every record of `endpoint` (`namespace/endpoint`).
pub fn endpoint_bundle(name: &str, endpoint: &str) -> Json {
    Json::obj(vec![
        ("name", Json::str(name)),
        (
            "bundle",
            Json::obj(vec![(
                "data",
                Json::obj(vec![
                    (
                        "endpoints",
                        Json::arr(vec![Json::obj(vec![("endpoint", Json::str(endpoint))])]),
                    ),
                    ("orderBy", Json::str("dateCreated")),
                    ("ordering", Json::str("descending")),
                    ("limit", Json::num(100)),
                ]),
            )]),
        ),
    ])
}

/// A v2.6 data debit (`DataDebit`) as the HAT writes it, computed fields included.
#[derive(Debug, Clone)]
pub struct DataDebit {
    pub key: String,
    pub created_ms: i64,
    pub endpoint: String,
    pub client_name: String,
    pub application_id: Option<String>,
    pub active: bool,
    pub accepted: bool,
}

impl DataDebit {
    pub fn new(key: &str, endpoint: &str, created_ms: i64) -> Self {
        Self {
            key: key.to_owned(),
            created_ms,
            endpoint: endpoint.to_owned(),
            client_name: "Test Offers".into(),
            application_id: None,
            active: false,
            accepted: false,
        }
    }

    fn permission(&self) -> Json {
        let start = iso_time(self.created_ms);
        Json::obj_opt(vec![
            ("dateCreated", Some(Json::str(&hat_time(self.created_ms)))),
            ("purpose", Some(Json::str("statistics end-to-end test"))),
            ("start", Some(Json::str(&start))),
            ("period", Some(Json::num(30 * 24 * 3600 * 1000))),
            ("cancelAtPeriodEnd", Some(Json::bool(false))),
            (
                "termsUrl",
                Some(Json::str("https://offers.example.com/terms")),
            ),
            (
                "bundle",
                Some(endpoint_bundle(
                    &format!("{}-bundle", self.key),
                    &self.endpoint,
                )),
            ),
            ("accepted", Some(Json::bool(self.accepted))),
            ("active", Some(Json::bool(self.active))),
            (
                "end",
                self.active
                    .then(|| Json::str(&iso_time(self.created_ms + 30 * 24 * 3600 * 1000))),
            ),
        ])
    }

    pub fn json(&self) -> Json {
        let permission = self.permission();
        Json::obj_opt(vec![
            ("dataDebitKey", Some(Json::str(&self.key))),
            ("dateCreated", Some(Json::str(&hat_time(self.created_ms)))),
            ("permissions", Some(Json::arr(vec![permission.clone()]))),
            ("requestClientName", Some(Json::str(&self.client_name))),
            (
                "requestClientUrl",
                Some(Json::str("https://offers.example.com")),
            ),
            (
                "requestClientLogoUrl",
                Some(Json::str("https://offers.example.com/logo.png")),
            ),
            (
                "requestApplicationId",
                self.application_id.as_deref().map(Json::str),
            ),
            ("requestDescription", Some(Json::str("Reads test data"))),
            ("active", Some(Json::bool(self.active))),
            ("accepted", Some(Json::bool(self.accepted))),
            (
                "start",
                self.active.then(|| Json::str(&iso_time(self.created_ms))),
            ),
            ("permissionsActive", self.active.then(|| permission.clone())),
            ("permissionsLatest", Some(permission)),
        ])
    }
}

/// `DataDebitOperation` (`statsType` `datadebit`): `operation` is written as HAT2.0 writes
/// it, e.g. `"Enable()"`; the HAT repeats it as `logEntry`.
pub fn datadebit(time_ms: i64, user: &HatUser, debit: &DataDebit, operation: &str) -> Json {
    Json::obj(vec![
        ("dataDebit", debit.json()),
        ("operation", Json::str(operation)),
        ("time", Json::str(&hat_time(time_ms))),
        ("user", user.json()),
        ("logEntry", Json::str(operation)),
        ("statsType", Json::str("datadebit")),
    ])
}

/// A legacy `RichDataDebit` (v2.0 data debits).
pub fn rich_data_debit(
    key: &str,
    created_ms: i64,
    client: &HatUser,
    endpoint: &str,
    enabled: bool,
) -> Json {
    Json::obj(vec![
        ("dataDebitKey", Json::str(key)),
        ("dateCreated", Json::str(&hat_time(created_ms))),
        ("client", client.json()),
        (
            "bundles",
            Json::arr(vec![Json::obj(vec![
                ("dateCreated", Json::str(&hat_time(created_ms))),
                ("startDate", Json::str(&hat_time(created_ms))),
                (
                    "endDate",
                    Json::str(&hat_time(created_ms + 30 * 24 * 3600 * 1000)),
                ),
                ("rolling", Json::bool(true)),
                ("enabled", Json::bool(enabled)),
                (
                    "bundle",
                    endpoint_bundle(&format!("{key}-bundle"), endpoint),
                ),
            ])]),
        ),
    ])
}

/// `DataDebitEvent` (`statsType` `datadebitEvent`, legacy debits).
pub fn datadebit_event(time_ms: i64, user: &HatUser, rich_debit: Json, operation: &str) -> Json {
    Json::obj(vec![
        ("dataDebit", rich_debit),
        ("operation", Json::str(operation)),
        ("time", Json::str(&hat_time(time_ms))),
        ("user", user.json()),
        ("logEntry", Json::str(operation)),
        ("statsType", Json::str("datadebitEvent")),
    ])
}

/// A legacy `DataTableStats` with one field per `(field, count)`.
pub fn data_table_stats(name: &str, source: &str, fields: &[(&str, i64)]) -> Json {
    let field_list = fields
        .iter()
        .map(|(f, c)| {
            Json::obj(vec![
                ("name", Json::str(f)),
                ("tableName", Json::str(name)),
                ("tableSource", Json::str(source)),
                ("valueCount", Json::num(*c)),
            ])
        })
        .collect();
    Json::obj(vec![
        ("name", Json::str(name)),
        ("source", Json::str(source)),
        ("fields", Json::arr(field_list)),
        ("valueCount", Json::num(fields.iter().map(|(_, c)| c).sum())),
    ])
}

/// `DataCreditStats` (`statsType` `datacredit`, deprecated).
pub fn datacredit(
    time_ms: i64,
    user: &HatUser,
    operation: &str,
    tables: Option<Vec<Json>>,
) -> Json {
    Json::obj_opt(vec![
        ("operation", Some(Json::str(operation))),
        ("time", Some(Json::str(&hat_time(time_ms)))),
        ("user", Some(user.json())),
        ("dataTableStats", tables.map(Json::arr)),
        ("logEntry", Some(Json::str(operation))),
        ("statsType", Some(Json::str("datacredit"))),
    ])
}

/// `DataStorageStats` (`statsType` `storage`, deprecated; no user).
pub fn storage(time_ms: i64, tables: Vec<Json>, log_entry: &str) -> Json {
    Json::obj(vec![
        ("time", Json::str(&hat_time(time_ms))),
        ("dataTableStats", Json::arr(tables)),
        ("logEntry", Json::str(log_entry)),
        ("statsType", Json::str("storage")),
    ])
}

/// The counts an inbound batch adds to the available data: `(endpoint, field path)` →
/// count, within one namespace.
pub type FieldTotals = BTreeMap<(String, String), i64>;

/// Adds what `stats` contribute to `totals` (counts of 0 contribute nothing).
pub fn add_totals(totals: &mut FieldTotals, namespace: &str, stats: &[EndpointStats]) {
    for s in stats {
        let (ns, endpoint) = s
            .endpoint
            .split_once('/')
            .expect("endpoint is <namespace>/<endpoint>");
        if ns != namespace {
            continue;
        }
        for (field, count) in &s.property_stats {
            if *count > 0 {
                *totals
                    .entry((endpoint.to_owned(), field.clone()))
                    .or_default() += count;
            }
        }
    }
}

// ---- onboarding --------------------------------------------------------------------------

/// A throw-away certified cluster served by a [`TestHatCluster`], with registered HATs.
pub struct StatsCluster {
    pub cluster: TestHatCluster,
    pub domain: String,
    pub hats: Vec<TestHat>,
}

impl StatsCluster {
    /// Starts a test HAT cluster, certifies a unique domain for it and registers one HAT
    /// per label (`<label>.<domain>:PORT`).
    pub async fn start(labels: &[&str]) -> Self {
        let cluster = TestHatCluster::start().await;
        let domain = unique_domain();
        certify_cluster(&domain).await;
        let mut stats_cluster = Self {
            cluster,
            domain,
            hats: Vec::new(),
        };
        stats_cluster.add_registered(labels).await;
        stats_cluster
    }

    /// Adds HATs to the cluster (not registered with DEX).
    pub fn add_unregistered(&self, label: &str) -> TestHat {
        self.cluster.add_hat(&format!("{label}.{}", self.domain))
    }

    /// Adds and registers more HATs (concurrently); returns them in `labels` order.
    pub async fn add_registered(&mut self, labels: &[&str]) -> Vec<TestHat> {
        let hats: Vec<TestHat> = labels.iter().map(|l| self.add_unregistered(l)).collect();
        let mut tasks = tokio::task::JoinSet::new();
        for hat in &hats {
            let address = hat.address().to_owned();
            tasks.spawn(async move { register_hat(&address).await });
        }
        while let Some(done) = tasks.join_next().await {
            done.expect("registration task");
        }
        self.hats.extend(hats.iter().cloned());
        hats
    }
}

/// `POST /api/admin/clusters` as the bootstrap admin; expects 201.
pub async fn certify_cluster(domain: &str) {
    let admin = admin_token().await;
    let body = serde_json::json!({
        "domain": domain, "platformUsername": "hatdex.org", "platformPassword": "x", "provisioners": []
    });
    expect_json(
        Dex::new()
            .post_json("/api/admin/clusters", Some(&admin), &body)
            .await,
        201,
    )
    .await;
}

/// `DELETE /api/admin/clusters/{domain}` as the bootstrap admin; expects 200.
pub async fn decertify_cluster(domain: &str) {
    let admin = admin_token().await;
    expect_json(
        Dex::new()
            .delete(&format!("/api/admin/clusters/{domain}"), Some(&admin))
            .await,
        200,
    )
    .await;
}

/// `POST /api/users/registerHat`; expects 200.
pub async fn register_hat(address: &str) {
    let body = serde_json::json!({ "hatAddress": address });
    let answer = expect_json(
        Dex::new()
            .post_json("/api/users/registerHat", None, &body)
            .await,
        200,
    )
    .await;
    assert_eq!(answer["hatAddress"], address, "{answer}");
}

// ---- reporting ---------------------------------------------------------------------------

/// The token HAT2.0 mints for its stats upload: `resource` = DEX's public URL.
pub fn report_token(hat: &TestHat) -> String {
    hat.dex_token(&crate::support::public_url())
}

/// `POST /stats/report` with a raw body (a fresh token per call, as HAT2.0 does).
pub async fn post_report(
    dex: &Dex,
    token: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> Response {
    dex.send_raw(Method::POST, "/stats/report", token, body)
        .await
}

/// What `/stats/report` answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportOutcome {
    pub accepted: u64,
    pub duplicates: u64,
    /// `(index, reason)`.
    pub skipped: Vec<(u64, String)>,
    pub message: String,
}

/// Posts `body` as `hat` and expects 200 with `{"message","accepted","duplicates","skipped"}`.
pub async fn report(dex: &Dex, hat: &TestHat, body: &str) -> ReportOutcome {
    let resp = post_report(dex, Some(&report_token(hat)), body.to_owned()).await;
    parse_outcome(resp).await
}

/// Checks a 200 report answer and reads it.
pub async fn parse_outcome(resp: Response) -> ReportOutcome {
    let json = expect_json(resp, 200).await;
    let object = json
        .as_object()
        .unwrap_or_else(|| panic!("report answer is not an object: {json}"));
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["accepted", "duplicates", "message", "skipped"],
        "{json}"
    );
    let message = json["message"]
        .as_str()
        .unwrap_or_else(|| panic!("message is not a string: {json}"))
        .to_owned();
    assert!(!message.is_empty(), "{json}");
    let skipped = json["skipped"]
        .as_array()
        .unwrap_or_else(|| panic!("skipped is not an array: {json}"))
        .iter()
        .map(|s| {
            let index = s["index"]
                .as_u64()
                .unwrap_or_else(|| panic!("skipped entry without index: {json}"));
            let reason = s["reason"]
                .as_str()
                .unwrap_or_else(|| panic!("skipped entry without reason: {json}"));
            assert!(!reason.is_empty(), "{json}");
            (index, reason.to_owned())
        })
        .collect();
    ReportOutcome {
        accepted: json["accepted"]
            .as_u64()
            .unwrap_or_else(|| panic!("accepted is not a count: {json}")),
        duplicates: json["duplicates"]
            .as_u64()
            .unwrap_or_else(|| panic!("duplicates is not a count: {json}")),
        skipped,
        message,
    }
}

// ---- reading the figures -----------------------------------------------------------------

/// The lag of the public reads (twice `DEX_STATS_CACHE_SECS`, which the test stack sets),
/// plus a margin: after it every figure is exact.
pub fn stats_lag() -> std::time::Duration {
    let fresh: u64 = std::env::var("DEX_STATS_CACHE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    std::time::Duration::from_millis(2000 * fresh + 200)
}

/// `GET /stats` (200, a JSON array), once the lag has passed (so it holds every earlier
/// report).
pub async fn figures(dex: &Dex) -> Vec<Value> {
    tokio::time::sleep(stats_lag()).await;
    figures_now(dex).await
}

/// `GET /stats` now: possibly up to `stats_lag()` old.
pub async fn figures_now(dex: &Dex) -> Vec<Value> {
    let json = expect_json(dex.get("/stats", None).await, 200).await;
    json.as_array()
        .unwrap_or_else(|| panic!("/stats is not an array: {json}"))
        .clone()
}

/// The `value` of the figure titled `title`.
pub fn figure_value(figures: &[Value], title: &str) -> i64 {
    figures
        .iter()
        .find(|f| f["title"] == title)
        .and_then(|f| f["value"].as_i64())
        .unwrap_or_else(|| panic!("no figure {title:?} with an integer value in {figures:?}"))
}

/// `GET /stats/available-data` (200, a JSON array of `NamespaceStructure`), once the lag
/// has passed.
pub async fn available_data(dex: &Dex) -> Vec<Value> {
    tokio::time::sleep(stats_lag()).await;
    available_data_now(dex).await
}

/// `GET /stats/available-data` now: possibly up to `stats_lag()` old.
pub async fn available_data_now(dex: &Dex) -> Vec<Value> {
    let json = expect_json(dex.get("/stats/available-data", None).await, 200).await;
    json.as_array()
        .unwrap_or_else(|| panic!("/stats/available-data is not an array: {json}"))
        .clone()
}

/// The `NamespaceStructure` of `namespace`, if DEX lists it (it must be listed once).
pub async fn namespace_tree(dex: &Dex, namespace: &str) -> Option<Value> {
    let tree = available_data(dex).await;
    let mut found = tree.iter().filter(|n| n["namespace"] == namespace);
    let first = found.next().cloned();
    assert!(found.next().is_none(), "namespace {namespace} listed twice");
    first
}

/// The counted leaves of a `NamespaceStructure`: `(endpoint, dot path)` → count. Checks the
/// structure on the way: every field has a non-empty `name` without `.`, `fields` (when
/// present) is a non-empty array and `count` (when present) an integer; a node without
/// children has a count or a description.
pub fn flatten_namespace(namespace: &Value) -> FieldTotals {
    fn walk(endpoint: &str, prefix: &str, fields: &Value, out: &mut FieldTotals) {
        let list = fields
            .as_array()
            .unwrap_or_else(|| panic!("fields is not an array: {fields}"));
        for f in list {
            let name = f["name"]
                .as_str()
                .unwrap_or_else(|| panic!("field without name: {f}"));
            assert!(
                !name.is_empty() && !name.contains('.'),
                "bad field name {name:?}"
            );
            let path = if prefix.is_empty() {
                name.to_owned()
            } else {
                format!("{prefix}.{name}")
            };
            if let Some(count) = f.get("count") {
                let count = count
                    .as_i64()
                    .unwrap_or_else(|| panic!("count is not an integer: {f}"));
                out.insert((endpoint.to_owned(), path.clone()), count);
            }
            match f.get("fields") {
                Some(children) => {
                    assert!(
                        children.as_array().is_some_and(|c| !c.is_empty()),
                        "empty fields list: {f}"
                    );
                    walk(endpoint, &path, children, out);
                }
                None => assert!(
                    f.get("count").is_some() || f.get("description").is_some(),
                    "empty leaf: {f}"
                ),
            }
        }
    }
    let mut out = FieldTotals::new();
    let endpoints = namespace["endpoints"]
        .as_array()
        .unwrap_or_else(|| panic!("endpoints is not an array: {namespace}"));
    for ep in endpoints {
        let name = ep["endpoint"]
            .as_str()
            .unwrap_or_else(|| panic!("endpoint without name: {ep}"));
        walk(name, "", &ep["fields"], &mut out);
    }
    out
}

/// The counted leaves of `namespace` now (empty when DEX does not list it).
pub async fn namespace_totals(dex: &Dex, namespace: &str) -> FieldTotals {
    namespace_tree(dex, namespace)
        .await
        .map(|n| flatten_namespace(&n))
        .unwrap_or_default()
}

// ---- the HAT's log -----------------------------------------------------------------------

/// `GET /api/hat/log` as `hat`, every page (oldest first).
pub async fn hat_log(dex: &Dex, hat: &TestHat) -> Vec<Value> {
    let mut entries = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/hat/log?limit=200&cursor={c}"),
            None => "/api/hat/log?limit=200".to_owned(),
        };
        let page = expect_json(dex.get(&path, Some(&report_token(hat))).await, 200).await;
        assert_eq!(page["hatAddress"], hat.address(), "{page}");
        entries.extend(
            page["items"]
                .as_array()
                .unwrap_or_else(|| panic!("log page without items: {page}"))
                .iter()
                .cloned(),
        );
        match page["cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return entries,
        }
    }
}

/// The `stats.accepted` entries of a log.
pub fn accepted_entries(log: &[Value]) -> Vec<Value> {
    log.iter()
        .filter(|e| e["kind"] == "stats.accepted")
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hat_times_match_hat2_format() {
        assert_eq!(hat_time(1_615_383_299_000), "2021-03-10T13:34:59+0000");
        assert_eq!(hat_time(1_506_608_475_000), "2017-09-28T14:21:15+0000");
        assert_eq!(iso_time(1_615_383_299_123), "2021-03-10T13:34:59.123Z");
        assert_eq!(hat_time(951_782_400_000), "2000-02-29T00:00:00+0000");
    }

    #[test]
    fn items_keep_hat_field_order_with_stats_type_last() {
        let user = HatUser::owner("alice");
        let item = inbound(
            1_615_383_299_000,
            &user,
            &[EndpointStats::new(
                "rumpel/locations",
                &[("latitude", 2), ("tags[]", 3)],
            )],
            "saved",
        );
        assert!(
            item.0
                .starts_with("{\"time\":\"2021-03-10T13:34:59+0000\",\"user\":{\"userId\":"),
            "{item}"
        );
        assert!(
            item.0
                .ends_with(",\"logEntry\":\"saved\",\"statsType\":\"inbound\"}"),
            "{item}"
        );
        assert!(
            item.0
                .contains("\"propertyStats\":{\"latitude\":2,\"tags[]\":3}"),
            "{item}"
        );
        assert!(!item.0.contains("\"pass\""), "{item}");
        let debit = datadebit(1, &user, &DataDebit::new("k", "ns/ep", 1), "Enable()");
        assert!(
            debit
                .0
                .starts_with("{\"dataDebit\":{\"dataDebitKey\":\"k\""),
            "{debit}"
        );
        assert!(
            debit
                .0
                .ends_with("\"logEntry\":\"Enable()\",\"statsType\":\"datadebit\"}"),
            "{debit}"
        );
        assert!(
            debit.to_value()["dataDebit"]
                .get("requestApplicationId")
                .is_none()
        );
    }

    #[test]
    fn flattening_walks_nested_fields() {
        let ns = serde_json::json!({"namespace":"n","endpoints":[{"endpoint":"a/b","fields":[
            {"name":"place","fields":[{"name":"location","fields":[{"name":"latitude","count":1}]}]},
            {"name":"tags[]","count":4}]}]});
        let flat = flatten_namespace(&ns);
        assert_eq!(
            flat.get(&("a/b".into(), "place.location.latitude".into())),
            Some(&1)
        );
        assert_eq!(flat.get(&("a/b".into(), "tags[]".into())), Some(&4));
        assert_eq!(flat.len(), 2);
    }
}
