//! Namespaces: every namespace gets its `default` ServiceAccount and `kube-root-ca.crt`
//! ConfigMap; a namespace being deleted has its contents deleted, then goes.

use serde_json::json;

use super::{Wake, is_deleting, list};

/// How long a deleted namespace waits before its contents are deleted (virtual time).
const CLEANUP_DELAY: jiff::SignedDuration = jiff::SignedDuration::from_secs(5);
use crate::resources::Builtin;
use crate::state::State;
use crate::store::meta_str;

pub(crate) fn reconcile(state: &mut State, wake: &mut Wake) -> bool {
    let namespaces = state.builtin(Builtin::Namespace);
    let service_accounts = state.builtin(Builtin::ServiceAccount);
    let config_maps = state.builtin(Builtin::ConfigMap);
    let mut changed = false;
    for ns in list(state, &namespaces, None) {
        let name = meta_str(&ns, "name").to_owned();
        if !is_deleting(&ns) {
            if state
                .store
                .get(&service_accounts.key(), &name, "default")
                .is_none()
            {
                changed |= state
                    .controller_create(
                        &service_accounts,
                        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": name}}),
                        "kube-controller-manager",
                    )
                    .is_some();
            }
            if state
                .store
                .get(&config_maps.key(), &name, "kube-root-ca.crt")
                .is_none()
            {
                let ca = state.ca_pem.clone();
                changed |= state
                    .controller_create(
                        &config_maps,
                        json!({
                            "apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": "kube-root-ca.crt", "namespace": name, "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}},
                            "data": {"ca.crt": ca},
                        }),
                        "kube-controller-manager",
                    )
                    .is_some();
            }
            continue;
        }
        // Terminating: after a moment (a real namespace controller first rediscovers every
        // resource type), delete everything in it, then the namespace itself.
        let since = ns["metadata"]["deletionTimestamp"]
            .as_str()
            .and_then(crate::clock::parse_time)
            .unwrap_or(state.now);
        let due = since.saturating_add(CLEANUP_DELAY).unwrap_or(since);
        if due > state.now {
            wake.at(due);
            continue;
        }
        let namespaced: Vec<_> = state
            .registry
            .all()
            .filter(|rt| {
                rt.namespaced
                    && rt
                        .crd
                        .as_ref()
                        .is_none_or(|c| c.storage_version == rt.version)
            })
            .cloned()
            .collect();
        let mut remaining = 0usize;
        for rt in &namespaced {
            for object in list(state, rt, Some(&name)) {
                remaining += 1;
                if !is_deleting(&object) {
                    changed |= state.controller_delete(rt, &object, None);
                }
            }
        }
        let still_there = namespaced
            .iter()
            .any(|rt| state.store.list(&rt.key(), Some(&name)).next().is_some());
        if remaining == 0 || !still_there {
            let finalizers_left = ns["metadata"]["finalizers"]
                .as_array()
                .is_some_and(|f| !f.is_empty());
            if !finalizers_left {
                state.store.remove(&namespaces.key(), "", &name);
                changed = true;
            }
        }
    }
    changed
}
