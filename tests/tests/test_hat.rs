//! Tests of the test HAT cluster itself, over real HTTP (no other services needed):
//! `cargo test -p dex-tests --test test_hat`.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use dex_tests::test_hat::{
    Alg, Behaviour, DEFAULT_PLATFORM_USERNAME, RSA1024_PUBLIC_KEY_PEM, TOKEN_LIFETIME_SECS,
    TestHat, TestHatCluster, split_token, tamper_payload,
};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
use serde_json::{Value, json};

const DEX_URL: &str = "https://dex.example.com/";

/// DER of the rsaEncryption AlgorithmIdentifier OID (1.2.840.113549.1.1.1).
const RSA_ENCRYPTION_OID: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
];
/// DER of the id-ecPublicKey OID (1.2.840.10045.2.1).
const EC_PUBLIC_KEY_OID: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];

/// A client that never follows redirects (so 302 is observable).
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("build reqwest client")
}

/// `GET base_url + path` with `Host: host`.
async fn get(cluster: &TestHatCluster, host: &str, path: &str) -> reqwest::Response {
    client()
        .get(format!("{}{path}", cluster.base_url()))
        .header("host", host)
        .send()
        .await
        .expect("request to the test HAT cluster")
}

async fn get_public_key(cluster: &TestHatCluster, hat: &TestHat) -> String {
    let response = get(cluster, hat.address(), "/publickey").await;
    assert_eq!(response.status(), 200);
    response.text().await.expect("publickey body")
}

/// Verifies `token` with the RSA public key `pem` the way DEX is expected to.
fn verify(token: &str, pem: &str, alg: Algorithm) -> jsonwebtoken::errors::Result<Value> {
    let key = DecodingKey::from_rsa_pem(pem.as_bytes())?;
    let mut validation = Validation::new(alg);
    validation.set_required_spec_claims(&["exp"]);
    validation.validate_aud = false;
    decode::<Value>(token, &key, &validation).map(|data| data.claims)
}

fn assert_bad_signature(result: jsonwebtoken::errors::Result<Value>) {
    match result {
        Err(e) => assert_eq!(*e.kind(), ErrorKind::InvalidSignature, "{e:?}"),
        Ok(claims) => panic!("token verified but should not: {claims}"),
    }
}

/// Asserts HAT2.0's exact PEM layout and returns the DER it holds.
fn assert_spki_pem_layout(pem: &str) -> Vec<u8> {
    assert!(pem.ends_with('\n'), "PEM ends with a newline");
    assert!(!pem.contains('\r'), "PEM uses \\n line ends only");
    let lines: Vec<&str> = pem.split_terminator('\n').collect();
    assert!(lines.len() >= 3, "{pem}");
    assert_eq!(lines[0], "-----BEGIN PUBLIC KEY-----");
    assert_eq!(lines[lines.len() - 1], "-----END PUBLIC KEY-----");
    let body = &lines[1..lines.len() - 1];
    for line in &body[..body.len() - 1] {
        assert_eq!(
            line.len(),
            64,
            "every base64 line but the last has 64 chars: {line}"
        );
    }
    let last = body[body.len() - 1];
    assert!((1..=64).contains(&last.len()), "last base64 line: {last}");
    STANDARD.decode(body.concat()).expect("PEM body is base64")
}

/// Parses an SPKI PEM of an RSA key and returns (modulus bits, exponent bytes).
fn rsa_spki_size(pem: &str) -> (usize, Vec<u8>) {
    let der = assert_spki_pem_layout(pem);
    assert!(
        der.windows(RSA_ENCRYPTION_OID.len())
            .any(|w| w == RSA_ENCRYPTION_OID),
        "SubjectPublicKeyInfo with rsaEncryption, not PKCS#1"
    );
    let key = aws_lc_rs::rsa::PublicKey::from_der(&der).expect("an RSA public key");
    (
        key.modulus_len() * 8,
        key.exponent().big_endian_without_leading_zero().to_vec(),
    )
}

fn claims_of(token: &str) -> Value {
    let parts = split_token(token).expect("three base64url segments");
    serde_json::from_str(&parts.payload_json).expect("payload JSON")
}

fn claim_names(claims: &Value) -> BTreeSet<String> {
    claims
        .as_object()
        .expect("claims object")
        .keys()
        .cloned()
        .collect()
}

