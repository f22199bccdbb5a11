//! init-probe: a DEX function's init (`web::init_app`, then `web::serve`), step by step, each
//! step stamped with the wall clock, so `make bench` can say where init goes (issue 8 §2).
//!
//! The bench spawns it like a function (same environment, its own Runtime API) and reads the
//! stamps from the file named by `DEX_BENCH_PROBE_OUT`: the init steps, in the order
//! `web::init_app` runs them, then what its background task does (timed in the foreground
//! here), then a few calls that are not part of init but show what one of its
//! steps is made of, then (on the first event) what the first Secrets Manager and DynamoDB
//! requests cost. Its answer is a fixed 200.

use std::time::{SystemTime, UNIX_EPOCH};

use dex::auth::keys::{PublicKeyRing, PublicKeySet};
use dex_aws::hat_http::HatClient;
use dex_lambda::App;
use dex_lambda::app::Needs;
use dex_lambda::web;

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// The CPU time all of this process's threads have used so far, in ns (`schedstat`: what
/// the machine's load does not inflate, unlike the wall clock).
fn cpu_ns() -> u128 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u128>().ok())
        .sum()
}

/// Stamps, written as `{"init": [[step, wall ns], ...], "init:cpu": [[step, cpu ns], ...],
/// "extra": ..., "first": ...}`.
#[derive(Default)]
struct Stamps {
    groups: Vec<(String, Vec<(String, u128)>)>,
}

impl Stamps {
    fn mark(&mut self, group: &'static str, step: &str) {
        let at = now_ns();
        let cpu = cpu_ns();
        // `perf stat` of runs that stop after 1, 2, ... steps gives each step's CPU time
        // exactly (schedstat only moves on scheduler ticks).
        let steps = self.groups.first().map_or(0, |(_, s)| s.len()) + 1;
        if group == "init"
            && std::env::var("DEX_BENCH_PROBE_EXIT_AFTER").is_ok_and(|n| n == steps.to_string())
        {
            std::process::exit(0);
        }
        for (group, value) in [(group.to_owned(), at), (format!("{group}:cpu"), cpu)] {
            match self.groups.iter_mut().find(|(g, _)| *g == group) {
                Some((_, steps)) => steps.push((step.to_owned(), value)),
                None => self.groups.push((group, vec![(step.to_owned(), value)])),
            }
        }
    }

    fn write(&self) {
        let Ok(path) = std::env::var("DEX_BENCH_PROBE_OUT") else {
            return;
        };
        let json: serde_json::Map<String, serde_json::Value> = self
            .groups
            .iter()
            .map(|(g, steps)| (g.clone(), serde_json::json!(steps)))
            .collect();
        if let Err(e) = std::fs::write(&path, serde_json::Value::Object(json).to_string()) {
            eprintln!("init-probe: {path}: {e}");
        }
    }
}

fn main() {
    let mut stamps = Stamps::default();
    stamps.mark("init", "process start → main");
    // What #[tokio::main] builds.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    stamps.mark("init", "tokio multi-thread runtime");
    runtime.block_on(probe(stamps));
}

