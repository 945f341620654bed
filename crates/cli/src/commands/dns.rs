//! `ferry dns plan|apply|verify|switch`: point an environment's names (`[env.NAME.dns]`) at its
//! load balancer with ferry-dns, and check that they resolve.
//!
//! - `plan` shows the changes; exit 0 when there are none, 6 when there are, 3 when a record
//!   ferry does not own is in the way (the plan says which, and that `--adopt` takes it over).
//! - `apply` applies them (atomically where the provider can), then asks the zone's
//!   authoritative servers until they answer the new target (exit 9 if they do not in time),
//!   then reports what public resolvers answer.
//! - `verify` does only the checking.
//! - `switch --env A --to B` points the names at B's target, taking over A's records even when
//!   the two environments use different owner ids (seed 001's rollback between AKS and EKS).
//!
//! The target is `--target`, else `[env.NAME.dns] target`, else the address of the
//! LoadBalancer Service or Ingress in the environment's current release, read from its cluster
//! through ferry-deployer (`[env.NAME.dns] load_balancer` names one when there are several).

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use ferry_dns::config::{ConfigIssue, DnsConfig, PathSeg, ProviderKind, ResolvedDns};
use ferry_dns::verify::{Expectation, VerifyReport, verify};
use ferry_dns::{
    Clock, DnsError, InMemoryProvider, NameServer, Ownership, Plan, PlanRequest, RecordSet,
    SharedDnsProvider, Target,
};
use secrecy::SecretString;

use crate::ambient::{Environment, now};
use crate::cli::{DnsApplyArgs, DnsArgs, DnsCommand, DnsSwitchArgs, DnsVerifyArgs};
use crate::config::{ConfigError, KeySeg, LoadedConfig};
use crate::exit::{CmdResult, Exit, Failure};

/// Runs `ferry dns ...`.
pub async fn run(cmd: &DnsCommand, env: &Environment) -> CmdResult {
    match cmd {
        DnsCommand::Plan(args) => plan_cmd(args, env).await,
        DnsCommand::Apply(args) => apply_cmd(args, env).await,
        DnsCommand::Verify(args) => verify_cmd(args, env).await,
        DnsCommand::Switch(args) => switch_cmd(args, env).await,
    }
}

/// One environment's DNS, loaded and checked.
struct DnsEnv {
    name: String,
    raw: DnsConfig,
    dns: ResolvedDns,
    /// `[env.NAME.auth]`: the cloud credentials Route53 and Azure DNS are called with.
    #[cfg_attr(
        not(any(feature = "route53", feature = "azure-dns")),
        expect(dead_code, reason = "only the cloud providers use the credentials")
    )]
    auth: ferry_auth::config::AuthConfig,
}

fn invalid(e: impl Into<miette::Report>) -> Failure {
    Failure::new(Exit::InvalidInput, e)
}

fn dns_path(env: &str, path: &[PathSeg]) -> Vec<KeySeg> {
    let mut out = vec![KeySeg::from("env"), KeySeg::from(env), KeySeg::from("dns")];
    out.extend(path.iter().map(|s| match s {
        PathSeg::Key(k) => KeySeg::Key(k.clone()),
        PathSeg::Index(i) => KeySeg::Index(*i),
    }));
    out
}

fn issues_failure(cfg: &LoadedConfig, env: &str, issues: Vec<ConfigIssue>) -> Failure {
    let problems: Vec<ConfigError> = issues
        .into_iter()
        .map(|i| cfg.error_at(&dns_path(env, &i.key_path), i.message, i.help))
        .collect();
    crate::commands::cost::problems_failure(cfg, problems)
}

fn load_env(cfg: &LoadedConfig, name: &str) -> Result<DnsEnv, Failure> {
    let env_cfg = cfg.env(name).map_err(invalid)?;
    let Some(raw) = env_cfg.dns.clone() else {
        return Err(invalid(cfg.error_at(
            &["env".into(), KeySeg::from(name)],
            format!("environment `{name}` has no [env.{name}.dns] table"),
            Some(format!(
                "add one with provider, zone and records, e.g.\n[env.{name}.dns]\nprovider = \"cloudflare\"\nzone = \"example.com\"\nrecords = [\"@\", \"app\"]"
            )),
        )));
    };
    let dns = raw
        .resolve(&cfg.config.app.name)
        .map_err(|issues| issues_failure(cfg, name, issues))?;
    Ok(DnsEnv {
        name: name.to_owned(),
        raw,
        dns,
        auth: env_cfg.auth.clone().unwrap_or_default(),
    })
}

