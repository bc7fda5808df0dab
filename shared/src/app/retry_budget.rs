//! Webhooks keep trying within their budget (docs/guarantees.md, "Recorded means delivered"). Twilio
//! waits 15 s for an answer to an inbound message and doesn't send it again on its own, so a
//! few seconds of DynamoDB or SQS trouble must not lose the text: a transient failure is
//! tried again with exponential backoff and jitter until the budget is spent.

use std::future::Future;
use std::time::{Duration, Instant};

/// What a webhook may spend retrying the store and the queue: inside Twilio's 15 s wait and
/// the functions' 10 s timeout (`template.yaml`), with room to answer.
pub const WEBHOOK_RETRY_BUDGET: Duration = Duration::from_secs(6);

const FIRST_PAUSE: Duration = Duration::from_millis(100);
const MAX_PAUSE: Duration = Duration::from_secs(2);

/// Time left to retry in, from when the request arrived.
#[derive(Debug, Clone, Copy)]
pub struct RetryBudget {
    until: Instant,
}

impl RetryBudget {
    pub fn new(budget: Duration) -> Self {
        Self { until: Instant::now() + budget }
    }

    /// No retrying at all.
    pub fn none() -> Self {
        Self::new(Duration::ZERO)
    }

    /// Calls `call` until it succeeds, fails for good (`is_transient` says no), or the budget
    /// is spent: a pause that would run past it is cut short for one last try at its end.
    /// Returns the last outcome.
    pub async fn retry<T, E, F, Fut>(&self, mut call: F, is_transient: impl Fn(&E) -> bool) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut ceiling = FIRST_PAUSE;
        loop {
            match call().await {
                Ok(value) => return Ok(value),
                Err(e) if is_transient(&e) => {
                    let left = self.until.saturating_duration_since(Instant::now());
                    if left < FIRST_PAUSE / 2 {
                        return Err(e);
                    }
                    // Full jitter, at least a tenth of the ceiling.
                    let pause = ceiling.mul_f64(0.1 + 0.9 * fastrand::f64()).min(left);
                    tracing::warn!(pause_ms = pause.as_millis() as u64, "transient AWS error; trying again");
                    tokio::time::sleep(pause).await;
                    ceiling = (ceiling * 2).min(MAX_PAUSE);
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[tokio::test]
    async fn retries_transient_failures_until_one_succeeds() {
        let calls = Cell::new(0);
        let result: Result<u32, &str> = RetryBudget::new(Duration::from_secs(5))
            .retry(
                || {
                    calls.set(calls.get() + 1);
                    let n = calls.get();
                    async move { if n < 4 { Err("throttled") } else { Ok(n) } }
                },
                |_| true,
            )
            .await;
        assert_eq!(result, Ok(4));
    }

    #[tokio::test]
    async fn stops_at_a_permanent_failure_and_when_the_budget_is_spent() {
        let calls = Cell::new(0);
        let permanent: Result<(), &str> = RetryBudget::new(Duration::from_secs(5))
            .retry(
                || {
                    calls.set(calls.get() + 1);
                    async { Err("validation") }
                },
                |_| false,
            )
            .await;
        assert_eq!((permanent, calls.get()), (Err("validation"), 1));
        let started = Instant::now();
        let spent: Result<(), &str> =
            RetryBudget::new(Duration::from_millis(700)).retry(|| async { Err("down") }, |_| true).await;
        assert_eq!(spent, Err("down"));
        assert!(started.elapsed() < Duration::from_millis(750), "never sleeps past the budget");
        assert!(started.elapsed() >= Duration::from_millis(650), "but keeps trying until it is spent");
    }
}
