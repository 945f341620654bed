//! Where the cluster is: the [`ClusterProvider`] seam.
//!
//! The deploy engine sees a cluster only as a [`kube::Client`] obtained from a
//! [`ClusterProvider`]. Providers are chosen at run time from `[env.X.cluster]` in `ferry.toml`
//! ([`ClusterConfig`], tagged by `provider`); the `ferry` binary maps each variant to a
//! constructor. Implementations here:
//!
//! - [`KubeconfigProvider`]: a kubeconfig file and context (`provider = "kubeconfig"`);
//! - [`InClusterProvider`]: the pod's service account (`provider = "in-cluster"`);
//! - `SimProvider` (feature `sim`): a ferry-sim cluster persisted in a state file under the
//!   project's `.ferry/` directory (`provider = "sim"`), the embedded default;
//! - EKS and AKS (features `eks`, `aks`) build on the same trait; their config parses
//!   regardless of features so a config file is portable between builds.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::ConfigProblem;

#[cfg(feature = "aks")]
mod aks;
#[cfg(any(feature = "eks", feature = "aks"))]
mod cloud;
#[cfg(feature = "eks")]
mod eks;
mod incluster;
mod kubeconfig;
#[cfg(feature = "sim")]
mod sim;

#[cfg(feature = "aks")]
pub use aks::AksProvider;
#[cfg(any(feature = "eks", feature = "aks"))]
pub use cloud::ClusterEndpoint;
#[cfg(feature = "eks")]
pub use eks::EksProvider;
pub use incluster::InClusterProvider;
pub use kubeconfig::{KubeconfigProvider, check_kubeconfig, skips_tls_verification};
#[cfg(feature = "sim")]
pub use sim::SimProvider;

/// A source of clients for one cluster.
#[async_trait::async_trait]
pub trait ClusterProvider: Send + Sync + fmt::Debug {
    /// A client for the cluster; may be called again when credentials expire.
    async fn client(&self) -> Result<kube::Client, ClusterError>;
    /// For messages: "kubeconfig ~/.kube/config context prod", "eks cluster x in us-east-1".
    fn describe(&self) -> String;
    /// The API server's URL, for messages, once [`client`](Self::client) has found it (None
    /// before, or when the provider does not say).
    fn server(&self) -> Option<String> {
        None
    }
    /// Releases what the provider holds when the command ends (the in-process simulator
    /// persists its state and stops). Most providers hold nothing.
    async fn close(&self) -> Result<(), ClusterError> {
        Ok(())
    }
}

/// A provider shared between the parts of a deploy.
pub type SharedClusterProvider = Arc<dyn ClusterProvider>;

/// `[env.X.cluster]`: which cluster an environment deploys to, tagged by `provider`.
///
/// ```toml
/// [env.local.cluster]
/// provider = "sim"
///
/// [env.prod.cluster]
/// provider = "kubeconfig"
/// path = "~/.kube/config"
/// context = "prod"
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "provider", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ClusterConfig {
    /// The built-in simulated cluster (ferry-sim), persisted under the project's `.ferry/`.
    Sim(SimClusterConfig),
    /// A kubeconfig file and context.
    Kubeconfig(KubeconfigClusterConfig),
    /// The service account of the pod ferry runs in.
    #[serde(alias = "in_cluster", alias = "incluster")]
    InCluster(InClusterConfig),
    /// An AWS EKS cluster (built with feature `eks`).
    Eks(EksClusterConfig),
    /// An Azure AKS cluster (built with feature `aks`).
    Aks(AksClusterConfig),
}

impl ClusterConfig {
    /// The provider's name as written in `ferry.toml`.
    pub fn provider_name(&self) -> &'static str {
        match self {
            ClusterConfig::Sim(_) => "sim",
            ClusterConfig::Kubeconfig(_) => "kubeconfig",
            ClusterConfig::InCluster(_) => "in-cluster",
            ClusterConfig::Eks(_) => "eks",
            ClusterConfig::Aks(_) => "aks",
        }
    }
}

