//! What the controllers that own pods (ReplicaSets, StatefulSets, DaemonSets, Jobs) share:
//! their live pods, creating and deleting them with the events each real controller records,
//! counting them for status; and the ControllerRevisions StatefulSets and DaemonSets keep.

use serde_json::{Value, json};

use super::{CONTROLLER_MANAGER, controller_ref, i64_at, is_deleting, owned, template_hash};
use crate::resources::ResourceType;
use crate::state::State;
use crate::store::{Obj, meta_str};

/// The label StatefulSet and DaemonSet pods carry with their ControllerRevision's hash.
pub(super) const REVISION_LABEL: &str = "controller-revision-hash";

/// The pods `owner` controls that are not being deleted, by name.
pub(super) fn live_pods(state: &State, pods_rt: &ResourceType, owner: &Value) -> Vec<Obj> {
    owned(state, pods_rt, meta_str(owner, "namespace"), owner)
        .into_iter()
        .filter(|p| !is_deleting(p))
        .collect()
}

/// How many of `pods` satisfy `f`.
pub(super) fn count(pods: &[Obj], mut f: impl FnMut(&Obj) -> bool) -> i64 {
    i64::try_from(pods.iter().filter(|p| f(p)).count()).unwrap_or(i64::MAX)
}

/// The component a kind's controller records its events as.
fn component(owner: &Value) -> &'static str {
    match owner["kind"].as_str() {
        Some("StatefulSet") => "statefulset-controller",
        Some("DaemonSet") => "daemonset-controller",
        Some("Job") => "job-controller",
        _ => "replicaset-controller",
    }
}

/// Creates `pod` for `owner` and records `SuccessfulCreate` or `FailedCreate` with the
/// wording of the owner's controller (the StatefulSet controller words its own).
pub(super) fn create_pod(
    state: &mut State,
    pods_rt: &std::sync::Arc<ResourceType>,
    owner: &Value,
    pod: Value,
) -> Option<Obj> {
    let statefulset = owner["kind"] == "StatefulSet";
    let set = meta_str(owner, "name");
    let (warning, reason, message, created) =
        match state.controller_try_create(pods_rt, pod.clone(), CONTROLLER_MANAGER) {
            Ok(created) => {
                let name = meta_str(&created, "name");
                let message = if statefulset {
                    format!("create Pod {name} in StatefulSet {set} successful")
                } else {
                    format!("Created pod: {name}")
                };
                (false, "SuccessfulCreate", message, Some(created))
            }
            Err(err) => {
                let message = if statefulset {
                    let name = meta_str(&pod, "name");
                    format!(
                        "create Pod {name} in StatefulSet {set} failed error: {}",
                        err.message
                    )
                } else {
                    format!("Error creating: {}", err.message)
                };
                (true, "FailedCreate", message, None)
            }
        };
    state.event(owner, warning, reason, &message, component(owner));
    created
}

/// Deletes `pod` of `owner` and records `SuccessfulDelete` when it was deleted.
pub(super) fn delete_pod(
    state: &mut State,
    pods_rt: &std::sync::Arc<ResourceType>,
    owner: &Value,
    pod: &Value,
) -> bool {
    if !state.controller_delete(pods_rt, pod, None) {
        return false;
    }
    let name = meta_str(pod, "name");
    let message = if owner["kind"] == "StatefulSet" {
        format!(
            "delete Pod {name} in StatefulSet {} successful",
            meta_str(owner, "name")
        )
    } else {
        format!("Deleted pod: {name}")
    };
    state.event(owner, false, "SuccessfulDelete", &message, component(owner));
    true
}

/// The hash part of a ControllerRevision's name (`<owner>-<hash>`).
pub(super) fn revision_hash(revision: &str) -> &str {
    revision.rsplit('-').next().unwrap_or("")
}

/// The ControllerRevision a pod was made from (its hash label).
pub(super) fn pod_revision(pod: &Value) -> &str {
    pod["metadata"]["labels"][REVISION_LABEL]
        .as_str()
        .unwrap_or("")
}

/// Finds or creates the ControllerRevision of `owner`'s current template; returns its name.
pub(super) fn ensure_revision(
    state: &mut State,
    owner: &Value,
    revisions_rt: &std::sync::Arc<ResourceType>,
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

/// Deletes `owner`'s revisions beyond its `revisionHistoryLimit` that no pod uses.
pub(super) fn prune_revisions(
    state: &mut State,
    owner: &Value,
    revisions_rt: &std::sync::Arc<ResourceType>,
    in_use: &[&str],
) -> bool {
    let limit = owner["spec"]["revisionHistoryLimit"].as_i64().unwrap_or(10);
    let namespace = meta_str(owner, "namespace").to_owned();
    let mut unused: Vec<Obj> = owned(state, revisions_rt, &namespace, owner)
        .into_iter()
        .filter(|r| !in_use.contains(&meta_str(r, "name")))
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
