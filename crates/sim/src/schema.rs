//! What merging needs to know about a type's shape: which lists are associative (and their keys),
//! which are sets, which maps and lists are atomic, and the strategic-merge-patch keys.
//!
//! The real API server reads this from the OpenAPI extensions (`x-kubernetes-list-type`,
//! `x-kubernetes-list-map-keys`, `x-kubernetes-map-type`, `x-kubernetes-patch-merge-key`).
//! k8s-openapi does not carry those extensions as data, so the built-in types use a small table
//! of the paths that matter (containers by name, ports by port and protocol, env by name, ...);
//! custom resources use their CRD's schema. Lists not named are atomic, as in the real server.

use serde_json::Value;

/// How a list merges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ListType {
    /// Replaced as a whole; owned as one field.
    Atomic,
    /// A set of scalars; each value owned separately.
    Set,
    /// Items identified by these key fields; each item merged and owned separately.
    Map(Vec<String>),
}

/// The shape knowledge for one type: a built-in kind or a custom resource's schema.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape<'a> {
    pub(crate) kind: &'a str,
    pub(crate) crd_schema: Option<&'a Value>,
}

const CONTAINER_LISTS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];

fn keys(k: &[&str]) -> ListType {
    ListType::Map(k.iter().map(|s| (*s).to_owned()).collect())
}

impl Shape<'_> {
    /// The list type at `path` (field names from the object root; list items add nothing).
    pub(crate) fn list_type(&self, path: &[&str]) -> ListType {
        if path.first() != Some(&"metadata")
            && let Some(schema) = self.crd_schema
        {
            return crd_node(schema, path).map_or(ListType::Atomic, crd_list_type);
        }
        builtin_list_type(self.kind, path)
    }

    /// Whether the map (object) at `path` is atomic: replaced and owned as one field.
    pub(crate) fn map_is_atomic(&self, path: &[&str]) -> bool {
        if path.first() != Some(&"metadata")
            && let Some(schema) = self.crd_schema
        {
            return crd_node(schema, path)
                .is_some_and(|n| n["x-kubernetes-map-type"].as_str() == Some("atomic"));
        }
        builtin_map_is_atomic(path)
    }

    /// The strategic-merge-patch strategy of the list at `path`: `Some(Some(key))` merges
    /// items by `key`, `Some(None)` merges scalars as a set, `None` replaces.
    pub(crate) fn smp_merge(&self, path: &[&str]) -> Option<Option<&'static str>> {
        let last = *path.last()?;
        let parent = path.len().checked_sub(2).map(|i| path[i]);
        match last {
            "containers" | "initContainers" | "ephemeralContainers" => Some(Some("name")),
            "ports" if parent.is_some_and(|p| CONTAINER_LISTS.contains(&p)) => {
                Some(Some("containerPort"))
            }
            "ports" if self.kind == "Service" && path == ["spec", "ports"] => Some(Some("port")),
            "env" | "imagePullSecrets" | "volumes" | "resourceClaims" | "schedulingGates" => {
                Some(Some("name"))
            }
            "volumeMounts" => Some(Some("mountPath")),
            "volumeDevices" => Some(Some("devicePath")),
            "hostAliases" => Some(Some("ip")),
            "topologySpreadConstraints" => Some(Some("topologyKey")),
            "conditions" => Some(Some("type")),
            "ownerReferences" => Some(Some("uid")),
            "finalizers" => Some(None),
            _ => None,
        }
    }
}

fn builtin_list_type(kind: &str, path: &[&str]) -> ListType {
    let Some(&last) = path.last() else {
        return ListType::Atomic;
    };
    let parent = path.len().checked_sub(2).map(|i| path[i]);
    match last {
        "containers" | "initContainers" | "ephemeralContainers" => keys(&["name"]),
        "ports" if parent.is_some_and(|p| CONTAINER_LISTS.contains(&p)) => {
            keys(&["containerPort", "protocol"])
        }
        "ports" if kind == "Service" && path == ["spec", "ports"] => keys(&["port", "protocol"]),
        "env" | "imagePullSecrets" | "resourceClaims" | "schedulingGates" => keys(&["name"]),
        "volumes" if parent == Some("spec") => keys(&["name"]),
        "claims" if parent == Some("resources") => keys(&["name"]),
        "volumeMounts" => keys(&["mountPath"]),
        "volumeDevices" => keys(&["devicePath"]),
        "hostAliases" => keys(&["ip"]),
        "topologySpreadConstraints" => keys(&["topologyKey", "whenUnsatisfiable"]),
        "conditions" => keys(&["type"]),
        "ownerReferences" if parent == Some("metadata") => keys(&["uid"]),
        "finalizers" if parent == Some("metadata") => ListType::Set,
        _ => ListType::Atomic,
    }
}

