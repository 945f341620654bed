//! `meta.k8s.io/v1` Table responses, which `kubectl get` asks for: the columns the real API
//! server prints for each kind (READY, UP-TO-DATE, AVAILABLE for Deployments, STATUS and
//! RESTARTS for Pods, ...), ages computed on the virtual clock, and the CRD's
//! `additionalPrinterColumns` for custom resources.

use jiff::Timestamp;
use serde_json::{Value, json};

use crate::clock::{human_duration, parse_time};
use crate::resources::{Builtin, ResourceType};
use crate::selector::LabelSelector;
use crate::store::strings;

/// What each row carries besides its cells (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    pub(crate) fn parse(value: Option<&str>) -> IncludeObject {
        match value {
            Some("None") => IncludeObject::None,
            Some("Object") => IncludeObject::Object,
            _ => IncludeObject::Metadata,
        }
    }
}

struct Column {
    name: &'static str,
    kind: &'static str,
    priority: u8,
}

const fn col(name: &'static str, kind: &'static str) -> Column {
    Column {
        name,
        kind,
        priority: 0,
    }
}

const fn wide(name: &'static str, kind: &'static str) -> Column {
    Column {
        name,
        kind,
        priority: 1,
    }
}

fn describe(name: &str) -> &'static str {
    match name {
        "Name" => {
            "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
        }
        "Age" => {
            "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC."
        }
        _ => "",
    }
}

