//! Where registry credentials come from.
//!
//! A [`RegistryAuth`] answers one question: "what credential do I present to this registry?"
//! The answer is a [`Credential`] — anonymous, a user name and password, an identity (refresh)
//! token, or a ready bearer token. What to *do* with it (HTTP Basic, or the Bearer token realm
//! flow with a token per scope) is decided by the [`Client`](crate::Client) from the registry's
//! `WWW-Authenticate` challenge, so every source works with every registry.
//!
//! Implementations: [`Anonymous`], [`BasicAuth`] (a user name and password for one registry),
//! [`DockerConfigAuth`] (`config.json`: `credHelpers`, `credsStore`, `auths`, through
//! `docker-credential-*` helpers), [`DockerHubAuth`], `EcrAuth` (feature `ecr`) and `AcrAuth`
//! (feature `acr`). [`AuthChain`] tries several in order and moves on only when one is
//! [`AuthError::NotConfigured`] for the registry.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use secrecy::SecretString;

use crate::error::BoxError;
use crate::reference::DOCKER_HUB;

#[cfg(feature = "acr")]
pub mod acr;
pub mod docker_config;
mod dockerhub;
#[cfg(feature = "ecr")]
pub mod ecr;

pub use docker_config::DockerConfigAuth;
pub use dockerhub::DockerHubAuth;

/// What to present to a registry.
#[derive(Clone)]
#[non_exhaustive]
pub enum Credential {
    /// Nothing: public access, or a token realm's anonymous token.
    Anonymous,
    /// A user name and password (or access token used as one: Docker Hub PATs, ECR's
    /// `AWS:<token>`).
    Basic {
        /// The user name.
        username: String,
        /// The password or token.
        password: SecretString,
    },
    /// An OAuth2 refresh token for the registry's token realm (docker config `identitytoken`,
    /// ACR's exchanged refresh token).
    IdentityToken(SecretString),
    /// A bearer token to send as-is (docker config `registrytoken`).
    BearerToken(SecretString),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Anonymous => f.write_str("Anonymous"),
            Credential::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"[redacted]")
                .finish(),
            Credential::IdentityToken(_) => f.write_str("IdentityToken([redacted])"),
            Credential::BearerToken(_) => f.write_str("BearerToken([redacted])"),
        }
    }
}

impl Credential {
    /// A user name and password.
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credential::Basic {
            username: username.into(),
            password: SecretString::from(password.into()),
        }
    }

    /// A short description that never includes the secret (for logs).
    pub fn describe(&self) -> String {
        match self {
            Credential::Anonymous => "anonymous".to_owned(),
            Credential::Basic { username, .. } => format!("user {username}"),
            Credential::IdentityToken(_) => "identity token".to_owned(),
            Credential::BearerToken(_) => "bearer token".to_owned(),
        }
    }
}

