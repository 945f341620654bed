//! Plan: what applying the release would change, asked of the server with a server-side
//! dry-run apply of each object and compared with the live object. Nothing is written; the
//! server's own validation (schemas, admission, field conflicts) runs, so its refusals are
//! found before the first write.

use std::collections::BTreeMap;

use kube::api::{Api, DynamicObject};
use kube::discovery::ApiResource;
use serde_json::{Map, Value};
use sha2::Digest as _;

use crate::apply::{ApplyOptions, FieldValidation, dry_run_create, server_side_apply};
use crate::events::Action;
use crate::manifest::{Manifest, ObjectKey};
use crate::owned::OwnedFields;

/// The field manager ferry applies with.
pub const FIELD_MANAGER: &str = "ferry";

/// A manifest with the resource it is served by.
#[derive(Debug, Clone)]
pub struct Target {
    /// The manifest (namespace filled in).
    pub manifest: Manifest,
    /// The API resource.
    pub resource: ApiResource,
    /// Whether it is namespaced.
    pub namespaced: bool,
}

impl Target {
    /// The object's key.
    pub fn key(&self) -> ObjectKey {
        self.manifest.key().unwrap_or_else(|| ObjectKey {
            group: self.resource.group.clone(),
            kind: self.resource.kind.clone(),
            namespace: None,
            name: String::new(),
        })
    }

    /// An API handle for this object's resource and namespace.
    pub fn api(&self, client: &kube::Client) -> Api<DynamicObject> {
        api_for(
            client,
            &self.resource,
            self.manifest.namespace().filter(|_| self.namespaced),
        )
    }
}

/// An API handle for a resource, namespaced or not.
pub fn api_for(client: &kube::Client, ar: &ApiResource, ns: Option<&str>) -> Api<DynamicObject> {
    match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, ar),
        None => Api::all_with(client.clone(), ar),
    }
}

/// One planned change.
#[derive(Debug, Clone)]
pub struct Change {
    /// The object.
    pub key: ObjectKey,
    /// What applying would do.
    pub action: Action,
    /// A unified diff of the object (live -> planned), Secret values masked.
    pub diff: String,
    /// What the server warned of (deprecations, Pod Security, unknown fields under `Warn`)
    pub warnings: Vec<String>,
    /// Fields left to others (an HPA's replicas, `ignore_fields`), said once in the plan.
    pub notes: Vec<String>,
}

/// Why planning an object failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The server refused the object (invalid, conflict): a problem with the input.
    #[error("{object} ({source_file}): the server refuses it: {message}")]
    Refused {
        /// The object.
        object: String,
        /// Where it came from.
        source_file: String,
        /// The server's message.
        message: String,
        /// The HTTP status.
        code: u16,
    },
    /// ferry will not apply it as it is (a Secret value someone else changed): a problem of
    /// the input, said in ferry's words.
    #[error("{object} ({source_file}): {message}")]
    Kept {
        /// The object.
        object: String,
        /// Where it came from.
        source_file: String,
        /// Why.
        message: String,
    },
    /// The server could not be asked.
    #[error("cannot plan {object}")]
    Api {
        /// The object.
        object: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
}

/// Fields the server sets and ferry never compares.
fn strip_server_fields(v: &mut Value) {
    if let Some(Value::Object(meta)) = v.get_mut("metadata") {
        for k in [
            "resourceVersion",
            "managedFields",
            "generation",
            "creationTimestamp",
            "uid",
            "selfLink",
        ] {
            meta.remove(k);
        }
        if meta
            .get("annotations")
            .is_some_and(|a| a.as_object().is_some_and(Map::is_empty))
        {
            meta.remove("annotations");
        }
    }
    if let Value::Object(m) = v {
        m.remove("status");
    }
}

/// A value's fingerprint under a key drawn once per process: equal values look equal within
/// one run (a diff shows which keys change), but a fingerprint in a CI log cannot be checked
/// against guessed passwords, as a plain SHA-256 could be.
fn fingerprint(s: &str) -> String {
    use std::hash::{BuildHasher as _, Hasher as _};
    static KEY: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    let mut h = KEY
        .get_or_init(std::collections::hash_map::RandomState::new)
        .build_hasher();
    h.write(s.as_bytes());
    format!("{:016x}", h.finish())
}

