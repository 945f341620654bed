//! `[env.NAME.dns]` in ferry.toml: which provider and zone, which names, who owns them.
//!
//! ```toml
//! [env.prod.dns]
//! provider = "cloudflare"          # cloudflare | route53 | azure | rfc2136 | memory
//! zone = "example.com"
//! records = ["@", "app", "api"]    # "@" is the apex; single labels are relative to the zone
//! owner = "shop"                   # external-dns owner id (default: the app's name)
//! ttl = 300
//! proxied = true                   # Cloudflare only; unset leaves each record's flag alone
//! policy = "upsert-only"           # sync | upsert-only | create-only
//! # target = "192.0.2.10"          # optional: a fixed target instead of the deploy's LB
//!
//! [env.prod.dns.verify]
//! timeout = "2m"
//! resolvers = ["1.1.1.1", "8.8.8.8"]
//!
//! [env.prod.dns.cloudflare]
//! token_env = "CLOUDFLARE_API_TOKEN"
//! ```
//!
//! Deserialising checks the shape; [`DnsConfig::resolve`] checks the meaning and reports every
//! problem with the key path it is at, for the CLI to turn into `file:line:column`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::name::DnsName;
use crate::ownership::{OwnerId, TxtNaming};
use crate::plan::Policy;
use crate::target::Target;
use crate::verify::VerifyOptions;

/// One step of a key path inside `[env.NAME.dns]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSeg {
    /// A table key.
    Key(String),
    /// An array index.
    Index(usize),
}

impl From<&str> for PathSeg {
    fn from(k: &str) -> Self {
        PathSeg::Key(k.to_owned())
    }
}

impl From<usize> for PathSeg {
    fn from(i: usize) -> Self {
        PathSeg::Index(i)
    }
}

/// A problem with the config, at a key path relative to `[env.NAME.dns]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// Where.
    pub key_path: Vec<PathSeg>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
}

/// Which DNS service holds the zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Cloudflare (API v4).
    Cloudflare,
    /// AWS Route53.
    Route53,
    /// Azure DNS (Azure Resource Manager).
    Azure,
    /// Any server accepting RFC 2136 updates (BIND, Knot, PowerDNS).
    Rfc2136,
    /// A zone in memory (for trying ferry out; nothing leaves the process).
    Memory,
}

impl ProviderKind {
    /// The name used in ferry.toml.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Cloudflare => "cloudflare",
            ProviderKind::Route53 => "route53",
            ProviderKind::Azure => "azure",
            ProviderKind::Rfc2136 => "rfc2136",
            ProviderKind::Memory => "memory",
        }
    }
}

/// `[env.NAME.dns]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DnsConfig {
    /// The provider.
    pub provider: ProviderKind,
    /// The zone (`example.com`).
    pub zone: String,
    /// The names to point at the target: `@`, single labels, or full names in the zone.
    pub records: Vec<String>,
    /// The external-dns owner id (default: the app's name).
    #[serde(default)]
    pub owner: Option<String>,
    /// TTL in seconds (default 300).
    #[serde(default)]
    pub ttl: Option<u32>,
    /// Cloudflare's proxy; unset leaves the flag as each record has it.
    #[serde(default)]
    pub proxied: Option<bool>,
    /// What ferry may change (default upsert-only).
    #[serde(default)]
    pub policy: Policy,
    /// A fixed target (IP addresses or a hostname), instead of the deploy's load balancer.
    #[serde(default)]
    pub target: Option<String>,
    /// Which LoadBalancer Service or Ingress of the release to point at (`namespace/name`, or
    /// `name` in the deploy namespace), when it has several.
    #[serde(default)]
    pub load_balancer: Option<String>,
    /// external-dns's `--txt-prefix`.
    #[serde(default)]
    pub txt_prefix: String,
    /// external-dns's `--txt-suffix`.
    #[serde(default)]
    pub txt_suffix: String,
    /// external-dns's `--txt-wildcard-replacement`.
    #[serde(default)]
    pub txt_wildcard_replacement: String,
    /// `[env.NAME.dns.verify]`.
    #[serde(default)]
    pub verify: VerifyConfig,
    /// `[env.NAME.dns.cloudflare]`.
    #[serde(default)]
    pub cloudflare: Option<CloudflareConfig>,
    /// `[env.NAME.dns.route53]`.
    #[serde(default)]
    pub route53: Option<Route53Config>,
    /// `[env.NAME.dns.azure]`.
    #[serde(default)]
    pub azure: Option<AzureConfig>,
    /// `[env.NAME.dns.rfc2136]`.
    #[serde(default)]
    pub rfc2136: Option<Rfc2136Config>,
}

