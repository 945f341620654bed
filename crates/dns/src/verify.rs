//! Verification: ask the zone's authoritative servers until they answer what was applied, within
//! a bound; then report what public resolvers answer.
//!
//! external-dns never checks that a name resolves after it changed it; ferry does, because
//! "the names resolve to the load balancer" is the property a deploy promises. The authoritative
//! check is the gate (an answer that does not converge in time is a failure); the public
//! resolvers' answers are a report only, because their caches legitimately keep old answers for
//! up to the old TTL. A resolver that cannot be reached (no route, a firewall, a machine without
//! internet) is reported as unreachable, never as a match.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use futures::StreamExt as _;
use hickory_net::client::Client;
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::udp::UdpClientStream;
use hickory_net::xfer::DnsHandle as _;
use hickory_net::{DnsError as HickoryDnsError, NetError};
use hickory_proto::op::{DnsRequestOptions, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType as HType};
use serde::Serialize;

use crate::error::DnsError;
use crate::name::DnsName;
use crate::provider::NameServer;
use crate::record::{RecordSet, RecordType};

/// What a name should answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Expected {
    /// Exactly these addresses (A and AAAA).
    Addresses {
        /// IPv4 addresses.
        v4: BTreeSet<Ipv4Addr>,
        /// IPv6 addresses.
        v6: BTreeSet<Ipv6Addr>,
    },
    /// A CNAME to this name.
    Cname {
        /// The target.
        target: DnsName,
    },
    /// The addresses of another name, which ferry cannot know: a Route53 alias, or a CNAME at
    /// a Cloudflare zone apex (flattened). Any address answer matches.
    Alias {
        /// The alias target.
        target: DnsName,
    },
    /// A record behind Cloudflare's proxy: the answer is Cloudflare's own addresses, never the
    /// target's. Any address answer matches.
    Proxied,
}

impl std::fmt::Display for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expected::Addresses { v4, v6 } => {
                let ips: Vec<String> = v4
                    .iter()
                    .map(ToString::to_string)
                    .chain(v6.iter().map(ToString::to_string))
                    .collect();
                f.write_str(&ips.join(", "))
            }
            Expected::Cname { target } => write!(f, "CNAME {target}"),
            Expected::Alias { target } => write!(f, "any address (alias of {target})"),
            Expected::Proxied => f.write_str("any address (behind Cloudflare's proxy)"),
        }
    }
}

/// One name and what it should answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Expectation {
    /// The name.
    pub name: DnsName,
    /// What it should answer.
    pub expected: Expected,
}

impl Expectation {
    /// What the desired record sets of `zone` should make each name answer.
    pub fn from_records(desired: &[RecordSet], zone: &DnsName) -> Vec<Expectation> {
        let mut by_name: BTreeMap<&DnsName, Expected> = BTreeMap::new();
        for set in desired {
            let entry = || Expected::Addresses {
                v4: BTreeSet::new(),
                v6: BTreeSet::new(),
            };
            if set.proxied == Some(true) {
                by_name.insert(&set.name, Expected::Proxied);
                continue;
            }
            match (&set.record_type, &set.alias) {
                (RecordType::Cname, None) if set.name == *zone => {
                    if let Some(t) = set.values.first().and_then(|v| DnsName::parse(v).ok()) {
                        by_name.insert(&set.name, Expected::Alias { target: t });
                    }
                }
                (_, Some(alias)) => {
                    by_name.insert(
                        &set.name,
                        Expected::Alias {
                            target: alias.dns_name.clone(),
                        },
                    );
                }
                (RecordType::Cname, None) => {
                    if let Some(t) = set.values.first().and_then(|v| DnsName::parse(v).ok()) {
                        by_name.insert(&set.name, Expected::Cname { target: t });
                    }
                }
                (RecordType::A, None) => {
                    if let Expected::Addresses { v4, .. } =
                        by_name.entry(&set.name).or_insert_with(entry)
                    {
                        v4.extend(set.values.iter().filter_map(|v| v.parse::<Ipv4Addr>().ok()));
                    }
                }
                (RecordType::Aaaa, None) => {
                    if let Expected::Addresses { v6, .. } =
                        by_name.entry(&set.name).or_insert_with(entry)
                    {
                        v6.extend(set.values.iter().filter_map(|v| v.parse::<Ipv6Addr>().ok()));
                    }
                }
                _ => {}
            }
        }
        by_name
            .into_iter()
            .map(|(name, expected)| Expectation {
                name: name.clone(),
                expected,
            })
            .collect()
    }
}

