//! Notices end to end (docs/decisions.md §13 "Notices"), over real HTTP against the served
//! functions with real test-HAT tokens: an admin posts notices addressed to one HAT, to
//! every HAT and to a role (which matches no HAT yet); each HAT lists exactly what is
//! addressed to it, newest first; marking read twice keeps the first read time and logs one
//! `notice.read` on the HAT's chain; every refusal with its status. Run through `make test`.

use std::time::Duration;

use serde_json::{Value, json};

use dex_tests::hat_support::{
    certify_cluster, hat_history, register_hat_ok, subject_log, unique_domain,
};
use dex_tests::support::{Dex, admin_token, assert_error, create_account, expect_json, public_url};
use dex_tests::test_hat::{TestHat, TestHatCluster};

async fn post(admin: &str, body: &Value) -> Value {
    expect_json(
        Dex::new()
            .post_json("/api/notices", Some(admin), body)
            .await,
        200,
    )
    .await
}

async fn list(hat: &TestHat) -> Vec<Value> {
    let token = hat.dex_token(&public_url());
    let body = expect_json(Dex::new().get("/api/notices", Some(&token)).await, 200).await;
    body.as_array().expect("a bare array").clone()
}

async fn mark_read(hat: &TestHat, id: &str) -> reqwest::Response {
    let token = hat.dex_token(&public_url());
    Dex::new()
        .request(
            reqwest::Method::PUT,
            &format!("/api/notices/{id}/read"),
            Some(&token),
        )
        .send()
        .await
        .expect("DEX answers")
}

fn ids(items: &[Value]) -> Vec<u64> {
    items
        .iter()
        .map(|i| i["notice"]["id"].as_u64().unwrap())
        .collect()
}

struct Hats {
    _cluster: TestHatCluster,
    alice: TestHat,
    bob: TestHat,
}