/// The config and the environment `args` names.
fn load(args: &DnsArgs) -> Result<(LoadedConfig, DnsEnv), Failure> {
    let cfg = crate::commands::cost::load_config(&args.env.config.config)?;
    let e = load_env(&cfg, &args.env.env)?;
    Ok((cfg, e))
}

/// What `e`'s names point at, and the provider of its zone.
async fn target_and_provider(
    cfg: &LoadedConfig,
    e: &DnsEnv,
    args: &DnsArgs,
    env: &Environment,
) -> Result<(Target, SharedDnsProvider), Failure> {
    let target = target_for(cfg, e, args, env).await?;
    let p = provider_for(e, env).await?;
    Ok((target, p))
}

/// The target: `--target`, else the config, else the load balancer of the environment's
/// current release in its cluster.
async fn target_for(
    cfg: &LoadedConfig,
    e: &DnsEnv,
    args: &DnsArgs,
    env: &Environment,
) -> Result<Target, Failure> {
    if let Some(t) = args.target.as_deref() {
        return t
            .parse::<Target>()
            .map_err(|err| invalid(miette::miette!("--target: {err}")));
    }
    if let Some(t) = &e.dns.target {
        return Ok(t.clone());
    }
    let has_cluster = cfg
        .config
        .env
        .get(&e.name)
        .is_some_and(|c| c.cluster.is_some());
    if !has_cluster {
        return Err(invalid(cfg.error_at(
            &dns_path(&e.name, &[]),
            format!(
                "no target for environment `{}`: it has no target and no [env.{}.cluster] to read its load balancer from",
                e.name, e.name
            ),
            Some(format!(
                "pass --target with the load balancer's IP address(es) or hostname, set target in [env.{}.dns], or add the cluster ferry deploys to",
                e.name
            )),
        )));
    }
    let (key, target) = load_balancer_target(e, &args.env.config.config, env).await?;
    tracing::info!(object = %key, %target, "target from the load balancer");
    Ok(target)
}

