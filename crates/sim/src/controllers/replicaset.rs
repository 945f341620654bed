//! The ReplicaSet controller: keeps `spec.replicas` pods, deleting the least useful first
//! (unscheduled, pending, not ready, most restarts, newest), and reports replicas, ready and
//! available (ready for `minReadySeconds`) counts.

use serde_json::{Value, json};

use super::workload::{count as count_pods, create_pod, delete_pod, live_pods};
use super::{
    Wake, i64_at, is_deleting, is_terminal, list, pod_available, pod_from_template, pod_ready,
    set_count, write_status,
};
use crate::resources::{Builtin, ResourceType};
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

/// The pods a ReplicaSet counts: live and not finished.
fn active_pods(state: &State, pods: &ResourceType, rs: &Value) -> Vec<Obj> {
    live_pods(state, pods, rs)
        .into_iter()
        .filter(|p| !is_terminal(p))
        .collect()
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
        let mut active = active_pods(state, &pods, &rs);
        let count = i64::try_from(active.len()).unwrap_or(i64::MAX);
        if count < desired {
            for _ in count..desired {
                let pod = pod_from_template(&rs, &rs["spec"]["template"], None, &[]);
                if create_pod(state, &pods, &rs, pod).is_none() {
                    break;
                }
                changed = true;
            }
        } else if count > desired {
            active.sort_by_key(|p| deletion_rank(p));
            let excess = usize::try_from(count - desired).unwrap_or(0);
            for pod in active.iter().take(excess) {
                changed |= delete_pod(state, &pods, &rs, pod);
            }
        }
        // status
        let Some(current) = state
            .store
            .get(&replica_sets.key(), &namespace, meta_str(&rs, "name"))
        else {
            continue;
        };
        let active = active_pods(state, &pods, &current);
        let min_ready = i64_at(&current, "/spec/minReadySeconds");
        let template_labels = LabelSelector::from_object(
            &json!({"matchLabels": current["spec"]["template"]["metadata"]["labels"]}),
        )
        .unwrap_or_else(|_| LabelSelector::nothing());
        let now = state.now;
        let mut status = json!({
            "replicas": active.len(),
            "observedGeneration": current["metadata"]["generation"],
        });
        set_count(
            &mut status,
            "fullyLabeledReplicas",
            count_pods(&active, |p| template_labels.matches(p)),
        );
        set_count(
            &mut status,
            "readyReplicas",
            count_pods(&active, |p| pod_ready(p)),
        );
        set_count(
            &mut status,
            "availableReplicas",
            count_pods(&active, |p| pod_available(p, min_ready, now, wake)),
        );
        if let Some(c) = current["status"].get("conditions") {
            status["conditions"] = c.clone();
        }
        changed |= write_status(
            state,
            &replica_sets,
            &namespace,
            meta_str(&current, "name"),
            status,
        );
    }
    changed
}
