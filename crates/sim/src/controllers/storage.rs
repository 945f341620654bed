//! Volumes: every PersistentVolumeClaim is provisioned at once (a PersistentVolume named
//! `pvc-<uid>` with the requested capacity) and bound; volumes of deleted claims are deleted
//! (reclaim policy Delete).

use serde_json::json;

use super::{is_deleting, list};
use crate::resources::Builtin;
use crate::state::State;
use crate::store::meta_str;

pub(crate) fn reconcile(state: &mut State) -> bool {
    let claims = state.builtin(Builtin::PersistentVolumeClaim);
    let volumes = state.builtin(Builtin::PersistentVolume);
    let mut changed = false;
    for pvc in list(state, &claims, None) {
        if is_deleting(&pvc) || pvc["status"]["phase"] == "Bound" {
            continue;
        }
        let pv_name = format!("pvc-{}", meta_str(&pvc, "uid"));
        let storage = pvc["spec"]["resources"]["requests"]["storage"].clone();
        let access = pvc["spec"]["accessModes"].clone();
        let class = pvc["spec"]["storageClassName"].clone();
        if state.store.get(&volumes.key(), "", &pv_name).is_none() {
            let pv = json!({
                "apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": {"name": pv_name, "annotations": {"pv.kubernetes.io/provisioned-by": "ferry-sim.io/simulated"}, "finalizers": ["kubernetes.io/pv-protection"]},
                "spec": {
                    "capacity": {"storage": storage},
                    "accessModes": access,
                    "persistentVolumeReclaimPolicy": "Delete",
                    "storageClassName": class,
                    "volumeMode": pvc["spec"]["volumeMode"],
                    "hostPath": {"path": format!("/var/lib/ferry-sim/volumes/{pv_name}"), "type": ""},
                    "claimRef": {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": pvc["metadata"]["namespace"], "name": pvc["metadata"]["name"], "uid": pvc["metadata"]["uid"], "resourceVersion": pvc["metadata"]["resourceVersion"]},
                },
            });
            if let Some(created) = state.controller_create(&volumes, pv, "persistentvolume-binder")
            {
                let mut bound = (*created).clone();
                bound["status"] = json!({"phase": "Bound"});
                state.controller_update(&volumes, &created, bound, "persistentvolume-binder", true);
                changed = true;
            }
        }
        let mut updated = (*pvc).clone();
        updated["spec"]["volumeName"] = json!(pv_name);
        updated["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"] = json!("yes");
        updated["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] = json!("yes");
        updated["metadata"]["annotations"]["volume.kubernetes.io/storage-provisioner"] =
            json!("ferry-sim.io/simulated");
        let finalizers = updated["metadata"]["finalizers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if !finalizers.contains(&json!("kubernetes.io/pvc-protection")) {
            let mut f = finalizers;
            f.push(json!("kubernetes.io/pvc-protection"));
            updated["metadata"]["finalizers"] = json!(f);
        }
        if state.controller_update(&claims, &pvc, updated, "persistentvolume-binder", false) {
            changed = true;
        }
        if let Some(current) = state.store.get(
            &claims.key(),
            meta_str(&pvc, "namespace"),
            meta_str(&pvc, "name"),
        ) {
            let mut bound = (*current).clone();
            bound["status"] =
                json!({"phase": "Bound", "accessModes": access, "capacity": {"storage": storage}});
            changed |=
                state.controller_update(&claims, &current, bound, "persistentvolume-binder", true);
        }
    }
    // Claims being deleted lose their protection finalizer (no pod mounts volumes for real).
    for pvc in list(state, &claims, None) {
        if is_deleting(&pvc) {
            let mut updated = (*pvc).clone();
            if let Some(f) = updated["metadata"]["finalizers"].as_array_mut() {
                f.retain(|x| x != "kubernetes.io/pvc-protection");
            }
            changed |=
                state.controller_update(&claims, &pvc, updated, "persistentvolume-binder", false);
        }
    }
    for pv in list(state, &volumes, None) {
        let uid = pv["spec"]["claimRef"]["uid"].as_str().unwrap_or("");
        if !uid.is_empty() && state.store.by_uid(uid).is_none() {
            if is_deleting(&pv) {
                let mut updated = (*pv).clone();
                if let Some(f) = updated["metadata"]["finalizers"].as_array_mut() {
                    f.retain(|x| x != "kubernetes.io/pv-protection");
                }
                changed |= state.controller_update(
                    &volumes,
                    &pv,
                    updated,
                    "persistentvolume-binder",
                    false,
                );
            } else {
                changed |= state.controller_delete(&volumes, &pv, None);
            }
        }
    }
    changed
}
