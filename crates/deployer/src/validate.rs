//! Validation before the first write: everything that can be known to be wrong is found before
//! ferry changes anything, and reported together, each problem naming the file and the object.
//!
//! Offline ([`check_offline`]): required fields, names, labels, annotations ferry reads, the
//! shape of workloads and Services. Against the cluster's discovery ([`resolve_scopes`]): kinds
//! the server serves (or the release's own CRDs define), scopes, default namespaces and
//! duplicates. Against the cluster's objects ([`check_cluster`]): namespaces that will exist,
//! and ConfigMaps, Secrets and ServiceAccounts that pods use, present in the release or in the
//! cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use kube::api::{Api, DynamicObject};
use kube::discovery::ApiResource;
use serde_json::Value;

use crate::catalog::Catalog;
use crate::manifest::{Manifest, ObjectKey, annotation, pod_spec_pointer};
use crate::order::{TIMEOUT_ANNOTATION, WAVE_ANNOTATION};

/// One thing wrong with the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where: the file (and document, or generator).
    pub at: String,
    /// Which object (`Deployment web`), or "" when the problem is about a file.
    pub object: String,
    /// What is wrong, and what to do.
    pub message: String,
}

impl Problem {
    fn of(m: &Manifest, message: impl Into<String>) -> Problem {
        Problem {
            at: m.source.to_string(),
            object: m.describe_short(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.at.is_empty() && self.object.is_empty() {
            write!(f, "{}", self.message)
        } else if self.object.is_empty() {
            write!(f, "{}: {}", self.at, self.message)
        } else {
            write!(f, "{}: {}: {}", self.at, self.object, self.message)
        }
    }
}

/// A DNS-1123 subdomain (most object names).
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

/// A DNS-1123 label (Namespaces, Services, container names).
pub fn is_dns_label(s: &str) -> bool {
    is_dns_subdomain(s) && s.len() <= 63 && !s.contains('.')
}

fn is_label_value(s: &str) -> bool {
    s.is_empty()
        || (s.len() <= 63
            && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && s.chars().last().is_some_and(|c| c.is_ascii_alphanumeric())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
}

fn is_qualified_key(s: &str) -> bool {
    let (prefix, name) = match s.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    prefix.is_none_or(is_dns_subdomain) && !name.is_empty() && is_label_value(name)
}

/// Kinds whose names must be DNS labels (no dots, at most 63 characters).
fn needs_label_name(kind: &str) -> bool {
    matches!(kind, "Namespace" | "Service")
}

/// The largest request body kube-apiserver takes (`MaxRequestBodyBytes`, 3 MiB).
pub const MAX_REQUEST_BYTES: usize = 3 * 1024 * 1024;

/// Offline checks of every manifest. Secret values are never quoted in a problem.
pub fn check_offline(manifests: &[Manifest]) -> Vec<Problem> {
    let mut out = Vec::new();
    for m in manifests {
        let p = |msg: String| Problem::of(m, msg);
        let size = serde_json::to_vec(&m.object).map_or(0, |v| v.len());
        if size > MAX_REQUEST_BYTES {
            out.push(p(format!(
                "the object is {size} bytes as JSON; the API server refuses requests over {MAX_REQUEST_BYTES} bytes (3 MiB)"
            )));
        }
        let Value::Object(obj) = &m.object else {
            out.push(p("not a mapping".into()));
            continue;
        };
        match obj.get("apiVersion") {
            Some(Value::String(s)) if !s.is_empty() => {}
            Some(_) => out.push(p("`apiVersion` must be a string such as `apps/v1`".into())),
            None => out.push(p("missing `apiVersion`".into())),
        }
        match obj.get("kind") {
            Some(Value::String(s)) if !s.is_empty() => {}
            Some(_) => out.push(p("`kind` must be a string such as `Deployment`".into())),
            None => out.push(p("missing `kind`".into())),
        }
        let Some(meta) = obj.get("metadata").and_then(Value::as_object) else {
            out.push(p(
                "missing `metadata` (a mapping with at least `name`)".into()
            ));
            continue;
        };
        match meta.get("name") {
            Some(Value::String(name)) => {
                let kind = m.kind();
                if needs_label_name(kind) {
                    if !is_dns_label(name) {
                        out.push(p(format!(
                            "name `{name}` is not a valid {kind} name: at most 63 lowercase letters, digits and `-`, starting and ending with a letter or digit"
                        )));
                    }
                } else if !is_dns_subdomain(name) && !kind.ends_with("List") {
                    out.push(p(format!(
                        "name `{name}` is not a valid object name: at most 253 lowercase letters, digits, `-` and `.`, each part starting and ending with a letter or digit"
                    )));
                }
            }
            Some(_) => out.push(p("`metadata.name` must be a string".into())),
            None if meta.contains_key("generateName") => out.push(p(
                "`metadata.generateName` is not supported: ferry needs stable names to track, diff and prune objects".into(),
            )),
            None => out.push(p("missing `metadata.name`".into())),
        }
        match meta.get("namespace") {
            None => {}
            Some(Value::String(ns)) if is_dns_label(ns) => {}
            Some(other) => out.push(p(format!(
                "namespace {other} is not a valid namespace name (a DNS label)"
            ))),
        }
        for (field, check_values) in [("labels", true), ("annotations", false)] {
            match meta.get(field) {
                None | Some(Value::Null) => {}
                Some(Value::Object(map)) => {
                    for (k, v) in map {
                        if !is_qualified_key(k) {
                            out.push(p(format!("{field} key `{k}` is not a valid key")));
                        }
                        match v {
                            Value::String(s) => {
                                if check_values && !is_label_value(s) {
                                    out.push(p(format!(
                                        "label `{k}` has an invalid value `{s}` (at most 63 letters, digits, `-`, `_`, `.`)"
                                    )));
                                }
                            }
                            _ => out.push(p(format!(
                                "{field} `{k}` must be a string (quote it in YAML)"
                            ))),
                        }
                    }
                }
                Some(_) => out.push(p(format!("`metadata.{field}` must be a mapping"))),
            }
        }
        if let Some(wave) = annotation(&m.object, WAVE_ANNOTATION)
            && wave.trim().parse::<i32>().is_err()
        {
            out.push(p(format!(
                "annotation {WAVE_ANNOTATION} is `{wave}`; it must be an integer"
            )));
        }
        if let Some(t) = annotation(&m.object, TIMEOUT_ANNOTATION)
            && humantime::parse_duration(t.trim()).is_err()
        {
            out.push(p(format!(
                "annotation {TIMEOUT_ANNOTATION} is `{t}`; it must be a duration such as `5m` or `90s`"
            )));
        }
        check_kind_shape(m, &mut out);
    }
    out
}

fn check_kind_shape(m: &Manifest, out: &mut Vec<Problem>) {
    let kind = m.kind();
    let o = &m.object;
    if let Some(spec_ptr) = pod_spec_pointer(kind) {
        if !matches!(kind, "Pod" | "PodTemplate" | "CronJob" | "Job")
            && o.pointer("/spec/selector").is_none()
        {
            out.push(Problem::of(m, "missing `spec.selector`"));
        }
        match o.pointer(&format!("{spec_ptr}/containers")) {
            Some(Value::Array(cs)) if !cs.is_empty() => {
                let mut names = BTreeSet::new();
                for (i, c) in cs.iter().enumerate() {
                    let name = c.get("name").and_then(Value::as_str).unwrap_or("");
                    if name.is_empty() {
                        out.push(Problem::of(m, format!("container {i} has no `name`")));
                    } else if !is_dns_label(name) {
                        out.push(Problem::of(
                            m,
                            format!("container name `{name}` is not a DNS label"),
                        ));
                    } else if !names.insert(name.to_owned()) {
                        out.push(Problem::of(
                            m,
                            format!("container `{name}` is listed twice"),
                        ));
                    }
                    match c.get("image").and_then(Value::as_str) {
                        None => {
                            out.push(Problem::of(m, format!("container `{name}` has no `image`")));
                        }
                        Some("") => out.push(Problem::of(
                            m,
                            format!("container `{name}` has an empty image"),
                        )),
                        Some(_) => {}
                    }
                }
            }
            _ => out.push(Problem::of(
                m,
                format!(
                    "no containers at `{}`",
                    spec_ptr.trim_start_matches('/').replace('/', ".") + ".containers"
                ),
            )),
        }
        // A selector that does not select the template's pods is rejected by the server after
        // other objects were written: catch it here.
        if let (Some(Value::Object(sel)), tpl) = (
            o.pointer("/spec/selector/matchLabels"),
            o.pointer("/spec/template/metadata/labels"),
        ) {
            for (k, v) in sel {
                if tpl.and_then(|t| t.get(k)) != Some(v) {
                    out.push(Problem::of(
                        m,
                        format!(
                            "spec.selector.matchLabels `{k}: {}` does not match the pod template's labels",
                            v.as_str().unwrap_or("?")
                        ),
                    ));
                }
            }
        }
    }
    if kind == "Service" {
        let ty = o
            .pointer("/spec/type")
            .and_then(Value::as_str)
            .unwrap_or("ClusterIP");
        if ty != "ExternalName" {
            match o.pointer("/spec/ports") {
                Some(Value::Array(ps)) if !ps.is_empty() => {
                    for (i, p) in ps.iter().enumerate() {
                        if !p.get("port").is_some_and(Value::is_u64) {
                            out.push(Problem::of(m, format!("port {i} has no numeric `port`")));
                        }
                    }
                }
                _ if o.pointer("/spec/clusterIP").and_then(Value::as_str) == Some("None") => {}
                _ => out.push(Problem::of(m, "a Service needs `spec.ports`")),
            }
        }
        if !matches!(
            ty,
            "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName"
        ) {
            out.push(Problem::of(
                m,
                format!(
                    "spec.type `{ty}` is not ClusterIP, NodePort, LoadBalancer or ExternalName"
                ),
            ));
        }
    }
    if kind == "Secret"
        && let Some(Value::Object(data)) = o.get("data")
    {
        use base64::Engine as _;
        for (k, v) in data {
            let ok = v.as_str().is_some_and(|s| {
                let compact: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
                base64::engine::general_purpose::STANDARD
                    .decode(compact.as_bytes())
                    .is_ok()
            });
            if !ok {
                // Name the key, never the value.
                out.push(Problem::of(
                    m,
                    format!("data `{k}` is not base64 (use `stringData` for plain text)"),
                ));
            }
        }
    }
}

/// Resolves every manifest's kind against the catalog, fills in `default_namespace` for
/// namespaced objects without one, and reports unknown kinds, namespaces on cluster-scoped
/// objects and duplicates. Returns the resources, in manifest order (None where unknown).
pub fn resolve_scopes(
    manifests: &mut [Manifest],
    catalog: &Catalog,
    default_namespace: &str,
) -> (Vec<Option<(ApiResource, bool)>>, Vec<Problem>) {
    let mut problems = Vec::new();
    let mut resources = Vec::with_capacity(manifests.len());
    for m in manifests.iter_mut() {
        let (av, kind) = (m.api_version().to_owned(), m.kind().to_owned());
        if av.is_empty() || kind.is_empty() {
            resources.push(None);
            continue;
        }
        let Some(known) = catalog.resolve(&av, &kind) else {
            let group = crate::manifest::group_of(&av);
            let mut versions = catalog.versions_of(group, &kind);
            if versions.is_empty() {
                // An old group (`extensions/v1beta1` Deployments): where the kind is now.
                versions = catalog.api_versions_of_kind(&kind);
            }
            let hint = if !versions.is_empty() {
                format!("; the server serves {kind} as {}", versions.join(", "))
            } else {
                let similar = catalog.similar_kinds(&kind);
                if similar.is_empty() {
                    "; is its CustomResourceDefinition installed (or in this release)?".to_owned()
                } else {
                    format!(
                        "; did you mean {}?",
                        similar.into_iter().collect::<Vec<_>>().join(", ")
                    )
                }
            };
            problems.push(Problem::of(
                m,
                format!("the server does not know kind {kind} in apiVersion {av}{hint}"),
            ));
            resources.push(None);
            continue;
        };
        if known.namespaced {
            if m.namespace().is_none() {
                m.object["metadata"]["namespace"] = Value::String(default_namespace.to_owned());
            }
        } else if let Some(ns) = m.namespace() {
            problems.push(Problem::of(
                m,
                format!("{kind} is cluster-scoped but has `metadata.namespace: {ns}`; remove it"),
            ));
        }
        resources.push(Some((known.resource.clone(), known.namespaced)));
    }
    let mut seen: BTreeMap<ObjectKey, String> = BTreeMap::new();
    for m in manifests.iter() {
        if let Some(key) = m.key() {
            if let Some(first) = seen.get(&key) {
                problems.push(Problem::of(
                    m,
                    format!("{key} is defined twice (also in {first})"),
                ));
            } else {
                seen.insert(key, m.source.to_string());
            }
        }
    }
    (resources, problems)
}

/// Objects defined twice, found offline as [`resolve_scopes`] finds them against the server:
/// built-in cluster-scoped kinds have no namespace, every other kind is in its namespace or
/// `default_namespace`. (A custom kind whose scope only its CRD knows is taken as namespaced;
/// the deploy asks the server.)
pub fn duplicates_offline(manifests: &[Manifest], default_namespace: &str) -> Vec<Problem> {
    let mut seen: BTreeMap<ObjectKey, String> = BTreeMap::new();
    let mut problems = Vec::new();
    for m in manifests {
        let Some(mut key) = m.key() else { continue };
        if m.api_version().is_empty() || m.kind().is_empty() || m.name().is_empty() {
            continue;
        }
        key.namespace = if crate::manifest::is_cluster_scoped_kind(m.kind()) {
            None
        } else {
            Some(
                key.namespace
                    .unwrap_or_else(|| default_namespace.to_owned()),
            )
        };
        if let Some(first) = seen.get(&key) {
            problems.push(Problem::of(
                m,
                format!("{key} is defined twice (also in {first})"),
            ));
        } else {
            seen.insert(key, m.source.to_string());
        }
    }
    problems
}

/// A reference from a pod to another object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Reference {
    kind: &'static str,
    namespace: String,
    name: String,
    field: String,
}

fn pod_references(m: &Manifest) -> Vec<Reference> {
    let Some(ptr) = pod_spec_pointer(m.kind()) else {
        return Vec::new();
    };
    let Some(spec) = m.object.pointer(ptr) else {
        return Vec::new();
    };
    let ns = m.namespace().unwrap_or("default").to_owned();
    let mut out = Vec::new();
    let mut add = |kind: &'static str, name: Option<&str>, optional: bool, field: String| {
        if let Some(name) = name
            && !optional
        {
            out.push(Reference {
                kind,
                namespace: ns.clone(),
                name: name.to_owned(),
                field,
            });
        }
    };
    let optional = |v: &Value| v.get("optional").and_then(Value::as_bool) == Some(true);
    add(
        "ServiceAccount",
        spec.get("serviceAccountName")
            .and_then(Value::as_str)
            .filter(|n| *n != "default"),
        false,
        "serviceAccountName".into(),
    );
    for (i, s) in spec["imagePullSecrets"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        add(
            "Secret",
            s["name"].as_str(),
            false,
            format!("imagePullSecrets[{i}]"),
        );
    }
    for v in spec["volumes"].as_array().into_iter().flatten() {
        let vname = v["name"].as_str().unwrap_or("?");
        if let Some(cm) = v.get("configMap") {
            add(
                "ConfigMap",
                cm["name"].as_str(),
                optional(cm),
                format!("volume {vname}"),
            );
        }
        if let Some(s) = v.get("secret") {
            add(
                "Secret",
                s["secretName"].as_str(),
                optional(s),
                format!("volume {vname}"),
            );
        }
        for src in v
            .pointer("/projected/sources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(cm) = src.get("configMap") {
                add(
                    "ConfigMap",
                    cm["name"].as_str(),
                    optional(cm),
                    format!("volume {vname}"),
                );
            }
            if let Some(s) = src.get("secret") {
                add(
                    "Secret",
                    s["name"].as_str(),
                    optional(s),
                    format!("volume {vname}"),
                );
            }
        }
    }
    for list in ["initContainers", "containers"] {
        for c in spec[list].as_array().into_iter().flatten() {
            let cname = c["name"].as_str().unwrap_or("?");
            for e in c["envFrom"].as_array().into_iter().flatten() {
                if let Some(r) = e.get("configMapRef") {
                    add(
                        "ConfigMap",
                        r["name"].as_str(),
                        optional(r),
                        format!("container {cname} envFrom"),
                    );
                }
                if let Some(r) = e.get("secretRef") {
                    add(
                        "Secret",
                        r["name"].as_str(),
                        optional(r),
                        format!("container {cname} envFrom"),
                    );
                }
            }
            for e in c["env"].as_array().into_iter().flatten() {
                let ename = e["name"].as_str().unwrap_or("?");
                if let Some(r) = e.pointer("/valueFrom/configMapKeyRef") {
                    add(
                        "ConfigMap",
                        r["name"].as_str(),
                        optional(r),
                        format!("container {cname} env {ename}"),
                    );
                }
                if let Some(r) = e.pointer("/valueFrom/secretKeyRef") {
                    add(
                        "Secret",
                        r["name"].as_str(),
                        optional(r),
                        format!("container {cname} env {ename}"),
                    );
                }
            }
        }
    }
    out
}

