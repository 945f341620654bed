//! Health: is every object of the release ready? Read from watches (never polling), with the
//! readiness rules the anchors converged on (kubectl's rollout status, Argo CD's health):
//!
//! | kind | ready when | failed when |
//! |---|---|---|
//! | Deployment | observedGeneration >= generation; updated == replicas; no old replicas; available == updated | Progressing = ProgressDeadlineExceeded; a doomed pod of the new ReplicaSet |
//! | StatefulSet | observedGeneration; ready >= replicas; updated >= replicas - partition (with a partition), else updateRevision == currentRevision | a doomed pod of the update revision |
//! | DaemonSet | observedGeneration; updated >= desired; available >= desired | a doomed pod of the current generation |
//! | Job | condition Complete | condition Failed; a doomed pod |
//! | Pod | Succeeded, or Running and Ready | Failed; a doomed container |
//! | Service (LoadBalancer) | every `status.loadBalancer.ingress` entry has an IP or hostname | — |
//! | Ingress | an address in `status.loadBalancer.ingress` | — |
//! | PersistentVolumeClaim | Bound | Lost |
//! | HorizontalPodAutoscaler | AbleToScale, or status written | AbleToScale = False |
//! | CustomResourceDefinition | Established | NamesAccepted = False |
//! | ReplicaSet | observedGeneration; ready == available == replicas | — |
//! | anything else | present, or its Ready/Available condition is True where it has one | — |
//!
//! A pod is doomed when a container waits with ImagePullBackOff, ErrImagePull (image not found
//! or access denied), CrashLoopBackOff, CreateContainerConfigError, InvalidImageName or another
//! `Err*`/`*Error`/`*BackOff` reason: waiting longer cannot help, so ferry fails at once
//! instead of at the deadline (krane's "doomed" rule). Only pods of the new revision count.
//!
//! kube-rs's `is_deployment_completed` (no observedGeneration check: stale success right after
//! apply) and `await_condition` (no timeout) are not used.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::StreamExt as _;
use kube::api::{Api, DynamicObject};
use kube::discovery::ApiResource;
use kube::runtime::watcher;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::events::{DeployEvent, EventSink, ResourceState};
use crate::manifest::ObjectKey;
use crate::plan::{Target, api_for};

/// The health of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Ready.
    Ready,
    /// Not ready yet, and why.
    Pending(String),
    /// Failed, and why; waiting longer will not help.
    Failed(String),
}

fn i64_at(v: &Value, ptr: &str) -> Option<i64> {
    v.pointer(ptr).and_then(Value::as_i64)
}

fn str_at<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(Value::as_str)
}

fn condition<'a>(v: &'a Value, ty: &str) -> Option<&'a Value> {
    v.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(ty))
}

fn condition_status<'a>(v: &'a Value, ty: &str) -> Option<&'a str> {
    condition(v, ty)
        .and_then(|c| c.get("status"))
        .and_then(Value::as_str)
}

fn stale(v: &Value) -> Option<Health> {
    let generation = i64_at(v, "/metadata/generation").unwrap_or(0);
    let observed = i64_at(v, "/status/observedGeneration").unwrap_or(0);
    (observed < generation || observed == 0).then(|| {
        Health::Pending(format!(
            "waiting for the controller to observe generation {generation}"
        ))
    })
}

/// Whether a kind is ready as soon as it exists (no status to wait for), given the object.
pub fn ready_when_present(kind: &str, object: &Value) -> bool {
    match kind {
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "Job"
        | "Pod"
        | "Ingress"
        | "PersistentVolumeClaim"
        | "HorizontalPodAutoscaler"
        | "CustomResourceDefinition"
        | "ReplicaSet" => false,
        "Service" => str_at(object, "/spec/type") != Some("LoadBalancer"),
        "ConfigMap"
        | "Secret"
        | "ServiceAccount"
        | "Role"
        | "ClusterRole"
        | "RoleBinding"
        | "ClusterRoleBinding"
        | "NetworkPolicy"
        | "PodDisruptionBudget"
        | "Namespace"
        | "LimitRange"
        | "ResourceQuota"
        | "StorageClass"
        | "PriorityClass"
        | "IngressClass"
        | "CronJob"
        | "Endpoints"
        | "EndpointSlice"
        | "PersistentVolume" => true,
        // Unknown kinds: watched, ready when present or by their Ready/Available condition.
        _ => false,
    }
}

