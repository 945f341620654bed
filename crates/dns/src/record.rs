//! Record sets: the unit every provider lists and changes.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::DnsError;
use crate::name::DnsName;

/// A record type. ferry manages `A`, `AAAA`, `CNAME` and (for ownership) `TXT`; every other type
/// is listed so that clashes can be seen, and is never changed.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum RecordType {
    /// IPv4 address.
    A,
    /// IPv6 address.
    Aaaa,
    /// Canonical name (an alias to another name). Nothing else may live at its name.
    Cname,
    /// Text.
    Txt,
    /// Any other type, by its mnemonic (`MX`, `NS`, `SOA`, `CAA`, ...), upper-case.
    Other(String),
}

impl RecordType {
    /// The types ferry creates for targets, and so the only ones it ever updates or deletes
    /// (besides its own ownership TXT values).
    pub const MANAGED: [RecordType; 3] = [RecordType::A, RecordType::Aaaa, RecordType::Cname];

    /// The mnemonic, upper-case.
    pub fn as_str(&self) -> &str {
        match self {
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
            RecordType::Cname => "CNAME",
            RecordType::Txt => "TXT",
            RecordType::Other(s) => s,
        }
    }

    /// Whether ferry points names with this type ([`RecordType::MANAGED`]).
    pub fn is_managed(&self) -> bool {
        matches!(self, RecordType::A | RecordType::Aaaa | RecordType::Cname)
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RecordType {
    type Err = DnsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let upper = s.trim().to_ascii_uppercase();
        if upper.is_empty() || !upper.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(DnsError::invalid(format!("`{s}` is not a DNS record type")));
        }
        Ok(match upper.as_str() {
            "A" => RecordType::A,
            "AAAA" => RecordType::Aaaa,
            "CNAME" => RecordType::Cname,
            "TXT" => RecordType::Txt,
            _ => RecordType::Other(upper),
        })
    }
}

impl From<RecordType> for String {
    fn from(t: RecordType) -> String {
        t.as_str().to_owned()
    }
}

impl TryFrom<String> for RecordType {
    type Error = DnsError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// A Route53 alias: an `A` or `AAAA` record set answered with the addresses of an AWS resource
/// (a load balancer) rather than stored values. Aliases work at the zone apex, where a CNAME
/// cannot live.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AliasTarget {
    /// The hosted zone of the target (the load balancer's canonical hosted zone).
    pub hosted_zone_id: String,
    /// The target's name.
    pub dns_name: DnsName,
    /// Whether Route53 checks the target's health before answering with it.
    pub evaluate_target_health: bool,
}

/// All records of one name and type: what DNS answers as one unit.
///
/// Values are kept canonical (parsed addresses, canonical names, unquoted text), sorted and
/// without duplicates, so two record sets with the same content compare equal whatever the
/// provider's presentation.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RecordSet {
    /// The name.
    pub name: DnsName,
    /// The type.
    #[serde(rename = "type")]
    pub record_type: RecordType,
    /// Time to live in seconds. Cloudflare uses 1 for "automatic". Ignored for aliases.
    pub ttl: u32,
    /// The values, canonical and sorted; empty for an alias.
    pub values: Vec<String>,
    /// Cloudflare's proxy flag; `None` where the provider has no such thing, or (in desired
    /// records) when the config does not say.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub proxied: Option<bool>,
    /// A Route53 alias target instead of values.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub alias: Option<AliasTarget>,
}

