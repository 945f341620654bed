//! The cluster-provider factory: maps `[env.NAME.cluster]` to a
//! [`ClusterProvider`](ferry_deployer::cluster::ClusterProvider).
//!
//! `provider = "sim"` runs ferry's simulated cluster in-process on a state file under the
//! project (default `.ferry/sim/<env>.json`, next to `ferry.toml`), so `ferry deploy` works on a
//! laptop with nothing installed. When a `ferry sim` server already serves that state file, the
//! provider connects to it instead of opening the file (the file is locked by its user): every
//! `ferry deploy` of one sim environment shares one cluster, and the deploy lock serialises them.

use std::path::{Path, PathBuf};

use ferry_deployer::cluster::{
    self, ClusterConfig, ClusterError, InClusterProvider, KubeconfigProvider,
    SharedClusterProvider, SimOptions,
};

use crate::ambient::Environment;

/// Who is deploying, for the lock's holder identity and the User-Agent: the CI run (GitHub
/// Actions, GitLab, or any `CI_JOB_ID`), the host and the process id.
pub fn holder_identity(env: &Environment) -> String {
    let run = if let Some(id) = env.get("GITHUB_RUN_ID") {
        let attempt = env.get("GITHUB_RUN_ATTEMPT").unwrap_or("1");
        format!("github run {id}.{attempt}")
    } else if let Some(id) = env.get("CI_JOB_ID") {
        format!("ci job {id}")
    } else {
        "local".to_owned()
    };
    let host = env
        .get("HOSTNAME")
        .map(str::to_owned)
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|s| s.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned());
    format!("{run} on {host} pid {}", std::process::id())
}

/// The kubeconfig file: the configured path, else the first entry of `$KUBECONFIG`, else
/// `~/.kube/config`.
pub fn kubeconfig_path(configured: Option<&Path>, base: &Path, env: &Environment) -> PathBuf {
    if let Some(p) = configured {
        return expand_home(p, env).unwrap_or_else(|| base.join(p));
    }
    if let Some(list) = env.get("KUBECONFIG")
        && let Some(first) = std::env::split_paths(list).next()
    {
        return first;
    }
    PathBuf::from(env.get("HOME").unwrap_or(".")).join(".kube/config")
}

fn expand_home(p: &Path, env: &Environment) -> Option<PathBuf> {
    if p.is_absolute() {
        return Some(p.to_owned());
    }
    let s = p.to_str()?;
    let rest = s.strip_prefix("~/")?;
    Some(PathBuf::from(env.get("HOME")?).join(rest))
}

/// The provider for an environment. `base` is the directory of `ferry.toml` (relative paths
/// in the config are relative to it).
pub fn provider_for(
    config: &ClusterConfig,
    #[cfg_attr(
        not(any(feature = "eks", feature = "aks")),
        expect(
            unused_variables,
            reason = "only the eks and aks providers need credentials"
        )
    )]
    auth: Option<&ferry_auth::config::AuthConfig>,
    env_name: &str,
    base: &Path,
    env: &Environment,
    user_agent: &str,
) -> Result<SharedClusterProvider, ClusterError> {
    match config {
        ClusterConfig::Sim(sim) => {
            let state = match &sim.state {
                Some(p) => base.join(p),
                None => base
                    .join(".ferry")
                    .join("sim")
                    .join(format!("{env_name}.json")),
            };
            cluster::sim_provider(SimOptions {
                state,
                speed: sim.speed,
                config: sim.config.as_ref().map(|c| base.join(c)),
                user_agent: Some(user_agent.to_owned()),
            })
        }
        ClusterConfig::Kubeconfig(k) => Ok(std::sync::Arc::new(
            KubeconfigProvider::new(kubeconfig_path(k.path.as_deref(), base, env))
                .context(k.context.clone())
                .user_agent(user_agent),
        )),
        ClusterConfig::InCluster(_) => Ok(std::sync::Arc::new(
            InClusterProvider::new().user_agent(user_agent),
        )),
        #[cfg(feature = "eks")]
        ClusterConfig::Eks(eks) => Ok(std::sync::Arc::new(crate::commands::auth::eks_provider(
            eks, auth, env, user_agent,
        )?)),
        #[cfg(not(feature = "eks"))]
        ClusterConfig::Eks(_) => Err(ClusterError::NotBuilt {
            provider: "eks",
            feature: "eks",
        }),
        #[cfg(feature = "aks")]
        ClusterConfig::Aks(aks) => Ok(std::sync::Arc::new(crate::commands::auth::aks_provider(
            aks, auth, env, user_agent,
        )?)),
        #[cfg(not(feature = "aks"))]
        ClusterConfig::Aks(_) => Err(ClusterError::NotBuilt {
            provider: "aks",
            feature: "aks",
        }),
        _ => Err(ClusterError::NotConfigured {
            reason: format!("unknown cluster provider {}", config.provider_name()),
        }),
    }
}