/// Getting a credential failed, or there is none for this registry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// This source has nothing for the registry: a chain moves on to the next source.
    #[error("no credentials configured for {registry}")]
    NotConfigured {
        /// The registry.
        registry: String,
    },
    /// This source is meant to answer for the registry, and failed.
    #[error("{provider}: cannot get credentials for {registry}: {message}")]
    Failed {
        /// Which source (`docker config`, `ecr`, `acr`, ...).
        provider: &'static str,
        /// The registry.
        registry: String,
        /// What went wrong (never a secret).
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// A credentials file (Docker's config.json) that cannot be read as one: bad input, not a
    /// refused login.
    #[error("{path}: {message}")]
    BadFile {
        /// The file.
        path: String,
        /// What is wrong with it (never its content).
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
}

impl AuthError {
    /// Whether this is [`AuthError::NotConfigured`].
    pub fn is_not_configured(&self) -> bool {
        matches!(self, AuthError::NotConfigured { .. })
    }

    pub(crate) fn not_configured(registry: &str) -> Self {
        AuthError::NotConfigured {
            registry: registry.to_owned(),
        }
    }

    pub(crate) fn failed(
        provider: &'static str,
        registry: &str,
        message: impl Into<String>,
        source: Option<BoxError>,
    ) -> Self {
        AuthError::Failed {
            provider,
            registry: registry.to_owned(),
            message: message.into(),
            source,
        }
    }
}

/// A source of registry credentials. `registry` is the registry as written in references
/// (`docker.io`, `ghcr.io`, `127.0.0.1:5000`, `1234.dkr.ecr.eu-west-1.amazonaws.com`).
#[async_trait]
pub trait RegistryAuth: Send + Sync + fmt::Debug {
    /// The credential to present to `registry`.
    async fn credential(&self, registry: &str) -> Result<Credential, AuthError>;

    /// The registry rejected the credential this source gave: drop anything cached for it so
    /// the next call fetches a fresh one (ECR and ACR logins expire).
    fn invalidate(&self, registry: &str) {
        let _ = registry;
    }
}

/// A shared, dynamically chosen credential source.
pub type SharedAuth = Arc<dyn RegistryAuth>;

/// No credentials: every registry gets [`Credential::Anonymous`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Anonymous;

#[async_trait]
impl RegistryAuth for Anonymous {
    async fn credential(&self, _registry: &str) -> Result<Credential, AuthError> {
        Ok(Credential::Anonymous)
    }
}

/// A fixed credential for one registry (a user name and password from flags or the
/// environment); [`AuthError::NotConfigured`] for every other registry.
#[derive(Clone)]
pub struct BasicAuth {
    registry: String,
    credential: Credential,
}

impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicAuth")
            .field("registry", &self.registry)
            .field("credential", &self.credential)
            .finish()
    }
}

impl BasicAuth {
    /// `username`/`password` for `registry`.
    pub fn new(registry: &str, username: impl Into<String>, password: SecretString) -> Self {
        BasicAuth {
            registry: canonical_registry(registry),
            credential: Credential::Basic {
                username: username.into(),
                password,
            },
        }
    }

    /// Any credential for `registry`.
    pub fn with_credential(registry: &str, credential: Credential) -> Self {
        BasicAuth {
            registry: canonical_registry(registry),
            credential,
        }
    }
}

#[async_trait]
impl RegistryAuth for BasicAuth {
    async fn credential(&self, registry: &str) -> Result<Credential, AuthError> {
        if canonical_registry(registry) == self.registry {
            Ok(self.credential.clone())
        } else {
            Err(AuthError::not_configured(registry))
        }
    }
}

/// Several sources, tried in order. A source that is [`AuthError::NotConfigured`] for the
/// registry passes to the next; the first answer or real failure ends the search. When every
/// source passes, the result is `NotConfigured` (the client then goes anonymous).
#[derive(Debug, Clone, Default)]
pub struct AuthChain {
    sources: Vec<SharedAuth>,
}

impl AuthChain {
    /// A chain starting with `first`.
    pub fn first_try(first: impl RegistryAuth + 'static) -> Self {
        AuthChain {
            sources: vec![Arc::new(first)],
        }
    }

    /// Adds `next` after the sources so far.
    #[must_use]
    pub fn or_else(mut self, next: impl RegistryAuth + 'static) -> Self {
        self.sources.push(Arc::new(next));
        self
    }

    /// Adds an already shared source.
    #[must_use]
    pub fn or_else_shared(mut self, next: SharedAuth) -> Self {
        self.sources.push(next);
        self
    }
}

#[async_trait]
impl RegistryAuth for AuthChain {
    async fn credential(&self, registry: &str) -> Result<Credential, AuthError> {
        for source in &self.sources {
            match source.credential(registry).await {
                Err(e) if e.is_not_configured() => continue,
                other => return other,
            }
        }
        Err(AuthError::not_configured(registry))
    }

    fn invalidate(&self, registry: &str) {
        for source in &self.sources {
            source.invalidate(registry);
        }
    }
}

