//! The last-admin rule on the fakes: an enabled admin always remains, a demotion is
//! guarded by another admin's version in the same commit, and two concurrent demotions of
//! the last two admins cannot both succeed.

use dex::accounts::{AccountChange, AccountGuard, AccountStore, Actor};

use crate::support::{World, status};

fn demote() -> AccountChange {
    AccountChange {
        roles: Some(vec![]),
        disabled: None,
    }
}

fn disable() -> AccountChange {
    AccountChange {
        roles: None,
        disabled: Some(true),
    }
}

#[tokio::test]
async fn the_last_enabled_admin_can_neither_lose_the_role_nor_be_disabled() {
    let w = World::new().await;
    let only = w.account("only@dex.test", &["admin"]).await;
    // A disabled admin does not count.
    let off = w.account("off@dex.test", &["admin"]).await;
    w.accounts()
        .update(&Actor::Operator, &off.account_id, disable())
        .await
        .unwrap();
    for change in [demote(), disable()] {
        let err = status(
            w.accounts()
                .update(&Actor::Operator, &only.account_id, change)
                .await,
            409,
        );
        assert!(err.to_string().contains("last enabled admin"), "{err}");
    }
    let still = w.accounts().get(&only.account_id).await.unwrap();
    assert!(still.is_enabled_admin());
    assert_eq!(still.version, only.version, "nothing written");
    assert_eq!(w.kinds(only.subject()).await, ["account.created"]);
    // With a second enabled admin, the first may go.
    w.account("second@dex.test", &["admin"]).await;
    let demoted = w
        .accounts()
        .update(&Actor::Operator, &only.account_id, demote())
        .await
        .unwrap();
    assert!(!demoted.is_enabled_admin());
    assert_eq!(
        w.kinds(only.subject()).await,
        ["account.created", "account.roles-changed"]
    );
}

#[tokio::test]
async fn an_admin_cannot_demote_itself_even_with_other_admins() {
    let w = World::new().await;
    let me = w.account("me@dex.test", &["admin"]).await;
    w.account("other@dex.test", &["admin"]).await;
    let err = status(
        w.accounts()
            .update(&Actor::Account(me.clone()), &me.account_id, demote())
            .await,
        409,
    );
    assert!(err.to_string().contains("own account"), "{err}");
    assert!(
        w.accounts()
            .get(&me.account_id)
            .await
            .unwrap()
            .is_enabled_admin()
    );
}

#[tokio::test]
async fn a_non_admin_change_needs_no_other_admin() {
    let w = World::new().await;
    let admin = w.account("admin@dex.test", &["admin"]).await;
    let buyer = w.account("buyer@dex.test", &["marketplace"]).await;
    let admin_id = admin.account_id.clone();
    let disabled = w
        .accounts()
        .update(&Actor::Account(admin), &buyer.account_id, disable())
        .await
        .unwrap();
    assert!(disabled.disabled);
    // Adding a role to the last admin keeps it an enabled admin: no other admin needed.
    let more = w
        .accounts()
        .update(
            &Actor::Operator,
            &admin_id,
            AccountChange {
                roles: Some(vec!["admin".into(), "marketplace".into()]),
                disabled: None,
            },
        )
        .await
        .unwrap();
    assert!(more.is_enabled_admin() && more.roles.len() == 2);
}

#[tokio::test]
async fn the_guarded_update_commits_only_while_the_guard_is_unchanged() {
    let w = World::new().await;
    let target = w.account("target@dex.test", &["admin"]).await;
    let guard_account = w.account("guard@dex.test", &["admin"]).await;
    let guard = AccountGuard {
        account_id: guard_account.account_id.clone(),
        version: guard_account.version,
    };
    let mut next = target.clone();
    next.roles.clear();
    next.version += 1;
    // The guard moved on (e.g. was itself demoted): refused, nothing written.
    w.accounts()
        .update(
            &Actor::Operator,
            &guard_account.account_id,
            AccountChange {
                roles: Some(vec!["admin".into(), "marketplace".into()]),
                disabled: None,
            },
        )
        .await
        .unwrap();
    let err = status(
        w.store
            .update_account_guarded(&next, target.version, &guard, vec![])
            .await,
        409,
    );
    assert!(err.to_string().contains("admin account changed"), "{err}");
    assert_eq!(
        w.store
            .get_account(&target.account_id)
            .await
            .unwrap()
            .unwrap(),
        target
    );
    // A guard that does not exist holds nothing either.
    let missing = AccountGuard {
        account_id: "no-such-account".into(),
        version: 1,
    };
    status(
        w.store
            .update_account_guarded(&next, target.version, &missing, vec![])
            .await,
        409,
    );
    // The account itself moved on: the account's own conflict, not the guard's.
    let fresh = AccountGuard {
        account_id: guard_account.account_id.clone(),
        version: guard_account.version + 1,
    };
    let err = status(
        w.store
            .update_account_guarded(&next, target.version + 5, &fresh, vec![])
            .await,
        409,
    );
    assert!(err.to_string().contains("the account changed"), "{err}");
    // Both at their versions: written.
    w.store
        .update_account_guarded(&next, target.version, &fresh, vec![])
        .await
        .unwrap();
    let stored = w
        .store
        .get_account(&target.account_id)
        .await
        .unwrap()
        .unwrap();
    assert!(stored.roles.is_empty() && stored.version == target.version + 1);
}

/// The race a read-then-write would lose: the operator demotes the last two admins at
/// once, each change guarded by the other. Every call yields before committing, so the two
/// interleave between their reads and their commits; exactly one may win.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_concurrent_demotions_of_the_last_two_admins_cannot_both_succeed() {
    for round in 0..10 {
        let w = World::new().await;
        let a = w.account(&format!("a{round}@dex.test"), &["admin"]).await;
        let b = w.account(&format!("b{round}@dex.test"), &["admin"]).await;
        let accounts = w.accounts();
        let (ra, rb) = tokio::join!(
            accounts.update(&Actor::Operator, &a.account_id, demote()),
            accounts.update(&Actor::Operator, &b.account_id, demote()),
        );
        let won = [&ra, &rb].iter().filter(|r| r.is_ok()).count();
        assert!(won <= 1, "round {round}: both demotions committed");
        for r in [ra, rb] {
            if let Err(e) = r {
                assert_eq!(e.status(), 409, "round {round}: {e}");
            }
        }
        let mut admins = 0;
        for id in [&a.account_id, &b.account_id] {
            if w.accounts().get(id).await.unwrap().is_enabled_admin() {
                admins += 1;
            }
        }
        assert!(admins >= 1, "round {round}: no enabled admin left");
    }
}
