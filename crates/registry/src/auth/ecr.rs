//! Amazon ECR logins (feature `ecr`): `GetAuthorizationToken` returns base64 `AWS:<password>`,
//! valid for 12 hours, which is then HTTP Basic towards the registry.
//!
//! The caller builds the `aws_sdk_ecr::Client` from whatever AWS credentials it has (ferry-auth's
//! web-identity credentials in CI), so this module holds no credential logic of its own. The
//! login is cached per registry until five minutes before it expires. An `expiresAt` already in
//! the past (moto answers 2015) is used once and not cached, rather than refused.
//!
//! The `GetAuthorizationToken` call runs with tracing switched off: at trace level the SDK's
//! orchestrator logs every response body and the decoded output, and ECR's model does not mark
//! the authorization token as sensitive, so the SDK would print the registry password (base64
//! `AWS:<password>`) to any subscriber listening at trace. Its failures still come back as
//! errors, with the SDK's error as the source.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use base64::Engine as _;
use secrecy::SecretString;
use tracing::instrument::WithSubscriber as _;
use tracing::subscriber::NoSubscriber;

use super::{AuthError, Credential, RegistryAuth, canonical_registry};
use crate::clock::SharedClock;

const PROVIDER: &str = "ecr";
const REFRESH_BEFORE: Duration = Duration::from_secs(300);

/// ECR logins through `GetAuthorizationToken`.
pub struct EcrAuth {
    client: aws_sdk_ecr::Client,
    clock: SharedClock,
    extra_hosts: Vec<String>,
    cache: Mutex<HashMap<String, (String, SecretString, SystemTime)>>,
}

impl fmt::Debug for EcrAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EcrAuth")
            .field("extra_hosts", &self.extra_hosts)
            .finish_non_exhaustive()
    }
}

/// The account and region of an ECR registry host
/// (`123456789012.dkr.ecr.eu-west-1.amazonaws.com`, also `.amazonaws.com.cn` and FIPS hosts).
pub fn parse_ecr_host(host: &str) -> Option<(String, String)> {
    let host = host.split(':').next()?;
    let rest = host
        .strip_suffix(".amazonaws.com")
        .or_else(|| host.strip_suffix(".amazonaws.com.cn"))?;
    let (account, rest) = rest.split_once('.')?;
    let region = rest
        .strip_prefix("dkr.ecr.")
        .or_else(|| rest.strip_prefix("dkr.ecr-fips."))?;
    let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
    (account_ok && !region.is_empty() && !region.contains('.'))
        .then(|| (account.to_owned(), region.to_owned()))
}

impl EcrAuth {
    /// Logins for ECR hosts (`*.dkr.ecr.*.amazonaws.com`), from `client`.
    pub fn new(client: aws_sdk_ecr::Client, clock: SharedClock) -> Self {
        EcrAuth {
            client,
            clock,
            extra_hosts: Vec::new(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Logins with a client built from an AWS SDK config (`&aws_config::SdkConfig`, such as
    /// ferry-auth's `AwsAuth::sdk_config()`): its region, credentials and endpoint.
    pub fn from_sdk_config<C>(config: C, clock: SharedClock) -> Self
    where
        C: Into<aws_sdk_ecr::Config>,
    {
        EcrAuth::new(aws_sdk_ecr::Client::from_conf(config.into()), clock)
    }

    /// Also answer for `host` (an ECR registry behind another name: a pull-through proxy, a
    /// test registry), with the account the client's credentials belong to.
    #[must_use]
    pub fn with_host(mut self, host: &str) -> Self {
        self.extra_hosts.push(canonical_registry(host));
        self
    }

    async fn fetch(&self, registry: &str) -> Result<(String, SecretString, SystemTime), AuthError> {
        let fail = |message: String, source: Option<crate::error::BoxError>| {
            AuthError::failed(PROVIDER, registry, message, source)
        };
        // The token works for every registry the identity may use; only the region matters.
        let request = self.client.get_authorization_token();
        let output = match &parse_ecr_host(registry) {
            Some((_, region)) => {
                request
                    .customize()
                    .config_override(
                        aws_sdk_ecr::config::Builder::default()
                            .region(aws_sdk_ecr::config::Region::new(region.clone())),
                    )
                    .send()
                    .with_subscriber(NoSubscriber::default())
                    .await
            }
            None => {
                request
                    .send()
                    .with_subscriber(NoSubscriber::default())
                    .await
            }
        }
        .map_err(|e| fail("GetAuthorizationToken failed".into(), Some(Box::new(e))))?;
        let data = output.authorization_data().first().ok_or_else(|| {
            fail(
                "GetAuthorizationToken returned no authorization data".into(),
                None,
            )
        })?;
        let token = data
            .authorization_token()
            .ok_or_else(|| fail("GetAuthorizationToken returned no token".into(), None))?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(token)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| fail("the authorization token is not base64 text".into(), None))?;
        let (user, password) = decoded
            .split_once(':')
            .ok_or_else(|| fail("the authorization token is not USER:PASSWORD".into(), None))?;
        let expires = data
            .expires_at()
            .and_then(|t| {
                let secs = u64::try_from(t.secs()).ok()?;
                SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs))
            })
            .unwrap_or_else(|| self.clock.now() + Duration::from_secs(12 * 3600));
        Ok((
            user.to_owned(),
            SecretString::from(password.to_owned()),
            expires,
        ))
    }
}

#[async_trait]
impl RegistryAuth for EcrAuth {
    async fn credential(&self, registry: &str) -> Result<Credential, AuthError> {
        let registry = canonical_registry(registry);
        if parse_ecr_host(&registry).is_none() && !self.extra_hosts.contains(&registry) {
            return Err(AuthError::not_configured(&registry));
        }
        let now = self.clock.now();
        if let Some((user, password, expires)) =
            self.cache.lock().expect("cache lock").get(&registry)
            && now + REFRESH_BEFORE < *expires
        {
            return Ok(Credential::Basic {
                username: user.clone(),
                password: password.clone(),
            });
        }
        let (user, password, expires) = self.fetch(&registry).await?;
        if now + REFRESH_BEFORE < expires {
            self.cache
                .lock()
                .expect("cache lock")
                .insert(registry.clone(), (user.clone(), password.clone(), expires));
        } else {
            tracing::debug!(
                registry,
                "ECR login already expired by the local clock; using it once, uncached"
            );
        }
        tracing::debug!(registry, user, "ECR login obtained");
        Ok(Credential::Basic {
            username: user,
            password,
        })
    }

    fn invalidate(&self, registry: &str) {
        self.cache
            .lock()
            .expect("cache lock")
            .remove(&canonical_registry(registry));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecr_hosts_are_recognised() {
        assert_eq!(
            parse_ecr_host("123456789012.dkr.ecr.eu-west-1.amazonaws.com"),
            Some(("123456789012".into(), "eu-west-1".into()))
        );
        assert_eq!(
            parse_ecr_host("123456789012.dkr.ecr-fips.us-east-1.amazonaws.com"),
            Some(("123456789012".into(), "us-east-1".into()))
        );
        assert_eq!(
            parse_ecr_host("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"),
            Some(("123456789012".into(), "cn-north-1".into()))
        );
        assert_eq!(parse_ecr_host("ghcr.io"), None);
        assert_eq!(
            parse_ecr_host("12345.dkr.ecr.eu-west-1.amazonaws.com"),
            None
        );
    }
}
