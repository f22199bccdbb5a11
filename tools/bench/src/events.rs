//! The events the bench sends: API Gateway HTTP API (v2) payloads, from `events/<function>.json`
//! or built from the route table, and the warm benchmark cases.

use std::collections::BTreeMap;
use std::path::Path;

use dex_tests::support::url_encode;
use serde_json::{Value, json};

pub use dex_tests::gateway_event::{Event, response_body, response_header, response_json};

/// function name → the (method, path) standing for it in the route table (`routes.toml`):
/// its shortest canonical path (`/api/users/x`, not `/api/v3/users/x`).
pub fn routes(root: &Path) -> Result<BTreeMap<String, (String, String)>, String> {
    let text = std::fs::read_to_string(root.join("routes.toml"))
        .map_err(|e| format!("cannot read routes.toml: {e}"))?;
    let table = dex_tests::routes::Table::parse(&text)?;
    let mut routes: BTreeMap<String, (String, String)> = BTreeMap::new();
    for entry in table.routes() {
        match routes.get(&entry.function) {
            Some((_, known)) if known.len() <= entry.path.len() => {}
            _ => {
                routes.insert(entry.function, (entry.method, entry.path));
            }
        }
    }
    Ok(routes)
}

/// What the warm cases may use: the local admin's credentials and what earlier cases learnt.
#[derive(Debug, Default)]
pub struct Ctx {
    pub admin_username: String,
    pub admin_password: String,
    /// The DEX token the `access-token` case obtained (for the admin endpoints).
    pub admin_token: Option<String>,
    /// DEX's public URL (`DEX_PUBLIC_URL`): the `resource` of the HAT tokens the bench mints.
    pub public_url: String,
    /// Addresses of test HATs not registered yet: `register-hat` registers one per request.
    pub fresh_hats: Vec<String>,
    /// A registered test HAT and a HAT→DEX token it signed.
    pub hat: Option<(String, String)>,
    /// Another registered test HAT and its token: the first request of a HAT whose key a warm
    /// container has not cached yet.
    pub other_hat: Option<(String, String)>,
    /// A token naming the first registered HAT as `iss` but signed with another HAT's key.
    pub forged_hat_token: Option<String>,
    /// The running offer `offer-claim` claims, and registered HATs with their tokens: one per
    /// request (a HAT claims an offer once).
    pub claim_offer: Option<String>,
    pub claimers: Vec<(String, String)>,
    /// The approved plug `dataplug-connect` connects, and one registered HAT per request.
    pub plug: Option<String>,
    pub plug_hats: Vec<String>,
}

impl Ctx {
    pub fn from_env() -> Self {
        Self {
            admin_username: std::env::var("DEX_LOCAL_ADMIN_USERNAME")
                .unwrap_or_else(|_| "admin@dex.local".into()),
            admin_password: std::env::var("DEX_LOCAL_ADMIN_PASSWORD")
                .unwrap_or_else(|_| "dex-local-admin".into()),
            admin_token: None,
            public_url: public_url(),
            fresh_hats: Vec::new(),
            hat: None,
            other_hat: None,
            forged_hat_token: None,
            claim_offer: None,
            claimers: Vec::new(),
            plug: None,
            plug_hats: Vec::new(),
        }
    }

    fn claim(&self, i: usize) -> Result<Value, String> {
        let offer = self
            .claim_offer
            .as_deref()
            .ok_or("needs the exchange set-up (a running offer)")?;
        let (_, token) = self
            .claimers
            .get(i)
            .ok_or_else(|| format!("needs {} claiming HATs, has {}", i + 1, self.claimers.len()))?;
        Ok(crate::exchange::claim_event(offer, token))
    }

    fn connect(&self, i: usize) -> Result<Value, String> {
        let plug = self
            .plug
            .as_deref()
            .ok_or("needs the exchange set-up (an approved plug)")?;
        let hat = self.plug_hats.get(i).ok_or_else(|| {
            format!(
                "needs {} HATs to connect, has {}",
                i + 1,
                self.plug_hats.len()
            )
        })?;
        Ok(crate::exchange::connect_event(
            plug,
            hat,
            self.admin_token()?,
        ))
    }

