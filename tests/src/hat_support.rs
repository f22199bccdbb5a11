//! Helpers for suites that need certified clusters and registered HATs (decisions §4, §5):
//! unique cluster domains, certifying a cluster with a fresh provisioner account, registering
//! HATs, reading what DEX stored about them (admin API, the table, Secrets Manager), and
//! free ports for "nothing listens here" cases.
//!
//! Every helper goes through the served functions over HTTP (see [`crate::support`]) except
//! the few that read the table or Secrets Manager directly to prove where a secret is kept.

use std::collections::HashMap;
use std::time::Duration;

use dex::hats::clusters::PlatformCredentials;
use dex::ports::SecretStore;
use dex::txlog::LogEntry;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::support::{self, Dex, create_account, expect_json, url_encode};

/// A 12-hex-digit random tag.
fn tag() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

/// A cluster domain no other test uses: `t<12 hex>.hubat.net`.
#[must_use]
pub fn unique_domain() -> String {
    format!("t{}.hubat.net", tag())
}

/// A two-label cluster domain no other test uses (`<prefix><12 hex>.net`). Its only parent,
/// `net`, can never be certified (a cluster domain has at least two labels), so a HAT under
/// it is under no certified cluster unless this very domain is certified.
#[must_use]
pub fn unique_two_label_domain(prefix: &str) -> String {
    format!("{prefix}{}.net", tag())
}

/// A TCP port on 127.0.0.1 that nothing listens on (bound, then released).
#[must_use]
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// How long to wait so that every warm function has dropped the HAT keys it cached
/// (DEX_HAT_KEY_CACHE_SECS) before a key or certification change must be visible.
#[must_use]
pub fn key_cache_expiry() -> Duration {
    support::config().hat_key_cache + Duration::from_millis(500)
}

/// A cluster certified through `POST /api/admin/clusters` with a provisioner account made
/// for it.
#[derive(Clone)]
pub struct CertifiedCluster {
    pub domain: String,
    pub provisioner_id: String,
    pub provisioner_username: String,
    pub provisioner_password: String,
    pub platform_username: String,
    pub platform_password: String,
    /// The 201 body of the certification.
    pub response: Value,
}

impl std::fmt::Debug for CertifiedCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertifiedCluster")
            .field("domain", &self.domain)
            .field("provisioner_id", &self.provisioner_id)
            .finish_non_exhaustive()
    }
}

impl CertifiedCluster {
    /// A DEX token of the cluster's provisioner account.
    pub async fn provisioner_token(&self) -> String {
        Dex::new()
            .token(&self.provisioner_username, &self.provisioner_password)
            .await
    }
}

/// The body of `POST /api/admin/clusters`.
#[must_use]
pub fn cluster_body(domain: &str, platform: (&str, &str), provisioners: &[&str]) -> Value {
    json!({
        "domain": domain,
        "platformUsername": platform.0,
        "platformPassword": platform.1,
        "provisioners": provisioners,
    })
}

/// Creates a provisioner account (no roles yet) and certifies `domain` with it and the
/// given platform credentials (use the test HAT cluster's, so DEX can log in to its HATs).
/// Fails the test unless DEX answers 201.
pub async fn certify_cluster(
    admin: &str,
    domain: &str,
    platform: (&str, &str),
) -> CertifiedCluster {
    let (provisioner_id, provisioner_username, provisioner_password) =
        create_account(admin, &[]).await;
    let body = cluster_body(domain, platform, &[&provisioner_id]);
    let response = expect_json(
        Dex::new()
            .post_json("/api/admin/clusters", Some(admin), &body)
            .await,
        201,
    )
    .await;
    CertifiedCluster {
        domain: domain.to_owned(),
        provisioner_id,
        provisioner_username,
        provisioner_password,
        platform_username: platform.0.to_owned(),
        platform_password: platform.1.to_owned(),
        response,
    }
}

/// `POST /api/users/registerHat` with `{"hatAddress": address}`; `token` goes in
/// `X-Auth-Token`.
pub async fn register_hat(address: &str, token: Option<&str>) -> Response {
    register_hat_at(
        "/api/users/registerHat",
        &json!({ "hatAddress": address }),
        token,
    )
    .await
}

/// `POST path` (`/api/users/registerHat` or `/api/v3/users/registerHat`) with `body`.
pub async fn register_hat_at(path: &str, body: &Value, token: Option<&str>) -> Response {
    Dex::new().post_json(path, token, body).await
}

/// Registers `address` and checks the 200 `{"message", "hatAddress"}` answer.
pub async fn register_hat_ok(address: &str) -> Value {
    let body = expect_json(register_hat(address, None).await, 200).await;
    assert_registration_answer(&body, address);
    body
}

/// Checks a successful registerHat body: a non-empty `message` and the address.
pub fn assert_registration_answer(body: &Value, address: &str) {
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| !m.trim().is_empty()),
        "no message: {body}"
    );
    assert_eq!(body["hatAddress"], address, "{body}");
}

