//! The deploy engine: validate -> plan -> lock -> record -> ordered apply -> health ->
//! (failure: report, automatic rollback) -> prune -> record -> unlock.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::StreamExt as _;
use kube::api::{DeleteParams, PropagationPolicy};
use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::apply::{ApplyOptions, FieldValidation, server_side_apply};
use crate::owned::{IgnoreFields, OwnedFields};

use crate::catalog::Catalog;
use crate::clock::{SharedClock, timestamp};
use crate::events::{Action, DeployEvent, SharedEventSink};
use crate::health::{self, HealthError, WaitOptions, WaitOutcome};
use crate::images::PinnedImage;
use crate::lock::{self, LockError, LockOptions};
use crate::manifest::{Manifest, ObjectKey, Source};
use crate::order;
use crate::plan::{self, Change, PlanContext, PlanError, Planned, Target};
use crate::release::{self, RecordError, RecordStore, Release, ReleaseStatus};
use crate::report::{self, FailureReport};
use crate::validate::{self, Problem};

/// The label ferry puts on every object it applies: `<app>.<env>`. Pruning deletes only objects
/// that carry it with this release's value, so nothing anyone else created is ever deleted.
pub const OWNER_LABEL: &str = "ferry.dev/release";

/// LoadBalancer Services and their addresses.
type LoadBalancers = Vec<(ObjectKey, Vec<String>)>;

/// How a deploy behaves. Built by the binary from flags and `[env.X.deploy]`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The app's name (names the lock, records and owner label).
    pub app: String,
    /// The environment's name.
    pub env: String,
    /// The namespace for namespaced objects without one; it also holds the lock and records.
    pub namespace: String,
    /// Who deploys (CI run id, host, pid): the lock's holder identity.
    pub holder: String,
    /// The overall deadline for waiting on health.
    pub timeout: Duration,
    /// The default deadline per resource (annotation `ferry.dev/timeout` overrides it).
    pub resource_timeout: Duration,
    /// The deadline for LoadBalancer Services.
    pub load_balancer_timeout: Duration,
    /// The lock.
    pub lock: LockOptions,
    /// Records kept.
    pub history: usize,
    /// Objects applied (and planned) at once.
    pub parallelism: usize,
    /// Take fields owned by other managers on conflict.
    pub force_conflicts: bool,
    /// Roll back automatically on failure.
    pub rollback: bool,
    /// Prune objects dropped from the release.
    pub prune: bool,
    /// Also prune Namespaces.
    pub prune_namespaces: bool,
    /// Also prune PersistentVolumeClaims.
    pub prune_pvcs: bool,
    /// What the server does with unknown and duplicate fields (Strict: they are problems of
    /// the release).
    pub field_validation: FieldValidation,
    /// Fields left to other actors on objects that exist (`ignore_fields`).
    pub ignore_fields: Vec<IgnoreFields>,
    /// After a cancel (SIGINT, SIGTERM): how long the rollback to the previous release may
    /// take before ferry leaves it to the next deploy.
    pub cancel_grace: Duration,
    /// How every request to the cluster is retried (500s, 503s, dropped connections).
    pub retry: crate::retry::RetryPolicy,
    /// Take over existing objects that are not ferry's (`--adopt`).
    pub adopt_all: bool,
    /// Take over these existing objects (`Kind/name`, `Kind/namespace/name`).
    pub adopt: Vec<String>,
}

impl Settings {
    /// Settings with ferry's defaults for `app` in `env`.
    pub fn new(app: impl Into<String>, env: impl Into<String>, holder: impl Into<String>) -> Self {
        Settings {
            app: app.into(),
            env: env.into(),
            namespace: "default".into(),
            holder: holder.into(),
            timeout: Duration::from_secs(600),
            resource_timeout: Duration::from_secs(300),
            load_balancer_timeout: Duration::from_secs(600),
            lock: LockOptions {
                ttl: Duration::from_secs(30),
                wait: true,
                max_wait: Duration::from_secs(1800),
            },
            history: release::DEFAULT_HISTORY,
            parallelism: 8,
            force_conflicts: false,
            rollback: true,
            prune: true,
            prune_namespaces: false,
            prune_pvcs: false,
            field_validation: FieldValidation::Strict,
            ignore_fields: Vec::new(),
            cancel_grace: Duration::from_secs(5),
            retry: crate::retry::RetryPolicy::default(),
            adopt_all: false,
            adopt: Vec::new(),
        }
    }

    fn owner(&self) -> String {
        let v = format!("{}.{}", self.app, self.env);
        if v.len() <= 63 {
            v
        } else {
            use sha2::Digest as _;
            let h = hex::encode(sha2::Sha256::digest(v.as_bytes()));
            format!("{}-{}", &v[..40], &h[..16])
        }
    }
}

/// What to deploy.
#[derive(Debug, Clone, Default)]
pub struct ReleaseInput {
    /// The rendered manifests (images already pinned).
    pub manifests: Vec<Manifest>,
    /// The image tag (the commit SHA).
    pub tag: Option<String>,
    /// The commit, when known.
    pub commit: Option<String>,
    /// The app's images.
    pub images: Vec<PinnedImage>,
    /// Problems already found in these manifests before the cluster was asked (images that
    /// could not be pinned, say). The cluster checks still run, and every problem is reported
    /// together as [`DeployError::Invalid`], so one run lists them all.
    pub problems: Vec<Problem>,
}

/// How a deploy (or rollback) ended.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Outcome {
    /// The release is deployed and healthy.
    Deployed {
        /// Its revision.
        revision: u32,
        /// Nothing needed changing (no record written).
        unchanged: bool,
        /// LoadBalancer Services and their addresses.
        load_balancers: Vec<(ObjectKey, Vec<String>)>,
    },
    /// It failed and the previous release was restored.
    RolledBack {
        /// The failed revision.
        failed: u32,
        /// The revision restored.
        restored: u32,
        /// The new revision recording the rollback.
        revision: u32,
        /// What failed.
        reports: Vec<FailureReport>,
        /// Whether the failure was the overall deadline.
        timed_out: bool,
    },
    /// It was cancelled (SIGINT, SIGTERM) after it began to write: recorded as failed
    /// (cancelled), rolled back when that could finish within the grace period.
    Cancelled {
        /// The cancelled revision.
        revision: u32,
        /// The release restored (and the revision recording it), when the rollback finished.
        restored: Option<(u32, u32)>,
        /// What was left when it was not.
        left: String,
    },
    /// It failed and was not rolled back (or the rollback failed).
    Failed {
        /// The failed revision.
        revision: u32,
        /// What failed.
        reports: Vec<FailureReport>,
        /// Why there was no rollback.
        not_rolled_back: String,
        /// Whether the failure was the overall deadline.
        timed_out: bool,
    },
}

