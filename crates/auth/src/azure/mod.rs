//! Azure AD tokens (feature `azure`).
//!
//! [`AzureAdCredential`] gets access tokens from the Microsoft identity platform's v2.0 token
//! endpoint with the client-credentials grant, authenticating the app registration (or
//! user-assigned managed identity) either with a federated client assertion — the OIDC token,
//! requested for audience `api://AzureADTokenExchange` — or with a client secret. Tokens are
//! cached per scope and requested again a margin before they expire.
//!
//! It is written on reqwest rather than the `azure_identity` crate: the grant is one form POST,
//! and `azure_identity` brings the whole `azure_core` pipeline (its own HTTP stack, retry
//! policy and clock) where ferry needs its injected clock, retry policy and error messages.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;

use crate::bearer::{BearerToken, BearerTokenSource, TokenCache};
use crate::clock::SharedClock;
use crate::error::AuthError;
use crate::oidc::SharedOidcTokenSource;
use crate::retry::{self, RetryPolicy, Target};
use crate::trust::AZURE_AUDIENCE;

/// The public cloud's authority.
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";
/// The scope of Azure Resource Manager.
pub const ARM_SCOPE: &str = "https://management.azure.com/.default";
/// The AKS AAD server application (the same in every tenant), whose tokens AKS API servers
/// accept.
pub const AKS_SERVER_APP_ID: &str = "6dae42f8-4368-4678-94ff-3960e28e3630";

/// A source of Azure AD access tokens.
#[async_trait::async_trait]
pub trait AzureTokenCredential: Send + Sync + fmt::Debug {
    /// A token for `scope` (e.g. `https://management.azure.com/.default`).
    async fn token(&self, scope: &str) -> Result<BearerToken, AuthError>;

    /// For messages.
    fn describe(&self) -> String;
}

/// An Azure credential shared between clients.
pub type SharedAzureCredential = Arc<dyn AzureTokenCredential>;

/// How the app authenticates itself to Azure AD.
#[derive(Clone)]
pub enum ClientAuth {
    /// A federated client assertion: an OIDC token from this source, requested for `audience`
    /// (normally `api://AzureADTokenExchange`).
    Federated {
        /// Where the OIDC token comes from.
        tokens: SharedOidcTokenSource,
        /// The audience to request.
        audience: String,
    },
    /// A client secret.
    Secret(SecretString),
}

impl fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientAuth::Federated { tokens, audience } => f
                .debug_struct("Federated")
                .field("tokens", &tokens.describe())
                .field("audience", audience)
                .finish(),
            ClientAuth::Secret(_) => f.write_str("Secret([redacted])"),
        }
    }
}

impl ClientAuth {
    /// A federated assertion from `tokens` with the default audience.
    pub fn federated(tokens: SharedOidcTokenSource) -> Self {
        ClientAuth::Federated {
            tokens,
            audience: AZURE_AUDIENCE.to_owned(),
        }
    }
}

/// Access tokens for an app registration or managed identity in a tenant.
#[derive(Clone)]
pub struct AzureAdCredential {
    inner: Arc<Inner>,
}

struct Inner {
    tenant_id: String,
    client_id: String,
    auth: ClientAuth,
    authority: url::Url,
    http: reqwest::Client,
    retry: RetryPolicy,
    clock: SharedClock,
    refresh_margin: Duration,
    /// One cache per scope, so scopes refresh independently.
    cache: std::sync::Mutex<HashMap<String, Arc<TokenCache>>>,
}

impl fmt::Debug for AzureAdCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureAdCredential")
            .field("tenant_id", &self.inner.tenant_id)
            .field("client_id", &self.inner.client_id)
            .field("auth", &self.inner.auth)
            .field("authority", &self.inner.authority.as_str())
            .finish()
    }
}

/// Settings for [`AzureAdCredential`].
#[must_use]
pub struct AzureAdBuilder {
    tenant_id: String,
    client_id: String,
    auth: ClientAuth,
    authority: String,
    http: reqwest::Client,
    retry: RetryPolicy,
    clock: SharedClock,
    refresh_margin: Duration,
}

/// The authority as a URL: an http(s) one with a host.
fn authority_url(text: &str) -> Result<url::Url, AuthError> {
    url::Url::parse(text)
        .ok()
        .filter(|u| matches!(u.scheme(), "https" | "http") && u.host_str().is_some())
        .ok_or_else(|| AuthError::InvalidConfig {
            key: "auth.azure.authority".into(),
            message: format!("`{text}` is not an http(s) URL"),
            help: format!("leave it unset for {DEFAULT_AUTHORITY}"),
        })
}

impl AzureAdBuilder {
    /// The authority (`https://login.microsoftonline.com`; sovereign clouds have others).
    pub fn authority(mut self, authority: impl Into<String>) -> Self {
        self.authority = authority.into();
        self
    }

    /// The HTTP client.
    pub fn http(mut self, http: reqwest::Client) -> Self {
        self.http = http;
        self
    }

