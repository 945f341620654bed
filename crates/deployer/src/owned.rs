//! Fields another actor owns stay theirs: a HorizontalPodAutoscaler's `spec.replicas`, and
//! the fields `[env.NAME.deploy] ignore_fields` names (Argo CD's `ignoreDifferences`).
//!
//! When the object already exists, apply sends the manifest without those fields, so ferry
//! never conflicts with the autoscaler or resets what it scaled to. One case needs care: a
//! field ferry itself applied before (an HPA newly added to the release, say). Server-side apply
//! deletes a field its only owner stops sending, and a Deployment without `replicas` defaults
//! to 1. So while ferry still owns the field, apply sends the live value instead: nothing
//! changes, and once the autoscaler (or `kubectl scale`) writes the field, it is theirs and
//! ferry stops sending it. A new object is created with every field of its manifest.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::manifest::ObjectKey;
use crate::plan::{FIELD_MANAGER, Target};

/// One `ignore_fields` entry: JSON pointers left to others on the objects it matches.
///
/// ```toml
/// [[env.prod.deploy.ignore_fields]]
/// kind = "Deployment"          # required
/// name = "web"                 # optional: every object of the kind when absent
/// namespace = "shop"           # optional
/// group = "apps"               # optional
/// pointers = ["/spec/replicas", "/spec/template/metadata/annotations/restartedAt"]
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IgnoreFields {
    /// The kind of the objects.
    pub kind: String,
    /// The object's name (all of the kind when absent).
    #[serde(default)]
    pub name: Option<String>,
    /// The object's namespace (any when absent).
    #[serde(default)]
    pub namespace: Option<String>,
    /// The API group (any when absent).
    #[serde(default)]
    pub group: Option<String>,
    /// RFC 6901 JSON pointers (`/spec/replicas`).
    pub pointers: Vec<String>,
}

impl IgnoreFields {
    fn matches(&self, key: &ObjectKey) -> bool {
        self.kind == key.kind
            && self.name.as_ref().is_none_or(|n| *n == key.name)
            && self
                .namespace
                .as_ref()
                .is_none_or(|n| key.namespace.as_deref() == Some(n.as_str()))
            && self.group.as_ref().is_none_or(|g| *g == key.group)
    }

    /// Why a pointer is not one (None: it is).
    pub fn pointer_problem(pointer: &str) -> Option<String> {
        if pointer.is_empty() || !pointer.starts_with('/') {
            return Some(format!(
                "`{pointer}` is not a JSON pointer: write it as `/spec/replicas`"
            ));
        }
        if pointer.starts_with("/metadata/name")
            || pointer.starts_with("/metadata/namespace")
            || pointer == "/apiVersion"
            || pointer == "/kind"
        {
            return Some(format!(
                "`{pointer}` identifies the object: it cannot be left to others"
            ));
        }
        None
    }
}

/// The fields of a release's objects that are left to other actors.
#[derive(Debug, Clone, Default)]
pub struct OwnedFields {
    /// Workloads an HPA scales, with the HPA (`namespace/name`).
    pub autoscaled: BTreeMap<ObjectKey, String>,
    /// `ignore_fields`.
    pub ignore: Vec<IgnoreFields>,
}

/// The workload an HPA object scales, as a key (`scaleTargetRef`, in the HPA's namespace).
pub fn hpa_target(hpa: &Value) -> Option<ObjectKey> {
    let r = hpa.pointer("/spec/scaleTargetRef")?;
    let kind = r.get("kind")?.as_str()?;
    let name = r.get("name")?.as_str()?;
    let api_version = r.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    Some(ObjectKey {
        group: crate::manifest::group_of(api_version).to_owned(),
        kind: kind.to_owned(),
        namespace: hpa
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(str::to_owned),
        name: name.to_owned(),
    })
}

const REPLICAS: &str = "/spec/replicas";

impl OwnedFields {
    /// The pointers left to others on `key`, each with who they are left to.
    fn pointers(&self, key: &ObjectKey) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(hpa) = self.autoscaled.get(key) {
            out.push((
                REPLICAS.to_owned(),
                format!("HorizontalPodAutoscaler {hpa}"),
            ));
        }
        for rule in self.ignore.iter().filter(|r| r.matches(key)) {
            for p in &rule.pointers {
                if !out.iter().any(|(q, _)| q == p) {
                    out.push((p.clone(), "ignore_fields".to_owned()));
                }
            }
        }
        out
    }

    /// What apply sends for `target` given the live object, and a note per field left alone.
    pub fn apply_form(&self, target: &Target, live: Option<&Value>) -> (Value, Vec<String>) {
        let mut form = target.manifest.object.clone();
        let Some(live) = live else {
            return (form, Vec::new());
        };
        let mut notes = Vec::new();
        for (pointer, owner) in self.pointers(&target.key()) {
            if form.pointer(&pointer).is_none() {
                continue;
            }
            let shown = pointer.trim_start_matches('/').replace('/', ".");
            match live.pointer(&pointer) {
                Some(now) if applied_by_ferry(live, &pointer) => {
                    notes.push(format!(
                        "{shown} is left to {owner} (kept at {})",
                        short(now)
                    ));
                    set(&mut form, &pointer, now.clone());
                }
                now => {
                    notes.push(match now {
                        Some(v) => format!("{shown} is left to {owner} ({} now)", short(v)),
                        None => format!("{shown} is left to {owner}"),
                    });
                    remove(&mut form, &pointer);
                }
            }
        }
        (form, notes)
    }
}

fn short(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s
    }
}

fn segments(pointer: &str) -> Vec<String> {
    pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect()
}

