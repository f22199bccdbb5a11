//! Failed-login limits (`dex::accounts::login_limits`): per username and per source address,
//! locks that double up to a cap, unknown usernames counted alike, success clears.

use std::time::Duration;

use dex::DexResult;
use dex::accounts::{FailureCount, FirstAdmin, LoginLimitStore, LoginLimits, LoginService};
use dex::testing::{MemorySecrets, MemoryStore};

use crate::support::{PASSWORD, World, config};

const WRONG: &str = "not the password at all";

fn no_first_admin(w: &World) -> FirstAdmin {
    FirstAdmin {
        username: None,
        secret_name: w.config.first_admin_secret(),
    }
}

fn logins<'a>(
    w: &'a World,
    first: &'a FirstAdmin,
    limits: &'a LoginLimits,
) -> LoginService<'a, MemoryStore, MemorySecrets> {
    LoginService {
        accounts: w.accounts(),
        secrets: &w.secrets,
        first_admin: first,
        limits,
    }
}

/// What an attempt answered: the status and the `Retry-After` (0 when none).
fn outcome<T>(result: DexResult<T>) -> (u16, u64) {
    match result {
        Ok(_) => (200, 0),
        Err(e) => (e.status(), e.retry_after_secs().unwrap_or(0)),
    }
}

/// The default policy's sequence for one username: what each step answered.
async fn guess_sequence(w: &World, username: &str, source: &str) -> Vec<(u16, u64)> {
    let first = no_first_admin(w);
    let limits = LoginLimits::default();
    let l = logins(w, &first, &limits);
    let mut seen = Vec::new();
    // Five free failures, then the sixth sets a 1 s lock.
    for _ in 0..6 {
        seen.push(outcome(l.login_from(username, WRONG, Some(source)).await));
    }
    // Locked: refused before the password is looked at, right or wrong.
    seen.push(outcome(
        l.login_from(username, PASSWORD, Some(source)).await,
    ));
    w.clock.advance(Duration::from_millis(1000));
    seen.push(outcome(l.login_from(username, WRONG, Some(source)).await));
    // The seventh failure locks for 2 s.
    seen.push(outcome(l.login_from(username, WRONG, Some(source)).await));
    w.clock.advance(Duration::from_millis(1500));
    seen.push(outcome(l.login_from(username, WRONG, Some(source)).await));
    w.clock.advance(Duration::from_millis(500));
    seen.push(outcome(l.login_from(username, WRONG, Some(source)).await));
    seen.push(outcome(l.login_from(username, WRONG, Some(source)).await));
    seen
}

#[tokio::test]
async fn failures_of_a_username_lock_it_for_a_doubling_time_and_unknown_ones_alike() {
    let w = World::new().await;
    w.account("alice@dex.test", &[]).await;
    let real = guess_sequence(&w, "alice@dex.test", "198.51.100.1").await;
    assert_eq!(
        real,
        vec![
            (401, 0),
            (401, 0),
            (401, 0),
            (401, 0),
            (401, 0),
            (401, 0),
            (429, 1),
            (401, 0),
            (429, 2),
            (429, 1),
            (401, 0),
            (429, 4),
        ]
    );
    // A username no account has: the very same answers, so nothing tells them apart.
    let unknown = guess_sequence(&w, "nobody@dex.test", "198.51.100.2").await;
    assert_eq!(unknown, real);
}

#[tokio::test]
async fn a_success_clears_the_username_and_other_usernames_are_not_affected() {
    let w = World::new().await;
    w.account("alice@dex.test", &[]).await;
    w.account("bob@dex.test", &[]).await;
    let first = no_first_admin(&w);
    let limits = LoginLimits::default();
    let l = logins(&w, &first, &limits);
    let source = Some("198.51.100.1");
    for _ in 0..6 {
        assert_eq!(
            outcome(l.login_from("alice@dex.test", WRONG, source).await),
            (401, 0)
        );
    }
    // Case and spaces do not make another counter.
    assert_eq!(
        outcome(l.login_from("  ALICE@dex.test", PASSWORD, source).await),
        (429, 1)
    );
    // Bob, from the same address, is not locked.
    assert_eq!(
        outcome(l.login_from("bob@dex.test", PASSWORD, source).await),
        (200, 0)
    );
    w.clock.advance(Duration::from_secs(1));
    assert_eq!(
        outcome(l.login_from("alice@dex.test", PASSWORD, source).await),
        (200, 0)
    );
    // Cleared: five free failures again.
    for _ in 0..5 {
        assert_eq!(
            outcome(l.login_from("alice@dex.test", WRONG, source).await),
            (401, 0)
        );
    }
    assert_eq!(
        outcome(l.login_from("alice@dex.test", PASSWORD, source).await),
        (200, 0)
    );
}

