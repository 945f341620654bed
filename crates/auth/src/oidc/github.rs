//! GitHub Actions' OIDC token endpoint.

use std::fmt;

use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;

use super::{OidcToken, OidcTokenSource};
use crate::env::Env;
use crate::error::AuthError;
use crate::retry::{self, RetryPolicy, Target};

const URL_VAR: &str = "ACTIONS_ID_TOKEN_REQUEST_URL";
const TOKEN_VAR: &str = "ACTIONS_ID_TOKEN_REQUEST_TOKEN";

/// Requests a token from GitHub Actions: `GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=AUD` with
/// `Authorization: Bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN`, answered with `{"value": JWT}`.
/// GitHub sets both variables only in jobs with `permissions: id-token: write`; without them
/// this source is not configured.
#[derive(Clone)]
pub struct GitHubActions {
    /// `None`: not configured; `Some(Err)`: configured with a URL that does not parse.
    endpoint: Option<Result<(url::Url, SecretString), String>>,
    http: reqwest::Client,
    retry: RetryPolicy,
}

impl fmt::Debug for GitHubActions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitHubActions")
            .field(
                "request_url",
                &self
                    .endpoint
                    .as_ref()
                    .map(|e| e.as_ref().map(|(u, _)| u.as_str())),
            )
            .field("request_token", &"[redacted]")
            .finish()
    }
}

impl GitHubActions {
    /// The source as the environment configures it (not configured when either variable is
    /// absent).
    pub fn from_env(env: &Env, http: reqwest::Client) -> Self {
        let endpoint = match (env.get(URL_VAR), env.get(TOKEN_VAR)) {
            (Some(url), Some(token)) => Some(
                url::Url::parse(url)
                    .map(|u| (u, SecretString::from(token.to_owned())))
                    .map_err(|e| e.to_string()),
            ),
            _ => None,
        };
        GitHubActions {
            endpoint,
            http,
            retry: RetryPolicy::default(),
        }
    }

    /// A source for an explicit endpoint and request token (for embedding and tests).
    pub fn new(request_url: url::Url, request_token: SecretString, http: reqwest::Client) -> Self {
        GitHubActions {
            endpoint: Some(Ok((request_url, request_token))),
            http,
            retry: RetryPolicy::default(),
        }
    }

    /// Retries for throttled, failed and unreachable requests.
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    value: Option<String>,
}

#[async_trait::async_trait]
impl OidcTokenSource for GitHubActions {
    async fn token(&self, audience: &str) -> Result<OidcToken, AuthError> {
        let (base, request_token) = match &self.endpoint {
            None => {
                return Err(AuthError::NotConfigured {
                    what: format!("GitHub Actions OIDC ({URL_VAR}, {TOKEN_VAR})"),
                    help: "give the GitHub Actions job `permissions: id-token: write`".to_owned(),
                });
            }
            Some(Err(why)) => {
                return Err(AuthError::InvalidConfig {
                    key: URL_VAR.to_owned(),
                    message: format!("it is not a URL ({why})"),
                    help: format!(
                        "GitHub sets {URL_VAR} itself: do not override it in the workflow"
                    ),
                });
            }
            Some(Ok(endpoint)) => endpoint,
        };
        // The URL holds no secret (the request token travels in a header), but its query is
        // long: messages show it up to the path.
        let mut url = base.clone();
        if !audience.is_empty() {
            url.query_pairs_mut().append_pair("audience", audience);
        }
        let shown = url[..url::Position::AfterPath].to_owned();
        let resp = retry::send(
            &self.retry,
            Target {
                service: "GitHub Actions OIDC endpoint",
                endpoint: &shown,
                unreachable_help: "the runner cannot reach GitHub's token service; check the \
                                   runner's network and GitHub's status page",
            },
            || {
                self.http
                    .get(url.clone())
                    .bearer_auth(request_token.expose_secret())
                    .header(reqwest::header::ACCEPT, "application/json")
            },
        )
        .await?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            let message = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
                .unwrap_or_else(|| format!("HTTP {status}"));
            return Err(AuthError::Rejected {
                service: "GitHub Actions OIDC endpoint",
                code: status.as_u16().to_string(),
                message,
                help: format!(
                    "{TOKEN_VAR} was refused: it is valid only inside the running job. Run \
                     ferry in the same job step environment, with `permissions: id-token: write`"
                ),
            });
        }
        let body: TokenResponse = resp.json().await.map_err(|e| AuthError::Service {
            service: "GitHub Actions OIDC endpoint",
            message: "the answer is not the expected JSON {\"value\": JWT}".to_owned(),
            source: Some(Box::new(e.without_url())),
        })?;
        let jwt = body.value.ok_or_else(|| AuthError::Service {
            service: "GitHub Actions OIDC endpoint",
            message: "the answer has no `value` field".to_owned(),
            source: None,
        })?;
        OidcToken::parse(SecretString::from(jwt), "GitHub Actions OIDC")
    }

    fn describe(&self) -> String {
        "GitHub Actions OIDC".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_mangled_request_url_is_an_error_not_a_silent_fallback() {
        let env = Env::from_pairs([(URL_VAR, "not a url"), (TOKEN_VAR, "ghs_x")]);
        let err = GitHubActions::from_env(&env, reqwest::Client::new())
            .token("aud")
            .await
            .unwrap_err();
        assert!(matches!(err, AuthError::InvalidConfig { .. }), "{err:?}");
        assert!(err.to_string().contains(URL_VAR), "{err}");
        let unset = GitHubActions::from_env(&Env::default(), reqwest::Client::new());
        assert!(unset.token("aud").await.unwrap_err().is_not_configured());
    }
}