/// The health of an object from its own status (pods are judged separately).
pub fn assess(kind: &str, v: &Value) -> Health {
    match kind {
        "Deployment" => deployment(v),
        "StatefulSet" => statefulset(v),
        "DaemonSet" => daemonset(v),
        "ReplicaSet" => replicaset(v),
        "Job" => job(v),
        "Pod" => pod(v),
        "Service" => service(v),
        "Ingress" => ingress(v),
        "PersistentVolumeClaim" => pvc(v),
        "HorizontalPodAutoscaler" => hpa(v),
        "CustomResourceDefinition" => crd(v),
        "Namespace" if str_at(v, "/status/phase") == Some("Terminating") => {
            Health::Failed("namespace is being deleted".into())
        }
        k if ready_when_present(k, v) => Health::Ready,
        _ => generic(v),
    }
}

fn deployment(v: &Value) -> Health {
    if v.pointer("/spec/paused").and_then(Value::as_bool) == Some(true) {
        return Health::Ready;
    }
    if let Some(h) = stale(v) {
        return h;
    }
    if let Some(c) = condition(v, "Progressing")
        && c.get("reason").and_then(Value::as_str) == Some("ProgressDeadlineExceeded")
    {
        return Health::Failed(format!(
            "progress deadline exceeded: {}",
            c.get("message").and_then(Value::as_str).unwrap_or("")
        ));
    }
    let replicas = i64_at(v, "/spec/replicas").unwrap_or(1);
    let updated = i64_at(v, "/status/updatedReplicas").unwrap_or(0);
    let total = i64_at(v, "/status/replicas").unwrap_or(0);
    let available = i64_at(v, "/status/availableReplicas").unwrap_or(0);
    if updated < replicas {
        return Health::Pending(format!("{updated} of {replicas} replicas updated"));
    }
    if total > updated {
        let old = total - updated;
        return Health::Pending(format!(
            "{old} old {} pending termination",
            plural(old, "replica", "replicas")
        ));
    }
    if available < updated {
        return Health::Pending(format!(
            "{available} of {updated} updated replicas available"
        ));
    }
    Health::Ready
}

fn statefulset(v: &Value) -> Health {
    if str_at(v, "/spec/updateStrategy/type") == Some("OnDelete") {
        return Health::Ready;
    }
    if let Some(h) = stale(v) {
        return h;
    }
    let replicas = i64_at(v, "/spec/replicas").unwrap_or(1);
    let ready = i64_at(v, "/status/readyReplicas").unwrap_or(0);
    if ready < replicas {
        return Health::Pending(format!("{ready} of {replicas} replicas ready"));
    }
    if let Some(partition) = i64_at(v, "/spec/updateStrategy/rollingUpdate/partition")
        && partition > 0
    {
        let updated = i64_at(v, "/status/updatedReplicas").unwrap_or(0);
        let want = replicas - partition;
        return if updated < want {
            Health::Pending(format!(
                "{updated} of {want} replicas above the partition updated"
            ))
        } else {
            Health::Ready
        };
    }
    let update = str_at(v, "/status/updateRevision").unwrap_or("");
    let current = str_at(v, "/status/currentRevision").unwrap_or("");
    if update != current {
        let updated = i64_at(v, "/status/updatedReplicas").unwrap_or(0);
        return Health::Pending(format!(
            "{updated} of {replicas} replicas at revision {update}"
        ));
    }
    Health::Ready
}

fn daemonset(v: &Value) -> Health {
    if str_at(v, "/spec/updateStrategy/type") == Some("OnDelete") {
        return Health::Ready;
    }
    if let Some(h) = stale(v) {
        return h;
    }
    let desired = i64_at(v, "/status/desiredNumberScheduled").unwrap_or(0);
    let updated = i64_at(v, "/status/updatedNumberScheduled").unwrap_or(0);
    let available = i64_at(v, "/status/numberAvailable").unwrap_or(0);
    if updated < desired {
        return Health::Pending(format!("{updated} of {desired} pods updated"));
    }
    if available < desired {
        return Health::Pending(format!("{available} of {desired} pods available"));
    }
    Health::Ready
}

fn replicaset(v: &Value) -> Health {
    if let Some(h) = stale(v) {
        return h;
    }
    let replicas = i64_at(v, "/spec/replicas").unwrap_or(1);
    let available = i64_at(v, "/status/availableReplicas").unwrap_or(0);
    if available < replicas {
        return Health::Pending(format!("{available} of {replicas} replicas available"));
    }
    Health::Ready
}

fn job(v: &Value) -> Health {
    if condition_status(v, "Complete") == Some("True") {
        return Health::Ready;
    }
    if let Some(c) = condition(v, "Failed")
        && c.get("status").and_then(Value::as_str) == Some("True")
    {
        return Health::Failed(format!(
            "job failed: {} {}",
            c.get("reason").and_then(Value::as_str).unwrap_or(""),
            c.get("message").and_then(Value::as_str).unwrap_or("")
        ));
    }
    let succeeded = i64_at(v, "/status/succeeded").unwrap_or(0);
    let completions = i64_at(v, "/spec/completions").unwrap_or(1);
    Health::Pending(format!("{succeeded} of {completions} completions"))
}