#[tokio::test]
async fn failures_from_one_address_over_many_usernames_lock_that_address_only() {
    let w = World::new().await;
    w.account("alice@dex.test", &[]).await;
    let first = no_first_admin(&w);
    let limits = LoginLimits {
        source_free: 3,
        ..LoginLimits::default()
    };
    let l = logins(&w, &first, &limits);
    let guesser = Some("203.0.113.9");
    for i in 0..4 {
        let name = format!("user{i}@dex.test");
        assert_eq!(outcome(l.login_from(&name, WRONG, guesser).await), (401, 0));
    }
    // The address is locked for every username, even a real one with its password...
    assert_eq!(
        outcome(l.login_from("alice@dex.test", PASSWORD, guesser).await),
        (429, 1)
    );
    // ... while the same username from elsewhere logs in, and a success from the locked
    // address later does not clear the address's count.
    assert_eq!(
        outcome(
            l.login_from("alice@dex.test", PASSWORD, Some("198.51.100.1"))
                .await
        ),
        (200, 0)
    );
    w.clock.advance(Duration::from_secs(1));
    assert_eq!(
        outcome(l.login_from("alice@dex.test", PASSWORD, guesser).await),
        (200, 0)
    );
    assert_eq!(
        outcome(l.login_from("user9@dex.test", WRONG, guesser).await),
        (401, 0)
    );
    assert_eq!(
        outcome(l.login_from("alice@dex.test", PASSWORD, guesser).await),
        (429, 2)
    );
}

#[tokio::test]
async fn locks_stop_at_the_cap_and_counters_are_forgotten() {
    let limits = LoginLimits::default();
    let locks: Vec<u64> = (5..=16).map(|n| limits.lock_secs(n, 5)).collect();
    assert_eq!(locks, vec![0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
    assert_eq!(limits.lock_secs(u32::MAX, 0), 300);

    let w = World::new().await;
    w.account("alice@dex.test", &[]).await;
    let first = no_first_admin(&w);
    let l = logins(&w, &first, &limits);
    // A long run of failures, each after its lock is over: the lock never exceeds the cap.
    let mut longest = 0;
    for _ in 0..40 {
        match outcome(l.login_from("alice@dex.test", WRONG, None).await) {
            (401, 0) => {}
            (429, wait) => {
                longest = longest.max(wait);
                w.clock.advance(Duration::from_secs(wait));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(longest, 300);
    // After the quiet time the counter is forgotten (the store still holds it: TTL is lazy).
    w.clock.advance(Duration::from_secs(limits.forget_secs + 1));
    let key = limits.keys("alice@dex.test", None).username;
    assert_eq!(w.store.failure_counts(&[key]).await.unwrap().len(), 1);
    for _ in 0..5 {
        assert_eq!(
            outcome(l.login_from("alice@dex.test", WRONG, None).await),
            (401, 0)
        );
    }
    assert_eq!(
        outcome(l.login_from("alice@dex.test", PASSWORD, None).await),
        (200, 0)
    );
}

#[tokio::test]
async fn the_counters_hold_no_username_or_address_in_clear() {
    let limits = LoginLimits::default();
    let keys = limits.keys("Alice@Dex.test", Some("203.0.113.9"));
    assert_eq!(keys, limits.keys("alice@dex.test ", Some(" 203.0.113.9")));
    assert!(!keys.username.to_lowercase().contains("alice"));
    assert!(!keys.source.as_deref().unwrap().contains("203.0.113"));
    assert!(limits.keys("a", Some("  ")).source.is_none());
    // The store counts what it is told: a fresh counter starts at one.
    let w = World::new().await;
    w.store
        .count_failure(&keys.username, 5_000, 10)
        .await
        .unwrap();
    w.store
        .count_failure(&keys.username, 6_000, 11)
        .await
        .unwrap();
    // Expired at 11 s: the next failure starts again.
    w.store
        .count_failure(&keys.username, 11_000, 20)
        .await
        .unwrap();
    assert_eq!(
        w.store
            .failure_counts(std::slice::from_ref(&keys.username))
            .await
            .unwrap(),
        vec![(
            keys.username.clone(),
            FailureCount {
                failures: 1,
                last_failure_ms: 11_000,
                expires_at: 20
            }
        )]
    );
}

#[test]
fn the_policy_is_configured_once_and_checked() {
    let c = config(60);
    assert_eq!(c.login_limits, LoginLimits::default());
    let custom = dex::config::Config::from_lookup(|name| match name {
        "DEX_PUBLIC_URL" => Some("https://dex.test".into()),
        "DEX_LOGIN_USERNAME_FAILURES" => Some("3".into()),
        "DEX_LOGIN_SOURCE_FAILURES" => Some("40".into()),
        "DEX_LOGIN_FIRST_LOCK_SECS" => Some("2".into()),
        "DEX_LOGIN_MAX_LOCK_SECS" => Some("60".into()),
        "DEX_LOGIN_FORGET_SECS" => Some("600".into()),
        _ => None,
    })
    .unwrap();
    assert_eq!(
        custom.login_limits,
        LoginLimits {
            username_free: 3,
            source_free: 40,
            first_lock_secs: 2,
            max_lock_secs: 60,
            forget_secs: 600
        }
    );
    for (name, value) in [
        ("DEX_LOGIN_USERNAME_FAILURES", "0"),
        ("DEX_LOGIN_MAX_LOCK_SECS", "soon"),
        ("DEX_LOGIN_FIRST_LOCK_SECS", "900"),
    ] {
        let err = dex::config::Config::from_lookup(|n| match n {
            "DEX_PUBLIC_URL" => Some("https://dex.test".into()),
            n if n == name => Some(value.into()),
            _ => None,
        })
        .unwrap_err();
        assert!(err.to_string().contains("DEX_LOGIN_"), "{err}");
    }
}