/// Secret values replaced by their length and a keyed fingerprint, so diffs show which keys
/// change but never what they hold.
pub fn mask_secret(v: &mut Value) {
    if v.get("kind").and_then(Value::as_str) != Some("Secret") {
        return;
    }
    for field in ["data", "stringData"] {
        if let Some(Value::Object(map)) = v.get_mut(field) {
            for val in map.values_mut() {
                let s = val.as_str().unwrap_or("");
                *val = Value::String(format!(
                    "(hidden: {} bytes, fingerprint {})",
                    s.len(),
                    &fingerprint(s)[..12]
                ));
            }
        }
    }
}

fn to_yaml(v: &Value) -> String {
    serde_norway::to_string(v).unwrap_or_default()
}

/// A unified diff between two objects (either may be absent), with Secret values masked.
pub fn object_diff(before: Option<&Value>, after: Option<&Value>) -> String {
    let prep = |v: Option<&Value>| {
        v.map(|v| {
            let mut v = v.clone();
            strip_server_fields(&mut v);
            mask_secret(&mut v);
            to_yaml(&v)
        })
        .unwrap_or_default()
    };
    let (a, b) = (prep(before), prep(after));
    similar::TextDiff::from_lines(&a, &b)
        .unified_diff()
        .context_radius(3)
        .header("live", "planned")
        .to_string()
}

/// Whether the planned object differs from the live one in anything ferry would change.
pub fn differs(live: &Value, planned: &Value) -> bool {
    let (mut a, mut b) = (live.clone(), planned.clone());
    strip_server_fields(&mut a);
    strip_server_fields(&mut b);
    a != b
}

fn to_value(obj: &DynamicObject) -> Value {
    serde_json::to_value(obj).unwrap_or(Value::Null)
}

/// What planning needs besides the object: how to apply, and which fields are not ferry's.
#[derive(Debug, Clone, Default)]
pub struct PlanContext {
    /// Take fields other managers own.
    pub force: bool,
    /// Unknown and duplicate fields.
    pub validation: FieldValidation,
    /// Fields left to other actors (HPAs' replicas, `ignore_fields`).
    pub owned: OwnedFields,
    /// What ferry last applied of each object (the current release's record), to tell a
    /// Secret value someone else changed.
    pub last_applied: BTreeMap<ObjectKey, Value>,
    /// The owner label's value for this app and environment (`app.env`): an existing object
    /// without it is someone else's.
    pub owner: String,
    /// Take over every existing object that is not ferry's (`--adopt`).
    pub adopt_all: bool,
    /// Take over these (`Kind/name` or `Kind/namespace/name`, `adopt = [...]`).
    pub adopt: Vec<String>,
    /// Objects a ferry release adopted earlier (still the user's choice).
    pub adopted: Vec<ObjectKey>,
}

impl PlanContext {
    fn may_adopt(&self, key: &ObjectKey) -> bool {
        self.adopt_all
            || self.adopted.contains(key)
            || self.adopt.iter().any(|a| {
                *a == format!("{}/{}", key.kind, key.name)
                    || key
                        .namespace
                        .as_ref()
                        .is_some_and(|ns| *a == format!("{}/{ns}/{}", key.kind, key.name))
            })
    }
}

/// The field managers that wrote an object, for naming who owns it.
pub fn managers(live: &Value) -> Vec<String> {
    let mut out: Vec<String> = live
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("manager").and_then(Value::as_str).map(str::to_owned))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// One object's plan: the change, the live object, and the form apply sends.
#[derive(Debug, Clone)]
pub struct Planned {
    /// What applying would do.
    pub change: Change,
    /// The live object, when it exists.
    pub live: Option<Value>,
    /// What apply sends: the manifest without the fields other actors own.
    pub object: Value,
    /// It existed without ferry's label and is taken over on purpose.
    pub adopted: bool,
}

