//! STS `AssumeRoleWithWebIdentity`: an OIDC token for temporary AWS credentials.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{self, ProvideCredentials, error::CredentialsError};
use secrecy::ExposeSecret as _;

use super::{SdkCall, build_sdk_config, sdk_error};
use crate::bearer::{Expiring, TokenCache};
use crate::clock::{SharedClock, rfc3339};
use crate::error::AuthError;
use crate::oidc::SharedOidcTokenSource;
use crate::retry::RetryPolicy;
use crate::trust::{AWS_AUDIENCE, RoleArn};

/// The shortest and longest sessions STS grants.
const MIN_DURATION: Duration = Duration::from_secs(15 * 60);
const MAX_DURATION: Duration = Duration::from_secs(12 * 3600);

/// `duration` if STS grants sessions that long.
pub(crate) fn check_duration(duration: Duration) -> Result<(), AuthError> {
    if !(MIN_DURATION..=MAX_DURATION).contains(&duration) {
        return Err(AuthError::InvalidConfig {
            key: "auth.aws.duration".into(),
            message: format!(
                "{} is outside what STS grants",
                humantime::format_duration(duration)
            ),
            help: "use between 15m and 12h (and at most the role's maximum session duration)"
                .into(),
        });
    }
    Ok(())
}

/// `name` if STS takes it as a role session name.
pub(crate) fn check_session_name(name: &str) -> Result<(), AuthError> {
    let ok = (2..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
    if !ok {
        return Err(AuthError::InvalidConfig {
            key: "auth.aws.session_name".into(),
            message: format!("`{name}` is not a valid role session name"),
            help: "use 2 to 64 characters from letters, digits and +=,.@_-".into(),
        });
    }
    Ok(())
}

/// Temporary credentials for an IAM role, from STS `AssumeRoleWithWebIdentity` with an OIDC
/// token. The credentials are cached and exchanged again `refresh_margin` before they expire
/// (by the injected clock); concurrent callers share one exchange. Throttling, 5xx answers and
/// unreachable endpoints are retried under the [`RetryPolicy`] (the SDK's standard retry mode,
/// full-jitter backoff), then reported with what to fix.
///
/// It is an SDK [`ProvideCredentials`], so any AWS client can use it directly; ferry normally
/// hands it over inside [`AwsAuth::sdk_config`](super::AwsAuth::sdk_config).
#[derive(Clone)]
pub struct WebIdentityCredentials {
    inner: Arc<Inner>,
}

struct Inner {
    sts: aws_sdk_sts::Client,
    role_arn: String,
    session_name: String,
    duration: Duration,
    audience: String,
    tokens: SharedOidcTokenSource,
    clock: SharedClock,
    region: String,
    endpoint_url: Option<String>,
    retry: RetryPolicy,
    cache: TokenCache<Assumed>,
}

#[derive(Clone)]
struct Assumed {
    credentials: Credentials,
    expires_at: SystemTime,
}

impl Expiring for Assumed {
    fn expires_at(&self) -> SystemTime {
        self.expires_at
    }
}

impl fmt::Debug for WebIdentityCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebIdentityCredentials")
            .field("role_arn", &self.inner.role_arn)
            .field("session_name", &self.inner.session_name)
            .field("tokens", &self.inner.tokens.describe())
            .finish()
    }
}

/// Settings for [`WebIdentityCredentials`].
#[must_use]
pub struct WebIdentityBuilder {
    role_arn: String,
    tokens: SharedOidcTokenSource,
    clock: SharedClock,
    region: String,
    session_name: String,
    duration: Duration,
    audience: String,
    endpoint_url: Option<String>,
    retry: RetryPolicy,
    refresh_margin: Duration,
}

impl WebIdentityBuilder {
    /// The role session name (shows in CloudTrail); default `ferry`.
    pub fn session_name(mut self, name: impl Into<String>) -> Self {
        self.session_name = name.into();
        self
    }

