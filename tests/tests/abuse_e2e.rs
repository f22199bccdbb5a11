//! Password guessing over real HTTP (README "Password guessing", issue 11 §1): failed logins
//! of one username answer 429 with a growing `Retry-After`, an unknown username alike, other
//! usernames are not affected, a success clears the count. The test stack keeps the default
//! per-username policy (5 free failures, then 1 s doubling); its per-address limit is raised
//! (every test logs in from 127.0.0.1), so the address rule is shown by the rules tests.

use std::time::Duration;

use dex_tests::support::{
    Dex, admin_token, assert_error, create_account, unique_username, url_encode,
};
use reqwest::Method;
use reqwest::Response;

const WRONG: &str = "certainly not the password";

fn retry_after(resp: &Response) -> u64 {
    resp.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("a 429 without a Retry-After: {:?}", resp.headers()))
}

/// Guesses wrong passwords for `username` until three locks were met, waiting out each one:
/// the `Retry-After` of each lock, and the failures counted (401s).
async fn guess_until_locked_three_times(dex: &Dex, username: &str) -> (Vec<u64>, usize) {
    let mut waits = Vec::new();
    let mut failures = 0;
    while waits.len() < 3 {
        assert!(
            failures < 16,
            "{username}: no lock after {failures} failures"
        );
        let resp = dex.login(username, WRONG).await;
        match resp.status().as_u16() {
            401 => {
                failures += 1;
                assert_error(resp, 401, "wrong username or password").await;
            }
            429 => {
                let wait = retry_after(&resp);
                assert!(
                    failures >= 6,
                    "{username}: locked after {failures} failures"
                );
                let body = assert_error(resp, 429, "too many failed logins").await;
                assert_eq!(body["message"], "Too many requests");
                waits.push(wait);
                if waits.len() < 3 {
                    tokio::time::sleep(Duration::from_secs(wait)).await;
                }
            }
            other => panic!("{username}: unexpected {other}"),
        }
    }
    (waits, failures)
}

#[tokio::test]
async fn failed_logins_lock_a_username_for_a_growing_time_unknown_usernames_alike() {
    let dex = Dex::new();
    let admin = admin_token().await;
    let (_, alice, password) = create_account(&admin, &[]).await;
    let (_, bob, bob_password) = create_account(&admin, &[]).await;
    let nobody = unique_username("nobody");

    let (real, unknown) = tokio::join!(
        guess_until_locked_three_times(&dex, &alice),
        guess_until_locked_three_times(&dex, &nobody)
    );
    for (name, (waits, _)) in [("real", &real), ("unknown", &unknown)] {
        // 1 s, then 2 s, then 4 s (minus the time the answers took, rounded up).
        assert!(
            waits.windows(2).all(|w| w[0] <= w[1]) && waits[2] > waits[0],
            "{name} username: Retry-After does not grow: {waits:?}"
        );
        assert!(waits[2] <= 300, "{name} username: {waits:?}");
    }
    // Alike: six free failures before the first lock (asserted above), one more before each
    // further lock; a loaded machine may let a lock lapse before the next guess arrives,
    // which counts one more failure, so only the range is exact.
    for (name, (_, failures)) in [("real", &real), ("unknown", &unknown)] {
        assert!((8..=12).contains(failures), "{name}: {failures} failures");
    }

    // Locked: even the right password is refused, on the v3 path too (one counter).
    let resp = dex.login(&alice, &password).await;
    assert_eq!(resp.status(), 429);
    let v3 = dex
        .request(Method::GET, "/api/v3/users/access_token", None)
        .header("username", url_encode(&alice))
        .header("password", url_encode(&password))
        .send()
        .await
        .unwrap();
    assert_eq!(v3.status(), 429);
    let wait = retry_after(&v3);
    // Up to the cap: on a loaded machine a lock may lapse between guesses, counting more.
    assert!((1..=300).contains(&wait), "{wait}");

    // Another username, from the same address, is not affected.
    dex.token(&bob, &bob_password).await;

    // Once the lock is over the right password logs in and clears the count: five free
    // failures again.
    tokio::time::sleep(Duration::from_secs(wait)).await;
    dex.token(&alice, &password).await;
    for _ in 0..5 {
        assert_error(dex.login(&alice, WRONG).await, 401, "").await;
    }
    dex.token(&alice, &password).await;
}
