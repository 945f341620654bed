//! [`Target`]: what names should point at, taken from the deploy.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::Serialize;

use crate::error::DnsError;
use crate::name::DnsName;
use crate::record::{RecordSet, RecordType};

/// One entry of a Kubernetes `status.loadBalancer.ingress` list (of a LoadBalancer Service or an
/// Ingress): an IP, a hostname, or both. The deploy engine reports these; this crate does not
/// depend on Kubernetes types.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LoadBalancerIngress {
    /// The IP address, when the load balancer has one (AKS, GKE, MetalLB).
    pub ip: Option<String>,
    /// The hostname, when the load balancer has one (EKS: `*.elb.amazonaws.com`).
    pub hostname: Option<String>,
}

/// Where the names point: a load balancer's addresses or its hostname.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// IP addresses: A records for IPv4, AAAA for IPv6.
    Addresses(Vec<IpAddr>),
    /// A hostname: a CNAME (or, on Route53, an alias for an AWS load balancer).
    Hostname(DnsName),
}

impl Target {
    /// The target of a load balancer's ingress list: its IPs when every entry has one (the
    /// names then answer directly), otherwise its single hostname.
    pub fn from_load_balancer(ingress: &[LoadBalancerIngress]) -> Result<Self, DnsError> {
        if ingress.is_empty() {
            return Err(DnsError::invalid(
                "the load balancer has no address yet (status.loadBalancer.ingress is empty); \
                 wait for the cloud to assign one",
            ));
        }
        let ips: Vec<&str> = ingress
            .iter()
            .filter_map(|i| i.ip.as_deref().filter(|s| !s.is_empty()))
            .collect();
        if ips.len() == ingress.len() {
            return Target::from_str(&ips.join(","));
        }
        let hosts: std::collections::BTreeSet<&str> = ingress
            .iter()
            .filter_map(|i| i.hostname.as_deref().filter(|s| !s.is_empty()))
            .collect();
        match hosts.len() {
            1 => Target::from_str(hosts.into_iter().next().unwrap_or_default()),
            0 => Err(DnsError::invalid(
                "the load balancer's ingress entries have neither an IP nor a hostname",
            )),
            _ => Err(DnsError::invalid(format!(
                "the load balancer has several hostnames ({}); a name can point at only one",
                hosts.into_iter().collect::<Vec<_>>().join(", ")
            ))),
        }
    }

    /// The target of a load balancer's addresses as ferry-deployer reports them (each entry an
    /// IP or a hostname, `Outcome::Deployed::load_balancers`).
    pub fn from_addresses(addresses: &[String]) -> Result<Self, DnsError> {
        let ingress: Vec<LoadBalancerIngress> = addresses
            .iter()
            .map(|a| {
                if a.parse::<IpAddr>().is_ok() {
                    LoadBalancerIngress {
                        ip: Some(a.clone()),
                        hostname: None,
                    }
                } else {
                    LoadBalancerIngress {
                        ip: None,
                        hostname: Some(a.clone()),
                    }
                }
            })
            .collect();
        Target::from_load_balancer(&ingress)
    }

    /// The record sets that point `name` at this target.
    pub fn record_sets(
        &self,
        name: &DnsName,
        ttl: u32,
        proxied: Option<bool>,
    ) -> Result<Vec<RecordSet>, DnsError> {
        let sets = match self {
            Target::Addresses(ips) => {
                let v4: Vec<String> = ips
                    .iter()
                    .filter(|i| i.is_ipv4())
                    .map(ToString::to_string)
                    .collect();
                let v6: Vec<String> = ips
                    .iter()
                    .filter(|i| i.is_ipv6())
                    .map(ToString::to_string)
                    .collect();
                let mut sets = Vec::new();
                if !v4.is_empty() {
                    sets.push(RecordSet::new(name.clone(), RecordType::A, ttl, v4)?);
                }
                if !v6.is_empty() {
                    sets.push(RecordSet::new(name.clone(), RecordType::Aaaa, ttl, v6)?);
                }
                sets
            }
            Target::Hostname(host) => {
                if host == name {
                    return Err(DnsError::invalid(format!("{name} cannot point at itself")));
                }
                vec![RecordSet::new(
                    name.clone(),
                    RecordType::Cname,
                    ttl,
                    [host.as_str()],
                )?]
            }
        };
        Ok(sets.into_iter().map(|s| s.with_proxied(proxied)).collect())
    }
}

