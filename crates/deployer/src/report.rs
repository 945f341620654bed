//! The failure report, at krane's level: which resource failed and why, its events since the
//! deploy began (and those of its pods and ReplicaSets), and the last log lines of its failing
//! containers.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams, LogParams};
use serde::Serialize;
use serde_json::Value;

use crate::health::{doomed_reason, new_revision_pods};
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

/// Sorts events in causal order: by the event's time (eventTime, lastTimestamp,
/// firstTimestamp), then its count, then the order the server stored it in (resourceVersion).
fn causal_order(items: &mut [Event]) {
    items.sort_by_key(|e| {
        let rv = e
            .metadata
            .resource_version
            .as_deref()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(u64::MAX);
        (event_time(e), e.count.unwrap_or(1), rv)
    });
}

/// The namespace's ReplicaSets, as JSON (none when they cannot be listed: the report then
/// names no pods rather than the wrong ones).
async fn replica_sets(client: &kube::Client, ns: &str) -> Vec<Value> {
    let api: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
    match api.list(&ListParams::default()).await {
        Ok(list) => list
            .items
            .iter()
            .filter_map(|rs| serde_json::to_value(rs).ok())
            .collect(),
        Err(e) => {
            tracing::debug!(error = %e, "cannot list ReplicaSets for the failure report");
            Vec::new()
        }
    }
}

