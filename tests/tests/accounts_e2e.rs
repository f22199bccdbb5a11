//! End-to-end tests of DEX accounts and tokens (docs/decisions.md §2, §3, §11) over real HTTP against
//! the functions `cargo lambda watch` serves (DEX_TEST_URL), with DynamoDB Local and moto
//! behind them. Every test makes its own accounts (unique usernames), so the tests run
//! concurrently and never depend on, or assert, global counts.

use dex_tests::routes::{built_binary, target_dir};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dex::accounts::AccountStore;
use dex::auth::dex_token::{self, DexClaims};
use dex::auth::keys::{KeyRing, StoredKey, StoredKeySet};
use dex::txlog::{LogEntry, verify_chain};
use dex_tests::support::{
    self, Dex, admin_token, assert_clean, assert_error, create_account, expect_json,
    unique_password, unique_username, url_encode,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use reqwest::Method;
use serde_json::{Value, json};

/// Key rotation changes what `/publickey` and `jwks.json` answer: the rotation test holds
/// this lock exclusively, tests that compare the published keys hold it shared. It is a file
/// lock because nextest runs every test in its own process.
struct KeysLock(std::fs::File);

impl KeysLock {
    fn open() -> std::fs::File {
        let path = target_dir().join("dex-tests-signing-keys.lock");
        std::fs::create_dir_all(path.parent().unwrap()).expect("target dir");
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()))
    }

    async fn shared() -> Self {
        tokio::task::spawn_blocking(|| {
            let file = Self::open();
            file.lock_shared().expect("shared lock");
            Self(file)
        })
        .await
        .unwrap()
    }

    async fn exclusive() -> Self {
        tokio::task::spawn_blocking(|| {
            let file = Self::open();
            file.lock().expect("exclusive lock");
            Self(file)
        })
        .await
        .unwrap()
    }
}

impl Drop for KeysLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// How long a rotation may take to reach every warm function (key caches).
const ROTATION_PROPAGATION: Duration = Duration::from_secs(30);

// ---- helpers -----------------------------------------------------------------------------

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The decoded header and claims of a JWT, without verification.
fn jwt_parts(token: &str) -> (Value, Value) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWT has three parts: {token}");
    let decode = |p: &str| -> Value {
        let bytes = URL_SAFE_NO_PAD
            .decode(p)
            .unwrap_or_else(|e| panic!("JWT part is not base64url ({e}): {p}"));
        serde_json::from_slice(&bytes).expect("JWT part is JSON")
    };
    (decode(parts[0]), decode(parts[1]))
}

fn kid_of(token: &str) -> String {
    jwt_parts(token).0["kid"]
        .as_str()
        .expect("token header has a kid")
        .to_owned()
}

async fn jwks(dex: &Dex) -> Value {
    let body = expect_json(dex.get("/.well-known/jwks.json", None).await, 200).await;
    let keys = body["keys"]
        .as_array()
        .unwrap_or_else(|| panic!("jwks has no keys array: {body}"));
    assert!(!keys.is_empty(), "jwks lists no key");
    for key in keys {
        assert_eq!(key["kty"], "RSA", "{key}");
        assert_eq!(key["alg"], "RS256", "{key}");
        assert_eq!(key["use"], "sig", "{key}");
        assert!(
            key["kid"].is_string() && key["n"].is_string() && key["e"].is_string(),
            "{key}"
        );
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(
                key.get(private).is_none(),
                "jwks publishes private component {private}: {key}"
            );
        }
    }
    body
}

fn jwk_by_kid<'a>(jwks: &'a Value, kid: &str) -> Option<&'a Value> {
    jwks["keys"].as_array()?.iter().find(|k| k["kid"] == kid)
}

fn jwks_kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k["kid"].as_str().map(str::to_owned))
        .collect()
}

async fn publickey(dex: &Dex) -> String {
    let resp = dex.get("/publickey", None).await;
    assert_eq!(resp.status().as_u16(), 200);
    let content_type = support::content_type(&resp);
    assert!(
        content_type.starts_with("text/plain"),
        "publickey content-type {content_type:?}"
    );
    let pem = resp.text().await.unwrap();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{pem}");
    assert!(
        pem.trim_end().ends_with("-----END PUBLIC KEY-----"),
        "{pem}"
    );
    assert!(!pem.contains("PRIVATE"), "{pem}");
    pem
}

/// One DER element: (tag, contents, rest).
fn der(buf: &[u8]) -> (u8, &[u8], &[u8]) {
    let tag = buf[0];
    let (len, header) = match buf[1] {
        l if l < 0x80 => (l as usize, 2),
        0x81 => (buf[2] as usize, 3),
        0x82 => (((buf[2] as usize) << 8) | buf[3] as usize, 4),
        other => panic!("unsupported DER length form {other:#x}"),
    };
    (tag, &buf[header..header + len], &buf[header + len..])
}

/// The (n, e) of an SPKI PEM RSA key, as base64url without leading zeros (the JWK form).
fn rsa_components_of_pem(pem: &str) -> (String, String) {
    let key = DecodingKey::from_rsa_pem(pem.as_bytes()).expect("publickey is an RSA PEM");
    let pkcs1 = key.try_get_as_bytes().expect("PEM keys are DER");
    let (tag, seq, _) = der(pkcs1);
    assert_eq!(tag, 0x30);
    let (tag_n, n, rest) = der(seq);
    let (tag_e, e, _) = der(rest);
    assert_eq!((tag_n, tag_e), (0x02, 0x02));
    let strip = |b: &[u8]| -> String {
        let start = b.iter().position(|x| *x != 0).unwrap_or(b.len());
        URL_SAFE_NO_PAD.encode(&b[start..])
    };
    (strip(n), strip(e))
}