/// What a server answered for a name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Answer {
    /// Addresses (after following CNAMEs, for a recursive resolver).
    Addresses {
        /// IPv4 addresses.
        v4: BTreeSet<Ipv4Addr>,
        /// IPv6 addresses.
        v6: BTreeSet<Ipv6Addr>,
        /// The CNAME the name has, if it has one.
        cname: Option<DnsName>,
    },
    /// A CNAME, and nothing else asked for.
    Cname {
        /// The target.
        target: DnsName,
    },
    /// The name exists but has no such records.
    NoRecords,
    /// The name does not exist.
    NxDomain,
    /// The server could not be reached, or did not answer in time.
    Unreachable {
        /// Why.
        reason: String,
    },
    /// The server answered with an error.
    Error {
        /// The response code or error.
        reason: String,
    },
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Addresses { v4, v6, cname } => {
                let ips: Vec<String> = v4
                    .iter()
                    .map(ToString::to_string)
                    .chain(v6.iter().map(ToString::to_string))
                    .collect();
                if let Some(c) = cname {
                    write!(f, "CNAME {c} -> ")?;
                }
                if ips.is_empty() {
                    f.write_str("no addresses")
                } else {
                    f.write_str(&ips.join(", "))
                }
            }
            Answer::Cname { target } => write!(f, "CNAME {target}"),
            Answer::NoRecords => f.write_str("no records"),
            Answer::NxDomain => f.write_str("NXDOMAIN"),
            Answer::Unreachable { reason } => write!(f, "unreachable ({reason})"),
            Answer::Error { reason } => write!(f, "error ({reason})"),
        }
    }
}

impl Answer {
    /// Whether this answer is what `expected` asks for.
    pub fn matches(&self, expected: &Expected) -> bool {
        match (expected, self) {
            (
                Expected::Addresses { v4, v6 },
                Answer::Addresses {
                    v4: a4,
                    v6: a6,
                    cname: None,
                },
            ) => v4 == a4 && v6 == a6,
            (Expected::Cname { target }, Answer::Cname { target: t })
            | (Expected::Cname { target }, Answer::Addresses { cname: Some(t), .. }) => target == t,
            (Expected::Alias { .. } | Expected::Proxied, Answer::Addresses { v4, v6, .. }) => {
                !(v4.is_empty() && v6.is_empty())
            }
            _ => false,
        }
    }
}

/// One server's answer for one name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// The server (address, and its name when it came from NS records).
    pub server: String,
    /// The name asked for.
    pub name: DnsName,
    /// What was expected.
    pub expected: Expected,
    /// What it answered.
    pub answer: Answer,
    /// Whether that matches.
    pub matches: bool,
}

/// The outcome of [`verify`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// The last answers of the authoritative servers.
    pub authoritative: Vec<Check>,
    /// Whether every authoritative server answered as expected within the time allowed.
    pub converged: bool,
    /// How long it took (or how long was waited).
    pub elapsed_ms: u64,
    /// Questions asked of the authoritative servers (one per server and name), in all rounds.
    pub queries: u32,
    /// What the public resolvers answered (a report, not a gate).
    pub public: Vec<Check>,
}

/// How to verify.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyOptions {
    /// How long the authoritative servers may take to answer as expected.
    pub timeout: Duration,
    /// The pause between rounds of queries.
    pub interval: Duration,
    /// The time allowed for one query.
    pub query_timeout: Duration,
    /// Public resolvers to report on (`1.1.1.1:53`, `8.8.8.8:53` by default).
    pub public_resolvers: Vec<SocketAddr>,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            timeout: Duration::from_secs(120),
            interval: Duration::from_secs(2),
            query_timeout: Duration::from_secs(3),
            public_resolvers: vec![
                SocketAddr::from(([1, 1, 1, 1], 53)),
                SocketAddr::from(([8, 8, 8, 8], 53)),
            ],
        }
    }
}

