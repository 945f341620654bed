//! `[env.NAME.deploy]` in `ferry.toml`: how an environment is deployed. Durations are written
//! like `10m`, `90s`; everything has a default.
//!
//! ```toml
//! [env.prod.deploy]
//! manifests = "k8s/overlays/prod"   # a directory of manifests or a kustomization
//! namespace = "shop"                # for objects without one; holds the lock and records
//! timeout = "10m"                   # overall wait for health
//! resource_timeout = "5m"           # per resource (annotation ferry.dev/timeout overrides)
//! load_balancer_timeout = "10m"     # LoadBalancer Services
//! lock_ttl = "30s"                  # how long a killed deploy blocks the next one
//! history = 10                      # release records kept
//! parallelism = 8                   # objects applied at once
//! rollback = true                   # roll back automatically on failure
//! prune = true                      # delete objects dropped from the release
//! resolve_digests = true            # deploy by digest (default: true, false on the simulator)
//! insecure_registries = []          # registries reached over plain HTTP (local tests)
//! field_validation = "strict"       # unknown/duplicate fields: strict (refused), warn, ignore
//! cancel_grace = "5s"               # after SIGINT/SIGTERM: time allowed for the rollback
//!
//! [[env.prod.deploy.ignore_fields]]  # fields left to other actors on existing objects
//! kind = "Deployment"
//! name = "web"
//! pointers = ["/spec/template/metadata/annotations/restartedAt"]
//! ```

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::apply::FieldValidation;
use crate::engine::Settings;
use crate::owned::IgnoreFields;

/// `[env.NAME.deploy]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployConfig {
    /// The manifests: a directory, a file, or a kustomization directory, relative to
    /// `ferry.toml`. Default: `k8s`.
    #[serde(default)]
    pub manifests: Option<PathBuf>,
    /// The namespace for namespaced objects without one; it holds the lock and the release
    /// records. Default: `default`.
    #[serde(default)]
    pub namespace: Option<String>,
    /// The overall deadline for health. Default: `10m`.
    #[serde(default)]
    pub timeout: Option<String>,
    /// The deadline per resource. Default: `5m`.
    #[serde(default)]
    pub resource_timeout: Option<String>,
    /// The deadline for LoadBalancer Services. Default: `10m`.
    #[serde(default)]
    pub load_balancer_timeout: Option<String>,
    /// The lock lease's duration. Default: `30s`.
    #[serde(default)]
    pub lock_ttl: Option<String>,
    /// Release records kept. Default: 10.
    #[serde(default)]
    pub history: Option<usize>,
    /// Objects applied at once. Default: 8.
    #[serde(default)]
    pub parallelism: Option<usize>,
    /// Roll back automatically on failure. Default: true.
    #[serde(default)]
    pub rollback: Option<bool>,
    /// Delete objects dropped from the release. Default: true.
    #[serde(default)]
    pub prune: Option<bool>,
    /// Resolve the app's image tags to digests on their registry and deploy by digest.
    /// Default: true, except on the simulated cluster (its images are not on a registry).
    #[serde(default)]
    pub resolve_digests: Option<bool>,
    /// Registries reached over plain HTTP when resolving digests (`127.0.0.1:5020`): local
    /// test registries only.
    #[serde(default)]
    pub insecure_registries: Vec<String>,
    /// What the server does with unknown and duplicate fields. Default: `strict` (they are
    /// problems of the release); `warn` for CRDs whose schemas are incomplete.
    #[serde(default)]
    pub field_validation: Option<FieldValidation>,
    /// Fields left to other actors on objects that already exist (Argo CD's
    /// `ignoreDifferences`): JSON pointers per kind or object.
    #[serde(default)]
    pub ignore_fields: Vec<IgnoreFields>,
    /// After SIGINT or SIGTERM: how long the rollback to the previous release may take before
    /// it is left to the next deploy. Default: `5s` (GitHub Actions sends SIGTERM 7.5 s after
    /// SIGINT); `0s` never rolls back on a cancel.
    #[serde(default)]
    pub cancel_grace: Option<String>,
}

/// A value in `[env.NAME.deploy]` that is wrong, by key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The key (`timeout`).
    pub key: &'static str,
    /// What is wrong.
    pub message: String,
}