    fn admin_token(&self) -> Result<&str, String> {
        self.admin_token
            .as_deref()
            .ok_or_else(|| "needs the admin token (run the access-token case first)".into())
    }

    fn fresh_hat(&self, i: usize) -> Result<&str, String> {
        self.fresh_hats.get(i).map(String::as_str).ok_or_else(|| {
            format!(
                "needs {} unregistered test HATs, has {}",
                i + 1,
                self.fresh_hats.len()
            )
        })
    }

    fn hat(&self) -> Result<&(String, String), String> {
        self.hat
            .as_ref()
            .ok_or_else(|| "needs a registered test HAT".into())
    }
}

/// `DEX_PUBLIC_URL` without a trailing slash (the local stack's default when unset).
pub fn public_url() -> String {
    std::env::var("DEX_PUBLIC_URL")
        .ok()
        .map(|u| u.trim().trim_end_matches('/').to_owned())
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "http://127.0.0.1:9000".into())
}

/// How a warm case builds its event: `Err(reason)` skips the case.
pub type EventFn = Box<dyn Fn(&Ctx) -> Result<Value, String>>;
/// The event of the i-th warm request (0-based), for cases whose requests differ.
pub type EachFn = Box<dyn Fn(&Ctx, usize) -> Result<Value, String>>;
/// Runs after the case's first (cold) response, to hand values to later cases.
pub type AfterFn = fn(&mut Ctx, &Value);
/// Checks a response beyond its status: `Err(what is wrong)`.
pub type CheckFn = fn(&Value) -> Result<(), String>;

/// When a warm case runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// In order, first.
    Basic,
    /// The statistics reads: after the ingestion benchmark (the small data set), and again
    /// after `--scale` seeding.
    StatsRead,
}

/// One warm benchmark: a function kept running and fed the same event `--requests` times.
pub struct WarmCase {
    /// Name in the table and for `--warm` (unique).
    pub name: String,
    /// The package under functions/ that serves it.
    pub function: String,
    /// The HTTP status every response must have (`None`: any 2xx).
    pub expect_status: Option<u16>,
    pub event: EventFn,
    /// The warm requests' events when they differ from the first one.
    pub each: Option<EachFn>,
    /// One more request after the warm ones, measured on its own (e.g. a HAT whose key the
    /// warm container has not cached).
    pub probe: Option<EventFn>,
    pub after: Option<AfterFn>,
    pub check: Option<CheckFn>,
    /// Needs the test HAT cluster (registered HATs, tokens).
    pub hats: bool,
    pub stage: Stage,
}

impl WarmCase {
    pub fn new(
        name: &str,
        function: &str,
        expect_status: u16,
        event: impl Fn(&Ctx) -> Result<Value, String> + 'static,
    ) -> Self {
        Self {
            name: name.into(),
            function: function.into(),
            expect_status: Some(expect_status),
            event: Box::new(event),
            each: None,
            probe: None,
            after: None,
            check: None,
            hats: false,
            stage: Stage::Basic,
        }
    }

    pub fn after(mut self, after: AfterFn) -> Self {
        self.after = Some(after);
        self
    }

    /// The i-th warm request's event (0-based); the first (cold) request sends `event`.
    pub fn each(mut self, each: impl Fn(&Ctx, usize) -> Result<Value, String> + 'static) -> Self {
        self.each = Some(Box::new(each));
        self
    }

    pub fn probe(mut self, probe: impl Fn(&Ctx) -> Result<Value, String> + 'static) -> Self {
        self.probe = Some(Box::new(probe));
        self
    }

    pub fn check(mut self, check: CheckFn) -> Self {
        self.check = Some(check);
        self
    }

    pub fn hats(mut self) -> Self {
        self.hats = true;
        self
    }

    pub fn stage(mut self, stage: Stage) -> Self {
        self.stage = stage;
        self
    }
}

/// `POST /api/users/registerHat {"hatAddress": ...}`, as dex-client sends it.
fn register_hat(address: &str) -> Value {
    Event::post("/api/users/registerHat")
        .header("accept", "application/json")
        .json_body(&json!({ "hatAddress": address }))
        .build()
}

/// `GET /api/hat/log` signed by a HAT.
fn hat_log(token: &str) -> Value {
    Event::get("/api/hat/log")
        .header("accept", "application/json")
        .header("x-auth-token", token)
        .build()
}

