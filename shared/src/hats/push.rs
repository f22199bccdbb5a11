//! update-application (docs/decisions.md §10, §13 "update-application"): a legacy
//! `HatService` pushed to the selected HATs of a certified cluster (`POST /api/v2/application`
//! as the platform user, through `calls`), a bounded number at a time, for as long as the
//! request's time budget lasts; then a cursor continues where it stopped.
//!
//! HATs are taken in address order (the store's order of a cluster's HATs) and started in
//! that order, so "everything up to the last HAT started" is exactly what one call covered:
//! the cursor holds the store page being worked on and that address. Following `next` covers
//! every HAT of the cluster once. A HAT that fails or is slow costs only its own result (each
//! has its own deadline); nothing is written to DEX, and the HAT upserts the app by title, so
//! the same push again is harmless.

use std::collections::VecDeque;
use std::time::Duration;

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::Instant;

use super::address::HatAddress;
use super::calls::{Deadline, HatCalls};
use super::ports::{ClusterStore, HatHttp, HatStore};
use crate::error::{DexError, DexResult};
use crate::limits::{MAX_DOMAIN_LEN, push_if_long};
use crate::page::{Cursor, PageRequest};
use crate::ports::SecretStore;

/// HATs pushed to at once.
pub const PUSH_CONCURRENCY: usize = 16;
/// HATs read from the store at a time.
pub const HATS_PER_READ: i32 = 200;
/// Results of one call at most (the answer stays small; `next` continues).
pub const MAX_RESULTS: usize = 1000;
/// `hatFilter`: its length and its number of patterns.
pub const MAX_FILTER: usize = 8192;
pub const MAX_PATTERNS: usize = 1000;
/// The HatService's texts and URLs.
pub const MAX_TEXT: usize = 256;
pub const MAX_DESCRIPTION: usize = 4000;
pub const MAX_URL: usize = 2048;
/// Slack for a HAT's retries on top of its two calls' timeouts (login and the push).
const RETRY_SLACK: Duration = Duration::from_millis(500);
/// No request may run past this (the functions time out after 29 s).
const REQUEST_LIMIT: Duration = Duration::from_secs(crate::config::MAX_HAT_BUDGET_SECS);

/// The legacy app definition (docs/wire-contract.md §6.6): every field required. Other fields
/// are pushed as they came.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HatService {
    pub title: String,
    pub namespace: String,
    pub description: String,
    pub logo_url: String,
    pub url: String,
    pub auth_url: String,
    pub browser: bool,
    pub category: String,
    pub setup: bool,
    pub login_available: bool,
}

impl HatService {
    /// The body as the HATs get it, once it is a complete `HatService` within the limits.
    pub fn validate(body: &[u8]) -> DexResult<Value> {
        let value: Value = crate::limits::parse_json(body, "HatService")?;
        if !value.is_object() {
            return Err(DexError::bad_request(
                "the body must be a HatService object",
            ));
        }
        let service = HatService::deserialize(&value)
            .map_err(|e| DexError::invalid("incomplete HatService", vec![e.to_string()]))?;
        let mut details = Vec::new();
        for (field, text, max) in [
            ("title", &service.title, MAX_TEXT),
            ("namespace", &service.namespace, MAX_TEXT),
            ("category", &service.category, MAX_TEXT),
            ("description", &service.description, MAX_DESCRIPTION),
            ("logoUrl", &service.logo_url, MAX_URL),
            ("url", &service.url, MAX_URL),
            ("authUrl", &service.auth_url, MAX_URL),
        ] {
            push_if_long(&mut details, field, text, max);
        }
        if service.title.is_empty() {
            // HATs keep apps by title.
            details.push("title: at least one character".into());
        }
        if !details.is_empty() {
            return Err(DexError::invalid("invalid HatService", details));
        }
        Ok(value)
    }
}

/// `hatFilter`: comma-separated addresses or `*` patterns (`*` is any run of characters, dots
/// and a port included), spaces around commas ignored, compared without regard to case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HatFilter {
    patterns: Vec<String>,
}

impl HatFilter {
    /// `None` (no filter: every HAT of the cluster) when `text` is absent.
    pub fn parse(text: Option<&str>) -> DexResult<Option<Self>> {
        let Some(text) = text else {
            return Ok(None);
        };
        crate::limits::check_len("hatFilter", text, MAX_FILTER)?;
        let patterns: Vec<String> = text
            .split(',')
            .map(|p| p.trim().to_lowercase())
            .filter(|p| !p.is_empty())
            .collect();
        if patterns.is_empty() {
            return Err(DexError::invalid(
                "hatFilter selects nothing",
                vec!["hatFilter: HAT addresses or * patterns, separated by commas".into()],
            ));
        }
        if patterns.len() > MAX_PATTERNS {
            return Err(DexError::invalid(
                "hatFilter has too many patterns",
                vec![format!("hatFilter: at most {MAX_PATTERNS} patterns")],
            ));
        }
        Ok(Some(Self { patterns }))
    }

