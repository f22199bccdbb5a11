//! Request limits and what the fuzzer found (issue 8), through real HTTP: bodies that are not
//! UTF-8, JSON nested too deep, over-long strings and lists, `null` where a value must be,
//! cursors of another listing, `from` after `to`, unknown references, and description names
//! too long together for a key.

use dex_tests::hat_support::{cluster_body, unique_domain};
use dex_tests::stats_support::{StatsCluster, report_token};
use dex_tests::support::{Dex, admin_token, assert_error, create_account, expect_json, url_encode};
use reqwest::Method;
use serde_json::{Value, json};

/// Bytes that are not UTF-8, sent as `application/json`.
const NOT_UTF8: &[u8] = b"[{\"statsType\": \"inbound\xff\xfe\"}]";

#[tokio::test]
async fn a_body_that_is_not_utf8_gets_dex_s_own_400() {
    let dex = Dex::new();
    let stats = StatsCluster::start(&["utf8"]).await;
    let token = report_token(&stats.hats[0]);
    let resp = dex
        .send_raw(
            Method::POST,
            "/stats/report",
            Some(&token),
            NOT_UTF8.to_vec(),
        )
        .await;
    let err = assert_error(resp, 400, "malformed JSON body").await;
    assert!(err["details"][0].as_str().is_some(), "{err}");

    let admin = admin_token().await;
    for path in ["/api/admin/clusters", "/stats/available-data/descriptions"] {
        let resp = dex
            .send_raw(Method::POST, path, Some(&admin), NOT_UTF8.to_vec())
            .await;
        assert_error(resp, 400, "malformed").await;
    }
}

