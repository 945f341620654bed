//! ferry-dns integration tests: the provider conformance suite run against every provider, and
//! the RFC 2136 provider against a real knot server checked with dig.

#[cfg(feature = "azure")]
mod azure;
#[cfg(feature = "rfc2136")]
mod cli;
#[cfg(feature = "cloudflare")]
mod cloudflare;
mod conformance;
#[cfg(feature = "rfc2136")]
mod knot;
mod memory;
#[cfg(feature = "route53")]
mod route53;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher as _, Hasher as _};

/// A label no other test (or earlier run) has used: the test servers are shared and never reset.
pub(crate) fn unique(prefix: &str) -> String {
    let mut h = RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    format!("{prefix}-{:010x}", h.finish() & 0xff_ffff_ffff)
}

/// The wall clock, for providers that sign with it.
#[cfg(feature = "rfc2136")]
pub(crate) fn wall_clock() -> ferry_dns::Clock {
    ferry_dns::Clock::new(|| {
        #[expect(
            clippy::disallowed_methods,
            reason = "tests hand the providers the real clock"
        )]
        std::time::SystemTime::now()
    })
}
