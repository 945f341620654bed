//! Server-side apply: merge an applied configuration into the live object, track field
//! ownership in `managedFields`, and refuse to change fields another manager owns unless forced.
//!
//! This follows structured-merge-diff's rules, which kubectl and kube-rs rely on:
//! - the applier comes to own exactly the fields of its configuration (its previous Apply set
//!   is replaced);
//! - a field it changes that another manager owns is a conflict (409 with one cause per field),
//!   unless `force=true`, which moves ownership to the applier;
//! - fields it owned before and no longer applies are removed, unless someone else owns them;
//! - applying what is already there changes nothing (no write, same resourceVersion).

use serde_json::Value;

use crate::fieldset::{FieldSet, ManagedEntry, Walker};
use crate::schema::Shape;
use crate::status::ApiError;
use crate::store::SERVER_METADATA;

/// Inputs that do not change between calls for one request.
pub(crate) struct ApplyRequest<'a> {
    pub(crate) manager: &'a str,
    pub(crate) force: bool,
    pub(crate) shape: Shape<'a>,
    pub(crate) api_version: &'a str,
    /// `""` or `"status"`.
    pub(crate) subresource: &'a str,
    /// The type has a status subresource.
    pub(crate) has_status: bool,
    /// `metav1.Time` of now, for the managed fields entry.
    pub(crate) now: &'a str,
}

fn without_managed_fields(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(meta) = object["metadata"].as_object_mut() {
        meta.remove("managedFields");
    }
    object
}

/// Applies `config` over `live` (absent for a create). Returns the merged object with its new
/// `managedFields`, before defaulting and validation.
pub(crate) fn server_side_apply(
    live: Option<&Value>,
    config: &Value,
    req: &ApplyRequest<'_>,
) -> Result<Value, ApiError> {
    let status_sub = req.subresource == "status";
    let mut config = config.clone();
    if let Some(meta) = config["metadata"].as_object_mut() {
        for field in SERVER_METADATA {
            meta.remove(field);
        }
    }
    let mut walker = Walker::new(req.shape);
    let config_set = walker
        .set_of(&config)
        .without_reset_fields(status_sub, req.has_status);

    let mut entries = live.map(ManagedEntry::parse_all).unwrap_or_default();
    let base = live.map_or_else(
        || Value::Object(serde_json::Map::new()),
        without_managed_fields,
    );
    let mut merged = walker.merge(&base, &config);

    let is_own = |e: &ManagedEntry| {
        e.manager == req.manager && e.is_apply() && e.subresource == req.subresource
    };

    let (changed, _) = walker.diff(Some(&base), Some(&merged));
    let changed = changed.without_reset_fields(status_sub, req.has_status);
    let mut conflicts: Vec<(String, String)> = Vec::new();
    for entry in entries.iter().filter(|e| !is_own(e)) {
        let overlap = entry.set.intersection(&changed);
        for path in overlap.paths() {
            conflicts.push((entry.describe(), path));
        }
    }
    if !conflicts.is_empty() {
        if !req.force {
            return Err(conflict_error(&conflicts));
        }
        for entry in entries.iter_mut().filter(|e| !is_own(e)) {
            entry.set = entry.set.difference(&changed);
        }
    }

    let previous = entries
        .iter()
        .find(|e| is_own(e))
        .map(|e| e.set.clone())
        .unwrap_or_default();
    let others = entries
        .iter()
        .filter(|e| !is_own(e))
        .fold(FieldSet::default(), |acc, e| acc.union(&e.set));
    let disowned = previous.difference(&config_set).difference(&others);
    if !disowned.is_empty() {
        walker.remove(&mut merged, &disowned);
    }

    let (_, removed) = walker.diff(Some(&base), Some(&merged));
    let removed = removed.without_reset_fields(status_sub, req.has_status);
    for entry in entries.iter_mut().filter(|e| !is_own(e)) {
        entry.set = entry.set.difference(&removed);
    }
    match entries.iter_mut().find(|e| is_own(e)) {
        Some(own) => {
            // a changed object moves the time too: decided after defaulting, in the write pipeline
            if own.set != config_set || own.api_version != req.api_version {
                own.time = Some(req.now.to_owned());
            }
            own.set = config_set;
            own.api_version = req.api_version.to_owned();
        }
        None => entries.push(ManagedEntry {
            manager: req.manager.to_owned(),
            operation: "Apply".to_owned(),
            api_version: req.api_version.to_owned(),
            time: Some(req.now.to_owned()),
            subresource: req.subresource.to_owned(),
            set: config_set,
        }),
    }
    ManagedEntry::store_all(&mut merged, entries);
    Ok(merged)
}

