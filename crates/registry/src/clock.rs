//! The wall clock, injected. The registry client needs it only to read absolute times: a
//! `Retry-After` HTTP date and ECR's login expiry. Relative timing (backoff, token lifetimes)
//! uses tokio's monotonic clock.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

/// A source of the current time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now.
    fn now(&self) -> SystemTime;
}

/// A shared clock.
pub type SharedClock = Arc<dyn Clock>;

/// A clock backed by a function (the binary passes its ambient `now`).
#[derive(Clone, Copy)]
pub struct FnClock(pub fn() -> SystemTime);

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

/// A clock that always says the same time (tests, and callers with no wall clock: absolute
/// times are then only compared with each other).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub SystemTime);

impl Clock for FixedClock {
    fn now(&self) -> SystemTime {
        self.0
    }
}