fn builtin_map_is_atomic(path: &[&str]) -> bool {
    let Some(&last) = path.last() else {
        return false;
    };
    let parent = path.len().checked_sub(2).map(|i| path[i]);
    match last {
        "selector" => parent == Some("spec"),
        "nodeSelector" | "podSelector" | "namespaceSelector" | "labelSelector"
        | "configMapKeyRef" | "secretKeyRef" | "fieldRef" | "resourceFieldRef" | "roleRef" => true,
        _ => false,
    }
}

/// The schema node at `path`, stepping through `properties` and array `items`.
fn crd_node<'s>(schema: &'s Value, path: &[&str]) -> Option<&'s Value> {
    let mut node = schema;
    for (i, part) in path.iter().enumerate() {
        if i > 0 && node["type"].as_str() == Some("array") {
            node = &node["items"];
        }
        let next =
            node["properties"]
                .get(*part)
                .or_else(|| match &node["additionalProperties"] {
                    Value::Object(_) => Some(&node["additionalProperties"]),
                    _ => None,
                })?;
        node = next;
    }
    Some(node)
}

fn crd_list_type(node: &Value) -> ListType {
    match node["x-kubernetes-list-type"].as_str() {
        Some("set") => ListType::Set,
        Some("map") => ListType::Map(
            node["x-kubernetes-list-map-keys"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|k| k.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
        ),
        _ => ListType::Atomic,
    }
}

/// The default of a list-map key field when an item leaves it out (`protocol: TCP` for ports),
/// so `{containerPort: 80}` and `{containerPort: 80, protocol: TCP}` are the same item.
pub(crate) fn key_default(field: &str) -> Option<Value> {
    match field {
        "protocol" => Some(Value::String("TCP".to_owned())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builtin_paths() {
        let d = Shape {
            kind: "Deployment",
            crd_schema: None,
        };
        let containers = ["spec", "template", "spec", "containers"];
        assert_eq!(d.list_type(&containers), keys(&["name"]));
        assert_eq!(
            d.list_type(&["spec", "template", "spec", "containers", "ports"]),
            keys(&["containerPort", "protocol"])
        );
        assert_eq!(
            d.list_type(&["spec", "template", "spec", "containers", "args"]),
            ListType::Atomic
        );
        assert_eq!(d.list_type(&["metadata", "finalizers"]), ListType::Set);
        assert!(d.map_is_atomic(&["spec", "selector"]));
        assert!(!d.map_is_atomic(&["spec", "template", "metadata", "labels"]));
        let s = Shape {
            kind: "Service",
            crd_schema: None,
        };
        assert_eq!(s.list_type(&["spec", "ports"]), keys(&["port", "protocol"]));
        assert_eq!(s.smp_merge(&["spec", "ports"]), Some(Some("port")));
    }

    #[test]
    fn crd_schemas_declare_list_types() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "items": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id"],
                      "items": {"type": "object", "properties": {"tags": {"type": "array", "x-kubernetes-list-type": "set"}}}},
            "args": {"type": "array"},
            "ref": {"type": "object", "x-kubernetes-map-type": "atomic"}
        }}}});
        let shape = Shape {
            kind: "Widget",
            crd_schema: Some(&schema),
        };
        assert_eq!(shape.list_type(&["spec", "items"]), keys(&["id"]));
        assert_eq!(shape.list_type(&["spec", "items", "tags"]), ListType::Set);
        assert_eq!(shape.list_type(&["spec", "args"]), ListType::Atomic);
        assert!(shape.map_is_atomic(&["spec", "ref"]));
        assert_eq!(shape.list_type(&["metadata", "finalizers"]), ListType::Set);
    }
}
