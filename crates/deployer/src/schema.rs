//! Offline schema checks: each object of a built-in kind is read into the Kubernetes type
//! k8s-openapi generated for the API version it was built for (`v1_33`), as kube-apiserver
//! decodes it under `fieldValidation=Strict`. Unknown fields (a `readinessProbe` indented one
//! level too far) and values of the wrong type are found without a cluster, at `file:line:column` where the source is a YAML or JSON file.
//!
//! Written here rather than taken from a crate: kubeconform and kubeval are Go binaries that
//! download schemas at run time; k8s-openapi's types *are* the schema, and `serde_ignored`
//! (unknown keys) plus `serde_path_to_error` (where a value failed) turn a typed decode into
//! the findings. k8s-openapi defaults a missing required field while decoding, so required
//! fields come from its JSON schemas instead: `schema/required-fields-1.33.json` holds, for
//! each kind, the `required` lists of its types and the references that reach them, generated
//! by `scripts/schema/generate.sh` (k8s-openapi's `schemars` feature, which ferry's own build
//! does not pay for). Custom resources and kinds outside the table are left to the server's
//! dry-run, which judges them with their CRD's schema.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::apply::FieldValidation;
use crate::manifest::Manifest;
use crate::validate::Problem;

include!("schema_kinds.rs");

/// The Kubernetes version whose schema the checks use (k8s-openapi's `v1_33` feature).
pub const KUBERNETES_VERSION: &str = "1.33";

/// One thing the schema says is wrong with an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The field, as kube-apiserver names it (`spec.template.spec.containers[0].image`).
    pub field: String,
    /// What is wrong.
    pub kind: FindingKind,
}

/// What a [`Finding`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FindingKind {
    /// The type has no such field: the server drops it (or refuses it under Strict).
    Unknown,
    /// The value cannot be decoded (a wrong type).
    Invalid(String),
    /// The schema requires the field and the object lacks it.
    Missing,
}

/// Decodes `object` as `T`, collecting unknown fields and the first decode error.
fn typed<T: DeserializeOwned>(object: &Value) -> Vec<Finding> {
    let mut unknown = Vec::new();
    let mut track = serde_path_to_error::Track::new();
    let de = serde_path_to_error::Deserializer::new(object, &mut track);
    let result: Result<T, _> = serde_ignored::deserialize(de, |path| {
        unknown.push(Finding {
            field: ignored_path(&path),
            kind: FindingKind::Unknown,
        });
    });
    if let Err(e) = result {
        let path = track.path().to_string();
        unknown.push(Finding {
            field: if path == "." { String::new() } else { path },
            kind: FindingKind::Invalid(e.to_string()),
        });
    }
    unknown
}

fn ignored_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", ignored_path(parent)),
        Path::Map { parent, key } => {
            let p = ignored_path(parent);
            if p.is_empty() {
                key.clone()
            } else {
                format!("{p}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => ignored_path(parent),
    }
}

/// The required fields of the built-in kinds (see the module docs).
fn required_table() -> &'static Value {
    static TABLE: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        serde_json::from_str(include_str!("../schema/required-fields-1.33.json"))
            .unwrap_or(Value::Null)
    })
}

/// The fields `object` lacks that its kind's schema requires (`spec.template.spec.containers`,
/// `spec.ports[0].port`, `roleRef`), outside `metadata` and `status`.
fn missing_required(object: &Value, api_version: &str, kind: &str) -> Vec<Finding> {
    let table = required_table();
    let Some(root) = table
        .get("roots")
        .and_then(|r| r.get(format!("{api_version}/{kind}")))
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    walk_required(object, root, &table["defs"], "", &mut out, 0);
    out
}