/// Every HAT `GET /api/admin/hats?cluster=` lists for `cluster`, following cursors with
/// pages of `limit`.
pub async fn list_hats(admin: &str, cluster: &str, limit: u32) -> Vec<Value> {
    let dex = Dex::new();
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1_000 {
        let mut path = format!(
            "/api/admin/hats?cluster={}&limit={limit}",
            url_encode(cluster)
        );
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={}", url_encode(c)));
        }
        let body = expect_json(dex.get(&path, Some(admin)).await, 200).await;
        let items = body["items"]
            .as_array()
            .unwrap_or_else(|| panic!("hats page without items: {body}"));
        assert!(
            items.len() <= limit as usize,
            "page larger than limit {limit}: {body}"
        );
        out.extend(items.iter().cloned());
        match body["cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
    panic!("the HAT listing of {cluster} did not end");
}

/// The entry `GET /api/admin/hats?cluster=` lists for `address`, if any.
pub async fn listed_hat(admin: &str, cluster: &str, address: &str) -> Option<Value> {
    list_hats(admin, cluster, 200)
        .await
        .into_iter()
        .find(|h| h["hatAddress"] == address)
}

/// Every admin-log entry with `subject`, oldest first (following cursors).
pub async fn subject_log(admin: &str, subject: &str) -> Vec<LogEntry> {
    let dex = Dex::new();
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1_000 {
        let mut path = format!("/api/admin/log?subject={}&limit=100", url_encode(subject));
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={}", url_encode(c)));
        }
        let body = expect_json(dex.get(&path, Some(admin)).await, 200).await;
        let items = body["items"]
            .as_array()
            .unwrap_or_else(|| panic!("log page without items: {body}"));
        for item in items {
            out.push(
                serde_json::from_value(item.clone())
                    .unwrap_or_else(|e| panic!("bad log entry ({e}): {item}")),
            );
        }
        match body["cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => {
                out.sort_by_key(|e: &LogEntry| e.seq);
                return out;
            }
        }
    }
    panic!("the log of {subject} did not end");
}

/// The admin log of HAT `address` (subject `hat:<address>`), oldest first.
pub async fn hat_history(admin: &str, address: &str) -> Vec<LogEntry> {
    subject_log(admin, &dex::hats::hat_subject(address)).await
}

/// Fails unless DEX stored nothing for `address`: it is not listed under `cluster` and its
/// log has no `hat.registered` entry.
pub async fn assert_not_registered(admin: &str, cluster: &str, address: &str) {
    let listed = listed_hat(admin, cluster, address).await;
    assert!(listed.is_none(), "{address} was stored: {listed:?}");
    let history = hat_history(admin, address).await;
    assert!(
        history.iter().all(|e| e.kind != "hat.registered"),
        "{address} has a hat.registered log entry: {history:#?}"
    );
}

/// `GET /api/hat/log` with `token` as `X-Auth-Token` (the HAT's own history).
pub async fn hat_log(token: Option<&str>) -> Response {
    Dex::new().get("/api/hat/log", token).await
}

/// `GET /api/hat/log` as the HAT of `token`, expecting 200; returns the body.
pub async fn hat_log_ok(token: &str) -> Value {
    let resp = hat_log(Some(token)).await;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    support::assert_clean(&text);
    assert_eq!(
        status,
        StatusCode::OK,
        "GET /api/hat/log refused a valid token: {text}"
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("hat log is not JSON ({e}): {text}"))
}

/// The platform credentials DEX keeps for `domain` in Secrets Manager
/// (`<DEX_SECRETS_PREFIX>clusters/<domain>`), read as the functions read them.
pub async fn stored_platform_credentials(domain: &str) -> Option<PlatformCredentials> {
    // Named as decisions §4 and the deployment define it, not through DEX's own helper.
    let name = format!("{}clusters/{domain}", support::config().secrets_prefix);
    support::secrets()
        .await
        .get_json::<PlatformCredentials>(&name)
        .await
        .unwrap_or_else(|e| panic!("reading secret {name}: {e}"))
}

/// Every table item with partition key `pk` (e.g. `CLUSTER#hubat.net`), each rendered as
/// `attribute name → Debug text of its value` so a test can search all attributes.
pub async fn table_items(pk: &str) -> Vec<HashMap<String, String>> {
    assert!(!pk.contains('\''), "pk {pk:?} must not contain a quote");
    let store = support::store().await;
    let statement = format!("SELECT * FROM \"{}\" WHERE \"pk\" = '{pk}'", store.table());
    let mut out = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let response = store
            .client()
            .execute_statement()
            .statement(&statement)
            .set_next_token(next.take())
            .send()
            .await
            .unwrap_or_else(|e| panic!("PartiQL {statement}: {e:?}"));
        for item in response.items() {
            out.push(
                item.iter()
                    .map(|(k, v)| (k.clone(), format!("{v:?}")))
                    .collect(),
            );
        }
        match response.next_token() {
            Some(t) => next = Some(t.to_owned()),
            None => return out,
        }
    }
}
