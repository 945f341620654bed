//! `[env.NAME.auth]` in `ferry.toml`: serde data, and its resolution into token sources and
//! credentials.
//!
//! ```toml
//! [env.prod.auth]
//! oidc = { source = "auto" }            # auto | github | file | env
//!
//! [env.prod.auth.github]                 # who may deploy (trust-policy, check)
//! repository = "octo/shop"
//! branch = "main"                        # or: environment = "production"
//!
//! [env.prod.auth.aws]
//! role_arn = "arn:aws:iam::123456789012:role/ferry-deploy"
//! region = "eu-west-1"
//! duration = "1h"
//!
//! [env.prod.auth.azure]
//! tenant_id = "..."
//! client_id = "..."
//! ```
//!
//! Settings the file leaves out fall back to the variables the clouds' own tooling uses
//! (`AWS_ROLE_ARN`, `AWS_REGION`, `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, ...), read from the
//! injected [`Env`]; the file wins when both are present, so one `ferry.toml` with several
//! environments behaves the same on every runner. Secrets are never in the file: static keys
//! and client secrets are read from variables the file names.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::SharedClock;
use crate::env::Env;
use crate::error::AuthError;
use crate::oidc::{GitHubActions, SharedOidcTokenSource, StaticToken, TokenChain, TokenFile};
#[cfg(any(feature = "aws", feature = "azure"))]
use crate::retry::RetryPolicy;
use crate::trust::GitHubTrust;

/// `[env.NAME.auth]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Where the OIDC token comes from.
    #[serde(default)]
    pub oidc: OidcConfig,
    /// Who may deploy: the repository and branch or GitHub environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github: Option<GitHubConfig>,
    /// AWS credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsConfig>,
    /// Azure AD credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure: Option<AzureConfig>,
}

/// `[env.NAME.auth.oidc]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// Which source.
    #[serde(default)]
    pub source: OidcSourceKind,
    /// The token file, for `source = "file"` (default: the cloud's variable,
    /// `AWS_WEB_IDENTITY_TOKEN_FILE` or `AZURE_FEDERATED_TOKEN_FILE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// The variable holding the token, for `source = "env"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
}

/// Where the OIDC token comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OidcSourceKind {
    /// GitHub Actions when available, else the cloud's token-file variable.
    #[default]
    Auto,
    /// GitHub Actions only.
    Github,
    /// A token file only.
    File,
    /// A variable holding the token.
    Env,
}

/// `[env.NAME.auth.github]`: the repository and the branch or GitHub environment allowed to
/// deploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitHubConfig {
    /// `owner/repo`.
    pub repository: String,
    /// The branch (`main`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// The GitHub environment (`production`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The token issuer, for GitHub Enterprise Server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
}

/// How AWS credentials are obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AwsCredentialsKind {
    /// STS AssumeRoleWithWebIdentity with the OIDC token (the default when a role is set).
    WebIdentity,
    /// Keys from variables (`access_key_id_env`, ...).
    Static,
    /// aws-config's standard chain: environment, profile, container/instance metadata (the
    /// default when no role is set).
    Chain,
}

/// `[env.NAME.auth.aws]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsConfig {
    /// How credentials are obtained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<AwsCredentialsKind>,
    /// The role to assume (fallback: `AWS_ROLE_ARN`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// The role session name (fallback: `AWS_ROLE_SESSION_NAME`, then `ferry-RUNID-ATTEMPT` in
    /// GitHub Actions, else `ferry`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_name: Option<String>,
    /// The session length, e.g. `"1h"` (15m to 12h; default 1h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// The OIDC audience (default `sts.amazonaws.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// The region (fallback: the cluster's region, `AWS_REGION`, `AWS_DEFAULT_REGION`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Send every AWS request here (moto, LocalStack, VPC endpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    /// The profile, for `credentials = "chain"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The variable holding the access key id, for `credentials = "static"`
    /// (default `AWS_ACCESS_KEY_ID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id_env: Option<String>,
    /// The variable holding the secret access key (default `AWS_SECRET_ACCESS_KEY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key_env: Option<String>,
    /// The variable holding the session token, if any (default `AWS_SESSION_TOKEN`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token_env: Option<String>,
    /// Attempts per request, the first included (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
}

