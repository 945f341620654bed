//! Object storage: JSON objects keyed by group/resource, namespace and name, one global
//! resourceVersion counter, and a bounded history of changes per resource type so a watch can
//! resume from a resourceVersion (older ones get `410 Gone`, as after an etcd compaction).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use serde_json::Value;

use crate::resources::GroupResource;

/// A stored object. Shared: lists, watches and the history hold the same allocation.
pub(crate) type Obj = Arc<Value>;

/// The kind of a change, as a watch event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

impl ChangeKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Added => "ADDED",
            ChangeKind::Modified => "MODIFIED",
            ChangeKind::Deleted => "DELETED",
        }
    }
}

/// One change, kept for watches.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    pub(crate) rv: u64,
    pub(crate) kind: ChangeKind,
    /// The object after the change (for deletions: the last state, with the deletion's
    /// resourceVersion).
    pub(crate) object: Obj,
    /// The object before the change, so a watch with a selector can tell an object that
    /// stopped matching (sent as DELETED) from one that never matched.
    pub(crate) previous: Option<Obj>,
}

/// Where an object lives, for the uid index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ObjRef {
    pub(crate) gr: GroupResource,
    pub(crate) namespace: String,
    pub(crate) name: String,
}

#[derive(Debug, Default)]
struct Table {
    objects: BTreeMap<(String, String), Obj>,
    history: VecDeque<Change>,
    /// Changes with a resourceVersion at or below this are no longer in `history`.
    compacted: u64,
}

/// The whole object store.
#[derive(Debug)]
pub(crate) struct Store {
    rv: u64,
    tables: HashMap<GroupResource, Table>,
    uids: HashMap<String, ObjRef>,
    /// Objects by the uids of their owners (every owner reference), for controllers and the
    /// garbage collector.
    children: HashMap<String, std::collections::HashSet<ObjRef>>,
    history_limit: usize,
}

/// The watch asked to resume from a resourceVersion older than the kept history.
#[derive(Debug)]
pub(crate) struct TooOld {
    pub(crate) oldest: u64,
}

pub(crate) fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj["metadata"][field].as_str().unwrap_or("")
}