fn walk_required(
    value: &Value,
    schema: &Value,
    defs: &Value,
    path: &str,
    out: &mut Vec<Finding>,
    depth: usize,
) {
    if depth > 64 {
        return;
    }
    let mut schema = schema;
    for _ in 0..8 {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => match defs.get(r) {
                Some(d) => schema = d,
                None => return,
            },
            None => break,
        }
    }
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    if let Value::Object(map) = value {
        for r in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            // metadata has its own checks; status is the server's.
            if path.is_empty() && matches!(r, "metadata" | "status") {
                continue;
            }
            if !map.contains_key(r) {
                out.push(Finding {
                    field: join(r),
                    kind: FindingKind::Missing,
                });
            }
        }
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for (k, sub) in props {
                if path.is_empty() && k == "status" {
                    continue;
                }
                if let Some(v) = map.get(k) {
                    walk_required(v, sub, defs, &join(k), out, depth + 1);
                }
            }
        }
        if let Some(sub) = schema.get("additionalProperties") {
            for (k, v) in map {
                walk_required(v, sub, defs, &join(k), out, depth + 1);
            }
        }
    }
    if let (Value::Array(items), Some(sub)) = (value, schema.get("items")) {
        for (i, v) in items.iter().enumerate() {
            walk_required(v, sub, defs, &format!("{path}[{i}]"), out, depth + 1);
        }
    }
}

/// The schema findings of one object; empty for kinds outside the table (CRDs, kinds of other
/// versions), which the server's dry-run judges.
pub fn check(object: &Value) -> Vec<Finding> {
    let mut out = typed_findings(object);
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    out.extend(missing_required(object, api_version, kind));
    out
}

fn typed_findings(object: &Value) -> Vec<Finding> {
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    macro_rules! table {
        ($( $av:literal, $k:literal => $t:ty; )*) => {
            match (api_version, kind) {
                $( ($av, $k) => typed::<$t>(object), )*
                _ => Vec::new(),
            }
        };
    }
    for_each_kind!(table)
}

/// The schema problems of every manifest, located in their source files where `source_text`
/// gives the file's text. Unknown fields follow `validation`: errors under Strict, nothing
/// under Warn and Ignore (the server's warning says it then); other findings are always
/// problems.
pub fn problems(
    manifests: &[Manifest],
    validation: FieldValidation,
    source_text: &dyn Fn(&std::path::Path) -> Option<String>,
    known: &[Problem],
) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut texts: std::collections::BTreeMap<std::path::PathBuf, Option<String>> =
        std::collections::BTreeMap::new();
    for m in manifests {
        let object = m.describe_short();
        // A missing field the offline checks already named (`containers`, a port's `port`)
        // is one problem, not two.
        let named = |field: &str| {
            let key = field.rsplit(['.', '[']).next().unwrap_or(field);
            known.iter().any(|p| {
                p.object == object
                    && (p.message.contains(&format!("`{key}`"))
                        || p.message.contains(&format!(".{key}`")))
            })
        };
        let findings: Vec<Finding> = check(&m.object)
            .into_iter()
            .filter(|f| validation == FieldValidation::Strict || f.kind != FindingKind::Unknown)
            .filter(|f| f.kind != FindingKind::Missing || !named(&f.field))
            .collect();
        if findings.is_empty() {
            continue;
        }
        let text = if m.source.generator.is_none() {
            texts
                .entry(m.source.file.clone())
                .or_insert_with(|| source_text(&m.source.file))
                .as_deref()
        } else {
            None
        };
        for f in findings {
            // A missing field is located at its parent.
            let place = match f.kind {
                FindingKind::Missing => parent_of(&f.field),
                _ => f.field.as_str(),
            };
            let at = match text.and_then(|t| locate(t, m.source.doc.max(1), place)) {
                Some((line, col)) => format!("{}:{line}:{col}", m.source.file.display()),
                None => m.source.to_string(),
            };
            let message = match &f.kind {
                FindingKind::Unknown => format!(
                    "unknown field \"{}\" ({} {} has no such field in the Kubernetes {KUBERNETES_VERSION} schema; is it indented at the wrong level?)",
                    f.field,
                    m.api_version(),
                    m.kind(),
                ),
                FindingKind::Missing => format!(
                    "field \"{}\": Required value ({} {} requires it in the Kubernetes {KUBERNETES_VERSION} schema)",
                    f.field,
                    m.api_version(),
                    m.kind(),
                ),
                FindingKind::Invalid(e) if f.field.is_empty() => {
                    format!("does not match its schema: {e}")
                }
                FindingKind::Invalid(e) => format!("field \"{}\": {e}", f.field),
            };
            out.push(Problem {
                at,
                object: m.describe_short(),
                message,
            });
        }
    }
    out
}

