//! Changes to a zone, as the planner produces them and providers apply them.

use std::fmt;

use serde::Serialize;

use crate::record::{RecordKey, RecordSet};

/// One change to one record set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum Change {
    /// Create a record set that does not exist.
    Create {
        /// What to create.
        record: RecordSet,
    },
    /// Replace a record set's content. `old` is what was read; providers that can check it
    /// (RFC 2136 prerequisites, Route53 exact deletes, Azure ETags) refuse the change when the
    /// zone no longer holds it.
    Update {
        /// What the zone held when it was read.
        old: RecordSet,
        /// What it should hold.
        new: RecordSet,
    },
    /// Delete a record set.
    Delete {
        /// What the zone held when it was read.
        record: RecordSet,
    },
}

impl Change {
    /// The name and type the change is about.
    pub fn key(&self) -> RecordKey {
        match self {
            Change::Create { record } | Change::Delete { record } => record.key(),
            Change::Update { new, .. } => new.key(),
        }
    }

    /// The verb, for reports.
    pub fn verb(&self) -> &'static str {
        match self {
            Change::Create { .. } => "create",
            Change::Update { .. } => "update",
            Change::Delete { .. } => "delete",
        }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Create { record } => write!(f, "+ {record}"),
            Change::Delete { record } => write!(f, "- {record}"),
            Change::Update { old, new } => write!(f, "~ {new} (was {})", describe_old(old, new)),
        }
    }
}

fn describe_old(old: &RecordSet, new: &RecordSet) -> String {
    let mut parts = Vec::new();
    if old.values != new.values || old.alias != new.alias {
        parts.push(old.describe_values());
    }
    if old.alias.is_none() && new.alias.is_none() && old.ttl != new.ttl {
        parts.push(format!("ttl={}", old.ttl));
    }
    if old.proxied != new.proxied {
        parts.push(format!("proxied={}", old.proxied.unwrap_or(false)));
    }
    if parts.is_empty() {
        old.describe_values()
    } else {
        parts.join(" ")
    }
}

/// An ordered list of changes to one zone.
///
/// The order is part of the contract: a provider that cannot apply the set atomically applies
/// it in this order, which the planner chooses so that a failure part-way leaves every name
/// resolving and every record ferry created owned: ownership TXT values are written first;
/// a record set being replaced by one of another type is deleted immediately before its
/// replacement is created; removals of names come last, their ownership values after them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ChangeSet {
    changes: Vec<Change>,
}

impl ChangeSet {
    /// An empty change set.
    pub fn new() -> Self {
        ChangeSet::default()
    }

    /// Appends a change.
    pub fn push(&mut self, change: Change) {
        self.changes.push(change);
    }

    /// The changes, in order.
    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// How many changes there are.
    pub fn len(&self) -> usize {
        self.changes.len()
    }

    /// Iterates over the changes in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Change> {
        self.changes.iter()
    }
}

impl From<Vec<Change>> for ChangeSet {
    fn from(changes: Vec<Change>) -> Self {
        ChangeSet { changes }
    }
}

impl<'a> IntoIterator for &'a ChangeSet {
    type Item = &'a Change;
    type IntoIter = std::slice::Iter<'a, Change>;
    fn into_iter(self) -> Self::IntoIter {
        self.changes.iter()
    }
}
