//! Validation, in the three steps the real API server takes:
//! 1. decoding into the typed object (k8s-openapi's structs): wrong types are `400`, unknown
//!    fields are an error under `fieldValidation=Strict`, a warning under `Warn`, and dropped;
//! 2. object validation: names, labels, and each kind's rules (selectors that match templates,
//!    containers with names and images, ports in range, ...): `422 Invalid` with causes;
//! 3. update validation: immutable fields.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::body::Duplicates;
use crate::resources::{Builtin, NameRule, ResourceType};
use crate::selector::{LabelSelector, labels_of};
use crate::status::{ApiError, FieldError};

/// How to treat unknown fields (`fieldValidation` query parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldValidation {
    Strict,
    Warn,
    Ignore,
}

impl FieldValidation {
    pub(crate) fn parse(value: Option<&str>) -> Result<FieldValidation, ApiError> {
        match value {
            None | Some("" | "Warn") => Ok(FieldValidation::Warn),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation parameter unsupported: {other:?}; supported values are \"Ignore\", \"Warn\" and \"Strict\""
            ))),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Step 1: decoding

fn roundtrip<T: DeserializeOwned + Serialize>(value: &Value) -> Result<Value, (String, String)> {
    let typed: T = serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        (path, err.into_inner().to_string())
    })?;
    serde_json::to_value(typed).map_err(|err| (String::new(), err.to_string()))
}

fn typed_roundtrip(builtin: Builtin, value: &Value) -> Result<Value, (String, String)> {
    use k8s_openapi::api::{
        apps::v1 as apps, autoscaling::v2 as autoscaling, batch::v1 as batch,
        coordination::v1 as coordination, core::v1 as core, networking::v1 as networking,
        policy::v1 as policy, rbac::v1 as rbac, scheduling::v1 as scheduling,
        storage::v1 as storage,
    };
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
    match builtin {
        Builtin::Namespace => roundtrip::<core::Namespace>(value),
        Builtin::ConfigMap => roundtrip::<core::ConfigMap>(value),
        Builtin::Secret => roundtrip::<core::Secret>(value),
        Builtin::ServiceAccount => roundtrip::<core::ServiceAccount>(value),
        Builtin::Service => roundtrip::<core::Service>(value),
        Builtin::Endpoints => roundtrip::<core::Endpoints>(value),
        Builtin::EndpointSlice => {
            roundtrip::<k8s_openapi::api::discovery::v1::EndpointSlice>(value)
        }
        Builtin::Pod => roundtrip::<core::Pod>(value),
        Builtin::Event => roundtrip::<core::Event>(value),
        Builtin::PersistentVolumeClaim => roundtrip::<core::PersistentVolumeClaim>(value),
        Builtin::PersistentVolume => roundtrip::<core::PersistentVolume>(value),
        Builtin::Node => roundtrip::<core::Node>(value),
        Builtin::LimitRange => roundtrip::<core::LimitRange>(value),
        Builtin::ResourceQuota => roundtrip::<core::ResourceQuota>(value),
        Builtin::Deployment => roundtrip::<apps::Deployment>(value),
        Builtin::ReplicaSet => roundtrip::<apps::ReplicaSet>(value),
        Builtin::StatefulSet => roundtrip::<apps::StatefulSet>(value),
        Builtin::DaemonSet => roundtrip::<apps::DaemonSet>(value),
        Builtin::ControllerRevision => roundtrip::<apps::ControllerRevision>(value),
        Builtin::Job => roundtrip::<batch::Job>(value),
        Builtin::CronJob => roundtrip::<batch::CronJob>(value),
        Builtin::Ingress => roundtrip::<networking::Ingress>(value),
        Builtin::IngressClass => roundtrip::<networking::IngressClass>(value),
        Builtin::NetworkPolicy => roundtrip::<networking::NetworkPolicy>(value),
        Builtin::HorizontalPodAutoscaler => {
            roundtrip::<autoscaling::HorizontalPodAutoscaler>(value)
        }
        Builtin::PodDisruptionBudget => roundtrip::<policy::PodDisruptionBudget>(value),
        Builtin::Lease => roundtrip::<coordination::Lease>(value),
        Builtin::Role => roundtrip::<rbac::Role>(value),
        Builtin::RoleBinding => roundtrip::<rbac::RoleBinding>(value),
        Builtin::ClusterRole => roundtrip::<rbac::ClusterRole>(value),
        Builtin::ClusterRoleBinding => roundtrip::<rbac::ClusterRoleBinding>(value),
        Builtin::CustomResourceDefinition => {
            roundtrip::<apiextensions::CustomResourceDefinition>(value)
        }
        Builtin::StorageClass => roundtrip::<storage::StorageClass>(value),
        Builtin::PriorityClass => roundtrip::<scheduling::PriorityClass>(value),
    }
}

/// Fields of `input` the typed object does not have, as `spec.foo` paths.
fn unknown_fields(input: &Value, typed: &Value, path: &str, out: &mut Vec<String>) {
    match (input, typed) {
        (Value::Object(i), Value::Object(t)) => {
            for (k, v) in i {
                if v.is_null() {
                    continue;
                }
                let child = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match t.get(k) {
                    Some(tv) => unknown_fields(v, tv, &child, out),
                    None => out.push(child),
                }
            }
        }
        (Value::Array(i), Value::Array(t)) if i.len() == t.len() => {
            for (n, (iv, tv)) in i.iter().zip(t).enumerate() {
                unknown_fields(iv, tv, &format!("{path}[{n}]"), out);
            }
        }
        _ => {}
    }
}