fn now() -> i64 {
    jsonwebtoken::get_current_timestamp() as i64
}

/// Percent-encodes everything but RFC 3986 unreserved characters (what a careful client
/// does with the `username`/`password` headers).
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn login(
    cluster: &TestHatCluster,
    hat: &TestHat,
    username: &str,
    password: &str,
) -> reqwest::Response {
    client()
        .get(format!("{}/users/access_token", cluster.base_url()))
        .header("host", hat.address())
        .header("username", url_encode(username))
        .header("password", url_encode(password))
        .send()
        .await
        .expect("login request")
}

#[tokio::test]
async fn publickey_serves_the_exact_hat2_pem_of_a_2048_bit_rsa_key() {
    let cluster = TestHatCluster::start().await;
    let alice = cluster.add_hat("alice.hubat.net");
    assert_eq!(
        alice.address(),
        format!("alice.hubat.net:{}", cluster.port())
    );
    assert_eq!(
        cluster.base_url(),
        format!("http://127.0.0.1:{}", cluster.port())
    );

    let response = get(&cluster, alice.address(), "/publickey").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "text/plain; charset=utf-8"
    );
    let pem = response.text().await.unwrap();
    assert_eq!(pem, alice.public_key_pem());

    let (bits, exponent) = rsa_spki_size(&pem);
    assert_eq!(bits, 2048);
    assert_eq!(exponent, [1, 0, 1], "e = 65537");

    // The served key verifies the HAT's tokens exactly as DEX would check them.
    let claims = verify(&alice.dex_token(DEX_URL), &pem, Algorithm::RS256).expect("token verifies");
    assert_eq!(claims["iss"], alice.address());
}

#[tokio::test]
async fn many_hats_share_one_port_and_each_has_its_own_key() {
    let cluster = TestHatCluster::start().await;
    let alice = cluster.add_hat("alice.hubat.net");
    let bob = cluster.add_hat(&format!("t{}.hubat.net", uuid::Uuid::new_v4().simple()));
    assert_ne!(alice.public_key_pem(), bob.public_key_pem());
    assert_eq!(
        get_public_key(&cluster, &alice).await,
        alice.public_key_pem()
    );
    assert_eq!(get_public_key(&cluster, &bob).await, bob.public_key_pem());
    assert_bad_signature(verify(
        &alice.dex_token(DEX_URL),
        &bob.public_key_pem(),
        Algorithm::RS256,
    ));

    assert_eq!(
        cluster.hat(alice.address()).unwrap().public_key_pem(),
        alice.public_key_pem()
    );
    assert!(cluster.hat("nobody.hubat.net").is_none());
    assert_eq!(cluster.hats().len(), 2);
}

#[tokio::test]
async fn hats_are_reachable_by_name_the_way_dex_resolves_them() {
    // DEX with DEX_HAT_RESOLVE=127.0.0.1 connects to the IP but keeps `name:port` as Host.
    let cluster = TestHatCluster::start().await;
    let alice = cluster.add_hat("alice.hubat.net");
    let client = reqwest::Client::builder()
        .resolve(
            "alice.hubat.net",
            SocketAddr::from(([127, 0, 0, 1], cluster.port())),
        )
        .build()
        .unwrap();
    let response = client
        .get(format!("http://{}/publickey", alice.address()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), alice.public_key_pem());
    assert_eq!(alice.requests()[0].hat, alice.address());
}

#[tokio::test]
#[should_panic(expected = "already exists")]
async fn adding_the_same_hat_twice_is_a_test_bug() {
    let cluster = TestHatCluster::start().await;
    cluster.add_hat("alice.hubat.net");
    cluster.add_hat("alice.hubat.net");
}