/// Why a deploy could not run at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeployError {
    /// The input is invalid; nothing was changed.
    #[error("the release is invalid ({} problem{}); nothing was changed", .0.len(), if .0.len() == 1 { "" } else { "s" })]
    Invalid(Vec<Problem>),
    /// The lock could not be had.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// Release records could not be read or written.
    #[error(transparent)]
    Records(#[from] RecordError),
    /// The cluster could not be asked.
    #[error("cannot {what}")]
    Api {
        /// What was being done.
        what: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
    /// Health could not be watched.
    #[error(transparent)]
    Health(#[from] HealthError),
    /// A rollback was asked for that cannot be done.
    #[error("{0}")]
    NoRelease(String),
    /// The deploy was cancelled before it wrote anything, or stopped at once by a second
    /// signal (the lock was released either way).
    #[error("cancelled {0}")]
    Cancelled(String),
}

/// An error and its causes on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

fn api_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> DeployError {
    let what = what.into();
    move |source| DeployError::Api { what, source }
}

/// A validated release: its targets and what the cluster looked like.
#[derive(Debug)]
pub struct Prepared {
    /// The objects with their resources, namespaces filled in, owner label set.
    pub targets: Vec<Target>,
    /// Namespaces the release creates that do not exist yet.
    pub new_namespaces: BTreeSet<String>,
    catalog: Catalog,
}

/// The deploy engine for one app and environment on one cluster.
pub struct Engine {
    client: kube::Client,
    settings: Settings,
    clock: SharedClock,
    sink: SharedEventSink,
    /// The first cancel: stop applying, record, roll back within the grace period.
    cancel: CancellationToken,
    /// The second: stop at once (releasing the lock).
    abort: CancellationToken,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("settings", &self.settings)
            .finish()
    }
}

enum Stage {
    Ready(BTreeMap<ObjectKey, Value>),
    Cancelled,
    Failed {
        failures: Vec<(ObjectKey, String)>,
        pods: Vec<Value>,
        objects: BTreeMap<ObjectKey, Value>,
        timed_out: bool,
    },
}

impl Engine {
    /// An engine using `client`, reporting to `sink`.
    pub fn new(
        client: kube::Client,
        settings: Settings,
        clock: SharedClock,
        sink: SharedEventSink,
    ) -> Self {
        Engine {
            client: crate::retry::retrying(&client, settings.retry, Some(sink.clone())),
            settings,
            clock,
            sink,
            cancel: CancellationToken::new(),
            abort: CancellationToken::new(),
        }
    }

    /// Makes the deploy cancellable: `cancel` (a first SIGINT or SIGTERM) stops applying,
    /// records the release as failed (cancelled) and rolls back when that can finish within
    /// [`Settings::cancel_grace`]; `abort` (a second signal) stops at once. The lock is
    /// released in every case.
    #[must_use]
    pub fn with_cancellation(
        mut self,
        cancel: CancellationToken,
        abort: CancellationToken,
    ) -> Self {
        self.cancel = cancel;
        self.abort = abort;
        self
    }

    fn apply_options(&self, force: bool) -> ApplyOptions {
        ApplyOptions {
            dry_run: false,
            force,
            validation: self.settings.field_validation,
        }
    }

    fn stage(&self, stage: &str, detail: impl Into<String>) {
        self.sink.emit(DeployEvent::Stage {
            stage: stage.to_owned(),
            detail: detail.into(),
        });
    }

    fn lease(&self) -> lock::LeaseId {
        lock::LeaseId {
            namespace: self.settings.namespace.clone(),
            app: self.settings.app.clone(),
            env: self.settings.env.clone(),
            holder: self.settings.holder.clone(),
        }
    }

    fn store(&self) -> RecordStore {
        RecordStore::new(
            &self.client,
            &self.settings.namespace,
            &self.settings.app,
            &self.settings.env,
        )
    }

    /// What the cluster serves (discovery).
    async fn discover(&self) -> Result<Catalog, DeployError> {
        Catalog::discover(&self.client)
            .await
            .map_err(api_err("discover the cluster's API resources"))
    }

    /// Runs `f` holding the environment's deploy lock (waiting for it unless told not to),
    /// then releases it; `f` learns whether it had to wait. `f`'s error wins over the
    /// release's.
    async fn locked<T>(
        &self,
        f: impl AsyncFnOnce(bool) -> Result<T, DeployError>,
    ) -> Result<T, DeployError> {
        let lease = self.lease();
        let acquire = lock::acquire(
            &self.client,
            &lease,
            &self.settings.lock,
            self.clock.clone(),
            self.sink.as_ref(),
        );
        let held = tokio::select! {
            held = acquire => held?,
            () = self.cancel.cancelled() => {
                return Err(DeployError::Cancelled(
                    "while waiting for the lock; nothing was changed".into(),
                ));
            }
        };
        let result = tokio::select! {
            r = f(held.waited()) => r,
            () = self.abort.cancelled() => Err(DeployError::Cancelled(
                "at once (a second signal); the lock was released, and the next deploy repairs what this one left".into(),
            )),
        };
        let released = held.release().await;
        let outcome = result?;
        // The work is done: a lease that cannot be deleted expires by its TTL.
        if let Err(e) = released {
            self.sink.emit(DeployEvent::Warning {
                message: format!(
                    "{}; it expires by itself within {}",
                    error_chain(&e),
                    humantime::format_duration(self.settings.lock.ttl)
                ),
            });
        }
        Ok(outcome)
    }

    /// Validates a release against the cluster (reads only): the offline checks, kinds and
    /// scopes from discovery, namespaces and references.
    pub async fn prepare(&self, manifests: Vec<Manifest>) -> Result<Prepared, DeployError> {
        self.prepare_with(manifests, Vec::new()).await
    }

    /// [`prepare`](Self::prepare), adding the cluster's findings to `problems` found earlier:
    /// every check runs, so one run lists every problem.
    async fn prepare_with(
        &self,
        manifests: Vec<Manifest>,
        earlier: Vec<Problem>,
    ) -> Result<Prepared, DeployError> {
        self.stage("validate", format!("{} objects", manifests.len()));
        let mut manifests = manifests;
        let mut problems = earlier;
        problems.extend(validate::check_offline(&manifests));
        let schema = crate::schema::problems(
            &manifests,
            self.settings.field_validation,
            &crate::render::source_text,
            &problems,
        );
        problems.extend(schema);
        let mut catalog = match self.discover().await {
            Ok(catalog) => catalog,
            // Problems found without the cluster are the answer even when it cannot be asked.
            Err(_) if !problems.is_empty() => return Err(DeployError::Invalid(problems)),
            Err(e) => return Err(e),
        };
        catalog.add_release_crds(&manifests);
        let (resources, scope_problems) =
            validate::resolve_scopes(&mut manifests, &catalog, &self.settings.namespace);
        problems.extend(scope_problems);
        // Objects whose kind the server does not know, or that name a namespace their kind
        // cannot have, are problems already: their namespaces and references are not checked
        // (they would give false problems), but they count as in the release.
        let checked: Vec<bool> = manifests
            .iter()
            .zip(&resources)
            .map(|(m, r)| match r {
                Some((_, namespaced)) => *namespaced || m.namespace().is_none(),
                None => false,
            })
            .collect();
        match validate::check_cluster(&self.client, &manifests, &checked).await {
            Ok(more) => problems.extend(more),
            // With problems already found, a read the cluster refuses (a namespace named
            // against the rules, say) is one of their consequences: they are the answer.
            Err(_) if !problems.is_empty() => {}
            Err(e) => {
                return Err(api_err("check the release's namespaces and references")(e));
            }
        }
        if !problems.is_empty() {
            return Err(DeployError::Invalid(problems));
        }
        for message in validate::service_selector_warnings(&self.client, &manifests)
            .await
            .map_err(api_err("list the pods Services select"))?
        {
            self.sink.emit(DeployEvent::Warning { message });
        }
        let owner = self.settings.owner();
        let new_namespaces = self.missing_namespaces(&manifests).await?;
        let targets = manifests
            .into_iter()
            .zip(resources)
            .filter_map(|(mut m, r)| {
                let (resource, namespaced) = r?;
                m.object["metadata"]["labels"][OWNER_LABEL] = Value::String(owner.clone());
                Some(Target {
                    manifest: m,
                    resource,
                    namespaced,
                })
            })
            .collect();
        Ok(Prepared {
            targets,
            new_namespaces,
            catalog,
        })
    }

    /// The Namespaces among `manifests` that do not exist yet.
    async fn missing_namespaces(
        &self,
        manifests: &[Manifest],
    ) -> Result<BTreeSet<String>, DeployError> {
        let mut out = BTreeSet::new();
        let ns_api: kube::Api<k8s_openapi::api::core::v1::Namespace> =
            kube::Api::all(self.client.clone());
        for m in manifests.iter().filter(|m| m.kind() == "Namespace") {
            if ns_api
                .get_metadata_opt(m.name())
                .await
                .map_err(api_err("read namespaces"))?
                .is_none()
            {
                out.insert(m.name().to_owned());
            }
        }
        Ok(out)
    }

    /// Whether a target can be dry-run now (its namespace and kind exist).
    fn can_dry_run(&self, prepared: &Prepared, t: &Target) -> bool {
        let ns_missing = t
            .manifest
            .namespace()
            .is_some_and(|ns| t.namespaced && prepared.new_namespaces.contains(ns));
        !ns_missing && Self::kind_exists(prepared, t)
    }

    /// Whether the server serves the target's kind already (not only the release's own CRD).
    fn kind_exists(prepared: &Prepared, t: &Target) -> bool {
        !prepared
            .catalog
            .resolve(t.manifest.api_version(), t.manifest.kind())
            .is_some_and(|k| k.from_release_crd)
    }

    /// The workloads HorizontalPodAutoscalers scale: the release's HPAs and those already in
    /// the namespaces of its workloads.
    async fn autoscaled(
        &self,
        prepared: &Prepared,
    ) -> Result<BTreeMap<ObjectKey, String>, DeployError> {
        let mut out = BTreeMap::new();
        let hpa_name = |v: &Value| {
            format!(
                "{}/{}",
                v.pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or(""),
                v.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
            )
        };
        for t in prepared
            .targets
            .iter()
            .filter(|t| t.resource.kind == "HorizontalPodAutoscaler")
        {
            if let Some(key) = crate::owned::hpa_target(&t.manifest.object) {
                out.insert(key, hpa_name(&t.manifest.object));
            }
        }
        let namespaces: BTreeSet<&str> = prepared
            .targets
            .iter()
            .filter(|t| {
                matches!(
                    t.resource.kind.as_str(),
                    "Deployment" | "StatefulSet" | "ReplicaSet"
                )
            })
            .filter_map(|t| t.manifest.namespace())
            .filter(|ns| !prepared.new_namespaces.contains(*ns))
            .collect();
        let Some(known) = prepared
            .catalog
            .by_group_kind("autoscaling", "HorizontalPodAutoscaler")
        else {
            return Ok(out);
        };
        for ns in namespaces {
            let list = plan::api_for(&self.client, &known.resource, Some(ns))
                .list(&kube::api::ListParams::default())
                .await
                .map_err(api_err(format!("list HorizontalPodAutoscalers in {ns}")))?;
            for hpa in list.items {
                let v = serde_json::to_value(&hpa).unwrap_or(Value::Null);
                if let Some(key) = crate::owned::hpa_target(&v) {
                    out.entry(key).or_insert_with(|| hpa_name(&v));
                }
            }
        }
        Ok(out)
    }

    /// Plans every target (server-side dry-run of the form apply will send), `Create` without
    /// a dry-run where the namespace or kind does not exist yet. `last` is the current release:
    /// a Secret value changed since it was applied is refused unless `force`.
    async fn plan(
        &self,
        prepared: &Prepared,
        force: bool,
        last: Option<&Release>,
        restoring: bool,
    ) -> Result<Vec<Planned>, DeployError> {
        let client = &self.client;
        let ctx = PlanContext {
            force,
            validation: self.settings.field_validation,
            owned: OwnedFields {
                autoscaled: self.autoscaled(prepared).await?,
                ignore: self.settings.ignore_fields.clone(),
            },
            last_applied: last
                .map(|r| {
                    r.manifests
                        .iter()
                        .filter_map(|o| Some((ObjectKey::of(o)?, o.clone())))
                        .collect()
                })
                .unwrap_or_default(),
            owner: self.settings.owner(),
            // A rollback restores objects ferry recorded: they are its own.
            adopt_all: self.settings.adopt_all || restoring,
            adopt: self.settings.adopt.clone(),
            adopted: last.map(|r| r.adopted.clone()).unwrap_or_default(),
        };
        let ctx = &ctx;
        let results: Vec<Result<Planned, PlanError>> =
            futures::stream::iter(prepared.targets.iter().map(|t| async move {
                if self.can_dry_run(prepared, t) {
                    plan::plan_one(client, t, ctx).await
                } else {
                    let mut warnings = Vec::new();
                    if Self::kind_exists(prepared, t) {
                        // Its namespace comes with the release: the server still judges it.
                        warnings =
                            plan::probe_elsewhere(client, t, plan::PROBE_NAMESPACE, ctx.validation)
                                .await?;
                    }
                    Ok(Planned {
                        change: Change {
                            key: t.key(),
                            action: Action::Create,
                            diff: plan::object_diff(None, Some(&t.manifest.object)),
                            warnings,
                            notes: Vec::new(),
                        },
                        live: None,
                        object: t.manifest.object.clone(),
                        adopted: false,
                    })
                }
            }))
            .buffered(self.settings.parallelism.max(1))
            .collect()
            .await;
        let mut out = Vec::with_capacity(results.len());
        let mut problems = Vec::new();
        for r in results {
            match r {
                Ok(p) => out.push(p),
                Err(PlanError::Refused {
                    object,
                    source_file,
                    message,
                    code,
                }) => {
                    let hint = if code == 409 && !message.contains("--force-conflicts") {
                        " (another field manager owns these fields: deploy with --force-conflicts to take them)"
                    } else {
                        ""
                    };
                    problems.push(Problem {
                        at: source_file,
                        object,
                        message: format!("the server refuses it: {message}{hint}"),
                    });
                }
                Err(PlanError::Kept {
                    object,
                    source_file,
                    message,
                }) => problems.push(Problem {
                    at: source_file,
                    object,
                    message,
                }),
                Err(PlanError::Api { object, source }) => {
                    return Err(DeployError::Api {
                        what: format!("plan {object}"),
                        source,
                    });
                }
            }
        }
        // Warnings and notes are shown even when the release is refused: they may be why.
        for p in &out {
            for w in &p.change.warnings {
                self.sink.emit(DeployEvent::ServerWarning {
                    object: p.change.key.clone(),
                    message: w.clone(),
                });
            }
        }
        if !problems.is_empty() {
            return Err(DeployError::Invalid(problems));
        }
        for p in &out {
            for n in &p.change.notes {
                self.sink.emit(DeployEvent::Note {
                    object: p.change.key.clone(),
                    message: n.clone(),
                });
            }
        }
        Ok(out)
    }

    /// What the cluster may hold of this app: the current release's objects and those of every
    /// later attempt that did not become current (failed without a rollback, interrupted,
    /// cancelled). Each record lists its objects before its first write, so an object a
    /// half-applied release created is pruned by the next release that drops it.
    fn inventory(history: &[Release]) -> Vec<Value> {
        let from = release::current(history).map_or(0, |c| c.revision);
        let records = || {
            history
                .iter()
                .filter(move |r| r.revision >= from && r.status != ReleaseStatus::RolledBack)
        };
        // Objects taken over with --adopt were someone else's: never pruned.
        let adopted: BTreeSet<&ObjectKey> = records().flat_map(|r| r.adopted.iter()).collect();
        records()
            .flat_map(|r| r.manifests.iter())
            .filter(|o| ObjectKey::of(o).is_none_or(|k| !adopted.contains(&k)))
            .cloned()
            .collect()
    }

    /// Objects of `previous` that are not among `keep`, in prune order.
    fn prune_candidates(previous: &[Value], keep: &BTreeSet<ObjectKey>) -> Vec<ObjectKey> {
        let mut out: Vec<ObjectKey> = previous
            .iter()
            .filter_map(ObjectKey::of)
            .filter(|k| !keep.contains(k))
            .collect();
        out.sort_by_key(|k| (order::prune_phase(&k.kind), k.clone()));
        out.dedup();
        out
    }

    /// The plan of a release, including what would be pruned (reads only).
    pub async fn diff(&self, input: ReleaseInput) -> Result<Vec<Change>, DeployError> {
        let prepared = self.prepare_with(input.manifests, input.problems).await?;
        self.stage("plan", "server-side dry-run");
        let history = self.store().list().await?;
        let mut changes: Vec<Change> = self
            .plan(
                &prepared,
                self.settings.force_conflicts,
                release::current(&history),
                false,
            )
            .await?
            .into_iter()
            .map(|p| p.change)
            .collect();
        if self.settings.prune {
            let keep: BTreeSet<ObjectKey> = prepared.targets.iter().map(Target::key).collect();
            for key in Self::prune_candidates(&Self::inventory(&history), &keep) {
                if let Some(reason) = self.prune_blocker(&prepared.catalog, &key).await? {
                    tracing::debug!("{key} would not be pruned: {reason}");
                    continue;
                }
                changes.push(Change {
                    key,
                    action: Action::Prune,
                    diff: String::new(),
                    warnings: Vec::new(),
                    notes: Vec::new(),
                });
            }
        }
        Ok(changes)
    }

    /// Why `key` must not be pruned (None: prune it). Reads the live object.
    async fn prune_blocker(
        &self,
        catalog: &Catalog,
        key: &ObjectKey,
    ) -> Result<Option<String>, DeployError> {
        if key.kind == "Namespace" && !self.settings.prune_namespaces {
            return Ok(Some(
                "Namespaces are pruned only with --prune-namespaces".into(),
            ));
        }
        if key.kind == "Namespace" {
            if key.name == self.settings.namespace {
                return Ok(Some(
                    "it holds the release records and the lock of this app".into(),
                ));
            }
            if let Some(theirs) = self.foreign_objects_in(catalog, &key.name).await? {
                return Ok(Some(format!(
                    "it holds objects that are not this app's: {theirs}"
                )));
            }
        }
        if key.kind == "PersistentVolumeClaim" && !self.settings.prune_pvcs {
            return Ok(Some(
                "PersistentVolumeClaims are pruned only with --prune-pvcs".into(),
            ));
        }
        let Some(known) = catalog.by_group_kind(&key.group, &key.kind) else {
            return Ok(Some("the server no longer serves its kind".into()));
        };
        let api = plan::api_for(
            &self.client,
            &known.resource,
            key.namespace.as_deref().filter(|_| known.namespaced),
        );
        let Some(live) = api
            .get_metadata_opt(&key.name)
            .await
            .map_err(api_err(format!("read {key}")))?
        else {
            return Ok(Some("already gone".into()));
        };
        let owner = live
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(OWNER_LABEL));
        if owner != Some(&self.settings.owner()) {
            return Ok(Some(format!(
                "not deleting: it does not carry {OWNER_LABEL}={} (someone else owns it now)",
                self.settings.owner()
            )));
        }
        if live.metadata.deletion_timestamp.is_some() {
            return Ok(Some("already being deleted".into()));
        }
        Ok(None)
    }

    /// Objects in namespace `ns` that are neither this app's (its owner label) nor made by
    /// Kubernetes for it (owned by another object, the `default` ServiceAccount, the root CA
    /// ConfigMap, events): what pruning the namespace would take with it. None when there are
    /// none. The kinds people create are looked at.
    async fn foreign_objects_in(
        &self,
        catalog: &Catalog,
        ns: &str,
    ) -> Result<Option<String>, DeployError> {
        const KINDS: [(&str, &str); 17] = [
            ("", "ConfigMap"),
            ("", "Secret"),
            ("", "ServiceAccount"),
            ("", "Service"),
            ("", "Pod"),
            ("", "PersistentVolumeClaim"),
            ("apps", "Deployment"),
            ("apps", "StatefulSet"),
            ("apps", "DaemonSet"),
            ("batch", "Job"),
            ("batch", "CronJob"),
            ("networking.k8s.io", "Ingress"),
            ("networking.k8s.io", "NetworkPolicy"),
            ("rbac.authorization.k8s.io", "Role"),
            ("rbac.authorization.k8s.io", "RoleBinding"),
            ("autoscaling", "HorizontalPodAutoscaler"),
            ("policy", "PodDisruptionBudget"),
        ];
        let owner = self.settings.owner();
        let mut found = Vec::new();
        for (group, kind) in KINDS {
            let Some(known) = catalog.by_group_kind(group, kind) else {
                continue;
            };
            let list = plan::api_for(&self.client, &known.resource, Some(ns))
                .list_metadata(&kube::api::ListParams::default())
                .await
                .map_err(api_err(format!("list {kind}s in {ns}")))?;
            for o in list.items {
                let m = &o.metadata;
                let name = m.name.clone().unwrap_or_default();
                let ours = m.labels.as_ref().and_then(|l| l.get(OWNER_LABEL)) == Some(&owner);
                let made_for_it = m.owner_references.as_ref().is_some_and(|r| !r.is_empty())
                    || (kind == "ServiceAccount" && name == "default")
                    || (kind == "ConfigMap" && name == "kube-root-ca.crt");
                if !ours && !made_for_it {
                    found.push(format!("{kind} {name}"));
                }
            }
        }
        Ok((!found.is_empty()).then(|| {
            let n = found.len();
            found.truncate(5);
            if n > 5 {
                format!("{} and {} more", found.join(", "), n - 5)
            } else {
                found.join(", ")
            }
        }))
    }

    async fn prune(&self, catalog: &Catalog, keys: &[ObjectKey]) -> Result<(), DeployError> {
        if keys.is_empty() {
            return Ok(());
        }
        self.stage(
            "prune",
            match keys.len() {
                1 => "1 object dropped from the release".to_owned(),
                n => format!("{n} objects dropped from the release"),
            },
        );
        for key in keys {
            if let Some(reason) = self.prune_blocker(catalog, key).await? {
                self.sink.emit(DeployEvent::Pruned {
                    object: key.clone(),
                    deleted: false,
                    reason,
                });
                continue;
            }
            let Some(known) = catalog.by_group_kind(&key.group, &key.kind) else {
                continue;
            };
            let api = plan::api_for(
                &self.client,
                &known.resource,
                key.namespace.as_deref().filter(|_| known.namespaced),
            );
            let params = DeleteParams {
                propagation_policy: Some(PropagationPolicy::Background),
                ..DeleteParams::default()
            };
            match api.delete(&key.name, &params).await {
                Ok(_) => self.sink.emit(DeployEvent::Pruned {
                    object: key.clone(),
                    deleted: true,
                    reason: String::new(),
                }),
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(api_err(format!("delete {key}"))(e)),
            }
        }
        Ok(())
    }

    fn wait_options(&self, deadline: Instant) -> WaitOptions {
        WaitOptions {
            deadline,
            resource_timeout: self.settings.resource_timeout,
            load_balancer_timeout: self.settings.load_balancer_timeout,
        }
    }

    async fn wait(
        &self,
        targets: &[Target],
        deadline: Instant,
        stop: &CancellationToken,
    ) -> Result<Stage, DeployError> {
        let options = self.wait_options(deadline);
        let waiting = health::wait(&self.client, targets, &options, self.sink.as_ref());
        let outcome = tokio::select! {
            o = waiting => o?,
            () = stop.cancelled() => return Ok(Stage::Cancelled),
        };
        match outcome {
            WaitOutcome::Ready { objects } => Ok(Stage::Ready(objects)),
            WaitOutcome::Failed {
                failures,
                pods,
                objects,
            } => Ok(Stage::Failed {
                failures,
                pods,
                objects,
                timed_out: false,
            }),
            WaitOutcome::TimedOut {
                pending,
                pods,
                objects,
            } => Ok(Stage::Failed {
                failures: pending
                    .into_iter()
                    .map(|(k, why)| {
                        (
                            k,
                            format!("still not ready when the deploy's timeout passed: {why}"),
                        )
                    })
                    .collect(),
                pods,
                objects,
                timed_out: true,
            }),
        }
    }

    /// Deletes `target` (propagation Background) and waits until it is gone, so that it can be
    /// created again: Jobs per release, `ferry.dev/replace`.
    async fn delete_for_replace(
        &self,
        target: &Target,
        deadline: Instant,
    ) -> Result<(), kube::Error> {
        let api = target.api(&self.client);
        let name = target.manifest.name();
        let Some(live) = api.get_metadata_opt(name).await? else {
            return Ok(());
        };
        let uid = live.metadata.uid.clone();
        let params = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            preconditions: Some(kube::api::Preconditions {
                uid: uid.clone(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(name, &params).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if matches!(s.code, 404 | 409) => {}
            Err(e) => return Err(e),
        }
        let mut pause = Duration::from_millis(20);
        while Instant::now() < deadline {
            match api.get_metadata_opt(name).await? {
                Some(m) if m.metadata.uid == uid => {}
                _ => return Ok(()),
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
        Ok(())
    }

    /// Applies one planned object: server-side apply of its planned form, or delete and create
    /// for a replacement. Warnings the dry-run already showed are not repeated.
    async fn apply_planned(
        &self,
        target: &Target,
        planned: &Planned,
        force: bool,
        deadline: Instant,
    ) -> Result<Value, kube::Error> {
        if planned.change.action == Action::Replace {
            self.delete_for_replace(target, deadline).await?;
        }
        let applied = server_side_apply(
            &self.client,
            target,
            &planned.object,
            self.apply_options(force),
        )
        .await?;
        for w in applied
            .warnings
            .iter()
            .filter(|w| !planned.change.warnings.contains(w))
        {
            self.sink.emit(DeployEvent::ServerWarning {
                object: target.key(),
                message: w.clone(),
            });
        }
        Ok(applied.object)
    }

    /// Applies the changed targets in order (waves, then phases), waiting where order matters,
    /// then waits for every target's health. `stop` cancels it between and during steps.
    async fn apply_and_wait(
        &self,
        targets: &[Target],
        planned: &[Planned],
        force: bool,
        deadline: Instant,
        stop: &CancellationToken,
    ) -> Result<Stage, DeployError> {
        let manifests: Vec<Manifest> = targets.iter().map(|t| t.manifest.clone()).collect();
        let changes: Vec<Action> = planned.iter().map(|p| p.change.action).collect();
        let steps = order::steps(&manifests);
        let explicit_waves = steps
            .iter()
            .map(|(w, _, _)| *w)
            .collect::<BTreeSet<_>>()
            .len()
            > 1;
        self.stage("apply", format!("{} objects", targets.len()));
        for (n, (wave, phase, idx)) in steps.iter().enumerate() {
            if stop.is_cancelled() {
                return Ok(Stage::Cancelled);
            }
            let to_apply: Vec<usize> = idx
                .iter()
                .copied()
                .filter(|&i| changes[i] != Action::Unchanged)
                .collect();
            for &i in idx.iter().filter(|&&i| changes[i] == Action::Unchanged) {
                self.sink.emit(DeployEvent::Applied {
                    object: targets[i].key(),
                    action: Action::Unchanged,
                });
            }
            let batch = futures::stream::iter(to_apply.iter().map(|&i| async move {
                (
                    i,
                    self.apply_planned(&targets[i], &planned[i], force, deadline)
                        .await,
                )
            }))
            .buffer_unordered(self.settings.parallelism.max(1))
            .collect::<Vec<(usize, Result<Value, kube::Error>)>>();
            let results = tokio::select! {
                r = batch => r,
                () = stop.cancelled() => return Ok(Stage::Cancelled),
            };
            let mut failures = Vec::new();
            for (i, r) in results {
                match r {
                    Ok(_) => self.sink.emit(DeployEvent::Applied {
                        object: targets[i].key(),
                        action: changes[i],
                    }),
                    Err(kube::Error::Api(s)) => failures.push((
                        targets[i].key(),
                        format!("the server refused the apply: {} ({})", s.message, s.code),
                    )),
                    Err(e) => return Err(api_err(format!("apply {}", targets[i].key()))(e)),
                }
            }
            if !failures.is_empty() {
                return Ok(Stage::Failed {
                    failures,
                    pods: Vec::new(),
                    objects: BTreeMap::new(),
                    timed_out: false,
                });
            }
            // CRDs must be established before their objects, pre-deploy Jobs complete before
            // workloads, and an explicit wave healthy before the next.
            let last_of_wave = steps.get(n + 1).is_none_or(|(w, _, _)| w != wave);
            let gate: Vec<Target> = if explicit_waves && last_of_wave {
                steps
                    .iter()
                    .filter(|(w, _, _)| w == wave)
                    .flat_map(|(_, _, ix)| ix.iter().map(|&i| targets[i].clone()))
                    .collect()
            } else if *phase == 0 || *phase == 3 {
                idx.iter().map(|&i| targets[i].clone()).collect()
            } else {
                Vec::new()
            };
            if !gate.is_empty() && steps.get(n + 1).is_some() {
                self.stage(
                    "wait",
                    format!("wave {wave} phase {phase}: {} objects", gate.len()),
                );
                match self.wait(&gate, deadline, stop).await? {
                    Stage::Ready(_) => {}
                    other => return Ok(other),
                }
            }
        }
        self.stage("wait", format!("{} objects", targets.len()));
        self.wait(targets, deadline, stop).await
    }

    async fn reports(
        &self,
        failures: &[(ObjectKey, String)],
        pods: &[Value],
        objects: &BTreeMap<ObjectKey, Value>,
        since: k8s_openapi::jiff::Timestamp,
    ) -> Vec<FailureReport> {
        let mut out = Vec::new();
        for (key, reason) in failures {
            let r = report::build(&self.client, key, reason, objects.get(key), pods, since).await;
            self.sink.emit(DeployEvent::Failed { report: r.clone() });
            out.push(r);
        }
        out
    }

    fn load_balancers(targets: &[Target], objects: &BTreeMap<ObjectKey, Value>) -> LoadBalancers {
        targets
            .iter()
            .filter(|t| {
                t.resource.kind == "Service"
                    && t.manifest
                        .object
                        .pointer("/spec/type")
                        .and_then(Value::as_str)
                        == Some("LoadBalancer")
            })
            .map(|t| {
                let key = t.key();
                let addrs = objects
                    .get(&key)
                    .map(|o| health::lb_ingress(o).into_iter().flatten().collect())
                    .unwrap_or_default();
                (key, addrs)
            })
            .collect()
    }

    fn now(&self) -> String {
        timestamp(self.clock.as_ref())
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    }

    /// Targets for recorded objects (a previous release's manifests).
    fn recorded_targets(&self, catalog: &Catalog, objects: &[Value]) -> Vec<Target> {
        objects
            .iter()
            .filter_map(|o| {
                let m = Manifest {
                    source: Source::generated("release record", "previous release"),
                    object: o.clone(),
                };
                let known = catalog.resolve(m.api_version(), m.kind()).or_else(|| {
                    catalog.by_group_kind(crate::manifest::group_of(m.api_version()), m.kind())
                })?;
                Some(Target {
                    manifest: m,
                    resource: known.resource.clone(),
                    namespaced: known.namespaced,
                })
            })
            .collect()
    }

    /// Deploys a release: see the module docs for the steps.
    pub async fn deploy(&self, input: ReleaseInput) -> Result<Outcome, DeployError> {
        let since = timestamp(self.clock.as_ref());
        let prepared = self.prepare_with(input.manifests, input.problems).await?;
        let objects: Vec<Value> = prepared
            .targets
            .iter()
            .map(|t| t.manifest.object.clone())
            .collect();
        let digest = plan::content_digest(&objects);
        let store = self.store();

        // Plan before anything is written: the server's dry-run refusals are input problems
        // (exit 3, zero writes), and the same release again needs no lock and no record.
        self.stage("plan", "server-side dry-run");
        let history = store.list().await?;
        let mut planned = self
            .plan(
                &prepared,
                self.settings.force_conflicts,
                release::current(&history),
                false,
            )
            .await?;
        if release::current(&history).is_some_and(|c| c.digest == digest) {
            // The same release again is not a new release: its every-release Jobs stay.
            for p in planned
                .iter_mut()
                .filter(|p| p.change.action == Action::Replace)
            {
                if p.change.key.kind == "Job"
                    && crate::manifest::annotation(&p.object, plan::RUN_ANNOTATION)
                        == Some(plan::RUN_EVERY_RELEASE)
                {
                    p.change.action = Action::Unchanged;
                    p.change.diff.clear();
                }
            }
        }
        if self.cancel.is_cancelled() {
            return Err(DeployError::Cancelled(
                "before the first write; nothing was changed".into(),
            ));
        }
        if let Some(current) = release::current(&history)
            && current.digest == digest
            && !history.iter().any(|r| r.status == ReleaseStatus::Pending)
            && planned.iter().all(|p| p.change.action == Action::Unchanged)
        {
            self.sink.emit(DeployEvent::Planned {
                create: 0,
                update: 0,
                replace: 0,
                unchanged: planned.len(),
                prune: 0,
            });
            for p in &planned {
                let c = &p.change;
                self.sink.emit(DeployEvent::Applied {
                    object: c.key.clone(),
                    action: Action::Unchanged,
                });
            }
            self.stage(
                "wait",
                format!(
                    "{} objects (unchanged release v{})",
                    prepared.targets.len(),
                    current.revision
                ),
            );
            let deadline = Instant::now() + self.settings.timeout;
            return Ok(
                match self.wait(&prepared.targets, deadline, &self.cancel).await? {
                    Stage::Cancelled => {
                        return Err(DeployError::Cancelled(
                            "while checking health; nothing was changed".into(),
                        ));
                    }
                    Stage::Ready(objects) => Outcome::Deployed {
                        revision: current.revision,
                        unchanged: true,
                        load_balancers: Self::load_balancers(&prepared.targets, &objects),
                    },
                    Stage::Failed {
                        failures,
                        pods,
                        objects,
                        timed_out,
                    } => Outcome::Failed {
                        revision: current.revision,
                        reports: self.reports(&failures, &pods, &objects, since).await,
                        not_rolled_back:
                            "the release is unchanged; its resources are unhealthy in the cluster"
                                .into(),
                        timed_out,
                    },
                },
            );
        }

        self.stage(
            "lock",
            format!(
                "{}/{}",
                store.namespace(),
                lock::lease_name(&self.settings.app, &self.settings.env)
            ),
        );
        // The lease lives in the records' namespace: create it first if the release does.
        if prepared.new_namespaces.contains(&self.settings.namespace)
            && let Some(t) = prepared.targets.iter().find(|t| {
                t.resource.kind == "Namespace" && t.manifest.name() == self.settings.namespace
            })
        {
            server_side_apply(
                &self.client,
                t,
                &t.manifest.object,
                self.apply_options(self.settings.force_conflicts),
            )
            .await
            .map_err(api_err(format!(
                "create namespace {}",
                self.settings.namespace
            )))?;
        }
        self.locked(async |waited| {
            // If another deploy ran meanwhile, the plan is stale: make it again.
            let mut prepared = prepared;
            let planned = if waited || store.list().await? != history {
                let manifests: Vec<Manifest> = prepared
                    .targets
                    .iter()
                    .map(|t| t.manifest.clone())
                    .collect();
                prepared.new_namespaces = self.missing_namespaces(&manifests).await?;
                None
            } else {
                Some(planned)
            };
            self.deploy_locked(
                &prepared,
                planned,
                input.tag,
                input.commit,
                input.images,
                digest,
                since,
            )
            .await
        })
        .await
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "the parts of one release, passed once"
    )]
    async fn deploy_locked(
        &self,
        prepared: &Prepared,
        planned: Option<Vec<Planned>>,
        tag: Option<String>,
        commit: Option<String>,
        images: Vec<PinnedImage>,
        digest: String,
        since: k8s_openapi::jiff::Timestamp,
    ) -> Result<Outcome, DeployError> {
        let store = self.store();
        let mut history = store.list().await?;
        self.repair(&store, &mut history, &prepared.catalog).await?;
        let current = release::current(&history).cloned();
        let planned = match planned {
            Some(p) => p,
            None => {
                self.stage(
                    "plan",
                    "server-side dry-run (again: another deploy ran meanwhile)",
                );
                self.plan(
                    prepared,
                    self.settings.force_conflicts,
                    current.as_ref(),
                    false,
                )
                .await?
            }
        };
        let keep: BTreeSet<ObjectKey> = prepared.targets.iter().map(Target::key).collect();
        let prune_keys = if self.settings.prune {
            Self::prune_candidates(&Self::inventory(&history), &keep)
        } else {
            Vec::new()
        };
        let count = |a: Action| planned.iter().filter(|p| p.change.action == a).count();
        self.sink.emit(DeployEvent::Planned {
            create: count(Action::Create),
            update: count(Action::Update),
            replace: count(Action::Replace),
            unchanged: count(Action::Unchanged),
            prune: prune_keys.len(),
        });
        let revision = history.iter().map(|r| r.revision).max().unwrap_or(0) + 1;
        let mut record = Release {
            app: self.settings.app.clone(),
            env: self.settings.env.clone(),
            revision,
            status: ReleaseStatus::Pending,
            tag,
            commit,
            images,
            previous: current.as_ref().map(|c| c.revision),
            restores: None,
            started_at: self.now(),
            finished_at: None,
            description: "deploying".into(),
            digest,
            manifests: prepared
                .targets
                .iter()
                .map(|t| t.manifest.object.clone())
                .collect(),
            adopted: {
                let keys: BTreeSet<ObjectKey> = prepared.targets.iter().map(Target::key).collect();
                let mut adopted: Vec<ObjectKey> = current
                    .iter()
                    .flat_map(|c| c.adopted.iter().cloned())
                    .chain(
                        planned
                            .iter()
                            .filter(|p| p.adopted)
                            .map(|p| p.change.key.clone()),
                    )
                    .filter(|k| keys.contains(k))
                    .collect();
                adopted.sort();
                adopted.dedup();
                adopted
            },
        };
        let newly: Vec<String> = planned
            .iter()
            .filter(|p| p.adopted)
            .map(|p| p.change.key.to_string())
            .collect();
        let adopting = if newly.is_empty() {
            String::new()
        } else {
            format!("; adopted {}", newly.join(", "))
        };
        record.description = format!("deploying{adopting}");
        // The failure report's events are those since this record was written, on the
        // server's clock (this machine's may be off; a simulator's runs faster).
        let since = store.create(&record).await?.unwrap_or(since);
        self.sink.emit(DeployEvent::Recorded {
            revision,
            status: record.status.to_string(),
        });

        let deadline = Instant::now() + self.settings.timeout;
        let stage = self
            .apply_and_wait(
                &prepared.targets,
                &planned,
                self.settings.force_conflicts,
                deadline,
                &self.cancel,
            )
            .await?;
        match stage {
            Stage::Cancelled => {
                self.cancelled(prepared, &mut record, current.as_ref())
                    .await
            }
            Stage::Ready(objects) => {
                if self.settings.prune {
                    self.prune(&prepared.catalog, &prune_keys).await?;
                }
                record.status = ReleaseStatus::Deployed;
                record.finished_at = Some(self.now());
                record.description = format!("deployed{adopting}");
                store.update(&record).await?;
                self.sink.emit(DeployEvent::Recorded {
                    revision,
                    status: record.status.to_string(),
                });
                // The new release is live and recorded: a record that cannot be marked now is
                // a warning, and the next run repairs it (one release is `deployed`).
                if let Some(mut c) = current {
                    c.status = ReleaseStatus::Superseded;
                    if let Err(e) = store.update(&c).await {
                        self.sink.emit(DeployEvent::Warning {
                            message: format!(
                                "release v{revision} is deployed, but v{} could not be marked superseded ({}); the next deploy repairs it",
                                c.revision,
                                error_chain(&e)
                            ),
                        });
                    }
                }
                if let Err(e) = store.trim(self.settings.history).await {
                    tracing::warn!("cannot trim the release history: {}", error_chain(&e));
                }
                Ok(Outcome::Deployed {
                    revision,
                    unchanged: false,
                    load_balancers: Self::load_balancers(&prepared.targets, &objects),
                })
            }
            Stage::Failed {
                failures,
                pods,
                objects,
                timed_out,
            } => {
                let reports = self.reports(&failures, &pods, &objects, since).await;
                let summary = failures
                    .iter()
                    .map(|(k, why)| format!("{k}: {why}"))
                    .collect::<Vec<_>>()
                    .join("; ");
                record.status = ReleaseStatus::Failed;
                record.finished_at = Some(self.now());
                record.description = summary;
                store.update(&record).await?;
                self.sink.emit(DeployEvent::Recorded {
                    revision,
                    status: record.status.to_string(),
                });
                let Some(previous) = current else {
                    return Ok(Outcome::Failed {
                        revision,
                        reports,
                        not_rolled_back: "there is no previous release to roll back to".into(),
                        timed_out,
                    });
                };
                if !self.settings.rollback {
                    return Ok(Outcome::Failed {
                        revision,
                        reports,
                        not_rolled_back: "automatic rollback is off (--no-rollback)".into(),
                        timed_out,
                    });
                }
                self.stage("rollback", format!("to v{}", previous.revision));
                match self
                    .restore(
                        &prepared.catalog,
                        &previous,
                        &record.manifests,
                        revision,
                        Instant::now() + self.settings.timeout,
                        &self.abort,
                    )
                    .await
                {
                    // The rollback could not be carried out at all (the cluster stopped
                    // answering past the retries): a failure that was not rolled back (8),
                    // saying what runs, never a bare runtime error.
                    Err(DeployError::Cancelled(what)) => Err(DeployError::Cancelled(what)),
                    Err(e) => Ok(Outcome::Failed {
                        revision,
                        reports,
                        not_rolled_back: format!(
                            "the rollback to v{} could not finish ({}); the cluster runs release v{revision}'s objects, partly rolled back; deploy again or run `ferry rollback`",
                            previous.revision,
                            error_chain(&e)
                        ),
                        timed_out,
                    }),
                    Ok(Ok((new_revision, _))) => {
                        record.status = ReleaseStatus::RolledBack;
                        record.description = format!(
                            "{} — rolled back to v{}",
                            record.description, previous.revision
                        );
                        if let Err(e) = store.update(&record).await {
                            self.sink.emit(DeployEvent::Warning {
                                message: format!(
                                    "rolled back to v{}, but v{revision}'s record could not be marked rolled-back ({}); the next deploy repairs it",
                                    previous.revision,
                                    error_chain(&e)
                                ),
                            });
                        }
                        self.sink.emit(DeployEvent::Recorded {
                            revision,
                            status: record.status.to_string(),
                        });
                        if let Err(e) = store.trim(self.settings.history).await {
                            tracing::warn!("cannot trim the release history: {}", error_chain(&e));
                        }
                        Ok(Outcome::RolledBack {
                            failed: revision,
                            restored: previous.revision,
                            revision: new_revision,
                            reports,
                            timed_out,
                        })
                    }
                    Ok(Err(why)) => Ok(Outcome::Failed {
                        revision,
                        reports,
                        not_rolled_back: format!(
                            "the rollback to v{} failed too: {why}",
                            previous.revision
                        ),
                        timed_out,
                    }),
                }
            }
        }
    }

    /// Repairs what an interrupted run left in `history`, reading the live objects to decide.
    /// A `pending` record is a deploy that stopped (killed, its lock expired): when it is the
    /// newest attempt and every one of its objects is live, this app's, ready and running its
    /// images, its deploy stopped after the rollout and it is `deployed`; otherwise it is
    /// `failed` (interrupted). Of several `deployed` records, the newest stays and the others
    /// are `superseded`. Each repair is said.
    async fn repair(
        &self,
        store: &RecordStore,
        history: &mut [Release],
        catalog: &Catalog,
    ) -> Result<(), DeployError> {
        let newest = history.iter().map(|r| r.revision).max();
        for r in history.iter_mut() {
            if r.status != ReleaseStatus::Pending {
                continue;
            }
            let live = Some(r.revision) == newest && self.is_live(catalog, r).await;
            r.finished_at = Some(self.now());
            let why = if live {
                r.status = ReleaseStatus::Deployed;
                r.description = "deployed (its deploy stopped after the rollout)".into();
                "was pending, but every object of it is live and ready: marked deployed"
            } else {
                r.status = ReleaseStatus::Failed;
                r.description =
                    "interrupted: the deploy stopped before finishing (its lock expired)".into();
                "was pending: the deploy that wrote it stopped; marked failed (interrupted)"
            };
            store.update(r).await?;
            self.sink.emit(DeployEvent::Warning {
                message: format!("repaired the release history: v{} {why}", r.revision),
            });
        }
        let newest_deployed = release::current(history).map(|r| r.revision);
        for r in history
            .iter_mut()
            .filter(|r| r.status == ReleaseStatus::Deployed && Some(r.revision) != newest_deployed)
        {
            r.status = ReleaseStatus::Superseded;
            store.update(r).await?;
            self.sink.emit(DeployEvent::Warning {
                message: format!(
                    "repaired the release history: v{} was still marked deployed after a newer release; marked superseded",
                    r.revision
                ),
            });
        }
        Ok(())
    }

    /// Whether every object of `record` is in the cluster as that release left it: present,
    /// labelled this app's, ready, and its pods' images those of the record.
    async fn is_live(&self, catalog: &Catalog, record: &Release) -> bool {
        let owner = self.settings.owner();
        let images = |v: &Value| -> Vec<String> {
            let Some(spec) = crate::manifest::pod_spec_pointer(
                v.get("kind").and_then(Value::as_str).unwrap_or(""),
            ) else {
                return Vec::new();
            };
            v.pointer(&format!("{spec}/containers"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|c| c.get("image").and_then(Value::as_str).map(str::to_owned))
                .collect()
        };
        for t in self.recorded_targets(catalog, &record.manifests) {
            let Ok(Some(live)) = t.api(&self.client).get_opt(t.manifest.name()).await else {
                return false;
            };
            let live = serde_json::to_value(&live).unwrap_or(Value::Null);
            if crate::manifest::label(&live, OWNER_LABEL) != Some(owner.as_str())
                && t.resource.kind != "Namespace"
            {
                return false;
            }
            if images(&live) != images(&t.manifest.object)
                || health::assess(&t.resource.kind, &live) != health::Health::Ready
            {
                return false;
            }
        }
        true
    }

    /// A deploy cancelled after its record was written: record it as failed (cancelled), then
    /// roll back to `current` if that finishes within the grace period (a second signal stops
    /// it), else leave it for the next deploy, which rolls forward or back.
    async fn cancelled(
        &self,
        prepared: &Prepared,
        record: &mut Release,
        current: Option<&Release>,
    ) -> Result<Outcome, DeployError> {
        let store = self.store();
        let grace = self.settings.cancel_grace;
        let plan_of = match (current, self.settings.rollback) {
            (Some(c), true) if !grace.is_zero() => format!(
                "rolling back to v{} (up to {})",
                c.revision,
                humantime::format_duration(grace)
            ),
            (Some(_), true) => "cancel_grace is 0: leaving it for the next deploy".into(),
            (Some(_), false) => "automatic rollback is off: leaving it for the next deploy".into(),
            (None, _) => "there is no previous release: leaving it for the next deploy".into(),
        };
        self.sink.emit(DeployEvent::Cancelled {
            message: format!("stopped applying release v{}; {plan_of}", record.revision),
        });
        record.status = ReleaseStatus::Failed;
        record.finished_at = Some(self.now());
        record.description = "cancelled (SIGINT or SIGTERM) while deploying".into();
        store.update(record).await?;
        self.sink.emit(DeployEvent::Recorded {
            revision: record.revision,
            status: "failed (cancelled)".into(),
        });
        let left = |why: String| Outcome::Cancelled {
            revision: record.revision,
            restored: None,
            left: why,
        };
        let Some(previous) = current.filter(|_| self.settings.rollback && !grace.is_zero()) else {
            return Ok(left(format!(
                "{}; the next deploy rolls forward, or `ferry rollback` goes back",
                plan_of.trim_end_matches(": leaving it for the next deploy")
            )));
        };
        self.stage("rollback", format!("to v{}", previous.revision));
        match self
            .restore(
                &prepared.catalog,
                previous,
                &record.manifests,
                record.revision,
                Instant::now() + grace,
                &self.abort,
            )
            .await?
        {
            Ok((revision, _)) => {
                record.status = ReleaseStatus::RolledBack;
                record.description = format!(
                    "{} — rolled back to v{}",
                    record.description, previous.revision
                );
                store.update(record).await?;
                self.sink.emit(DeployEvent::Recorded {
                    revision: record.revision,
                    status: record.status.to_string(),
                });
                store.trim(self.settings.history).await?;
                Ok(Outcome::Cancelled {
                    revision: record.revision,
                    restored: Some((previous.revision, revision)),
                    left: String::new(),
                })
            }
            Err(why) => Ok(left(format!(
                "the rollback to v{} did not finish within {} ({why}); the next deploy rolls forward, or `ferry rollback` goes back",
                previous.revision,
                humantime::format_duration(grace)
            ))),
        }
    }

    /// Re-applies `target`'s recorded manifests, waits for them, prunes what `failed_objects`
    /// added, and records the rollback as a new revision. Ok(Err(why)) when the rollback itself
    /// did not become healthy.
    async fn restore(
        &self,
        catalog: &Catalog,
        target: &Release,
        failed_objects: &[Value],
        after: u32,
        deadline: Instant,
        stop: &CancellationToken,
    ) -> Result<Result<(u32, LoadBalancers), String>, DeployError> {
        let store = self.store();
        let targets = self.recorded_targets(catalog, &target.manifests);
        let prepared = Prepared {
            targets,
            new_namespaces: BTreeSet::new(),
            catalog: catalog.clone(),
        };
        // Restore with force: ferry takes back the fields the failed release set.
        let planned = self.plan(&prepared, true, None, true).await?;
        let history = store.list().await?;
        let revision = history.iter().map(|r| r.revision).max().unwrap_or(after) + 1;
        let mut record = Release {
            revision,
            status: ReleaseStatus::Pending,
            previous: Some(after),
            restores: Some(target.revision),
            started_at: self.now(),
            finished_at: None,
            description: format!("rollback to v{}", target.revision),
            ..target.clone()
        };
        store.create(&record).await?;
        match self
            .apply_and_wait(&prepared.targets, &planned, true, deadline, stop)
            .await?
        {
            Stage::Cancelled => {
                record.status = ReleaseStatus::Failed;
                record.finished_at = Some(self.now());
                record.description = format!("rollback to v{} cancelled", target.revision);
                store.update(&record).await?;
                Ok(Err("it was cancelled".into()))
            }
            Stage::Ready(objects) => {
                let keep: BTreeSet<ObjectKey> = prepared.targets.iter().map(Target::key).collect();
                if self.settings.prune {
                    self.prune(catalog, &Self::prune_candidates(failed_objects, &keep))
                        .await?;
                }
                record.status = ReleaseStatus::Deployed;
                record.finished_at = Some(self.now());
                store.update(&record).await?;
                self.sink.emit(DeployEvent::Recorded {
                    revision,
                    status: format!("deployed (rollback to v{})", target.revision),
                });
                for mut r in store
                    .list()
                    .await?
                    .into_iter()
                    .filter(|r| r.status == ReleaseStatus::Deployed && r.revision != revision)
                {
                    r.status = ReleaseStatus::Superseded;
                    store.update(&r).await?;
                }
                Ok(Ok((
                    revision,
                    Self::load_balancers(&prepared.targets, &objects),
                )))
            }
            Stage::Failed { failures, .. } => {
                let why = failures
                    .iter()
                    .map(|(k, w)| format!("{k}: {w}"))
                    .collect::<Vec<_>>()
                    .join("; ");
                record.status = ReleaseStatus::Failed;
                record.finished_at = Some(self.now());
                record.description = format!("rollback to v{} failed: {why}", target.revision);
                store.update(&record).await?;
                Ok(Err(why))
            }
        }
    }

    /// `ferry rollback [--to N]`: restores revision `to` (default: the release before the
    /// current one) under the lock.
    pub async fn rollback(&self, to: Option<u32>) -> Result<Outcome, DeployError> {
        let store = self.store();
        let history = store.list().await?;
        let current = release::current(&history).cloned();
        let target = match to {
            Some(n) => history
                .iter()
                .find(|r| r.revision == n)
                .cloned()
                .ok_or_else(|| {
                    DeployError::NoRelease(format!(
                        "no release v{n} of {} in {} (history: {})",
                        self.settings.app,
                        self.settings.env,
                        history
                            .iter()
                            .map(|r| format!("v{}", r.revision))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?,
            // The newest attempt did not become current (it failed without a rollback, its
            // rollback failed too, or it was killed): the cluster holds its objects, so going
            // back means going back to the current release.
            None => match (&current, history.last()) {
                (Some(c), Some(newest)) if newest.revision > c.revision => c.clone(),
                _ => {
                    let cur = current.as_ref().map_or(u32::MAX, |c| c.revision);
                    history
                        .iter()
                        .rev()
                        .find(|r| {
                            r.revision < cur
                                && matches!(
                                    r.status,
                                    ReleaseStatus::Superseded | ReleaseStatus::Deployed
                                )
                        })
                        .cloned()
                        .ok_or_else(|| {
                            DeployError::NoRelease(format!(
                                "no earlier healthy release of {} in {} to roll back to",
                                self.settings.app, self.settings.env
                            ))
                        })?
                }
            },
        };
        let mut catalog = self.discover().await?;
        let recorded: Vec<Manifest> = target
            .manifests
            .iter()
            .map(|o| Manifest {
                source: Source::generated("release record", format!("v{}", target.revision)),
                object: o.clone(),
            })
            .collect();
        catalog.add_release_crds(&recorded);
        self.locked(async |_| {
            self.stage("rollback", format!("to v{}", target.revision));
            let after = history.iter().map(|r| r.revision).max().unwrap_or(0);
            // What the cluster holds now: the newest record's objects (prune what it added).
            let failed_objects = history
                .last()
                .filter(|r| r.revision != target.revision)
                .map(|r| r.manifests.clone())
                .unwrap_or_default();
            Ok(
                match self
                    .restore(
                        &catalog,
                        &target,
                        &failed_objects,
                        after,
                        Instant::now() + self.settings.timeout,
                        &self.cancel,
                    )
                    .await?
                {
                    Ok((revision, load_balancers)) => Outcome::Deployed {
                        revision,
                        unchanged: false,
                        load_balancers,
                    },
                    Err(why) => Outcome::Failed {
                        revision: after + 1,
                        reports: Vec::new(),
                        not_rolled_back: why,
                        timed_out: false,
                    },
                },
            )
        })
        .await
    }

    /// The release history, oldest first.
    pub async fn history(&self) -> Result<Vec<Release>, DeployError> {
        Ok(release::normalized(self.store().list().await?))
    }

    /// The current release and the live health of each of its objects (one read each).
    pub async fn status(
        &self,
    ) -> Result<Option<(Release, Vec<(ObjectKey, health::Health)>)>, DeployError> {
        let history = release::normalized(self.store().list().await?);
        let Some(current) = release::current(&history)
            .cloned()
            .or_else(|| history.last().cloned())
        else {
            return Ok(None);
        };
        let catalog = self.discover().await?;
        let mut out = Vec::new();
        for t in self.recorded_targets(&catalog, &current.manifests) {
            let key = t.key();
            let h = match t.api(&self.client).get_opt(t.manifest.name()).await {
                Ok(Some(o)) => health::assess(
                    &t.resource.kind,
                    &serde_json::to_value(&o).unwrap_or(Value::Null),
                ),
                Ok(None) => health::Health::Failed("missing from the cluster".into()),
                Err(e) => health::Health::Pending(format!("cannot read: {e}")),
            };
            out.push((key, h));
        }
        Ok(Some((current, out)))
    }
}