/// Verifies a DEX token against a JWK as any HAT or app would.
fn verify_with_jwk(token: &str, jwk: &Value) -> Value {
    let key =
        DecodingKey::from_rsa_components(jwk["n"].as_str().unwrap(), jwk["e"].as_str().unwrap())
            .expect("jwk is a usable RSA key");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[support::public_url()]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "sub"]);
    validation.validate_aud = false;
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap_or_else(|e| panic!("DEX token does not verify with its published key: {e}"))
        .claims
}

/// Signs `claims` with DEX's real key `kid`, read from Secrets Manager as the functions do
/// (for tokens DEX would never issue: expired, other issuer, unknown account).
async fn sign_with_dex_key(kid: &str, claims: &Value) -> String {
    let app = support::app().await;
    let ring = app
        .tokens()
        .signing()
        .ring()
        .await
        .expect("signing keys load");
    let key = ring
        .by_kid(kid)
        .unwrap_or_else(|| panic!("key {kid} is not in the signing-key secret"));
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &key.encoding).expect("sign")
}

/// Every entry of the admin log for `query` (e.g. `subject=account%3A...`), newest first,
/// following cursors.
async fn log_all(dex: &Dex, token: &str, query: &str, limit: u32) -> Vec<LogEntry> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..2_000 {
        let mut path = format!("/api/admin/log?{query}&limit={limit}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={}", url_encode(c)));
        }
        let body = expect_json(dex.get(&path, Some(token)).await, 200).await;
        let items = body["items"]
            .as_array()
            .unwrap_or_else(|| panic!("log page has no items: {body}"));
        assert!(
            items.len() <= limit as usize,
            "page larger than limit {limit}: {body}"
        );
        for item in items {
            out.push(
                serde_json::from_value::<LogEntry>(item.clone())
                    .unwrap_or_else(|e| panic!("bad log entry ({e}): {item}")),
            );
        }
        match body["cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
    panic!("log listing for {query} did not end");
}

/// A subject's whole history, oldest first, checked to be a valid hash chain.
async fn verified_history(dex: &Dex, token: &str, subject: &str) -> Vec<LogEntry> {
    let mut entries = log_all(dex, token, &format!("subject={}", url_encode(subject)), 50).await;
    entries.reverse();
    assert_eq!(
        verify_chain(&entries),
        Ok(()),
        "the hash chain of {subject} is broken: {entries:#?}"
    );
    for e in &entries {
        assert_eq!(e.subject, subject);
    }
    entries
}

fn kinds(entries: &[LogEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.kind.as_str()).collect()
}

async fn account_view(dex: &Dex, admin: &str, id: &str) -> Value {
    expect_json(
        dex.get(&format!("/api/admin/accounts/{id}"), Some(admin))
            .await,
        200,
    )
    .await
}

/// The account of `token` (the `sub` claim).
fn sub_of(token: &str) -> String {
    jwt_parts(token).1["sub"].as_str().expect("sub").to_owned()
}

// ---- tokens ------------------------------------------------------------------------------

#[tokio::test]
async fn access_token_issues_a_verifiable_rs256_token() {
    let _keys = KeysLock::shared().await;
    let dex = Dex::new();
    let admin = admin_token().await;
    let (id, username, password) = create_account(&admin, &["marketplace"]).await;

    let before = now_secs();
    let resp = dex.login(&username, &password).await;
    assert_eq!(resp.status().as_u16(), 200);
    let header_token = resp
        .headers()
        .get("x-auth-token")
        .and_then(|v| v.to_str().ok())
        .expect("X-Auth-Token response header")
        .to_owned();
    let body = expect_json(resp, 200).await;
    let token = body["accessToken"]
        .as_str()
        .expect("accessToken")
        .to_owned();
    assert_eq!(body["userId"], id.as_str());
    assert_eq!(
        header_token, token,
        "X-Auth-Token header and accessToken differ"
    );
    assert!(!body.to_string().contains(&password));

    let (header, claims) = jwt_parts(&token);
    assert_eq!(header["alg"], "RS256", "{header}");
    let kid = header["kid"].as_str().expect("kid header").to_owned();

    // Verify with the published key, as HATs and apps do.
    let keys = jwks(&dex).await;
    let jwk = jwk_by_kid(&keys, &kid).unwrap_or_else(|| panic!("kid {kid} not in jwks {keys}"));
    let verified = verify_with_jwk(&token, jwk);
    assert_eq!(verified, claims);
    assert_eq!(claims["iss"], support::public_url().as_str());
    assert_eq!(claims["sub"], id.as_str());
    let iat = claims["iat"].as_i64().expect("iat");
    let exp = claims["exp"].as_i64().expect("exp");
    assert!(
        iat >= before - 5 && iat <= now_secs() + 5,
        "iat {iat} is not now"
    );
    assert_eq!(
        exp - iat,
        support::config().token_lifetime.as_secs() as i64,
        "exp is not iat + the lifetime"
    );
    assert!(
        claims["jti"].as_str().is_some_and(|j| j.len() >= 16),
        "jti: {claims}"
    );
    assert_eq!(claims["roles"], json!(["marketplace"]));

    // A second token is a different token (fresh jti).
    let again = dex.token(&username, &password).await;
    assert_ne!(jwt_parts(&again).1["jti"], claims["jti"]);

    // /publickey is the current key: the first of jwks, the one that signs.
    let pem = publickey(&dex).await;
    let (n, e) = rsa_components_of_pem(&pem);
    let current = &keys["keys"][0];
    assert_eq!(
        (n.as_str(), e.as_str()),
        (
            current["n"].as_str().unwrap(),
            current["e"].as_str().unwrap()
        )
    );
    assert_eq!(
        current["kid"],
        kid.as_str(),
        "new tokens must be signed with the current (first) key"
    );
    let key = DecodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[support::public_url()]);
    validation.validate_aud = false;
    jsonwebtoken::decode::<Value>(&token, &key, &validation)
        .expect("token verifies with /publickey");

    // The token opens nothing it should not, and is accepted where the role allows: a
    // marketplace account is authenticated (403, not 401) on admin endpoints.
    assert_error(
        dex.get("/api/admin/accounts", Some(&token)).await,
        403,
        "admin",
    )
    .await;
}

