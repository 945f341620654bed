//! What a deploy reports as it goes: a stream of [`DeployEvent`]s handed to an [`EventSink`].
//! The `ferry` binary renders them as live lines on a terminal, plain lines in CI, JSON, or
//! GitHub Actions annotations; embedders do what they like.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::manifest::ObjectKey;
use crate::report::FailureReport;

/// The state of one resource while waiting for health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResourceState {
    /// Ready.
    Ready,
    /// Not ready yet.
    Pending,
    /// Failed (doomed pods, a failed Job, an exceeded deadline).
    Failed,
}

/// What happened to an object when applying or pruning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// It did not exist and will be (was) created.
    Create,
    /// It exists and will be (was) changed.
    Update,
    /// It exists and already matches.
    Unchanged,
    /// It was in the previous release, not in this one: it will be (was) deleted.
    Prune,
    /// It exists and cannot change in place (a Job's template, a field made immutable, a Job
    /// run on every release): it will be (was) deleted and created again.
    Replace,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Unchanged => "unchanged",
            Action::Prune => "prune",
            Action::Replace => "replace",
        })
    }
}

/// One step of a deploy, as reported.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum DeployEvent {
    /// A stage began (`render`, `validate`, `plan`, `lock`, `apply`, `wait`, `prune`,
    /// `rollback`).
    Stage {
        /// The stage.
        stage: String,
        /// A few words on what it does now.
        detail: String,
    },
    /// Something the user should know that does not stop the deploy.
    Warning {
        /// The message.
        message: String,
    },
    /// Something the plan decided that the user should see once (a field left to an HPA).
    Note {
        /// The object.
        object: ObjectKey,
        /// The note.
        message: String,
    },
    /// The server answered a request with a `Warning` header (a deprecation, Pod Security, an
    /// unknown field under `field_validation = "warn"`).
    ServerWarning {
        /// The object the request was for.
        object: ObjectKey,
        /// The warning's text.
        message: String,
    },
    /// A request failed for a reason that passes (a 500, a 503, a dropped connection) and is
    /// sent again.
    Retried {
        /// The request (`PATCH /apis/apps/v1/namespaces/shop/deployments/web`).
        request: String,
        /// Why.
        reason: String,
        /// The attempt about to be made (2 for the first retry).
        attempt: u32,
    },
    /// The deploy was cancelled (SIGINT, SIGTERM): it stops applying.
    Cancelled {
        /// What ferry does about it.
        message: String,
    },
    /// Another deploy holds the lock; this one waits.
    LockWaiting {
        /// Who holds it.
        holder: String,
        /// Seconds until the lease expires if the holder stops renewing it.
        expires_in_secs: u64,
    },
    /// The lock was taken.
    LockAcquired {
        /// The lease (namespace/name).
        lease: String,
    },
    /// The plan: what will change.
    Planned {
        /// Objects to create.
        create: usize,
        /// Objects to update.
        update: usize,
        /// Objects to delete and create again (Jobs per release, `ferry.dev/replace`).
        replace: usize,
        /// Objects already as wanted.
        unchanged: usize,
        /// Objects to prune after the release is healthy.
        prune: usize,
    },
    /// An object was applied (or left alone).
    Applied {
        /// The object.
        object: ObjectKey,
        /// What was done.
        action: Action,
    },
    /// An object's health changed.
    Resource {
        /// The object.
        object: ObjectKey,
        /// Its state.
        state: ResourceState,
        /// Why (`2 of 3 updated replicas available`, a LoadBalancer address, a failure reason).
        message: String,
    },
    /// A resource failed: the report says which, why, its events and logs.
    Failed {
        /// The report.
        report: FailureReport,
    },
    /// An object was deleted by pruning, or left because it is not ferry's.
    Pruned {
        /// The object.
        object: ObjectKey,
        /// Whether it was deleted.
        deleted: bool,
        /// Why it was left, when it was.
        reason: String,
    },
    /// A release record was written.
    Recorded {
        /// The revision.
        revision: u32,
        /// Its status.
        status: String,
    },
    /// A Service of type LoadBalancer has its address.
    LoadBalancer {
        /// The Service.
        object: ObjectKey,
        /// Its addresses (IPs or hostnames).
        addresses: Vec<String>,
    },
}

/// Where events go.
pub trait EventSink: Send + Sync {
    /// Receives one event.
    fn emit(&self, event: DeployEvent);
}

/// A sink shared between tasks.
pub type SharedEventSink = Arc<dyn EventSink>;

/// A sink that drops everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct Discard;

impl EventSink for Discard {
    fn emit(&self, _event: DeployEvent) {}
}

/// A sink that keeps every event (tests, embedders that render at the end).
#[derive(Debug, Default)]
pub struct Collect(std::sync::Mutex<Vec<DeployEvent>>);

impl Collect {
    /// The events so far.
    pub fn events(&self) -> Vec<DeployEvent> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

impl EventSink for Collect {
    fn emit(&self, event: DeployEvent) {
        if let Ok(mut v) = self.0.lock() {
            v.push(event);
        }
    }
}