fn columns(rt: &ResourceType) -> Vec<Column> {
    let Some(builtin) = rt.builtin else {
        return Vec::new();
    };
    match builtin {
        Builtin::Namespace => vec![
            col("Name", "string"),
            col("Status", "string"),
            col("Age", "string"),
        ],
        Builtin::Pod => vec![
            col("Name", "string"),
            col("Ready", "string"),
            col("Status", "string"),
            col("Restarts", "string"),
            col("Age", "string"),
            wide("IP", "string"),
            wide("Node", "string"),
            wide("Nominated Node", "string"),
            wide("Readiness Gates", "string"),
        ],
        Builtin::Deployment => vec![
            col("Name", "string"),
            col("Ready", "string"),
            col("Up-to-date", "integer"),
            col("Available", "integer"),
            col("Age", "string"),
            wide("Containers", "string"),
            wide("Images", "string"),
            wide("Selector", "string"),
        ],
        Builtin::ReplicaSet => vec![
            col("Name", "string"),
            col("Desired", "integer"),
            col("Current", "integer"),
            col("Ready", "integer"),
            col("Age", "string"),
            wide("Containers", "string"),
            wide("Images", "string"),
            wide("Selector", "string"),
        ],
        Builtin::StatefulSet => vec![
            col("Name", "string"),
            col("Ready", "string"),
            col("Age", "string"),
            wide("Containers", "string"),
            wide("Images", "string"),
        ],
        Builtin::DaemonSet => vec![
            col("Name", "string"),
            col("Desired", "integer"),
            col("Current", "integer"),
            col("Ready", "integer"),
            col("Up-to-date", "integer"),
            col("Available", "integer"),
            col("Node Selector", "string"),
            col("Age", "string"),
            wide("Containers", "string"),
            wide("Images", "string"),
            wide("Selector", "string"),
        ],
        Builtin::Job => vec![
            col("Name", "string"),
            col("Status", "string"),
            col("Completions", "string"),
            col("Duration", "string"),
            col("Age", "string"),
            wide("Containers", "string"),
            wide("Images", "string"),
            wide("Selector", "string"),
        ],
        Builtin::CronJob => vec![
            col("Name", "string"),
            col("Schedule", "string"),
            col("Timezone", "string"),
            col("Suspend", "boolean"),
            col("Active", "integer"),
            col("Last Schedule", "string"),
            col("Age", "string"),
            wide("Containers", "string"),
            wide("Images", "string"),
            wide("Selector", "string"),
        ],
        Builtin::Service => vec![
            col("Name", "string"),
            col("Type", "string"),
            col("Cluster-IP", "string"),
            col("External-IP", "string"),
            col("Port(s)", "string"),
            col("Age", "string"),
            wide("Selector", "string"),
        ],
        Builtin::Endpoints => vec![
            col("Name", "string"),
            col("Endpoints", "string"),
            col("Age", "string"),
        ],
        Builtin::EndpointSlice => vec![
            col("Name", "string"),
            col("AddressType", "string"),
            col("Ports", "string"),
            col("Endpoints", "string"),
            col("Age", "string"),
        ],
        Builtin::ConfigMap => vec![
            col("Name", "string"),
            col("Data", "integer"),
            col("Age", "string"),
        ],
        Builtin::Secret => vec![
            col("Name", "string"),
            col("Type", "string"),
            col("Data", "integer"),
            col("Age", "string"),
        ],
        Builtin::ServiceAccount => vec![
            col("Name", "string"),
            col("Secrets", "integer"),
            col("Age", "string"),
        ],
        Builtin::Event => vec![
            col("Last Seen", "string"),
            col("Type", "string"),
            col("Reason", "string"),
            col("Object", "string"),
            col("Message", "string"),
            wide("Subobject", "string"),
            wide("Source", "string"),
            wide("First Seen", "string"),
            wide("Count", "string"),
            wide("Name", "string"),
        ],
        Builtin::PersistentVolumeClaim => vec![
            col("Name", "string"),
            col("Status", "string"),
            col("Volume", "string"),
            col("Capacity", "string"),
            col("Access Modes", "string"),
            col("StorageClass", "string"),
            col("VolumeAttributesClass", "string"),
            col("Age", "string"),
            wide("VolumeMode", "string"),
        ],
        Builtin::PersistentVolume => vec![
            col("Name", "string"),
            col("Capacity", "string"),
            col("Access Modes", "string"),
            col("Reclaim Policy", "string"),
            col("Status", "string"),
            col("Claim", "string"),
            col("StorageClass", "string"),
            col("VolumeAttributesClass", "string"),
            col("Reason", "string"),
            col("Age", "string"),
        ],
        Builtin::Node => vec![
            col("Name", "string"),
            col("Status", "string"),
            col("Roles", "string"),
            col("Age", "string"),
            col("Version", "string"),
            wide("Internal-IP", "string"),
            wide("External-IP", "string"),
            wide("OS-Image", "string"),
            wide("Kernel-Version", "string"),
            wide("Container-Runtime", "string"),
        ],
        Builtin::Ingress => vec![
            col("Name", "string"),
            col("Class", "string"),
            col("Hosts", "string"),
            col("Address", "string"),
            col("Ports", "string"),
            col("Age", "string"),
        ],
        Builtin::IngressClass => vec![
            col("Name", "string"),
            col("Controller", "string"),
            col("Parameters", "string"),
            col("Age", "string"),
        ],
        Builtin::NetworkPolicy => vec![
            col("Name", "string"),
            col("Pod-Selector", "string"),
            col("Age", "string"),
        ],
        Builtin::HorizontalPodAutoscaler => vec![
            col("Name", "string"),
            col("Reference", "string"),
            col("Targets", "string"),
            col("MinPods", "string"),
            col("MaxPods", "integer"),
            col("Replicas", "integer"),
            col("Age", "string"),
        ],
        Builtin::PodDisruptionBudget => vec![
            col("Name", "string"),
            col("Min Available", "string"),
            col("Max Unavailable", "string"),
            col("Allowed Disruptions", "integer"),
            col("Age", "string"),
        ],
        Builtin::Lease => vec![
            col("Name", "string"),
            col("Holder", "string"),
            col("Age", "string"),
        ],
        Builtin::RoleBinding | Builtin::ClusterRoleBinding => vec![
            col("Name", "string"),
            col("Role", "string"),
            col("Age", "string"),
            wide("Users", "string"),
            wide("Groups", "string"),
            wide("ServiceAccounts", "string"),
        ],
        Builtin::ControllerRevision => vec![
            col("Name", "string"),
            col("Controller", "string"),
            col("Revision", "integer"),
            col("Age", "string"),
        ],
        Builtin::StorageClass => vec![
            col("Name", "string"),
            col("Provisioner", "string"),
            col("ReclaimPolicy", "string"),
            col("VolumeBindingMode", "string"),
            col("AllowVolumeExpansion", "string"),
            col("Age", "string"),
        ],
        Builtin::PriorityClass => vec![
            col("Name", "string"),
            col("Value", "integer"),
            col("Global-Default", "boolean"),
            col("Age", "string"),
            col("PreemptionPolicy", "string"),
        ],
        Builtin::Role
        | Builtin::ClusterRole
        | Builtin::CustomResourceDefinition
        | Builtin::LimitRange
        | Builtin::ResourceQuota => vec![col("Name", "string"), col("Created At", "date")],
    }
}

fn age(object: &Value, now: Timestamp) -> String {
    since(object["metadata"]["creationTimestamp"].as_str(), now)
}

fn since(time: Option<&str>, now: Timestamp) -> String {
    match time.and_then(parse_time) {
        Some(t) => human_duration(t.duration_until(now)),
        None => "<unknown>".to_owned(),
    }
}

fn or_none(s: String) -> String {
    if s.is_empty() { "<none>".to_owned() } else { s }
}

fn join_strs(values: impl Iterator<Item = String>) -> String {
    values.collect::<Vec<_>>().join(",")
}

fn containers_images(template_spec: &Value) -> (String, String) {
    let containers = template_spec["containers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    (
        join_strs(
            containers
                .iter()
                .map(|c| c["name"].as_str().unwrap_or("").to_owned()),
        ),
        join_strs(
            containers
                .iter()
                .map(|c| c["image"].as_str().unwrap_or("").to_owned()),
        ),
    )
}

