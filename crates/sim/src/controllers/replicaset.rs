//! The ReplicaSet controller: keeps `spec.replicas` pods, deleting the least useful first
//! (unscheduled, pending, not ready, most restarts, newest), and reports replicas, ready and
//! available (ready for `minReadySeconds`) counts.

use serde_json::{Value, json};

use super::{
    CONTROLLER_MANAGER, Wake, i64_at, is_deleting, is_terminal, list, owned, pod_available,
    pod_from_template, pod_ready, set_count,
};
use crate::resources::Builtin;
use crate::selector::LabelSelector;
use crate::state::State;
use crate::store::{Obj, meta_str};

/// Ranks pods for deletion: lower goes first.
fn deletion_rank(pod: &Value) -> (u8, u8, u8, i64, std::cmp::Reverse<String>) {
    let scheduled = u8::from(
        pod["spec"]["nodeName"]
            .as_str()
            .is_some_and(|n| !n.is_empty()),
    );
    let phase = match pod["status"]["phase"].as_str() {
        Some("Pending") => 0,
        Some("Running") => 2,
        _ => 1,
    };
    let ready = u8::from(pod_ready(pod));
    let restarts: i64 = pod["status"]["containerStatuses"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| c["restartCount"].as_i64().unwrap_or(0))
                .sum()
        })
        .unwrap_or(0);
    (
        scheduled,
        phase,
        ready,
        -restarts,
        std::cmp::Reverse(meta_str(pod, "creationTimestamp").to_owned()),
    )
}

pub(crate) fn reconcile(state: &mut State, wake: &mut Wake) -> bool {
    let replica_sets = state.builtin(Builtin::ReplicaSet);
    let pods = state.builtin(Builtin::Pod);
    let mut changed = false;
    for rs in list(state, &replica_sets, None) {
        if is_deleting(&rs) {
            continue;
        }
        let namespace = meta_str(&rs, "namespace").to_owned();
        let desired = i64_at(&rs, "/spec/replicas");
        let mut active: Vec<Obj> = owned(state, &pods, &namespace, &rs)
            .into_iter()
            .filter(|p| !is_deleting(p) && !is_terminal(p))
            .collect();
        let count = i64::try_from(active.len()).unwrap_or(i64::MAX);
        if count < desired {
            for _ in count..desired {
                let pod = pod_from_template(&rs, &rs["spec"]["template"], None, &[]);
                match state.controller_create(&pods, pod, CONTROLLER_MANAGER) {
                    Some(created) => {
                        changed = true;
                        let message = format!("Created pod: {}", meta_str(&created, "name"));
                        state.event(
                            &rs,
                            false,
                            "SuccessfulCreate",
                            &message,
                            "replicaset-controller",
                        );
                    }
                    None => {
                        state.event(
                            &rs,
                            true,
                            "FailedCreate",
                            "Error creating: the pod was rejected",
                            "replicaset-controller",
                        );
                        break;
                    }
                }
            }
        } else if count > desired {
            active.sort_by_key(|p| deletion_rank(p));
            let excess = usize::try_from(count - desired).unwrap_or(0);
            for pod in active.iter().take(excess) {
                if state.controller_delete(&pods, pod, None) {
                    changed = true;
                    let message = format!("Deleted pod: {}", meta_str(pod, "name"));
                    state.event(
                        &rs,
                        false,
                        "SuccessfulDelete",
                        &message,
                        "replicaset-controller",
                    );
                }
            }
        }
        // status
        let Some(current) = state
            .store
            .get(&replica_sets.key(), &namespace, meta_str(&rs, "name"))
        else {
            continue;
        };
        let active: Vec<Obj> = owned(state, &pods, &namespace, &current)
            .into_iter()
            .filter(|p| !is_deleting(p) && !is_terminal(p))
            .collect();
        let min_ready = i64_at(&current, "/spec/minReadySeconds");
        let template_labels = LabelSelector::from_object(
            &json!({"matchLabels": current["spec"]["template"]["metadata"]["labels"]}),
        )
        .unwrap_or_else(|_| LabelSelector::nothing());
        let replicas = i64::try_from(active.len()).unwrap_or(0);
        let fully_labeled =
            i64::try_from(active.iter().filter(|p| template_labels.matches(p)).count())
                .unwrap_or(0);
        let ready = i64::try_from(active.iter().filter(|p| pod_ready(p)).count()).unwrap_or(0);
        let now = state.now;
        let available = i64::try_from(
            active
                .iter()
                .filter(|p| pod_available(p, min_ready, now, wake))
                .count(),
        )
        .unwrap_or(0);
        let mut status = json!({
            "replicas": replicas,
            "observedGeneration": current["metadata"]["generation"],
        });
        set_count(&mut status, "fullyLabeledReplicas", fully_labeled);
        set_count(&mut status, "readyReplicas", ready);
        set_count(&mut status, "availableReplicas", available);
        if let Some(c) = current["status"].get("conditions") {
            status["conditions"] = c.clone();
        }
        if current["status"] != status {
            let mut updated = (*current).clone();
            updated["status"] = status;
            changed |=
                state.controller_update(&replica_sets, &current, updated, CONTROLLER_MANAGER, true);
        }
    }
    changed
}
