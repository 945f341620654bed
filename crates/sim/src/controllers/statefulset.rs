//! The StatefulSet controller: pods `<name>-0..N-1` created in order (each waits for the one
//! before to be Running and Ready, under `OrderedReady`), scaled down from the highest ordinal,
//! updated from the highest ordinal down to `partition` one pod at a time; ControllerRevisions
//! record each template; PersistentVolumeClaims come from `volumeClaimTemplates`.

use serde_json::{Value, json};

use super::workload::{
    REVISION_LABEL, count, create_pod, delete_pod, ensure_revision, live_pods, pod_revision,
    prune_revisions,
};
use super::{
    CONTROLLER_MANAGER, Wake, i64_at, is_deleting, list, owned, pod_available, pod_from_template,
    pod_ready, set_count, write_status,
};
use crate::resources::{Builtin, ResourceType};
use crate::state::State;
use crate::store::meta_str;

fn ordinal(pod: &Value, set_name: &str) -> Option<i64> {
    meta_str(pod, "name")
        .strip_prefix(set_name)?
        .strip_prefix('-')?
        .parse()
        .ok()
}

/// The template of a ControllerRevision (as `ensure_revision` stored it), or `fallback`.
fn revision_template(
    state: &State,
    revisions_rt: &ResourceType,
    owner: &Value,
    revision: &str,
    fallback: &Value,
) -> Value {
    state
        .store
        .get(&revisions_rt.key(), meta_str(owner, "namespace"), revision)
        .map(|r| {
            let mut t = r["data"]["spec"]["template"].clone();
            if let Some(m) = t.as_object_mut() {
                m.remove("$patch");
            }
            t
        })
        .unwrap_or_else(|| fallback.clone())
}

