//! AccountService: creation, self-disable, role changes, login, authorize.

use dex::accounts::{AccountChange, AccountService, AccountStore, Actor, NewAccount};
use dex::auth::dex_token::DexClaims;
use dex::roles::Role;

use crate::support::{DEX_URL, PASSWORD, World, issuer, status};

fn claims(token: &str) -> DexClaims {
    let payload = token.split('.').nth(1).expect("a JWT");
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64");
    serde_json::from_slice(&bytes).expect("claims")
}

#[tokio::test]
async fn create_validates_hashes_logs_and_keeps_usernames_unique() {
    let w = World::new().await;
    let err = status(
        w.accounts()
            .create(
                &Actor::Operator,
                NewAccount {
                    username: " ".into(),
                    password: "short".into(),
                    roles: vec!["root".into()],
                },
            )
            .await,
        400,
    );
    match err {
        dex::DexError::BadRequest { details, .. } => assert_eq!(details.len(), 3, "{details:?}"),
        other => panic!("{other:?}"),
    }
    // A control character is refused even where the trim would drop it (CI's fuzz sent
    // "\u{b}ì"): blanks around a name are forgiven, control characters never.
    for username in ["\u{b}ì", "bob\u{7}", "\tcarol"] {
        status(
            w.accounts()
                .create(
                    &Actor::Operator,
                    NewAccount {
                        username: username.into(),
                        password: PASSWORD.into(),
                        roles: vec![],
                    },
                )
                .await,
            400,
        );
    }
    let a = w.account("  Alice@Example.com ", &["marketplace"]).await;
    assert_eq!(a.username, "Alice@Example.com", "trimmed");
    assert!(a.password_hash.starts_with("$argon2id$"));
    assert_ne!(a.password_hash, PASSWORD);
    assert_eq!(a.roles, vec![Role::Marketplace]);
    let log = w.history(&a.subject()).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].kind, "account.created");
    assert_eq!(log[0].actor, "dexctl");
    assert!(!log[0].details.to_string().contains(PASSWORD));
    let again = w
        .accounts()
        .create(
            &Actor::Operator,
            NewAccount {
                username: "alice@EXAMPLE.com".into(),
                password: PASSWORD.into(),
                roles: vec![],
            },
        )
        .await;
    status(again, 409);
    assert_eq!(
        w.store
            .list_accounts(dex::page::PageRequest::first(10))
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}

