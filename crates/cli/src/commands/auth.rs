//! `ferry auth whoami|token|trust-policy|check`: who ferry authenticates as, cluster tokens for
//! kubectl, and the trust relationship that lets exactly one repository and branch (or GitHub
//! environment) deploy. Also the glue the provider factory and the other commands use to turn
//! `[env.NAME.auth]` into credentials and ferry-auth errors into exit codes with a help line.

use std::fmt;
use std::io::Write as _;
use std::sync::Arc;
use std::time::SystemTime;

use ferry_auth::clock::{FnClock, human_between, rfc3339};
use ferry_auth::config::{AuthConfig, AuthContext, TokenPurpose};
use ferry_auth::oidc::OidcToken;
use ferry_auth::{AuthError, ErrorKind};
use ferry_deployer::cluster::ClusterConfig;
use serde_json::json;

use crate::ambient::{Environment, now};
use crate::cli::{AuthArgs, AuthCommand, AuthEnvArgs, AuthOutput, CheckArgs, WhoamiArgs};
use crate::config::{EnvConfig, KeySeg, LoadedConfig};
use crate::exit::{CmdResult, Exit, Failure};

use super::io_failure;

/// Runs `ferry auth ...`.
pub async fn run(args: &AuthArgs, env: &Environment) -> CmdResult {
    match &args.command {
        AuthCommand::Whoami(a) => whoami(a, env).await,
        AuthCommand::Token(a) => token(a, env).await,
        AuthCommand::TrustPolicy(a) => trust_policy(a, env),
        AuthCommand::Check(a) => check(a, env).await,
    }
}

/// What ferry-auth needs from the binary: the environment snapshot and the wall clock.
pub(crate) fn context(env: &Environment) -> AuthContext {
    AuthContext::new(
        ferry_auth::env::Env::new(env.vars().clone()),
        Arc::new(FnClock::new(now)),
    )
}

/// The exit code for a kind of auth error: refused, expired or missing credentials are
/// authentication failures (11); a wrong setting is invalid input (3); a network or service
/// failure is a runtime failure (1).
pub(crate) fn exit_for(kind: ErrorKind) -> Exit {
    match kind {
        ErrorKind::NotConfigured | ErrorKind::Denied => Exit::AuthFailed,
        ErrorKind::InvalidConfig => Exit::InvalidInput,
        _ => Exit::Failure,
    }
}

/// An error printed with its cause chain and a help line.
#[derive(Debug)]
struct Helped {
    error: Box<dyn std::error::Error + Send + Sync + 'static>,
    help: Option<String>,
}

impl fmt::Display for Helped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl std::error::Error for Helped {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}

impl miette::Diagnostic for Helped {
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display + 'a>)
    }
}

/// A failure for any error whose cause chain may hold a ferry-auth error (an EKS provider
/// wraps them, the AWS SDK wraps them): the exit code and help come from the deepest one;
/// without one, `fallback` and no help. With the command's environment, the help names its own
/// tables and commands (`[env.prod.cluster]`, `--env prod`) where the libraries, which do not
/// know it, write `NAME`.
pub(crate) fn chain_failure_in(
    err: impl std::error::Error + Send + Sync + 'static,
    fallback: Exit,
    env_name: Option<&str>,
) -> Failure {
    let (exit, help) = match deepest_auth_error(&err) {
        Some(found) => (
            exit_for(found.kind()),
            found.help().map(|h| in_env(h, env_name)),
        ),
        None => (fallback, None),
    };
    Failure::new(
        exit,
        miette::Report::new(Helped {
            error: Box::new(err),
            help,
        }),
    )
}

/// A help line with the environment's name in place of the libraries' `NAME` placeholder.
fn in_env(help: &str, env_name: Option<&str>) -> String {
    match env_name {
        Some(name) => help
            .replace("[env.NAME.", &format!("[env.{name}."))
            .replace("[env.NAME]", &format!("[env.{name}]"))
            .replace("--env NAME", &format!("--env {name}")),
        None => help.to_owned(),
    }
}

fn deepest_auth_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a AuthError> {
    let mut found = None;
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(a) = e.downcast_ref::<AuthError>() {
            found = Some(a);
        }
        current = e.source();
    }
    found
}