/// Asks the zone's authoritative servers until each answers every expectation, or the time runs
/// out; then asks each public resolver once.
pub async fn verify(
    servers: &[NameServer],
    expectations: &[Expectation],
    options: &VerifyOptions,
) -> Result<VerifyReport, DnsError> {
    let start = tokio::time::Instant::now();
    let deadline = start + options.timeout;
    let mut targets: Vec<(String, Option<SocketAddr>, String)> = Vec::new();
    for server in servers {
        match server {
            NameServer::Address(a) => targets.push((a.to_string(), Some(*a), String::new())),
            // The system resolver retries on its own: bounded by the time verify has.
            NameServer::Host(h) => match tokio::time::timeout(
                options.timeout,
                tokio::net::lookup_host((h.as_str(), 53)),
            )
            .await
            .unwrap_or_else(|_| {
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer within {:?}", options.timeout),
                ))
            }) {
                Ok(addrs) => {
                    let addrs: Vec<SocketAddr> = addrs.collect();
                    if addrs.is_empty() {
                        targets.push((h.to_string(), None, "its name has no address".into()));
                    }
                    for a in addrs {
                        targets.push((format!("{h} ({a})"), Some(a), String::new()));
                    }
                }
                Err(e) => {
                    targets.push((h.to_string(), None, format!("cannot resolve its name: {e}")))
                }
            },
        }
    }
    if targets.is_empty() {
        return Err(DnsError::invalid(
            "the zone has no authoritative servers to verify against",
        ));
    }

    let mut queries = 0;
    loop {
        let round = targets.iter().flat_map(|(label, addr, unresolved)| {
            expectations.iter().map(move |e| async move {
                let answer = match addr {
                    Some(a) => ask(*a, &e.name, &e.expected, false, options.query_timeout).await,
                    None => Answer::Unreachable {
                        reason: unresolved.clone(),
                    },
                };
                Check {
                    server: label.clone(),
                    name: e.name.clone(),
                    expected: e.expected.clone(),
                    matches: answer.matches(&e.expected),
                    answer,
                }
            })
        });
        let checks: Vec<Check> = futures::future::join_all(round).await;
        queries += u32::try_from(checks.len()).unwrap_or(u32::MAX);
        let converged = checks.iter().all(|c| c.matches);
        let now = tokio::time::Instant::now();
        // The last round is asked at the deadline itself, not an interval before it.
        if converged || now >= deadline {
            let elapsed_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
            let public = options.public_resolvers.iter().flat_map(|resolver| {
                expectations.iter().map(move |e| async move {
                    let answer =
                        ask(*resolver, &e.name, &e.expected, true, options.query_timeout).await;
                    Check {
                        server: resolver.to_string(),
                        name: e.name.clone(),
                        expected: e.expected.clone(),
                        matches: answer.matches(&e.expected),
                        answer,
                    }
                })
            });
            let public = futures::future::join_all(public).await;
            return Ok(VerifyReport {
                authoritative: checks,
                converged,
                elapsed_ms,
                queries,
                public,
            });
        }
        tokio::time::sleep(options.interval.min(deadline - now)).await;
    }
}

/// Asks one server what `name` answers, in the form `expected` is about.
async fn ask(
    server: SocketAddr,
    name: &DnsName,
    expected: &Expected,
    recursive: bool,
    timeout: Duration,
) -> Answer {
    let Ok(qname) = Name::from_ascii(name.fqdn()) else {
        return Answer::Error {
            reason: format!("{name} cannot be queried"),
        };
    };
    match expected {
        Expected::Cname { .. } if !recursive => {
            match query(server, &qname, HType::CNAME, false, timeout).await {
                Ok(records) => match records.cname {
                    Some(target) => Answer::Cname { target },
                    None if records.v4.is_empty() && records.v6.is_empty() => Answer::NoRecords,
                    None => Answer::Addresses {
                        v4: records.v4,
                        v6: records.v6,
                        cname: None,
                    },
                },
                Err(a) => a,
            }
        }
        _ => {
            let (v4, v6) = futures::future::join(
                query(server, &qname, HType::A, recursive, timeout),
                query(server, &qname, HType::AAAA, recursive, timeout),
            )
            .await;
            match (v4, v6) {
                (Err(a), _) | (_, Err(a)) if !matches!(a, Answer::NoRecords) => a,
                (a, b) => {
                    let (a, b) = (a.unwrap_or_default(), b.unwrap_or_default());
                    if a.v4.is_empty() && b.v6.is_empty() && a.cname.is_none() && b.cname.is_none()
                    {
                        return Answer::NoRecords;
                    }
                    Answer::Addresses {
                        v4: a.v4,
                        v6: b.v6,
                        cname: a.cname.or(b.cname),
                    }
                }
            }
        }
    }
}

