//! End-to-end tests of clusters, HAT registration and HAT token verification (docs/decisions.md §2,
//! §4, §5, §6; docs/hats.md §1, §2) over real HTTP against the functions `cargo lambda watch`
//! serves (DEX_TEST_URL), with DynamoDB Local and moto behind them, and a real test HAT
//! cluster (`TestHatCluster`) that DEX reaches through DEX_HAT_SCHEME=http and
//! DEX_HAT_RESOLVE=127.0.0.1.
//!
//! Every test certifies its own cluster domain with its own provisioner account and starts
//! its own HAT server, so the tests are independent and run concurrently.

use dex_tests::routes::{built_binary, workspace_root};
use std::process::{Command, Output};
use std::time::Duration;

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use dex::txlog::{GENESIS_HASH, LogEntry, verify_chain};
use dex_tests::hat_support::{
    CertifiedCluster, assert_not_registered, assert_registration_answer, certify_cluster,
    cluster_body, free_port, hat_history, hat_log, hat_log_ok, key_cache_expiry, list_hats,
    listed_hat, register_hat, register_hat_at, register_hat_ok, stored_platform_credentials,
    subject_log, table_items, unique_domain, unique_two_label_domain,
};
use dex_tests::support::{
    self, Dex, admin_token, assert_clean, assert_error, create_account, expect_json, url_encode,
};
use dex_tests::test_hat::{Alg, Behaviour, TestHat, TestHatCluster, tamper_payload};
use reqwest::Method;
use serde_json::{Value, json};

// ---- helpers -----------------------------------------------------------------------------

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// DEX's public URL: the `resource` HAT tokens must carry.
fn dex_public_url() -> String {
    support::public_url()
}

/// A running test HAT cluster and a cluster domain certified for it (with the HAT server's
/// platform credentials and a fresh provisioner account).
async fn setup() -> (TestHatCluster, CertifiedCluster, String) {
    let admin = admin_token().await;
    let hats = TestHatCluster::start().await;
    let (user, password) = hats.platform_credentials();
    let cluster = certify_cluster(&admin, &unique_domain(), (&user, &password)).await;
    (hats, cluster, admin)
}

/// Adds HAT `name.<domain>` to the test HAT server (key generation blocks, so off the
/// runtime's threads).
async fn add_hat(hats: &TestHatCluster, name: &str, domain: &str) -> TestHat {
    let label = format!("{name}.{domain}");
    tokio::task::block_in_place(|| hats.add_hat(&label))
}

/// Adds and registers a HAT, checking the 200 answer.
async fn registered_hat(hats: &TestHatCluster, name: &str, domain: &str) -> TestHat {
    let hat = add_hat(hats, name, domain).await;
    register_hat_ok(hat.address()).await;
    hat
}

/// SHA-256 (hex) of the DER inside an SPKI PEM: the key fingerprint DEX reports.
fn fingerprint(pem: &str) -> String {
    let b64: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::trim)
        .collect();
    let der = STANDARD.decode(b64).expect("PEM body is base64");
    hex::encode(digest(&SHA256, &der))
}

fn kinds(entries: &[LogEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.kind.as_str()).collect()
}

/// The requests the HAT received for `GET /publickey`.
fn publickey_fetches(hat: &TestHat) -> usize {
    hat.requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path == "/publickey")
        .count()
}

async fn account_roles(admin: &str, id: &str) -> Vec<String> {
    let body = expect_json(
        Dex::new()
            .get(&format!("/api/admin/accounts/{id}"), Some(admin))
            .await,
        200,
    )
    .await;
    body["roles"]
        .as_array()
        .unwrap_or_else(|| panic!("account without roles: {body}"))
        .iter()
        .map(|r| r.as_str().expect("roles are strings").to_owned())
        .collect()
}

/// The raw body of `GET /api/admin/clusters` and the entry for `domain` in it.
async fn clusters_list(admin: &str, domain: &str) -> (String, Option<Value>) {
    let resp = Dex::new().get("/api/admin/clusters", Some(admin)).await;
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    assert_clean(&text);
    assert_eq!(status, 200, "GET /api/admin/clusters: {text}");
    let body: Value = serde_json::from_str(&text).expect("clusters list is JSON");
    let items = body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("clusters list without items: {text}"));
    let entry = items.iter().find(|c| c["domain"] == domain).cloned();
    (text, entry)
}

/// The account id in a DEX token (`sub`).
fn sub_of(token: &str) -> String {
    let payload = token.split('.').nth(1).expect("JWT payload");
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url payload"),
    )
    .expect("JSON payload");
    claims["sub"].as_str().expect("sub").to_owned()
}

/// Checks a `GET /api/hat/log` 200 body: the HAT's own history, oldest first, starting with
/// its registration, as a valid hash chain.
fn assert_own_history(body: &Value, address: &str) -> Vec<LogEntry> {
    assert_eq!(body["hatAddress"], address, "{body}");
    let items: Vec<LogEntry> = serde_json::from_value(body["items"].clone())
        .unwrap_or_else(|e| panic!("hat log items are not log entries ({e}): {body}"));
    assert!(!items.is_empty(), "the HAT's history is empty: {body}");
    let first = &items[0];
    assert_eq!(first.kind, "hat.registered", "{body}");
    assert_eq!(first.seq, 1, "{body}");
    assert_eq!(first.prev_hash, GENESIS_HASH, "{body}");
    assert_eq!(first.prev_hash, "0".repeat(64));
    let subject = format!("hat:{address}");
    for e in &items {
        assert_eq!(
            e.subject, subject,
            "another subject's entry in the HAT's own history: {body}"
        );
    }
    assert_eq!(
        verify_chain(&items),
        Ok(()),
        "the HAT's history is not a valid hash chain: {body}"
    );
    items
}

