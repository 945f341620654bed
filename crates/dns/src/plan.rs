//! The planner: a pure function from what a zone holds and what it should hold to the changes
//! that get there, filtered by ownership and policy.
//!
//! Rules, in the order they apply:
//!
//! 1. Desired record sets are checked first: inside the zone, one set per name and type, no
//!    CNAME beside other types, no CNAME at the apex unless the provider flattens it.
//! 2. For each desired set, everything at its name that it would replace or clash with (the
//!    set of the same type; any other type when it is a CNAME; a CNAME when it is not) must be
//!    ferry's: claimed by an ownership record with ferry's owner id (or a previous owner id
//!    being switched from). Anything else is a [`Conflict`], reported and never touched, unless
//!    `adopt` is set, which takes it over. TXT values that are not ownership records are never
//!    adopted: ferry does not delete someone's SPF record to make room for a CNAME.
//! 3. A set that already holds the desired content is left alone ([`RecordSet::satisfies`]
//!    compares canonical values; TTL is ignored for aliases and the proxy flag only counts when
//!    the config sets it), so a second run plans nothing.
//! 4. At a managed name ferry owns the answer: its own sets of managed types that are no
//!    longer wanted there (an AAAA after the target became IPv4-only, an A after it became a
//!    hostname) are deleted.
//! 5. Policies: `create-only` only creates; `upsert-only` (the default) creates and changes
//!    managed names but never removes a name; `sync` also deletes ferry's own records at names
//!    no longer configured: those whose ownership records carry ferry's owner id *and* its
//!    resource label (`ferry/APP/ENV`), so another environment of the app sharing the zone
//!    (with the same default owner id) never loses its names. What a policy holds back is
//!    reported as [`Skipped`].
//! 6. Ownership records are written before the records they claim and removed after them
//!    (see [`ChangeSet`] for why the order matters).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::change::{Change, ChangeSet};
use crate::error::DnsError;
use crate::name::DnsName;
use crate::ownership::{Claims, Labels, OwnerId, TxtNaming};
use crate::provider::Capabilities;
use crate::record::{RecordKey, RecordSet, RecordType};

/// What the planner may do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// Create, update and delete: names ferry owns that are no longer configured are removed.
    Sync,
    /// Create and update, never remove a name (external-dns's default).
    #[default]
    UpsertOnly,
    /// Only create record sets that do not exist.
    CreateOnly,
}

impl std::fmt::Display for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Policy::Sync => "sync",
            Policy::UpsertOnly => "upsert-only",
            Policy::CreateOnly => "create-only",
        })
    }
}

/// Who ferry is in the zone's ownership records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ownership {
    /// The owner id written into ownership records.
    pub owner: OwnerId,
    /// The `resource` label (`ferry/APP/ENV`).
    pub resource: String,
    /// How ownership records are named.
    pub naming: TxtNaming,
    /// Owner ids whose records are taken over as ferry's own (used by `ferry dns switch` when
    /// the two environments have different owner ids).
    pub previous_owners: Vec<OwnerId>,
}

impl Ownership {
    /// Ownership with an owner id and resource label, default naming and no previous owners.
    pub fn new(owner: OwnerId, resource: impl Into<String>) -> Result<Self, DnsError> {
        let resource = resource.into();
        crate::ownership::check_label_value("resource label", &resource)?;
        Ok(Ownership {
            owner,
            resource,
            naming: TxtNaming::default(),
            previous_owners: Vec::new(),
        })
    }

    fn value(&self) -> String {
        Labels::new(&self.owner, &self.resource).serialize()
    }

    fn is_ours(&self, owner: Option<&str>) -> bool {
        owner.is_some_and(|o| {
            o == self.owner.as_str() || self.previous_owners.iter().any(|p| p.as_str() == o)
        })
    }
}

/// Everything the planner needs.
#[derive(Clone, Debug)]
pub struct PlanRequest<'a> {
    /// The zone.
    pub zone: &'a DnsName,
    /// Every record set the zone holds now.
    pub current: &'a [RecordSet],
    /// The record sets ferry wants (after the provider's canonicalisation).
    pub desired: &'a [RecordSet],
    /// Who ferry is.
    pub ownership: &'a Ownership,
    /// What ferry may do.
    pub policy: Policy,
    /// Take over records at managed names that ferry does not own.
    pub adopt: bool,
    /// What the provider can do.
    pub capabilities: Capabilities,
}

