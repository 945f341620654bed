//! The failure report, at krane's level: which resource failed and why, its events since the
//! deploy began (and those of its pods and ReplicaSets), and the last log lines of its failing
//! containers.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams, LogParams};
use serde::Serialize;
use serde_json::Value;

use crate::health::doomed_reason;
use crate::manifest::ObjectKey;

/// How many log lines of a failing container the report holds.
pub const LOG_LINES: i64 = 25;

/// One event, as shown in a report.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct EventLine {
    /// The object it is about (`Pod api-7d9c-x2`).
    pub object: String,
    /// Normal or Warning.
    #[serde(rename = "type")]
    pub type_: String,
    /// The reason (`BackOff`, `Failed`).
    pub reason: String,
    /// The message.
    pub message: String,
    /// How many times it happened.
    pub count: i32,
}

/// The last log lines of a failing container.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ContainerLogs {
    /// The pod.
    pub pod: String,
    /// The container.
    pub container: String,
    /// Whether these are the previous (crashed) instance's lines.
    pub previous: bool,
    /// The lines, oldest first.
    pub lines: Vec<String>,
}

/// What failed and what the cluster says about it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FailureReport {
    /// The resource.
    pub object: ObjectKey,
    /// Why it failed.
    pub reason: String,
    /// Pods of the new revision that cannot become ready, and why.
    pub pods: Vec<(String, String)>,
    /// Events about the resource, its ReplicaSets and pods since the deploy began.
    pub events: Vec<EventLine>,
    /// The last log lines of failing containers.
    pub logs: Vec<ContainerLogs>,
}

fn str_at<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(Value::as_str)
}

fn event_time(e: &Event) -> Option<k8s_openapi::jiff::Timestamp> {
    e.event_time
        .as_ref()
        .map(|t| t.0)
        .or_else(|| e.last_timestamp.as_ref().map(|t| t.0))
        .or_else(|| e.first_timestamp.as_ref().map(|t| t.0))
        .or_else(|| e.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// Builds the report for a failed resource from the cluster: events since `since` about the
/// resource and about `pods` (the workload's failing pods and their owners), and their logs.
pub async fn build(
    client: &kube::Client,
    object: &ObjectKey,
    reason: &str,
    workload: Option<&Value>,
    pods: &[Value],
    since: k8s_openapi::jiff::Timestamp,
) -> FailureReport {
    let ns = object
        .namespace
        .clone()
        .unwrap_or_else(|| "default".to_owned());
    // The workload's pods that are doomed (or, failing that, not ready), with their owners.
    let workload_uid = workload
        .and_then(|w| str_at(w, "/metadata/uid"))
        .map(str::to_owned);
    let mut owner_uids: BTreeSet<String> = workload_uid.iter().cloned().collect();
    let related: Vec<&Value> = pods
        .iter()
        .filter(|p| str_at(p, "/metadata/namespace") == Some(ns.as_str()))
        .filter(|p| {
            p.pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .is_some_and(|refs| {
                    refs.iter().any(|r| {
                        let u = r.get("uid").and_then(Value::as_str).unwrap_or("");
                        owner_uids.contains(u)
                            || r.get("name")
                                .and_then(Value::as_str)
                                .is_some_and(|n| n.starts_with(&format!("{}-", object.name)))
                    })
                })
        })
        .collect();
    for p in &related {
        for r in p
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(u) = r.get("uid").and_then(Value::as_str) {
                owner_uids.insert(u.to_owned());
            }
        }
    }
    let mut failing: Vec<(String, String)> = related
        .iter()
        .filter_map(|p| {
            doomed_reason(p).map(|r| (str_at(p, "/metadata/name").unwrap_or("?").to_owned(), r))
        })
        .collect();
    failing.sort();
    failing.dedup();

    let mut names: BTreeSet<String> = failing.iter().map(|(n, _)| n.clone()).collect();
    names.insert(object.name.clone());
    for p in &related {
        if let Some(n) = str_at(p, "/metadata/name") {
            names.insert(n.to_owned());
        }
        for r in p
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(n) = r.get("name").and_then(Value::as_str) {
                names.insert(n.to_owned());
            }
        }
    }
    let events_api: Api<Event> = Api::namespaced(client.clone(), &ns);
    let mut events = Vec::new();
    match events_api.list(&ListParams::default()).await {
        Ok(list) => {
            let mut items: Vec<Event> = list
                .items
                .into_iter()
                .filter(|e| {
                    let io = &e.involved_object;
                    let by_uid = io.uid.as_ref().is_some_and(|u| owner_uids.contains(u));
                    let by_name = io.name.as_ref().is_some_and(|n| names.contains(n));
                    (by_uid || by_name) && event_time(e).is_none_or(|t| t >= since)
                })
                .collect();
            items.sort_by_key(event_time);
            for e in items {
                events.push(EventLine {
                    object: format!(
                        "{} {}",
                        e.involved_object.kind.clone().unwrap_or_default(),
                        e.involved_object.name.clone().unwrap_or_default()
                    ),
                    type_: e.type_.clone().unwrap_or_default(),
                    reason: e.reason.clone().unwrap_or_default(),
                    message: e.message.clone().unwrap_or_default(),
                    count: e.count.unwrap_or(1),
                });
            }
        }
        Err(e) => tracing::debug!(error = %e, "cannot list events for the failure report"),
    }

    let pods_api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let mut logs = Vec::new();
    for p in related
        .iter()
        .filter(|p| doomed_reason(p).is_some())
        .take(3)
    {
        let pod_name = str_at(p, "/metadata/name").unwrap_or("").to_owned();
        for cs in p
            .pointer("/status/containerStatuses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let container = cs
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let waiting = str_at(cs, "/state/waiting/reason").unwrap_or("");
            if waiting.contains("ImagePull")
                || waiting == "ErrImagePull"
                || waiting == "InvalidImageName"
            {
                continue; // never started: no logs, the events say why
            }
            let restarts = cs.get("restartCount").and_then(Value::as_i64).unwrap_or(0);
            let previous = restarts > 0 && cs.pointer("/state/running").is_none();
            let params = LogParams {
                container: Some(container.clone()),
                previous,
                tail_lines: Some(LOG_LINES),
                ..LogParams::default()
            };
            match pods_api.logs(&pod_name, &params).await {
                Ok(text) => logs.push(ContainerLogs {
                    pod: pod_name.clone(),
                    container,
                    previous,
                    lines: text.lines().map(str::to_owned).collect(),
                }),
                Err(e) if previous => {
                    // The previous instance may be gone; the current one may have lines.
                    let params = LogParams {
                        container: Some(container.clone()),
                        tail_lines: Some(LOG_LINES),
                        ..LogParams::default()
                    };
                    if let Ok(text) = pods_api.logs(&pod_name, &params).await {
                        logs.push(ContainerLogs {
                            pod: pod_name.clone(),
                            container,
                            previous: false,
                            lines: text.lines().map(str::to_owned).collect(),
                        });
                    } else {
                        tracing::debug!(error = %e, "no logs for {pod_name}");
                    }
                }
                Err(e) => tracing::debug!(error = %e, "no logs for {pod_name}"),
            }
        }
    }
    FailureReport {
        object: object.clone(),
        reason: reason.to_owned(),
        pods: failing,
        events,
        logs,
    }
}