/// A 401 with the JSON error shape.
async fn assert_unauthorized(token: Option<&str>, what: &str) {
    let resp = hat_log(token).await;
    let status = resp.status().as_u16();
    assert_eq!(
        status, 401,
        "{what}: GET /api/hat/log answered {status}, expected 401"
    );
    assert_error(resp, 401, "").await;
}

/// Runs dexctl with the test's environment (DEX_TABLE, DEX_SECRETS_PREFIX, AWS_*) plus
/// `envs`.
async fn dexctl(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut command = Command::new(built_binary("dexctl"));
    command.args(args).current_dir(workspace_root());
    for (k, v) in envs {
        command.env(k, v);
    }
    tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("dexctl thread")
        .unwrap_or_else(|e| panic!("cannot run dexctl: {e}"))
}

/// Runs dexctl, expects success and parses its JSON output.
async fn dexctl_json(args: &[&str], envs: &[(&str, &str)], forbidden: &str) -> Value {
    let out = dexctl(args, envs).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "dexctl {args:?} failed ({}): {stderr}{stdout}",
        out.status
    );
    assert!(
        !stdout.contains(forbidden) && !stderr.contains(forbidden),
        "dexctl {args:?} printed a secret: {stdout}{stderr}"
    );
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("dexctl {args:?} printed no JSON ({e}): {stdout}"))
}

