//! `provider = "aks"` (feature `aks`): an Azure Kubernetes Service cluster.
//!
//! The API server and CA come from ARM `listClusterUserCredential` (the kubeconfig Azure hands
//! out; ferry keeps its cluster entry and ignores its user, which would run kubelogin); the
//! bearer token is an Azure AD token for the AKS server application
//! (`6dae42f8-4368-4678-94ff-3960e28e3630`), requested through ferry-auth and replaced before
//! it expires, on every request the client sends. ARM is called with reqwest: one POST does not
//! justify the Azure SDK's pipeline.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use ferry_auth::AuthError;
use ferry_auth::azure::{AKS_SERVER_APP_ID, AzureBearer, SharedAzureCredential};
use ferry_auth::bearer::SharedBearerTokenSource;
use ferry_auth::retry::{self, RetryPolicy, Target};
use secrecy::ExposeSecret as _;
use serde::Deserialize;
use tokio::sync::OnceCell;

use super::cloud::{ClusterEndpoint, auth_failure, bearer_client};
use super::{AksClusterConfig, ClusterError, ClusterProvider};

/// The public cloud's Resource Manager.
const DEFAULT_ARM_ENDPOINT: &str = "https://management.azure.com";
/// The ARM API version ferry asks for.
const API_VERSION: &str = "2024-05-01";

/// An AKS cluster, reached with an Azure AD credential from ferry-auth.
pub struct AksProvider {
    config: AksClusterConfig,
    credential: SharedAzureCredential,
    http: reqwest::Client,
    retry: RetryPolicy,
    tokens: SharedBearerTokenSource,
    endpoint: OnceCell<ClusterEndpoint>,
    user_agent: Option<String>,
}

impl fmt::Debug for AksProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AksProvider")
            .field("config", &self.config)
            .field("credential", &self.credential.describe())
            .finish()
    }
}

#[derive(Deserialize)]
struct CredentialResults {
    #[serde(default)]
    kubeconfigs: Vec<NamedValue>,
}

#[derive(Deserialize)]
struct NamedValue {
    value: String,
}

#[derive(Deserialize, Default)]
struct ArmError {
    #[serde(default)]
    error: ArmErrorBody,
}

#[derive(Deserialize, Default)]
struct ArmErrorBody {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

impl AksProvider {
    /// The cluster `config` names, with tokens from `credential`.
    pub fn new(config: AksClusterConfig, credential: SharedAzureCredential) -> Self {
        let app = config.server_app_id.as_deref().unwrap_or(AKS_SERVER_APP_ID);
        let tokens = Arc::new(AzureBearer::new(
            Arc::clone(&credential),
            format!("{app}/.default"),
        ));
        AksProvider {
            config,
            credential,
            http: reqwest::Client::new(),
            retry: RetryPolicy::default(),
            tokens,
            endpoint: OnceCell::new(),
            user_agent: None,
        }
    }

    /// The HTTP client for ARM.
    #[must_use]
    pub fn http(mut self, http: reqwest::Client) -> Self {
        self.http = http;
        self
    }

    /// Retries for ARM requests.
    #[must_use]
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The `User-Agent` header to send (see [`super::user_agent`]).
    #[must_use]
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// The source of the bearer tokens the client sends (for `ferry auth token`).
    pub fn token_source(&self) -> SharedBearerTokenSource {
        Arc::clone(&self.tokens)
    }

    /// The API server and CA, from `listClusterUserCredential` (asked once).
    pub async fn endpoint(&self) -> Result<ClusterEndpoint, ClusterError> {
        self.endpoint
            .get_or_try_init(|| async {
                self.list_credential()
                    .await
                    .map_err(|e| auth_failure(format!("cannot look up {}", self.describe()), e))
            })
            .await
            .cloned()
    }

    fn arm_endpoint(&self) -> &str {
        self.config
            .arm_endpoint
            .as_deref()
            .unwrap_or(DEFAULT_ARM_ENDPOINT)
            .trim_end_matches('/')
    }