/// Whether a 422 says an immutable field would change (kube-apiserver's wordings).
pub fn is_immutable_refusal(message: &str) -> bool {
    [
        "field is immutable",
        "may not change once set",
        "updates to statefulset spec for fields other than",
        "spec is immutable after creation",
    ]
    .iter()
    .any(|m| message.contains(m))
}

/// Plans one object: a server-side dry-run apply (of the form apply would send) compared with
/// the live object. Jobs whose template changed, and objects annotated `ferry.dev/replace`
/// whose immutable fields changed, are planned as [`Action::Replace`].
pub async fn plan_one(
    client: &kube::Client,
    target: &Target,
    ctx: &PlanContext,
) -> Result<Planned, PlanError> {
    let api = target.api(client);
    let name = target.manifest.name();
    let object = target.manifest.describe_short();
    let refused = |message: String, code: u16| PlanError::Refused {
        object: object.clone(),
        source_file: target.manifest.source.to_string(),
        message,
        code,
    };
    let api_err = |source: kube::Error| match &source {
        kube::Error::Api(s) if matches!(s.code, 400 | 403 | 404 | 409 | 415 | 422) => {
            refused(s.message.clone(), s.code)
        }
        _ => PlanError::Api {
            object: object.clone(),
            source,
        },
    };
    let live = api
        .get_opt(name)
        .await
        .map_err(api_err)?
        .map(|o| to_value(&o));
    let (mut form, mut notes) = ctx.owned.apply_form(target, live.as_ref());
    let mut adopted = false;
    if let Some(live) = &live {
        let label = crate::manifest::label(live, crate::engine::OWNER_LABEL);
        if label != Some(ctx.owner.as_str()) {
            let key = target.key();
            let who = match managers(live).as_slice() {
                [] => "no field manager".to_owned(),
                m => format!("written by {}", m.join(", ")),
            };
            let whose = match label {
                Some(other) => format!("it belongs to ferry release {other}"),
                None => format!("it has no {} label", crate::engine::OWNER_LABEL),
            };
            if target.resource.kind == "Namespace" {
                // A namespace is often shared (made by a platform team, another app): ferry
                // applies its fields but does not claim it, so it is never pruned.
                if let Some(labels) = form
                    .pointer_mut("/metadata/labels")
                    .and_then(Value::as_object_mut)
                {
                    labels.remove(crate::engine::OWNER_LABEL);
                }
            } else if ctx.may_adopt(&key) {
                adopted = true;
                notes.push(format!(
                    "adopted: it existed and was not ferry's ({whose}; {who}); it is this release's now and is never pruned"
                ));
            } else {
                return Err(PlanError::Kept {
                    object,
                    source_file: target.manifest.source.to_string(),
                    message: format!(
                        "it already exists in the cluster and is not this app's ({whose}; {who}); ferry does not take over objects by accident: deploy with --adopt, or list it in [env.NAME.deploy] adopt = [\"{}/{}\"]",
                        key.kind, key.name
                    ),
                });
            }
        }
    }
    if !ctx.force
        && let Some(live) = &live
        && let Some(last) = ctx.last_applied.get(&target.key())
        && let Some(message) = secret_changed_elsewhere(&target.manifest.object, live, last)
    {
        return Err(PlanError::Kept {
            object,
            source_file: target.manifest.source.to_string(),
            message,
        });
    }
    let replace_wanted = target.resource.kind == "Job" || replace_annotated(target);
    let every_release = target.resource.kind == "Job"
        && crate::manifest::annotation(&target.manifest.object, RUN_ANNOTATION)
            == Some(RUN_EVERY_RELEASE);
    let opts = ApplyOptions {
        dry_run: true,
        force: ctx.force,
        validation: ctx.validation,
    };
    let mut warnings = Vec::new();
    let (action, planned) = match server_side_apply(client, target, &form, opts).await {
        Ok(applied) => {
            warnings.extend(applied.warnings);
            let planned = applied.object;
            let action = match &live {
                None => Action::Create,
                Some(_) if every_release => Action::Replace,
                Some(l) if differs(l, &planned) => Action::Update,
                Some(_) => Action::Unchanged,
            };
            (action, planned)
        }
        Err(kube::Error::Api(s))
            if s.code == 422 && live.is_some() && is_immutable_refusal(&s.message) =>
        {
            if !replace_wanted {
                return Err(refused(
                    format!(
                        "{} (the field cannot change in place; to delete and recreate {object} instead, annotate it ferry.dev/replace: \"true\")",
                        s.message
                    ),
                    422,
                ));
            }
            (Action::Replace, form.clone())
        }
        Err(e) => return Err(api_err(e)),
    };
    let diff = match action {
        Action::Unchanged => String::new(),
        _ => object_diff(live.as_ref(), Some(&planned)),
    };
    Ok(Planned {
        change: Change {
            key: target.key(),
            action,
            diff,
            warnings,
            notes,
        },
        live,
        object: form,
        adopted,
    })
}

