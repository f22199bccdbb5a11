//! End-to-end tests of the hardening of issue 8 §1, over real HTTP against the served
//! functions (DEX_TEST_URL), and, where a rule needs a deployment of its own (the last admin,
//! the bootstrap, an unreadable secret), against a private table and secret prefix through
//! `dexctl` and the domain crate on the same DynamoDB Local and moto.

use dex_tests::routes::{built_binary as binary, workspace_root};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dex::accounts::AccountStore;
use dex::accounts::{AccountChange, AccountService, Actor, NewAccount};
use dex::ports::{SecretStore, SystemClock, SystemRandom};
use dex_aws::dynamo::DynamoStore;
use dex_aws::dynamo::schema::ensure_table;
use dex_tests::gateway_event::response_json;
use dex_tests::hat_support::{CertifiedCluster, certify_cluster, register_hat, unique_domain};
use dex_tests::runtime_api::{self, FunctionProcess, RuntimeApi};
use dex_tests::support::{
    self, Dex, admin_token, assert_error, create_account, expect_json, url_encode,
};
use dex_tests::test_hat::{TestHat, TestHatCluster};
use serde_json::{Value, json};

// ---- helpers -----------------------------------------------------------------------------

fn hex_tag() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

/// A private deployment on the test stack's DynamoDB Local and moto: its own table and
/// secret prefix, so rules about "the only admin" can be tried without touching the
/// deployment every other test shares.
struct Private {
    table: String,
    prefix: String,
}

impl Private {
    fn new() -> Self {
        let tag = hex_tag();
        Self {
            table: format!("dex-hardening-{tag}"),
            prefix: format!("hardening-{tag}/"),
        }
    }

    /// Runs dexctl against this deployment, with the test stack's AWS_* endpoints, without
    /// the bootstrap admin's variables unless `envs` gives them.
    async fn dexctl(&self, args: &[&str], envs: &[(&str, &str)]) -> Output {
        let mut command = Command::new(binary("dexctl"));
        command
            .args(args)
            .env("DEX_TABLE", &self.table)
            .env("DEX_SECRETS_PREFIX", &self.prefix)
            .env_remove("DEX_LOCAL_ADMIN_USERNAME")
            .env_remove("DEX_LOCAL_ADMIN_PASSWORD");
        for (k, v) in envs {
            command.env(k, v);
        }
        tokio::task::spawn_blocking(move || command.output())
            .await
            .expect("dexctl thread")
            .expect("run dexctl")
    }

    async fn store(&self) -> DynamoStore {
        let shared = support::store().await;
        DynamoStore::new(
            shared.client().clone(),
            self.table.clone(),
            Arc::new(SystemClock),
            Arc::new(SystemRandom),
        )
    }