impl RecordSet {
    /// A record set with values checked and canonicalised for its type.
    pub fn new<I, S>(
        name: DnsName,
        record_type: RecordType,
        ttl: u32,
        values: I,
    ) -> Result<Self, DnsError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut canonical = BTreeSet::new();
        for value in values {
            canonical.insert(canonical_value(&name, &record_type, value.as_ref())?);
        }
        if canonical.is_empty() {
            return Err(DnsError::InvalidValue {
                name: name.to_string(),
                record_type: record_type.to_string(),
                value: String::new(),
                reason: "a record set needs at least one value".into(),
            });
        }
        if record_type == RecordType::Cname && canonical.len() > 1 {
            return Err(DnsError::InvalidValue {
                name: name.to_string(),
                record_type: record_type.to_string(),
                value: canonical.into_iter().collect::<Vec<_>>().join(", "),
                reason: "a CNAME has exactly one target".into(),
            });
        }
        Ok(RecordSet {
            name,
            record_type,
            ttl,
            values: canonical.into_iter().collect(),
            proxied: None,
            alias: None,
        })
    }

    /// An alias record set (Route53) of type `A` or `AAAA`.
    pub fn alias(name: DnsName, record_type: RecordType, alias: AliasTarget) -> Self {
        RecordSet {
            name,
            record_type,
            ttl: 0,
            values: Vec::new(),
            proxied: None,
            alias: Some(alias),
        }
    }

    /// The same record set with the proxy flag set.
    #[must_use]
    pub fn with_proxied(mut self, proxied: Option<bool>) -> Self {
        self.proxied = proxied;
        self
    }

    /// The key that identifies this record set in a zone.
    pub fn key(&self) -> RecordKey {
        RecordKey {
            name: self.name.clone(),
            record_type: self.record_type.clone(),
        }
    }

    /// Whether `self` (what is in the zone) already gives what `desired` asks for. The TTL is
    /// ignored for aliases; the proxy flag only counts when `desired` says what it wants.
    ///
    /// A record that is (and stays) proxied has Cloudflare's automatic TTL whatever was asked,
    /// so its TTL is ignored too: comparing it is what made external-dns update Cloudflare
    /// records forever (external-dns#1463).
    pub fn satisfies(&self, desired: &RecordSet) -> bool {
        if self.name != desired.name || self.record_type != desired.record_type {
            return false;
        }
        if self.alias != desired.alias {
            return false;
        }
        let proxied = desired.proxied.or(self.proxied).unwrap_or(false);
        if desired.alias.is_none()
            && (self.values != desired.values || (self.ttl != desired.ttl && !proxied))
        {
            return false;
        }
        match desired.proxied {
            Some(wanted) => self.proxied.unwrap_or(false) == wanted,
            None => true,
        }
    }

    /// The values (or the alias target) as one line of text, for reports.
    pub fn describe_values(&self) -> String {
        match &self.alias {
            Some(alias) => format!("ALIAS {} ({})", alias.dns_name, alias.hosted_zone_id),
            None => self
                .values
                .iter()
                .map(|v| {
                    if self.record_type == RecordType::Txt {
                        format!("{v:?}")
                    } else {
                        v.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

impl fmt::Display for RecordSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name, self.record_type)?;
        if self.alias.is_none() {
            write!(f, " ttl={}", self.ttl)?;
        }
        if self.proxied == Some(true) {
            f.write_str(" proxied")?;
        }
        write!(f, " {}", self.describe_values())
    }
}

/// A name and type: what identifies a record set in a zone.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RecordKey {
    /// The name.
    pub name: DnsName,
    /// The type.
    #[serde(rename = "type")]
    pub record_type: RecordType,
}

impl fmt::Display for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name, self.record_type)
    }
}

impl fmt::Debug for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name, self.record_type)
    }
}

/// Checks a value for its type and returns its canonical text.
pub fn canonical_value(
    name: &DnsName,
    record_type: &RecordType,
    value: &str,
) -> Result<String, DnsError> {
    let bad = |reason: String| DnsError::InvalidValue {
        name: name.to_string(),
        record_type: record_type.to_string(),
        value: value.to_owned(),
        reason,
    };
    match record_type {
        RecordType::A => Ipv4Addr::from_str(value.trim())
            .map(|ip| ip.to_string())
            .map_err(|_| bad("not an IPv4 address".into())),
        RecordType::Aaaa => Ipv6Addr::from_str(value.trim())
            .map(|ip| ip.to_string())
            .map_err(|_| bad("not an IPv6 address".into())),
        RecordType::Cname => DnsName::parse(value.trim())
            .map(|n| n.to_string())
            .map_err(|e| bad(e.to_string())),
        RecordType::Txt => Ok(unquote_txt(value)),
        RecordType::Other(_) => Ok(value.trim().to_owned()),
    }
}