impl ClusterConfig {
    /// Checks the values serde cannot (offline: names, regions, ids, URLs, the simulator's
    /// settings and config file, a configured kubeconfig file and its context), every problem
    /// by its key. `base` is the config file's
    /// directory, which relative paths are relative to.
    pub fn validate(&self, base: &Path) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        let mut check = |ok: bool, key: &'static str, message: String| {
            if !ok {
                problems.push(ConfigProblem { key, message });
            }
        };
        match self {
            ClusterConfig::Sim(sim) => {
                if let Some(speed) = sim.speed {
                    check(
                        speed.is_finite() && speed > 0.0 && speed <= 10_000.0,
                        "speed",
                        format!(
                            "speed {speed} is not a speed factor: use a number above 0 (1 is real time), at most 10000"
                        ),
                    );
                }
                if let Some(config) = &sim.config {
                    let path = base.join(config);
                    if !path.is_file() {
                        check(
                            false,
                            "config",
                            format!(
                                "the simulator config file {} does not exist",
                                path.display()
                            ),
                        );
                    } else {
                        // Its content too, as the simulator will read it (image rules, faults,
                        // durations), so a mistake there is invalid input before anything runs.
                        #[cfg(feature = "sim")]
                        if let Err(e) = ferry_sim::SimConfig::load(&path) {
                            check(false, "config", e.to_string());
                        }
                    }
                }
            }
            ClusterConfig::Kubeconfig(k) => {
                let empty_context = k.context.as_ref().is_some_and(|c| c.trim().is_empty());
                check(
                    !empty_context,
                    "context",
                    "the context is empty: name one, or remove the key for the file's current context".into(),
                );
                // A configured file is checked here; `~/...` and the default (`$KUBECONFIG`,
                // `~/.kube/config`) need the process environment, which the caller resolves
                // and checks with `check_kubeconfig` before connecting.
                if let Some(path) = k.path.as_deref().filter(|p| !p.starts_with("~"))
                    && !empty_context
                    && let Err(p) = check_kubeconfig(&base.join(path), k.context.as_deref())
                {
                    problems.push(p);
                }
            }
            ClusterConfig::InCluster(_) => {}
            ClusterConfig::Eks(eks) => {
                check(
                    is_eks_cluster_name(&eks.cluster),
                    "cluster",
                    format!(
                        "`{}` is not an EKS cluster name (1 to 100 letters, digits, `-` and `_`, starting with a letter or digit)",
                        eks.cluster
                    ),
                );
                check(
                    is_aws_region(&eks.region),
                    "region",
                    format!(
                        "`{}` is not an AWS region (such as us-east-1 or eu-west-1)",
                        eks.region
                    ),
                );
            }
            ClusterConfig::Aks(aks) => {
                check(
                    is_guid(&aks.subscription),
                    "subscription",
                    format!(
                        "`{}` is not an Azure subscription id (a GUID such as 00000000-0000-0000-0000-000000000000)",
                        aks.subscription
                    ),
                );
                check(
                    is_resource_group(&aks.resource_group),
                    "resource_group",
                    format!(
                        "`{}` is not an Azure resource group name (1 to 90 letters, digits, `-`, `_`, `.`, `(`, `)`, not ending with `.`)",
                        aks.resource_group
                    ),
                );
                check(
                    is_aks_cluster_name(&aks.cluster),
                    "cluster",
                    format!(
                        "`{}` is not an AKS cluster name (1 to 63 letters, digits, `-` and `_`, starting and ending with a letter or digit)",
                        aks.cluster
                    ),
                );
                if let Some(url) = &aks.arm_endpoint {
                    check(
                        is_http_url(url),
                        "arm_endpoint",
                        format!(
                            "`{url}` is not an http(s) URL (leave it unset for https://management.azure.com)"
                        ),
                    );
                }
                if let Some(app) = &aks.server_app_id {
                    check(
                        is_guid(app),
                        "server_app_id",
                        format!(
                            "`{app}` is not an application id (a GUID; leave it unset for AKS's own)"
                        ),
                    );
                }
            }
        }
        problems
    }
}

fn is_eks_cluster_name(name: &str) -> bool {
    name.len() <= 100
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
}

fn is_aks_cluster_name(name: &str) -> bool {
    name.len() <= 63
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
}

/// `us-east-1`, `eu-central-2`, `us-gov-west-1`, `cn-north-1`.
fn is_aws_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts[parts.len() - 1].chars().all(|c| c.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty()
}

fn is_guid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()))
}

fn is_resource_group(name: &str) -> bool {
    (1..=90).contains(&name.chars().count())
        && !name.ends_with('.')
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '(' | ')'))
}

fn is_http_url(text: &str) -> bool {
    text.parse::<http::Uri>()
        .is_ok_and(|u| matches!(u.scheme_str(), Some("http" | "https")) && u.authority().is_some())
}

impl Default for ClusterConfig {
    /// The embedded default: a simulated cluster.
    fn default() -> Self {
        ClusterConfig::Sim(SimClusterConfig::default())
    }
}

/// `provider = "sim"`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimClusterConfig {
    /// The state file, relative to the config file's directory. Default:
    /// `.ferry/sim/<env>.json`.
    #[serde(default)]
    pub state: Option<PathBuf>,
    /// The simulator's virtual-clock speed factor (1.0 = real time). Default: the simulator's.
    #[serde(default)]
    pub speed: Option<f64>,
    /// A simulator config file (`SIM.toml`: image rules, faults), relative to the config file.
    #[serde(default)]
    pub config: Option<PathBuf>,
}

