//! Plan: what applying the release would change, asked of the server with a server-side
//! dry-run apply of each object and compared with the live object. Nothing is written; the
//! server's own validation (schemas, admission, field conflicts) runs, so its refusals are
//! found before the first write.

use std::collections::BTreeMap;

use futures::{StreamExt as _, TryStreamExt as _};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::discovery::ApiResource;
use serde_json::{Map, Value};
use sha2::Digest as _;

use crate::events::Action;
use crate::manifest::{Manifest, ObjectKey};

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

/// Plans one object: a server-side dry-run apply compared with the live object.
pub async fn plan_one(
    client: &kube::Client,
    target: &Target,
    force: bool,
) -> Result<(Change, Option<Value>), PlanError> {
    let api = target.api(client);
    let name = target.manifest.name();
    let object = target.manifest.describe_short();
    let api_err = |source: kube::Error| match &source {
        kube::Error::Api(s) if matches!(s.code, 400 | 403 | 404 | 409 | 415 | 422) => {
            PlanError::Refused {
                object: object.clone(),
                source_file: target.manifest.source.to_string(),
                message: s.message.clone(),
                code: s.code,
            }
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
    let mut params = PatchParams::apply(FIELD_MANAGER).dry_run();
    params.force = force;
    let planned = api
        .patch(name, &params, &Patch::Apply(&target.manifest.object))
        .await
        .map_err(api_err)?;
    let planned = to_value(&planned);
    let action = match &live {
        None => Action::Create,
        Some(l) if differs(l, &planned) => Action::Update,
        Some(_) => Action::Unchanged,
    };
    let diff = match action {
        Action::Unchanged => String::new(),
        _ => object_diff(live.as_ref(), Some(&planned)),
    };
    Ok((
        Change {
            key: target.key(),
            action,
            diff,
        },
        live,
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
) -> Result<(), PlanError> {
    let object = target.manifest.describe_short();
    let mut value = target.manifest.object.clone();
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("namespace".into(), Value::String(namespace.to_owned()));
    }
    let Ok(dynamic) = serde_json::from_value::<DynamicObject>(value) else {
        return Ok(()); // metadata the offline checks report
    };
    let params = PostParams {
        dry_run: true,
        field_manager: Some(FIELD_MANAGER.to_owned()),
    };
    match api_for(client, &target.resource, Some(namespace))
        .create(&params, &dynamic)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if matches!(s.code, 400 | 415 | 422) => Err(PlanError::Refused {
            object,
            source_file: target.manifest.source.to_string(),
            message: s
                .message
                .replace(&format!("namespace \"{namespace}\""), "its namespace"),
            code: s.code,
        }),
        Err(kube::Error::Api(_)) => Ok(()),
        Err(source) => Err(PlanError::Api { object, source }),
    }
}

/// Plans every target, `parallelism` at a time, in target order.
pub async fn plan_all(
    client: &kube::Client,
    targets: &[Target],
    force: bool,
    parallelism: usize,
) -> Result<Vec<(Change, Option<Value>)>, PlanError> {
    futures::stream::iter(targets.iter().map(|t| plan_one(client, t, force)))
        .buffered(parallelism.max(1))
        .try_collect()
        .await
}

/// Applies one object for real (server-side apply, field manager `ferry`).
pub async fn apply_one(
    client: &kube::Client,
    target: &Target,
    force: bool,
) -> Result<Value, kube::Error> {
    let api = target.api(client);
    let mut params = PatchParams::apply(FIELD_MANAGER);
    params.force = force;
    api.patch(
        target.manifest.name(),
        &params,
        &Patch::Apply(&target.manifest.object),
    )
    .await
    .map(|o| to_value(&o))
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