/// Removes the fields at `paths` (as produced by `unknown_fields`).
fn prune(value: &mut Value, path: &str) {
    let mut node = value;
    let mut parts = split_path(path);
    let Some(last) = parts.pop() else { return };
    for part in parts {
        node = match part {
            PathPart::Field(f) => match node.get_mut(f) {
                Some(n) => n,
                None => return,
            },
            PathPart::Index(i) => match node.get_mut(i) {
                Some(n) => n,
                None => return,
            },
        };
    }
    if let (PathPart::Field(f), Some(map)) = (last, node.as_object_mut()) {
        map.remove(f);
    }
}

enum PathPart<'a> {
    Field(&'a str),
    Index(usize),
}

fn split_path(path: &str) -> Vec<PathPart<'_>> {
    let mut parts = Vec::new();
    for segment in path.split('.') {
        let mut rest = segment;
        if let Some(bracket) = rest.find('[') {
            parts.push(PathPart::Field(&rest[..bracket]));
            rest = &rest[bracket..];
            while let Some(inner) = rest.strip_prefix('[') {
                let end = inner.find(']').unwrap_or(inner.len());
                if let Ok(i) = inner[..end].parse() {
                    parts.push(PathPart::Index(i));
                }
                rest = inner.get(end + 1..).unwrap_or("");
            }
        } else {
            parts.push(PathPart::Field(rest));
        }
    }
    parts
}

/// Decodes `object` as its type would be. Returns warnings (duplicate keys of the request body
/// and unknown fields under `Warn`); unknown fields are removed from `object`.
///
/// Under `Strict` the error lists duplicates first, then unknown fields (upstream orders a
/// create's JSON body by position in the document; its patches are ordered as here).
pub(crate) fn decode(
    rt: &ResourceType,
    object: &mut Value,
    validation: FieldValidation,
    duplicates: &Duplicates,
) -> Result<Vec<String>, ApiError> {
    let name = object["metadata"]["name"].as_str().unwrap_or("").to_owned();
    let cannot = |detail: String| {
        ApiError::bad_request(format!(
            "{} in version {:?} cannot be handled as a {}: {detail}",
            rt.kind, rt.version, rt.kind
        ))
    };
    let mut unknown = Vec::new();
    if let Some(builtin) = rt.builtin {
        match typed_roundtrip(builtin, object) {
            Ok(typed) => unknown_fields(object, &typed, "", &mut unknown),
            Err((path, message)) => {
                if let Some(field) = message
                    .strip_prefix("missing field `")
                    .and_then(|m| m.split('`').next())
                {
                    let full = if path.is_empty() || path == "." {
                        field.to_owned()
                    } else {
                        format!("{path}.{field}")
                    };
                    return Err(ApiError::invalid(
                        rt.named(&name),
                        &[FieldError::required(full, "")],
                    ));
                }
                let at = if path.is_empty() || path == "." {
                    String::new()
                } else {
                    format!("{path}: ")
                };
                return Err(cannot(format!("{at}{message}")));
            }
        }
    } else if let Some(schema) = rt.crd.as_ref().and_then(|c| c.schema.as_ref()) {
        let mut errors = Vec::new();
        crd_check(schema, object, "", true, &mut errors, &mut unknown);
        if !errors.is_empty() {
            return Err(ApiError::invalid(rt.named(&name), &errors));
        }
    }
    // metadata and apiVersion/kind are not part of a custom resource's schema
    unknown.retain(|p| {
        p != "apiVersion" && p != "kind" && !(rt.builtin.is_none() && p.starts_with("metadata"))
    });
    if unknown.is_empty() && duplicates.is_empty() {
        return Ok(Vec::new());
    }
    // A field both unknown and duplicated is named once, as unknown (as upstream, for typed
    // objects).
    let mut issues: Vec<String> = match duplicates {
        Duplicates::None => Vec::new(),
        Duplicates::Json(paths) => paths
            .iter()
            .filter(|p| !unknown.contains(p))
            .map(|p| format!("duplicate field {p:?}"))
            .collect(),
        Duplicates::JsonPatch(paths) => paths
            .iter()
            .map(|p| format!("json patch duplicate field {p:?}"))
            .collect(),
        Duplicates::Yaml(lines) => lines.clone(),
    };
    let yaml_lines = if matches!(duplicates, Duplicates::Yaml(_)) {
        issues.len()
    } else {
        0
    };
    issues.extend(unknown.iter().map(|f| format!("unknown field {f:?}")));
    match validation {
        FieldValidation::Strict => {
            let text = if yaml_lines > 0 {
                let mut text = format!(
                    "yaml: unmarshal errors:\n  {}",
                    issues[..yaml_lines].join("\n  ")
                );
                for rest in &issues[yaml_lines..] {
                    text.push_str(", ");
                    text.push_str(rest);
                }
                text
            } else {
                issues.join(", ")
            };
            Err(cannot(format!("strict decoding error: {text}")))
        }
        FieldValidation::Warn | FieldValidation::Ignore => {
            for path in &unknown {
                prune(object, path);
            }
            Ok(if validation == FieldValidation::Warn {
                issues
            } else {
                Vec::new()
            })
        }
    }
}