/// `a.b[0].c` -> `a.b[0]`; `a` -> ``.
fn parent_of(field: &str) -> &str {
    match field.rfind(['.', '[']) {
        Some(i) => &field[..i],
        None => "",
    }
}

/// A line of YAML: its indentation and its text after it.
#[derive(Debug, Clone, Copy)]
struct Line<'a> {
    number: usize,
    indent: usize,
    text: &'a str,
}

fn lines_of<'a>(doc: &[(usize, &'a str)]) -> Vec<Line<'a>> {
    doc.iter()
        .filter_map(|&(number, raw)| {
            let text = raw.trim_start_matches(' ');
            if text.trim().is_empty() || text.starts_with('#') {
                return None;
            }
            Some(Line {
                number,
                indent: raw.len() - text.len(),
                text,
            })
        })
        .collect()
}

/// The documents of a YAML text as numbered lines, split at `---` as the parser splits them.
fn documents(text: &str) -> Vec<Vec<(usize, &str)>> {
    let mut docs: Vec<Vec<(usize, &str)>> = vec![Vec::new()];
    let mut seen_content = false;
    for (i, raw) in text.lines().enumerate() {
        if raw.starts_with("---") {
            if seen_content || docs.len() > 1 {
                docs.push(Vec::new());
            }
            seen_content = true;
            continue;
        }
        if !raw.trim().is_empty() && !raw.trim_start().starts_with('#') {
            seen_content = true;
        }
        if let Some(d) = docs.last_mut() {
            d.push((i + 1, raw));
        }
    }
    docs
}

/// Where `field` (`spec.template.spec.containers[0].image`) is in document `doc` (1-based) of
/// a block-style YAML text: `(line, column)` of its key, or of the deepest ancestor found (a
/// flow-style mapping, say). JSON files and unusual layouts may give None.
pub fn locate(text: &str, doc: usize, field: &str) -> Option<(usize, usize)> {
    let docs = documents(text);
    let lines = lines_of(docs.get(doc - 1)?);
    let mut range: Vec<Line<'_>> = lines;
    let mut found = None;
    for seg in segments(field) {
        let Some(first) = range.first().copied() else {
            break;
        };
        let indent = first.indent;
        match seg {
            Segment::Key(key) => {
                let Some(pos) = range.iter().position(|l| {
                    l.indent == indent
                        && (l.text.starts_with(&format!("{key}:"))
                            || l.text.starts_with(&format!("\"{key}\":")))
                }) else {
                    break;
                };
                let at = range[pos];
                found = Some((at.number, at.indent + 1));
                // Its value: the lines indented deeper, or a list at the same indent (`- a`,
                // YAML's compact form; in a mapping nothing else starts with `- ` there).
                range = range[pos + 1..]
                    .iter()
                    .copied()
                    .take_while(|l| {
                        l.indent > indent || (l.indent == indent && l.text.starts_with("- "))
                    })
                    .collect();
            }
            Segment::Index(i) => {
                let items: Vec<usize> = range
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| l.indent == indent && l.text.starts_with("- "))
                    .map(|(n, _)| n)
                    .collect();
                let Some(&start) = items.get(i) else {
                    break;
                };
                let end = items.get(i + 1).copied().unwrap_or(range.len());
                let head = range[start];
                found = Some((head.number, head.indent + 1));
                let mut item: Vec<Line<'_>> = vec![Line {
                    number: head.number,
                    indent: head.indent + 2,
                    text: head.text[2..].trim_start(),
                }];
                item.extend(range[start + 1..end].iter().copied());
                range = item;
            }
        }
    }
    found
}

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

