//! A minimal OpenAPI v3: per group/version, the paths and operations with their query
//! parameters and `x-kubernetes-group-version-kind`.
//!
//! This is what kubectl reads to learn that the server validates fields itself
//! (`fieldValidation` on PATCH): it then sends `fieldValidation=Strict` and skips client-side
//! schema validation, so `--validate=false` is never needed. The component schemas are
//! placeholders (`type: object` with the GVK), not the full Kubernetes schemas: `kubectl
//! explain` shows no field documentation, and the strategic-merge-patch content type is not
//! advertised, so client-side `kubectl apply` computes its patches from its compiled-in types
//! (as it does for any server without OpenAPI v2) rather than from these schemas.
//!
//! `/openapi/v2` is served too, with no paths or definitions. kubectl falls back to it when
//! the v3 documents do not name a kind (an unknown kind, a wrong apiVersion, a custom resource
//! whose CRD is missing); finding nothing there, it leaves validation to the server and reports
//! what a real cluster's kubectl reports: `no matches for kind "Widget" in version "v1"`. A 404
//! there would instead stop kubectl with `failed to download openapi ... --validate=false`.
//! kubectl asks for v2 in protobuf (gnostic's `openapi.v2.Document`); the three fields written
//! here are encoded by hand ([`v2_protobuf`]) rather than pulling a protobuf code generator
//! into the workspace for one constant message.

use serde_json::{Map, Value, json};

use super::discovery::GIT_VERSION;
use crate::resources::{Registry, ResourceType};

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn hash_of(registry: &Registry, group: &str, version: &str) -> String {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    for rt in registry
        .all()
        .filter(|rt| rt.group == group && rt.version == version)
    {
        hasher.update(rt.plural.as_bytes());
        hasher.update(rt.kind.as_bytes());
        hasher.update([
            u8::from(rt.namespaced),
            u8::from(rt.status),
            u8::from(rt.scale.is_some()),
        ]);
    }
    hex::encode(hasher.finalize())[..32].to_ascii_uppercase()
}

/// `/openapi/v3`: the index of group/version documents.
pub(crate) fn index(registry: &Registry) -> Value {
    let mut paths = Map::new();
    for (group, versions) in registry.groups() {
        for version in versions {
            let path = gv_path(&group, &version);
            paths.insert(
                path.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={}", hash_of(registry, &group, &version))}),
            );
        }
    }
    json!({"paths": paths})
}

fn param(name: &str) -> Value {
    json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}})
}

fn schema_name(rt: &ResourceType) -> String {
    let group = if rt.group.is_empty() {
        "core".to_owned()
    } else {
        rt.group.clone()
    };
    format!("ferry-sim.{group}.{}.{}", rt.version, rt.kind)
}

fn gvk(rt: &ResourceType) -> Value {
    json!({"group": rt.group, "version": rt.version, "kind": rt.kind})
}

fn operation(
    rt: &ResourceType,
    action: &str,
    id: &str,
    params: &[&str],
    body_types: &[&str],
    sub: &str,
) -> Value {
    let reference = json!({"$ref": format!("#/components/schemas/{}", schema_name(rt))});
    let mut op = json!({
        "operationId": format!("{action}{}{}{}", rt.kind, sub, id),
        "parameters": params.iter().map(|p| param(p)).collect::<Vec<_>>(),
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": reference}}}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk(rt),
    });
    if !body_types.is_empty() {
        let mut content = Map::new();
        for t in body_types {
            content.insert((*t).to_owned(), json!({"schema": reference}));
        }
        op["requestBody"] = json!({"content": content, "required": true});
    }
    op
}

