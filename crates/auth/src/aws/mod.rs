//! AWS credentials (feature `aws`).
//!
//! Three ways to get them, in order of preference:
//! - [`WebIdentityCredentials`]: an OIDC token exchanged with STS `AssumeRoleWithWebIdentity`
//!   for temporary credentials, cached and refreshed before they expire;
//! - static keys ([`static_credentials`]), for machines outside any OIDC-capable platform;
//! - the standard AWS chain ([`standard_chain`], aws-config: environment, profile, SSO-less).
//!
//! Whichever is used, [`AwsAuth`] carries it with the region, an optional endpoint override
//! (moto, LocalStack, a VPC endpoint), the retry policy and the clock, and hands SDK clients an
//! [`SdkConfig`] — ECR, Route53 and EKS clients in other crates take that
//! and never see how the credentials were obtained. [`EksTokenSource`] mints EKS bearer tokens
//! from the same credentials.

mod eks_token;
pub(crate) mod web_identity;

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::{ProvideCredentials as _, error::CredentialsError};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use secrecy::{ExposeSecret as _, SecretString};

use crate::clock::SharedClock;
use crate::error::AuthError;
use crate::retry::RetryPolicy;

pub use aws_credential_types::Credentials;
pub use aws_credential_types::provider::SharedCredentialsProvider;
pub use eks_token::{
    EKS_TOKEN_LIFETIME, EKS_TOKEN_PREFIX, EksTokenSource, presign_eks_token, sts_host,
};
pub use web_identity::{WebIdentityBuilder, WebIdentityCredentials};

/// Hands ferry's injected clock to the AWS SDK (request signing, clock-skew handling).
#[derive(Debug)]
struct ClockTimeSource(SharedClock);

impl aws_smithy_async::time::TimeSource for ClockTimeSource {
    fn now(&self) -> SystemTime {
        self.0.now()
    }
}

/// The SDK's retry settings for a [`RetryPolicy`]: standard mode (throttling and 5xx answers,
/// connection failures and timeouts are retried, with jittered exponential backoff).
fn retry_config(policy: &RetryPolicy) -> aws_smithy_types::retry::RetryConfig {
    aws_smithy_types::retry::RetryConfig::standard()
        .with_max_attempts(policy.attempts())
        .with_initial_backoff(policy.initial_backoff)
        .with_max_backoff(policy.max_backoff)
}

/// The SDK's time limits: like ferry's own HTTP clients (see
/// [`AuthContext::new`](crate::config::AuthContext::new)), 10 s to connect and 30 s for each
/// attempt, so an endpoint that accepts a connection and never answers ends in a (retried)
/// timeout rather than a hang; the SDK sets only a connect timeout by default.
fn timeout_config() -> aws_smithy_types::timeout::TimeoutConfig {
    aws_smithy_types::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .operation_attempt_timeout(std::time::Duration::from_secs(30))
        .build()
}

/// Every SDK config ferry builds: region, endpoint override, retries, time limits, clock, and the
/// credentials (none for STS web identity, which is unsigned).
fn build_sdk_config(
    region: &str,
    endpoint_url: Option<&str>,
    retry: &RetryPolicy,
    clock: &SharedClock,
    credentials: Option<SharedCredentialsProvider>,
) -> SdkConfig {
    let mut builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .retry_config(retry_config(retry))
        .timeout_config(timeout_config())
        .time_source(aws_smithy_async::time::SharedTimeSource::new(
            ClockTimeSource(Arc::clone(clock)),
        ))
        .sleep_impl(aws_smithy_async::rt::sleep::SharedAsyncSleep::new(
            aws_smithy_async::rt::sleep::TokioSleep::new(),
        ));
    if let Some(url) = endpoint_url {
        builder = builder.endpoint_url(url);
    }
    builder.set_credentials_provider(credentials);
    builder.build()
}

/// Static keys: an access key id, its secret and, for temporary keys, a session token.
pub fn static_credentials(
    access_key_id: &str,
    secret_access_key: &SecretString,
    session_token: Option<&SecretString>,
    expires_at: Option<SystemTime>,
) -> SharedCredentialsProvider {
    SharedCredentialsProvider::new(Credentials::new(
        access_key_id,
        secret_access_key.expose_secret(),
        session_token.map(|t| t.expose_secret().to_owned()),
        expires_at,
        "ferry-static",
    ))
}

/// The standard AWS credential chain of aws-config (environment variables, the shared config
/// and credentials files with `profile`, container and instance metadata). It reads the
/// process environment and `~/.aws` itself — that is its purpose; ferry's own code does not.
/// The chain is built on first use, so building an [`AwsAuth`] stays synchronous.
pub fn standard_chain(region: &str, profile: Option<&str>) -> SharedCredentialsProvider {
    SharedCredentialsProvider::new(LazyStandardChain {
        region: region.to_owned(),
        profile: profile.map(str::to_owned),
        chain: tokio::sync::OnceCell::new(),
    })
}

#[derive(Debug)]
struct LazyStandardChain {
    region: String,
    profile: Option<String>,
    chain:
        tokio::sync::OnceCell<aws_config::default_provider::credentials::DefaultCredentialsChain>,
}