    async fn list_credential(&self) -> Result<ClusterEndpoint, AuthError> {
        let c = &self.config;
        let arm = self.arm_endpoint();
        let token = self.credential.token(&format!("{arm}/.default")).await?;
        let url = format!(
            "{arm}/subscriptions/{}/resourceGroups/{}/providers/Microsoft.ContainerService/\
             managedClusters/{}/listClusterUserCredential?api-version={API_VERSION}",
            c.subscription, c.resource_group, c.cluster
        );
        let shown = format!("{arm} (listClusterUserCredential)");
        let resp = retry::send(
            &self.retry,
            Target {
                service: "Azure Resource Manager",
                endpoint: &shown,
                unreachable_help: "check the network and [env.NAME.cluster] arm_endpoint",
            },
            || {
                self.http
                    .post(&url)
                    .bearer_auth(token.token.expose_secret())
                    .header(reqwest::header::CONTENT_LENGTH, "0")
            },
        )
        .await?;
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(self.arm_refusal(status.as_u16(), &body));
        }
        let results: CredentialResults =
            serde_json::from_str(&body).map_err(|e| AuthError::Service {
                service: "Azure Resource Manager",
                message: "listClusterUserCredential answered something other than credentials"
                    .into(),
                source: Some(Box::new(e)),
            })?;
        let unusable = |why: String| AuthError::Service {
            service: "Azure Resource Manager",
            message: format!(
                "the kubeconfig of AKS cluster `{}` is unusable: {why}",
                c.cluster
            ),
            source: None,
        };
        let first = results
            .kubeconfigs
            .first()
            .ok_or_else(|| unusable("the answer holds no kubeconfig".into()))?;
        let yaml = base64::engine::general_purpose::STANDARD
            .decode(first.value.trim())
            .map_err(|_| unusable("it is not base64".into()))?;
        let yaml = String::from_utf8(yaml).map_err(|_| unusable("it is not text".into()))?;
        let kubeconfig = kube::config::Kubeconfig::from_yaml(&yaml)
            .map_err(|e| unusable(format!("it is not a kubeconfig ({e})")))?;
        // The cluster of the current context, else the only one.
        let current = kubeconfig.current_context.as_deref().and_then(|name| {
            kubeconfig
                .contexts
                .iter()
                .find(|ctx| ctx.name == name)
                .and_then(|ctx| ctx.context.as_ref())
                .map(|ctx| ctx.cluster.clone())
        });
        let cluster = kubeconfig
            .clusters
            .iter()
            .find(|cl| current.as_deref().is_none_or(|name| cl.name == name))
            .and_then(|cl| cl.cluster.as_ref())
            .ok_or_else(|| unusable("it names no cluster".into()))?;
        let server = cluster.server.as_deref().unwrap_or_default();
        ClusterEndpoint::checked(server, cluster.certificate_authority_data.as_deref())
            .map_err(unusable)
    }

    fn arm_refusal(&self, status: u16, body: &str) -> AuthError {
        let c = &self.config;
        let err: ArmError = serde_json::from_str(body).unwrap_or_default();
        let code = if err.error.code.is_empty() {
            format!("HTTP {status}")
        } else {
            err.error.code
        };
        let message = err.error.message;
        match code.as_str() {
            "ResourceNotFound"
            | "ResourceGroupNotFound"
            | "SubscriptionNotFound"
            | "InvalidSubscriptionId" => AuthError::NotFound {
                what: format!(
                    "AKS cluster `{}` in resource group `{}` of subscription {}",
                    c.cluster, c.resource_group, c.subscription
                ),
                help: format!(
                    "ARM says {code}: {message} — check [env.NAME.cluster] subscription, \
                     resource_group and cluster"
                ),
            },
            "AuthorizationFailed" | "LinkedAuthorizationFailed" => AuthError::Rejected {
                service: "Azure Resource Manager",
                code,
                message,
                help: "the identity may not list the cluster's user credentials: grant it the \
                       \"Azure Kubernetes Service Cluster User Role\" on the cluster"
                    .into(),
            },
            _ => AuthError::Rejected {
                service: "Azure Resource Manager",
                code,
                message,
                help: format!(
                    "ARM refused listClusterUserCredential for `{}` (HTTP {status})",
                    c.cluster
                ),
            },
        }
    }
}

#[async_trait::async_trait]
impl ClusterProvider for AksProvider {
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
            "aks cluster {} in resource group {}",
            self.config.cluster, self.config.resource_group
        )
    }

    /// The API server listClusterUserCredential reported, once [`client`](ClusterProvider::client) has asked.
    fn server(&self) -> Option<String> {
        self.endpoint.get().map(|e| e.server.clone())
    }
}