/// Creates the missing claims of pod `pod_name` (ordinal `i`) from `volumeClaimTemplates`;
/// returns the pod's volumes with one per claim template added, and whether a claim was made.
fn claims(
    state: &mut State,
    sts: &Value,
    pod_name: &str,
    i: i64,
    volumes: &Value,
) -> (Vec<Value>, bool) {
    let claims_rt = state.builtin(Builtin::PersistentVolumeClaim);
    let namespace = meta_str(sts, "namespace");
    let name = meta_str(sts, "name");
    let mut volumes: Vec<Value> = volumes.as_array().cloned().unwrap_or_default();
    let mut changed = false;
    for claim in sts["spec"]["volumeClaimTemplates"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let claim_name = format!("{}-{pod_name}", meta_str(claim, "name"));
        if state
            .store
            .get(&claims_rt.key(), namespace, &claim_name)
            .is_none()
        {
            let mut labels = sts["spec"]["selector"]["matchLabels"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            labels.insert(
                "apps.kubernetes.io/pod-index".to_owned(),
                json!(i.to_string()),
            );
            let pvc = json!({
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": claim_name, "namespace": namespace, "labels": labels},
                "spec": claim["spec"],
            });
            if state
                .controller_create(&claims_rt, pvc, CONTROLLER_MANAGER)
                .is_some()
            {
                changed = true;
                state.event(
                    sts,
                    false,
                    "SuccessfulCreate",
                    &format!(
                        "create Claim {claim_name} Pod {pod_name} in StatefulSet {name} success"
                    ),
                    "statefulset-controller",
                );
            }
        }
        if !volumes
            .iter()
            .any(|v| v["name"] == claim["metadata"]["name"])
        {
            volumes.push(json!({"name": claim["metadata"]["name"], "persistentVolumeClaim": {"claimName": claim_name}}));
        }
    }
    (volumes, changed)
}

pub(crate) fn reconcile(state: &mut State, wake: &mut Wake) -> bool {
    let sets = state.builtin(Builtin::StatefulSet);
    let pods_rt = state.builtin(Builtin::Pod);
    let revisions_rt = state.builtin(Builtin::ControllerRevision);
    let mut changed = false;
    for sts in list(state, &sets, None) {
        if is_deleting(&sts) {
            continue;
        }
        let namespace = meta_str(&sts, "namespace").to_owned();
        let name = meta_str(&sts, "name").to_owned();
        let replicas = i64_at(&sts, "/spec/replicas");
        let ordered = sts["spec"]["podManagementPolicy"].as_str() != Some("Parallel");
        let min_ready = i64_at(&sts, "/spec/minReadySeconds");
        let template = sts["spec"]["template"].clone();
        let Some(update_revision) = ensure_revision(state, &sts, &revisions_rt, &template) else {
            continue;
        };
        let current_revision = sts["status"]["currentRevision"]
            .as_str()
            .unwrap_or(&update_revision)
            .to_owned();
        let partition = i64_at(&sts, "/spec/updateStrategy/rollingUpdate/partition");
        let on_delete = sts["spec"]["updateStrategy"]["type"] == "OnDelete";

        // create missing pods, in order; a pod still terminating holds its name (and, under
        // OrderedReady, the pods after it) until it is gone
        let pods = owned(state, &pods_rt, &namespace, &sts);
        for i in 0..replicas {
            let now = state.now;
            let by_ordinal = |j: i64| pods.iter().find(|p| ordinal(p, &name) == Some(j));
            if let Some(pod) = by_ordinal(i) {
                let healthy = !is_deleting(pod)
                    && pod["status"]["phase"] == "Running"
                    && pod_available(pod, min_ready, now, wake);
                if ordered && !healthy {
                    break;
                }
                continue;
            }
            let revision = if i < partition {
                &current_revision
            } else {
                &update_revision
            };
            let template = revision_template(state, &revisions_rt, &sts, revision, &template);
            let pod_name = format!("{name}-{i}");
            let (volumes, made_claims) =
                claims(state, &sts, &pod_name, i, &template["spec"]["volumes"]);
            changed |= made_claims;
            let mut pod = pod_from_template(
                &sts,
                &template,
                Some(pod_name.clone()),
                &[
                    (REVISION_LABEL, revision.clone()),
                    ("statefulset.kubernetes.io/pod-name", pod_name.clone()),
                    ("apps.kubernetes.io/pod-index", i.to_string()),
                ],
            );
            pod["spec"]["hostname"] = json!(pod_name);
            if let Some(service) = sts["spec"]["serviceName"]
                .as_str()
                .filter(|s| !s.is_empty())
            {
                pod["spec"]["subdomain"] = json!(service);
            }
            if !volumes.is_empty() {
                pod["spec"]["volumes"] = Value::Array(volumes);
            }
            changed |= create_pod(state, &pods_rt, &sts, pod).is_some();
            if ordered {
                break;
            }
        }
        // scale down from the top
        let pods = live_pods(state, &pods_rt, &sts);
        if let Some(top) = pods
            .iter()
            .filter(|p| ordinal(p, &name).is_none_or(|o| o >= replicas))
            .max_by_key(|p| ordinal(p, &name).unwrap_or(i64::MAX))
        {
            changed |= delete_pod(state, &pods_rt, &sts, top);
        }
        // rolling update, highest ordinal first, one at a time, when every pod is ready
        let pods = live_pods(state, &pods_rt, &sts);
        let complete = i64::try_from(pods.len()).unwrap_or(0) == replicas;
        if !on_delete && complete && pods.iter().all(|p| pod_ready(p)) {
            let stale = pods
                .iter()
                .filter(|p| {
                    ordinal(p, &name).is_some_and(|o| o >= partition)
                        && pod_revision(p) != update_revision
                })
                .max_by_key(|p| ordinal(p, &name).unwrap_or(0));
            if let Some(pod) = stale {
                changed |= delete_pod(state, &pods_rt, &sts, pod);
            }
        }
        // status
        let pods = live_pods(state, &pods_rt, &sts);
        let now = state.now;
        let ready = count(&pods, |p| pod_ready(p));
        let available = count(&pods, |p| pod_available(p, min_ready, now, wake));
        let updated = count(&pods, |p| pod_revision(p) == update_revision);
        let rolled_out = updated == replicas
            && ready == replicas
            && i64::try_from(pods.len()).unwrap_or(0) == replicas;
        let (current_revision, current) = if rolled_out {
            (update_revision.clone(), updated)
        } else {
            let current = count(&pods, |p| pod_revision(p) == current_revision);
            (current_revision, current)
        };
        let mut status = json!({
            "observedGeneration": sts["metadata"]["generation"],
            "replicas": pods.len(),
            "currentRevision": current_revision,
            "updateRevision": update_revision,
            "collisionCount": i64_at(&sts, "/status/collisionCount"),
            "availableReplicas": available,
        });
        set_count(&mut status, "readyReplicas", ready);
        set_count(&mut status, "currentReplicas", current);
        set_count(&mut status, "updatedReplicas", updated);
        changed |= prune_revisions(
            state,
            &sts,
            &revisions_rt,
            &[&current_revision, &update_revision],
        );
        changed |= write_status(state, &sets, &namespace, &name, status);
    }
    changed
}