    pub fn matches(&self, address: &str) -> bool {
        let address = address.to_lowercase();
        self.patterns.iter().any(|p| glob(p, &address))
    }

    /// The patterns as one text (part of what a cursor is bound to).
    fn canonical(&self) -> String {
        self.patterns.join(",")
    }
}

/// `*`-only glob: the classic linear matcher that backtracks to the last star.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PushStatus {
    Updated,
    Failed,
}

/// One HAT's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushResult {
    pub hat: String,
    pub status: PushStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The answer of one call: the HATs it covered, in address order, and the cursor to go on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushAnswer {
    pub results: Vec<PushResult>,
    pub next: Option<String>,
}

/// Where a push goes on: bound to its request, the store page being worked on and the last
/// HAT started.
#[derive(Debug, Serialize, Deserialize)]
struct PushCursor {
    #[serde(rename = "b")]
    binding: String,
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    page: Option<String>,
    #[serde(rename = "a", default, skip_serializing_if = "Option::is_none")]
    after: Option<String>,
}

impl PushCursor {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).expect("cursor serialises"))
    }

    fn decode(text: &str, binding: &str) -> DexResult<Self> {
        crate::limits::check_len("cursor", text, crate::limits::MAX_CURSOR)?;
        let cursor: Self = URL_SAFE_NO_PAD
            .decode(text)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(|| {
                DexError::bad_request("cursor is not one update-application returned")
            })?;
        if cursor.binding != binding {
            return Err(DexError::bad_request(
                "cursor belongs to another push: continue with the same cluster, hatFilter and body",
            ));
        }
        Ok(cursor)
    }
}

/// What ties a cursor to its request: the cluster, the filter and the body.
fn binding(cluster: &str, filter: Option<&HatFilter>, service: &Value) -> String {
    // serde_json writes object keys sorted: the same body gives the same text.
    let text = format!(
        "{cluster}\n{}\n{service}",
        filter.map(HatFilter::canonical).unwrap_or_default()
    );
    hex::encode(&digest(&SHA256, text.as_bytes()).as_ref()[..16])
}

/// One update-application call.
#[derive(Debug, Clone, Default)]
pub struct PushRequest<'r> {
    pub cluster: Option<&'r str>,
    pub hat_filter: Option<&'r str>,
    pub cursor: Option<&'r str>,
    pub body: &'r [u8],
}

pub struct PushService<'a, S> {
    pub store: &'a S,
    /// Whether HAT addresses may carry a `:port` (only when HAT hosts are pinned, locally).
    pub allow_ports: bool,
    /// How long one call starts pushes (`DEX_PUSH_BUDGET_SECS`).
    pub budget: Duration,
}