#[tokio::test]
async fn v3_alias_and_lenient_credentials() {
    let dex = Dex::new();
    let admin = admin_token().await;
    // Characters that must be URL-encoded in a header: '+', ' ', '%', non-ASCII.
    let username = format!("First+Last-{}@Dex.Test", uuid::Uuid::new_v4().simple());
    let password = format!("p ä%+:/ {}", uuid::Uuid::new_v4().simple());
    let created = expect_json(
        dex.post_json(
            "/api/admin/accounts",
            Some(&admin),
            &json!({ "username": username, "password": password }),
        )
        .await,
        201,
    )
    .await;
    let id = created["accountId"].as_str().unwrap().to_owned();

    // Encoded headers are decoded.
    let body = expect_json(dex.login(&username, &password).await, 200).await;
    assert_eq!(body["userId"], id.as_str());
    // The /api/v3 alias answers the same.
    let resp = dex
        .request(Method::GET, "/api/v3/users/access_token", None)
        .header("username", url_encode(&username))
        .header("password", url_encode(&password))
        .send()
        .await
        .unwrap();
    let body = expect_json(resp, 200).await;
    assert_eq!(body["userId"], id.as_str());
    // Usernames are case-insensitive.
    let body = expect_json(dex.login(&username.to_uppercase(), &password).await, 200).await;
    assert_eq!(body["userId"], id.as_str());
    // Plain ASCII needs no encoding; a space is sent as is.
    let plain_user = unique_username("plain");
    let plain_password = "plain pass word 123";
    let other = expect_json(
        dex.post_json(
            "/api/admin/accounts",
            Some(&admin),
            &json!({ "username": plain_user, "password": plain_password }),
        )
        .await,
        201,
    )
    .await;
    let body = expect_json(
        dex.login_raw(Some(&plain_user), Some(plain_password)).await,
        200,
    )
    .await;
    assert_eq!(body["userId"], other["accountId"]);
}

#[tokio::test]
async fn bad_credentials_are_401_and_do_not_enumerate_users() {
    let dex = Dex::new();
    let admin = admin_token().await;
    let (_, username, password) = create_account(&admin, &[]).await;

    assert_error(dex.login_raw(None, None).await, 401, "").await;
    assert_error(
        dex.login_raw(Some(&url_encode(&username)), None).await,
        401,
        "",
    )
    .await;
    assert_error(
        dex.login_raw(None, Some(&url_encode(&password))).await,
        401,
        "",
    )
    .await;

    let wrong = assert_error(dex.login(&username, &format!("{password}x")).await, 401, "").await;
    let unknown = assert_error(
        dex.login(&unique_username("nobody"), &password).await,
        401,
        "",
    )
    .await;
    assert_eq!(
        wrong, unknown,
        "unknown user and wrong password must answer the same body"
    );
    // The right password, wrongly encoded (a raw '%' sequence that decodes to something
    // else), is a wrong password.
    assert_error(
        dex.login_raw(Some(&url_encode(&username)), Some("%41%42"))
            .await,
        401,
        "",
    )
    .await;
}

#[tokio::test]
async fn bad_tokens_are_401() {
    let dex = Dex::new();
    let admin = admin_token().await;
    let kid = kid_of(&admin);
    let admin_id = sub_of(&admin);
    let now = now_secs();
    let claims = |sub: &str, iss: &str, iat: i64, exp: i64| json!({ "iss": iss, "sub": sub, "iat": iat, "exp": exp, "jti": "test", "roles": ["admin"] });
    let public = support::public_url();
    let path = "/api/admin/accounts?limit=1";

    // Sanity: the admin token works here.
    expect_json(dex.get(path, Some(&admin)).await, 200).await;

    // Missing, empty, garbage.
    assert_error(dex.get(path, None).await, 401, "").await;
    assert_error(dex.get(path, Some("")).await, 401, "").await;
    assert_error(dex.get(path, Some("garbage")).await, 401, "").await;
    assert_error(dex.get(path, Some("a.b.c")).await, 401, "").await;

    // Signed by a freshly generated key that claims DEX's kid: a forgery.
    let forger = KeyRing::load(&StoredKeySet {
        keys: vec![StoredKey::generate(kid.clone(), 0).unwrap()],
    })
    .unwrap();
    let forged: DexClaims =
        serde_json::from_value(claims(&admin_id, &public, now, now + 600)).unwrap();
    let forged = dex_token::sign(&forger, &forged).unwrap();
    assert_error(dex.get(path, Some(&forged)).await, 401, "").await;

    // alg none, with and without a signature part.
    let h = URL_SAFE_NO_PAD.encode(json!({ "alg": "none", "typ": "JWT", "kid": kid }).to_string());
    let c = URL_SAFE_NO_PAD.encode(claims(&admin_id, &public, now, now + 600).to_string());
    assert_error(dex.get(path, Some(&format!("{h}.{c}."))).await, 401, "").await;
    assert_error(dex.get(path, Some(&format!("{h}.{c}"))).await, 401, "").await;

    // HS256 keyed with DEX's public key (algorithm confusion).
    let pem = publickey(&dex).await;
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid.clone());
    let confused = jsonwebtoken::encode(
        &header,
        &claims(&admin_id, &public, now, now + 600),
        &EncodingKey::from_secret(pem.as_bytes()),
    )
    .unwrap();
    assert_error(dex.get(path, Some(&confused)).await, 401, "").await;

    // The admin's real token with its payload swapped (claims another account's roles).
    let parts: Vec<&str> = admin.split('.').collect();
    let tampered_claims = URL_SAFE_NO_PAD
        .encode(claims(&uuid::Uuid::new_v4().to_string(), &public, now, now + 600).to_string());
    assert_error(
        dex.get(
            path,
            Some(&format!("{}.{tampered_claims}.{}", parts[0], parts[2])),
        )
        .await,
        401,
        "",
    )
    .await;

    // Signed with DEX's real key, but expired / from another issuer / for no account.
    let expired =
        sign_with_dex_key(&kid, &claims(&admin_id, &public, now - 7200, now - 3600)).await;
    assert_error(dex.get(path, Some(&expired)).await, 401, "expired").await;
    let foreign = sign_with_dex_key(
        &kid,
        &claims(&admin_id, "https://evil.example.com", now, now + 600),
    )
    .await;
    assert_error(dex.get(path, Some(&foreign)).await, 401, "").await;
    let nobody = sign_with_dex_key(
        &kid,
        &claims(&uuid::Uuid::new_v4().to_string(), &public, now, now + 600),
    )
    .await;
    assert_error(dex.get(path, Some(&nobody)).await, 401, "account").await;
    // An unknown kid.
    let mut unknown_kid = Header::new(Algorithm::RS256);
    unknown_kid.kid = Some("no-such-key".into());
    let other_key = StoredKey::generate("no-such-key".into(), 0).unwrap();
    let token = jsonwebtoken::encode(
        &unknown_kid,
        &claims(&admin_id, &public, now, now + 600),
        &EncodingKey::from_rsa_pem(other_key.private_key_pem.as_bytes()).unwrap(),
    )
    .unwrap();
    assert_error(dex.get(path, Some(&token)).await, 401, "").await;
}

