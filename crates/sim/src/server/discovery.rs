//! `/version` and discovery: the legacy documents (`/api`, `/apis`, `/api/v1`,
//! `/apis/{group}/{version}`) and aggregated discovery (`apidiscovery.k8s.io/v2`), which
//! kubectl 1.32 asks for first.

use serde_json::{Value, json};

use crate::resources::{Registry, ResourceType};

/// The Kubernetes version the simulator reports (kubectl's version skew check reads it).
pub(crate) const GIT_VERSION: &str = "v1.32.4-ferry-sim";

pub(crate) const AGGREGATED_CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

pub(crate) fn version() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": GIT_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.23.0",
        "compiler": "gc",
        "platform": "linux/amd64",
        "emulationMajor": "1",
        "emulationMinor": "32",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "31",
    })
}

const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

fn storage_version_hash(rt: &ResourceType) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let digest =
        sha2::Sha256::digest(format!("{}/{}/{}", rt.group, rt.version, rt.kind).as_bytes());
    base64::engine::general_purpose::STANDARD.encode(&digest[..8])
}

/// Subresources a type serves: (name, kind, group, version, verbs).
fn subresources(
    rt: &ResourceType,
) -> Vec<(&'static str, String, String, String, Vec<&'static str>)> {
    let mut subs = Vec::new();
    if rt.scale.is_some() {
        subs.push((
            "scale",
            "Scale".to_owned(),
            "autoscaling".to_owned(),
            "v1".to_owned(),
            vec!["get", "patch", "update"],
        ));
    }
    if rt.status {
        subs.push((
            "status",
            rt.kind.clone(),
            String::new(),
            String::new(),
            vec!["get", "patch", "update"],
        ));
    }
    if rt.is(crate::resources::Builtin::Pod) {
        subs.insert(
            0,
            (
                "log",
                "Pod".to_owned(),
                String::new(),
                String::new(),
                vec!["get"],
            ),
        );
    }
    subs
}

/// `/api` (legacy).
pub(crate) fn api_versions(address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
    })
}

fn group_entry(group: &str, versions: &[String]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({
        "name": group,
        "versions": versions,
        "preferredVersion": versions.first().cloned().unwrap_or(Value::Null),
    })
}

/// `/apis` (legacy).
pub(crate) fn api_group_list(registry: &Registry) -> Value {
    let groups: Vec<Value> = registry
        .groups()
        .iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, vs)| group_entry(g, vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/{group}` (legacy).
pub(crate) fn api_group(registry: &Registry, group: &str) -> Option<Value> {
    let groups = registry.groups();
    let (g, vs) = groups.iter().find(|(g, _)| g == group && !g.is_empty())?;
    let mut entry = group_entry(g, vs);
    entry["kind"] = json!("APIGroup");
    entry["apiVersion"] = json!("v1");
    Some(entry)
}

/// `/api/v1` or `/apis/{group}/{version}` (legacy).
pub(crate) fn api_resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let mut types: Vec<&std::sync::Arc<ResourceType>> = registry
        .all()
        .filter(|rt| rt.group == group && rt.version == version)
        .collect();
    // sorted by name, as the API server lists them (kubectl's `get all` follows this order)
    types.sort_by(|a, b| a.plural.cmp(&b.plural));
    if types.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for rt in types {
        let mut entry = json!({
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": VERBS,
            "storageVersionHash": storage_version_hash(rt),
        });
        if !rt.short_names.is_empty() {
            entry["shortNames"] = json!(rt.short_names);
        }
        if !rt.categories.is_empty() {
            entry["categories"] = json!(rt.categories);
        }
        resources.push(entry);
        for (sub, kind, g, v, verbs) in subresources(rt) {
            let mut entry = json!({
                "name": format!("{}/{sub}", rt.plural),
                "singularName": "",
                "namespaced": rt.namespaced,
                "kind": kind,
                "verbs": verbs,
            });
            if !g.is_empty() {
                entry["group"] = json!(g);
                entry["version"] = json!(v);
            }
            resources.push(entry);
        }
    }
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}),
    )
}

fn aggregated_resource(rt: &ResourceType) -> Value {
    let mut entry = json!({
        "resource": rt.plural,
        "responseKind": {"group": "", "version": "", "kind": rt.kind},
        "scope": if rt.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": rt.singular,
        "verbs": VERBS,
    });
    if !rt.short_names.is_empty() {
        entry["shortNames"] = json!(rt.short_names);
    }
    if !rt.categories.is_empty() {
        entry["categories"] = json!(rt.categories);
    }
    let subs: Vec<Value> = subresources(rt)
        .into_iter()
        .map(|(sub, kind, g, v, verbs)| {
            json!({"subresource": sub, "responseKind": {"group": g, "version": v, "kind": kind}, "verbs": verbs})
        })
        .collect();
    if !subs.is_empty() {
        entry["subresources"] = Value::Array(subs);
    }
    entry
}

/// Aggregated discovery: `/api` (`core` = true) or `/apis`.
pub(crate) fn aggregated(registry: &Registry, core: bool) -> Value {
    let mut items = Vec::new();
    for (group, versions) in registry.groups() {
        if group.is_empty() != core {
            continue;
        }
        let versions: Vec<Value> = versions
            .iter()
            .map(|v| {
                let mut types: Vec<&std::sync::Arc<ResourceType>> = registry
                    .all()
                    .filter(|rt| rt.group == group && rt.version == *v)
                    .collect();
                types.sort_by(|a, b| a.plural.cmp(&b.plural));
                let resources: Vec<Value> = types
                    .into_iter()
                    .map(|rt| aggregated_resource(rt))
                    .collect();
                json!({"version": v, "resources": resources, "freshness": "Current"})
            })
            .collect();
        items.push(
            json!({"metadata": {"name": group, "creationTimestamp": null}, "versions": versions}),
        );
    }
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}

/// Whether an Accept header asks for aggregated discovery v2.
pub(crate) fn wants_aggregated(accept: &str) -> bool {
    accept.split(',').any(|part| {
        let params: Vec<&str> = part.split(';').map(str::trim).collect();
        params.contains(&"g=apidiscovery.k8s.io")
            && params.contains(&"v=v2")
            && params.contains(&"as=APIGroupDiscoveryList")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_documents() {
        let registry = Registry::builtin();
        let core = api_resource_list(&registry, "", "v1").unwrap();
        let names: Vec<&str> = core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"pods/log") && names.contains(&"namespaces"));
        let apis = api_group_list(&registry);
        assert!(
            apis["groups"]
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g["name"] == "apps")
        );
        let agg = aggregated(&registry, false);
        let apps = agg["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["metadata"]["name"] == "apps")
            .unwrap();
        let deploy = apps["versions"][0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == "deployments")
            .unwrap();
        assert_eq!(deploy["scope"], "Namespaced");
        assert_eq!(deploy["subresources"][0]["subresource"], "scale");
        assert!(wants_aggregated(
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
        ));
        assert!(!wants_aggregated("application/json"));
    }
}
