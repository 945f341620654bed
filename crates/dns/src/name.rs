//! [`DnsName`]: a validated, canonical (lower-case, no trailing dot) domain name.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::DnsError;

/// The longest name in presentation form without the trailing dot (RFC 1035: 255 octets on the
/// wire, which is 253 characters of text).
pub const MAX_NAME_LEN: usize = 253;
/// The longest label (RFC 1035).
pub const MAX_LABEL_LEN: usize = 63;

/// A domain name: ASCII, lower-case, without the trailing dot, each label 1–63 characters of
/// letters, digits, `-` and `_`, the whole at most 253 characters. A `*` is allowed only as the
/// whole leftmost label (a wildcard). Internationalised names must be given in their `xn--` form.
///
/// Names compare case-insensitively because they are stored lower-case.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DnsName(String);

impl DnsName {
    /// Parses and canonicalises a name; a single trailing dot is accepted and dropped.
    pub fn parse(text: &str) -> Result<Self, DnsError> {
        let bad = |reason: String| DnsError::InvalidName {
            name: text.to_owned(),
            reason,
        };
        let trimmed = text.strip_suffix('.').unwrap_or(text);
        if trimmed.is_empty() {
            return Err(bad("the name is empty".into()));
        }
        if !trimmed.is_ascii() {
            return Err(bad(
                "it has non-ASCII characters; write internationalised names in their `xn--` (punycode) form"
                    .into(),
            ));
        }
        let lower = trimmed.to_ascii_lowercase();
        if lower.len() > MAX_NAME_LEN {
            return Err(bad(format!(
                "it is {} characters long; a name has at most {MAX_NAME_LEN}",
                lower.len()
            )));
        }
        for (i, label) in lower.split('.').enumerate() {
            if label.is_empty() {
                return Err(bad(
                    "it has an empty label (two dots in a row, or a leading dot)".into(),
                ));
            }
            if label.len() > MAX_LABEL_LEN {
                return Err(bad(format!(
                    "label `{label}` is {} characters long; a label has at most {MAX_LABEL_LEN}",
                    label.len()
                )));
            }
            if label == "*" {
                if i != 0 {
                    return Err(bad(
                        "`*` is allowed only as the leftmost label (a wildcard)".into(),
                    ));
                }
                continue;
            }
            if let Some(c) = label
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
            {
                return Err(bad(format!(
                    "label `{label}` has the character {c:?}; labels hold letters, digits, `-` and `_`"
                )));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(bad(format!("label `{label}` starts or ends with `-`")));
            }
        }
        Ok(DnsName(lower))
    }

    /// The name as text, without the trailing dot.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The fully-qualified form, with the trailing dot.
    pub fn fqdn(&self) -> String {
        format!("{}.", self.0)
    }

    /// Whether `self` is `zone` or a name below it.
    pub fn is_in(&self, zone: &DnsName) -> bool {
        self.0 == zone.0
            || (self.0.len() > zone.0.len()
                && self.0.ends_with(zone.0.as_str())
                && self.0.as_bytes()[self.0.len() - zone.0.len() - 1] == b'.')
    }

    /// The part of `self` below `zone` (`"app"` for `app.example.com` in `example.com`), `"@"`
    /// for the apex, or `None` when `self` is not in the zone.
    pub fn relative_to(&self, zone: &DnsName) -> Option<&str> {
        if self.0 == zone.0 {
            Some("@")
        } else if self.is_in(zone) {
            Some(&self.0[..self.0.len() - zone.0.len() - 1])
        } else {
            None
        }
    }

