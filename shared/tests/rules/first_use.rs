//! A deployment with no manual step, on the fakes: the signing and encryption keys are made
//! on first use (one key, however many cold containers race), verifiers need only the public
//! keys, the first admin is created at its first login from the stack's generated password,
//! and password changes end the account's earlier tokens.

use dex::accounts::{Actor, FirstAdmin, PasswordChange};
use dex::auth::keyring::{ensure_signing_key, publish};
use dex::auth::keys::{PublicKeySet, StoredKeySet};
use dex::auth::sealing::ensure_encryption_key;
use dex::ports::SecretStore;
use dex::roles::Role;

use crate::support::{DEX_URL, PASSWORD, World, YieldingSecrets, issuer, status};

const GENERATED: &str = "Gen3rated0nDeployAbcdefghijklmno";

fn first_admin(w: &World) -> FirstAdmin {
    FirstAdmin {
        username: Some("ops@dex.test".into()),
        secret_name: w.config.first_admin_secret(),
    }
}

async fn with_generated_password(w: &World) -> FirstAdmin {
    w.secrets
        .put_json(
            &w.config.first_admin_secret(),
            &serde_json::json!({ "username": "ops@dex.test", "password": GENERATED }),
        )
        .await
        .unwrap();
    first_admin(w)
}

