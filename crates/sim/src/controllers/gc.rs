//! The garbage collector: objects whose owners are all gone are deleted (background
//! propagation); owners deleted in the foreground wait for their dependents; `orphan` deletion
//! leaves dependents without the owner reference.

use std::collections::HashMap;

use serde_json::Value;

use super::is_deleting;
use crate::resources::ResourceType;
use crate::state::{Propagation, State};
use crate::store::{Obj, meta_str, strings};

fn finalizers(object: &Value) -> Vec<String> {
    strings(&object["metadata"]["finalizers"])
}

fn without_finalizer(object: &Value, finalizer: &str) -> Value {
    let mut updated = object.clone();
    if let Some(list) = updated["metadata"]["finalizers"].as_array_mut() {
        list.retain(|f| f.as_str() != Some(finalizer));
    }
    updated
}

pub(crate) fn reconcile(state: &mut State) -> bool {
    let types: Vec<std::sync::Arc<ResourceType>> = state
        .registry
        .all()
        .filter(|rt| {
            rt.crd
                .as_ref()
                .is_none_or(|c| c.storage_version == rt.version)
        })
        .cloned()
        .collect();
    // dependents by owner uid
    let mut dependents: HashMap<String, Vec<(std::sync::Arc<ResourceType>, Obj)>> = HashMap::new();
    let mut orphans: Vec<(std::sync::Arc<ResourceType>, Obj, bool)> = Vec::new();
    for rt in &types {
        for object in state.store.list(&rt.key(), None) {
            let Some(refs) = object["metadata"]["ownerReferences"].as_array() else {
                continue;
            };
            if refs.is_empty() {
                continue;
            }
            let mut alive = 0;
            for r in refs {
                let uid = r["uid"].as_str().unwrap_or("");
                if state.store.by_uid(uid).is_some() {
                    alive += 1;
                }
                dependents
                    .entry(uid.to_owned())
                    .or_default()
                    .push((rt.clone(), object.clone()));
            }
            if alive < refs.len() {
                orphans.push((rt.clone(), object.clone(), alive == 0));
            }
        }
    }
    let mut changed = false;
    for (rt, object, all_gone) in orphans {
        if all_gone {
            if !is_deleting(&object) {
                changed |= state.controller_delete(&rt, &object, Some(Propagation::Background));
            }
        } else {
            let mut updated = (*object).clone();
            if let Some(refs) = updated["metadata"]["ownerReferences"].as_array_mut() {
                refs.retain(|r| {
                    state
                        .store
                        .by_uid(r["uid"].as_str().unwrap_or(""))
                        .is_some()
                });
            }
            changed |=
                state.controller_update(&rt, &object, updated, "kube-controller-manager", false);
        }
    }
    // owners being deleted in the foreground or orphaning
    for rt in &types {
        let deleting: Vec<Obj> = state
            .store
            .list(&rt.key(), None)
            .filter(|o| is_deleting(o))
            .cloned()
            .collect();
        for owner in deleting {
            let f = finalizers(&owner);
            let uid = meta_str(&owner, "uid").to_owned();
            let deps = dependents.get(&uid).cloned().unwrap_or_default();
            if f.iter().any(|x| x == "orphan") {
                for (drt, dep) in &deps {
                    let Some(current) = state.store.get(
                        &drt.key(),
                        meta_str(dep, "namespace"),
                        meta_str(dep, "name"),
                    ) else {
                        continue;
                    };
                    let mut updated = (*current).clone();
                    if let Some(refs) = updated["metadata"]["ownerReferences"].as_array_mut() {
                        refs.retain(|r| r["uid"].as_str() != Some(&uid));
                        if refs.is_empty()
                            && let Some(meta) = updated["metadata"].as_object_mut()
                        {
                            meta.remove("ownerReferences");
                        }
                    }
                    changed |= state.controller_update(
                        drt,
                        &current,
                        updated,
                        "kube-controller-manager",
                        false,
                    );
                }
                changed |= state.controller_update(
                    rt,
                    &owner,
                    without_finalizer(&owner, "orphan"),
                    "kube-controller-manager",
                    false,
                );
            } else if f.iter().any(|x| x == "foregroundDeletion") {
                let mut waiting = false;
                for (drt, dep) in &deps {
                    if state
                        .store
                        .get(
                            &drt.key(),
                            meta_str(dep, "namespace"),
                            meta_str(dep, "name"),
                        )
                        .is_none()
                    {
                        continue;
                    }
                    waiting = true;
                    if !is_deleting(dep) {
                        changed |= state.controller_delete(drt, dep, Some(Propagation::Foreground));
                    }
                }
                if !waiting {
                    changed |= state.controller_update(
                        rt,
                        &owner,
                        without_finalizer(&owner, "foregroundDeletion"),
                        "kube-controller-manager",
                        false,
                    );
                }
            }
        }
    }
    changed
}
