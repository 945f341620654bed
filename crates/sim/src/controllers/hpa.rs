//! HorizontalPodAutoscalers: the target is kept within `minReplicas`..`maxReplicas` through its
//! scale subresource. There is no metrics server in the simulator, so, as on a real cluster
//! without one, `ScalingActive` is False with `FailedGetResourceMetric` and no metric-driven
//! scaling happens.

use serde_json::{Value, json};

use super::{CONTROLLER_MANAGER, is_deleting, list, set_condition, write_status};
use crate::resources::Builtin;
use crate::state::State;
use crate::store::meta_str;

pub(crate) fn reconcile(state: &mut State) -> bool {
    let hpas = state.builtin(Builtin::HorizontalPodAutoscaler);
    let mut changed = false;
    for hpa in list(state, &hpas, None) {
        if is_deleting(&hpa) {
            continue;
        }
        let namespace = meta_str(&hpa, "namespace").to_owned();
        let target = &hpa["spec"]["scaleTargetRef"];
        let Some(rt) = state.registry.by_kind(
            target["apiVersion"].as_str().unwrap_or("apps/v1"),
            target["kind"].as_str().unwrap_or(""),
        ) else {
            continue;
        };
        let now_text = state.now_text();
        let mut conditions: Vec<Value> = hpa["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let min = hpa["spec"]["minReplicas"].as_i64().unwrap_or(1);
        let max = hpa["spec"]["maxReplicas"].as_i64().unwrap_or(1);
        let mut status = json!({"observedGeneration": hpa["metadata"]["generation"]});
        let object = state
            .store
            .get(&rt.key(), &namespace, target["name"].as_str().unwrap_or(""));
        match (object, rt.scale.clone()) {
            (Some(object), Some(paths)) => {
                let current = object
                    .pointer(&paths.spec_replicas)
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                let observed = object
                    .pointer(&paths.status_replicas)
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                let desired = if current == 0 {
                    0
                } else {
                    current.clamp(min, max)
                };
                set_condition(
                    &mut conditions,
                    json!({"type": "AbleToScale", "status": "True", "reason": "SucceededGetScale", "message": "the HPA controller was able to get the target's current scale"}),
                    &now_text,
                );
                set_condition(
                    &mut conditions,
                    json!({"type": "ScalingActive", "status": "False", "reason": "FailedGetResourceMetric", "message": "the HPA was unable to compute the replica count: failed to get cpu utilization: unable to get metrics for resource cpu: no metrics returned from resource metrics API"}),
                    &now_text,
                );
                if desired != current {
                    let mut scaled = (*object).clone();
                    crate::state::set_pointer(&mut scaled, &paths.spec_replicas, json!(desired));
                    if state.controller_update(&rt, &object, scaled, CONTROLLER_MANAGER, false) {
                        changed = true;
                        status["lastScaleTime"] = json!(now_text);
                        let reason = if desired > current {
                            "Current number of replicas below Spec.MinReplicas"
                        } else {
                            "Current number of replicas above Spec.MaxReplicas"
                        };
                        state.event(
                            &hpa,
                            false,
                            "SuccessfulRescale",
                            &format!("New size: {desired}; reason: {reason}"),
                            "horizontal-pod-autoscaler",
                        );
                    }
                    set_condition(
                        &mut conditions,
                        json!({"type": "ScalingLimited", "status": "True", "reason": if desired > current { "TooFewReplicas" } else { "TooManyReplicas" }, "message": "the desired replica count is outside the allowed range"}),
                        &now_text,
                    );
                } else {
                    set_condition(
                        &mut conditions,
                        json!({"type": "ScalingLimited", "status": "False", "reason": "DesiredWithinRange", "message": "the desired count is within the acceptable range"}),
                        &now_text,
                    );
                }
                status["currentReplicas"] = json!(observed);
                status["desiredReplicas"] = json!(desired);
            }
            _ => {
                set_condition(
                    &mut conditions,
                    json!({"type": "AbleToScale", "status": "False", "reason": "FailedGetScale", "message": format!("the HPA controller was unable to get the target's current scale: {} {:?} not found", rt.qualified(), target["name"].as_str().unwrap_or(""))}),
                    &now_text,
                );
                status["currentReplicas"] = json!(0);
                status["desiredReplicas"] = json!(0);
            }
        }
        if let Some(t) = hpa["status"]
            .get("lastScaleTime")
            .filter(|_| status.get("lastScaleTime").is_none())
        {
            status["lastScaleTime"] = t.clone();
        }
        status["currentMetrics"] = Value::Null;
        if let Some(map) = status.as_object_mut() {
            map.remove("currentMetrics");
        }
        status["conditions"] = Value::Array(conditions);
        changed |= write_status(state, &hpas, &namespace, meta_str(&hpa, "name"), status);
    }
    changed
}
