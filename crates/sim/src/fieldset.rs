//! Field sets, the `fieldsV1` format of `metadata.managedFields`, and the managed-fields
//! bookkeeping every write does.
//!
//! A set is a tree of path elements: `f:name` (a field), `k:{"name":"web"}` (an associative list
//! item by its keys), `v:"x"` (a set-list value), with `.` marking that the node itself is owned.
//! A leaf `{}` is an owned field.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::schema::{ListType, Shape, key_default};
use crate::store::SERVER_METADATA;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldSet {
    pub(crate) member: bool,
    pub(crate) children: BTreeMap<String, FieldSet>,
}

impl FieldSet {
    pub(crate) fn leaf() -> Self {
        FieldSet {
            member: true,
            children: BTreeMap::new(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        !self.member && self.children.is_empty()
    }

    pub(crate) fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.member |= other.member;
        for (k, v) in &other.children {
            let merged = match out.children.get(k) {
                Some(mine) => mine.union(v),
                None => v.clone(),
            };
            out.children.insert(k.clone(), merged);
        }
        out
    }

    pub(crate) fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && !other.member,
            children: BTreeMap::new(),
        };
        for (k, v) in &self.children {
            let rest = match other.children.get(k) {
                Some(theirs) => v.difference(theirs),
                None => v.clone(),
            };
            if !rest.is_empty() {
                out.children.insert(k.clone(), rest);
            }
        }
        out
    }

    pub(crate) fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && other.member,
            children: BTreeMap::new(),
        };
        for (k, v) in &self.children {
            if let Some(theirs) = other.children.get(k) {
                let both = v.intersection(theirs);
                if !both.is_empty() {
                    out.children.insert(k.clone(), both);
                }
            }
        }
        out
    }

    /// Removes the fields the server sets and no one owns (`apiVersion`, `kind`, identity
    /// metadata) and, depending on the subresource written, `status` or everything but it.
    pub(crate) fn without_reset_fields(
        mut self,
        status_subresource: bool,
        has_status: bool,
    ) -> FieldSet {
        self.children.remove("f:apiVersion");
        self.children.remove("f:kind");
        if let Some(meta) = self.children.get_mut("f:metadata") {
            for field in ["name", "namespace"].into_iter().chain(SERVER_METADATA) {
                meta.children.remove(&format!("f:{field}"));
            }
            if meta.is_empty() {
                self.children.remove("f:metadata");
            }
        }
        if has_status {
            if status_subresource {
                self.children.retain(|k, _| k == "f:status");
            } else {
                self.children.remove("f:status");
            }
        }
        self.member = false;
        self
    }

    pub(crate) fn from_fields_v1(value: &Value) -> FieldSet {
        let mut set = FieldSet::default();
        if let Some(map) = value.as_object() {
            if map.is_empty() {
                set.member = true;
            }
            for (k, v) in map {
                if k == "." {
                    set.member = true;
                } else {
                    set.children.insert(k.clone(), FieldSet::from_fields_v1(v));
                }
            }
        }
        set
    }

    pub(crate) fn to_fields_v1(&self) -> Value {
        let mut map = Map::new();
        if self.member && !self.children.is_empty() {
            map.insert(".".to_owned(), json!({}));
        }
        for (k, v) in &self.children {
            map.insert(k.clone(), v.to_fields_v1());
        }
        Value::Object(map)
    }

    /// The owned leaves as API paths (`.spec.template.spec.containers[name="web"].image`).
    pub(crate) fn paths(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_paths(String::new(), &mut out);
        out
    }

    fn collect_paths(&self, prefix: String, out: &mut Vec<String>) {
        if self.member {
            out.push(prefix.clone());
        }
        for (k, v) in &self.children {
            v.collect_paths(format!("{prefix}{}", render_element(k)), out);
        }
    }
}

fn render_element(element: &str) -> String {
    if let Some(name) = element.strip_prefix("f:") {
        return format!(".{name}");
    }
    if let Some(keys) = element.strip_prefix("k:") {
        if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(keys) {
            let parts: Vec<String> = map.iter().map(|(k, v)| format!("{k}={v}")).collect();
            return format!("[{}]", parts.join(","));
        }
        return format!("[{keys}]");
    }
    if let Some(value) = element.strip_prefix("v:") {
        return format!("[={value}]");
    }
    if let Some(index) = element.strip_prefix("i:") {
        return format!("[{index}]");
    }
    element.to_owned()
}

