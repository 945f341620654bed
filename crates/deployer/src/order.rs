//! The order objects are applied in.
//!
//! Objects are grouped first by explicit wave (annotation `ferry.dev/wave: "N"`, default 0,
//! lower first; each wave is healthy before the next starts), then within a wave by phase:
//!
//! 0. CustomResourceDefinitions (waited on until Established, so custom objects can follow);
//! 1. Namespaces;
//! 2. RBAC, ServiceAccounts, ConfigMaps, Secrets, PVCs, quotas, limits, storage and priority
//!    classes: what workloads read at start;
//! 3. Jobs marked pre-deploy (annotation `ferry.dev/pre-deploy: "true"`; waited on until
//!    complete, like a migration);
//! 4. workloads (Deployments, StatefulSets, DaemonSets, Jobs, CronJobs, Pods) and kinds ferry
//!    does not know;
//! 5. what routes to or scales workloads: Services, Ingresses, HPAs, PDBs, NetworkPolicies.
//!
//! Objects in one phase are applied in parallel (bounded); phases run one after the other.

use crate::manifest::{Manifest, annotation};

/// The annotation that puts an object in an explicit wave.
pub const WAVE_ANNOTATION: &str = "ferry.dev/wave";
/// The annotation that marks a Job as pre-deploy.
pub const PRE_DEPLOY_ANNOTATION: &str = "ferry.dev/pre-deploy";
/// The annotation that sets an object's own readiness deadline (`5m`, `90s`).
pub const TIMEOUT_ANNOTATION: &str = "ferry.dev/timeout";

/// The phase of an object within its wave.
pub fn phase(m: &Manifest) -> u8 {
    match m.kind() {
        "CustomResourceDefinition" => 0,
        "Namespace" => 1,
        "ServiceAccount"
        | "Role"
        | "ClusterRole"
        | "RoleBinding"
        | "ClusterRoleBinding"
        | "ConfigMap"
        | "Secret"
        | "PersistentVolumeClaim"
        | "PersistentVolume"
        | "ResourceQuota"
        | "LimitRange"
        | "StorageClass"
        | "PriorityClass"
        | "IngressClass" => 2,
        "Job" if is_pre_deploy(m) => 3,
        "Service"
        | "Ingress"
        | "HorizontalPodAutoscaler"
        | "PodDisruptionBudget"
        | "NetworkPolicy"
        | "Endpoints"
        | "EndpointSlice" => 5,
        _ => 4,
    }
}

/// Whether a Job runs before the workloads.
pub fn is_pre_deploy(m: &Manifest) -> bool {
    m.kind() == "Job"
        && annotation(&m.object, PRE_DEPLOY_ANNOTATION)
            .is_some_and(|v| matches!(v.trim(), "true" | "yes" | "1"))
}

/// The explicit wave (0 when not annotated or not an integer; validation reports the latter).
pub fn wave(m: &Manifest) -> i32 {
    annotation(&m.object, WAVE_ANNOTATION)
        .and_then(|w| w.trim().parse().ok())
        .unwrap_or(0)
}

/// Indices of `manifests` grouped into steps: each step is (wave, phase, indices), in order.
pub fn steps(manifests: &[Manifest]) -> Vec<(i32, u8, Vec<usize>)> {
    let mut keyed: Vec<(i32, u8, usize)> = manifests
        .iter()
        .enumerate()
        .map(|(i, m)| (wave(m), phase(m), i))
        .collect();
    keyed.sort();
    let mut out: Vec<(i32, u8, Vec<usize>)> = Vec::new();
    for (w, p, i) in keyed {
        match out.last_mut() {
            Some((lw, lp, idx)) if *lw == w && *lp == p => idx.push(i),
            _ => out.push((w, p, vec![i])),
        }
    }
    out
}

/// The order objects are deleted in when pruning: the reverse of the apply order.
pub fn prune_phase(kind: &str) -> u8 {
    let m = Manifest {
        source: crate::manifest::Source::document("", 0),
        object: serde_json::json!({ "kind": kind }),
    };
    5 - phase(&m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Source;
    use serde_json::json;

    fn m(kind: &str, annotations: serde_json::Value) -> Manifest {
        Manifest {
            source: Source::document("x", 1),
            object: json!({"kind": kind, "metadata": {"name": "n", "annotations": annotations}}),
        }
    }

    #[test]
    fn default_order_then_waves() {
        let ms = vec![
            m("Service", json!({})),
            m("Deployment", json!({})),
            m("Namespace", json!({})),
            m("Job", json!({"ferry.dev/pre-deploy": "true"})),
            m("ConfigMap", json!({})),
            m("CustomResourceDefinition", json!({})),
            m("Deployment", json!({"ferry.dev/wave": "-1"})),
            m("Widget", json!({})),
        ];
        let order: Vec<(i32, u8, Vec<usize>)> = steps(&ms);
        assert_eq!(
            order,
            vec![
                (-1, 4, vec![6]),
                (0, 0, vec![5]),
                (0, 1, vec![2]),
                (0, 2, vec![4]),
                (0, 3, vec![3]),
                (0, 4, vec![1, 7]),
                (0, 5, vec![0]),
            ]
        );
    }
}
