//! ferry's deploy engine: render, validate, plan, server-side apply, health, release records,
//! rollback, prune and lock, against any cluster a [`cluster::ClusterProvider`] reaches.
//!
//! The engine sees a cluster only as a [`kube::Client`] (dynamic objects and discovery), never
//! through cloud SDKs: `cargo tree -p ferry-deployer --no-default-features` holds no `aws-*` or
//! `azure*` crate. Cloud-specific ways of getting a client (EKS, AKS) implement
//! [`cluster::ClusterProvider`] behind the `eks` and `aks` features.

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
pub mod plan;
pub mod release;
pub mod render;
pub mod report;
pub mod validate;

pub use engine::{DeployError, Engine, Outcome, ReleaseInput, Settings};
