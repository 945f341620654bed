//! [`InMemoryProvider`]: a zone in memory that behaves like a strict authoritative server, for
//! tests and for the simulator.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use crate::change::{Change, ChangeSet};
use crate::error::DnsError;
use crate::name::DnsName;
use crate::provider::{Capabilities, DnsProvider, NameServer};
use crate::record::{RecordKey, RecordSet, RecordType};

/// A zone held in memory. Applies change sets atomically and as strictly as a real server:
/// creating a set that exists, or updating or deleting one that no longer holds what was read,
/// is refused with [`DnsError::ZoneChanged`]; a CNAME beside other data is refused too.
///
/// Clones share the zone, so a test can keep one to look at what another changed.
#[derive(Clone, Debug)]
pub struct InMemoryProvider {
    zone: DnsName,
    records: Arc<Mutex<BTreeMap<RecordKey, RecordSet>>>,
    capabilities: Capabilities,
}

impl InMemoryProvider {
    /// An empty zone.
    pub fn new(zone: DnsName) -> Self {
        InMemoryProvider {
            zone,
            records: Arc::default(),
            capabilities: Capabilities {
                atomic: true,
                ..Capabilities::default()
            },
        }
    }

    /// The same zone, claiming other capabilities (to exercise planner paths in tests).
    #[must_use]
    pub fn with_capabilities(mut self, capabilities: Capabilities) -> Self {
        self.capabilities = capabilities;
        self
    }

    /// Puts a record set into the zone directly (someone else's record, in tests).
    pub fn insert(&self, record: RecordSet) {
        self.lock().insert(record.key(), record);
    }

    /// Everything in the zone, in name and type order.
    pub fn snapshot(&self) -> Vec<RecordSet> {
        self.lock().values().cloned().collect()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<RecordKey, RecordSet>> {
        // A panic while holding the lock leaves a consistent map: every change is applied to a
        // copy first.
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn changed(detail: String) -> DnsError {
    DnsError::ZoneChanged {
        provider: "memory",
        detail,
    }
}

/// Applies one change to a map, as a strict server would.
fn apply_one(
    zone: &DnsName,
    map: &mut BTreeMap<RecordKey, RecordSet>,
    change: &Change,
) -> Result<(), DnsError> {
    let same_content = |a: &RecordSet, b: &RecordSet| a.values == b.values && a.alias == b.alias;
    match change {
        Change::Create { record } => {
            if !record.name.is_in(zone) {
                return Err(DnsError::invalid(format!(
                    "{} is not in zone {zone}",
                    record.name
                )));
            }
            if map.contains_key(&record.key()) {
                return Err(changed(format!("{} already exists", record.key())));
            }
            let others = map.keys().filter(|k| k.name == record.name);
            for k in others {
                if (k.record_type == RecordType::Cname) != (record.record_type == RecordType::Cname)
                {
                    return Err(DnsError::invalid(format!(
                        "{} cannot be created: {} exists and a CNAME stands alone",
                        record.key(),
                        k
                    )));
                }
            }
            map.insert(record.key(), record.clone());
        }
        Change::Update { old, new } => {
            match map.get(&old.key()) {
                Some(cur) if same_content(cur, old) => {}
                Some(cur) => {
                    return Err(changed(format!(
                        "{} holds {}, not {}",
                        old.key(),
                        cur.describe_values(),
                        old.describe_values()
                    )));
                }
                None => return Err(changed(format!("{} no longer exists", old.key()))),
            }
            if old.key() != new.key() {
                return Err(DnsError::invalid(
                    "an update cannot change a record's name or type",
                ));
            }
            map.insert(new.key(), new.clone());
        }
        Change::Delete { record } => match map.get(&record.key()) {
            Some(cur) if same_content(cur, record) => {
                map.remove(&record.key());
            }
            Some(cur) => {
                return Err(changed(format!(
                    "{} holds {}, not {}",
                    record.key(),
                    cur.describe_values(),
                    record.describe_values()
                )));
            }
            None => return Err(changed(format!("{} no longer exists", record.key()))),
        },
    }
    Ok(())
}

#[async_trait]
impl DnsProvider for InMemoryProvider {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn zone(&self) -> &DnsName {
        &self.zone
    }

    fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    async fn records(&self) -> Result<Vec<RecordSet>, DnsError> {
        Ok(self.snapshot())
    }

    async fn apply(&self, changes: &ChangeSet) -> Result<(), DnsError> {
        let mut guard = self.lock();
        let mut next = guard.clone();
        for change in changes {
            apply_one(&self.zone, &mut next, change)?;
        }
        *guard = next;
        Ok(())
    }

    async fn name_servers(&self) -> Result<Vec<NameServer>, DnsError> {
        Ok(Vec::new())
    }
}