/// A ferry-auth error as a failure; a bad `[env.NAME.auth]` setting is located in the file.
pub(crate) fn auth_failure(err: AuthError, located: Option<(&LoadedConfig, &str)>) -> Failure {
    if let (AuthError::InvalidConfig { key, message, help }, Some((cfg, env_name))) =
        (&err, located)
        && key.starts_with("auth.")
    {
        let mut path: Vec<KeySeg> = vec!["env".into(), KeySeg::from(env_name)];
        path.extend(key.split('.').map(KeySeg::from));
        return Failure::new(
            Exit::InvalidInput,
            cfg.error_at(
                &path,
                format!("{key}: {message}"),
                Some(in_env(help, Some(env_name))),
            ),
        );
    }
    chain_failure_in(err, Exit::Failure, located.map(|(_, name)| name))
}

fn invalid(e: impl Into<miette::Report>) -> Failure {
    Failure::new(Exit::InvalidInput, e)
}

/// The config and one environment.
fn load_env(config: &std::path::Path, name: &str) -> Result<(LoadedConfig, EnvConfig), Failure> {
    let cfg = LoadedConfig::load(config).map_err(invalid)?;
    let env_cfg = cfg.env(name).map_err(invalid)?.clone();
    Ok((cfg, env_cfg))
}

/// Whether an environment uses AWS (an EKS cluster or an `[auth.aws]` table) or Azure.
fn uses_aws(env_cfg: &EnvConfig) -> bool {
    matches!(env_cfg.cluster, Some(ClusterConfig::Eks(_)))
        || env_cfg.auth.as_ref().is_some_and(|a| a.aws.is_some())
}

fn uses_azure(env_cfg: &EnvConfig) -> bool {
    matches!(env_cfg.cluster, Some(ClusterConfig::Aks(_)))
        || env_cfg.auth.as_ref().is_some_and(|a| a.azure.is_some())
}

/// The region of an environment's EKS cluster, the default for its AWS credentials.
#[cfg_attr(not(feature = "aws"), expect(dead_code, reason = "used by AWS code"))]
fn cluster_region(env_cfg: &EnvConfig) -> Option<&str> {
    match &env_cfg.cluster {
        Some(ClusterConfig::Eks(eks)) => Some(eks.region.as_str()),
        _ => None,
    }
}

fn write_json(value: &serde_json::Value) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    writeln!(out, "{text}").map_err(io_failure)
}

fn write_text(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).map_err(io_failure)
}

/// "2026-11-23T15:04:05Z (in 4m 12s)" or "... (expired 2m ago)".
fn expiry_text(at: SystemTime) -> String {
    let now = now();
    if at > now {
        format!("{} (in {})", rfc3339(at), human_between(now, at))
    } else {
        format!("{} (EXPIRED {} ago)", rfc3339(at), human_between(at, now))
    }
}

/// The claims of a token as JSON (never the token).
fn claims_json(token: &OidcToken) -> serde_json::Value {
    serde_json::to_value(token.claims()).unwrap_or_default()
}

/// Claims worth showing, in a stable order, as (name, value) lines.
fn claim_lines(token: &OidcToken) -> Vec<(String, String)> {
    let c = token.claims();
    let mut lines = Vec::new();
    let mut push = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            lines.push((k.to_owned(), v));
        }
    };
    push("issuer", c.iss.clone());
    push("subject", c.sub.clone());
    push("audience", c.aud.as_ref().map(|a| a.joined()));
    for key in [
        "repository",
        "ref",
        "environment",
        "actor",
        "workflow",
        "job_workflow_ref",
        "run_id",
        "run_attempt",
        "event_name",
        "tid",
        "oid",
        "appid",
        "azp",
    ] {
        push(
            key,
            c.other.get(key).map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            }),
        );
    }
    if let Some(iat) = c.iat {
        push("issued", Some(rfc3339(ferry_auth::clock::from_unix(iat))));
    }
    match token.expires_at() {
        Some(exp) => push("expires", Some(expiry_text(exp))),
        None => push("expires", Some("never (no exp claim)".to_owned())),
    }
    lines
}

fn section(out: &mut String, title: &str, what: &str, lines: &[(String, String)]) {
    out.push_str(&format!("{title:<14} {what}\n"));
    for (k, v) in lines {
        out.push_str(&format!("  {k:<12} {v}\n"));
    }
}

