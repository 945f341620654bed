//! `provider = "eks"` (feature `eks`): an Amazon EKS cluster.
//!
//! The endpoint and CA come from EKS `DescribeCluster` (aws-sdk-eks), asked once per provider;
//! the bearer token is minted in-process by [`ferry_auth::aws::EksTokenSource`] (a presigned
//! STS `GetCallerIdentity`, what `aws eks get-token` prints) and replaced before it expires, on
//! every request the client sends. No `aws` CLI, no kubeconfig exec plugin.

use std::fmt;

use ferry_auth::AuthError;
use ferry_auth::aws::AwsAuth;
use ferry_auth::bearer::SharedBearerTokenSource;
use tokio::sync::OnceCell;

use super::cloud::{ClusterEndpoint, auth_failure, bearer_client};
use super::{ClusterError, ClusterProvider, EksClusterConfig};

/// An EKS cluster, reached with AWS credentials from ferry-auth.
pub struct EksProvider {
    config: EksClusterConfig,
    auth: AwsAuth,
    tokens: SharedBearerTokenSource,
    endpoint: OnceCell<ClusterEndpoint>,
    user_agent: Option<String>,
}

impl fmt::Debug for EksProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EksProvider")
            .field("cluster", &self.config.cluster)
            .field("region", &self.config.region)
            .field("auth", &self.auth)
            .finish()
    }
}

impl EksProvider {
    /// The cluster `config` names, with credentials from `auth` (whose region should be the
    /// cluster's; ferry-auth's config resolution defaults it so).
    pub fn new(config: EksClusterConfig, auth: AwsAuth) -> Self {
        let tokens = std::sync::Arc::new(auth.eks_token_source(&config.cluster));
        EksProvider {
            config,
            auth,
            tokens,
            endpoint: OnceCell::new(),
            user_agent: None,
        }
    }

    /// The `User-Agent` header to send (see [`super::user_agent`]).
    #[must_use]
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// The source of the bearer tokens the client sends (for `ferry auth token`).
    pub fn token_source(&self) -> SharedBearerTokenSource {
        std::sync::Arc::clone(&self.tokens)
    }

    /// The API server and CA, from `DescribeCluster` (asked once).
    pub async fn endpoint(&self) -> Result<ClusterEndpoint, ClusterError> {
        self.endpoint
            .get_or_try_init(|| async {
                self.describe_cluster()
                    .await
                    .map_err(|e| auth_failure(format!("cannot look up {}", self.describe()), e))
            })
            .await
            .cloned()
    }

    async fn describe_cluster(&self) -> Result<ClusterEndpoint, AuthError> {
        let name = &self.config.cluster;
        let region = self.auth.region();
        // Resolve credentials first, so an OIDC or STS problem is reported as itself.
        self.auth.credentials().await?;
        let eks = aws_sdk_eks::Client::new(&self.auth.sdk_config());
        let out = match eks.describe_cluster().name(name).send().await {
            Ok(out) => out,
            Err(err) => {
                let not_found = err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception());
                if not_found {
                    return Err(self.not_found(&eks).await);
                }
                return Err(self.auth.sdk_error(err, "Amazon EKS", "eks", |_, _| None));
            }
        };
        let cluster = out.cluster().ok_or_else(|| AuthError::Service {
            service: "Amazon EKS",
            message: format!("DescribeCluster for `{name}` answered without a cluster"),
            source: None,
        })?;
        if let Some(status) = cluster.status()
            && status.as_str() != "ACTIVE"
            && status.as_str() != "UPDATING"
        {
            return Err(AuthError::NotFound {
                what: format!("an active EKS cluster `{name}` in {region}"),
                help: format!(
                    "the cluster is {}; wait until it is ACTIVE",
                    status.as_str()
                ),
            });
        }
        let server = cluster.endpoint().unwrap_or_default();
        let ca = cluster.certificate_authority().and_then(|ca| ca.data());
        ClusterEndpoint::checked(server, ca).map_err(|why| AuthError::Service {
            service: "Amazon EKS",
            message: format!("DescribeCluster for `{name}` gave an unusable endpoint: {why}"),
            source: None,
        })
    }

    /// The cluster does not exist in this region: say which clusters do, closest names first
    /// (a typo shows up at the head of the list).
    async fn not_found(&self, eks: &aws_sdk_eks::Client) -> AuthError {
        let name = &self.config.cluster;
        let region = self.auth.region();
        let mut names = Vec::new();
        let mut pages = eks.list_clusters().max_results(100).into_paginator().send();
        let mut listed = true;
        // Bounded: five pages are 500 clusters, more than any account has in a region.
        for _ in 0..5 {
            match pages.next().await {
                Some(Ok(page)) => names.extend(page.clusters().iter().cloned()),
                Some(Err(_)) => {
                    listed = false;
                    break;
                }
                None => break,
            }
        }
        let others = if !listed {
            format!("the clusters in {region} could not be listed")
        } else if names.is_empty() {
            format!("there are no clusters in {region}")
        } else {
            names.sort_by(|a, b| {
                strsim::jaro_winkler(name, b)
                    .total_cmp(&strsim::jaro_winkler(name, a))
                    .then_with(|| a.cmp(b))
            });
            let shown = names.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
            let more = names.len().saturating_sub(5);
            if more > 0 {
                format!("clusters in {region}, closest names first: {shown} (and {more} more)")
            } else {
                format!("clusters in {region}: {shown}")
            }
        };
        AuthError::NotFound {
            what: format!("EKS cluster `{name}` in region {region}"),
            help: format!(
                "check [env.NAME.cluster] cluster and region — is the cluster in another \
                 region, or another account? ({others})"
            ),
        }
    }
}

#[async_trait::async_trait]
impl ClusterProvider for EksProvider {
    async fn client(&self) -> Result<kube::Client, ClusterError> {
        let endpoint = self.endpoint().await?;
        bearer_client(
            &endpoint,
            self.token_source(),
            self.user_agent.as_deref(),
            &self.describe(),
        )
        .await
    }

    fn describe(&self) -> String {
        format!(
            "eks cluster {} in {}",
            self.config.cluster, self.config.region
        )
    }

    /// The API server DescribeCluster reported, once [`client`](ClusterProvider::client) has asked.
    fn server(&self) -> Option<String> {
        self.endpoint.get().map(|e| e.server.clone())
    }
}