/// `[env.NAME.dns.verify]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyConfig {
    /// Whether `ferry dns apply` verifies (default true).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// How long the authoritative servers may take (default `2m`).
    #[serde(default)]
    pub timeout: Option<String>,
    /// Pause between rounds (default `2s`).
    #[serde(default)]
    pub interval: Option<String>,
    /// Time allowed per query (default `3s`).
    #[serde(default)]
    pub query_timeout: Option<String>,
    /// Public resolvers to report on (default `1.1.1.1`, `8.8.8.8`), `IP` or `IP:PORT`.
    #[serde(default)]
    pub resolvers: Option<Vec<String>>,
    /// Authoritative servers to ask instead of the zone's NS records (`HOST[:PORT]` or
    /// `IP[:PORT]`; a name is resolved before anything changes).
    #[serde(default)]
    pub servers: Option<Vec<String>>,
}

/// `[env.NAME.dns.cloudflare]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CloudflareConfig {
    /// The zone id (looked up by the zone's name when unset).
    #[serde(default)]
    pub zone_id: Option<String>,
    /// The variable holding the API token (default `CLOUDFLARE_API_TOKEN`).
    #[serde(default)]
    pub token_env: Option<String>,
    /// The API's base URL (default `https://api.cloudflare.com/client/v4`).
    #[serde(default)]
    pub api_url: Option<String>,
    /// Use the batch endpoint (one atomic request; default true).
    #[serde(default)]
    pub batch: Option<bool>,
    /// The comment on records ferry writes (default "managed by ferry").
    #[serde(default)]
    pub comment: Option<String>,
}

/// `[env.NAME.dns.route53]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Route53Config {
    /// The hosted zone id (looked up by the zone's name when unset).
    #[serde(default)]
    pub hosted_zone_id: Option<String>,
    /// The region for the API client (default: `[env.NAME.auth.aws] region`, then AWS_REGION,
    /// then us-east-1; Route53 is global).
    #[serde(default)]
    pub region: Option<String>,
    /// Another endpoint (a test server such as moto).
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// Alias records check the load balancer's health (default false).
    #[serde(default)]
    pub evaluate_target_health: Option<bool>,
    /// Write CNAMEs even for AWS load balancers (external-dns's `--aws-prefer-cname`).
    #[serde(default)]
    pub prefer_cname: Option<bool>,
}

/// `[env.NAME.dns.azure]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AzureConfig {
    /// The subscription holding the zone.
    #[serde(default)]
    pub subscription_id: Option<String>,
    /// The resource group holding the zone.
    #[serde(default)]
    pub resource_group: Option<String>,
    /// Azure Resource Manager's base URL (default `https://management.azure.com`).
    #[serde(default)]
    pub api_url: Option<String>,
    /// A variable holding a ready ARM access token, used instead of `[env.NAME.auth.azure]`.
    #[serde(default)]
    pub token_env: Option<String>,
}

/// `[env.NAME.dns.rfc2136]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rfc2136Config {
    /// The primary server, `HOST[:PORT]` or `IP[:PORT]` (port 53 by default); a host name is
    /// resolved each time ferry connects, and its addresses are tried in turn.
    #[serde(default)]
    pub server: Option<String>,
    /// The TSIG key's name.
    #[serde(default)]
    pub key_name: Option<String>,
    /// The TSIG algorithm (default hmac-sha256).
    #[serde(default)]
    pub key_algorithm: Option<String>,
    /// The variable holding the key's base64 secret (default `FERRY_TSIG_SECRET`).
    #[serde(default)]
    pub key_secret_env: Option<String>,
    /// Time allowed per exchange with the server (default `10s`).
    #[serde(default)]
    pub timeout: Option<String>,
}

/// `[env.NAME.dns]`, checked: every value parsed and valid.
#[derive(Debug, Clone)]
pub struct ResolvedDns {
    /// The provider.
    pub provider: ProviderKind,
    /// The zone.
    pub zone: DnsName,
    /// The names, in the order configured.
    pub names: Vec<DnsName>,
    /// The owner id.
    pub owner: OwnerId,
    /// How ownership records are named.
    pub naming: TxtNaming,
    /// The policy.
    pub policy: Policy,
    /// The TTL.
    pub ttl: u32,
    /// The proxy flag.
    pub proxied: Option<bool>,
    /// The configured target, if any.
    pub target: Option<Target>,
    /// Whether to verify after applying.
    pub verify_enabled: bool,
    /// How to verify.
    pub verify: VerifyOptions,
    /// Authoritative servers to ask instead of the provider's.
    pub verify_servers: Option<Vec<ServerAddress>>,
}

