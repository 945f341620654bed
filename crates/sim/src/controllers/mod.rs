//! The controllers that make a cluster do things, run one pass at a time on the virtual clock.
//!
//! A pass runs every controller over the current state until nothing changes, under the state
//! lock; it returns the next virtual time at which something is due (a container starts, a
//! probe passes, a progress deadline passes), and the loop in `crate::server` sleeps until then
//! or until a client writes. Controllers keep no state of their own: everything they need is in
//! the stored objects (status timestamps, annotations, owner references), so a restored state
//! file continues where it stopped.

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use crate::resources::{Builtin, ResourceType};
use crate::state::State;
use crate::store::{Obj, meta_str};

mod crd;
pub(crate) mod cron;
mod cronjob;
mod daemonset;
mod deployment;
pub(crate) mod events;
mod gc;
mod hpa;
mod job;
mod namespace;
mod pdb;
pub(crate) mod pods;
mod replicaset;
mod service;
mod statefulset;
mod storage;
mod workload;

/// The manager name controllers write with, as on a real cluster.
pub(crate) const CONTROLLER_MANAGER: &str = "kube-controller-manager";

/// The earliest virtual time a controller asked to run again.
#[derive(Debug, Default)]
pub(crate) struct Wake {
    pub(crate) next: Option<Timestamp>,
}

impl Wake {
    pub(crate) fn at(&mut self, t: Timestamp) {
        self.next = Some(self.next.map_or(t, |n| n.min(t)));
    }
}

/// Runs every controller until the state settles (bounded). Returns when to run next.
pub(crate) fn run_pass(state: &mut State) -> Option<Timestamp> {
    let mut wake = Wake::default();
    for _ in 0..24 {
        let mut changed = false;
        changed |= namespace::reconcile(state, &mut wake);
        changed |= crd::reconcile(state);
        changed |= gc::reconcile(state);
        changed |= deployment::reconcile(state, &mut wake);
        changed |= replicaset::reconcile(state, &mut wake);
        changed |= statefulset::reconcile(state, &mut wake);
        changed |= daemonset::reconcile(state, &mut wake);
        changed |= cronjob::reconcile(state, &mut wake);
        changed |= job::reconcile(state, &mut wake);
        changed |= storage::reconcile(state);
        changed |= pods::reconcile(state, &mut wake);
        changed |= service::reconcile(state, &mut wake);
        changed |= hpa::reconcile(state);
        changed |= pdb::reconcile(state);
        changed |= events::prune(state, &mut wake);
        if !changed {
            break;
        }
    }
    wake.next
}

