//! `ferry image push|copy|tag|resolve|ls|inspect`: images on any registry, with no Docker
//! daemon (ferry-registry).
//!
//! Sources are skopeo-style: `oci:PATH[:TAG]`, `oci-archive:FILE[:TAG]`,
//! `docker-archive:FILE[:REF]`, or a registry reference. Destinations are references; with
//! `--env NAME`, a name without a registry (`web:3f2c1e9`, as destination or as a registry
//! source) is in `[env.NAME.registry]`'s host and prefix, logs in the way its provider needs (ECR, ACR, Docker Hub, any OCI registry) and
//! follows its `immutable` policy.
//!
//! Credentials, first match wins: `--username` with `--password-stdin` (or
//! `FERRY_REGISTRY_USERNAME`/`FERRY_REGISTRY_PASSWORD`) for the destination registry; the
//! environment's provider (ECR via `[env.NAME.auth.aws]`, ACR via `[env.NAME.auth.azure]`,
//! Docker Hub via `DOCKERHUB_USERNAME`/`DOCKERHUB_TOKEN`); ECR and ACR hosts are also recognised
//! without `--env`; Docker's `config.json` with its credential helpers; anonymous.

use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::{Args, Subcommand, ValueEnum};
use ferry_registry::auth::{AuthChain, BasicAuth, DockerConfigAuth, DockerHubAuth, SharedAuth};
use ferry_registry::clock::FnClock;
use ferry_registry::{
    Client, CopyOptions, CopyReport, ErrorKind, ImageRef, Provider, RegistryConfig, SourceSpec,
    Tag, TagOutcome,
};
use secrecy::SecretString;

use crate::ambient::{Environment, now};
use crate::cli::ConfigArg;
use crate::config::{KeySeg, LoadedConfig};
use crate::exit::{CmdResult, Exit, Failure};

/// `ferry image ...`.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Push an image from an OCI layout, an OCI archive or a `docker save` archive, with one or
    /// more tags (one upload).
    #[command(after_help = PUSH_HELP)]
    Push(PushArgs),
    /// Copy an image (or a multi-platform index) between repositories or registries, by
    /// digest: the source tag is resolved once, so promotion copies exactly what it named.
    #[command(after_help = PUSH_HELP)]
    Copy(PushArgs),
    /// Add tags to an image already in a repository (by digest, no blob moves).
    #[command(after_help = EXIT_HELP)]
    Tag(TagArgs),
    /// Print the digest a reference resolves to.
    #[command(after_help = EXIT_HELP)]
    Resolve(RefArgs),
    /// List a repository's tags.
    #[command(after_help = EXIT_HELP)]
    Ls(RefArgs),
    /// Show an image: digest, media type, platforms or layers, config.
    #[command(after_help = EXIT_HELP)]
    Inspect(RefArgs),
}

const EXIT_HELP: &str = "Exit codes: 0 done; 3 invalid input (a malformed reference or source, \
a manifest too large, a digest mismatch, an unsupported media type, an immutable tag, nothing \
there); 11 authentication failed; 1 the registry could not be reached or failed.";

const PUSH_HELP: &str = "Sources: oci:PATH[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REF], \
or a registry reference.\nExit codes: 0 pushed or copied (or already there); 3 invalid input (a malformed \
reference or source, a manifest too large, a digest mismatch, an unsupported media type, an \
immutable tag would move; nothing was tagged); 11 authentication failed; 1 the registry could \
not be reached or failed.";

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImageOutput {
    /// Lines for people.
    Text,
    /// One JSON document.
    Json,
}

