//! The clock, injected. The library never reads the wall clock itself (clippy
//! `disallowed-methods`): token expiry and refresh decisions use a [`Clock`] handed in by the
//! caller, so tests can move time forward and the binary reads the real clock in one shim.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// A source of the current time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now.
    fn now(&self) -> SystemTime;
}

/// A clock shared between the pieces that need it.
pub type SharedClock = Arc<dyn Clock>;

/// A clock backed by a plain function, e.g. the binary's `ambient::now`.
#[derive(Clone, Copy)]
pub struct FnClock(fn() -> SystemTime);

impl FnClock {
    /// A clock that calls `now` each time.
    pub fn new(now: fn() -> SystemTime) -> Self {
        FnClock(now)
    }
}

impl fmt::Debug for FnClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnClock")
    }
}

impl Clock for FnClock {
    fn now(&self) -> SystemTime {
        (self.0)()
    }
}

/// A clock that moves only when told to: for tests, and for minting tokens at a fixed time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<SystemTime>>);

impl ManualClock {
    /// A clock stopped at `at`.
    pub fn new(at: SystemTime) -> Self {
        ManualClock(Arc::new(Mutex::new(at)))
    }

    /// Sets the time.
    pub fn set(&self, at: SystemTime) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = at;
    }

    /// Moves the time forward.
    pub fn advance(&self, by: Duration) {
        let mut now = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Formats a time as RFC 3339 UTC with second precision (`2026-11-23T15:04:05Z`), the form
/// Kubernetes and the clouds use.
pub fn rfc3339(at: SystemTime) -> String {
    match jiff::Timestamp::try_from(at) {
        // Truncated, never rounded up: an expiry must not be shown later than it is.
        Ok(ts) => jiff::Timestamp::from_second(ts.as_second())
            .unwrap_or(ts)
            .to_string(),
        Err(_) => format!("{at:?}"),
    }
}

/// A time from Unix seconds (JWT `exp`, `iat`, `nbf`).
pub fn from_unix(secs: i64) -> SystemTime {
    if secs >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

/// A short human duration ("4m 12s") between two times, for messages; "0s" when `later` is not
/// after `earlier`.
pub fn human_between(earlier: SystemTime, later: SystemTime) -> String {
    let secs = later
        .duration_since(earlier)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    humantime::format_duration(Duration::from_secs(secs)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let start = from_unix(1_800_000_000);
        let clock = ManualClock::new(start);
        assert_eq!(clock.now(), start);
        clock.advance(Duration::from_secs(90));
        assert_eq!(clock.now(), start + Duration::from_secs(90));
    }

    #[test]
    fn rfc3339_is_utc_seconds() {
        let at = from_unix(1_795_446_174) + Duration::from_millis(900);
        assert_eq!(rfc3339(at), "2026-11-23T15:02:54Z");
    }

    #[test]
    fn human_between_is_never_negative() {
        let a = from_unix(100);
        let b = from_unix(352);
        assert_eq!(human_between(a, b), "4m 12s");
        assert_eq!(human_between(b, a), "0s");
    }
}
