//! Services: Endpoints and an EndpointSlice (which kubectl 1.32's `describe service` and
//! `describe ingress` read) follow the ready (and not ready) pods a selector picks; a LoadBalancer
//! Service, and an Ingress, gets `status.loadBalancer.ingress` with a hostname like an AWS load
//! balancer's after `load_balancer_delay` of virtual time.

use jiff::SignedDuration;
use serde_json::{Value, json};

use super::{CONTROLLER_MANAGER, Wake, is_deleting, list, pod_ready};
use crate::clock::parse_time;
use crate::resources::Builtin;
use crate::selector::LabelSelector;
use crate::state::State;
use crate::store::meta_str;

fn hex_of(seed: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(seed.as_bytes()))
}

fn truncated(s: &str, n: usize) -> &str {
    &s[..s.len().min(n)]
}

/// `k8s-<ns>-<name>-<10 hex>-<16 hex>.<domain>`, as the AWS Load Balancer Controller names NLBs.
fn load_balancer_hostname(object: &Value, domain: &str) -> String {
    let hash = hex_of(meta_str(object, "uid"));
    format!(
        "k8s-{}-{}-{}-{}.{domain}",
        truncated(meta_str(object, "namespace"), 8),
        truncated(meta_str(object, "name"), 8),
        &hash[..10],
        &hash[10..26]
    )
    .to_ascii_lowercase()
}

/// The port a Service port points at in a pod: a number, or a named container port.
fn target_port(port: &Value, pod: &Value) -> Option<i64> {
    match &port["targetPort"] {
        Value::Number(n) => n.as_i64(),
        Value::String(name) => pod["spec"]["containers"]
            .as_array()?
            .iter()
            .flat_map(|c| c["ports"].as_array().into_iter().flatten())
            .find(|p| p["name"].as_str() == Some(name))
            .and_then(|p| p["containerPort"].as_i64()),
        _ => port["port"].as_i64(),
    }
}

fn endpoints_for(service: &Value, pods: &[std::sync::Arc<Value>]) -> Value {
    let mut ready = Vec::new();
    let mut not_ready = Vec::new();
    let mut ports: Vec<Value> = Vec::new();
    for pod in pods {
        let Some(ip) = pod["status"]["podIP"].as_str() else {
            continue;
        };
        if is_deleting(pod)
            || matches!(
                pod["status"]["phase"].as_str(),
                Some("Succeeded" | "Failed")
            )
        {
            continue;
        }
        let address = json!({
            "ip": ip,
            "nodeName": pod["spec"]["nodeName"],
            "targetRef": {"kind": "Pod", "namespace": pod["metadata"]["namespace"], "name": pod["metadata"]["name"], "uid": pod["metadata"]["uid"]},
        });
        if pod_ready(pod) {
            ready.push(address);
        } else {
            not_ready.push(address);
        }
        if ports.is_empty() {
            for port in service["spec"]["ports"].as_array().into_iter().flatten() {
                let Some(number) = target_port(port, pod) else {
                    continue;
                };
                let mut p = json!({"port": number, "protocol": port["protocol"]});
                if let Some(name) = port["name"].as_str() {
                    p["name"] = json!(name);
                }
                ports.push(p);
            }
        }
    }
    let sort = |v: &mut Vec<Value>| v.sort_by(|a, b| a["ip"].as_str().cmp(&b["ip"].as_str()));
    sort(&mut ready);
    sort(&mut not_ready);
    if ready.is_empty() && not_ready.is_empty() {
        return json!([]);
    }
    let mut subset = json!({"ports": ports});
    if !ready.is_empty() {
        subset["addresses"] = Value::Array(ready);
    }
    if !not_ready.is_empty() {
        subset["notReadyAddresses"] = Value::Array(not_ready);
    }
    json!([subset])
}

/// The EndpointSlice controller's view of a Service: one IPv4 slice with an endpoint per pod
/// that has an IP and has not finished, its conditions, and the Service's ports as the pods
/// expose them (`addressType`, `endpoints`, `ports`; no endpoints, no ports).
fn slice_for(service: &Value, pods: &[std::sync::Arc<Value>]) -> Value {
    let mut endpoints = Vec::new();
    let mut ports: Vec<Value> = Vec::new();
    for pod in pods {
        let Some(ip) = pod["status"]["podIP"].as_str() else {
            continue;
        };
        if matches!(
            pod["status"]["phase"].as_str(),
            Some("Succeeded" | "Failed")
        ) {
            continue;
        }
        let terminating = is_deleting(pod);
        let serving = pod_ready(pod);
        endpoints.push(json!({
            "addresses": [ip],
            "conditions": {"ready": serving && !terminating, "serving": serving, "terminating": terminating},
            "nodeName": pod["spec"]["nodeName"],
            "targetRef": {"kind": "Pod", "namespace": pod["metadata"]["namespace"], "name": pod["metadata"]["name"], "uid": pod["metadata"]["uid"]},
        }));
        if ports.is_empty() {
            for port in service["spec"]["ports"].as_array().into_iter().flatten() {
                if let Some(number) = target_port(port, pod) {
                    ports.push(json!({
                        "name": port["name"].as_str().unwrap_or(""),
                        "port": number,
                        "protocol": port["protocol"],
                    }));
                }
            }
        }
    }
    endpoints.sort_by(|a, b| a["addresses"][0].as_str().cmp(&b["addresses"][0].as_str()));
    let mut slice = json!({"addressType": "IPv4"});
    if !endpoints.is_empty() {
        slice["endpoints"] = Value::Array(endpoints);
        slice["ports"] = Value::Array(ports);
    }
    slice
}