/// `ferry auth whoami`.
async fn whoami(args: &WhoamiArgs, env: &Environment) -> CmdResult {
    let ctx = context(env);
    let loaded = match &args.env {
        Some(name) => Some(load_env(&args.config.config, name)?),
        None => None,
    };
    let empty = AuthConfig::default();
    let (auth, env_cfg) = match &loaded {
        Some((_, e)) => (e.auth.as_ref().unwrap_or(&empty), Some(e)),
        None => (&empty, None),
    };
    let aws = env_cfg.is_some_and(uses_aws);
    let azure = env_cfg.is_some_and(uses_azure);
    let (purpose, audience) = if aws {
        (TokenPurpose::Aws, auth.aws_audience())
    } else if azure {
        (TokenPurpose::Azure, auth.azure_audience())
    } else {
        (TokenPurpose::Any, args.audience.clone().unwrap_or_default())
    };
    let audience = args.audience.clone().unwrap_or(audience);
    let located = loaded.as_ref().map(|(c, _)| c).zip(args.env.as_deref());

    let mut json_out = serde_json::Map::new();
    let mut text = String::new();
    let source = auth.oidc_source(&ctx, purpose);
    match source.token(&audience).await {
        Ok(token) => {
            let expired = token.expires_at().is_some_and(|e| e <= now());
            json_out.insert(
                "oidc".into(),
                json!({
                    "source": token.origin(),
                    "claims": claims_json(&token),
                    "expires_at": token.expires_at().map(rfc3339),
                    "expired": expired,
                }),
            );
            section(
                &mut text,
                "OIDC token",
                token.origin(),
                &claim_lines(&token),
            );
        }
        // Static keys or a profile need no OIDC token: say so and go on.
        Err(e) if e.is_not_configured() && (aws || azure) => {
            json_out.insert("oidc".into(), serde_json::Value::Null);
            text.push_str(&format!("{:<14} none ({e})\n", "OIDC token"));
        }
        Err(e) => return Err(auth_failure(e, located)),
    }

    if aws {
        #[cfg(feature = "aws")]
        {
            let region = env_cfg.and_then(cluster_region);
            let aws_auth = auth
                .aws(&ctx, region)
                .map_err(|e| auth_failure(e, located))?;
            let creds = aws_auth
                .credentials()
                .await
                .map_err(|e| auth_failure(e, located))?;
            let who = aws_auth
                .caller_identity()
                .await
                .map_err(|e| auth_failure(e, located))?;
            let mut lines = vec![
                ("account".to_owned(), who.account.clone()),
                ("principal".to_owned(), who.arn.clone()),
                ("region".to_owned(), aws_auth.region().to_owned()),
            ];
            lines.push((
                "expires".to_owned(),
                creds
                    .expiry()
                    .map(expiry_text)
                    .unwrap_or_else(|| "never (long-lived keys)".to_owned()),
            ));
            section(&mut text, "AWS", &aws_auth.describe(), &lines);
            json_out.insert(
                "aws".into(),
                json!({
                    "method": aws_auth.describe(),
                    "account": who.account,
                    "arn": who.arn,
                    "user_id": who.user_id,
                    "region": aws_auth.region(),
                    "expires_at": creds.expiry().map(rfc3339),
                }),
            );
        }
        #[cfg(not(feature = "aws"))]
        text.push_str("AWS            not built into this ferry (cargo feature `aws`)\n");
    }
    if azure {
        #[cfg(feature = "azure")]
        {
            use ferry_auth::azure::{ARM_SCOPE, AzureTokenCredential as _};
            let cred = auth.azure(&ctx).map_err(|e| auth_failure(e, located))?;
            // Resource Manager's scope: the cluster's ARM endpoint when it names one.
            let scope = match env_cfg.and_then(|e| e.cluster.as_ref()) {
                Some(ClusterConfig::Aks(aks)) if aks.arm_endpoint.is_some() => format!(
                    "{}/.default",
                    aks.arm_endpoint
                        .as_deref()
                        .unwrap_or_default()
                        .trim_end_matches('/')
                ),
                _ => ARM_SCOPE.to_owned(),
            };
            let token = cred
                .token(&scope)
                .await
                .map_err(|e| auth_failure(e, located))?;
            // Azure AD access tokens are JWTs: their claims say which principal this is.
            let claims = OidcToken::parse(token.token.clone(), "Azure AD").ok();
            let mut lines: Vec<(String, String)> = vec![
                ("tenant".to_owned(), cred.tenant_id().to_owned()),
                ("client".to_owned(), cred.client_id().to_owned()),
            ];
            if let Some(c) = &claims {
                for key in ["oid", "idtyp"] {
                    if let Some(v) = c.claims().get_str(key) {
                        lines.push((key.to_owned(), v.to_owned()));
                    }
                }
            }
            lines.push(("expires".to_owned(), expiry_text(token.expires_at)));
            section(&mut text, "Azure", &cred.describe(), &lines);
            json_out.insert(
                "azure".into(),
                json!({
                    "method": cred.describe(),
                    "tenant_id": cred.tenant_id(),
                    "client_id": cred.client_id(),
                    "claims": claims.as_ref().map(claims_json),
                    "expires_at": rfc3339(token.expires_at),
                }),
            );
        }
        #[cfg(not(feature = "azure"))]
        text.push_str("Azure          not built into this ferry (cargo feature `azure`)\n");
    }
    match args.output {
        AuthOutput::Json => write_json(&serde_json::Value::Object(json_out))?,
        AuthOutput::Text => write_text(&text)?,
    }
    Ok(Exit::Success)
}