/// The address of the LoadBalancer Service or Ingress in the environment's current release:
/// the one named by `[env.NAME.dns] load_balancer`, else the only one with an address.
async fn load_balancer_target(
    e: &DnsEnv,
    config_path: &std::path::Path,
    env: &Environment,
) -> Result<(String, Target), Failure> {
    use crate::commands::deploy::{clock, cluster_failure, deploy_failure, env_context};
    use ferry_deployer::engine::Engine;
    use kube::api::{Api, ApiResource, DynamicObject};

    let args = crate::cli::EnvArgs {
        config: crate::cli::ConfigArg {
            config: config_path.to_owned(),
        },
        env: e.name.clone(),
        output: crate::cli::DeployOutput::Text,
    };
    let ctx = env_context(&args, env)?;
    let result = async {
        let client = ctx
            .provider
            .client()
            .await
            .map_err(|e| cluster_failure(&ctx.env_name, e))?;
        let engine = Engine::new(
            client.clone(),
            ctx.settings.clone(),
            clock(),
            Arc::new(ferry_deployer::events::Discard),
        );
        let Some((release, objects)) = engine.status().await.map_err(deploy_failure)? else {
            return Err(invalid(miette::miette!(
                help = format!("deploy first (`ferry deploy --env {}`), or pass --target", e.name),
                "environment `{}` has no release in its cluster, so no load balancer to point at",
                e.name
            )));
        };
        let wanted = e.raw.load_balancer.as_deref();
        let mut found: Vec<(String, Vec<ferry_dns::LoadBalancerIngress>)> = Vec::new();
        for (key, _) in objects {
            let resource = match (key.group.as_str(), key.kind.as_str()) {
                ("", "Service") => ApiResource {
                    group: String::new(),
                    version: "v1".into(),
                    api_version: "v1".into(),
                    kind: "Service".into(),
                    plural: "services".into(),
                },
                ("networking.k8s.io", "Ingress") => ApiResource {
                    group: "networking.k8s.io".into(),
                    version: "v1".into(),
                    api_version: "networking.k8s.io/v1".into(),
                    kind: "Ingress".into(),
                    plural: "ingresses".into(),
                },
                _ => continue,
            };
            let namespace = key
                .namespace
                .clone()
                .unwrap_or_else(|| ctx.settings.namespace.clone());
            let label = format!("{} {namespace}/{}", key.kind, key.name);
            if let Some(w) = wanted {
                let (wns, wname) = w.split_once('/').unwrap_or((namespace.as_str(), w));
                if wns != namespace || wname != key.name {
                    continue;
                }
            }
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &namespace, &resource);
            let object = api.get_opt(&key.name).await.map_err(|err| {
                Failure::new(
                    Exit::Failure,
                    miette::miette!("cannot read {label} from the cluster: {err}"),
                )
            })?;
            let Some(object) = object else { continue };
            if key.kind == "Service"
                && object.data.pointer("/spec/type").and_then(|t| t.as_str()) != Some("LoadBalancer")
            {
                continue;
            }
            let ingress: Vec<ferry_dns::LoadBalancerIngress> = object
                .data
                .pointer("/status/loadBalancer/ingress")
                .and_then(|v| v.as_array())
                .map(|entries| {
                    entries
                        .iter()
                        .map(|i| ferry_dns::LoadBalancerIngress {
                            ip: i.get("ip").and_then(|v| v.as_str()).map(str::to_owned),
                            hostname: i.get("hostname").and_then(|v| v.as_str()).map(str::to_owned),
                        })
                        .collect()
                })
                .unwrap_or_default();
            found.push((label, ingress));
        }
        let describe = |list: &[(String, Vec<ferry_dns::LoadBalancerIngress>)]| {
            list.iter().map(|(l, _)| l.clone()).collect::<Vec<_>>().join(", ")
        };
        match found.as_slice() {
            [] => Err(invalid(miette::miette!(
                help = "add a LoadBalancer Service or an Ingress to the manifests, name one with [env.NAME.dns] load_balancer, or pass --target",
                "release v{} of `{}` has no LoadBalancer Service or Ingress{}",
                release.revision,
                e.name,
                wanted.map(|w| format!(" named `{w}`")).unwrap_or_default()
            ))),
            [(label, ingress)] => match Target::from_load_balancer(ingress) {
                Ok(t) => Ok((label.clone(), t)),
                Err(err) => Err(Failure::new(
                    Exit::Failure,
                    miette::miette!("{label}: {err}"),
                )),
            },
            several => Err(invalid(miette::miette!(
                help = "name the one the DNS names should point at: [env.NAME.dns] load_balancer = \"namespace/name\"",
                "release v{} of `{}` has several load balancers ({})",
                release.revision,
                e.name,
                describe(several)
            ))),
        }
    }
    .await;
    if let Err(err) = ctx.provider.close().await {
        tracing::warn!(error = %err, "closing the cluster provider failed");
    }
    result
}

/// The exit code of a ferry-dns error.
fn dns_failure_exit(e: &DnsError) -> Exit {
    if e.is_auth() {
        Exit::AuthFailed
    } else if e.is_invalid_input() {
        Exit::InvalidInput
    } else {
        Exit::Failure
    }
}

/// A ferry-dns error as a failure with its exit code.
fn dns_failure(e: DnsError) -> Failure {
    Failure::new(dns_failure_exit(&e), miette::Report::from_err(e))
}

fn secret_from(
    env: &Environment,
    var: &str,
    what: &str,
    help: &str,
) -> Result<SecretString, Failure> {
    env.get(var)
        .map(|v| SecretString::from(v.to_owned()))
        .ok_or_else(|| {
            dns_failure(DnsError::NotConfigured {
                what: format!("{what} ({var})"),
                help: help.to_owned(),
            })
        })
}