    /// Retries for throttling, 5xx answers and unreachable endpoints.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// How long before expiry a token is requested again; default 5 minutes.
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.refresh_margin = margin;
        self
    }

    /// Every problem of the settings (ids and authority), in the order of `[auth.azure]`.
    pub fn problems(&self) -> Vec<AuthError> {
        let id_ok = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
        };
        let mut problems = Vec::new();
        if !id_ok(&self.tenant_id) {
            problems.push(AuthError::InvalidConfig {
                key: "auth.azure.tenant_id".into(),
                message: format!("`{}` is not a tenant id or domain", self.tenant_id),
                help: "use the directory (tenant) id GUID, or the tenant's domain".into(),
            });
        }
        if !id_ok(&self.client_id) {
            problems.push(AuthError::InvalidConfig {
                key: "auth.azure.client_id".into(),
                message: format!("`{}` is not a client id", self.client_id),
                help: "use the application (client) id GUID of the app registration or \
                       managed identity"
                    .into(),
            });
        }
        problems.extend(authority_url(&self.authority).err());
        problems
    }

    /// Checks the settings and builds the credential (no request is made yet).
    pub fn build(self) -> Result<AzureAdCredential, AuthError> {
        if let Some(problem) = self.problems().into_iter().next() {
            return Err(problem);
        }
        let authority = authority_url(&self.authority)?;
        Ok(AzureAdCredential {
            inner: Arc::new(Inner {
                tenant_id: self.tenant_id,
                client_id: self.client_id,
                auth: self.auth,
                authority,
                http: self.http,
                retry: self.retry,
                clock: self.clock,
                refresh_margin: self.refresh_margin,
                cache: std::sync::Mutex::new(HashMap::new()),
            }),
        })
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    expires_in: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
struct ErrorResponse {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
    #[serde(default)]
    error_codes: Vec<u64>,
}

impl AzureAdCredential {
    /// Settings for the app `client_id` in `tenant_id`, authenticating with `auth`.
    pub fn builder(
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
        auth: ClientAuth,
        clock: SharedClock,
    ) -> AzureAdBuilder {
        AzureAdBuilder {
            tenant_id: tenant_id.into(),
            client_id: client_id.into(),
            auth,
            authority: DEFAULT_AUTHORITY.to_owned(),
            http: reqwest::Client::new(),
            retry: RetryPolicy::default(),
            clock,
            refresh_margin: Duration::from_secs(5 * 60),
        }
    }

    /// The tenant.
    pub fn tenant_id(&self) -> &str {
        &self.inner.tenant_id
    }

    /// The app's client id.
    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    /// A bearer token source for an AKS cluster's API server (scope
    /// `6dae42f8-4368-4678-94ff-3960e28e3630/.default`).
    pub fn aks_token_source(&self) -> AzureBearer {
        AzureBearer {
            credential: Arc::new(self.clone()),
            scope: format!("{AKS_SERVER_APP_ID}/.default"),
        }
    }

    fn token_endpoint(&self) -> url::Url {
        let mut url = self.inner.authority.clone();
        let base = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!(
            "{base}/{}/oauth2/v2.0/token",
            self.inner.tenant_id
        ));
        url
    }

    async fn request(&self, scope: &str) -> Result<BearerToken, AuthError> {
        let inner = &self.inner;
        let now = inner.clock.now();
        let (assertion, sub, origin) = match &inner.auth {
            ClientAuth::Federated { tokens, audience } => {
                let token = tokens.token(audience).await?;
                token.ensure_fresh(now)?;
                let sub = token.claims().sub.clone().unwrap_or_default();
                let origin = token.origin().to_owned();
                (Some(token.secret().clone()), sub, origin)
            }
            ClientAuth::Secret(_) => (None, String::new(), "client secret".to_owned()),
        };
        let endpoint = self.token_endpoint();
        let shown = endpoint.to_string();
        let mut fields: Vec<(&str, &str)> = vec![
            ("grant_type", "client_credentials"),
            ("client_id", &inner.client_id),
            ("scope", scope),
        ];
        match (&inner.auth, &assertion) {
            (ClientAuth::Secret(secret), _) => {
                fields.push(("client_secret", secret.expose_secret()));
            }
            (ClientAuth::Federated { .. }, jwt) => {
                fields.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ));
                let jwt = jwt.as_ref().map(|j| j.expose_secret()).unwrap_or_default();
                fields.push(("client_assertion", jwt));
            }
        }
        let resp = retry::send(
            &inner.retry,
            Target {
                service: "Azure AD",
                endpoint: &shown,
                unreachable_help: "check the network and [env.NAME.auth.azure] authority",
            },
            || inner.http.post(endpoint.clone()).form(&fields),
        )
        .await?;
        let status = resp.status();
        let body = resp.text().await.map_err(|e| AuthError::Service {
            service: "Azure AD",
            message: "cannot read the answer".into(),
            source: Some(Box::new(e.without_url())),
        })?;
        if !status.is_success() {
            let err: ErrorResponse = serde_json::from_str(&body).unwrap_or_default();
            return Err(aad_refusal(
                status.as_u16(),
                &err,
                &inner.tenant_id,
                &inner.client_id,
                &sub,
                &origin,
            ));
        }
        let parsed: TokenResponse =
            serde_json::from_str(&body).map_err(|e| AuthError::Service {
                service: "Azure AD",
                message: "the token answer is not the expected JSON".into(),
                source: Some(Box::new(e)),
            })?;
        let token = parsed.access_token.ok_or_else(|| AuthError::Service {
            service: "Azure AD",
            message: "the answer has no access_token".into(),
            source: None,
        })?;
        let expires_in = match parsed.expires_in {
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            Some(serde_json::Value::String(s)) => s.parse().ok(),
            _ => None,
        }
        .unwrap_or(3600);
        let expires_at = now + Duration::from_secs(expires_in);
        tracing::info!(
            client_id = %inner.client_id,
            scope,
            expires_at = %crate::clock::rfc3339(expires_at),
            "got an Azure AD token"
        );
        Ok(BearerToken {
            token: SecretString::from(token),
            expires_at,
        })
    }
}