/// The pod template labels of a workload manifest (its pod's metadata.labels).
fn template_labels(m: &Manifest) -> Option<&serde_json::Map<String, Value>> {
    let spec = crate::manifest::pod_spec_pointer(m.kind())?;
    let meta = spec.strip_suffix("/spec").unwrap_or("");
    m.object
        .pointer(&format!("{meta}/metadata/labels"))
        .and_then(Value::as_object)
}

/// Services whose selector matches no pod template of the release and no pod in the cluster:
/// a warning each (traffic would go nowhere), naming the selector.
pub async fn service_selector_warnings(
    client: &kube::Client,
    manifests: &[Manifest],
) -> Result<Vec<String>, kube::Error> {
    let mut out = Vec::new();
    for svc in manifests.iter().filter(|m| m.kind() == "Service") {
        let Some(selector) = svc
            .object
            .pointer("/spec/selector")
            .and_then(Value::as_object)
            .filter(|s| !s.is_empty())
        else {
            continue;
        };
        let ns = svc.namespace().unwrap_or("default");
        let matches = |labels: &serde_json::Map<String, Value>| {
            selector.iter().all(|(k, v)| labels.get(k) == Some(v))
        };
        let in_release = manifests.iter().any(|m| {
            m.namespace().unwrap_or("default") == ns && template_labels(m).is_some_and(matches)
        });
        if in_release {
            continue;
        }
        let label_selector = selector
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect::<Vec<_>>()
            .join(",");
        let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), ns);
        let found = match pods
            .list_metadata(
                &kube::api::ListParams::default()
                    .labels(&label_selector)
                    .limit(1),
            )
            .await
        {
            Ok(list) => !list.items.is_empty(),
            // A namespace the release creates holds no pods yet.
            Err(kube::Error::Api(s)) if s.code == 404 => false,
            Err(e) => return Err(e),
        };
        if !found {
            out.push(format!(
                "{} ({}): its selector {label_selector} matches no pod template of the release and no pod in namespace {ns}: it will have no endpoints",
                svc.describe_short(),
                svc.source
            ));
        }
    }
    Ok(out)
}