/// Creates what a fresh cluster has: system namespaces, nodes, the `kubernetes` Service, a
/// default StorageClass and IngressClass.
pub(crate) fn bootstrap(state: &mut State) {
    let manager = "ferry-sim";
    let ns = state.builtin(Builtin::Namespace);
    for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        if state.store.get(&ns.key(), "", name).is_none() {
            state.controller_create(
                &ns,
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}}}),
                manager,
            );
        }
    }
    let nodes = state.builtin(Builtin::Node);
    let zones = ["us-east-1a", "us-east-1b", "us-east-1c"];
    for i in 1..=state.config.nodes {
        let name = format!("sim-node-{i}");
        if state.store.get(&nodes.key(), "", &name).is_some() {
            continue;
        }
        let zone = zones[(i as usize - 1) % zones.len()];
        let ip = format!("10.0.{}.{}", (i - 1) % 3 + 1, 10 + i);
        let now = state.now_text();
        let node = json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/os": "linux",
                "beta.kubernetes.io/arch": "amd64",
                "node.kubernetes.io/instance-type": "m5.large",
                "topology.kubernetes.io/zone": zone,
                "topology.kubernetes.io/region": "us-east-1",
            }},
            "spec": {"podCIDR": format!("10.244.{i}.0/24"), "podCIDRs": [format!("10.244.{i}.0/24")], "providerID": format!("ferry-sim://{name}")},
        });
        if let Some(created) = state.controller_create(&nodes, node, manager) {
            let mut ready = (*created).clone();
            ready["status"] = json!({
                "capacity": {"cpu": "2", "memory": "7935172Ki", "pods": "29", "ephemeral-storage": "20959212Ki"},
                "allocatable": {"cpu": "1930m", "memory": "7244996Ki", "pods": "29", "ephemeral-storage": "18242267924"},
                "conditions": [
                    {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory", "message": "kubelet has sufficient memory available", "lastHeartbeatTime": now, "lastTransitionTime": now},
                    {"type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure", "message": "kubelet has no disk pressure", "lastHeartbeatTime": now, "lastTransitionTime": now},
                    {"type": "PIDPressure", "status": "False", "reason": "KubeletHasSufficientPID", "message": "kubelet has sufficient PID available", "lastHeartbeatTime": now, "lastTransitionTime": now},
                    {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status", "lastHeartbeatTime": now, "lastTransitionTime": now},
                ],
                "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {
                    "machineID": format!("{:032x}", i),
                    "systemUUID": format!("ec2{:029x}", i),
                    "bootID": format!("{:08x}-0000-4000-8000-{:012x}", i, i),
                    "kernelVersion": "6.1.0-ferry-sim",
                    "osImage": "ferry-sim (simulated node)",
                    "containerRuntimeVersion": "containerd://1.7.24",
                    "kubeletVersion": crate::server::discovery::GIT_VERSION,
                    "kubeProxyVersion": crate::server::discovery::GIT_VERSION,
                    "operatingSystem": "linux",
                    "architecture": "amd64",
                },
            });
            state.controller_update(&nodes, &created, ready, "kubelet", true);
        }
    }
    let services = state.builtin(Builtin::Service);
    if state
        .store
        .get(&services.key(), "default", "kubernetes")
        .is_none()
    {
        state.controller_create(
            &services,
            json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver", "provider": "kubernetes"}},
                "spec": {"clusterIP": "10.96.0.1", "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]},
            }),
            "kube-apiserver",
        );
    }
    let classes = state.builtin(Builtin::StorageClass);
    if state.store.count(&classes.key()) == 0 {
        state.controller_create(
            &classes,
            json!({
                "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                "metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
                "provisioner": "ferry-sim.io/simulated",
                "reclaimPolicy": "Delete",
                "volumeBindingMode": "Immediate",
                "allowVolumeExpansion": true,
            }),
            manager,
        );
    }
    let ingress_classes = state.builtin(Builtin::IngressClass);
    if state.store.count(&ingress_classes.key()) == 0 {
        state.controller_create(
            &ingress_classes,
            json!({
                "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
                "metadata": {"name": "alb", "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"}},
                "spec": {"controller": "ingress.k8s.aws/alb"},
            }),
            manager,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// helpers shared by controllers

/// Objects of a type (cloned handles, so the caller may write while iterating).
pub(crate) fn list(state: &State, rt: &ResourceType, namespace: Option<&str>) -> Vec<Obj> {
    state.store.list(&rt.key(), namespace).cloned().collect()
}

pub(crate) fn is_deleting(object: &Value) -> bool {
    !object["metadata"]["deletionTimestamp"].is_null()
}

/// An owner reference to `owner` that marks it as the controller.
pub(crate) fn controller_ref(owner: &Value) -> Value {
    json!({
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// Whether `owner` (by uid) is `object`'s controller.
pub(crate) fn controlled_by(object: &Value, owner_uid: &str) -> bool {
    object["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|refs| {
            refs.iter().any(|r| {
                r["uid"].as_str() == Some(owner_uid) && r["controller"].as_bool() == Some(true)
            })
        })
}

/// The objects of type `rt` in `namespace` that `owner` controls.
pub(crate) fn owned(state: &State, rt: &ResourceType, namespace: &str, owner: &Value) -> Vec<Obj> {
    let uid = meta_str(owner, "uid");
    let key = rt.key();
    let mut children: Vec<Obj> = state
        .store
        .children_of(uid)
        .into_iter()
        .filter(|at| at.gr == key && at.namespace == namespace)
        .filter_map(|at| state.store.get(&at.gr, &at.namespace, &at.name))
        .filter(|o| controlled_by(o, uid))
        .collect();
    // the order a list would give
    children.sort_by(|a, b| meta_str(a, "name").cmp(meta_str(b, "name")));
    children
}

/// Writes `status` to the stored `namespace/name` of type `rt` when it differs (the
/// controller's `UpdateStatus`). Returns whether anything changed.
pub(crate) fn write_status(
    state: &mut State,
    rt: &std::sync::Arc<ResourceType>,
    namespace: &str,
    name: &str,
    status: Value,
) -> bool {
    let Some(latest) = state.store.get(&rt.key(), namespace, name) else {
        return false;
    };
    if latest["status"] == status {
        return false;
    }
    let mut updated = (*latest).clone();
    updated["status"] = status;
    state.controller_update(rt, &latest, updated, CONTROLLER_MANAGER, true)
}

pub(crate) fn i64_at(value: &Value, pointer: &str) -> i64 {
    value.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

/// Sets `status.<field>` to `n`, omitting zeros (the API's `omitempty` int32 fields).
pub(crate) fn set_count(status: &mut Value, field: &str, n: i64) {
    if n == 0 {
        if let Some(map) = status.as_object_mut() {
            map.remove(field);
        }
    } else {
        status[field] = json!(n);
    }
}

/// A condition list entry update: keeps `lastTransitionTime` while the status is unchanged.
/// Conditions are `{type, status, reason, message, ...}`.
pub(crate) fn set_condition(conditions: &mut Vec<Value>, mut condition: Value, now: &str) {
    let kind = condition["type"].clone();
    match conditions.iter_mut().find(|c| c["type"] == kind) {
        Some(existing) => {
            if existing["status"] == condition["status"]
                && existing["reason"] == condition["reason"]
                && existing["message"] == condition["message"]
            {
                return;
            }
            condition["lastTransitionTime"] = if existing["status"] == condition["status"] {
                existing["lastTransitionTime"].clone()
            } else {
                json!(now)
            };
            *existing = condition;
        }
        None => {
            condition["lastTransitionTime"] = json!(now);
            conditions.push(condition);
        }
    }
}

/// An int-or-percent value scaled to `total` (rounding up or down), as maxSurge and
/// maxUnavailable are.
pub(crate) fn scaled(value: &Value, total: i64, round_up: bool) -> i64 {
    match value {
        Value::Number(n) => n.as_i64().unwrap_or(0),
        Value::String(s) => {
            let pct: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
            let product = pct * total;
            if round_up {
                (product + 99) / 100
            } else {
                product / 100
            }
        }
        _ => 0,
    }
}

/// FNV-32a, as the controllers hash pod templates.
pub(crate) fn fnv32a(data: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for b in data {
        hash ^= u32::from(*b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// A template hash in the API's "safe" alphabet (no vowels, no confusable digits), like
/// `pod-template-hash` and `controller-revision-hash` values.
pub(crate) fn template_hash(template: &Value, collision_count: i64) -> String {
    let mut data = serde_json::to_vec(template).unwrap_or_default();
    data.extend_from_slice(collision_count.to_string().as_bytes());
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    fnv32a(&data)
        .to_string()
        .bytes()
        .map(|b| ALPHANUMS[usize::from(b) % ALPHANUMS.len()] as char)
        .collect()
}

/// A pod template without its `pod-template-hash` label, for comparing templates.
pub(crate) fn without_hash_label(template: &Value, label: &str) -> Value {
    let mut template = template.clone();
    if let Some(labels) = template["metadata"]["labels"].as_object_mut() {
        labels.remove(label);
        if labels.is_empty()
            && let Some(meta) = template["metadata"].as_object_mut()
        {
            meta.remove("labels");
        }
    }
    if template["metadata"]
        .as_object()
        .is_some_and(serde_json::Map::is_empty)
        && let Some(map) = template.as_object_mut()
    {
        map.remove("metadata");
    }
    template
}

/// Whether a pod is Ready.
pub(crate) fn pod_ready(pod: &Value) -> bool {
    condition_true(pod, "Ready")
}

pub(crate) fn condition_true(object: &Value, kind: &str) -> bool {
    object["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == kind && c["status"] == "True")
    })
}

/// When the pod became Ready, if it is.
pub(crate) fn ready_since(pod: &Value) -> Option<Timestamp> {
    pod["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready" && c["status"] == "True")?["lastTransitionTime"]
        .as_str()
        .and_then(crate::clock::parse_time)
}

/// Ready for at least `min_ready` seconds. When it will be, `wake` is told.
pub(crate) fn pod_available(pod: &Value, min_ready: i64, now: Timestamp, wake: &mut Wake) -> bool {
    let Some(since) = ready_since(pod) else {
        return false;
    };
    if min_ready <= 0 {
        return true;
    }
    let at = since
        .saturating_add(SignedDuration::from_secs(min_ready))
        .unwrap_or(since);
    if at <= now {
        true
    } else {
        wake.at(at);
        false
    }
}

pub(crate) fn is_terminal(pod: &Value) -> bool {
    matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    )
}

/// Creates a pod from a template for an owner.
pub(crate) fn pod_from_template(
    owner: &Value,
    template: &Value,
    name: Option<String>,
    extra_labels: &[(&str, String)],
) -> Value {
    let mut meta = json!({
        "namespace": owner["metadata"]["namespace"],
        "ownerReferences": [controller_ref(owner)],
    });
    match name {
        Some(name) => meta["name"] = json!(name),
        None => meta["generateName"] = json!(format!("{}-", meta_str(owner, "name"))),
    }
    let mut labels = template["metadata"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for (k, v) in extra_labels {
        labels.insert((*k).to_owned(), json!(v));
    }
    if !labels.is_empty() {
        meta["labels"] = Value::Object(labels);
    }
    if let Some(annotations) = template["metadata"]["annotations"].as_object() {
        meta["annotations"] = Value::Object(annotations.clone());
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": template["spec"],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_like_the_controllers() {
        assert_eq!(scaled(&json!("25%"), 3, true), 1);
        assert_eq!(scaled(&json!("25%"), 3, false), 0);
        assert_eq!(scaled(&json!(2), 3, false), 2);
    }

    #[test]
    fn template_hashes_are_stable_and_safe() {
        let t = json!({"spec": {"containers": [{"name": "a", "image": "b"}]}});
        let h = template_hash(&t, 0);
        assert_eq!(h, template_hash(&t, 0));
        assert_ne!(h, template_hash(&t, 1));
        assert!(
            h.bytes()
                .all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b))
        );
    }

    #[test]
    fn conditions_keep_transition_time() {
        let mut cs = Vec::new();
        set_condition(
            &mut cs,
            json!({"type": "Ready", "status": "True", "reason": "A"}),
            "t1",
        );
        set_condition(
            &mut cs,
            json!({"type": "Ready", "status": "True", "reason": "B"}),
            "t2",
        );
        assert_eq!(cs[0]["lastTransitionTime"], "t1");
        assert_eq!(cs[0]["reason"], "B");
        set_condition(
            &mut cs,
            json!({"type": "Ready", "status": "False", "reason": "B"}),
            "t3",
        );
        assert_eq!(cs[0]["lastTransitionTime"], "t3");
    }
}