/// `provider = "kubeconfig"`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubeconfigClusterConfig {
    /// The kubeconfig file. Default: `$KUBECONFIG`, then `~/.kube/config`.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// The context. Default: the file's current context.
    #[serde(default)]
    pub context: Option<String>,
}

/// `provider = "in-cluster"`: no settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InClusterConfig {}

/// `provider = "eks"`: which EKS cluster. How ferry authenticates to AWS (the role to assume
/// with the OIDC token, an endpoint override) is `[env.X.auth.aws]`, shared with ECR and
/// Route53; the auth region defaults to the cluster's.
///
/// ```toml
/// [env.prod.cluster]
/// provider = "eks"
/// cluster = "cloudtolocalllm-eks"
/// region = "us-east-1"
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EksClusterConfig {
    /// The EKS cluster name.
    pub cluster: String,
    /// The AWS region the cluster is in.
    pub region: String,
}

/// `provider = "aks"`: which AKS cluster. The Azure AD identity (tenant, client id, federated
/// credential or secret) is `[env.X.auth.azure]`, shared with ACR and Azure DNS.
///
/// ```toml
/// [env.prod.cluster]
/// provider = "aks"
/// subscription = "00000000-0000-0000-0000-000000000000"
/// resource_group = "shop-prod"
/// cluster = "shop-aks"
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AksClusterConfig {
    /// The Azure subscription id.
    pub subscription: String,
    /// The resource group holding the cluster.
    pub resource_group: String,
    /// The AKS cluster name.
    pub cluster: String,
    /// Azure Resource Manager (default `https://management.azure.com`; sovereign clouds have
    /// their own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arm_endpoint: Option<String>,
    /// The AAD server application whose tokens the API server accepts (default: AKS's,
    /// `6dae42f8-4368-4678-94ff-3960e28e3630`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_app_id: Option<String>,
}

