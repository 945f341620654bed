//! `ferry validate`: load ferry.toml (syntax, keys, types, signs), check every section's values
//! the way the command that uses them would — `[env.NAME.infra]` against the cost catalog,
//! `[cluster]`, `[deploy]`, `[registry]`, `[auth]` and `[dns]` by their owning crates' own
//! checks — and each environment's manifests, offline, reporting all problems at once, each
//! with file:line:column.

use std::io::Write as _;
#[cfg(any(feature = "aws", feature = "azure"))]
use std::sync::Arc;

use ferry_cost::Catalog;

use crate::cli::ValidateArgs;
use crate::commands::cost::{estimate_problems, load_config, problems_failure};
use crate::config::{ConfigError, EnvConfig, KeySeg, LoadedConfig};
use crate::exit::{CmdResult, Exit, Failure};

/// Runs `ferry validate`.
pub fn run(args: &ValidateArgs) -> CmdResult {
    let cfg = load_config(&args.config.config)?;
    let names: Vec<String> = match args.env.as_deref().filter(|e| *e != "all") {
        Some(name) => {
            cfg.env(name)
                .map_err(|e| Failure::new(Exit::InvalidInput, e))?;
            vec![name.to_owned()]
        }
        None => cfg.config.env.keys().cloned().collect(),
    };
    let catalog = Catalog::embedded();
    let mut problems = app_problems(&cfg, &names);
    let mut with_infra = 0;
    for name in &names {
        let env_cfg = &cfg.config.env[name];
        if let Some(infra) = &env_cfg.infra {
            with_infra += 1;
            let est = ferry_cost::estimate(infra, catalog);
            problems.extend(estimate_problems(&cfg, name, &est, false, false));
        }
        problems.extend(deploy_problems(&cfg, name, env_cfg));
        problems.extend(auth_problems(&cfg, name, env_cfg));
        problems.extend(dns_problems(&cfg, name, env_cfg));
    }
    if !problems.is_empty() {
        return Err(problems_failure(&cfg, problems));
    }
    let manifest_problems = crate::commands::deploy::check_manifests(&cfg, &names);
    if !manifest_problems.is_empty() {
        return Err(crate::commands::deploy::manifests_failure(
            &manifest_problems,
        ));
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{}: valid ({} environment{}: {}; {with_infra} with a cost spec)",
        cfg.path.display(),
        names.len(),
        if names.len() == 1 { "" } else { "s" },
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        },
    )
    .map_err(super::io_failure)?;
    Ok(Exit::Success)
}

fn deploys(env_cfg: &EnvConfig) -> bool {
    env_cfg.cluster.is_some() || env_cfg.deploy.is_some()
}

/// `[app]`, when one of `envs` deploys: the app's name names locks, release records and
/// labels; `[app.images]` are repositories.
pub(crate) fn app_problems(cfg: &LoadedConfig, envs: &[String]) -> Vec<ConfigError> {
    if !envs
        .iter()
        .filter_map(|n| cfg.config.env.get(n))
        .any(deploys)
    {
        return Vec::new();
    }
    let mut out = Vec::new();
    let app = &cfg.config.app.name;
    if !ferry_deployer::validate::is_dns_label(app) {
        out.push(cfg.error_at(
            &["app".into(), "name".into()],
            format!("app name `{app}` must be a DNS label (lowercase letters, digits, `-`): it names locks, release records and labels"),
            None,
        ));
    }
    for (name, repo) in &cfg.config.app.images {
        if repo.is_empty()
            || repo.contains(char::is_whitespace)
            || repo.contains(':') && !repo.contains('/')
        {
            out.push(cfg.error_at(
                &["app".into(), "images".into(), KeySeg::from(name.as_str())],
                format!("`{repo}` is not an image repository (write it without a tag: `org/app`)"),
                None,
            ));
        }
    }
    out
}