#[tokio::test]
async fn json_nested_deeper_than_32_levels_is_refused() {
    let dex = Dex::new();
    let admin = admin_token().await;
    let body = |username: &str, depth: usize| {
        format!(
            r#"{{"username": "{username}", "password": "a long enough password", "roles": [], "x": {}1{}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        )
    };
    let resp = dex
        .send_raw(
            Method::POST,
            "/api/admin/accounts",
            Some(&admin),
            body("deep@dex.test", 40),
        )
        .await;
    let err = assert_error(resp, 400, "malformed JSON body").await;
    assert!(err["details"][0].as_str().unwrap().contains("32"), "{err}");
    // 32 levels are fine (the unknown field is ignored).
    let username = format!("deep-{}@dex.test", uuid::Uuid::new_v4().simple());
    let resp = dex
        .send_raw(
            Method::POST,
            "/api/admin/accounts",
            Some(&admin),
            body(&username, 31),
        )
        .await;
    expect_json(resp, 201).await;
}

#[tokio::test]
async fn account_inputs_are_bounded_and_null_is_not_a_value() {
    let dex = Dex::new();
    let admin = admin_token().await;
    let roles: Vec<String> = (0..33).map(|i| format!("developer:d{i}")).collect();
    let body =
        json!({"username": "roles@dex.test", "password": "a long enough password", "roles": roles});
    let err = assert_error(
        dex.post_json("/api/admin/accounts", Some(&admin), &body)
            .await,
        400,
        "invalid account",
    )
    .await;
    assert!(err.to_string().contains("roles: at most 32 items"), "{err}");

    let (id, _, _) = create_account(&admin, &[]).await;
    let path = format!("/api/admin/accounts/{id}");
    for body in [json!({"disabled": null}), json!({"roles": null})] {
        assert_error(dex.put_json(&path, Some(&admin), &body).await, 400, "").await;
    }
    let err = assert_error(
        dex.put_json(&path, Some(&admin), &json!({ "roles": roles }))
            .await,
        400,
        "",
    )
    .await;
    assert!(err.to_string().contains("at most 32"), "{err}");
    // Nothing changed.
    let account = expect_json(dex.get(&path, Some(&admin)).await, 200).await;
    assert_eq!(account["roles"], json!([]), "{account}");
    assert_eq!(account["disabled"], json!(false), "{account}");
}

#[tokio::test]
async fn cluster_inputs_are_bounded_and_unknown_provisioners_are_404() {
    let dex = Dex::new();
    let admin = admin_token().await;
    let long_password = "p".repeat(1025);
    let body = cluster_body(&unique_domain(), ("platform", &long_password), &[]);
    let err = assert_error(
        dex.post_json("/api/admin/clusters", Some(&admin), &body)
            .await,
        400,
        "invalid cluster",
    )
    .await;
    assert!(
        err.to_string().contains("platformPassword: at most 1024"),
        "{err}"
    );

    let many: Vec<String> = (0..101).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let body = cluster_body(&unique_domain(), ("platform", "secret"), &many);
    let err = assert_error(
        dex.post_json("/api/admin/clusters", Some(&admin), &body)
            .await,
        400,
        "",
    )
    .await;
    assert!(
        err.to_string().contains("provisioners: at most 100"),
        "{err}"
    );

    let unknown = uuid::Uuid::new_v4().to_string();
    let body = cluster_body(&unique_domain(), ("platform", "secret"), &[&unknown]);
    let err = assert_error(
        dex.post_json("/api/admin/clusters", Some(&admin), &body)
            .await,
        404,
        "no provisioner account",
    )
    .await;
    assert!(err.to_string().contains(&unknown), "{err}");

    // `provisioners` may be left out: a cluster without provisioners.
    let domain = unique_domain();
    let body =
        json!({"domain": domain, "platformUsername": "platform", "platformPassword": "secret"});
    let cluster = expect_json(
        dex.post_json("/api/admin/clusters", Some(&admin), &body)
            .await,
        201,
    )
    .await;
    assert_eq!(cluster["provisioners"], json!([]), "{cluster}");
}

#[tokio::test]
async fn log_filters_are_bounded_and_a_backwards_range_is_empty() {
    let dex = Dex::new();
    let admin = admin_token().await;
    for name in ["subject", "actor", "kind"] {
        let path = format!("/api/admin/log?{name}={}", url_encode(&"s".repeat(257)));
        let err = assert_error(dex.get(&path, Some(&admin)).await, 400, "too long").await;
        assert!(err.to_string().contains(name), "{err}");
    }
    let path = format!("/api/admin/log?cursor={}", "c".repeat(2049));
    assert_error(dex.get(&path, Some(&admin)).await, 400, "").await;
    assert_error(
        dex.get("/api/admin/log?cursor=", Some(&admin)).await,
        400,
        "",
    )
    .await;
    let path = format!("/api/admin/log?from={}", "1".repeat(65));
    assert_error(dex.get(&path, Some(&admin)).await, 400, "").await;
    // `from` after `to`: no entry can match, an empty last page.
    let page = expect_json(
        dex.get("/api/admin/log?from=2000&to=1000", Some(&admin))
            .await,
        200,
    )
    .await;
    assert_eq!(page, json!({"items": [], "cursor": null}));
}

#[tokio::test]
async fn a_cursor_works_only_for_the_listing_that_returned_it() {
    let dex = Dex::new();
    let admin = admin_token().await;
    for _ in 0..2 {
        create_account(&admin, &[]).await;
    }
    let page = expect_json(
        dex.get("/api/admin/accounts?limit=1", Some(&admin)).await,
        200,
    )
    .await;
    let cursor = page["cursor"].as_str().expect("a next page").to_owned();
    let next = format!("/api/admin/accounts?limit=1&cursor={}", url_encode(&cursor));
    expect_json(dex.get(&next, Some(&admin)).await, 200).await;
    for other in ["/api/admin/log", "/api/admin/hats"] {
        let path = format!("{other}?cursor={}", url_encode(&cursor));
        assert_error(dex.get(&path, Some(&admin)).await, 400, "cursor").await;
    }
}

#[tokio::test]
async fn descriptions_are_bounded() {
    let dex = Dex::new();
    let admin = admin_token().await;
    let post = |body: Value| {
        let admin = admin.clone();
        async move {
            Dex::new()
                .post_json("/stats/available-data/descriptions", Some(&admin), &body)
                .await
        }
    };
    let ns = format!("limits{}", uuid::Uuid::new_v4().simple());
    let cases = [
        (
            json!([{"namespace": ns, "description": "d".repeat(2001)}]),
            "2000 characters",
        ),
        (
            json!([{"namespace": "n".repeat(513), "description": "x"}]),
            "512 characters",
        ),
        (
            json!([{"namespace": ns, "endpoints": [{"endpoint": "e".repeat(513), "description": "x"}]}]),
            "512 characters",
        ),
        (
            json!(
                (0..201)
                    .map(|i| json!({"namespace": format!("{ns}{i}")}))
                    .collect::<Vec<_>>()
            ),
            "at most 200 namespaces",
        ),
        (
            json!([{"namespace": ns, "endpoints": [{"endpoint": "feed", "fields":
                (0..201).map(|i| json!({"name": format!("f{i}"), "description": "x"})).collect::<Vec<_>>()}]}]),
            "at most 200 fields",
        ),
    ];
    for (body, detail) in cases {
        let err = assert_error(post(body).await, 400, "invalid descriptions").await;
        assert!(err.to_string().contains(detail), "{detail}: {err}");
    }
    // Nothing of the refused requests was kept.
    let tree = expect_json(dex.get("/stats/available-data", None).await, 200).await;
    assert!(
        !tree.to_string().contains(&ns),
        "a refused description was merged"
    );
    // Within the limits, even names too long together for a sort key: merged and read back.
    let long_endpoint = format!("e{}", "é".repeat(500));
    let body = json!([{"namespace": ns, "description": "d".repeat(2000), "endpoints": [
        {"endpoint": long_endpoint, "description": "long", "fields": [
            {"name": "n".repeat(512), "description": null, "fields": null, "count": null}]}]}]);
    let tree = expect_json(post(body).await, 200).await;
    let namespace = tree
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["namespace"] == ns.as_str())
        .unwrap_or_else(|| panic!("{ns} not merged"));
    assert_eq!(
        namespace["endpoints"][0]["endpoint"],
        long_endpoint.as_str()
    );
    assert_eq!(namespace["endpoints"][0]["description"], "long");
}