    async fn drop_table(&self) {
        let shared = support::store().await;
        let _ = shared
            .client()
            .delete_table()
            .table_name(&self.table)
            .send()
            .await;
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn account_json(admin: &str, id: &str) -> Value {
    expect_json(
        Dex::new()
            .get(&format!("/api/admin/accounts/{id}"), Some(admin))
            .await,
        200,
    )
    .await
}

fn is_enabled_admin(view: &Value) -> bool {
    view["disabled"] == false
        && view["roles"]
            .as_array()
            .is_some_and(|r| r.iter().any(|x| x == "admin"))
}

/// A test HAT cluster, a certified domain for it, and one registered HAT.
async fn registered_hat() -> (TestHatCluster, CertifiedCluster, TestHat) {
    let admin = admin_token().await;
    let hats = TestHatCluster::start().await;
    let (user, password) = hats.platform_credentials();
    let cluster = certify_cluster(&admin, &unique_domain(), (&user, &password)).await;
    let label = format!("alice.{}", cluster.domain);
    let hat = tokio::task::block_in_place(|| hats.add_hat(&label));
    expect_json(register_hat(hat.address(), None).await, 200).await;
    (hats, cluster, hat)
}

// ---- 1. admins and the admin role --------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_can_neither_demote_nor_disable_itself() {
    let dex = Dex::new();
    let admin = admin_token().await;
    let (id, username, password) = create_account(&admin, &["admin"]).await;
    let own = dex.token(&username, &password).await;
    let path = format!("/api/admin/accounts/{id}");
    for body in [
        json!({ "roles": [] }),
        json!({ "roles": ["marketplace"] }),
        json!({ "roles": [], "disabled": false }),
    ] {
        assert_error(dex.put_json(&path, Some(&own), &body).await, 409, "own").await;
    }
    assert_error(
        dex.put_json(&path, Some(&own), &json!({ "disabled": true }))
            .await,
        409,
        "own",
    )
    .await;
    assert!(is_enabled_admin(&account_json(&admin, &id).await));
    // Keeping the admin role while adding another is fine.
    let body = expect_json(
        dex.put_json(
            &path,
            Some(&own),
            &json!({ "roles": ["admin", "marketplace"] }),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(body["roles"], json!(["admin", "marketplace"]));
    // Another admin may demote it.
    let body = expect_json(
        dex.put_json(&path, Some(&admin), &json!({ "roles": [] }))
            .await,
        200,
    )
    .await;
    assert_eq!(body["roles"], json!([]));
}

/// Two admins demoting each other at the same moment: the write of each is conditioned on the
/// acting admin being unchanged, so at most one succeeds and one of them stays an admin.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_admins_demoting_each_other_at_once_never_both_succeed() {
    let admin = admin_token().await;
    let mut rounds = Vec::new();
    for _ in 0..6 {
        let a = create_account(&admin, &["admin"]).await;
        let b = create_account(&admin, &["admin"]).await;
        let dex = Dex::new();
        let ta = dex.token(&a.1, &a.2).await;
        let tb = dex.token(&b.1, &b.2).await;
        rounds.push((a.0, ta, b.0, tb));
    }
    let results = futures::future::join_all(rounds.iter().map(|(a, ta, b, tb)| async move {
        let dex = Dex::new();
        let demote = |token: &str, id: &str| {
            let dex = dex.clone();
            let (token, id) = (token.to_owned(), id.to_owned());
            async move {
                dex.put_json(
                    &format!("/api/admin/accounts/{id}"),
                    Some(&token),
                    &json!({ "roles": [] }),
                )
                .await
                .status()
                .as_u16()
            }
        };
        tokio::join!(demote(ta, b), demote(tb, a))
    }))
    .await;
    for ((a, _, b, _), (a_demoted_b, b_demoted_a)) in rounds.iter().zip(results) {
        let mut statuses = [a_demoted_b, b_demoted_a];
        statuses.sort();
        assert_eq!(
            statuses[0], 200,
            "neither demotion went through: {statuses:?}"
        );
        assert!(
            [403, 409].contains(&statuses[1]),
            "both admins demoted each other: {a_demoted_b} / {b_demoted_a}"
        );
        let survivors = [
            is_enabled_admin(&account_json(&admin, a).await),
            is_enabled_admin(&account_json(&admin, b).await),
        ];
        assert_eq!(
            survivors.iter().filter(|s| **s).count(),
            1,
            "{a_demoted_b} / {b_demoted_a}: {survivors:?}"
        );
    }
}

/// On a deployment of its own: the last enabled admin can neither lose the role nor be
/// disabled, also when the two last admins are demoted concurrently (by the operator, who
/// is not an account, so each change is guarded by the other admin's item).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_last_enabled_admin_keeps_the_role_even_under_races() {
    let private = Private::new();
    let store = private.store().await;
    ensure_table(store.client(), &private.table).await.unwrap();
    let app = support::app().await;
    let service = AccountService {
        store: &store,
        tokens: app.tokens(),
        clock: &SystemClock,
        random: &SystemRandom,
    };
    let admin = |name: &str| NewAccount {
        username: format!("{name}-{}@dex.test", hex_tag()),
        password: "a long enough password".into(),
        roles: vec!["admin".into()],
    };
    let demote = || AccountChange {
        roles: Some(vec![]),
        disabled: None,
    };
    let disable = || AccountChange {
        roles: None,
        disabled: Some(true),
    };
    let mut last = service
        .create(&Actor::Operator, admin("first"))
        .await
        .unwrap();
    for round in 0..5 {
        let other = service
            .create(&Actor::Operator, admin("other"))
            .await
            .unwrap();
        let (x, y) = tokio::join!(
            service.update(&Actor::Operator, &last.account_id, demote()),
            service.update(&Actor::Operator, &other.account_id, demote()),
        );
        assert!(
            x.is_ok() != y.is_ok(),
            "round {round}: exactly one demotion must succeed: {:?} / {:?}",
            x.as_ref().err(),
            y.as_ref().err()
        );
        let refused = x.as_ref().err().or(y.as_ref().err()).unwrap();
        assert_eq!(refused.status(), 409, "{refused}");
        last = if x.is_ok() { other } else { last };
        let now = store.get_account(&last.account_id).await.unwrap().unwrap();
        assert!(now.has(&dex::roles::Role::Admin) && !now.disabled);
    }
    for change in [demote(), disable()] {
        let err = service
            .update(&Actor::Operator, &last.account_id, change)
            .await
            .unwrap_err();
        assert_eq!(err.status(), 409);
        assert!(err.to_string().contains("last enabled admin"), "{err}");
    }
    // With a second admin the first may go.
    service
        .create(&Actor::Operator, admin("second"))
        .await
        .unwrap();
    service
        .update(&Actor::Operator, &last.account_id, disable())
        .await
        .unwrap();
    private.drop_table().await;
}

// ---- 2. the bootstrap --------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensure_admin_has_no_defaults_and_re_enables_only_when_asked() {
    let private = Private::new();
    let init = private.dexctl(&["init"], &[]).await;
    assert!(init.status.success(), "{}", text(&init));

