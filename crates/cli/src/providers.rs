//! The provider factories: `[env.NAME.cluster]` to a
//! [`ClusterProvider`](ferry_deployer::cluster::ClusterProvider), and `[env.NAME.registry]`
//! with `[env.NAME.auth]` to a registry client with the right logins ([`registry_client`]).
//!
//! `provider = "sim"` runs ferry's simulated cluster in-process on a state file under the
//! project (default `.ferry/sim/<env>.json`, next to `ferry.toml`), so `ferry deploy` works on a
//! laptop with nothing installed. When a `ferry sim` server already serves that state file, the
//! provider connects to it instead of opening the file (the file is locked by its user): every
//! `ferry deploy` of one sim environment shares one cluster, and the deploy lock serialises them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferry_auth::config::AuthConfig;
use ferry_deployer::cluster::{
    self, ClusterConfig, ClusterError, InClusterProvider, KubeconfigProvider,
    SharedClusterProvider, SimOptions,
};
use ferry_registry::auth::{AuthChain, DockerConfigAuth, DockerHubAuth};
use ferry_registry::{Provider, RegistryConfig, SharedAuth};

use crate::ambient::Environment;
use crate::exit::{Exit, Failure};

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
    auth: Option<&AuthConfig>,
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
        ClusterConfig::Kubeconfig(k) => Ok(Arc::new(
            KubeconfigProvider::new(kubeconfig_path(k.path.as_deref(), base, env))
                .context(k.context.clone())
                .user_agent(user_agent),
        )),
        ClusterConfig::InCluster(_) => {
            Ok(Arc::new(InClusterProvider::new().user_agent(user_agent)))
        }
        #[cfg(feature = "eks")]
        ClusterConfig::Eks(eks) => Ok(Arc::new(crate::commands::auth::eks_provider(
            eks, auth, env, user_agent,
        )?)),
        #[cfg(not(feature = "eks"))]
        ClusterConfig::Eks(_) => Err(ClusterError::NotBuilt {
            provider: "eks",
            feature: "eks",
        }),
        #[cfg(feature = "aks")]
        ClusterConfig::Aks(aks) => Ok(Arc::new(crate::commands::auth::aks_provider(
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

/// A registry client with every credential source ferry knows, first match wins: `first`
/// (`ferry image`'s `--username`), the registry provider's own login for each of `hosts` (ECR
/// through GetAuthorizationToken with `[env.NAME.auth.aws]`'s credentials, ACR by exchanging
/// `[env.NAME.auth.azure]`'s Azure AD token; the host of `registry` uses its `provider`, other
/// ECR and ACR hosts are recognised by name), Docker Hub's `DOCKERHUB_USERNAME`/`DOCKERHUB_TOKEN`,
/// Docker's config file and credential helpers, else anonymous. `plain_http` registries are
/// reached over HTTP. `ferry image` and `ferry deploy`'s digest resolution both build their
/// clients here.
pub fn registry_client(
    registry: Option<&RegistryConfig>,
    auth: Option<&AuthConfig>,
    hosts: &[&str],
    first: AuthChain,
    plain_http: &[String],
    env: &Environment,
) -> Result<ferry_registry::Client, Failure> {
    let mut chain = first;
    let hosts: std::collections::BTreeSet<&str> = hosts.iter().copied().collect();
    for host in hosts {
        chain = provider_auth(chain, registry, auth, host, env)?;
    }
    if let Some(hub) = DockerHubAuth::from_env(env.vars()) {
        chain = chain.or_else(hub);
    }
    let docker = DockerConfigAuth::from_env(env.vars())
        .map_err(|e| crate::commands::image::registry_failure(ferry_registry::Error::Auth(e)))?;
    chain = chain.or_else(docker);
    let mut builder = ferry_registry::Client::builder()
        .auth(Arc::new(chain))
        .clock(Arc::new(ferry_registry::clock::FnClock(
            crate::ambient::now,
        )))
        .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")));
    for host in plain_http {
        builder = builder.plain_http(host);
    }
    builder
        .build()
        .map_err(crate::commands::image::registry_failure)
}

/// The provider's own login for `host`: ECR and ACR from ferry-auth's cloud credentials. When
/// `host` is the environment's configured registry its provider decides, and its cloud setup
/// must work; a host only recognised by its name falls back to the other sources.
fn provider_auth(
    chain: AuthChain,
    registry: Option<&RegistryConfig>,
    auth: Option<&AuthConfig>,
    host: &str,
    env: &Environment,
) -> Result<AuthChain, Failure> {
    let configured = registry
        .filter(|r| r.registry() == host)
        .map(|r| r.provider);
    let kind = match configured {
        Some(p) => p,
        None if is_ecr_host(host) => Provider::Ecr,
        None if host.ends_with(".azurecr.io") => Provider::Acr,
        None => return Ok(chain),
    };
    let auth = auth.cloned().unwrap_or_default();
    let login = match kind {
        Provider::Ecr => ecr_login(&auth, host, env),
        Provider::Acr => acr_login(&auth, host, env),
        _ => return Ok(chain),
    };
    match login {
        Ok(source) => Ok(chain.or_else_shared(source)),
        Err(NoLogin::Auth(e)) if configured.is_some() => {
            Err(crate::commands::auth::auth_failure(e, None))
        }
        Err(NoLogin::NotBuilt(provider)) if configured.is_some() => Err(Failure::new(
            Exit::InvalidInput,
            miette::miette!(
                "provider `{provider}` needs a ferry built with the `{provider}` feature"
            ),
        )),
        Err(why) => {
            tracing::debug!(host, "no {} login: {why:?}", kind.as_str());
            Ok(chain)
        }
    }
}

/// Why a registry provider's login could not be set up.
#[derive(Debug)]
enum NoLogin {
    /// The cloud credentials it needs could not be.
    #[cfg_attr(
        not(any(feature = "ecr", feature = "acr")),
        expect(dead_code, reason = "built only with ecr or acr")
    )]
    Auth(ferry_auth::AuthError),
    /// This ferry was built without the provider's feature.
    #[cfg_attr(
        all(feature = "ecr", feature = "acr"),
        expect(dead_code, reason = "both providers are built")
    )]
    NotBuilt(&'static str),
}