/// Why a cluster client could not be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// The provider is known but this build of ferry does not include it.
    #[error(
        "cluster provider `{provider}` is not built into this ferry (enable cargo feature `{feature}`)"
    )]
    NotBuilt {
        /// The provider's name.
        provider: &'static str,
        /// The cargo feature that adds it.
        feature: &'static str,
    },
    /// Nothing to connect with: no kubeconfig, not in a pod, no credentials.
    #[error("no cluster configured: {reason}")]
    NotConfigured {
        /// What was looked for.
        reason: String,
    },
    /// The kubeconfig file could not be read or used.
    #[error("cannot use kubeconfig {path}")]
    Kubeconfig {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// The in-cluster service account could not be used.
    #[error("cannot use the in-cluster service account")]
    InCluster(#[source] kube::config::InClusterError),
    /// Building the HTTP client failed.
    #[error("cannot build a Kubernetes client for {cluster}")]
    Client {
        /// Which cluster.
        cluster: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
    /// A provider-specific failure (credentials, the simulator, a cloud API).
    #[error("{what}")]
    Provider {
        /// What was being done.
        what: String,
        /// Why it failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// How to run or reach the simulated cluster of `provider = "sim"`.
#[derive(Debug, Clone, PartialEq)]
pub struct SimOptions {
    /// The state file (`.ferry/sim/<env>.json` under the project by default).
    pub state: PathBuf,
    /// The virtual-clock speed factor, when set.
    pub speed: Option<f64>,
    /// A simulator config file (image rules, faults), when set.
    pub config: Option<PathBuf>,
    /// The `User-Agent` to send.
    pub user_agent: Option<String>,
}

/// The provider for `provider = "sim"`: a ferry-sim cluster on a state file (feature `sim`).
pub fn sim_provider(options: SimOptions) -> Result<SharedClusterProvider, ClusterError> {
    #[cfg(feature = "sim")]
    {
        Ok(Arc::new(sim::SimProvider::new(options)))
    }
    #[cfg(not(feature = "sim"))]
    {
        let _ = options;
        Err(ClusterError::NotBuilt {
            provider: "sim",
            feature: "sim",
        })
    }
}

/// The `User-Agent` ferry's requests carry: the tool, its version and who is deploying
/// (run id, host, pid), so a cluster's audit log (or the simulator's request log) tells
/// concurrent deploys apart.
pub fn user_agent(holder: &str) -> String {
    format!("ferry/{} ({holder})", env!("CARGO_PKG_VERSION"))
}

/// The API server URL a provider last built a client for (see [`ClusterProvider::server`]).
#[derive(Debug, Default)]
pub(crate) struct ServerUrl(std::sync::Mutex<Option<String>>);

impl ServerUrl {
    pub(crate) fn get(&self) -> Option<String> {
        self.0.lock().ok().and_then(|s| s.clone())
    }

    fn set(&self, config: &kube::Config) {
        if let Ok(mut s) = self.0.lock() {
            *s = Some(config.cluster_url.to_string());
        }
    }
}

impl Clone for ServerUrl {
    fn clone(&self) -> Self {
        ServerUrl(std::sync::Mutex::new(self.get()))
    }
}

/// Builds a client from a kube config, adding the user agent and noting the server's URL.
pub(crate) fn client_from_config(
    mut config: kube::Config,
    user_agent: Option<&str>,
    cluster: &str,
    server: &ServerUrl,
) -> Result<kube::Client, ClusterError> {
    server.set(&config);
    if let Some(ua) = user_agent
        && let Ok(value) = http::HeaderValue::from_str(ua)
    {
        config.headers.push((http::header::USER_AGENT, value));
    }
    kube::Client::try_from(config).map_err(|source| ClusterError::Client {
        cluster: cluster.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Env {
        cluster: ClusterConfig,
    }

    fn parse(text: &str) -> Result<ClusterConfig, toml_like::Error> {
        toml_like::from_str::<Env>(text).map(|e| e.cluster)
    }

    // serde_json stands in for TOML here (the CLI owns the TOML parser); the tagging is the same.
    mod toml_like {
        pub(super) type Error = serde_json::Error;
        pub(super) fn from_str<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, Error> {
            serde_json::from_str(s)
        }
    }

    #[test]
    fn every_provider_parses_regardless_of_features() {
        let sim = parse(r#"{"cluster":{"provider":"sim"}}"#).unwrap();
        assert_eq!(sim, ClusterConfig::Sim(SimClusterConfig::default()));
        let kc = parse(r#"{"cluster":{"provider":"kubeconfig","context":"prod"}}"#).unwrap();
        assert_eq!(
            kc,
            ClusterConfig::Kubeconfig(KubeconfigClusterConfig {
                path: None,
                context: Some("prod".into())
            })
        );
        assert_eq!(
            parse(r#"{"cluster":{"provider":"in-cluster"}}"#).unwrap(),
            ClusterConfig::InCluster(InClusterConfig {})
        );
        let eks =
            parse(r#"{"cluster":{"provider":"eks","cluster":"c","region":"us-east-1"}}"#).unwrap();
        assert_eq!(eks.provider_name(), "eks");
        let aks = parse(
            r#"{"cluster":{"provider":"aks","subscription":"s","resource_group":"g","cluster":"c"}}"#,
        )
        .unwrap();
        assert_eq!(aks.provider_name(), "aks");
    }

    #[test]
    fn unknown_keys_and_providers_are_errors() {
        let err = parse(r#"{"cluster":{"provider":"sim","sped":2}}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `sped`"), "{err}");
        let err = parse(r#"{"cluster":{"provider":"gke"}}"#).unwrap_err();
        assert!(err.to_string().contains("unknown variant `gke`"), "{err}");
    }

    #[test]
    fn values_serde_cannot_check_are_validated_by_key() {
        let keys = |text: &str| -> Vec<&'static str> {
            parse(text)
                .unwrap()
                .validate(Path::new("/nonexistent"))
                .into_iter()
                .map(|p| p.key)
                .collect()
        };
        assert!(keys(r#"{"cluster":{"provider":"eks","cluster":"cloudtolocalllm-eks","region":"us-east-1"}}"#).is_empty());
        assert!(
            keys(r#"{"cluster":{"provider":"eks","cluster":"c","region":"us-gov-west-1"}}"#)
                .is_empty()
        );
        assert_eq!(
            keys(r#"{"cluster":{"provider":"eks","cluster":"-bad name","region":"US East"}}"#),
            ["cluster", "region"]
        );
        let aks = r#"{"cluster":{"provider":"aks","subscription":"00000000-1111-2222-3333-444444444444","resource_group":"cloudtolocalllm-rg","cluster":"cloudtolocalllm-aks","arm_endpoint":"http://127.0.0.1:9"}}"#;
        assert!(keys(aks).is_empty());
        assert_eq!(
            keys(
                r#"{"cluster":{"provider":"aks","subscription":"my-sub","resource_group":"rg.","cluster":"aks-","arm_endpoint":"management.azure.com","server_app_id":"x"}}"#
            ),
            [
                "subscription",
                "resource_group",
                "cluster",
                "arm_endpoint",
                "server_app_id"
            ]
        );
        assert_eq!(
            keys(r#"{"cluster":{"provider":"sim","speed":0,"config":"sim.toml"}}"#),
            ["speed", "config"]
        );
        assert!(keys(r#"{"cluster":{"provider":"sim","speed":20}}"#).is_empty());
        assert_eq!(
            keys(r#"{"cluster":{"provider":"kubeconfig","context":" "}}"#),
            ["context"]
        );
    }

    #[test]
    fn user_agent_names_the_holder() {
        let ua = user_agent("run 42 on host1 pid 7");
        assert!(ua.starts_with("ferry/") && ua.ends_with("(run 42 on host1 pid 7)"));
    }
}