impl aws_credential_types::provider::ProvideCredentials for LazyStandardChain {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        aws_credential_types::provider::future::ProvideCredentials::new(async move {
            let chain = self
                .chain
                .get_or_init(|| async {
                    let mut builder =
                        aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
                            .region(Region::new(self.region.clone()));
                    if let Some(profile) = &self.profile {
                        builder = builder.profile_name(profile);
                    }
                    builder.build().await
                })
                .await;
            chain.provide_credentials().await
        })
    }
}

#[derive(Debug, Clone)]
enum Method {
    WebIdentity(WebIdentityCredentials),
    Provider {
        provider: SharedCredentialsProvider,
        name: Cow<'static, str>,
    },
}

/// AWS credentials plus everything an SDK client needs to use them: region, endpoint override,
/// retries, clock.
#[derive(Clone)]
pub struct AwsAuth {
    method: Method,
    region: String,
    endpoint_url: Option<String>,
    retry: RetryPolicy,
    clock: SharedClock,
}

impl fmt::Debug for AwsAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsAuth")
            .field("method", &self.describe())
            .field("region", &self.region)
            .field("endpoint_url", &self.endpoint_url)
            .finish()
    }
}

/// Who the credentials belong to, as STS `GetCallerIdentity` says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CallerIdentity {
    /// The 12-digit account.
    pub account: String,
    /// The principal's ARN (`arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`).
    pub arn: String,
    /// The principal's unique id.
    pub user_id: String,
}

impl AwsAuth {
    /// Credentials from STS web identity.
    pub fn web_identity(
        credentials: WebIdentityCredentials,
        region: &str,
        clock: SharedClock,
    ) -> Self {
        AwsAuth {
            endpoint_url: credentials.endpoint_url().map(str::to_owned),
            retry: credentials.retry(),
            method: Method::WebIdentity(credentials),
            region: region.to_owned(),
            clock,
        }
    }

    /// Credentials from any provider (static keys, the standard chain); `name` says which.
    pub fn from_provider(
        provider: SharedCredentialsProvider,
        name: impl Into<Cow<'static, str>>,
        region: &str,
        clock: SharedClock,
    ) -> Self {
        AwsAuth {
            method: Method::Provider {
                provider,
                name: name.into(),
            },
            region: region.to_owned(),
            endpoint_url: None,
            retry: RetryPolicy::default(),
            clock,
        }
    }

    /// Sends every SDK request to `url` instead of the public AWS endpoints.
    #[must_use]
    pub fn with_endpoint_url(mut self, url: Option<String>) -> Self {
        self.endpoint_url = url;
        self
    }

    /// Retries for SDK calls.
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The region.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The endpoint override, if any.
    pub fn endpoint_url(&self) -> Option<&str> {
        self.endpoint_url.as_deref()
    }

    /// The retry policy.
    pub fn retry(&self) -> RetryPolicy {
        self.retry
    }

    /// The clock.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// "STS web identity for arn:aws:iam::...:role/deploy", "static keys", ...
    pub fn describe(&self) -> String {
        match &self.method {
            Method::WebIdentity(w) => format!("STS web identity for {}", w.role_arn()),
            Method::Provider { name, .. } => name.to_string(),
        }
    }

    /// The credentials as an SDK provider.
    pub fn credentials_provider(&self) -> SharedCredentialsProvider {
        match &self.method {
            Method::WebIdentity(w) => SharedCredentialsProvider::new(w.clone()),
            Method::Provider { provider, .. } => provider.clone(),
        }
    }

    /// An SDK config for any AWS service client: region, credentials, endpoint override,
    /// retries, clock.
    pub fn sdk_config(&self) -> SdkConfig {
        build_sdk_config(
            &self.region,
            self.endpoint_url.as_deref(),
            &self.retry,
            &self.clock,
            Some(self.credentials_provider()),
        )
    }

    /// The current credentials (cached and refreshed by the provider), with ferry's error
    /// when they cannot be had.
    pub async fn credentials(&self) -> Result<Credentials, AuthError> {
        match &self.method {
            Method::WebIdentity(w) => w.load().await,
            Method::Provider { provider, name } => provider
                .provide_credentials()
                .await
                .map_err(|e| credentials_error(e, name)),
        }
    }