/// The key element of an associative list item, or `None` when the item is not an object.
pub(crate) fn item_key(item: &Value, keys: &[String]) -> Option<String> {
    let object = item.as_object()?;
    let mut key = Map::new();
    for field in keys {
        if let Some(v) = object
            .get(field)
            .filter(|v| !v.is_null())
            .cloned()
            .or_else(|| key_default(field))
        {
            key.insert(field.clone(), v);
        }
    }
    Some(format!("k:{}", Value::Object(key)))
}

fn value_element(value: &Value) -> String {
    format!("v:{value}")
}

/// Walks objects with their shape.
pub(crate) struct Walker<'a> {
    pub(crate) shape: Shape<'a>,
    path: Vec<String>,
}

impl<'a> Walker<'a> {
    pub(crate) fn new(shape: Shape<'a>) -> Self {
        Walker {
            shape,
            path: Vec::new(),
        }
    }

    fn path(&self) -> Vec<&str> {
        self.path.iter().map(String::as_str).collect()
    }

    fn granular_object<'v>(&self, value: &'v Value) -> Option<&'v Map<String, Value>> {
        match value {
            Value::Object(map)
                if !map.is_empty()
                    && (self.path.is_empty() || !self.shape.map_is_atomic(&self.path())) =>
            {
                Some(map)
            }
            _ => None,
        }
    }

    /// Like `granular_object`, but empty maps too (for merging and diffing).
    fn granular_map<'v>(&self, value: &'v Value) -> Option<&'v Map<String, Value>> {
        match value {
            Value::Object(map)
                if self.path.is_empty() || !self.shape.map_is_atomic(&self.path()) =>
            {
                Some(map)
            }
            _ => None,
        }
    }

    fn list_type_of(&self, value: &Value) -> ListType {
        match value {
            Value::Array(_) => self.shape.list_type(&self.path()),
            _ => ListType::Atomic,
        }
    }

    /// The set of fields a value sets (for the root object: its fields, not itself).
    pub(crate) fn set_of(&mut self, value: &Value) -> FieldSet {
        if let Some(map) = self.granular_object(value) {
            let mut set = FieldSet::default();
            for (k, child) in map {
                if child.is_null() {
                    continue;
                }
                self.path.push(k.clone());
                let child_set = self.set_of(child);
                self.path.pop();
                set.children.insert(format!("f:{k}"), child_set);
            }
            if set.children.is_empty() {
                set.member = true;
            }
            return set;
        }
        match (value, self.list_type_of(value)) {
            (Value::Array(items), _) if items.is_empty() => FieldSet::leaf(),
            (Value::Array(items), ListType::Map(keys)) => {
                let mut set = FieldSet::default();
                for item in items {
                    let Some(key) = item_key(item, &keys) else {
                        return FieldSet::leaf();
                    };
                    let mut item_set = self.set_of(item);
                    item_set.member = true;
                    set.children.insert(key, item_set);
                }
                set
            }
            (Value::Array(items), ListType::Set) => FieldSet {
                member: false,
                children: items
                    .iter()
                    .map(|v| (value_element(v), FieldSet::leaf()))
                    .collect(),
            },
            _ => FieldSet::leaf(),
        }
    }

    /// What changed from `old` to `new`: (added or modified fields, removed fields).
    pub(crate) fn diff(
        &mut self,
        old: Option<&Value>,
        new: Option<&Value>,
    ) -> (FieldSet, FieldSet) {
        let old = old.filter(|v| !v.is_null());
        let new = new.filter(|v| !v.is_null());
        match (old, new) {
            (None, None) => (FieldSet::default(), FieldSet::default()),
            (None, Some(n)) => (self.set_of(n), FieldSet::default()),
            (Some(o), None) => {
                let mut removed = self.set_of(o);
                removed.member = true;
                (FieldSet::default(), removed)
            }
            (Some(o), Some(n)) if o == n => (FieldSet::default(), FieldSet::default()),
            (Some(o), Some(n)) => {
                if let (Some(om), Some(nm)) = (self.granular_map(o), self.granular_map(n)) {
                    let mut changed = FieldSet::default();
                    let mut removed = FieldSet::default();
                    let keys: std::collections::BTreeSet<&String> =
                        om.keys().chain(nm.keys()).collect();
                    for k in keys {
                        self.path.push(k.clone());
                        let (c, r) = self.diff(om.get(k), nm.get(k));
                        self.path.pop();
                        if !c.is_empty() {
                            changed.children.insert(format!("f:{k}"), c);
                        }
                        if !r.is_empty() {
                            removed.children.insert(format!("f:{k}"), r);
                        }
                    }
                    return (changed, removed);
                }
                match (o, n, self.list_type_of(o), self.list_type_of(n)) {
                    (Value::Array(oa), Value::Array(na), ListType::Map(keys), ListType::Map(_)) => {
                        let old_items: BTreeMap<String, &Value> = oa
                            .iter()
                            .filter_map(|item| Some((item_key(item, &keys)?, item)))
                            .collect();
                        let new_items: BTreeMap<String, &Value> = na
                            .iter()
                            .filter_map(|item| Some((item_key(item, &keys)?, item)))
                            .collect();
                        let mut changed = FieldSet::default();
                        let mut removed = FieldSet::default();
                        for (key, item) in &new_items {
                            match old_items.get(key) {
                                Some(old_item) => {
                                    let (c, r) = self.diff(Some(old_item), Some(item));
                                    if !c.is_empty() {
                                        changed.children.insert(key.clone(), c);
                                    }
                                    if !r.is_empty() {
                                        removed.children.insert(key.clone(), r);
                                    }
                                }
                                None => {
                                    let mut added = self.set_of(item);
                                    added.member = true;
                                    changed.children.insert(key.clone(), added);
                                }
                            }
                        }
                        for (key, item) in &old_items {
                            if !new_items.contains_key(key) {
                                let mut gone = self.set_of(item);
                                gone.member = true;
                                removed.children.insert(key.clone(), gone);
                            }
                        }
                        (changed, removed)
                    }
                    (Value::Array(oa), Value::Array(na), ListType::Set, ListType::Set) => {
                        let mut changed = FieldSet::default();
                        let mut removed = FieldSet::default();
                        for v in na {
                            if !oa.contains(v) {
                                changed.children.insert(value_element(v), FieldSet::leaf());
                            }
                        }
                        for v in oa {
                            if !na.contains(v) {
                                removed.children.insert(value_element(v), FieldSet::leaf());
                            }
                        }
                        (changed, removed)
                    }
                    _ => (FieldSet::leaf(), FieldSet::default()),
                }
            }
        }
    }

    /// Server-side apply's merge: `config` over `live`. Granular maps merge field by field,
    /// associative lists item by item (live order, new items appended), sets by value;
    /// everything else takes the config's value.
    pub(crate) fn merge(&mut self, live: &Value, config: &Value) -> Value {
        if let (Some(lm), Some(cm)) = (self.granular_map(live), self.granular_map(config)) {
            let mut out = lm.clone();
            for (k, cv) in cm {
                if cv.is_null() {
                    continue;
                }
                self.path.push(k.clone());
                let merged = match lm.get(k) {
                    Some(lv) => self.merge(lv, cv),
                    None => cv.clone(),
                };
                self.path.pop();
                out.insert(k.clone(), merged);
            }
            return Value::Object(out);
        }
        match (
            live,
            config,
            self.list_type_of(live),
            self.list_type_of(config),
        ) {
            (Value::Array(la), Value::Array(ca), ListType::Map(keys), ListType::Map(_)) => {
                let config_items: Vec<(Option<String>, &Value)> = ca
                    .iter()
                    .map(|item| (item_key(item, &keys), item))
                    .collect();
                let mut used = vec![false; config_items.len()];
                let mut out = Vec::with_capacity(la.len().max(ca.len()));
                for item in la {
                    let key = item_key(item, &keys);
                    let found = config_items
                        .iter()
                        .position(|(k, _)| k.is_some() && *k == key);
                    match found {
                        Some(i) => {
                            used[i] = true;
                            out.push(self.merge(item, config_items[i].1));
                        }
                        None => out.push(item.clone()),
                    }
                }
                for (i, (_, item)) in config_items.iter().enumerate() {
                    if !used[i] {
                        out.push((*item).clone());
                    }
                }
                Value::Array(out)
            }
            (Value::Array(la), Value::Array(ca), ListType::Set, ListType::Set) => {
                let mut out = la.clone();
                for v in ca {
                    if !out.contains(v) {
                        out.push(v.clone());
                    }
                }
                Value::Array(out)
            }
            _ => config.clone(),
        }
    }

    /// Removes the fields in `set` from `value`. Maps emptied by the removal go too.
    pub(crate) fn remove(&mut self, value: &mut Value, set: &FieldSet) {
        for (element, child) in &set.children {
            if let Some(name) = element.strip_prefix("f:") {
                let Value::Object(map) = value else { continue };
                if child.member {
                    map.remove(name);
                    continue;
                }
                if let Some(inner) = map.get_mut(name) {
                    self.path.push(name.to_owned());
                    let was_empty = inner.as_object().is_some_and(Map::is_empty);
                    self.remove(inner, child);
                    self.path.pop();
                    if !was_empty && inner.as_object().is_some_and(Map::is_empty) {
                        map.remove(name);
                    }
                }
            } else if element.starts_with("k:") {
                let Value::Array(items) = value else { continue };
                let keys = match self.shape.list_type(&self.path()) {
                    ListType::Map(keys) => keys,
                    _ => continue,
                };
                if let Some(i) = items
                    .iter()
                    .position(|item| item_key(item, &keys).as_deref() == Some(element.as_str()))
                {
                    if child.member {
                        items.remove(i);
                    } else {
                        self.remove(&mut items[i], child);
                    }
                }
            } else if let Some(v) = element.strip_prefix("v:") {
                let Value::Array(items) = value else { continue };
                if let Ok(v) = serde_json::from_str::<Value>(v) {
                    items.retain(|item| *item != v);
                }
            }
        }
    }
}

