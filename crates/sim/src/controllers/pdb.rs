//! PodDisruptionBudgets: how many matching pods are healthy, how many must be, and how many
//! disruptions are allowed.

use serde_json::{Value, json};

use super::{is_deleting, list, pod_ready, scaled, set_condition, write_status};
use crate::resources::Builtin;
use crate::selector::LabelSelector;
use crate::state::State;
use crate::store::meta_str;

pub(crate) fn reconcile(state: &mut State) -> bool {
    let pdbs = state.builtin(Builtin::PodDisruptionBudget);
    let pods_rt = state.builtin(Builtin::Pod);
    let mut changed = false;
    for pdb in list(state, &pdbs, None) {
        if is_deleting(&pdb) {
            continue;
        }
        let namespace = meta_str(&pdb, "namespace").to_owned();
        let selector = LabelSelector::from_object(&pdb["spec"]["selector"])
            .unwrap_or_else(|_| LabelSelector::nothing());
        let pods: Vec<_> = state
            .store
            .list(&pods_rt.key(), Some(&namespace))
            .filter(|p| !is_deleting(p) && selector.matches(p))
            .cloned()
            .collect();
        let expected = i64::try_from(pods.len()).unwrap_or(0);
        let healthy = i64::try_from(pods.iter().filter(|p| pod_ready(p)).count()).unwrap_or(0);
        let desired = if !pdb["spec"]["minAvailable"].is_null() {
            scaled(&pdb["spec"]["minAvailable"], expected, true)
        } else if !pdb["spec"]["maxUnavailable"].is_null() {
            (expected - scaled(&pdb["spec"]["maxUnavailable"], expected, true)).max(0)
        } else {
            expected
        };
        let allowed = (healthy - desired).max(0);
        let now_text = state.now_text();
        let mut conditions: Vec<Value> = pdb["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let condition = if allowed > 0 {
            json!({"type": "DisruptionAllowed", "status": "True", "reason": "SufficientPods", "message": ""})
        } else {
            json!({"type": "DisruptionAllowed", "status": "False", "reason": "InsufficientPods", "message": ""})
        };
        set_condition(&mut conditions, condition, &now_text);
        for c in &mut conditions {
            c["observedGeneration"] = pdb["metadata"]["generation"].clone();
        }
        let status = json!({
            "observedGeneration": pdb["metadata"]["generation"],
            "currentHealthy": healthy,
            "desiredHealthy": desired,
            "disruptionsAllowed": allowed,
            "expectedPods": expected,
            "conditions": conditions,
        });
        changed |= write_status(
            state,
            &pdbs,
            meta_str(&pdb, "namespace"),
            meta_str(&pdb, "name"),
            status,
        );
    }
    changed
}