/// Whether ferry's apply owns the field at `pointer` (its managedFields entry lists it). A
/// pointer through a list is taken as owned: the live value is then sent, which never changes
/// anything.
fn applied_by_ferry(live: &Value, pointer: &str) -> bool {
    let Some(entries) = live
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
    else {
        return false;
    };
    entries
        .iter()
        .filter(|e| {
            e.get("manager").and_then(Value::as_str) == Some(FIELD_MANAGER)
                && e.get("operation").and_then(Value::as_str) == Some("Apply")
        })
        .any(|e| {
            let mut node = e.get("fieldsV1");
            for seg in segments(pointer) {
                if seg.parse::<usize>().is_ok() {
                    return true;
                }
                node = node.and_then(|n| n.get(format!("f:{seg}")));
            }
            node.is_some()
        })
}

fn parent_mut<'a>(v: &'a mut Value, pointer: &str) -> Option<(&'a mut Value, String)> {
    let mut segs = segments(pointer);
    let last = segs.pop()?;
    let mut node = v;
    for s in segs {
        node = match node {
            Value::Object(m) => m.get_mut(&s)?,
            Value::Array(a) => a.get_mut(s.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some((node, last))
}

fn remove(v: &mut Value, pointer: &str) {
    if let Some((parent, last)) = parent_mut(v, pointer) {
        match parent {
            Value::Object(m) => {
                m.remove(&last);
            }
            Value::Array(a) => {
                if let Ok(i) = last.parse::<usize>()
                    && i < a.len()
                {
                    a.remove(i);
                }
            }
            _ => {}
        }
    }
}

fn set(v: &mut Value, pointer: &str, value: Value) {
    if let Some(slot) = v.pointer_mut(pointer) {
        *slot = value;
    } else if let Some((Value::Object(m), last)) = parent_mut(v, pointer) {
        m.insert(last, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Manifest, Source};
    use serde_json::json;

    fn target(object: Value) -> Target {
        Target {
            manifest: Manifest {
                source: Source::document("k8s/app.yaml", 0),
                object,
            },
            resource: kube::discovery::ApiResource {
                group: "apps".into(),
                version: "v1".into(),
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                plural: "deployments".into(),
            },
            namespaced: true,
        }
    }

    fn web() -> Value {
        json!({"apiVersion":"apps/v1","kind":"Deployment",
            "metadata":{"name":"web","namespace":"shop"},
            "spec":{"replicas":2,"template":{"metadata":{"annotations":{"a":"1"}}}}})
    }

    fn autoscaled() -> OwnedFields {
        let mut owned = OwnedFields::default();
        let key = hpa_target(&json!({"metadata":{"namespace":"shop"},
            "spec":{"scaleTargetRef":{"apiVersion":"apps/v1","kind":"Deployment","name":"web"}}}))
        .unwrap();
        owned.autoscaled.insert(key, "shop/web".into());
        owned
    }

    #[test]
    fn a_new_workload_is_created_with_its_replicas() {
        let (form, notes) = autoscaled().apply_form(&target(web()), None);
        assert_eq!(form["spec"]["replicas"], 2);
        assert!(notes.is_empty());
    }

    #[test]
    fn replicas_someone_else_scaled_are_not_sent() {
        let live = json!({"spec":{"replicas":5},"metadata":{"managedFields":[
            {"manager":"ferry","operation":"Apply","fieldsV1":{"f:spec":{"f:template":{}}}},
            {"manager":"horizontal-pod-autoscaler","operation":"Update","fieldsV1":{"f:spec":{"f:replicas":{}}}}]}});
        let (form, notes) = autoscaled().apply_form(&target(web()), Some(&live));
        assert!(form["spec"].get("replicas").is_none(), "{form}");
        assert_eq!(
            notes,
            ["spec.replicas is left to HorizontalPodAutoscaler shop/web (5 now)"]
        );
    }

    #[test]
    fn replicas_ferry_still_owns_are_sent_as_they_are_live() {
        let live = json!({"spec":{"replicas":3},"metadata":{"managedFields":[
            {"manager":"ferry","operation":"Apply","fieldsV1":{"f:spec":{"f:replicas":{}}}}]}});
        let (form, _) = autoscaled().apply_form(&target(web()), Some(&live));
        assert_eq!(form["spec"]["replicas"], 3);
    }

    #[test]
    fn ignore_fields_match_by_kind_name_and_namespace() {
        let owned = OwnedFields {
            autoscaled: BTreeMap::new(),
            ignore: vec![IgnoreFields {
                kind: "Deployment".into(),
                name: Some("web".into()),
                namespace: None,
                group: None,
                pointers: vec!["/spec/template/metadata/annotations/a".into()],
            }],
        };
        let live = json!({"spec":{"template":{"metadata":{"annotations":{"a":"9"}}}}});
        let (form, notes) = owned.apply_form(&target(web()), Some(&live));
        assert!(
            form.pointer("/spec/template/metadata/annotations/a")
                .is_none()
        );
        assert_eq!(form["spec"]["replicas"], 2);
        assert_eq!(notes.len(), 1, "{notes:?}");
        let mut other = web();
        other["metadata"]["name"] = json!("api");
        let (form, notes) = owned.apply_form(&target(other), Some(&live));
        assert!(
            form.pointer("/spec/template/metadata/annotations/a")
                .is_some()
        );
        assert!(notes.is_empty());
    }

    #[test]
    fn pointers_that_name_the_object_are_refused() {
        assert!(IgnoreFields::pointer_problem("/spec/replicas").is_none());
        assert!(IgnoreFields::pointer_problem("spec/replicas").is_some());
        assert!(IgnoreFields::pointer_problem("/metadata/name").is_some());
    }
}
