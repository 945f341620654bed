//! Defaulting: the fields the real API server fills in when a client leaves them out, so that
//! objects read back look as they do on a real cluster (and `kubectl diff` shows only what the
//! user changed). Applied on every write; idempotent.

use serde_json::{Value, json};

use crate::resources::{Builtin, ResourceType};

fn set_default(object: &mut Value, field: &str, value: Value) {
    if let Some(map) = object.as_object_mut()
        && map.get(field).is_none_or(Value::is_null)
    {
        map.insert(field.to_owned(), value);
    }
}

fn ensure_object<'a>(object: &'a mut Value, field: &str) -> &'a mut Value {
    if !object[field].is_object() {
        object[field] = json!({});
    }
    &mut object[field]
}

fn items_mut<'a>(object: &'a mut Value, field: &str) -> impl Iterator<Item = &'a mut Value> {
    object
        .get_mut(field)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flat_map(|a| a.iter_mut())
}

fn image_pull_policy(image: &str) -> &'static str {
    let without_digest = image.split('@').next().unwrap_or(image);
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    match last.split_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

fn probe(probe: &mut Value) {
    if !probe.is_object() {
        return;
    }
    set_default(probe, "timeoutSeconds", json!(1));
    set_default(probe, "periodSeconds", json!(10));
    set_default(probe, "successThreshold", json!(1));
    set_default(probe, "failureThreshold", json!(3));
    if probe["httpGet"].is_object() {
        set_default(&mut probe["httpGet"], "scheme", json!("HTTP"));
        set_default(&mut probe["httpGet"], "path", json!("/"));
    }
}

fn container(c: &mut Value) {
    set_default(c, "terminationMessagePath", json!("/dev/termination-log"));
    set_default(c, "terminationMessagePolicy", json!("File"));
    let image = c["image"].as_str().unwrap_or("").to_owned();
    set_default(c, "imagePullPolicy", json!(image_pull_policy(&image)));
    set_default(c, "resources", json!({}));
    for port in items_mut(c, "ports") {
        set_default(port, "protocol", json!("TCP"));
    }
    for field in ["readinessProbe", "livenessProbe", "startupProbe"] {
        if let Some(p) = c.get_mut(field) {
            probe(p);
        }
    }
    for env in items_mut(c, "env") {
        if let Some(field_ref) = env.pointer_mut("/valueFrom/fieldRef") {
            set_default(field_ref, "apiVersion", json!("v1"));
        }
    }
}

/// Pod spec defaults (for pods and pod templates).
pub(crate) fn pod_spec(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "securityContext", json!({}));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    for list in ["containers", "initContainers"] {
        for c in items_mut(spec, list) {
            container(c);
        }
    }
    for volume in items_mut(spec, "volumes") {
        for source in ["configMap", "secret"] {
            if volume[source].is_object() {
                set_default(&mut volume[source], "defaultMode", json!(420));
            }
        }
        if volume["projected"].is_object() {
            set_default(&mut volume["projected"], "defaultMode", json!(420));
        }
    }
}

fn template(object: &mut Value, pointer: &str) {
    if let Some(spec) = object.pointer_mut(pointer) {
        pod_spec(spec);
    }
}

fn rolling_update(spec: &mut Value, surge: Value, unavailable: Value) {
    let strategy = ensure_object(spec, "strategy");
    set_default(strategy, "type", json!("RollingUpdate"));
    if strategy["type"] == "RollingUpdate" {
        let ru = ensure_object(strategy, "rollingUpdate");
        set_default(ru, "maxSurge", surge);
        set_default(ru, "maxUnavailable", unavailable);
    }
}

/// As the API server reads a v1 Secret: `stringData` is write-only, merged into `data`
/// (base64), its values winning over `data`'s for the same key, and never stored.
fn merge_string_data(secret: &mut Value) {
    use base64::Engine as _;
    let Some(strings) = secret
        .as_object_mut()
        .and_then(|map| map.remove("stringData"))
    else {
        return;
    };
    let Value::Object(strings) = strings else {
        return;
    };
    if strings.is_empty() {
        return;
    }
    let data = ensure_object(secret, "data");
    for (key, value) in strings {
        let text = value.as_str().unwrap_or("");
        data[key] = Value::String(base64::engine::general_purpose::STANDARD.encode(text));
    }
}