#[tokio::test]
async fn an_admin_cannot_disable_itself_but_can_disable_and_enable_others() {
    let w = World::new().await;
    let me = w.account("me@dex.test", &["admin"]).await;
    let other = w.account("other@dex.test", &["admin"]).await;
    let actor = Actor::Account(me.clone());
    let disable = || AccountChange {
        disabled: Some(true),
        ..Default::default()
    };
    status(
        w.accounts().update(&actor, &me.account_id, disable()).await,
        409,
    );
    let still = w.accounts().get(&me.account_id).await.unwrap();
    assert!(!still.disabled);
    assert_eq!(still.version, me.version, "nothing written");
    assert_eq!(w.kinds(&me.subject()).await, ["account.created"]);

    let disabled = w
        .accounts()
        .update(&actor, &other.account_id, disable())
        .await
        .unwrap();
    assert!(disabled.disabled);
    assert_eq!(disabled.version, other.version + 1);
    let enabled = w
        .accounts()
        .update(
            &actor,
            &other.account_id,
            AccountChange {
                disabled: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(!enabled.disabled);
    let log = w.history(&other.subject()).await;
    assert_eq!(
        log.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        ["account.created", "account.disabled", "account.enabled"]
    );
    assert!(log[1..].iter().all(|e| e.actor == me.subject().as_str()));
    assert_eq!(dex::txlog::verify_chain(&log), Ok(()));
    // The operator may disable anyone.
    assert!(
        w.accounts()
            .update(&Actor::Operator, &me.account_id, disable())
            .await
            .unwrap()
            .disabled
    );
}

#[tokio::test]
async fn role_changes_are_validated_logged_and_idempotent() {
    let w = World::new().await;
    let a = w.account("roles@dex.test", &["marketplace"]).await;
    let roles = |r: &[&str]| AccountChange {
        roles: Some(r.iter().map(|s| s.to_string()).collect()),
        disabled: None,
    };
    status(
        w.accounts()
            .update(&Actor::Operator, &a.account_id, AccountChange::default())
            .await,
        400,
    );
    status(
        w.accounts()
            .update(&Actor::Operator, &a.account_id, roles(&["wizard"]))
            .await,
        400,
    );
    status(
        w.accounts()
            .update(&Actor::Operator, "no-such-id", roles(&["admin"]))
            .await,
        404,
    );

    let next = w
        .accounts()
        .update(
            &Actor::Operator,
            &a.account_id,
            roles(&["provisioner:hubat.net", "admin", "admin"]),
        )
        .await
        .unwrap();
    assert_eq!(
        next.roles,
        vec![Role::Admin, Role::Provisioner("hubat.net".into())]
    );
    assert_eq!(next.version, 2);
    let log = w.history(&a.subject()).await;
    assert_eq!(log[1].kind, "account.roles-changed");
    assert_eq!(log[1].details["from"], serde_json::json!(["marketplace"]));
    assert_eq!(
        log[1].details["to"],
        serde_json::json!(["admin", "provisioner:hubat.net"])
    );
    // The same roles again change nothing and log nothing.
    let same = w
        .accounts()
        .update(
            &Actor::Operator,
            &a.account_id,
            roles(&["admin", "provisioner:hubat.net"]),
        )
        .await
        .unwrap();
    assert_eq!(same.version, 2);
    assert_eq!(w.history(&a.subject()).await.len(), 2);
    // A writer that read version 1 loses against the store's version condition.
    let mut stale = a.clone();
    stale.version = 2;
    status(w.store.update_account(&stale, 1, vec![]).await, 409);
}

#[tokio::test]
async fn login_issues_a_token_of_the_account_and_refuses_alike() {
    let w = World::new().await;
    let a = w.account("login@dex.test", &["marketplace"]).await;
    let now = dex::ports::Clock::now(&*w.clock).timestamp();
    let token = w.token(" LOGIN@dex.test").await;
    let c = claims(&token);
    assert_eq!(c.sub, a.account_id);
    assert_eq!(c.iss, DEX_URL);
    assert_eq!(c.roles, ["marketplace"]);
    assert_eq!(c.iat, now);
    assert_eq!(c.exp, now + 86_400);
    let login = |user: &'static str, pass: &'static str| {
        let w = &w;
        async move {
            w.accounts()
                .login(user, pass)
                .await
                .map(|(_, a)| a.account_id)
        }
    };
    let wrong = status(login("login@dex.test", "not the password!").await, 401);
    let unknown = status(login("nobody@dex.test", PASSWORD).await, 401);
    assert_eq!(
        wrong.to_string(),
        unknown.to_string(),
        "no hint that the account exists"
    );
    w.accounts()
        .update(
            &Actor::Operator,
            &a.account_id,
            AccountChange {
                disabled: Some(true),
                roles: None,
            },
        )
        .await
        .unwrap();
    status(login("login@dex.test", PASSWORD).await, 403);
    // A disabled account with the wrong password learns nothing either.
    status(login("login@dex.test", "not the password!").await, 401);
}

#[tokio::test]
async fn authorize_uses_the_account_as_it_is_now() {
    let w = World::new().await;
    let a = w.account("authz@dex.test", &["admin"]).await;
    let token = w.token("authz@dex.test").await;
    assert_eq!(
        w.authorize(&token, &Role::Admin).await.unwrap().account_id,
        a.account_id
    );
    status(w.authorize(&token, &Role::Marketplace).await, 403);
    status(w.accounts().authorize(None, &Role::Admin).await, 401);
    status(w.authorize("not.a.token", &Role::Admin).await, 401);
    // The same keys, another issuer: refused.
    let other_issuer = issuer(
        &w.secrets,
        &w.config,
        "https://other.test",
        &w.clock,
        &w.random,
    );
    let other_accounts = AccountService {
        store: &w.store,
        tokens: &other_issuer,
        clock: &*w.clock,
        random: &*w.random,
    };
    status(
        other_accounts.authorize(Some(&token), &Role::Admin).await,
        401,
    );

    // Roles revoked after the token was issued: refused at once (another admin remains, as
    // the last-admin rule requires).
    w.account("keeper@dex.test", &["admin"]).await;
    let change =
        |roles: Option<Vec<String>>, disabled: Option<bool>| AccountChange { roles, disabled };
    w.accounts()
        .update(
            &Actor::Operator,
            &a.account_id,
            change(Some(vec!["marketplace".into()]), None),
        )
        .await
        .unwrap();
    status(w.authorize(&token, &Role::Admin).await, 403);
    assert!(w.authorize(&token, &Role::Marketplace).await.is_ok());
    // Disabled after the token was issued: not authenticated any more.
    w.accounts()
        .update(&Actor::Operator, &a.account_id, change(None, Some(true)))
        .await
        .unwrap();
    status(w.authorize(&token, &Role::Marketplace).await, 401);
    // A token whose account does not exist.
    let other = World::new().await;
    other.account("authz@dex.test", &["admin"]).await;
    let foreign = other.token("authz@dex.test").await;
    status(w.authorize(&foreign, &Role::Admin).await, 401);
}