/// Where the registry and its credentials come from.
#[derive(Debug, Clone, Args)]
pub struct RegistryOpts {
    /// Use `[env.NAME.registry]` from ferry.toml: its host and prefix for names without a
    /// registry, its login, its immutable policy.
    #[arg(long, short = 'e', value_name = "NAME", env = "FERRY_ENV")]
    pub env: Option<String>,
    /// Where ferry.toml is (read only with --env).
    #[command(flatten)]
    pub config: ConfigArg,
    /// User name for the destination registry; the password comes from --password-stdin or
    /// FERRY_REGISTRY_PASSWORD (never a flag).
    #[arg(long, value_name = "USER", env = "FERRY_REGISTRY_USERNAME")]
    pub username: Option<String>,
    /// Read the password (or token) for --username from stdin.
    #[arg(long)]
    pub password_stdin: bool,
    /// Talk plain HTTP to the registries (loopback registries always are).
    #[arg(long)]
    pub plain_http: bool,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = ImageOutput::Text)]
    pub output: ImageOutput,
}

/// How blobs move.
#[derive(Debug, Clone, Args)]
pub struct TransferOpts {
    /// Refuse to move an existing tag to another digest (default from
    /// [env.NAME.registry] immutable).
    #[arg(long)]
    pub immutable: bool,
    /// Blobs moved at once.
    #[arg(long, short = 'j', value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// Upload in PATCH chunks of this many bytes (default: one streamed request per blob,
    /// unless the registry asks for chunks).
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1024..))]
    pub chunk_size: Option<u64>,
    /// Never ask the registry to mount blobs from the source repository.
    #[arg(long)]
    pub no_mount: bool,
}

/// `ferry image push` / `copy`.
#[derive(Debug, Clone, Args)]
pub struct PushArgs {
    /// The image: `oci:PATH[:TAG]`, `oci-archive:FILE[:TAG]`, `docker-archive:FILE[:REF]` or a
    /// registry reference.
    #[arg(value_name = "SOURCE")]
    pub source: String,
    /// The destination reference (`REGISTRY/REPO[:TAG]`; with --env, `REPO[:TAG]` is enough).
    #[arg(value_name = "DEST")]
    pub dest: String,
    /// Another tag for the same image (repeatable): `--tag $GITHUB_SHA --tag latest`.
    #[arg(long = "tag", short = 't', value_name = "TAG")]
    pub tags: Vec<String>,
    /// How blobs move.
    #[command(flatten)]
    pub transfer: TransferOpts,
    /// Registry and credentials.
    #[command(flatten)]
    pub registry: RegistryOpts,
}

/// `ferry image tag`.
#[derive(Debug, Clone, Args)]
pub struct TagArgs {
    /// The image (a tag or a digest).
    #[arg(value_name = "REF")]
    pub reference: String,
    /// The tags to add in the same repository.
    #[arg(value_name = "TAG", required = true)]
    pub tags: Vec<String>,
    /// Refuse to move an existing tag to another digest.
    #[arg(long)]
    pub immutable: bool,
    /// Registry and credentials.
    #[command(flatten)]
    pub registry: RegistryOpts,
}

/// Commands that take one reference.
#[derive(Debug, Clone, Args)]
pub struct RefArgs {
    /// The reference (`REGISTRY/REPO[:TAG|@DIGEST]`; with --env, `REPO[...]`).
    #[arg(value_name = "REF")]
    pub reference: String,
    /// Registry and credentials.
    #[command(flatten)]
    pub registry: RegistryOpts,
}

/// Runs `ferry image ...`.
pub async fn run(cmd: &ImageCommand, env: &Environment) -> CmdResult {
    match cmd {
        ImageCommand::Push(args) | ImageCommand::Copy(args) => push(args, env).await,
        ImageCommand::Tag(args) => tag(args, env).await,
        ImageCommand::Resolve(args) => resolve(args, env).await,
        ImageCommand::Ls(args) => ls(args, env).await,
        ImageCommand::Inspect(args) => inspect(args, env).await,
    }
}

fn invalid(e: impl Into<miette::Report>) -> Failure {
    Failure::new(Exit::InvalidInput, e)
}

/// A ferry-registry error with its help line and the exit code its kind calls for.
pub(crate) fn registry_failure(error: ferry_registry::Error) -> Failure {
    let exit = match error.kind() {
        ErrorKind::InvalidInput | ErrorKind::Policy | ErrorKind::NotFound => Exit::InvalidInput,
        ErrorKind::Auth => Exit::AuthFailed,
        _ => Exit::Failure,
    };
    let help = error.help();
    Failure::new(exit, Helped { error, help })
}

