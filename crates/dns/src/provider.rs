//! The [`DnsProvider`] trait: what ferry needs from a DNS service.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;

use crate::change::ChangeSet;
use crate::error::DnsError;
use crate::name::DnsName;
use crate::record::RecordSet;

/// What a provider can do, which the planner and the CLI take into account.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// [`DnsProvider::apply`] applies a whole change set or none of it.
    pub atomic: bool,
    /// A CNAME may live at the zone apex (Cloudflare flattens it).
    pub cname_at_apex: bool,
    /// Alias records to AWS load balancers (Route53).
    pub alias: bool,
    /// Cloudflare's proxy flag.
    pub proxied: bool,
}

/// An authoritative server of a zone, for verification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum NameServer {
    /// An address to query directly (RFC 2136's configured server).
    Address(SocketAddr),
    /// A name from the zone's NS records, to be resolved first.
    Host(DnsName),
}

impl fmt::Display for NameServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameServer::Address(a) => write!(f, "{a}"),
            NameServer::Host(h) => write!(f, "{h}"),
        }
    }
}

/// A DNS service holding one zone: list its record sets, apply a change set, name its
/// authoritative servers.
///
/// Implementations keep the contract the conformance suite (`tests/it/conformance.rs`) checks:
/// - [`records`](DnsProvider::records) returns every record set of the zone, values canonical
///   (see [`RecordSet`]), TXT values unquoted;
/// - [`apply`](DnsProvider::apply) applies the changes in order; `Update` and `Delete` carry
///   the record set as it was read, and a provider that can check it refuses with
///   [`DnsError::ZoneChanged`] when the zone no longer holds it; a provider whose
///   [`Capabilities::atomic`] is set applies all changes or none;
/// - errors say what to fix and never contain secrets; retries are bounded.
#[async_trait]
pub trait DnsProvider: Send + Sync + fmt::Debug {
    /// The provider's name, as in ferry.toml (`cloudflare`, `route53`, ...).
    fn name(&self) -> &'static str;

    /// The zone this provider manages.
    fn zone(&self) -> &DnsName;

    /// What it can do.
    fn capabilities(&self) -> Capabilities;

    /// Puts a desired record set into the form the provider will store and list, so comparing
    /// it with what [`records`](DnsProvider::records) returns does not see differences that are
    /// not there (external-dns's `AdjustEndpoints`): TTL limits, Cloudflare's automatic TTL for
    /// proxied records, Route53 aliases for AWS load balancers.
    fn canonicalize(&self, desired: RecordSet) -> Result<RecordSet, DnsError> {
        Ok(desired)
    }

    /// Every record set in the zone.
    async fn records(&self) -> Result<Vec<RecordSet>, DnsError>;

    /// Applies a change set.
    async fn apply(&self, changes: &ChangeSet) -> Result<(), DnsError>;

    /// The zone's authoritative servers, for verification. Empty when there are none to ask
    /// (the in-memory provider).
    async fn name_servers(&self) -> Result<Vec<NameServer>, DnsError>;
}

/// A provider chosen at run time.
pub type SharedDnsProvider = Arc<dyn DnsProvider>;