/// The id of the bench's `i`-th application, unique to this run (the table may be reused).
pub fn bench_app_id(i: usize) -> String {
    static RUN: std::sync::OnceLock<u128> = std::sync::OnceLock::new();
    let run = RUN.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    });
    format!("bench-{run}-{i}")
}

/// `POST /api/v3/applications` of a complete `Application` (docs/hats.md §5) as the admin.
fn create_app(token: &str, id: &str) -> Value {
    Event::post("/api/v3/applications")
        .header("accept", "application/json")
        .header("x-auth-token", token)
        .json_body(&app_document(id))
        .build()
}

/// A complete `Application` document (docs/hats.md §5), unpublished, of the `bench` developer.
pub fn app_document(id: &str) -> Value {
    json!({
        "id": id,
        "kind": {"kind": "App", "url": "https://bench.example.com"},
        "info": {
            "version": "1.0.0", "published": false, "name": "Bench", "headline": "A bench app",
            "description": {"text": "An application the bench registers"},
            "termsUrl": "https://bench.example.com/terms", "dataUsePurpose": "to measure",
            "supportContact": "bench@example.com", "dataPreview": [],
            "graphics": {"banner": {"normal": "https://bench.example.com/b.png"},
                         "logo": {"normal": "https://bench.example.com/l.png"}, "screenshots": []}
        },
        "developer": {"id": "bench", "name": "Bench", "url": "https://bench.example.com"},
        "permissions": {"rolesGranted": [{"role": "namespacewrite", "detail": "bench"}]},
        "setup": {"kind": "External", "validRedirectUris": []},
        "status": {"kind": "Internal", "compatibility": "1.0.0",
                   "versionReleaseDate": "2026-12-01T00:00:00.000Z"}
    })
}

fn expect_message(response: &Value, message: &str) -> Result<(), String> {
    let body = response_json(response).unwrap_or_default();
    match body.get("message").and_then(Value::as_str) {
        Some(m) if m == message => Ok(()),
        _ => Err(format!("expected message {message:?}: {body}")),
    }
}

fn expect_claimer_number(response: &Value) -> Result<(), String> {
    let body = response_json(response).unwrap_or_default();
    match body.get("claimerNumber").and_then(Value::as_u64) {
        Some(n) if n >= 1 => Ok(()),
        _ => Err(format!("expected a claimerNumber: {body}")),
    }
}