#[derive(Debug)]
struct Helped {
    error: ferry_registry::Error,
    help: Option<String>,
}

impl std::fmt::Display for Helped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for Helped {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.error)
    }
}

impl miette::Diagnostic for Helped {
    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn std::fmt::Display>)
    }
}

/// The environment's registry config, when --env was given.
pub(crate) struct Target {
    pub(crate) config: Option<RegistryConfig>,
    loaded: Option<(LoadedConfig, String)>,
}

impl Target {
    /// Reads `[env.NAME.registry]` when `--env` is given.
    pub(crate) fn load(opts: &RegistryOpts) -> Result<Self, Failure> {
        let Some(name) = &opts.env else {
            return Ok(Target {
                config: None,
                loaded: None,
            });
        };
        let cfg = LoadedConfig::load(&opts.config.config).map_err(invalid)?;
        let env_cfg = cfg.env(name).map_err(invalid)?;
        let Some(registry) = env_cfg.registry.clone() else {
            return Err(invalid(cfg.error_at(
                &["env".into(), KeySeg::from(name.as_str())],
                format!("environment `{name}` has no [env.{name}.registry] table"),
                Some(format!(
                    "add one, e.g.\n[env.{name}.registry]\nprovider = \"oci\"\nhost = \"ghcr.io\"\nprefix = \"acme\""
                )),
            )));
        };
        if let Err(problem) = registry.validate() {
            return Err(invalid(cfg.error_at(
                &[
                    "env".into(),
                    KeySeg::from(name.as_str()),
                    "registry".into(),
                    problem.key.into(),
                ],
                problem.message,
                problem.help,
            )));
        }
        Ok(Target {
            config: Some(registry),
            loaded: Some((cfg, name.clone())),
        })
    }

    /// Parses a reference, placing bare names in the environment's registry.
    pub(crate) fn reference(&self, what: &str, text: &str) -> Result<ImageRef, Failure> {
        let parsed = match &self.config {
            Some(r) => r.place(text),
            None => ImageRef::parse(text),
        };
        parsed.map_err(|e| {
            registry_failure(ferry_registry::Error::Reference(e)).with_context(what, text)
        })
    }

    fn immutable(&self) -> bool {
        self.config.as_ref().is_some_and(|r| r.immutable)
    }
}

trait WithContext {
    fn with_context(self, what: &str, text: &str) -> Self;
}

impl WithContext for Failure {
    fn with_context(self, what: &str, text: &str) -> Self {
        // The input is echoed, but never a password someone wrote into a reference.
        let text = ferry_registry::reference::redact_credentials(text);
        let report = self.report.wrap_err(format!("{what} `{text}`"));
        Failure {
            exit: self.exit,
            report,
        }
    }
}

/// The password for --username: stdin with --password-stdin, else FERRY_REGISTRY_PASSWORD.
fn password(opts: &RegistryOpts, env: &Environment) -> Result<Option<SecretString>, Failure> {
    if opts.password_stdin {
        if opts.username.is_none() {
            return Err(invalid(miette::miette!(
                "--password-stdin needs --username (or FERRY_REGISTRY_USERNAME)"
            )));
        }
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| invalid(miette::miette!("cannot read the password from stdin: {e}")))?;
        let text = text.trim_end_matches(['\n', '\r']).to_owned();
        if text.is_empty() {
            return Err(invalid(miette::miette!("--password-stdin: stdin is empty")));
        }
        return Ok(Some(SecretString::from(text)));
    }
    match (&opts.username, env.get("FERRY_REGISTRY_PASSWORD")) {
        (Some(_), Some(p)) => Ok(Some(SecretString::from(p.to_owned()))),
        (Some(_), None) => Err(invalid(miette::miette!(
            help = "pipe it in: `echo \"$TOKEN\" | ferry image push ... --username USER --password-stdin`",
            "--username needs a password: --password-stdin or FERRY_REGISTRY_PASSWORD"
        ))),
        (None, _) => Ok(None),
    }
}

