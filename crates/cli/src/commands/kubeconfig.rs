//! `ferry kubeconfig --env E [--out FILE]`: a kubeconfig for an environment's EKS or AKS
//! cluster. The server and CA come from the cloud (EKS `DescribeCluster`, AKS
//! `listClusterUserCredential`); the user is ferry itself as a kubectl exec credential plugin
//! (`ferry auth token --env E`), so the file holds no token and kubectl gets a fresh one when
//! the last expires — no aws CLI, no kubelogin.
//!
//! With `--out FILE` the entries are merged into FILE the way `aws eks update-kubeconfig` and
//! `az aks get-credentials` do: other clusters, users and contexts stay, entries of the same
//! names are replaced, the context becomes current-context, the file keeps its mode (a new one
//! is 0600) and is replaced atomically. The merge uses kube's own [`Kubeconfig`] types (their
//! `merge` is kubectl's first-wins rule, and every type keeps the fields it does not model),
//! so a file kube cannot read is refused before anything is asked of the cloud.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use kube::config::Kubeconfig;

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
    // The file to merge into is read (and refused if it is not a kubeconfig) before the cloud
    // is asked anything.
    let target = match &args.out {
        None => None,
        Some(path) => Some(Target::read(path)?),
    };
    let (server, ca_data) = cluster_endpoint(&cfg, &env_cfg, &args.env, env).await?;
    let config_path = absolute(&cfg.path);
    let ferry = std::env::current_exe()
        .ok()
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| PathBuf::from("ferry"));
    let name = format!("{}-{}", cfg.config.app.name, args.env);
    let doc = render(&name, &server, &ca_data, &ferry, &config_path, &args.env);
    match target {
        None => {
            let text = serde_norway::to_string(&doc).unwrap_or_default();
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes()).map_err(io_failure)?;
        }
        Some(target) => {
            let (text, previous) = target.merge(doc)?;
            target.write(&text).map_err(|e| {
                Failure::new(
                    Exit::Failure,
                    miette::miette!("cannot write kubeconfig {}: {e}", target.shown.display()),
                )
            })?;
            tracing::info!(path = %target.shown.display(), "wrote kubeconfig");
            let was = match previous.as_deref() {
                Some(p) if p != name => format!(" (was `{p}`)"),
                Some(_) => String::new(),
                None => " (none was set)".to_owned(),
            };
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "{}: context `{name}` written, other entries kept; current-context is now \
                 `{name}`{was}",
                target.shown.display()
            )
            .map_err(io_failure)?;
        }
    }
    Ok(Exit::Success)
}

/// The kubeconfig file of `--out`: where it is (through a symlink, which stays), what it holds
/// and its mode.
struct Target {
    /// As the user named it, for messages.
    shown: PathBuf,
    /// The file written: the symlink's target when `shown` is one.
    path: PathBuf,
    existing: Kubeconfig,
    mode: Option<u32>,
}