impl<S: ClusterStore + HatStore> PushService<'_, S> {
    /// How long one HAT may take: its login and its push, with room for a retry; never so
    /// long that the call outlives the functions' timeout.
    pub fn per_hat(&self, hat_timeout: Duration) -> Duration {
        (hat_timeout * 2 + RETRY_SLACK).min(REQUEST_LIMIT.saturating_sub(self.budget))
    }

    /// Pushes the body to the next HATs of the selection (see the module's comment).
    pub async fn push<H: HatHttp, K: SecretStore>(
        &self,
        calls: &HatCalls<'_, H, K>,
        request: PushRequest<'_>,
    ) -> DexResult<PushAnswer> {
        // Everything is checked before any HAT is called.
        let service = HatService::validate(request.body)?;
        let cluster = request
            .cluster
            .map(|c| c.trim().to_lowercase())
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                DexError::invalid(
                    "cluster is required",
                    vec!["cluster: the domain of a certified cluster".into()],
                )
            })?;
        crate::limits::check_len("cluster", &cluster, MAX_DOMAIN_LEN)?;
        let filter = HatFilter::parse(request.hat_filter)?;
        let binding = binding(&cluster, filter.as_ref(), &service);
        let start = request
            .cursor
            .map(|c| PushCursor::decode(c, &binding))
            .transpose()?;
        let found = self
            .store
            .get_clusters(std::slice::from_ref(&cluster))
            .await?;
        let cluster = found
            .into_iter()
            .find(|c| c.domain == cluster && c.certified)
            .ok_or_else(|| {
                DexError::bad_request(format!("{cluster} is not a certified cluster"))
            })?;

        let stop_starting = Instant::now() + self.budget;
        let per_hat = self.per_hat(calls.timeout);
        let (mut page, mut after) = match start {
            Some(c) => (c.page, c.after),
            None => (None, None),
        };
        let (mut queue, mut following) = self
            .read(
                &cluster.domain,
                page.as_deref(),
                after.as_deref(),
                filter.as_ref(),
            )
            .await?;
        let mut results: Vec<(usize, PushResult)> = Vec::new();
        let mut started = 0;
        let mut in_flight = FuturesUnordered::new();
        loop {
            while in_flight.len() < PUSH_CONCURRENCY
                && started < MAX_RESULTS
                && Instant::now() < stop_starting
            {
                if let Some(address) = queue.pop_front() {
                    let index = started;
                    started += 1;
                    after = Some(address.clone());
                    let one = push_one(
                        calls,
                        address,
                        &cluster.secret_name,
                        &service,
                        self.allow_ports,
                        per_hat,
                    );
                    in_flight.push(async move { (index, one.await) });
                    continue;
                }
                match following.take() {
                    None => break,
                    Some(next_page) => {
                        page = Some(next_page);
                        (queue, following) = self
                            .read(
                                &cluster.domain,
                                page.as_deref(),
                                after.as_deref(),
                                filter.as_ref(),
                            )
                            .await?;
                    }
                }
            }
            match in_flight.next().await {
                Some(done) => results.push(done),
                None => break,
            }
        }
        results.sort_by_key(|(index, _)| *index);
        let done = queue.is_empty() && following.is_none();
        let next = (!done).then(|| {
            PushCursor {
                binding,
                page,
                after,
            }
            .encode()
        });
        Ok(PushAnswer {
            results: results.into_iter().map(|(_, r)| r).collect(),
            next,
        })
    }

    /// The selected addresses of one store page after `after`, and the store's next page.
    async fn read(
        &self,
        cluster: &str,
        page: Option<&str>,
        after: Option<&str>,
        filter: Option<&HatFilter>,
    ) -> DexResult<(VecDeque<String>, Option<String>)> {
        let found = self
            .store
            .list_hats(
                Some(cluster),
                PageRequest {
                    limit: HATS_PER_READ,
                    cursor: page.map(Cursor::new),
                },
            )
            .await?;
        let selected = found
            .items
            .into_iter()
            .map(|h| h.address)
            .filter(|a| after.is_none_or(|after| a.as_str() > after))
            .filter(|a| filter.is_none_or(|f| f.matches(a)))
            .collect();
        Ok((selected, found.cursor))
    }
}

/// One HAT: its own deadline, its outcome as a result (never an error of the call).
async fn push_one<H: HatHttp, K: SecretStore>(
    calls: &HatCalls<'_, H, K>,
    address: String,
    secret_name: &str,
    service: &Value,
    allow_ports: bool,
    per_hat: Duration,
) -> PushResult {
    let outcome = match HatAddress::parse(&address, allow_ports) {
        Err(e) => Err(format!("not a HAT address DEX can call: {e}")),
        Ok(parsed) => calls
            .session(&parsed, secret_name, Deadline::after(per_hat))
            .update_application(service)
            .await
            .map_err(|e| {
                if e.status() == 500 {
                    tracing::error!(hat = %address, error = %e, "update-application");
                }
                e.body().cause
            }),
    };
    match outcome {
        Ok(()) => PushResult {
            hat: address,
            status: PushStatus::Updated,
            reason: None,
        },
        Err(reason) => PushResult {
            hat: address,
            status: PushStatus::Failed,
            reason: Some(reason),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_match_any_run_of_characters() {
        assert!(glob("*", "a.hubat.net:9000"));
        assert!(glob("*.hubat.net", "a.b.hubat.net"));
        assert!(glob("a*", "a.hubat.net:40123"));
        assert!(glob("*hubat*", "x.hubat.net"));
        assert!(glob("a.hubat.net", "a.hubat.net"));
        assert!(!glob("a.hubat.net", "a.hubat.net:1"));
        assert!(!glob("*.hubat.net", "hubat.net"));
        assert!(glob("a**b", "ab"));
        assert!(!glob("a*b", "a.hubat.nex"));
    }

    #[test]
    fn filters_split_on_commas_and_ignore_spaces_and_case() {
        let f = HatFilter::parse(Some(" A.hubat.net , b* ,, "))
            .unwrap()
            .unwrap();
        assert!(f.matches("a.hubat.net"));
        assert!(f.matches("bob.hubat.net:1234"));
        assert!(!f.matches("c.hubat.net"));
        assert!(HatFilter::parse(None).unwrap().is_none());
        assert_eq!(HatFilter::parse(Some(" , ")).unwrap_err().status(), 400);
    }
}