/// The provider factory: `[env.NAME.dns] provider` to a constructor.
async fn provider_for(e: &DnsEnv, env: &Environment) -> Result<SharedDnsProvider, Failure> {
    let zone = e.dns.zone.clone();
    match e.dns.provider {
        ProviderKind::Memory => Ok(Arc::new(InMemoryProvider::new(zone))),
        ProviderKind::Rfc2136 => {
            use ferry_dns::rfc2136::{Rfc2136Provider, TsigAlgorithm, TsigKey};
            let r = e.raw.rfc2136.clone().unwrap_or_default();
            let server = r
                .server
                .as_deref()
                .and_then(|s| ferry_dns::config::ServerAddress::parse(s, 53))
                .ok_or_else(|| {
                    invalid(miette::miette!(
                        "[env.{}.dns.rfc2136] server is missing",
                        e.name
                    ))
                })?;
            let key = match &r.key_name {
                None => None,
                Some(name) => {
                    let var = r
                        .key_secret_env
                        .clone()
                        .unwrap_or_else(|| "FERRY_TSIG_SECRET".into());
                    let secret = secret_from(
                        env,
                        &var,
                        "the TSIG key's secret",
                        &format!("set {var} to the base64 secret of key `{name}` (as a CI secret)"),
                    )?;
                    let algorithm: TsigAlgorithm = r
                        .key_algorithm
                        .as_deref()
                        .unwrap_or("hmac-sha256")
                        .parse()
                        .map_err(dns_failure)?;
                    Some(TsigKey::new(name, algorithm, secret).map_err(|err| {
                        let exit = dns_failure_exit(&err);
                        Failure::new(
                            exit,
                            miette::Report::from_err(err).wrap_err(format!("{var} is not usable")),
                        )
                    })?)
                }
            };
            let mut p = Rfc2136Provider::new(zone, server, key, Clock::new(now));
            if let Some(t) = r
                .timeout
                .as_deref()
                .and_then(ferry_dns::config::parse_duration)
            {
                p = p.with_timeout(t);
            }
            Ok(Arc::new(p))
        }
        #[cfg(feature = "cloudflare")]
        ProviderKind::Cloudflare => {
            use ferry_dns::cloudflare::CloudflareProvider;
            let c = e.raw.cloudflare.clone().unwrap_or_default();
            let var = c
                .token_env
                .clone()
                .unwrap_or_else(|| "CLOUDFLARE_API_TOKEN".into());
            let token = secret_from(
                env,
                &var,
                "the Cloudflare API token",
                &format!(
                    "set {var} to an API token with Zone:Read and DNS:Edit on {} (as a CI secret)",
                    e.dns.zone
                ),
            )?;
            let mut p = CloudflareProvider::new(zone, token)
                .with_zone_id(c.zone_id.clone())
                .with_batch(c.batch.unwrap_or(true));
            if let Some(url) = &c.api_url {
                p = p.with_api_url(url).map_err(dns_failure)?;
            }
            if let Some(comment) = &c.comment {
                p = p.with_comment((!comment.is_empty()).then(|| comment.clone()));
            }
            Ok(Arc::new(p))
        }
        #[cfg(feature = "route53")]
        ProviderKind::Route53 => {
            use ferry_dns::route53::Route53Provider;
            let r = e.raw.route53.clone().unwrap_or_default();
            let ctx = crate::commands::auth::context(env);
            // Route53 is global; the region only picks the API endpoint's signing region.
            let region = r.region.clone().unwrap_or_else(|| "us-east-1".to_owned());
            let aws = e.auth.aws(&ctx, Some(&region)).map_err(auth_failure)?;
            let aws = match &r.endpoint_url {
                Some(url) => aws.with_endpoint_url(Some(url.clone())),
                None => aws,
            };
            // Credentials first (the provider caches them for the calls that follow): a missing
            // or refused token is ferry's own error with what to fix, exit 11, not an SDK
            // "dispatch failure" from the first Route53 call.
            aws.credentials().await.map_err(auth_failure)?;
            let p = Route53Provider::new(zone, &aws.sdk_config())
                .with_hosted_zone_id(r.hosted_zone_id.clone())
                .with_evaluate_target_health(r.evaluate_target_health.unwrap_or(false))
                .with_prefer_cname(r.prefer_cname.unwrap_or(false));
            Ok(Arc::new(p))
        }
        #[cfg(feature = "azure-dns")]
        ProviderKind::Azure => {
            use ferry_dns::azure::{AccessTokenSource, AzureDnsProvider, StaticToken};
            let a = e.raw.azure.clone().unwrap_or_default();
            let tokens: Arc<dyn AccessTokenSource> = match &a.token_env {
                Some(var) => Arc::new(StaticToken(secret_from(
                    env,
                    var,
                    "the Azure access token",
                    &format!(
                        "set {var} to an ARM access token, or remove token_env to use [env.NAME.auth.azure]"
                    ),
                )?)),
                None => {
                    let ctx = crate::commands::auth::context(env);
                    let credential = e.auth.azure(&ctx).map_err(auth_failure)?;
                    Arc::new(AzureTokens {
                        credential: Arc::new(credential),
                        zone: e.dns.zone.to_string(),
                    })
                }
            };
            let mut p = AzureDnsProvider::new(
                zone,
                a.subscription_id.clone().unwrap_or_default(),
                a.resource_group.clone().unwrap_or_default(),
                tokens,
            );
            if let Some(url) = &a.api_url {
                p = p.with_api_url(url).map_err(dns_failure)?;
            }
            Ok(Arc::new(p))
        }
        #[cfg(not(all(feature = "cloudflare", feature = "route53", feature = "azure-dns")))]
        other => Err(invalid(miette::miette!(
            help = format!(
                "build ferry with its default features (or `--features {}`)",
                if other == ProviderKind::Azure {
                    "azure-dns"
                } else {
                    other.as_str()
                }
            ),
            "this ferry was built without the {} DNS provider",
            other.as_str(),
        ))),
    }
}