impl Target {
    fn read(path: &Path) -> Result<Target, Failure> {
        let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
        let text = match std::fs::read(&real) {
            Ok(bytes) => Some(String::from_utf8(bytes).map_err(|_| {
                Failure::new(
                    Exit::InvalidInput,
                    miette::miette!(
                        help = "give --out a kubeconfig file, or a path that does not exist yet",
                        "{}: not a kubeconfig (not UTF-8 text); nothing was written",
                        path.display()
                    ),
                )
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(Failure::new(
                    Exit::Failure,
                    miette::miette!("cannot read kubeconfig {}: {e}", path.display()),
                ));
            }
        };
        let existing = match text.as_deref() {
            None => Kubeconfig::default(),
            Some(text) => parse_existing(text).map_err(|why| {
                Failure::new(
                    Exit::InvalidInput,
                    miette::miette!(
                        help = "fix the file, or give --out another path: ferry merges its \
                                entries into an existing kubeconfig and will not replace a file \
                                it cannot read",
                        "{}:{}{why} (not a kubeconfig); nothing was written",
                        path.display(),
                        if why.starts_with(|c: char| c.is_ascii_digit()) {
                            ""
                        } else {
                            " "
                        }
                    ),
                )
            })?,
        };
        #[cfg(unix)]
        let mode = {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::metadata(&real)
                .ok()
                .map(|m| m.permissions().mode() & 0o7777)
        };
        #[cfg(not(unix))]
        let mode = None;
        Ok(Target {
            shown: path.to_owned(),
            path: real,
            existing,
            mode,
        })
    }

    /// The file's text with `doc`'s cluster, user and context in it, and the current-context
    /// it had.
    fn merge(&self, doc: serde_json::Value) -> Result<(String, Option<String>), Failure> {
        let fail = |e: &dyn std::fmt::Display| {
            Failure::new(
                Exit::InvalidInput,
                miette::miette!(
                    "{}: cannot merge into this kubeconfig: {e}; nothing was written",
                    self.shown.display()
                ),
            )
        };
        let mut ours: Kubeconfig = serde_json::from_value(doc).map_err(|e| fail(&e))?;
        // The file's own preferences stay.
        ours.preferences = None;
        let previous = self.existing.current_context.clone();
        let merged = ours.merge(self.existing.clone()).map_err(|e| fail(&e))?;
        let text = serde_norway::to_string(&merged).map_err(|e| fail(&e))?;
        Ok((text, previous))
    }

    fn write(&self, text: &str) -> std::io::Result<()> {
        write_private(&self.path, text, self.mode)
    }
}

/// The parser's message as `LINE:COLUMN: what`, its first line only: the lines after it quote
/// the file, which may hold other users' tokens and keys.
fn located(why: &str) -> String {
    let first = why.lines().next().unwrap_or_default();
    let place = first.find("line ").and_then(|at| {
        let rest = &first[at + "line ".len()..];
        let (line, rest) = rest.split_once(" column ")?;
        let (column, what) = rest.split_once(": ")?;
        let ok = |n: &str| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit());
        (ok(line) && ok(column)).then(|| format!("{line}:{column}: {what}"))
    });
    place.unwrap_or_else(|| first.to_owned())
}

/// The kubeconfig in `text`, as kube reads it; an empty file is an empty kubeconfig (as for
/// kubectl).
fn parse_existing(text: &str) -> Result<Kubeconfig, String> {
    if text.trim().is_empty() {
        return Ok(Kubeconfig::default());
    }
    // kube accepts any YAML mapping (unknown keys are kept); a kubeconfig is at least one that
    // says it is one or has one of its lists.
    let kc = Kubeconfig::from_yaml(text).map_err(|e| {
        let mut why = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            why = format!("{why}: {s}");
            source = s.source();
        }
        located(&why)
    })?;
    if let Some(kind) = kc.kind.as_deref()
        && kind != "Config"
    {
        return Err(format!("its kind is `{kind}`, not `Config`"));
    }
    if kc.kind.is_none()
        && kc.api_version.is_none()
        && kc.clusters.is_empty()
        && kc.auth_infos.is_empty()
        && kc.contexts.is_empty()
        && kc.current_context.is_none()
    {
        return Err("it has none of kind, apiVersion, clusters, users, contexts".to_owned());
    }
    Ok(kc)
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
) -> serde_json::Value {
    let mut cluster = serde_json::json!({ "server": server });
    if !ca_data.is_empty() {
        cluster["certificate-authority-data"] = ca_data.into();
    }
    serde_json::json!({
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
    })
}

