//! Label selectors (the `labelSelector` query syntax and `metav1.LabelSelector` objects) and
//! field selectors.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::store::strings;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

/// A parsed label selector. The empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LabelSelector {
    requirements: Vec<Requirement>,
    /// A `metav1.LabelSelector` with an operator no object can satisfy (never matches).
    nothing: bool,
}

impl LabelSelector {
    /// Parses `a=b,c!=d,e in (x,y),f notin (z),g,!h`.
    pub(crate) fn parse(text: &str) -> Result<LabelSelector, String> {
        let mut requirements = Vec::new();
        for term in split_terms(text) {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            requirements.push(parse_term(term)?);
        }
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// A `metav1.LabelSelector` object (`matchLabels`, `matchExpressions`). `None` (no selector)
    /// matches nothing, as for workload selectors.
    pub(crate) fn from_object(selector: &Value) -> Result<LabelSelector, String> {
        let mut requirements = Vec::new();
        if let Some(labels) = selector["matchLabels"].as_object() {
            for (k, v) in labels {
                requirements.push(Requirement::Equals(
                    k.clone(),
                    v.as_str().unwrap_or("").to_owned(),
                ));
            }
        }
        if let Some(exprs) = selector["matchExpressions"].as_array() {
            for expr in exprs {
                let key = expr["key"].as_str().unwrap_or("").to_owned();
                let values = strings(&expr["values"]);
                requirements.push(match expr["operator"].as_str().unwrap_or("") {
                    "In" => Requirement::In(key, values),
                    "NotIn" => Requirement::NotIn(key, values),
                    "Exists" => Requirement::Exists(key),
                    "DoesNotExist" => Requirement::DoesNotExist(key),
                    other => {
                        return Err(format!("{other:?} is not a valid label selector operator"));
                    }
                });
            }
        }
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// A selector that matches nothing.
    pub(crate) fn nothing() -> LabelSelector {
        LabelSelector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    pub(crate) fn matches_labels(&self, labels: &BTreeMap<String, String>) -> bool {
        if self.nothing {
            return false;
        }
        self.requirements.iter().all(|r| match r {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::DoesNotExist(k) => !labels.contains_key(k),
        })
    }

    /// Whether an object's `metadata.labels` match.
    pub(crate) fn matches(&self, object: &Value) -> bool {
        self.matches_labels(&labels_of(object))
    }

    /// The selector as query text (for `Scale.status.selector` and events).
    pub(crate) fn to_query(&self) -> String {
        let mut parts: Vec<String> = self
            .requirements
            .iter()
            .map(|r| match r {
                Requirement::Equals(k, v) => format!("{k}={v}"),
                Requirement::NotEquals(k, v) => format!("{k}!={v}"),
                Requirement::In(k, vs) => format!("{k} in ({})", vs.join(",")),
                Requirement::NotIn(k, vs) => format!("{k} notin ({})", vs.join(",")),
                Requirement::Exists(k) => k.clone(),
                Requirement::DoesNotExist(k) => format!("!{k}"),
            })
            .collect();
        parts.sort();
        parts.join(",")
    }
}

pub(crate) fn labels_of(object: &Value) -> BTreeMap<String, String> {
    object["metadata"]["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// Splits on commas outside parentheses.
fn split_terms(text: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                terms.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&text[start..]);
    terms
}

fn parse_set(text: &str) -> Result<Vec<String>, String> {
    let inner = text
        .trim()
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(|| format!("expected a parenthesised set of values, found {text:?}"))?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(check_value)
        .collect()
}

/// A label key, checked as the API server checks it (a qualified name).
fn check_key(key: &str) -> Result<String, String> {
    let key = key.trim();
    if key.is_empty() {
        return Err("a label key is required".to_owned());
    }
    if let Some(message) = crate::validate::qualified_name_error(key) {
        return Err(format!("key: Invalid value: {key:?}: {message}"));
    }
    Ok(key.to_owned())
}

/// A label value: empty, or a qualified name part.
fn check_value(value: &str) -> Result<String, String> {
    let value = value.trim();
    if !value.is_empty() && !crate::validate::is_qualified_name_part(value) {
        return Err(format!(
            "values[0]: Invalid value: {value:?}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
        ));
    }
    Ok(value.to_owned())
}

fn parse_term(term: &str) -> Result<Requirement, String> {
    if let Some(key) = term.strip_prefix('!') {
        return Ok(Requirement::DoesNotExist(check_key(key)?));
    }
    if let Some((key, value)) = term.split_once("!=") {
        return Ok(Requirement::NotEquals(check_key(key)?, check_value(value)?));
    }
    if let Some((key, value)) = term.split_once("==") {
        return Ok(Requirement::Equals(check_key(key)?, check_value(value)?));
    }
    if let Some((key, value)) = term.split_once('=') {
        return Ok(Requirement::Equals(check_key(key)?, check_value(value)?));
    }
    let words: Vec<&str> = term.splitn(2, char::is_whitespace).collect();
    if words.len() == 2 {
        let rest = words[1].trim_start();
        if let Some(set) = rest.strip_prefix("notin") {
            return Ok(Requirement::NotIn(check_key(words[0])?, parse_set(set)?));
        }
        if let Some(set) = rest.strip_prefix("in") {
            return Ok(Requirement::In(check_key(words[0])?, parse_set(set)?));
        }
        return Err(format!("unable to parse requirement: {term:?}"));
    }
    Ok(Requirement::Exists(check_key(term)?))
}

/// A parsed field selector: `metadata.name=x,status.phase!=Running`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldSelector {
    terms: Vec<(String, bool, String)>,
}

impl FieldSelector {
    pub(crate) fn parse(text: &str) -> Result<FieldSelector, String> {
        let mut terms = Vec::new();
        for term in text.split(',') {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            let (field, equal, value) = if let Some((f, v)) = term.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = term.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = term.split_once('=') {
                (f, true, v)
            } else {
                return Err(format!(
                    "invalid selector: {term:?}; can't understand {term:?}"
                ));
            };
            terms.push((field.trim().to_owned(), equal, value.trim().to_owned()));
        }
        Ok(FieldSelector { terms })
    }

    /// Checks every field against what the type lets a field selector name.
    pub(crate) fn check(&self, rt: &crate::resources::ResourceType) -> Result<(), String> {
        match self
            .terms
            .iter()
            .find(|(field, _, _)| !rt.selectable(field))
        {
            Some((field, _, _)) => Err(format!("field label not supported: {field}")),
            None => Ok(()),
        }
    }

    /// Fields are looked up by their dotted path in the object; a missing field is the empty
    /// string (as the API server's field label conversions do for unset values).
    pub(crate) fn matches(&self, object: &Value) -> bool {
        self.terms.iter().all(|(field, equal, value)| {
            let mut node = object;
            for part in field.split('.') {
                node = &node[part];
            }
            let actual = match node {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => n.to_string(),
                other => other.to_string(),
            };
            (actual == *value) == *equal
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn parses_every_operator() {
        let s = LabelSelector::parse(
            "app=web, tier!=db,env in (dev, prod),zone notin (x),team,!legacy",
        )
        .unwrap();
        assert!(s.matches_labels(&labels(&[("app", "web"), ("env", "dev"), ("team", "a")])));
        assert!(!s.matches_labels(&labels(&[
            ("app", "web"),
            ("env", "dev"),
            ("team", "a"),
            ("legacy", "1")
        ])));
        assert!(!s.matches_labels(&labels(&[("app", "web"), ("env", "qa"), ("team", "a")])));
        assert!(!s.matches_labels(&labels(&[("app", "web"), ("env", "dev")])));
        assert!(
            LabelSelector::parse("")
                .unwrap()
                .matches_labels(&labels(&[]))
        );
        assert!(LabelSelector::parse("a in b").is_err());
        assert!(LabelSelector::parse("example.com/tier=front_1.x").is_ok());
    }

    #[test]
    fn label_keys_and_values_are_checked() {
        for bad in [
            "!!bad",
            "a=b=c",
            "A B=x",
            "a in (b c)",
            "a!=-x",
            "/a",
            "a/b/c",
        ] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad}");
        }
        assert!(
            LabelSelector::parse("a=b=c")
                .unwrap_err()
                .contains("\"b=c\"")
        );
    }

    #[test]
    fn object_selectors() {
        let s = LabelSelector::from_object(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe"]}]
        }))
        .unwrap();
        assert!(s.matches(&json!({"metadata": {"labels": {"app": "web", "tier": "fe"}}})));
        assert!(!s.matches(&json!({"metadata": {"labels": {"app": "web"}}})));
        assert_eq!(s.to_query(), "app=web,tier in (fe)");
    }

    #[test]
    fn field_selectors_follow_paths() {
        let f =
            FieldSelector::parse("metadata.name=x,involvedObject.kind=Pod,status.phase!=Failed")
                .unwrap();
        assert!(f.matches(&json!({"metadata": {"name": "x"}, "involvedObject": {"kind": "Pod"}})));
        assert!(!f.matches(&json!({"metadata": {"name": "x"}, "involvedObject": {"kind": "Pod"}, "status": {"phase": "Failed"}})));
        assert!(FieldSelector::parse("nonsense").is_err());
    }

    #[test]
    fn field_selectors_name_only_supported_fields() {
        use crate::resources::{Builtin, Registry};
        let registry = Registry::builtin();
        let pods = registry.all().find(|rt| rt.is(Builtin::Pod)).unwrap();
        let maps = registry.all().find(|rt| rt.is(Builtin::ConfigMap)).unwrap();
        let ok =
            FieldSelector::parse("metadata.name=x,spec.nodeName=n,status.phase!=Failed").unwrap();
        assert_eq!(ok.check(pods), Ok(()));
        assert_eq!(
            ok.check(maps),
            Err("field label not supported: spec.nodeName".to_owned())
        );
        let bogus = FieldSelector::parse("bogus.field=1").unwrap();
        assert!(bogus.check(pods).is_err());
    }
}
