//! The applications registry and consent end to end (docs/decisions.md §10, §13.3,
//! §13.4), over real HTTP against the served functions and the test HAT
//! cluster: every path on the unversioned, v1.1 and v3 prefixes, every refusal with its
//! status, developer ownership, versions and history, suspended applications hidden
//! everywhere, unknown fields round-tripping, a HAT2.0-shaped fetch, `ETag` revalidation and
//! consent on the HAT's chain. Every test uses application ids of its own (a unique prefix),
//! since the listings are shared with the other suites. Run through `make test`.

use reqwest::{Method, Response};
use serde_json::{Value, json};

use dex::testing::apps::{sample_application, with_kind};
use dex_tests::hat_support::{certify_cluster, hat_history, register_hat_ok, unique_domain};
use dex_tests::support::{Dex, admin_token, assert_error, create_account, expect_json, public_url};
use dex_tests::test_hat::TestHatCluster;

const PREFIXES: [&str; 3] = ["/api", "/api/v1.1", "/api/v3"];

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// A developer account with role `developer:<id>`: (developer id, token).
async fn developer(admin: &str) -> (String, String) {
    let id = unique("dev");
    let (_, username, password) = create_account(admin, &[&format!("developer:{id}")]).await;
    (id, Dex::new().token(&username, &password).await)
}

async fn create(prefix: &str, token: &str, doc: &Value) -> Value {
    expect_json(
        Dex::new()
            .post_json(&format!("{prefix}/applications"), Some(token), doc)
            .await,
        201,
    )
    .await
}

async fn get(path: &str) -> Response {
    Dex::new().get(path, None).await
}

/// The ids of a bare array or a `PayloadWrapper` that start with `prefix`.
fn ids(listing: &Value, prefix: &str) -> Vec<String> {
    let items = listing
        .as_array()
        .or_else(|| listing["data"].as_array())
        .unwrap_or_else(|| panic!("not a listing: {listing}"));
    items
        .iter()
        .map(|a| a["id"].as_str().unwrap_or_default().to_owned())
        .filter(|id| id.starts_with(prefix))
        .collect()
}

async fn listed(prefix: &str, query: &str, mine: &str) -> Vec<String> {
    let body = expect_json(get(&format!("{prefix}/applications{query}")).await, 200).await;
    if prefix == "/api/v3" {
        assert!(
            body["data"].is_array() && body["filters"].is_object(),
            "{body}"
        );
    } else {
        assert!(body.is_array(), "{prefix}: a bare array: {body}");
    }
    ids(&body, mine)
}