fn owner_refs(pod: &Value) -> impl Iterator<Item = &Value> {
    pod.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// Whether `pod` belongs to the failed resource `object`: it is that Pod, or one of its owners is
/// the resource (by uid in `owner_uids`, or by kind and name) or, for a Deployment, one of its
/// ReplicaSets (`NAME-HASH`, the hash without dashes, so `api` does not claim `api-worker`'s
/// pods). Pods of a Service, Ingress or other kind that owns no pods never belong.
fn pod_belongs_to(pod: &Value, object: &ObjectKey, owner_uids: &BTreeSet<String>) -> bool {
    if object.kind == "Pod" {
        return str_at(pod, "/metadata/name") == Some(object.name.as_str());
    }
    owner_refs(pod).any(|r| {
        if str_at(r, "/uid").is_some_and(|u| owner_uids.contains(u)) {
            return true;
        }
        let (Some(kind), Some(name)) = (str_at(r, "/kind"), str_at(r, "/name")) else {
            return false;
        };
        (kind == object.kind && name == object.name)
            || (object.kind == "Deployment"
                && kind == "ReplicaSet"
                && name
                    .strip_prefix(object.name.as_str())
                    .and_then(|rest| rest.strip_prefix('-'))
                    .is_some_and(|hash| !hash.is_empty() && !hash.contains('-')))
    })
}

/// The workload kinds whose failing pods are those of their newest revision.
const REVISIONED: [&str; 4] = ["Deployment", "StatefulSet", "DaemonSet", "Job"];

/// Builds the report for a failed resource from the cluster: the resource's events since
/// `since`, the events of its new revision's pods and ReplicaSet, and those pods' logs.
///
/// Events are picked by identity first: the pods are those of the workload's newest revision
/// (a Deployment's current ReplicaSet, a StatefulSet's update revision, a DaemonSet's
/// generation), and an event belongs when its involved object's uid is the workload's, that
/// ReplicaSet's or one of those pods' (by kind and name only when the event names no uid). Only
/// the events of objects that outlive a rollout (the workload, a reused ReplicaSet) are also
/// filtered by time, and `since` must be the server's time (the release record's
/// `creationTimestamp`): the API server's clock and this machine's need not agree (a CI runner
/// is often off by seconds, a simulator runs faster than real time).
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
    let in_ns = || {
        pods.iter()
            .filter(|p| str_at(p, "/metadata/namespace") == Some(ns.as_str()))
    };
    // The workload's pods of its newest revision; a pod, or a workload not seen, by ownership.
    let replicasets = if object.kind == "Deployment" && workload.is_some() {
        replica_sets(client, &ns).await
    } else {
        Vec::new()
    };
    let related: Vec<&Value> = match workload {
        Some(w) if REVISIONED.contains(&object.kind.as_str()) => {
            new_revision_pods(&object.kind, w, in_ns(), replicasets.iter())
        }
        _ => {
            let uids: BTreeSet<String> = workload
                .and_then(|w| str_at(w, "/metadata/uid"))
                .map(str::to_owned)
                .into_iter()
                .collect();
            in_ns()
                .filter(|p| pod_belongs_to(p, object, &uids))
                .collect()
        }
    };
    let workload_uid = workload
        .and_then(|w| str_at(w, "/metadata/uid"))
        .map(str::to_owned);
    // Objects whose events are all this revision's (its pods), and objects that outlive it (the
    // workload, the pods' owners), by uid.
    let pod_uids: BTreeSet<String> = related
        .iter()
        .filter_map(|p| str_at(p, "/metadata/uid"))
        .map(str::to_owned)
        .collect();
    let mut lasting_uids: BTreeSet<String> = workload_uid.into_iter().collect();
    for p in &related {
        for r in owner_refs(p) {
            if let Some(u) = str_at(r, "/uid") {
                lasting_uids.insert(u.to_owned());
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

    // The same objects by kind and name, for events that name no uid (a Service and a
    // Deployment may share a name; their events do not mix).
    let mut pod_names: BTreeSet<(String, String)> = BTreeSet::new();
    let mut lasting_names: BTreeSet<(String, String)> = BTreeSet::new();
    lasting_names.insert((object.kind.clone(), object.name.clone()));
    for p in &related {
        if let Some(n) = str_at(p, "/metadata/name") {
            pod_names.insert(("Pod".to_owned(), n.to_owned()));
        }
        for r in owner_refs(p) {
            if let (Some(k), Some(n)) = (str_at(r, "/kind"), str_at(r, "/name")) {
                lasting_names.insert((k.to_owned(), n.to_owned()));
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
                    let (of_pod, lasting) = match &io.uid {
                        Some(u) => (pod_uids.contains(u), lasting_uids.contains(u)),
                        None => match (&io.kind, &io.name) {
                            (Some(k), Some(n)) => {
                                let kn = (k.clone(), n.clone());
                                (pod_names.contains(&kn), lasting_names.contains(&kn))
                            }
                            _ => (false, false),
                        },
                    };
                    of_pod || (lasting && event_time(e).is_none_or(|t| t >= since))
                })
                .collect();
            causal_order(&mut items);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_in_causal_order() {
        let ev = |name: &str, last: Option<&str>, event: Option<&str>, count: i32, rv: &str| {
            serde_json::from_value::<Event>(serde_json::json!({
                "metadata": {"name": name, "resourceVersion": rv},
                "involvedObject": {"kind": "Pod", "name": "p"},
                "lastTimestamp": last, "eventTime": event, "count": count,
            }))
            .unwrap()
        };
        let mut items = vec![
            ev("backoff", Some("2026-01-01T00:00:09Z"), None, 3, "40"),
            ev("pulled", Some("2026-01-01T00:00:05Z"), None, 1, "31"),
            ev(
                "scheduled",
                None,
                Some("2026-01-01T00:00:01.000000Z"),
                1,
                "10",
            ),
            ev(
                "same-time-later",
                Some("2026-01-01T00:00:05Z"),
                None,
                1,
                "32",
            ),
            ev(
                "same-time-more",
                Some("2026-01-01T00:00:05Z"),
                None,
                2,
                "20",
            ),
        ];
        causal_order(&mut items);
        let names: Vec<&str> = items
            .iter()
            .map(|e| e.metadata.name.as_deref().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "scheduled",
                "pulled",
                "same-time-later",
                "same-time-more",
                "backoff"
            ]
        );
    }
    use serde_json::json;

    fn key(kind: &str, name: &str) -> ObjectKey {
        ObjectKey {
            group: String::new(),
            kind: kind.into(),
            namespace: Some("demo".into()),
            name: name.into(),
        }
    }

    fn pod(name: &str, owner_kind: &str, owner: &str, uid: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "demo", "ownerReferences": [
            {"kind": owner_kind, "name": owner, "uid": uid}
        ]}})
    }

    #[test]
    fn a_deployments_pods_are_those_of_its_replica_sets_only() {
        let none = BTreeSet::new();
        let api = key("Deployment", "api");
        assert!(pod_belongs_to(
            &pod("api-7d9c-x2", "ReplicaSet", "api-7d9c", "u1"),
            &api,
            &none
        ));
        // `api-worker`'s ReplicaSet is not `api`'s.
        assert!(!pod_belongs_to(
            &pod("api-worker-5f-x", "ReplicaSet", "api-worker-5f", "u2"),
            &api,
            &none
        ));
        // Known by uid whatever its name.
        let uids = BTreeSet::from(["u2".to_owned()]);
        assert!(pod_belongs_to(
            &pod("x", "ReplicaSet", "other-1", "u2"),
            &api,
            &uids
        ));
    }

    #[test]
    fn a_service_owns_no_pods_even_when_a_deployment_shares_its_name() {
        let none = BTreeSet::new();
        let svc = key("Service", "web");
        assert!(!pod_belongs_to(
            &pod("web-7d9c-x2", "ReplicaSet", "web-7d9c", "u1"),
            &svc,
            &none
        ));
    }

    #[test]
    fn stateful_sets_jobs_and_bare_pods_find_their_pods() {
        let none = BTreeSet::new();
        assert!(pod_belongs_to(
            &pod("db-0", "StatefulSet", "db", "u"),
            &key("StatefulSet", "db"),
            &none
        ));
        assert!(!pod_belongs_to(
            &pod("db-0", "StatefulSet", "db", "u"),
            &key("Job", "db"),
            &none
        ));
        let bare = json!({"metadata": {"name": "probe", "namespace": "demo"}});
        assert!(pod_belongs_to(&bare, &key("Pod", "probe"), &none));
        assert!(!pod_belongs_to(&bare, &key("Pod", "other"), &none));
    }
}