/// Checks what the release needs from the cluster: its namespaces exist or are created by the
/// release, and pods' references resolve in the release or the cluster. Reads only. Only the
/// manifests marked in `checked` are checked (the others, whose kind or scope is already a
/// problem, have no namespace to check); every manifest still counts as in the release.
pub async fn check_cluster(
    client: &kube::Client,
    manifests: &[Manifest],
    checked: &[bool],
) -> Result<Vec<Problem>, kube::Error> {
    let is_checked = |i: usize| checked.get(i).copied().unwrap_or(false);
    let mut problems = Vec::new();
    let in_release: BTreeSet<(String, String, String)> = manifests
        .iter()
        .map(|m| {
            (
                m.kind().to_owned(),
                m.namespace().unwrap_or("").to_owned(),
                m.name().to_owned(),
            )
        })
        .collect();
    let created_namespaces: BTreeSet<&str> = manifests
        .iter()
        .filter(|m| m.kind() == "Namespace")
        .map(Manifest::name)
        .collect();
    let mut namespace_exists: BTreeMap<String, bool> = BTreeMap::new();
    let ns_api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    for (_, m) in manifests.iter().enumerate().filter(|(i, _)| is_checked(*i)) {
        let Some(ns) = m.namespace() else { continue };
        if created_namespaces.contains(ns) {
            continue;
        }
        let exists = match namespace_exists.get(ns) {
            Some(e) => *e,
            None => {
                let e = ns_api.get_opt(ns).await?.is_some();
                namespace_exists.insert(ns.to_owned(), e);
                e
            }
        };
        if !exists {
            problems.push(Problem::of(
                m,
                format!(
                    "namespace `{ns}` does not exist and this release does not create it (add a Namespace manifest, or create it first)"
                ),
            ));
        }
    }
    let mut seen: BTreeMap<(String, String, String), bool> = BTreeMap::new();
    for (_, m) in manifests.iter().enumerate().filter(|(i, _)| is_checked(*i)) {
        for r in pod_references(m) {
            let key = (r.kind.to_owned(), r.namespace.clone(), r.name.clone());
            if in_release.contains(&key) {
                continue;
            }
            let exists = match seen.get(&key) {
                Some(e) => *e,
                None => {
                    // A namespace that does not exist yet holds nothing; one the release
                    // merely declares and that exists holds what the cluster has there.
                    if created_namespaces.contains(r.namespace.as_str())
                        && !namespace_exists.contains_key(&r.namespace)
                    {
                        let e = ns_api.get_opt(&r.namespace).await?.is_some();
                        namespace_exists.insert(r.namespace.clone(), e);
                    }
                    let ns_known = namespace_exists.get(&r.namespace) == Some(&false);
                    let e = if ns_known {
                        false
                    } else {
                        let ar = match r.kind {
                            "ConfigMap" => {
                                ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&())
                            }
                            "Secret" => {
                                ApiResource::erase::<k8s_openapi::api::core::v1::Secret>(&())
                            }
                            _ => {
                                ApiResource::erase::<k8s_openapi::api::core::v1::ServiceAccount>(&())
                            }
                        };
                        let api: Api<DynamicObject> =
                            Api::namespaced_with(client.clone(), &r.namespace, &ar);
                        api.get_metadata_opt(&r.name).await?.is_some()
                    };
                    seen.insert(key, e);
                    e
                }
            };
            if !exists {
                problems.push(Problem::of(
                    m,
                    format!(
                        "{} uses {} `{}`, which is neither in this release nor in namespace {} (mark it `optional: true` if it may be missing)",
                        r.field, r.kind, r.name, r.namespace
                    ),
                ));
            }
        }
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Source;
    use serde_json::json;

    fn m(v: Value) -> Manifest {
        Manifest {
            source: Source::document("k8s/app.yaml", 2),
            object: v,
        }
    }

    #[test]
    fn names_follow_dns_rules() {
        assert!(is_dns_subdomain("web.v1-x"));
        assert!(!is_dns_subdomain("Web"));
        assert!(!is_dns_subdomain("-web"));
        assert!(!is_dns_label("a.b"));
        assert!(is_qualified_key("app.kubernetes.io/name"));
        assert!(!is_qualified_key("bad key"));
    }

    #[test]
    fn offline_problems_name_file_and_object() {
        let problems = check_offline(&[m(json!({"apiVersion":"apps/v1","kind":"Deployment",
            "metadata":{"name":"Web_1"},"spec":{"selector":{"matchLabels":{"app":"web"}},
            "template":{"metadata":{"labels":{"app":"other"}},"spec":{"containers":[{"name":"web"}]}}}}))]);
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert!(
            text.iter()
                .all(|t| t.starts_with("k8s/app.yaml (document 2): Deployment Web_1: ")),
            "{text:?}"
        );
        assert!(
            text.iter().any(|t| t.contains("not a valid object name")),
            "{text:?}"
        );
        assert!(
            text.iter().any(|t| t.contains("has no `image`")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.contains("does not match the pod template")),
            "{text:?}"
        );
    }

    #[test]
    fn secret_values_are_never_quoted() {
        let problems = check_offline(&[m(json!({"apiVersion":"v1","kind":"Secret",
            "metadata":{"name":"s"},"data":{"password":"not base64 hunter2!"}}))]);
        assert_eq!(problems.len(), 1);
        assert!(!problems[0].to_string().contains("hunter2"));
    }

    #[test]
    fn references_are_found() {
        let d = m(
            json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"w","namespace":"x"},
            "spec":{"template":{"spec":{"serviceAccountName":"sa","containers":[{"name":"c","image":"i:1",
            "envFrom":[{"configMapRef":{"name":"cm"}},{"secretRef":{"name":"opt","optional":true}}],
            "env":[{"name":"P","valueFrom":{"secretKeyRef":{"name":"s","key":"k"}}}]}]}}}}),
        );
        let refs: Vec<(&str, String)> = pod_references(&d)
            .into_iter()
            .map(|r| (r.kind, r.name))
            .collect();
        assert_eq!(
            refs,
            [
                ("ServiceAccount", "sa".to_owned()),
                ("ConfigMap", "cm".to_owned()),
                ("Secret", "s".to_owned())
            ]
        );
    }
}