    /// Resolves a name as written in a config file, relative to `zone`: `@` is the apex; a name
    /// with a trailing dot, or one that is the zone or ends in `.zone`, is absolute; a single
    /// label is relative to the zone. Anything else is ambiguous and refused, as is an absolute
    /// name outside the zone.
    pub fn in_zone(text: &str, zone: &DnsName) -> Result<Self, DnsError> {
        let text = text.trim();
        if text == "@" {
            return Ok(zone.clone());
        }
        if let Some(absolute) = text.strip_suffix('.') {
            let name = DnsName::parse(absolute)?;
            return if name.is_in(zone) {
                Ok(name)
            } else {
                Err(DnsError::invalid(format!(
                    "`{text}` is not in zone `{zone}`"
                )))
            };
        }
        let name = DnsName::parse(text)?;
        if name.is_in(zone) {
            return Ok(name);
        }
        if !name.0.contains('.') {
            return DnsName::parse(&format!("{}.{}", name.0, zone.0));
        }
        Err(DnsError::invalid(format!(
            "`{text}` is not in zone `{zone}`: write names in full (`{}.{zone}`), as `@` for the \
             apex, or as a single label relative to the zone",
            name.0
        )))
    }

    /// The leftmost label.
    pub fn first_label(&self) -> &str {
        self.0.split('.').next().unwrap_or(&self.0)
    }

    /// Whether the leftmost label is `*`.
    pub fn is_wildcard(&self) -> bool {
        self.first_label() == "*"
    }
}

impl fmt::Display for DnsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DnsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DnsName({:?})", self.0)
    }
}

impl FromStr for DnsName {
    type Err = DnsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DnsName::parse(s)
    }
}

impl Serialize for DnsName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for DnsName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        DnsName::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> DnsName {
        DnsName::parse(s).unwrap()
    }

    #[test]
    fn canonical_form_is_lower_case_without_trailing_dot() {
        assert_eq!(name("App.Example.COM.").as_str(), "app.example.com");
        assert_eq!(name("app.example.com").fqdn(), "app.example.com.");
        assert_eq!(name("*.example.com").first_label(), "*");
        assert_eq!(
            name("_acme-challenge.example.com").as_str(),
            "_acme-challenge.example.com"
        );
    }

    #[test]
    fn invalid_names_say_why() {
        let cases = [
            ("", "empty"),
            ("a..b", "empty label"),
            ("-a.example.com", "starts or ends"),
            ("a b.example.com", "character ' '"),
            ("a.*.example.com", "leftmost"),
            ("ünï.example.com", "xn--"),
        ];
        for (input, why) in cases {
            let err = DnsName::parse(input).unwrap_err().to_string();
            assert!(err.contains(why), "{input:?}: {err}");
        }
        let long_label = format!("{}.example.com", "a".repeat(64));
        assert!(
            DnsName::parse(&long_label)
                .unwrap_err()
                .to_string()
                .contains("at most 63")
        );
        let long_name = format!("{}example.com", "abcdefghi.".repeat(25));
        assert!(
            DnsName::parse(&long_name)
                .unwrap_err()
                .to_string()
                .contains("at most 253")
        );
    }

    #[test]
    fn zone_membership() {
        let zone = name("example.com");
        assert!(name("example.com").is_in(&zone));
        assert!(name("a.b.example.com").is_in(&zone));
        assert!(!name("badexample.com").is_in(&zone));
        assert!(!name("example.org").is_in(&zone));
        assert_eq!(name("a.b.example.com").relative_to(&zone), Some("a.b"));
        assert_eq!(zone.relative_to(&zone), Some("@"));
        assert_eq!(name("x.org").relative_to(&zone), None);
    }

    #[test]
    fn config_names_resolve_against_the_zone() {
        let zone = name("example.com");
        assert_eq!(DnsName::in_zone("@", &zone).unwrap(), zone);
        assert_eq!(
            DnsName::in_zone("app", &zone).unwrap(),
            name("app.example.com")
        );
        assert_eq!(
            DnsName::in_zone("api.example.com", &zone).unwrap(),
            name("api.example.com")
        );
        assert_eq!(
            DnsName::in_zone("api.example.com.", &zone).unwrap(),
            name("api.example.com")
        );
        assert!(DnsName::in_zone("api.example.org.", &zone).is_err());
        let err = DnsName::in_zone("a.b", &zone).unwrap_err().to_string();
        assert!(err.contains("a.b.example.com"), "{err}");
    }
}
