//! ferry's deploy engine: render, validate, plan, server-side apply, health, release records,
//! rollback, prune and lock, against any cluster a [`cluster::ClusterProvider`] reaches.
//!
//! # How the pieces fit
//!
//! A deploy is a pipeline of small steps, one module each:
//!
//! 1. [`render`] turns a manifests directory or a kustomization (ferry's own kustomize, checked
//!    against `kubectl kustomize`) into [`manifest::Manifest`]s that remember their file and
//!    document;
//! 2. [`images`] sets the app's images to the commit SHA and, through a
//!    [`images::DigestResolver`], to their digests;
//! 3. [`validate`] finds every problem before the first write (shape, names, kinds the server
//!    serves, namespaces, references), [`schema`] reads each built-in object into its
//!    Kubernetes type (unknown fields, wrong types, missing required fields at
//!    `file:line:column`), and [`plan`] asks the server for a dry-run of each object with
//!    `fieldValidation=Strict`, so the server's own refusals are input problems too; [`owned`]
//!    leaves the fields other actors own (an HPA's replicas, `ignore_fields`) out of what is
//!    sent, and the plan refuses to reset a Secret value someone else changed or to take over an
//!    object that is not this app's;
//! 4. [`lock`] takes a Lease per app and environment (renewed, expiring when its holder dies),
//!    [`release`] records the release in a Secret before anything changes (its objects listed
//!    first, so what a failed release created is pruned later), after repairing what an
//!    interrupted run left;
//! 5. [`order`] groups objects into waves and phases, [`apply`] sends each with server-side
//!    apply (field manager `ferry`), keeping the server's `Warning` headers, skipping the
//!    unchanged and deleting-then-creating Jobs per release and objects marked
//!    `ferry.dev/replace`;
//! 6. [`health`] watches every object until it is ready (kubectl's rollout rules with the
//!    observedGeneration check, krane's doomed pods) or fails, and [`report`] gathers its events
//!    (in causal order) and logs;
//! 7. on failure, or on a cancel (SIGINT/SIGTERM, within a grace period), the [`engine`]
//!    re-applies the previous release's recorded manifests and waits again; on success it
//!    prunes what the previous releases had and this one dropped, but only objects that still
//!    carry ferry's owner label and were not adopted.
//!
//! Every request goes through [`retry`]: 429s, 5xx and dropped connections are sent again with
//! backoff.
//!
//! [`engine::Engine`] runs the pipeline and reports [`events::DeployEvent`]s to an
//! [`events::EventSink`]; the `ferry` binary renders them for terminals, CI logs, JSON and
//! GitHub Actions.
//!
//! The engine sees a cluster only as a [`kube::Client`] (dynamic objects and discovery), never
//! typed structs that claim every field, and never cloud SDKs: `cargo tree -p ferry-deployer
//! --no-default-features` holds no AWS or Azure SDK crate (only rustls' `aws-lc-rs` crypto
//! provider). EKS and AKS clients come from [`cluster::ClusterProvider`] implementations
//! behind the `eks` and `aks` features; the simulated cluster (ferry-sim) behind `sim`.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use ferry_deployer::cluster::{ClusterProvider, KubeconfigProvider};
//! use ferry_deployer::{Engine, ReleaseInput, Settings};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let provider = KubeconfigProvider::new("/home/me/.kube/config").context(Some("prod".into()));
//! let client = provider.client().await?;
//! let manifests = ferry_deployer::render::render(std::path::Path::new("k8s/overlays/prod"))?;
//! let mut settings = Settings::new("shop", "prod", "ci run 42 on runner-1 pid 7");
//! settings.namespace = "shop".into();
//! let clock = Arc::new(ferry_deployer::clock::FnClock(my_clock));
//! let engine = Engine::new(client, settings, clock, Arc::new(ferry_deployer::events::Discard));
//! let outcome = engine.deploy(ReleaseInput { manifests, ..ReleaseInput::default() }).await?;
//! println!("{outcome:?}");
//! # Ok(())
//! # }
//! # fn my_clock() -> std::time::SystemTime { std::time::UNIX_EPOCH }
//! ```
//!
//! # Written here rather than taken from a crate
//!
//! - Strategic merge patch and the kustomize transformers: no maintained Rust crate implements
//!   them (json-patch covers RFC 6902 and merge patch, which ferry uses).
//! - Readiness: kube-rs's `is_deployment_completed` skips the observedGeneration check and its
//!   `await_condition` has no deadline; the rules here follow kubectl and Argo CD.

pub mod apply;
pub mod catalog;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod engine;
pub mod events;
pub mod health;
pub mod images;
pub mod lock;
pub mod manifest;
pub mod order;
pub mod owned;
pub mod plan;
pub mod release;
pub mod render;
pub mod report;
pub mod retry;
pub mod schema;
pub mod validate;

pub use engine::{DeployError, Engine, Outcome, ReleaseInput, Settings};
