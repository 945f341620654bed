//! The Deployment controller: one ReplicaSet per pod template (named with the
//! `pod-template-hash`, numbered with the `deployment.kubernetes.io/revision` annotation),
//! rolling updates within `maxSurge`/`maxUnavailable` (or Recreate), history pruned to
//! `revisionHistoryLimit`, and the status and conditions a real cluster reports, including
//! `ProgressDeadlineExceeded` when a rollout stalls past `progressDeadlineSeconds`.

use std::sync::Arc;

use jiff::SignedDuration;
use serde_json::{Value, json};

use super::{
    CONTROLLER_MANAGER, Wake, controller_ref, i64_at, is_deleting, list, owned, scaled,
    set_condition, set_count, template_hash, without_hash_label,
};
use crate::clock::parse_time;
use crate::resources::{Builtin, ResourceType};
use crate::state::State;
use crate::store::{Obj, meta_str};

const HASH_LABEL: &str = "pod-template-hash";
const REVISION: &str = "deployment.kubernetes.io/revision";
const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
const DESIRED: &str = "deployment.kubernetes.io/desired-replicas";
const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";

fn revision(rs: &Value) -> i64 {
    rs["metadata"]["annotations"][REVISION]
        .as_str()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn spec_replicas(rs: &Value) -> i64 {
    i64_at(rs, "/spec/replicas")
}

struct Ctx {
    deployments: Arc<ResourceType>,
    replica_sets: Arc<ResourceType>,
}

pub(crate) fn reconcile(state: &mut State, wake: &mut Wake) -> bool {
    let ctx = Ctx {
        deployments: state.builtin(Builtin::Deployment),
        replica_sets: state.builtin(Builtin::ReplicaSet),
    };
    let mut changed = false;
    for d in list(state, &ctx.deployments, None) {
        if is_deleting(&d) {
            continue;
        }
        changed |= sync(state, &ctx, &d, wake);
    }
    changed
}

fn max_surge_unavailable(d: &Value, replicas: i64) -> (i64, i64) {
    let strategy = &d["spec"]["strategy"];
    if strategy["type"] == "Recreate" {
        return (0, 0);
    }
    let ru = &strategy["rollingUpdate"];
    let surge = scaled(&ru["maxSurge"], replicas, true);
    let mut unavailable = scaled(&ru["maxUnavailable"], replicas, false);
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    (surge, unavailable.min(replicas))
}

/// Scales a ReplicaSet and records the Deployment event the real controller emits.
fn scale(state: &mut State, ctx: &Ctx, d: &Value, rs: &Obj, to: i64, surge: i64) -> bool {
    let from = spec_replicas(rs);
    let replicas = i64_at(d, "/spec/replicas");
    let mut updated = (**rs).clone();
    updated["spec"]["replicas"] = json!(to);
    updated["metadata"]["annotations"][DESIRED] = json!(replicas.to_string());
    updated["metadata"]["annotations"][MAX_REPLICAS] = json!((replicas + surge).to_string());
    let changed =
        state.controller_update(&ctx.replica_sets, rs, updated, CONTROLLER_MANAGER, false);
    if changed && from != to {
        let verb = if to > from { "up" } else { "down" };
        let message = format!(
            "Scaled {verb} replica set {} from {from} to {to}",
            meta_str(rs, "name")
        );
        state.event(
            d,
            false,
            "ScalingReplicaSet",
            &message,
            "deployment-controller",
        );
    }
    changed
}

fn sync(state: &mut State, ctx: &Ctx, d: &Obj, wake: &mut Wake) -> bool {
    let namespace = meta_str(d, "namespace").to_owned();
    let name = meta_str(d, "name").to_owned();
    let replicas = i64_at(d, "/spec/replicas");
    let template = d["spec"]["template"].clone();
    let paused = d["spec"]["paused"].as_bool() == Some(true);
    let (surge, max_unavailable) = max_surge_unavailable(d, replicas);
    let mut changed = false;
    let mut conditions: Vec<Value> = d["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let now_text = state.now_text();

    let mut rss = owned(state, &ctx.replica_sets, &namespace, d);
    let mut new_rs = rss
        .iter()
        .find(|rs| without_hash_label(&rs["spec"]["template"], HASH_LABEL) == template)
        .cloned();
    let max_old_revision = rss
        .iter()
        .filter(|rs| {
            new_rs
                .as_ref()
                .is_none_or(|n| meta_str(n, "uid") != meta_str(rs, "uid"))
        })
        .map(|rs| revision(rs))
        .max()
        .unwrap_or(0);

    if new_rs.is_none() && !paused {
        let collision = i64_at(d, "/status/collisionCount");
        let hash = template_hash(&template, collision);
        let rs_name = format!("{name}-{hash}");
        let mut rs_template = template.clone();
        rs_template["metadata"]["labels"][HASH_LABEL] = json!(hash);
        let mut selector = d["spec"]["selector"].clone();
        selector["matchLabels"][HASH_LABEL] = json!(hash);
        let mut labels = template["metadata"]["labels"].clone();
        labels[HASH_LABEL] = json!(hash);
        let mut annotations = serde_json::Map::new();
        if let Some(a) = d["metadata"]["annotations"].as_object() {
            for (k, v) in a {
                if k != REVISION && k != "kubectl.kubernetes.io/last-applied-configuration" {
                    annotations.insert(k.clone(), v.clone());
                }
            }
        }
        annotations.insert(
            REVISION.to_owned(),
            json!((max_old_revision + 1).to_string()),
        );
        annotations.insert(DESIRED.to_owned(), json!(replicas.to_string()));
        annotations.insert(
            MAX_REPLICAS.to_owned(),
            json!((replicas + surge).to_string()),
        );
        let mut spec = json!({
            "replicas": 0,
            "selector": selector,
            "template": rs_template,
        });
        if let Some(min_ready) = d["spec"]["minReadySeconds"].as_i64().filter(|m| *m > 0) {
            spec["minReadySeconds"] = json!(min_ready);
        }
        let rs = json!({
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": rs_name,
                "namespace": namespace,
                "labels": labels,
                "annotations": annotations,
                "ownerReferences": [controller_ref(d)],
            },
            "spec": spec,
        });
        match state.controller_create(&ctx.replica_sets, rs, CONTROLLER_MANAGER) {
            Some(created) => {
                changed = true;
                set_condition(
                    &mut conditions,
                    json!({"type": "Progressing", "status": "True", "reason": "NewReplicaSetCreated", "message": format!("Created new replica set {rs_name:?}")}),
                    &now_text,
                    true,
                );
                rss.push(Arc::clone(&created));
                new_rs = Some(created);
            }
            None => return changed,
        }
    } else if let Some(rs) = &new_rs {
        // A rollback to an older template makes that ReplicaSet the newest revision again.
        let current = revision(rs);
        if current <= max_old_revision {
            let mut updated = (**rs).clone();
            let mut history: Vec<String> = rs["metadata"]["annotations"][REVISION_HISTORY]
                .as_str()
                .map(|h| h.split(',').map(str::to_owned).collect())
                .unwrap_or_default();
            history.push(current.to_string());
            updated["metadata"]["annotations"][REVISION] =
                json!((max_old_revision + 1).to_string());
            updated["metadata"]["annotations"][REVISION_HISTORY] = json!(history.join(","));
            if state.controller_update(&ctx.replica_sets, rs, updated, CONTROLLER_MANAGER, false) {
                changed = true;
                if let Some(fresh) =
                    state
                        .store
                        .get(&ctx.replica_sets.key(), &namespace, meta_str(rs, "name"))
                {
                    new_rs = Some(fresh);
                }
            }
        }
    }
    let Some(new_rs) = new_rs else {
        return changed
            | update_status(state, ctx, d, &rss, None, conditions, max_unavailable, wake);
    };
    let new_uid = meta_str(&new_rs, "uid").to_owned();
    let refresh = |state: &State, rs: &Obj| -> Obj {
        state
            .store
            .get(&ctx.replica_sets.key(), &namespace, meta_str(rs, "name"))
            .unwrap_or_else(|| Arc::clone(rs))
    };

    // The Deployment carries its newest revision number.
    let new_revision = revision(&new_rs).to_string();
    if d["metadata"]["annotations"][REVISION].as_str() != Some(&new_revision) {
        let mut updated = (**d).clone();
        updated["metadata"]["annotations"][REVISION] = json!(new_revision);
        changed |= state.controller_update(&ctx.deployments, d, updated, CONTROLLER_MANAGER, false);
    }

    if !paused {
        let olds: Vec<Obj> = rss
            .iter()
            .filter(|rs| meta_str(rs, "uid") != new_uid)
            .cloned()
            .collect();
        if d["spec"]["strategy"]["type"] == "Recreate" {
            let old_active = olds.iter().any(|rs| spec_replicas(rs) > 0);
            if old_active {
                for rs in &olds {
                    if spec_replicas(rs) > 0 {
                        changed |= scale(state, ctx, d, rs, 0, 0);
                    }
                }
            } else {
                let old_pods = olds.iter().any(|rs| i64_at(rs, "/status/replicas") > 0);
                let new_rs = refresh(state, &new_rs);
                if !old_pods && spec_replicas(&new_rs) != replicas {
                    changed |= scale(state, ctx, d, &new_rs, replicas, 0);
                }
            }
        } else {
            // reconcileNewReplicaSet
            let new_rs_now = refresh(state, &new_rs);
            let new_replicas = spec_replicas(&new_rs_now);
            let total: i64 = rss
                .iter()
                .map(|rs| spec_replicas(&refresh(state, rs)))
                .sum();
            if new_replicas > replicas {
                changed |= scale(state, ctx, d, &new_rs_now, replicas, surge);
            } else if new_replicas < replicas {
                let max_total = replicas + surge;
                if total < max_total {
                    let up = (max_total - total).min(replicas - new_replicas);
                    changed |= scale(state, ctx, d, &new_rs_now, new_replicas + up, surge);
                }
            }
            // reconcileOldReplicaSets
            let new_rs_now = refresh(state, &new_rs);
            let olds: Vec<Obj> = olds.iter().map(|rs| refresh(state, rs)).collect();
            let old_total: i64 = olds.iter().map(|rs| spec_replicas(rs)).sum();
            if old_total > 0 {
                let all_total: i64 = olds.iter().map(|rs| spec_replicas(rs)).sum::<i64>()
                    + spec_replicas(&new_rs_now);
                let min_available = replicas - max_unavailable;
                let new_unavailable =
                    spec_replicas(&new_rs_now) - i64_at(&new_rs_now, "/status/availableReplicas");
                let mut max_scaled_down = all_total - min_available - new_unavailable;
                if max_scaled_down > 0 {
                    // clean up unhealthy old replicas first, oldest ReplicaSet first
                    let mut sorted = olds.clone();
                    sorted.sort_by_key(|rs| meta_str(rs, "creationTimestamp").to_owned());
                    for rs in &sorted {
                        if max_scaled_down <= 0 {
                            break;
                        }
                        let unhealthy = spec_replicas(rs) - i64_at(rs, "/status/availableReplicas");
                        if unhealthy <= 0 || spec_replicas(rs) == 0 {
                            continue;
                        }
                        let down = unhealthy.min(max_scaled_down);
                        changed |= scale(state, ctx, d, rs, spec_replicas(rs) - down, surge);
                        max_scaled_down -= down;
                    }
                    // then healthy ones, keeping minimum availability
                    let all: Vec<Obj> = rss.iter().map(|rs| refresh(state, rs)).collect();
                    let available: i64 = all
                        .iter()
                        .map(|rs| i64_at(rs, "/status/availableReplicas"))
                        .sum();
                    let mut down_total = available - min_available;
                    for rs in sorted.clone() {
                        let rs = refresh(state, &rs);
                        if down_total <= 0 {
                            break;
                        }
                        let current = spec_replicas(&rs);
                        if current == 0 {
                            continue;
                        }
                        let down = current.min(down_total);
                        changed |= scale(state, ctx, d, &rs, current - down, surge);
                        down_total -= down;
                    }
                }
            }
        }
        // cleanup: keep revisionHistoryLimit old ReplicaSets that are scaled to zero
        let limit = d["spec"]["revisionHistoryLimit"].as_i64().unwrap_or(10);
        let mut idle: Vec<Obj> = rss
            .iter()
            .map(|rs| refresh(state, rs))
            .filter(|rs| {
                meta_str(rs, "uid") != new_uid
                    && spec_replicas(rs) == 0
                    && i64_at(rs, "/status/replicas") == 0
            })
            .collect();
        if idle.len() as i64 > limit {
            idle.sort_by_key(|rs| revision(rs));
            let excess = idle.len() - usize::try_from(limit).unwrap_or(0);
            for rs in idle.iter().take(excess) {
                changed |= state.controller_delete(&ctx.replica_sets, rs, None);
            }
        }
    }
    let rss: Vec<Obj> = owned(state, &ctx.replica_sets, &namespace, d);
    let new_rs = rss
        .iter()
        .find(|rs| meta_str(rs, "uid") == new_uid)
        .cloned();
    changed
        | update_status(
            state,
            ctx,
            d,
            &rss,
            new_rs.as_ref(),
            conditions,
            max_unavailable,
            wake,
        )
}

#[expect(
    clippy::too_many_arguments,
    reason = "the controller's status step needs each of these"
)]
fn update_status(
    state: &mut State,
    ctx: &Ctx,
    d: &Obj,
    rss: &[Obj],
    new_rs: Option<&Obj>,
    mut conditions: Vec<Value>,
    max_unavailable: i64,
    wake: &mut Wake,
) -> bool {
    let Some(current) = state.store.get(
        &ctx.deployments.key(),
        meta_str(d, "namespace"),
        meta_str(d, "name"),
    ) else {
        return false;
    };
    let replicas_spec = i64_at(&current, "/spec/replicas");
    let now = state.now;
    let now_text = state.now_text();
    let total_spec: i64 = rss.iter().map(|rs| spec_replicas(rs)).sum();
    let available: i64 = rss
        .iter()
        .map(|rs| i64_at(rs, "/status/availableReplicas"))
        .sum();
    let ready: i64 = rss
        .iter()
        .map(|rs| i64_at(rs, "/status/readyReplicas"))
        .sum();
    let actual: i64 = rss.iter().map(|rs| i64_at(rs, "/status/replicas")).sum();
    let updated = new_rs.map_or(0, |rs| i64_at(rs, "/status/replicas"));
    let unavailable = (total_spec - available).max(0);
    let generation = current["metadata"]["generation"].as_i64().unwrap_or(1);

    let old_status = &current["status"];
    let mut status = json!({"observedGeneration": generation});
    set_count(&mut status, "replicas", actual);
    set_count(&mut status, "updatedReplicas", updated);
    set_count(&mut status, "readyReplicas", ready);
    set_count(&mut status, "availableReplicas", available);
    set_count(&mut status, "unavailableReplicas", unavailable);
    if let Some(c) = old_status.get("collisionCount") {
        status["collisionCount"] = c.clone();
    }
    // conditions carried from this pass (NewReplicaSetCreated) over the stored ones
    let stored: Vec<Value> = old_status["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if conditions.is_empty() {
        conditions = stored;
    }
    if available >= replicas_spec - max_unavailable {
        set_condition(
            &mut conditions,
            json!({"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability."}),
            &now_text,
            true,
        );
    } else {
        set_condition(
            &mut conditions,
            json!({"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable", "message": "Deployment does not have minimum availability."}),
            &now_text,
            true,
        );
    }
    let paused = current["spec"]["paused"].as_bool() == Some(true);
    let deadline = current["spec"]["progressDeadlineSeconds"].as_i64();
    let progressing = conditions
        .iter()
        .find(|c| c["type"] == "Progressing")
        .cloned();
    let rs_name = new_rs.map(|rs| meta_str(rs, "name").to_owned());
    if paused {
        if deadline.is_some() {
            set_condition(
                &mut conditions,
                json!({"type": "Progressing", "status": "Unknown", "reason": "DeploymentPaused", "message": "Deployment is paused"}),
                &now_text,
                true,
            );
        }
    } else if let Some(deadline) = deadline {
        let was_paused = progressing
            .as_ref()
            .is_some_and(|c| c["reason"] == "DeploymentPaused");
        let complete_before = progressing
            .as_ref()
            .is_some_and(|c| c["reason"] == "NewReplicaSetAvailable");
        let is_complete = actual == updated && complete_before;
        if was_paused {
            set_condition(
                &mut conditions,
                json!({"type": "Progressing", "status": "Unknown", "reason": "DeploymentResumed", "message": "Deployment is resumed"}),
                &now_text,
                true,
            );
        } else if !is_complete {
            let done =
                updated == replicas_spec && actual == replicas_spec && available == replicas_spec;
            let old_updated = i64_at(old_status, "/updatedReplicas");
            let old_old = i64_at(old_status, "/replicas") - old_updated;
            let progress = updated > old_updated
                || (actual - updated) < old_old
                || ready > i64_at(old_status, "/readyReplicas")
                || available > i64_at(old_status, "/availableReplicas");
            let named = |what: &str| match &rs_name {
                Some(rs) => format!("ReplicaSet {rs:?} {what}"),
                None => format!("Deployment {:?} {what}", meta_str(&current, "name")),
            };
            if done {
                set_condition(
                    &mut conditions,
                    json!({"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "message": named("has successfully progressed.")}),
                    &now_text,
                    true,
                );
            } else if progress {
                let mut condition = json!({"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated", "message": named("is progressing."), "lastUpdateTime": now_text, "lastTransitionTime": now_text});
                if let Some(existing) = conditions.iter_mut().find(|c| c["type"] == "Progressing") {
                    if existing["status"] == "True" {
                        condition["lastTransitionTime"] = existing["lastTransitionTime"].clone();
                    }
                    *existing = condition;
                } else {
                    conditions.push(condition);
                }
            } else if let Some(cond) = conditions
                .iter()
                .find(|c| c["type"] == "Progressing")
                .cloned()
                && cond["reason"] != "ProgressDeadlineExceeded"
            {
                let from = cond["lastUpdateTime"]
                    .as_str()
                    .and_then(parse_time)
                    .unwrap_or(now);
                let due = from
                    .saturating_add(SignedDuration::from_secs(deadline))
                    .unwrap_or(from);
                if due < now {
                    set_condition(
                        &mut conditions,
                        json!({"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": named("has timed out progressing.")}),
                        &now_text,
                        true,
                    );
                    state.event(
                        &current,
                        true,
                        "ProgressDeadlineExceeded",
                        &named("has timed out progressing."),
                        "deployment-controller",
                    );
                } else {
                    wake.at(due
                        .saturating_add(SignedDuration::from_secs(1))
                        .unwrap_or(due));
                }
            }
        }
    } else {
        conditions.retain(|c| c["type"] != "Progressing");
    }
    // Available first, then Progressing, as the controller orders them
    conditions.sort_by_key(|c| match c["type"].as_str() {
        Some("Available") => 0,
        Some("Progressing") => 1,
        _ => 2,
    });
    status["conditions"] = Value::Array(conditions);
    if *old_status == status {
        return false;
    }
    let mut updated_object = (*current).clone();
    updated_object["status"] = status;
    state.controller_update(
        &ctx.deployments,
        &current,
        updated_object,
        CONTROLLER_MANAGER,
        true,
    )
}