/// The credential chain for a command whose destination is `dest` (flags apply to it).
pub(crate) fn client_for(
    opts: &RegistryOpts,
    target: &Target,
    dest: &ImageRef,
    env: &Environment,
) -> Result<Client, Failure> {
    let mut chain = AuthChain::default();
    if let (Some(user), Some(pass)) = (&opts.username, password(opts, env)?) {
        chain = chain.or_else(BasicAuth::new(dest.registry(), user.clone(), pass));
    }
    chain = provider_auth(chain, target, dest, env)?;
    if let Some(hub) = DockerHubAuth::from_env(env.vars()) {
        chain = chain.or_else(hub);
    }
    let docker = DockerConfigAuth::from_env(env.vars())
        .map_err(|e| registry_failure(ferry_registry::Error::Auth(e)))?;
    chain = chain.or_else(docker);
    let mut builder = Client::builder()
        .auth(Arc::new(chain))
        .clock(Arc::new(FnClock(now)))
        .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")));
    if opts.plain_http {
        builder = builder.plain_http(dest.registry());
    }
    builder.build().map_err(registry_failure)
}

/// The provider's own login: ECR and ACR from ferry-auth's cloud credentials. With
/// `[env.NAME.registry] provider` set, its login must work; a host only recognised as ECR or
/// ACR by its name falls back to the other sources when no cloud credentials are set up.
fn provider_auth(
    chain: AuthChain,
    target: &Target,
    dest: &ImageRef,
    env: &Environment,
) -> Result<AuthChain, Failure> {
    let host = dest.registry();
    let configured = target.config.as_ref().map(|r| r.provider);
    let kind = configured.or_else(|| {
        if ferry_registry_ecr_host(host) {
            Some(Provider::Ecr)
        } else if host.ends_with(".azurecr.io") {
            Some(Provider::Acr)
        } else {
            None
        }
    });
    let located = target
        .loaded
        .as_ref()
        .map(|(cfg, name)| (cfg, name.as_str()));
    let auth = located
        .and_then(|(cfg, name)| cfg.config.env.get(name))
        .and_then(|e| e.auth.clone())
        .unwrap_or_default();
    let login = match kind {
        Some(Provider::Ecr) => ecr_login(&auth, located, host, env),
        Some(Provider::Acr) => acr_login(&auth, located, host, env),
        _ => return Ok(chain),
    };
    match login {
        Ok(source) => Ok(chain.or_else_shared(source)),
        Err(failure) if configured.is_some() => Err(failure),
        Err(failure) => {
            tracing::debug!(error = %failure.report, "no {} login for {host}", kind.map_or("", |k| k.as_str()));
            Ok(chain)
        }
    }
}

#[cfg(feature = "ecr")]
fn ferry_registry_ecr_host(host: &str) -> bool {
    ferry_registry::auth::ecr::parse_ecr_host(host).is_some()
}

#[cfg(not(feature = "ecr"))]
fn ferry_registry_ecr_host(host: &str) -> bool {
    host.contains(".dkr.ecr.")
}

/// Where a provider's login failed in ferry.toml, when it came from there.
type Located<'a> = Option<(&'a LoadedConfig, &'a str)>;

#[cfg(feature = "ecr")]
fn ecr_login(
    auth: &ferry_auth::config::AuthConfig,
    located: Located<'_>,
    host: &str,
    env: &Environment,
) -> Result<SharedAuth, Failure> {
    use ferry_registry::auth::ecr::{EcrAuth, parse_ecr_host};
    let region = parse_ecr_host(host).map(|(_, region)| region);
    let aws = auth
        .aws(&crate::commands::auth::context(env), region.as_deref())
        .map_err(|e| crate::commands::auth::auth_failure(e, located))?;
    let ecr = EcrAuth::from_sdk_config(&aws.sdk_config(), Arc::new(FnClock(now))).with_host(host);
    Ok(Arc::new(ecr))
}