#[tokio::test]
async fn dex_token_is_minted_exactly_like_hat2() {
    let cluster = TestHatCluster::start().await;
    let alice = cluster.add_hat("alice.hubat.net");
    let before = now();
    let token = alice.dex_token(DEX_URL);
    let after = now();

    let parts = split_token(&token).expect("compact JWS");
    assert_eq!(parts.header_json, r#"{"typ":"JWT","alg":"RS256"}"#);
    assert!(
        parts.payload_json.contains(r"https:\/\/dex.example.com\/"),
        "json-smart escapes '/': {}",
        parts.payload_json
    );
    assert!(!parts.payload_json.contains("//"), "{}", parts.payload_json);
    assert_eq!(parts.signature.len(), 256, "2048-bit RSA signature");
    assert!(!token.contains('='), "base64url without padding");

    let claims: Value = serde_json::from_str(&parts.payload_json).unwrap();
    assert_eq!(
        claim_names(&claims),
        ["accessScope", "exp", "iat", "iss", "jti", "resource", "sub"]
            .map(String::from)
            .into()
    );
    assert_eq!(claims["iss"], alice.address());
    assert_eq!(claims["accessScope"], "validate");
    assert_eq!(claims["resource"], DEX_URL);
    let iat = claims["iat"].as_i64().unwrap();
    assert!((before..=after).contains(&iat));
    assert_eq!(claims["exp"].as_i64().unwrap() - iat, 2_592_000);
    assert_eq!(TOKEN_LIFETIME_SECS, 2_592_000);
    let jti = claims["jti"].as_str().unwrap();
    assert_eq!(jti.len(), 256);
    assert!(
        jti.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        "{jti}"
    );
    let sub = claims["sub"].as_str().unwrap();
    let opaque = sub.strip_prefix("1-").expect("sub starts with 1-");
    assert_eq!(STANDARD.decode(opaque).unwrap().len(), 48);

    // Every token is new.
    assert_ne!(claims_of(&alice.dex_token(DEX_URL))["jti"], claims["jti"]);

    // jsonwebtoken (a standard verifier) accepts it and reads the escaped URL back.
    let verified = verify(&token, &alice.public_key_pem(), Algorithm::RS256).unwrap();
    assert_eq!(verified["resource"], DEX_URL);
}

#[tokio::test]
async fn unknown_host_is_404_hat_unavailable() {
    let cluster = TestHatCluster::start().await;
    cluster.add_hat("alice.hubat.net");
    for host in [
        "nobody.hubat.net".to_owned(),
        format!("nobody.hubat.net:{}", cluster.port()),
        "alice.hubat.net".to_owned(), // the port is part of the address
    ] {
        let response = get(&cluster, &host, "/publickey").await;
        assert_eq!(response.status(), 404, "{host}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body,
            json!({"error": "Not Found", "message": "HAT unavailable"})
        );
    }
}

#[tokio::test]
async fn behaviour_not_found() {
    let cluster = TestHatCluster::start().await;
    let alice = cluster.add_hat("alice.hubat.net");
    alice.set_behaviour(Behaviour::NotFound);
    assert_eq!(alice.behaviour(), Behaviour::NotFound);
    let response = get(&cluster, alice.address(), "/publickey").await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["message"], "HAT unavailable");

    alice.set_behaviour(Behaviour::Normal);
    assert_eq!(
        get_public_key(&cluster, &alice).await,
        alice.public_key_pem()
    );
}

#[tokio::test]
async fn behaviour_wrong_key() {
    let cluster = TestHatCluster::start().await;
    let alice = cluster.add_hat("alice.hubat.net");
    alice.set_behaviour(Behaviour::WrongKey);
    let served = get_public_key(&cluster, &alice).await;
    assert_ne!(served, alice.public_key_pem());
    assert_eq!(
        rsa_spki_size(&served).0,
        2048,
        "a plausible key, just not the HAT's"
    );
    let token = alice.dex_token(DEX_URL);
    assert_bad_signature(verify(&token, &served, Algorithm::RS256));
    verify(&token, &alice.public_key_pem(), Algorithm::RS256).expect("signed with the real key");
    // The decoy is stable while the behaviour lasts.
    assert_eq!(get_public_key(&cluster, &alice).await, served);
}

#[tokio::test]
async fn behaviour_slow_answers_after_the_delay() {
    let cluster = TestHatCluster::start().await;
    let alice = cluster.add_hat("alice.hubat.net");
    let delay = Duration::from_millis(300);
    alice.set_behaviour(Behaviour::Slow(delay));
    let started = Instant::now();
    let pem = get_public_key(&cluster, &alice).await;
    assert!(
        started.elapsed() >= delay,
        "answered after {:?}",
        started.elapsed()
    );
    assert_eq!(pem, alice.public_key_pem());

    // Slowness applies to every endpoint.
    let started = Instant::now();
    let response = get(&cluster, alice.address(), "/api/v2.6/anything").await;
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() >= delay);
}