    // Neither variable set: nothing is created with the README's local credentials.
    let out = private.dexctl(&["ensure-admin"], &[]).await;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("DEX_LOCAL_ADMIN_USERNAME"),
        "{}",
        text(&out)
    );
    let username = format!("ops-{}@example.com", hex_tag());
    let only_name = [("DEX_LOCAL_ADMIN_USERNAME", username.as_str())];
    let out = private.dexctl(&["ensure-admin"], &only_name).await;
    assert!(
        text(&out).contains("DEX_LOCAL_ADMIN_PASSWORD"),
        "{}",
        text(&out)
    );
    let store = private.store().await;
    assert!(
        store
            .find_account_by_username("admin@dex.local")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .find_account_by_username(&username)
            .await
            .unwrap()
            .is_none()
    );

    let vars = [
        ("DEX_LOCAL_ADMIN_USERNAME", username.as_str()),
        ("DEX_LOCAL_ADMIN_PASSWORD", "an operator's long password"),
    ];
    let out = private.dexctl(&["ensure-admin"], &vars).await;
    assert!(out.status.success(), "{}", text(&out));
    let ops = store
        .find_account_by_username(&username)
        .await
        .unwrap()
        .unwrap();
    assert!(ops.has(&dex::roles::Role::Admin));

    // A second admin, so the first may be disabled; then ensure-admin leaves it disabled.
    let second = [("SECOND_PASSWORD", "the second admin's password")];
    let out = private
        .dexctl(
            &[
                "accounts",
                "create",
                "--username",
                "second@example.com",
                "--role",
                "admin",
                "--password-env",
                "SECOND_PASSWORD",
            ],
            &second,
        )
        .await;
    assert!(out.status.success(), "{}", text(&out));
    let out = private
        .dexctl(&["accounts", "update", &ops.account_id, "--disable"], &[])
        .await;
    assert!(out.status.success(), "{}", text(&out));
    let out = private.dexctl(&["ensure-admin"], &vars).await;
    assert!(!out.status.success(), "re-enabled silently: {}", text(&out));
    assert!(text(&out).contains("--enable"), "{}", text(&out));
    assert!(
        store
            .get_account(&ops.account_id)
            .await
            .unwrap()
            .unwrap()
            .disabled
    );
    let out = private.dexctl(&["ensure-admin", "--enable"], &vars).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !store
            .get_account(&ops.account_id)
            .await
            .unwrap()
            .unwrap()
            .disabled
    );

    // The operator cannot demote the last enabled admin either.
    let out = private
        .dexctl(&["accounts", "update", &ops.account_id, "--disable"], &[])
        .await;
    assert!(out.status.success(), "{}", text(&out));
    let second = store
        .find_account_by_username("second@example.com")
        .await
        .unwrap()
        .unwrap();
    let out = private
        .dexctl(
            &["accounts", "update", &second.account_id, "--no-roles"],
            &[],
        )
        .await;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("last enabled admin"), "{}", text(&out));
    private.drop_table().await;
}

