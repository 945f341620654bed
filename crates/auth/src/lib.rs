//! Short-lived identity for ferry: CI proves who it is with an OIDC token, and gets temporary
//! cloud credentials and cluster tokens for it — no long-lived key is stored anywhere.
//!
//! # How the pieces fit
//!
//! ```text
//! OidcTokenSource ──► AWS: WebIdentityCredentials (STS) ──► AwsAuth ──► SdkConfig for ECR, Route53, EKS
//!  (GitHub Actions,                                              └──► EksTokenSource ─┐
//!   token file,    ──► Azure: AzureAdCredential (AAD) ──► ARM, ACR, Azure DNS tokens   ├─► BearerAuthLayer
//!   static)                                       └──► AzureBearer (AKS server app) ──┘   (kube::Client)
//! ```
//!
//! - [`oidc`]: the [`OidcTokenSource`](oidc::OidcTokenSource) trait — a deliberately tiny trait,
//!   as smithy-rs's `ProvideCredentials` is — and its implementations: GitHub Actions' token
//!   endpoint, a token file, a static token. [`TokenChain`](oidc::TokenChain) picks the first
//!   source that is configured, moving on only on [`AuthError::NotConfigured`].
//! - [`aws`] (feature `aws`): STS `AssumeRoleWithWebIdentity` through aws-sdk-sts, with
//!   retries, a cache and refresh before expiry, exposed as an SDK `ProvideCredentials` so every
//!   AWS client in ferry uses it unchanged; static keys; aws-config's standard chain; EKS bearer
//!   tokens presigned in-process with aws-sigv4 (no `aws` CLI).
//! - [`azure`] (feature `azure`): Azure AD tokens for any scope from a federated client
//!   assertion (the OIDC token) or a client secret, cached per scope.
//! - [`bearer`]: cluster tokens with their expiry, a refresh-ahead cache, and a tower layer that
//!   puts a fresh token on every Kubernetes API request (no kubelogin, no exec plugin).
//! - [`trust`]: the IAM trust policy and Azure federated credential that allow exactly one
//!   repository and branch (or GitHub environment), and a check of a token's claims against it.
//! - [`config`]: the `[env.NAME.auth]` section of `ferry.toml` and its resolution.
//!
//! Nothing here reads the process environment or the wall clock: an [`Env`](env::Env) and a
//! [`Clock`](clock::Clock) are handed in, so tests run with literal variables and a clock they
//! move. Tokens, keys and secrets are [`secrecy::SecretString`]s; every type that holds one has
//! a redacting `Debug`, and no error message contains one.
//!
//! # Example
//!
//! ```no_run
//! # async fn run() -> Result<(), ferry_auth::AuthError> {
//! use std::sync::Arc;
//! use ferry_auth::{clock::ManualClock, env::Env, oidc::{OidcTokenSource as _, TokenChain, GitHubActions, TokenFile}};
//!
//! let env = Env::from_pairs([("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/secrets/token")]);
//! let http = reqwest::Client::new();
//! let tokens = TokenChain::first_try(GitHubActions::from_env(&env, http))
//!     .or_else(TokenFile::from_env_var(&env, "AWS_WEB_IDENTITY_TOKEN_FILE"));
//! let token = tokens.token("sts.amazonaws.com").await?;
//! println!("subject: {:?}", token.claims().sub);
//! # Ok(()) }
//! ```

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "azure")]
pub mod azure;
pub mod bearer;
pub mod clock;
pub mod config;
pub mod env;
pub mod error;
pub mod oidc;
pub mod retry;
pub mod trust;

pub use error::{AuthError, ErrorKind};
