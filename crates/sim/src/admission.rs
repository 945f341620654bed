//! What the API server does to an object on the way in, beyond defaulting: initial status,
//! Service cluster IP and node port allocation, the default StorageClass, Job selectors.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::resources::{Builtin, ResourceType};
use crate::state::State;
use crate::status::{ApiError, FieldError};

fn used_service_values(state: &State) -> (HashSet<String>, HashSet<i64>) {
    let services = state.builtin(Builtin::Service);
    let mut ips = HashSet::new();
    let mut node_ports = HashSet::new();
    for svc in state.store.list(&services.key(), None) {
        if let Some(ip) = svc["spec"]["clusterIP"].as_str() {
            ips.insert(ip.to_owned());
        }
        for port in svc["spec"]["ports"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            if let Some(n) = port["nodePort"].as_i64() {
                node_ports.insert(n);
            }
        }
    }
    (ips, node_ports)
}

/// A free address in the service CIDR 10.96.0.0/12 (10.96.0.1 is the `kubernetes` Service and
/// 10.96.0.10 the cluster DNS, as on kubeadm clusters).
fn allocate_cluster_ip(state: &mut State, used: &HashSet<String>) -> String {
    loop {
        let second = 96 + state.rng.u32(0..16);
        let third = state.rng.u32(0..256);
        let fourth = state.rng.u32(1..255);
        let ip = format!("10.{second}.{third}.{fourth}");
        if !used.contains(&ip) && ip != "10.96.0.1" && ip != "10.96.0.10" {
            return ip;
        }
    }
}

fn allocate_node_port(state: &mut State, used: &mut HashSet<i64>) -> i64 {
    loop {
        let port = i64::from(state.rng.u32(30000..=32767));
        if used.insert(port) {
            return port;
        }
    }
}