/// `ferry auth token --env E`: a kubectl ExecCredential for the environment's cluster.
async fn token(args: &AuthEnvArgs, env: &Environment) -> CmdResult {
    let (cfg, env_cfg) = load_env(&args.config.config, &args.env)?;
    let source = cluster_token_source(&cfg, &env_cfg, &args.env, env)?;
    let token = source
        .bearer_token()
        .await
        .map_err(|e| auth_failure(e, Some((&cfg, args.env.as_str()))))?;
    use secrecy::ExposeSecret as _;
    // stdout is the credential's destination: kubectl reads it from the exec plugin.
    write_json(&json!({
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "spec": { "interactive": false },
        "status": {
            "expirationTimestamp": rfc3339(token.expires_at),
            "token": token.token.expose_secret(),
        }
    }))?;
    Ok(Exit::Success)
}

/// The bearer-token source of an environment's EKS or AKS cluster.
#[cfg(any(feature = "eks", feature = "aks"))]
fn cluster_token_source(
    cfg: &LoadedConfig,
    env_cfg: &EnvConfig,
    name: &str,
    env: &Environment,
) -> Result<ferry_auth::bearer::SharedBearerTokenSource, Failure> {
    let located = Some((cfg, name));
    let auth = env_cfg.auth.clone().unwrap_or_default();
    match &env_cfg.cluster {
        #[cfg(feature = "eks")]
        Some(ClusterConfig::Eks(eks)) => {
            let aws = auth
                .aws(&context(env), Some(&eks.region))
                .map_err(|e| auth_failure(e, located))?;
            Ok(Arc::new(aws.eks_token_source(&eks.cluster)))
        }
        #[cfg(feature = "aks")]
        Some(ClusterConfig::Aks(aks)) => {
            let cred = auth
                .azure(&context(env))
                .map_err(|e| auth_failure(e, located))?;
            let app = aks
                .server_app_id
                .as_deref()
                .unwrap_or(ferry_auth::azure::AKS_SERVER_APP_ID);
            Ok(Arc::new(ferry_auth::azure::AzureBearer::new(
                Arc::new(cred),
                format!("{app}/.default"),
            )))
        }
        _ => Err(not_a_cloud_cluster(
            cfg,
            env_cfg,
            name,
            "ferry auth token",
            "makes tokens",
        )),
    }
}

/// Without cloud providers no environment has a cluster ferry can make tokens for.
#[cfg(not(any(feature = "eks", feature = "aks")))]
fn cluster_token_source(
    cfg: &LoadedConfig,
    env_cfg: &EnvConfig,
    name: &str,
    _env: &Environment,
) -> Result<ferry_auth::bearer::SharedBearerTokenSource, Failure> {
    Err(not_a_cloud_cluster(
        cfg,
        env_cfg,
        name,
        "ferry auth token",
        "makes tokens",
    ))
}