async fn two_registered_hats(admin: &str) -> Hats {
    let cluster = TestHatCluster::start().await;
    let domain = unique_domain();
    let (user, password) = cluster.platform_credentials();
    certify_cluster(admin, &domain, (&user, &password)).await;
    let (alice, bob) = tokio::task::block_in_place(|| {
        (
            cluster.add_hat(&format!("alice.{domain}")),
            cluster.add_hat(&format!("bob.{domain}")),
        )
    });
    register_hat_ok(alice.address()).await;
    register_hat_ok(bob.address()).await;
    Hats {
        _cluster: cluster,
        alice,
        bob,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_hat_lists_what_is_addressed_to_it_and_the_first_read_stays() {
    let admin = admin_token().await;
    let hats = two_registered_hats(&admin).await;
    let (alice, bob) = (&hats.alice, &hats.bob);

    // The address in another case: DNS names compare without case.
    let to_alice = post(
        &admin,
        &json!({"message": "Your HAT moves tonight", "target": {"withHatAddress": [alice.address().to_uppercase()]}}),
    )
    .await;
    let to_all = post(&admin, &json!({"message": "Welcome to the exchange"})).await;
    let to_owners = post(
        &admin,
        &json!({"message": "Owners only", "target": {"withAnyRole": ["owner"], "withHatAddress": []}}),
    )
    .await;
    let (a, e, r) = (
        to_alice["id"].as_u64().expect("an integer id"),
        to_all["id"].as_u64().unwrap(),
        to_owners["id"].as_u64().unwrap(),
    );
    assert!(
        a >= 1 && a < e && e < r,
        "ids in posting order: {a} {e} {r}"
    );
    assert_eq!(to_all["target"], json!({}));
    assert_eq!(
        to_alice["target"],
        json!({"withHatAddress": [alice.address()]}),
        "kept as DEX keeps HAT addresses"
    );
    let created = to_alice["dateCreated"].as_i64().unwrap();
    assert!(created > 1_700_000_000_000, "epoch ms: {created}");

    let alices = list(alice).await;
    let alice_ids = ids(&alices);
    assert!(
        alice_ids.contains(&a) && alice_ids.contains(&e),
        "{alice_ids:?}"
    );
    assert!(
        !alice_ids.contains(&r),
        "a role matches no HAT yet: {alice_ids:?}"
    );
    let mut sorted = alice_ids.clone();
    sorted.sort_unstable_by(|x, y| y.cmp(x));
    assert_eq!(alice_ids, sorted, "newest first");
    let mine = alices.iter().find(|i| i["notice"]["id"] == a).unwrap();
    assert_eq!(mine["notice"], to_alice);
    assert_eq!(mine["received"], created);
    assert!(mine.get("read").is_none(), "{mine}");

    let bob_ids = ids(&list(bob).await);
    assert!(bob_ids.contains(&e), "{bob_ids:?}");
    assert!(
        !bob_ids.contains(&a) && !bob_ids.contains(&r),
        "{bob_ids:?}"
    );

    // Not addressed, unknown or not a notice id: 404.
    for (hat, id) in [
        (bob, a.to_string()),
        (alice, r.to_string()),
        (alice, "999999999999".into()),
        (alice, "0".into()),
        (alice, "first".into()),
    ] {
        assert_error(mark_read(hat, &id).await, 404, "notice").await;
    }

    let first = expect_json(mark_read(alice, &a.to_string()).await, 200).await;
    let read = first["read"].as_i64().expect("the read time");
    assert!(read >= created, "{first}");
    assert_eq!(first["notice"], to_alice);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let again = expect_json(mark_read(alice, &a.to_string()).await, 200).await;
    assert_eq!(again["read"], read, "the first read time stays");
    let listed = list(alice).await;
    let item = listed.iter().find(|i| i["notice"]["id"] == a).unwrap();
    assert_eq!(item["read"], read);
    // Bob reads the notice to every HAT: his read is his own.
    expect_json(mark_read(bob, &e.to_string()).await, 200).await;
    let alice_everyone = list(alice).await;
    let item = alice_everyone
        .iter()
        .find(|i| i["notice"]["id"] == e)
        .unwrap();
    assert!(item.get("read").is_none(), "{item}");

    let reads: Vec<_> = hat_history(&admin, alice.address())
        .await
        .into_iter()
        .filter(|entry| entry.kind == "notice.read")
        .collect();
    assert_eq!(reads.len(), 1, "one read logged: {reads:?}");
    assert_eq!(reads[0].details["noticeId"], a);
    assert_eq!(reads[0].actor, format!("hat:{}", alice.address()));
    let posted = subject_log(&admin, &format!("notice:{a}")).await;
    assert_eq!(posted.len(), 1, "{posted:?}");
    assert_eq!(posted[0].kind, "notice.posted");
    assert_eq!(posted[0].details["message"], "Your HAT moves tonight");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_have_their_statuses() {
    let admin = admin_token().await;
    let dex = Dex::new();
    let body = json!({"message": "hello"});
    assert_error(dex.post_json("/api/notices", None, &body).await, 401, "").await;
    let (_, username, password) = create_account(&admin, &["marketplace"]).await;
    let buyer = dex.token(&username, &password).await;
    assert_error(
        dex.post_json("/api/notices", Some(&buyer), &body).await,
        403,
        "admin",
    )
    .await;
    for bad in [
        json!({}),
        json!({"message": ""}),
        json!({"message": "x".repeat(4001)}),
        json!({"message": "x", "target": null}),
        json!({"message": "x", "target": {"withHatAddress": null}}),
        json!({"message": "x", "target": {"withHatAddress": "alice.hubat.net"}}),
        json!(["not", "an", "object"]),
    ] {
        assert_error(
            dex.post_json("/api/notices", Some(&admin), &bad).await,
            400,
            "",
        )
        .await;
    }
    // The HAT routes take a HAT's token, not a DEX one.
    assert_error(dex.get("/api/notices", None).await, 401, "").await;
    assert_error(dex.get("/api/notices", Some(&admin)).await, 401, "").await;
    let put = dex
        .request(reqwest::Method::PUT, "/api/notices/1/read", Some(&admin))
        .send()
        .await
        .unwrap();
    assert_error(put, 401, "").await;
}