/// The text of a TXT value as providers present it: `"a" "b"` (presentation form, with escapes)
/// becomes `ab`; text without surrounding quotes is taken as it is.
pub fn unquote_txt(value: &str) -> String {
    let trimmed = value.trim();
    if !(trimmed.starts_with('"') && trimmed.ends_with('"') && trimmed.len() >= 2) {
        return trimmed.to_owned();
    }
    let mut out = String::new();
    let mut chars = trimmed.chars().peekable();
    let mut in_quotes = false;
    while let Some(c) = chars.next() {
        match (c, in_quotes) {
            ('"', _) => in_quotes = !in_quotes,
            ('\\', true) => {
                // \X or \DDD
                let mut digits = String::new();
                while digits.len() < 3 {
                    match chars.peek() {
                        Some(d) if d.is_ascii_digit() => {
                            digits.push(*d);
                            chars.next();
                        }
                        _ => break,
                    }
                }
                if digits.len() == 3 {
                    if let Ok(code) = digits.parse::<u8>() {
                        out.push(char::from(code));
                    }
                } else if !digits.is_empty() {
                    out.push('\\');
                    out.push_str(&digits);
                } else if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            (c, true) => out.push(c),
            (_, false) => {} // whitespace between character-strings
        }
    }
    out
}

/// A TXT value in presentation form: quoted character-strings of at most 255 bytes each, with
/// `"` and `\` escaped. Route53 wants this form.
pub fn quote_txt(text: &str) -> String {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut len = 0;
    for c in text.chars() {
        let n = c.len_utf8();
        if len + n > 255 {
            parts.push(std::mem::take(&mut current));
            len = 0;
        }
        if c == '"' || c == '\\' {
            current.push('\\');
        }
        current.push(c);
        len += n;
    }
    parts.push(current);
    parts
        .into_iter()
        .map(|p| format!("\"{p}\""))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Splits TXT text into wire character-strings of at most 255 bytes.
pub fn split_txt(text: &str) -> Vec<Vec<u8>> {
    let bytes = text.as_bytes();
    if bytes.is_empty() {
        return vec![Vec::new()];
    }
    bytes.chunks(255).map(<[u8]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> DnsName {
        DnsName::parse(s).unwrap()
    }

    #[test]
    fn values_are_canonical_and_sorted() {
        let rs = RecordSet::new(
            name("a.example.com"),
            RecordType::Aaaa,
            60,
            ["2001:DB8::0:1", "2001:db8::1", "::2"],
        )
        .unwrap();
        assert_eq!(rs.values, vec!["2001:db8::1", "::2"]);
        let rs = RecordSet::new(
            name("a.example.com"),
            RecordType::Cname,
            60,
            ["LB.Example.NET."],
        )
        .unwrap();
        assert_eq!(rs.values, vec!["lb.example.net"]);
        let err =
            RecordSet::new(name("a.example.com"), RecordType::A, 60, ["300.1.1.1"]).unwrap_err();
        assert!(err.to_string().contains("not an IPv4 address"), "{err}");
        assert!(
            RecordSet::new(
                name("a.example.com"),
                RecordType::Cname,
                60,
                ["x.net", "y.net"]
            )
            .is_err()
        );
        assert!(
            RecordSet::new(
                name("a.example.com"),
                RecordType::A,
                60,
                Vec::<String>::new()
            )
            .is_err()
        );
    }

    #[test]
    fn txt_presentation_round_trips() {
        let text = "heritage=external-dns,external-dns/owner=a \"b\"";
        assert_eq!(unquote_txt(&quote_txt(text)), text);
        assert_eq!(unquote_txt("\"abc\" \"def\""), "abcdef");
        assert_eq!(unquote_txt("plain text"), "plain text");
        assert_eq!(unquote_txt("\"a\\059b\""), "a;b");
        let long = "x".repeat(300);
        let quoted = quote_txt(&long);
        assert_eq!(quoted.matches('"').count(), 4);
        assert_eq!(unquote_txt(&quoted), long);
        assert_eq!(split_txt(&long).len(), 2);
    }

    #[test]
    fn satisfies_ignores_what_does_not_matter() {
        let current = RecordSet::new(name("a.example.com"), RecordType::A, 300, ["192.0.2.1"])
            .unwrap()
            .with_proxied(Some(false));
        let desired =
            RecordSet::new(name("a.example.com"), RecordType::A, 300, ["192.0.2.1"]).unwrap();
        assert!(current.satisfies(&desired), "proxied not asked for");
        assert!(!current.satisfies(&desired.clone().with_proxied(Some(true))));
        let mut other_ttl = desired.clone();
        other_ttl.ttl = 60;
        assert!(!current.satisfies(&other_ttl));
    }
}
