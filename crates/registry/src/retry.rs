//! Retries with exponential backoff and jitter, honouring `Retry-After`.
//!
//! What is retried: connection failures (refused, reset, dropped mid-body, timeouts) and the
//! statuses a registry uses for "try again": 408, 429, 500, 502, 503, 504. DNS failures are
//! not retried: an unknown registry name does not start resolving a second later.

use std::time::{Duration, SystemTime};

use http::HeaderMap;
use http::StatusCode;

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (so `max_retries + 1` attempts in all).
    pub max_retries: u32,
    /// The first backoff; it doubles on each retry.
    pub base_delay: Duration,
    /// The longest backoff between two attempts.
    pub max_delay: Duration,
    /// The longest `Retry-After` ferry waits; a registry asking for more gets an error.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 5,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        RetryPolicy {
            max_retries: 0,
            ..RetryPolicy::default()
        }
    }

    /// The backoff before retry number `attempt` (0-based): `base * 2^attempt`, capped, with
    /// "equal jitter" (between half and all of it) so parallel uploads do not retry in step.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let full = self
            .base_delay
            .saturating_mul(1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX))
            .min(self.max_delay);
        let half = full / 2;
        half + half.mul_f64(jitter())
    }

    /// How long to wait before the next attempt after a retryable `status`: the server's
    /// `Retry-After` when it sent one (capped at `max_retry_after`; `None` means "longer than
    /// we wait"), else the backoff.
    pub fn delay_after(
        &self,
        attempt: u32,
        headers: &HeaderMap,
        now: SystemTime,
    ) -> Option<Duration> {
        match retry_after(headers, now) {
            Some(d) if d > self.max_retry_after => None,
            Some(d) => Some(d),
            None => Some(self.backoff(attempt)),
        }
    }
}

/// A uniformly distributed number in [0, 1). `RandomState` is seeded randomly per process and
/// per instance, which is all the randomness jitter needs.
fn jitter() -> f64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Whether a registry answer means "try again later".
pub fn retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

/// Whether a transport error is worth another attempt.
pub fn retryable_error(err: &reqwest::Error) -> bool {
    if is_dns_failure(err) {
        return false;
    }
    err.is_connect() || err.is_timeout() || err.is_request() || err.is_body() || err.is_decode()
}

/// Whether the error is a failed name lookup (reqwest has no accessor for it; hyper-util's
/// resolver error says "dns error" and getaddrinfo's says "failed to lookup address").
pub fn is_dns_failure(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        let text = e.to_string();
        if text.contains("dns error") || text.contains("failed to lookup address") {
            return true;
        }
        current = e.source();
    }
    false
}

/// A `Retry-After` header: delta-seconds, or an HTTP date compared with `now`.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = jiff::fmt::rfc2822::parse(value).ok()?;
    let secs = u64::try_from(at.timestamp().as_second()).ok()?;
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::RETRY_AFTER, value.parse().unwrap());
        h
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            retry_after(&headers("3"), now),
            Some(Duration::from_secs(3))
        );
        // 2023-11-14T22:13:20Z is 1_700_000_000; ten seconds later:
        assert_eq!(
            retry_after(&headers("Tue, 14 Nov 2023 22:13:30 GMT"), now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            retry_after(&headers("Tue, 14 Nov 2023 22:13:00 GMT"), now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers("soon"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let p = RetryPolicy::default();
        for attempt in 0..30 {
            let full = (p.base_delay * 2u32.saturating_pow(attempt.min(20))).min(p.max_delay);
            let d = p.backoff(attempt);
            assert!(
                d >= full / 2 && d <= full,
                "attempt {attempt}: {d:?} vs {full:?}"
            );
        }
    }

    #[test]
    fn server_asked_delay_wins_unless_too_long() {
        let p = RetryPolicy::default();
        let now = SystemTime::UNIX_EPOCH;
        assert_eq!(
            p.delay_after(0, &headers("7"), now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(p.delay_after(0, &headers("100000"), now), None);
        assert!(p.delay_after(0, &HeaderMap::new(), now).unwrap() <= p.base_delay);
    }

    #[test]
    fn retryable_statuses() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(retryable_status(StatusCode::from_u16(s).unwrap()));
        }
        for s in [400, 401, 403, 404, 405, 413, 501] {
            assert!(!retryable_status(StatusCode::from_u16(s).unwrap()));
        }
    }
}