fn segments(field: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in field.split('.').filter(|p| !p.is_empty()) {
        let (key, mut rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
        if !key.is_empty() {
            out.push(Segment::Key(key));
        }
        while let Some((n, r)) = rest.split_once(']') {
            if let Ok(i) = n.parse() {
                out.push(Segment::Index(i));
            }
            rest = r.trim_start_matches('[');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_wrong_types_and_missing_fields_are_found() {
        let d = json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},
            "spec":{"replicas":"two","selector":{"matchLabels":{"app":"web"}},
              "template":{"spec":{"readinessProbe":{},"containers":[{"name":"web","imagee":"x"}]}}}});
        let f = check(&d);
        assert!(
            f.iter().any(|f| f.field == "spec.replicas"
                && matches!(&f.kind, FindingKind::Invalid(m) if m.contains("invalid type: string"))),
            "{f:?}"
        );
        let d = json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},
            "spec":{"selector":{"matchLabels":{"app":"web"}},
              "template":{"spec":{"readinessProbe":{},"containers":[{"name":"web","imagee":"x"}]}}}});
        let fields: Vec<(String, FindingKind)> =
            check(&d).into_iter().map(|f| (f.field, f.kind)).collect();
        assert_eq!(
            fields,
            [
                (
                    "spec.template.spec.containers[0].imagee".to_owned(),
                    FindingKind::Unknown
                ),
                (
                    "spec.template.spec.readinessProbe".to_owned(),
                    FindingKind::Unknown
                ),
            ]
        );
        // Required fields, from the schema table (k8s-openapi defaults them while decoding).
        let missing = json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},
            "spec":{"selector":{},"template":{"spec":{"containers":[{"image":"x"}]}}},
            "status":{"conditions":[{}]}});
        let fields: Vec<(String, FindingKind)> = check(&missing)
            .into_iter()
            .map(|f| (f.field, f.kind))
            .collect();
        assert_eq!(
            fields,
            [(
                "spec.template.spec.containers[0].name".to_owned(),
                FindingKind::Missing
            )]
        );
        let svc = json!({"apiVersion":"v1","kind":"Service","metadata":{"name":"s"},
            "spec":{"ports":[{"targetPort":80}]}});
        assert_eq!(check(&svc)[0].field, "spec.ports[0].port");
        let binding = json!({"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding",
            "metadata":{"name":"b"}});
        assert_eq!(check(&binding)[0].field, "roleRef");
        // Kinds outside the table are the server's to judge.
        assert!(
            check(&json!({"apiVersion":"example.com/v1","kind":"Widget","spec":{"x":1}}))
                .is_empty()
        );
    }

    #[test]
    fn findings_are_located_in_block_yaml() {
        let text = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: demo\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          image: x\n        - name: side\n          imagee: y\n      readinessProbe:\n        httpGet: {path: /}\n";
        assert_eq!(
            locate(text, 2, "spec.template.spec.readinessProbe"),
            Some((18, 7))
        );
        assert_eq!(
            locate(text, 2, "spec.template.spec.containers[1].imagee"),
            Some((17, 11))
        );
        assert_eq!(locate(text, 1, "metadata.name"), Some((4, 3)));
        // Compact lists (`- ` at the key's indent) and flow mappings fall back to what is found.
        let compact = "spec:\n  ports:\n  - port: 80\n    nodePortt: 3\n";
        assert_eq!(locate(compact, 1, "spec.ports[0].nodePortt"), Some((4, 5)));
        assert_eq!(locate("spec: {a: 1}\n", 1, "spec.a"), Some((1, 1)));
        assert_eq!(locate("a: 1\n", 2, "a"), None);
    }
}