/// The default TTL.
pub const DEFAULT_TTL: u32 = 300;

fn path(keys: &[&str]) -> Vec<PathSeg> {
    keys.iter().map(|k| PathSeg::from(*k)).collect()
}

fn issue(key_path: Vec<PathSeg>, message: impl Into<String>, help: Option<&str>) -> ConfigIssue {
    ConfigIssue {
        key_path,
        message: message.into(),
        help: help.map(str::to_owned),
    }
}

/// Where a server is: an address, or a host name that the system resolver turns into addresses
/// when ferry connects (as `nsupdate`'s `server` does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerAddress {
    /// `IP`, `IP:PORT` or `[IPv6]:PORT`.
    Ip(SocketAddr),
    /// `HOST` or `HOST:PORT`.
    Host {
        /// The host name, lower-cased (with its trailing dot when written absolute).
        name: String,
        /// The port.
        port: u16,
    },
}

impl ServerAddress {
    /// Parses `IP[:PORT]`, `[IPv6]:PORT` or `HOST[:PORT]`, with `default_port` when none is
    /// given. A host name is letters, digits and hyphens in dot-separated labels of at most 63
    /// characters; its last label is not all digits, so a mistyped address such as `10.0.0.256`
    /// is refused rather than looked up as a name.
    pub fn parse(text: &str, default_port: u16) -> Option<ServerAddress> {
        let text = text.trim();
        if let Some(addr) = parse_socket_addr(text, default_port) {
            return Some(ServerAddress::Ip(addr));
        }
        let (host, port) = match text.split_once(':') {
            None => (text, default_port),
            Some((_, port)) if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) => {
                return None;
            }
            Some((host, port)) => (host, port.parse::<u16>().ok()?),
        };
        // A trailing dot (an absolute name, never completed from resolv.conf's search list)
        // is kept for the lookup; the labels are checked without it.
        let absolute = host.ends_with('.');
        let host = host.strip_suffix('.').unwrap_or(host);
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        let last = host.rsplit('.').next().unwrap_or_default();
        (port != 0
            && host.len() <= 253
            && host.split('.').all(label_ok)
            && !last.bytes().all(|b| b.is_ascii_digit()))
        .then(|| ServerAddress::Host {
            name: format!(
                "{}{}",
                host.to_ascii_lowercase(),
                if absolute { "." } else { "" }
            ),
            port,
        })
    }
}

impl ServerAddress {
    /// Its addresses: the address itself, or what the system resolver answers for the name
    /// now, within `timeout`. A name with no address is an error.
    pub async fn resolve(&self, timeout: Duration) -> std::io::Result<Vec<SocketAddr>> {
        let (name, port) = match self {
            ServerAddress::Ip(addr) => return Ok(vec![*addr]),
            ServerAddress::Host { name, port } => (name, *port),
        };
        let addrs: Vec<SocketAddr> =
            tokio::time::timeout(timeout, tokio::net::lookup_host((name.as_str(), port)))
                .await
                .map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("no answer within {timeout:?}"),
                    )
                })??
                .collect();
        if addrs.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the name has no address",
            ));
        }
        Ok(addrs)
    }
}

impl From<SocketAddr> for ServerAddress {
    fn from(addr: SocketAddr) -> Self {
        ServerAddress::Ip(addr)
    }
}

impl std::fmt::Display for ServerAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerAddress::Ip(addr) => write!(f, "{addr}"),
            ServerAddress::Host { name, port } => write!(f, "{name}:{port}"),
        }
    }
}

/// Parses `IP`, `IP:PORT` or `[IPv6]:PORT`, with `default_port` when none is given.
pub fn parse_socket_addr(text: &str, default_port: u16) -> Option<SocketAddr> {
    let text = text.trim();
    text.parse::<SocketAddr>().ok().or_else(|| {
        text.parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, default_port))
    })
}

/// Parses a duration such as `90s` or `2m`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    humantime::parse_duration(text.trim()).ok()
}