fn pod(v: &Value) -> Health {
    match str_at(v, "/status/phase") {
        Some("Succeeded") => return Health::Ready,
        Some("Failed") => {
            return Health::Failed(format!(
                "pod failed: {}",
                str_at(v, "/status/reason").unwrap_or("")
            ));
        }
        _ => {}
    }
    if let Some(reason) = doomed_reason(v) {
        return Health::Failed(reason);
    }
    if condition_status(v, "Ready") == Some("True") {
        Health::Ready
    } else {
        Health::Pending(format!(
            "pod {}",
            str_at(v, "/status/phase").unwrap_or("Pending")
        ))
    }
}

fn service(v: &Value) -> Health {
    if str_at(v, "/spec/type") != Some("LoadBalancer") {
        return Health::Ready;
    }
    let ingress = lb_ingress(v);
    if ingress.is_empty() {
        return Health::Pending("waiting for a load balancer address".into());
    }
    if ingress.iter().any(Option::is_none) {
        return Health::Pending("load balancer has an entry without an address".into());
    }
    Health::Ready
}

/// The addresses of `status.loadBalancer.ingress` (None for an entry with neither IP nor
/// hostname).
pub fn lb_ingress(v: &Value) -> Vec<Option<String>> {
    v.pointer("/status/loadBalancer/ingress")
        .and_then(Value::as_array)
        .map(|entries| {
            entries
                .iter()
                .map(|e| {
                    e.get("hostname")
                        .or_else(|| e.get("ip"))
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn ingress(v: &Value) -> Health {
    let addresses = lb_ingress(v);
    if !addresses.is_empty() && addresses.iter().all(Option::is_some) {
        Health::Ready
    } else {
        Health::Pending("waiting for an ingress address".into())
    }
}

fn pvc(v: &Value) -> Health {
    match str_at(v, "/status/phase") {
        Some("Bound") => Health::Ready,
        Some("Lost") => Health::Failed("claim lost its volume".into()),
        other => Health::Pending(format!("claim {}", other.unwrap_or("Pending"))),
    }
}

fn hpa(v: &Value) -> Health {
    match condition(v, "AbleToScale") {
        Some(c) if c.get("status").and_then(Value::as_str) == Some("False") => {
            Health::Failed(format!(
                "cannot scale: {}",
                c.get("message").and_then(Value::as_str).unwrap_or("")
            ))
        }
        Some(_) => Health::Ready,
        None if v.pointer("/status/desiredReplicas").is_some() => Health::Ready,
        None => Health::Pending("waiting for the autoscaler's status".into()),
    }
}

fn crd(v: &Value) -> Health {
    if condition_status(v, "NamesAccepted") == Some("False") {
        return Health::Failed(format!(
            "names not accepted: {}",
            condition(v, "NamesAccepted")
                .and_then(|c| c.get("message"))
                .and_then(Value::as_str)
                .unwrap_or("")
        ));
    }
    if condition_status(v, "Established") == Some("True") {
        Health::Ready
    } else {
        Health::Pending("waiting to be established".into())
    }
}

fn generic(v: &Value) -> Health {
    for ty in ["Ready", "Available"] {
        if let Some(c) = condition(v, ty) {
            return match c.get("status").and_then(Value::as_str) {
                Some("True") => Health::Ready,
                _ => Health::Pending(format!(
                    "{ty}: {}",
                    c.get("message")
                        .or_else(|| c.get("reason"))
                        .and_then(Value::as_str)
                        .unwrap_or("not yet")
                )),
            };
        }
    }
    Health::Ready
}

/// Why a pod cannot become ready by waiting, if it cannot.
pub fn doomed_reason(pod: &Value) -> Option<String> {
    for list in ["initContainerStatuses", "containerStatuses"] {
        for cs in pod
            .pointer(&format!("/status/{list}"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(waiting) = cs.pointer("/state/waiting") else {
                continue;
            };
            let reason = waiting.get("reason").and_then(Value::as_str).unwrap_or("");
            let message = waiting.get("message").and_then(Value::as_str).unwrap_or("");
            let name = cs.get("name").and_then(Value::as_str).unwrap_or("?");
            if is_doomed(reason, message) {
                let restarts = cs.get("restartCount").and_then(Value::as_i64).unwrap_or(0);
                let mut text = format!("container {name}: {reason}");
                if !message.is_empty() {
                    text.push_str(&format!(" ({message})"));
                }
                if restarts > 0 {
                    text.push_str(&format!(", {restarts} restarts"));
                }
                return Some(text);
            }
        }
    }
    None
}

fn is_doomed(reason: &str, message: &str) -> bool {
    match reason {
        "" | "ContainerCreating" | "PodInitializing" => false,
        "ImagePullBackOff"
        | "CrashLoopBackOff"
        | "CreateContainerConfigError"
        | "InvalidImageName"
        | "CreateContainerError"
        | "RunContainerError"
        | "ErrImageNeverPull"
        | "PreStartHookError"
        | "PostStartHookError" => true,
        // A first pull error may be a blip; not-found and access-denied are not.
        "ErrImagePull" => {
            let m = message.to_ascii_lowercase();
            [
                "not found",
                "manifest unknown",
                "unauthorized",
                "denied",
                "does not exist",
            ]
            .iter()
            .any(|s| m.contains(s))
        }
        r => r.starts_with("Err") || r.ends_with("Error") || r.ends_with("BackOff"),
    }
}

fn uid(v: &Value) -> Option<&str> {
    str_at(v, "/metadata/uid")
}

fn owned_by(v: &Value, owner_uid: &str) -> bool {
    v.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| {
            refs.iter()
                .any(|r| r.get("uid").and_then(Value::as_str) == Some(owner_uid))
        })
}

/// The pods of a workload's newest revision, from the pods and ReplicaSets seen so far.
pub fn new_revision_pods<'a>(
    kind: &str,
    workload: &Value,
    pods: impl Iterator<Item = &'a Value> + Clone,
    replicasets: impl Iterator<Item = &'a Value>,
) -> Vec<&'a Value> {
    let Some(wuid) = uid(workload) else {
        return Vec::new();
    };
    match kind {
        "Deployment" => {
            let revision =
                crate::manifest::annotation(workload, "deployment.kubernetes.io/revision");
            let owned: Vec<&Value> = replicasets.filter(|rs| owned_by(rs, wuid)).collect();
            fn rs_revision<'v>(rs: &&'v Value) -> Option<&'v str> {
                crate::manifest::annotation(rs, "deployment.kubernetes.io/revision")
            }
            // The ReplicaSet of the Deployment's current revision. Until the watch has shown
            // it, judge no pods: the newest one seen may be the revision being replaced (after a
            // rollback the old ReplicaSet becomes the newest revision again).
            let newest = match revision {
                Some(rev) => owned
                    .iter()
                    .copied()
                    .find(|rs| rs_revision(rs) == Some(rev)),
                None => owned.iter().copied().max_by_key(|rs| {
                    rs_revision(rs)
                        .and_then(|r| r.parse::<i64>().ok())
                        .unwrap_or(0)
                }),
            };
            let Some(rs_uid) = newest.and_then(uid) else {
                return Vec::new();
            };
            pods.filter(|p| owned_by(p, rs_uid)).collect()
        }
        "StatefulSet" => {
            let update = str_at(workload, "/status/updateRevision");
            pods.filter(|p| {
                owned_by(p, wuid)
                    && (update.is_none()
                        || crate::manifest::label(p, "controller-revision-hash") == update)
            })
            .collect()
        }
        "DaemonSet" => {
            let generation = i64_at(workload, "/metadata/generation").map(|g| g.to_string());
            pods.filter(|p| {
                owned_by(p, wuid)
                    && crate::manifest::label(p, "pod-template-generation")
                        .is_none_or(|g| Some(g) == generation.as_deref())
            })
            .collect()
        }
        "Job" => pods.filter(|p| owned_by(p, wuid)).collect(),
        _ => Vec::new(),
    }
}

/// Settings for a wait.
#[derive(Debug, Clone)]
pub struct WaitOptions {
    /// The overall deadline.
    pub deadline: Instant,
    /// The default deadline per resource, from when the wait began.
    pub resource_timeout: Duration,
    /// The deadline for LoadBalancer Services (cloud load balancers take minutes).
    pub load_balancer_timeout: Duration,
}

/// How a wait ended.
#[derive(Debug, Clone)]
pub enum WaitOutcome {
    /// Everything is ready.
    Ready {
        /// The last state of every watched object.
        objects: BTreeMap<ObjectKey, Value>,
    },
    /// Some resources failed (doomed pods, failed jobs, their own deadline passed).
    Failed {
        /// Each failed resource and why.
        failures: Vec<(ObjectKey, String)>,
        /// The pods seen (for the failure report).
        pods: Vec<Value>,
        /// The last state of every watched object.
        objects: BTreeMap<ObjectKey, Value>,
    },
    /// The overall deadline passed.
    TimedOut {
        /// Each resource still not ready and why.
        pending: Vec<(ObjectKey, String)>,
        /// The pods seen.
        pods: Vec<Value>,
        /// The last state of every watched object.
        objects: BTreeMap<ObjectKey, Value>,
    },
}

/// Why a wait could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HealthError {
    /// A watch failed beyond its retries.
    #[error("cannot watch {what}")]
    Watch {
        /// What was watched.
        what: String,
        /// Why.
        #[source]
        source: kube::runtime::watcher::Error,
    },
}

