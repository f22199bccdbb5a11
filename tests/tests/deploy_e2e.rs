//! A deployment with no manual step (issue 8 §3), as far as it can be shown without AWS, on
//! DynamoDB Local and moto:
//! - a new deployment (its own table and secret prefix, no `dexctl init`, no `ensure-admin`):
//!   the test plays CloudFormation's part only (the table, the key secrets created empty,
//!   the first-admin secret with a random password, as `GenerateSecretString` makes it), and
//!   cold containers (`App`s, each with its own caches, wired exactly as a function) race on
//!   their first login: one signing key, published before it signs, one first admin, one
//!   encryption key;
//! - password changes over real HTTP against the shared stack (`make test`).

use std::sync::Arc;

use dex::accounts::AccountStore;
use dex::auth::keys::{PublicKeySet, StoredKeySet};
use dex::auth::sealing::ensure_encryption_key;
use dex::ports::{Random, SecretStore, SystemClock, SystemRandom};
use dex::txlog::LogStore;
use dex_aws::dynamo::schema::ensure_table;
use dex_aws::secrets_manager::SecretsManager;
use dex_lambda::App;
use dex_tests::support::{self, Dex, admin_token, assert_error, create_account, expect_json};
use serde_json::json;

/// What `sam deploy` leaves behind for a new deployment.
struct NewDeployment {
    config: dex::config::Config,
    admin: (String, String),
}

impl NewDeployment {
    /// `empty_key_secrets`: the key secrets exist without a value (as the template creates
    /// them); otherwise they do not exist at all (a local stack), and DEX creates them.
    async fn create(empty_key_secrets: bool) -> Self {
        let id = &uuid::Uuid::new_v4().simple().to_string()[..12];
        let mut config = support::config();
        config.table = format!("dex-new-{id}");
        config.secrets_prefix = format!("new-{id}/");
        let (dynamodb, secrets) = dex_aws::aws_clients().await;
        ensure_table(&dynamodb, &config.table)
            .await
            .expect("the deployment's table");
        if empty_key_secrets {
            for name in ["signing-keys", "signing-keys-public", "encryption-keys"] {
                secrets
                    .create_secret()
                    .name(format!("{}{name}", config.secrets_prefix))
                    .send()
                    .await
                    .expect("an empty secret");
            }
        }
        let admin = (format!("ops-{id}@example.com"), generated_password());
        secrets
            .create_secret()
            .name(config.first_admin_secret())
            .secret_string(json!({ "username": admin.0, "password": admin.1 }).to_string())
            .send()
            .await
            .expect("the first-admin secret");
        config.first_admin = Some(admin.0.clone());
        Self { config, admin }
    }

    /// A cold container of this deployment.
    async fn container(&self) -> App {
        let (dynamodb, secrets) = dex_aws::aws_clients().await;
        App::with_clients(self.config.clone(), dynamodb, secrets)
    }

    async fn secret<T: serde::de::DeserializeOwned + Send>(&self, name: &str) -> Option<T> {
        support::secrets()
            .await
            .get_json(name)
            .await
            .expect("readable secret")
    }
}

/// Like the template's GenerateSecretString: 32 letters and digits.
fn generated_password() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..32)
        .map(|_| ALPHABET[SystemRandom.below(ALPHABET.len() as u64) as usize] as char)
        .collect()
}

fn kid(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .expect("token header")
        .kid
        .expect("kid")
}

