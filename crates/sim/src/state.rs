//! The cluster state and the write pipeline every change goes through, from clients and
//! controllers alike: decode, default, admit, validate, track managed fields, bump generation,
//! store (or not, when nothing changed or on a dry run).

use std::sync::Arc;

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use crate::apply::{ApplyRequest, server_side_apply};
use crate::body::Duplicates;
use crate::clock::format_time;
use crate::config::SimConfig;
use crate::fieldset::{ManagedEntry, Walker, record_update};
use crate::resources::{
    Builtin, GroupResource, Registry, ResourceType, split_api_version, types_from_crd,
};
use crate::schema::Shape;
use crate::selector::LabelSelector;
use crate::status::{ApiError, Named};
use crate::store::{Obj, SERVER_METADATA, Store, meta_str};
use crate::validate::{self, FieldValidation};
use crate::{admission, defaults, smp};

/// Everything behind the lock.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) store: Store,
    pub(crate) registry: Registry,
    pub(crate) rng: fastrand::Rng,
    pub(crate) config: Arc<SimConfig>,
    /// Virtual time of the operation in progress; callers set it when they take the lock.
    pub(crate) now: Timestamp,
    /// The cluster CA (PEM), published in every namespace's `kube-root-ca.crt`.
    pub(crate) ca_pem: String,
    /// LoadBalancer Services waiting for an address, by uid: since when.
    pub(crate) lb_pending: std::collections::HashMap<String, Timestamp>,
    /// LoadBalancer Services whose "Ensuring load balancer" event was sent, by uid.
    pub(crate) lb_announced: std::collections::HashSet<String>,
    /// Events by (namespace, object, reason, component, message), to count repeats.
    pub(crate) event_index: std::collections::HashMap<String, String>,
    /// Writes made by controllers, by resource (`deployments.apps`).
    pub(crate) controller_writes: std::collections::BTreeMap<String, u64>,
}

/// Who is writing and how.
#[derive(Debug, Clone)]
pub(crate) struct WriteOpts {
    pub(crate) dry_run: bool,
    pub(crate) manager: String,
    pub(crate) validation: FieldValidation,
    /// `""`, `"status"` or `"scale"`.
    pub(crate) subresource: String,
    /// Duplicate keys in a create or update body (patch bodies are parsed in `patch`).
    pub(crate) duplicates: Duplicates,
}

impl WriteOpts {
    pub(crate) fn controller(manager: &str) -> Self {
        WriteOpts {
            dry_run: false,
            manager: manager.to_owned(),
            validation: FieldValidation::Ignore,
            subresource: String::new(),
            duplicates: Duplicates::None,
        }
    }

    pub(crate) fn status(mut self) -> Self {
        self.subresource = "status".to_owned();
        self
    }
}

/// The result of a write.
#[derive(Debug)]
pub(crate) struct Written {
    pub(crate) object: Obj,
    /// Stored state changed.
    pub(crate) wrote: bool,
    pub(crate) created: bool,
    pub(crate) warnings: Vec<String>,
}

/// Patch body formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatchType {
    Json,
    Merge,
    Strategic,
    Apply,
}

impl PatchType {
    pub(crate) fn from_content_type(content_type: &str) -> Option<PatchType> {
        let base = content_type.split(';').next().unwrap_or("").trim();
        match base {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => {
                Some(PatchType::Apply)
            }
            _ => None,
        }
    }
}

/// How dependents are deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Propagation {
    Background,
    Foreground,
    Orphan,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct DeleteOpts {
    pub(crate) dry_run: bool,
    pub(crate) propagation: Option<Propagation>,
    pub(crate) uid: Option<String>,
    pub(crate) resource_version: Option<String>,
    /// `gracePeriodSeconds` (pods only: 0 deletes at once).
    pub(crate) grace_period: Option<i64>,
}

/// The result of a delete: the object's last state, and whether it is gone (or only marked
/// for deletion, waiting on finalizers).
#[derive(Debug)]
pub(crate) struct Deleted {
    pub(crate) object: Obj,
    pub(crate) gone: bool,
    pub(crate) wrote: bool,
}

const NAME_CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Parses a request body: JSON, or YAML (which kubectl and kube-rs never send, but other clients
/// do). Duplicate keys keep the last value; [`crate::body::parse`] also names them.
pub(crate) fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    crate::body::parse(body).map(|b| b.value)
}

