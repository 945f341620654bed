//! The ownership registry: which records in a zone are ferry's to change.
//!
//! ferry records ownership exactly as external-dns's TXT registry does, so that both tools can
//! manage one zone without fighting: next to each record set it manages, a TXT value
//!
//! ```text
//! heritage=external-dns,external-dns/owner=OWNER,external-dns/resource=ferry/APP/ENV
//! ```
//!
//! named by external-dns's affix mapper: the record type and a dash go in front of the first
//! label (`a-app.example.com` owns `app.example.com A`, `cname-www.example.com` owns
//! `www.example.com CNAME`). Because the type is part of the name, a CNAME and its ownership
//! record never sit at one name, which is what broke the old format (external-dns#262). A
//! `txt_prefix` or `txt_suffix` may be configured, with `%{record_type}` placing the type
//! explicitly, as external-dns's `--txt-prefix`/`--txt-suffix` do.
//!
//! Reading follows external-dns too: a TXT value without `heritage=external-dns` is not an
//! ownership record; the old format (the TXT at the record's own name, without a type) is
//! honoured for every type but AAAA; the old `cname-` record of an alias A record is honoured.
//!
//! One place where external-dns has no answer is the zone apex without a prefix: its mapper
//! names the ownership record of `example.com` `a-example.com`, outside the zone, where no
//! provider will store it. For such names ferry writes the old format (a TXT value at the apex
//! itself, beside SPF and verification values, which ferry leaves alone), which external-dns
//! reads for A and CNAME records.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::DnsError;
use crate::name::DnsName;
use crate::record::RecordType;

/// The heritage value of every ownership record.
pub const HERITAGE: &str = "external-dns";
/// The label holding the owner id.
pub const OWNER_LABEL: &str = "owner";
/// The label naming what asked for the record.
pub const RESOURCE_LABEL: &str = "resource";

const RECORD_TYPE_TEMPLATE: &str = "%{record_type}";
/// The types external-dns's mapper recognises in ownership names, in its order.
const MAPPER_TYPES: [&str; 10] = [
    "A", "AAAA", "CNAME", "NS", "MX", "PTR", "SRV", "NAPTR", "TXT", "DNAME",
];

/// The labels of an ownership record (`owner`, `resource`, and any others external-dns wrote).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Labels(BTreeMap<String, String>);

impl Labels {
    /// Labels with an owner and a resource.
    pub fn new(owner: &OwnerId, resource: &str) -> Self {
        let mut map = BTreeMap::new();
        map.insert(OWNER_LABEL.to_owned(), owner.as_str().to_owned());
        map.insert(RESOURCE_LABEL.to_owned(), resource.to_owned());
        Labels(map)
    }

    /// Parses a TXT value; `None` unless it carries `heritage=external-dns` (external-dns's
    /// `NewLabelsFromStringPlain`: surrounding quotes dropped, tokens that are not `k=v` skipped,
    /// any other heritage refused).
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim().trim_matches('"');
        let mut labels = BTreeMap::new();
        let mut heritage = false;
        for token in text.split(',') {
            let mut parts = token.split('=');
            let (Some(key), Some(value), None) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            if key == "heritage" {
                if value != HERITAGE {
                    return None;
                }
                heritage = true;
                continue;
            }
            if let Some(label) = key.strip_prefix("external-dns/") {
                labels.insert(label.to_owned(), value.to_owned());
            }
        }
        heritage.then_some(Labels(labels))
    }

    /// The TXT value, as external-dns serialises it (without the quotes, which are the
    /// provider's presentation).
    pub fn serialize(&self) -> String {
        let mut out = format!("heritage={HERITAGE}");
        for (key, value) in &self.0 {
            out.push_str(&format!(",{HERITAGE}/{key}={value}"));
        }
        out
    }

    /// The owner id, if any.
    pub fn owner(&self) -> Option<&str> {
        self.0.get(OWNER_LABEL).map(String::as_str)
    }

    /// A label's value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
}

/// An owner id: who claims a record. external-dns's `--txt-owner-id`; in ferry.toml
/// `[env.X.dns] owner`, by default the app's name, so that every environment of an app may
/// switch the app's names between them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct OwnerId(String);