/// A watch: apiVersion, plural, namespace.
type WatchKey = (String, String, Option<String>);

enum Feed {
    Object(usize, Value),
    Gone(usize),
    Pod(Value),
    PodGone(Value),
    ReplicaSet(Value),
    Error(String, kube::runtime::watcher::Error),
}

fn spawn_watch(
    api: Api<DynamicObject>,
    tx: mpsc::UnboundedSender<Feed>,
    what: String,
    make: impl Fn(Value, bool) -> Feed + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(watcher(api, watcher::Config::default()));
        let mut failures = 0;
        while let Some(event) = stream.next().await {
            let feed = match event {
                Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => {
                    failures = 0;
                    make(serde_json::to_value(&o).unwrap_or(Value::Null), false)
                }
                Ok(watcher::Event::Delete(o)) => {
                    make(serde_json::to_value(&o).unwrap_or(Value::Null), true)
                }
                Ok(_) => continue,
                Err(e) => {
                    failures += 1;
                    // The watcher re-lists on its own; give up only when it keeps failing.
                    if failures < 8 {
                        tracing::debug!(error = %e, "watch of {what} failed; retrying");
                        tokio::time::sleep(Duration::from_millis(250 * failures)).await;
                        continue;
                    }
                    Feed::Error(what.clone(), e)
                }
            };
            if tx.send(feed).is_err() {
                break;
            }
        }
    })
}

