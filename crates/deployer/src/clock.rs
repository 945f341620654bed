//! The wall clock, injected (libraries never read it themselves): lease renew times, release
//! timestamps and "events since the deploy began" all come from a [`Clock`].

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

/// A source of the current time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now.
    fn now(&self) -> SystemTime;
}

/// A clock shared between the parts of a deploy.
pub type SharedClock = Arc<dyn Clock>;

/// A clock that returns what a closure says (the binary passes its ambient clock; tests a
/// fixed or stepped one).
pub struct FnClock<F>(pub F);

impl<F> fmt::Debug for FnClock<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnClock")
    }
}

impl<F: Fn() -> SystemTime + Send + Sync> Clock for FnClock<F> {
    fn now(&self) -> SystemTime {
        (self.0)()
    }
}

/// The clock as a jiff timestamp (for Kubernetes `Time`/`MicroTime` fields).
pub(crate) fn timestamp(clock: &dyn Clock) -> k8s_openapi::jiff::Timestamp {
    k8s_openapi::jiff::Timestamp::try_from(clock.now())
        .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)
}