#[tokio::test]
async fn admin_endpoints_require_an_admin_token() {
    let dex = Dex::new();
    let admin = admin_token().await;
    let (id, username, password) =
        create_account(&admin, &["marketplace", "developer:dev-1"]).await;
    let market = dex.token(&username, &password).await;
    let body = json!({ "username": unique_username("x"), "password": unique_password() });
    let change = json!({ "roles": ["admin"] });

    for token in [None, Some("not-a-token")] {
        assert_error(dex.get("/api/admin/accounts", token).await, 401, "").await;
        assert_error(
            dex.post_json("/api/admin/accounts", token, &body).await,
            401,
            "",
        )
        .await;
        assert_error(
            dex.get(&format!("/api/admin/accounts/{id}"), token).await,
            401,
            "",
        )
        .await;
        assert_error(
            dex.put_json(&format!("/api/admin/accounts/{id}"), token, &change)
                .await,
            401,
            "",
        )
        .await;
        assert_error(dex.get("/api/admin/log", token).await, 401, "").await;
    }
    let market = Some(market.as_str());
    assert_error(dex.get("/api/admin/accounts", market).await, 403, "admin").await;
    assert_error(
        dex.post_json("/api/admin/accounts", market, &body).await,
        403,
        "admin",
    )
    .await;
    assert_error(
        dex.get(&format!("/api/admin/accounts/{id}"), market).await,
        403,
        "admin",
    )
    .await;
    assert_error(
        dex.put_json(&format!("/api/admin/accounts/{id}"), market, &change)
            .await,
        403,
        "admin",
    )
    .await;
    assert_error(dex.get("/api/admin/log", market).await, 403, "admin").await;

    // Nothing happened: not created, not promoted.
    let store = support::store().await;
    assert!(
        store
            .find_account_by_username(body["username"].as_str().unwrap())
            .await
            .unwrap()
            .is_none()
    );
    let mut roles: Vec<String> =
        serde_json::from_value(account_view(&dex, &admin, &id).await["roles"].clone()).unwrap();
    roles.sort();
    assert_eq!(roles, ["developer:dev-1", "marketplace"]);
}

// ---- account administration ---------------------------------------------------------------

#[tokio::test]
async fn admin_creates_an_account_and_the_log_records_it() {
    let dex = Dex::new();
    let admin = admin_token().await;
    let admin_id = sub_of(&admin);
    let username = unique_username("market");
    let password = unique_password();
    let resp = dex
        .post_json(
            "/api/admin/accounts",
            Some(&admin),
            // Unknown fields are ignored (docs/decisions.md §1).
            &json!({ "username": username, "password": password, "roles": ["marketplace"], "favouriteColour": "blue" }),
        )
        .await;
    let body = expect_json(resp, 201).await;
    let id = body["accountId"].as_str().expect("accountId").to_owned();
    assert!(
        uuid::Uuid::parse_str(&id).is_ok(),
        "account ids are UUIDs: {id}"
    );
    assert_eq!(body["username"], username.as_str());
    assert_eq!(body["roles"], json!(["marketplace"]));
    assert_eq!(body["disabled"], false);
    assert!(
        body["createdAt"].is_i64() && body["updatedAt"].is_i64(),
        "{body}"
    );
    let fields: Vec<&String> = body.as_object().unwrap().keys().collect();
    for field in &fields {
        assert!(
            !field.to_lowercase().contains("password") && !field.to_lowercase().contains("hash"),
            "field {field}: {body}"
        );
    }
    assert!(
        !body.to_string().contains(&password),
        "the password is echoed: {body}"
    );

    // GET shows the same view.
    let view = account_view(&dex, &admin, &id).await;
    assert_eq!(view, body);

    // The marketplace account logs in and is refused admin listings.
    let market = dex.token(&username, &password).await;
    assert_error(
        dex.get("/api/admin/accounts", Some(&market)).await,
        403,
        "admin",
    )
    .await;

    // The log: one account.created by this admin, a valid chain.
    let subject = format!("account:{id}");
    let history = verified_history(&dex, &admin, &subject).await;
    assert_eq!(kinds(&history), ["account.created"]);
    let created = &history[0];
    assert_eq!(created.actor, format!("account:{admin_id}"));
    assert_eq!(created.details["username"], username.as_str());
    assert_eq!(created.details["roles"], json!(["marketplace"]));
    assert!(!created.details.to_string().contains(&password));
    assert!((created.at - body["createdAt"].as_i64().unwrap()).abs() < 60_000);
}