/// The API server's 409 for apply conflicts.
fn conflict_error(conflicts: &[(String, String)]) -> ApiError {
    let message = if conflicts.len() == 1 {
        format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            conflicts[0].0, conflicts[0].1
        )
    } else {
        let mut managers: Vec<&String> = conflicts.iter().map(|(m, _)| m).collect();
        managers.sort();
        managers.dedup();
        let mut lines = Vec::new();
        for manager in managers {
            lines.push(format!("conflicts with {manager}:"));
            for (_, path) in conflicts.iter().filter(|(m, _)| m == manager) {
                lines.push(format!("- {path}"));
            }
        }
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    ApiError::apply_conflict(
        message,
        conflicts
            .iter()
            .map(|(manager, path)| (format!("conflict with {manager}"), path.clone()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req<'a>(manager: &'a str, force: bool) -> ApplyRequest<'a> {
        ApplyRequest {
            manager,
            force,
            shape: Shape {
                kind: "ConfigMap",
                crd_schema: None,
            },
            api_version: "v1",
            subresource: "",
            has_status: false,
            now: "2024-01-01T00:00:00Z",
        }
    }

    fn cm(data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "d"}, "data": data})
    }

    #[test]
    fn reapplying_changes_nothing() {
        let first = server_side_apply(None, &cm(json!({"a": "1"})), &req("ferry", false)).unwrap();
        let again =
            server_side_apply(Some(&first), &cm(json!({"a": "1"})), &req("ferry", false)).unwrap();
        assert_eq!(first, again);
    }

    #[test]
    fn other_managers_conflict_unless_forced() {
        let first = server_side_apply(None, &cm(json!({"a": "1", "b": "2"})), &req("ferry", false))
            .unwrap();
        let err = server_side_apply(Some(&first), &cm(json!({"a": "9"})), &req("other", false))
            .unwrap_err();
        assert_eq!(err.code, 409);
        assert_eq!(
            err.message,
            "Apply failed with 1 conflict: conflict with \"ferry\": .data.a"
        );
        assert_eq!(err.to_status()["details"]["causes"][0]["field"], ".data.a");
        // the same value is shared ownership, not a conflict
        let shared =
            server_side_apply(Some(&first), &cm(json!({"a": "1"})), &req("other", false)).unwrap();
        assert_eq!(
            shared["metadata"]["managedFields"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        let forced =
            server_side_apply(Some(&first), &cm(json!({"a": "9"})), &req("other", true)).unwrap();
        assert_eq!(forced["data"]["a"], "9");
        let ferry = &forced["metadata"]["managedFields"][0];
        assert_eq!(ferry["manager"], "ferry");
        assert!(ferry["fieldsV1"]["f:data"].get("f:a").is_none());
    }

    #[test]
    fn dropped_fields_are_removed_unless_shared() {
        let first = server_side_apply(None, &cm(json!({"a": "1", "b": "2"})), &req("ferry", false))
            .unwrap();
        let shared =
            server_side_apply(Some(&first), &cm(json!({"b": "2"})), &req("other", false)).unwrap();
        let dropped =
            server_side_apply(Some(&shared), &cm(json!({})), &req("ferry", false)).unwrap();
        assert_eq!(dropped["data"], json!({"b": "2"}));
    }
}