/// How the Azure AD app authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AzureCredentialsKind {
    /// A federated client assertion: the OIDC token (default).
    Federated,
    /// A client secret from a variable.
    Secret,
}

/// `[env.NAME.auth.azure]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzureConfig {
    /// The directory (tenant) id (fallback: `AZURE_TENANT_ID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// The application (client) id (fallback: `AZURE_CLIENT_ID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// How the app authenticates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<AzureCredentialsKind>,
    /// The variable holding the client secret (default `AZURE_CLIENT_SECRET`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_env: Option<String>,
    /// The authority (fallback: `AZURE_AUTHORITY_HOST`, then
    /// `https://login.microsoftonline.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
    /// The OIDC audience (default `api://AzureADTokenExchange`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// Attempts per request, the first included (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
}

/// Who a token is for: picks the token-file variable of `source = "auto"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    /// For AWS (`AWS_WEB_IDENTITY_TOKEN_FILE`).
    Aws,
    /// For Azure (`AZURE_FEDERATED_TOKEN_FILE`).
    Azure,
    /// For showing (either file).
    Any,
}

/// What resolving a config needs from the outside: the environment, the clock, an HTTP
/// client.
#[derive(Debug, Clone)]
pub struct AuthContext {
    /// The environment variables.
    pub env: Env,
    /// The clock.
    pub clock: SharedClock,
    /// The HTTP client for GitHub and Azure AD.
    pub http: reqwest::Client,
}

impl AuthContext {
    /// A context with a default HTTP client (rustls, ferry's user agent, 30 s timeout).
    pub fn new(env: Env, clock: SharedClock) -> Self {
        let http = reqwest::Client::builder()
            .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        AuthContext { env, clock, http }
    }
}

/// The first of `problems`, which the `*_checked` functions never leave empty.
#[cfg(any(feature = "aws", feature = "azure"))]
fn first_problem(problems: Vec<AuthError>) -> AuthError {
    problems
        .into_iter()
        .next()
        .unwrap_or_else(|| AuthError::InvalidConfig {
            key: "auth".into(),
            message: "the settings are invalid".into(),
            help: "run `ferry validate` to list the problems".into(),
        })
}

#[cfg(any(feature = "aws", feature = "azure"))]
fn retry_for(max_attempts: Option<u32>) -> RetryPolicy {
    let mut retry = RetryPolicy::default();
    if let Some(n) = max_attempts {
        retry.max_attempts = n.max(1);
    }
    retry
}

impl AuthConfig {
    /// Makes a relative `oidc.file` relative to `base`, the directory of the file this config
    /// was read from (as every path in `ferry.toml` is), not to the working directory: kubectl
    /// runs `ferry auth token` as its exec plugin from wherever kubectl itself runs.
    pub fn relative_to(&mut self, base: &Path) {
        if let Some(file) = &self.oidc.file
            && file.is_relative()
        {
            self.oidc.file = Some(base.join(file));
        }
    }