/// Drops `null` fields: the API server decodes them as unset, so `creationTimestamp: null` in a
/// template (as kubectl's rollback patch sends) is the same template as one without it.
pub(crate) fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            for v in map.values_mut() {
                strip_nulls(v);
            }
        }
        Value::Array(items) => {
            for v in items {
                strip_nulls(v);
            }
        }
        _ => {}
    }
}

fn spec_part(object: &Value) -> Value {
    let mut rest = object.clone();
    if let Some(map) = rest.as_object_mut() {
        map.remove("metadata");
        map.remove("status");
    }
    rest
}

fn without_rv(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(meta) = object["metadata"].as_object_mut() {
        meta.remove("resourceVersion");
    }
    object
}

fn without_managed_fields(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(meta) = object["metadata"].as_object_mut() {
        meta.remove("managedFields");
    }
    object
}

impl State {
    pub(crate) fn new(config: Arc<SimConfig>, now: Timestamp) -> Self {
        let rng = match config.seed {
            Some(seed) => fastrand::Rng::with_seed(seed),
            None => fastrand::Rng::new(),
        };
        State {
            store: Store::new(config.watch_history),
            registry: Registry::builtin(),
            rng,
            config,
            now,
            ca_pem: String::new(),
            lb_pending: std::collections::HashMap::new(),
            lb_announced: std::collections::HashSet::new(),
            controller_writes: std::collections::BTreeMap::new(),
            event_index: std::collections::HashMap::new(),
        }
    }

    pub(crate) fn now_text(&self) -> String {
        format_time(self.now)
    }

