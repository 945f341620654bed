//! Generates ferry's table of required fields (and the references needed to reach them) for
//! the built-in kinds, from k8s-openapi's JSON schemas (feature `schemars`).
use serde_json::{Map, Value, json};

fn slim(schema: &Value) -> Value {
    // Keep only what finds required fields: $ref, required, properties, items,
    // additionalProperties (recursively, for inline sub-schemas).
    let mut out = Map::new();
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        out.insert("$ref".into(), json!(r.trim_start_matches("#/$defs/")));
    }
    if let Some(req) = schema.get("required") {
        out.insert("required".into(), req.clone());
    }
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        let mut p = Map::new();
        for (k, v) in props {
            let s = slim(v);
            if s.as_object().is_some_and(|o| !o.is_empty()) {
                p.insert(k.clone(), s);
            }
        }
        if !p.is_empty() {
            out.insert("properties".into(), Value::Object(p));
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(v) = schema.get(key).filter(|v| v.is_object()) {
            let s = slim(v);
            if s.as_object().is_some_and(|o| !o.is_empty()) {
                out.insert(key.into(), s);
            }
        }
    }
    Value::Object(out)
}

macro_rules! kinds {
    ($( $av:literal, $k:literal => $t:ty; )*) => {{
        let mut roots = Map::new();
        let mut defs = Map::new();
        $(
            let root = schemars::SchemaGenerator::default().into_root_schema_for::<$t>();
            let v: Value = root.into();
            for (name, d) in v.get("$defs").and_then(Value::as_object).cloned().unwrap_or_default() {
                defs.insert(name, slim(&d));
            }
            let mut top = v.clone();
            if let Some(o) = top.as_object_mut() { o.remove("$defs"); }
            roots.insert(format!("{}/{}", $av, $k), slim(&top));
        )*
        json!({"roots": roots, "defs": defs})
    }};
}

fn main() {
    use k8s_openapi::api;
    let out = kinds! {
        "v1", "Pod" => api::core::v1::Pod;
        "v1", "Service" => api::core::v1::Service;
        "v1", "ConfigMap" => api::core::v1::ConfigMap;
        "v1", "Secret" => api::core::v1::Secret;
        "v1", "Namespace" => api::core::v1::Namespace;
        "v1", "ServiceAccount" => api::core::v1::ServiceAccount;
        "v1", "PersistentVolumeClaim" => api::core::v1::PersistentVolumeClaim;
        "v1", "PersistentVolume" => api::core::v1::PersistentVolume;
        "v1", "LimitRange" => api::core::v1::LimitRange;
        "v1", "ResourceQuota" => api::core::v1::ResourceQuota;
        "v1", "Endpoints" => api::core::v1::Endpoints;
        "v1", "ReplicationController" => api::core::v1::ReplicationController;
        "apps/v1", "Deployment" => api::apps::v1::Deployment;
        "apps/v1", "StatefulSet" => api::apps::v1::StatefulSet;
        "apps/v1", "DaemonSet" => api::apps::v1::DaemonSet;
        "apps/v1", "ReplicaSet" => api::apps::v1::ReplicaSet;
        "batch/v1", "Job" => api::batch::v1::Job;
        "batch/v1", "CronJob" => api::batch::v1::CronJob;
        "networking.k8s.io/v1", "Ingress" => api::networking::v1::Ingress;
        "networking.k8s.io/v1", "IngressClass" => api::networking::v1::IngressClass;
        "networking.k8s.io/v1", "NetworkPolicy" => api::networking::v1::NetworkPolicy;
        "autoscaling/v2", "HorizontalPodAutoscaler" => api::autoscaling::v2::HorizontalPodAutoscaler;
        "autoscaling/v1", "HorizontalPodAutoscaler" => api::autoscaling::v1::HorizontalPodAutoscaler;
        "policy/v1", "PodDisruptionBudget" => api::policy::v1::PodDisruptionBudget;
        "rbac.authorization.k8s.io/v1", "Role" => api::rbac::v1::Role;
        "rbac.authorization.k8s.io/v1", "RoleBinding" => api::rbac::v1::RoleBinding;
        "rbac.authorization.k8s.io/v1", "ClusterRole" => api::rbac::v1::ClusterRole;
        "rbac.authorization.k8s.io/v1", "ClusterRoleBinding" => api::rbac::v1::ClusterRoleBinding;
        "scheduling.k8s.io/v1", "PriorityClass" => api::scheduling::v1::PriorityClass;
        "storage.k8s.io/v1", "StorageClass" => api::storage::v1::StorageClass;
        "coordination.k8s.io/v1", "Lease" => api::coordination::v1::Lease;
        "discovery.k8s.io/v1", "EndpointSlice" => api::discovery::v1::EndpointSlice;
        "admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration" => api::admissionregistration::v1::ValidatingWebhookConfiguration;
        "admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration" => api::admissionregistration::v1::MutatingWebhookConfiguration;
        "apiextensions.k8s.io/v1", "CustomResourceDefinition" => k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    };
    // Definitions with nothing to check are dropped, and references to them with them.
    println!("{}", serde_json::to_string(&out).unwrap());
}
