//! Request counters and the request log, for tests and benchmarks that count what clients did.
//!
//! A *write* is a change to stored state made by a client request: a server-side apply that
//! changes nothing is a request but not a write. Controllers' own writes are counted apart
//! (`ferry_sim_controller_writes_total`), so client writes can be counted while rollouts run.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::sync::Mutex;

use serde::Serialize;

/// One API request, as `/debug/requests` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestRecord {
    /// Order of arrival (1, 2, ...).
    pub seq: u64,
    /// Wall-clock time the request arrived (RFC 3339).
    pub wall_time: String,
    /// Virtual time the request arrived (RFC 3339).
    pub virtual_time: String,
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `apply`, `delete`,
    /// `deletecollection`; plain `get` for non-resource paths.
    pub verb: String,
    /// The HTTP method.
    pub method: String,
    /// The request path (without the query).
    pub path: String,
    /// The API group (`""` for core).
    pub group: String,
    /// The resource (`deployments`), empty for non-resource paths.
    pub resource: String,
    /// The subresource (`status`, `scale`, `log`), if any.
    pub subresource: String,
    /// The namespace, if any.
    pub namespace: String,
    /// The object name, if any.
    pub name: String,
    /// The HTTP status code (0 for a dropped connection).
    pub code: u16,
    /// The client's `User-Agent`.
    pub user_agent: String,
    /// The `fieldManager` query parameter, if any.
    pub field_manager: String,
    /// Whether the request changed stored state.
    pub wrote: bool,
    /// Whether it was a dry run.
    pub dry_run: bool,
    /// The injected fault, if any (`error_500`, `throttle_429`, `timeout`, `drop`).
    pub fault: Option<String>,
}

impl RequestRecord {
    /// `deployments.apps`, `pods`, or `deployments.apps/status`: the resource label of the
    /// metrics.
    pub fn resource_label(&self) -> String {
        let mut label = if self.group.is_empty() || self.resource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        };
        if !self.subresource.is_empty() {
            label.push('/');
            label.push_str(&self.subresource);
        }
        label
    }
}

/// Counters at one moment. Resource labels are `plural.group` (`deployments.apps`), with
/// `/subresource` appended for subresources; non-resource requests have an empty resource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Requests by (verb, resource, HTTP code).
    pub requests: BTreeMap<(String, String, u16), u64>,
    /// Client writes by (verb, resource).
    pub writes: BTreeMap<(String, String), u64>,
    /// Controller writes by resource.
    pub controller_writes: BTreeMap<String, u64>,
}

impl MetricsSnapshot {
    /// Requests with this verb and resource, any code.
    pub fn requests(&self, verb: &str, resource: &str) -> u64 {
        self.requests
            .iter()
            .filter(|((v, r, _), _)| v == verb && r == resource)
            .map(|(_, n)| n)
            .sum()
    }

    /// Client writes with this verb and resource.
    pub fn writes(&self, verb: &str, resource: &str) -> u64 {
        self.writes
            .get(&(verb.to_owned(), resource.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    /// All client writes.
    pub fn total_writes(&self) -> u64 {
        self.writes.values().sum()
    }

    /// All requests.
    pub fn total_requests(&self) -> u64 {
        self.requests.values().sum()
    }

    /// The Prometheus text exposition of these counters.
    pub fn to_prometheus(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP ferry_sim_requests_total API requests by verb, resource and HTTP code.\n",
        );
        out.push_str("# TYPE ferry_sim_requests_total counter\n");
        for ((verb, resource, code), n) in &self.requests {
            let _ = writeln!(
                out,
                "ferry_sim_requests_total{{verb=\"{verb}\",resource=\"{resource}\",code=\"{code}\"}} {n}"
            );
        }
        out.push_str(
            "# HELP ferry_sim_writes_total Changes to stored state made by client requests.\n",
        );
        out.push_str("# TYPE ferry_sim_writes_total counter\n");
        for ((verb, resource), n) in &self.writes {
            let _ = writeln!(
                out,
                "ferry_sim_writes_total{{verb=\"{verb}\",resource=\"{resource}\"}} {n}"
            );
        }
        out.push_str("# HELP ferry_sim_controller_writes_total Changes to stored state made by the simulated controllers.\n");
        out.push_str("# TYPE ferry_sim_controller_writes_total counter\n");
        for (resource, n) in &self.controller_writes {
            let _ = writeln!(
                out,
                "ferry_sim_controller_writes_total{{resource=\"{resource}\"}} {n}"
            );
        }
        out
    }
}

#[derive(Debug, Default)]
struct Inner {
    seq: u64,
    requests: BTreeMap<(String, String, u16), u64>,
    writes: BTreeMap<(String, String), u64>,
    log: VecDeque<RequestRecord>,
}

/// The live counters.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The next sequence number.
    pub(crate) fn next_seq(&self) -> u64 {
        let mut inner = self.lock();
        inner.seq += 1;
        inner.seq
    }

    pub(crate) fn record(&self, record: RequestRecord, limit: usize) {
        let resource = record.resource_label();
        let mut inner = self.lock();
        *inner
            .requests
            .entry((record.verb.clone(), resource.clone(), record.code))
            .or_default() += 1;
        if record.wrote {
            *inner
                .writes
                .entry((record.verb.clone(), resource))
                .or_default() += 1;
        }
        inner.log.push_back(record);
        while inner.log.len() > limit {
            inner.log.pop_front();
        }
    }

    pub(crate) fn snapshot(&self, controller_writes: BTreeMap<String, u64>) -> MetricsSnapshot {
        let inner = self.lock();
        MetricsSnapshot {
            requests: inner.requests.clone(),
            writes: inner.writes.clone(),
            controller_writes,
        }
    }

    pub(crate) fn log(&self) -> Vec<RequestRecord> {
        let mut log: Vec<RequestRecord> = self.lock().log.iter().cloned().collect();
        log.sort_by_key(|r| r.seq);
        log
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(verb: &str, wrote: bool) -> RequestRecord {
        RequestRecord {
            seq: 1,
            wall_time: String::new(),
            virtual_time: String::new(),
            verb: verb.to_owned(),
            method: "PATCH".to_owned(),
            path: "/apis/apps/v1/namespaces/d/deployments/web".to_owned(),
            group: "apps".to_owned(),
            resource: "deployments".to_owned(),
            subresource: String::new(),
            namespace: "d".to_owned(),
            name: "web".to_owned(),
            code: 200,
            user_agent: "test".to_owned(),
            field_manager: "ferry".to_owned(),
            wrote,
            dry_run: false,
            fault: None,
        }
    }

    #[test]
    fn counts_requests_and_writes_apart() {
        let metrics = Metrics::default();
        metrics.record(record("apply", true), 10);
        metrics.record(record("apply", false), 10);
        let snapshot = metrics.snapshot(BTreeMap::new());
        assert_eq!(snapshot.requests("apply", "deployments.apps"), 2);
        assert_eq!(snapshot.writes("apply", "deployments.apps"), 1);
        let text = snapshot.to_prometheus();
        assert!(text.contains(
            "ferry_sim_requests_total{verb=\"apply\",resource=\"deployments.apps\",code=\"200\"} 2"
        ));
        assert!(
            text.contains("ferry_sim_writes_total{verb=\"apply\",resource=\"deployments.apps\"} 1")
        );
    }

    #[test]
    fn the_log_is_bounded() {
        let metrics = Metrics::default();
        for _ in 0..5 {
            metrics.record(record("get", false), 3);
        }
        assert_eq!(metrics.log().len(), 3);
    }
}