    /// STS `GetCallerIdentity`: which principal the credentials are.
    pub async fn caller_identity(&self) -> Result<CallerIdentity, AuthError> {
        // Resolve first, so a credentials problem surfaces as itself, not as an STS error.
        self.credentials().await?;
        let sts = aws_sdk_sts::Client::new(&self.sdk_config());
        let out = sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| self.sdk_error(e, "AWS STS", "sts", |_, _| None))?;
        Ok(CallerIdentity {
            account: out.account().unwrap_or_default().to_owned(),
            arn: out.arn().unwrap_or_default().to_owned(),
            user_id: out.user_id().unwrap_or_default().to_owned(),
        })
    }

    /// A source of EKS bearer tokens for `cluster`, minted from these credentials.
    pub fn eks_token_source(&self, cluster: &str) -> EksTokenSource {
        EksTokenSource::new(self.clone(), cluster)
    }

    /// The endpoint a service is reached at, for messages.
    pub fn endpoint_for(&self, service_prefix: &str) -> String {
        self.endpoint_url.clone().unwrap_or_else(|| {
            format!(
                "https://{service_prefix}.{}.{}",
                self.region,
                dns_suffix(&self.region)
            )
        })
    }

    /// Turns an SDK error into ferry's: throttling that outlasted the retries, unreachable
    /// endpoints, refusals with their code. `specific` maps service error codes the caller
    /// knows better (`ResourceNotFoundException` for EKS) and returns `None` for the rest.
    pub fn sdk_error<E, R>(
        &self,
        err: SdkError<E, R>,
        service: &'static str,
        service_prefix: &str,
        specific: impl Fn(&str, &str) -> Option<AuthError>,
    ) -> AuthError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: fmt::Debug + Send + Sync + 'static,
    {
        sdk_error(
            err,
            SdkCall {
                service,
                endpoint: self.endpoint_for(service_prefix),
                region: &self.region,
                attempts: self.retry.attempts(),
            },
            specific,
        )
    }
}

/// The DNS suffix of AWS endpoints in a region's partition.
fn dns_suffix(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    }
}

/// Where an SDK call went, for error messages.
pub(crate) struct SdkCall<'a> {
    pub service: &'static str,
    pub endpoint: String,
    pub region: &'a str,
    pub attempts: u32,
}

const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "LimitExceededException",
];

pub(crate) fn sdk_error<E, R>(
    err: SdkError<E, R>,
    call: SdkCall<'_>,
    specific: impl Fn(&str, &str) -> Option<AuthError>,
) -> AuthError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: fmt::Debug + Send + Sync + 'static,
{
    let SdkCall {
        service,
        endpoint,
        region,
        attempts,
    } = call;
    match err {
        SdkError::ServiceError(ref se) => {
            let code = se.err().code().unwrap_or("Unknown").to_owned();
            let message = se.err().message().unwrap_or("").to_owned();
            if let Some(mapped) = specific(&code, &message) {
                return mapped;
            }
            if THROTTLING_CODES.contains(&code.as_str()) {
                return AuthError::Throttled {
                    service,
                    attempts,
                    help: format!(
                        "{service} throttled every attempt ({code}); wait a minute and retry, \
                         or lower the number of concurrent jobs using this account"
                    ),
                };
            }
            if code == "AccessDenied" || code == "AccessDeniedException" {
                return AuthError::Rejected {
                    service,
                    code,
                    message,
                    help: "the credentials are valid but not allowed to do this: check the \
                           role's permissions policy"
                        .to_owned(),
                };
            }
            AuthError::Rejected {
                service,
                code,
                message,
                help: format!("see the {service} documentation for this error code"),
            }
        }
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => AuthError::Unreachable {
            service,
            endpoint,
            attempts,
            help: format!(
                "check the network, the endpoint override and the region (`{region}` — is it a \
                 real AWS region?)"
            ),
            source: Box::new(err),
        },
        other => {
            if let Some(found) = AuthError::find_in(&other) {
                // A credentials failure inside the SDK: say it as ferry's error.
                return AuthError::Service {
                    service,
                    message: format!("could not get credentials: {found}"),
                    source: Some(Box::new(other)),
                };
            }
            AuthError::Service {
                service,
                message: "the request failed".to_owned(),
                source: Some(Box::new(other)),
            }
        }
    }
}

fn credentials_error(err: CredentialsError, name: &str) -> AuthError {
    match err {
        CredentialsError::CredentialsNotLoaded(_) => AuthError::NotConfigured {
            what: format!("AWS credentials ({name})"),
            help: "set role_arn in [env.NAME.auth.aws] to use GitHub OIDC, or provide keys \
                   (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) or a profile"
                .to_owned(),
        },
        other => AuthError::Service {
            service: "AWS credentials",
            message: format!("{name} failed"),
            source: Some(Box::new(other)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{ManualClock, from_unix};

    #[tokio::test]
    async fn static_credentials_flow_through_and_debug_hides_them() {
        let clock: SharedClock = Arc::new(ManualClock::new(from_unix(1_800_000_000)));
        let secret = SecretString::from("wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzSECRET");
        let auth = AwsAuth::from_provider(
            static_credentials("AKIDEXAMPLE", &secret, None, None),
            "static keys",
            "eu-west-1",
            clock,
        );
        let creds = auth.credentials().await.unwrap();
        assert_eq!(creds.access_key_id(), "AKIDEXAMPLE");
        assert!(!format!("{auth:?}").contains("SECRET"));
        assert!(!format!("{creds:?}").contains("SECRET"));
        assert_eq!(
            auth.endpoint_for("eks"),
            "https://eks.eu-west-1.amazonaws.com"
        );
        assert_eq!(auth.sdk_config().region().unwrap().as_ref(), "eu-west-1");
    }

    #[test]
    fn china_regions_use_their_suffix() {
        assert_eq!(dns_suffix("cn-north-1"), "amazonaws.com.cn");
        assert_eq!(dns_suffix("us-gov-west-1"), "amazonaws.com");
    }
}