    pub(crate) fn random_suffix(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| NAME_CHARS[self.rng.usize(..NAME_CHARS.len())] as char)
            .collect()
    }

    pub(crate) fn new_uid(&mut self) -> String {
        let mut bytes = [0u8; 16];
        self.rng.fill(&mut bytes);
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .to_string()
    }

    pub(crate) fn builtin(&self, builtin: Builtin) -> Arc<ResourceType> {
        self.registry.builtin_type(builtin)
    }

    fn shape<'a>(rt: &'a ResourceType) -> Shape<'a> {
        Shape {
            kind: &rt.kind,
            crd_schema: rt.crd.as_ref().and_then(|c| c.schema.as_ref()),
        }
    }

    /// The object as served at `rt`'s version (custom resources are stored at their storage
    /// version and served at any; conversion is `None`: only `apiVersion` changes).
    pub(crate) fn served(rt: &ResourceType, object: &Obj) -> Obj {
        let api_version = rt.api_version();
        if object["apiVersion"].as_str() == Some(api_version.as_str()) {
            return Arc::clone(object);
        }
        let mut converted = (**object).clone();
        converted["apiVersion"] = Value::String(api_version);
        Arc::new(converted)
    }

    fn to_storage(&self, rt: &ResourceType, object: &mut Value) {
        if let Some(crd) = &rt.crd
            && crd.storage_version != rt.version
        {
            object["apiVersion"] = Value::String(format!("{}/{}", rt.group, crd.storage_version));
        }
    }

    pub(crate) fn get(
        &self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
    ) -> Result<Obj, ApiError> {
        self.store
            .get(&rt.key(), namespace, name)
            .map(|o| Self::served(rt, &o))
            .ok_or_else(|| ApiError::not_found(rt.named(name)))
    }

    fn namespace_check(
        &self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
    ) -> Result<(), ApiError> {
        if !rt.namespaced {
            return Ok(());
        }
        let ns_type = self.builtin(Builtin::Namespace);
        match self.store.get(&ns_type.key(), "", namespace) {
            None => Err(ApiError::not_found(Named {
                group: "",
                resource: "namespaces",
                kind: "Namespace",
                name: namespace,
            })),
            Some(ns) if !ns["metadata"]["deletionTimestamp"].is_null() => Err(ApiError::forbidden(
                rt.named(name),
                &format!(
                    "unable to create new content in namespace {namespace} because it is being terminated"
                ),
            )),
            Some(_) => Ok(()),
        }
    }

    /// Checks `apiVersion`, `kind`, `metadata`, name and namespace of a request body against
    /// the URL.
    fn check_identity(
        rt: &ResourceType,
        object: &mut Value,
        namespace: &str,
        name: Option<&str>,
    ) -> Result<(), ApiError> {
        if !object.is_object() {
            return Err(ApiError::bad_request(format!(
                "the body of the request must be a {} object, not {}",
                rt.kind,
                match object {
                    Value::Array(_) => "an array",
                    Value::String(_) => "a string",
                    Value::Number(_) => "a number",
                    Value::Bool(_) => "a boolean",
                    _ => "null",
                }
            )));
        }
        let kind = object["kind"].as_str().unwrap_or("").to_owned();
        let api_version = object["apiVersion"].as_str().unwrap_or("").to_owned();
        if kind.is_empty() {
            return Err(ApiError::bad_request(format!(
                "Object 'Kind' is missing in the request body (expected {:?})",
                rt.kind
            )));
        }
        if api_version.is_empty() {
            return Err(ApiError::bad_request(format!(
                "Object 'apiVersion' is missing in the request body (expected {:?})",
                rt.api_version()
            )));
        }
        let (group, _) = split_api_version(&api_version);
        if api_version != rt.api_version() {
            let expected = rt.api_version();
            return Err(ApiError::bad_request(if group == rt.group {
                format!(
                    "the API version in the data ({api_version}) does not match the expected API version ({expected})"
                )
            } else {
                format!(
                    "{kind} in version {api_version:?} cannot be handled as a {}: the API version in the data ({api_version}) does not match the expected API version ({expected})",
                    rt.kind
                )
            }));
        }
        if kind != rt.kind {
            return Err(ApiError::bad_request(format!(
                "{kind} in version {:?} cannot be handled as a {}: the kind in the data ({kind}) does not match the kind served at this path ({})",
                rt.version, rt.kind, rt.kind
            )));
        }
        if !object["metadata"].is_object() {
            if object["metadata"].is_null() {
                object["metadata"] = json!({});
            } else {
                return Err(ApiError::bad_request("metadata must be an object"));
            }
        }
        if let Some(url_name) = name {
            match object["metadata"]["name"].as_str() {
                Some(body_name) if body_name != url_name => {
                    return Err(ApiError::bad_request(format!(
                        "the name of the object ({body_name}) does not match the name on the URL ({url_name})"
                    )));
                }
                Some(_) => {}
                None => object["metadata"]["name"] = Value::String(url_name.to_owned()),
            }
        }
        if rt.namespaced {
            match object["metadata"]["namespace"].as_str() {
                Some(ns) if !ns.is_empty() && ns != namespace => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => object["metadata"]["namespace"] = Value::String(namespace.to_owned()),
            }
        } else if let Some(meta) = object["metadata"].as_object_mut() {
            meta.remove("namespace");
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // create

    pub(crate) fn create(
        &mut self,
        rt: &Arc<ResourceType>,
        namespace: &str,
        mut object: Value,
        opts: &WriteOpts,
    ) -> Result<Written, ApiError> {
        Self::check_identity(rt, &mut object, namespace, None)?;
        if let Some(meta) = object["metadata"].as_object_mut() {
            for field in SERVER_METADATA {
                meta.remove(field);
            }
        }
        if object["metadata"]["name"].as_str().unwrap_or("").is_empty() {
            let prefix = object["metadata"]["generateName"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            if prefix.is_empty() {
                return Err(ApiError::invalid(
                    rt.named(""),
                    &[crate::status::FieldError::required(
                        "metadata.name",
                        "name or generateName is required",
                    )],
                ));
            }
            let name = format!("{prefix}{}", self.random_suffix(5));
            object["metadata"]["name"] = Value::String(name);
        }
        let warnings = validate::decode(rt, &mut object, opts.validation, &opts.duplicates)?;
        self.create_decoded(rt, object, opts, None, warnings)
    }

    /// Creates an object that passed decoding. `managed` is the managed fields when the
    /// caller computed them (server-side apply); otherwise the creator gets an Update entry.
    fn create_decoded(
        &mut self,
        rt: &Arc<ResourceType>,
        mut object: Value,
        opts: &WriteOpts,
        managed: Option<Vec<ManagedEntry>>,
        warnings: Vec<String>,
    ) -> Result<Written, ApiError> {
        let name = meta_str(&object, "name").to_owned();
        let namespace = meta_str(&object, "namespace").to_owned();
        validate::check_name(rt, &name)?;
        self.namespace_check(rt, &namespace, &name)?;
        if self.store.get(&rt.key(), &namespace, &name).is_some() {
            return Err(ApiError::already_exists(rt.named(&name)));
        }
        let uid = self.new_uid();
        object["metadata"]["uid"] = Value::String(uid);
        object["metadata"]["creationTimestamp"] = Value::String(self.now_text());
        if rt.generation {
            object["metadata"]["generation"] = json!(1);
        }
        strip_nulls(&mut object);
        defaults::apply_defaults(rt, &mut object);
        admission::on_create(self, rt, &mut object)?;
        validate::validate(rt, &object)?;
        let now = self.now_text();
        match managed {
            Some(entries) => ManagedEntry::store_all(&mut object, entries),
            None => {
                let mut walker = Walker::new(Self::shape(rt));
                let set = walker
                    .set_of(&object)
                    .without_reset_fields(false, rt.status);
                let mut entries = Vec::new();
                record_update(
                    &mut entries,
                    &opts.manager,
                    &rt.api_version(),
                    "",
                    &set,
                    &crate::fieldset::FieldSet::default(),
                    &now,
                );
                ManagedEntry::store_all(&mut object, entries);
            }
        }
        self.to_storage(rt, &mut object);
        if opts.dry_run {
            return Ok(Written {
                object: Self::served(rt, &Arc::new(object)),
                wrote: false,
                created: true,
                warnings,
            });
        }
        let stored = self.store.put(&rt.key(), object);
        self.after_write(rt, None, Some(&stored));
        Ok(Written {
            object: Self::served(rt, &stored),
            wrote: true,
            created: true,
            warnings,
        })
    }

    // -----------------------------------------------------------------------------------------
    // update

    pub(crate) fn update(
        &mut self,
        rt: &Arc<ResourceType>,
        namespace: &str,
        name: &str,
        mut object: Value,
        opts: &WriteOpts,
    ) -> Result<Written, ApiError> {
        if opts.subresource == "scale" {
            return self.update_scale(rt, namespace, name, object, opts);
        }
        Self::check_identity(rt, &mut object, namespace, Some(name))?;
        let Some(old) = self.store.get(&rt.key(), namespace, name) else {
            if rt.create_on_update && opts.subresource.is_empty() {
                return self.create(rt, namespace, object, opts);
            }
            return Err(ApiError::not_found(rt.named(name)));
        };
        let old = Self::served(rt, &old);
        let requested_rv = object["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        if !requested_rv.is_empty() && requested_rv != meta_str(&old, "resourceVersion") {
            return Err(ApiError::stale(rt.named(name)));
        }
        let warnings = validate::decode(rt, &mut object, opts.validation, &opts.duplicates)?;
        self.commit_update(rt, &old, object, opts, None, warnings)
    }

    /// The write pipeline for changes to an existing object.
    fn commit_update(
        &mut self,
        rt: &Arc<ResourceType>,
        old: &Obj,
        mut new: Value,
        opts: &WriteOpts,
        managed: Option<Vec<ManagedEntry>>,
        warnings: Vec<String>,
    ) -> Result<Written, ApiError> {
        let name = meta_str(old, "name").to_owned();
        // System metadata is the server's.
        for field in [
            "uid",
            "creationTimestamp",
            "generation",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "namespace",
            "name",
            "resourceVersion",
        ] {
            match old["metadata"].get(field) {
                Some(v) => new["metadata"][field] = v.clone(),
                None => {
                    if let Some(meta) = new["metadata"].as_object_mut() {
                        meta.remove(field);
                    }
                }
            }
        }
        let status_write = opts.subresource == "status";
        if rt.status {
            if status_write {
                let status = new.get("status").cloned();
                let mut kept = (**old).clone();
                match status {
                    Some(s) => kept["status"] = s,
                    None => {
                        if let Some(map) = kept.as_object_mut() {
                            map.remove("status");
                        }
                    }
                }
                if let Some(meta) = kept["metadata"].as_object_mut() {
                    match new["metadata"].get("managedFields") {
                        Some(mf) => {
                            meta.insert("managedFields".to_owned(), mf.clone());
                        }
                        None => {
                            meta.remove("managedFields");
                        }
                    }
                }
                new = kept;
            } else {
                match old.get("status") {
                    Some(s) => new["status"] = s.clone(),
                    None => {
                        if let Some(map) = new.as_object_mut() {
                            map.remove("status");
                        }
                    }
                }
            }
        }
        strip_nulls(&mut new);
        defaults::apply_defaults(rt, &mut new);
        admission::on_update(self, rt, old, &mut new)?;
        if rt.generation && spec_part(old) != spec_part(&new) {
            let generation = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
            new["metadata"]["generation"] = json!(generation);
        }
        validate::validate(rt, &new)?;
        validate::validate_update(rt, old, &new)?;
        let now = self.now_text();
        match managed {
            Some(mut entries) => {
                // an apply that changed the object stamps its manager's entry
                if without_managed_fields(old) != without_managed_fields(&new) {
                    for entry in entries.iter_mut().filter(|e| {
                        e.is_apply()
                            && e.manager == opts.manager
                            && e.subresource == opts.subresource
                    }) {
                        entry.time = Some(now.clone());
                    }
                }
                ManagedEntry::store_all(&mut new, entries);
            }
            None => {
                let mut entries = ManagedEntry::parse_all(old);
                let mut walker = Walker::new(Self::shape(rt));
                let (changed, removed) = walker.diff(
                    Some(&without_managed_fields(old)),
                    Some(&without_managed_fields(&new)),
                );
                let changed = changed.without_reset_fields(status_write, rt.status);
                let removed = removed.without_reset_fields(status_write, rt.status);
                record_update(
                    &mut entries,
                    &opts.manager,
                    &rt.api_version(),
                    if status_write { "status" } else { "" },
                    &changed,
                    &removed,
                    &now,
                );
                ManagedEntry::store_all(&mut new, entries);
            }
        }
        // Finalizers all gone on an object being deleted: it goes now.
        let finalizers_done = !new["metadata"]["deletionTimestamp"].is_null()
            && new["metadata"]["finalizers"]
                .as_array()
                .is_none_or(Vec::is_empty);
        if without_rv(old) == without_rv(&new) && !finalizers_done {
            return Ok(Written {
                object: Arc::clone(old),
                wrote: false,
                created: false,
                warnings,
            });
        }
        self.to_storage(rt, &mut new);
        if opts.dry_run {
            return Ok(Written {
                object: Self::served(rt, &Arc::new(new)),
                wrote: false,
                created: false,
                warnings,
            });
        }
        let namespace = meta_str(old, "namespace").to_owned();
        if finalizers_done {
            let stored = self.store.put(&rt.key(), new);
            let gone = self
                .store
                .remove(&rt.key(), &namespace, &name)
                .unwrap_or(stored);
            self.after_write(rt, Some(old), None);
            return Ok(Written {
                object: Self::served(rt, &gone),
                wrote: true,
                created: false,
                warnings,
            });
        }
        let stored = self.store.put(&rt.key(), new);
        self.after_write(rt, Some(old), Some(&stored));
        Ok(Written {
            object: Self::served(rt, &stored),
            wrote: true,
            created: false,
            warnings,
        })
    }

    // -----------------------------------------------------------------------------------------
    // scale subresource

    /// The `autoscaling/v1` Scale of an object.
    pub(crate) fn scale_of(rt: &ResourceType, object: &Value) -> Result<Value, ApiError> {
        let paths = rt.scale.as_ref().ok_or_else(ApiError::no_route)?;
        let replicas = object
            .pointer(&paths.spec_replicas)
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let status_replicas = object
            .pointer(&paths.status_replicas)
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let selector = match &paths.label_selector {
            Some(p) => object
                .pointer(p)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            None => LabelSelector::from_object(&object["spec"]["selector"])
                .map(|s| s.to_query())
                .unwrap_or_default(),
        };
        let meta = &object["metadata"];
        Ok(json!({
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
                "resourceVersion": meta["resourceVersion"],
                "creationTimestamp": meta["creationTimestamp"],
            },
            "spec": {"replicas": replicas},
            "status": {"replicas": status_replicas, "selector": selector},
        }))
    }

    fn update_scale(
        &mut self,
        rt: &Arc<ResourceType>,
        namespace: &str,
        name: &str,
        scale: Value,
        opts: &WriteOpts,
    ) -> Result<Written, ApiError> {
        let old = self.get(rt, namespace, name)?;
        let Some(paths) = rt.scale.clone() else {
            return Err(ApiError::no_route());
        };
        let rv = scale["metadata"]["resourceVersion"].as_str().unwrap_or("");
        if !rv.is_empty() && rv != meta_str(&old, "resourceVersion") {
            return Err(ApiError::stale(rt.named(name)));
        }
        let Some(replicas) = scale["spec"]["replicas"].as_i64() else {
            return Err(ApiError::bad_request(
                "Scale.spec.replicas must be an integer",
            ));
        };
        if replicas < 0 {
            return Err(ApiError::invalid(
                Named {
                    group: "autoscaling",
                    resource: "scale",
                    kind: "Scale",
                    name,
                },
                &[crate::status::FieldError::invalid(
                    "spec.replicas",
                    json!(replicas),
                    "must be greater than or equal to 0",
                )],
            ));
        }
        let mut new = (*old).clone();
        set_pointer(&mut new, &paths.spec_replicas, json!(replicas));
        let main = WriteOpts {
            subresource: String::new(),
            ..opts.clone()
        };
        let mut written = self.commit_update(rt, &old, new, &main, None, Vec::new())?;
        written.object = Arc::new(Self::scale_of(rt, &written.object)?);
        Ok(written)
    }

    // -----------------------------------------------------------------------------------------
    // patch and apply

    #[expect(clippy::too_many_arguments, reason = "a patch request's parts")]
    pub(crate) fn patch(
        &mut self,
        rt: &Arc<ResourceType>,
        namespace: &str,
        name: &str,
        patch_type: PatchType,
        body: &[u8],
        opts: &WriteOpts,
        force: bool,
    ) -> Result<Written, ApiError> {
        if patch_type == PatchType::Apply {
            return self.apply(rt, namespace, name, body, opts, force);
        }
        if patch_type == PatchType::Strategic && rt.builtin.is_none() {
            return Err(ApiError::unsupported_media_type(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
            ));
        }
        let parsed = crate::body::parse(body)?;
        let patch = parsed.value;
        let duplicates = match parsed.duplicates {
            // Duplicates inside a JSON patch's values are lost to the patch library, as upstream;
            // those in the operations themselves are named.
            Duplicates::Json(paths) if patch_type == PatchType::Json => Duplicates::JsonPatch(
                paths
                    .into_iter()
                    .filter(|p| {
                        p.starts_with('[')
                            && p.split_once("].")
                                .is_some_and(|(_, key)| !key.contains(['.', '[']))
                    })
                    .collect(),
            ),
            other => other,
        };
        let old = self.get(rt, namespace, name)?;
        let scale = opts.subresource == "scale";
        let current = if scale {
            Self::scale_of(rt, &old)?
        } else {
            (*old).clone()
        };
        let patched = match patch_type {
            PatchType::Json => {
                let ops: json_patch::Patch = serde_json::from_value(patch).map_err(|err| {
                    ApiError::bad_request(format!("the JSON patch is not valid: {err}"))
                })?;
                let mut doc = current.clone();
                json_patch::patch(&mut doc, &ops).map_err(|err| {
                    let mut e = ApiError::invalid(rt.named(name), &[]);
                    e.message = format!(
                        "the server rejected our request due to an error in our request: {err}"
                    );
                    e
                })?;
                doc
            }
            PatchType::Merge => {
                if !patch.is_object() {
                    return Err(ApiError::bad_request(
                        "a JSON merge patch must be a JSON object",
                    ));
                }
                let mut doc = current.clone();
                json_patch::merge(&mut doc, &patch);
                doc
            }
            PatchType::Strategic => {
                let shape = if scale {
                    Shape {
                        kind: "Scale",
                        crd_schema: None,
                    }
                } else {
                    Self::shape(rt)
                };
                smp::strategic_merge(&current, &patch, shape).map_err(ApiError::bad_request)?
            }
            PatchType::Apply => unreachable!("handled above"),
        };
        if !patched.is_object() {
            return Err(ApiError::bad_request("the patch removed the whole object"));
        }
        let patched_rv = patched["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("");
        if !patched_rv.is_empty() && patched_rv != meta_str(&current, "resourceVersion") {
            return Err(ApiError::stale(rt.named(name)));
        }
        if scale {
            return self.update_scale(rt, namespace, name, patched, opts);
        }
        let mut patched = patched;
        Self::check_identity(rt, &mut patched, namespace, Some(name))?;
        let warnings = validate::decode(rt, &mut patched, opts.validation, &duplicates)?;
        self.commit_update(rt, &old, patched, opts, None, warnings)
    }

    fn apply(
        &mut self,
        rt: &Arc<ResourceType>,
        namespace: &str,
        name: &str,
        body: &[u8],
        opts: &WriteOpts,
        force: bool,
    ) -> Result<Written, ApiError> {
        if opts.subresource == "scale" {
            return Err(ApiError::unsupported_media_type(
                "server-side apply of the scale subresource is not supported by ferry-sim; use a merge patch",
            ));
        }
        // The API server reads an apply body (JSON included) as YAML: duplicates are named by line.
        let mut parsed = crate::body::parse(body)?;
        if matches!(parsed.duplicates, Duplicates::Json(_)) {
            parsed = crate::body::parse_yaml(body)?;
        }
        if let Duplicates::Yaml(lines) = &parsed.duplicates
            && opts.validation == FieldValidation::Strict
        {
            return Err(ApiError::bad_request(format!(
                "error strict decoding YAML: error converting YAML to JSON: yaml: unmarshal errors:\n  {}",
                lines.join("\n  ")
            )));
        }
        let duplicates = parsed.duplicates;
        let mut config = parsed.value;
        Self::check_identity(rt, &mut config, namespace, Some(name))?;
        let old = self
            .store
            .get(&rt.key(), namespace, name)
            .map(|o| Self::served(rt, &o));
        let requested_rv = config["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        if !requested_rv.is_empty() {
            match &old {
                Some(old) if meta_str(old, "resourceVersion") == requested_rv => {}
                Some(_) => return Err(ApiError::stale(rt.named(name))),
                None => return Err(ApiError::not_found(rt.named(name))),
            }
        }
        let now = self.now_text();
        let api_version = rt.api_version();
        let request = ApplyRequest {
            manager: &opts.manager,
            force,
            shape: Self::shape(rt),
            api_version: &api_version,
            subresource: &opts.subresource,
            has_status: rt.status,
            now: &now,
        };
        let mut merged = server_side_apply(old.as_deref(), &config, &request)?;
        let entries = ManagedEntry::parse_all(&merged);
        let warnings = validate::decode(rt, &mut merged, opts.validation, &duplicates)?;
        match old {
            None => {
                if !opts.subresource.is_empty() {
                    return Err(ApiError::not_found(rt.named(name)));
                }
                self.create_decoded(rt, merged, opts, Some(entries), warnings)
            }
            Some(old) => self.commit_update(rt, &old, merged, opts, Some(entries), warnings),
        }
    }

    // -----------------------------------------------------------------------------------------
    // delete

    pub(crate) fn delete(
        &mut self,
        rt: &Arc<ResourceType>,
        namespace: &str,
        name: &str,
        opts: &DeleteOpts,
    ) -> Result<Deleted, ApiError> {
        let old = self.get(rt, namespace, name)?;
        if let Some(uid) = &opts.uid
            && uid != meta_str(&old, "uid")
        {
            return Err(ApiError::conflict(
                rt.named(name),
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta_str(&old, "uid")
                ),
            ));
        }
        if let Some(rv) = &opts.resource_version
            && rv != meta_str(&old, "resourceVersion")
        {
            return Err(ApiError::conflict(
                rt.named(name),
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    meta_str(&old, "resourceVersion")
                ),
            ));
        }
        let mut finalizers: Vec<Value> = old["metadata"]["finalizers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let is_namespace = rt.is(Builtin::Namespace);
        match opts.propagation {
            Some(Propagation::Foreground) => {
                let f = json!("foregroundDeletion");
                if !finalizers.contains(&f) {
                    finalizers.push(f);
                }
            }
            Some(Propagation::Orphan) => {
                let f = json!("orphan");
                if !finalizers.contains(&f) {
                    finalizers.push(f);
                }
            }
            _ => {}
        }
        let already_deleting = !old["metadata"]["deletionTimestamp"].is_null();
        // Pods terminate gracefully: marked now, removed by the kubelet once stopped.
        let pod_grace = rt.is(Builtin::Pod).then(|| {
            opts.grace_period
                .or_else(|| old["spec"]["terminationGracePeriodSeconds"].as_i64())
                .unwrap_or(30)
                .max(0)
        });
        let graceful = pod_grace.is_some_and(|g| g > 0);
        if finalizers.is_empty() && !is_namespace && !graceful {
            if opts.dry_run {
                return Ok(Deleted {
                    object: old,
                    gone: true,
                    wrote: false,
                });
            }
            let gone = self
                .store
                .remove(&rt.key(), namespace, name)
                .ok_or_else(|| ApiError::not_found(rt.named(name)))?;
            self.after_write(rt, Some(&old), None);
            return Ok(Deleted {
                object: Self::served(rt, &gone),
                gone: true,
                wrote: true,
            });
        }
        let mut marked = (*old).clone();
        if !already_deleting {
            let grace = pod_grace.unwrap_or(0);
            let at = self
                .now
                .saturating_add(jiff::SignedDuration::from_secs(grace))
                .unwrap_or(self.now);
            marked["metadata"]["deletionTimestamp"] = Value::String(format_time(at));
            marked["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
        }
        if !finalizers.is_empty() {
            marked["metadata"]["finalizers"] = Value::Array(finalizers);
        }
        if is_namespace {
            marked["status"]["phase"] = json!("Terminating");
        }
        if without_rv(&old) == without_rv(&marked) || opts.dry_run {
            return Ok(Deleted {
                object: if opts.dry_run { Arc::new(marked) } else { old },
                gone: false,
                wrote: false,
            });
        }
        self.to_storage(rt, &mut marked);
        let stored = self.store.put(&rt.key(), marked);
        self.after_write(rt, Some(&old), Some(&stored));
        Ok(Deleted {
            object: Self::served(rt, &stored),
            gone: false,
            wrote: true,
        })
    }

    // -----------------------------------------------------------------------------------------
    // controllers' writes

    /// A controller's write to an object it read (status or spec), as an Update by `manager`.
    /// Returns whether anything changed.
    pub(crate) fn controller_update(
        &mut self,
        rt: &Arc<ResourceType>,
        old: &Obj,
        new: Value,
        manager: &str,
        status: bool,
    ) -> bool {
        let mut opts = WriteOpts::controller(manager);
        if status && rt.status {
            opts = opts.status();
        }
        match self.commit_update(rt, old, new, &opts, None, Vec::new()) {
            Ok(written) => {
                if written.wrote {
                    let label = if opts.subresource.is_empty() {
                        rt.qualified()
                    } else {
                        format!("{}/{}", rt.qualified(), opts.subresource)
                    };
                    *self.controller_writes.entry(label).or_default() += 1;
                }
                written.wrote
            }
            Err(err) => {
                tracing::warn!(resource = %rt.qualified(), name = meta_str(old, "name"), error = %err.message, "controller update rejected");
                false
            }
        }
    }

    /// A controller creates an object; `None` when it was rejected (logged).
    pub(crate) fn controller_create(
        &mut self,
        rt: &Arc<ResourceType>,
        object: Value,
        manager: &str,
    ) -> Option<Obj> {
        self.controller_try_create(rt, object, manager).ok()
    }

    /// A controller creates an object; the API's error when it was rejected (logged), for the
    /// controllers that report it in an event.
    pub(crate) fn controller_try_create(
        &mut self,
        rt: &Arc<ResourceType>,
        object: Value,
        manager: &str,
    ) -> Result<Obj, ApiError> {
        let namespace = meta_str(&object, "namespace").to_owned();
        match self.create(rt, &namespace, object, &WriteOpts::controller(manager)) {
            Ok(written) => {
                *self.controller_writes.entry(rt.qualified()).or_default() += 1;
                Ok(written.object)
            }
            Err(err) => {
                tracing::debug!(resource = %rt.qualified(), error = %err.message, "controller create rejected");
                Err(err)
            }
        }
    }

    pub(crate) fn controller_delete(
        &mut self,
        rt: &Arc<ResourceType>,
        object: &Value,
        propagation: Option<Propagation>,
    ) -> bool {
        let opts = DeleteOpts {
            propagation,
            ..DeleteOpts::default()
        };
        let wrote = self
            .delete(
                rt,
                meta_str(object, "namespace"),
                meta_str(object, "name"),
                &opts,
            )
            .map(|d| d.wrote)
            .unwrap_or(false);
        if wrote {
            *self.controller_writes.entry(rt.qualified()).or_default() += 1;
        }
        wrote
    }

    /// Keeps derived state in step with writes: custom resource types follow their CRDs.
    fn after_write(&mut self, rt: &ResourceType, old: Option<&Obj>, new: Option<&Obj>) {
        if rt.is(Builtin::CustomResourceDefinition) {
            let old_types: Vec<GroupResource> = old
                .map(|o| types_from_crd(o))
                .unwrap_or_default()
                .iter()
                .map(ResourceType::key)
                .collect();
            self.refresh_custom_types();
            if new.is_none() {
                for gr in old_types {
                    self.store.drop_type(&gr);
                }
            }
        }
    }

    /// Re-registers every custom type from the stored CRDs.
    pub(crate) fn refresh_custom_types(&mut self) {
        let crd_type = self.builtin(Builtin::CustomResourceDefinition);
        let types: Vec<ResourceType> = self
            .store
            .list(&crd_type.key(), None)
            .filter(|crd| crd["metadata"]["deletionTimestamp"].is_null())
            .flat_map(|crd| types_from_crd(crd))
            .collect();
        self.registry.set_custom(types);
    }

    /// Emits (or counts up) an Event about `involved`.
    pub(crate) fn event(
        &mut self,
        involved: &Value,
        warning: bool,
        reason: &str,
        message: &str,
        component: &str,
    ) {
        crate::controllers::events::record(self, involved, warning, reason, message, component);
    }
}

/// Sets the value at a JSON pointer, creating objects on the way.
pub(crate) fn set_pointer(object: &mut Value, pointer: &str, value: Value) {
    let mut node = object;
    let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        if i == parts.len() - 1 {
            if !node.is_object() {
                *node = Value::Object(Map::new());
            }
            node[*part] = value;
            return;
        }
        if !node[*part].is_object() {
            node[*part] = Value::Object(Map::new());
        }
        node = &mut node[*part];
    }
}