/// ferry-auth's error as a failure with its exit code.
#[cfg(any(feature = "route53", feature = "azure-dns"))]
fn auth_failure(e: ferry_auth::AuthError) -> Failure {
    Failure::new(
        crate::commands::auth::exit_for(e.kind()),
        miette::Report::from_err(e),
    )
}

/// ferry-auth's Azure AD credential as ferry-dns's token source, for one zone.
#[cfg(feature = "azure-dns")]
#[derive(Debug)]
struct AzureTokens {
    credential: Arc<dyn ferry_auth::azure::AzureTokenCredential>,
    zone: String,
}

#[cfg(feature = "azure-dns")]
#[async_trait::async_trait]
impl ferry_dns::azure::AccessTokenSource for AzureTokens {
    /// ferry-auth's error as the ferry-dns error of the same kind (and so the same exit code),
    /// with its help: ferry-dns's errors have no place for it.
    async fn token(&self, scope: &str) -> Result<SecretString, DnsError> {
        use ferry_auth::ErrorKind;
        self.credential
            .token(scope)
            .await
            .map(|t| t.token)
            .map_err(|e| {
                let detail = match e.help() {
                    Some(help) => format!("{e}; {help}"),
                    None => e.to_string(),
                };
                match e.kind() {
                    ErrorKind::NotConfigured => DnsError::NotConfigured {
                        what: "an Azure credential".into(),
                        help: detail,
                    },
                    ErrorKind::InvalidConfig => DnsError::Invalid(detail),
                    ErrorKind::Unavailable => {
                        DnsError::transport("azure", "get an Azure AD token", detail)
                    }
                    _ => DnsError::Unauthorized {
                        provider: "azure",
                        zone: self.zone.clone(),
                        action: "get a token for",
                        detail,
                    },
                }
            })
    }
}

/// The record sets `e`'s names should hold for `target`, in the provider's canonical form.
fn desired(e: &DnsEnv, target: &Target, p: &SharedDnsProvider) -> Result<Vec<RecordSet>, Failure> {
    let mut out = Vec::new();
    for name in &e.dns.names {
        for set in target
            .record_sets(name, e.dns.ttl, e.dns.proxied)
            .map_err(dns_failure)?
        {
            out.push(p.canonicalize(set).map_err(dns_failure)?);
        }
    }
    Ok(out)
}

fn ownership(app: &str, e: &DnsEnv) -> Result<Ownership, Failure> {
    let mut own = Ownership::new(e.dns.owner.clone(), format!("ferry/{app}/{}", e.name))
        .map_err(dns_failure)?;
    own.naming = e.dns.naming.clone();
    Ok(own)
}

struct Planned {
    plan: Plan,
    desired: Vec<RecordSet>,
}

async fn make_plan(
    p: &SharedDnsProvider,
    e: &DnsEnv,
    own: &Ownership,
    target: &Target,
    adopt: bool,
) -> Result<Planned, Failure> {
    let desired = desired(e, target, p)?;
    let current = p.records().await.map_err(dns_failure)?;
    let plan = ferry_dns::plan(&PlanRequest {
        zone: &e.dns.zone,
        current: &current,
        desired: &desired,
        ownership: own,
        policy: e.dns.policy,
        adopt,
        capabilities: p.capabilities(),
    })
    .map_err(dns_failure)?;
    Ok(Planned { plan, desired })
}

fn out_err(err: std::io::Error) -> Failure {
    super::io_failure(err)
}

