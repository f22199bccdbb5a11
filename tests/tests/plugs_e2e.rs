//! Data plugs end to end (docs/decisions.md §8, §13 "Data plugs"), over real HTTP against the
//! served functions and the test HAT cluster: register and approve, the public listing
//! without any hash, connect (the plug's user made or re-enabled on the HAT, then recorded
//! on the HAT's chain), every refusal, every failure switch of the test HAT at every step
//! leaving DEX unchanged, and the `Data Plugs` figure of `/stats`. Run through `make test`.

use std::time::Duration;

use reqwest::Response;
use serde_json::{Value, json};

use dex_tests::hat_support::{
    CertifiedCluster, certify_cluster, hat_history, register_hat_ok, unique_domain,
};
use dex_tests::support::{Dex, admin_token, assert_error, create_account};
use dex_tests::test_hat::{RouteFail, TestHat, TestHatCluster};

const PLUG_PASSWORD: &str = "the plug's own HAT password";

/// A plug answer: the status, JSON, and no hash of any kind (its `passwordHash` is `""`,
/// so the shared clean-body check, which refuses the field name, does not apply).
async fn plug_json(resp: Response, status: u16) -> Value {
    let actual = resp.status().as_u16();
    let url = resp.url().clone();
    let text = resp.text().await.unwrap_or_default();
    assert_eq!(
        actual, status,
        "{url}: expected {status}, got {actual}: {text}"
    );
    for bad in [
        "$2a$",
        "$2b$",
        "$2y$",
        "$argon2",
        PLUG_PASSWORD,
        "panicked",
        "DexError",
    ] {
        assert!(
            !text.contains(bad),
            "{url}: the body contains {bad:?}: {text}"
        );
    }
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: not JSON ({e}): {text}"))
}