#[tokio::test]
async fn account_creation_validates_its_input() {
    let dex = Dex::new();
    let admin = admin_token().await;
    let store = support::store().await;
    let path = "/api/admin/accounts";
    let token = Some(admin.as_str());

    // Malformed JSON, empty body, wrong types: 400 and nothing created.
    let username = unique_username("malformed");
    let truncated = format!(
        "{{\"username\": \"{username}\", \"password\": \"{}\"",
        unique_password()
    );
    let err = assert_error(
        dex.send_raw(Method::POST, path, token, truncated).await,
        400,
        "JSON",
    )
    .await;
    assert!(err["details"].is_array(), "a JSON error says where: {err}");
    assert!(
        store
            .find_account_by_username(&username)
            .await
            .unwrap()
            .is_none(),
        "a malformed body created {username}"
    );
    assert_error(dex.send_raw(Method::POST, path, token, "").await, 400, "").await;
    assert_error(dex.send_raw(Method::POST, path, token, "[]").await, 400, "").await;
    let username = unique_username("types");
    assert_error(
        dex.post_json(
            path,
            token,
            &json!({ "username": username, "password": 12 }),
        )
        .await,
        400,
        "",
    )
    .await;
    assert!(
        store
            .find_account_by_username(&username)
            .await
            .unwrap()
            .is_none()
    );

    // Invalid values: every problem is listed in details.
    let username = unique_username("invalid");
    let err = assert_error(
        dex.post_json(
            path,
            token,
            &json!({ "username": username, "password": "short", "roles": ["root", "marketplace"] }),
        )
        .await,
        400,
        "",
    )
    .await;
    let details = err["details"]
        .as_array()
        .expect("details")
        .iter()
        .map(|d| d.as_str().unwrap().to_owned())
        .collect::<Vec<_>>();
    assert!(
        details.iter().any(|d| d.contains("password")),
        "{details:?}"
    );
    assert!(details.iter().any(|d| d.contains("root")), "{details:?}");
    assert!(
        store
            .find_account_by_username(&username)
            .await
            .unwrap()
            .is_none()
    );
    assert_error(
        dex.post_json(
            path,
            token,
            &json!({ "username": "   ", "password": unique_password() }),
        )
        .await,
        400,
        "",
    )
    .await;

    // Oversized body (> 256 KiB): 413, nothing created.
    let username = unique_username("huge");
    let huge = json!({ "username": username, "password": unique_password(), "padding": "x".repeat(300 * 1024) });
    assert_error(dex.post_json(path, token, &huge).await, 413, "").await;
    assert!(
        store
            .find_account_by_username(&username)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn duplicate_usernames_are_409() {
    let dex = Dex::new();
    let admin = admin_token().await;
    let (id, username, _) = create_account(&admin, &[]).await;
    for variant in [
        username.clone(),
        username.to_uppercase(),
        format!("  {username} "),
    ] {
        let body =
            json!({ "username": variant, "password": unique_password(), "roles": ["admin"] });
        assert_error(
            dex.post_json("/api/admin/accounts", Some(&admin), &body)
                .await,
            409,
            "",
        )
        .await;
    }
    let store = support::store().await;
    let found = store
        .find_account_by_username(&username)
        .await
        .unwrap()
        .expect("the first account");
    assert_eq!(found.account_id, id);
    assert!(
        found.roles.is_empty(),
        "a refused duplicate changed the account: {found:?}"
    );
    // Only the one creation is logged.
    assert_eq!(
        kinds(&verified_history(&dex, &admin, &format!("account:{id}")).await),
        ["account.created"]
    );
}

#[tokio::test]
async fn list_accounts_paginates() {
    let dex = Dex::new();
    let admin = admin_token().await;
    let mut mine = Vec::new();
    for _ in 0..3 {
        mine.push(create_account(&admin, &[]).await.0);
    }

    // limit=1: pages of one, cursors that advance, ascending usernames.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..4 {
        let path = match &cursor {
            None => "/api/admin/accounts?limit=1".to_owned(),
            Some(c) => format!("/api/admin/accounts?limit=1&cursor={}", url_encode(c)),
        };
        let body = expect_json(dex.get(&path, Some(&admin)).await, 200).await;
        let items = body["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{body}");
        seen.push((
            items[0]["username"].as_str().unwrap().to_lowercase(),
            items[0]["accountId"].as_str().unwrap().to_owned(),
        ));
        cursor = Some(
            body["cursor"]
                .as_str()
                .expect("more accounts follow: a cursor")
                .to_owned(),
        );
    }
    // The rest, in big pages, from where limit=1 stopped.
    for _ in 0..10_000 {
        let path = format!(
            "/api/admin/accounts?limit=200&cursor={}",
            url_encode(cursor.as_ref().unwrap())
        );
        let body = expect_json(dex.get(&path, Some(&admin)).await, 200).await;
        for item in body["items"].as_array().unwrap() {
            seen.push((
                item["username"].as_str().unwrap().to_lowercase(),
                item["accountId"].as_str().unwrap().to_owned(),
            ));
        }
        cursor = body["cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    assert!(cursor.is_none(), "the listing did not end");
    let mut ids: Vec<&String> = seen.iter().map(|(_, id)| id).collect();
    for id in &mine {
        assert!(ids.contains(&id), "account {id} missing from the listing");
    }
    assert!(
        seen.windows(2).all(|w| w[0].0 < w[1].0),
        "not in ascending username order"
    );
    let before = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), before, "an account appeared twice");

    // Default page, bad limits, bad cursors.
    let body = expect_json(dex.get("/api/admin/accounts", Some(&admin)).await, 200).await;
    assert!(body["items"].as_array().unwrap().len() <= 50);
    assert_clean(&body.to_string());
    for bad in ["limit=0", "limit=201", "limit=-1", "limit=ten"] {
        assert_error(
            dex.get(&format!("/api/admin/accounts?{bad}"), Some(&admin))
                .await,
            400,
            "limit",
        )
        .await;
    }
    assert_error(
        dex.get("/api/admin/accounts?cursor=not-a-cursor", Some(&admin))
            .await,
        400,
        "cursor",
    )
    .await;
    // A well-formed cursor this API never returned.
    let foreign = URL_SAFE_NO_PAD.encode(json!({ "key": { "pk": "x" } }).to_string());
    assert_error(
        dex.get(
            &format!("/api/admin/accounts?cursor={foreign}"),
            Some(&admin),
        )
        .await,
        400,
        "cursor",
    )
    .await;
}

#[tokio::test]
async fn get_and_update_an_account() {
    let dex = Dex::new();
    let admin = admin_token().await;
    let admin_id = sub_of(&admin);
    let (id, username, password) = create_account(&admin, &["marketplace"]).await;
    let path = format!("/api/admin/accounts/{id}");
    let subject = format!("account:{id}");

    // Unknown accounts.
    let nobody = uuid::Uuid::new_v4();
    assert_error(
        dex.get(&format!("/api/admin/accounts/{nobody}"), Some(&admin))
            .await,
        404,
        "",
    )
    .await;
    assert_error(
        dex.put_json(
            &format!("/api/admin/accounts/{nobody}"),
            Some(&admin),
            &json!({ "roles": [] }),
        )
        .await,
        404,
        "",
    )
    .await;

    // Change roles: logged as account.roles-changed.
    let updated = expect_json(
        dex.put_json(
            &path,
            Some(&admin),
            &json!({ "roles": ["provisioner:hubat.net", "marketplace"] }),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        updated["roles"],
        json!(["marketplace", "provisioner:hubat.net"])
    );
    assert_eq!(updated["username"], username.as_str());
    let view = account_view(&dex, &admin, &id).await;
    assert_eq!(view, updated);
    assert!(view["updatedAt"].as_i64() >= view["createdAt"].as_i64());
    let history = verified_history(&dex, &admin, &subject).await;
    assert_eq!(
        kinds(&history),
        ["account.created", "account.roles-changed"]
    );
    assert_eq!(history[1].actor, format!("account:{admin_id}"));
    assert_eq!(history[1].details["from"], json!(["marketplace"]));
    assert_eq!(
        history[1].details["to"],
        json!(["marketplace", "provisioner:hubat.net"])
    );
    // A new token carries the new roles.
    let token = dex.token(&username, &password).await;
    assert_eq!(
        jwt_parts(&token).1["roles"],
        json!(["marketplace", "provisioner:hubat.net"])
    );

    // The same roles again: no change, nothing logged.
    expect_json(
        dex.put_json(
            &path,
            Some(&admin),
            &json!({ "roles": ["marketplace", "provisioner:hubat.net"] }),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(verified_history(&dex, &admin, &subject).await.len(), 2);

    // An unknown role: 400 with details, nothing changed, nothing logged.
    let err = assert_error(
        dex.put_json(&path, Some(&admin), &json!({ "roles": ["admin", "root"] }))
            .await,
        400,
        "role",
    )
    .await;
    assert!(
        err["details"]
            .as_array()
            .is_some_and(|d| d.iter().any(|x| x.as_str().unwrap().contains("root"))),
        "{err}"
    );
    assert_eq!(account_view(&dex, &admin, &id).await, view);
    assert_eq!(verified_history(&dex, &admin, &subject).await.len(), 2);

    // Nothing to change, malformed JSON: 400.
    assert_error(dex.put_json(&path, Some(&admin), &json!({})).await, 400, "").await;
    assert_error(
        dex.send_raw(Method::PUT, &path, Some(&admin), "{\"roles\": [")
            .await,
        400,
        "",
    )
    .await;
    assert_error(
        dex.put_json(&path, Some(&admin), &json!({ "disabled": "yes" }))
            .await,
        400,
        "",
    )
    .await;
    assert_eq!(account_view(&dex, &admin, &id).await, view);
}

#[tokio::test]
async fn a_disabled_account_can_neither_log_in_nor_use_its_token() {
    let dex = Dex::new();
    let admin = admin_token().await;
    let (id, username, password) = create_account(&admin, &["admin"]).await;
    let path = format!("/api/admin/accounts/{id}");
    let token = dex.token(&username, &password).await;
    expect_json(
        dex.get("/api/admin/accounts?limit=1", Some(&token)).await,
        200,
    )
    .await;

    // An admin cannot disable their own account.
    assert_error(
        dex.put_json(&path, Some(&token), &json!({ "disabled": true }))
            .await,
        409,
        "own",
    )
    .await;

    let body = expect_json(
        dex.put_json(&path, Some(&admin), &json!({ "disabled": true }))
            .await,
        200,
    )
    .await;
    assert_eq!(body["disabled"], true);
    assert_error(dex.login(&username, &password).await, 403, "disabled").await;
    // A wrong password stays a 401: being disabled is only told to the right password.
    assert_error(dex.login(&username, "wrong password 123").await, 401, "").await;
    assert_error(
        dex.get("/api/admin/accounts?limit=1", Some(&token)).await,
        401,
        "disabled",
    )
    .await;

    // Enabled again, it works again (the old token too: it has not expired).
    let body = expect_json(
        dex.put_json(&path, Some(&admin), &json!({ "disabled": false }))
            .await,
        200,
    )
    .await;
    assert_eq!(body["disabled"], false);
    expect_json(
        dex.get("/api/admin/accounts?limit=1", Some(&token)).await,
        200,
    )
    .await;
    dex.token(&username, &password).await;

    let history = verified_history(&dex, &admin, &format!("account:{id}")).await;
    assert_eq!(
        kinds(&history),
        ["account.created", "account.disabled", "account.enabled"]
    );
}

#[tokio::test]
async fn a_revoked_role_takes_effect_at_once() {
    let dex = Dex::new();
    let admin = admin_token().await;
    let (id, username, password) = create_account(&admin, &["admin"]).await;
    let token = dex.token(&username, &password).await;
    expect_json(
        dex.get("/api/admin/accounts?limit=1", Some(&token)).await,
        200,
    )
    .await;
    expect_json(
        dex.put_json(
            &format!("/api/admin/accounts/{id}"),
            Some(&admin),
            &json!({ "roles": [] }),
        )
        .await,
        200,
    )
    .await;
    // The token still says admin, the account no longer is.
    assert_eq!(jwt_parts(&token).1["roles"], json!(["admin"]));
    assert_error(
        dex.get("/api/admin/accounts?limit=1", Some(&token)).await,
        403,
        "admin",
    )
    .await;
}

// ---- the admin log -----------------------------------------------------------------------

#[tokio::test]
async fn admin_log_filters() {
    let dex = Dex::new();
    let root = admin_token().await;
    let started = now_millis() - 1;

    // A fresh admin whose every action this test knows.
    let (actor_id, actor_user, actor_pw) = create_account(&root, &["admin"]).await;
    let actor = dex.token(&actor_user, &actor_pw).await;
    let actor_subject = format!("account:{actor_id}");
    let (target, _, _) = create_account(&actor, &[]).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let between = now_millis();
    tokio::time::sleep(Duration::from_millis(20)).await;
    expect_json(
        dex.put_json(
            &format!("/api/admin/accounts/{target}"),
            Some(&actor),
            &json!({ "roles": ["marketplace"] }),
        )
        .await,
        200,
    )
    .await;
    let target_subject = format!("account:{target}");

    // By actor: exactly this admin's two actions, newest first, across pages of one.
    let by_actor = log_all(
        &dex,
        &root,
        &format!("actor={}", url_encode(&actor_subject)),
        1,
    )
    .await;
    assert_eq!(
        kinds(&by_actor),
        ["account.roles-changed", "account.created"],
        "{by_actor:#?}"
    );
    assert!(
        by_actor
            .iter()
            .all(|e| e.subject == target_subject && e.actor == actor_subject)
    );
    assert!(by_actor[0].at >= by_actor[1].at);

    // Actor and kind.
    let q = format!("actor={}&kind=account.created", url_encode(&actor_subject));
    let created = log_all(&dex, &root, &q, 50).await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].subject, target_subject);

    // By kind within a time range: ours is there, everything matches the filter.
    let q = format!("kind=account.roles-changed&from={started}");
    let changed = log_all(&dex, &root, &q, 200).await;
    assert!(
        changed.iter().any(|e| e.subject == target_subject),
        "roles change missing from the kind listing"
    );
    assert!(
        changed
            .iter()
            .all(|e| e.kind == "account.roles-changed" && e.at >= started)
    );

    // By subject and time: before/after the moment between the two changes.
    let q = format!("subject={}&to={between}", url_encode(&target_subject));
    assert_eq!(
        kinds(&log_all(&dex, &root, &q, 50).await),
        ["account.created"]
    );
    let q = format!("subject={}&from={between}", url_encode(&target_subject));
    assert_eq!(
        kinds(&log_all(&dex, &root, &q, 50).await),
        ["account.roles-changed"]
    );
    // ISO-8601 bounds work too (with and without a colon in the offset).
    let iso = chrono::DateTime::from_timestamp_millis(between).unwrap();
    for text in [
        iso.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        iso.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string(),
    ] {
        let q = format!(
            "subject={}&from={}",
            url_encode(&target_subject),
            url_encode(&text)
        );
        assert_eq!(
            kinds(&log_all(&dex, &root, &q, 50).await),
            ["account.roles-changed"],
            "from={text}"
        );
    }

    // Time range alone: ours are among the entries, all inside the range.
    let until = now_millis() + 1;
    let q = format!("from={started}&to={until}");
    let range = log_all(&dex, &root, &q, 200).await;
    assert!(range.iter().all(|e| e.at >= started && e.at <= until));
    for subject in [&actor_subject, &target_subject] {
        assert!(
            range.iter().any(|e| &e.subject == subject),
            "{subject} missing from the time range listing"
        );
    }

    // Bad filters.
    assert_error(
        dex.get("/api/admin/log?from=yesterday", Some(&root)).await,
        400,
        "yesterday",
    )
    .await;
    assert_error(
        dex.get("/api/admin/log?to=2021-13-45T99:00:00Z", Some(&root))
            .await,
        400,
        "",
    )
    .await;
    // `from` after `to` is a valid query no entry matches (the schema cannot forbid it).
    let backwards = expect_json(
        dex.get(
            &format!("/api/admin/log?from={until}&to={started}"),
            Some(&root),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(backwards, json!({"items": [], "cursor": null}));
    assert_error(
        dex.get("/api/admin/log?limit=0", Some(&root)).await,
        400,
        "limit",
    )
    .await;
    assert_error(
        dex.get("/api/admin/log?cursor=%21%21", Some(&root)).await,
        400,
        "cursor",
    )
    .await;
    // Well-formed cursors this API never returned (a client's mistake, not a server fault).
    let foreign = URL_SAFE_NO_PAD.encode(json!({ "key": { "pk": "x" } }).to_string());
    let q = format!("subject={}&cursor={foreign}", url_encode(&target_subject));
    assert_error(
        dex.get(&format!("/api/admin/log?{q}"), Some(&root)).await,
        400,
        "cursor",
    )
    .await;
    let foreign = URL_SAFE_NO_PAD
        .encode(json!({ "partition": "2026-01-01", "key": { "pk": "x" } }).to_string());
    assert_error(
        dex.get(&format!("/api/admin/log?cursor={foreign}"), Some(&root))
            .await,
        400,
        "cursor",
    )
    .await;
}

// ---- key rotation ------------------------------------------------------------------------

#[tokio::test]
async fn key_rotation_keeps_old_tokens_valid_and_signs_with_the_new_key() {
    let _keys = KeysLock::exclusive().await;
    let dex = Dex::new();
    let admin = admin_token().await;
    let (id, username, password) = create_account(&admin, &["admin"]).await;
    let before = dex.token(&username, &password).await;
    let old_kid = kid_of(&before);
    let probe = format!("/api/admin/accounts/{id}");
    expect_json(dex.get(&probe, Some(&before)).await, 200).await;

    let output = std::process::Command::new(built_binary("dexctl"))
        .arg("rotate-key")
        .output()
        .expect("run dexctl rotate-key");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "dexctl rotate-key failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !stdout.contains("PRIVATE"),
        "dexctl printed key material: {stdout}"
    );
    let app = support::app().await;
    let ring = app.tokens().signing().ring().await.expect("signing keys");
    let new_kid = ring.current().kid.clone();
    assert_ne!(new_kid, old_kid);
    assert!(
        ring.by_kid(&old_kid).is_some(),
        "the previous key was dropped from the secret"
    );
    assert!(
        stdout.contains(&new_kid),
        "dexctl does not name the new key: {stdout}"
    );

    // A token issued before the rotation keeps working.
    expect_json(dex.get(&probe, Some(&before)).await, 200).await;

    // New tokens carry the new kid, jwks lists both keys and /publickey is the new key, once
    // the warm functions have noticed (bounded by ROTATION_PROPAGATION).
    let deadline = Instant::now() + ROTATION_PROPAGATION;
    // Each of the three answers may come from a different instance, refreshed or not yet.
    let (after, keys) = loop {
        let token = dex.token(&username, &password).await;
        let keys = jwks(&dex).await;
        let pem = publickey(&dex).await;
        let kids = jwks_kids(&keys);
        let pem_is_new = jwk_by_kid(&keys, &new_kid)
            .is_some_and(|jwk| jwk["n"].as_str() == Some(&rsa_components_of_pem(&pem).0));
        let done = kid_of(&token) == new_kid
            && kids.contains(&new_kid)
            && kids.contains(&old_kid)
            && kids[0] == new_kid
            && pem_is_new;
        if done {
            break (token, keys);
        }
        assert!(
            Instant::now() < deadline,
            "{ROTATION_PROPAGATION:?} after `dexctl rotate-key` (new key {new_kid}, previous {old_kid}) DEX still \
             signs with {}, publishes {kids:?}, /publickey is the new key: {pem_is_new}",
            kid_of(&token)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    // Warm functions run as several instances, each refreshing its keys on its own clock:
    // concurrent requests reach all of them, and within ROTATION_PROPAGATION of the rotation
    // every one must have moved to the new key.
    let concurrent = 8;
    let current_n = jwk_by_kid(&keys, &new_kid).unwrap()["n"]
        .as_str()
        .unwrap()
        .to_owned();
    loop {
        let tokens =
            futures::future::join_all((0..concurrent).map(|_| dex.token(&username, &password)))
                .await;
        let jwks_answers = futures::future::join_all((0..concurrent).map(|_| jwks(&dex))).await;
        let pems = futures::future::join_all((0..concurrent).map(|_| publickey(&dex))).await;
        let signing: Vec<String> = tokens.iter().map(|t| kid_of(t)).collect();
        let published: Vec<Vec<String>> = jwks_answers.iter().map(jwks_kids).collect();
        let stale_pems = pems
            .iter()
            .filter(|p| rsa_components_of_pem(p).0 != current_n)
            .count();
        let all_moved = signing.iter().all(|k| *k == new_kid)
            && published
                .iter()
                .all(|kids| kids.first() == Some(&new_kid) && kids.contains(&old_kid))
            && stale_pems == 0;
        if all_moved {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{ROTATION_PROPAGATION:?} after `dexctl rotate-key` (new key {new_kid}, previous {old_kid}), \
             concurrent requests still see old keys: tokens signed with {signing:?}; jwks answers \
             {published:?}; {stale_pems} of {concurrent} /publickey answers are not the new key"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    verify_with_jwk(&after, jwk_by_kid(&keys, &new_kid).unwrap());
    verify_with_jwk(
        &before,
        jwk_by_kid(&keys, &old_kid).expect("the previous key stays published"),
    );

    // Both tokens are accepted (a function may need to reload its keys for the new kid).
    let deadline = Instant::now() + ROTATION_PROPAGATION;
    loop {
        let resp = dex.get(&probe, Some(&after)).await;
        if resp.status().as_u16() == 200 {
            break;
        }
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert!(
            Instant::now() < deadline,
            "a token signed with the new key is refused: {status} {text}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    expect_json(dex.get(&probe, Some(&before)).await, 200).await;

    // The rotation is in the log, on a valid chain.
    let history = verified_history(&dex, &admin, "dex:signing-key").await;
    let rotated = history
        .iter()
        .find(|e| e.kind == "signing-key.rotated" && e.details["kid"] == new_kid.as_str())
        .unwrap_or_else(|| panic!("the rotation to {new_kid} is not logged: {history:#?}"));
    assert_eq!(rotated.details["previousKid"], old_kid.as_str());
    assert_eq!(rotated.actor, "dexctl");
}