/// What `ferry deploy` to `name` reads besides `[app]`: the environment's name, `[cluster]`,
/// `[deploy]` and `[registry]` (where the app's images are resolved).
pub(crate) fn deploy_problems(
    cfg: &LoadedConfig,
    name: &str,
    env_cfg: &EnvConfig,
) -> Vec<ConfigError> {
    let mut out = Vec::new();
    let at = |table: &str, key: &str| -> Vec<KeySeg> {
        vec!["env".into(), name.into(), table.into(), key.into()]
    };
    if deploys(env_cfg) && !ferry_deployer::validate::is_dns_label(name) {
        out.push(cfg.error_at(
            &["env".into(), name.into()],
            format!("environment name `{name}` must be a DNS label to deploy (lowercase letters, digits, `-`)"),
            None,
        ));
    }
    if let Some(cluster) = &env_cfg.cluster {
        for p in cluster.validate(&cfg.dir()) {
            out.push(cfg.error_at(&at("cluster", p.key), p.message, None));
        }
    }
    if let Some(deploy) = &env_cfg.deploy {
        let mut settings = ferry_deployer::Settings::new("app", name, "validate");
        if let Err(p) = deploy.apply(&mut settings) {
            out.push(cfg.error_at(&at("deploy", p.key), p.message, None));
        }
    }
    if let Some(registry) = &env_cfg.registry
        && let Err(p) = registry.validate()
    {
        out.push(cfg.error_at(&at("registry", p.key), p.message, p.help));
    }
    out
}

/// `[env.NAME.auth]`, by ferry-auth's own checks: the trust (`[auth.github]`) and the cloud
/// credentials' settings.
pub(crate) fn auth_problems(
    cfg: &LoadedConfig,
    name: &str,
    env_cfg: &EnvConfig,
) -> Vec<ConfigError> {
    use ferry_auth::AuthError;
    let Some(auth) = &env_cfg.auth else {
        return Vec::new();
    };
    let mut errors = Vec::new();
    if auth.github.is_some()
        && let Err(e) = auth.github_trust()
    {
        errors.push(e);
    }
    #[cfg(any(feature = "aws", feature = "azure"))]
    errors.extend(credential_errors(auth, env_cfg));
    errors
        .into_iter()
        .filter_map(|e| match e {
            AuthError::InvalidConfig { key, message, help } if key.starts_with("auth.") => {
                let mut path: Vec<KeySeg> = vec!["env".into(), name.into()];
                path.extend(key.split('.').map(KeySeg::from));
                Some(cfg.error_at(&path, format!("{key}: {message}"), Some(help)))
            }
            // Anything else needs the machine ferry runs on (a missing key variable, say).
            _ => None,
        })
        .collect()
}

/// The AWS and Azure credentials of `auth` as ferry would set them up, without asking anyone.
/// Values the file leaves to the environment (`AWS_ROLE_ARN`, `AZURE_TENANT_ID`, ...) are
/// stood in for, so only what the file says is judged, the same on every machine.
#[cfg(any(feature = "aws", feature = "azure"))]
fn credential_errors(
    auth: &ferry_auth::config::AuthConfig,
    env_cfg: &EnvConfig,
) -> Vec<ferry_auth::AuthError> {
    let stand_ins = ferry_auth::env::Env::from_pairs([
        ("AWS_REGION", "us-east-1"),
        ("AWS_ROLE_ARN", "arn:aws:iam::000000000000:role/stand-in"),
        ("AZURE_TENANT_ID", "00000000-0000-0000-0000-000000000000"),
        ("AZURE_CLIENT_ID", "00000000-0000-0000-0000-000000000000"),
    ]);
    let ctx = ferry_auth::config::AuthContext::new(
        stand_ins,
        Arc::new(ferry_auth::clock::FnClock::new(crate::ambient::now)),
    );
    let mut errors = Vec::new();
    #[cfg(feature = "aws")]
    if auth.aws.is_some() {
        let region = match &env_cfg.cluster {
            Some(ferry_deployer::cluster::ClusterConfig::Eks(eks)) => Some(eks.region.as_str()),
            _ => None,
        };
        errors.extend(auth.aws_problems(&ctx, region));
    }
    #[cfg(feature = "azure")]
    if auth.azure.is_some() {
        errors.extend(auth.azure_problems(&ctx));
    }
    #[cfg(not(feature = "aws"))]
    let _ = env_cfg;
    errors
}

/// `[env.NAME.dns]`, by ferry-dns's own resolution (every problem of the section).
pub(crate) fn dns_problems(
    cfg: &LoadedConfig,
    name: &str,
    env_cfg: &EnvConfig,
) -> Vec<ConfigError> {
    let Some(dns) = &env_cfg.dns else {
        return Vec::new();
    };
    let Err(issues) = dns.resolve(&cfg.config.app.name) else {
        return Vec::new();
    };
    issues
        .into_iter()
        .map(|issue| {
            let mut path: Vec<KeySeg> = vec!["env".into(), name.into(), "dns".into()];
            path.extend(issue.key_path.iter().map(KeySeg::from));
            cfg.error_at(&path, issue.message, issue.help)
        })
        .collect()
}
