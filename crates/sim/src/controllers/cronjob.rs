//! The CronJob controller: creates a Job for the latest due schedule time (named
//! `<cronjob>-<minutes since the epoch>`, as the real controller names them), honours
//! `concurrencyPolicy` and `suspend`, and keeps the history limits.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::cron::Schedule;
use super::{
    CONTROLLER_MANAGER, Wake, condition_true, controller_ref, is_deleting, list, owned,
    write_status,
};
use crate::clock::{format_time, parse_time};
use crate::resources::Builtin;
use crate::state::State;
use crate::store::meta_str;

fn job_ref(job: &Value) -> Value {
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": job["metadata"]["name"],
        "namespace": job["metadata"]["namespace"],
        "uid": job["metadata"]["uid"],
        "resourceVersion": job["metadata"]["resourceVersion"],
    })
}

fn finished(job: &Value) -> Option<bool> {
    if condition_true(job, "Complete") {
        Some(true)
    } else if condition_true(job, "Failed") {
        Some(false)
    } else {
        None
    }
}

pub(crate) fn reconcile(state: &mut State, wake: &mut Wake) -> bool {
    let cronjobs = state.builtin(Builtin::CronJob);
    let jobs_rt = state.builtin(Builtin::Job);
    let mut changed = false;
    for cj in list(state, &cronjobs, None) {
        if is_deleting(&cj) {
            continue;
        }
        let Ok(schedule) = Schedule::parse(cj["spec"]["schedule"].as_str().unwrap_or("")) else {
            continue;
        };
        let namespace = meta_str(&cj, "namespace").to_owned();
        let name = meta_str(&cj, "name").to_owned();
        let now = state.now;
        let jobs = owned(state, &jobs_rt, &namespace, &cj);
        let active: Vec<&std::sync::Arc<Value>> =
            jobs.iter().filter(|j| finished(j).is_none()).collect();
        let last: Timestamp = cj["status"]["lastScheduleTime"]
            .as_str()
            .or_else(|| cj["metadata"]["creationTimestamp"].as_str())
            .and_then(parse_time)
            .unwrap_or(now);
        let mut due = None;
        let mut t = last;
        while let Some(next) = schedule.next_after(t) {
            if next > now {
                wake.at(next);
                break;
            }
            due = Some(next);
            t = next;
        }
        let mut status = cj["status"].clone();
        if !status.is_object() {
            status = json!({});
        }
        if let (Some(scheduled), false) = (due, cj["spec"]["suspend"].as_bool() == Some(true)) {
            let policy = cj["spec"]["concurrencyPolicy"].as_str().unwrap_or("Allow");
            let skip = policy == "Forbid" && !active.is_empty();
            if policy == "Replace" {
                for job in &active {
                    changed |= state.controller_delete(
                        &jobs_rt,
                        job,
                        Some(crate::state::Propagation::Background),
                    );
                }
            }
            if !skip {
                let job_name = format!("{name}-{}", scheduled.as_second() / 60);
                let template = &cj["spec"]["jobTemplate"];
                let mut annotations = template["metadata"]["annotations"]
                    .as_object()
                    .cloned()
                    .unwrap_or_default();
                annotations.insert(
                    "batch.kubernetes.io/cronjob-scheduled-timestamp".to_owned(),
                    json!(format_time(scheduled)),
                );
                let job = json!({
                    "apiVersion": "batch/v1", "kind": "Job",
                    "metadata": {
                        "name": job_name, "namespace": namespace,
                        "labels": template["metadata"]["labels"],
                        "annotations": annotations,
                        "ownerReferences": [controller_ref(&cj)],
                    },
                    "spec": template["spec"],
                });
                if let Some(created) = state.controller_create(&jobs_rt, job, CONTROLLER_MANAGER) {
                    changed = true;
                    state.event(
                        &cj,
                        false,
                        "SuccessfulCreate",
                        &format!("Created job {job_name}"),
                        "cronjob-controller",
                    );
                    let _ = created;
                }
            }
            status["lastScheduleTime"] = json!(format_time(scheduled));
        }
        // history
        let jobs = owned(state, &jobs_rt, &namespace, &cj);
        let mut succeeded: Vec<_> = jobs
            .iter()
            .filter(|j| finished(j) == Some(true))
            .cloned()
            .collect();
        let mut failed: Vec<_> = jobs
            .iter()
            .filter(|j| finished(j) == Some(false))
            .cloned()
            .collect();
        if let Some(last_ok) = succeeded
            .iter()
            .filter_map(|j| j["status"]["completionTime"].as_str())
            .max()
        {
            status["lastSuccessfulTime"] = json!(last_ok);
        }
        for (list, limit) in [
            (
                &mut succeeded,
                cj["spec"]["successfulJobsHistoryLimit"]
                    .as_i64()
                    .unwrap_or(3),
            ),
            (
                &mut failed,
                cj["spec"]["failedJobsHistoryLimit"].as_i64().unwrap_or(1),
            ),
        ] {
            list.sort_by_key(|j| meta_str(j, "creationTimestamp").to_owned());
            let excess = list
                .len()
                .saturating_sub(usize::try_from(limit).unwrap_or(0));
            for job in list.iter().take(excess) {
                changed |= state.controller_delete(
                    &jobs_rt,
                    job,
                    Some(crate::state::Propagation::Background),
                );
                state.event(
                    &cj,
                    false,
                    "SawCompletedJob",
                    &format!("Saw completed job: {}", meta_str(job, "name")),
                    "cronjob-controller",
                );
            }
        }
        let active_refs: Vec<Value> = owned(state, &jobs_rt, &namespace, &cj)
            .iter()
            .filter(|j| finished(j).is_none())
            .map(|j| job_ref(j))
            .collect();
        if active_refs.is_empty() {
            if let Some(map) = status.as_object_mut() {
                map.remove("active");
            }
        } else {
            status["active"] = Value::Array(active_refs);
        }
        changed |= write_status(state, &cronjobs, &namespace, &name, status);
    }
    changed
}