async fn history_of(prefix: &str, query: &str, id: &str) -> Option<Value> {
    let body = expect_json(
        get(&format!("{prefix}/applications-history{query}")).await,
        200,
    )
    .await;
    body.as_array()
        .unwrap_or_else(|| panic!("{prefix}: history is a bare array: {body}"))
        .iter()
        .find(|h| h["current"]["id"] == id)
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_prefix_creates_publishes_replaces_versions_and_lists() {
    let admin = admin_token().await;
    let (dev, token) = developer(&admin).await;
    let dex = Dex::new();
    for prefix in PREFIXES {
        let id = unique("every");
        let created = create(prefix, &token, &sample_application(&id, &dev, "1.0.0")).await;
        assert_eq!(created["info"]["published"], false, "{prefix}");
        let fetched = expect_json(
            get(&format!("{prefix}/applications/{id}?lang=en")).await,
            200,
        )
        .await;
        assert_eq!(fetched, created, "{prefix}: unpublished, fetchable by id");
        assert_eq!(listed(prefix, "", &id).await, Vec::<String>::new());
        assert_eq!(
            listed(prefix, "?unpublished=true", &id).await,
            vec![id.clone()]
        );

        let published = expect_json(
            dex.get(&format!("{prefix}/applications/{id}/publish"), Some(&token))
                .await,
            200,
        )
        .await;
        assert_eq!(published["info"]["published"], true);
        assert_eq!(
            listed(prefix, "?unpublished=false", &id).await,
            vec![id.clone()]
        );

        let mut edit = sample_application(&id, &dev, "1.0.0");
        edit["info"]["headline"] = json!("replaced");
        edit["info"]["published"] = json!(false);
        let replaced = expect_json(
            dex.put_json(&format!("{prefix}/applications/{id}"), Some(&token), &edit)
                .await,
            200,
        )
        .await;
        assert_eq!(
            replaced["info"]["published"], true,
            "PUT keeps the publication"
        );
        assert_eq!(replaced["info"]["headline"], "replaced");

        let v2 = expect_json(
            dex.post_json(
                &format!("{prefix}/applications/{id}/versions"),
                Some(&token),
                &sample_application(&id, &dev, "1.1.0"),
            )
            .await,
            201,
        )
        .await;
        assert_eq!(v2["info"]["version"], "1.1.0");
        assert_eq!(v2["info"]["published"], true);
        let current = expect_json(get(&format!("{prefix}/applications/{id}")).await, 200).await;
        assert_eq!(current, v2);
        let history = history_of(prefix, "", &id)
            .await
            .expect("listed in the history");
        assert_eq!(history["current"], v2);
        assert_eq!(history["history"].as_array().unwrap().len(), 1);
        assert_eq!(history["history"][0]["info"]["version"], "1.0.0");
        assert_eq!(history["history"][0]["info"]["headline"], "replaced");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_has_its_status() {
    let admin = admin_token().await;
    let (dev, token) = developer(&admin).await;
    let (other_dev, other) = developer(&admin).await;
    let (_, buyer_name, buyer_password) = create_account(&admin, &["marketplace"]).await;
    let buyer = Dex::new().token(&buyer_name, &buyer_password).await;
    let dex = Dex::new();
    for prefix in PREFIXES {
        let id = unique("refuse");
        let doc = sample_application(&id, &dev, "1.0.0");
        let apps = format!("{prefix}/applications");
        let one = format!("{apps}/{id}");
        // No token, a bad token.
        assert_error(dex.post_json(&apps, None, &doc).await, 401, "").await;
        assert_error(
            dex.post_json(&apps, Some("not-a-token"), &doc).await,
            401,
            "",
        )
        .await;
        // Not the body's developer, not a developer at all.
        assert_error(
            dex.post_json(&apps, Some(&other), &doc).await,
            403,
            "developer",
        )
        .await;
        assert_error(dex.post_json(&apps, Some(&buyer), &doc).await, 403, "").await;
        create(prefix, &token, &doc).await;
        assert_error(
            dex.post_json(&apps, Some(&admin), &doc).await,
            409,
            "exists",
        )
        .await;
        // Invalid bodies.
        let mut missing = doc.clone();
        missing["info"].as_object_mut().unwrap().remove("name");
        let body = assert_error(dex.post_json(&apps, Some(&admin), &missing).await, 400, "").await;
        assert!(body.to_string().contains("name"), "{body}");
        let mut kind = sample_application(&unique("refuse"), &dev, "1.0.0");
        kind["kind"]["kind"] = json!("Gadget");
        assert_error(dex.post_json(&apps, Some(&admin), &kind).await, 400, "").await;
        let bad_version = sample_application(&unique("refuse"), &dev, "v1");
        let body = assert_error(
            dex.post_json(&apps, Some(&admin), &bad_version).await,
            400,
            "",
        )
        .await;
        assert!(body.to_string().contains("info.version"), "{body}");
        assert_error(
            dex.post_json(&apps, Some(&admin), &json!([])).await,
            400,
            "",
        )
        .await;
        // The other developer may not touch it; nobody may without a token.
        for (method, path, body) in [
            (
                Method::PUT,
                one.clone(),
                Some(sample_application(&id, &other_dev, "1.0.0")),
            ),
            (
                Method::POST,
                format!("{one}/versions"),
                Some(sample_application(&id, &other_dev, "2.0.0")),
            ),
            (Method::GET, format!("{one}/publish"), None),
            (Method::GET, format!("{one}/suspend"), None),
        ] {
            for (token, status) in [
                (None, 401),
                (Some(other.as_str()), 403),
                (Some(buyer.as_str()), 403),
            ] {
                let mut request = dex.request(method.clone(), &path, token);
                if let Some(b) = &body {
                    request = request.json(b);
                }
                assert_error(request.send().await.unwrap(), status, "").await;
            }
        }
        // The developer may not hand it to another developer id.
        assert_error(
            dex.put_json(
                &one,
                Some(&token),
                &sample_application(&id, &other_dev, "1.0.0"),
            )
            .await,
            403,
            "",
        )
        .await;
        // Versions: the same on PUT, greater on POST .../versions, the path's id.
        assert_error(
            dex.put_json(&one, Some(&token), &sample_application(&id, &dev, "1.0.1"))
                .await,
            400,
            "current version",
        )
        .await;
        for not_greater in ["1.0.0", "0.9.0"] {
            assert_error(
                dex.post_json(
                    &format!("{one}/versions"),
                    Some(&token),
                    &sample_application(&id, &dev, not_greater),
                )
                .await,
                400,
                "greater",
            )
            .await;
        }
        assert_error(
            dex.put_json(
                &one,
                Some(&token),
                &sample_application(&unique("x"), &dev, "1.0.0"),
            )
            .await,
            400,
            "path",
        )
        .await;
        // Unknown applications.
        let unknown = format!("{apps}/{}", unique("unknown"));
        assert_error(get(&unknown).await, 404, "").await;
        assert_error(
            dex.get(&format!("{unknown}/publish"), Some(&admin)).await,
            404,
            "",
        )
        .await;
        assert_error(
            dex.put_json(
                &unknown,
                Some(&admin),
                &sample_application(&id, &dev, "1.0.0"),
            )
            .await,
            404,
            "",
        )
        .await;
        // Listing queries.
        assert_error(get(&format!("{apps}?unpublished=maybe")).await, 400, "").await;
    }
    assert_error(get("/api/v3/applications?kind=Gadget").await, 400, "").await;
    assert_error(get("/api/v3/applications?limit=0").await, 400, "").await;
    assert_error(get("/api/v3/applications?limit=201").await, 400, "").await;
    // The profile: not the caller's id 403, no token 401, incomplete 400.
    let profile = json!({"id": other_dev, "name": "Not mine", "url": "https://x.example"});
    for prefix in PREFIXES {
        let path = format!("{prefix}/applications/developer");
        assert_error(dex.put_json(&path, Some(&token), &profile).await, 403, "").await;
        assert_error(dex.put_json(&path, None, &profile).await, 401, "").await;
        assert_error(
            dex.put_json(&path, Some(&token), &json!({"id": dev})).await,
            400,
            "",
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_developer_profile_shows_in_its_applications() {
    let admin = admin_token().await;
    let (dev, token) = developer(&admin).await;
    let id = unique("profile");
    create("/api/v3", &token, &sample_application(&id, &dev, "1.0.0")).await;
    let profile = json!({"id": dev, "name": "Profile Ltd", "url": "https://profile.example",
                         "logo": {"normal": "https://profile.example/l.png"}, "unknown": {"kept": true}});
    let answered = expect_json(
        Dex::new()
            .put_json("/api/v1.1/applications/developer", Some(&token), &profile)
            .await,
        200,
    )
    .await;
    assert_eq!(answered, profile);
    let fetched = expect_json(get(&format!("/api/applications/{id}")).await, 200).await;
    assert_eq!(fetched["developer"], profile);
    // An admin may write any developer's profile.
    let mut by_admin = profile.clone();
    by_admin["name"] = json!("Renamed by an admin");
    expect_json(
        Dex::new()
            .put_json("/api/v3/applications/developer", Some(&admin), &by_admin)
            .await,
        200,
    )
    .await;
    let fetched = expect_json(get(&format!("/api/v3/applications/{id}")).await, 200).await;
    assert_eq!(fetched["developer"]["name"], "Renamed by an admin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspended_applications_are_hidden_everywhere_but_stay_manageable() {
    let admin = admin_token().await;
    let (dev, token) = developer(&admin).await;
    let hats = TestHatCluster::start().await;
    let (user, password) = hats.platform_credentials();
    let cluster = certify_cluster(&admin, &unique_domain(), (&user, &password)).await;
    let hat = tokio::task::block_in_place(|| hats.add_hat(&format!("susp.{}", cluster.domain)));
    register_hat_ok(hat.address()).await;
    let hat_token = hat.dex_token(&public_url());
    let dex = Dex::new();

    let id = unique("susp");
    create(
        "/api/v1.1",
        &token,
        &with_kind(sample_application(&id, &dev, "1.0.0"), "Tool"),
    )
    .await;
    expect_json(
        dex.get(&format!("/api/applications/{id}/publish"), Some(&token))
            .await,
        200,
    )
    .await;
    let suspended = expect_json(
        dex.get(&format!("/api/v3/applications/{id}/suspend"), Some(&token))
            .await,
        200,
    )
    .await;
    assert_eq!(suspended["info"]["published"], false);
    for prefix in PREFIXES {
        assert_error(
            get(&format!("{prefix}/applications/{id}?lang=en")).await,
            404,
            "",
        )
        .await;
        for query in ["", "?unpublished=true"] {
            assert_eq!(
                listed(prefix, query, &id).await,
                Vec::<String>::new(),
                "{prefix}{query}"
            );
            assert!(
                history_of(prefix, query, &id).await.is_none(),
                "{prefix}{query}"
            );
        }
    }
    assert_eq!(
        listed("/api/v3", "?unpublished=true&kind=Tool", &id).await,
        Vec::<String>::new()
    );
    for path in [
        "/api/users/register-consent",
        "/api/v3/users/register-consent",
    ] {
        assert_error(
            dex.get(&format!("{path}/{id}"), Some(&hat_token)).await,
            404,
            "",
        )
        .await;
    }
    // Its developer can still replace, version and publish it.
    expect_json(
        dex.put_json(
            &format!("/api/applications/{id}"),
            Some(&token),
            &with_kind(sample_application(&id, &dev, "1.0.0"), "Tool"),
        )
        .await,
        200,
    )
    .await;
    expect_json(
        dex.post_json(
            &format!("/api/v3/applications/{id}/versions"),
            Some(&admin),
            &with_kind(sample_application(&id, &dev, "2.0.0"), "Tool"),
        )
        .await,
        201,
    )
    .await;
    assert_error(get(&format!("/api/v3/applications/{id}")).await, 404, "").await;
    expect_json(
        dex.get(
            &format!("/api/v1.1/applications/{id}/publish"),
            Some(&token),
        )
        .await,
        200,
    )
    .await;
    let back = expect_json(get(&format!("/api/v3/applications/{id}")).await, 200).await;
    assert_eq!(
        (
            back["info"]["version"].as_str(),
            back["info"]["published"].as_bool()
        ),
        (Some("2.0.0"), Some(true))
    );
    assert_eq!(listed("/api/v3", "?kind=Tool", &id).await, vec![id.clone()]);
    expect_json(
        dex.get(
            &format!("/api/users/register-consent/{id}"),
            Some(&hat_token),
        )
        .await,
        200,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_fields_round_trip_at_every_level() {
    let admin = admin_token().await;
    let (dev, token) = developer(&admin).await;
    let id = unique("round");
    let mut sent = sample_application(&id, &dev, "1.0.0");
    sent["permissions"]["dataRequired"] =
        json!({"bundle": {"name": "legacy"}, "rolling": false, "weird": [null, 1.5]});
    sent["setup"]["preferences"] = json!({"endpoint": "e", "preferences": {"p": {"setting": "s", "description": "d", "kind": "k"}}});
    sent["info"]["dataPreview"][0]["location"] =
        json!({"geo": {"longitude": 1.25, "latitude": -3.5}, "x": "y"});
    let created = create("/api/v3", &token, &sent).await;
    let mut expected = sent.clone();
    expected["info"]["published"] = json!(false);
    assert_eq!(created, expected);
    for prefix in PREFIXES {
        let fetched = expect_json(get(&format!("{prefix}/applications/{id}")).await, 200).await;
        assert_eq!(fetched, expected, "{prefix}");
    }
    let listed_doc = expect_json(get("/api/v1.1/applications?unpublished=true").await, 200).await;
    let found = listed_doc
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id.as_str())
        .cloned();
    assert_eq!(found, Some(expected));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hat2_shaped_fetch_pages_and_filters() {
    let admin = admin_token().await;
    let (dev, token) = developer(&admin).await;
    let mine = unique("hatfetch");
    let kinds = ["App", "DataPlug", "App", "Contract", "App"];
    let ids: Vec<String> = (0..kinds.len()).map(|i| format!("{mine}-{i}")).collect();
    for (id, kind) in ids.iter().zip(kinds) {
        create(
            "/api",
            &token,
            &with_kind(sample_application(id, &dev, "1.0.0"), kind),
        )
        .await;
    }
    for id in &ids[..4] {
        expect_json(
            Dex::new()
                .get(&format!("/api/v3/applications/{id}/publish"), Some(&token))
                .await,
            200,
        )
        .await;
    }
    // What HAT2.0 asks: the list (beta HATs with unpublished) and one application with lang.
    assert_eq!(
        listed("/api/v1.1", "?unpublished=false", &mine).await,
        ids[..4].to_vec()
    );
    assert_eq!(listed("/api/v3", "?unpublished=true", &mine).await, ids);
    let one = expect_json(
        get(&format!("/api/v3/applications/{}?lang=en", ids[1])).await,
        200,
    )
    .await;
    assert_eq!(one["kind"]["kind"], "DataPlug");
    // v3 pages from startId, `next` where the next page starts.
    let mut start = ids[0].clone();
    let mut seen = Vec::new();
    loop {
        let page = expect_json(
            get(&format!(
                "/api/v3/applications?unpublished=true&startId={start}&limit=2"
            ))
            .await,
            200,
        )
        .await;
        assert_eq!(
            page["paginationParameters"],
            json!({"startId": start, "limit": 2})
        );
        assert_eq!(page["filters"]["unpublished"], true);
        assert!(page["data"].as_array().unwrap().len() <= 2);
        seen.extend(ids_of(&page, &mine));
        match page["next"].as_str() {
            Some(next) if next.starts_with(&mine) => start = next.to_owned(),
            _ => break,
        }
    }
    assert_eq!(seen, ids);
    assert_eq!(
        listed("/api/v3", &format!("?kind=App&startId={mine}"), &mine).await,
        vec![ids[0].clone(), ids[2].clone()]
    );
    let filtered = expect_json(
        get(&format!(
            "/api/v3/applications?kind=App&unpublished=true&startId={mine}"
        ))
        .await,
        200,
    )
    .await;
    assert_eq!(
        filtered["filters"],
        json!({"unpublished": true, "kind": "App"})
    );
    assert_eq!(
        ids_of(&filtered, &mine),
        vec![ids[0].clone(), ids[2].clone(), ids[4].clone()]
    );
}

fn ids_of(page: &Value, mine: &str) -> Vec<String> {
    ids(page, mine)
}

/// The `ETag` of `path`, after checking that sending it back answers 304 without a body.
/// The lists are shared with the other suites, which may change them between the two
/// requests: a few attempts, one of which must revalidate.
async fn revalidates(dex: &Dex, path: &str) -> String {
    for _ in 0..5 {
        let first = get(path).await;
        assert_eq!(first.status(), 200, "{path}");
        let tag = first.headers()["etag"].to_str().unwrap().to_owned();
        assert!(tag.starts_with('"') && tag.ends_with('"'), "{path}: {tag}");
        let again = dex
            .request(Method::GET, path, None)
            .header("If-None-Match", &tag)
            .send()
            .await
            .unwrap();
        if again.status() == 304 {
            assert_eq!(again.headers()["etag"].to_str().unwrap(), tag);
            assert!(
                again.bytes().await.unwrap().is_empty(),
                "{path}: 304 has no body"
            );
            return tag;
        }
        assert_eq!(again.status(), 200, "{path}");
    }
    panic!("{path}: its ETag never revalidated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_revalidate_with_their_etag() {
    let admin = admin_token().await;
    let (dev, token) = developer(&admin).await;
    let id = unique("etag");
    create("/api/v3", &token, &sample_application(&id, &dev, "1.0.0")).await;
    let dex = Dex::new();
    let paths = [
        format!("/api/v3/applications/{id}?lang=en"),
        "/api/v1.1/applications?unpublished=true".to_owned(),
        format!("/api/v3/applications?unpublished=true&startId={id}&limit=1"),
        "/api/applications-history?unpublished=true".to_owned(),
    ];
    let mut tags = Vec::new();
    for path in &paths {
        tags.push(revalidates(&dex, path).await);
        let other = dex
            .request(Method::GET, path, None)
            .header("If-None-Match", "\"something-else\"")
            .send()
            .await
            .unwrap();
        assert_eq!(other.status(), 200, "{path}");
    }
    // A change makes the application's and its listings' validators stale.
    let mut edit = sample_application(&id, &dev, "1.0.0");
    edit["info"]["headline"] = json!("changed");
    expect_json(
        dex.put_json(&format!("/api/v3/applications/{id}"), Some(&token), &edit)
            .await,
        200,
    )
    .await;
    for (path, tag) in paths.iter().zip(&tags) {
        let after = dex
            .request(Method::GET, path, None)
            .header("If-None-Match", tag)
            .send()
            .await
            .unwrap();
        assert_eq!(after.status(), 200, "{path}: the old validator is stale");
        assert_ne!(after.headers()["etag"].to_str().unwrap(), tag);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_is_recorded_each_time_on_the_hats_chain() {
    let admin = admin_token().await;
    let (dev, token) = developer(&admin).await;
    let hats = TestHatCluster::start().await;
    let (user, password) = hats.platform_credentials();
    let cluster = certify_cluster(&admin, &unique_domain(), (&user, &password)).await;
    let hat = tokio::task::block_in_place(|| hats.add_hat(&format!("consent.{}", cluster.domain)));
    register_hat_ok(hat.address()).await;
    let hat_token = hat.dex_token(&public_url());
    let dex = Dex::new();
    let id = unique("consent");
    create("/api/v3", &token, &sample_application(&id, &dev, "1.0.0")).await;

    let first = expect_json(
        dex.get(
            &format!("/api/users/register-consent/{id}"),
            Some(&hat_token),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        first,
        json!({"message": "consent recorded", "applicationId": id, "version": "1.0.0", "hat": hat.address()})
    );
    expect_json(
        dex.post_json(
            &format!("/api/v3/applications/{id}/versions"),
            Some(&token),
            &sample_application(&id, &dev, "1.1.0"),
        )
        .await,
        201,
    )
    .await;
    let second = expect_json(
        dex.get(
            &format!("/api/v3/users/register-consent/{id}"),
            Some(&hat_token),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(second["version"], "1.1.0");
    // Refusals: no token, a DEX token, an unknown application.
    assert_error(
        dex.get(&format!("/api/users/register-consent/{id}"), None)
            .await,
        401,
        "",
    )
    .await;
    assert_error(
        dex.get(&format!("/api/users/register-consent/{id}"), Some(&admin))
            .await,
        401,
        "",
    )
    .await;
    assert_error(
        dex.get(
            &format!("/api/v3/users/register-consent/{}", unique("none")),
            Some(&hat_token),
        )
        .await,
        404,
        "",
    )
    .await;

    let by_hat = expect_json(
        dex.get(
            &format!("/api/admin/consents?hat={}", hat.address()),
            Some(&admin),
        )
        .await,
        200,
    )
    .await;
    let versions: Vec<&str> = by_hat["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, vec!["1.1.0", "1.0.0"], "both kept, newest first");
    let by_app = expect_json(
        dex.get(
            &format!("/api/admin/consents?applicationId={id}"),
            Some(&admin),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(by_app["items"].as_array().unwrap().len(), 2);
    let both = expect_json(
        dex.get(
            &format!(
                "/api/admin/consents?hat={}&applicationId={id}&limit=1",
                hat.address()
            ),
            Some(&admin),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(both["items"].as_array().unwrap().len(), 1);
    let cursor = both["cursor"].as_str().expect("a second page");
    let rest = expect_json(
        dex.get(
            &format!(
                "/api/admin/consents?hat={}&applicationId={id}&limit=1&cursor={cursor}",
                hat.address()
            ),
            Some(&admin),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(rest["items"][0]["version"], "1.0.0");
    let (_, name, pw) = create_account(&admin, &[]).await;
    let plain = dex.token(&name, &pw).await;
    assert_error(dex.get("/api/admin/consents", Some(&plain)).await, 403, "").await;
    assert_error(dex.get("/api/admin/consents", None).await, 401, "").await;

    let chain: Vec<_> = hat_history(&admin, hat.address())
        .await
        .into_iter()
        .filter(|e| e.kind == "consent.recorded")
        .collect();
    assert_eq!(chain.len(), 2);
    assert!(
        chain
            .iter()
            .all(|e| e.details["applicationId"] == id.as_str())
    );
    assert_eq!(chain[1].details["version"], "1.1.0");
}

/// Runs dexctl with the test's environment (DEX_TABLE, AWS_*), expects success, parses its
/// JSON output.
async fn dexctl(args: &[&str]) -> Value {
    let mut command = std::process::Command::new(dex_tests::routes::built_binary("dexctl"));
    command
        .args(args)
        .current_dir(dex_tests::routes::workspace_root());
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("dexctl thread")
        .unwrap_or_else(|e| panic!("cannot run dexctl: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "dexctl {args:?} failed ({}): {}{stdout}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("dexctl {args:?} printed no JSON ({e}): {stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dexctl_lists_publishes_and_suspends() {
    let admin = admin_token().await;
    let (dev, token) = developer(&admin).await;
    let id = unique("dexctl");
    create("/api/v3", &token, &sample_application(&id, &dev, "1.0.0")).await;
    let published = dexctl(&["apps", "publish", &id]).await;
    assert_eq!(
        (published["id"].as_str(), published["published"].as_bool()),
        (Some(id.as_str()), Some(true))
    );
    assert_eq!(listed("/api/v1.1", "", &id).await, vec![id.clone()]);
    let suspended = dexctl(&["apps", "suspend", &id]).await;
    assert_eq!(suspended["suspended"], true);
    assert_error(get(&format!("/api/v1.1/applications/{id}")).await, 404, "").await;
    let all = dexctl(&["apps", "list"]).await;
    let line = all
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id.as_str())
        .cloned();
    assert_eq!(
        line.map(|l| (
            l["developerId"].clone(),
            l["version"].clone(),
            l["suspended"].clone()
        )),
        Some((json!(dev), json!("1.0.0"), json!(true))),
        "operators see suspended applications"
    );
    let only_suspended = dexctl(&["apps", "list", "--suspended"]).await;
    assert!(
        only_suspended
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["suspended"] == true)
    );
    let log: Vec<String> = dex_tests::hat_support::subject_log(&admin, &format!("app:{id}"))
        .await
        .into_iter()
        .map(|e| format!("{} {}", e.kind, e.actor))
        .collect();
    assert_eq!(log[1..], ["app.published dexctl", "app.suspended dexctl"]);
}