/// Resolves the app's image tags to digests on their registries (ferry-registry: one `HEAD`
/// of the manifest per image, no download), with the credentials of the Docker Hub
/// environment variables and the docker config file (and its credential helpers).
#[derive(Debug)]
pub struct RegistryDigests {
    client: ferry_registry::Client,
}

impl RegistryDigests {
    /// A resolver; `insecure` registries are reached over plain HTTP.
    pub fn new(env: &Environment, insecure: &[String]) -> Result<Self, ferry_registry::Error> {
        use std::sync::Arc;
        let mut chain = ferry_registry::AuthChain::default();
        if let Some(hub) = ferry_registry::auth::DockerHubAuth::from_env(env.vars()) {
            chain = chain.or_else(hub);
        }
        if let Ok(docker) = ferry_registry::auth::DockerConfigAuth::from_env(env.vars()) {
            chain = chain.or_else(docker);
        }
        let mut builder = ferry_registry::Client::builder()
            .auth(Arc::new(chain))
            .clock(Arc::new(ferry_registry::clock::FnClock(
                crate::ambient::now,
            )))
            .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")));
        for host in insecure {
            builder = builder.plain_http(host);
        }
        Ok(RegistryDigests {
            client: builder.build()?,
        })
    }
}

#[async_trait::async_trait]
impl ferry_deployer::images::DigestResolver for RegistryDigests {
    async fn resolve(
        &self,
        repository: &str,
        tag: &str,
    ) -> Result<Option<String>, Box<dyn std::error::Error + Send + Sync>> {
        let image = ferry_registry::ImageRef::parse(&format!("{repository}:{tag}"))?;
        match ferry_registry::resolve(&self.client, &image).await {
            Ok(digest) => Ok(Some(digest.to_string())),
            Err(e) if e.kind() == ferry_registry::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Box::new(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_names_run_host_and_pid() {
        let env = Environment::from_pairs([
            ("GITHUB_RUN_ID", "42"),
            ("GITHUB_RUN_ATTEMPT", "2"),
            ("HOSTNAME", "runner-1"),
        ]);
        let h = holder_identity(&env);
        assert!(h.starts_with("github run 42.2 on runner-1 pid "), "{h}");
    }

    #[test]
    fn kubeconfig_comes_from_config_then_env_then_home() {
        let base = Path::new("/proj");
        let env = Environment::from_pairs([("HOME", "/home/u"), ("KUBECONFIG", "/a:/b")]);
        assert_eq!(
            kubeconfig_path(Some(Path::new("k.yaml")), base, &env),
            PathBuf::from("/proj/k.yaml")
        );
        assert_eq!(
            kubeconfig_path(Some(Path::new("~/x")), base, &env),
            PathBuf::from("/home/u/x")
        );
        assert_eq!(kubeconfig_path(None, base, &env), PathBuf::from("/a"));
        let env = Environment::from_pairs([("HOME", "/home/u")]);
        assert_eq!(
            kubeconfig_path(None, base, &env),
            PathBuf::from("/home/u/.kube/config")
        );
    }
}
