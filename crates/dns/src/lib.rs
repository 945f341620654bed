//! ferry-dns: point an app's names at its load balancer, and check that they resolve.
//!
//! (crate docs: see the end of the work)

#[cfg(feature = "azure")]
pub mod azure;
pub mod change;
pub mod clock;
#[cfg(feature = "cloudflare")]
pub mod cloudflare;
pub mod config;
pub mod error;
pub mod memory;
pub mod name;
pub mod ownership;
pub mod plan;
pub mod provider;
pub mod record;
pub mod retry;
#[cfg(feature = "rfc2136")]
pub mod rfc2136;
#[cfg(feature = "route53")]
pub mod route53;
pub mod target;
pub mod verify;

pub use change::{Change, ChangeSet};
pub use clock::Clock;
pub use error::DnsError;
pub use memory::InMemoryProvider;
pub use name::DnsName;
pub use ownership::{OwnerId, TxtNaming};
pub use plan::{Conflict, Ownership, Plan, PlanRequest, Policy, Skipped, plan};
pub use provider::{Capabilities, DnsProvider, NameServer, SharedDnsProvider};
pub use record::{AliasTarget, RecordKey, RecordSet, RecordType};
pub use retry::RetryPolicy;
pub use target::{LoadBalancerIngress, Target};