/// The annotation that lets ferry delete and recreate an object whose immutable fields
/// changed.
pub const REPLACE_ANNOTATION: &str = "ferry.dev/replace";
/// The annotation that reruns a Job on every release, changed or not.
pub const RUN_ANNOTATION: &str = "ferry.dev/run";
/// [`RUN_ANNOTATION`]'s value for that.
pub const RUN_EVERY_RELEASE: &str = "every-release";

fn replace_annotated(target: &Target) -> bool {
    crate::manifest::annotation(&target.manifest.object, REPLACE_ANNOTATION) == Some("true")
}

/// The Secret's data as base64 values, `stringData` folded in as the API server folds it.
fn secret_data(object: &Value) -> BTreeMap<String, String> {
    use base64::Engine as _;
    let mut out = BTreeMap::new();
    if let Some(data) = object.get("data").and_then(Value::as_object) {
        for (k, v) in data {
            out.insert(k.clone(), v.as_str().unwrap_or("").to_owned());
        }
    }
    if let Some(data) = object.get("stringData").and_then(Value::as_object) {
        for (k, v) in data {
            let plain = v.as_str().unwrap_or("");
            out.insert(
                k.clone(),
                base64::engine::general_purpose::STANDARD.encode(plain),
            );
        }
    }
    out
}

/// The managers other than ferry that wrote a Secret's values.
fn other_data_managers(live: &Value) -> Vec<String> {
    let mut out: Vec<String> = live
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|e| e.get("manager").and_then(Value::as_str) != Some(FIELD_MANAGER))
        .filter(|e| {
            e.get("fieldsV1")
                .and_then(Value::as_object)
                .is_some_and(|f| f.contains_key("f:data") || f.contains_key("f:stringData"))
        })
        .filter_map(|e| e.get("manager").and_then(Value::as_str).map(str::to_owned))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// When a Secret key's live value is neither what ferry last applied nor what it would apply
