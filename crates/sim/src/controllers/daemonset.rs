//! The DaemonSet controller: one pod on every node its `nodeSelector` allows, replaced node by
//! node within `maxUnavailable` when the template changes.

use serde_json::json;

use super::pods::fits;
use super::workload::{
    REVISION_LABEL, count, create_pod, delete_pod, ensure_revision, live_pods, pod_revision,
    prune_revisions, revision_hash,
};
use super::{
    Wake, i64_at, is_deleting, list, pod_available, pod_from_template, pod_ready, scaled,
    set_count, write_status,
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
        let hash = revision_hash(&revision).to_owned();
        let generation = ds["metadata"]["generation"].as_i64().unwrap_or(1);
        let eligible: Vec<&Obj> = nodes
            .iter()
            .filter(|n| fits(n, &template["spec"]))
            .collect();
        let pods = live_pods(state, &pods_rt, &ds);
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
                    (REVISION_LABEL, hash.clone()),
                    ("pod-template-generation", generation.to_string()),
                ],
            );
            pod["spec"]["nodeName"] = json!(node_name);
            changed |= create_pod(state, &pods_rt, &ds, pod).is_some();
        }
        // pods on nodes no longer eligible
        for pod in &pods {
            let node = pod["spec"]["nodeName"].as_str().unwrap_or("");
            if !eligible.iter().any(|n| meta_str(n, "name") == node) {
                changed |= delete_pod(state, &pods_rt, &ds, pod);
            }
        }
        // rolling update within maxUnavailable
        let pods = live_pods(state, &pods_rt, &ds);
        let desired = i64::try_from(eligible.len()).unwrap_or(0);
        let max_unavailable = scaled(
            &ds["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"],
            desired,
            true,
        )
        .max(1);
        let unavailable = count(&pods, |p| !pod_ready(p))
            + (desired - i64::try_from(pods.len()).unwrap_or(0)).max(0);
        if ds["spec"]["updateStrategy"]["type"] != "OnDelete" && unavailable < max_unavailable {
            let budget = usize::try_from(max_unavailable - unavailable).unwrap_or(0);
            for pod in pods.iter().filter(|p| pod_revision(p) != hash).take(budget) {
                changed |= delete_pod(state, &pods_rt, &ds, pod);
            }
        }
        let pods = live_pods(state, &pods_rt, &ds);
        let now = state.now;
        let min_ready = i64_at(&ds, "/spec/minReadySeconds");
        let available = count(&pods, |p| pod_available(p, min_ready, now, wake));
        let mut status = json!({
            "observedGeneration": generation,
            "desiredNumberScheduled": desired,
            "currentNumberScheduled": pods.len(),
            "numberMisscheduled": 0,
            "numberReady": count(&pods, |p| pod_ready(p)),
        });
        set_count(&mut status, "numberAvailable", available);
        set_count(
            &mut status,
            "numberUnavailable",
            (desired - available).max(0),
        );
        set_count(
            &mut status,
            "updatedNumberScheduled",
            count(&pods, |p| pod_revision(p) == hash),
        );
        changed |= prune_revisions(state, &ds, &revisions_rt, &[&revision]);
        changed |= write_status(state, &sets, &namespace, &name, status);
    }
    changed
}