/// Checks a custom resource against its structural schema: types, required fields, enums.
/// Fields the schema does not declare are collected as unknown (the server prunes them),
/// unless `x-kubernetes-preserve-unknown-fields` is set.
fn crd_check(
    schema: &Value,
    value: &Value,
    path: &str,
    root: bool,
    errors: &mut Vec<FieldError>,
    unknown: &mut Vec<String>,
) {
    if value.is_null() {
        return;
    }
    let at = |p: &str| {
        if p.is_empty() {
            "<root>".to_owned()
        } else {
            p.to_owned()
        }
    };
    if schema["x-kubernetes-int-or-string"].as_bool() == Some(true) {
        if !(value.is_string() || value.is_i64() || value.is_u64()) {
            errors.push(FieldError::invalid(
                at(path),
                value.clone(),
                "must be an integer or a string",
            ));
        }
        return;
    }
    let expected = schema["type"].as_str();
    let type_ok = match expected {
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        _ => true,
    };
    if !type_ok {
        errors.push(FieldError {
            field: at(path),
            kind: crate::status::FieldErrorKind::Invalid(value.clone()),
            detail: format!("must be of type {}", expected.unwrap_or("")),
        });
        return;
    }
    if let Some(options) = schema["enum"].as_array()
        && !options.contains(value)
    {
        let allowed: Vec<String> = options
            .iter()
            .map(|o| o.as_str().map_or_else(|| o.to_string(), str::to_owned))
            .collect();
        let allowed: Vec<&str> = allowed.iter().map(String::as_str).collect();
        errors.push(FieldError::not_supported(at(path), value.clone(), &allowed));
    }
    match value {
        Value::Object(map) => {
            if let Some(required) = schema["required"].as_array() {
                for field in required.iter().filter_map(Value::as_str) {
                    if map.get(field).is_none_or(Value::is_null) {
                        let full = if path.is_empty() {
                            field.to_owned()
                        } else {
                            format!("{path}.{field}")
                        };
                        errors.push(FieldError::required(full, ""));
                    }
                }
            }
            let preserve = schema["x-kubernetes-preserve-unknown-fields"].as_bool() == Some(true)
                || schema["x-kubernetes-embedded-resource"].as_bool() == Some(true);
            for (k, v) in map {
                if root && (k == "apiVersion" || k == "kind" || k == "metadata") {
                    continue;
                }
                let child = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if let Some(prop) = schema["properties"].get(k) {
                    crd_check(prop, v, &child, false, errors, unknown);
                } else if let Some(extra) =
                    schema.get("additionalProperties").filter(|a| a.is_object())
                {
                    crd_check(extra, v, &child, false, errors, unknown);
                } else if schema.get("additionalProperties") == Some(&Value::Bool(true)) || preserve
                {
                } else {
                    unknown.push(child);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    crd_check(
                        item_schema,
                        item,
                        &format!("{path}[{i}]"),
                        false,
                        errors,
                        unknown,
                    );
                }
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Step 2: object validation

const DNS1123_LABEL: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1035_LABEL: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

pub(crate) fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

pub(crate) fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns1123_label)
}

fn is_dns1035_label(s: &str) -> bool {
    is_dns1123_label(s) && s.as_bytes()[0].is_ascii_lowercase()
}

/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`, at most 63 characters.
pub(crate) fn is_qualified_name_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric()
}

pub(crate) fn qualified_name_error(s: &str) -> Option<String> {
    let (prefix, name) = match s.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    if let Some(prefix) = prefix
        && !is_dns1123_subdomain(prefix)
    {
        return Some(format!("prefix part {DNS1123_SUBDOMAIN}"));
    }
    if !is_qualified_name_part(name) {
        return Some("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')".to_owned());
    }
    None
}

fn name_error(rule: NameRule, name: &str) -> Option<String> {
    match rule {
        NameRule::Subdomain if !is_dns1123_subdomain(name) => Some(if name.len() > 253 {
            "must be no more than 253 characters".to_owned()
        } else {
            DNS1123_SUBDOMAIN.to_owned()
        }),
        NameRule::Label if !is_dns1123_label(name) => Some(if name.len() > 63 {
            "must be no more than 63 characters".to_owned()
        } else {
            DNS1123_LABEL.to_owned()
        }),
        NameRule::Label1035 if !is_dns1035_label(name) => Some(if name.len() > 63 {
            "must be no more than 63 characters".to_owned()
        } else {
            DNS1035_LABEL.to_owned()
        }),
        NameRule::PathSegment if name == "." || name == ".." => {
            Some(format!("may not be '{name}'"))
        }
        NameRule::PathSegment if name.contains('/') || name.contains('%') => {
            Some("may not contain '/' or '%'".to_owned())
        }
        _ => None,
    }
}

/// Whether a name is valid for a type (used before the object exists, e.g. for URLs).
pub(crate) fn check_name(rt: &ResourceType, name: &str) -> Result<(), ApiError> {
    match name_error(rt.name_rule, name) {
        Some(message) => Err(ApiError::invalid(
            rt.named(name),
            &[FieldError::invalid("metadata.name", json!(name), message)],
        )),
        None => Ok(()),
    }
}

struct Check {
    errors: Vec<FieldError>,
}

impl Check {
    fn push(&mut self, e: FieldError) {
        self.errors.push(e);
    }
}

fn metadata(rt: &ResourceType, object: &Value, c: &mut Check) {
    let meta = &object["metadata"];
    let name = meta["name"].as_str().unwrap_or("");
    if name.is_empty() {
        c.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else if let Some(message) = name_error(rt.name_rule, name) {
        c.push(FieldError::invalid("metadata.name", json!(name), message));
    }
    if rt.namespaced && meta["namespace"].as_str().unwrap_or("").is_empty() {
        c.push(FieldError::required("metadata.namespace", ""));
    }
    labels_valid(&meta["labels"], "metadata.labels", c);
    if let Some(annotations) = meta["annotations"].as_object() {
        let mut total = 0usize;
        for (k, v) in annotations {
            total += k.len() + v.as_str().map_or(0, str::len);
            if let Some(message) = qualified_name_error(k) {
                c.push(FieldError::invalid(
                    "metadata.annotations",
                    json!(k),
                    message,
                ));
            }
        }
        if total > 256 * 1024 {
            c.push(FieldError::too_long(
                "metadata.annotations",
                "must have at most 262144 bytes",
            ));
        }
    }
    if let Some(owners) = meta["ownerReferences"].as_array() {
        for (i, owner) in owners.iter().enumerate() {
            for field in ["apiVersion", "kind", "name", "uid"] {
                if owner[field].as_str().unwrap_or("").is_empty() {
                    c.push(FieldError::required(
                        format!("metadata.ownerReferences[{i}].{field}"),
                        "",
                    ));
                }
            }
        }
        if owners
            .iter()
            .filter(|o| o["controller"].as_bool() == Some(true))
            .count()
            > 1
        {
            c.push(FieldError::invalid(
                "metadata.ownerReferences",
                json!(owners.len()),
                "Only one reference can have Controller set to true",
            ));
        }
    }
}

fn labels_valid(labels: &Value, field: &str, c: &mut Check) {
    let Some(labels) = labels.as_object() else {
        return;
    };
    for (k, v) in labels {
        if let Some(message) = qualified_name_error(k) {
            c.push(FieldError::invalid(field, json!(k), message));
        }
        let value = v.as_str().unwrap_or("");
        if !value.is_empty() && !is_qualified_name_part(value) {
            c.push(FieldError::invalid(
                field.to_string(),
                json!(value),
                "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
            ));
        }
    }
}

/// `claim_volumes` are the names of a StatefulSet's `volumeClaimTemplates`: its pods' containers
/// may mount them, since the controller adds a volume for each claim to every pod it creates.
fn pod_spec(
    spec: &Value,
    field: &str,
    restart_policies: &[&str],
    claim_volumes: &[&str],
    c: &mut Check,
) {
    let mut names = Vec::new();
    let volumes: Vec<&str> = spec["volumes"]
        .as_array()
        .map(|v| v.iter().filter_map(|v| v["name"].as_str()).collect())
        .unwrap_or_default();
    for (i, volume) in volumes.iter().enumerate() {
        if !is_dns1123_label(volume) {
            c.push(FieldError::invalid(
                format!("{field}.volumes[{i}].name"),
                json!(volume),
                DNS1123_LABEL,
            ));
        }
        if volumes[..i].contains(volume) {
            c.push(FieldError::duplicate(
                format!("{field}.volumes[{i}].name"),
                json!(volume),
            ));
        }
    }
    let containers = spec["containers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if containers.is_empty() {
        c.push(FieldError::required(format!("{field}.containers"), ""));
    }
    for list in ["initContainers", "containers"] {
        let Some(items) = spec[list].as_array() else {
            continue;
        };
        for (i, container) in items.iter().enumerate() {
            let at = format!("{field}.{list}[{i}]");
            let name = container["name"].as_str().unwrap_or("");
            if name.is_empty() {
                c.push(FieldError::required(format!("{at}.name"), ""));
            } else if !is_dns1123_label(name) {
                c.push(FieldError::invalid(
                    format!("{at}.name"),
                    json!(name),
                    DNS1123_LABEL,
                ));
            } else if names.contains(&name) {
                c.push(FieldError::duplicate(format!("{at}.name"), json!(name)));
            }
            names.push(name);
            if container["image"].as_str().unwrap_or("").trim().is_empty() {
                c.push(FieldError::required(format!("{at}.image"), ""));
            }
            let mut port_names = Vec::new();
            for (p, port) in container["ports"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                let number = port["containerPort"].as_i64().unwrap_or(0);
                if !(1..=65535).contains(&number) {
                    c.push(FieldError::invalid(
                        format!("{at}.ports[{p}].containerPort"),
                        json!(number),
                        "must be between 1 and 65535, inclusive",
                    ));
                }
                if let Some(pname) = port["name"].as_str() {
                    if pname.len() > 15
                        || !is_dns1123_label(pname)
                        || !pname.bytes().any(|b| b.is_ascii_lowercase())
                    {
                        c.push(FieldError::invalid(
                            format!("{at}.ports[{p}].name"),
                            json!(pname),
                            "must be no more than 15 characters and contain only lower case letters, digits and '-', with at least one letter",
                        ));
                    } else if port_names.contains(&pname) {
                        c.push(FieldError::duplicate(
                            format!("{at}.ports[{p}].name"),
                            json!(pname),
                        ));
                    }
                    port_names.push(pname);
                }
                if let Some(protocol) = port["protocol"].as_str()
                    && !["TCP", "UDP", "SCTP"].contains(&protocol)
                {
                    c.push(FieldError::not_supported(
                        format!("{at}.ports[{p}].protocol"),
                        json!(protocol),
                        &["SCTP", "TCP", "UDP"],
                    ));
                }
            }
            for (e, env) in container["env"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                if env["name"].as_str().unwrap_or("").is_empty() {
                    c.push(FieldError::required(format!("{at}.env[{e}].name"), ""));
                }
            }
            for (m, mount) in container["volumeMounts"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                let volume = mount["name"].as_str().unwrap_or("");
                if !volumes.contains(&volume) && !claim_volumes.contains(&volume) {
                    c.push(FieldError {
                        field: format!("{at}.volumeMounts[{m}].name"),
                        kind: crate::status::FieldErrorKind::Invalid(json!(volume)),
                        detail: "volume not found".to_owned(),
                    });
                }
                if mount["mountPath"].as_str().unwrap_or("").is_empty() {
                    c.push(FieldError::required(
                        format!("{at}.volumeMounts[{m}].mountPath"),
                        "",
                    ));
                }
            }
        }
    }
    if let Some(policy) = spec["restartPolicy"].as_str() {
        if !restart_policies.contains(&policy) {
            c.push(FieldError::not_supported(
                format!("{field}.restartPolicy"),
                json!(policy),
                restart_policies,
            ));
        }
    } else if !restart_policies.contains(&"Always") {
        c.push(FieldError::required(
            format!("{field}.restartPolicy"),
            format!(
                "valid values: {}",
                restart_policies
                    .iter()
                    .map(|p| format!("{p:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
}

fn workload(object: &Value, restart_policies: &[&str], c: &mut Check) {
    let spec = &object["spec"];
    match spec.get("selector") {
        None | Some(Value::Null) => c.push(FieldError::required("spec.selector", "")),
        Some(selector) => {
            let empty = selector["matchLabels"]
                .as_object()
                .is_none_or(serde_json::Map::is_empty)
                && selector["matchExpressions"]
                    .as_array()
                    .is_none_or(Vec::is_empty);
            if empty {
                c.push(FieldError::invalid(
                    "spec.selector",
                    selector.clone(),
                    "empty selector is invalid for deployment",
                ));
            } else {
                match LabelSelector::from_object(selector) {
                    Ok(sel) => {
                        let labels = labels_of(&spec["template"]);
                        if !sel.matches_labels(&labels) {
                            c.push(FieldError::invalid(
                                "spec.template.metadata.labels",
                                json!(labels),
                                "`selector` does not match template `labels`",
                            ));
                        }
                    }
                    Err(message) => c.push(FieldError::invalid(
                        "spec.selector",
                        selector.clone(),
                        message,
                    )),
                }
            }
        }
    }
    for field in ["replicas", "minReadySeconds", "revisionHistoryLimit"] {
        if let Some(n) = spec[field].as_i64()
            && n < 0
        {
            c.push(FieldError::invalid(
                format!("spec.{field}"),
                json!(n),
                "must be greater than or equal to 0",
            ));
        }
    }
    labels_valid(
        &spec["template"]["metadata"]["labels"],
        "spec.template.metadata.labels",
        c,
    );
    let claim_volumes: Vec<&str> = spec["volumeClaimTemplates"]
        .as_array()
        .map(|claims| {
            claims
                .iter()
                .filter_map(|claim| claim["metadata"]["name"].as_str())
                .collect()
        })
        .unwrap_or_default();
    pod_spec(
        &spec["template"]["spec"],
        "spec.template.spec",
        restart_policies,
        &claim_volumes,
        c,
    );
}

fn int_or_percent(value: &Value, total: i64, round_up: bool) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => {
            let pct: i64 = s.strip_suffix('%')?.parse().ok()?;
            let scaled = pct * total;
            Some(if round_up {
                (scaled + 99) / 100
            } else {
                scaled / 100
            })
        }
        _ => None,
    }
}

fn deployment(object: &Value, c: &mut Check) {
    workload(object, &["Always"], c);
    let spec = &object["spec"];
    let strategy = &spec["strategy"];
    match strategy["type"].as_str() {
        Some("Recreate") => {
            if strategy.get("rollingUpdate").is_some_and(|r| !r.is_null()) {
                c.push(FieldError::forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        Some("RollingUpdate") | None => {
            let ru = &strategy["rollingUpdate"];
            for field in ["maxSurge", "maxUnavailable"] {
                let v = &ru[field];
                if v.is_null() {
                    continue;
                }
                match int_or_percent(v, 100, false) {
                    None => c.push(FieldError::invalid(
                        format!("spec.strategy.rollingUpdate.{field}"),
                        v.clone(),
                        "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
                    )),
                    Some(n) if n < 0 => c.push(FieldError::invalid(
                        format!("spec.strategy.rollingUpdate.{field}"),
                        v.clone(),
                        "must be greater than or equal to 0",
                    )),
                    Some(n) if field == "maxUnavailable" && v.is_string() && n > 100 => c.push(FieldError::invalid(
                        "spec.strategy.rollingUpdate.maxUnavailable",
                        v.clone(),
                        "must not be greater than 100%",
                    )),
                    _ => {}
                }
            }
            let surge = int_or_percent(&ru["maxSurge"], 100, true);
            let unavailable = int_or_percent(&ru["maxUnavailable"], 100, false);
            if surge == Some(0) && unavailable == Some(0) {
                c.push(FieldError::invalid(
                    "spec.strategy.rollingUpdate.maxUnavailable",
                    ru["maxUnavailable"].clone(),
                    "may not be 0 when `maxSurge` is 0",
                ));
            }
        }
        Some(other) => c.push(FieldError::not_supported(
            "spec.strategy.type",
            json!(other),
            &["Recreate", "RollingUpdate"],
        )),
    }
    if let (Some(deadline), min_ready) = (
        spec["progressDeadlineSeconds"].as_i64(),
        spec["minReadySeconds"].as_i64().unwrap_or(0),
    ) && deadline <= min_ready
    {
        c.push(FieldError::invalid(
            "spec.progressDeadlineSeconds",
            json!(deadline),
            "must be greater than minReadySeconds",
        ));
    }
}

fn service(object: &Value, c: &mut Check) {
    let spec = &object["spec"];
    let kind = spec["type"].as_str().unwrap_or("ClusterIP");
    if !["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"].contains(&kind) {
        c.push(FieldError::not_supported(
            "spec.type",
            json!(kind),
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        ));
    }
    let ports = spec["ports"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let headless = spec["clusterIP"].as_str() == Some("None");
    if ports.is_empty() && kind != "ExternalName" && !headless {
        c.push(FieldError::required("spec.ports", ""));
    }
    if kind == "ExternalName" && spec["externalName"].as_str().unwrap_or("").is_empty() {
        c.push(FieldError::required("spec.externalName", ""));
    }
    let mut names = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let number = port["port"].as_i64().unwrap_or(0);
        if !(1..=65535).contains(&number) {
            c.push(FieldError::invalid(
                format!("spec.ports[{i}].port"),
                json!(number),
                "must be between 1 and 65535, inclusive",
            ));
        }
        let name = port["name"].as_str().unwrap_or("");
        if ports.len() > 1 && name.is_empty() {
            c.push(FieldError::required(format!("spec.ports[{i}].name"), ""));
        } else if !name.is_empty() {
            if !is_dns1123_label(name) {
                c.push(FieldError::invalid(
                    format!("spec.ports[{i}].name"),
                    json!(name),
                    DNS1123_LABEL,
                ));
            } else if names.contains(&name) {
                c.push(FieldError::duplicate(
                    format!("spec.ports[{i}].name"),
                    json!(name),
                ));
            }
        }
        names.push(name);
        if let Some(node_port) = port["nodePort"].as_i64()
            && !(30000..=32767).contains(&node_port)
            && node_port != 0
        {
            c.push(FieldError::invalid(
                format!("spec.ports[{i}].nodePort"),
                json!(node_port),
                "provided port is not in the valid range. The range of valid ports is 30000-32767",
            ));
        }
        match &port["targetPort"] {
            Value::Number(n) if !(1..=65535).contains(&n.as_i64().unwrap_or(0)) => {
                c.push(FieldError::invalid(
                    format!("spec.ports[{i}].targetPort"),
                    Value::Number(n.clone()),
                    "must be between 1 and 65535, inclusive",
                ))
            }
            _ => {}
        }
    }
}

fn data_keys(object: &Value, c: &mut Check) {
    for field in ["data", "binaryData", "stringData"] {
        if let Some(map) = object[field].as_object() {
            for key in map.keys() {
                let ok = !key.is_empty()
                    && key.len() <= 253
                    && key
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
                if !ok {
                    c.push(FieldError::invalid(
                        field.to_string(),
                        json!(key),
                        "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                    ));
                }
            }
        }
    }
}

/// The keys a Secret of a well-known type must hold (values are never echoed).
fn secret_type(secret: &Value, c: &mut Check) {
    let has = |key: &str| secret["data"].get(key).is_some();
    let required: &[&str] = match secret["type"].as_str().unwrap_or("") {
        "kubernetes.io/tls" => &["tls.crt", "tls.key"],
        "kubernetes.io/dockerconfigjson" => &[".dockerconfigjson"],
        "kubernetes.io/dockercfg" => &[".dockercfg"],
        "kubernetes.io/ssh-auth" => &["ssh-privatekey"],
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            c.push(FieldError::required("data[username]", ""));
            c.push(FieldError::required("data[password]", ""));
            return;
        }
        _ => &[],
    };
    for key in required {
        if !has(key) {
            c.push(FieldError::required(format!("data[{key}]"), ""));
        }
    }
}

fn hpa(object: &Value, c: &mut Check) {
    let spec = &object["spec"];
    let max = spec["maxReplicas"].as_i64().unwrap_or(0);
    let min = spec["minReplicas"].as_i64().unwrap_or(1);
    if min < 1 {
        c.push(FieldError::invalid(
            "spec.minReplicas",
            json!(min),
            "must be greater than or equal to 1",
        ));
    }
    if max < 1 {
        c.push(FieldError::invalid(
            "spec.maxReplicas",
            json!(max),
            "must be greater than 0",
        ));
    } else if max < min {
        c.push(FieldError::invalid(
            "spec.maxReplicas",
            json!(max),
            "must be greater than or equal to `minReplicas`",
        ));
    }
    for field in ["kind", "name"] {
        if spec["scaleTargetRef"][field]
            .as_str()
            .unwrap_or("")
            .is_empty()
        {
            c.push(FieldError::required(
                format!("spec.scaleTargetRef.{field}"),
                "",
            ));
        }
    }
}

fn ingress(object: &Value, c: &mut Check) {
    let rules = object["spec"]["rules"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (r, rule) in rules.iter().enumerate() {
        let paths = rule["http"]["paths"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        for (p, path) in paths.iter().enumerate() {
            let at = format!("spec.rules[{r}].http.paths[{p}]");
            match path["pathType"].as_str() {
                None => c.push(FieldError::required(
                    format!("{at}.pathType"),
                    "pathType must be specified",
                )),
                Some("Exact" | "Prefix" | "ImplementationSpecific") => {}
                Some(other) => c.push(FieldError::not_supported(
                    format!("{at}.pathType"),
                    json!(other),
                    &["Exact", "ImplementationSpecific", "Prefix"],
                )),
            }
            let service = &path["backend"]["service"];
            if service.is_object() {
                if service["name"].as_str().unwrap_or("").is_empty() {
                    c.push(FieldError::required(
                        format!("{at}.backend.service.name"),
                        "",
                    ));
                }
                if service["port"]["number"].is_null() && service["port"]["name"].is_null() {
                    c.push(FieldError::required(
                        format!("{at}.backend.service.port"),
                        "port name or number is required",
                    ));
                }
            }
        }
    }
}

fn crd(object: &Value, c: &mut Check) {
    let spec = &object["spec"];
    let group = spec["group"].as_str().unwrap_or("");
    let plural = spec["names"]["plural"].as_str().unwrap_or("");
    let name = object["metadata"]["name"].as_str().unwrap_or("");
    if name != format!("{plural}.{group}") {
        c.push(FieldError::invalid(
            "metadata.name",
            json!(name),
            "must be spec.names.plural+\".\"+spec.group".to_string(),
        ));
    }
    if !group.contains('.') {
        c.push(FieldError::invalid(
            "spec.group",
            json!(group),
            "should be a domain with at least one dot",
        ));
    }
    if !["Namespaced", "Cluster"].contains(&spec["scope"].as_str().unwrap_or("")) {
        c.push(FieldError::not_supported(
            "spec.scope",
            spec["scope"].clone(),
            &["Cluster", "Namespaced"],
        ));
    }
    let versions = spec["versions"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if versions.is_empty() {
        c.push(FieldError::required(
            "spec.versions",
            "must have exactly one version marked as storage version",
        ));
    }
    let storage = versions
        .iter()
        .filter(|v| v["storage"].as_bool() == Some(true))
        .count();
    if !versions.is_empty() && storage != 1 {
        c.push(FieldError::invalid(
            "spec.versions",
            json!(storage),
            "must have exactly one version marked as storage version",
        ));
    }
    for (i, version) in versions.iter().enumerate() {
        if version["schema"]["openAPIV3Schema"].is_null() {
            c.push(FieldError::required(
                format!("spec.versions[{i}].schema.openAPIV3Schema"),
                "schemas are required",
            ));
        }
    }
}

/// Validates a whole object of type `rt` (after defaulting). `Err` is a 422.
pub(crate) fn validate(rt: &ResourceType, object: &Value) -> Result<(), ApiError> {
    let mut c = Check { errors: Vec::new() };
    metadata(rt, object, &mut c);
    match rt.builtin {
        Some(Builtin::Deployment) => deployment(object, &mut c),
        Some(Builtin::ReplicaSet | Builtin::StatefulSet | Builtin::DaemonSet) => {
            workload(object, &["Always"], &mut c)
        }
        Some(Builtin::Job) => {
            pod_spec(
                &object["spec"]["template"]["spec"],
                "spec.template.spec",
                &["OnFailure", "Never"],
                &[],
                &mut c,
            );
        }
        Some(Builtin::CronJob) => {
            let schedule = object["spec"]["schedule"].as_str().unwrap_or("");
            if let Err(message) = crate::controllers::cron::Schedule::parse(schedule) {
                c.push(FieldError::invalid(
                    "spec.schedule",
                    json!(schedule),
                    message,
                ));
            }
            pod_spec(
                &object["spec"]["jobTemplate"]["spec"]["template"]["spec"],
                "spec.jobTemplate.spec.template.spec",
                &["OnFailure", "Never"],
                &[],
                &mut c,
            );
        }
        Some(Builtin::Pod) => pod_spec(
            &object["spec"],
            "spec",
            &["Always", "OnFailure", "Never"],
            &[],
            &mut c,
        ),
        Some(Builtin::Service) => service(object, &mut c),
        Some(Builtin::ConfigMap) => data_keys(object, &mut c),
        Some(Builtin::Secret) => {
            data_keys(object, &mut c);
            secret_type(object, &mut c);
        }
        Some(Builtin::HorizontalPodAutoscaler) => hpa(object, &mut c),
        Some(Builtin::Ingress) => ingress(object, &mut c),
        Some(Builtin::CustomResourceDefinition) => crd(object, &mut c),
        Some(Builtin::PodDisruptionBudget)
            if !object["spec"]["minAvailable"].is_null()
                && !object["spec"]["maxUnavailable"].is_null() =>
        {
            c.push(FieldError::invalid(
                "spec",
                object["spec"].clone(),
                "minAvailable and maxUnavailable cannot be both set",
            ));
        }
        _ => {}
    }
    if c.errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(
            rt.named(object["metadata"]["name"].as_str().unwrap_or("")),
            &c.errors,
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Step 3: update validation

fn immutable(old: &Value, new: &Value, pointer: &str, field: &str, c: &mut Check) {
    let before = old.pointer(pointer).unwrap_or(&Value::Null);
    let after = new.pointer(pointer).unwrap_or(&Value::Null);
    if before != after {
        c.push(FieldError::invalid(
            field,
            after.clone(),
            "field is immutable",
        ));
    }
}

/// Checks what an update may not change. `Err` is a 422.
pub(crate) fn validate_update(rt: &ResourceType, old: &Value, new: &Value) -> Result<(), ApiError> {
    let mut c = Check { errors: Vec::new() };
    match rt.builtin {
        Some(Builtin::Deployment | Builtin::ReplicaSet | Builtin::DaemonSet) => {
            immutable(old, new, "/spec/selector", "spec.selector", &mut c);
        }
        Some(Builtin::StatefulSet) => {
            let strip = |v: &Value| {
                let mut spec = v["spec"].clone();
                if let Some(map) = spec.as_object_mut() {
                    for field in [
                        "replicas",
                        "ordinals",
                        "template",
                        "updateStrategy",
                        "persistentVolumeClaimRetentionPolicy",
                        "minReadySeconds",
                    ] {
                        map.remove(field);
                    }
                }
                spec
            };
            if strip(old) != strip(new) {
                c.push(FieldError::forbidden(
                    "spec",
                    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
                ));
            }
        }
        Some(Builtin::Job) => {
            immutable(old, new, "/spec/selector", "spec.selector", &mut c);
            immutable(old, new, "/spec/completions", "spec.completions", &mut c);
            let template = |v: &Value| {
                let mut t = v["spec"]["template"].clone();
                // labels and annotations of the template may change
                if let Some(meta) = t["metadata"].as_object_mut() {
                    meta.remove("labels");
                    meta.remove("annotations");
                }
                t
            };
            if template(old) != template(new) {
                c.push(FieldError::invalid(
                    "spec.template",
                    new["spec"]["template"].clone(),
                    "field is immutable",
                ));
            }
        }
        Some(Builtin::Service) => {
            let old_ip = old["spec"]["clusterIP"].as_str().unwrap_or("");
            let new_ip = new["spec"]["clusterIP"].as_str().unwrap_or("");
            let to_external = new["spec"]["type"].as_str() == Some("ExternalName");
            if !old_ip.is_empty() && old_ip != new_ip && !to_external {
                c.push(FieldError::invalid(
                    "spec.clusterIPs[0]",
                    json!(new_ip),
                    "may not change once set",
                ));
            }
        }
        Some(Builtin::ConfigMap | Builtin::Secret) => {
            if old["immutable"].as_bool() == Some(true) {
                for field in ["data", "binaryData"] {
                    if old[field] != new[field] {
                        c.push(FieldError::forbidden(
                            field,
                            "field is immutable when `immutable` is set",
                        ));
                    }
                }
                if new["immutable"].as_bool() != Some(true) {
                    c.push(FieldError::forbidden(
                        "immutable",
                        "field is immutable when `immutable` is set",
                    ));
                }
            }
            if rt.is(Builtin::Secret) {
                immutable(old, new, "/type", "type", &mut c);
            }
        }
        Some(Builtin::PersistentVolumeClaim) => {
            let strip = |v: &Value| {
                let mut spec = v["spec"].clone();
                if let Some(map) = spec.as_object_mut() {
                    map.remove("resources");
                    map.remove("volumeAttributesClassName");
                    // As the real API server: volumeName may be set once, by the binder,
                    // while it is empty; after that it is as immutable as the rest.
                    if old["spec"]["volumeName"].as_str().is_none_or(str::is_empty) {
                        map.remove("volumeName");
                    }
                }
                spec
            };
            if strip(old) != strip(new) {
                c.push(FieldError::forbidden(
                    "spec",
                    "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
                ));
            }
        }
        Some(Builtin::RoleBinding | Builtin::ClusterRoleBinding) => {
            immutable(old, new, "/roleRef", "roleRef", &mut c);
        }
        Some(Builtin::CustomResourceDefinition) => {
            immutable(old, new, "/spec/group", "spec.group", &mut c);
            immutable(old, new, "/spec/names/plural", "spec.names.plural", &mut c);
        }
        _ => {}
    }
    if c.errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(
            rt.named(new["metadata"]["name"].as_str().unwrap_or("")),
            &c.errors,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Registry;

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}
            }
        })
    }

    #[test]
    fn a_claims_volume_name_is_set_once_by_the_binder() {
        let rt = Registry::builtin()
            .lookup("", "v1", "persistentvolumeclaims")
            .unwrap();
        let pending = json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": "default"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
        });
        let mut bound = pending.clone();
        bound["spec"]["volumeName"] = json!("pvc-1");
        validate_update(&rt, &pending, &bound).unwrap();
        let mut moved = bound.clone();
        moved["spec"]["volumeName"] = json!("pvc-2");
        assert_eq!(validate_update(&rt, &bound, &moved).unwrap_err().code, 422);
        let mut grown = bound.clone();
        grown["spec"]["resources"]["requests"]["storage"] = json!("2Gi");
        validate_update(&rt, &bound, &grown).unwrap();
    }

    #[test]
    fn statefulset_containers_may_mount_their_claim_templates() {
        let rt = Registry::builtin()
            .lookup("apps", "v1", "statefulsets")
            .unwrap();
        let mut sts = json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": "default"},
            "spec": {
                "selector": {"matchLabels": {"app": "db"}},
                "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{
                    "name": "db", "image": "postgres",
                    "volumeMounts": [{"name": "data", "mountPath": "/var/lib/postgresql/data"}]
                }]}},
                "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {}}]
            }
        });
        validate(&rt, &sts).unwrap();
        // A mount naming neither a volume nor a claim template is still refused.
        sts["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0]["name"] =
            json!("cache");
        let err = validate(&rt, &sts).unwrap_err();
        assert_eq!(err.code, 422);
        assert!(err.message.contains("volume not found"), "{}", err.message);
    }

    #[test]
    fn unknown_fields_follow_field_validation() {
        let rt = Registry::builtin()
            .lookup("apps", "v1", "deployments")
            .unwrap();
        let mut object = deployment();
        object["spec"]["template"]["spec"]["containers"][0]["imagee"] = json!("x");
        let err = decode(
            &rt,
            &mut object.clone(),
            FieldValidation::Strict,
            &Duplicates::None,
        )
        .unwrap_err();
        assert_eq!(err.code, 400);
        assert!(
            err.message.ends_with(
                "strict decoding error: unknown field \"spec.template.spec.containers[0].imagee\""
            ),
            "{}",
            err.message
        );
        let warnings = decode(&rt, &mut object, FieldValidation::Warn, &Duplicates::None).unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(
            object["spec"]["template"]["spec"]["containers"][0]
                .get("imagee")
                .is_none()
        );
    }

    #[test]
    fn wrong_types_are_bad_requests_and_missing_fields_invalid() {
        let rt = Registry::builtin()
            .lookup("apps", "v1", "deployments")
            .unwrap();
        let mut object = deployment();
        object["spec"]["replicas"] = json!("three");
        let err = decode(&rt, &mut object, FieldValidation::Strict, &Duplicates::None).unwrap_err();
        assert_eq!(err.code, 400);
        assert!(err.message.contains("spec.replicas"), "{}", err.message);
        let mut object = deployment();
        object["spec"]["template"]["spec"]["containers"][0]
            .as_object_mut()
            .unwrap()
            .remove("name");
        decode(&rt, &mut object, FieldValidation::Strict, &Duplicates::None).unwrap();
        let err = validate(&rt, &object).unwrap_err();
        assert_eq!(err.code, 422, "{}", err.message);
        assert!(
            err.message
                .contains("spec.template.spec.containers[0].name: Required value"),
            "{}",
            err.message
        );
    }

    #[test]
    fn object_rules() {
        let rt = Registry::builtin()
            .lookup("apps", "v1", "deployments")
            .unwrap();
        validate(&rt, &deployment()).unwrap();
        let mut bad = deployment();
        bad["metadata"]["name"] = json!("Bad_Name");
        bad["spec"]["template"]["metadata"]["labels"]["app"] = json!("other");
        let err = validate(&rt, &bad).unwrap_err();
        assert_eq!(err.code, 422);
        let status = err.to_status();
        let fields: Vec<&str> = status["details"]["causes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["field"].as_str().unwrap())
            .collect();
        assert_eq!(
            fields,
            vec!["metadata.name", "spec.template.metadata.labels"]
        );
        let mut moved = deployment();
        moved["spec"]["selector"]["matchLabels"]["tier"] = json!("x");
        moved["spec"]["template"]["metadata"]["labels"]["tier"] = json!("x");
        assert!(validate_update(&rt, &deployment(), &moved).is_err());
    }

    #[test]
    fn names_by_rule() {
        assert!(is_dns1123_subdomain("web.example-1"));
        assert!(!is_dns1123_subdomain("Web"));
        assert!(!is_dns1123_label("a.b"));
        assert!(!is_dns1035_label("1abc"));
        assert!(name_error(NameRule::PathSegment, "system:controller").is_none());
    }
}