/// Fills in defaults for an object of type `rt`.
pub(crate) fn apply_defaults(rt: &ResourceType, object: &mut Value) {
    let Some(builtin) = rt.builtin else { return };
    match builtin {
        Builtin::Pod => {
            template(object, "/spec");
            if let Some(spec) = object.get_mut("spec") {
                set_default(spec, "enableServiceLinks", json!(true));
                set_default(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
                set_default(spec, "priority", json!(0));
                set_default(spec, "serviceAccountName", json!("default"));
                set_default(spec, "serviceAccount", json!("default"));
                set_default(
                    spec,
                    "tolerations",
                    json!([
                        {"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists", "tolerationSeconds": 300},
                        {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists", "tolerationSeconds": 300}
                    ]),
                );
            }
        }
        Builtin::Deployment => {
            let spec = ensure_object(object, "spec");
            set_default(spec, "replicas", json!(1));
            set_default(spec, "revisionHistoryLimit", json!(10));
            set_default(spec, "progressDeadlineSeconds", json!(600));
            rolling_update(spec, json!("25%"), json!("25%"));
            template(object, "/spec/template/spec");
        }
        Builtin::ReplicaSet => {
            set_default(ensure_object(object, "spec"), "replicas", json!(1));
            template(object, "/spec/template/spec");
        }
        Builtin::StatefulSet => {
            let spec = ensure_object(object, "spec");
            set_default(spec, "replicas", json!(1));
            set_default(spec, "podManagementPolicy", json!("OrderedReady"));
            set_default(spec, "revisionHistoryLimit", json!(10));
            set_default(
                spec,
                "persistentVolumeClaimRetentionPolicy",
                json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
            );
            let strategy = ensure_object(spec, "updateStrategy");
            set_default(strategy, "type", json!("RollingUpdate"));
            if strategy["type"] == "RollingUpdate" {
                set_default(
                    ensure_object(strategy, "rollingUpdate"),
                    "partition",
                    json!(0),
                );
            }
            for claim in items_mut(spec, "volumeClaimTemplates") {
                if let Some(claim_spec) = claim.get_mut("spec") {
                    set_default(claim_spec, "volumeMode", json!("Filesystem"));
                }
                set_default(claim, "apiVersion", json!("v1"));
                set_default(claim, "kind", json!("PersistentVolumeClaim"));
            }
            template(object, "/spec/template/spec");
        }
        Builtin::DaemonSet => {
            let spec = ensure_object(object, "spec");
            set_default(spec, "revisionHistoryLimit", json!(10));
            let strategy = ensure_object(spec, "updateStrategy");
            set_default(strategy, "type", json!("RollingUpdate"));
            if strategy["type"] == "RollingUpdate" {
                let ru = ensure_object(strategy, "rollingUpdate");
                set_default(ru, "maxUnavailable", json!(1));
                set_default(ru, "maxSurge", json!(0));
            }
            template(object, "/spec/template/spec");
        }
        Builtin::Job => {
            let spec = ensure_object(object, "spec");
            let completions_set = !spec["completions"].is_null();
            let parallelism_set = !spec["parallelism"].is_null();
            if !completions_set && !parallelism_set {
                spec["completions"] = json!(1);
                spec["parallelism"] = json!(1);
            } else if !parallelism_set {
                spec["parallelism"] = json!(1);
            }
            set_default(spec, "backoffLimit", json!(6));
            set_default(spec, "completionMode", json!("NonIndexed"));
            set_default(spec, "suspend", json!(false));
            set_default(spec, "podReplacementPolicy", json!("TerminatingOrFailed"));
            template(object, "/spec/template/spec");
        }
        Builtin::CronJob => {
            let spec = ensure_object(object, "spec");
            set_default(spec, "concurrencyPolicy", json!("Allow"));
            set_default(spec, "suspend", json!(false));
            set_default(spec, "successfulJobsHistoryLimit", json!(3));
            set_default(spec, "failedJobsHistoryLimit", json!(1));
            if let Some(job_spec) = spec.pointer_mut("/jobTemplate/spec") {
                set_default(job_spec, "backoffLimit", json!(6));
                set_default(job_spec, "completionMode", json!("NonIndexed"));
                set_default(job_spec, "suspend", json!(false));
                set_default(
                    job_spec,
                    "podReplacementPolicy",
                    json!("TerminatingOrFailed"),
                );
            }
            template(object, "/spec/jobTemplate/spec/template/spec");
        }
        Builtin::Service => {
            let spec = ensure_object(object, "spec");
            set_default(spec, "type", json!("ClusterIP"));
            set_default(spec, "sessionAffinity", json!("None"));
            let kind = spec["type"].as_str().unwrap_or("ClusterIP").to_owned();
            if kind != "ExternalName" {
                set_default(spec, "internalTrafficPolicy", json!("Cluster"));
                set_default(spec, "ipFamilyPolicy", json!("SingleStack"));
                set_default(spec, "ipFamilies", json!(["IPv4"]));
            }
            if kind == "LoadBalancer" || kind == "NodePort" {
                set_default(spec, "externalTrafficPolicy", json!("Cluster"));
            }
            if kind == "LoadBalancer" {
                set_default(spec, "allocateLoadBalancerNodePorts", json!(true));
            }
            for port in items_mut(spec, "ports") {
                set_default(port, "protocol", json!("TCP"));
                let number = port["port"].clone();
                set_default(port, "targetPort", number);
            }
        }
        Builtin::Secret => {
            set_default(object, "type", json!("Opaque"));
            merge_string_data(object);
        }
        Builtin::PersistentVolumeClaim => {
            let spec = ensure_object(object, "spec");
            set_default(spec, "volumeMode", json!("Filesystem"));
        }
        Builtin::NetworkPolicy => {
            let spec = ensure_object(object, "spec");
            if spec["policyTypes"].is_null() {
                let mut types = vec![json!("Ingress")];
                if spec["egress"].is_array() {
                    types.push(json!("Egress"));
                }
                spec["policyTypes"] = Value::Array(types);
            }
            for rule in ["ingress", "egress"] {
                for r in items_mut(spec, rule) {
                    for port in items_mut(r, "ports") {
                        set_default(port, "protocol", json!("TCP"));
                    }
                }
            }
        }
        Builtin::HorizontalPodAutoscaler => {
            let spec = ensure_object(object, "spec");
            set_default(spec, "minReplicas", json!(1));
            if spec["metrics"].as_array().is_none_or(Vec::is_empty) {
                spec["metrics"] = json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]);
            }
        }
        Builtin::CustomResourceDefinition => {
            let spec = ensure_object(object, "spec");
            set_default(spec, "conversion", json!({"strategy": "None"}));
            let names = ensure_object(spec, "names");
            let kind = names["kind"].as_str().unwrap_or("").to_ascii_lowercase();
            set_default(names, "singular", json!(kind));
            let kind = names["kind"].as_str().unwrap_or("").to_owned();
            set_default(names, "listKind", json!(format!("{kind}List")));
        }
        Builtin::Namespace => {
            let spec = ensure_object(object, "spec");
            set_default(spec, "finalizers", json!(["kubernetes"]));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_string_data_is_merged_into_data() {
        let rt = crate::resources::Registry::builtin()
            .all()
            .find(|rt| rt.is(Builtin::Secret))
            .unwrap()
            .clone();
        let mut secret = json!({
            "metadata": {"name": "s"},
            "data": {"user": "b2xk", "keep": "eA=="},
            "stringData": {"user": "admin", "password": "hunter2"},
        });
        apply_defaults(&rt, &mut secret);
        assert_eq!(
            secret,
            json!({
                "metadata": {"name": "s"},
                "type": "Opaque",
                "data": {"user": "YWRtaW4=", "keep": "eA==", "password": "aHVudGVyMg=="},
            })
        );
        let again = secret.clone();
        apply_defaults(&rt, &mut secret);
        assert_eq!(secret, again, "idempotent");
    }
    use crate::resources::Registry;

    #[test]
    fn deployment_defaults_match_a_real_cluster() {
        let rt = Registry::builtin()
            .lookup("apps", "v1", "deployments")
            .unwrap();
        let mut d = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "nginx", "ports": [{"containerPort": 80}]},
            {"name": "b", "image": "nginx:1.27"}
        ]}}}});
        apply_defaults(&rt, &mut d);
        let once = d.clone();
        apply_defaults(&rt, &mut d);
        assert_eq!(once, d, "defaulting is idempotent");
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        let c = &d["spec"]["template"]["spec"]["containers"];
        assert_eq!(c[0]["imagePullPolicy"], "Always");
        assert_eq!(c[1]["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c[0]["ports"][0]["protocol"], "TCP");
        assert_eq!(d["spec"]["template"]["spec"]["restartPolicy"], "Always");
    }

    #[test]
    fn service_ports_default_target_port() {
        let rt = Registry::builtin().lookup("", "v1", "services").unwrap();
        let mut s = json!({"spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}});
        apply_defaults(&rt, &mut s);
        assert_eq!(s["spec"]["ports"][0]["targetPort"], 80);
        assert_eq!(s["spec"]["externalTrafficPolicy"], "Cluster");
    }
}