    /// How long the credentials last (15 minutes to 12 hours, within the role's maximum);
    /// default 1 hour.
    pub fn duration(mut self, duration: Duration) -> Self {
        self.duration = duration;
        self
    }

    /// The audience to request the OIDC token for; default `sts.amazonaws.com`.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = audience.into();
        self
    }

    /// Sends STS requests to `url` (moto, LocalStack, a VPC endpoint).
    pub fn endpoint_url(mut self, url: Option<String>) -> Self {
        self.endpoint_url = url;
        self
    }

    /// Retries for throttling, 5xx answers and unreachable endpoints.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// How long before expiry the credentials are exchanged again; default 5 minutes.
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.refresh_margin = margin;
        self
    }

    /// Checks the settings and builds the provider (no request is made yet).
    pub fn build(self) -> Result<WebIdentityCredentials, AuthError> {
        RoleArn::parse(&self.role_arn)?;
        check_duration(self.duration)?;
        check_session_name(&self.session_name)?;
        // AssumeRoleWithWebIdentity is unsigned: the client has no credentials of its own.
        let config = build_sdk_config(
            &self.region,
            self.endpoint_url.as_deref(),
            &self.retry,
            &self.clock,
            None,
        );
        Ok(WebIdentityCredentials {
            inner: Arc::new(Inner {
                cache: TokenCache::new(Arc::clone(&self.clock), self.refresh_margin),
                sts: aws_sdk_sts::Client::new(&config),
                role_arn: self.role_arn,
                session_name: self.session_name,
                duration: self.duration,
                audience: self.audience,
                tokens: self.tokens,
                clock: self.clock,
                region: self.region,
                endpoint_url: self.endpoint_url,
                retry: self.retry,
            }),
        })
    }
}

impl WebIdentityCredentials {
    /// Settings for assuming `role_arn` with tokens from `tokens`, calling STS in `region`.
    pub fn builder(
        role_arn: impl Into<String>,
        tokens: SharedOidcTokenSource,
        region: impl Into<String>,
        clock: SharedClock,
    ) -> WebIdentityBuilder {
        WebIdentityBuilder {
            role_arn: role_arn.into(),
            tokens,
            clock,
            region: region.into(),
            session_name: "ferry".to_owned(),
            duration: Duration::from_secs(3600),
            audience: AWS_AUDIENCE.to_owned(),
            endpoint_url: None,
            retry: RetryPolicy::default(),
            refresh_margin: Duration::from_secs(5 * 60),
        }
    }

    /// The role.
    pub fn role_arn(&self) -> &str {
        &self.inner.role_arn
    }

    /// The audience tokens are requested for.
    pub fn audience(&self) -> &str {
        &self.inner.audience
    }

    /// The endpoint override, if any.
    pub fn endpoint_url(&self) -> Option<&str> {
        self.inner.endpoint_url.as_deref()
    }

    /// The retry policy.
    pub fn retry(&self) -> RetryPolicy {
        self.inner.retry
    }

    /// The token source.
    pub fn token_source(&self) -> &SharedOidcTokenSource {
        &self.inner.tokens
    }

    /// Valid credentials: the cached ones while they have more than the refresh margin left,
    /// else fresh ones from STS.
    pub async fn load(&self) -> Result<Credentials, AuthError> {
        let assumed = self.inner.cache.get_or_refresh(|| self.assume()).await?;
        Ok(assumed.credentials)
    }

