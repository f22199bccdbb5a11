//! HatVerifier: every claim check, unknown HATs, decertified clusters, the key cache.

use dex::accounts::Actor;
use dex::hats::register::RegisterHat;
use dex::ports::Clock;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::support::{DEX_URL, World, hat_key, status};

const HAT: &str = "alice.hubat.net";

async fn world(cache_secs: u64) -> World {
    let w = World::with_cache(cache_secs).await;
    w.cluster("hubat.net", &[]).await;
    register(&w, HAT, 0).await;
    w
}

async fn register(w: &World, address: &str, key: usize) {
    w.hats.serve_key(address, &hat_key(key).public_pem);
    let provisioner = w
        .account(&format!("p{key}-{address}"), &["provisioner:hubat.net"])
        .await;
    let token = w.token(&provisioner.username).await;
    w.registration()
        .register(
            RegisterHat {
                hat_address: address.into(),
                application_id: None,
            },
            Some(&token),
        )
        .await
        .expect("register");
}

fn now(w: &World) -> i64 {
    w.clock.now().timestamp()
}

/// The claims a HAT puts in a token for DEX.
fn claims(w: &World) -> Value {
    let now = now(w);
    json!({"iss": HAT, "sub": "1-validate", "iat": now, "exp": now + 3600,
           "accessScope": "validate", "resource": DEX_URL})
}

fn sign(claims: &Value, key: usize) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        claims,
        &hat_key(key).encoding,
    )
    .unwrap()
}

async fn verify(w: &World, token: &str) -> dex::DexResult<dex::hats::verify::VerifiedHat> {
    w.verifier.verify(&w.store, now(w), Some(token)).await
}

fn with(mut claims: Value, name: &str, value: Value) -> Value {
    if value.is_null() {
        claims.as_object_mut().unwrap().remove(name);
    } else {
        claims[name] = value;
    }
    claims
}

#[tokio::test]
async fn a_good_token_is_the_hat_and_its_cluster() {
    let w = world(60).await;
    let hat = verify(&w, &sign(&claims(&w), 0)).await.unwrap();
    assert_eq!(
        (hat.address.as_str(), hat.cluster.as_str()),
        (HAT, "hubat.net")
    );
    // The resource may carry a trailing slash.
    let slash = with(claims(&w), "resource", json!(format!("{DEX_URL}/")));
    assert!(verify(&w, &sign(&slash, 0)).await.is_ok());
    status(w.verifier.verify(&w.store, now(&w), None).await, 401);
}

#[tokio::test]
async fn every_claim_is_checked() {
    let w = world(60).await;
    let n = now(&w);
    let refused = |why: &'static str, claims: Value| (why, sign(&claims, 0));
    let cases = [
        refused("expired", with(claims(&w), "exp", json!(n - 3600))),
        refused("exp missing", with(claims(&w), "exp", Value::Null)),
        refused("iat in the future", with(claims(&w), "iat", json!(n + 120))),
        refused(
            "iat over 3 days old",
            with(claims(&w), "iat", json!(n - 3 * 24 * 3600 - 1)),
        ),
        refused("iat missing", with(claims(&w), "iat", Value::Null)),
        refused("scope", with(claims(&w), "accessScope", json!("owner"))),
        refused(
            "scope missing",
            with(claims(&w), "accessScope", Value::Null),
        ),
        refused(
            "resource",
            with(claims(&w), "resource", json!("https://other.test")),
        ),
        refused(
            "resource missing",
            with(claims(&w), "resource", Value::Null),
        ),
        refused(
            "application token",
            with(claims(&w), "application", json!("notables")),
        ),
        refused(
            "unknown HAT",
            with(claims(&w), "iss", json!("bob.hubat.net")),
        ),
        refused(
            "not a HAT address",
            with(claims(&w), "iss", json!("https://alice.hubat.net")),
        ),
        refused("issuer missing", with(claims(&w), "iss", Value::Null)),
        ("another key", sign(&claims(&w), 1)),
        (
            "HS256",
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &claims(&w),
                &EncodingKey::from_secret(b"k"),
            )
            .unwrap(),
        ),
        ("garbage", "a.b.c".to_owned()),
    ];
    for (why, token) in cases {
        let result = verify(&w, &token).await;
        assert!(
            matches!(result, Err(dex::DexError::Unauthorized(_))),
            "{why}: {result:?}"
        );
    }
    // Within the tolerated skew and age: accepted.
    let edge = with(claims(&w), "iat", json!(n + 30));
    assert!(verify(&w, &sign(&edge, 0)).await.is_ok());
    let old = with(claims(&w), "iat", json!(n - 3 * 24 * 3600 + 10));
    assert!(verify(&w, &sign(&old, 0)).await.is_ok());
}

#[tokio::test]
async fn a_decertified_cluster_is_refused_once_the_cache_lets_go() {
    let w = world(0).await;
    let token = sign(&claims(&w), 0);
    assert!(verify(&w, &token).await.is_ok());
    w.clusters()
        .decertify(&Actor::Operator, "hubat.net")
        .await
        .unwrap();
    let err = status(verify(&w, &token).await, 401);
    assert!(err.to_string().contains("not certified"), "{err}");

    // With a warm cache, the decision holds until the entry expires.
    let cached = world(60).await;
    let token = sign(&claims(&cached), 0);
    assert!(verify(&cached, &token).await.is_ok());
    cached
        .clusters()
        .decertify(&Actor::Operator, "hubat.net")
        .await
        .unwrap();
    assert!(
        verify(&cached, &token).await.is_ok(),
        "cached for DEX_HAT_KEY_CACHE_SECS"
    );
}

#[tokio::test]
async fn a_rekeyed_hat_is_trusted_at_once_and_its_old_key_when_the_cache_expires() {
    let w = world(60).await;
    let old = sign(&claims(&w), 0);
    assert!(verify(&w, &old).await.is_ok());
    register(&w, HAT, 1).await;
    // The new key works at once: a failed signature is retried against the table ...
    assert!(verify(&w, &sign(&claims(&w), 1)).await.is_ok());
    // ... which refreshed the entry, so the old key is refused now.
    status(verify(&w, &old).await, 401);

    let cold = world(0).await;
    let old = sign(&claims(&cold), 0);
    register(&cold, HAT, 1).await;
    status(verify(&cold, &old).await, 401);
    assert!(verify(&cold, &sign(&claims(&cold), 1)).await.is_ok());
}