/// The registry name Docker uses for lookups: Docker Hub's aliases collapse to `docker.io`, and
/// URLs (`https://host/v1/`) lose their scheme and path.
pub fn canonical_registry(name: &str) -> String {
    let host = name
        .strip_prefix("https://")
        .or_else(|| name.strip_prefix("http://"))
        .unwrap_or(name);
    let host = host.split('/').next().unwrap_or(host);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DOCKER_HUB.to_owned()
        }
        other => other.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret as _;

    #[tokio::test]
    async fn chain_moves_on_only_when_not_configured() {
        let chain = AuthChain::first_try(BasicAuth::new(
            "a.example",
            "alice",
            SecretString::from("pw-a"),
        ))
        .or_else(Anonymous);
        match chain.credential("a.example").await.unwrap() {
            Credential::Basic { username, password } => {
                assert_eq!(username, "alice");
                assert_eq!(password.expose_secret(), "pw-a");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            chain.credential("b.example").await.unwrap(),
            Credential::Anonymous
        ));
        let only = AuthChain::first_try(BasicAuth::new("a.example", "u", "p".into()));
        assert!(
            only.credential("b.example")
                .await
                .unwrap_err()
                .is_not_configured()
        );
    }

    #[test]
    fn debug_never_shows_secrets() {
        let auth = BasicAuth::new("h", "user", SecretString::from("s3cr3t-value"));
        let shown = format!(
            "{auth:?} {:?}",
            Credential::IdentityToken("tok-value".into())
        );
        assert!(
            !shown.contains("s3cr3t-value") && !shown.contains("tok-value"),
            "{shown}"
        );
        assert!(shown.contains("user"));
    }

    /// The conformance suite every `RegistryAuth` passes: a registry it does not serve is
    /// `NotConfigured` (so chains move on), and its `Debug` never shows a secret.
    async fn conformance(auth: &dyn RegistryAuth, secret: &str) {
        let shown = format!("{auth:?}");
        assert!(!shown.contains(secret), "Debug shows the secret: {shown}");
        let err = auth.credential("unrelated.example:5000").await.unwrap_err();
        assert!(err.is_not_configured(), "{auth:?}: {err}");
        assert!(!err.to_string().contains(secret));
        auth.invalidate("unrelated.example:5000");
    }

    #[tokio::test]
    async fn every_source_passes_the_conformance_suite() {
        let secret = "conformance-secret-value";
        conformance(
            &BasicAuth::new("a.example", "u", SecretString::from(secret)),
            secret,
        )
        .await;
        conformance(&DockerHubAuth::new("u", SecretString::from(secret)), secret).await;
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.json");
        std::fs::write(
            &config,
            format!(r#"{{"auths": {{"a.example": {{"username": "u", "password": "{secret}"}}}}}}"#),
        )
        .unwrap();
        let docker = DockerConfigAuth::load(&config, Default::default()).unwrap();
        conformance(&docker, secret).await;
        conformance(&AuthChain::first_try(docker), secret).await;
        #[cfg(feature = "ecr")]
        {
            let conf = aws_sdk_ecr::Config::builder()
                .behavior_version(aws_sdk_ecr::config::BehaviorVersion::latest())
                .region(aws_sdk_ecr::config::Region::new("us-east-1"))
                .build();
            let clock = Arc::new(crate::clock::FixedClock(std::time::UNIX_EPOCH));
            let ecr = ecr::EcrAuth::new(aws_sdk_ecr::Client::from_conf(conf), clock);
            conformance(&ecr, secret).await;
        }
        #[cfg(feature = "acr")]
        {
            let aad = Arc::new(acr::StaticAadToken(SecretString::from(secret)));
            conformance(&acr::AcrAuth::new(reqwest::Client::new(), aad), secret).await;
        }
        // Anonymous serves every registry.
        assert!(matches!(
            Anonymous.credential("unrelated.example").await.unwrap(),
            Credential::Anonymous
        ));
    }

    #[test]
    fn docker_hub_aliases_collapse() {
        for alias in [
            "https://index.docker.io/v1/",
            "index.docker.io",
            "registry-1.docker.io",
            "docker.io",
        ] {
            assert_eq!(canonical_registry(alias), "docker.io");
        }
        assert_eq!(canonical_registry("https://ghcr.io"), "ghcr.io");
        assert_eq!(canonical_registry("127.0.0.1:5000"), "127.0.0.1:5000");
    }
}