    /// The OIDC token source this config describes, for `purpose`.
    pub fn oidc_source(&self, ctx: &AuthContext, purpose: TokenPurpose) -> SharedOidcTokenSource {
        let env = &ctx.env;
        let file_vars: &[&str] = match purpose {
            TokenPurpose::Aws => &["AWS_WEB_IDENTITY_TOKEN_FILE"],
            TokenPurpose::Azure => &["AZURE_FEDERATED_TOKEN_FILE"],
            TokenPurpose::Any => &["AWS_WEB_IDENTITY_TOKEN_FILE", "AZURE_FEDERATED_TOKEN_FILE"],
        };
        let github = || GitHubActions::from_env(env, ctx.http.clone());
        let files = |chain: TokenChain| {
            file_vars.iter().fold(chain, |chain, var| {
                chain.or_else(TokenFile::from_env_var(env, var))
            })
        };
        match self.oidc.source {
            OidcSourceKind::Auto => {
                let chain = match &self.oidc.file {
                    Some(path) => TokenChain::first_try(github()).or_else(TokenFile::new(path)),
                    None => files(TokenChain::first_try(github())),
                };
                Arc::new(chain)
            }
            OidcSourceKind::Github => Arc::new(github()),
            OidcSourceKind::File => match &self.oidc.file {
                Some(path) => Arc::new(TokenFile::new(path)),
                None => {
                    let mut vars = file_vars.iter();
                    let first = TokenFile::from_env_var(env, vars.next().unwrap_or(&""));
                    Arc::new(vars.fold(TokenChain::first_try(first), |chain, var| {
                        chain.or_else(TokenFile::from_env_var(env, var))
                    }))
                }
            },
            OidcSourceKind::Env => {
                let var = self.oidc.token_env.as_deref().unwrap_or("FERRY_OIDC_TOKEN");
                Arc::new(StaticToken::from_env_var(env, var))
            }
        }
    }

    /// The trust relationship `[env.NAME.auth.github]` describes.
    pub fn github_trust(&self) -> Result<GitHubTrust, AuthError> {
        let Some(gh) = &self.github else {
            return Err(AuthError::InvalidConfig {
                key: "auth.github".into(),
                message: "no [auth.github] table".into(),
                help: "add [env.NAME.auth.github] with repository = \"owner/repo\" and branch = \
                       \"main\" (or environment = \"production\")"
                    .into(),
            });
        };
        GitHubTrust::new(
            &gh.repository,
            gh.branch.as_deref(),
            gh.environment.as_deref(),
            gh.issuer.as_deref(),
            "auth.github",
        )
    }

    /// The OIDC audience for AWS.
    pub fn aws_audience(&self) -> String {
        self.aws
            .as_ref()
            .and_then(|a| a.audience.clone())
            .unwrap_or_else(|| crate::trust::AWS_AUDIENCE.to_owned())
    }

    /// The OIDC audience for Azure.
    pub fn azure_audience(&self) -> String {
        self.azure
            .as_ref()
            .and_then(|a| a.audience.clone())
            .unwrap_or_else(|| crate::trust::AZURE_AUDIENCE.to_owned())
    }

    /// The role ARN, from the file or `AWS_ROLE_ARN`.
    pub fn aws_role_arn(&self, env: &Env) -> Option<String> {
        self.aws
            .as_ref()
            .and_then(|a| a.role_arn.clone())
            .or_else(|| env.get("AWS_ROLE_ARN").map(str::to_owned))
    }

    /// The AWS credentials this config describes. `default_region` is the cluster's region,
    /// used when `[auth.aws] region` is unset. The error is the first of
    /// [`aws_problems`](Self::aws_problems).
    #[cfg(feature = "aws")]
    pub fn aws(
        &self,
        ctx: &AuthContext,
        default_region: Option<&str>,
    ) -> Result<crate::aws::AwsAuth, AuthError> {
        self.aws_checked(ctx, default_region).map_err(first_problem)
    }

    /// Every problem of `[auth.aws]` (and of the variables it falls back to), not just the
    /// first: what `ferry validate` lists. Empty when [`aws`](Self::aws) succeeds.
    #[cfg(feature = "aws")]
    pub fn aws_problems(&self, ctx: &AuthContext, default_region: Option<&str>) -> Vec<AuthError> {
        self.aws_checked(ctx, default_region)
            .err()
            .unwrap_or_default()
    }

