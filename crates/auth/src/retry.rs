//! Bounded retries with full-jitter exponential backoff.
//!
//! One [`RetryPolicy`] describes every retry ferry-auth makes: the HTTP calls it sends itself
//! (GitHub's OIDC endpoint, Azure AD) go through [`send`], and the AWS SDK clients get the same
//! numbers as their `RetryConfig` (the SDK's standard retry mode already classifies throttling
//! and 5xx answers and jitters its backoff, so it is used rather than wrapped).

use std::time::Duration;

use reqwest::StatusCode;

use crate::error::AuthError;

/// How often and how patiently to retry throttled, failed (5xx) and unreachable requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    /// The backoff cap before the second attempt; it doubles for each further attempt.
    pub initial_backoff: Duration,
    /// The largest backoff between two attempts.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// 5 attempts, 250 ms doubling to at most 8 s: at most about 15 s of waiting, which outlasts
    /// a throttling burst without stalling a CI job for long.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// No retries: one attempt.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The attempt count, never below 1.
    pub fn attempts(&self) -> u32 {
        self.max_attempts.max(1)
    }

    /// The wait before attempt `attempt + 1` (`attempt` counts from 1): a uniformly random
    /// duration up to `min(max_backoff, initial_backoff * 2^(attempt-1))` ("full jitter", so
    /// many CI jobs throttled together do not retry in lockstep).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let cap = self.backoff_cap(attempt);
        let cap_ms = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(fastrand::u64(0..=cap_ms))
    }

    /// The upper bound of [`RetryPolicy::backoff`] for `attempt`.
    pub fn backoff_cap(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(20);
        self.initial_backoff
            .saturating_mul(1u32 << exp)
            .min(self.max_backoff)
    }
}

/// What [`send`] needs to know to word its errors.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The service, e.g. "Azure AD".
    pub service: &'static str,
    /// The endpoint without credentials, for messages.
    pub endpoint: &'a str,
    /// How to fix an unreachable endpoint.
    pub unreachable_help: &'a str,
}

/// Sends a request built by `build`, retrying connection failures, timeouts, 429 and 5xx
/// answers under `policy`. Returns the first answer that is neither, for the caller to
/// interpret; a 429 or 5xx that outlasts the retries becomes [`AuthError::Throttled`] or
/// [`AuthError::Service`], a transport failure [`AuthError::Unreachable`].
pub async fn send(
    policy: &RetryPolicy,
    target: Target<'_>,
    build: impl Fn() -> reqwest::RequestBuilder,
) -> Result<reqwest::Response, AuthError> {
    let attempts = policy.attempts();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let last = attempt >= attempts;
        match build().send().await {
            Ok(resp) => {
                let status = resp.status();
                let retryable = status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
                if !retryable {
                    return Ok(resp);
                }
                if last {
                    return Err(if status == StatusCode::TOO_MANY_REQUESTS {
                        AuthError::Throttled {
                            service: target.service,
                            attempts,
                            help: format!(
                                "{} is rate-limiting this identity; wait a minute and retry, or \
                                 run fewer jobs at once",
                                target.service
                            ),
                        }
                    } else {
                        AuthError::Service {
                            service: target.service,
                            message: format!(
                                "HTTP {status} from {} after {attempts} attempts",
                                target.endpoint
                            ),
                            source: None,
                        }
                    });
                }
                let wait = retry_after(&resp)
                    .map(|d| d.min(policy.max_backoff))
                    .unwrap_or_else(|| policy.backoff(attempt));
                tracing::debug!(
                    service = target.service,
                    %status,
                    attempt,
                    wait_ms = wait.as_millis() as u64,
                    "retrying"
                );
                tokio::time::sleep(wait).await;
            }
            Err(err) => {
                let transport = err.is_connect() || err.is_timeout() || err.is_request();
                if !transport {
                    return Err(AuthError::Service {
                        service: target.service,
                        message: format!("the request to {} failed", target.endpoint),
                        source: Some(Box::new(err.without_url())),
                    });
                }
                if last {
                    return Err(AuthError::Unreachable {
                        service: target.service,
                        endpoint: target.endpoint.to_owned(),
                        attempts: attempt,
                        help: target.unreachable_help.to_owned(),
                        // reqwest errors carry the URL; ours never hold credentials in URLs.
                        source: Box::new(err.without_url()),
                    });
                }
                let wait = policy.backoff(attempt);
                tracing::debug!(
                    service = target.service,
                    error = %err.without_url(),
                    attempt,
                    wait_ms = wait.as_millis() as u64,
                    "retrying"
                );
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// `Retry-After` in seconds, when the server sent one.
fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    resp.headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_jitters_below_it() {
        let policy = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
        };
        assert_eq!(policy.backoff_cap(1), Duration::from_millis(100));
        assert_eq!(policy.backoff_cap(2), Duration::from_millis(200));
        assert_eq!(policy.backoff_cap(4), Duration::from_millis(800));
        assert_eq!(policy.backoff_cap(5), Duration::from_millis(1000));
        assert_eq!(policy.backoff_cap(60), Duration::from_millis(1000));
        let waits: Vec<Duration> = (0..200).map(|_| policy.backoff(3)).collect();
        assert!(waits.iter().all(|w| *w <= Duration::from_millis(400)));
        // Jittered: not all the same.
        assert!(waits.iter().any(|w| *w != waits[0]));
    }

    #[test]
    fn attempts_are_at_least_one() {
        let policy = RetryPolicy {
            max_attempts: 0,
            ..RetryPolicy::default()
        };
        assert_eq!(policy.attempts(), 1);
        assert_eq!(RetryPolicy::none().attempts(), 1);
    }
}