/// The warm benchmarks, run in this order (a case may use what an earlier one put in [`Ctx`]).
///
/// To add one, append a `WarmCase::new(name, function, expected status, |ctx| event)`; build
/// the event with [`Event`] (path, headers, `json_body`), or read a fixture with
/// [`event_file`]. Cases whose function has no release binary are skipped.
/// Without code changes, `--warm-event FUNCTION=FILE` adds a case from an event file.
pub fn warm_cases() -> Vec<WarmCase> {
    vec![
        WarmCase::new("access-token", "access-token", 200, |ctx| {
            Ok(Event::get("/api/users/access_token")
                .header("username", &url_encode(&ctx.admin_username))
                .header("password", &url_encode(&ctx.admin_password))
                .build())
        })
        .after(|ctx, response| {
            ctx.admin_token = response_header(response, "x-auth-token").or_else(|| {
                response_json(response).and_then(|b| {
                    b.get("accessToken")
                        .and_then(|t| t.as_str())
                        .map(str::to_owned)
                })
            });
        }),
        WarmCase::new("jwks", "jwks", 200, |_| {
            Ok(Event::get("/.well-known/jwks.json").build())
        }),
        WarmCase::new("publickey", "publickey", 200, |_| {
            Ok(Event::get("/publickey").build())
        }),
        WarmCase::new("admin-accounts-list", "admin-accounts-list", 200, |ctx| {
            Ok(Event::get("/api/admin/accounts")
                .header("x-auth-token", ctx.admin_token()?)
                .build())
        }),
        // HAT onboarding: every request registers a HAT DEX has never seen (its key fetched
        // from the test HAT cluster), then the same HAT again (idempotent).
        WarmCase::new("register-hat", "register-hat", 200, |ctx| {
            Ok(register_hat(ctx.fresh_hat(0)?))
        })
        .each(|ctx, i| Ok(register_hat(ctx.fresh_hat(i + 1)?)))
        .check(|r| expect_message(r, "HAT registered"))
        .hats(),
        WarmCase::new("register-hat-again", "register-hat", 200, |ctx| {
            Ok(register_hat(&ctx.hat()?.0))
        })
        .check(|r| expect_message(r, "HAT already registered with this key"))
        .hats(),
        // A HAT-verified request (DEX_HAT_KEY_CACHE_SECS at its default): the first request
        // reads the HAT's key, warm ones use the cached key; the probe is another HAT's first
        // request on the warm container.
        WarmCase::new("hat-log", "hat-log", 200, |ctx| Ok(hat_log(&ctx.hat()?.1)))
            .probe(|ctx| {
                ctx.other_hat
                    .as_ref()
                    .map(|(_, token)| hat_log(token))
                    .ok_or_else(|| "needs a second registered test HAT".into())
            })
            .hats(),
        // A flood of forged tokens naming a registered HAT (signed with another key): each is
        // refused (401), and the key is re-read at most once per HAT per 5 s
        // (`hats::verify::RefreshLimits`), not once per request.
        WarmCase::new("hat-log-forged", "hat-log", 401, |ctx| {
            ctx.forged_hat_token
                .as_deref()
                .map(hat_log)
                .ok_or_else(|| "needs the registered test HATs".into())
        })
        .hats(),
        // The applications registry: creating (a new id per request), then what HATs read
        // (one application, a v3 page, the bare list) and their owners' consents.
        WarmCase::new("apps-create", "apps-create", 201, |ctx| {
            Ok(create_app(ctx.admin_token()?, &bench_app_id(0)))
        })
        .each(|ctx, i| Ok(create_app(ctx.admin_token()?, &bench_app_id(i + 1)))),
        WarmCase::new("app-get", "app-get", 200, |_| {
            Ok(Event::get("/api/v3/applications/{applicationId}")
                .param("applicationId", &bench_app_id(0))
                .query("lang", "en")
                .build())
        }),
        WarmCase::new("apps-list-v3-page", "apps-list", 200, |_| {
            Ok(Event::get("/api/v3/applications")
                .query("unpublished", "true")
                .query("limit", "20")
                .build())
        }),
        WarmCase::new("apps-list", "apps-list", 200, |_| {
            Ok(Event::get("/api/v1.1/applications")
                .query("unpublished", "true")
                .build())
        }),
        WarmCase::new("register-consent", "register-consent", 200, |ctx| {
            Ok(Event::get("/api/users/register-consent/{applicationId}")
                .param("applicationId", &bench_app_id(0))
                .header("x-auth-token", &ctx.hat()?.1)
                .build())
        })
        .check(|r| expect_message(r, "consent recorded"))
        .hats(),
        // The exchange: each request a HAT claiming the running offer for the first time (DEX
        // logs in to the HAT, makes the offer's user and data debit), and an admin connecting
        // the approved plug to a HAT it was never connected to.
        WarmCase::new(crate::exchange::CLAIM, crate::exchange::CLAIM, 200, |ctx| {
            ctx.claim(0)
        })
        .each(|ctx, i| ctx.claim(i + 1))
        .check(expect_claimer_number)
        .hats(),
        WarmCase::new("dataplug-connect", "dataplug-connect", 200, |ctx| {
            ctx.connect(0)
        })
        .each(|ctx, i| ctx.connect(i + 1))
        .hats(),
        WarmCase::new("stats", "stats", 200, |_| Ok(Event::get("/stats").build()))
            .stage(Stage::StatsRead),
        WarmCase::new("stats-available-data", "stats-available-data", 200, |_| {
            Ok(Event::get("/stats/available-data").build())
        })
        .stage(Stage::StatsRead),
    ]
}

/// A case from an event file (`--warm-event FUNCTION=FILE`): expects any 2xx.
pub fn file_case(function: &str, file: &Path) -> Result<WarmCase, String> {
    let event = event_file(file)?;
    let stem = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or(function);
    let mut case = WarmCase::new(&format!("{function}:{stem}"), function, 200, move |_| {
        Ok(event.clone())
    });
    case.expect_status = None;
    Ok(case)
}

pub fn event_file(file: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))
}