impl OwnerId {
    /// Checks an owner id: 1–100 characters of letters, digits and `.-_:/` (the TXT format has
    /// no escaping, so `,`, `=`, quotes and spaces would corrupt it).
    pub fn new(id: impl Into<String>) -> Result<Self, DnsError> {
        let id = id.into();
        check_label_value("owner id", &id)?;
        Ok(OwnerId(id))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for OwnerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks a value that goes into an ownership record.
pub fn check_label_value(what: &str, value: &str) -> Result<(), DnsError> {
    if value.is_empty() || value.len() > 100 {
        return Err(DnsError::invalid(format!(
            "the {what} `{value}` must be 1 to 100 characters long"
        )));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || ".-_:/".contains(*c)))
    {
        return Err(DnsError::invalid(format!(
            "the {what} `{value}` has the character {c:?}; use letters, digits and . - _ : /"
        )));
    }
    Ok(())
}

/// How ownership records are named: external-dns's affix name mapper.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TxtNaming {
    /// external-dns's `--txt-prefix` (may contain `%{record_type}`).
    #[serde(default)]
    pub prefix: String,
    /// external-dns's `--txt-suffix` (may contain `%{record_type}`); exclusive with `prefix`.
    #[serde(default)]
    pub suffix: String,
    /// external-dns's `--txt-wildcard-replacement`: what replaces a leading `*` in the names of
    /// ownership records of wildcard records.
    #[serde(default)]
    pub wildcard_replacement: String,
}

impl TxtNaming {
    /// Checks the affixes (lower-cased, as external-dns does).
    pub fn new(
        prefix: impl Into<String>,
        suffix: impl Into<String>,
        wildcard_replacement: impl Into<String>,
    ) -> Result<Self, DnsError> {
        let naming = TxtNaming {
            prefix: prefix.into().to_ascii_lowercase(),
            suffix: suffix.into().to_ascii_lowercase(),
            wildcard_replacement: wildcard_replacement.into().to_ascii_lowercase(),
        };
        naming.validate()?;
        Ok(naming)
    }

    /// Checks that prefix and suffix are not both set.
    pub fn validate(&self) -> Result<(), DnsError> {
        if !self.prefix.is_empty() && !self.suffix.is_empty() {
            return Err(DnsError::invalid(
                "txt_prefix and txt_suffix are mutually exclusive (as in external-dns)",
            ));
        }
        Ok(())
    }

    fn type_in_affix(&self) -> bool {
        self.prefix.contains(RECORD_TYPE_TEMPLATE) || self.suffix.contains(RECORD_TYPE_TEMPLATE)
    }

    fn is_suffix(&self) -> bool {
        self.prefix.is_empty() && !self.suffix.is_empty()
    }

    /// external-dns's `ToTXTName` with zone awareness: the name of the ownership record of
    /// `name`/`record_type` in `zone`. `None` when that name would not be a valid name inside the
    /// zone (the apex without a prefix), where ferry uses the old format (see the module docs).
    pub fn txt_name(
        &self,
        zone: &DnsName,
        name: &DnsName,
        record_type: &RecordType,
    ) -> Option<DnsName> {
        let rtype = record_type.as_str().to_ascii_lowercase();
        let prefix = self.prefix.replace(RECORD_TYPE_TEMPLATE, &rtype);
        let suffix = self.suffix.replace(RECORD_TYPE_TEMPLATE, &rtype);
        // As external-dns: the affixes go around the first label (`www.app.example.com` with
        // suffix `-o` is `a-www-o.app.example.com`), whose `*` the wildcard replacement takes.
        let (mut host, domain) = match name.as_str().split_once('.') {
            Some((h, d)) => (h.to_owned(), d.to_owned()),
            None => (name.as_str().to_owned(), String::new()),
        };
        if !self.wildcard_replacement.is_empty() && host == "*" {
            host.clone_from(&self.wildcard_replacement);
        }
        if !self.type_in_affix() {
            host = format!("{rtype}-{host}");
        }
        let text = if domain.is_empty() {
            format!("{prefix}{host}{suffix}")
        } else {
            format!("{prefix}{host}{suffix}.{domain}")
        };
        DnsName::parse(&text).ok().filter(|n| n.is_in(zone))
    }