/// The environment's cluster is not one `command` works with.
pub(crate) fn not_a_cloud_cluster(
    cfg: &LoadedConfig,
    env_cfg: &EnvConfig,
    name: &str,
    command: &str,
    does: &str,
) -> Failure {
    let what = env_cfg
        .cluster
        .as_ref()
        .map_or("none", ClusterConfig::provider_name);
    invalid(cfg.error_at(
        &["env".into(), KeySeg::from(name), "cluster".into()],
        format!(
            "environment `{name}`'s cluster provider is `{what}`: `{command}` {does} for eks and \
             aks clusters (built into this ferry: {})",
            built_cloud_providers()
        ),
        None,
    ))
}

/// The cloud cluster providers this build has.
pub(crate) fn built_cloud_providers() -> &'static str {
    match (cfg!(feature = "eks"), cfg!(feature = "aks")) {
        (true, true) => "eks, aks",
        (true, false) => "eks",
        (false, true) => "aks",
        (false, false) => "none",
    }
}

/// `ferry auth trust-policy --env E`.
fn trust_policy(args: &AuthEnvArgs, env: &Environment) -> CmdResult {
    let (cfg, env_cfg) = load_env(&args.config.config, &args.env)?;
    let located = Some((&cfg, args.env.as_str()));
    let auth = env_cfg.auth.clone().unwrap_or_default();
    let trust = auth.github_trust().map_err(|e| auth_failure(e, located))?;
    let subject = trust.subject();
    let mut json_out = serde_json::Map::new();
    json_out.insert("issuer".into(), trust.issuer.clone().into());
    json_out.insert("subject".into(), subject.clone().into());
    let mut text = format!(
        "# Jobs of {} that may deploy to `{}` get OIDC tokens with\n#   sub = {subject}\n",
        trust.repository, args.env
    );
    let ferry_env = ferry_auth::env::Env::new(env.vars().clone());
    let role = auth.aws_role_arn(&ferry_env);
    if uses_aws(&env_cfg) || role.is_some() {
        let Some(role) = role else {
            return Err(invalid(cfg.error_at(
                &["env".into(), KeySeg::from(args.env.as_str()), "auth".into()],
                "the AWS trust policy belongs to a role: no role_arn is set",
                Some(format!(
                    "set role_arn in [env.{}.auth.aws] (the role the policy is for)",
                    args.env
                )),
            )));
        };
        let aud = auth.aws_audience();
        let policy = trust
            .aws_trust_policy(&role, &aud)
            .map_err(|e| auth_failure(e, located))?;
        // arn:aws:iam::ACCOUNT:role[/PATH]/NAME: the CLI wants the NAME.
        let role_name = role.rsplit('/').next().unwrap_or("NAME");
        text.push_str(&format!(
            "\n# AWS: the trust policy of {role}\n#   aws iam update-assume-role-policy --role-name {role_name} --policy-document file://policy.json\n{}\n",
            serde_json::to_string_pretty(&policy).unwrap_or_default()
        ));
        json_out.insert(
            "aws".into(),
            json!({ "role_arn": role, "audience": aud, "trust_policy": policy }),
        );
    }
    if uses_azure(&env_cfg) {
        let name = format!("ferry-{}-{}", cfg.config.app.name, args.env);
        let cred = trust.azure_federated_credential(&name);
        let client = auth
            .azure
            .as_ref()
            .and_then(|a| a.client_id.clone())
            .or_else(|| env.get("AZURE_CLIENT_ID").map(str::to_owned))
            .unwrap_or_else(|| "APP_ID".to_owned());
        text.push_str(&format!(
            "\n# Azure: a federated identity credential on app {client}\n#   az ad app federated-credential create --id {client} --parameters credential.json\n{}\n",
            serde_json::to_string_pretty(&cred).unwrap_or_default()
        ));
        json_out.insert(
            "azure".into(),
            json!({ "client_id": client, "federated_credential": cred }),
        );
    }
    match args.output {
        AuthOutput::Json => write_json(&serde_json::Value::Object(json_out))?,
        AuthOutput::Text => write_text(&text)?,
    }
    Ok(Exit::Success)
}

