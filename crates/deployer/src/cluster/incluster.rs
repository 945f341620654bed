//! `provider = "in-cluster"`: the service account of the pod ferry runs in (kube's
//! `Config::incluster`, which reads `KUBERNETES_SERVICE_HOST`/`PORT` and the mounted token; the
//! token file is re-read when it rotates).

use super::{ClusterError, ClusterProvider, ServerUrl, client_from_config};

/// The cluster ferry runs in.
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct InClusterProvider {
    user_agent: Option<String>,
    server: ServerUrl,
}

impl InClusterProvider {
    /// The in-cluster provider.
    pub fn new() -> Self {
        InClusterProvider::default()
    }

    /// The `User-Agent` header to send (see [`super::user_agent`]).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }
}

#[async_trait::async_trait]
impl ClusterProvider for InClusterProvider {
    async fn client(&self) -> Result<kube::Client, ClusterError> {
        let config = kube::Config::incluster().map_err(ClusterError::InCluster)?;
        client_from_config(
            config,
            self.user_agent.as_deref(),
            &self.describe(),
            &self.server,
        )
    }

    fn describe(&self) -> String {
        "in-cluster service account".to_owned()
    }

    fn server(&self) -> Option<String> {
        self.server.get()
    }
}
