//! `provider = "kubeconfig"`: a kubeconfig file and context, through kube's own loader (exec
//! plugins, client certificates, tokens all work as kubectl's do).

use std::path::{Path, PathBuf};

use kube::config::{KubeConfigOptions, Kubeconfig};

use super::{ClusterError, ClusterProvider, ServerUrl, client_from_config};
use crate::config::ConfigProblem;

/// Checks, offline, that the kubeconfig at `path` can be read and has `context` (or a current
/// context when `context` is `None`), so a wrong `path` or `context` in `ferry.toml` is invalid
/// input found before anything is contacted, not a failure found while connecting. The problem
/// names the key at fault (`path` or `context`) and, for a context the file lacks, the contexts
/// it has. A file that does not parse is not quoted: a kubeconfig holds credentials.
pub fn check_kubeconfig(path: &Path, context: Option<&str>) -> Result<(), ConfigProblem> {
    let shown = path.display();
    let problem = |key, message| Err(ConfigProblem { key, message });
    if !path.exists() {
        return problem(
            "path",
            format!("the kubeconfig file {shown} does not exist"),
        );
    }
    if !path.is_file() {
        return problem("path", format!("the kubeconfig {shown} is not a file"));
    }
    let kubeconfig = match Kubeconfig::read_from(path) {
        Ok(k) => k,
        Err(kube::config::KubeconfigError::ReadConfig(e, _)) => {
            return problem(
                "path",
                format!("cannot read the kubeconfig file {shown}: {e}"),
            );
        }
        Err(_) => {
            return problem(
                "path",
                format!(
                    "{shown} is not a valid kubeconfig file (YAML with `clusters`, `users` and `contexts`)"
                ),
            );
        }
    };
    let known: Vec<&str> = kubeconfig
        .contexts
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    let listed = if known.is_empty() {
        "it has no contexts".to_owned()
    } else {
        format!("it has: {}", known.join(", "))
    };
    match context {
        Some(ctx) if !known.contains(&ctx) => problem(
            "context",
            format!("the kubeconfig file {shown} has no context `{ctx}`; {listed}"),
        ),
        Some(_) => Ok(()),
        None => match kubeconfig.current_context.as_deref() {
            Some(cur) if known.contains(&cur) => Ok(()),
            Some(cur) => problem(
                "context",
                format!(
                    "the current context `{cur}` of the kubeconfig file {shown} is not one of its contexts; name one with `context` ({listed})"
                ),
            ),
            None => problem(
                "context",
                format!(
                    "the kubeconfig file {shown} has no current context: name one with `context` ({listed})"
                ),
            ),
        },
    }
}

/// The server of the kubeconfig's cluster (for `context`, else the current one) when that
/// cluster is marked `insecure-skip-tls-verify`: worth a warning on every run.
pub fn skips_tls_verification(path: &Path, context: Option<&str>) -> Option<String> {
    let kubeconfig = Kubeconfig::read_from(path).ok()?;
    let name = context
        .map(str::to_owned)
        .or_else(|| kubeconfig.current_context.clone())?;
    let ctx = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == name)?
        .context
        .as_ref()?;
    let cluster = kubeconfig
        .clusters
        .iter()
        .find(|c| c.name == ctx.cluster)?
        .cluster
        .as_ref()?;
    (cluster.insecure_skip_tls_verify == Some(true))
        .then(|| cluster.server.clone().unwrap_or_default())
}

/// A cluster reached through a kubeconfig file.
#[derive(Debug, Clone)]
#[must_use]
pub struct KubeconfigProvider {
    path: PathBuf,
    context: Option<String>,
    user_agent: Option<String>,
    server: ServerUrl,
}

impl KubeconfigProvider {
    /// The kubeconfig at `path` (the caller resolves `$KUBECONFIG` / `~/.kube/config`), with its
    /// current context.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        KubeconfigProvider {
            path: path.into(),
            context: None,
            user_agent: None,
            server: ServerUrl::default(),
        }
    }

    /// Use this context instead of the file's current one.
    pub fn context(mut self, context: Option<String>) -> Self {
        self.context = context;
        self
    }

    /// The `User-Agent` header to send (see [`super::user_agent`]).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// The kubeconfig file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[async_trait::async_trait]