    /// external-dns's `ToEndpointName`: which name and type an ownership record at `txt_name`
    /// is about. The type is `None` for the old format.
    pub fn endpoint_of(
        &self,
        zone: &DnsName,
        txt_name: &DnsName,
    ) -> Option<(DnsName, Option<RecordType>)> {
        let lower = txt_name.as_str();
        let (name, rtype) = if !self.is_suffix() {
            self.drop_affix(lower)?
        } else {
            let dots = self.suffix.matches('.').count();
            let parts: Vec<&str> = lower.splitn(2 + dots, '.').collect();
            if parts.len() <= dots {
                return None;
            }
            let (rest, rtype) = self.drop_affix(&parts[..=dots].join("."))?;
            match parts.get(1 + dots) {
                Some(domain) => (format!("{rest}.{domain}"), rtype),
                None => (rest, rtype),
            }
        };
        let name = DnsName::parse(&name).ok()?;
        let name = match (&self.wildcard_replacement, name.relative_to(zone)) {
            (w, Some(rel)) if !w.is_empty() && rel.split('.').next() == Some(w.as_str()) => {
                let rest = name.as_str().split_once('.').map_or("", |(_, r)| r);
                DnsName::parse(&format!("*.{rest}")).ok()?
            }
            _ => name,
        };
        Some((name, rtype.and_then(|t| t.parse().ok())))
    }

    fn drop_affix(&self, name: &str) -> Option<(String, Option<String>)> {
        let mut prefix = self.prefix.clone();
        let mut suffix = self.suffix.clone();
        if self.type_in_affix() {
            for t in MAPPER_TYPES {
                let lower = t.to_ascii_lowercase();
                let i_prefix = prefix.replace(RECORD_TYPE_TEMPLATE, &lower);
                let i_suffix = suffix.replace(RECORD_TYPE_TEMPLATE, &lower);
                if !self.is_suffix() {
                    if let Some(rest) = name.strip_prefix(&i_prefix) {
                        return Some((rest.to_owned(), Some(t.to_owned())));
                    }
                } else if let Some(rest) = name.strip_suffix(&i_suffix) {
                    return Some((rest.to_owned(), Some(t.to_owned())));
                }
            }
            prefix = prefix.replace(RECORD_TYPE_TEMPLATE, "");
            suffix = suffix.replace(RECORD_TYPE_TEMPLATE, "");
        }
        if !self.is_suffix() {
            name.strip_prefix(&prefix).map(type_in_default_position)
        } else {
            name.strip_suffix(&suffix).map(type_in_default_position)
        }
    }
}

/// external-dns's `extractRecordTypeDefaultPosition`.
fn type_in_default_position(name: &str) -> (String, Option<String>) {
    let first = name.split('-').next().unwrap_or("");
    for t in MAPPER_TYPES {
        if first == t.to_ascii_lowercase() {
            let rest = name.strip_prefix(&format!("{first}-")).unwrap_or(name);
            return (rest.to_owned(), Some(t.to_owned()));
        }
    }
    (name.to_owned(), None)
}

/// Who owns a record set, as read from the zone's TXT records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The owner id in the ownership record (`None` when the record has heritage but no owner).
    pub owner: Option<String>,
    /// The `resource` label: what asked for the record (`ferry/APP/ENV` for ferry's).
    pub resource: Option<String>,
    /// Where the ownership record is.
    pub txt_name: DnsName,
    /// Its value.
    pub value: String,
}

/// The ownership claims found in a zone, by the name and type they are about.
#[derive(Clone, Debug, Default)]
pub struct Claims {
    typed: BTreeMap<(DnsName, RecordType), Vec<Claim>>,
    untyped: BTreeMap<DnsName, Vec<Claim>>,
}

