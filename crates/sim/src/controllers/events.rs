//! `core/v1` Events, as controllers and the kubelet record them: one object per distinct
//! (object, reason, message), counted up on repeats, deleted an hour (virtual) after the last
//! occurrence, as the API server's event TTL does.

use jiff::SignedDuration;
use serde_json::{Value, json};

use super::{Wake, list};
use crate::clock::parse_time;
use crate::resources::Builtin;
use crate::state::{State, WriteOpts};
use crate::store::meta_str;

const TTL: SignedDuration = SignedDuration::from_hours(1);

fn reference(involved: &Value) -> Value {
    let meta = &involved["metadata"];
    let mut reference = json!({
        "kind": involved["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "apiVersion": involved["apiVersion"],
        "resourceVersion": meta["resourceVersion"],
    });
    if let Some(ns) = meta["namespace"].as_str() {
        reference["namespace"] = json!(ns);
    }
    reference
}

fn index_key(namespace: &str, uid: &str, reason: &str, message: &str, component: &str) -> String {
    format!("{namespace}\u{0}{uid}\u{0}{reason}\u{0}{component}\u{0}{message}")
}

/// Records an event about `involved`.
pub(crate) fn record(
    state: &mut State,
    involved: &Value,
    warning: bool,
    reason: &str,
    message: &str,
    component: &str,
) {
    let events = state.builtin(Builtin::Event);
    let namespace = involved["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default")
        .to_owned();
    let uid = meta_str(involved, "uid").to_owned();
    let now = state.now_text();
    // Repeats are found through an index (scanning a namespace's events for each new one is
    // quadratic in a big rollout); a stale entry (the event was deleted) just misses.
    let key = index_key(&namespace, &uid, reason, message, component);
    let existing = state
        .event_index
        .get(&key)
        .and_then(|name| state.store.get(&events.key(), &namespace, name))
        .filter(|e| {
            e["involvedObject"]["uid"].as_str() == Some(&uid)
                && e["reason"].as_str() == Some(reason)
                && e["message"].as_str() == Some(message)
        });
    match existing {
        Some(event) => {
            let mut updated = (*event).clone();
            updated["count"] = json!(event["count"].as_i64().unwrap_or(1) + 1);
            updated["lastTimestamp"] = json!(now);
            state.controller_update(&events, &event, updated, component, false);
        }
        None => {
            let suffix = format!("{:016x}", state.rng.u64(..));
            let involved_name = meta_str(involved, "name");
            let mut source = json!({"component": component});
            if component == "kubelet"
                && let Some(node) = involved["spec"]["nodeName"].as_str()
            {
                source["host"] = json!(node);
            }
            let event = json!({
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": format!("{involved_name}.{}", &suffix[..16]), "namespace": namespace},
                "involvedObject": reference(involved),
                "reason": reason,
                "message": message,
                "source": source,
                "firstTimestamp": now,
                "lastTimestamp": now,
                "count": 1,
                "type": if warning { "Warning" } else { "Normal" },
                "eventTime": null,
                "reportingComponent": component,
                "reportingInstance": source["host"].as_str().unwrap_or(""),
            });
            let opts = WriteOpts::controller(component);
            match state.create(&events, &namespace, event, &opts) {
                Ok(written) => {
                    let name = meta_str(&written.object, "name").to_owned();
                    state.event_index.insert(key, name);
                }
                Err(err) => tracing::debug!(error = %err.message, "event not recorded"),
            }
        }
    }
}

/// Deletes events whose last occurrence is older than the TTL.
pub(crate) fn prune(state: &mut State, wake: &mut Wake) -> bool {
    let events = state.builtin(Builtin::Event);
    let now = state.now;
    let mut changed = false;
    let mut oldest = None;
    for event in list(state, &events, None) {
        let last = event["lastTimestamp"]
            .as_str()
            .or_else(|| event["metadata"]["creationTimestamp"].as_str())
            .and_then(parse_time);
        let Some(last) = last else { continue };
        let expires = last.saturating_add(TTL).unwrap_or(last);
        if expires <= now {
            state.event_index.remove(&index_key(
                meta_str(&event, "namespace"),
                event["involvedObject"]["uid"].as_str().unwrap_or(""),
                event["reason"].as_str().unwrap_or(""),
                event["message"].as_str().unwrap_or(""),
                event["source"]["component"].as_str().unwrap_or(""),
            ));
            changed |= state.controller_delete(&events, &event, None);
        } else {
            oldest = Some(oldest.map_or(expires, |o: jiff::Timestamp| o.min(expires)));
        }
    }
    if let Some(t) = oldest {
        wake.at(t);
    }
    changed
}