async fn probe(mut stamps: Stamps) {
    // web::init_app = init_logging + App::config_from_env, then a background task for
    // App::on_aws (sdk_config + aws_clients + with_clients) + App::warm, as an admin
    // function runs it (TABLE | SIGNING_KEYS). The probe runs the same steps in the
    // foreground, one by one, and stamps the point where init_app returns.
    web::init_logging();
    stamps.mark(
        "init",
        "web::init_logging (tracing JSON subscriber, EnvFilter)",
    );
    let config = App::config_from_env().expect("configuration");
    stamps.mark("init", "App::config_from_env (Config::from_env)");
    stamps.mark(
        "init",
        "web::init_app returns here (the rest runs in its background task)",
    );

    // What the background task does, timed here in the foreground.
    stamps.mark("background", "start");
    let sdk = dex_aws::sdk_config().await;
    stamps.mark(
        "background",
        "dex_aws::sdk_config (region and credentials from the environment, no chains)",
    );
    let (dynamodb, secrets) = dex_aws::aws_clients().await;
    stamps.mark(
        "background",
        "dex_aws::aws_clients (the same again, and both clients: the TLS roots)",
    );
    let app: &'static App = Box::leak(Box::new(App::with_clients(
        config.clone(),
        dynamodb.clone(),
        secrets.clone(),
    )));
    stamps.mark(
        "background",
        "App::with_clients (store, signing keys, verifier; HAT client lazy)",
    );
    app.warm(Needs::TABLE.and(Needs::SIGNING_KEYS));
    stamps.mark(
        "background",
        "App::warm (spawns the DynamoDB and signing-key warm-ups, awaits neither)",
    );
    drop(sdk);

    // Not part of init: what it no longer does, and what the warm-ups are made of.
    stamps.mark("extra", "start");
    let _ = HatClient::new(&config).expect("HatClient::new");
    stamps.mark(
        "extra",
        "HatClient::new again (reqwest + rustls platform verifier)",
    );
    let _ = rustls_native_certs::load_native_certs();
    stamps.mark(
        "extra",
        "rustls_native_certs::load_native_certs (read + PEM-decode the system roots)",
    );
    let _ = aws_config::load_from_env().await;
    stamps.mark(
        "extra",
        "aws_config::load_from_env (the provider chains init used to build)",
    );
    stamps.write();

    let stamps = tokio::sync::Mutex::new(stamps);
    let first_done = std::sync::atomic::AtomicBool::new(false);
    let secret = config.public_keys_secret();
    let table = config.table.clone();
    let result = web::serve(web::DEFAULT_BODY_LIMIT, |_request| {
        let (stamps, first_done) = (&stamps, &first_done);
        let (secrets, dynamodb, secret, table) = (&secrets, &dynamodb, &secret, &table);
        async move {
            if !first_done.swap(true, std::sync::atomic::Ordering::SeqCst) {
                first_request(
                    app,
                    secrets,
                    dynamodb,
                    secret,
                    table,
                    &mut *stamps.lock().await,
                )
                .await;
            }
            Ok(web::json(
                web::StatusCode::OK,
                &serde_json::json!({ "probe": true }),
            ))
        }
    })
    .await;
    if let Err(e) = result {
        eprintln!("init-probe: {e}");
    }
}

/// What the first event of `jwks` does (`PublicKeys::ring`: a GetSecretValue, then parsing
/// the key set), and the same parts again on warm connections, plus a first DynamoDB request.
async fn first_request(
    app: &App,
    secrets: &aws_sdk_secretsmanager::Client,
    dynamodb: &aws_sdk_dynamodb::Client,
    secret: &str,
    table: &str,
    stamps: &mut Stamps,
) {
    stamps.mark("first", "start");
    let _ = app.tokens().published().await;
    stamps.mark(
        "first",
        "PublicKeys::ring, first (awaits the warm-up's GetSecretValue if still in flight)",
    );
    let value = secrets.get_secret_value().secret_id(secret).send().await;
    stamps.mark("first", "GetSecretValue again (warm connection)");
    if let Some(set) = value
        .ok()
        .and_then(|v| v.secret_string().map(str::to_owned))
        .and_then(|t| serde_json::from_str::<PublicKeySet>(&t).ok())
    {
        stamps.mark("first", "start parse");
        let _ = PublicKeyRing::load(&set);
        stamps.mark("first", "PublicKeyRing::load (parse the key set)");
    }
    let key = aws_sdk_dynamodb::types::AttributeValue::S("probe".into());
    let get = || {
        dynamodb
            .get_item()
            .table_name(table)
            .key("pk", key.clone())
            .key("sk", key.clone())
            .send()
    };
    stamps.mark("first", "start DynamoDB");
    let _ = get().await;
    stamps.mark(
        "first",
        "GetItem, first (on the connection the warm-up opened)",
    );
    let _ = get().await;
    stamps.mark("first", "GetItem again (warm connection)");
    stamps.write();
}
