//! The DaemonSet controller: one pod on every node its `nodeSelector` allows, replaced node by
//! node within `maxUnavailable` when the template changes.

use serde_json::json;

use super::statefulset::{ensure_revision, prune_revisions};
use super::{
    CONTROLLER_MANAGER, Wake, i64_at, is_deleting, list, owned, pod_available, pod_from_template,
    pod_ready, scaled, set_count,
};
use crate::resources::Builtin;
use crate::state::State;
use crate::store::{Obj, meta_str};

pub(crate) fn reconcile(state: &mut State, wake: &mut Wake) -> bool {
    let sets = state.builtin(Builtin::DaemonSet);
    let pods_rt = state.builtin(Builtin::Pod);
    let nodes_rt = state.builtin(Builtin::Node);
    let revisions_rt = state.builtin(Builtin::ControllerRevision);
    let nodes = list(state, &nodes_rt, None);
    let mut changed = false;
    for ds in list(state, &sets, None) {
        if is_deleting(&ds) {
            continue;
        }
        let namespace = meta_str(&ds, "namespace").to_owned();
        let name = meta_str(&ds, "name").to_owned();
        let template = ds["spec"]["template"].clone();
        let Some(revision) = ensure_revision(state, &ds, &revisions_rt, &template) else {
            continue;
        };
        let hash = revision.rsplit('-').next().unwrap_or("").to_owned();
        let generation = ds["metadata"]["generation"].as_i64().unwrap_or(1);
        let selector = template["spec"]["nodeSelector"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let eligible: Vec<&Obj> = nodes
            .iter()
            .filter(|n| {
                selector
                    .iter()
                    .all(|(k, v)| n["metadata"]["labels"][k.as_str()] == *v)
            })
            .collect();
        let pods: Vec<Obj> = owned(state, &pods_rt, &namespace, &ds)
            .into_iter()
            .filter(|p| !is_deleting(p))
            .collect();
        for node in &eligible {
            let node_name = meta_str(node, "name");
            if pods
                .iter()
                .any(|p| p["spec"]["nodeName"].as_str() == Some(node_name))
            {
                continue;
            }
            let mut pod = pod_from_template(
                &ds,
                &template,
                None,
                &[
                    ("controller-revision-hash", hash.clone()),
                    ("pod-template-generation", generation.to_string()),
                ],
            );
            pod["spec"]["nodeName"] = json!(node_name);
            if let Some(created) = state.controller_create(&pods_rt, pod, CONTROLLER_MANAGER) {
                changed = true;
                state.event(
                    &ds,
                    false,
                    "SuccessfulCreate",
                    &format!("Created pod: {}", meta_str(&created, "name")),
                    "daemonset-controller",
                );
            }
        }
        // pods on nodes no longer eligible
        for pod in &pods {
            let node = pod["spec"]["nodeName"].as_str().unwrap_or("");
            if !eligible.iter().any(|n| meta_str(n, "name") == node)
                && state.controller_delete(&pods_rt, pod, None)
            {
                changed = true;
                state.event(
                    &ds,
                    false,
                    "SuccessfulDelete",
                    &format!("Deleted pod: {}", meta_str(pod, "name")),
                    "daemonset-controller",
                );
            }
        }
        // rolling update within maxUnavailable
        let pods: Vec<Obj> = owned(state, &pods_rt, &namespace, &ds)
            .into_iter()
            .filter(|p| !is_deleting(p))
            .collect();
        let desired = i64::try_from(eligible.len()).unwrap_or(0);
        let max_unavailable = scaled(
            &ds["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"],
            desired,
            true,
        )
        .max(1);
        let unavailable = i64::try_from(pods.iter().filter(|p| !pod_ready(p)).count()).unwrap_or(0)
            + (desired - i64::try_from(pods.len()).unwrap_or(0)).max(0);
        if ds["spec"]["updateStrategy"]["type"] != "OnDelete" && unavailable < max_unavailable {
            let budget = usize::try_from(max_unavailable - unavailable).unwrap_or(0);
            let stale: Vec<&Obj> = pods
                .iter()
                .filter(|p| {
                    p["metadata"]["labels"]["controller-revision-hash"].as_str()
                        != Some(hash.as_str())
                })
                .take(budget)
                .collect();
            for pod in stale {
                if state.controller_delete(&pods_rt, pod, None) {
                    changed = true;
                    state.event(
                        &ds,
                        false,
                        "SuccessfulDelete",
                        &format!("Deleted pod: {}", meta_str(pod, "name")),
                        "daemonset-controller",
                    );
                }
            }
        }
        let pods: Vec<Obj> = owned(state, &pods_rt, &namespace, &ds)
            .into_iter()
            .filter(|p| !is_deleting(p))
            .collect();
        let now = state.now;
        let min_ready = i64_at(&ds, "/spec/minReadySeconds");
        let current = i64::try_from(pods.len()).unwrap_or(0);
        let ready = i64::try_from(pods.iter().filter(|p| pod_ready(p)).count()).unwrap_or(0);
        let available = i64::try_from(
            pods.iter()
                .filter(|p| pod_available(p, min_ready, now, wake))
                .count(),
        )
        .unwrap_or(0);
        let updated = i64::try_from(
            pods.iter()
                .filter(|p| {
                    p["metadata"]["labels"]["controller-revision-hash"].as_str()
                        == Some(hash.as_str())
                })
                .count(),
        )
        .unwrap_or(0);
        let mut status = json!({
            "observedGeneration": generation,
            "desiredNumberScheduled": desired,
            "currentNumberScheduled": current,
            "numberMisscheduled": 0,
            "numberReady": ready,
        });
        set_count(&mut status, "numberAvailable", available);
        set_count(
            &mut status,
            "numberUnavailable",
            (desired - available).max(0),
        );
        set_count(&mut status, "updatedNumberScheduled", updated);
        changed |= prune_revisions(
            state,
            &ds,
            &revisions_rt,
            std::slice::from_ref(&revision),
            ds["spec"]["revisionHistoryLimit"].as_i64().unwrap_or(10),
        );
        let Some(latest) = state.store.get(&sets.key(), &namespace, &name) else {
            continue;
        };
        if latest["status"] != status {
            let mut new = (*latest).clone();
            new["status"] = status;
            changed |= state.controller_update(&sets, &latest, new, CONTROLLER_MANAGER, true);
        }
    }
    changed
}