#[tokio::test]
async fn behaviour_redirect() {
    let cluster = TestHatCluster::start().await;
    let alice = cluster.add_hat("alice.hubat.net");
    alice.set_behaviour(Behaviour::Redirect(
        "http://169.254.169.254/latest/meta-data/".into(),
    ));
    let response = get(&cluster, alice.address(), "/publickey").await;
    assert_eq!(response.status(), 302);
    assert_eq!(
        response.headers()["location"].to_str().unwrap(),
        "http://169.254.169.254/latest/meta-data/"
    );
}

#[tokio::test]
async fn behaviour_huge_body_is_streamed_to_the_exact_length() {
    let cluster = TestHatCluster::start().await;
    let alice = cluster.add_hat("alice.hubat.net");
    let len = 5 * 1024 * 1024 + 7;
    alice.set_behaviour(Behaviour::HugeBody(len));
    let response = get(&cluster, alice.address(), "/publickey").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers().get("content-length").is_none(),
        "streamed without a declared length"
    );
    let body = response.bytes().await.unwrap();
    assert_eq!(body.len(), len);
    assert!(body.starts_with(b"-----BEGIN PUBLIC KEY-----\n"));

    // A body shorter than the PEM header is cut exactly too.
    alice.set_behaviour(Behaviour::HugeBody(10));
    let body = get(&cluster, alice.address(), "/publickey")
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(&body[..], b"-----BEGIN");
}

#[tokio::test]
async fn behaviour_non_rsa_key() {
    let cluster = TestHatCluster::start().await;
    let alice = cluster.add_hat("alice.hubat.net");
    alice.set_behaviour(Behaviour::NonRsaKey);
    let served = get_public_key(&cluster, &alice).await;
    let der = assert_spki_pem_layout(&served);
    assert!(
        der.windows(EC_PUBLIC_KEY_OID.len())
            .any(|w| w == EC_PUBLIC_KEY_OID)
    );
    assert!(aws_lc_rs::rsa::PublicKey::from_der(&der).is_err());
    DecodingKey::from_ec_pem(served.as_bytes()).expect("a valid EC public key");
}

#[tokio::test]
async fn behaviour_small_rsa_key() {
    let cluster = TestHatCluster::start().await;
    let alice = cluster.add_hat("alice.hubat.net");
    alice.set_behaviour(Behaviour::SmallRsaKey);
    let served = get_public_key(&cluster, &alice).await;
    assert_eq!(served, RSA1024_PUBLIC_KEY_PEM);
    let (bits, exponent) = rsa_spki_size(&served);
    assert_eq!(bits, 1024);
    assert_eq!(exponent, [1, 0, 1]);
}

#[tokio::test]
async fn behaviour_garbage() {
    let cluster = TestHatCluster::start().await;
    let alice = cluster.add_hat("alice.hubat.net");
    alice.set_behaviour(Behaviour::Garbage);
    let body = get_public_key(&cluster, &alice).await;
    assert!(!body.is_empty());
    assert!(!body.contains("-----BEGIN"), "{body}");
}

#[tokio::test]
async fn rotate_key_replaces_the_served_and_signing_key() {
    let cluster = TestHatCluster::start().await;
    let alice = cluster.add_hat("alice.hubat.net");
    let old_pem = alice.public_key_pem();
    let old_token = alice.dex_token(DEX_URL);

    alice.rotate_key();
    let new_pem = get_public_key(&cluster, &alice).await;
    assert_ne!(new_pem, old_pem);
    assert_eq!(new_pem, alice.public_key_pem());
    assert_eq!(rsa_spki_size(&new_pem).0, 2048);
    assert_bad_signature(verify(&old_token, &new_pem, Algorithm::RS256));
    verify(&alice.dex_token(DEX_URL), &new_pem, Algorithm::RS256)
        .expect("new tokens use the new key");
}