    async fn assume(&self) -> Result<Assumed, AuthError> {
        let inner = &self.inner;
        let now = inner.clock.now();
        let token = inner.tokens.token(&inner.audience).await?;
        token.ensure_fresh(now)?;
        if let Some(aud) = &token.claims().aud
            && !aud.contains(&inner.audience)
        {
            tracing::warn!(
                expected = %inner.audience,
                actual = %aud.joined(),
                "the OIDC token's audience is not the one the role expects; STS will likely refuse it"
            );
        }
        let call = SdkCall {
            service: "AWS STS",
            endpoint: inner.endpoint_url.clone().unwrap_or_else(|| {
                format!("https://{}", super::eks_token::sts_host(&inner.region))
            }),
            region: &inner.region,
            attempts: inner.retry.attempts(),
        };
        let duration_secs = i32::try_from(inner.duration.as_secs()).unwrap_or(i32::MAX);
        let result = inner
            .sts
            .assume_role_with_web_identity()
            .role_arn(&inner.role_arn)
            .role_session_name(&inner.session_name)
            .web_identity_token(token.secret().expose_secret())
            .duration_seconds(duration_secs)
            .send()
            .await;
        let sub = token.claims().sub.clone().unwrap_or_default();
        let out = result.map_err(|e| {
            sdk_error(e, call, |code, message| {
                sts_refusal(code, message, &inner.role_arn, &sub, token.origin())
            })
        })?;
        let creds = out.credentials().ok_or_else(|| AuthError::Service {
            service: "AWS STS",
            message: "the answer holds no credentials".into(),
            source: None,
        })?;
        let expires_at =
            SystemTime::try_from(*creds.expiration()).map_err(|e| AuthError::Service {
                service: "AWS STS",
                message: "the credentials' expiration is not a valid time".into(),
                source: Some(Box::new(e)),
            })?;
        let credentials = Credentials::new(
            creds.access_key_id(),
            creds.secret_access_key(),
            Some(creds.session_token().to_owned()),
            Some(expires_at),
            "ferry-web-identity",
        );
        tracing::info!(
            role = %inner.role_arn,
            assumed = out.assumed_role_user().map(|u| u.arn()).unwrap_or_default(),
            expires_at = %rfc3339(expires_at),
            "assumed role with web identity"
        );
        Ok(Assumed {
            credentials,
            expires_at,
        })
    }
}

/// STS error codes of AssumeRoleWithWebIdentity, with what to fix.
fn sts_refusal(
    code: &str,
    message: &str,
    role_arn: &str,
    sub: &str,
    origin: &str,
) -> Option<AuthError> {
    let help = match code {
        "AccessDenied" => format!(
            "the role's trust policy does not allow this token (sub `{sub}`). Check role_arn \
             ({role_arn}), then compare `ferry auth check --env NAME` with `ferry auth \
             trust-policy --env NAME` and update the role's trust policy"
        ),
        "InvalidIdentityToken" => format!(
            "STS does not accept the token from {origin}: the account needs an IAM OIDC \
             identity provider for the token's issuer, with the token's audience in its client \
             ids"
        ),
        "ExpiredTokenException" | "ExpiredToken" => format!(
            "the token from {origin} expired before STS checked it: get a fresh token (re-run \
             the job, or check the clock of this machine)"
        ),
        "IDPRejectedClaim" => {
            "the identity provider rejected a claim of the token; check the OIDC provider's \
             configuration in IAM"
                .to_owned()
        }
        "IDPCommunicationError" => {
            "STS could not reach the token issuer to verify the token; retry later".to_owned()
        }
        "RegionDisabledException" => {
            "STS is not activated in this region for the account: activate it in IAM account \
             settings, or use another region"
                .to_owned()
        }
        "ValidationError" => format!(
            "STS refused the request's parameters: check role_arn ({role_arn}), session_name \
             and duration"
        ),
        _ => return None,
    };
    Some(AuthError::Rejected {
        service: "AWS STS",
        code: code.to_owned(),
        message: message.to_owned(),
        help,
    })
}

impl ProvideCredentials for WebIdentityCredentials {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(async move {
            self.load().await.map_err(|e| {
                if e.is_not_configured() {
                    CredentialsError::not_loaded(e)
                } else {
                    CredentialsError::provider_error(e)
                }
            })
        })
    }
}
