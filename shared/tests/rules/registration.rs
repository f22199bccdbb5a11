//! Registration: new HAT, same key again, a different key (409, or a provisioner's re-key),
//! and every refusal.

use dex::hats::HatStore;
use dex::hats::register::{Outcome, RegisterHat};
use dex::roles::Role;
use dex::stats::{HATS_COUNTER, StatsStore};
use dex::testing::HatReply;

use crate::support::{World, hat_key, status};

fn request(address: &str) -> RegisterHat {
    RegisterHat {
        hat_address: address.into(),
        application_id: None,
    }
}

async fn hats_counted(w: &World) -> i64 {
    w.store.figures(&[HATS_COUNTER]).await.unwrap()[HATS_COUNTER].0
}

#[tokio::test]
async fn a_new_hat_registers_and_the_same_key_again_is_idempotent() {
    let w = World::new().await;
    w.cluster("hubat.net", &[]).await;
    w.hats.serve_key("alice.hubat.net", &hat_key(0).public_pem);
    let (hat, outcome) = w
        .registration()
        .register(request(" alice.hubat.net "), None)
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Registered);
    assert_eq!(hat.cluster, "hubat.net");
    assert_eq!(hat.public_key_pem, hat_key(0).public_pem, "kept verbatim");
    assert_eq!(
        w.store.get_hat("alice.hubat.net").await.unwrap(),
        Some(hat.clone())
    );
    assert_eq!(hats_counted(&w).await, 1);
    let log = w.history("hat:alice.hubat.net").await;
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0].kind.as_str(), log[0].actor.as_str()),
        ("hat.registered", "anonymous")
    );
    assert_eq!(log[0].details["keyBits"], 2048);

    let (again, outcome) = w
        .registration()
        .register(request("alice.hubat.net"), None)
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::AlreadyRegistered);
    assert_eq!(again, hat);
    assert_eq!(hats_counted(&w).await, 1, "counted once");
    assert_eq!(
        w.history("hat:alice.hubat.net").await.len(),
        1,
        "nothing logged"
    );
    assert_eq!(w.hats.calls(), ["alice.hubat.net", "alice.hubat.net"]);
}

#[tokio::test]
async fn concurrent_registrations_of_one_hat_count_it_once() {
    let w = World::new().await;
    w.cluster("hubat.net", &[]).await;
    w.hats.serve_key("bob.hubat.net", &hat_key(0).public_pem);
    let reg = w.registration();
    let (a, b) = tokio::join!(
        reg.register(request("bob.hubat.net"), None),
        reg.register(request("bob.hubat.net"), None)
    );
    let mut outcomes = vec![a.unwrap().1, b.unwrap().1];
    outcomes.sort_by_key(|o| o.message());
    assert_eq!(outcomes, [Outcome::AlreadyRegistered, Outcome::Registered]);
    assert_eq!(hats_counted(&w).await, 1);
    assert_eq!(w.history("hat:bob.hubat.net").await.len(), 1);
}

#[tokio::test]
async fn a_different_key_needs_a_provisioner_of_the_cluster() {
    let w = World::new().await;
    let provisioner = w.account("prov@dex.test", &[]).await;
    let other = w
        .account("other@dex.test", &["admin", "provisioner:other.net"])
        .await;
    w.cluster("hubat.net", &[&provisioner]).await;
    w.cluster("other.net", &[&other]).await;
    w.hats.serve_key("carol.hubat.net", &hat_key(0).public_pem);
    let (first, _) = w
        .registration()
        .register(request("carol.hubat.net"), None)
        .await
        .unwrap();
    w.hats.serve_key("carol.hubat.net", &hat_key(1).public_pem);

    let conflict = status(
        w.registration()
            .register(request("carol.hubat.net"), None)
            .await,
        409,
    );
    assert!(conflict.to_string().contains("provisioner"), "{conflict}");
    let other_token = w.token("other@dex.test").await;
    status(
        w.registration()
            .register(request("carol.hubat.net"), Some(&other_token))
            .await,
        403,
    );
    status(
        w.registration()
            .register(request("carol.hubat.net"), Some("forged"))
            .await,
        401,
    );
    assert_eq!(
        w.store.get_hat("carol.hubat.net").await.unwrap(),
        Some(first.clone()),
        "unchanged"
    );

    let token = w.token("prov@dex.test").await;
    assert!(
        w.authorize(&token, &Role::Provisioner("hubat.net".into()))
            .await
            .is_ok()
    );
    let (rekeyed, outcome) = w
        .registration()
        .register(request("carol.hubat.net"), Some(&token))
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::KeyReplaced);
    assert_eq!(rekeyed.public_key_pem, hat_key(1).public_pem);
    assert_eq!(rekeyed.version, first.version + 1);
    assert_eq!(rekeyed.registered_at, first.registered_at);
    assert_ne!(rekeyed.key_fingerprint, first.key_fingerprint);
    let log = w.history("hat:carol.hubat.net").await;
    assert_eq!(log[1].kind, "hat.key-replaced");
    assert_eq!(log[1].actor, provisioner.subject().as_str());
    assert_eq!(log[1].details["from"], first.key_fingerprint);
    assert_eq!(hats_counted(&w).await, 1, "a re-key is no new HAT");
}

#[tokio::test]
async fn every_refusal() {
    let w = World::new().await;
    w.cluster("hubat.net", &[]).await;
    w.cluster("gone.net", &[]).await;
    w.clusters()
        .decertify(&dex::accounts::Actor::Operator, "gone.net")
        .await
        .unwrap();
    let reg = w.registration();
    let register = |address: &str| reg.register(request(address), None);

    for bad in [
        "",
        "Alice.hubat.net",
        "alice_hubat.net",
        "alice.hubat.net:8080",
        "-a.hubat.net",
    ] {
        status(register(bad).await, 400);
    }
    // Not under a certified cluster, on a label boundary.
    for outside in [
        "alice.evilhubat.net",
        "alice.example.com",
        "hubat.net",
        "alice.gone.net",
    ] {
        w.hats.serve_key(outside, &hat_key(0).public_pem);
        status(register(outside).await, 400);
    }
    let long_app = RegisterHat {
        hat_address: "dan.hubat.net".into(),
        application_id: Some("x".repeat(257)),
    };
    status(w.registration().register(long_app, None).await, 400);
    assert!(
        w.hats.calls().is_empty(),
        "no HAT is called before its address is accepted"
    );

    // What the HAT answers.
    status(register("nobody.hubat.net").await, 502);
    w.hats.set("slow.hubat.net", HatReply::Timeout);
    status(register("slow.hubat.net").await, 504);
    w.hats.set("moved.hubat.net", HatReply::Status(302));
    status(register("moved.hubat.net").await, 502);
    w.hats.set("broken.hubat.net", HatReply::Status(500));
    status(register("broken.hubat.net").await, 502);
    w.hats.set("text.hubat.net", HatReply::Body("hello".into()));
    status(register("text.hubat.net").await, 502);
    let private = hat_key(0)
        .public_pem
        .replace("PUBLIC KEY", "RSA PUBLIC KEY");
    w.hats.set("pkcs1.hubat.net", HatReply::Body(private));
    status(register("pkcs1.hubat.net").await, 502);
    assert!(
        w.store
            .list_hats(None, dex::page::PageRequest::first(10))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert_eq!(hats_counted(&w).await, 0);
}
