//! The scheduler and the kubelet.
//!
//! The scheduler puts each pod on the node with the fewest pods among those its `nodeSelector`
//! allows. The kubelet's view of a container is a pure function of its image behaviour, when
//! the pod started (`status.startTime`) and the virtual time: image pulls with back-off, runs,
//! crashes with exponential back-off (10 s doubling to 5 min, as the kubelet's), readiness after
//! `initialDelaySeconds` or the rule's delay. So a pod's status can be recomputed at any moment
//! (after a restart from a state file too), and the next moment it changes is known.

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::{Wake, is_deleting, list, set_condition};
use crate::clock::{format_time, parse_time};
use crate::config::{ImageBehaviour, SimConfig};
use crate::resources::Builtin;
use crate::state::State;
use crate::status::ApiError;
use crate::store::{Obj, meta_str};

const PULL_FAILURE: SignedDuration = SignedDuration::from_secs(5);
const INIT_RUN: SignedDuration = SignedDuration::from_secs(1);

fn backoff(k: u32) -> SignedDuration {
    SignedDuration::from_secs(if k >= 5 { 300 } else { 10 * (1 << k) })
}

fn add(t: Timestamp, d: SignedDuration) -> Timestamp {
    t.saturating_add(d).unwrap_or(t)
}

fn duration(d: std::time::Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

#[derive(Debug, Clone, PartialEq)]
enum Run {
    Waiting {
        reason: &'static str,
        message: String,
    },
    Running {
        started: Timestamp,
    },
    Terminated {
        exit: i64,
        reason: &'static str,
        started: Timestamp,
        finished: Timestamp,
    },
}

/// A container at a moment.
#[derive(Debug, Clone)]
struct View {
    state: Run,
    last: Option<Run>,
    restarts: i64,
    ready: bool,
    ready_at: Option<Timestamp>,
    next: Option<Timestamp>,
    /// Every run so far: (start, end if it ended, exit code).
    runs: Vec<(Timestamp, Option<Timestamp>, i64)>,
}

impl View {
    /// A container that has not started: waiting for `reason`.
    fn waiting(reason: &'static str) -> View {
        View {
            state: Run::Waiting {
                reason,
                message: String::new(),
            },
            last: None,
            restarts: 0,
            ready: false,
            ready_at: None,
            next: None,
            runs: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// restartPolicy Always: runs for ever, restarts on exit.
    Service,
    /// restartPolicy OnFailure/Never: runs to completion.
    Batch { restart_on_failure: bool },
}

struct Timeline<'a> {
    config: &'a SimConfig,
    pod_ref: String,
}

impl Timeline<'_> {
    fn view(
        &self,
        container: &Value,
        behaviour: ImageBehaviour,
        start: Timestamp,
        mode: Mode,
        run_for: SignedDuration,
        now: Timestamp,
    ) -> View {
        let name = container["name"].as_str().unwrap_or("");
        let image = container["image"].as_str().unwrap_or("");
        let waiting = |reason: &'static str, message: String| Run::Waiting { reason, message };
        let mut view = View::waiting("ContainerCreating");
        if now < start {
            view.next = Some(start);
            return view;
        }
        match behaviour {
            ImageBehaviour::PullForever => {
                let mut attempt = start;
                let mut k = 0u32;
                loop {
                    let next = add(add(attempt, PULL_FAILURE), backoff(k));
                    if next > now {
                        break;
                    }
                    attempt = next;
                    k = (k + 1).min(5);
                }
                let failed_until = add(attempt, PULL_FAILURE);
                if now < failed_until {
                    view.state = waiting(
                        "ErrImagePull",
                        format!(
                            "rpc error: code = NotFound desc = failed to pull and unpack image {image:?}: failed to resolve reference {image:?}: {image}: not found"
                        ),
                    );
                    view.next = Some(failed_until);
                } else {
                    view.state = waiting(
                        "ImagePullBackOff",
                        format!("Back-off pulling image {image:?}"),
                    );
                    view.next = Some(add(failed_until, backoff(k)));
                }
            }
            ImageBehaviour::Crash => {
                let crash_after = duration(self.config.crash_after);
                let restart = match mode {
                    Mode::Service => true,
                    Mode::Batch { restart_on_failure } => restart_on_failure,
                };
                let mut run_start = start;
                let mut k = 0i64;
                loop {
                    let end = add(run_start, crash_after);
                    if now < end {
                        view.runs.push((run_start, None, 1));
                        view.state = Run::Running { started: run_start };
                        view.restarts = k;
                        view.next = Some(end);
                        break;
                    }
                    view.runs.push((run_start, Some(end), 1));
                    let terminated = Run::Terminated {
                        exit: 1,
                        reason: "Error",
                        started: run_start,
                        finished: end,
                    };
                    if !restart {
                        view.state = terminated;
                        break;
                    }
                    let wait = backoff(u32::try_from(k).unwrap_or(5).min(5));
                    let next_start = add(end, wait);
                    if now < next_start {
                        view.state = waiting(
                            "CrashLoopBackOff",
                            format!(
                                "back-off {}s restarting failed container={name} pod={}",
                                wait.as_secs(),
                                self.pod_ref
                            ),
                        );
                        view.last = Some(terminated);
                        view.restarts = k + 1;
                        view.next = Some(next_start);
                        break;
                    }
                    view.last = Some(terminated);
                    run_start = next_start;
                    k += 1;
                    if view.runs.len() > 64 {
                        // keep the history bounded; only the latest runs matter for logs
                        view.runs.remove(0);
                    }
                }
            }
            ImageBehaviour::Run | ImageBehaviour::NeverReady | ImageBehaviour::SlowReady { .. } => {
                view.runs.push((start, None, 0));
                if let Mode::Batch { .. } = mode {
                    let end = add(start, run_for);
                    if now < end {
                        view.state = Run::Running { started: start };
                        view.ready = true;
                        view.ready_at = Some(start);
                        view.next = Some(end);
                    } else {
                        view.runs[0].1 = Some(end);
                        view.state = Run::Terminated {
                            exit: 0,
                            reason: "Completed",
                            started: start,
                            finished: end,
                        };
                    }
                    return view;
                }
                view.state = Run::Running { started: start };
                let ready_at = match behaviour {
                    ImageBehaviour::NeverReady => None,
                    ImageBehaviour::SlowReady { after } => Some(add(start, duration(after))),
                    _ => Some(add(
                        start,
                        SignedDuration::from_secs(
                            container["readinessProbe"]["initialDelaySeconds"]
                                .as_i64()
                                .unwrap_or(0),
                        ),
                    )),
                };
                if let Some(at) = ready_at {
                    if now >= at {
                        view.ready = true;
                        view.ready_at = Some(at);
                    } else {
                        view.next = Some(at);
                    }
                }
            }
        }
        view
    }
}

/// How the kubelet names a pod in its messages: `name_namespace(uid)`.
fn pod_ref(pod: &Value) -> String {
    format!(
        "{}_{}({})",
        meta_str(pod, "name"),
        meta_str(pod, "namespace"),
        meta_str(pod, "uid")
    )
}

fn short_hash(data: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(data.as_bytes()))
}