impl FromStr for Target {
    type Err = DnsError;
    /// `192.0.2.10`, `192.0.2.10,2001:db8::10` or `lb-1.elb.us-east-1.amazonaws.com`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = text
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        if parts.is_empty() {
            return Err(DnsError::invalid(
                "the target is empty: give an IP address or a hostname",
            ));
        }
        let ips: Vec<Option<IpAddr>> = parts.iter().map(|p| p.parse().ok()).collect();
        if ips.iter().all(Option::is_some) {
            let mut ips: Vec<IpAddr> = ips.into_iter().flatten().collect();
            ips.sort();
            ips.dedup();
            return Ok(Target::Addresses(ips));
        }
        if parts.len() > 1 {
            return Err(DnsError::invalid(format!(
                "target `{text}`: a list holds IP addresses only; a name can point at one hostname"
            )));
        }
        let host = DnsName::parse(parts[0]).map_err(|e| {
            DnsError::invalid(format!(
                "target `{text}` is neither an IP address nor a valid hostname: {e}"
            ))
        })?;
        if host.is_wildcard() {
            return Err(DnsError::invalid(format!(
                "target `{text}` cannot be a wildcard"
            )));
        }
        // A mistyped address (`10.0.0.256`, `192.0.2`) parses as a name; no hostname ends in a
        // numeric label (RFC 3696 section 2), so refuse it rather than write a CNAME to it.
        let last = host.as_str().rsplit('.').next().unwrap_or_default();
        if last.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DnsError::invalid(format!(
                "target `{text}` is not a valid IP address, and a hostname cannot end in a number"
            )));
        }
        Ok(Target::Hostname(host))
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Addresses(ips) => {
                let list: Vec<String> = ips.iter().map(ToString::to_string).collect();
                f.write_str(&list.join(","))
            }
            Target::Hostname(h) => write!(f, "{h}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses_and_hostnames() {
        assert_eq!(
            "192.0.2.1, 2001:db8::1"
                .parse::<Target>()
                .unwrap()
                .to_string(),
            "192.0.2.1,2001:db8::1"
        );
        assert!(
            matches!("LB.example.net".parse::<Target>().unwrap(), Target::Hostname(h) if h.as_str() == "lb.example.net")
        );
        assert!("".parse::<Target>().is_err());
        assert!("a.example.net,b.example.net".parse::<Target>().is_err());
        assert!(
            "bad_host!"
                .parse::<Target>()
                .unwrap_err()
                .to_string()
                .contains("neither an IP")
        );
    }

    #[test]
    fn mistyped_addresses_are_refused_not_taken_for_hostnames() {
        for typo in ["999.1.1.1", "10.0.0.256", "192.0.2", "192.0.2.1.5"] {
            let err = typo.parse::<Target>().unwrap_err();
            assert!(
                err.to_string().contains("not a valid IP address"),
                "{typo}: {err}"
            );
        }
        assert!("lb-1.elb.us-east-1.amazonaws.com".parse::<Target>().is_ok());
        assert!("1.lb.example.net".parse::<Target>().is_ok());
    }

    #[test]
    fn addresses_become_a_and_aaaa_hostnames_cname() {
        let name = DnsName::parse("app.example.com").unwrap();
        let sets = "192.0.2.1,2001:db8::1"
            .parse::<Target>()
            .unwrap()
            .record_sets(&name, 60, None)
            .unwrap();
        assert_eq!(
            sets.iter()
                .map(|s| s.record_type.clone())
                .collect::<Vec<_>>(),
            [RecordType::A, RecordType::Aaaa]
        );
        let sets = "lb.example.net"
            .parse::<Target>()
            .unwrap()
            .record_sets(&name, 60, Some(true))
            .unwrap();
        assert_eq!(sets[0].record_type, RecordType::Cname);
        assert_eq!(sets[0].proxied, Some(true));
    }

    #[test]
    fn load_balancer_status_gives_the_target() {
        let ip = |s: &str| LoadBalancerIngress {
            ip: Some(s.into()),
            hostname: None,
        };
        let host = |s: &str| LoadBalancerIngress {
            ip: None,
            hostname: Some(s.into()),
        };
        assert_eq!(
            Target::from_load_balancer(&[ip("192.0.2.1"), ip("192.0.2.2")])
                .unwrap()
                .to_string(),
            "192.0.2.1,192.0.2.2"
        );
        assert_eq!(
            Target::from_load_balancer(&[host("a-1.elb.us-east-1.amazonaws.com")])
                .unwrap()
                .to_string(),
            "a-1.elb.us-east-1.amazonaws.com"
        );
        assert!(
            Target::from_load_balancer(&[])
                .unwrap_err()
                .to_string()
                .contains("no address yet")
        );
        assert!(Target::from_load_balancer(&[host("a.net"), host("b.net")]).is_err());
        let addrs = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            Target::from_addresses(&addrs(&["20.1.2.3"]))
                .unwrap()
                .to_string(),
            "20.1.2.3"
        );
        assert_eq!(
            Target::from_addresses(&addrs(&["a-1.elb.us-east-1.amazonaws.com"]))
                .unwrap()
                .to_string(),
            "a-1.elb.us-east-1.amazonaws.com"
        );
    }
}
