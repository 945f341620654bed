//! Azure Container Registry logins (feature `acr`).
//!
//! ACR's flow has three steps: an Azure AD access token for
//! `https://containerregistry.azure.net/.default` (from the caller: ferry-auth's federated
//! credential in CI), exchanged at `POST https://REGISTRY/oauth2/exchange` for an ACR refresh
//! token, which the client then trades at the registry's token realm (`POST /oauth2/token`,
//! `grant_type=refresh_token`) for a bearer token per scope. This module does the first two and
//! hands the refresh token to the client as a [`Credential::IdentityToken`]; the third is the
//! standard token-realm flow every registry uses.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;

use super::{AuthError, Credential, RegistryAuth, canonical_registry};
use crate::error::BoxError;

const PROVIDER: &str = "acr";
/// The Azure AD scope of an ACR data-plane token.
pub const ACR_AAD_SCOPE: &str = "https://containerregistry.azure.net/.default";
/// ACR refresh tokens live three hours; ferry re-exchanges after one.
const REFRESH_TOKEN_REUSE: Duration = Duration::from_secs(3600);

/// Where the Azure AD access token comes from.
#[async_trait]
pub trait AadTokenSource: Send + Sync + fmt::Debug {
    /// An Azure AD access token for `scope`.
    async fn aad_token(&self, scope: &str) -> Result<SecretString, BoxError>;
}

/// A shared Azure AD token source.
pub type SharedAadTokenSource = Arc<dyn AadTokenSource>;

/// A fixed Azure AD token (one already obtained, e.g. by `az account get-access-token`).
#[derive(Clone)]
pub struct StaticAadToken(pub SecretString);

impl fmt::Debug for StaticAadToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StaticAadToken([redacted])")
    }
}

#[async_trait]
impl AadTokenSource for StaticAadToken {
    async fn aad_token(&self, _scope: &str) -> Result<SecretString, BoxError> {
        Ok(self.0.clone())
    }
}

#[derive(Deserialize)]
struct ExchangeAnswer {
    refresh_token: SecretString,
}

/// ACR logins from an Azure AD token.
pub struct AcrAuth {
    http: reqwest::Client,
    aad: SharedAadTokenSource,
    tenant: Option<String>,
    extra_hosts: Vec<String>,
    answer_timeout: Duration,
    cache: Mutex<HashMap<String, (SecretString, tokio::time::Instant)>>,
}

impl fmt::Debug for AcrAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcrAuth")
            .field("aad", &self.aad)
            .field("tenant", &self.tenant)
            .field("extra_hosts", &self.extra_hosts)
            .finish_non_exhaustive()
    }
}

impl AcrAuth {
    /// Logins for `*.azurecr.io` (and the sovereign clouds' `azurecr.cn`/`azurecr.us`).
    pub fn new(http: reqwest::Client, aad: SharedAadTokenSource) -> Self {
        AcrAuth {
            http,
            aad,
            tenant: None,
            extra_hosts: Vec::new(),
            answer_timeout: crate::client::DEFAULT_ANSWER_TIMEOUT,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The Azure AD tenant, passed to the exchange (needed for guest identities).
    #[must_use]
    pub fn with_tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// How long the exchange may wait for the answer, and then for each part of its body
    /// (default [`crate::client::DEFAULT_ANSWER_TIMEOUT`], as the registry client's).
    #[must_use]
    pub fn with_answer_timeout(mut self, limit: Duration) -> Self {
        self.answer_timeout = limit;
        self
    }

    /// Also answer for `host` (an ACR behind a custom domain, a test double).
    #[must_use]
    pub fn with_host(mut self, host: &str) -> Self {
        self.extra_hosts.push(canonical_registry(host));
        self
    }

    fn serves(&self, registry: &str) -> bool {
        let host = registry.split(':').next().unwrap_or(registry);
        host.ends_with(".azurecr.io")
            || host.ends_with(".azurecr.cn")
            || host.ends_with(".azurecr.us")
            || self.extra_hosts.iter().any(|h| h == registry)
    }

    async fn exchange(&self, registry: &str) -> Result<SecretString, AuthError> {
        let fail = |message: String, source: Option<BoxError>| {
            AuthError::failed(PROVIDER, registry, message, source)
        };
        let aad = self
            .aad
            .aad_token(ACR_AAD_SCOPE)
            .await
            .map_err(|e| fail("cannot get an Azure AD token".into(), Some(e)))?;
        let url = format!(
            "{}://{registry}/oauth2/exchange",
            crate::client::default_scheme(registry)
        );
        let mut form = vec![
            ("grant_type", "access_token"),
            ("service", registry),
            ("access_token", aad.expose_secret()),
        ];
        if let Some(tenant) = &self.tenant {
            form.push(("tenant", tenant));
        }
        let seconds = self.answer_timeout.as_secs_f64();
        let send = self.http.post(&url).form(&form).send();
        let response = tokio::time::timeout(self.answer_timeout, send)
            .await
            .map_err(|_| {
                fail(
                    format!("no answer from /oauth2/exchange within {seconds} s"),
                    None,
                )
            })?
            .map_err(|e| {
                fail(
                    "cannot reach /oauth2/exchange".into(),
                    Some(Box::new(e.without_url())),
                )
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(fail(
                format!(
                    "/oauth2/exchange answered {status}: the Azure AD identity has no access to this registry, or the token is for another tenant"
                ),
                None,
            ));
        }
        // Each part of the body within the timeout: an answer that stalls mid-body fails
        // rather than hanging (not retried: the exchange is a POST).
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        loop {
            use futures::StreamExt as _;
            let next = tokio::time::timeout(self.answer_timeout, stream.next())
                .await
                .map_err(|_| {
                    fail(
                        format!(
                            "/oauth2/exchange stopped sending its answer after {} bytes: nothing more within {seconds} s",
                            body.len()
                        ),
                        None,
                    )
                })?;
            match next {
                None => break,
                Some(Ok(chunk)) if body.len() + chunk.len() <= 1024 * 1024 => {
                    body.extend_from_slice(&chunk);
                }
                Some(Ok(_)) => {
                    return Err(fail("/oauth2/exchange's answer is over 1 MiB".into(), None));
                }
                Some(Err(e)) => {
                    return Err(fail(
                        "the answer from /oauth2/exchange broke off".into(),
                        Some(Box::new(e.without_url())),
                    ));
                }
            }
        }
        let answer: ExchangeAnswer = serde_json::from_slice(&body).map_err(|_| {
            fail(
                "/oauth2/exchange did not return a refresh token".into(),
                None,
            )
        })?;
        Ok(answer.refresh_token)
    }
}

#[async_trait]
impl RegistryAuth for AcrAuth {
    async fn credential(&self, registry: &str) -> Result<Credential, AuthError> {
        let registry = canonical_registry(registry);
        if !self.serves(&registry) {
            return Err(AuthError::not_configured(&registry));
        }
        if let Some((token, at)) = self.cache.lock().expect("cache lock").get(&registry)
            && at.elapsed() < REFRESH_TOKEN_REUSE
        {
            return Ok(Credential::IdentityToken(token.clone()));
        }
        let token = self.exchange(&registry).await?;
        tracing::debug!(registry, "ACR refresh token obtained");
        self.cache
            .lock()
            .expect("cache lock")
            .insert(registry, (token.clone(), tokio::time::Instant::now()));
        Ok(Credential::IdentityToken(token))
    }

    fn invalidate(&self, registry: &str) {
        self.cache
            .lock()
            .expect("cache lock")
            .remove(&canonical_registry(registry));
    }
}