#[derive(Default)]
struct Found {
    v4: BTreeSet<Ipv4Addr>,
    v6: BTreeSet<Ipv6Addr>,
    cname: Option<DnsName>,
}

async fn query(
    server: SocketAddr,
    name: &Name,
    qtype: HType,
    recursive: bool,
    timeout: Duration,
) -> Result<Found, Answer> {
    let stream = UdpClientStream::builder(server, TokioRuntimeProvider::default())
        .with_timeout(Some(timeout))
        .build();
    let (client, background) = Client::<TokioRuntimeProvider>::from_sender(stream);
    let task = tokio::spawn(background);
    let mut q = Query::query(name.clone(), qtype);
    q.set_query_class(DNSClass::IN);
    let mut options = DnsRequestOptions::default();
    options.recursion_desired = recursive;
    let response = client.lookup(q, options).next().await;
    task.abort();
    let response = match response {
        Some(Ok(r)) => r,
        Some(Err(NetError::Dns(HickoryDnsError::NoRecordsFound(n)))) => {
            return Err(if n.response_code == ResponseCode::NXDomain {
                Answer::NxDomain
            } else {
                Answer::NoRecords
            });
        }
        Some(Err(NetError::Dns(HickoryDnsError::ResponseCode(code)))) => {
            return Err(Answer::Error {
                reason: code.to_str().to_owned(),
            });
        }
        Some(Err(NetError::Timeout)) | None => {
            return Err(Answer::Unreachable {
                reason: format!("no answer within {timeout:?}"),
            });
        }
        Some(Err(NetError::Io(e))) => {
            return Err(Answer::Unreachable {
                reason: e.to_string(),
            });
        }
        Some(Err(e)) => {
            return Err(Answer::Error {
                reason: e.to_string(),
            });
        }
    };
    match response.metadata.response_code {
        ResponseCode::NoError => {}
        ResponseCode::NXDomain => return Err(Answer::NxDomain),
        other => {
            return Err(Answer::Error {
                reason: other.to_str().to_owned(),
            });
        }
    }
    let mut found = Found::default();
    for r in &response.answers {
        match &r.data {
            RData::A(a) => {
                found.v4.insert(a.0);
            }
            RData::AAAA(a) => {
                found.v6.insert(a.0);
            }
            RData::CNAME(c) if r.name == *name => {
                found.cname = DnsName::parse(&c.0.to_ascii()).ok();
            }
            _ => {}
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> DnsName {
        DnsName::parse(s).unwrap()
    }

    #[test]
    fn expectations_follow_what_the_provider_will_answer() {
        let zone = name("example.com");
        let sets = vec![
            RecordSet::new(name("a.example.com"), RecordType::A, 60, ["192.0.2.1"]).unwrap(),
            RecordSet::new(name("a.example.com"), RecordType::Aaaa, 60, ["2001:db8::1"]).unwrap(),
            RecordSet::new(
                name("c.example.com"),
                RecordType::Cname,
                60,
                ["lb.example.net"],
            )
            .unwrap(),
            RecordSet::new(
                name("example.com"),
                RecordType::Cname,
                60,
                ["lb.example.net"],
            )
            .unwrap(),
            RecordSet::new(name("p.example.com"), RecordType::A, 1, ["192.0.2.1"])
                .unwrap()
                .with_proxied(Some(true)),
        ];
        let e = Expectation::from_records(&sets, &zone);
        let by = |n: &str| {
            e.iter()
                .find(|x| x.name.as_str() == n)
                .unwrap()
                .expected
                .clone()
        };
        assert!(
            matches!(by("a.example.com"), Expected::Addresses { v4, v6 } if v4.len() == 1 && v6.len() == 1)
        );
        assert!(matches!(by("c.example.com"), Expected::Cname { .. }));
        assert!(
            matches!(by("example.com"), Expected::Alias { .. }),
            "a flattened apex CNAME answers addresses"
        );
        assert_eq!(by("p.example.com"), Expected::Proxied);
        let edge = Answer::Addresses {
            v4: ["104.16.1.1".parse().unwrap()].into(),
            v6: BTreeSet::new(),
            cname: None,
        };
        assert!(edge.matches(&Expected::Proxied));
        assert!(!edge.matches(&by("a.example.com")));
        assert!(!Answer::NxDomain.matches(&Expected::Proxied));
    }
}