fn run_json(run: &Run, container_id: &str) -> Value {
    match run {
        Run::Waiting { reason, message } => {
            let mut w = json!({"reason": reason});
            if !message.is_empty() {
                w["message"] = json!(message);
            }
            json!({"waiting": w})
        }
        Run::Running { started } => json!({"running": {"startedAt": format_time(*started)}}),
        Run::Terminated {
            exit,
            reason,
            started,
            finished,
        } => json!({"terminated": {
            "exitCode": exit,
            "reason": reason,
            "startedAt": format_time(*started),
            "finishedAt": format_time(*finished),
            "containerID": container_id,
        }}),
    }
}

fn normalised_image(image: &str) -> String {
    let first = image.split('/').next().unwrap_or("");
    let has_registry =
        image.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let with_registry = if has_registry {
        image.to_owned()
    } else if image.contains('/') {
        format!("docker.io/{image}")
    } else {
        format!("docker.io/library/{image}")
    };
    let last = with_registry.rsplit('/').next().unwrap_or("");
    if last.contains(':') || with_registry.contains('@') {
        with_registry
    } else {
        format!("{with_registry}:latest")
    }
}

fn container_status(container: &Value, view: &View, pod_uid: &str) -> Value {
    let name = container["name"].as_str().unwrap_or("");
    let image = container["image"].as_str().unwrap_or("");
    let id = format!(
        "containerd://{}",
        short_hash(&format!("{pod_uid}/{name}/{}", view.restarts))
    );
    let started = matches!(view.state, Run::Running { .. });
    let mut status = json!({
        "name": name,
        "image": normalised_image(image),
        "imageID": "",
        "ready": view.ready,
        "started": started,
        "restartCount": view.restarts,
        "state": run_json(&view.state, &id),
        "lastState": view.last.as_ref().map_or_else(|| json!({}), |l| run_json(l, &format!("containerd://{}", short_hash(&format!("{pod_uid}/{name}/{}", view.restarts - 1))))),
    });
    if !matches!(view.state, Run::Waiting { .. }) || view.restarts > 0 {
        let repo = normalised_image(image);
        let repo = repo.split('@').next().unwrap_or(&repo).to_owned();
        let repo_name = match repo.rfind(':') {
            Some(i) if !repo[i..].contains('/') => repo[..i].to_owned(),
            _ => repo,
        };
        status["imageID"] = json!(format!("{repo_name}@sha256:{}", short_hash(image)));
        status["containerID"] = json!(id);
    }
    status
}

