//! The Job controller: runs pods to completion (`parallelism` at a time until `completions`
//! succeeded), fails the Job past `backoffLimit` or `activeDeadlineSeconds`, and reports the
//! conditions kubectl and clients wait on: `Complete` (after `SuccessCriteriaMet`) or `Failed`
//! (after `FailureTarget`).

use jiff::SignedDuration;
use serde_json::{Value, json};

use super::workload::{count, create_pod, delete_pod};
use super::{
    Wake, condition_true, is_deleting, is_terminal, list, owned, pod_from_template, pod_ready,
    set_condition, write_status,
};
use crate::clock::parse_time;
use crate::resources::Builtin;
use crate::state::State;
use crate::store::meta_str;

pub(crate) fn reconcile(state: &mut State, wake: &mut Wake) -> bool {
    let jobs = state.builtin(Builtin::Job);
    let pods_rt = state.builtin(Builtin::Pod);
    let mut changed = false;
    for job in list(state, &jobs, None) {
        if is_deleting(&job) || condition_true(&job, "Complete") || condition_true(&job, "Failed") {
            continue;
        }
        let namespace = meta_str(&job, "namespace").to_owned();
        let now = state.now;
        let now_text = state.now_text();
        let suspended = job["spec"]["suspend"].as_bool() == Some(true);
        let pods = owned(state, &pods_rt, &namespace, &job);
        let active: Vec<_> = pods
            .iter()
            .filter(|p| !is_terminal(p) && !is_deleting(p))
            .cloned()
            .collect();
        let succeeded = count(&pods, |p| p["status"]["phase"] == "Succeeded");
        let restarts: i64 = pods
            .iter()
            .flat_map(|p| {
                p["status"]["containerStatuses"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .map(|c| c["restartCount"].as_i64().unwrap_or(0))
            .sum();
        let failed = count(&pods, |p| p["status"]["phase"] == "Failed") + restarts;
        let completions = job["spec"]["completions"].as_i64();
        let parallelism = job["spec"]["parallelism"].as_i64().unwrap_or(1);
        let backoff_limit = job["spec"]["backoffLimit"].as_i64().unwrap_or(6);
        let mut status = job["status"].clone();
        if !status.is_object() {
            status = json!({});
        }
        if status["startTime"].is_null() && !suspended {
            status["startTime"] = json!(now_text);
        }
        let start = status["startTime"]
            .as_str()
            .and_then(parse_time)
            .unwrap_or(now);
        let mut conditions: Vec<Value> =
            status["conditions"].as_array().cloned().unwrap_or_default();
        let mut terminal: Option<(&str, &str, String)> = None;
        if failed > backoff_limit {
            terminal = Some((
                "Failed",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit".to_owned(),
            ));
        } else if let Some(deadline) = job["spec"]["activeDeadlineSeconds"].as_i64() {
            let due = start
                .saturating_add(SignedDuration::from_secs(deadline))
                .unwrap_or(start);
            if due <= now {
                terminal = Some((
                    "Failed",
                    "DeadlineExceeded",
                    "Job was active longer than specified deadline".to_owned(),
                ));
            } else {
                wake.at(due);
            }
        }
        let done = match completions {
            Some(c) => succeeded >= c,
            None => succeeded > 0 && active.is_empty(),
        };
        if terminal.is_none() && done {
            terminal = Some((
                "Complete",
                "CompletionsReached",
                "Reached expected number of succeeded pods".to_owned(),
            ));
        }
        match &terminal {
            Some((kind, reason, message)) => {
                for pod in &active {
                    changed |= delete_pod(state, &pods_rt, &job, pod);
                }
                let interim = if *kind == "Complete" {
                    "SuccessCriteriaMet"
                } else {
                    "FailureTarget"
                };
                set_condition(
                    &mut conditions,
                    json!({"type": interim, "status": "True", "reason": reason, "message": message, "lastProbeTime": now_text}),
                    &now_text,
                );
                set_condition(
                    &mut conditions,
                    json!({"type": kind, "status": "True", "reason": reason, "message": message, "lastProbeTime": now_text}),
                    &now_text,
                );
                if *kind == "Complete" {
                    status["completionTime"] = json!(now_text);
                    state.event(&job, false, "Completed", "Job completed", "job-controller");
                } else {
                    state.event(&job, true, reason, message, "job-controller");
                }
                status["active"] = json!(0);
                if let Some(map) = status.as_object_mut() {
                    map.remove("active");
                }
            }
            None if !suspended => {
                let remaining = completions.map_or(parallelism, |c| (c - succeeded).max(0));
                let want = parallelism.min(remaining);
                let have = i64::try_from(active.len()).unwrap_or(i64::MAX);
                for _ in have..want {
                    let pod = pod_from_template(&job, &job["spec"]["template"], None, &[]);
                    changed |= create_pod(state, &pods_rt, &job, pod).is_some();
                }
                let active_now = owned(state, &pods_rt, &namespace, &job)
                    .into_iter()
                    .filter(|p| !is_terminal(p) && !is_deleting(p))
                    .count();
                if active_now > 0 {
                    status["active"] = json!(active_now);
                } else if let Some(map) = status.as_object_mut() {
                    map.remove("active");
                }
            }
            None => {}
        }
        if succeeded > 0 {
            status["succeeded"] = json!(succeeded);
        }
        if failed > 0 {
            status["failed"] = json!(failed);
        }
        let ready = count(&owned(state, &pods_rt, &namespace, &job), |p| {
            !is_terminal(p) && pod_ready(p)
        });
        status["ready"] = json!(ready);
        status["terminating"] = json!(0);
        status["uncountedTerminatedPods"] = json!({});
        if !conditions.is_empty() {
            status["conditions"] = Value::Array(conditions);
        }
        changed |= write_status(state, &jobs, &namespace, meta_str(&job, "name"), status);
    }
    changed
}