fn selector_text(selector: &Value) -> String {
    LabelSelector::from_object(selector)
        .map(|s| s.to_query())
        .unwrap_or_default()
}

fn i(v: &Value) -> Value {
    json!(v.as_i64().unwrap_or(0))
}

fn pod_status(pod: &Value) -> String {
    let status = &pod["status"];
    let mut reason = status["phase"].as_str().unwrap_or("").to_owned();
    if let Some(r) = status["reason"].as_str() {
        reason = r.to_owned();
    }
    let mut initializing = false;
    let inits = status["initContainerStatuses"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let init_total = pod["spec"]["initContainers"].as_array().map_or(0, Vec::len);
    for (n, c) in inits.iter().enumerate() {
        let term = &c["state"]["terminated"];
        if term.is_object() && term["exitCode"].as_i64() == Some(0) {
            continue;
        }
        initializing = true;
        reason = if let Some(w) = c["state"]["waiting"]["reason"]
            .as_str()
            .filter(|w| *w != "PodInitializing")
        {
            format!("Init:{w}")
        } else if term.is_object() {
            format!("Init:{}", term["reason"].as_str().unwrap_or("Error"))
        } else {
            format!("Init:{n}/{init_total}")
        };
        break;
    }
    if !initializing {
        let mut has_running = false;
        for c in status["containerStatuses"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .rev()
        {
            if let Some(w) = c["state"]["waiting"]["reason"].as_str() {
                reason = w.to_owned();
            } else if let Some(t) = c["state"]["terminated"].as_object() {
                reason = t
                    .get("reason")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .unwrap_or_else(|| {
                        format!(
                            "ExitCode:{}",
                            t.get("exitCode").and_then(Value::as_i64).unwrap_or(0)
                        )
                    });
            } else if c["ready"].as_bool() == Some(true) && c["state"]["running"].is_object() {
                has_running = true;
            }
        }
        if reason == "Completed" && has_running {
            reason = "Running".to_owned();
        }
    }
    if !pod["metadata"]["deletionTimestamp"].is_null() {
        reason = "Terminating".to_owned();
    }
    reason
}

fn pod_restarts(pod: &Value, now: Timestamp) -> String {
    let statuses = pod["status"]["containerStatuses"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let restarts: i64 = statuses
        .iter()
        .map(|c| c["restartCount"].as_i64().unwrap_or(0))
        .sum();
    let last = statuses
        .iter()
        .filter_map(|c| c["lastState"]["terminated"]["finishedAt"].as_str())
        .filter_map(parse_time)
        .max();
    match (restarts, last) {
        (r, Some(t)) if r > 0 => format!("{r} ({} ago)", human_duration(t.duration_until(now))),
        (r, _) => r.to_string(),
    }
}

fn service_ports(svc: &Value) -> String {
    let ports = svc["spec"]["ports"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if ports.is_empty() {
        return "<none>".to_owned();
    }
    join_strs(ports.iter().map(|p| {
        let protocol = p["protocol"].as_str().unwrap_or("TCP");
        match p["nodePort"].as_i64() {
            Some(node) if node != 0 => format!("{}:{node}/{protocol}", p["port"]),
            _ => format!("{}/{protocol}", p["port"]),
        }
    }))
}

fn external_ip(svc: &Value) -> String {
    let ingress: Vec<String> = svc["status"]["loadBalancer"]["ingress"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| {
                    i["hostname"]
                        .as_str()
                        .or_else(|| i["ip"].as_str())
                        .map(str::to_owned)
                })
                .collect()
        })
        .unwrap_or_default();
    let external = strings(&svc["spec"]["externalIPs"]);
    match svc["spec"]["type"].as_str().unwrap_or("ClusterIP") {
        "ClusterIP" | "NodePort" => {
            if external.is_empty() {
                "<none>".to_owned()
            } else {
                external.join(",")
            }
        }
        "LoadBalancer" => {
            let mut all = ingress;
            all.extend(external);
            if all.is_empty() {
                "<pending>".to_owned()
            } else {
                all.join(",")
            }
        }
        "ExternalName" => svc["spec"]["externalName"]
            .as_str()
            .unwrap_or("")
            .to_owned(),
        _ => "<unknown>".to_owned(),
    }
}

/// kubectl's PORTS column of an EndpointSlice: `80,443`, `<unset>` without ports.
fn slice_ports_text(slice: &Value) -> String {
    let ports: Vec<String> = slice["ports"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|p| {
            p["port"]
                .as_i64()
                .map_or_else(|| "<unset>".to_owned(), |n| n.to_string())
        })
        .collect();
    if ports.is_empty() {
        "<unset>".to_owned()
    } else {
        ports.join(",")
    }
}

/// kubectl's ENDPOINTS column of an EndpointSlice: three addresses, then `+ N more...`.
fn slice_endpoints_text(slice: &Value) -> String {
    let addresses: Vec<&str> = slice["endpoints"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .flat_map(|e| {
            e["addresses"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
        })
        .filter_map(Value::as_str)
        .collect();
    match addresses.len() {
        0 => "<unset>".to_owned(),
        1..=3 => addresses.join(","),
        n => format!("{} + {} more...", addresses[..3].join(","), n - 3),
    }
}

fn endpoints_text(ep: &Value) -> String {
    let mut list = Vec::new();
    for subset in ep["subsets"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let ports = subset["ports"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        for addr in subset["addresses"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let ip = addr["ip"].as_str().unwrap_or("");
            if ports.is_empty() {
                list.push(ip.to_owned());
            }
            for p in ports {
                list.push(format!("{ip}:{}", p["port"]));
            }
        }
    }
    if list.is_empty() {
        return "<none>".to_owned();
    }
    let more = list.len().saturating_sub(3);
    let shown = list.into_iter().take(3).collect::<Vec<_>>().join(",");
    if more > 0 {
        format!("{shown} + {more} more...")
    } else {
        shown
    }
}

fn access_modes(modes: &Value) -> String {
    join_strs(
        modes
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|m| {
                match m.as_str().unwrap_or("") {
                    "ReadWriteOnce" => "RWO",
                    "ReadOnlyMany" => "ROX",
                    "ReadWriteMany" => "RWX",
                    "ReadWriteOncePod" => "RWOP",
                    other => other,
                }
                .to_owned()
            }),
    )
}

fn job_status(job: &Value) -> String {
    let conditions = job["status"]["conditions"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let has = |t: &str| {
        conditions
            .iter()
            .any(|c| c["type"] == t && c["status"] == "True")
    };
    if has("Complete") {
        "Complete".to_owned()
    } else if has("Failed") {
        "Failed".to_owned()
    } else if !job["metadata"]["deletionTimestamp"].is_null() {
        "Terminating".to_owned()
    } else if has("SuccessCriteriaMet") {
        "SuccessCriteriaMet".to_owned()
    } else if has("FailureTarget") {
        "FailureTarget".to_owned()
    } else if job["spec"]["suspend"].as_bool() == Some(true) {
        "Suspended".to_owned()
    } else {
        "Running".to_owned()
    }
}

fn cells(rt: &ResourceType, o: &Value, now: Timestamp) -> Vec<Value> {
    let name = json!(o["metadata"]["name"].as_str().unwrap_or(""));
    let s = &o["status"];
    let Some(builtin) = rt.builtin else {
        return Vec::new();
    };
    match builtin {
        Builtin::Namespace => vec![
            name,
            json!(s["phase"].as_str().unwrap_or("")),
            json!(age(o, now)),
        ],
        Builtin::Pod => {
            let statuses = s["containerStatuses"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            let total = o["spec"]["containers"].as_array().map_or(0, Vec::len);
            let ready = statuses
                .iter()
                .filter(|c| c["ready"].as_bool() == Some(true))
                .count();
            vec![
                name,
                json!(format!("{ready}/{total}")),
                json!(pod_status(o)),
                json!(pod_restarts(o, now)),
                json!(age(o, now)),
                json!(s["podIP"].as_str().unwrap_or("<none>")),
                json!(o["spec"]["nodeName"].as_str().unwrap_or("<none>")),
                json!("<none>"),
                json!("<none>"),
            ]
        }
        Builtin::Deployment => {
            let (containers, images) = containers_images(&o["spec"]["template"]["spec"]);
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    s["readyReplicas"].as_i64().unwrap_or(0),
                    o["spec"]["replicas"].as_i64().unwrap_or(0)
                )),
                i(&s["updatedReplicas"]),
                i(&s["availableReplicas"]),
                json!(age(o, now)),
                json!(containers),
                json!(images),
                json!(selector_text(&o["spec"]["selector"])),
            ]
        }
        Builtin::ReplicaSet => {
            let (containers, images) = containers_images(&o["spec"]["template"]["spec"]);
            vec![
                name,
                i(&o["spec"]["replicas"]),
                i(&s["replicas"]),
                i(&s["readyReplicas"]),
                json!(age(o, now)),
                json!(containers),
                json!(images),
                json!(selector_text(&o["spec"]["selector"])),
            ]
        }
        Builtin::StatefulSet => {
            let (containers, images) = containers_images(&o["spec"]["template"]["spec"]);
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    s["readyReplicas"].as_i64().unwrap_or(0),
                    o["spec"]["replicas"].as_i64().unwrap_or(0)
                )),
                json!(age(o, now)),
                json!(containers),
                json!(images),
            ]
        }
        Builtin::DaemonSet => {
            let (containers, images) = containers_images(&o["spec"]["template"]["spec"]);
            let node_selector = o["spec"]["template"]["spec"]["nodeSelector"]
                .as_object()
                .map(|m| {
                    join_strs(
                        m.iter()
                            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))),
                    )
                })
                .unwrap_or_default();
            vec![
                name,
                i(&s["desiredNumberScheduled"]),
                i(&s["currentNumberScheduled"]),
                i(&s["numberReady"]),
                i(&s["updatedNumberScheduled"]),
                i(&s["numberAvailable"]),
                json!(or_none(node_selector)),
                json!(age(o, now)),
                json!(containers),
                json!(images),
                json!(selector_text(&o["spec"]["selector"])),
            ]
        }
        Builtin::Job => {
            let (containers, images) = containers_images(&o["spec"]["template"]["spec"]);
            let completions = match o["spec"]["completions"].as_i64() {
                Some(c) => format!("{}/{c}", s["succeeded"].as_i64().unwrap_or(0)),
                None => format!(
                    "{}/1 of {}",
                    s["succeeded"].as_i64().unwrap_or(0),
                    o["spec"]["parallelism"].as_i64().unwrap_or(1)
                ),
            };
            let start = s["startTime"].as_str().and_then(parse_time);
            let end = s["completionTime"]
                .as_str()
                .and_then(parse_time)
                .unwrap_or(now);
            let duration = start.map_or(String::new(), |st| human_duration(st.duration_until(end)));
            vec![
                name,
                json!(job_status(o)),
                json!(completions),
                json!(duration),
                json!(age(o, now)),
                json!(containers),
                json!(images),
                json!(selector_text(&o["spec"]["selector"])),
            ]
        }
        Builtin::CronJob => {
            let (containers, images) =
                containers_images(&o["spec"]["jobTemplate"]["spec"]["template"]["spec"]);
            let last = if s["lastScheduleTime"].is_string() {
                since(s["lastScheduleTime"].as_str(), now)
            } else {
                "<none>".to_owned()
            };
            vec![
                name,
                json!(o["spec"]["schedule"].as_str().unwrap_or("")),
                json!(o["spec"]["timeZone"].as_str().unwrap_or("<none>")),
                json!(o["spec"]["suspend"].as_bool().unwrap_or(false)),
                json!(s["active"].as_array().map_or(0, Vec::len)),
                json!(last),
                json!(age(o, now)),
                json!(containers),
                json!(images),
                json!(or_none(selector_text(
                    &o["spec"]["jobTemplate"]["spec"]["selector"]
                ))),
            ]
        }
        Builtin::Service => {
            let selector = o["spec"]["selector"]
                .as_object()
                .map(|m| {
                    join_strs(
                        m.iter()
                            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))),
                    )
                })
                .unwrap_or_default();
            vec![
                name,
                json!(o["spec"]["type"].as_str().unwrap_or("ClusterIP")),
                json!(o["spec"]["clusterIP"].as_str().unwrap_or("<none>")),
                json!(external_ip(o)),
                json!(service_ports(o)),
                json!(age(o, now)),
                json!(or_none(selector)),
            ]
        }
        Builtin::Endpoints => vec![name, json!(endpoints_text(o)), json!(age(o, now))],
        Builtin::EndpointSlice => vec![
            name,
            json!(o["addressType"].as_str().unwrap_or("")),
            json!(slice_ports_text(o)),
            json!(slice_endpoints_text(o)),
            json!(age(o, now)),
        ],
        Builtin::ConfigMap => {
            let n = o["data"].as_object().map_or(0, serde_json::Map::len)
                + o["binaryData"].as_object().map_or(0, serde_json::Map::len);
            vec![name, json!(n), json!(age(o, now))]
        }
        Builtin::Secret => {
            let n = o["data"].as_object().map_or(0, serde_json::Map::len);
            vec![
                name,
                json!(o["type"].as_str().unwrap_or("Opaque")),
                json!(n),
                json!(age(o, now)),
            ]
        }
        Builtin::ServiceAccount => vec![
            name,
            json!(o["secrets"].as_array().map_or(0, Vec::len)),
            json!(age(o, now)),
        ],
        Builtin::Event => {
            let involved = &o["involvedObject"];
            let object = format!(
                "{}/{}",
                involved["kind"].as_str().unwrap_or("").to_ascii_lowercase(),
                involved["name"].as_str().unwrap_or("")
            );
            let last = o["lastTimestamp"]
                .as_str()
                .or_else(|| o["eventTime"].as_str())
                .or_else(|| o["metadata"]["creationTimestamp"].as_str());
            let source = o["source"]["component"].as_str().unwrap_or("").to_owned()
                + &o["source"]["host"]
                    .as_str()
                    .map(|h| format!(", {h}"))
                    .unwrap_or_default();
            vec![
                json!(since(last, now)),
                json!(o["type"].as_str().unwrap_or("")),
                json!(o["reason"].as_str().unwrap_or("")),
                json!(object),
                json!(o["message"].as_str().unwrap_or("").trim()),
                json!(involved["fieldPath"].as_str().unwrap_or("")),
                json!(source),
                json!(since(o["firstTimestamp"].as_str(), now)),
                json!(o["count"].as_i64().unwrap_or(1).to_string()),
                name,
            ]
        }
        Builtin::PersistentVolumeClaim => vec![
            name,
            json!(s["phase"].as_str().unwrap_or("")),
            json!(o["spec"]["volumeName"].as_str().unwrap_or("")),
            json!(s["capacity"]["storage"].as_str().unwrap_or("")),
            json!(access_modes(&s["accessModes"])),
            json!(o["spec"]["storageClassName"].as_str().unwrap_or("<unset>")),
            json!(
                o["spec"]["volumeAttributesClassName"]
                    .as_str()
                    .unwrap_or("<unset>")
            ),
            json!(age(o, now)),
            json!(o["spec"]["volumeMode"].as_str().unwrap_or("Filesystem")),
        ],
        Builtin::PersistentVolume => {
            let claim = &o["spec"]["claimRef"];
            let claim = if claim.is_object() {
                format!(
                    "{}/{}",
                    claim["namespace"].as_str().unwrap_or(""),
                    claim["name"].as_str().unwrap_or("")
                )
            } else {
                String::new()
            };
            vec![
                name,
                json!(o["spec"]["capacity"]["storage"].as_str().unwrap_or("")),
                json!(access_modes(&o["spec"]["accessModes"])),
                json!(
                    o["spec"]["persistentVolumeReclaimPolicy"]
                        .as_str()
                        .unwrap_or("")
                ),
                json!(s["phase"].as_str().unwrap_or("")),
                json!(claim),
                json!(o["spec"]["storageClassName"].as_str().unwrap_or("")),
                json!("<unset>"),
                json!(s["reason"].as_str().unwrap_or("")),
                json!(age(o, now)),
            ]
        }
        Builtin::Node => {
            let ready = s["conditions"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
                .map_or("Unknown", |c| {
                    if c["status"] == "True" {
                        "Ready"
                    } else {
                        "NotReady"
                    }
                });
            let address = |kind: &str| {
                s["addresses"]
                    .as_array()
                    .and_then(|a| a.iter().find(|x| x["type"] == kind))
                    .and_then(|x| x["address"].as_str())
                    .unwrap_or("<none>")
                    .to_owned()
            };
            vec![
                name,
                json!(ready),
                json!("<none>"),
                json!(age(o, now)),
                json!(s["nodeInfo"]["kubeletVersion"].as_str().unwrap_or("")),
                json!(address("InternalIP")),
                json!(address("ExternalIP")),
                json!(s["nodeInfo"]["osImage"].as_str().unwrap_or("")),
                json!(s["nodeInfo"]["kernelVersion"].as_str().unwrap_or("")),
                json!(
                    s["nodeInfo"]["containerRuntimeVersion"]
                        .as_str()
                        .unwrap_or("")
                ),
            ]
        }
        Builtin::Ingress => {
            let rules = o["spec"]["rules"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            let hosts = join_strs(
                rules
                    .iter()
                    .map(|r| r["host"].as_str().unwrap_or("*").to_owned()),
            );
            let address = join_strs(
                s["loadBalancer"]["ingress"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|i| {
                        i["hostname"]
                            .as_str()
                            .or_else(|| i["ip"].as_str())
                            .map(str::to_owned)
                    }),
            );
            let ports = if o["spec"]["tls"].as_array().is_some_and(|t| !t.is_empty()) {
                "80, 443"
            } else {
                "80"
            };
            vec![
                name,
                json!(o["spec"]["ingressClassName"].as_str().unwrap_or("<none>")),
                json!(if hosts.is_empty() {
                    "*".to_owned()
                } else {
                    hosts
                }),
                json!(address),
                json!(ports),
                json!(age(o, now)),
            ]
        }
        Builtin::IngressClass => vec![
            name,
            json!(o["spec"]["controller"].as_str().unwrap_or("")),
            json!("<none>"),
            json!(age(o, now)),
        ],
        Builtin::NetworkPolicy => vec![
            name,
            json!(or_none(selector_text(&o["spec"]["podSelector"]))),
            json!(age(o, now)),
        ],
        Builtin::HorizontalPodAutoscaler => {
            let target = &o["spec"]["scaleTargetRef"];
            let targets = join_strs(
                o["spec"]["metrics"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .map(|m| {
                        let resource = &m["resource"];
                        let goal = match resource["target"]["averageUtilization"].as_i64() {
                            Some(p) => format!("{p}%"),
                            None => resource["target"]["averageValue"]
                                .as_str()
                                .unwrap_or("")
                                .to_owned(),
                        };
                        format!(
                            "{}: <unknown>/{goal}",
                            resource["name"]
                                .as_str()
                                .unwrap_or(m["type"].as_str().unwrap_or(""))
                        )
                    }),
            );
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    target["kind"].as_str().unwrap_or(""),
                    target["name"].as_str().unwrap_or("")
                )),
                json!(targets),
                json!(o["spec"]["minReplicas"].as_i64().unwrap_or(1).to_string()),
                i(&o["spec"]["maxReplicas"]),
                i(&s["currentReplicas"]),
                json!(age(o, now)),
            ]
        }
        Builtin::PodDisruptionBudget => {
            let show = |v: &Value| match v {
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.clone(),
                _ => "N/A".to_owned(),
            };
            vec![
                name,
                json!(show(&o["spec"]["minAvailable"])),
                json!(show(&o["spec"]["maxUnavailable"])),
                i(&s["disruptionsAllowed"]),
                json!(age(o, now)),
            ]
        }
        Builtin::Lease => vec![
            name,
            json!(o["spec"]["holderIdentity"].as_str().unwrap_or("")),
            json!(age(o, now)),
        ],
        Builtin::RoleBinding | Builtin::ClusterRoleBinding => {
            let subjects = o["subjects"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            let of = |kind: &str| {
                join_strs(subjects.iter().filter(|s| s["kind"] == kind).map(|s| {
                    match s["namespace"].as_str() {
                        Some(ns) if kind == "ServiceAccount" => {
                            format!("{ns}/{}", s["name"].as_str().unwrap_or(""))
                        }
                        _ => s["name"].as_str().unwrap_or("").to_owned(),
                    }
                }))
            };
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    o["roleRef"]["kind"].as_str().unwrap_or(""),
                    o["roleRef"]["name"].as_str().unwrap_or("")
                )),
                json!(age(o, now)),
                json!(of("User")),
                json!(of("Group")),
                json!(of("ServiceAccount")),
            ]
        }
        Builtin::ControllerRevision => {
            let owner = o["metadata"]["ownerReferences"]
                .as_array()
                .and_then(|refs| {
                    refs.iter()
                        .find(|r| r["controller"].as_bool() == Some(true))
                })
                .map(|r| {
                    let group = r["apiVersion"]
                        .as_str()
                        .unwrap_or("")
                        .split('/')
                        .next()
                        .unwrap_or("");
                    format!(
                        "{}.{group}/{}",
                        r["kind"].as_str().unwrap_or("").to_ascii_lowercase(),
                        r["name"].as_str().unwrap_or("")
                    )
                })
                .unwrap_or_else(|| "<none>".to_owned());
            vec![name, json!(owner), i(&o["revision"]), json!(age(o, now))]
        }
        Builtin::StorageClass => {
            let default = o["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"]
                == "true";
            let shown = if default {
                format!("{} (default)", name.as_str().unwrap_or(""))
            } else {
                name.as_str().unwrap_or("").to_owned()
            };
            vec![
                json!(shown),
                json!(o["provisioner"].as_str().unwrap_or("")),
                json!(o["reclaimPolicy"].as_str().unwrap_or("Delete")),
                json!(o["volumeBindingMode"].as_str().unwrap_or("Immediate")),
                json!(
                    o["allowVolumeExpansion"]
                        .as_bool()
                        .unwrap_or(false)
                        .to_string()
                ),
                json!(age(o, now)),
            ]
        }
        Builtin::PriorityClass => vec![
            name,
            i(&o["value"]),
            json!(o["globalDefault"].as_bool().unwrap_or(false)),
            json!(age(o, now)),
            json!(
                o["preemptionPolicy"]
                    .as_str()
                    .unwrap_or("PreemptLowerPriority")
            ),
        ],
        Builtin::Role
        | Builtin::ClusterRole
        | Builtin::CustomResourceDefinition
        | Builtin::LimitRange
        | Builtin::ResourceQuota => vec![
            name,
            json!(o["metadata"]["creationTimestamp"].as_str().unwrap_or("")),
        ],
    }
}