fn print_plan(out: &mut impl std::io::Write, header: &str, plan: &Plan) -> Result<(), Failure> {
    writeln!(out, "{header}").map_err(out_err)?;
    for c in plan.changes.iter() {
        writeln!(out, "  {c}").map_err(out_err)?;
    }
    for k in &plan.in_sync {
        writeln!(out, "  = {k} (already points at the target)").map_err(out_err)?;
    }
    for k in &plan.adopted {
        writeln!(out, "  adopt {k} (--adopt)").map_err(out_err)?;
    }
    for s in &plan.skipped {
        writeln!(
            out,
            "  kept: {} {}: {}",
            s.change.verb(),
            s.change.key(),
            s.reason
        )
        .map_err(out_err)?;
    }
    for c in &plan.conflicts {
        writeln!(
            out,
            "  conflict: {} [{}]: {}",
            c.existing.key(),
            c.existing.describe_values(),
            c.reason
        )
        .map_err(out_err)?;
    }
    let n = plan.changes.len();
    writeln!(
        out,
        "{} change{}{}",
        n,
        if n == 1 { "" } else { "s" },
        if plan.conflicts.is_empty() {
            String::new()
        } else {
            format!(
                ", {} conflict{} (nothing will be applied while a record in the way is not ferry's)",
                plan.conflicts.len(),
                if plan.conflicts.len() == 1 { "" } else { "s" }
            )
        }
    )
    .map_err(out_err)?;
    Ok(())
}

fn header(verb: &str, app: &str, e: &DnsEnv, p: &SharedDnsProvider, target: &Target) -> String {
    format!(
        "dns {verb} for {app}/{}: zone {} on {}, owner {}, policy {}, target {target}",
        e.name,
        e.dns.zone,
        p.name(),
        e.dns.owner,
        e.dns.policy
    )
}

fn conflicts_failure(plan: &Plan) -> Failure {
    invalid(miette::miette!(
        help = "records ferry did not create are never overwritten; pass --adopt to take them over",
        "{} record{} in the way; nothing was changed",
        plan.conflicts.len(),
        if plan.conflicts.len() == 1 {
            " is"
        } else {
            "s are"
        }
    ))
}

fn json_plan(
    app: &str,
    e: &DnsEnv,
    p: &SharedDnsProvider,
    target: &Target,
    plan: &Plan,
) -> serde_json::Value {
    serde_json::json!({
        "app": app,
        "env": e.name,
        "zone": e.dns.zone,
        "provider": p.name(),
        "owner": e.dns.owner,
        "policy": e.dns.policy,
        "target": target,
        "changes": plan.changes,
        "in_sync": plan.in_sync,
        "adopted": plan.adopted,
        "skipped": plan.skipped,
        "conflicts": plan.conflicts,
    })
}

async fn plan_cmd(args: &DnsArgs, env: &Environment) -> CmdResult {
    let (cfg, e) = load(args)?;
    let (target, p) = target_and_provider(&cfg, &e, args, env).await?;
    let app = cfg.config.app.name.clone();
    let own = ownership(&app, &e)?;
    let planned = make_plan(&p, &e, &own, &target, args.adopt).await?;
    let mut out = std::io::stdout().lock();
    if args.env.json() {
        writeln!(out, "{}", json_plan(&app, &e, &p, &target, &planned.plan)).map_err(out_err)?;
    } else {
        print_plan(
            &mut out,
            &header("plan", &app, &e, &p, &target),
            &planned.plan,
        )?;
    }
    if !planned.plan.conflicts.is_empty() {
        return Err(conflicts_failure(&planned.plan));
    }
    Ok(if planned.plan.is_empty() {
        Exit::Success
    } else {
        Exit::ChangesPending
    })
}

async fn apply_cmd(args: &DnsApplyArgs, env: &Environment) -> CmdResult {
    let (cfg, e) = load(&args.common)?;
    let (target, p) = target_and_provider(&cfg, &e, &args.common, env).await?;
    let app = cfg.config.app.name.clone();
    let own = ownership(&app, &e)?;
    apply_and_verify(&app, &e, &p, &own, &target, args, "apply").await
}

