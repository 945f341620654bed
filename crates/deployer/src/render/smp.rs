//! Strategic merge patch, the subset kustomize users rely on: maps merge recursively, `null`
//! deletes a key, lists of known object types merge by their Kubernetes merge key
//! (containers by name, ports by containerPort/port, env by name, ...), other lists are
//! replaced, and the `$patch: delete|replace` directives work on maps and list elements.
//!
//! Written here because no maintained Rust crate implements strategic merge (json-patch covers
//! RFC 6902 and RFC 7386 merge patch only); the merge keys are those of the Kubernetes API
//! types (`patchMergeKey` in k8s.io/api).

use serde_json::{Map, Value};

/// The merge key of a list field, by the field's name and the kind of the patched object.
fn merge_key(field: &str, kind: &str, parent: &str) -> Option<&'static str> {
    Some(match field {
        "containers" | "initContainers" | "ephemeralContainers" => "name",
        "env" | "volumes" | "imagePullSecrets" | "resourceClaims" => "name",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "hostAliases" => "ip",
        "conditions" => "type",
        "topologySpreadConstraints" => "topologyKey",
        // Service ports merge by port; container ports by containerPort.
        "ports" if kind == "Service" && parent == "spec" => "port",
        "ports"
            if matches!(
                parent,
                "containers" | "initContainers" | "ephemeralContainers"
            ) =>
        {
            "containerPort"
        }
        _ => return None,
    })
}

/// Applies strategic-merge `patch` to `target` (an object of kind `kind`).
pub fn strategic_merge(target: &mut Value, patch: &Value, kind: &str) {
    merge_value(target, patch, kind, "");
}

fn directive(v: &Value) -> Option<&str> {
    v.get("$patch").and_then(Value::as_str)
}

fn is_directive_key(k: &str) -> bool {
    k.starts_with('$')
}

/// A patch value with its directives removed (for inserting new content).
fn clean(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !is_directive_key(k))
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), clean(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(
            a.iter()
                .filter(|e| directive(e) != Some("delete"))
                .map(clean)
                .collect(),
        ),
        other => other.clone(),
    }
}

fn merge_value(target: &mut Value, patch: &Value, kind: &str, field: &str) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            if directive(patch) == Some("replace") {
                *t = match clean(patch) {
                    Value::Object(m) => m,
                    _ => Map::new(),
                };
                return;
            }
            merge_map(t, p, kind, field);
        }
        (t, p) => *t = clean(p),
    }
}

fn merge_map(t: &mut Map<String, Value>, p: &Map<String, Value>, kind: &str, parent: &str) {
    for (k, pv) in p {
        if is_directive_key(k) {
            continue;
        }
        if pv.is_null() {
            t.remove(k);
            continue;
        }
        if directive(pv) == Some("delete") {
            t.remove(k);
            continue;
        }
        match t.get_mut(k) {
            Some(tv) => match (tv, pv) {
                (Value::Array(ta), Value::Array(pa)) => match merge_key(k, kind, parent) {
                    Some(key) => merge_list(ta, pa, key, kind, k),
                    None => *ta = pa.iter().map(clean).collect(),
                },
                (tv @ Value::Object(_), Value::Object(_)) => merge_value(tv, pv, kind, k),
                (tv, pv) => *tv = clean(pv),
            },
            None => {
                t.insert(k.clone(), clean(pv));
            }
        }
    }
}

/// Merges a keyed list the way kustomize (kyaml) does: the patch's elements first, in the
/// patch's order (merged with the matching target element when there is one), then the target's
/// remaining elements in their order.
fn merge_list(target: &mut Vec<Value>, patch: &[Value], key: &str, kind: &str, field: &str) {
    if patch.iter().any(|e| directive(e) == Some("replace")) {
        *target = patch
            .iter()
            .filter(|e| directive(e) != Some("replace"))
            .map(clean)
            .collect();
        return;
    }
    let mut rest: Vec<Option<Value>> = target.drain(..).map(Some).collect();
    let mut out = Vec::new();
    for pe in patch {
        let Some(pk) = pe.get(key) else {
            out.push(clean(pe));
            continue;
        };
        let pos = rest
            .iter()
            .position(|te| te.as_ref().and_then(|t| t.get(key)) == Some(pk));
        match (pos, directive(pe)) {
            (Some(i), Some("delete")) => rest[i] = None,
            (None, Some("delete")) => {}
            (Some(i), _) => {
                if let Some(mut te) = rest[i].take() {
                    merge_value(&mut te, pe, kind, field);
                    out.push(te);
                }
            }
            (None, _) => out.push(clean(pe)),
        }
    }
    out.extend(rest.into_iter().flatten());
    *target = out;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn containers_merge_by_name_and_null_deletes() {
        let mut d = json!({"spec":{"template":{"spec":{"containers":[
            {"name":"app","image":"a:1","env":[{"name":"X","value":"1"}]},
            {"name":"side","image":"s:1"}]}},"replicas":1,"paused":true}});
        let p = json!({"spec":{"replicas":3,"paused":null,"template":{"spec":{"containers":[
            {"name":"app","env":[{"name":"Y","value":"2"}]},
            {"name":"side","$patch":"delete"},
            {"name":"new","image":"n:1"}]}}}});
        strategic_merge(&mut d, &p, "Deployment");
        assert_eq!(
            d,
            json!({"spec":{"replicas":3,"template":{"spec":{"containers":[
                {"name":"app","image":"a:1","env":[{"name":"Y","value":"2"},{"name":"X","value":"1"}]},
                {"name":"new","image":"n:1"}]}}}})
        );
    }

    #[test]
    fn plain_lists_are_replaced_and_maps_can_be() {
        let mut d = json!({"spec":{"args":["a","b"],"selector":{"a":"1","b":"2"}}});
        let p = json!({"spec":{"args":["c"],"selector":{"$patch":"replace","c":"3"}}});
        strategic_merge(&mut d, &p, "Pod");
        assert_eq!(d, json!({"spec":{"args":["c"],"selector":{"c":"3"}}}));
    }

    #[test]
    fn service_ports_merge_by_port() {
        let mut d = json!({"spec":{"ports":[{"port":80,"targetPort":8080}]}});
        let p = json!({"spec":{"ports":[{"port":80,"targetPort":9090},{"port":443}]}});
        strategic_merge(&mut d, &p, "Service");
        assert_eq!(
            d,
            json!({"spec":{"ports":[{"port":80,"targetPort":9090},{"port":443}]}})
        );
    }

    #[test]
    fn patch_elements_come_first_as_in_kustomize() {
        let mut d = json!({"env":[{"name":"A"},{"name":"B","value":"1"},{"name":"C"}]});
        let p = json!({"env":[{"name":"B","value":"2"},{"name":"D"}]});
        strategic_merge(&mut d, &p, "Pod");
        let names: Vec<&str> = d["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["B", "D", "A", "C"]);
    }
}