/// Waits until every target is ready, one fails, or a deadline passes, reporting state changes
/// to `sink`. Objects that are ready when present are ready at once.
pub async fn wait(
    client: &kube::Client,
    targets: &[Target],
    options: &WaitOptions,
    sink: &dyn EventSink,
) -> Result<WaitOutcome, HealthError> {
    let started = Instant::now();
    let keys: Vec<ObjectKey> = targets.iter().map(Target::key).collect();
    let mut state: BTreeMap<usize, Health> = BTreeMap::new();
    let mut latest: BTreeMap<usize, Value> = BTreeMap::new();
    let mut deadlines: BTreeMap<usize, Instant> = BTreeMap::new();
    let mut watched: BTreeMap<WatchKey, (ApiResource, Vec<usize>)> = BTreeMap::new();
    let mut pod_namespaces: BTreeSet<String> = BTreeSet::new();
    for (i, t) in targets.iter().enumerate() {
        let kind = t.resource.kind.as_str();
        if ready_when_present(kind, &t.manifest.object) {
            state.insert(i, Health::Ready);
            sink.emit(DeployEvent::Resource {
                object: keys[i].clone(),
                state: ResourceState::Ready,
                message: "present".into(),
            });
            continue;
        }
        let own = crate::manifest::annotation(&t.manifest.object, crate::order::TIMEOUT_ANNOTATION)
            .and_then(|s| humantime::parse_duration(s.trim()).ok());
        let per = own.unwrap_or(if kind == "Service" {
            options.load_balancer_timeout
        } else {
            options.resource_timeout
        });
        deadlines.insert(i, (started + per).min(options.deadline));
        state.insert(i, Health::Pending("waiting for status".into()));
        let ns = t
            .manifest
            .namespace()
            .filter(|_| t.namespaced)
            .map(str::to_owned);
        if matches!(kind, "Deployment" | "StatefulSet" | "DaemonSet" | "Job")
            && let Some(ns) = &ns
        {
            pod_namespaces.insert(ns.clone());
        }
        watched
            .entry((
                t.resource.api_version.clone(),
                t.resource.plural.clone(),
                ns,
            ))
            .or_insert_with(|| (t.resource.clone(), Vec::new()))
            .1
            .push(i);
    }
    if watched.is_empty() {
        return Ok(WaitOutcome::Ready {
            objects: BTreeMap::new(),
        });
    }

    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for ((_, _, ns), (ar, idx)) in &watched {
        let names: BTreeMap<String, usize> = idx
            .iter()
            .map(|&i| (targets[i].manifest.name().to_owned(), i))
            .collect();
        let api = api_for(client, ar, ns.as_deref());
        let what = format!(
            "{} in {}",
            ar.plural,
            ns.as_deref().unwrap_or("the cluster")
        );
        tasks.push(spawn_watch(api, tx.clone(), what, move |v, gone| {
            let name = v
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            // Objects of the same type we do not track go nowhere.
            let i = names.get(name).copied().unwrap_or(usize::MAX);
            if gone {
                Feed::Gone(i)
            } else {
                Feed::Object(i, v)
            }
        }));
    }
    let pod_ar = ApiResource::erase::<k8s_openapi::api::core::v1::Pod>(&());
    let rs_ar = ApiResource::erase::<k8s_openapi::api::apps::v1::ReplicaSet>(&());
    for ns in &pod_namespaces {
        tasks.push(spawn_watch(
            api_for(client, &pod_ar, Some(ns)),
            tx.clone(),
            format!("pods in {ns}"),
            |v, gone| if gone { Feed::PodGone(v) } else { Feed::Pod(v) },
        ));
        tasks.push(spawn_watch(
            api_for(client, &rs_ar, Some(ns)),
            tx.clone(),
            format!("replicasets in {ns}"),
            |v, _| Feed::ReplicaSet(v),
        ));
    }
    drop(tx);

    let mut pods: BTreeMap<(String, String), Value> = BTreeMap::new();
    let mut replicasets: BTreeMap<(String, String), Value> = BTreeMap::new();
    let ns_name = |v: &Value| {
        (
            str_at(v, "/metadata/namespace").unwrap_or("").to_owned(),
            str_at(v, "/metadata/name").unwrap_or("").to_owned(),
        )
    };
    let outcome = loop {
        // Re-assess everything pending.
        let mut failures = Vec::new();
        for (&i, h) in state.iter_mut() {
            if *h == Health::Ready {
                continue;
            }
            let Some(obj) = latest.get(&i) else { continue };
            let kind = targets[i].resource.kind.as_str();
            let mut new = assess(kind, obj);
            // Pods are judged only once the controller has seen the current spec: before that,
            // the "newest" revision is the one being replaced (a rollback's failed release).
            if !matches!(new, Health::Failed(_))
                && matches!(kind, "Deployment" | "StatefulSet" | "DaemonSet" | "Job")
                && (kind == "Job" || stale(obj).is_none())
            {
                let ns = targets[i].manifest.namespace().unwrap_or("");
                let pods_in_ns = pods
                    .iter()
                    .filter(move |((pns, _), _)| pns == ns)
                    .map(|(_, p)| p);
                let rs_in_ns = replicasets
                    .iter()
                    .filter(move |((rns, _), _)| rns == ns)
                    .map(|(_, r)| r);
                for p in new_revision_pods(kind, obj, pods_in_ns, rs_in_ns) {
                    if let Some(reason) = doomed_reason(p) {
                        new = Health::Failed(format!(
                            "pod {}: {reason}",
                            str_at(p, "/metadata/name").unwrap_or("?")
                        ));
                        break;
                    }
                }
            }
            if new != *h {
                let (st, msg) = match &new {
                    Health::Ready => (ResourceState::Ready, ready_message(kind, obj)),
                    Health::Pending(m) => (ResourceState::Pending, m.clone()),
                    Health::Failed(m) => (ResourceState::Failed, m.clone()),
                };
                sink.emit(DeployEvent::Resource {
                    object: keys[i].clone(),
                    state: st,
                    message: msg,
                });
                if kind == "Service" && new == Health::Ready {
                    sink.emit(DeployEvent::LoadBalancer {
                        object: keys[i].clone(),
                        addresses: lb_ingress(obj).into_iter().flatten().collect(),
                    });
                }
                *h = new;
            }
            if let Health::Failed(m) = h {
                failures.push((keys[i].clone(), m.clone()));
            }
        }
        let objects = || {
            latest
                .iter()
                .map(|(i, v)| (keys[*i].clone(), v.clone()))
                .collect::<BTreeMap<_, _>>()
        };
        if !failures.is_empty() {
            break WaitOutcome::Failed {
                failures,
                pods: pods.values().cloned().collect(),
                objects: objects(),
            };
        }
        if state.values().all(|h| *h == Health::Ready) {
            break WaitOutcome::Ready { objects: objects() };
        }
        let now = Instant::now();
        // Resources past their own deadline fail, naming what they waited for.
        let expired: Vec<(ObjectKey, String)> = state
            .iter()
            .filter(|(i, h)| **h != Health::Ready && deadlines.get(i).is_some_and(|d| *d <= now))
            .map(|(i, h)| {
                let why = match h {
                    Health::Pending(m) => m.clone(),
                    _ => String::new(),
                };
                (keys[*i].clone(), why)
            })
            .collect();
        if now >= options.deadline {
            break WaitOutcome::TimedOut {
                pending: expired,
                pods: pods.values().cloned().collect(),
                objects: objects(),
            };
        }
        if !expired.is_empty() {
            let failures = expired
                .into_iter()
                .map(|(k, why)| {
                    let waited = humantime::format_duration(Duration::from_secs(
                        now.duration_since(started).as_secs(),
                    ));
                    (k, format!("not ready after {waited}: {why}"))
                })
                .collect();
            break WaitOutcome::Failed {
                failures,
                pods: pods.values().cloned().collect(),
                objects: objects(),
            };
        }
        let next_deadline = deadlines
            .iter()
            .filter(|(i, _)| state.get(i) != Some(&Health::Ready))
            .map(|(_, d)| *d)
            .min()
            .unwrap_or(options.deadline)
            .min(options.deadline);
        let feed = tokio::select! {
            f = rx.recv() => f,
            () = tokio::time::sleep_until(next_deadline) => continue,
        };
        let Some(feed) = feed else {
            // Every watch ended (should not happen); fall back to the deadline.
            tokio::time::sleep_until(next_deadline).await;
            continue;
        };
        let mut apply = |feed: Feed| -> Option<HealthError> {
            match feed {
                Feed::Object(i, v) if i != usize::MAX => {
                    latest.insert(i, v);
                }
                Feed::Gone(i) if i != usize::MAX => {
                    latest.remove(&i);
                    if let Some(h) = state.get_mut(&i) {
                        *h = Health::Pending("object was deleted".into());
                    }
                }
                Feed::Pod(v) => {
                    pods.insert(ns_name(&v), v);
                }
                Feed::PodGone(v) => {
                    pods.remove(&ns_name(&v));
                }
                Feed::ReplicaSet(v) => {
                    replicasets.insert(ns_name(&v), v);
                }
                Feed::Error(what, source) => return Some(HealthError::Watch { what, source }),
                _ => {}
            }
            None
        };
        if let Some(e) = apply(feed) {
            for t in &tasks {
                t.abort();
            }
            return Err(e);
        }
        // Drain what else is queued before re-assessing (bursts of events).
        while let Ok(f) = rx.try_recv() {
            if let Some(e) = apply(f) {
                for t in &tasks {
                    t.abort();
                }
                return Err(e);
            }
        }
    };
    for t in &tasks {
        t.abort();
    }
    Ok(outcome)
}