async fn switch_cmd(args: &DnsSwitchArgs, env: &Environment) -> CmdResult {
    let (cfg, from) = load(&args.apply.common)?;
    let app = cfg.config.app.name.clone();
    if args.to == from.name {
        return Err(Failure::new(
            Exit::Usage,
            miette::miette!(
                help = format!(
                    "name the environment the names move to with --to (e.g. `ferry dns switch --env aks --to eks`); to point them at this environment's own target, use `ferry dns apply --env {}`",
                    from.name
                ),
                "--env and --to are both `{}`: switch moves names from one environment to another",
                from.name
            ),
        ));
    }
    let to = load_env(&cfg, &args.to)?;
    if from.dns.provider != to.dns.provider || from.dns.zone != to.dns.zone {
        return Err(invalid(cfg.error_at(
            &dns_path(&to.name, &[]),
            format!(
                "`{}` has its names in zone {} on {} and `{}` in zone {} on {}: switch moves names within one zone",
                from.name,
                from.dns.zone,
                from.dns.provider.as_str(),
                to.name,
                to.dns.zone,
                to.dns.provider.as_str()
            ),
            Some("give both environments the same [env.NAME.dns] provider and zone".into()),
        )));
    }
    let (target, p) = target_and_provider(&cfg, &to, &args.apply.common, env).await?;
    let mut own = ownership(&app, &to)?;
    if from.dns.owner != to.dns.owner {
        own.previous_owners.push(from.dns.owner.clone());
    }
    let missing: Vec<String> = from
        .dns
        .names
        .iter()
        .filter(|n| !to.dns.names.contains(n))
        .map(ToString::to_string)
        .collect();
    if !missing.is_empty() {
        tracing::warn!(
            names = %missing.join(", "),
            "these names of `{}` are not in `{}`'s records and are left as they are",
            from.name,
            to.name
        );
    }
    let verb = format!("switch {} -> {}", from.name, to.name);
    apply_and_verify(&app, &to, &p, &own, &target, &args.apply, &verb).await
}

async fn apply_and_verify(
    app: &str,
    e: &DnsEnv,
    p: &SharedDnsProvider,
    own: &Ownership,
    target: &Target,
    args: &DnsApplyArgs,
    verb: &str,
) -> CmdResult {
    let json = args.common.env.json();
    let planned = make_plan(p, e, own, target, args.common.adopt).await?;
    let mut out = std::io::stdout().lock();
    if !json {
        print_plan(&mut out, &header(verb, app, e, p, target), &planned.plan)?;
    }
    if !planned.plan.conflicts.is_empty() {
        if json {
            writeln!(out, "{}", json_plan(app, e, p, target, &planned.plan)).map_err(out_err)?;
        }
        return Err(conflicts_failure(&planned.plan));
    }
    // Where to verify is settled before anything changes: a zone ferry cannot check is refused
    // while it is still as it was. The memory provider's zone lives in this process only, so
    // there is nothing to ask; it is not verified.
    let unverifiable = e.dns.provider == ProviderKind::Memory && e.dns.verify_servers.is_none();
    let servers = if args.no_verify || !e.dns.verify_enabled || unverifiable {
        None
    } else {
        Some(verify_servers(e, p).await?)
    };
    if !planned.plan.is_empty() {
        p.apply(&planned.plan.changes).await.map_err(dns_failure)?;
        if !json {
            writeln!(
                out,
                "applied {} change{}",
                planned.plan.changes.len(),
                if planned.plan.changes.len() == 1 {
                    ""
                } else {
                    "s"
                }
            )
            .map_err(out_err)?;
        }
    }
    let report = match servers {
        None => None,
        Some(servers) => {
            Some(run_verify(e, &servers, &planned.desired, args.verify_timeout).await?)
        }
    };
    if json {
        let mut doc = json_plan(app, e, p, target, &planned.plan);
        doc["applied"] = serde_json::json!(true);
        doc["verify"] = serde_json::json!(report);
        writeln!(out, "{doc}").map_err(out_err)?;
    } else if let Some(r) = &report {
        print_verify(&mut out, r)?;
    } else if unverifiable && !args.no_verify && e.dns.verify_enabled {
        writeln!(
            out,
            "verify: skipped (the memory provider's zone has no servers to ask)"
        )
        .map_err(out_err)?;
    }
    Ok(match report {
        Some(r) if !r.converged => Exit::Timeout,
        _ => Exit::Success,
    })
}