fn kid(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

#[tokio::test]
async fn racing_first_signers_store_one_key_and_publish_it_before_signing() {
    let w = World::fresh();
    w.account("a@dex.test", &[]).await;
    let secrets = YieldingSecrets(w.secrets.clone());
    // Eight cold containers, each with its own caches, sign their first token at once.
    let containers: Vec<_> = (0..8)
        .map(|_| issuer(&secrets, &w.config, DEX_URL, &w.clock, &w.random))
        .collect();
    let account = w
        .accounts()
        .find_by_username("a@dex.test")
        .await
        .unwrap()
        .unwrap();
    let tokens = futures_util::future::join_all(containers.iter().map(|c| {
        c.issue(
            &account.account_id,
            dex::auth::tokens::Grant {
                roles: vec![],
                password_version: 0,
            },
            dex::ports::Clock::now(&*w.clock).timestamp(),
            "jti".into(),
        )
    }))
    .await;
    let tokens: Vec<String> = tokens.into_iter().map(Result::unwrap).collect();
    let stored: StoredKeySet =
        serde_json::from_str(&w.secrets.raw(&w.config.signing_key_secret()).unwrap()).unwrap();
    assert_eq!(stored.keys.len(), 1, "one key, whoever won");
    assert!(tokens.iter().all(|t| kid(t) == stored.keys[0].kid));
    let public_text = w.secrets.raw(&w.config.public_keys_secret()).unwrap();
    assert!(!public_text.contains("PRIVATE"), "{public_text}");
    let public: PublicKeySet = serde_json::from_str(&public_text).unwrap();
    assert_eq!(
        public.kids().collect::<Vec<_>>(),
        [stored.keys[0].kid.as_str()]
    );
    // Exactly one container learnt it created the key (and logs it).
    let created: Vec<String> = containers
        .iter()
        .filter_map(|c| c.signing().take_created())
        .collect();
    assert_eq!(created, [stored.keys[0].kid.clone()]);
    // Every token verifies with the public keys alone.
    for token in &tokens {
        assert_eq!(
            w.authorize(token, &Role::Admin)
                .await
                .map_err(|e| e.status()),
            Err(403),
            "verified, then refused for the role only"
        );
    }
}

#[tokio::test]
async fn verifiers_need_only_the_public_keys() {
    let w = World::fresh();
    w.account("v@dex.test", &["admin"]).await;
    let token = w.token("v@dex.test").await;
    // The private keys become unreadable: a fresh verifier (a verifying function, which may
    // not read them) still verifies, and publishes the current key.
    w.secrets
        .put_raw(&w.config.signing_key_secret(), "not for verifiers");
    let verifier = issuer(&w.secrets, &w.config, DEX_URL, &w.clock, &w.random);
    let claims = verifier.verify(&token).await.unwrap();
    assert_eq!(claims.pwv, 0);
    assert_eq!(verifier.published().await.unwrap().keys.len(), 1);
    assert!(verifier.public_pem().await.unwrap().contains("PUBLIC KEY"));
    // Before any key exists, verifiers publish nothing and refuse tokens (401, not 500).
    let empty = World::fresh();
    let none = issuer(
        &empty.secrets,
        &empty.config,
        DEX_URL,
        &empty.clock,
        &empty.random,
    );
    assert!(none.published().await.unwrap().keys.is_empty());
    status(none.public_pem().await, 404);
    status(none.verify(&token).await, 401);
}

#[tokio::test]
async fn a_stale_signer_never_unpublishes_a_newer_key() {
    let w = World::new().await;
    let (before, _) = ensure_signing_key(
        &w.secrets,
        &w.config.signing_key_secret(),
        &*w.clock,
        &*w.random,
    )
    .await
    .unwrap();
    let (new_kid, old_kid) = w
        .key_admin()
        .rotate(&Actor::Operator, std::time::Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(old_kid.as_deref(), Some(before.current().kid.as_str()));
    // A container that still holds the old ring publishes nothing: the new set covers it.
    assert!(
        !publish(&w.secrets, &w.config.public_keys_secret(), &before)
            .await
            .unwrap()
    );
    let public: PublicKeySet =
        serde_json::from_str(&w.secrets.raw(&w.config.public_keys_secret()).unwrap()).unwrap();
    assert_eq!(
        public.kids().collect::<Vec<_>>(),
        [new_kid.as_str(), before.current().kid.as_str()]
    );
    assert_eq!(
        w.kinds(dex::txlog::Subject::signing_key()).await,
        ["signing-key.created", "signing-key.rotated"]
    );
}

#[tokio::test]
async fn racing_containers_make_one_encryption_key() {
    let w = World::fresh();
    let secrets = YieldingSecrets(w.secrets.clone());
    let name = w.config.encryption_key_secret();
    let results = futures_util::future::join_all(
        (0..6).map(|_| ensure_encryption_key(&secrets, &name, &*w.clock, &*w.random)),
    )
    .await;
    let results: Vec<_> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(results.iter().filter(|(_, created)| *created).count(), 1);
    // What one container seals, every other opens: they hold the same key.
    let sealed = results[0]
        .0
        .seal(&*w.random, "offer-1", b"hat password")
        .unwrap();
    for (sealer, _) in &results {
        assert_eq!(sealer.open("offer-1", &sealed).unwrap(), b"hat password");
    }
}

#[tokio::test]
async fn the_first_admin_is_created_at_its_first_login_with_the_generated_password() {
    let w = World::fresh();
    let first = with_generated_password(&w).await;
    let logins = w.logins(&first);
    // A wrong password creates nothing.
    status(
        logins.login("ops@dex.test", "a wrong password!!").await,
        401,
    );
    assert!(
        w.accounts()
            .find_by_username("ops@dex.test")
            .await
            .unwrap()
            .is_none()
    );
    // Another username is an ordinary (failed) login.
    status(logins.login("someone@dex.test", GENERATED).await, 401);
    // Concurrent first logins create the account once; all get tokens.
    let results =
        futures_util::future::join_all((0..3).map(|_| logins.login("OPS@dex.test", GENERATED)))
            .await;
    let ids: Vec<String> = results
        .into_iter()
        .map(|r| r.unwrap().1.account_id)
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]));
    let (token, admin) = logins.login("ops@dex.test", GENERATED).await.unwrap();
    assert_eq!(admin.account_id, ids[0]);
    assert_eq!(
        w.authorize(&token, &Role::Admin).await.unwrap().account_id,
        ids[0]
    );
    let history = w.history(admin.subject()).await;
    assert_eq!(history.len(), 1, "created once");
    assert_eq!(history[0].kind, "account.created");
    assert_eq!(history[0].actor, "bootstrap");
    // The first login of all made the signing key, logged once by the bootstrap.
    let keys = w.history(dex::txlog::Subject::signing_key()).await;
    assert_eq!(keys.len(), 1);
    assert_eq!(
        (keys[0].kind.as_str(), keys[0].actor.as_str()),
        ("signing-key.created", "bootstrap")
    );
    // Once the admin changed its password, the generated one no longer logs in.
    w.accounts()
        .change_password(
            &Actor::Account(admin.clone()),
            &admin.account_id,
            PasswordChange {
                current_password: Some(GENERATED.into()),
                new_password: "the operator's own password".into(),
            },
        )
        .await
        .unwrap();
    status(logins.login("ops@dex.test", GENERATED).await, 401);
    logins
        .login("ops@dex.test", "the operator's own password")
        .await
        .unwrap();
}