    #[cfg(feature = "aws")]
    fn aws_checked(
        &self,
        ctx: &AuthContext,
        default_region: Option<&str>,
    ) -> Result<crate::aws::AwsAuth, Vec<AuthError>> {
        use crate::aws::{AwsAuth, WebIdentityCredentials, standard_chain, static_credentials};

        let cfg = self.aws.clone().unwrap_or_default();
        let env = &ctx.env;
        let mut problems = Vec::new();
        let region = cfg
            .region
            .clone()
            .or_else(|| default_region.map(str::to_owned))
            .or_else(|| env.get("AWS_REGION").map(str::to_owned))
            .or_else(|| env.get("AWS_DEFAULT_REGION").map(str::to_owned));
        let region = match region {
            None => {
                problems.push(AuthError::InvalidConfig {
                    key: "auth.aws.region".into(),
                    message: "no AWS region is set".into(),
                    help: "set region in [env.NAME.auth.aws] (or the cluster's region), or \
                           AWS_REGION"
                        .into(),
                });
                None
            }
            Some(region)
                if region.is_empty()
                    || !region
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') =>
            {
                problems.push(AuthError::InvalidConfig {
                    key: "auth.aws.region".into(),
                    message: format!("`{region}` is not an AWS region name"),
                    help: "use a region code such as us-east-1 or eu-west-1".into(),
                });
                None
            }
            Some(region) => Some(region),
        };
        if let Some(url) = &cfg.endpoint_url
            && url::Url::parse(url).is_err()
        {
            problems.push(AuthError::InvalidConfig {
                key: "auth.aws.endpoint_url".into(),
                message: format!("`{url}` is not a URL"),
                help: "use a full URL such as http://127.0.0.1:5010, or remove the key".into(),
            });
        }
        let retry = retry_for(cfg.max_attempts);
        let role_arn = self.aws_role_arn(env);
        let kind = cfg.credentials.unwrap_or(if role_arn.is_some() {
            AwsCredentialsKind::WebIdentity
        } else {
            AwsCredentialsKind::Chain
        });
        let auth = match kind {
            AwsCredentialsKind::WebIdentity => {
                match &role_arn {
                    None => problems.push(AuthError::InvalidConfig {
                        key: "auth.aws.role_arn".into(),
                        message: "credentials = \"web-identity\" needs a role".into(),
                        help: "set role_arn in [env.NAME.auth.aws] (or AWS_ROLE_ARN)".into(),
                    }),
                    Some(arn) => problems.extend(crate::trust::RoleArn::parse(arn).err()),
                }
                let duration = match &cfg.duration {
                    None => Some(Duration::from_secs(3600)),
                    Some(text) => match humantime::parse_duration(text) {
                        Ok(duration) => {
                            problems
                                .extend(crate::aws::web_identity::check_duration(duration).err());
                            Some(duration)
                        }
                        Err(e) => {
                            problems.push(AuthError::InvalidConfig {
                                key: "auth.aws.duration".into(),
                                message: format!("`{text}` is not a duration ({e})"),
                                help: "write it like \"1h\" or \"45m\"".into(),
                            });
                            None
                        }
                    },
                };
                let session_name = cfg
                    .session_name
                    .clone()
                    .or_else(|| env.get("AWS_ROLE_SESSION_NAME").map(str::to_owned))
                    .or_else(|| {
                        env.get("GITHUB_RUN_ID").map(|run| {
                            format!(
                                "ferry-{run}-{}",
                                env.get("GITHUB_RUN_ATTEMPT").unwrap_or("1")
                            )
                        })
                    })
                    .unwrap_or_else(|| "ferry".to_owned());
                problems.extend(crate::aws::web_identity::check_session_name(&session_name).err());
                let (Some(region), Some(role_arn), Some(duration), true) =
                    (region, role_arn, duration, problems.is_empty())
                else {
                    return Err(problems);
                };
                let tokens = self.oidc_source(ctx, TokenPurpose::Aws);
                let creds =
                    WebIdentityCredentials::builder(role_arn, tokens, &region, ctx.clock.clone())
                        .session_name(session_name)
                        .duration(duration)
                        .audience(self.aws_audience())
                        .endpoint_url(cfg.endpoint_url.clone())
                        .retry(retry)
                        .build()
                        .map_err(|e| vec![e])?;
                AwsAuth::web_identity(creds, &region, ctx.clock.clone())
            }
            AwsCredentialsKind::Static => {
                let (Some(region), true) = (region, problems.is_empty()) else {
                    return Err(problems);
                };
                let var = |set: &Option<String>, default: &str| {
                    set.clone().unwrap_or_else(|| default.to_owned())
                };
                let id_var = var(&cfg.access_key_id_env, "AWS_ACCESS_KEY_ID");
                let secret_var = var(&cfg.secret_access_key_env, "AWS_SECRET_ACCESS_KEY");
                let token_var = var(&cfg.session_token_env, "AWS_SESSION_TOKEN");
                let missing = |name: &str| {
                    vec![AuthError::NotConfigured {
                        what: format!("AWS static keys ({name})"),
                        help: format!(
                            "credentials = \"static\" reads the keys from {id_var} and \
                             {secret_var}: set them (as CI secrets), or use role_arn with OIDC \
                             instead"
                        ),
                    }]
                };
                let id = env.get(&id_var).ok_or_else(|| missing(&id_var))?;
                let secret = env
                    .get(&secret_var)
                    .map(|s| secrecy::SecretString::from(s.to_owned()))
                    .ok_or_else(|| missing(&secret_var))?;
                let token = env
                    .get(&token_var)
                    .map(|s| secrecy::SecretString::from(s.to_owned()));
                AwsAuth::from_provider(
                    static_credentials(id, &secret, token.as_ref(), None),
                    "static keys",
                    &region,
                    ctx.clock.clone(),
                )
            }
            AwsCredentialsKind::Chain => {
                let (Some(region), true) = (region, problems.is_empty()) else {
                    return Err(problems);
                };
                AwsAuth::from_provider(
                    standard_chain(&region, cfg.profile.as_deref()),
                    match &cfg.profile {
                        // A profile the files lack is then named in "not configured".
                        Some(profile) => {
                            format!("the standard AWS credential chain, profile `{profile}`")
                        }
                        None => "the standard AWS credential chain".to_owned(),
                    },
                    &region,
                    ctx.clock.clone(),
                )
            }
        };
        Ok(auth.with_endpoint_url(cfg.endpoint_url).with_retry(retry))
    }

