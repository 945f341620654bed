//! `provider = "kubeconfig"`: a kubeconfig file and context, through kube's own loader (exec
//! plugins, client certificates, tokens all work as kubectl's do).

use std::path::{Path, PathBuf};

use kube::config::{KubeConfigOptions, Kubeconfig};

use super::{ClusterError, ClusterProvider, ServerUrl, client_from_config};

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
