//! The Deployment controller: one ReplicaSet per pod template (named with the
//! `pod-template-hash`, numbered with the `deployment.kubernetes.io/revision` annotation),
//! rolling updates within `maxSurge`/`maxUnavailable` (or Recreate), history pruned to
//! `revisionHistoryLimit`, and the status and conditions a real cluster reports, including
//! `ProgressDeadlineExceeded` when a rollout stalls past `progressDeadlineSeconds`.

use std::sync::Arc;

use jiff::SignedDuration;
use serde_json::{Value, json};

use super::{
    CONTROLLER_MANAGER, Wake, controller_ref, i64_at, is_deleting, list, owned, scaled, set_count,
    template_hash, without_hash_label, write_status,
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

const TIMED_OUT: &str = "ProgressDeadlineExceeded";

/// A Deployment condition as the controller makes them.
fn condition(kind: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({"type": kind, "status": status, "reason": reason, "message": message})
}

/// The deployment controller's `SetDeploymentCondition`: nothing changes while the status and
/// reason stay the same (the message is kept too); the transition time is kept while the
/// status does; a changed condition moves to the end of the list (so the order a cluster shows
/// is the order of the last changes).
fn set_deployment_condition(conditions: &mut Vec<Value>, mut condition: Value, now: &str) {
    let at = conditions
        .iter()
        .position(|c| c["type"] == condition["type"]);
    condition["lastUpdateTime"] = json!(now);
    condition["lastTransitionTime"] = json!(now);
    if let Some(i) = at {
        let existing = &conditions[i];
        if existing["status"] == condition["status"] {
            if existing["reason"] == condition["reason"] {
                return;
            }
            condition["lastTransitionTime"] = existing["lastTransitionTime"].clone();
        }
        conditions.remove(i);
    }
    conditions.push(condition);
}

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
                let message = format!("Created new replica set {rs_name:?}");
                let c = condition("Progressing", "True", "NewReplicaSetCreated", &message);
                set_deployment_condition(&mut conditions, c, &now_text);
                rss.push(Arc::clone(&created));
                new_rs = Some(created);
            }
            None => return changed,
        }
    } else if let Some(rs) = &new_rs.clone() {
        let mut updated = (**rs).clone();
        // A rollback to an older template makes that ReplicaSet the newest revision again.
        let current = revision(rs);
        if current <= max_old_revision {
            let mut history: Vec<String> = rs["metadata"]["annotations"][REVISION_HISTORY]
                .as_str()
                .map(|h| h.split(',').map(str::to_owned).collect())
                .unwrap_or_default();
            history.push(current.to_string());
            updated["metadata"]["annotations"][REVISION] =
                json!((max_old_revision + 1).to_string());
            updated["metadata"]["annotations"][REVISION_HISTORY] = json!(history.join(","));
        }
        // minReadySeconds is the one spec field that changes without a new template
        let min_ready = i64_at(d, "/spec/minReadySeconds");
        if i64_at(rs, "/spec/minReadySeconds") != min_ready {
            match updated["spec"].as_object_mut() {
                Some(spec) if min_ready == 0 => {
                    spec.remove("minReadySeconds");
                }
                _ => updated["spec"]["minReadySeconds"] = json!(min_ready),
            }
        }
        if updated != **rs
            && state.controller_update(&ctx.replica_sets, rs, updated, CONTROLLER_MANAGER, false)
        {
            changed = true;
            new_rs = state
                .store
                .get(&ctx.replica_sets.key(), &namespace, meta_str(rs, "name"));
        }
        // progress is estimated from the first time a new ReplicaSet is seen
        if d["spec"]["progressDeadlineSeconds"].is_i64()
            && !conditions.iter().any(|c| c["type"] == "Progressing")
        {
            let message = format!("Found new replica set {:?}", meta_str(rs, "name"));
            let c = condition("Progressing", "True", "FoundNewReplicaSet", &message);
            set_deployment_condition(&mut conditions, c, &now_text);
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
    let name = meta_str(&current, "name");
    let paused = current["spec"]["paused"].as_bool() == Some(true);
    let deadline = current["spec"]["progressDeadlineSeconds"].as_i64();
    let progressing = |conditions: &[Value]| -> Option<String> {
        conditions
            .iter()
            .find(|c| c["type"] == "Progressing")
            .and_then(|c| c["reason"].as_str())
            .map(str::to_owned)
    };
    // checkPausedConditions: a stall once reported stays reported
    let reason = progressing(&conditions);
    if deadline.is_some() && reason.as_deref() != Some(TIMED_OUT) {
        let was_paused = reason.as_deref() == Some("DeploymentPaused");
        if paused && !was_paused {
            let c = condition(
                "Progressing",
                "Unknown",
                "DeploymentPaused",
                "Deployment is paused",
            );
            set_deployment_condition(&mut conditions, c, &now_text);
        } else if !paused && was_paused {
            let c = condition(
                "Progressing",
                "Unknown",
                "DeploymentResumed",
                "Deployment is resumed",
            );
            set_deployment_condition(&mut conditions, c, &now_text);
        }
    }
    // calculateStatus
    let (kind, reason, message) = if available >= replicas_spec - max_unavailable {
        (
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
        )
    } else {
        (
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        )
    };
    set_deployment_condition(
        &mut conditions,
        condition("Available", kind, reason, message),
        &now_text,
    );
    // syncRolloutStatus (a paused Deployment's status is synced without estimating progress)
    match deadline {
        None => conditions.retain(|c| c["type"] != "Progressing"),
        Some(_) if paused => {}
        Some(deadline) => {
            let reason = progressing(&conditions);
            let complete_before =
                actual == updated && reason.as_deref() == Some("NewReplicaSetAvailable");
            let named = |what: &str| match new_rs {
                Some(rs) => format!("ReplicaSet {:?} {what}", meta_str(rs, "name")),
                None => format!("Deployment {name:?} {what}"),
            };
            let done =
                updated == replicas_spec && actual == replicas_spec && available == replicas_spec;
            let old_updated = i64_at(old_status, "/updatedReplicas");
            let old_old = i64_at(old_status, "/replicas") - old_updated;
            let progress = updated > old_updated
                || (actual - updated) < old_old
                || ready > i64_at(old_status, "/readyReplicas")
                || available > i64_at(old_status, "/availableReplicas");
            if complete_before {
                // the last rollout completed: nothing to estimate
            } else if done {
                let c = condition(
                    "Progressing",
                    "True",
                    "NewReplicaSetAvailable",
                    &named("has successfully progressed."),
                );
                set_deployment_condition(&mut conditions, c, &now_text);
            } else if progress {
                // every sign of progress moves lastUpdateTime, even with the same reason
                let mut c = condition(
                    "Progressing",
                    "True",
                    "ReplicaSetUpdated",
                    &named("is progressing."),
                );
                c["lastUpdateTime"] = json!(now_text);
                c["lastTransitionTime"] = json!(now_text);
                if let Some(i) = conditions.iter().position(|c| c["type"] == "Progressing") {
                    let existing = conditions.remove(i);
                    if existing["status"] == "True" {
                        c["lastTransitionTime"] = existing["lastTransitionTime"].clone();
                    }
                }
                conditions.push(c);
            } else if let Some(from) = conditions
                .iter()
                .find(|c| c["type"] == "Progressing")
                .filter(|c| c["reason"] != "NewReplicaSetAvailable" && c["reason"] != TIMED_OUT)
                .and_then(|c| c["lastUpdateTime"].as_str())
                .and_then(parse_time)
            {
                let due = from
                    .saturating_add(SignedDuration::from_secs(deadline))
                    .unwrap_or(from);
                if due < now {
                    let message = named("has timed out progressing.");
                    let c = condition("Progressing", "False", TIMED_OUT, &message);
                    set_deployment_condition(&mut conditions, c, &now_text);
                    state.event(&current, true, TIMED_OUT, &message, "deployment-controller");
                } else {
                    wake.at(due
                        .saturating_add(SignedDuration::from_secs(1))
                        .unwrap_or(due));
                }
            }
        }
    }
    status["conditions"] = Value::Array(conditions);
    let namespace = meta_str(&current, "namespace");
    write_status(state, &ctx.deployments, namespace, name, status)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use jiff::{SignedDuration, Timestamp};
    use serde_json::{Value, json};

    use crate::config::{ImageBehaviour, ImageRule, SimConfig};
    use crate::controllers::{bootstrap, list, run_pass};
    use crate::resources::Builtin;
    use crate::state::{State, WriteOpts};
    use crate::store::meta_str;

    /// A cluster whose virtual clock moves only when told, so nothing depends on the machine's
    /// speed.
    struct Cluster {
        state: State,
    }

    impl Cluster {
        fn new() -> Cluster {
            let config = SimConfig {
                images: vec![ImageRule::new("*:broken", ImageBehaviour::PullForever)],
                ..SimConfig::default()
            };
            let start = Timestamp::from_second(1_700_000_000).unwrap();
            let mut state = State::new(Arc::new(config), start);
            bootstrap(&mut state);
            Cluster { state }
        }

        /// Runs the controllers for `secs` virtual seconds, waking when they asked to.
        fn run_for(&mut self, secs: i64) {
            let end = self
                .state
                .now
                .saturating_add(SignedDuration::from_secs(secs))
                .unwrap();
            loop {
                match run_pass(&mut self.state) {
                    Some(next) if next <= end => self.state.now = next.max(self.state.now),
                    _ => break,
                }
            }
            self.state.now = end;
            run_pass(&mut self.state);
        }

        fn deployment(&self) -> Value {
            let rt = self.state.builtin(Builtin::Deployment);
            (*self.state.store.get(&rt.key(), "default", "web").unwrap()).clone()
        }

        /// Creates or changes Deployment `web` as a client would.
        fn apply(&mut self, image: &str, paused: bool) {
            let rt = self.state.builtin(Builtin::Deployment);
            let d = json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "default"},
                "spec": {"replicas": 2, "paused": paused, "selector": {"matchLabels": {"app": "web"}},
                         "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": image}]}}},
            });
            let opts = WriteOpts::controller("test");
            match self.state.store.get(&rt.key(), "default", "web") {
                None => {
                    self.state.create(&rt, "default", d, &opts).unwrap();
                }
                Some(old) => {
                    let mut new = (*old).clone();
                    new["spec"] = d["spec"].clone();
                    self.state
                        .update(&rt, "default", "web", new, &opts)
                        .unwrap();
                }
            }
        }

        /// The Deployment's conditions as (type, status, reason, message), in stored order.
        fn conditions(&self) -> Vec<(String, String, String, String)> {
            let d = self.deployment();
            d["status"]["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    let s = |k: &str| c[k].as_str().unwrap_or("").to_owned();
                    (s("type"), s("status"), s("reason"), s("message"))
                })
                .collect()
        }

        fn events(&self, reason: &str) -> usize {
            let rt = self.state.builtin(Builtin::Event);
            list(&self.state, &rt, Some("default"))
                .iter()
                .filter(|e| e["reason"] == reason)
                .count()
        }

        fn new_replica_set(&self) -> String {
            let d = self.deployment();
            let revision = d["metadata"]["annotations"][super::REVISION].clone();
            let rt = self.state.builtin(Builtin::ReplicaSet);
            list(&self.state, &rt, Some("default"))
                .iter()
                .find(|rs| rs["metadata"]["annotations"][super::REVISION] == revision)
                .map(|rs| meta_str(rs, "name").to_owned())
                .unwrap()
        }
    }

    fn condition(
        kind: &str,
        status: &str,
        reason: &str,
        message: &str,
    ) -> (String, String, String, String) {
        (
            kind.to_owned(),
            status.to_owned(),
            reason.to_owned(),
            message.to_owned(),
        )
    }

    #[test]
    fn a_rolled_out_deployment_reads_like_the_controllers() {
        let mut cluster = Cluster::new();
        cluster.apply("nginx:1", false);
        cluster.run_for(60);
        let rs = cluster.new_replica_set();
        assert_eq!(
            cluster.conditions(),
            [
                condition(
                    "Available",
                    "True",
                    "MinimumReplicasAvailable",
                    "Deployment has minimum availability."
                ),
                condition(
                    "Progressing",
                    "True",
                    "NewReplicaSetAvailable",
                    &format!("ReplicaSet {rs:?} has successfully progressed.")
                ),
            ]
        );
    }

    #[test]
    fn a_rollback_long_after_the_last_rollout_is_not_a_stall() {
        let mut cluster = Cluster::new();
        cluster.apply("nginx:1", false);
        cluster.run_for(60);
        cluster.apply("nginx:2", false);
        cluster.run_for(60);
        // far past progressDeadlineSeconds (600) since the last progress
        cluster.run_for(3600);
        cluster.apply("nginx:1", false);
        cluster.run_for(60);
        assert_eq!(cluster.events(super::TIMED_OUT), 0);
        let d = cluster.deployment();
        assert_eq!(d["metadata"]["annotations"][super::REVISION], "3");
        assert_eq!(cluster.conditions()[1].2, "NewReplicaSetAvailable");
    }

    #[test]
    fn a_stall_stays_reported_through_a_pause() {
        let mut cluster = Cluster::new();
        cluster.apply("nginx:1", false);
        cluster.run_for(60);
        cluster.apply("nginx:broken", false);
        cluster.run_for(700);
        let rs = cluster.new_replica_set();
        let timed_out = condition(
            "Progressing",
            "False",
            super::TIMED_OUT,
            &format!("ReplicaSet {rs:?} has timed out progressing."),
        );
        assert!(
            cluster.conditions().contains(&timed_out),
            "{:?}",
            cluster.conditions()
        );
        cluster.apply("nginx:broken", true);
        cluster.run_for(10);
        assert!(
            cluster.conditions().contains(&timed_out),
            "{:?}",
            cluster.conditions()
        );
        cluster.apply("nginx:broken", false);
        cluster.run_for(10);
        assert!(
            cluster.conditions().contains(&timed_out),
            "{:?}",
            cluster.conditions()
        );
        assert_eq!(cluster.events(super::TIMED_OUT), 1);
    }

    #[test]
    fn min_ready_seconds_reach_the_current_replica_set() {
        let mut cluster = Cluster::new();
        cluster.apply("nginx:1", false);
        cluster.run_for(60);
        let rt = cluster.state.builtin(Builtin::Deployment);
        let mut d = cluster.deployment();
        d["spec"]["minReadySeconds"] = json!(30);
        cluster
            .state
            .update(&rt, "default", "web", d, &WriteOpts::controller("test"))
            .unwrap();
        cluster.run_for(1);
        let rs_rt = cluster.state.builtin(Builtin::ReplicaSet);
        let rs = cluster
            .state
            .store
            .get(&rs_rt.key(), "default", &cluster.new_replica_set())
            .unwrap();
        assert_eq!(rs["spec"]["minReadySeconds"], 30);
        assert_eq!(list(&cluster.state, &rs_rt, Some("default")).len(), 1);
    }

    #[test]
    fn a_pause_and_a_resume_are_reported() {
        let mut cluster = Cluster::new();
        cluster.apply("nginx:1", false);
        cluster.run_for(60);
        cluster.apply("nginx:1", true);
        cluster.run_for(10);
        assert_eq!(
            cluster.conditions()[1],
            condition(
                "Progressing",
                "Unknown",
                "DeploymentPaused",
                "Deployment is paused"
            )
        );
        cluster.apply("nginx:2", true);
        cluster.run_for(60);
        assert_eq!(
            cluster.conditions()[1].2,
            "DeploymentPaused",
            "a paused Deployment does not roll out"
        );
        cluster.apply("nginx:2", false);
        cluster.run_for(60);
        let rs = cluster.new_replica_set();
        assert_eq!(
            cluster.conditions()[1],
            condition(
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                &format!("ReplicaSet {rs:?} has successfully progressed.")
            )
        );
    }
}