/// `/openapi/v3/apis/{group}/{version}` (or `api/v1`).
pub(crate) fn group_version(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let types: Vec<&std::sync::Arc<ResourceType>> = registry
        .all()
        .filter(|rt| rt.group == group && rt.version == version)
        .collect();
    if types.is_empty() {
        return None;
    }
    let prefix = format!("/{}", gv_path(group, version));
    let write_params = ["dryRun", "fieldManager", "fieldValidation", "pretty"];
    let patch_params = [
        "dryRun",
        "fieldManager",
        "fieldValidation",
        "force",
        "pretty",
    ];
    let patch_types = [
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/apply-patch+yaml",
    ];
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for rt in types {
        let collection = if rt.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}", rt.plural)
        } else {
            format!("{prefix}/{}", rt.plural)
        };
        paths.insert(
            collection.clone(),
            json!({
                "get": operation(rt, "list", "", &["labelSelector", "fieldSelector", "limit", "continue", "resourceVersion", "watch"], &[], "List"),
                "post": operation(rt, "post", "", &write_params, &["application/json", "application/yaml"], ""),
                "delete": operation(rt, "deletecollection", "", &["labelSelector", "fieldSelector", "dryRun"], &[], "Collection"),
            }),
        );
        let item = format!("{collection}/{{name}}");
        paths.insert(
            item.clone(),
            json!({
                "get": operation(rt, "get", "", &["pretty"], &[], ""),
                "put": operation(rt, "put", "", &write_params, &["application/json", "application/yaml"], ""),
                "patch": operation(rt, "patch", "", &patch_params, &patch_types, ""),
                "delete": operation(rt, "delete", "", &["dryRun", "gracePeriodSeconds", "propagationPolicy"], &[], ""),
            }),
        );
        if rt.status {
            paths.insert(
                format!("{item}/status"),
                json!({
                    "get": operation(rt, "get", "", &["pretty"], &[], "Status"),
                    "put": operation(rt, "put", "", &write_params, &["application/json"], "Status"),
                    "patch": operation(rt, "patch", "", &patch_params, &patch_types, "Status"),
                }),
            );
        }
        if rt.namespaced {
            paths.insert(
                format!("{prefix}/{}", rt.plural),
                json!({"get": operation(rt, "list", "ForAllNamespaces", &["labelSelector", "fieldSelector", "limit", "continue", "resourceVersion", "watch"], &[], "List")}),
            );
        }
        schemas.insert(
            schema_name(rt),
            json!({
                "type": "object",
                "description": format!("{} ({}). ferry-sim serves placeholder schemas: the server validates objects itself.", rt.kind, rt.api_version()),
                "x-kubernetes-preserve-unknown-fields": true,
                "x-kubernetes-group-version-kind": [gvk(rt)],
            }),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (ferry-sim)", "version": GIT_VERSION},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

/// The media type of `/openapi/v2` in protobuf, as the API server names it in its answer
/// (kubectl asks for the older spelling with `@v1.0`, which Go's media type parser rejects in a
/// Content-Type).
pub(crate) const V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// Whether an Accept header asks for `/openapi/v2` in protobuf (either spelling).
pub(crate) fn wants_v2_protobuf(accept: &str) -> bool {
    accept.contains("application/com.github.proto-openapi.spec.v2")
}

const V2_TITLE: &str = "Kubernetes (ferry-sim)";

/// `/openapi/v2` as JSON: a Swagger 2.0 document with no paths (see the module docs).
pub(crate) fn v2_json() -> Value {
    json!({
        "swagger": "2.0",
        "info": {"title": V2_TITLE, "version": GIT_VERSION},
        "paths": {},
        "definitions": {},
    })
}

/// `/openapi/v2` as gnostic's `openapi.v2.Document` in protobuf: `swagger` (field 1), `info`
/// (field 2: `title` 1, `version` 2) and an empty `paths` (field 8).
pub(crate) fn v2_protobuf() -> Vec<u8> {
    fn field(out: &mut Vec<u8>, number: u8, bytes: &[u8]) {
        // wire type 2 (length-delimited); every length here is below 128, one varint byte
        out.push(number << 3 | 2);
        out.push(u8::try_from(bytes.len()).expect("short field"));
        out.extend_from_slice(bytes);
    }
    let mut info = Vec::new();
    field(&mut info, 1, V2_TITLE.as_bytes());
    field(&mut info, 2, GIT_VERSION.as_bytes());
    let mut doc = Vec::new();
    field(&mut doc, 1, b"2.0");
    field(&mut doc, 2, &info);
    field(&mut doc, 8, &[]);
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_v2_document_is_gnostics_message_with_no_paths() {
        let doc = v2_protobuf();
        let mut expected = vec![0x0a, 3];
        expected.extend_from_slice(b"2.0");
        expected.extend_from_slice(&[
            0x12,
            u8::try_from(4 + V2_TITLE.len() + GIT_VERSION.len()).unwrap(),
        ]);
        expected.extend_from_slice(&[0x0a, u8::try_from(V2_TITLE.len()).unwrap()]);
        expected.extend_from_slice(V2_TITLE.as_bytes());
        expected.extend_from_slice(&[0x12, u8::try_from(GIT_VERSION.len()).unwrap()]);
        expected.extend_from_slice(GIT_VERSION.as_bytes());
        expected.extend_from_slice(&[0x42, 0]);
        assert_eq!(doc, expected);
        assert_eq!(v2_json()["swagger"], "2.0");
        assert_eq!(v2_json()["paths"], json!({}));
    }

    #[test]
    fn patch_operations_advertise_field_validation() {
        let registry = Registry::builtin();
        let index = index(&registry);
        assert!(
            index["paths"]["apis/apps/v1"]["serverRelativeURL"]
                .as_str()
                .unwrap()
                .starts_with("/openapi/v3/apis/apps/v1?hash=")
        );
        let doc = group_version(&registry, "apps", "v1").unwrap();
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "Deployment"
        );
        assert!(
            patch["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation")
        );
        assert!(
            patch["requestBody"]["content"]
                .get("application/strategic-merge-patch+json")
                .is_none()
        );
    }
}