/// Azure AD's refusal, with what to fix for the AADSTS codes CI users meet.
fn aad_refusal(
    status: u16,
    err: &ErrorResponse,
    tenant: &str,
    client: &str,
    sub: &str,
    origin: &str,
) -> AuthError {
    let code = err
        .error_codes
        .first()
        .map(|c| format!("AADSTS{c}"))
        .unwrap_or_else(|| {
            if err.error.is_empty() {
                format!("HTTP {status}")
            } else {
                err.error.clone()
            }
        });
    // The description's first line is the message; the rest is trace and correlation ids.
    let message = err
        .error_description
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_owned();
    let help = match code.as_str() {
        "AADSTS70021" | "AADSTS700211" | "AADSTS700212" | "AADSTS700213" => format!(
            "no federated credential of app {client} matches the token (sub `{sub}`): add the \
             one `ferry auth trust-policy --env NAME` prints, and check `ferry auth check`"
        ),
        "AADSTS700024" | "AADSTS700027" => format!(
            "the client assertion from {origin} is outside its validity: get a fresh token \
             (re-run the job) and check this machine's clock"
        ),
        "AADSTS50027" | "AADSTS50126" | "AADSTS7000274" => format!(
            "Azure AD cannot read the assertion from {origin}: it must be an OIDC JWT from the \
             issuer configured in the federated credential"
        ),
        "AADSTS700016" => format!(
            "there is no application {client} in tenant {tenant}: check \
             [env.NAME.auth.azure] client_id and tenant_id"
        ),
        "AADSTS90002" | "AADSTS900023" => {
            format!("tenant {tenant} does not exist: check [env.NAME.auth.azure] tenant_id")
        }
        "AADSTS7000215" => {
            "the client secret is wrong: use the secret's value, not its id".to_owned()
        }
        "AADSTS7000222" => "the client secret has expired: create a new one".to_owned(),
        "AADSTS500011" => {
            "the scope's resource does not exist in this tenant: check the scope".to_owned()
        }
        _ => format!("Azure AD refused app {client} in tenant {tenant}"),
    };
    AuthError::Rejected {
        service: "Azure AD",
        code,
        message,
        help,
    }
}

#[async_trait::async_trait]
impl AzureTokenCredential for AzureAdCredential {
    async fn token(&self, scope: &str) -> Result<BearerToken, AuthError> {
        let cache = {
            let mut caches = self
                .inner
                .cache
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(caches.entry(scope.to_owned()).or_insert_with(|| {
                Arc::new(TokenCache::new(
                    Arc::clone(&self.inner.clock),
                    self.inner.refresh_margin,
                ))
            }))
        };
        cache.get_or_refresh(|| self.request(scope)).await
    }

    fn describe(&self) -> String {
        let how = match &self.inner.auth {
            ClientAuth::Federated { tokens, .. } => {
                format!("federated credential ({})", tokens.describe())
            }
            ClientAuth::Secret(_) => "client secret".to_owned(),
        };
        format!(
            "Azure AD app {} in tenant {} with {how}",
            self.inner.client_id, self.inner.tenant_id
        )
    }
}

/// An Azure credential as a [`BearerTokenSource`] for one scope (the AKS server app).
#[derive(Debug, Clone)]
pub struct AzureBearer {
    credential: SharedAzureCredential,
    scope: String,
}

impl AzureBearer {
    /// Tokens for `scope` from `credential`.
    pub fn new(credential: SharedAzureCredential, scope: impl Into<String>) -> Self {
        AzureBearer {
            credential,
            scope: scope.into(),
        }
    }
}

#[async_trait::async_trait]
impl BearerTokenSource for AzureBearer {
    async fn bearer_token(&self) -> Result<BearerToken, AuthError> {
        self.credential.token(&self.scope).await
    }
}