const SLICE_MANAGER: &str = "endpointslice-controller.k8s.io";

/// Creates, updates or keeps the EndpointSlice of a Service with a selector.
fn reconcile_slice(
    state: &mut State,
    svc: &Value,
    pods: &[std::sync::Arc<Value>],
    labels: &serde_json::Map<String, Value>,
) -> bool {
    let slices = state.builtin(Builtin::EndpointSlice);
    let namespace = meta_str(svc, "namespace").to_owned();
    let name = meta_str(svc, "name").to_owned();
    let mut labels = labels.clone();
    labels.remove("endpoints.kubernetes.io/managed-by");
    labels.insert("kubernetes.io/service-name".to_owned(), json!(name));
    labels.insert(
        "endpointslice.kubernetes.io/managed-by".to_owned(),
        json!(SLICE_MANAGER),
    );
    let body = slice_for(svc, pods);
    let existing = state
        .store
        .list(&slices.key(), Some(&namespace))
        .find(|s| {
            s["metadata"]["labels"]["kubernetes.io/service-name"] == name.as_str()
                && s["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"]
                    == SLICE_MANAGER
        })
        .cloned();
    match existing {
        Some(existing) => {
            let mut updated = (*existing).clone();
            if let Some(map) = updated.as_object_mut() {
                map.remove("endpoints");
                map.remove("ports");
            }
            for (key, value) in body.as_object().into_iter().flatten() {
                updated[key] = value.clone();
            }
            updated["metadata"]["labels"] = Value::Object(labels);
            updated != *existing
                && state.controller_update(&slices, &existing, updated, CONTROLLER_MANAGER, false)
        }
        None => {
            let mut slice = body;
            slice["apiVersion"] = json!("discovery.k8s.io/v1");
            slice["kind"] = json!("EndpointSlice");
            slice["metadata"] = json!({
                "name": format!("{}-{}", truncated(&name, 57), &hex_of(meta_str(svc, "uid"))[..5]),
                "namespace": namespace,
                "labels": labels,
                "ownerReferences": [{
                    "apiVersion": "v1", "kind": "Service", "name": name,
                    "uid": meta_str(svc, "uid"), "controller": true, "blockOwnerDeletion": true,
                }],
            });
            state
                .controller_create(&slices, slice, CONTROLLER_MANAGER)
                .is_some()
        }
    }
}

