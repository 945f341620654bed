//! CustomResourceDefinitions: names are accepted and the type is established (and served) as
//! soon as the definition is stored.

use serde_json::{Value, json};

use super::{is_deleting, list, set_condition};
use crate::resources::Builtin;
use crate::state::State;

pub(crate) fn reconcile(state: &mut State) -> bool {
    let crds = state.builtin(Builtin::CustomResourceDefinition);
    let now = state.now_text();
    let mut changed = false;
    for crd in list(state, &crds, None) {
        if is_deleting(&crd) {
            continue;
        }
        let mut updated = (*crd).clone();
        let names = crd["spec"]["names"].clone();
        let mut conditions: Vec<Value> = crd["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        set_condition(
            &mut conditions,
            json!({"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found"}),
            &now,
        );
        set_condition(
            &mut conditions,
            json!({"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"}),
            &now,
        );
        let storage: Vec<Value> = crd["spec"]["versions"]
            .as_array()
            .map(|vs| {
                vs.iter()
                    .filter(|v| v["storage"].as_bool() == Some(true))
                    .map(|v| v["name"].clone())
                    .collect()
            })
            .unwrap_or_default();
        let mut stored = crd["status"]["storedVersions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for v in storage {
            if !stored.contains(&v) {
                stored.push(v);
            }
        }
        updated["status"] =
            json!({"conditions": conditions, "acceptedNames": names, "storedVersions": stored});
        if updated != *crd {
            changed |= state.controller_update(&crds, &crd, updated, "kube-apiserver", true);
        }
    }
    changed
}