/// What the kubelet would report for `pod` at `now`.
struct PodView {
    status: Value,
    next: Option<Timestamp>,
    main: Vec<(String, String, View)>,
}

fn compute(
    pod: &Value,
    config: &SimConfig,
    start: Timestamp,
    now: Timestamp,
    now_text: &str,
) -> PodView {
    let spec = &pod["spec"];
    let uid = meta_str(pod, "uid");
    let timeline = Timeline {
        config,
        pod_ref: pod_ref(pod),
    };
    let restart_policy = spec["restartPolicy"].as_str().unwrap_or("Always");
    let mode = match restart_policy {
        "Always" => Mode::Service,
        "OnFailure" => Mode::Batch {
            restart_on_failure: true,
        },
        _ => Mode::Batch {
            restart_on_failure: false,
        },
    };
    let start_delay = duration(config.pod_start_delay);
    let mut next: Option<Timestamp> = None;
    let mut push_next = |t: Option<Timestamp>| {
        if let Some(t) = t {
            next = Some(next.map_or(t, |n: Timestamp| n.min(t)));
        }
    };
    // init containers run one after another, each to completion
    let mut init_statuses = Vec::new();
    let mut cursor = add(start, start_delay);
    let mut init_done = true;
    let mut init_waiting: Option<String> = None;
    for c in spec["initContainers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let behaviour = config.behaviour_for(c["image"].as_str().unwrap_or(""));
        if !init_done {
            let view = View::waiting("PodInitializing");
            init_statuses.push(container_status(c, &view, uid));
            continue;
        }
        let init_mode = match mode {
            Mode::Service => Mode::Batch {
                restart_on_failure: true,
            },
            other => other,
        };
        let view = timeline.view(c, behaviour, cursor, init_mode, INIT_RUN, now);
        push_next(view.next);
        match &view.state {
            Run::Terminated {
                exit: 0, finished, ..
            } => cursor = *finished,
            other => {
                init_done = false;
                init_waiting = Some(match other {
                    Run::Waiting { reason, .. } => format!("Init:{reason}"),
                    Run::Terminated { .. } => "Init:Error".to_owned(),
                    Run::Running { .. } => "Init:0/1".to_owned(),
                });
            }
        }
        let mut s = container_status(c, &view, uid);
        s["ready"] = json!(matches!(view.state, Run::Terminated { exit: 0, .. }));
        init_statuses.push(s);
    }
    let main_start = if spec["initContainers"]
        .as_array()
        .is_some_and(|a| !a.is_empty())
    {
        add(cursor, INIT_RUN)
    } else {
        add(start, start_delay)
    };
    let job_duration = duration(config.job_duration);
    let mut statuses = Vec::new();
    let mut main = Vec::new();
    let containers = spec["containers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    for c in containers {
        let image = c["image"].as_str().unwrap_or("").to_owned();
        let behaviour = config.behaviour_for(&image);
        let view = if init_done {
            timeline.view(c, behaviour, main_start, mode, job_duration, now)
        } else {
            View::waiting("PodInitializing")
        };
        push_next(view.next);
        statuses.push(container_status(c, &view, uid));
        main.push((c["name"].as_str().unwrap_or("").to_owned(), image, view));
    }
    let all_terminated = !main.is_empty()
        && main
            .iter()
            .all(|(_, _, v)| matches!(v.state, Run::Terminated { .. }));
    let any_failed = main
        .iter()
        .any(|(_, _, v)| matches!(v.state, Run::Terminated { exit, .. } if exit != 0));
    let ever_started = main.iter().all(|(_, _, v)| !v.runs.is_empty());
    let phase = if !init_done || !ever_started {
        "Pending"
    } else if mode != Mode::Service && all_terminated {
        if any_failed { "Failed" } else { "Succeeded" }
    } else {
        "Running"
    };
    let all_ready = !main.is_empty() && main.iter().all(|(_, _, v)| v.ready);
    let not_ready: Vec<&str> = main
        .iter()
        .filter(|(_, _, v)| !v.ready)
        .map(|(n, _, _)| n.as_str())
        .collect();
    let ready_at = main.iter().filter_map(|(_, _, v)| v.ready_at).max();

    let mut conditions: Vec<Value> = pod["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let start_text = format_time(start);
    let set = |conditions: &mut Vec<Value>,
               kind: &str,
               ok: bool,
               reason: Option<&str>,
               message: Option<String>,
               at: &str| {
        let mut c = json!({"type": kind, "status": if ok { "True" } else { "False" }, "lastProbeTime": null});
        if let Some(r) = reason {
            c["reason"] = json!(r);
        }
        if let Some(m) = message {
            c["message"] = json!(m);
        }
        set_condition(conditions, c, at);
    };
    set(
        &mut conditions,
        "PodReadyToStartContainers",
        true,
        None,
        None,
        &start_text,
    );
    if init_done {
        set(
            &mut conditions,
            "Initialized",
            true,
            None,
            None,
            &start_text,
        );
    } else {
        set(
            &mut conditions,
            "Initialized",
            false,
            Some("ContainersNotInitialized"),
            Some("containers with incomplete status: [init]".to_owned()),
            now_text,
        );
    }
    let completed = phase == "Succeeded" || phase == "Failed";
    let ready_text = ready_at
        .map(format_time)
        .unwrap_or_else(|| now_text.to_owned());
    for kind in ["ContainersReady", "Ready"] {
        if completed {
            set(
                &mut conditions,
                kind,
                false,
                Some("PodCompleted"),
                None,
                now_text,
            );
        } else if all_ready {
            set(&mut conditions, kind, true, None, None, &ready_text);
        } else {
            set(
                &mut conditions,
                kind,
                false,
                Some("ContainersNotReady"),
                Some(format!(
                    "containers with unready status: [{}]",
                    not_ready.join(" ")
                )),
                now_text,
            );
        }
    }
    let order = [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
    ];
    conditions.sort_by_key(|c| {
        order
            .iter()
            .position(|o| c["type"] == *o)
            .unwrap_or(order.len())
    });

    let mut status = pod["status"].clone();
    status["phase"] = json!(phase);
    status["conditions"] = Value::Array(conditions);
    status["containerStatuses"] = Value::Array(statuses);
    if !init_statuses.is_empty() {
        status["initContainerStatuses"] = Value::Array(init_statuses);
    }
    status["startTime"] = json!(start_text);
    if let Some(reason) = init_waiting {
        status["reason"] = json!(reason);
    } else if let Some(map) = status.as_object_mut() {
        map.remove("reason");
    }
    PodView { status, next, main }
}

fn node_ip(node: &Value) -> String {
    node["status"]["addresses"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["type"] == "InternalIP"))
        .and_then(|x| x["address"].as_str())
        .unwrap_or("10.0.0.1")
        .to_owned()
}