pub(crate) fn reconcile(state: &mut State, wake: &mut Wake) -> bool {
    let services = state.builtin(Builtin::Service);
    let endpoints = state.builtin(Builtin::Endpoints);
    let pods_rt = state.builtin(Builtin::Pod);
    let ingresses = state.builtin(Builtin::Ingress);
    let delay =
        SignedDuration::try_from(state.config.load_balancer_delay).unwrap_or(SignedDuration::ZERO);
    let domain = state.config.load_balancer_domain.clone();
    let now = state.now;
    let mut changed = false;
    for svc in list(state, &services, None) {
        if is_deleting(&svc) {
            continue;
        }
        let namespace = meta_str(&svc, "namespace").to_owned();
        let name = meta_str(&svc, "name").to_owned();
        // endpoints
        if svc["spec"]["selector"]
            .as_object()
            .is_some_and(|s| !s.is_empty())
        {
            let selector =
                LabelSelector::from_object(&json!({"matchLabels": svc["spec"]["selector"]}))
                    .unwrap_or_else(|_| LabelSelector::nothing());
            let pods: Vec<_> = state
                .store
                .list(&pods_rt.key(), Some(&namespace))
                .filter(|p| selector.matches(p))
                .cloned()
                .collect();
            let subsets = endpoints_for(&svc, &pods);
            let mut labels = svc["metadata"]["labels"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            changed |= reconcile_slice(state, &svc, &pods, &labels);
            labels.insert(
                "endpoints.kubernetes.io/managed-by".to_owned(),
                json!("endpoint-controller"),
            );
            match state.store.get(&endpoints.key(), &namespace, &name) {
                Some(existing) => {
                    let mut updated = (*existing).clone();
                    if subsets.as_array().is_some_and(Vec::is_empty) {
                        if let Some(map) = updated.as_object_mut() {
                            map.remove("subsets");
                        }
                    } else {
                        updated["subsets"] = subsets;
                    }
                    updated["metadata"]["labels"] = Value::Object(labels);
                    if updated != *existing {
                        changed |= state.controller_update(
                            &endpoints,
                            &existing,
                            updated,
                            CONTROLLER_MANAGER,
                            false,
                        );
                    }
                }
                None => {
                    let mut ep = json!({
                        "apiVersion": "v1", "kind": "Endpoints",
                        "metadata": {"name": name, "namespace": namespace, "labels": labels},
                    });
                    if !subsets.as_array().is_some_and(Vec::is_empty) {
                        ep["subsets"] = subsets;
                    }
                    changed |= state
                        .controller_create(&endpoints, ep, CONTROLLER_MANAGER)
                        .is_some();
                }
            }
        }
        // load balancer
        if svc["spec"]["type"] == "LoadBalancer" {
            let has_ingress = svc["status"]["loadBalancer"]["ingress"]
                .as_array()
                .is_some_and(|a| !a.is_empty());
            if !has_ingress {
                let since = svc["metadata"]["creationTimestamp"]
                    .as_str()
                    .and_then(parse_time)
                    .unwrap_or(now);
                // A Service created as a LoadBalancer waits from its creation; one changed to a
                // LoadBalancer later waits from when the controller first sees it.
                let first_seen = if state.lb_announced.contains(meta_str(&svc, "uid")) {
                    since
                } else {
                    now.max(since)
                };
                let pending_since = *state
                    .lb_pending
                    .entry(meta_str(&svc, "uid").to_owned())
                    .or_insert(if since.duration_until(now) <= delay {
                        since
                    } else {
                        first_seen
                    });
                let due = pending_since.saturating_add(delay).unwrap_or(pending_since);
                let announced = state.lb_announced.insert(meta_str(&svc, "uid").to_owned());
                if announced {
                    state.event(
                        &svc,
                        false,
                        "EnsuringLoadBalancer",
                        "Ensuring load balancer",
                        "service-controller",
                    );
                }
                if due <= now {
                    let mut updated = (*svc).clone();
                    updated["status"]["loadBalancer"] =
                        json!({"ingress": [{"hostname": load_balancer_hostname(&svc, &domain)}]});
                    if state.controller_update(
                        &services,
                        &svc,
                        updated,
                        "kube-controller-manager",
                        true,
                    ) {
                        changed = true;
                        state.event(
                            &svc,
                            false,
                            "EnsuredLoadBalancer",
                            "Ensured load balancer",
                            "service-controller",
                        );
                        state.lb_pending.remove(meta_str(&svc, "uid"));
                    }
                } else {
                    wake.at(due);
                }
            }
        }
    }
    // Endpoints of Services that are gone
    for ep in list(state, &endpoints, None) {
        if state
            .store
            .get(
                &services.key(),
                meta_str(&ep, "namespace"),
                meta_str(&ep, "name"),
            )
            .is_none()
            && ep["metadata"]["labels"]["endpoints.kubernetes.io/managed-by"]
                == "endpoint-controller"
        {
            changed |= state.controller_delete(&endpoints, &ep, None);
        }
    }
    // Ingress addresses, as an ALB-backed ingress controller publishes them
    for ing in list(state, &ingresses, None) {
        if is_deleting(&ing)
            || ing["status"]["loadBalancer"]["ingress"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
        {
            continue;
        }
        let since = ing["metadata"]["creationTimestamp"]
            .as_str()
            .and_then(parse_time)
            .unwrap_or(now);
        let due = since.saturating_add(delay).unwrap_or(since);
        if due <= now {
            let mut updated = (*ing).clone();
            updated["status"] = json!({"loadBalancer": {"ingress": [{"hostname": load_balancer_hostname(&ing, &domain)}]}});
            if state.controller_update(
                &ingresses,
                &ing,
                updated,
                "aws-load-balancer-controller",
                true,
            ) {
                changed = true;
                state.event(
                    &ing,
                    false,
                    "SuccessfullyReconciled",
                    "Successfully reconciled",
                    "ingress",
                );
            }
        } else {
            wake.at(due);
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_look_like_nlbs() {
        let svc = json!({"metadata": {"name": "frontend-public", "namespace": "production", "uid": "abc"}});
        let host = load_balancer_hostname(&svc, "elb.us-east-1.amazonaws.com");
        assert!(host.starts_with("k8s-producti-frontend-"), "{host}");
        assert!(host.ends_with(".elb.us-east-1.amazonaws.com"));
    }

    #[test]
    fn named_target_ports_resolve() {
        let pod =
            json!({"spec": {"containers": [{"ports": [{"name": "http", "containerPort": 8080}]}]}});
        assert_eq!(
            target_port(&json!({"targetPort": "http"}), &pod),
            Some(8080)
        );
        assert_eq!(target_port(&json!({"targetPort": 9090}), &pod), Some(9090));
    }
}