/// Evaluates a printer column's JSONPath (`.spec.replicas`, `.status.conditions[?(@.type=="Ready")].status`).
fn json_path<'a>(object: &'a Value, path: &str) -> Option<&'a Value> {
    let mut node = object;
    let mut rest = path
        .trim_start_matches('{')
        .trim_end_matches('}')
        .trim_start_matches('.');
    while !rest.is_empty() {
        if let Some(filter) = rest.strip_prefix("[?(@.") {
            let end = filter.find(")]")?;
            let (cond, after) = (&filter[..end], &filter[end + 2..]);
            let (field, want) = cond.split_once("==")?;
            let want = want.trim().trim_matches('"').trim_matches('\'');
            node = node
                .as_array()?
                .iter()
                .find(|item| item[field.trim()].as_str() == Some(want))?;
            rest = after.trim_start_matches('.');
            continue;
        }
        if let Some(index) = rest.strip_prefix('[') {
            let end = index.find(']')?;
            let i: usize = index[..end].parse().ok()?;
            node = node.as_array()?.get(i)?;
            rest = index[end + 1..].trim_start_matches('.');
            continue;
        }
        let end = rest.find(['.', '[']).unwrap_or(rest.len());
        node = node.get(&rest[..end])?;
        rest = rest[end..].trim_start_matches('.');
    }
    Some(node)
}