#[cfg(feature = "acr")]
fn acr_login(
    auth: &ferry_auth::config::AuthConfig,
    located: Located<'_>,
    host: &str,
    env: &Environment,
) -> Result<SharedAuth, Failure> {
    use ferry_registry::auth::acr::AcrAuth;
    let ctx = crate::commands::auth::context(env);
    let cred = auth
        .azure(&ctx)
        .map_err(|e| crate::commands::auth::auth_failure(e, located))?;
    let tenant = cred.tenant_id().to_owned();
    let acr = AcrAuth::new(ctx.http.clone(), Arc::new(AzureAad(Arc::new(cred))))
        .with_tenant(tenant)
        .with_host(host);
    Ok(Arc::new(acr))
}

#[cfg(not(feature = "ecr"))]
fn ecr_login(
    _: &ferry_auth::config::AuthConfig,
    _: Located<'_>,
    _: &str,
    _: &Environment,
) -> Result<SharedAuth, Failure> {
    Err(not_built("ecr"))
}

#[cfg(not(feature = "acr"))]
fn acr_login(
    _: &ferry_auth::config::AuthConfig,
    _: Located<'_>,
    _: &str,
    _: &Environment,
) -> Result<SharedAuth, Failure> {
    Err(not_built("acr"))
}

#[cfg(not(all(feature = "ecr", feature = "acr")))]
fn not_built(provider: &str) -> Failure {
    invalid(miette::miette!(
        "provider `{provider}` needs a ferry built with the `{provider}` feature"
    ))
}

/// ferry-auth's Azure AD credential as the token source ACR logins start from.
#[cfg(feature = "acr")]
#[derive(Debug)]
struct AzureAad(ferry_auth::azure::SharedAzureCredential);

#[cfg(feature = "acr")]
#[async_trait::async_trait]
impl ferry_registry::auth::acr::AadTokenSource for AzureAad {
    async fn aad_token(
        &self,
        scope: &str,
    ) -> Result<SecretString, Box<dyn std::error::Error + Send + Sync>> {
        Ok(self.0.token(scope).await?.token)
    }
}

/// Parses tags given as `what` (`--tag` or `TAG`), naming the bad one.
pub(crate) fn parse_tags(what: &str, tags: &[String]) -> Result<Vec<Tag>, Failure> {
    tags.iter()
        .map(|t| {
            Tag::parse(t).map_err(|e| {
                registry_failure(ferry_registry::Error::Reference(e)).with_context(what, t)
            })
        })
        .collect()
}

fn write_out(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(crate::commands::io_failure)
}

fn write_json(value: &serde_json::Value) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value).expect("JSON values serialise");
    write_out(&format!("{text}\n"))
}