/// One `metadata.managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ManagedEntry {
    pub(crate) manager: String,
    pub(crate) operation: String,
    pub(crate) api_version: String,
    pub(crate) time: Option<String>,
    pub(crate) subresource: String,
    pub(crate) set: FieldSet,
}

impl ManagedEntry {
    pub(crate) fn is_apply(&self) -> bool {
        self.operation == "Apply"
    }

    pub(crate) fn parse_all(object: &Value) -> Vec<ManagedEntry> {
        object["metadata"]["managedFields"]
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .map(|e| ManagedEntry {
                        manager: e["manager"].as_str().unwrap_or("").to_owned(),
                        operation: e["operation"].as_str().unwrap_or("Update").to_owned(),
                        api_version: e["apiVersion"].as_str().unwrap_or("").to_owned(),
                        time: e["time"].as_str().map(str::to_owned),
                        subresource: e["subresource"].as_str().unwrap_or("").to_owned(),
                        set: FieldSet::from_fields_v1(&e["fieldsV1"]),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn to_value(&self) -> Value {
        let mut entry = json!({
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "fieldsType": "FieldsV1",
            "fieldsV1": self.set.to_fields_v1(),
        });
        if let Some(time) = &self.time {
            entry["time"] = json!(time);
        }
        if !self.subresource.is_empty() {
            entry["subresource"] = json!(self.subresource);
        }
        entry
    }

    /// Writes entries to `metadata.managedFields`, sorted as the API server sorts them (Apply
    /// before Update, then by time, then by manager), dropping empty ones.
    pub(crate) fn store_all(object: &mut Value, mut entries: Vec<ManagedEntry>) {
        entries.retain(|e| !e.set.is_empty());
        entries.sort_by(|a, b| {
            (!a.is_apply(), &a.time, &a.manager).cmp(&(!b.is_apply(), &b.time, &b.manager))
        });
        if entries.is_empty() {
            if let Some(meta) = object["metadata"].as_object_mut() {
                meta.remove("managedFields");
            }
        } else {
            object["metadata"]["managedFields"] =
                Value::Array(entries.iter().map(ManagedEntry::to_value).collect());
        }
    }

    /// How conflicts name a manager: `"kubectl"` for appliers, `"x" using apps/v1` for updaters.
    pub(crate) fn describe(&self) -> String {
        let mut name = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            name = format!("{name} with subresource {:?}", self.subresource);
        }
        if self.is_apply() {
            name
        } else {
            match &self.time {
                Some(time) => format!("{name} using {} at {time}", self.api_version),
                None => format!("{name} using {}", self.api_version),
            }
        }
    }
}

/// Records an Update by `manager`: it takes ownership of what changed (from every other
/// manager, appliers included: updates never conflict) and everyone loses what was removed.
pub(crate) fn record_update(
    entries: &mut Vec<ManagedEntry>,
    manager: &str,
    api_version: &str,
    subresource: &str,
    changed: &FieldSet,
    removed: &FieldSet,
    now: &str,
) {
    for entry in entries.iter_mut() {
        entry.set = entry.set.difference(changed).difference(removed);
    }
    if changed.is_empty() {
        return;
    }
    let position = entries
        .iter()
        .position(|e| e.manager == manager && !e.is_apply() && e.subresource == subresource);
    let entry = match position {
        Some(i) => &mut entries[i],
        None => {
            entries.push(ManagedEntry {
                manager: manager.to_owned(),
                operation: "Update".to_owned(),
                api_version: api_version.to_owned(),
                time: None,
                subresource: subresource.to_owned(),
                set: FieldSet::default(),
            });
            let last = entries.len() - 1;
            &mut entries[last]
        }
    };
    entry.set = entry.set.union(changed);
    entry.api_version = api_version.to_owned();
    entry.time = Some(now.to_owned());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walker() -> Walker<'static> {
        Walker::new(Shape {
            kind: "Deployment",
            crd_schema: None,
        })
    }

    fn deployment(image: &str, replicas: i64) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                    {"name": "web", "image": image, "ports": [{"containerPort": 80}]}
                ]}}
            }
        })
    }

    #[test]
    fn sets_look_like_the_api_servers() {
        let set = walker()
            .set_of(&deployment("nginx", 2))
            .without_reset_fields(false, true);
        let v1 = set.to_fields_v1();
        assert_eq!(v1["f:spec"]["f:selector"], json!({}));
        let container =
            &v1["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"];
        assert_eq!(container["."], json!({}));
        assert_eq!(container["f:image"], json!({}));
        assert!(
            container["f:ports"]
                .get("k:{\"containerPort\":80,\"protocol\":\"TCP\"}")
                .is_some()
        );
        assert!(v1["f:metadata"].get("f:name").is_none());
        assert_eq!(FieldSet::from_fields_v1(&v1), set);
    }

    #[test]
    fn diff_finds_changed_and_removed_leaves() {
        let old = deployment("nginx:1", 2);
        let mut new = deployment("nginx:2", 2);
        new["metadata"]["labels"] = json!({});
        let (changed, removed) = walker().diff(Some(&old), Some(&new));
        assert_eq!(
            changed.paths(),
            vec![".spec.template.spec.containers[name=\"web\"].image".to_owned()]
        );
        assert_eq!(removed.paths(), vec![".metadata.labels.app".to_owned()]);
    }

    #[test]
    fn merge_and_remove_follow_list_keys() {
        let live = deployment("nginx:1", 2);
        let config = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "sidecar", "image": "envoy"},
            {"name": "web", "image": "nginx:2"}
        ]}}}});
        let mut w = walker();
        let mut merged = w.merge(&live, &config);
        let containers = merged["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap();
        assert_eq!(containers.len(), 2);
        assert_eq!(containers[0]["image"], "nginx:2");
        assert_eq!(containers[0]["ports"][0]["containerPort"], 80);
        assert_eq!(containers[1]["name"], "sidecar");
        let mut gone = FieldSet::default();
        let mut containers_set = FieldSet::default();
        containers_set
            .children
            .insert("k:{\"name\":\"sidecar\"}".to_owned(), FieldSet::leaf());
        let mut spec2 = FieldSet::default();
        spec2
            .children
            .insert("f:containers".to_owned(), containers_set);
        let mut template = FieldSet::default();
        template.children.insert("f:spec".to_owned(), spec2);
        let mut spec = FieldSet::default();
        spec.children.insert("f:template".to_owned(), template);
        gone.children.insert("f:spec".to_owned(), spec);
        w.remove(&mut merged, &gone);
        assert_eq!(
            merged["spec"]["template"]["spec"]["containers"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn updates_take_ownership_from_others() {
        let a = walker().set_of(&json!({"spec": {"replicas": 1, "paused": false}}));
        let mut entries = vec![ManagedEntry {
            manager: "ferry".into(),
            operation: "Apply".into(),
            api_version: "apps/v1".into(),
            time: None,
            subresource: String::new(),
            set: a,
        }];
        let changed = walker().set_of(&json!({"spec": {"replicas": 3}}));
        record_update(
            &mut entries,
            "kubectl-scale",
            "apps/v1",
            "",
            &changed,
            &FieldSet::default(),
            "now",
        );
        assert_eq!(entries[0].set.paths(), vec![".spec.paused".to_owned()]);
        assert_eq!(entries[1].set.paths(), vec![".spec.replicas".to_owned()]);
        assert_eq!(
            entries[1].describe(),
            "\"kubectl-scale\" using apps/v1 at now"
        );
    }
}