impl Claims {
    /// Reads the claims from a zone's TXT record sets.
    pub fn read<'a>(
        naming: &TxtNaming,
        zone: &DnsName,
        txt_sets: impl IntoIterator<Item = &'a crate::record::RecordSet>,
    ) -> Self {
        let mut claims = Claims::default();
        for set in txt_sets {
            if set.record_type != RecordType::Txt {
                continue;
            }
            for value in &set.values {
                let Some(labels) = Labels::parse(value) else {
                    continue;
                };
                let Some((name, rtype)) = naming.endpoint_of(zone, &set.name) else {
                    continue;
                };
                let claim = Claim {
                    owner: labels.owner().map(str::to_owned),
                    resource: labels.get(RESOURCE_LABEL).map(str::to_owned),
                    txt_name: set.name.clone(),
                    value: value.clone(),
                };
                match rtype {
                    Some(t) => claims.typed.entry((name, t)).or_default().push(claim),
                    None => claims.untyped.entry(name).or_default().push(claim),
                }
            }
        }
        claims
    }

    /// The claims on a record set (usually one; more when several owners wrote ownership
    /// values at one name), following external-dns's precedence: the typed record; for an
    /// alias A record, the old `cname-` record; then the old untyped format, except for AAAA
    /// (where ferry also accepts it when no typed name fits in the zone, see the module docs).
    pub fn claims(
        &self,
        naming: &TxtNaming,
        zone: &DnsName,
        name: &DnsName,
        record_type: &RecordType,
        is_alias: bool,
    ) -> &[Claim] {
        if let Some(c) = self.typed.get(&(name.clone(), record_type.clone())) {
            return c;
        }
        if is_alias
            && *record_type == RecordType::A
            && let Some(c) = self.typed.get(&(name.clone(), RecordType::Cname))
        {
            return c;
        }
        if (*record_type != RecordType::Aaaa || naming.txt_name(zone, name, record_type).is_none())
            && let Some(c) = self.untyped.get(name)
        {
            return c;
        }
        &[]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> DnsName {
        DnsName::parse(s).unwrap()
    }

    #[test]
    fn labels_round_trip_in_external_dns_format() {
        let labels = Labels::new(&OwnerId::new("shop").unwrap(), "ferry/shop/prod");
        let text = labels.serialize();
        assert_eq!(
            text,
            "heritage=external-dns,external-dns/owner=shop,external-dns/resource=ferry/shop/prod"
        );
        assert_eq!(Labels::parse(&text), Some(labels.clone()));
        assert_eq!(Labels::parse(&format!("\"{text}\"")), Some(labels));
        // What external-dns itself writes for an ingress.
        let theirs = Labels::parse("\"heritage=external-dns,external-dns/owner=default,external-dns/resource=ingress/default/web\"").unwrap();
        assert_eq!(theirs.owner(), Some("default"));
        assert_eq!(theirs.get("resource"), Some("ingress/default/web"));
        assert_eq!(Labels::parse("v=spf1 include:_spf.google.com ~all"), None);
        assert_eq!(Labels::parse("heritage=mate,external-dns/owner=x"), None);
    }

    #[test]
    fn owner_ids_cannot_break_the_format() {
        assert!(OwnerId::new("shop-prod").is_ok());
        for bad in ["", "a,b", "a=b", "a b", "a\"b"] {
            assert!(OwnerId::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn default_naming_matches_external_dns() {
        let zone = name("example.com");
        let n = TxtNaming::default();
        let txt =
            |host: &str, t: RecordType| n.txt_name(&zone, &name(host), &t).map(|x| x.to_string());
        assert_eq!(
            txt("app.example.com", RecordType::A).as_deref(),
            Some("a-app.example.com")
        );
        assert_eq!(
            txt("www.example.com", RecordType::Cname).as_deref(),
            Some("cname-www.example.com")
        );
        assert_eq!(
            txt("a.b.example.com", RecordType::Aaaa).as_deref(),
            Some("aaaa-a.b.example.com")
        );
        // The apex has no in-zone name without a prefix.
        assert_eq!(txt("example.com", RecordType::A), None);
        assert_eq!(
            n.endpoint_of(&zone, &name("a-app.example.com")),
            Some((name("app.example.com"), Some(RecordType::A)))
        );
        assert_eq!(
            n.endpoint_of(&zone, &name("cname-www.example.com")),
            Some((name("www.example.com"), Some(RecordType::Cname)))
        );
        // The old format: the record's own name, no type.
        assert_eq!(
            n.endpoint_of(&zone, &name("app.example.com")),
            Some((name("app.example.com"), None))
        );
    }

    #[test]
    fn prefixes_and_suffixes_match_external_dns() {
        let zone = name("example.com");
        let p = TxtNaming::new("%{record_type}-owner.", "", "").unwrap();
        assert_eq!(
            p.txt_name(&zone, &name("example.com"), &RecordType::A)
                .unwrap()
                .as_str(),
            "a-owner.example.com"
        );
        assert_eq!(
            p.txt_name(&zone, &name("app.example.com"), &RecordType::Cname)
                .unwrap()
                .as_str(),
            "cname-owner.app.example.com"
        );
        assert_eq!(
            p.endpoint_of(&zone, &name("cname-owner.app.example.com")),
            Some((name("app.example.com"), Some(RecordType::Cname)))
        );
        let p = TxtNaming::new("txt.", "", "").unwrap();
        assert_eq!(
            p.txt_name(&zone, &name("app.example.com"), &RecordType::A)
                .unwrap()
                .as_str(),
            "txt.a-app.example.com"
        );
        assert_eq!(
            p.endpoint_of(&zone, &name("txt.a-app.example.com")),
            Some((name("app.example.com"), Some(RecordType::A)))
        );
        let s = TxtNaming::new("", "-%{record_type}", "").unwrap();
        assert_eq!(
            s.txt_name(&zone, &name("app.example.com"), &RecordType::A)
                .unwrap()
                .as_str(),
            "app-a.example.com"
        );
        assert_eq!(
            s.endpoint_of(&zone, &name("app-a.example.com")),
            Some((name("app.example.com"), Some(RecordType::A)))
        );
        let w = TxtNaming::new("", "", "wild").unwrap();
        assert_eq!(
            w.txt_name(&zone, &name("*.example.com"), &RecordType::A)
                .unwrap()
                .as_str(),
            "a-wild.example.com"
        );
        assert_eq!(
            w.endpoint_of(&zone, &name("a-wild.example.com")),
            Some((name("*.example.com"), Some(RecordType::A)))
        );
        assert!(TxtNaming::new("p", "s", "").is_err());
    }

    #[test]
    fn affixes_go_around_the_first_label_as_external_dns_puts_them() {
        let zone = name("example.com");
        // external-dns's ToTXTName splits at the first dot, whatever the zone.
        let s = TxtNaming::new("", "-own", "").unwrap();
        let txt = s
            .txt_name(&zone, &name("www.app.example.com"), &RecordType::A)
            .unwrap();
        assert_eq!(txt.as_str(), "a-www-own.app.example.com");
        assert_eq!(
            s.endpoint_of(&zone, &txt),
            Some((name("www.app.example.com"), Some(RecordType::A)))
        );
        let p = TxtNaming::new("own-", "", "").unwrap();
        let txt = p
            .txt_name(&zone, &name("www.app.example.com"), &RecordType::Cname)
            .unwrap();
        assert_eq!(txt.as_str(), "own-cname-www.app.example.com");
        assert_eq!(
            p.endpoint_of(&zone, &txt),
            Some((name("www.app.example.com"), Some(RecordType::Cname)))
        );
        // A wildcard below a subdomain takes the replacement too.
        let w = TxtNaming::new("", "", "wild").unwrap();
        let txt = w
            .txt_name(&zone, &name("*.app.example.com"), &RecordType::A)
            .unwrap();
        assert_eq!(txt.as_str(), "a-wild.app.example.com");
        assert_eq!(
            w.endpoint_of(&zone, &txt),
            Some((name("*.app.example.com"), Some(RecordType::A)))
        );
        // Without one, a wildcard's ownership record cannot be named (`a-*` is not a label):
        // the old format, at the wildcard itself.
        assert_eq!(
            TxtNaming::default().txt_name(&zone, &name("*.app.example.com"), &RecordType::A),
            None
        );
    }
}