/// now, and another manager wrote the Secret's values: the refusal, naming the Secret, the
/// keys and the managers, never a value.
pub fn secret_changed_elsewhere(manifest: &Value, live: &Value, last: &Value) -> Option<String> {
    if manifest.get("kind").and_then(Value::as_str) != Some("Secret") {
        return None;
    }
    let managers = other_data_managers(live);
    if managers.is_empty() {
        return None;
    }
    let (live_data, last_data, wanted) =
        (secret_data(live), secret_data(last), secret_data(manifest));
    let keys: Vec<&String> = wanted
        .iter()
        .filter(|(k, want)| {
            let (Some(now), Some(before)) = (live_data.get(*k), last_data.get(*k)) else {
                return false;
            };
            now != before && now != *want
        })
        .map(|(k, _)| k)
        .collect();
    if keys.is_empty() {
        return None;
    }
    let names = keys
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ");
    Some(format!(
        "the value of {names} was changed in the cluster by {} since ferry last applied it; ferry will not overwrite it (declare the value where ferry can read it, e.g. from a CI secret, or deploy with --force-conflicts to reset it to the manifest's)",
        managers
            .iter()
            .map(|m| format!("`{m}`"))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// The namespace [`probe_elsewhere`] borrows: every cluster has it.
pub const PROBE_NAMESPACE: &str = "default";

/// The server's verdict on an object whose own namespace does not exist yet (the release
/// creates it), so it cannot be dry-run where it belongs: a dry-run create of the same object in
/// `namespace`. Only a refusal of the object itself counts (400: it cannot be decoded, 415,
/// 422: it is invalid): the server decodes and validates before it looks for a same-named
/// object, and any other answer (no such namespace, already exists, forbidden) says nothing
/// about the object, so it is no verdict. Nothing is written.
pub async fn probe_elsewhere(
    client: &kube::Client,
    target: &Target,
    namespace: &str,
    validation: FieldValidation,
) -> Result<Vec<String>, PlanError> {
    let object = target.manifest.describe_short();
    let mut value = target.manifest.object.clone();
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("namespace".into(), Value::String(namespace.to_owned()));
    }
    if serde_json::from_value::<DynamicObject>(value.clone()).is_err() {
        return Ok(Vec::new()); // metadata the offline checks report
    }
    match dry_run_create(
        client,
        &target.resource,
        Some(namespace),
        &value,
        validation,
    )
    .await
    {
        Ok(applied) => Ok(applied.warnings),
        Err(kube::Error::Api(s)) if matches!(s.code, 400 | 415 | 422) => Err(PlanError::Refused {
            object,
            source_file: target.manifest.source.to_string(),
            message: s
                .message
                .replace(&format!("namespace \"{namespace}\""), "its namespace"),
            code: s.code,
        }),
        Err(kube::Error::Api(_)) => Ok(Vec::new()),
        Err(source) => Err(PlanError::Api { object, source }),
    }
}

/// A digest of a release's content (its objects in order), to tell an identical redeploy.
pub fn content_digest(objects: &[Value]) -> String {
    let mut h = sha2::Sha256::new();
    for o in objects {
        h.update(serde_json::to_vec(o).unwrap_or_default());
        h.update(b"\n");
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// Counts of a plan's actions.
pub fn summary(changes: &[Change]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for c in changes {
        *out.entry(c.action.to_string()).or_insert(0) += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn server_fields_do_not_count_as_changes() {
        let live = json!({"kind":"ConfigMap","metadata":{"name":"a","resourceVersion":"5","uid":"u",
            "managedFields":[{"manager":"ferry"}]},"data":{"k":"v"}});
        let same = json!({"kind":"ConfigMap","metadata":{"name":"a","resourceVersion":"5"},"data":{"k":"v"}});
        let changed = json!({"kind":"ConfigMap","metadata":{"name":"a"},"data":{"k":"w"}});
        assert!(!differs(&live, &same));
        assert!(differs(&live, &changed));
    }

    #[test]
    fn secret_values_never_reach_a_diff() {
        let before =
            json!({"kind":"Secret","metadata":{"name":"s"},"data":{"password":"aHVudGVyMg=="}});
        let after =
            json!({"kind":"Secret","metadata":{"name":"s"},"data":{"password":"c3dvcmRmaXNo"}});
        let d = object_diff(Some(&before), Some(&after));
        assert!(d.contains("password"), "{d}");
        assert!(
            !d.contains("aHVudGVyMg") && !d.contains("c3dvcmRmaXNo"),
            "{d}"
        );
        // Not the value's plain SHA-256 either (that could be checked against guesses).
        for v in ["aHVudGVyMg==", "c3dvcmRmaXNo"] {
            let plain = hex::encode(sha2::Sha256::digest(v.as_bytes()));
            assert!(!d.contains(&plain[..12]), "{d}");
        }
        // Within a run, an unchanged value looks the same on both sides.
        let same = object_diff(Some(&before), Some(&before));
        assert!(same.is_empty(), "{same}");
        let mut masked = before.clone();
        mask_secret(&mut masked);
        let mut again = before.clone();
        mask_secret(&mut again);
        assert_eq!(masked, again);
        assert_ne!(masked, {
            let mut m = after.clone();
            mask_secret(&mut m);
            m
        });
    }
}