/// Writes `text` to `path` atomically: a temporary file in the same directory, created 0600,
/// then given `mode` (the replaced file's; none keeps 0600) and renamed over the target (a
/// reader never sees half a file, and a new file is never readable by others, not even for a
/// moment).
fn write_private(path: &Path, text: &str, mode: Option<u32>) -> std::io::Result<()> {
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
        #[cfg(unix)]
        if let Some(mode) = mode {
            use std::os::unix::fs::PermissionsExt as _;
            file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        }
        #[cfg(not(unix))]
        let _ = mode;
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
        let kc = render(
            "shop-prod",
            server,
            ca_data,
            Path::new("/usr/local/bin/ferry"),
            Path::new("/src/ferry.toml"),
            "prod",
        );
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

    const OTHER: &str = r#"apiVersion: v1
kind: Config
current-context: staging
preferences:
  colors: true
clusters:
- name: staging
  cluster:
    server: https://staging.example:6443
    x-team-note: keep me
- name: shop-prod
  cluster:
    server: https://stale.example:6443
contexts:
- name: staging
  context:
    cluster: staging
    user: alice
    namespace: web
- name: shop-prod
  context:
    cluster: shop-prod
    user: ferry-shop-prod
users:
- name: alice
  user:
    token: alice-token
    x-vendor-field: 42
- name: ferry-shop-prod
  user:
    token: stale
"#;

    fn ours() -> serde_json::Value {
        render(
            "shop-prod",
            "https://new.example",
            "Q0E=",
            Path::new("/usr/local/bin/ferry"),
            Path::new("/src/ferry.toml"),
            "prod",
        )
    }

    fn target_with(text: Option<&str>, dir: &Path) -> Result<Target, Failure> {
        let path = dir.join("config");
        if let Some(text) = text {
            std::fs::write(&path, text).unwrap();
        }
        Target::read(&path)
    }

    #[test]
    fn merging_keeps_other_entries_and_their_unknown_fields_and_replaces_ours() {
        let dir = tempfile::tempdir().unwrap();
        let target = target_with(Some(OTHER), dir.path()).unwrap();
        let (text, previous) = target.merge(ours()).unwrap();
        assert_eq!(previous.as_deref(), Some("staging"));
        let kc: serde_json::Value = serde_norway::from_str(&text).unwrap();
        assert_eq!(kc["current-context"], "shop-prod");
        assert_eq!(kc["preferences"]["colors"], true);
        let named = |list: &str, name: &str| {
            let all = kc[list].as_array().unwrap();
            let hits: Vec<_> = all.iter().filter(|e| e["name"] == name).collect();
            assert_eq!(hits.len(), 1, "one {list} entry `{name}` in:\n{text}");
            hits[0].clone()
        };
        let staging = named("clusters", "staging");
        assert_eq!(staging["cluster"]["server"], "https://staging.example:6443");
        assert_eq!(staging["cluster"]["x-team-note"], "keep me");
        assert_eq!(
            named("clusters", "shop-prod")["cluster"]["server"],
            "https://new.example"
        );
        assert_eq!(named("contexts", "staging")["context"]["namespace"], "web");
        let alice = named("users", "alice");
        assert_eq!(alice["user"]["token"], "alice-token");
        assert_eq!(alice["user"]["x-vendor-field"], 42);
        let ferry = named("users", "ferry-shop-prod");
        assert!(ferry["user"].get("token").is_none(), "{text}");
        assert_eq!(ferry["user"]["exec"]["command"], "/usr/local/bin/ferry");
        assert_eq!(kc["clusters"].as_array().unwrap().len(), 2);
        assert_eq!(kc["users"].as_array().unwrap().len(), 2);
        assert_eq!(kc["contexts"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn a_missing_or_empty_file_gets_just_our_entries() {
        let dir = tempfile::tempdir().unwrap();
        for text in [None, Some(""), Some("\n")] {
            let target = target_with(text, dir.path()).unwrap();
            let (out, previous) = target.merge(ours()).unwrap();
            assert_eq!(previous, None);
            let kc: serde_json::Value = serde_norway::from_str(&out).unwrap();
            assert_eq!(kc["current-context"], "shop-prod");
            assert_eq!(kc["clusters"].as_array().unwrap().len(), 1);
        }
    }

    #[test]
    fn a_file_that_is_not_a_kubeconfig_is_refused_with_exit_3() {
        let dir = tempfile::tempdir().unwrap();
        for text in [
            "just words\n",
            "- a\n- b\n",
            "clusters: 5\n",
            "apiVersion: apps/v1\nkind: Deployment\n",
            "name: x\nimage: y\n",
            "clusters: [\n",
        ] {
            let Err(err) = target_with(Some(text), dir.path()) else {
                panic!("accepted {text:?}");
            };
            assert_eq!(err.exit, Exit::InvalidInput, "{text:?}");
            let msg = err.report.to_string();
            assert!(msg.contains("(not a kubeconfig)"), "{text:?}: {msg}");
            assert!(msg.contains("nothing was written"), "{msg}");
            assert_eq!(
                std::fs::read_to_string(dir.path().join("config")).unwrap(),
                text
            );
        }
    }

    #[test]
    fn a_parse_error_is_located_and_quotes_no_line_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let text = "apiVersion: v1\nusers:\n- name: a\n  user:\n    token: [s3cret-value]\n";
        let Err(err) = target_with(Some(text), dir.path()) else {
            panic!("accepted");
        };
        let msg = err.report.to_string();
        assert!(msg.contains("config:5:12: "), "{msg}");
        assert!(!msg.contains("s3cret"), "{msg}");
    }

    #[cfg(unix)]
    #[test]
    fn a_replaced_file_keeps_its_mode_and_a_new_one_is_0600() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(&path, OTHER).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let target = Target::read(&path).unwrap();
        let (text, _) = target.merge(ours()).unwrap();
        target.write(&text).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o640);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);

        let new = dir.path().join("new");
        let target = Target::read(&new).unwrap();
        let (text, _) = target.merge(ours()).unwrap();
        target.write(&text).unwrap();
        assert_eq!(mode(&new), 0o600);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            2,
            "no temp file left"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_symlinked_kubeconfig_is_written_through_the_link() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::write(&real, OTHER).unwrap();
        let link = dir.path().join("config");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let target = Target::read(&link).unwrap();
        let (text, _) = target.merge(ours()).unwrap();
        target.write(&text).unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&real).unwrap(), text);
    }
}