/// In GitHub Actions, the pushed image is a step output (`digest`, `image`).
fn step_outputs(report: &CopyReport, env: &Environment) {
    let Some(path) = env.get("GITHUB_OUTPUT") else {
        return;
    };
    let lines = format!("digest={}\nimage={}\n", report.digest, report.pinned);
    let written = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .and_then(|mut f| f.write_all(lines.as_bytes()));
    if let Err(e) = written {
        tracing::warn!(error = %e, "cannot write the step outputs to GITHUB_OUTPUT");
    }
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn tag_line(outcomes: &[TagOutcome]) -> String {
    outcomes
        .iter()
        .map(|o| match (&o.previous, o.written) {
            (None, _) => format!("{} (new)", o.tag),
            (Some(_), false) => format!("{} (unchanged)", o.tag),
            (Some(prev), true) => format!("{} (moved from {})", o.tag, prev.short()),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Prints a copy report.
pub(crate) fn print_report(
    report: &CopyReport,
    verb: &str,
    output: ImageOutput,
    started: Instant,
    env: &Environment,
) -> Result<(), Failure> {
    step_outputs(report, env);
    let elapsed = started.elapsed().as_secs_f64();
    if output == ImageOutput::Json {
        let mut value = serde_json::to_value(report).expect("reports serialise");
        value["elapsed_seconds"] = serde_json::json!((elapsed * 1000.0).round() / 1000.0);
        return write_json(&value);
    }
    let b = &report.blobs;
    let mut text = if report.unchanged {
        format!(
            "unchanged: {} already has {} and its tags\n",
            report.repository, report.digest
        )
    } else {
        format!("{verb} {} to {}\n", report.source, report.repository)
    };
    text.push_str(&format!("  digest  {}\n", report.digest));
    text.push_str(&format!("  image   {}\n", report.pinned));
    if !report.tags.is_empty() {
        text.push_str(&format!("  tags    {}\n", tag_line(&report.tags)));
    }
    if !report.unchanged {
        text.push_str(&format!(
            "  blobs   {} ({}): {} uploaded ({}), {} mounted, {} already there\n",
            b.total,
            human_bytes(report.blob_bytes_total),
            b.uploaded,
            human_bytes(report.blob_bytes_uploaded),
            b.mounted,
            b.present
        ));
    }
    if report.stats.retries > 0 {
        text.push_str(&format!(
            "  retries {} ({} uploads resumed, {} restarted)\n",
            report.stats.retries, report.stats.uploads_resumed, report.stats.uploads_restarted
        ));
    }
    text.push_str(&format!("  time    {elapsed:.2} s\n"));
    write_out(&text)
}

async fn push(args: &PushArgs, env: &Environment) -> CmdResult {
    let started = Instant::now();
    let target = Target::load(&args.registry)?;
    // `./out`, `out` or `image.tar` without a transport names a local file or directory (even
    // when it would also read as a Docker Hub name): say which transport to write, as
    // skopeo's users expect, rather than ask a registry for it.
    let path = std::path::Path::new(&args.source);
    if !args.source.contains(':') && path.exists() {
        let transport = if path.is_dir() {
            format!("oci:{}", args.source)
        } else {
            format!(
                "docker-archive:{0} (a `docker save` tarball) or oci-archive:{0}",
                args.source
            )
        };
        return Err(Failure::new(
            Exit::InvalidInput,
            miette::miette!(
                help = format!(
                    "did you mean {transport}? (for the registry image of that name, write docker://{})",
                    args.source
                ),
                "SOURCE `{}` is a local path without a transport (oci:, oci-archive:, docker-archive:)",
                args.source
            ),
        ));
    }
    let source_spec = SourceSpec::parse(&args.source)
        .map_err(|e| registry_failure(e).with_context("SOURCE", &args.source))?;
    // With --env, a bare source name (`shop:staging-latest`) is in the environment's registry.
    let source_spec = match source_spec {
        SourceSpec::Registry(_)
            if target.config.is_some()
                && !args.source.starts_with("docker://")
                && !ferry_registry::config::has_explicit_registry(&args.source) =>
        {
            SourceSpec::Registry(target.reference("SOURCE", &args.source)?)
        }
        other => other,
    };
    let dest = target.reference("DEST", &args.dest)?;
    let tags = parse_tags("--tag", &args.tags)?;
    let client = client_for(&args.registry, &target, &dest, env)?;
    let source = source_spec.open(&client).await.map_err(registry_failure)?;
    let options = CopyOptions {
        concurrency: usize::from(args.transfer.jobs),
        immutable: args.transfer.immutable || target.immutable(),
        chunk_size: args.transfer.chunk_size,
        mount: !args.transfer.no_mount,
    };
    let report = ferry_registry::copy_image(&client, source.as_ref(), &dest, &tags, &options)
        .await
        .map_err(registry_failure)?;
    let verb = if source_spec.registry_image().is_some() {
        "copied"
    } else {
        "pushed"
    };
    print_report(&report, verb, args.registry.output, started, env)?;
    Ok(Exit::Success)
}

/// The environment's registry, the reference (`what` names it in errors) and a client for it.
fn connect(
    opts: &RegistryOpts,
    what: &str,
    reference: &str,
    env: &Environment,
) -> Result<(Target, ImageRef, Client), Failure> {
    let target = Target::load(opts)?;
    let image = target.reference(what, reference)?;
    let client = client_for(opts, &target, &image, env)?;
    Ok((target, image, client))
}

/// Prints `json()` with `-o json`, else `text()`.
fn emit(
    output: ImageOutput,
    json: impl FnOnce() -> serde_json::Value,
    text: impl FnOnce() -> String,
) -> CmdResult {
    match output {
        ImageOutput::Json => write_json(&json())?,
        ImageOutput::Text => write_out(&text())?,
    }
    Ok(Exit::Success)
}

async fn tag(args: &TagArgs, env: &Environment) -> CmdResult {
    let tags = parse_tags("TAG", &args.tags)?;
    let (target, image, client) = connect(&args.registry, "REF", &args.reference, env)?;
    let immutable = args.immutable || target.immutable();
    let outcomes = ferry_registry::tag_image(&client, &image, &tags, immutable)
        .await
        .map_err(registry_failure)?;
    let digest = ferry_registry::resolve(&client, &image.repo_only().with_tag(tags[0].clone()))
        .await
        .map_err(registry_failure)?;
    emit(
        args.registry.output,
        || {
            serde_json::json!({
                "repository": image.repo_only().to_string(),
                "digest": digest,
                "tags": outcomes,
            })
        },
        || {
            format!(
                "tagged {} as {}\n",
                image.repo_only().with_digest(digest.clone()),
                tag_line(&outcomes)
            )
        },
    )
}

async fn resolve(args: &RefArgs, env: &Environment) -> CmdResult {
    let (_, image, client) = connect(&args.registry, "REF", &args.reference, env)?;
    let digest = ferry_registry::resolve(&client, &image)
        .await
        .map_err(registry_failure)?;
    emit(
        args.registry.output,
        || {
            serde_json::json!({
                "reference": image.to_string(),
                "digest": digest,
                "pinned": image.repo_only().with_digest(digest.clone()).to_string(),
            })
        },
        || format!("{digest}\n"),
    )
}

async fn ls(args: &RefArgs, env: &Environment) -> CmdResult {
    let (_, image, client) = connect(&args.registry, "REPOSITORY", &args.reference, env)?;
    let tags = client.list_tags(&image).await.map_err(registry_failure)?;
    emit(
        args.registry.output,
        || {
            serde_json::json!({
                "repository": image.repo_only().to_string(),
                "tags": tags,
            })
        },
        || tags.iter().map(|t| format!("{t}\n")).collect(),
    )
}

async fn inspect(args: &RefArgs, env: &Environment) -> CmdResult {
    let (_, image, client) = connect(&args.registry, "REF", &args.reference, env)?;
    let info = ferry_registry::inspect(&client, &image)
        .await
        .map_err(registry_failure)?;
    emit(
        args.registry.output,
        || serde_json::to_value(&info).expect("image info serialises"),
        || inspect_text(&info),
    )
}

fn inspect_text(info: &ferry_registry::ImageInfo) -> String {
    let mut text = format!(
        "{}\n  digest      {}\n  media type  {}\n  kind        {}\n",
        info.reference, info.digest, info.media_type, info.kind
    );
    for p in &info.platforms {
        text.push_str(&format!("  platform    {:<16} {}\n", p.platform, p.digest));
    }
    if let Some(summary) = &info.config_summary {
        let platform = match (&summary.os, &summary.architecture) {
            (Some(os), Some(arch)) => format!("{os}/{arch}"),
            _ => "unknown".to_owned(),
        };
        text.push_str(&format!("  platform    {platform}\n"));
        if let Some(created) = &summary.created {
            text.push_str(&format!("  created     {created}\n"));
        }
    }
    if let Some(config) = &info.config {
        text.push_str(&format!("  config      {}\n", config.digest));
    }
    if !info.layers.is_empty() {
        text.push_str(&format!(
            "  layers      {} ({})\n",
            info.layers.len(),
            human_bytes(info.layer_bytes)
        ));
        for l in &info.layers {
            text.push_str(&format!(
                "    {}  {:>9}  {}\n",
                l.digest,
                human_bytes(l.size),
                l.media_type
            ));
        }
    }
    text
}

/// Where a build's OCI layout goes before it is pushed.
pub(crate) fn scratch_dir(env: &Environment) -> PathBuf {
    PathBuf::from(env.get("TMPDIR").unwrap_or("/tmp"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(12_345_678), "12.3 MB");
    }
}