#[tokio::test]
async fn a_broken_first_admin_setup_is_an_error_not_an_account() {
    let w = World::fresh();
    let first = first_admin(&w);
    // No generated value: 500 (a setup error), no account.
    status(w.logins(&first).login("ops@dex.test", GENERATED).await, 500);
    // A secret naming another user: refused as a setup error too.
    w.secrets
        .put_json(
            &w.config.first_admin_secret(),
            &serde_json::json!({ "username": "other@dex.test", "password": GENERATED }),
        )
        .await
        .unwrap();
    status(w.logins(&first).login("ops@dex.test", GENERATED).await, 500);
    assert!(
        w.accounts()
            .find_by_username("ops@dex.test")
            .await
            .unwrap()
            .is_none()
    );
    // Without a configured first admin the secret is never consulted.
    let none = FirstAdmin {
        username: None,
        secret_name: w.config.first_admin_secret(),
    };
    status(
        w.logins(&none).login("other@dex.test", GENERATED).await,
        401,
    );
}

#[tokio::test]
async fn a_password_change_ends_every_earlier_token() {
    let w = World::new().await;
    let me = w.account("me@dex.test", &["marketplace"]).await;
    let admin = w.account("boss@dex.test", &["admin"]).await;
    let old = w.token("me@dex.test").await;
    let change = |current: Option<&str>, new: &str| PasswordChange {
        current_password: current.map(str::to_owned),
        new_password: new.to_owned(),
    };
    let acting = Actor::Account(me.clone());
    // The account itself must give its current password, rightly; the new one obeys the rules.
    status(
        w.accounts()
            .change_password(&acting, &me.account_id, change(None, "a new long password"))
            .await,
        400,
    );
    status(
        w.accounts()
            .change_password(
                &acting,
                &me.account_id,
                change(Some("not it at all"), "a new long password"),
            )
            .await,
        403,
    );
    status(
        w.accounts()
            .change_password(&acting, &me.account_id, change(Some(PASSWORD), "short"))
            .await,
        400,
    );
    w.authorize(&old, &Role::Marketplace).await.unwrap();
    let changed = w
        .accounts()
        .change_password(
            &acting,
            &me.account_id,
            change(Some(PASSWORD), "a new long password"),
        )
        .await
        .unwrap();
    assert_eq!(changed.password_version, 1);
    let err = status(w.authorize(&old, &Role::Marketplace).await, 401);
    assert!(err.to_string().contains("password changed"), "{err}");
    status(w.accounts().login("me@dex.test", PASSWORD).await, 401);
    let (new, _) = w
        .accounts()
        .login("me@dex.test", "a new long password")
        .await
        .unwrap();
    w.authorize(&new, &Role::Marketplace).await.unwrap();
    // An admin sets another account's password without knowing it; that ends `new` too.
    w.accounts()
        .change_password(
            &Actor::Account(admin.clone()),
            &me.account_id,
            change(None, "the admin's choice here"),
        )
        .await
        .unwrap();
    status(w.authorize(&new, &Role::Marketplace).await, 401);
    w.accounts()
        .login("me@dex.test", "the admin's choice here")
        .await
        .unwrap();
    // An unknown account: 404. Each change is logged, never with a password.
    status(
        w.accounts()
            .change_password(
                &Actor::Operator,
                "no-such-account",
                change(None, "whatever long enough"),
            )
            .await,
        404,
    );
    let history = w.history(me.subject()).await;
    let changes: Vec<_> = history
        .iter()
        .filter(|e| e.kind == "account.password-changed")
        .collect();
    assert_eq!(changes.len(), 2);
    let text =
        serde_json::to_string(&history.iter().map(|e| &e.details).collect::<Vec<_>>()).unwrap();
    assert!(
        !text.contains("long password") && !text.contains("admin's choice"),
        "{text}"
    );
}