#[cfg(feature = "ecr")]
fn is_ecr_host(host: &str) -> bool {
    ferry_registry::auth::ecr::parse_ecr_host(host).is_some()
}

#[cfg(not(feature = "ecr"))]
fn is_ecr_host(host: &str) -> bool {
    host.contains(".dkr.ecr.")
}

/// ECR: GetAuthorizationToken with the environment's AWS credentials (the region is the host's).
#[cfg(feature = "ecr")]
fn ecr_login(auth: &AuthConfig, host: &str, env: &Environment) -> Result<SharedAuth, NoLogin> {
    use ferry_registry::auth::ecr::{EcrAuth, parse_ecr_host};
    let region = parse_ecr_host(host).map(|(_, region)| region);
    let aws = auth
        .aws(&crate::commands::auth::context(env), region.as_deref())
        .map_err(NoLogin::Auth)?;
    let clock = Arc::new(ferry_registry::clock::FnClock(crate::ambient::now));
    Ok(Arc::new(
        EcrAuth::from_sdk_config(&aws.sdk_config(), clock).with_host(host),
    ))
}

#[cfg(not(feature = "ecr"))]
fn ecr_login(_: &AuthConfig, _: &str, _: &Environment) -> Result<SharedAuth, NoLogin> {
    Err(NoLogin::NotBuilt("ecr"))
}

/// ACR: the environment's Azure AD token exchanged at the registry's `/oauth2/exchange`.
#[cfg(feature = "acr")]
fn acr_login(auth: &AuthConfig, host: &str, env: &Environment) -> Result<SharedAuth, NoLogin> {
    use ferry_registry::auth::acr::AcrAuth;
    let ctx = crate::commands::auth::context(env);
    let cred = auth.azure(&ctx).map_err(NoLogin::Auth)?;
    let tenant = cred.tenant_id().to_owned();
    Ok(Arc::new(
        AcrAuth::new(ctx.http.clone(), Arc::new(AzureAad(Arc::new(cred))))
            .with_tenant(tenant)
            .with_host(host),
    ))
}

#[cfg(not(feature = "acr"))]
fn acr_login(_: &AuthConfig, _: &str, _: &Environment) -> Result<SharedAuth, NoLogin> {
    Err(NoLogin::NotBuilt("acr"))
}

/// ferry-auth's Azure AD credential as the token source ACR logins start from.
#[cfg(feature = "acr")]
#[derive(Debug)]
struct AzureAad(ferry_auth::azure::SharedAzureCredential);

#[cfg(feature = "acr")]
#[async_trait::async_trait]
impl ferry_registry::auth::acr::AadTokenSource for AzureAad {
    async fn aad_token(
        &self,
        scope: &str,
    ) -> Result<secrecy::SecretString, Box<dyn std::error::Error + Send + Sync>> {
        Ok(self.0.token(scope).await?.token)
    }
}

/// Resolves the app's image tags to digests on their registries (ferry-registry: one `HEAD`
/// of the manifest per image, no download), with a [`registry_client`].
#[derive(Debug)]
pub struct RegistryDigests {
    client: ferry_registry::Client,
}

impl RegistryDigests {
    /// A resolver asking through `client`.
    pub fn new(client: ferry_registry::Client) -> Self {
        RegistryDigests { client }
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
