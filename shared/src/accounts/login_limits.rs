//! Password guessing (issue 11 §1): failed logins are counted per username and per source
//! address; past a number of free failures each counter locks logins for a time that doubles
//! with every further failure, up to a cap. While a counter is locked DEX refuses the login
//! with 429 and `Retry-After` before looking at the password (no server-side sleeping).
//!
//! - A username is counted whether or not an account has it, under the SHA-256 of its
//!   normalised form, so neither the answers nor the table tell whether it exists.
//! - A counter is forgotten `forget_secs` after its last failure (the table's TTL), so it is
//!   bounded in time and in size (one item per key).
//! - A lock never lasts longer than `max_lock_secs` after the failure that set it, so an
//!   attacker keeps a real user out only by guessing again at least that often, each guess
//!   counted; a successful login clears the username's counter (not the source's: a guesser
//!   with one valid account of its own must not clear its address by logging in).

use std::future::Future;

use aws_lc_rs::digest::{SHA256, digest};

use super::model::normalise_username;
use crate::error::{DexError, DexResult};

/// A failure counter as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureCount {
    pub failures: u32,
    /// When the last failure was counted (epoch ms).
    pub last_failure_ms: i64,
    /// When the counter is forgotten (epoch seconds; the table's TTL attribute).
    pub expires_at: i64,
}

/// The failure counters' storage port.
pub trait LoginLimitStore: Send + Sync {
    /// The counters of `keys` that exist (expired ones may be returned: the rule ignores
    /// them, as the table's TTL deletes lazily).
    fn failure_counts(
        &self,
        keys: &[String],
    ) -> impl Future<Output = DexResult<Vec<(String, FailureCount)>>> + Send;
    /// Counts one failure at `now_ms` in one conditional write: a counter expired at
    /// `now_ms` (or absent) starts again at 1; the counter then expires at `expires_at`.
    fn count_failure(
        &self,
        key: &str,
        now_ms: i64,
        expires_at: i64,
    ) -> impl Future<Output = DexResult<()>> + Send;
    /// Sets an existing counter's failures to 0 (its expiry unchanged); nothing when absent.
    fn clear_failures(&self, key: &str) -> impl Future<Output = DexResult<()>> + Send;
}

/// The policy's numbers (`Config`, read once at init).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    /// Failures of one username before it locks.
    pub username_free: u32,
    /// Failures from one source address (any usernames) before it locks.
    pub source_free: u32,
    /// The first lock; each further failure doubles it.
    pub first_lock_secs: u64,
    pub max_lock_secs: u64,
    /// A counter is forgotten this long after its last failure.
    pub forget_secs: u64,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self {
            username_free: 5,
            source_free: 100,
            first_lock_secs: 1,
            max_lock_secs: 300,
            forget_secs: 900,
        }
    }
}

/// The counters one login attempt touches, with their free failures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitKeys {
    pub username: String,
    pub source: Option<String>,
}

fn hashed(kind: &str, value: &str) -> String {
    format!("{kind}#{}", hex::encode(digest(&SHA256, value.as_bytes())))
}

impl LoginLimits {
    pub fn keys(&self, username: &str, source: Option<&str>) -> LimitKeys {
        LimitKeys {
            username: hashed("user", &normalise_username(username)),
            source: source
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| hashed("source", s)),
        }
    }

    /// How long a counter with `failures` (past `free`) locks after its last failure.
    pub fn lock_secs(&self, failures: u32, free: u32) -> u64 {
        if failures <= free {
            return 0;
        }
        let doublings = (failures - free - 1).min(63);
        self.first_lock_secs
            .saturating_mul(1u64.checked_shl(doublings).unwrap_or(u64::MAX))
            .min(self.max_lock_secs)
    }

    /// Milliseconds the counter still locks logins at `now_ms` (0: not locked).
    pub fn locked_for_ms(&self, count: &FailureCount, free: u32, now_ms: i64) -> i64 {
        if count.expires_at.saturating_mul(1000) <= now_ms {
            return 0;
        }
        let lock_ms = i64::try_from(self.lock_secs(count.failures, free).saturating_mul(1000))
            .unwrap_or(i64::MAX);
        (count.last_failure_ms.saturating_add(lock_ms) - now_ms).max(0)
    }

    /// The refusal when any counter of `keys` is locked at `now_ms`: 429 with the longest
    /// wait, in whole seconds rounded up.
    pub fn check(
        &self,
        keys: &LimitKeys,
        counts: &[(String, FailureCount)],
        now_ms: i64,
    ) -> DexResult<()> {
        let wait_ms = counts
            .iter()
            .map(|(key, count)| {
                let free = if *key == keys.username {
                    self.username_free
                } else if keys.source.as_ref() == Some(key) {
                    self.source_free
                } else {
                    return 0;
                };
                self.locked_for_ms(count, free, now_ms)
            })
            .max()
            .unwrap_or(0);
        if wait_ms == 0 {
            return Ok(());
        }
        Err(DexError::TooManyAttempts {
            cause: "too many failed logins; retry later".into(),
            retry_after_secs: u64::try_from((wait_ms + 999) / 1000).unwrap_or(1).max(1),
        })
    }

    /// When a counter whose last failure is at `now_ms` is forgotten (epoch seconds): after
    /// `forget_secs`, and never before its lock is over.
    pub fn expires_at(&self, now_ms: i64) -> i64 {
        let keep = self.forget_secs.max(self.max_lock_secs);
        now_ms.div_euclid(1000) + i64::try_from(keep).unwrap_or(i64::MAX / 2) + 1
    }
}

/// Checks, then runs `attempt`, then counts its outcome: a wrong password (401) counts one
/// failure on every counter, a success clears the username's.
pub async fn limited<S, T>(
    store: &S,
    limits: &LoginLimits,
    keys: &LimitKeys,
    now_ms: i64,
    attempt: impl Future<Output = DexResult<T>>,
) -> DexResult<T>
where
    S: LoginLimitStore,
{
    let mut all = vec![keys.username.clone()];
    all.extend(keys.source.clone());
    let counts = store.failure_counts(&all).await?;
    limits.check(keys, &counts, now_ms)?;
    let result = attempt.await;
    match &result {
        Err(DexError::Unauthorized(_)) => {
            let expires_at = limits.expires_at(now_ms);
            for key in &all {
                store.count_failure(key, now_ms, expires_at).await?;
            }
        }
        Ok(_)
            if counts
                .iter()
                .any(|(key, count)| *key == keys.username && count.failures > 0) =>
        {
            store.clear_failures(&keys.username).await?;
        }
        _ => {}
    }
    result
}
