//! Trying a request's work again while a dependency is down. A HAT deletes a stats batch
//! after any answer, a 503 included (docs/decisions.md §7), so `POST /stats/report` tries
//! again within its time budget before it answers 503; the work must be safe to repeat
//! (a report is: its duplicate markers make a second attempt count only what the first did
//! not commit).

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{DexError, DexResult};

/// How long a request keeps trying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryBudget {
    /// No attempt starts later than this after the first one.
    pub retry_for: Duration,
    /// Every attempt ends by then (cancelled, as a 503): below the functions' 29 s timeout
    /// even when an attempt meets a dependency that accepts connections and never answers
    /// (each of its calls may take 10 s).
    pub deadline: Duration,
}

/// The stats report's budget: about 15 s of DynamoDB being unreachable (a restart, a
/// failover) is absorbed; past it the HAT gets 503 and loses the batch (README, "Faults").
pub const REPORT_RETRY: RetryBudget = RetryBudget {
    retry_for: Duration::from_secs(15),
    deadline: Duration::from_secs(24),
};

const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Runs `attempt` until it answers anything but [`DexError::Unavailable`], or the budget is
/// spent (then the last 503). Backoff 250 ms doubling to 2 s.
pub async fn while_unavailable<T, F, Fut>(budget: RetryBudget, mut attempt: F) -> DexResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = DexResult<T>>,
{
    let start = Instant::now();
    let mut backoff = FIRST_BACKOFF;
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let left = budget.deadline.saturating_sub(start.elapsed());
        let result = tokio::time::timeout(left, attempt())
            .await
            .unwrap_or_else(|_| {
                Err(DexError::Unavailable(
                    "a dependency did not answer within the request's time budget; retry shortly"
                        .into(),
                ))
            });
        match result {
            Err(DexError::Unavailable(cause)) if start.elapsed() + backoff <= budget.retry_for => {
                tracing::warn!(attempts, %cause, "dependency unavailable; trying again");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Err(DexError::Unavailable(cause)) => {
                tracing::warn!(attempts, %cause, "dependency unavailable; giving up");
                return Err(DexError::Unavailable(cause));
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn down() -> DexError {
        DexError::Unavailable("DynamoDB cannot be reached right now; retry shortly".into())
    }

    #[tokio::test(start_paused = true)]
    async fn a_dependency_back_within_the_budget_is_not_seen_by_the_caller() {
        let calls = AtomicU32::new(0);
        let start = Instant::now();
        let answer = while_unavailable(REPORT_RETRY, || async {
            // Down for the first 5 s.
            calls.fetch_add(1, Ordering::SeqCst);
            if start.elapsed() < Duration::from_secs(5) {
                Err(down())
            } else {
                Ok(7)
            }
        })
        .await;
        assert!(matches!(answer, Ok(7)), "{answer:?}");
        // 0, 0.25, 0.75, 1.75, 3.75, 5.75 s.
        assert_eq!(calls.load(Ordering::SeqCst), 6);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dependency_down_for_the_whole_budget_is_a_503_after_it() {
        let calls = AtomicU32::new(0);
        let start = Instant::now();
        let answer: DexResult<()> = while_unavailable(REPORT_RETRY, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(down())
        })
        .await;
        assert!(
            matches!(&answer, Err(DexError::Unavailable(c)) if c.starts_with("DynamoDB")),
            "{answer:?}"
        );
        // 0, 0.25, 0.75, 1.75, 3.75, 5.75, 7.75, ... 13.75 s; 15.75 would pass 15 s.
        assert_eq!(calls.load(Ordering::SeqCst), 10);
        assert!(start.elapsed() >= Duration::from_millis(13_750));
        assert!(start.elapsed() <= REPORT_RETRY.retry_for);
    }

    #[tokio::test(start_paused = true)]
    async fn an_attempt_that_hangs_ends_at_the_deadline() {
        let start = Instant::now();
        let answer: DexResult<()> = while_unavailable(REPORT_RETRY, std::future::pending).await;
        assert!(
            matches!(answer, Err(DexError::Unavailable(_))),
            "{answer:?}"
        );
        assert_eq!(start.elapsed(), REPORT_RETRY.deadline);
    }

    #[tokio::test(start_paused = true)]
    async fn other_errors_are_answered_at_once() {
        let calls = AtomicU32::new(0);
        let answer: DexResult<()> = while_unavailable(REPORT_RETRY, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(DexError::Unauthorized("bad token".into()))
        })
        .await;
        assert!(
            matches!(&answer, Err(DexError::Unauthorized(c)) if c == "bad token"),
            "{answer:?}"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