/// A signing-key secret that holds something DEX cannot read is an error for `dexctl init`,
/// never "absent": it is left as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_never_overwrites_a_secret_it_cannot_read() {
    let private = Private::new();
    let secrets = support::secrets().await;
    let name = format!("{}signing-keys", private.prefix);
    // A JSON string: valid JSON, but not a key set.
    let odd = "not DEX's key set";
    secrets.put_json(&name, &odd).await.unwrap();
    let out = private.dexctl(&["init"], &[]).await;
    assert!(!out.status.success(), "init overwrote it: {}", text(&out));
    assert!(text(&out).contains("cannot read"), "{}", text(&out));
    assert!(!text(&out).contains(odd), "{}", text(&out));
    let kept: Option<String> = secrets.get_json(&name).await.unwrap();
    assert_eq!(kept.as_deref(), Some(odd));
    private.drop_table().await;
}

// ---- 3. forged HAT issuers with many labels ----------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuers_and_addresses_with_many_labels_are_refused_before_any_read() {
    let (_hats, cluster, hat) = registered_hat().await;
    let dex = Dex::new();
    let port = hat.address().rsplit(':').next().unwrap().to_owned();
    for labels in [9, 60, 101, 126] {
        let host = format!("{}{}", "a.".repeat(labels - 3), cluster.domain);
        let iss = format!("{host}:{port}");
        let token = hat.token_builder(&support::public_url()).iss(&iss).build();
        let report = dex
            .post_json("/stats/report", Some(&token), &json!([]))
            .await;
        assert_error(report, 401, "not a HAT address").await;
        let log = dex.get("/api/hat/log", Some(&token)).await;
        assert_error(log, 401, "not a HAT address").await;
        if host.len() <= 253 {
            assert_error(register_hat(&iss, None).await, 400, "hatAddress").await;
        }
    }
}