fn custom_columns(rt: &ResourceType) -> Vec<(Column, String, String)> {
    let printer = rt
        .crd
        .as_ref()
        .map(|c| c.printer_columns.clone())
        .unwrap_or_default();
    printer
        .iter()
        .map(|c| {
            let kind = match c["type"].as_str().unwrap_or("string") {
                "integer" => "integer",
                "number" => "number",
                "boolean" => "boolean",
                "date" => "date",
                _ => "string",
            };
            (
                Column {
                    name: "",
                    kind,
                    priority: u8::try_from(c["priority"].as_i64().unwrap_or(0).clamp(0, 1))
                        .unwrap_or(0),
                },
                c["name"].as_str().unwrap_or("").to_owned(),
                c["jsonPath"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn column_json(name: &str, kind: &str, priority: u8, description: &str) -> Value {
    let mut c = json!({"name": name, "type": kind, "format": "", "description": description, "priority": priority});
    if name == "Name" {
        c["format"] = json!("name");
    }
    c
}

/// The column definitions of a type.
pub(crate) fn definitions(rt: &ResourceType) -> Value {
    if rt.builtin.is_some() {
        return Value::Array(
            columns(rt)
                .iter()
                .map(|c| column_json(c.name, c.kind, c.priority, describe(c.name)))
                .collect(),
        );
    }
    let custom = custom_columns(rt);
    let mut defs = vec![column_json("Name", "string", 0, describe("Name"))];
    if custom.is_empty() {
        defs.push(column_json("Age", "date", 0, describe("Age")));
    }
    for (c, name, _) in &custom {
        defs.push(column_json(name, c.kind, c.priority, ""));
    }
    Value::Array(defs)
}

fn custom_cells(rt: &ResourceType, o: &Value, now: Timestamp) -> Vec<Value> {
    let custom = custom_columns(rt);
    let mut cells = vec![json!(o["metadata"]["name"].as_str().unwrap_or(""))];
    if custom.is_empty() {
        cells.push(json!(age(o, now)));
    }
    for (c, _, path) in &custom {
        let value = json_path(o, path).cloned().unwrap_or(Value::Null);
        cells.push(match (c.kind, &value) {
            ("date", Value::String(s)) => json!(since(Some(s), now)),
            (_, Value::Null) => Value::Null,
            _ => value,
        });
    }
    cells
}

/// Object metadata as `PartialObjectMetadata`.
pub(crate) fn partial_metadata(object: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": object["metadata"],
    })
}

/// One row.
pub(crate) fn row(
    rt: &ResourceType,
    object: &Value,
    now: Timestamp,
    include: IncludeObject,
) -> Value {
    let cells = if rt.builtin.is_some() {
        cells(rt, object, now)
    } else {
        custom_cells(rt, object, now)
    };
    let mut row = json!({"cells": cells});
    match include {
        IncludeObject::None => {}
        IncludeObject::Metadata => row["object"] = partial_metadata(object),
        IncludeObject::Object => row["object"] = object.clone(),
    }
    row
}

/// A Table of objects.
pub(crate) fn table(
    rt: &ResourceType,
    objects: &[&Value],
    now: Timestamp,
    include: IncludeObject,
    metadata: Value,
    with_definitions: bool,
) -> Value {
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": if with_definitions { definitions(rt) } else { Value::Null },
        "rows": objects.iter().map(|o| row(rt, o, now, include)).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Registry;

    #[test]
    fn deployment_rows_match_kubectl() {
        let rt = Registry::builtin()
            .lookup("apps", "v1", "deployments")
            .unwrap();
        let now: Timestamp = "2024-01-01T00:10:00Z".parse().unwrap();
        let d = json!({"metadata": {"name": "web", "creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": {"spec": {"containers": [{"name": "web", "image": "nginx"}]}}},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
        let t = table(&rt, &[&d], now, IncludeObject::Metadata, json!({}), true);
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["web", "2/3", 3, 2, "10m", "web", "nginx", "app=web"])
        );
        assert_eq!(t["columnDefinitions"][2]["name"], "Up-to-date");
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    }

    #[test]
    fn pod_status_column() {
        let waiting = json!({"status": {"phase": "Pending", "containerStatuses": [{"state": {"waiting": {"reason": "ImagePullBackOff"}}}]}, "metadata": {}});
        assert_eq!(pod_status(&waiting), "ImagePullBackOff");
        let running = json!({"status": {"phase": "Running", "containerStatuses": [{"ready": true, "state": {"running": {}}}]}, "metadata": {}});
        assert_eq!(pod_status(&running), "Running");
    }

    #[test]
    fn printer_column_paths() {
        let o = json!({"spec": {"size": 3}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        assert_eq!(json_path(&o, ".spec.size"), Some(&json!(3)));
        assert_eq!(
            json_path(&o, ".status.conditions[?(@.type==\"Ready\")].status"),
            Some(&json!("True"))
        );
        assert_eq!(
            json_path(&o, ".status.conditions[0].type"),
            Some(&json!("Ready"))
        );
    }
}
