//! `ferry kubeconfig --env E [--out FILE]`: a kubeconfig for an environment's EKS or AKS
//! cluster. The server and CA come from the cloud (EKS `DescribeCluster`, AKS
//! `listClusterUserCredential`); the user is ferry itself as a kubectl exec credential plugin
//! (`ferry auth token --env E`), so the file holds no token and kubectl gets a fresh one when
//! the last expires — no aws CLI, no kubelogin.

use std::io::Write as _;
use std::path::{Path, PathBuf};

#[cfg(any(feature = "eks", feature = "aks"))]
use ferry_deployer::cluster::ClusterConfig;

use crate::ambient::Environment;
use crate::cli::KubeconfigArgs;
use crate::config::{EnvConfig, LoadedConfig};
use crate::exit::{CmdResult, Exit, Failure};

use super::auth::not_a_cloud_cluster;
use super::io_failure;

fn invalid(e: impl Into<miette::Report>) -> Failure {
    Failure::new(Exit::InvalidInput, e)
}

/// Runs `ferry kubeconfig`.
pub async fn run(args: &KubeconfigArgs, env: &Environment) -> CmdResult {
    let cfg = LoadedConfig::load(&args.config.config).map_err(invalid)?;
    let env_cfg = cfg.env(&args.env).map_err(invalid)?.clone();
    let (server, ca_data) = cluster_endpoint(&cfg, &env_cfg, &args.env, env).await?;
    let config_path = absolute(&cfg.path);
    let ferry = std::env::current_exe()
        .ok()
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| PathBuf::from("ferry"));
    let name = format!("{}-{}", cfg.config.app.name, args.env);
    let text = render(&name, &server, &ca_data, &ferry, &config_path, &args.env);
    match &args.out {
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes()).map_err(io_failure)?;
        }
        Some(path) => {
            write_private(path, &text).map_err(|e| {
                Failure::new(
                    Exit::Failure,
                    miette::miette!("cannot write kubeconfig {}: {e}", path.display()),
                )
            })?;
            tracing::info!(path = %path.display(), "wrote kubeconfig");
        }
    }
    Ok(Exit::Success)
}

/// The API server and base64 CA of an environment's EKS or AKS cluster, from the cloud.
#[cfg(any(feature = "eks", feature = "aks"))]
async fn cluster_endpoint(
    cfg: &LoadedConfig,
    env_cfg: &EnvConfig,
    name: &str,
    env: &Environment,
) -> Result<(String, String), Failure> {
    use super::auth::chain_failure_in;
    let user_agent = ferry_deployer::cluster::user_agent(&crate::providers::holder_identity(env));
    let endpoint = match &env_cfg.cluster {
        #[cfg(feature = "eks")]
        Some(ClusterConfig::Eks(eks)) => {
            super::auth::eks_provider(eks, env_cfg.auth.as_ref(), env, &user_agent)
                .map_err(|e| chain_failure_in(e, Exit::InvalidInput, Some(name)))?
                .endpoint()
                .await
        }
        #[cfg(feature = "aks")]
        Some(ClusterConfig::Aks(aks)) => {
            super::auth::aks_provider(aks, env_cfg.auth.as_ref(), env, &user_agent)
                .map_err(|e| chain_failure_in(e, Exit::InvalidInput, Some(name)))?
                .endpoint()
                .await
        }
        _ => {
            return Err(not_a_cloud_cluster(
                cfg,
                env_cfg,
                name,
                "ferry kubeconfig",
                "writes kubeconfigs",
            ));
        }
    };
    endpoint
        .map(|ep| (ep.server, ep.ca_data))
        .map_err(|e| chain_failure_in(e, Exit::Failure, Some(name)))
}

/// Without cloud providers no environment has a cluster ferry can describe.
#[cfg(not(any(feature = "eks", feature = "aks")))]
async fn cluster_endpoint(
    cfg: &LoadedConfig,
    env_cfg: &EnvConfig,
    name: &str,
    _env: &Environment,
) -> Result<(String, String), Failure> {
    Err(not_a_cloud_cluster(
        cfg,
        env_cfg,
        name,
        "ferry kubeconfig",
        "writes kubeconfigs",
    ))
}

fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_owned()
    } else {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_owned())
    }
}

/// The kubeconfig: one cluster, one context, and ferry as the user's exec plugin.
fn render(
    name: &str,
    server: &str,
    ca_data: &str,
    ferry: &Path,
    config: &Path,
    env_name: &str,
) -> String {
    let mut cluster = serde_json::json!({ "server": server });
    if !ca_data.is_empty() {
        cluster["certificate-authority-data"] = ca_data.into();
    }
    let doc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{ "name": name, "cluster": cluster }],
        "contexts": [{ "name": name, "context": { "cluster": name, "user": format!("ferry-{name}") } }],
        "current-context": name,
        "preferences": {},
        "users": [{
            "name": format!("ferry-{name}"),
            "user": {
                "exec": {
                    "apiVersion": "client.authentication.k8s.io/v1",
                    "command": ferry.display().to_string(),
                    "args": ["auth", "token", "--env", env_name, "--config", config.display().to_string()],
                    "interactiveMode": "Never",
                    "provideClusterInfo": false,
                }
            }
        }],
    });
    serde_norway::to_string(&doc).unwrap_or_default()
}

/// Writes `text` to `path` with mode 0600, atomically: a temporary file in the same directory,
/// created 0600, then renamed over the target (a reader never sees half a file, and the file is
/// never readable by others, not even for a moment).
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"))?;
    let tmp = dir.join(format!(
        ".{}.ferry-{}.tmp",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let result = (|| {
        let mut file = options.open(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kubeconfig_uses_ferry_as_its_exec_plugin_and_holds_no_token() {
        let server = "https://ABC.gr7.us-east-1.eks.amazonaws.com";
        let ca_data = "LS0tLS1CRUdJTg==";
        let text = render(
            "shop-prod",
            server,
            ca_data,
            Path::new("/usr/local/bin/ferry"),
            Path::new("/src/ferry.toml"),
            "prod",
        );
        let kc: serde_json::Value = serde_norway::from_str(&text).unwrap();
        assert_eq!(kc["clusters"][0]["cluster"]["server"], server);
        assert_eq!(
            kc["clusters"][0]["cluster"]["certificate-authority-data"],
            ca_data
        );
        let exec = &kc["users"][0]["user"]["exec"];
        assert_eq!(exec["apiVersion"], "client.authentication.k8s.io/v1");
        assert_eq!(exec["command"], "/usr/local/bin/ferry");
        assert_eq!(
            exec["args"],
            serde_json::json!([
                "auth",
                "token",
                "--env",
                "prod",
                "--config",
                "/src/ferry.toml"
            ])
        );
        assert!(kc["users"][0]["user"].get("token").is_none());
    }

    #[cfg(unix)]
    #[test]
    fn the_file_is_written_with_mode_0600_even_over_a_readable_one() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubeconfig");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&path, "apiVersion: v1\n").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "apiVersion: v1\n");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
    }
}