/// `ferry auth check [--env E]`.
async fn check(args: &CheckArgs, env: &Environment) -> CmdResult {
    let cfg = LoadedConfig::load(&args.config.config).map_err(invalid)?;
    let names: Vec<String> = match &args.env {
        Some(name) => {
            cfg.env(name).map_err(invalid)?;
            vec![name.clone()]
        }
        None => cfg
            .config
            .env
            .iter()
            .filter(|(_, e)| e.auth.as_ref().is_some_and(|a| a.github.is_some()))
            .map(|(n, _)| n.clone())
            .collect(),
    };
    if names.is_empty() {
        return Err(invalid(miette::miette!(
            help = "add [env.NAME.auth.github] with repository and branch (or environment)",
            "{}: no environment says which repository may deploy to it",
            cfg.path.display()
        )));
    }
    let ctx = context(env);
    let mut passed_any = false;
    let mut failed_any = false;
    let mut reports = Vec::new();
    let mut text = String::new();
    // Without --env, an environment whose token cannot be had (its source is not configured
    // in this job, say) is reported and the others are still checked.
    let mut first_token_error = None;
    let mut tokens_read = 0;
    for name in &names {
        let env_cfg = cfg.env(name).map_err(invalid)?;
        let located = Some((&cfg, name.as_str()));
        let auth = env_cfg.auth.clone().unwrap_or_default();
        let trust = auth.github_trust().map_err(|e| auth_failure(e, located))?;
        let mut clouds = Vec::new();
        if uses_aws(env_cfg) || !uses_azure(env_cfg) {
            clouds.push(("aws", TokenPurpose::Aws, auth.aws_audience()));
        }
        if uses_azure(env_cfg) {
            clouds.push(("azure", TokenPurpose::Azure, auth.azure_audience()));
        }
        for (cloud, purpose, audience) in clouds {
            let token = match auth.oidc_source(&ctx, purpose).token(&audience).await {
                Ok(token) => token,
                Err(e) if args.env.is_none() => {
                    failed_any = true;
                    let reason = e.to_string();
                    text.push_str(&format!(
                        "FAIL {name} ({cloud}): no token to check: {reason}\n"
                    ));
                    reports.push(json!({
                        "env": name, "cloud": cloud, "pass": false, "error": reason,
                    }));
                    first_token_error.get_or_insert_with(|| auth_failure(e, located));
                    continue;
                }
                Err(e) => return Err(auth_failure(e, located)),
            };
            tokens_read += 1;
            let mut checks = trust.check(token.claims(), &audience);
            let fresh = token.ensure_fresh(now()).is_ok();
            checks.push(ferry_auth::trust::ConditionCheck {
                claim: "exp",
                expected: "in the future".to_owned(),
                actual: token.expires_at().map(rfc3339),
                pass: fresh,
            });
            let pass = checks.iter().all(|c| c.pass);
            if pass {
                passed_any = true;
            } else {
                failed_any = true;
            }
            text.push_str(&format!(
                "{} {name} ({cloud}): the token from {} {}\n",
                if pass { "PASS" } else { "FAIL" },
                token.origin(),
                if pass {
                    "would be accepted"
                } else {
                    "would be refused"
                }
            ));
            for c in &checks {
                text.push_str(&format!(
                    "  {} {:<4} expected {}, token has {}\n",
                    if c.pass { "ok " } else { "BAD" },
                    c.claim,
                    c.expected,
                    c.actual.as_deref().unwrap_or("nothing")
                ));
            }
            reports.push(json!({
                "env": name, "cloud": cloud, "source": token.origin(), "pass": pass, "checks": checks,
            }));
        }
    }
    // No token at all: the first reason, with its help, is the answer.
    if tokens_read == 0
        && let Some(failure) = first_token_error
    {
        return Err(failure);
    }
    // One environment: it must pass. Several: the token must pass for at least one (the report
    // says which).
    let ok = if args.env.is_some() {
        !failed_any
    } else {
        passed_any
    };
    match args.output {
        AuthOutput::Json => write_json(&json!({ "pass": ok, "results": reports }))?,
        AuthOutput::Text => write_text(&text)?,
    }
    if ok {
        Ok(Exit::Success)
    } else {
        Ok(Exit::AuthFailed)
    }
}

