//! The StatefulSet controller: pods `<name>-0..N-1` created in order (each waits for the one
//! before to be Running and Ready, under `OrderedReady`), scaled down from the highest ordinal,
//! updated from the highest ordinal down to `partition` one pod at a time; ControllerRevisions
//! record each template; PersistentVolumeClaims come from `volumeClaimTemplates`.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{
    CONTROLLER_MANAGER, Wake, controller_ref, i64_at, is_deleting, list, owned, pod_available,
    pod_from_template, pod_ready, set_count, template_hash,
};
use crate::resources::{Builtin, ResourceType};
use crate::state::State;
use crate::store::{Obj, meta_str};

const REVISION_LABEL: &str = "controller-revision-hash";

/// Finds or creates the ControllerRevision of `owner`'s current template; returns its name.
pub(super) fn ensure_revision(
    state: &mut State,
    owner: &Value,
    revisions_rt: &Arc<ResourceType>,
    template: &Value,
) -> Option<String> {
    let namespace = meta_str(owner, "namespace").to_owned();
    let hash = template_hash(template, i64_at(owner, "/status/collisionCount"));
    let name = format!("{}-{hash}", meta_str(owner, "name"));
    if state
        .store
        .get(&revisions_rt.key(), &namespace, &name)
        .is_some()
    {
        return Some(name);
    }
    let max = owned(state, revisions_rt, &namespace, owner)
        .iter()
        .map(|r| i64_at(r, "/revision"))
        .max()
        .unwrap_or(0);
    let mut data_template = template.clone();
    data_template["$patch"] = json!("replace");
    let mut labels = owner["spec"]["selector"]["matchLabels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    labels.insert(REVISION_LABEL.to_owned(), json!(hash));
    let revision = json!({
        "apiVersion": "apps/v1", "kind": "ControllerRevision",
        "metadata": {"name": name, "namespace": namespace, "labels": labels, "ownerReferences": [controller_ref(owner)]},
        "data": {"spec": {"template": data_template}},
        "revision": max + 1,
    });
    state
        .controller_create(revisions_rt, revision, CONTROLLER_MANAGER)
        .map(|_| name)
}

/// Deletes revisions beyond `limit` that no pod uses.
pub(super) fn prune_revisions(
    state: &mut State,
    owner: &Value,
    revisions_rt: &Arc<ResourceType>,
    in_use: &[String],
    limit: i64,
) -> bool {
    let namespace = meta_str(owner, "namespace").to_owned();
    let mut unused: Vec<Obj> = owned(state, revisions_rt, &namespace, owner)
        .into_iter()
        .filter(|r| !in_use.iter().any(|u| u == meta_str(r, "name")))
        .collect();
    unused.sort_by_key(|r| i64_at(r, "/revision"));
    let excess = unused
        .len()
        .saturating_sub(usize::try_from(limit).unwrap_or(0));
    let mut changed = false;
    for r in unused.iter().take(excess) {
        changed |= state.controller_delete(revisions_rt, r, None);
    }
    changed
}

fn ordinal(pod: &Value, set_name: &str) -> Option<i64> {
    meta_str(pod, "name")
        .strip_prefix(set_name)?
        .strip_prefix('-')?
        .parse()
        .ok()
}

fn revision_of(pod: &Value) -> &str {
    pod["metadata"]["labels"][REVISION_LABEL]
        .as_str()
        .unwrap_or("")
}

pub(crate) fn reconcile(state: &mut State, wake: &mut Wake) -> bool {
    let sets = state.builtin(Builtin::StatefulSet);
    let pods_rt = state.builtin(Builtin::Pod);
    let revisions_rt = state.builtin(Builtin::ControllerRevision);
    let claims_rt = state.builtin(Builtin::PersistentVolumeClaim);
    let mut changed = false;
    for sts in list(state, &sets, None) {
        if is_deleting(&sts) {
            continue;
        }
        let namespace = meta_str(&sts, "namespace").to_owned();
        let name = meta_str(&sts, "name").to_owned();
        let replicas = i64_at(&sts, "/spec/replicas");
        let ordered = sts["spec"]["podManagementPolicy"].as_str() != Some("Parallel");
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
        let mut pods: Vec<Obj> = owned(state, &pods_rt, &namespace, &sts)
            .into_iter()
            .filter(|p| !is_deleting(p))
            .collect();
        pods.sort_by_key(|p| ordinal(p, &name).unwrap_or(i64::MAX));
        let by_ordinal =
            |pods: &[Obj], i: i64| pods.iter().find(|p| ordinal(p, &name) == Some(i)).cloned();

        // create missing pods, in order
        for i in 0..replicas {
            if by_ordinal(&pods, i).is_some() {
                continue;
            }
            if ordered
                && (0..i).any(|j| {
                    by_ordinal(&pods, j)
                        .is_none_or(|p| !pod_ready(&p) || p["status"]["phase"] != "Running")
                })
            {
                break;
            }
            let revision = if i < partition {
                current_revision.clone()
            } else {
                update_revision.clone()
            };
            let revision_template = state
                .store
                .get(&revisions_rt.key(), &namespace, &revision)
                .map(|r| {
                    let mut t = r["data"]["spec"]["template"].clone();
                    if let Some(m) = t.as_object_mut() {
                        m.remove("$patch");
                    }
                    t
                })
                .unwrap_or_else(|| template.clone());
            let pod_name = format!("{name}-{i}");
            // claims first
            let mut volumes: Vec<Value> = revision_template["spec"]["volumes"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for claim in sts["spec"]["volumeClaimTemplates"]
                .as_array()
                .cloned()
                .unwrap_or_default()
            {
                let claim_name = format!("{}-{pod_name}", meta_str(&claim, "name"));
                if state
                    .store
                    .get(&claims_rt.key(), &namespace, &claim_name)
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
                        state.event(&sts, false, "SuccessfulCreate", &format!("create Claim {claim_name} Pod {pod_name} in StatefulSet {name} success"), "statefulset-controller");
                    }
                }
                if !volumes
                    .iter()
                    .any(|v| v["name"] == claim["metadata"]["name"])
                {
                    volumes.push(json!({"name": claim["metadata"]["name"], "persistentVolumeClaim": {"claimName": claim_name}}));
                }
            }
            let hash = revision.rsplit('-').next().unwrap_or("").to_owned();
            let mut pod = pod_from_template(
                &sts,
                &revision_template,
                Some(pod_name.clone()),
                &[
                    (REVISION_LABEL, revision.clone()),
                    ("statefulset.kubernetes.io/pod-name", pod_name.clone()),
                    ("apps.kubernetes.io/pod-index", i.to_string()),
                ],
            );
            let _ = hash;
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
            if let Some(created) = state.controller_create(&pods_rt, pod, CONTROLLER_MANAGER) {
                changed = true;
                state.event(
                    &sts,
                    false,
                    "SuccessfulCreate",
                    &format!("create Pod {pod_name} in StatefulSet {name} successful"),
                    "statefulset-controller",
                );
                pods.push(created);
                pods.sort_by_key(|p| ordinal(p, &name).unwrap_or(i64::MAX));
            }
            if ordered {
                break;
            }
        }
        // scale down from the top
        let excess: Vec<Obj> = pods
            .iter()
            .filter(|p| ordinal(p, &name).is_none_or(|o| o >= replicas))
            .cloned()
            .collect();
        if let Some(top) = excess
            .iter()
            .max_by_key(|p| ordinal(p, &name).unwrap_or(i64::MAX))
            && state.controller_delete(&pods_rt, top, None)
        {
            changed = true;
            state.event(
                &sts,
                false,
                "SuccessfulDelete",
                &format!(
                    "delete Pod {} in StatefulSet {name} successful",
                    meta_str(top, "name")
                ),
                "statefulset-controller",
            );
        }
        // rolling update, highest ordinal first, one at a time, when every pod is ready
        let pods: Vec<Obj> = owned(state, &pods_rt, &namespace, &sts)
            .into_iter()
            .filter(|p| !is_deleting(p))
            .collect();
        let complete = i64::try_from(pods.len()).unwrap_or(0) == replicas;
        if !on_delete && complete && pods.iter().all(|p| pod_ready(p)) {
            let stale = pods
                .iter()
                .filter(|p| {
                    ordinal(p, &name).is_some_and(|o| o >= partition)
                        && revision_of(p) != update_revision
                })
                .max_by_key(|p| ordinal(p, &name).unwrap_or(0));
            if let Some(pod) = stale
                && state.controller_delete(&pods_rt, pod, None)
            {
                changed = true;
                state.event(
                    &sts,
                    false,
                    "SuccessfulDelete",
                    &format!(
                        "delete Pod {} in StatefulSet {name} successful",
                        meta_str(pod, "name")
                    ),
                    "statefulset-controller",
                );
            }
        }
        // status
        let pods: Vec<Obj> = owned(state, &pods_rt, &namespace, &sts)
            .into_iter()
            .filter(|p| !is_deleting(p))
            .collect();
        let now = state.now;
        let min_ready = i64_at(&sts, "/spec/minReadySeconds");
        let count = |f: &dyn Fn(&Obj) -> bool| {
            i64::try_from(pods.iter().filter(|p| f(p)).count()).unwrap_or(0)
        };
        let ready = count(&|p| pod_ready(p));
        let available = i64::try_from(
            pods.iter()
                .filter(|p| pod_available(p, min_ready, now, wake))
                .count(),
        )
        .unwrap_or(0);
        let updated = count(&|p| revision_of(p) == update_revision);
        let mut current_rev = current_revision.clone();
        let mut current = count(&|p| revision_of(p) == current_rev);
        if updated == replicas
            && ready == replicas
            && i64::try_from(pods.len()).unwrap_or(0) == replicas
        {
            current_rev = update_revision.clone();
            current = updated;
        }
        let mut status = json!({
            "observedGeneration": sts["metadata"]["generation"],
            "replicas": i64::try_from(pods.len()).unwrap_or(0),
            "currentRevision": current_rev,
            "updateRevision": update_revision,
            "collisionCount": i64_at(&sts, "/status/collisionCount"),
            "availableReplicas": available,
        });
        set_count(&mut status, "readyReplicas", ready);
        set_count(&mut status, "currentReplicas", current);
        set_count(&mut status, "updatedReplicas", updated);
        let in_use = vec![current_rev.clone(), update_revision.clone()];
        changed |= prune_revisions(
            state,
            &sts,
            &revisions_rt,
            &in_use,
            sts["spec"]["revisionHistoryLimit"].as_i64().unwrap_or(10),
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