async fn first_logins_make_one_key_and_one_admin(empty_key_secrets: bool) {
    let deployment = NewDeployment::create(empty_key_secrets).await;
    let (username, password) = &deployment.admin;
    let containers = futures::future::join_all((0..6).map(|_| deployment.container())).await;

    // Before any login: nothing published, no admin; a wrong password creates nothing.
    let first = &containers[0];
    assert!(first.tokens().published().await.unwrap().keys.is_empty());
    assert_eq!(first.tokens().public_pem().await.unwrap_err().status(), 404);
    assert_eq!(
        first
            .logins()
            .login(username, "not the generated password")
            .await
            .unwrap_err()
            .status(),
        401
    );
    let store = support::store().await;
    let store = dex_aws::dynamo::DynamoStore::new(
        store.client().clone(),
        deployment.config.table.clone(),
        Arc::new(SystemClock),
        Arc::new(SystemRandom),
    );
    assert!(
        store
            .find_account_by_username(username)
            .await
            .unwrap()
            .is_none()
    );

    // Every cold container logs the first admin in at once.
    let results = futures::future::join_all(
        containers
            .iter()
            .map(|c| async move { c.logins().login(username, password).await }),
    )
    .await;
    let logins: Vec<(String, dex::accounts::Account)> = results
        .into_iter()
        .map(|r| r.expect("first login"))
        .collect();
    let admin_id = &logins[0].1.account_id;
    assert!(logins.iter().all(|(_, a)| a.account_id == *admin_id));

    let private: StoredKeySet = deployment
        .secret(&deployment.config.signing_key_secret())
        .await
        .expect("the signing key was stored");
    assert_eq!(private.keys.len(), 1, "one key, however many raced");
    let kid0 = &private.keys[0].kid;
    assert!(logins.iter().all(|(t, _)| kid(t) == *kid0));
    let public: PublicKeySet = deployment
        .secret(&deployment.config.public_keys_secret())
        .await
        .expect("the public key was published");
    assert_eq!(public.kids().collect::<Vec<_>>(), [kid0.as_str()]);
    assert!(!serde_json::to_string(&public).unwrap().contains("PRIVATE"));

    // A verifier (a fresh container that never signs) verifies every token with the public
    // keys alone, and the admin is an admin.
    let verifier = deployment.container().await;
    for (token, _) in &logins {
        let account = verifier
            .authorize(Some(token), &dex::roles::Role::Admin)
            .await
            .expect("the first admin's token verifies");
        assert_eq!(account.account_id, *admin_id);
    }
    assert!(
        verifier
            .tokens()
            .public_pem()
            .await
            .unwrap()
            .contains("BEGIN PUBLIC KEY")
    );

    // The log: the account created once by the bootstrap, the key created once.
    let entries = |subject: String| {
        let store = &store;
        async move {
            store
                .subject_history(&subject, dex::page::PageRequest::first(50))
                .await
                .expect("history")
                .items
                .into_iter()
                .map(|e| (e.kind, e.actor))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        entries(format!("account:{admin_id}")).await,
        [("account.created".to_owned(), "bootstrap".to_owned())]
    );
    assert_eq!(
        entries(dex::txlog::Subject::signing_key().to_string()).await,
        [("signing-key.created".to_owned(), "bootstrap".to_owned())]
    );

    // Encryption keys, raced the same way on the real adapter: one key, all agree.
    let secrets = support::secrets().await;
    let name = deployment.config.encryption_key_secret();
    let sealers = futures::future::join_all((0..6).map(|_| {
        let secrets: SecretsManager = secrets.clone();
        let name = name.clone();
        async move { ensure_encryption_key(&secrets, &name, &SystemClock, &SystemRandom).await }
    }))
    .await;
    let sealers: Vec<_> = sealers.into_iter().map(|r| r.expect("sealer")).collect();
    assert_eq!(sealers.iter().filter(|(_, created)| *created).count(), 1);
    let sealed = sealers[0]
        .0
        .seal(&SystemRandom, "offer-1", b"hat password")
        .unwrap();
    for (sealer, _) in &sealers {
        assert_eq!(sealer.open("offer-1", &sealed).unwrap(), b"hat password");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_deployment_makes_its_key_and_first_admin_at_the_first_logins() {
    first_logins_make_one_key_and_one_admin(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_local_stack_without_the_secrets_gets_them_created_at_the_first_login() {
    first_logins_make_one_key_and_one_admin(false).await;
}

// ---- password changes over HTTP, on the shared stack ----------------------------------------

#[tokio::test]
async fn an_account_changes_its_own_password_with_the_current_one() {
    let dex = Dex::new();
    let admin = admin_token().await;
    let (id, username, password) = create_account(&admin, &["marketplace"]).await;
    let token = dex.token(&username, &password).await;
    let change = |current: Option<&str>, new: &str| match current {
        Some(c) => json!({ "currentPassword": c, "newPassword": new }),
        None => json!({ "newPassword": new }),
    };
    assert_error(
        dex.put_json(
            "/api/users/password",
            None,
            &change(Some(&password), "a brand new password"),
        )
        .await,
        401,
        "",
    )
    .await;
    assert_error(
        dex.put_json(
            "/api/users/password",
            Some(&token),
            &change(None, "a brand new password"),
        )
        .await,
        400,
        "currentPassword",
    )
    .await;
    assert_error(
        dex.put_json(
            "/api/users/password",
            Some(&token),
            &change(Some("not the password"), "a brand new password"),
        )
        .await,
        403,
        "current password",
    )
    .await;
    assert_error(
        dex.put_json(
            "/api/users/password",
            Some(&token),
            &change(Some(&password), "short"),
        )
        .await,
        400,
        "",
    )
    .await;
    let account = expect_json(
        dex.put_json(
            "/api/users/password",
            Some(&token),
            &change(Some(&password), "a brand new password"),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(account["accountId"], id.as_str());
    // The old token and the old password are dead; the new password logs in.
    assert_error(
        dex.get(&format!("/api/admin/accounts/{id}"), Some(&token))
            .await,
        401,
        "password changed",
    )
    .await;
    assert_eq!(dex.login(&username, &password).await.status(), 401);
    let fresh = dex.token(&username, "a brand new password").await;
    expect_json(
        dex.put_json(
            "/api/users/password",
            Some(&fresh),
            &change(Some("a brand new password"), "a third long password"),
        )
        .await,
        200,
    )
    .await;
    dex.token(&username, "a third long password").await;
}

#[tokio::test]
async fn an_admin_sets_another_accounts_password() {
    let dex = Dex::new();
    let admin = admin_token().await;
    let (id, username, password) = create_account(&admin, &["marketplace"]).await;
    let token = dex.token(&username, &password).await;
    let path = format!("/api/admin/accounts/{id}/password");
    let body = json!({ "newPassword": "set by the admin here" });
    // Not an admin: refused.
    assert_error(dex.put_json(&path, Some(&token), &body).await, 403, "admin").await;
    let account = expect_json(dex.put_json(&path, Some(&admin), &body).await, 200).await;
    assert_eq!(account["username"], username.as_str());
    assert_eq!(
        dex.get("/api/admin/accounts", Some(&token))
            .await
            .status()
            .as_u16(),
        401,
        "the account's earlier token is dead"
    );
    dex.token(&username, "set by the admin here").await;
    // An unknown account: 404; the change is logged, without the password.
    assert_error(
        dex.put_json(
            "/api/admin/accounts/00000000-0000-4000-8000-00000000dead/password",
            Some(&admin),
            &body,
        )
        .await,
        404,
        "",
    )
    .await;
    let log = expect_json(
        dex.get(
            &format!(
                "/api/admin/log?subject={}&limit=50",
                support::url_encode(&format!("account:{id}"))
            ),
            Some(&admin),
        )
        .await,
        200,
    )
    .await;
    let text = log.to_string();
    assert!(text.contains("account.password-changed"), "{text}");
    assert!(!text.contains("set by the admin"), "{text}");
}