/// `provider = "eks"`: the provider for an environment, credentials from `[env.NAME.auth]`.
#[cfg(feature = "eks")]
pub(crate) fn eks_provider(
    eks: &ferry_deployer::cluster::EksClusterConfig,
    auth: Option<&AuthConfig>,
    env: &Environment,
    user_agent: &str,
) -> Result<ferry_deployer::cluster::EksProvider, ferry_deployer::cluster::ClusterError> {
    let auth = auth.cloned().unwrap_or_default();
    let aws = auth.aws(&context(env), Some(&eks.region)).map_err(|e| {
        ferry_deployer::cluster::ClusterError::Provider {
            what: format!(
                "cannot set up AWS credentials for EKS cluster {}",
                eks.cluster
            ),
            source: Box::new(e),
        }
    })?;
    Ok(ferry_deployer::cluster::EksProvider::new(eks.clone(), aws).user_agent(user_agent))
}

/// `provider = "aks"`: the provider for an environment, credentials from `[env.NAME.auth]`.
#[cfg(feature = "aks")]
pub(crate) fn aks_provider(
    aks: &ferry_deployer::cluster::AksClusterConfig,
    auth: Option<&AuthConfig>,
    env: &Environment,
    user_agent: &str,
) -> Result<ferry_deployer::cluster::AksProvider, ferry_deployer::cluster::ClusterError> {
    let auth = auth.cloned().unwrap_or_default();
    let ctx = context(env);
    let cred = auth
        .azure(&ctx)
        .map_err(|e| ferry_deployer::cluster::ClusterError::Provider {
            what: format!(
                "cannot set up Azure credentials for AKS cluster {}",
                aks.cluster
            ),
            source: Box::new(e),
        })?;
    Ok(
        ferry_deployer::cluster::AksProvider::new(aks.clone(), Arc::new(cred))
            .http(ctx.http.clone())
            .retry(auth.azure_retry())
            .user_agent(user_agent),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_errors_map_to_documented_exit_codes() {
        assert_eq!(exit_for(ErrorKind::Denied), Exit::AuthFailed);
        assert_eq!(exit_for(ErrorKind::NotConfigured), Exit::AuthFailed);
        assert_eq!(exit_for(ErrorKind::InvalidConfig), Exit::InvalidInput);
        assert_eq!(exit_for(ErrorKind::Unavailable), Exit::Failure);
    }

    #[test]
    fn the_deepest_auth_error_in_a_chain_decides_the_exit_and_help() {
        // What an EKS provider returns when the OIDC token expired.
        let inner = AuthError::ExpiredToken {
            origin: "token file t".into(),
            expired_at: "2026-11-23T00:00:00Z".into(),
            help: "get a fresh token".into(),
        };
        let wrapped = ferry_deployer::cluster::ClusterError::Provider {
            what: "cannot look up eks cluster x in eu-west-1".into(),
            source: Box::new(inner),
        };
        let failure = chain_failure_in(wrapped, Exit::Failure, None);
        assert_eq!(failure.exit, Exit::AuthFailed);
        let report: &dyn miette::Diagnostic = failure.report.as_ref();
        let help = report.help().map(|h| h.to_string());
        assert_eq!(help.as_deref(), Some("get a fresh token"));

        let plain = chain_failure_in(std::io::Error::other("disk full"), Exit::Failure, None);
        assert_eq!(plain.exit, Exit::Failure);
    }

    #[test]
    fn help_names_the_environment_when_the_command_knows_it() {
        let missing = || AuthError::NotFound {
            what: "EKS cluster `shop` in region eu-west-1".into(),
            help: "check [env.NAME.cluster] cluster and region, then `ferry auth check --env \
                   NAME`"
                .into(),
        };
        let help = |f: Failure| {
            let report: &dyn miette::Diagnostic = f.report.as_ref();
            report.help().map(|h| h.to_string()).unwrap_or_default()
        };
        assert_eq!(
            help(chain_failure_in(missing(), Exit::Failure, Some("prod"))),
            "check [env.prod.cluster] cluster and region, then `ferry auth check --env prod`"
        );
        assert!(
            help(chain_failure_in(missing(), Exit::Failure, None)).contains("[env.NAME.cluster]")
        );
    }
}