/// A deadline from `ferry.toml`: a duration above zero (a zero deadline fails every deploy and
/// then its rollback before either could start).
fn duration(key: &'static str, v: &Option<String>) -> Result<Option<Duration>, ConfigProblem> {
    v.as_deref()
        .map(|s| {
            let d = humantime::parse_duration(s.trim()).map_err(|e| ConfigProblem {
                key,
                message: format!("`{s}` is not a duration ({e}); write e.g. `90s`, `5m`, `1h`"),
            })?;
            if d.is_zero() {
                return Err(ConfigProblem {
                    key,
                    message: format!(
                        "`{s}` is zero: nothing could become ready in it; write e.g. `90s`, `5m`"
                    ),
                });
            }
            Ok(d)
        })
        .transpose()
}

impl DeployConfig {
    /// The manifests path (relative to the config file), defaulting to `k8s`.
    pub fn manifests_path(&self) -> PathBuf {
        self.manifests
            .clone()
            .unwrap_or_else(|| PathBuf::from("k8s"))
    }

    /// Applies this section to engine settings (flags are applied after it by the caller).
    pub fn apply(&self, s: &mut Settings) -> Result<(), ConfigProblem> {
        if let Some(ns) = &self.namespace {
            if !crate::validate::is_dns_label(ns) {
                return Err(ConfigProblem {
                    key: "namespace",
                    message: format!("`{ns}` is not a valid namespace name (a DNS label)"),
                });
            }
            s.namespace.clone_from(ns);
        }
        if let Some(d) = duration("timeout", &self.timeout)? {
            s.timeout = d;
        }
        if let Some(d) = duration("resource_timeout", &self.resource_timeout)? {
            s.resource_timeout = d;
        }
        if let Some(d) = duration("load_balancer_timeout", &self.load_balancer_timeout)? {
            s.load_balancer_timeout = d;
        }
        if let Some(d) = duration("lock_ttl", &self.lock_ttl)? {
            if d < Duration::from_secs(1) {
                return Err(ConfigProblem {
                    key: "lock_ttl",
                    message: "the lock TTL must be at least 1s".into(),
                });
            }
            s.lock.ttl = d;
        }
        if let Some(h) = self.history {
            if h == 0 {
                return Err(ConfigProblem {
                    key: "history",
                    message: "history must keep at least 1 release".into(),
                });
            }
            s.history = h;
        }
        if let Some(p) = self.parallelism {
            if p == 0 || p > 256 {
                return Err(ConfigProblem {
                    key: "parallelism",
                    message: "parallelism must be between 1 and 256".into(),
                });
            }
            s.parallelism = p;
        }
        if let Some(r) = self.rollback {
            s.rollback = r;
        }
        if let Some(p) = self.prune {
            s.prune = p;
        }
        if let Some(v) = self.field_validation {
            s.field_validation = v;
        }
        for rule in &self.ignore_fields {
            if rule.pointers.is_empty() {
                return Err(ConfigProblem {
                    key: "ignore_fields",
                    message: format!("the entry for kind `{}` lists no pointers", rule.kind),
                });
            }
            if let Some(message) = rule
                .pointers
                .iter()
                .find_map(|p| IgnoreFields::pointer_problem(p))
            {
                return Err(ConfigProblem {
                    key: "ignore_fields",
                    message,
                });
            }
        }
        s.ignore_fields.clone_from(&self.ignore_fields);
        if let Some(g) = &self.cancel_grace {
            s.cancel_grace = humantime::parse_duration(g.trim()).map_err(|e| ConfigProblem {
                key: "cancel_grace",
                message: format!("`{g}` is not a duration ({e}); write e.g. `5s`"),
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_limits_are_checked() {
        let mut s = Settings::new("a", "b", "h");
        let c = DeployConfig {
            timeout: Some("90s".into()),
            lock_ttl: Some("5s".into()),
            ..DeployConfig::default()
        };
        c.apply(&mut s).unwrap();
        assert_eq!(s.timeout, Duration::from_secs(90));
        assert_eq!(s.lock.ttl, Duration::from_secs(5));
        let bad = DeployConfig {
            timeout: Some("soon".into()),
            ..DeployConfig::default()
        };
        assert_eq!(bad.apply(&mut s).unwrap_err().key, "timeout");
        for zero in ["0s", "0"] {
            let bad = DeployConfig {
                resource_timeout: Some(zero.into()),
                ..DeployConfig::default()
            };
            let err = bad.apply(&mut s).unwrap_err();
            assert_eq!(err.key, "resource_timeout");
            assert!(err.message.contains("is zero"), "{}", err.message);
        }
        let bad = DeployConfig {
            namespace: Some("Not_A_Label".into()),
            ..DeployConfig::default()
        };
        assert_eq!(bad.apply(&mut s).unwrap_err().key, "namespace");
    }
}