/// A record at a name ferry manages that is not ferry's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Conflict {
    /// The record set in the way.
    pub existing: RecordSet,
    /// The record set ferry wanted.
    pub wanted: RecordKey,
    /// Its owner id, if an ownership record names one.
    pub owner: Option<String>,
    /// Why it is in the way, and what to do.
    pub reason: String,
}

/// A change the policy held back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The change.
    pub change: Change,
    /// Why it was held back.
    pub reason: String,
}

/// The planner's answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The changes to apply, in order.
    pub changes: ChangeSet,
    /// Records in the way, not touched.
    pub conflicts: Vec<Conflict>,
    /// Changes the policy held back.
    pub skipped: Vec<Skipped>,
    /// Record sets taken over with `adopt`.
    pub adopted: Vec<RecordKey>,
    /// Desired record sets the zone already holds.
    pub in_sync: Vec<RecordKey>,
}

impl Plan {
    /// Whether there is nothing to apply.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

#[derive(Default)]
struct TxtEdit {
    /// Owner ids whose values to remove.
    strip: BTreeSet<String>,
    /// Whether to add ferry's value.
    add: bool,
    /// TTL for a new TXT set.
    ttl: u32,
}

/// Plans the changes that make the zone hold `desired`. Pure: reads nothing but its input.
pub fn plan(req: &PlanRequest<'_>) -> Result<Plan, DnsError> {
    check_desired(req)?;
    let zone = req.zone;
    let own = req.ownership;
    let naming = &own.naming;
    let claims = Claims::read(naming, zone, req.current.iter());
    let current: BTreeMap<RecordKey, &RecordSet> =
        req.current.iter().map(|rs| (rs.key(), rs)).collect();
    let mut by_name: BTreeMap<&DnsName, Vec<&RecordSet>> = BTreeMap::new();
    for rs in req.current {
        by_name.entry(&rs.name).or_default().push(rs);
    }
    let desired_keys: BTreeSet<RecordKey> = req.desired.iter().map(RecordSet::key).collect();
    let desired_names: BTreeSet<&DnsName> = req.desired.iter().map(|d| &d.name).collect();
    let claims_of = |name: &DnsName, rtype: &RecordType, alias: bool| {
        claims.claims(naming, zone, name, rtype, alias)
    };

    let mut plan = Plan::default();
    let mut txt: BTreeMap<DnsName, TxtEdit> = BTreeMap::new();
    let mut main: Vec<Change> = Vec::new();
    let mut removals: Vec<Change> = Vec::new();
    let mut handled: BTreeSet<RecordKey> = BTreeSet::new();

    let mut desired: Vec<&RecordSet> = req.desired.iter().collect();
    desired.sort_by_key(|a| a.key());
    for d in desired {
        let at_name = by_name.get(&d.name).cloned().unwrap_or_default();
        let txt_name = naming.txt_name(zone, &d.name, &d.record_type);
        let own_txt_name = txt_name.clone().unwrap_or_else(|| d.name.clone());
        let mut conflicts = Vec::new();
        let mut replaced: Vec<&RecordSet> = Vec::new(); // same type, ours or adopted
        let mut clashing: Vec<&RecordSet> = Vec::new(); // other types in the way, ours or adopted
        let mut adopted = Vec::new();
        let mut strip_at: Vec<(DnsName, String)> = Vec::new();

        // The ownership record's own name must be free for a TXT.
        if let Some(tn) = &txt_name {
            let key = RecordKey {
                name: tn.clone(),
                record_type: RecordType::Cname,
            };
            if let Some(cname) = current.get(&key).filter(|_| !handled.contains(&key)) {
                conflicts.push(Conflict {
                    existing: (*cname).clone(),
                    wanted: d.key(),
                    owner: None,
                    reason: format!(
                        "the ownership record of {} would be a TXT at {tn}, where a CNAME is; \
                         set txt_prefix (or txt_suffix) so ownership records go elsewhere",
                        d.key()
                    ),
                });
            }
        }

        for e in &at_name {
            let same = e.record_type == d.record_type;
            let clash =
                (d.record_type == RecordType::Cname) != (e.record_type == RecordType::Cname);
            // An old-format claim covers every type at its name: whatever managed set it would
            // cover must be ferry's (or adopted), and goes unless it is wanted.
            let legacy = txt_name.is_none() && e.record_type.is_managed() && !same && !clash;
            let covered = legacy && !desired_keys.contains(&e.key());
            // Wanted too, under the same old-format claim: its own turn changes it, but its
            // owner must be ferry for this set's claim to be written.
            let co_claimed = legacy && desired_keys.contains(&e.key());
            if (!same && !clash && !covered && !co_claimed) || handled.contains(&e.key()) {
                continue;
            }
            if e.record_type == RecordType::Txt {
                // Only a CNAME clashes with a TXT. Ownership values (ours, or another owner's
                // with adopt) may go; other text never does.
                let blocking: Vec<&String> = e
                    .values
                    .iter()
                    .filter(|v| match Labels::parse(v) {
                        Some(l) => !(own.is_ours(l.owner()) || req.adopt),
                        None => true,
                    })
                    .collect();
                if blocking.is_empty() {
                    clashing.push(e);
                } else {
                    conflicts.push(Conflict {
                        existing: (*e).clone(),
                        wanted: d.key(),
                        owner: None,
                        reason: format!(
                            "a CNAME cannot share its name with other records, and {} holds TXT \
                             values that are not ownership records ({}); ferry never removes \
                             those: move them, or point {} with an address target",
                            e.name,
                            blocking
                                .iter()
                                .map(|v| format!("{v:?}"))
                                .collect::<Vec<_>>()
                                .join(", "),
                            d.name
                        ),
                    });
                }
                continue;
            }
            let held = claims_of(&e.name, &e.record_type, e.alias.is_some());
            let owned = owner_of(own, held);
            if owned == Owned::Ours {
                strip_at.extend(claim_locations(held));
            } else if req.adopt {
                adopted.push(e.key());
                strip_at.extend(claim_locations(held));
            } else {
                let owner = match owned {
                    Owned::Foreign(o) => Some(o),
                    _ => None,
                };
                let reason = match &owner {
                    Some(o) => format!(
                        "{} is owned by `{o}` (external-dns owner id), not `{}`; {}",
                        e.key(),
                        own.owner,
                        take_over_hint(own, held)
                    ),
                    None => format!(
                        "{} exists and has no ownership record, so ferry did not create it; \
                         pass --adopt to take it over",
                        e.key()
                    ),
                };
                conflicts.push(Conflict {
                    existing: (*e).clone(),
                    wanted: d.key(),
                    owner,
                    reason,
                });
                continue;
            }
            if co_claimed {
                continue;
            }
            if same {
                replaced.push(e);
            } else {
                clashing.push(e);
            }
        }

        // A name and type claimed by another owner stays theirs even while it has no record.
        if !at_name.iter().any(|e| e.record_type == d.record_type) {
            let held = claims_of(&d.name, &d.record_type, d.alias.is_some());
            match owner_of(own, held) {
                Owned::Ours => {}
                Owned::Unowned => {}
                Owned::Foreign(_) if req.adopt => strip_at.extend(claim_locations(held)),
                Owned::Foreign(o) => conflicts.push(Conflict {
                    existing: RecordSet {
                        name: held[0].txt_name.clone(),
                        record_type: RecordType::Txt,
                        ttl: 0,
                        values: held.iter().map(|c| c.value.clone()).collect(),
                        proxied: None,
                        alias: None,
                    },
                    wanted: d.key(),
                    owner: Some(o.clone()),
                    reason: format!(
                        "{} is claimed by owner `{o}` (its ownership record {} exists); {}",
                        d.key(),
                        held[0].txt_name,
                        take_over_hint(own, held)
                    ),
                }),
            }
        }

        if !conflicts.is_empty() {
            plan.conflicts.extend(conflicts);
            continue;
        }
        plan.adopted.extend(adopted);

        // What to do with the desired set itself.
        let mut pair: Vec<Change> = clashing
            .iter()
            .map(|e| Change::Delete {
                record: (*e).clone(),
            })
            .collect();
        let main_change = match replaced.first() {
            Some(old) if old.satisfies(d) => None,
            Some(old) => Some(Change::Update {
                old: (*old).clone(),
                new: merged(old, d),
            }),
            None => Some(Change::Create { record: d.clone() }),
        };
        let is_plain_create =
            clashing.is_empty() && matches!(main_change, Some(Change::Create { .. }) | None);
        if req.policy == Policy::CreateOnly && !is_plain_create {
            for c in pair.drain(..).chain(main_change) {
                plan.skipped.push(Skipped {
                    change: c,
                    reason: "policy create-only never changes or removes existing records".into(),
                });
            }
            continue;
        }
        match main_change {
            None => plan.in_sync.push(d.key()),
            Some(c) => pair.push(c),
        }
        main.extend(pair);
        for e in replaced.iter().chain(&clashing) {
            handled.insert(e.key());
        }

        // Ownership: ferry's value at this set's ownership name; other owners' values for what
        // was taken over come off; so do the claims of sets replaced by another type.
        let edit = txt.entry(own_txt_name).or_default();
        edit.add = true;
        edit.ttl = d.ttl.max(1);
        edit.strip.insert(own.owner.to_string());
        for (name, owner) in strip_at {
            let e = txt.entry(name).or_default();
            e.strip.insert(owner);
            e.strip.insert(own.owner.to_string());
        }
    }

    // Ferry's own leftovers: at managed names always (rule 4), elsewhere with sync (rule 5).
    for rs in req.current {
        if !rs.record_type.is_managed()
            || desired_keys.contains(&rs.key())
            || handled.contains(&rs.key())
        {
            continue;
        }
        let held = claims_of(&rs.name, &rs.record_type, rs.alias.is_some());
        let at_managed_name = desired_names.contains(&rs.name);
        let ours = if at_managed_name {
            owner_of(own, held) == Owned::Ours
        } else {
            // Elsewhere only what this environment wrote: the owner id defaults to the app's
            // name, so another environment of the app sharing the zone has the same one.
            !held.is_empty()
                && held.iter().all(|c| {
                    c.owner.as_deref() == Some(own.owner.as_str())
                        && c.resource.as_deref() == Some(own.resource.as_str())
                })
        };
        if !ours {
            continue;
        }
        // A managed name whose desired sets conflicted is left as it is.
        if at_managed_name && plan.conflicts.iter().any(|c| c.wanted.name == rs.name) {
            continue;
        }
        let change = Change::Delete { record: rs.clone() };
        let allowed = match req.policy {
            Policy::CreateOnly => false,
            Policy::UpsertOnly => at_managed_name,
            Policy::Sync => true,
        };
        if !allowed {
            plan.skipped.push(Skipped {
                change,
                reason: if at_managed_name {
                    "policy create-only never removes records".into()
                } else {
                    format!(
                        "{} is no longer configured; policy {} keeps it (policy sync removes it)",
                        rs.name, req.policy
                    )
                },
            });
            continue;
        }
        removals.push(change);
        for (name, owner) in claim_locations(held) {
            let e = txt.entry(name).or_default();
            e.strip.insert(own.owner.to_string());
            e.strip.insert(owner);
        }
    }

    // Ownership TXT sets: additions first, removals last.
    let value = own.value();
    let mut txt_first = Vec::new();
    let mut txt_last = Vec::new();
    let removed_before: BTreeSet<RecordKey> = main
        .iter()
        .filter_map(|c| match c {
            Change::Delete { record } if record.record_type == RecordType::Txt => {
                Some(record.key())
            }
            _ => None,
        })
        .collect();
    for (name, edit) in txt {
        let key = RecordKey {
            name: name.clone(),
            record_type: RecordType::Txt,
        };
        let existing = if removed_before.contains(&key) {
            None
        } else {
            current.get(&key).copied()
        };
        let mut values: BTreeSet<String> = existing
            .map(|e| {
                e.values
                    .iter()
                    .filter(|v| match Labels::parse(v) {
                        Some(l) => !l.owner().is_some_and(|o| edit.strip.contains(o)),
                        None => true,
                    })
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        if edit.add {
            values.insert(value.clone());
        }
        let values: Vec<String> = values.into_iter().collect();
        let change = match (existing, values.is_empty()) {
            (None, true) => None,
            (None, false) => Some(Change::Create {
                record: RecordSet {
                    name,
                    record_type: RecordType::Txt,
                    ttl: edit.ttl.max(1),
                    values,
                    proxied: None,
                    alias: None,
                },
            }),
            (Some(e), true) => Some(Change::Delete { record: e.clone() }),
            (Some(e), false) if e.values == values => None,
            (Some(e), false) => Some(Change::Update {
                old: e.clone(),
                new: RecordSet {
                    values,
                    ..e.clone()
                },
            }),
        };
        if let Some(c) = change {
            if edit.add {
                txt_first.push(c);
            } else {
                txt_last.push(c);
            }
        }
    }

    // A TXT cannot be written where a CNAME still is: ownership values at a name whose CNAME
    // is being replaced follow the replacement.
    let cname_goes: BTreeSet<DnsName> = main
        .iter()
        .filter_map(|c| match c {
            Change::Delete { record } if record.record_type == RecordType::Cname => {
                Some(record.name.clone())
            }
            _ => None,
        })
        .collect();
    let (txt_after, txt_first): (Vec<Change>, Vec<Change>) = txt_first
        .into_iter()
        .partition(|c| cname_goes.contains(&c.key().name));

    plan.adopted.sort();
    plan.adopted.dedup();
    let mut changes = ChangeSet::new();
    for c in txt_first
        .into_iter()
        .chain(main)
        .chain(txt_after)
        .chain(removals)
        .chain(txt_last)
    {
        changes.push(c);
    }
    plan.changes = changes;
    Ok(plan)
}

#[derive(Debug, PartialEq, Eq)]
enum Owned {
    /// Every claim names ferry's owner id (or a previous one).
    Ours,
    /// No ownership record.
    Unowned,
    /// Another owner id claims it (the first such one).
    Foreign(String),
}

fn owner_of(own: &Ownership, claims: &[crate::ownership::Claim]) -> Owned {
    if claims.is_empty() {
        return Owned::Unowned;
    }
    match claims.iter().find(|c| !own.is_ours(c.owner.as_deref())) {
        None => Owned::Ours,
        Some(c) => Owned::Foreign(c.owner.clone().unwrap_or_else(|| "(no owner label)".into())),
    }
}

/// How to take over a name another owner holds. When it is another environment of the same
/// ferry app (resource `ferry/APP/OTHER`), `ferry dns switch` is the way to move it here.
fn take_over_hint(own: &Ownership, claims: &[crate::ownership::Claim]) -> String {
    let app_prefix = own
        .resource
        .rsplit_once('/')
        .map(|(prefix, _)| format!("{prefix}/"));
    let other_env = claims
        .iter()
        .filter(|c| !own.is_ours(c.owner.as_deref()))
        .filter_map(|c| c.resource.as_deref())
        .find_map(|r| r.strip_prefix(app_prefix.as_deref()?))
        .filter(|env| !env.is_empty() && !env.contains('/'));
    let this_env = own.resource.rsplit_once('/').map(|(_, env)| env);
    match (other_env, this_env) {
        (Some(from), Some(to)) if from != to => format!(
            "it belongs to this app's environment `{from}`: `ferry dns switch --env {from} --to \
             {to}` moves it here (or pass --adopt to take it over)"
        ),
        _ => "pass --adopt to take it over, or give this environment that owner id".to_owned(),
    }
}

fn claim_locations(claims: &[crate::ownership::Claim]) -> Vec<(DnsName, String)> {
    claims
        .iter()
        .filter_map(|c| Some((c.txt_name.clone(), c.owner.clone()?)))
        .collect()
}

/// The new content of an updated set: the desired content, keeping the current proxy flag when
/// the config does not set one.
fn merged(old: &RecordSet, desired: &RecordSet) -> RecordSet {
    let mut new = desired.clone();
    if new.proxied.is_none() {
        new.proxied = old.proxied;
    }
    if new.proxied == Some(true) {
        // Proxied records have the automatic TTL (Cloudflare's 1).
        new.ttl = 1;
    }
    new
}

fn check_desired(req: &PlanRequest<'_>) -> Result<(), DnsError> {
    let mut seen = BTreeSet::new();
    let mut types_at: BTreeMap<&DnsName, Vec<&RecordType>> = BTreeMap::new();
    for d in req.desired {
        if !d.name.is_in(req.zone) {
            return Err(DnsError::invalid(format!(
                "{} is not in zone {}",
                d.name, req.zone
            )));
        }
        if !d.record_type.is_managed() {
            return Err(DnsError::invalid(format!(
                "ferry points names with A, AAAA and CNAME records, not {} ({})",
                d.record_type, d.name
            )));
        }
        if !seen.insert(d.key()) {
            return Err(DnsError::invalid(format!("{} is asked for twice", d.key())));
        }
        types_at.entry(&d.name).or_default().push(&d.record_type);
        if d.record_type == RecordType::Cname
            && d.name == *req.zone
            && !req.capabilities.cname_at_apex
        {
            return Err(DnsError::invalid(format!(
                "{} is the zone apex, where a CNAME cannot live; give the apex an IP target \
                 (A/AAAA), use Route53 (alias records) or Cloudflare (CNAME flattening), or \
                 manage only names below the apex",
                d.name
            )));
        }
    }
    for (name, types) in types_at {
        if types.len() > 1 && types.contains(&&RecordType::Cname) {
            return Err(DnsError::invalid(format!(
                "{name} is asked to be a CNAME and also to have other records; a CNAME stands alone"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