// ---- 4. key limits, overflow, no-store, local-only settings ------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_key_parts_are_400_never_500() {
    let dex = Dex::new();
    let admin = admin_token().await;
    let long = "a".repeat(3000);
    assert_error(dex.login(&long, "whatever password").await, 400, "username").await;
    assert_error(
        dex.get(&format!("/api/admin/accounts/{long}"), Some(&admin))
            .await,
        400,
        "account id",
    )
    .await;
    assert_error(
        dex.put_json(
            &format!("/api/admin/accounts/{long}"),
            Some(&admin),
            &json!({ "disabled": true }),
        )
        .await,
        400,
        "account id",
    )
    .await;
    for query in ["subject", "actor", "kind"] {
        assert_error(
            dex.get(&format!("/api/admin/log?{query}={long}"), Some(&admin))
                .await,
            400,
            query,
        )
        .await;
    }
    assert_error(
        dex.get(&format!("/api/admin/hats?cluster={long}"), Some(&admin))
            .await,
        400,
        "cluster",
    )
    .await;
    assert_error(
        dex.delete(&format!("/api/admin/clusters/{long}"), Some(&admin))
            .await,
        400,
        "domain",
    )
    .await;
    // A cursor of the right shape whose sort key is far beyond DynamoDB's limit.
    let subject = format!("account:{}", hex_tag());
    // dex-aws's cursor encoding (base64url JSON of the last evaluated key).
    let cursor = URL_SAFE_NO_PAD.encode(
        json!({ "key": { "pk": format!("LOG#{subject}"), "sk": "E#".to_owned() + &long } })
            .to_string(),
    );
    assert_error(
        dex.get(
            &format!("/api/admin/log?subject={subject}&cursor={cursor}"),
            Some(&admin),
        )
        .await,
        400,
        "cursor",
    )
    .await;
    let tree = json!([{ "namespace": long, "description": "too long a name" }]);
    assert_error(
        dex.post_json("/stats/available-data/descriptions", Some(&admin), &tree)
            .await,
        400,
        "",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unbounded_data_debit_key_is_skipped_and_the_rest_counts() {
    let (_hats, _cluster, hat) = registered_hat().await;
    let dex = Dex::new();
    let token = hat.dex_token(&support::public_url());
    let now = chrono::Utc::now().timestamp_millis();
    let debit = |key: String, op: &str| {
        json!({"dataDebit": {"dataDebitKey": key, "dateCreated": "2021-03-10T13:35:10+0000",
            "permissions": [], "active": true}, "operation": op, "time": now, "user": {},
            "logEntry": op, "statsType": "datadebit"})
    };
    let report = json!([
        debit("k".repeat(5000), "Create"),
        debit(format!("offer-{}", hex_tag()), "Create"),
        debit(format!("offer-{}", hex_tag()), &"Create".repeat(40)),
    ]);
    let body = expect_json(
        dex.post_json("/stats/report", Some(&token), &report).await,
        200,
    )
    .await;
    assert_eq!(body["accepted"], 1, "{body}");
    let skipped: Vec<i64> = body["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["index"].as_i64().unwrap())
        .collect();
    assert_eq!(skipped, [0, 2], "{body}");
    assert!(
        body["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("dataDebitKey")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_iat_that_would_overflow_is_401() {
    let (_hats, _cluster, hat) = registered_hat().await;
    let dex = Dex::new();
    for iat in [i64::MIN, i64::MIN + 1] {
        let exp = chrono::Utc::now().timestamp() + 3600;
        let token = hat
            .token_builder(&support::public_url())
            .exp(exp)
            .iat(iat)
            .build();
        assert_error(dex.get("/api/hat/log", Some(&token)).await, 401, "3 days").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_answers_are_never_cached() {
    let dex = Dex::new();
    let (username, password) = support::admin_credentials();
    let resp = dex.login(&username, &password).await;
    assert_eq!(resp.status(), 200);
    let cache = resp
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(cache, "no-store");
    let body: Value = resp.json().await.unwrap();
    assert!(body["accessToken"].is_string());
}

/// A function started with the local-only HAT settings but without DEX_LOCAL_STACK refuses to
/// start, naming them; with it, it starts and logs each one as a warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_hat_settings_stop_a_function_outside_a_local_stack() {
    for (var, value) in [("DEX_HAT_RESOLVE", "127.0.0.1"), ("DEX_HAT_SCHEME", "http")] {
        let mut command = Command::new(binary("jwks"));
        command
            .env_remove("DEX_LOCAL_STACK")
            .env_remove("DEX_HAT_RESOLVE")
            .env_remove("DEX_HAT_SCHEME")
            .env(var, value)
            .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9");
        let out = tokio::task::spawn_blocking(move || command.output())
            .await
            .unwrap()
            .unwrap();
        assert!(!out.status.success());
        let said = text(&out);
        assert!(
            said.contains(var) && said.contains("DEX_LOCAL_STACK"),
            "{said}"
        );
    }
    // With the switch: past the configuration, and loud about it.
    let (mut function, log) = Function::start(
        "jwks",
        &[
            ("DEX_LOCAL_STACK", "1"),
            ("DEX_HAT_RESOLVE", "127.0.0.1"),
            ("DEX_HAT_SCHEME", "http"),
        ],
    )
    .await;
    function.process.kill().unwrap();
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(said.contains("LOCAL STACK SETTING"), "{said}");
    assert!(
        said.contains("DEX_HAT_RESOLVE=127.0.0.1") && said.contains("DEX_HAT_SCHEME=http"),
        "{said}"
    );
}

/// Proxy variables in the environment must not carry HAT calls past the address guard. The
/// variables are set for a child process (this binary, running the ignored test below), and
/// a listener here counts what reaches the "proxy".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hat_calls_ignore_proxy_variables() {
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
    let proxied = Arc::new(Mutex::new(0usize));
    let count = proxied.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = proxy.accept().await {
            *count.lock().unwrap() += 1;
            drop(socket);
        }
    });
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args(["--exact", "proxied_child", "--ignored", "--nocapture"]);
    for var in ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "ALL_PROXY"] {
        command.env(var, &proxy_url);
    }
    command.env_remove("NO_PROXY").env_remove("no_proxy");
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("1 passed"), "{}", text(&out));
    // Exactly the child's control request reached the proxy; DEX's HAT client did not.
    assert_eq!(*proxied.lock().unwrap(), 1, "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by hat_calls_ignore_proxy_variables, with proxy variables set"]
async fn proxied_child() {
    assert!(
        std::env::var("HTTP_PROXY").is_ok(),
        "run by hat_calls_ignore_proxy_variables"
    );
    let hats = TestHatCluster::start().await;
    let hat = tokio::task::block_in_place(|| hats.add_hat(&format!("p.{}", unique_domain())));
    // A client that honours the variables goes to the proxy (which hangs up).
    let control = reqwest::Client::new()
        .get(format!("http://{}/publickey", hat.address()))
        .send()
        .await;
    assert!(control.is_err(), "the proxy variables had no effect");
    let config = dex::config::Config::from_lookup(|k| match k {
        "DEX_PUBLIC_URL" => Some("http://127.0.0.1:1".into()),
        "DEX_HAT_SCHEME" => Some("http".into()),
        "DEX_HAT_RESOLVE" => Some("127.0.0.1".into()),
        "DEX_LOCAL_STACK" => Some("1".into()),
        _ => None,
    })
    .unwrap();
    let client = dex_aws::hat_http::HatClient::new(&config).unwrap();
    let address = dex::hats::address::HatAddress::parse(hat.address(), true).unwrap();
    let pem = client.fetch_public_key(&address).await.unwrap();
    assert_eq!(pem, hat.public_key_pem());
}

// ---- 5. logging at trace never shows credentials ----------------------------------------

/// One function binary under the local Lambda Runtime API of `dex_tests::runtime_api`, with
/// the stack's environment and `overrides`, past its init (its first poll); killed when
/// dropped. Answers it with the file its output goes to.
struct Function {
    api: RuntimeApi,
    process: FunctionProcess,
}

impl Function {
    async fn start(name: &str, overrides: &[(&str, &str)]) -> (Self, std::path::PathBuf) {
        let started =
            runtime_api::start_function(&binary(name), name, overrides, Duration::from_secs(60))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        let log = started.process.log.clone();
        let function = Self {
            api: started.api,
            process: started.process,
        };
        (function, log)
    }
}

/// `access-token` at `AWS_LAMBDA_LOG_LEVEL=trace` (the most a template could allow) answers a
/// login without its log showing the password or the token: the runtime's raw-event dump
/// and the SDK's request dumps stay off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_at_trace_level_never_logs_credentials() {
    let admin = admin_token().await;
    let (_, username, password) = create_account(&admin, &[]).await;
    let mut event: Value = serde_json::from_str(
        &std::fs::read_to_string(workspace_root().join("events/access-token.json")).unwrap(),
    )
    .unwrap();
    event["headers"]["username"] = json!(url_encode(&username));
    event["headers"]["password"] = json!(url_encode(&password));
    let (mut function, log) = Function::start(
        "access-token",
        &[("AWS_LAMBDA_LOG_LEVEL", "TRACE"), ("RUST_LOG", "trace")],
    )
    .await;
    let answer = function
        .api
        .invoke(
            &mut function.process,
            bytes::Bytes::from(event.to_string()),
            Duration::from_secs(60),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .response();
    // The answer is posted when the handler is done; what it logs after is in by then, or
    // a moment later.
    tokio::time::sleep(Duration::from_millis(300)).await;
    function.process.kill().unwrap();
    let log = std::fs::read_to_string(&log).unwrap();
    assert_eq!(answer["statusCode"], 200, "{answer}");
    let body = response_json(&answer).expect("a JSON body");
    assert_eq!(answer["headers"]["cache-control"], "no-store", "{answer}");
    let token = body["accessToken"].as_str().unwrap();
    assert!(
        log.contains("\"request\""),
        "the request line is missing:\n{log}"
    );
    for secret in [password.as_str(), &url_encode(&password), token] {
        assert!(!log.contains(secret), "the log shows a credential:\n{log}");
    }
    assert!(!log.contains("raw JSON event"), "{log}");
}