// ---- clusters ----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certifying_a_cluster_grants_the_provisioner_role_and_keeps_the_password_in_secrets_manager()
 {
    let admin = admin_token().await;
    let admin_id = sub_of(&admin);
    let domain = unique_domain();
    let platform_password = format!("platform-{}-secret", uuid::Uuid::new_v4().simple());
    let (provisioner, _, _) = create_account(&admin, &[]).await;
    let dex = Dex::new();

    let resp = dex
        .post_json(
            "/api/admin/clusters",
            Some(&admin),
            &cluster_body(&domain, ("hatdex.org", &platform_password), &[&provisioner]),
        )
        .await;
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    assert_clean(&text);
    assert_eq!(status, 201, "certify {domain}: {text}");
    assert!(
        !text.contains(&platform_password),
        "the certification answer contains the platform password: {text}"
    );
    assert!(
        !text.to_lowercase().contains("password"),
        "the certification answer mentions a password: {text}"
    );
    let body: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(body["domain"], domain.as_str(), "{body}");
    assert_eq!(body["certified"], true, "{body}");
    assert_eq!(body["provisioners"], json!([provisioner]), "{body}");

    // The provisioner account now has the role for this cluster, and the change is logged.
    let roles = account_roles(&admin, &provisioner).await;
    assert!(
        roles.contains(&format!("provisioner:{domain}")),
        "roles of the provisioner: {roles:?}"
    );
    let account_log = subject_log(&admin, &format!("account:{provisioner}")).await;
    assert!(
        kinds(&account_log).contains(&"account.roles-changed"),
        "{account_log:#?}"
    );

    // The list shows it, never the password.
    let (raw, entry) = clusters_list(&admin, &domain).await;
    assert!(
        !raw.contains(&platform_password),
        "GET /api/admin/clusters contains a platform password"
    );
    let entry = entry.unwrap_or_else(|| panic!("{domain} not listed: {raw}"));
    assert_eq!(entry["certified"], true, "{entry}");
    assert_eq!(entry["provisioners"], json!([provisioner]), "{entry}");

    // The credentials are in Secrets Manager...
    let credentials = stored_platform_credentials(&domain)
        .await
        .unwrap_or_else(|| {
            panic!(
                "no secret {} in Secrets Manager",
                support::config().cluster_secret(&domain)
            )
        });
    assert_eq!(credentials.username, "hatdex.org");
    assert_eq!(credentials.password, platform_password);

    // ...and not in the table.
    let items = table_items(&format!("CLUSTER#{domain}")).await;
    assert!(!items.is_empty(), "no CLUSTER#{domain} item in the table");
    for item in &items {
        for (name, value) in item {
            assert!(
                !value.contains(&platform_password),
                "table attribute {name} of CLUSTER#{domain} holds the password"
            );
        }
    }

    // Logged, by the admin, without the password.
    let log = subject_log(&admin, &format!("cluster:{domain}")).await;
    assert_eq!(kinds(&log), ["cluster.certified"], "{log:#?}");
    assert_eq!(log[0].actor, format!("account:{admin_id}"), "{log:#?}");
    assert!(
        !serde_json::to_string(&log)
            .unwrap()
            .contains(&platform_password),
        "the log holds the password"
    );
    assert_eq!(verify_chain(&log), Ok(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certification_errors() {
    let admin = admin_token().await;
    let dex = Dex::new();
    let (provisioner, user, password) = create_account(&admin, &[]).await;
    let platform = ("hatdex.org", "platform-password");

    // No token → 401; a token without the admin role → 403.
    let domain = unique_domain();
    let body = cluster_body(&domain, platform, &[&provisioner]);
    assert_error(
        dex.post_json("/api/admin/clusters", None, &body).await,
        401,
        "",
    )
    .await;
    let not_admin = dex.token(&user, &password).await;
    assert_error(
        dex.post_json("/api/admin/clusters", Some(&not_admin), &body)
            .await,
        403,
        "",
    )
    .await;
    assert_error(dex.get("/api/admin/clusters", None).await, 401, "").await;
    assert_error(
        dex.get("/api/admin/clusters", Some(&not_admin)).await,
        403,
        "",
    )
    .await;
    assert!(
        clusters_list(&admin, &domain).await.1.is_none(),
        "{domain} was certified by a non-admin"
    );

    // Bad domains → 400 naming the field.
    for bad in [
        "Hubat.NET",
        "net",
        "a..hubat.net",
        "hubat.net.",
        "localhost",
        "-x.hubat.net",
        "127.0.0.1",
        "hu_bat.net",
        "",
    ] {
        let resp = dex
            .post_json(
                "/api/admin/clusters",
                Some(&admin),
                &cluster_body(bad, platform, &[]),
            )
            .await;
        let err = assert_error(resp, 400, "").await;
        let details = err["details"]
            .as_array()
            .unwrap_or_else(|| panic!("{bad:?}: no details: {err}"));
        assert!(
            details
                .iter()
                .any(|d| d.as_str().unwrap_or_default().contains("domain")),
            "{bad:?}: {err}"
        );
    }
    // Missing platform credentials → 400 with details.
    let resp = dex
        .post_json(
            "/api/admin/clusters",
            Some(&admin),
            &json!({ "domain": unique_domain(), "platformUsername": "", "platformPassword": "" }),
        )
        .await;
    let err = assert_error(resp, 400, "").await;
    let details = err["details"].to_string();
    assert!(
        details.contains("platformUsername") && details.contains("platformPassword"),
        "{err}"
    );
    // Malformed JSON → 400.
    assert_error(
        dex.send_raw(
            Method::POST,
            "/api/admin/clusters",
            Some(&admin),
            "{not json",
        )
        .await,
        400,
        "",
    )
    .await;

    // An unknown provisioner account → 404 (an unknown resource), nothing certified.
    let unknown = uuid::Uuid::new_v4().to_string();
    let domain2 = unique_domain();
    let resp = dex
        .post_json(
            "/api/admin/clusters",
            Some(&admin),
            &cluster_body(&domain2, platform, &[&unknown]),
        )
        .await;
    let err = assert_error(resp, 404, "").await;
    assert!(
        err.to_string().contains(&unknown),
        "the error does not name the unknown account: {err}"
    );
    assert!(
        clusters_list(&admin, &domain2).await.1.is_none(),
        "{domain2} was certified with an unknown provisioner"
    );

    // Certify, then certify again → 409.
    expect_json(
        dex.post_json("/api/admin/clusters", Some(&admin), &body)
            .await,
        201,
    )
    .await;
    assert_error(
        dex.post_json("/api/admin/clusters", Some(&admin), &body)
            .await,
        409,
        "",
    )
    .await;
    let log = subject_log(&admin, &format!("cluster:{domain}")).await;
    assert_eq!(
        kinds(&log),
        ["cluster.certified"],
        "a refused duplicate was logged: {log:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decertifying_a_cluster_is_logged_and_keeps_the_record() {
    let admin = admin_token().await;
    let admin_id = sub_of(&admin);
    let dex = Dex::new();
    let domain = unique_domain();
    let cluster = certify_cluster(&admin, &domain, ("hatdex.org", "pw-decertify")).await;
    let path = format!("/api/admin/clusters/{domain}");

    // Only admins.
    assert_error(dex.delete(&path, None).await, 401, "").await;
    let provisioner = cluster.provisioner_token().await;
    assert_error(dex.delete(&path, Some(&provisioner)).await, 403, "").await;
    assert_eq!(
        clusters_list(&admin, &domain).await.1.expect("listed")["certified"],
        true
    );

    let body = expect_json(dex.delete(&path, Some(&admin)).await, 200).await;
    assert_eq!(body["domain"], domain.as_str(), "{body}");
    assert_eq!(body["certified"], false, "{body}");
    let entry = clusters_list(&admin, &domain)
        .await
        .1
        .unwrap_or_else(|| panic!("{domain} is gone from the list"));
    assert_eq!(entry["certified"], false, "{entry}");

    let log = subject_log(&admin, &format!("cluster:{domain}")).await;
    assert_eq!(
        kinds(&log),
        ["cluster.certified", "cluster.decertified"],
        "{log:#?}"
    );
    assert_eq!(log[1].actor, format!("account:{admin_id}"));
    assert_eq!(verify_chain(&log), Ok(()));

    // Decertifying again changes nothing.
    let again = expect_json(dex.delete(&path, Some(&admin)).await, 200).await;
    assert_eq!(again["certified"], false, "{again}");
    assert_eq!(
        subject_log(&admin, &format!("cluster:{domain}"))
            .await
            .len(),
        2
    );

    // An unknown cluster → 404.
    assert_error(
        dex.delete(
            &format!("/api/admin/clusters/{}", unique_domain()),
            Some(&admin),
        )
        .await,
        404,
        "",
    )
    .await;

    // A decertified cluster can be certified again.
    let body = cluster_body(
        &domain,
        ("hatdex.org", "pw-recertify"),
        &[&cluster.provisioner_id],
    );
    let recertified = expect_json(
        dex.post_json("/api/admin/clusters", Some(&admin), &body)
            .await,
        201,
    )
    .await;
    assert_eq!(recertified["certified"], true, "{recertified}");
    let credentials = stored_platform_credentials(&domain).await.expect("secret");
    assert_eq!(credentials.password, "pw-recertify");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registered_hats_are_listed_per_cluster_with_fingerprints_and_pages() {
    let (hats, cluster, admin) = setup().await;
    let before = now_millis();
    let mut registered = Vec::new();
    for name in ["alice", "bob", "carol"] {
        registered.push(registered_hat(&hats, name, &cluster.domain).await);
    }
    let after = now_millis();

    // limit=1: one HAT per page, cursors lead through all of them.
    let listed = list_hats(&admin, &cluster.domain, 1).await;
    let mut addresses: Vec<&str> = listed
        .iter()
        .map(|h| h["hatAddress"].as_str().expect("hatAddress"))
        .collect();
    addresses.sort_unstable();
    let mut expected: Vec<&str> = registered.iter().map(TestHat::address).collect();
    expected.sort_unstable();
    assert_eq!(addresses, expected, "{listed:#?}");
    let first_page = expect_json(
        Dex::new()
            .get(
                &format!(
                    "/api/admin/hats?cluster={}&limit=1",
                    url_encode(&cluster.domain)
                ),
                Some(&admin),
            )
            .await,
        200,
    )
    .await;
    assert_eq!(
        first_page["items"].as_array().map(Vec::len),
        Some(1),
        "{first_page}"
    );
    assert!(
        first_page["cursor"].is_string(),
        "a full page has a cursor: {first_page}"
    );

    for hat in &registered {
        let entry = listed
            .iter()
            .find(|h| h["hatAddress"] == hat.address())
            .expect("listed");
        assert_eq!(entry["cluster"], cluster.domain.as_str(), "{entry}");
        assert_eq!(
            entry["keyFingerprint"],
            fingerprint(&hat.public_key_pem()),
            "{entry}"
        );
        let at = entry["registeredAt"]
            .as_i64()
            .unwrap_or_else(|| panic!("registeredAt is not a number: {entry}"));
        assert!(
            (before - 5_000..=after + 5_000).contains(&at),
            "registeredAt {at} not in [{before}, {after}]"
        );
        assert!(
            !entry.to_string().contains("BEGIN PUBLIC KEY"),
            "the listing carries whole keys: {entry}"
        );
    }

    // Another cluster's listing does not show them; only admins may list.
    let other = unique_domain();
    assert!(list_hats(&admin, &other, 50).await.is_empty());
    let dex = Dex::new();
    let path = format!("/api/admin/hats?cluster={}", url_encode(&cluster.domain));
    assert_error(dex.get(&path, None).await, 401, "").await;
    assert_error(
        dex.get(&path, Some(&cluster.provisioner_token().await))
            .await,
        403,
        "",
    )
    .await;
    assert_error(
        dex.get(&format!("{path}&limit=0"), Some(&admin)).await,
        400,
        "",
    )
    .await;
    assert_error(
        dex.get(&format!("{path}&cursor=%25%25%25"), Some(&admin))
            .await,
        400,
        "",
    )
    .await;
}

// ---- registration ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_a_hat_fetches_its_key_and_is_idempotent() {
    let (hats, cluster, admin) = setup().await;
    let alice = add_hat(&hats, "alice", &cluster.domain).await;

    let resp = register_hat(alice.address(), None).await;
    let body = expect_json(resp, 200).await;
    assert_registration_answer(&body, alice.address());
    // DEX fetched the key from the HAT itself (Host = the HAT address), over http here.
    let fetches: Vec<_> = alice
        .requests()
        .into_iter()
        .filter(|r| r.path == "/publickey")
        .collect();
    assert_eq!(fetches.len(), 1, "{fetches:#?}");
    assert_eq!(fetches[0].method, "GET");
    assert_eq!(fetches[0].hat, alice.address());

    let entry = listed_hat(&admin, &cluster.domain, alice.address())
        .await
        .expect("alice is listed");
    assert_eq!(
        entry["keyFingerprint"],
        fingerprint(&alice.public_key_pem()),
        "{entry}"
    );

    // Again with the same key: 200, nothing new stored or logged.
    let again = expect_json(register_hat(alice.address(), None).await, 200).await;
    assert_registration_answer(&again, alice.address());
    assert_eq!(
        publickey_fetches(&alice),
        2,
        "the repeat did not check the key again"
    );
    let history = hat_history(&admin, alice.address()).await;
    assert_eq!(kinds(&history), ["hat.registered"], "{history:#?}");
    assert_eq!(history[0].actor, "anonymous");
    assert_eq!(
        history[0].details["keyFingerprint"],
        fingerprint(&alice.public_key_pem())
    );
    assert_eq!(verify_chain(&history), Ok(()));
    let listed = list_hats(&admin, &cluster.domain, 50).await;
    assert_eq!(listed.len(), 1, "{listed:#?}");

    // The v3 alias, with an applicationId.
    let bob = add_hat(&hats, "bob", &cluster.domain).await;
    let body =
        json!({ "hatAddress": bob.address(), "applicationId": "notables", "unknownField": 1 });
    let answer = expect_json(
        register_hat_at("/api/v3/users/registerHat", &body, None).await,
        200,
    )
    .await;
    assert_registration_answer(&answer, bob.address());
    let entry = listed_hat(&admin, &cluster.domain, bob.address())
        .await
        .expect("bob is listed");
    assert_eq!(entry["applicationId"], "notables", "{entry}");
    let again = expect_json(
        register_hat_at("/api/v3/users/registerHat", &body, None).await,
        200,
    )
    .await;
    assert_registration_answer(&again, bob.address());

    // The registered HAT's token works at once.
    let log = hat_log_ok(&bob.dex_token(&dex_public_url())).await;
    assert_own_history(&log, bob.address());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_clusters_provisioner_can_replace_a_hats_key() {
    let (hats, cluster, admin) = setup().await;
    let alice = registered_hat(&hats, "alice", &cluster.domain).await;
    let url = dex_public_url();
    let old_key_token = alice.dex_token(&url);
    assert_own_history(&hat_log_ok(&old_key_token).await, alice.address());
    let old_fingerprint = fingerprint(&alice.public_key_pem());

    // Re-provisioned: the HAT now serves a different key.
    tokio::task::block_in_place(|| alice.rotate_key());
    let new_fingerprint = fingerprint(&alice.public_key_pem());
    assert_ne!(old_fingerprint, new_fingerprint);

    // Without a token → 409, with someone else's token → 403 (an account without roles, and
    // the provisioner of another cluster); with a garbage token → 401. Nothing changes.
    let err = assert_error(register_hat(alice.address(), None).await, 409, "").await;
    assert!(
        err["cause"]
            .as_str()
            .unwrap_or_default()
            .contains(alice.address()),
        "{err}"
    );
    let (_, user, password) = create_account(&admin, &[]).await;
    let stranger = Dex::new().token(&user, &password).await;
    assert_error(
        register_hat(alice.address(), Some(&stranger)).await,
        403,
        "",
    )
    .await;
    let other = certify_cluster(&admin, &unique_domain(), ("hatdex.org", "pw")).await;
    let other_provisioner = other.provisioner_token().await;
    assert_error(
        register_hat(alice.address(), Some(&other_provisioner)).await,
        403,
        "",
    )
    .await;
    assert_error(
        register_hat(alice.address(), Some("not-a-token")).await,
        401,
        "",
    )
    .await;
    let entry = listed_hat(&admin, &cluster.domain, alice.address())
        .await
        .expect("listed");
    assert_eq!(
        entry["keyFingerprint"],
        old_fingerprint.as_str(),
        "a refused re-key changed the key: {entry}"
    );
    assert_eq!(
        kinds(&hat_history(&admin, alice.address()).await),
        ["hat.registered"]
    );

    // The provisioner's token replaces the key.
    let provisioner = cluster.provisioner_token().await;
    let body = expect_json(register_hat(alice.address(), Some(&provisioner)).await, 200).await;
    assert_registration_answer(&body, alice.address());
    let replaced = listed_hat(&admin, &cluster.domain, alice.address())
        .await
        .expect("listed");
    assert_eq!(
        replaced["keyFingerprint"],
        new_fingerprint.as_str(),
        "{replaced}"
    );
    assert_eq!(
        replaced["registeredAt"], entry["registeredAt"],
        "re-keying changed the registration time: {replaced}"
    );
    let key_updated = replaced["keyUpdatedAt"].as_i64().expect("keyUpdatedAt");
    assert!(
        key_updated > entry["keyUpdatedAt"].as_i64().expect("keyUpdatedAt"),
        "keyUpdatedAt did not move: {replaced}"
    );
    let history = hat_history(&admin, alice.address()).await;
    assert_eq!(
        kinds(&history),
        ["hat.registered", "hat.key-replaced"],
        "{history:#?}"
    );
    assert_eq!(
        history[1].actor,
        format!("account:{}", cluster.provisioner_id)
    );
    assert_eq!(history[1].details["from"], old_fingerprint.as_str());
    assert_eq!(history[1].details["to"], new_fingerprint.as_str());
    assert_eq!(verify_chain(&history), Ok(()));

    // Now the same key again is idempotent, even without a token.
    expect_json(register_hat(alice.address(), None).await, 200).await;
    assert_eq!(hat_history(&admin, alice.address()).await.len(), 2);

    // Once key caches have expired, tokens signed with the old key are refused and tokens
    // signed with the new one accepted.
    tokio::time::sleep(key_cache_expiry()).await;
    assert_unauthorized(Some(&old_key_token), "token signed with the replaced key").await;
    assert_unauthorized(
        Some(&old_key_token),
        "token signed with the replaced key, again",
    )
    .await;
    let new_key_token = alice.dex_token(&url);
    let log = hat_log_ok(&new_key_token).await;
    let items = assert_own_history(&log, alice.address());
    assert_eq!(kinds(&items), ["hat.registered", "hat.key-replaced"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_hat_addresses_are_400_and_store_nothing() {
    let (hats, cluster, admin) = setup().await;
    let port = hats.port();
    let d = &cluster.domain;

    // A HAT under a label-boundary look-alike of a certified two-label cluster.
    let (platform_user, platform_password) = hats.platform_credentials();
    let base = unique_two_label_domain("e");
    let evil_cluster = certify_cluster(&admin, &base, (&platform_user, &platform_password)).await;
    let uncertified = unique_two_label_domain("u");
    // Well-formed names outside every certified cluster: refused for that reason.
    let outside = [
        (format!("x.{uncertified}:{port}"), "uncertified domain"),
        (
            format!("x.{uncertified}"),
            "uncertified domain without port",
        ),
        (
            format!("x.evil{}:{port}", evil_cluster.domain),
            "label-boundary look-alike",
        ),
        (
            format!("x.{}.attacker.net:{port}", evil_cluster.domain),
            "certified domain as a prefix",
        ),
    ];
    // Malformed names: refused as such, naming the field.
    let cases: Vec<(String, &str)> = vec![
        (format!("Alice.{d}:{port}"), "uppercase"),
        (
            format!("alice.{}:{port}", d.to_uppercase()),
            "uppercase domain",
        ),
        (format!("alice.{d}.:{port}"), "trailing dot"),
        (format!("127.0.0.1:{port}"), "IPv4 literal"),
        (format!("[::1]:{port}"), "IPv6 literal"),
        (format!("localhost:{port}"), "localhost"),
        (format!("alice.localhost:{port}"), "*.localhost"),
        (format!("a@x.{d}:{port}"), "userinfo"),
        (format!("x.{d}:{port}/p"), "path"),
        (format!("http://x.{d}:{port}"), "scheme"),
        (format!("x.{d}:0"), "port 0"),
        (format!("x.{d}:notaport"), "bad port"),
        (format!("x..{d}:{port}"), "empty label"),
        (format!("x_y.{d}:{port}"), "underscore"),
        (
            format!("{}:{port}", evil_cluster.domain),
            "a cluster domain itself",
        ),
        (String::new(), "empty"),
    ];
    // The look-alikes are HATs the test server serves, so a fetch would succeed.
    let evil = add_hat(&hats, "x", &format!("evil{}", evil_cluster.domain)).await;
    let not_certified = add_hat(&hats, "x", &uncertified).await;

    let all = outside
        .iter()
        .map(|(a, w)| (a, *w, "certified cluster"))
        .chain(cases.iter().map(|(a, w)| (a, *w, "hatAddress")));
    for (address, what, cause) in all {
        for path in ["/api/users/registerHat", "/api/v3/users/registerHat"] {
            let resp = register_hat_at(path, &json!({ "hatAddress": address }), None).await;
            let status = resp.status().as_u16();
            assert_eq!(
                status, 400,
                "{what} ({address:?}) via {path}: expected 400, got {status}"
            );
            let err = assert_error(resp, 400, cause).await;
            if cause == "hatAddress" {
                let details = err["details"].to_string();
                assert!(
                    details.contains("hatAddress"),
                    "{what}: the details do not name hatAddress: {err}"
                );
            }
        }
        assert_not_registered(&admin, d, address).await;
        assert_not_registered(&admin, &evil_cluster.domain, address).await;
    }
    assert_eq!(
        publickey_fetches(&evil),
        0,
        "DEX fetched the key of a HAT outside every certified cluster"
    );
    assert_eq!(
        publickey_fetches(&not_certified),
        0,
        "DEX fetched the key of a HAT of an uncertified domain"
    );
    assert!(
        hats.requests().is_empty(),
        "DEX called the HAT server for an invalid address: {:#?}",
        hats.requests()
    );

    // A body without hatAddress, or not JSON, or empty → 400.
    for body in [json!({}), json!({ "hatAddress": 42 }), json!(["x"])] {
        assert_error(
            register_hat_at("/api/users/registerHat", &body, None).await,
            400,
            "",
        )
        .await;
    }
    let dex = Dex::new();
    assert_error(
        dex.send_raw(Method::POST, "/api/users/registerHat", None, "{oops")
            .await,
        400,
        "",
    )
    .await;
    assert_error(
        dex.send_raw(Method::POST, "/api/users/registerHat", None, "")
            .await,
        400,
        "",
    )
    .await;
    assert!(list_hats(&admin, d, 50).await.is_empty());
    assert!(list_hats(&admin, &evil_cluster.domain, 50).await.is_empty());
}

/// Sets `behaviour`, tries to register `hat` and expects `status` with nothing stored.
async fn refused_registration(
    admin: &str,
    cluster: &str,
    hat: &TestHat,
    behaviour: Behaviour,
    status: u16,
) {
    hat.set_behaviour(behaviour.clone());
    let resp = register_hat(hat.address(), None).await;
    let actual = resp.status().as_u16();
    assert_eq!(
        actual, status,
        "{behaviour:?}: expected {status}, got {actual}"
    );
    let err = assert_error(resp, status, "").await;
    assert!(
        err["cause"]
            .as_str()
            .unwrap_or_default()
            .contains(hat.address()),
        "{behaviour:?}: the cause does not name the HAT: {err}"
    );
    assert!(
        publickey_fetches(hat) >= 1,
        "{behaviour:?}: DEX did not ask the HAT for its key"
    );
    assert_not_registered(admin, cluster, hat.address()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hats_that_answer_badly_are_502_and_store_nothing() {
    let (hats, cluster, admin) = setup().await;
    let d = cluster.domain.clone();

    // Nothing listens on the port.
    let down = format!("down.{d}:{}", free_port());
    let resp = register_hat(&down, None).await;
    assert_eq!(resp.status().as_u16(), 502, "HAT down");
    let err = assert_error(resp, 502, "").await;
    assert!(
        err["cause"].as_str().unwrap_or_default().contains(&down),
        "{err}"
    );
    assert_not_registered(&admin, &d, &down).await;

    let cases = [
        ("notfound", Behaviour::NotFound),
        (
            "redirect",
            Behaviour::Redirect(format!("http://127.0.0.1:{}/publickey", hats.port())),
        ),
        ("huge", Behaviour::HugeBody(100_000)),
        ("ec", Behaviour::NonRsaKey),
        ("small", Behaviour::SmallRsaKey),
        ("garbage", Behaviour::Garbage),
    ];
    for (name, behaviour) in cases {
        let hat = add_hat(&hats, name, &d).await;
        refused_registration(&admin, &d, &hat, behaviour, 502).await;
        // Fixed, the same HAT registers fine.
        hat.set_behaviour(Behaviour::Normal);
        register_hat_ok(hat.address()).await;
    }
    assert_eq!(list_hats(&admin, &d, 50).await.len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hat_that_does_not_answer_in_time_is_504() {
    let (hats, cluster, admin) = setup().await;
    let hat = add_hat(&hats, "slow", &cluster.domain).await;
    let delay = support::config().hat_timeout + Duration::from_secs(1);
    let started = std::time::Instant::now();
    refused_registration(&admin, &cluster.domain, &hat, Behaviour::Slow(delay), 504).await;
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "DEX waited {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decertified_clusters_hats_can_neither_register_nor_call() {
    let (hats, cluster, admin) = setup().await;
    let alice = registered_hat(&hats, "alice", &cluster.domain).await;
    let bob = add_hat(&hats, "bob", &cluster.domain).await;
    let token = alice.dex_token(&dex_public_url());
    hat_log_ok(&token).await;

    let path = format!("/api/admin/clusters/{}", cluster.domain);
    expect_json(Dex::new().delete(&path, Some(&admin)).await, 200).await;

    assert_error(register_hat(bob.address(), None).await, 400, "").await;
    assert_not_registered(&admin, &cluster.domain, bob.address()).await;
    assert_eq!(publickey_fetches(&bob), 0);
    assert_error(register_hat(alice.address(), None).await, 400, "").await;

    tokio::time::sleep(key_cache_expiry()).await;
    assert_unauthorized(Some(&token), "token of a HAT of a decertified cluster").await;
    assert_unauthorized(
        Some(&alice.dex_token(&dex_public_url())),
        "fresh token of a HAT of a decertified cluster",
    )
    .await;
    // Nothing was deleted: the HAT is still listed, with its history.
    assert!(
        listed_hat(&admin, &cluster.domain, alice.address())
            .await
            .is_some()
    );
    assert_eq!(
        kinds(&hat_history(&admin, alice.address()).await),
        ["hat.registered"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_registrations_of_one_hat_store_it_once() {
    let (hats, cluster, admin) = setup().await;
    let alice = add_hat(&hats, "alice", &cluster.domain).await;
    let attempts =
        futures::future::join_all((0..6).map(|_| register_hat(alice.address(), None))).await;
    for resp in attempts {
        let body = expect_json(resp, 200).await;
        assert_registration_answer(&body, alice.address());
    }
    let history = hat_history(&admin, alice.address()).await;
    assert_eq!(kinds(&history), ["hat.registered"], "{history:#?}");
    assert_eq!(verify_chain(&history), Ok(()));
    let listed = list_hats(&admin, &cluster.domain, 50).await;
    assert_eq!(listed.len(), 1, "{listed:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hat_whose_published_key_is_not_its_signing_key_cannot_call() {
    let (hats, cluster, admin) = setup().await;
    let hat = add_hat(&hats, "liar", &cluster.domain).await;
    tokio::task::block_in_place(|| hat.set_behaviour(Behaviour::WrongKey));
    register_hat_ok(hat.address()).await;
    let entry = listed_hat(&admin, &cluster.domain, hat.address())
        .await
        .expect("listed");
    assert_ne!(
        entry["keyFingerprint"],
        fingerprint(&hat.public_key_pem()),
        "DEX pinned a key the HAT did not publish"
    );
    // DEX verifies with the key it pinned, never with one fetched at request time.
    hat.set_behaviour(Behaviour::Normal);
    assert_unauthorized(
        Some(&hat.dex_token(&dex_public_url())),
        "token signed with a key the HAT did not register",
    )
    .await;
    assert_eq!(
        publickey_fetches(&hat),
        1,
        "DEX fetched the key again at request time"
    );
}

// ---- verification of HAT tokens ----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hat_tokens_that_break_a_rule_are_401_and_change_nothing() {
    let (hats, cluster, admin) = setup().await;
    let alice = registered_hat(&hats, "alice", &cluster.domain).await;
    let bob = registered_hat(&hats, "bob", &cluster.domain).await;
    let stranger = add_hat(&hats, "stranger", &cluster.domain).await;
    let url = dex_public_url();
    let now = now_secs();
    let history_before = hat_history(&admin, alice.address()).await;
    let base = || alice.token_builder(&url);

    let cases: Vec<(&str, Option<String>)> = vec![
        ("alg none", Some(base().alg(Alg::None).build())),
        (
            "HS256 with the public key as secret",
            Some(base().alg(Alg::Hs256WithPublicKey).build()),
        ),
        ("RS512", Some(base().alg(Alg::Rs512).build())),
        (
            "expired",
            Some(base().iat(now - 7_200).exp(now - 3_600).build()),
        ),
        (
            "iat older than 3 days",
            Some(base().iat(now - 4 * 86_400).build()),
        ),
        ("iat in the future", Some(base().iat(now + 600).build())),
        (
            "wrong resource",
            Some(base().resource(Some("https://dex.example.com")).build()),
        ),
        (
            "resource of another path",
            Some(base().resource(Some(&format!("{url}/api"))).build()),
        ),
        ("missing resource", Some(base().resource(None).build())),
        (
            "missing accessScope",
            Some(base().access_scope(None).build()),
        ),
        (
            "accessScope owner",
            Some(base().access_scope(Some("owner")).build()),
        ),
        (
            "application token",
            Some(base().app_token("notables", "1.0.0").build()),
        ),
        ("no exp", Some(base().without_claim("exp").build())),
        ("no iat", Some(base().without_claim("iat").build())),
        ("unregistered issuer", Some(stranger.dex_token(&url))),
        (
            "issuer rewritten to another HAT",
            Some(tamper_payload(&alice.dex_token(&url), |c| {
                c.insert("iss".into(), json!(bob.address()));
            })),
        ),
        (
            "claims another HAT, signed by this one",
            Some(base().iss(bob.address()).build()),
        ),
        (
            "signed with another HAT's key",
            Some(base().sign_with(&bob).build()),
        ),
        (
            "payload changed after signing",
            Some(tamper_payload(&alice.dex_token(&url), |c| {
                c.insert("resource".into(), json!("https://elsewhere.example"));
            })),
        ),
        (
            "issuer that is not a HAT address",
            Some(base().iss("https://alice.example/").build()),
        ),
        ("garbage", Some("abc".to_owned())),
        ("two segments", Some("abc.def".to_owned())),
        ("missing header", None),
    ];
    for (what, token) in &cases {
        assert_unauthorized(token.as_deref(), what).await;
    }
    // An empty header is a missing one.
    let resp = Dex::new()
        .request(Method::GET, "/api/hat/log", None)
        .header("X-Auth-Token", "")
        .send()
        .await
        .expect("DEX answers");
    assert_error(resp, 401, "").await;

    let history_after = hat_history(&admin, alice.address()).await;
    assert_eq!(
        history_before, history_after,
        "a refused request changed the HAT's history"
    );
    assert!(
        listed_hat(&admin, &cluster.domain, stranger.address())
            .await
            .is_none()
    );
    // The HATs were never asked for their keys again: DEX uses the registered key.
    assert_eq!(publickey_fetches(&alice), 1);
    assert_eq!(publickey_fetches(&stranger), 0);
    // And a good token still works.
    assert_own_history(&hat_log_ok(&alice.dex_token(&url)).await, alice.address());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hat_tokens_in_every_accepted_form_get_the_hats_own_history() {
    let (hats, cluster, _admin) = setup().await;
    let alice = registered_hat(&hats, "alice", &cluster.domain).await;
    let bob = registered_hat(&hats, "bob", &cluster.domain).await;
    let url = dex_public_url();
    let now = now_secs();

    let accepted = [
        ("the HAT2.0 token", alice.dex_token(&url)),
        (
            "resource with a trailing slash",
            alice
                .token_builder(&url)
                .resource(Some(&format!("{url}/")))
                .build(),
        ),
        (
            "resource without a trailing slash",
            alice
                .token_builder(&url)
                .resource(Some(url.trim_end_matches('/')))
                .build(),
        ),
        (
            "no typ header",
            alice.token_builder(&url).without_typ().build(),
        ),
        (
            "kid/jku/x5u headers are ignored",
            alice
                .token_builder(&url)
                .header_extra("kid", "attacker")
                .header_extra("jku", "https://attacker.example/jwks.json")
                .header_extra("x5u", "https://attacker.example/cert.pem")
                .build(),
        ),
        (
            "issued two days ago",
            alice.token_builder(&url).iat(now - 2 * 86_400).build(),
        ),
        (
            "issued a moment in the future (clock skew)",
            alice.token_builder(&url).iat(now + 10).build(),
        ),
    ];
    for (what, token) in &accepted {
        let resp = hat_log(Some(token)).await;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        assert_eq!(status, 200, "{what}: refused: {text}");
        assert_clean(&text);
        let body: Value = serde_json::from_str(&text).expect("JSON");
        let items = assert_own_history(&body, alice.address());
        assert_eq!(kinds(&items), ["hat.registered"], "{what}: {body}");
        assert_eq!(
            items[0].details["keyFingerprint"],
            fingerprint(&alice.public_key_pem())
        );
    }

    // Each HAT sees only its own history.
    let body = hat_log_ok(&bob.dex_token(&url)).await;
    assert_own_history(&body, bob.address());
    // Paginated like every listing.
    let first = expect_json(
        Dex::new()
            .get("/api/hat/log?limit=1", Some(&alice.dex_token(&url)))
            .await,
        200,
    )
    .await;
    assert_eq!(first["items"].as_array().map(Vec::len), Some(1), "{first}");
    assert_error(
        Dex::new()
            .get("/api/hat/log?limit=0", Some(&alice.dex_token(&url)))
            .await,
        400,
        "",
    )
    .await;
}

// ---- dexctl ------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dexctl_certifies_lists_and_decertifies_clusters_and_lists_hats() {
    let admin = admin_token().await;
    let hats = TestHatCluster::start().await;
    let (platform_user, platform_password) = hats.platform_credentials();
    let domain = unique_domain();
    let (provisioner, _, _) = create_account(&admin, &[]).await;
    let env_var = "DEX_E2E_PLATFORM_PASSWORD";

    // Without the variable set, certify fails and certifies nothing.
    let out = dexctl(
        &[
            "clusters",
            "certify",
            "--domain",
            &domain,
            "--platform-username",
            &platform_user,
            "--platform-password-env",
            "DEX_E2E_UNSET_VARIABLE",
        ],
        &[],
    )
    .await;
    assert!(
        !out.status.success(),
        "certify without the password variable succeeded"
    );
    assert!(clusters_list(&admin, &domain).await.1.is_none());

    let certified = dexctl_json(
        &[
            "clusters",
            "certify",
            "--domain",
            &domain,
            "--platform-username",
            &platform_user,
            "--platform-password-env",
            env_var,
            "--provisioner",
            &provisioner,
        ],
        &[(env_var, &platform_password)],
        &platform_password,
    )
    .await;
    assert_eq!(certified["domain"], domain.as_str(), "{certified}");
    assert_eq!(certified["certified"], true, "{certified}");
    assert_eq!(
        certified["provisioners"],
        json!([provisioner]),
        "{certified}"
    );
    assert!(
        account_roles(&admin, &provisioner)
            .await
            .contains(&format!("provisioner:{domain}"))
    );
    assert_eq!(
        stored_platform_credentials(&domain)
            .await
            .expect("secret")
            .password,
        platform_password
    );
    let log = subject_log(&admin, &format!("cluster:{domain}")).await;
    assert_eq!(kinds(&log), ["cluster.certified"]);
    assert_eq!(log[0].actor, "dexctl");

    // The API sees what dexctl did, and dexctl lists it.
    assert_eq!(
        clusters_list(&admin, &domain)
            .await
            .1
            .expect("listed over HTTP")["certified"],
        true
    );
    let list = dexctl_json(&["clusters", "list"], &[], &platform_password).await;
    let entry = list
        .as_array()
        .unwrap_or_else(|| panic!("clusters list is not an array: {list}"))
        .iter()
        .find(|c| c["domain"] == domain.as_str())
        .unwrap_or_else(|| panic!("{domain} not in dexctl clusters list"));
    assert_eq!(entry["certified"], true);

    // A HAT registered over HTTP shows in `dexctl hats list --cluster`.
    let alice = registered_hat(&hats, "alice", &domain).await;
    let listed = dexctl_json(
        &["hats", "list", "--cluster", &domain],
        &[],
        &platform_password,
    )
    .await;
    let items = listed["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {listed}"));
    assert_eq!(items.len(), 1, "{listed}");
    assert_eq!(items[0]["hatAddress"], alice.address());
    assert_eq!(
        items[0]["keyFingerprint"],
        fingerprint(&alice.public_key_pem())
    );
    let paged = dexctl_json(
        &["hats", "list", "--cluster", &domain, "--limit", "1"],
        &[],
        &platform_password,
    )
    .await;
    assert_eq!(paged["items"].as_array().map(Vec::len), Some(1), "{paged}");

    // Decertify.
    let decertified =
        dexctl_json(&["clusters", "decertify", &domain], &[], &platform_password).await;
    assert_eq!(decertified["certified"], false, "{decertified}");
    assert_eq!(
        clusters_list(&admin, &domain).await.1.expect("listed")["certified"],
        false
    );
    let log = subject_log(&admin, &format!("cluster:{domain}")).await;
    assert_eq!(kinds(&log), ["cluster.certified", "cluster.decertified"]);
    let bob = add_hat(&hats, "bob", &domain).await;
    assert_error(register_hat(bob.address(), None).await, 400, "").await;

    // Unknown domain: a clear failure.
    let out = dexctl(&["clusters", "decertify", &unique_domain()], &[]).await;
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).trim().is_empty());
}