fn plural(n: i64, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

fn ready_message(kind: &str, v: &Value) -> String {
    match kind {
        "Deployment" | "StatefulSet" | "ReplicaSet" => {
            let r = i64_at(v, "/status/readyReplicas").unwrap_or(0);
            format!("{r} {} ready", plural(r, "replica", "replicas"))
        }
        "DaemonSet" => {
            let n = i64_at(v, "/status/numberAvailable").unwrap_or(0);
            format!("{n} {} available", plural(n, "pod", "pods"))
        }
        "Service" | "Ingress" => {
            let a: Vec<String> = lb_ingress(v).into_iter().flatten().collect();
            format!("address {}", a.join(", "))
        }
        "Job" => "complete".into(),
        "PersistentVolumeClaim" => "bound".into(),
        "CustomResourceDefinition" => "established".into(),
        _ => "ready".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dep(generation: i64, status: Value) -> Value {
        json!({"metadata":{"generation":generation},"spec":{"replicas":3},"status":status})
    }

    #[test]
    fn deployments_follow_kubectl_rollout_status() {
        // Stale status right after an apply is not success.
        let stale = dep(
            2,
            json!({"observedGeneration":1,"replicas":3,"updatedReplicas":3,"availableReplicas":3}),
        );
        assert!(
            matches!(assess("Deployment", &stale), Health::Pending(m) if m.contains("generation 2"))
        );
        let rolling = dep(
            2,
            json!({"observedGeneration":2,"replicas":4,"updatedReplicas":3,"availableReplicas":3}),
        );
        assert!(
            matches!(assess("Deployment", &rolling), Health::Pending(m) if m == "1 old replica pending termination")
        );
        let unavailable = dep(
            2,
            json!({"observedGeneration":2,"replicas":3,"updatedReplicas":3,"availableReplicas":2}),
        );
        assert!(matches!(
            assess("Deployment", &unavailable),
            Health::Pending(_)
        ));
        let done = dep(
            2,
            json!({"observedGeneration":2,"replicas":3,"updatedReplicas":3,"availableReplicas":3}),
        );
        assert_eq!(assess("Deployment", &done), Health::Ready);
        let dead = dep(
            2,
            json!({"observedGeneration":2,"conditions":[{"type":"Progressing","status":"False",
            "reason":"ProgressDeadlineExceeded","message":"ReplicaSet web-1 has timed out progressing."}]}),
        );
        assert!(matches!(assess("Deployment", &dead), Health::Failed(_)));
    }

    #[test]
    fn ready_messages_count_in_words() {
        let ready = |n: i64| json!({"status": {"readyReplicas": n, "numberAvailable": n}});
        assert_eq!(ready_message("StatefulSet", &ready(1)), "1 replica ready");
        assert_eq!(ready_message("Deployment", &ready(2)), "2 replicas ready");
        assert_eq!(ready_message("DaemonSet", &ready(1)), "1 pod available");
        assert_eq!(ready_message("DaemonSet", &ready(3)), "3 pods available");
    }

    #[test]
    fn statefulsets_wait_for_the_update_revision() {
        let s = json!({"metadata":{"generation":1},"spec":{"replicas":1},
            "status":{"observedGeneration":1,"readyReplicas":1,"updateRevision":"b","currentRevision":"a"}});
        assert!(matches!(assess("StatefulSet", &s), Health::Pending(_)));
        let mut done = s.clone();
        done["status"]["currentRevision"] = json!("b");
        assert_eq!(assess("StatefulSet", &done), Health::Ready);
    }

    #[test]
    fn load_balancers_need_every_address() {
        let pending = json!({"spec":{"type":"LoadBalancer"},"status":{"loadBalancer":{}}});
        assert!(matches!(assess("Service", &pending), Health::Pending(_)));
        let half = json!({"spec":{"type":"LoadBalancer"},"status":{"loadBalancer":{"ingress":[{"ip":"1.2.3.4"},{}]}}});
        assert!(matches!(assess("Service", &half), Health::Pending(_)));
        let ok = json!({"spec":{"type":"LoadBalancer"},"status":{"loadBalancer":{"ingress":[{"hostname":"a.elb.amazonaws.com"}]}}});
        assert_eq!(assess("Service", &ok), Health::Ready);
        assert!(ready_when_present(
            "Service",
            &json!({"spec":{"type":"ClusterIP"}})
        ));
    }

    #[test]
    fn doomed_pods_are_recognised() {
        let p = json!({"status":{"phase":"Pending","containerStatuses":[{"name":"api","restartCount":0,
            "state":{"waiting":{"reason":"ImagePullBackOff","message":"Back-off pulling image \"x\""}}}]}});
        assert!(doomed_reason(&p).unwrap().contains("ImagePullBackOff"));
        let blip = json!({"status":{"containerStatuses":[{"name":"api","state":{"waiting":{"reason":"ErrImagePull","message":"i/o timeout"}}}]}});
        assert_eq!(doomed_reason(&blip), None);
        let creating = json!({"status":{"containerStatuses":[{"name":"api","state":{"waiting":{"reason":"ContainerCreating"}}}]}});
        assert_eq!(doomed_reason(&creating), None);
        let crash = json!({"status":{"containerStatuses":[{"name":"api","restartCount":3,"state":{"waiting":{"reason":"CrashLoopBackOff"}}}]}});
        assert!(doomed_reason(&crash).unwrap().contains("3 restarts"));
    }

    #[test]
    fn jobs_unknown_kinds_and_crds() {
        let failed = json!({"status":{"conditions":[{"type":"Failed","status":"True","reason":"BackoffLimitExceeded"}]}});
        assert!(matches!(assess("Job", &failed), Health::Failed(_)));
        assert_eq!(assess("Widget", &json!({})), Health::Ready);
        let not_ready = json!({"status":{"conditions":[{"type":"Ready","status":"False","message":"syncing"}]}});
        assert!(
            matches!(assess("Widget", &not_ready), Health::Pending(m) if m.contains("syncing"))
        );
        let crd = json!({"status":{"conditions":[{"type":"Established","status":"True"}]}});
        assert_eq!(assess("CustomResourceDefinition", &crd), Health::Ready);
    }

    #[test]
    fn a_stale_replicaset_list_judges_no_pods() {
        // The Deployment moved to revision 3 (a rollback) before its ReplicaSet's new revision
        // was seen: the failing pods of revision 2 must not count.
        let d = json!({"metadata":{"uid":"d1","annotations":{"deployment.kubernetes.io/revision":"3"}}});
        let rs2 = json!({"metadata":{"uid":"r2","ownerReferences":[{"uid":"d1"}],"annotations":{"deployment.kubernetes.io/revision":"2"}}});
        let bad = json!({"metadata":{"name":"bad","ownerReferences":[{"uid":"r2"}]}});
        let pods = [bad];
        let rss = [rs2];
        assert!(new_revision_pods("Deployment", &d, pods.iter(), rss.iter()).is_empty());
    }

    #[test]
    fn only_the_new_replicaset_counts() {
        let d = json!({"metadata":{"uid":"d1","annotations":{"deployment.kubernetes.io/revision":"2"}}});
        let rs1 = json!({"metadata":{"uid":"r1","ownerReferences":[{"uid":"d1"}],"annotations":{"deployment.kubernetes.io/revision":"1"}}});
        let rs2 = json!({"metadata":{"uid":"r2","ownerReferences":[{"uid":"d1"}],"annotations":{"deployment.kubernetes.io/revision":"2"}}});
        let old_pod = json!({"metadata":{"name":"old","ownerReferences":[{"uid":"r1"}]}});
        let new_pod = json!({"metadata":{"name":"new","ownerReferences":[{"uid":"r2"}]}});
        let pods = [old_pod, new_pod];
        let rss = [rs1, rs2];
        let got = new_revision_pods("Deployment", &d, pods.iter(), rss.iter());
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["metadata"]["name"], "new");
    }
}
