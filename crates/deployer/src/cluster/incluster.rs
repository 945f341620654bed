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
        let config = kube::Config::incluster().map_err(in_cluster_error)?;
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

/// Outside a pod (no `KUBERNETES_SERVICE_HOST`/`PORT`) nothing is configured, which is a
/// setting to fix (exit 3), not a failure to retry; anything else is the service account's.
fn in_cluster_error(e: kube::config::InClusterError) -> ClusterError {
    match e {
        kube::config::InClusterError::ReadEnvironmentVariable(_) => ClusterError::NotConfigured {
            reason: "provider = \"in-cluster\" works only inside a Kubernetes pod \
                     (KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set here); \
                     outside a cluster use provider = \"kubeconfig\", \"eks\" or \"aks\""
                .to_owned(),
        },
        other => ClusterError::InCluster(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_a_pod_is_not_configured() {
        let e = in_cluster_error(kube::config::InClusterError::ReadEnvironmentVariable(
            std::env::VarError::NotPresent,
        ));
        assert!(matches!(e, ClusterError::NotConfigured { .. }), "{e:?}");
        assert!(
            e.to_string().contains("only inside a Kubernetes pod"),
            "{e}"
        );
        let e = in_cluster_error(kube::config::InClusterError::ReadCertificateBundle(
            std::io::Error::from(std::io::ErrorKind::NotFound),
        ));
        assert!(matches!(e, ClusterError::InCluster(_)), "{e:?}");
    }
}