fn service_allocations(
    state: &mut State,
    rt: &ResourceType,
    object: &mut Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    let (mut ips, mut node_ports) = used_service_values(state);
    let kind = object["spec"]["type"]
        .as_str()
        .unwrap_or("ClusterIP")
        .to_owned();
    if let Some(old) = old {
        if let Some(ip) = old["spec"]["clusterIP"].as_str() {
            ips.remove(ip);
        }
        for port in old["spec"]["ports"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            if let Some(n) = port["nodePort"].as_i64() {
                node_ports.remove(&n);
            }
        }
    }
    if kind == "ExternalName" {
        if let Some(spec) = object["spec"].as_object_mut() {
            spec.remove("clusterIP");
            spec.remove("clusterIPs");
        }
        return Ok(());
    }
    let requested = object["spec"]["clusterIP"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let ip = if !requested.is_empty() {
        if requested != "None" && ips.contains(&requested) {
            let name = object["metadata"]["name"].as_str().unwrap_or("").to_owned();
            return Err(ApiError::invalid(
                rt.named(&name),
                &[FieldError::invalid(
                    "spec.clusterIPs",
                    json!([requested]),
                    "failed to allocate IP: provided IP is already allocated",
                )],
            ));
        }
        requested
    } else if let Some(previous) = old
        .and_then(|o| o["spec"]["clusterIP"].as_str())
        .filter(|ip| !ip.is_empty())
    {
        previous.to_owned()
    } else {
        allocate_cluster_ip(state, &ips)
    };
    object["spec"]["clusterIP"] = json!(ip);
    object["spec"]["clusterIPs"] = json!([ip]);
    let wants_node_ports = kind == "NodePort"
        || (kind == "LoadBalancer"
            && object["spec"]["allocateLoadBalancerNodePorts"].as_bool() != Some(false));
    let old_ports: Vec<Value> = old
        .and_then(|o| o["spec"]["ports"].as_array().cloned())
        .unwrap_or_default();
    if let Some(ports) = object["spec"]["ports"].as_array_mut() {
        for port in ports {
            if !wants_node_ports {
                if let Some(map) = port.as_object_mut() {
                    map.remove("nodePort");
                }
                continue;
            }
            if port["nodePort"].as_i64().unwrap_or(0) != 0 {
                node_ports.insert(port["nodePort"].as_i64().unwrap_or(0));
                continue;
            }
            let previous = old_ports
                .iter()
                .find(|p| p["port"] == port["port"] && p["protocol"] == port["protocol"])
                .and_then(|p| p["nodePort"].as_i64());
            let n = match previous {
                Some(n) => n,
                None => allocate_node_port(state, &mut node_ports),
            };
            port["nodePort"] = json!(n);
        }
    }
    Ok(())
}

fn qos_class(pod: &Value) -> &'static str {
    let containers = pod["spec"]["containers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut any = false;
    let mut guaranteed = !containers.is_empty();
    for c in containers {
        let requests = &c["resources"]["requests"];
        let limits = &c["resources"]["limits"];
        if requests.as_object().is_some_and(|m| !m.is_empty())
            || limits.as_object().is_some_and(|m| !m.is_empty())
        {
            any = true;
        }
        for resource in ["cpu", "memory"] {
            let limit = &limits[resource];
            let request = if requests[resource].is_null() {
                limit
            } else {
                &requests[resource]
            };
            if limit.is_null() || request != limit {
                guaranteed = false;
            }
        }
    }
    if guaranteed {
        "Guaranteed"
    } else if any {
        "Burstable"
    } else {
        "BestEffort"
    }
}

pub(crate) fn on_create(
    state: &mut State,
    rt: &ResourceType,
    object: &mut Value,
) -> Result<(), ApiError> {
    match rt.builtin {
        Some(Builtin::Namespace) => object["status"] = json!({"phase": "Active"}),
        Some(Builtin::Service) => {
            service_allocations(state, rt, object, None)?;
            object["status"] = json!({"loadBalancer": {}});
        }
        Some(Builtin::Pod) => {
            let qos = qos_class(object);
            object["status"] = json!({"phase": "Pending", "qosClass": qos});
        }
        Some(Builtin::PersistentVolumeClaim) => {
            if object["spec"]["storageClassName"].is_null() {
                let classes = state.builtin(Builtin::StorageClass);
                let default = state.store.list(&classes.key(), None).find(|sc| {
                    sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"]
                        .as_str()
                        == Some("true")
                });
                if let Some(sc) = default {
                    object["spec"]["storageClassName"] = sc["metadata"]["name"].clone();
                }
            }
            object["status"] = json!({"phase": "Pending"});
        }
        Some(Builtin::Job) => {
            let uid = object["metadata"]["uid"].as_str().unwrap_or("").to_owned();
            let name = object["metadata"]["name"].as_str().unwrap_or("").to_owned();
            if object["spec"]["manualSelector"].as_bool() != Some(true) {
                object["spec"]["selector"] =
                    json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}});
                let labels = &mut object["spec"]["template"]["metadata"]["labels"];
                if !labels.is_object() {
                    *labels = json!({});
                }
                labels["batch.kubernetes.io/controller-uid"] = json!(uid);
                labels["batch.kubernetes.io/job-name"] = json!(name);
                labels["controller-uid"] = json!(uid);
                labels["job-name"] = json!(name);
            }
            object["status"] = json!({});
        }
        _ => {
            if rt.status && object.get("status").is_none() {
                object["status"] = json!({});
            }
        }
    }
    Ok(())
}

pub(crate) fn on_update(
    state: &mut State,
    rt: &ResourceType,
    old: &Value,
    new: &mut Value,
) -> Result<(), ApiError> {
    if rt.is(Builtin::Service) {
        service_allocations(state, rt, new, Some(old))?;
        if new["spec"]["type"].as_str() != Some("LoadBalancer") {
            new["status"]["loadBalancer"] = json!({});
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qos_classes() {
        assert_eq!(
            qos_class(&json!({"spec": {"containers": [{"name": "a"}]}})),
            "BestEffort"
        );
        assert_eq!(
            qos_class(
                &json!({"spec": {"containers": [{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}})
            ),
            "Guaranteed"
        );
        assert_eq!(
            qos_class(
                &json!({"spec": {"containers": [{"resources": {"requests": {"cpu": "1"}}}]}})
            ),
            "Burstable"
        );
    }
}