impl DnsConfig {
    /// Checks the section, reporting every problem. `app` is the app's name (the default owner
    /// id); `env` the environment's (for the `resource` label).
    pub fn resolve(&self, app: &str) -> Result<ResolvedDns, Vec<ConfigIssue>> {
        let mut issues = Vec::new();
        let zone = match DnsName::parse(&self.zone) {
            Ok(z) if !z.as_str().contains('.') => {
                issues.push(issue(
                    path(&["zone"]),
                    format!(
                        "`{}` is a top-level domain, not a zone ferry can manage",
                        self.zone
                    ),
                    Some("write the zone you own, such as example.com"),
                ));
                None
            }
            Ok(z) => Some(z),
            Err(e) => {
                issues.push(issue(path(&["zone"]), e.to_string(), None));
                None
            }
        };
        let mut names = Vec::new();
        if self.records.is_empty() {
            issues.push(issue(
                path(&["records"]),
                "no records are listed",
                Some(
                    "list the names to point at the load balancer, e.g. records = [\"@\", \"app\"]",
                ),
            ));
        }
        if let Some(zone) = &zone {
            for (i, text) in self.records.iter().enumerate() {
                match DnsName::in_zone(text, zone) {
                    Ok(n) if names.contains(&n) => issues.push(issue(
                        vec!["records".into(), i.into()],
                        format!("{n} is listed twice"),
                        None,
                    )),
                    Ok(n) => names.push(n),
                    Err(e) => {
                        issues.push(issue(vec!["records".into(), i.into()], e.to_string(), None))
                    }
                }
            }
        }
        let owner_text = self.owner.clone().unwrap_or_else(|| app.to_owned());
        let owner = match OwnerId::new(owner_text) {
            Ok(o) => Some(o),
            Err(e) => {
                issues.push(issue(
                    path(&["owner"]),
                    e.to_string(),
                    (self.owner.is_none())
                        .then_some("the app's name is the default owner id; set owner explicitly"),
                ));
                None
            }
        };
        let naming = match TxtNaming::new(
            self.txt_prefix.clone(),
            self.txt_suffix.clone(),
            self.txt_wildcard_replacement.clone(),
        ) {
            Ok(n) => Some(n),
            Err(e) => {
                issues.push(issue(path(&["txt_suffix"]), e.to_string(), None));
                None
            }
        };
        let ttl = self.ttl.unwrap_or(DEFAULT_TTL);
        if ttl == 0 || ttl > 604_800 {
            issues.push(issue(
                path(&["ttl"]),
                format!("ttl = {ttl} is out of range"),
                Some("use 1 to 604800 seconds (Cloudflare: 1 means automatic)"),
            ));
        }
        if self.proxied.is_some() && self.provider != ProviderKind::Cloudflare {
            issues.push(issue(
                path(&["proxied"]),
                format!(
                    "proxied is a Cloudflare setting; this zone is on {}",
                    self.provider.as_str()
                ),
                Some("remove proxied"),
            ));
        }
        let target = match &self.target {
            None => None,
            Some(t) => match t.parse::<Target>() {
                Ok(t) => Some(t),
                Err(e) => {
                    issues.push(issue(path(&["target"]), e.to_string(), None));
                    None
                }
            },
        };
        if let Some(lb) = &self.load_balancer {
            let parts: Vec<&str> = lb.split('/').collect();
            let label = |p: &str| {
                !p.is_empty()
                    && p.len() <= 253
                    && p.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.'
                    })
            };
            if parts.len() > 2 || !parts.iter().all(|p| label(p)) {
                issues.push(issue(
                    path(&["load_balancer"]),
                    format!("`{lb}` is not `namespace/name` or `name` of a Service or Ingress"),
                    Some("write it like \"ingress-nginx/ingress-nginx-controller\""),
                ));
            }
        }
        // Provider sections: the chosen provider's may be needed; the others are mistakes.
        let sections = [
            (ProviderKind::Cloudflare, self.cloudflare.is_some()),
            (ProviderKind::Route53, self.route53.is_some()),
            (ProviderKind::Azure, self.azure.is_some()),
            (ProviderKind::Rfc2136, self.rfc2136.is_some()),
        ];
        for (kind, present) in sections {
            if present && kind != self.provider {
                issues.push(issue(
                    path(&[kind.as_str()]),
                    format!(
                        "[{}] configures the {} provider, but provider = \"{}\"",
                        kind.as_str(),
                        kind.as_str(),
                        self.provider.as_str()
                    ),
                    Some("remove the table, or change provider"),
                ));
            }
        }
        match self.provider {
            ProviderKind::Azure => {
                let az = self.azure.clone().unwrap_or_default();
                for (key, value) in [
                    ("subscription_id", &az.subscription_id),
                    ("resource_group", &az.resource_group),
                ] {
                    if value.as_deref().is_none_or(str::is_empty) {
                        issues.push(issue(
                            path(&["azure", key]),
                            format!("Azure DNS needs the zone's {key}"),
                            Some("add it to [env.NAME.dns.azure]"),
                        ));
                    }
                }
            }
            ProviderKind::Rfc2136 => {
                let r = self.rfc2136.clone().unwrap_or_default();
                match r.server.as_deref() {
                    None => issues.push(issue(
                        path(&["rfc2136", "server"]),
                        "RFC 2136 needs the primary server's address",
                        Some("add server = \"HOST[:PORT]\" (or \"IP[:PORT]\") to [env.NAME.dns.rfc2136]"),
                    )),
                    Some(s) if ServerAddress::parse(s, 53).is_none() => issues.push(issue(
                        path(&["rfc2136", "server"]),
                        format!("`{s}` is not HOST[:PORT] or IP[:PORT]"),
                        Some("write the primary server's name or address, e.g. \"ns1.example.com\", \"192.0.2.53\" or \"192.0.2.53:5353\""),
                    )),
                    Some(_) => {}
                }
                if let Some(a) = &r.key_algorithm {
                    #[cfg(feature = "rfc2136")]
                    if let Err(e) = a.parse::<crate::rfc2136::TsigAlgorithm>() {
                        issues.push(issue(
                            path(&["rfc2136", "key_algorithm"]),
                            e.to_string(),
                            None,
                        ));
                    }
                    #[cfg(not(feature = "rfc2136"))]
                    let _ = a;
                }
                if let Some(t) = &r.timeout
                    && parse_duration(t).is_none()
                {
                    issues.push(issue(
                        path(&["rfc2136", "timeout"]),
                        format!("`{t}` is not a duration"),
                        Some("write it like \"10s\""),
                    ));
                }
            }
            _ => {}
        }
        let mut verify = VerifyOptions::default();
        let v = &self.verify;
        for (key, value, slot) in [
            ("timeout", &v.timeout, &mut verify.timeout),
            ("interval", &v.interval, &mut verify.interval),
            ("query_timeout", &v.query_timeout, &mut verify.query_timeout),
        ] {
            if let Some(text) = value {
                match parse_duration(text) {
                    Some(d) if !d.is_zero() => *slot = d,
                    _ => issues.push(issue(
                        path(&["verify", key]),
                        format!("`{text}` is not a duration"),
                        Some("write it like \"90s\" or \"2m\""),
                    )),
                }
            }
        }
        if let Some(list) = &v.resolvers {
            verify.public_resolvers.clear();
            for (i, r) in list.iter().enumerate() {
                match parse_socket_addr(r, 53) {
                    Some(a) => verify.public_resolvers.push(a),
                    None => issues.push(issue(
                        vec!["verify".into(), "resolvers".into(), i.into()],
                        format!("`{r}` is not IP[:PORT]"),
                        None,
                    )),
                }
            }
        }
        let mut verify_servers = None;
        if let Some(list) = &v.servers {
            let mut out = Vec::new();
            for (i, r) in list.iter().enumerate() {
                match ServerAddress::parse(r, 53) {
                    Some(a) => out.push(a),
                    None => issues.push(issue(
                        vec!["verify".into(), "servers".into(), i.into()],
                        format!("`{r}` is not HOST[:PORT] or IP[:PORT]"),
                        None,
                    )),
                }
            }
            verify_servers = Some(out);
        }
        match (issues.is_empty(), zone, owner, naming) {
            (true, Some(zone), Some(owner), Some(naming)) => Ok(ResolvedDns {
                provider: self.provider,
                zone,
                names,
                owner,
                naming,
                policy: self.policy,
                ttl,
                proxied: self.proxied,
                target,
                verify_enabled: v.enabled.unwrap_or(true),
                verify,
                verify_servers,
            }),
            _ => Err(issues),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> DnsConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn a_full_section_resolves() {
        let c = parse(
            r#"
            provider = "cloudflare"
            zone = "Example.com"
            records = ["@", "app", "api.example.com."]
            proxied = true
            policy = "sync"
            target = "192.0.2.1"
            [verify]
            timeout = "30s"
            resolvers = ["9.9.9.9", "[2620:fe::fe]:53"]
            [cloudflare]
            token_env = "CF_TOKEN"
            "#,
        );
        let r = c.resolve("shop").unwrap();
        assert_eq!(r.zone.as_str(), "example.com");
        let names: Vec<&str> = r.names.iter().map(DnsName::as_str).collect();
        assert_eq!(names, ["example.com", "app.example.com", "api.example.com"]);
        assert_eq!(r.owner.as_str(), "shop");
        assert_eq!(r.policy, Policy::Sync);
        assert_eq!(r.ttl, DEFAULT_TTL);
        assert_eq!(r.verify.timeout, Duration::from_secs(30));
        assert_eq!(r.verify.public_resolvers.len(), 2);
    }

    #[test]
    fn every_problem_is_reported_at_its_key() {
        let c = parse(
            r#"
            provider = "route53"
            zone = "example.com"
            records = ["app", "app", "x.example.org.", "bad name"]
            owner = "a,b"
            ttl = 0
            proxied = true
            target = "not a target!"
            [verify]
            timeout = "soon"
            [cloudflare]
            "#,
        );
        let issues = c.resolve("shop").unwrap_err();
        let keys: Vec<String> = issues
            .iter()
            .map(|i| {
                i.key_path
                    .iter()
                    .map(|s| match s {
                        PathSeg::Key(k) => k.clone(),
                        PathSeg::Index(i) => i.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(".")
            })
            .collect();
        for want in [
            "records.1",
            "records.2",
            "records.3",
            "owner",
            "ttl",
            "proxied",
            "target",
            "verify.timeout",
            "cloudflare",
        ] {
            assert!(keys.contains(&want.to_owned()), "{want} in {keys:?}");
        }
    }

    #[test]
    fn unknown_keys_and_providers_are_refused_by_serde() {
        assert!(
            toml::from_str::<DnsConfig>("provider = \"godaddy\"\nzone = \"a.com\"\nrecords = []")
                .is_err()
        );
        assert!(
            toml::from_str::<DnsConfig>(
                "provider = \"memory\"\nzone = \"a.com\"\nrecords = []\nttll = 3"
            )
            .is_err()
        );
    }

    #[test]
    fn servers_are_addresses_or_host_names() {
        let ip = |t: &str| ServerAddress::Ip(t.parse().unwrap());
        let host = |n: &str, port| {
            Some(ServerAddress::Host {
                name: n.into(),
                port,
            })
        };
        assert_eq!(
            ServerAddress::parse("192.0.2.53", 53),
            Some(ip("192.0.2.53:53"))
        );
        assert_eq!(
            ServerAddress::parse(" 192.0.2.53:5353 ", 53),
            Some(ip("192.0.2.53:5353"))
        );
        assert_eq!(
            ServerAddress::parse("[2001:db8::53]:5353", 53),
            Some(ip("[2001:db8::53]:5353"))
        );
        assert_eq!(
            ServerAddress::parse("2001:db8::53", 53),
            Some(ip("[2001:db8::53]:53"))
        );
        assert_eq!(
            ServerAddress::parse("NS1.Example.com.", 53),
            host("ns1.example.com.", 53)
        );
        assert_eq!(ServerAddress::parse("ns1.example.com:+53", 53), None);
        assert_eq!(
            ServerAddress::parse("localhost:5353", 53),
            host("localhost", 5353)
        );
        assert_eq!(
            ServerAddress::parse("dns-1.internal:53", 53),
            host("dns-1.internal", 53)
        );
        for bad in [
            "",
            "10.0.0.256",
            "10.0.0.1:99999",
            "ns1.example.com:0",
            "ns1.example.com:",
            "ns1..example.com",
            "-ns1.example.com",
            "ns_1.example.com",
            "ns1.example.com:53:53",
            "https://ns1.example.com",
            "ns1 example.com",
        ] {
            assert_eq!(ServerAddress::parse(bad, 53), None, "{bad}");
        }
        assert_eq!(
            ServerAddress::parse("ns1.example.com:5353", 53)
                .unwrap()
                .to_string(),
            "ns1.example.com:5353"
        );
    }

    #[test]
    fn providers_say_what_they_need() {
        let c = parse(
            "provider = \"rfc2136\"\nzone = \"example.com\"\nrecords = [\"app\"]\n[rfc2136]\nserver = \"ns1.example.com:99999\"",
        );
        let issues = c.resolve("shop").unwrap_err();
        assert!(issues[0].message.contains("not HOST[:PORT]"), "{issues:?}");
        let c = parse("provider = \"azure\"\nzone = \"example.com\"\nrecords = [\"app\"]");
        assert_eq!(c.resolve("shop").unwrap_err().len(), 2);
    }
}