/// The strings of a JSON array (other items and other values give none).
pub(crate) fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// The metadata the server sets and no client can: dropped from what clients send, owned by
/// no field manager.
pub(crate) const SERVER_METADATA: [&str; 8] = [
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

impl Store {
    pub(crate) fn new(history_limit: usize) -> Self {
        Store {
            rv: 0,
            tables: HashMap::new(),
            uids: HashMap::new(),
            children: HashMap::new(),
            history_limit,
        }
    }

    /// Restores a store from persisted objects at resourceVersion `rv`. There is no history:
    /// watches from older versions get 410 and relist.
    pub(crate) fn restore(
        history_limit: usize,
        rv: u64,
        objects: Vec<(GroupResource, Value)>,
    ) -> Self {
        let mut store = Store::new(history_limit);
        store.rv = rv;
        for (gr, object) in objects {
            let at = store.locate(&gr, &object);
            store.link(&object, &at);
            let table = store.tables.entry(gr).or_default();
            table.compacted = rv;
            table
                .objects
                .insert((at.namespace, at.name), Arc::new(object));
        }
        store
    }

    pub(crate) fn set_history_limit(&mut self, limit: usize) {
        self.history_limit = limit;
    }

    /// The latest resourceVersion.
    pub(crate) fn rv(&self) -> u64 {
        self.rv
    }

    pub(crate) fn get(&self, gr: &GroupResource, namespace: &str, name: &str) -> Option<Obj> {
        self.tables
            .get(gr)?
            .objects
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    /// Objects of a type, in namespace/name order; only those in `namespace` when given.
    pub(crate) fn list<'a>(
        &'a self,
        gr: &GroupResource,
        namespace: Option<&'a str>,
    ) -> Box<dyn Iterator<Item = &'a Obj> + 'a> {
        let Some(table) = self.tables.get(gr) else {
            return Box::new(std::iter::empty());
        };
        match namespace {
            Some(ns) => Box::new(
                table
                    .objects
                    .range((ns.to_owned(), String::new())..)
                    .take_while(move |((n, _), _)| n == ns)
                    .map(|(_, o)| o),
            ),
            None => Box::new(table.objects.values()),
        }
    }

    /// Objects of a type after `after` (namespace, name), for paged lists.
    pub(crate) fn list_after<'a>(
        &'a self,
        gr: &GroupResource,
        after: &(String, String),
    ) -> Box<dyn Iterator<Item = &'a Obj> + 'a> {
        let Some(table) = self.tables.get(gr) else {
            return Box::new(std::iter::empty());
        };
        Box::new(
            table
                .objects
                .range::<(String, String), _>((
                    std::ops::Bound::Excluded(after.clone()),
                    std::ops::Bound::Unbounded,
                ))
                .map(|(_, o)| o),
        )
    }

    pub(crate) fn count(&self, gr: &GroupResource) -> usize {
        self.tables.get(gr).map_or(0, |t| t.objects.len())
    }

    /// Every object of every type (for persistence).
    pub(crate) fn all(&self) -> impl Iterator<Item = (&GroupResource, &Obj)> {
        self.tables
            .iter()
            .flat_map(|(gr, table)| table.objects.values().map(move |o| (gr, o)))
    }

    pub(crate) fn by_uid(&self, uid: &str) -> Option<&ObjRef> {
        self.uids.get(uid)
    }

    fn owner_uids(object: &Value) -> Vec<String> {
        object["metadata"]["ownerReferences"]
            .as_array()
            .map(|refs| {
                refs.iter()
                    .filter_map(|r| r["uid"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn unlink(&mut self, object: &Value, at: &ObjRef) {
        for owner in Self::owner_uids(object) {
            if let Some(set) = self.children.get_mut(&owner) {
                set.remove(at);
                if set.is_empty() {
                    self.children.remove(&owner);
                }
            }
        }
    }

    /// Where `object` of type `gr` is kept; its uid is recorded as pointing there.
    fn locate(&mut self, gr: &GroupResource, object: &Value) -> ObjRef {
        let at = ObjRef {
            gr: gr.clone(),
            namespace: meta_str(object, "namespace").to_owned(),
            name: meta_str(object, "name").to_owned(),
        };
        let uid = meta_str(object, "uid");
        if !uid.is_empty() {
            self.uids.insert(uid.to_owned(), at.clone());
        }
        at
    }

    fn link(&mut self, object: &Value, at: &ObjRef) {
        for owner in Self::owner_uids(object) {
            self.children.entry(owner).or_default().insert(at.clone());
        }
    }

    /// Objects that name `owner_uid` in an owner reference.
    pub(crate) fn children_of(&self, owner_uid: &str) -> Vec<ObjRef> {
        self.children
            .get(owner_uid)
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    /// Stores `object` (new or replacing), stamping a new resourceVersion. Returns the stored
    /// object.
    pub(crate) fn put(&mut self, gr: &GroupResource, mut object: Value) -> Obj {
        let rv = self.next_rv();
        object["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        let at = self.locate(gr, &object);
        let key = (at.namespace.clone(), at.name.clone());
        let object = Arc::new(object);
        let limit = self.history_limit;
        let table = self.tables.entry(gr.clone()).or_default();
        let previous = table.objects.insert(key, Arc::clone(&object));
        if let Some(previous) = &previous {
            let previous = Arc::clone(previous);
            self.unlink(&previous, &at);
        }
        self.link(&object, &at);
        let table = self.tables.entry(gr.clone()).or_default();
        let kind = if previous.is_some() {
            ChangeKind::Modified
        } else {
            ChangeKind::Added
        };
        Self::record(
            table,
            limit,
            Change {
                rv,
                kind,
                object: Arc::clone(&object),
                previous,
            },
        );
        object
    }

    /// Removes an object. The returned last state carries the deletion's resourceVersion.
    pub(crate) fn remove(
        &mut self,
        gr: &GroupResource,
        namespace: &str,
        name: &str,
    ) -> Option<Obj> {
        let key = (namespace.to_owned(), name.to_owned());
        if !self
            .tables
            .get(gr)
            .is_some_and(|t| t.objects.contains_key(&key))
        {
            return None;
        }
        let rv = self.next_rv();
        let limit = self.history_limit;
        let table = self.tables.get_mut(gr)?;
        let previous = table.objects.remove(&key)?;
        let uid = meta_str(&previous, "uid").to_owned();
        self.uids.remove(&uid);
        let at = ObjRef {
            gr: gr.clone(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        };
        self.unlink(&previous, &at);
        let table = self.tables.get_mut(gr)?;
        let mut last = (*previous).clone();
        last["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        let last = Arc::new(last);
        Self::record(
            table,
            limit,
            Change {
                rv,
                kind: ChangeKind::Deleted,
                object: Arc::clone(&last),
                previous: Some(previous),
            },
        );
        Some(last)
    }

    fn record(table: &mut Table, limit: usize, change: Change) {
        table.history.push_back(change);
        while table.history.len() > limit {
            if let Some(dropped) = table.history.pop_front() {
                table.compacted = dropped.rv;
            }
        }
    }

    /// Changes of a type after resourceVersion `since`, oldest first.
    pub(crate) fn changes_since(
        &self,
        gr: &GroupResource,
        since: u64,
    ) -> Result<Vec<Change>, TooOld> {
        let Some(table) = self.tables.get(gr) else {
            return Ok(Vec::new());
        };
        if since < table.compacted {
            return Err(TooOld {
                oldest: table.compacted,
            });
        }
        let start = table.history.partition_point(|c| c.rv <= since);
        Ok(table.history.range(start..).cloned().collect())
    }

    /// Drops every object of a type (when its CRD goes away), recording deletions.
    pub(crate) fn drop_type(&mut self, gr: &GroupResource) {
        let keys: Vec<(String, String)> = self
            .tables
            .get(gr)
            .map(|t| t.objects.keys().cloned().collect())
            .unwrap_or_default();
        for (ns, name) in keys {
            self.remove(gr, &ns, &name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cm(ns: &str, name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"namespace": ns, "name": name, "uid": format!("uid-{ns}-{name}")}})
    }

    #[test]
    fn resource_versions_grow_and_history_resumes() {
        let gr = GroupResource::new("", "configmaps");
        let mut store = Store::new(3);
        let a = store.put(&gr, cm("a", "one"));
        assert_eq!(meta_str(&a, "resourceVersion"), "1");
        store.put(&gr, cm("b", "two"));
        store.put(&gr, cm("a", "one"));
        let gone = store.remove(&gr, "b", "two").unwrap();
        assert_eq!(meta_str(&gone, "resourceVersion"), "4");
        let changes = store.changes_since(&gr, 2).unwrap();
        assert_eq!(
            changes.iter().map(|c| (c.rv, c.kind)).collect::<Vec<_>>(),
            vec![(3, ChangeKind::Modified), (4, ChangeKind::Deleted)]
        );
        // history holds 3 changes: version 1 is compacted away
        assert!(store.changes_since(&gr, 0).is_err());
        assert!(store.changes_since(&gr, 1).is_ok());
        assert_eq!(store.list(&gr, Some("a")).count(), 1);
        assert_eq!(store.list(&gr, None).count(), 1);
        assert!(store.by_uid("uid-b-two").is_none());
        assert_eq!(store.by_uid("uid-a-one").unwrap().name, "one");
    }

    #[test]
    fn namespace_listing_does_not_leak_prefixes() {
        let gr = GroupResource::new("", "configmaps");
        let mut store = Store::new(10);
        store.put(&gr, cm("ns", "x"));
        store.put(&gr, cm("ns-2", "y"));
        let names: Vec<_> = store
            .list(&gr, Some("ns"))
            .map(|o| meta_str(o, "name").to_owned())
            .collect();
        assert_eq!(names, vec!["x"]);
    }
}