#[tokio::test]
async fn platform_login_issues_a_platform_token() {
    let cluster = TestHatCluster::start().await;
    let alice = cluster.add_hat("alice.hubat.net");
    let (username, password) = alice.platform_credentials();
    assert_eq!(username, DEFAULT_PLATFORM_USERNAME);
    assert_eq!(
        (username.clone(), password.clone()),
        cluster.platform_credentials()
    );

    let response = login(&cluster, &alice, &username, &password).await;
    assert_eq!(response.status(), 200);
    let header_token = response.headers()["x-auth-token"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    let token = body["accessToken"].as_str().unwrap();
    assert_eq!(token, header_token);
    assert_eq!(body["userId"], alice.platform_user_id().to_string());
    assert_eq!(alice.issued_login_tokens(), vec![token.to_owned()]);

    let claims = verify(token, &alice.public_key_pem(), Algorithm::RS256).unwrap();
    assert_eq!(claims["iss"], alice.address());
    assert_eq!(claims["accessScope"], "platform");
    assert_eq!(claims["resource"], alice.address());
    assert_eq!(
        split_token(token).unwrap().header_json,
        r#"{"typ":"JWT","alg":"RS256"}"#
    );
}

#[tokio::test]
async fn platform_login_refuses_wrong_or_missing_credentials() {
    let cluster = TestHatCluster::start().await;
    let alice = cluster.add_hat("alice.hubat.net");
    let (username, password) = alice.platform_credentials();

    for (u, p) in [
        (username.as_str(), "wrong"),
        ("someone.else", password.as_str()),
        (username.as_str(), ""),
    ] {
        let response = login(&cluster, &alice, u, p).await;
        assert_eq!(response.status(), 401, "{u}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "Unauthorized");
        assert!(body["message"].is_string());
    }

    // Unencoded credentials: the default password holds `+`, `/`, `%`, `&` and a space,
    // so sending it raw decodes to something else.
    let response = client()
        .get(format!("{}/users/access_token", cluster.base_url()))
        .header("host", alice.address())
        .header("username", &username)
        .header("password", &password)
        .send()
        .await
        .unwrap();
    assert!(
        matches!(response.status().as_u16(), 400 | 401),
        "{}",
        response.status()
    );

    let response = get(&cluster, alice.address(), "/users/access_token").await;
    assert_eq!(response.status(), 401);
    assert!(alice.issued_login_tokens().is_empty());
}

#[tokio::test]
async fn platform_credentials_can_be_changed() {
    let cluster = TestHatCluster::start().await;
    let alice = cluster.add_hat("alice.hubat.net");
    let (old_user, old_pass) = alice.platform_credentials();
    cluster.set_platform_credentials("platform@example.com", "s3cret pass");
    assert_eq!(
        alice.platform_credentials(),
        ("platform@example.com".to_owned(), "s3cret pass".to_owned())
    );
    assert_eq!(
        login(&cluster, &alice, "platform@example.com", "s3cret pass")
            .await
            .status(),
        200
    );
    assert_eq!(
        login(&cluster, &alice, &old_user, &old_pass).await.status(),
        401
    );
}

#[tokio::test]
async fn every_request_is_recorded_and_other_paths_answer_empty_json() {
    let cluster = TestHatCluster::start().await;
    let alice = cluster.add_hat("alice.hubat.net");
    let bob = cluster.add_hat("bob.hubat.net");

    let response = client()
        .post(format!(
            "{}/api/v2.6/data/dex/test?x=1&y=%2F",
            cluster.base_url()
        ))
        .header("host", alice.address())
        .header("X-Auth-Token", "tok")
        .json(&json!({"hello": "world"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.json::<Value>().await.unwrap(), json!({}));
    get(&cluster, bob.address(), "/publickey").await;
    get(&cluster, "stranger.hubat.net", "/whatever").await;

    let all = cluster.requests();
    assert_eq!(all.len(), 3);
    assert_eq!(all[2].hat, "stranger.hubat.net");

    let mine = cluster.requests_for(alice.address());
    assert_eq!(mine, alice.requests());
    assert_eq!(mine.len(), 1);
    let request = &mine[0];
    assert_eq!(request.hat, alice.address());
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/api/v2.6/data/dex/test");
    assert_eq!(request.query.as_deref(), Some("x=1&y=%2F"));
    assert_eq!(request.header("x-auth-token"), Some("tok"));
    assert!(
        request
            .headers
            .iter()
            .any(|(n, v)| n == "x-auth-token" && v == "tok")
    );
    assert!(request.headers.iter().all(|(n, _)| *n == n.to_lowercase()));
    assert_eq!(request.body_json(), Some(json!({"hello": "world"})));

    let bobs = bob.requests();
    assert_eq!(bobs.len(), 1);
    assert_eq!(
        (bobs[0].method.as_str(), bobs[0].path.as_str()),
        ("GET", "/publickey")
    );
    assert_eq!(bobs[0].query, None);
    assert!(bobs[0].body.is_empty());

    cluster.clear_requests();
    assert!(cluster.requests().is_empty());
}

#[tokio::test]
async fn scripted_responses_come_before_the_default() {
    let cluster = TestHatCluster::start().await;
    let alice = cluster.add_hat("alice.hubat.net");
    let bob = cluster.add_hat("bob.hubat.net");
    cluster.set_response(
        alice.address(),
        "post",
        "/api/v2/application",
        500,
        json!({"message": "boom"}),
    );

    let post = |host: String| {
        let url = format!("{}/api/v2/application/x", cluster.base_url());
        async move {
            client()
                .post(url)
                .header("host", host)
                .send()
                .await
                .unwrap()
        }
    };
    let response = post(alice.address().to_owned()).await;
    assert_eq!(response.status(), 500);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"message": "boom"})
    );
    // Other HATs, other methods and other paths keep the default.
    assert_eq!(post(bob.address().to_owned()).await.status(), 200);
    assert_eq!(
        get(&cluster, alice.address(), "/api/v2/application")
            .await
            .status(),
        200
    );

    // The latest matching rule wins, built-in endpoints included.
    alice.set_response("POST", "/api/v2/", 201, json!({"ok": true}));
    assert_eq!(post(alice.address().to_owned()).await.status(), 201);
    alice.set_response(
        "GET",
        "/users/access_token",
        503,
        json!({"message": "down"}),
    );
    let (user, pass) = alice.platform_credentials();
    assert_eq!(login(&cluster, &alice, &user, &pass).await.status(), 503);

    cluster.clear_responses();
    assert_eq!(post(alice.address().to_owned()).await.status(), 200);
    assert_eq!(login(&cluster, &alice, &user, &pass).await.status(), 200);
}

#[tokio::test]
async fn token_builder_algorithms() {
    let cluster = TestHatCluster::start().await;
    let alice = cluster.add_hat("alice.hubat.net");
    let pem = alice.public_key_pem();

    let none = alice.token_builder(DEX_URL).alg(Alg::None).build();
    assert!(none.ends_with('.'), "{none}");
    let parts = split_token(&none).unwrap();
    assert_eq!(parts.header_json, r#"{"typ":"JWT","alg":"none"}"#);
    assert!(parts.signature.is_empty());

    // Key confusion: an HMAC keyed with the public PEM verifies as HS256 for a naive verifier.
    let hs = alice
        .token_builder(DEX_URL)
        .alg(Alg::Hs256WithPublicKey)
        .build();
    assert_eq!(
        split_token(&hs).unwrap().header_json,
        r#"{"typ":"JWT","alg":"HS256"}"#
    );
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_aud = false;
    decode::<Value>(&hs, &DecodingKey::from_secret(pem.as_bytes()), &validation)
        .expect("HS256 under the public key PEM");
    assert!(verify(&hs, &pem, Algorithm::RS256).is_err());

    let rs512 = alice.token_builder(DEX_URL).alg(Alg::Rs512).build();
    assert_eq!(
        split_token(&rs512).unwrap().header_json,
        r#"{"typ":"JWT","alg":"RS512"}"#
    );
    verify(&rs512, &pem, Algorithm::RS512).expect("valid RS512 signature");
    assert!(verify(&rs512, &pem, Algorithm::RS256).is_err());
}

#[tokio::test]
async fn token_builder_header_and_claims() {
    let cluster = TestHatCluster::start().await;
    let alice = cluster.add_hat("alice.hubat.net");
    let pem = alice.public_key_pem();

    let no_typ = alice.token_builder(DEX_URL).without_typ().build();
    assert_eq!(
        split_token(&no_typ).unwrap().header_json,
        r#"{"alg":"RS256"}"#
    );
    verify(&no_typ, &pem, Algorithm::RS256).expect("typ is optional");

    let kid = alice
        .token_builder(DEX_URL)
        .header_extra("kid", "k1")
        .header_extra("jku", "https://evil.example/jwks.json")
        .build();
    assert_eq!(
        split_token(&kid).unwrap().header_json,
        r#"{"typ":"JWT","alg":"RS256","kid":"k1","jku":"https:\/\/evil.example\/jwks.json"}"#
    );

    let old = now() - 4 * 24 * 3600;
    let claims = claims_of(
        &alice
            .token_builder(DEX_URL)
            .iss("mallory.hubat.net")
            .iat(old)
            .resource(None)
            .access_scope(Some("owner"))
            .claim("extra", 42)
            .build(),
    );
    assert_eq!(claims["iss"], "mallory.hubat.net");
    assert_eq!(claims["iat"], old);
    assert_eq!(claims["exp"], old + TOKEN_LIFETIME_SECS, "exp follows iat");
    assert!(claims.get("resource").is_none());
    assert_eq!(claims["accessScope"], "owner");
    assert_eq!(claims["extra"], 42);

    let expired = claims_of(
        &alice
            .token_builder(DEX_URL)
            .exp(now() - 10)
            .iat(now() - 100)
            .build(),
    );
    assert!(
        expired["exp"].as_i64().unwrap() < now(),
        "explicit exp is kept"
    );

    let no_exp = claims_of(&alice.token_builder(DEX_URL).without_claim("exp").build());
    assert!(no_exp.get("exp").is_none());

    let no_scope = claims_of(&alice.token_builder(DEX_URL).access_scope(None).build());
    assert!(no_scope.get("accessScope").is_none());
    assert_eq!(no_scope["resource"], DEX_URL);

    let app = alice
        .token_builder(DEX_URL)
        .app_token("hatapp", "1.2.3")
        .build();
    let claims = claims_of(&app);
    assert_eq!(
        claim_names(&claims),
        [
            "application",
            "applicationVersion",
            "exp",
            "iat",
            "iss",
            "jti",
            "sub"
        ]
        .map(String::from)
        .into()
    );
    assert_eq!(claims["application"], "hatapp");
    assert_eq!(claims["applicationVersion"], "1.2.3");
    verify(&app, &pem, Algorithm::RS256).expect("app tokens are validly signed");
}

#[tokio::test]
async fn token_builder_sign_with_another_hat() {
    let cluster = TestHatCluster::start().await;
    let alice = cluster.add_hat("alice.hubat.net");
    let mallory = cluster.add_hat("mallory.hubat.net");
    let forged = alice.token_builder(DEX_URL).sign_with(&mallory).build();
    assert_eq!(claims_of(&forged)["iss"], alice.address());
    assert_bad_signature(verify(&forged, &alice.public_key_pem(), Algorithm::RS256));
    verify(&forged, &mallory.public_key_pem(), Algorithm::RS256).expect("signed by mallory");
}

#[tokio::test]
async fn tamper_payload_keeps_the_original_signature() {
    let cluster = TestHatCluster::start().await;
    let alice = cluster.add_hat("alice.hubat.net");
    let token = alice.dex_token(DEX_URL);
    let tampered = tamper_payload(&token, |claims| {
        claims.insert("resource".into(), json!("https://other.example/"));
    });
    let (original, changed): (Vec<&str>, Vec<&str>) =
        (token.split('.').collect(), tampered.split('.').collect());
    assert_eq!(original[0], changed[0]);
    assert_ne!(original[1], changed[1]);
    assert_eq!(original[2], changed[2]);
    let parts = split_token(&tampered).unwrap();
    assert!(parts.payload_json.contains(r"https:\/\/other.example\/"));
    assert_eq!(claims_of(&tampered)["jti"], claims_of(&token)["jti"]);
    assert_bad_signature(verify(&tampered, &alice.public_key_pem(), Algorithm::RS256));
}

async fn port_is_closed(port: u16) -> bool {
    tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
}

#[tokio::test]
async fn shutdown_and_drop_stop_the_server() {
    let cluster = TestHatCluster::start().await;
    let port = cluster.port();
    cluster.add_hat("alice.hubat.net");
    assert!(!port_is_closed(port).await);
    cluster.shutdown().await;
    assert!(port_is_closed(port).await, "closed once shutdown returns");

    let cluster = TestHatCluster::start().await;
    let port = cluster.port();
    drop(cluster);
    // Drop stops the server in the background; give it time, but not forever.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !port_is_closed(port).await {
        assert!(
            Instant::now() < deadline,
            "port {port} still open after drop"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