/// The zone's authoritative servers to verify against: `[env.NAME.dns.verify] servers`, else
/// the provider's.
async fn verify_servers(e: &DnsEnv, p: &SharedDnsProvider) -> Result<Vec<NameServer>, Failure> {
    let servers: Vec<NameServer> = match &e.dns.verify_servers {
        Some(list) => {
            // Names are resolved now, before anything changes: every address is asked.
            let mut out = Vec::new();
            for server in list {
                let addrs = server
                    .resolve(e.dns.verify.query_timeout)
                    .await
                    .map_err(|err| {
                        Failure::new(
                            Exit::Failure,
                            miette::miette!(
                                help = "check the name in [env.NAME.dns.verify] servers; nothing was changed",
                                "cannot resolve the verify server {server}: {err}"
                            ),
                        )
                    })?;
                out.extend(addrs.into_iter().map(NameServer::Address));
            }
            out
        }
        None => p.name_servers().await.map_err(dns_failure)?,
    };
    if servers.is_empty() {
        return Err(invalid(miette::miette!(
            help = "set [env.NAME.dns.verify] servers, or skip verification with --no-verify; nothing was changed",
            "the {} provider has no authoritative servers to verify against",
            p.name()
        )));
    }
    Ok(servers)
}

async fn run_verify(
    e: &DnsEnv,
    servers: &[NameServer],
    desired: &[RecordSet],
    timeout: Option<Duration>,
) -> Result<VerifyReport, Failure> {
    let mut options = e.dns.verify.clone();
    if let Some(t) = timeout {
        options.timeout = t;
    }
    let expectations = Expectation::from_records(desired, &e.dns.zone);
    verify(servers, &expectations, &options)
        .await
        .map_err(dns_failure)
}

fn print_verify(out: &mut impl std::io::Write, r: &VerifyReport) -> Result<(), Failure> {
    writeln!(
        out,
        "verify: authoritative servers {} after {:.1}s ({} checks)",
        if r.converged {
            "answer the target"
        } else {
            "do NOT answer the target yet"
        },
        r.elapsed_ms as f64 / 1000.0,
        r.queries
    )
    .map_err(out_err)?;
    for c in &r.authoritative {
        writeln!(
            out,
            "  {} {} @{}: {}{}",
            if c.matches { "ok  " } else { "FAIL" },
            c.name,
            c.server,
            c.answer,
            expected_note(c)
        )
        .map_err(out_err)?;
    }
    if !r.public.is_empty() {
        writeln!(
            out,
            "public resolvers (caches keep an old or negative answer until its TTL ends; a zone \
             that is not delegated publicly is `none` there for ever):"
        )
        .map_err(out_err)?;
        use ferry_dns::verify::Answer;
        for c in &r.public {
            // `none`: the resolver says the name does not exist (a negative answer it caches
            // until the zone's SOA minimum, or a zone that is not delegated publicly); `old`:
            // it answers something else (a cache of the previous value).
            let state = match &c.answer {
                _ if c.matches => "ok  ",
                Answer::Unreachable { .. } | Answer::Error { .. } => "n/a ",
                Answer::NxDomain | Answer::NoRecords => "none",
                _ => "old ",
            };
            writeln!(
                out,
                "  {state} {} @{}: {}{}",
                c.name,
                c.server,
                c.answer,
                expected_note(c)
            )
            .map_err(out_err)?;
        }
    }
    Ok(())
}

/// What a check that did not match wanted (`, expected 192.0.2.10`); nothing when it matched
/// or the server was not reached.
fn expected_note(c: &ferry_dns::verify::Check) -> String {
    if c.matches || matches!(c.answer, ferry_dns::verify::Answer::Unreachable { .. }) {
        String::new()
    } else {
        format!(", expected {}", c.expected)
    }
}

async fn verify_cmd(args: &DnsVerifyArgs, env: &Environment) -> CmdResult {
    let verify_timeout = args.verify_timeout;
    let common = DnsArgs {
        env: args.env.clone(),
        target: args.target.clone(),
        adopt: false,
    };
    let args = &common;
    let (cfg, e) = load(args)?;
    let (target, p) = target_and_provider(&cfg, &e, args, env).await?;
    let desired = desired(&e, &target, &p)?;
    let servers = verify_servers(&e, &p).await?;
    let report = run_verify(&e, &servers, &desired, verify_timeout).await?;
    let mut out = std::io::stdout().lock();
    if args.env.json() {
        writeln!(out, "{}", serde_json::json!({"env": e.name, "zone": e.dns.zone, "target": target, "verify": report}))
            .map_err(out_err)?;
    } else {
        print_verify(&mut out, &report)?;
    }
    Ok(if report.converged {
        Exit::Success
    } else {
        Exit::Timeout
    })
}
