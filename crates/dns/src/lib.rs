//! ferry-dns: point an app's names at its load balancer, and check that they resolve.
//!
//! After a deploy, `example.com`, `app.example.com` and `api.example.com` must answer with the
//! cluster's load balancer; when an environment moves (seed 001's AKS to EKS migration and its
//! rollback), the same names must move with it. external-dns does this from inside a cluster;
//! ferry does it from CI, in a way both tools can share a zone, and it checks the result.
//!
//! # How the pieces fit
//!
//! ```text
//!  Target (LB IPs or hostname) ──► desired RecordSets ──► DnsProvider::canonicalize
//!                                                               │
//!  DnsProvider::records ──► current RecordSets ──► plan() ◄─────┘   (pure; ownership, policy)
//!                                                    │
//!                              Plan { changes, conflicts, skipped }
//!                                                    │
//!                           DnsProvider::apply(ChangeSet) ──► verify::verify (authoritative
//!                                                             servers until they answer;
//!                                                             public resolvers reported)
//! ```
//!
//! - [`DnsName`], [`RecordSet`], [`RecordType`], [`Change`], [`ChangeSet`]: the domain types.
//!   Values are canonical (parsed addresses, lower-case names, unquoted TXT text), so records
//!   read from four different APIs compare equal when they mean the same thing.
//! - [`plan()`] is a pure function: current records, desired records, who ferry is
//!   ([`Ownership`]), a [`Policy`] (`sync`, `upsert-only` (default), `create-only`) and
//!   `adopt`. It never touches a record another owner or nobody claims: such records are
//!   [`Conflict`]s, reported with what to do. It orders changes so that a provider without
//!   transactions leaves names resolving when it fails part-way (see [`ChangeSet`]).
//! - [`ownership`] reads and writes external-dns's TXT registry format
//!   (`heritage=external-dns,external-dns/owner=ID,...`), including its `a-`/`cname-` record
//!   type prefixes that keep a CNAME and its ownership record apart, and its `txt-prefix` /
//!   `txt-suffix` options, so ferry and external-dns can manage one zone side by side.
//! - [`DnsProvider`] is the trait each DNS service implements (`Send + Sync + Debug`, chosen at
//!   run time as a [`SharedDnsProvider`]). Implementations, each behind a feature named after
//!   it: `cloudflare` (API v4; own client, see the module for why not the `cloudflare`
//!   crate), `route53` (aws-sdk-route53; alias records for AWS load balancers), `azure` (ARM
//!   REST), `rfc2136` (hickory-proto with TSIG); and the always-present [`InMemoryProvider`].
//!   One conformance suite (`tests/it/conformance.rs`) runs against every one of them.
//! - [`verify`] asks the zone's authoritative servers until they answer the target, within a
//!   bound, then reports what public resolvers answer (and says "unreachable" when they cannot
//!   be reached, rather than pretending).
//! - [`config`] is the `[env.NAME.dns]` section of ferry.toml, checked with key paths for
//!   located errors.
//!
//! Nothing here reads the process environment or the wall clock: secrets (API tokens, TSIG
//! secrets) are handed in as [`secrecy::SecretString`]s and never appear in `Debug`, `Display`
//! or errors; the RFC 2136 provider takes a [`Clock`] for TSIG signatures.
//!
//! # Example
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use ferry_dns::{DnsName, DnsProvider as _, InMemoryProvider, OwnerId, Ownership, PlanRequest, Policy, Target, plan};
//!
//! let zone = DnsName::parse("example.com")?;
//! let provider = InMemoryProvider::new(zone.clone());
//! let target: Target = "192.0.2.10".parse()?;
//! let desired = target.record_sets(&DnsName::parse("app.example.com")?, 300, None)?;
//! let ownership = Ownership::new(OwnerId::new("shop")?, "ferry/shop/prod")?;
//!
//! let current = provider.records().await?;
//! let request = PlanRequest {
//!     zone: &zone,
//!     current: &current,
//!     desired: &desired,
//!     ownership: &ownership,
//!     policy: Policy::UpsertOnly,
//!     adopt: false,
//!     capabilities: provider.capabilities(),
//! };
//! let first = plan(&request)?;
//! assert_eq!(first.changes.len(), 2); // the A record and its ownership TXT
//! provider.apply(&first.changes).await?;
//!
//! let current = provider.records().await?;
//! let again = plan(&PlanRequest { current: &current, ..request })?;
//! assert!(again.changes.is_empty()); // a second run changes nothing
//! # Ok::<(), ferry_dns::DnsError>(())
//! # }).unwrap();
//! ```

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
#[cfg(any(feature = "cloudflare", feature = "azure"))]
mod rest;
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