fn pod_cidr_prefix(node: &Value) -> String {
    node["spec"]["podCIDR"]
        .as_str()
        .and_then(|c| c.rsplit_once('.').map(|(p, _)| p.to_owned()))
        .unwrap_or_else(|| "10.244.0".to_owned())
}

/// The kubelet's events for the changes from `pod`'s stored status to `new`.
fn emit_transitions(state: &mut State, pod: &Value, new: &PodView) {
    let old_statuses = pod["status"]["containerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let pod_ref = pod_ref(pod);
    let mut event = |warning: bool, reason: &str, message: &str| {
        state.event(pod, warning, reason, message, "kubelet");
    };
    for (name, image, view) in &new.main {
        let before = old_statuses
            .iter()
            .find(|s| s["name"].as_str() == Some(name));
        let before_state = before.map(|s| &s["state"]);
        let before_restarts = before.and_then(|s| s["restartCount"].as_i64()).unwrap_or(0);
        match &view.state {
            Run::Running { .. } => {
                let was_running = before_state.is_some_and(|s| s.get("running").is_some())
                    && before_restarts == view.restarts;
                if was_running {
                    continue;
                }
                if view.restarts == 0 {
                    event(false, "Pulling", &format!("Pulling image {image:?}"));
                    event(
                        false,
                        "Pulled",
                        &format!(
                            "Successfully pulled image {image:?} in 1.2s (1.2s including waiting). Image size: 67108864 bytes."
                        ),
                    );
                } else {
                    event(
                        false,
                        "Pulled",
                        &format!("Container image {image:?} already present on machine"),
                    );
                }
                event(false, "Created", &format!("Created container: {name}"));
                event(false, "Started", &format!("Started container {name}"));
                if !view.ready && view.next.is_none() {
                    event(
                        true,
                        "Unhealthy",
                        "Readiness probe failed: HTTP probe failed with statuscode: 503",
                    );
                }
            }
            Run::Waiting { reason, message } => {
                let before_reason = before_state.and_then(|s| s["waiting"]["reason"].as_str());
                if before_reason == Some(*reason) {
                    continue;
                }
                match *reason {
                    "ErrImagePull" => {
                        event(false, "Pulling", &format!("Pulling image {image:?}"));
                        event(
                            true,
                            "Failed",
                            &format!("Failed to pull image {image:?}: {message}"),
                        );
                        event(true, "Failed", "Error: ErrImagePull");
                    }
                    "ImagePullBackOff" => {
                        event(
                            false,
                            "BackOff",
                            &format!("Back-off pulling image {image:?}"),
                        );
                        event(true, "Failed", "Error: ImagePullBackOff");
                    }
                    "CrashLoopBackOff" => event(
                        true,
                        "BackOff",
                        &format!("Back-off restarting failed container {name} in pod {pod_ref}"),
                    ),
                    _ => {}
                }
            }
            Run::Terminated { .. } => {}
        }
    }
}

/// Whether a pod with `pod_spec` may run on `node`: its `nodeSelector` matches the node's
/// labels.
pub(super) fn fits(node: &Value, pod_spec: &Value) -> bool {
    pod_spec["nodeSelector"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| node["metadata"]["labels"][k.as_str()] == *v)
}

pub(crate) fn reconcile(state: &mut State, wake: &mut Wake) -> bool {
    let pods = state.builtin(Builtin::Pod);
    let nodes_rt = state.builtin(Builtin::Node);
    let nodes: Vec<Obj> = list(state, &nodes_rt, None);
    let all_pods = list(state, &pods, None);
    let mut per_node: HashMap<String, usize> = HashMap::new();
    let mut used_ips: HashMap<String, Vec<String>> = HashMap::new();
    for pod in &all_pods {
        if let Some(node) = pod["spec"]["nodeName"].as_str() {
            *per_node.entry(node.to_owned()).or_default() += 1;
            if let Some(ip) = pod["status"]["podIP"].as_str() {
                used_ips
                    .entry(node.to_owned())
                    .or_default()
                    .push(ip.to_owned());
            }
        }
    }
    let config = std::sync::Arc::clone(&state.config);
    let mut changed = false;
    for pod in all_pods {
        if is_deleting(&pod) {
            changed |= terminate(state, &pods, &pod, wake);
            continue;
        }
        let mut current = pod.clone();
        let now_text = state.now_text();
        // schedule
        if current["spec"]["nodeName"]
            .as_str()
            .unwrap_or("")
            .is_empty()
        {
            let Some(node) = nodes
                .iter()
                .filter(|n| fits(n, &current["spec"]))
                .min_by_key(|n| {
                    (
                        per_node.get(meta_str(n, "name")).copied().unwrap_or(0),
                        meta_str(n, "name").to_owned(),
                    )
                })
            else {
                let message = format!(
                    "0/{} nodes are available: {} node(s) didn't match Pod's node affinity/selector. preemption: 0/{} nodes are available: {} Preemption is not helpful for scheduling.",
                    nodes.len(),
                    nodes.len(),
                    nodes.len(),
                    nodes.len()
                );
                let mut updated = (*current).clone();
                let mut conditions: Vec<Value> = updated["status"]["conditions"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                set_condition(
                    &mut conditions,
                    json!({"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message, "lastProbeTime": null}),
                    &now_text,
                );
                updated["status"]["conditions"] = Value::Array(conditions);
                if state.controller_update(&pods, &current, updated, "kube-scheduler", true) {
                    changed = true;
                    state.event(
                        &current,
                        true,
                        "FailedScheduling",
                        &message,
                        "default-scheduler",
                    );
                }
                continue;
            };
            let node_name = meta_str(node, "name").to_owned();
            let mut bound = (*current).clone();
            bound["spec"]["nodeName"] = json!(node_name);
            if !state.controller_update(&pods, &current, bound, "kube-scheduler", false) {
                continue;
            }
            *per_node.entry(node_name.clone()).or_default() += 1;
            changed = true;
            let Some(fresh) = state.store.get(
                &pods.key(),
                meta_str(&current, "namespace"),
                meta_str(&current, "name"),
            ) else {
                continue;
            };
            current = fresh;
            let mut scheduled = (*current).clone();
            let mut conditions: Vec<Value> = scheduled["status"]["conditions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            set_condition(
                &mut conditions,
                json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null}),
                &now_text,
            );
            scheduled["status"]["conditions"] = Value::Array(conditions);
            state.controller_update(&pods, &current, scheduled, "kube-scheduler", true);
            let message = format!(
                "Successfully assigned {}/{} to {node_name}",
                meta_str(&current, "namespace"),
                meta_str(&current, "name")
            );
            state.event(&current, false, "Scheduled", &message, "default-scheduler");
            let Some(fresh) = state.store.get(
                &pods.key(),
                meta_str(&current, "namespace"),
                meta_str(&current, "name"),
            ) else {
                continue;
            };
            current = fresh;
        }
        // kubelet
        let node_name = current["spec"]["nodeName"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        let Some(node) = nodes.iter().find(|n| meta_str(n, "name") == node_name) else {
            continue;
        };
        let start = current["status"]["startTime"]
            .as_str()
            .and_then(parse_time)
            .unwrap_or(state.now);
        let now = state.now;
        let view = compute(&current, &config, start, now, &now_text);
        if let Some(t) = view.next {
            wake.at(t);
        }
        let mut status = view.status.clone();
        let host_ip = node_ip(node);
        status["hostIP"] = json!(host_ip);
        status["hostIPs"] = json!([{"ip": host_ip}]);
        if current["status"]["podIP"].is_null() {
            let prefix = pod_cidr_prefix(node);
            let taken = used_ips.entry(node_name.clone()).or_default();
            let ip = (2..255)
                .map(|n| format!("{prefix}.{n}"))
                .find(|ip| !taken.contains(ip))
                .unwrap_or_else(|| format!("{prefix}.254"));
            taken.push(ip.clone());
            status["podIP"] = json!(ip);
            status["podIPs"] = json!([{"ip": ip}]);
        }
        if status != current["status"] {
            let mut updated = (*current).clone();
            updated["status"] = status;
            if state.controller_update(&pods, &current, updated, "kubelet", true) {
                changed = true;
                emit_transitions(state, &current, &view);
            }
        }
    }
    changed
}

/// A pod being deleted stops within a second (or its grace period, if shorter), then the
/// kubelet removes it.
fn terminate(
    state: &mut State,
    pods: &std::sync::Arc<crate::resources::ResourceType>,
    pod: &Obj,
    wake: &mut Wake,
) -> bool {
    if pod["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| !f.is_empty())
    {
        return false;
    }
    let grace = pod["metadata"]["deletionGracePeriodSeconds"]
        .as_i64()
        .unwrap_or(0);
    let Some(deadline) = pod["metadata"]["deletionTimestamp"]
        .as_str()
        .and_then(parse_time)
    else {
        return false;
    };
    let requested = deadline
        .saturating_sub(SignedDuration::from_secs(grace))
        .unwrap_or(deadline);
    let due = add(requested, SignedDuration::from_secs(grace.min(1)));
    if due > state.now {
        wake.at(due);
        return false;
    }
    if !pod["spec"]["nodeName"].is_null() {
        for c in pod["spec"]["containers"].as_array().into_iter().flatten() {
            let message = format!("Stopping container {}", c["name"].as_str().unwrap_or(""));
            state.event(pod, false, "Killing", &message, "kubelet");
        }
    }
    let opts = crate::state::DeleteOpts {
        grace_period: Some(0),
        ..crate::state::DeleteOpts::default()
    };
    state
        .delete(
            pods,
            meta_str(pod, "namespace"),
            meta_str(pod, "name"),
            &opts,
        )
        .is_ok_and(|d| d.wrote)
}

/// The log of a container, as `GET .../pods/NAME/log` returns it.
pub(crate) fn logs(
    pod: &Value,
    container: Option<&str>,
    previous: bool,
    timestamps: bool,
    config: &SimConfig,
    now: Timestamp,
) -> Result<String, ApiError> {
    let pod_name = meta_str(pod, "name");
    let containers: Vec<&Value> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(
            pod["spec"]["initContainers"]
                .as_array()
                .into_iter()
                .flatten(),
        )
        .collect();
    let names: Vec<&str> = containers
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    let chosen = match container {
        Some(c) => *containers
            .iter()
            .find(|x| x["name"].as_str() == Some(c))
            .ok_or_else(|| {
                ApiError::bad_request(format!("container {c} is not valid for pod {pod_name}"))
            })?,
        None if names.len() == 1
            || pod["spec"]["containers"]
                .as_array()
                .is_some_and(|a| a.len() == 1) =>
        {
            containers[0]
        }
        None => {
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {pod_name}, choose one of: [{}]",
                names.join(" ")
            )));
        }
    };
    let name = chosen["name"].as_str().unwrap_or("");
    let image = chosen["image"].as_str().unwrap_or("");
    let Some(start) = pod["status"]["startTime"].as_str().and_then(parse_time) else {
        return Err(ApiError::bad_request(format!(
            "container {name:?} in pod {pod_name:?} is waiting to start: ContainerCreating"
        )));
    };
    let now_text = format_time(now);
    let view = compute(pod, config, start, now, &now_text);
    let Some((_, _, container_view)) = view.main.iter().find(|(n, _, _)| n == name) else {
        return Ok(String::new());
    };
    let behaviour = config.behaviour_for(image);
    if container_view.runs.is_empty() {
        let why = match &container_view.state {
            Run::Waiting {
                reason: "ErrImagePull" | "ImagePullBackOff",
                ..
            } => "trying and failing to pull image".to_owned(),
            Run::Waiting { reason, .. } => (*reason).to_owned(),
            _ => "ContainerCreating".to_owned(),
        };
        return Err(ApiError::bad_request(format!(
            "container {name:?} in pod {pod_name:?} is waiting to start: {why}"
        )));
    }
    let runs = &container_view.runs;
    let run = if previous {
        let finished: Vec<_> = runs.iter().filter(|r| r.1.is_some()).collect();
        let current_running = runs.last().is_some_and(|r| r.1.is_none());
        let pick = if current_running {
            finished.last()
        } else {
            finished.iter().rev().nth(1)
        };
        match pick {
            Some(r) => **r,
            None => {
                return Err(ApiError::bad_request(format!(
                    "previous terminated container {name:?} in pod {pod_name:?} not found"
                )));
            }
        }
    } else {
        *runs.last().unwrap_or(&runs[0])
    };
    let (started, ended, exit) = run;
    let stamp = |t: Timestamp| {
        if timestamps {
            format!("{} ", crate::clock::format_micro_time(t))
        } else {
            String::new()
        }
    };
    let mut out = String::new();
    out.push_str(&format!(
        "{}[ferry-sim] container {name} started from image {image}\n",
        stamp(started)
    ));
    match behaviour {
        ImageBehaviour::Crash => {
            let at = ended.unwrap_or(now);
            out.push_str(&format!(
                "{}[ferry-sim] loading configuration\n",
                stamp(started)
            ));
            if ended.is_some() {
                out.push_str(&format!(
                    "{}panic: simulated crash: image {image} matches a ferry-sim \"crash\" rule\n",
                    stamp(at)
                ));
                out.push_str(&format!("{}exit status {exit}\n", stamp(at)));
            }
        }
        ImageBehaviour::NeverReady => {
            out.push_str(&format!("{}[ferry-sim] waiting for a dependency that never answers (image rule never_ready)\n", stamp(started)));
        }
        _ => {
            for c in chosen["ports"].as_array().into_iter().flatten() {
                if let Some(p) = c["containerPort"].as_i64() {
                    out.push_str(&format!(
                        "{}[ferry-sim] listening on :{p}\n",
                        stamp(started)
                    ));
                }
            }
            if let Some(end) = ended {
                out.push_str(&format!(
                    "{}[ferry-sim] done, exiting with status {exit}\n",
                    stamp(end)
                ));
            } else if matches!(
                behaviour,
                ImageBehaviour::Run | ImageBehaviour::SlowReady { .. }
            ) {
                out.push_str(&format!(
                    "{}[ferry-sim] ready\n",
                    stamp(container_view.ready_at.unwrap_or(started))
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ImageRule;

    fn pod(image: &str, policy: &str) -> Value {
        json!({"metadata": {"name": "p", "namespace": "d", "uid": "u"}, "spec": {"restartPolicy": policy, "containers": [{"name": "c", "image": image}]}, "status": {}})
    }

    fn config() -> SimConfig {
        SimConfig {
            images: vec![
                ImageRule::new("crash", ImageBehaviour::Crash),
                ImageRule::new("ghost", ImageBehaviour::PullForever),
            ],
            ..SimConfig::default()
        }
    }

    fn at(start: Timestamp, secs: i64) -> Timestamp {
        add(start, SignedDuration::from_secs(secs))
    }

    #[test]
    fn running_pod_becomes_ready_after_start_delay() {
        let start = Timestamp::from_second(1_700_000_000).unwrap();
        let c = config();
        let early = compute(&pod("nginx", "Always"), &c, start, at(start, 1), "x");
        assert_eq!(early.status["phase"], "Pending");
        assert_eq!(early.next, Some(at(start, 2)));
        let later = compute(&pod("nginx", "Always"), &c, start, at(start, 3), "x");
        assert_eq!(later.status["phase"], "Running");
        assert_eq!(later.status["containerStatuses"][0]["ready"], true);
        assert_eq!(later.status["conditions"][2]["type"], "Ready");
        assert_eq!(later.status["conditions"][2]["status"], "True");
    }

    #[test]
    fn crash_loops_with_growing_back_off() {
        let start = Timestamp::from_second(1_700_000_000).unwrap();
        let c = config();
        // runs 2s..4s, back-off 10s, runs 14s..16s, back-off 20s, runs 36s..
        let v = compute(&pod("crash", "Always"), &c, start, at(start, 5), "x");
        let s = &v.status["containerStatuses"][0];
        assert_eq!(s["state"]["waiting"]["reason"], "CrashLoopBackOff");
        assert_eq!(s["restartCount"], 1);
        assert_eq!(s["lastState"]["terminated"]["exitCode"], 1);
        let v = compute(&pod("crash", "Always"), &c, start, at(start, 15), "x");
        assert!(v.status["containerStatuses"][0]["state"]["running"].is_object());
        let v = compute(&pod("crash", "Always"), &c, start, at(start, 20), "x");
        assert_eq!(v.status["containerStatuses"][0]["restartCount"], 2);
        assert_eq!(v.next, Some(at(start, 36)));
        let logs = logs(
            &v_with_start(&pod("crash", "Always"), start),
            None,
            true,
            false,
            &c,
            at(start, 20),
        )
        .unwrap();
        assert!(logs.contains("simulated crash"), "{logs}");
    }

    fn v_with_start(p: &Value, start: Timestamp) -> Value {
        let mut p = p.clone();
        p["status"]["startTime"] = json!(format_time(start));
        p
    }

    #[test]
    fn pulls_fail_for_ever() {
        let start = Timestamp::from_second(1_700_000_000).unwrap();
        let c = config();
        let v = compute(&pod("ghost:1", "Always"), &c, start, at(start, 3), "x");
        assert_eq!(
            v.status["containerStatuses"][0]["state"]["waiting"]["reason"],
            "ErrImagePull"
        );
        let v = compute(&pod("ghost:1", "Always"), &c, start, at(start, 10), "x");
        assert_eq!(
            v.status["containerStatuses"][0]["state"]["waiting"]["reason"],
            "ImagePullBackOff"
        );
        let v = compute(&pod("ghost:1", "Always"), &c, start, at(start, 86_400), "x");
        assert_eq!(v.status["phase"], "Pending");
        assert!(
            logs(
                &v_with_start(&pod("ghost:1", "Always"), start),
                None,
                false,
                false,
                &c,
                at(start, 10)
            )
            .unwrap_err()
            .message
            .contains("trying and failing to pull image")
        );
    }

    #[test]
    fn batch_pods_complete_or_fail() {
        let start = Timestamp::from_second(1_700_000_000).unwrap();
        let c = config();
        let v = compute(&pod("worker", "Never"), &c, start, at(start, 60), "x");
        assert_eq!(v.status["phase"], "Succeeded");
        let v = compute(&pod("crash", "Never"), &c, start, at(start, 60), "x");
        assert_eq!(v.status["phase"], "Failed");
    }

    #[test]
    fn images_are_normalised_like_containerd() {
        assert_eq!(normalised_image("nginx"), "docker.io/library/nginx:latest");
        assert_eq!(normalised_image("acme/web:1"), "docker.io/acme/web:1");
        assert_eq!(
            normalised_image("127.0.0.1:5000/web:2"),
            "127.0.0.1:5000/web:2"
        );
    }
}