impl ClusterProvider for KubeconfigProvider {
    async fn client(&self) -> Result<kube::Client, ClusterError> {
        let shown = self.path.display().to_string();
        let kubeconfig =
            Kubeconfig::read_from(&self.path).map_err(|source| ClusterError::Kubeconfig {
                path: shown.clone(),
                source,
            })?;
        let options = KubeConfigOptions {
            context: self.context.clone(),
            ..KubeConfigOptions::default()
        };
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|source| ClusterError::Kubeconfig {
                path: shown,
                source,
            })?;
        client_from_config(
            config,
            self.user_agent.as_deref(),
            &self.describe(),
            &self.server,
        )
    }

    fn describe(&self) -> String {
        match &self.context {
            Some(ctx) => format!("kubeconfig {} context {ctx}", self.path.display()),
            None => format!("kubeconfig {} (current context)", self.path.display()),
        }
    }

    fn server(&self) -> Option<String> {
        self.server.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_file_names_the_path() {
        let provider = KubeconfigProvider::new("/nonexistent/kubeconfig").context(Some("x".into()));
        let Err(err) = provider.client().await else {
            panic!("a missing kubeconfig gave a client")
        };
        assert!(err.to_string().contains("/nonexistent/kubeconfig"), "{err}");
        assert_eq!(
            provider.describe(),
            "kubeconfig /nonexistent/kubeconfig context x"
        );
    }

    #[test]
    fn check_names_the_key_at_fault_and_the_contexts_there_are() {
        let dir = tempfile::tempdir().unwrap();
        let missing = check_kubeconfig(&dir.path().join("nope"), None).unwrap_err();
        assert_eq!(missing.key, "path");
        assert!(
            missing.message.contains("does not exist"),
            "{}",
            missing.message
        );
        let path = dir.path().join("config");
        std::fs::write(&path, "users: [{name: u, user: {token: hunter2}}\n").unwrap();
        let broken = check_kubeconfig(&path, None).unwrap_err();
        assert_eq!(broken.key, "path");
        assert!(!broken.message.contains("hunter2"), "{}", broken.message);
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\nclusters:\n- name: a\n  cluster: {server: 'http://127.0.0.1:1'}\n\
             users:\n- name: u\n  user: {token: t}\ncontexts:\n- name: a\n  context: {cluster: a, user: u}\n\
             - name: b\n  context: {cluster: a, user: u}\n",
        )
        .unwrap();
        assert!(check_kubeconfig(&path, Some("b")).is_ok());
        let unknown = check_kubeconfig(&path, Some("c")).unwrap_err();
        assert_eq!(unknown.key, "context");
        assert!(
            unknown
                .message
                .ends_with("has no context `c`; it has: a, b"),
            "{}",
            unknown.message
        );
        let no_current = check_kubeconfig(&path, None).unwrap_err();
        assert_eq!(no_current.key, "context");
        assert!(
            no_current.message.contains("no current context"),
            "{}",
            no_current.message
        );
    }

    #[tokio::test]
    async fn an_unknown_context_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\nclusters:\n- name: a\n  cluster: {server: 'http://127.0.0.1:1'}\n\
             users:\n- name: u\n  user: {token: t}\ncontexts:\n- name: a\n  context: {cluster: a, user: u}\n\
             current-context: a\n",
        )
        .unwrap();
        let provider = KubeconfigProvider::new(&path);
        assert_eq!(provider.server(), None);
        assert!(provider.client().await.is_ok());
        assert_eq!(provider.server().as_deref(), Some("http://127.0.0.1:1/"));
        let Err(err) = KubeconfigProvider::new(&path)
            .context(Some("nope".into()))
            .client()
            .await
        else {
            panic!("an unknown context gave a client")
        };
        assert!(matches!(err, ClusterError::Kubeconfig { .. }), "{err:?}");
    }
}
