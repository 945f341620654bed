//! Bounded retries with exponential backoff, honouring `Retry-After`.
//!
//! Every provider call that can fail transiently (5xx, time-outs, 429) goes through
//! [`RetryPolicy::run`]. The number of attempts is bounded and so is every wait: a server asking
//! for a longer pause than [`RetryPolicy::max_retry_after`] gets a clear error instead of a
//! silent hang (external-dns's rate-limit crash loops, external-dns#2135, are the failure this
//! avoids).

use std::future::Future;
use std::time::Duration;

use crate::error::{DnsError, retry_after_note};

/// How often and how long to retry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, including the first (at least 1).
    pub max_attempts: u32,
    /// The wait after the first failure; it doubles after each further one.
    pub initial_backoff: Duration,
    /// The longest wait between attempts when the server gives no Retry-After.
    pub max_backoff: Duration,
    /// The longest Retry-After ferry honours; a server asking for more ends the retries.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

/// How one attempt failed, for [`RetryPolicy::run`].
#[derive(Debug)]
pub enum AttemptError {
    /// Worth another try (5xx, transport error).
    Transient(DnsError),
    /// The server said "too many requests", maybe with how long to wait.
    RateLimited(Option<Duration>),
    /// Not worth another try.
    Fatal(DnsError),
}

impl From<DnsError> for AttemptError {
    fn from(e: DnsError) -> Self {
        if e.is_retryable() {
            AttemptError::Transient(e)
        } else {
            AttemptError::Fatal(e)
        }
    }
}

impl RetryPolicy {
    /// A policy that never waits long: for tests.
    pub fn fast() -> Self {
        RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
            max_retry_after: Duration::from_secs(2),
        }
    }

    /// The wait after failed attempt number `attempt` (1-based), with up to 25% jitter so that
    /// many clients do not retry in step.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.initial_backoff.saturating_mul(
            1u32.checked_shl(attempt.saturating_sub(1))
                .unwrap_or(u32::MAX),
        );
        let base = exp.min(self.max_backoff);
        // Jitter from a splitmix64 sequence seeded by the process id: no RNG dependency.
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let mut z = SEQ
            .fetch_add(0x9E37_79B9_7F4A_7C15, std::sync::atomic::Ordering::Relaxed)
            .wrapping_add(u64::from(std::process::id()));
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let jitter = base.mul_f64((z % 250) as f64 / 1000.0);
        base + jitter
    }

    /// Runs `attempt` until it succeeds, fails fatally, or the attempts run out. Provider
    /// implementations (in this crate or outside it) wrap each API call in it.
    pub async fn run<T, F, Fut>(
        &self,
        provider: &'static str,
        operation: &str,
        mut attempt: F,
    ) -> Result<T, DnsError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, AttemptError>>,
    {
        let max = self.max_attempts.max(1);
        let mut n = 0;
        loop {
            n += 1;
            let wait = match attempt().await {
                Ok(v) => return Ok(v),
                Err(AttemptError::Fatal(e)) => return Err(e),
                Err(AttemptError::Transient(e)) => {
                    if n >= max {
                        return Err(e);
                    }
                    let wait = self.backoff(n);
                    tracing::warn!(provider, operation, attempt = n, ?wait, error = %e, "retrying");
                    wait
                }
                Err(AttemptError::RateLimited(after)) => {
                    let too_long = after.is_some_and(|a| a > self.max_retry_after);
                    if n >= max || too_long {
                        return Err(DnsError::RateLimited {
                            provider,
                            attempts: n,
                            after: retry_after_note(after),
                        });
                    }
                    let wait = after.unwrap_or_else(|| self.backoff(n));
                    tracing::warn!(
                        provider,
                        operation,
                        attempt = n,
                        ?wait,
                        "rate limited; waiting"
                    );
                    wait
                }
            };
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(350),
            max_retry_after: Duration::from_secs(1),
        };
        let b1 = p.backoff(1);
        let b2 = p.backoff(2);
        let b5 = p.backoff(5);
        assert!(
            b1 >= Duration::from_millis(100) && b1 < Duration::from_millis(126),
            "{b1:?}"
        );
        assert!(
            b2 >= Duration::from_millis(200) && b2 < Duration::from_millis(251),
            "{b2:?}"
        );
        assert!(
            b5 >= Duration::from_millis(350) && b5 < Duration::from_millis(438),
            "{b5:?}"
        );
        assert!(p.backoff(100) < Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limits_end_in_a_clear_error_after_the_budget() {
        let calls = AtomicU32::new(0);
        let err = RetryPolicy::fast()
            .run::<(), _, _>("test", "list", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(AttemptError::RateLimited(Some(Duration::from_secs(1))))
            })
            .await
            .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert!(matches!(err, DnsError::RateLimited { attempts: 3, .. }));
        assert!(err.to_string().contains("asked to wait 1s"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_after_beyond_the_limit_is_not_waited_for() {
        let calls = AtomicU32::new(0);
        let err = RetryPolicy::fast()
            .run::<(), _, _>("test", "list", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(AttemptError::RateLimited(Some(Duration::from_secs(3600))))
            })
            .await
            .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(matches!(err, DnsError::RateLimited { attempts: 1, .. }));
    }

    #[tokio::test(start_paused = true)]
    async fn transient_errors_are_retried_then_succeed_and_fatal_ones_are_not() {
        let calls = AtomicU32::new(0);
        let v = RetryPolicy::fast()
            .run("test", "list", || async {
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    Err(AttemptError::Transient(DnsError::invalid("blip")))
                } else {
                    Ok(7)
                }
            })
            .await
            .unwrap();
        assert_eq!(v, 7);
        let calls = AtomicU32::new(0);
        let err = RetryPolicy::fast()
            .run::<(), _, _>("test", "list", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(AttemptError::Fatal(DnsError::invalid("no")))
            })
            .await
            .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(err.to_string(), "no");
    }
}