    /// The Azure AD credential this config describes. The error is the first of
    /// [`azure_problems`](Self::azure_problems).
    #[cfg(feature = "azure")]
    pub fn azure(&self, ctx: &AuthContext) -> Result<crate::azure::AzureAdCredential, AuthError> {
        self.azure_checked(ctx).map_err(first_problem)
    }

    /// Every problem of `[auth.azure]` (and of the variables it falls back to), not just the
    /// first: what `ferry validate` lists. Empty when [`azure`](Self::azure) succeeds.
    #[cfg(feature = "azure")]
    pub fn azure_problems(&self, ctx: &AuthContext) -> Vec<AuthError> {
        self.azure_checked(ctx).err().unwrap_or_default()
    }

    #[cfg(feature = "azure")]
    fn azure_checked(
        &self,
        ctx: &AuthContext,
    ) -> Result<crate::azure::AzureAdCredential, Vec<AuthError>> {
        use crate::azure::{AzureAdCredential, ClientAuth, DEFAULT_AUTHORITY};

        let cfg = self.azure.clone().unwrap_or_default();
        let env = &ctx.env;
        let mut problems = Vec::new();
        let mut required = |value: &Option<String>, var: &str, key: &str, what: &str| {
            let found = value.clone().or_else(|| env.get(var).map(str::to_owned));
            if found.is_none() {
                problems.push(AuthError::InvalidConfig {
                    key: format!("auth.azure.{key}"),
                    message: format!("no {what} is set"),
                    help: format!("set {key} in [env.NAME.auth.azure], or {var}"),
                });
            }
            found
        };
        let tenant = required(&cfg.tenant_id, "AZURE_TENANT_ID", "tenant_id", "tenant id");
        let client = required(&cfg.client_id, "AZURE_CLIENT_ID", "client_id", "client id");
        let authority = cfg
            .authority
            .clone()
            .or_else(|| env.get("AZURE_AUTHORITY_HOST").map(str::to_owned))
            .unwrap_or_else(|| DEFAULT_AUTHORITY.to_owned());
        // The client secret is read (and reported missing) only when the settings are right.
        let placeholder = ClientAuth::Federated {
            tokens: self.oidc_source(ctx, TokenPurpose::Azure),
            audience: self.azure_audience(),
        };
        let builder = |tenant: &str, client: &str, auth: ClientAuth| {
            AzureAdCredential::builder(tenant, client, auth, ctx.clock.clone())
                .authority(authority.clone())
                .http(ctx.http.clone())
                .retry(retry_for(cfg.max_attempts))
        };
        // The ids and authority are checked even when one id is missing.
        problems.extend(
            builder(
                tenant.as_deref().unwrap_or("-"),
                client.as_deref().unwrap_or("-"),
                placeholder.clone(),
            )
            .problems(),
        );
        let (Some(tenant), Some(client), true) = (tenant, client, problems.is_empty()) else {
            return Err(problems);
        };
        let auth = match cfg.credentials.unwrap_or(AzureCredentialsKind::Federated) {
            AzureCredentialsKind::Federated => placeholder,
            AzureCredentialsKind::Secret => {
                let var = cfg
                    .client_secret_env
                    .clone()
                    .unwrap_or_else(|| "AZURE_CLIENT_SECRET".to_owned());
                let secret = env.get(&var).ok_or_else(|| {
                    vec![AuthError::NotConfigured {
                        what: format!("Azure client secret ({var})"),
                        help: format!(
                            "credentials = \"secret\" reads the client secret from {var}: set \
                             it (as a CI secret), or use the federated credential instead"
                        ),
                    }]
                })?;
                ClientAuth::Secret(secrecy::SecretString::from(secret.to_owned()))
            }
        };
        builder(&tenant, &client, auth).build().map_err(|e| vec![e])
    }