fn unique_name() -> String {
    format!("plug{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

fn plug_body(name: &str, provider: &str) -> Value {
    json!({
        "name": name,
        "description": "syncs a calendar",
        "url": "https://plug.example.com/connect",
        "illustrationUrl": "https://plug.example.com/logo.png",
        "providerId": provider,
        "password": PLUG_PASSWORD,
    })
}

struct Owner {
    id: String,
    username: String,
    token: String,
}

async fn owner(admin: &str) -> Owner {
    let (id, username, password) = create_account(admin, &[]).await;
    let token = Dex::new().token(&username, &password).await;
    Owner {
        id,
        username,
        token,
    }
}

/// Registers a plug for `owner` (201), approved when `approve`.
async fn plug(admin: &str, owner: &Owner, approve: bool) -> Value {
    let dex = Dex::new();
    let name = unique_name();
    let created = plug_json(
        dex.post_json(
            "/api/admin/dataplugs",
            Some(admin),
            &plug_body(&name, &owner.id),
        )
        .await,
        201,
    )
    .await;
    if !approve {
        return created;
    }
    let id = created["uuid"].as_str().unwrap();
    plug_json(
        dex.put_json(
            &format!("/api/admin/dataplugs/{id}"),
            Some(admin),
            &json!({"approved": true}),
        )
        .await,
        200,
    )
    .await
}

async fn setup() -> (TestHatCluster, CertifiedCluster, String) {
    let admin = admin_token().await;
    let hats = TestHatCluster::start().await;
    let (user, password) = hats.platform_credentials();
    let cluster = certify_cluster(&admin, &unique_domain(), (&user, &password)).await;
    (hats, cluster, admin)
}

async fn registered_hat(hats: &TestHatCluster, name: &str, domain: &str) -> TestHat {
    let label = format!("{name}.{domain}");
    let hat = tokio::task::block_in_place(|| hats.add_hat(&label));
    register_hat_ok(hat.address()).await;
    hat
}

async fn connect(id: &str, hat: Option<&str>, token: Option<&str>) -> Response {
    let path = match hat {
        Some(h) => format!(
            "/api/dataplugs/{id}/connect?hat={}",
            dex_tests::support::url_encode(h)
        ),
        None => format!("/api/dataplugs/{id}/connect"),
    };
    Dex::new().get(&path, token).await
}

async fn listing() -> Vec<Value> {
    plug_json(Dex::new().get("/api/dataplugs", None).await, 200)
        .await
        .as_array()
        .expect("the listing is an array")
        .clone()
}

/// The kinds of the HAT's chain of the log.
async fn hat_kinds(admin: &str, hat: &TestHat) -> Vec<String> {
    hat_history(admin, hat.address())
        .await
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

fn routes(hat: &TestHat) -> Vec<String> {
    hat.requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

/// The plug logs in to the HAT with its own name and password (what connecting is for).
async fn plug_login(hats: &TestHatCluster, hat: &TestHat, name: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{}/users/access_token", hats.base_url()))
        .header("host", hat.address())
        .header("username", name)
        .header("password", dex_tests::support::url_encode(PLUG_PASSWORD))
        .send()
        .await
        .expect("the test HAT answers")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_approve_list_and_connect_twice() {
    let (hats, cluster, admin) = setup().await;
    let owner = owner(&admin).await;
    let hat = registered_hat(&hats, "alice", &cluster.domain).await;
    let dex = Dex::new();

    let name = unique_name();
    let created = plug_json(
        dex.post_json(
            "/api/admin/dataplugs",
            Some(&admin),
            &plug_body(&name, &owner.id),
        )
        .await,
        201,
    )
    .await;
    let id = created["uuid"].as_str().unwrap().to_owned();
    assert_eq!(created["name"], name.as_str());
    assert_eq!(created["providerId"], owner.id.as_str());
    assert_eq!(created["approved"], false);
    assert_eq!(created["passwordHash"], "");
    assert!(created["created"].as_i64().unwrap() > 1_700_000_000_000);
    assert!(
        listing()
            .await
            .iter()
            .all(|e| e["plug"]["uuid"] != id.as_str()),
        "unapproved plugs are not listed"
    );

    let approved = plug_json(
        dex.put_json(
            &format!("/api/admin/dataplugs/{id}"),
            Some(&admin),
            &json!({"approved": true, "description": "now approved"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(approved["approved"], true);
    assert_eq!(approved["description"], "now approved");
    let entry = listing()
        .await
        .into_iter()
        .find(|e| e["plug"]["uuid"] == id.as_str())
        .expect("the approved plug is listed");
    assert_eq!(entry["plug"]["passwordHash"], "");
    assert_eq!(
        entry["provider"],
        json!({"id": owner.id, "email": owner.username, "emailConfirmed": true, "password": "",
               "name": owner.username, "dateCreated": entry["provider"]["dateCreated"]})
    );

    // Connect: login, then the user created on the HAT, then the connection recorded.
    let answer = plug_json(
        connect(&id, Some(hat.address()), Some(&owner.token)).await,
        200,
    )
    .await;
    assert_eq!(
        answer,
        json!({"message": format!("{name} connected to {}", hat.address())})
    );
    assert_eq!(
        routes(&hat)[1..],
        ["GET /users/access_token", "POST /users/user"]
    );
    let users = hat.users();
    assert_eq!(users.len(), 1);
    let user = &users[0].user;
    assert_eq!(user["email"], name.as_str());
    assert_eq!(user["name"], name.as_str());
    assert_eq!(user["role"], "datacredit");
    assert_eq!(
        user["roles"],
        json!([{"role": "datacredit", "detail": name}])
    );
    let hash = user["pass"].as_str().unwrap();
    assert!(
        hash.starts_with("$2a$10$") && bcrypt::verify(PLUG_PASSWORD, hash).unwrap(),
        "{hash}"
    );
    assert_eq!(plug_login(&hats, &hat, &name).await, 200);
    let history = hat_history(&admin, hat.address()).await;
    let connected: Vec<_> = history
        .iter()
        .filter(|e| e.kind == "plug.connected")
        .collect();
    assert_eq!(connected.len(), 1);
    assert_eq!(connected[0].details["plugId"], id.as_str());
    assert_eq!(connected[0].actor, format!("account:{}", owner.id));

    // The owner of the HAT disables the user; connecting again re-enables it, creates nothing.
    hat.set_user_enabled(users[0].id(), false);
    assert_eq!(plug_login(&hats, &hat, &name).await, 401);
    let before = hat.requests().len();
    plug_json(connect(&id, Some(hat.address()), Some(&admin)).await, 200).await;
    let again: Vec<String> = routes(&hat)[before..].to_vec();
    assert!(
        again.contains(&"POST /users/user".to_owned())
            && again.contains(&"GET /users/user".to_owned()),
        "{again:?}"
    );
    assert!(
        again
            .iter()
            .any(|r| r.starts_with("PUT /users/user/") && r.ends_with("/enable")),
        "{again:?}"
    );
    assert_eq!(hat.users().len(), 1, "nothing new on the HAT");
    assert!(hat.users()[0].enabled);
    assert_eq!(plug_login(&hats, &hat, &name).await, 200);
    let connected = hat_kinds(&admin, &hat)
        .await
        .iter()
        .filter(|k| *k == "plug.connected")
        .count();
    assert_eq!(connected, 1, "connecting again records nothing new");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_has_its_status_and_cause() {
    let (hats, cluster, admin) = setup().await;
    let owner = owner(&admin).await;
    let stranger = owner_stranger(&admin).await;
    let dex = Dex::new();
    let path = "/api/admin/dataplugs";
    let body = plug_body(&unique_name(), &owner.id);

    // Registration.
    assert_error(dex.post_json(path, None, &body).await, 401, "").await;
    assert_error(
        dex.post_json(path, Some(&owner.token), &body).await,
        403,
        "admin",
    )
    .await;
    let mut bad = body.clone();
    bad["name"] = json!("not-alphanumeric");
    bad["password"] = json!("short");
    let err = assert_error(
        dex.post_json(path, Some(&admin), &bad).await,
        400,
        "invalid data plug",
    )
    .await;
    let details = err["details"].to_string();
    assert!(
        details.contains("name:") && details.contains("password:"),
        "{details}"
    );
    let mut long = body.clone();
    long["password"] = json!("x".repeat(72));
    assert_error(dex.post_json(path, Some(&admin), &long).await, 400, "").await;
    let mut nobody = body.clone();
    nobody["providerId"] = json!(uuid::Uuid::new_v4().to_string());
    assert_error(
        dex.post_json(path, Some(&admin), &nobody).await,
        400,
        "providerId",
    )
    .await;
    let first = plug_json(dex.post_json(path, Some(&admin), &body).await, 201).await;
    let mut twin = body.clone();
    twin["name"] = json!(body["name"].as_str().unwrap().to_uppercase());
    assert_error(
        dex.post_json(path, Some(&admin), &twin).await,
        409,
        "exists",
    )
    .await;

    // Changes.
    let id = first["uuid"].as_str().unwrap().to_owned();
    let one = format!("/api/admin/dataplugs/{id}");
    assert_error(
        dex.put_json(&one, Some(&owner.token), &json!({"approved": true}))
            .await,
        403,
        "admin",
    )
    .await;
    assert_error(
        dex.put_json(&one, Some(&admin), &json!({})).await,
        400,
        "nothing to change",
    )
    .await;
    assert_error(
        dex.put_json(
            "/api/admin/dataplugs/nope",
            Some(&admin),
            &json!({"approved": true}),
        )
        .await,
        404,
        "no data plug",
    )
    .await;

    // Connect.
    let hat = registered_hat(&hats, "bob", &cluster.domain).await;
    let address = hat.address().to_owned();
    assert_error(connect(&id, Some(&address), None).await, 401, "").await;
    assert_error(
        connect("nope", Some(&address), Some(&owner.token)).await,
        404,
        "no data plug",
    )
    .await;
    assert_error(
        connect(&id, Some(&address), Some(&owner.token)).await,
        403,
        "not approved",
    )
    .await;
    dex.put_json(&one, Some(&admin), &json!({"approved": true}))
        .await;
    assert_error(
        connect(&id, Some(&address), Some(&stranger)).await,
        403,
        "owner",
    )
    .await;
    assert_error(
        connect(&id, None, Some(&owner.token)).await,
        400,
        "hat is required",
    )
    .await;
    let unregistered = format!("carol.{}:{}", cluster.domain, hats.port());
    assert_error(
        connect(&id, Some(&unregistered), Some(&owner.token)).await,
        400,
        "not registered",
    )
    .await;
    assert_error(
        connect(&id, Some("Not A HAT"), Some(&owner.token)).await,
        400,
        "invalid hat",
    )
    .await;
    // No refusal reached the HAT beyond its registration.
    assert_eq!(routes(&hat), ["GET /publickey"]);
    assert!(hat.users().is_empty());
}

async fn owner_stranger(admin: &str) -> String {
    owner(admin).await.token
}

/// One failure switch on one route: the answer, and DEX unchanged.
/// `switch`: the route, the failure, the status DEX answers, the step its cause names.
async fn assert_switch_leaves_nothing(
    admin: &str,
    owner: &Owner,
    plug_id: &str,
    hat: &TestHat,
    switch: (&str, RouteFail, u16, &str),
) {
    let (route, fail, status, step) = switch;
    let kinds = hat_kinds(admin, hat).await;
    hat.fail_route(route, fail.clone(), None);
    let err = assert_error(
        connect(plug_id, Some(hat.address()), Some(&owner.token)).await,
        status,
        step,
    )
    .await;
    let cause = err["cause"].as_str().unwrap();
    assert!(cause.contains(hat.address()), "{route} {fail:?}: {cause}");
    hat.clear_failures();
    assert_eq!(
        hat_kinds(admin, hat).await,
        kinds,
        "{route} {fail:?}: DEX recorded something"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_failure_switch_at_every_step_leaves_dex_unchanged() {
    let (hats, cluster, admin) = setup().await;
    let owner = owner(&admin).await;
    let plug = plug(&admin, &owner, true).await;
    let id = plug["uuid"].as_str().unwrap();
    let switches = [
        (RouteFail::Status(500), 502),
        // Longer than DEX_HAT_TIMEOUT_SECS (2 s in the test stack).
        (RouteFail::Slow(Duration::from_secs(3)), 504),
        (RouteFail::Drop, 502),
    ];
    // First connection: login, create user. A fresh HAT for each, so no container holds a
    // token for it yet.
    let mut n = 0;
    for (route, step) in [
        ("GET /users/access_token", "login"),
        ("POST /users/user", "create user"),
    ] {
        for (fail, status) in &switches {
            n += 1;
            let hat = registered_hat(&hats, &format!("f{n}"), &cluster.domain).await;
            assert_switch_leaves_nothing(
                &admin,
                &owner,
                id,
                &hat,
                (route, fail.clone(), *status, step),
            )
            .await;
            assert!(hat.users().is_empty(), "{route} {fail:?}");
            if *fail == RouteFail::Drop {
                let attempts = routes(&hat).iter().filter(|r| route == *r).count();
                assert_eq!(attempts, 3, "a dropped connection is retried, boundedly");
            }
        }
    }
    // The user exists already (an earlier connection): find user, enable user.
    let hat = registered_hat(&hats, "again", &cluster.domain).await;
    plug_json(
        connect(id, Some(hat.address()), Some(&owner.token)).await,
        200,
    )
    .await;
    for (route, step) in [
        ("GET /users/user", "find user"),
        ("PUT /users/user/", "enable user"),
    ] {
        for (fail, status) in &switches {
            assert_switch_leaves_nothing(
                &admin,
                &owner,
                id,
                &hat,
                (route, fail.clone(), *status, step),
            )
            .await;
        }
    }
    assert_eq!(hat.users().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hat_that_acted_then_dropped_the_answer_gets_nothing_twice() {
    let (hats, cluster, admin) = setup().await;
    let owner = owner(&admin).await;
    let plug = plug(&admin, &owner, true).await;
    let id = plug["uuid"].as_str().unwrap();
    let hat = registered_hat(&hats, "dropper", &cluster.domain).await;
    // The HAT creates the user, then the connection breaks: DEX retries, the HAT says it
    // exists, DEX finds and enables it.
    hat.fail_route("POST /users/user", RouteFail::DropAfter, Some(1));
    plug_json(
        connect(id, Some(hat.address()), Some(&owner.token)).await,
        200,
    )
    .await;
    assert_eq!(hat.users().len(), 1);
    let connected = hat_kinds(&admin, &hat)
        .await
        .iter()
        .filter(|k| *k == "plug.connected")
        .count();
    assert_eq!(connected, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_hat_token_costs_one_new_login() {
    let (hats, cluster, admin) = setup().await;
    let owner = owner(&admin).await;
    let plug = plug(&admin, &owner, true).await;
    let id = plug["uuid"].as_str().unwrap();
    let hat = registered_hat(&hats, "revoked", &cluster.domain).await;
    plug_json(
        connect(id, Some(hat.address()), Some(&owner.token)).await,
        200,
    )
    .await;
    let logins = || {
        routes(&hat)
            .iter()
            .filter(|r| *r == "GET /users/access_token")
            .count()
    };
    let before = logins();
    hat.revoke_login_tokens();
    plug_json(
        connect(id, Some(hat.address()), Some(&owner.token)).await,
        200,
    )
    .await;
    // A container that held the revoked token got a 401 and logged in once; one that held
    // none logged in once too: never more than one login for this request.
    assert_eq!(logins(), before + 1, "{:?}", routes(&hat));
}

/// The `Data Plugs` figure of `/stats`.
async fn data_plugs_figure() -> i64 {
    let body = plug_json(Dex::new().get("/stats", None).await, 200).await;
    body.as_array()
        .unwrap()
        .iter()
        .find(|f| f["title"] == "Data Plugs")
        .and_then(|f| f["value"].as_i64())
        .expect("a Data Plugs figure")
}

/// The figure equals the number of approved plugs, read while that number held still (other
/// suites may approve plugs meanwhile; the figure lags at most 2 x DEX_STATS_CACHE_SECS).
async fn assert_figure_counts_the_listing() {
    let lag = dex_tests::support::config().stats_cache * 2 + Duration::from_millis(500);
    for _ in 0..20 {
        let before = listing().await.len();
        tokio::time::sleep(lag).await;
        let figure = data_plugs_figure().await;
        if listing().await.len() == before {
            assert_eq!(
                figure, before as i64,
                "Data Plugs is not the number of approved plugs"
            );
            return;
        }
    }
    panic!("the number of approved plugs never held still");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_plugs_figure_counts_approved_plugs() {
    let admin = admin_token().await;
    let owner = owner(&admin).await;
    assert_figure_counts_the_listing().await;
    let a = plug(&admin, &owner, true).await;
    let _b = plug(&admin, &owner, true).await;
    let _unapproved = plug(&admin, &owner, false).await;
    assert_figure_counts_the_listing().await;
    let id = a["uuid"].as_str().unwrap();
    plug_json(
        Dex::new()
            .put_json(
                &format!("/api/admin/dataplugs/{id}"),
                Some(&admin),
                &json!({"approved": false}),
            )
            .await,
        200,
    )
    .await;
    assert!(listing().await.iter().all(|e| e["plug"]["uuid"] != id));
    assert_figure_counts_the_listing().await;
}