    /// The retries of Azure requests (`[auth.azure] max_attempts`): Azure AD's, and those of
    /// the Azure services called with its tokens (ARM for AKS), so one setting bounds them all.
    #[cfg(feature = "azure")]
    pub fn azure_retry(&self) -> RetryPolicy {
        retry_for(self.azure.as_ref().and_then(|a| a.max_attempts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_section_parses_and_unknown_keys_are_refused() {
        let text = r#"
            oidc = { source = "file", file = "/var/run/token" }
            [github]
            repository = "octo/shop"
            branch = "main"
            [aws]
            role_arn = "arn:aws:iam::123456789012:role/deploy"
            region = "eu-west-1"
            duration = "45m"
            [azure]
            tenant_id = "t"
            client_id = "c"
            credentials = "secret"
        "#;
        let cfg: AuthConfig = toml::from_str(text).unwrap();
        assert_eq!(cfg.oidc.source, OidcSourceKind::File);
        assert_eq!(
            cfg.azure.as_ref().unwrap().credentials,
            Some(AzureCredentialsKind::Secret)
        );
        assert!(cfg.github_trust().is_ok());

        let err = toml::from_str::<AuthConfig>("[aws]\nrole = \"x\"\n").unwrap_err();
        assert!(err.to_string().contains("unknown field `role`"), "{err}");
    }

    #[test]
    fn a_relative_token_file_is_relative_to_the_config_file() {
        let mut cfg: AuthConfig =
            toml::from_str("oidc = { source = \"file\", file = \"secrets/token\" }\n").unwrap();
        cfg.relative_to(Path::new("/src/shop"));
        assert_eq!(
            cfg.oidc.file.as_deref(),
            Some(Path::new("/src/shop/secrets/token"))
        );
        let mut abs: AuthConfig =
            toml::from_str("oidc = { source = \"file\", file = \"/run/token\" }\n").unwrap();
        abs.relative_to(Path::new("/src/shop"));
        assert_eq!(abs.oidc.file.as_deref(), Some(Path::new("/run/token")));
    }

    #[test]
    fn role_arn_falls_back_to_the_environment_but_the_file_wins() {
        let env = Env::from_pairs([("AWS_ROLE_ARN", "arn:aws:iam::111111111111:role/env")]);
        let empty = AuthConfig::default();
        assert_eq!(
            empty.aws_role_arn(&env).as_deref(),
            Some("arn:aws:iam::111111111111:role/env")
        );
        let file: AuthConfig =
            toml::from_str("[aws]\nrole_arn = \"arn:aws:iam::222222222222:role/file\"\n").unwrap();
        assert_eq!(
            file.aws_role_arn(&env).as_deref(),
            Some("arn:aws:iam::222222222222:role/file")
        );
    }

    #[cfg(any(feature = "aws", feature = "azure"))]
    fn keys(problems: &[AuthError]) -> Vec<String> {
        problems
            .iter()
            .map(|p| match p {
                AuthError::InvalidConfig { key, .. } => key.clone(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[cfg(any(feature = "aws", feature = "azure"))]
    fn ctx(pairs: &[(&str, &str)]) -> AuthContext {
        AuthContext::new(
            Env::from_pairs(pairs.iter().copied()),
            Arc::new(crate::clock::ManualClock::new(std::time::UNIX_EPOCH)),
        )
    }

    #[cfg(feature = "aws")]
    #[test]
    fn every_problem_of_the_aws_table_is_listed_not_just_the_first() {
        let cfg: AuthConfig = toml::from_str(
            "[aws]\nrole_arn = \"arn:aws:iam::12:role/x\"\nduration = \"20h\"\n\
             session_name = \"a b\"\nendpoint_url = \"not a url\"\nregion = \"EU\"\n",
        )
        .unwrap();
        let problems = cfg.aws_problems(&ctx(&[]), None);
        assert_eq!(
            keys(&problems),
            [
                "auth.aws.region",
                "auth.aws.endpoint_url",
                "auth.aws.role_arn",
                "auth.aws.duration",
                "auth.aws.session_name"
            ]
        );
        // aws() reports the first of them.
        let Err(AuthError::InvalidConfig { key, .. }) = cfg.aws(&ctx(&[]), None) else {
            panic!("accepted");
        };
        assert_eq!(key, "auth.aws.region");

        let unparsable: AuthConfig = toml::from_str(
            "[aws]\ncredentials = \"web-identity\"\nduration = \"soon\"\nsession_name = \"x\"\n",
        )
        .unwrap();
        assert_eq!(
            keys(&unparsable.aws_problems(&ctx(&[]), Some("eu-west-1"))),
            [
                "auth.aws.role_arn",
                "auth.aws.duration",
                "auth.aws.session_name"
            ]
        );

        let good: AuthConfig =
            toml::from_str("[aws]\nrole_arn = \"arn:aws:iam::123456789012:role/x\"\n").unwrap();
        assert!(good.aws_problems(&ctx(&[]), Some("eu-west-1")).is_empty());
    }

    #[cfg(feature = "azure")]
    #[test]
    fn every_problem_of_the_azure_table_is_listed_not_just_the_first() {
        let cfg: AuthConfig = toml::from_str(
            "[azure]\ntenant_id = \"bad tenant\"\nclient_id = \"bad client\"\n\
             authority = \"ftp://x\"\n",
        )
        .unwrap();
        assert_eq!(
            keys(&cfg.azure_problems(&ctx(&[]))),
            [
                "auth.azure.tenant_id",
                "auth.azure.client_id",
                "auth.azure.authority"
            ]
        );
        let missing: AuthConfig = toml::from_str("[azure]\nauthority = \"nope\"\n").unwrap();
        assert_eq!(
            keys(&missing.azure_problems(&ctx(&[]))),
            [
                "auth.azure.tenant_id",
                "auth.azure.client_id",
                "auth.azure.authority"
            ]
        );
        let good: AuthConfig =
            toml::from_str("[azure]\ntenant_id = \"t\"\nclient_id = \"c\"\n").unwrap();
        assert!(good.azure_problems(&ctx(&[])).is_empty());
    }
}
