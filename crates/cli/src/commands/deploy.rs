//! `ferry deploy`: render the environment's manifests, pin the app's images to `--tag`,
//! validate, plan, lock, record, apply in order, wait for health, roll back on failure, prune.
//! Also the parts `diff`, `rollback`, `history` and `status` share: loading an environment and
//! turning engine errors into exit codes.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ferry_deployer::clock::FnClock;
use ferry_deployer::cluster::{ClusterError, SharedClusterProvider, user_agent};
use ferry_deployer::config::DeployConfig;
use ferry_deployer::engine::{DeployError, Engine, Outcome, ReleaseInput, Settings};
use ferry_deployer::events::SharedEventSink;
use ferry_deployer::images::{self, DigestResolver};
use ferry_deployer::lock::LockError;
use ferry_deployer::manifest::Manifest;
use ferry_deployer::validate::Problem;

use crate::ambient::{Environment, now};
use crate::cli::{DeployArgs, EnvArgs};
use crate::commands::validate;
use crate::config::{EnvConfig, KeySeg, LoadedConfig};
use crate::exit::{CmdResult, Exit, Failure};
use crate::progress::{Mode, Progress};

/// An environment ready to deploy to.
pub(crate) struct EnvContext {
    /// The config file.
    pub cfg: LoadedConfig,
    /// The environment's name.
    pub env_name: String,
    /// The directory of the config file.
    pub base: PathBuf,
    /// Engine settings (file, then flags).
    pub settings: Settings,
    /// `[env.NAME.deploy]`.
    pub deploy: DeployConfig,
    /// The cluster.
    pub provider: SharedClusterProvider,
}

fn invalid(e: impl Into<miette::Report>) -> Failure {
    Failure::new(Exit::InvalidInput, e)
}

/// Loads the config and the environment, checks what a deploy reads of it (every problem at
/// once, as `ferry validate` reports them), builds the settings and the provider.
pub(crate) fn env_context(args: &EnvArgs, env: &Environment) -> Result<EnvContext, Failure> {
    let cfg = LoadedConfig::load(&args.config.config).map_err(invalid)?;
    let env_cfg = cfg.env(&args.env).map_err(invalid)?.clone();
    let Some(cluster) = env_cfg.cluster.clone() else {
        return Err(invalid(cfg.error_at(
            &["env".into(), KeySeg::from(args.env.as_str())],
            format!("environment `{}` has no [env.{}.cluster] table: ferry does not know where to deploy", args.env, args.env),
            Some(format!(
                "add one, e.g. `[env.{}.cluster]` with `provider = \"sim\"` (the built-in simulated cluster) or `provider = \"kubeconfig\"`",
                args.env
            )),
        )));
    };
    let envs = [args.env.clone()];
    let mut problems = validate::app_problems(&cfg, &envs);
    problems.extend(validate::deploy_problems(&cfg, &args.env, &env_cfg));
    if !problems.is_empty() {
        return Err(crate::commands::cost::problems_failure(&cfg, problems));
    }
    let deploy = env_cfg.deploy.clone().unwrap_or_default();
    let holder = crate::providers::holder_identity(env);
    let mut settings = Settings::new(
        cfg.config.app.name.clone(),
        args.env.clone(),
        holder.clone(),
    );
    deploy.apply(&mut settings).map_err(|p| {
        invalid(cfg.error_at(
            &[
                "env".into(),
                KeySeg::from(args.env.as_str()),
                "deploy".into(),
                p.key.into(),
            ],
            p.message,
            None,
        ))
    })?;
    let base = cfg.dir();
    // The kubeconfig file and context, where `$KUBECONFIG` and `~` resolve: a wrong one is
    // invalid input, located at its key, before anything is contacted.
    if let ferry_deployer::cluster::ClusterConfig::Kubeconfig(k) = &cluster {
        let path = crate::providers::kubeconfig_path(k.path.as_deref(), &base, env);
        if let Some(server) =
            ferry_deployer::cluster::skips_tls_verification(&path, k.context.as_deref())
        {
            tracing::warn!(
                "the kubeconfig {} reaches {server} with insecure-skip-tls-verify: the API server's certificate is not checked, so anyone on the way can read and change what ferry sends (tokens and Secrets included)",
                path.display()
            );
        }
        if let Err(p) = ferry_deployer::cluster::check_kubeconfig(&path, k.context.as_deref()) {
            let help = match (p.key, &k.path) {
                ("path", None) => Some(format!(
                    "set `path` in [env.{}.cluster] or $KUBECONFIG to the cluster's kubeconfig",
                    args.env
                )),
                _ => None,
            };
            return Err(invalid(cfg.error_at(
                &[
                    "env".into(),
                    KeySeg::from(args.env.as_str()),
                    "cluster".into(),
                    p.key.into(),
                ],
                p.message,
                help,
            )));
        }
    }
    let provider = crate::providers::provider_for(
        &cluster,
        env_cfg.auth.as_ref(),
        &args.env,
        &base,
        env,
        &user_agent(&holder),
    )
    .map_err(|e| cluster_failure(&args.env, e))?;
    Ok(EnvContext {
        env_name: args.env.clone(),
        cfg,
        base,
        settings,
        deploy,
        provider,
    })
}

impl EnvContext {
    /// `[env.NAME]`.
    fn env_config(&self) -> &EnvConfig {
        &self.cfg.config.env[&self.env_name]
    }

    /// Runs `f` with an engine on the environment's cluster, reporting to `sink`, then lets the
    /// provider go (the in-process simulator saves its state). Engine errors become failures
    /// that name the cluster when it could not be reached.
    pub(crate) async fn with_engine<T>(
        &self,
        settings: Settings,
        sink: SharedEventSink,
        f: impl AsyncFnOnce(&Engine) -> Result<T, DeployError>,
    ) -> Result<T, Failure> {
        self.with_cancellable_engine(settings, sink, None, f).await
    }

    /// [`with_engine`](Self::with_engine) with an engine that SIGINT and SIGTERM cancel.
    pub(crate) async fn with_cancellable_engine<T>(
        &self,
        settings: Settings,
        sink: SharedEventSink,
        signals: Option<&CancelSignals>,
        f: impl AsyncFnOnce(&Engine) -> Result<T, DeployError>,
    ) -> Result<T, Failure> {
        let result = async {
            let client = self
                .provider
                .client()
                .await
                .map_err(|e| cluster_failure(&self.env_name, e))?;
            let mut engine = Engine::new(client, settings, clock(), sink);
            if let Some(s) = signals {
                engine = engine.with_cancellation(s.cancel.clone(), s.abort.clone());
            }
            f(&engine).await.map_err(|e| self.failure(e))
        }
        .await;
        if let Err(e) = self.provider.close().await {
            tracing::warn!(error = %e, "closing the cluster provider failed");
        }
        result
    }

    /// The exit code and report of an engine error; a cluster that could not be reached is
    /// named, with what to check.
    fn failure(&self, e: DeployError) -> Failure {
        if !unreachable(&e) {
            return deploy_failure(e);
        }
        let cluster = self.provider.describe();
        let server = self
            .provider
            .server()
            .map(|s| format!(", API server {s}"))
            .unwrap_or_default();
        let report = miette::Report::from_err(e).wrap_err(format!(
            "cannot reach the cluster of environment `{}` ({cluster}{server})",
            self.env_name
        ));
        let help = format!(
            "check that the cluster is running and that this machine can reach its API server \
             (address, network, VPN, firewall, a private-only endpoint); the cluster is \
             [env.{}.cluster] in {}",
            self.env_name,
            self.cfg.path.display()
        );
        Failure::new(Exit::Failure, Helped { report, help })
    }
}

/// Whether the engine failed because the API server could not be talked to at all
/// (connection refused, name not resolved, TLS, timeout), not because it answered.
fn unreachable(e: &DeployError) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = current {
        if let Some(kube_err) = err.downcast_ref::<kube::Error>() {
            return matches!(
                kube_err,
                kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::RustlsTls(_)
            );
        }
        current = err.source();
    }
    false
}

/// A report with a help line.
#[derive(Debug)]
struct Helped {
    report: miette::Report,
    help: String,
}

impl std::fmt::Display for Helped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.report, f)
    }
}

impl std::error::Error for Helped {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.report.chain().nth(1)
    }
}

impl miette::Diagnostic for Helped {
    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        Some(Box::new(&self.help))
    }
}

/// A cluster provider of environment `env_name` that cannot give a client.
pub(crate) fn cluster_failure(env_name: &str, e: ClusterError) -> Failure {
    let exit = match e {
        ClusterError::NotBuilt { .. } | ClusterError::NotConfigured { .. } => Exit::InvalidInput,
        _ => Exit::Failure,
    };
    // EKS/AKS providers fail with ferry-auth errors inside: their exit code and help win.
    crate::commands::auth::chain_failure_in(e, exit, Some(env_name))
}

/// Prints every problem on its own unwrapped line (so file names stay whole for people and
/// for grep), and returns the one-line summary to report.
fn problems_report(problems: &[Problem]) -> miette::Report {
    let mut err = anstream::stderr().lock();
    for p in problems {
        let _ = writeln!(err, "error: {p}");
    }
    miette::Report::new(InvalidRelease {
        problems: problems.to_vec(),
        summary: None,
    })
}

/// An invalid release: the summary line, with the problems kept for `--output json`.
#[derive(Debug)]
pub(crate) struct InvalidRelease {
    pub(crate) problems: Vec<Problem>,
    /// The summary, when not the count of problems.
    pub(crate) summary: Option<&'static str>,
}

impl std::fmt::Display for InvalidRelease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(s) = self.summary {
            return f.write_str(s);
        }
        let n = self.problems.len();
        write!(
            f,
            "the release is invalid ({n} problem{}); nothing was changed",
            if n == 1 { "" } else { "s" }
        )
    }
}

impl std::error::Error for InvalidRelease {}
impl miette::Diagnostic for InvalidRelease {}

/// With `--output json`, a command that fails before it has an outcome still ends its event
/// stream with a `result`: the exit code, the error and its causes, and each problem of an
/// invalid release with its file and object. The result is returned unchanged.
pub(crate) fn json_result_of(progress: &Progress, result: CmdResult) -> CmdResult {
    let result = github_result_of(progress, result);
    if let Err(f) = &result
        && progress.mode() == Mode::Json
    {
        let problems = json_problems(f);
        let status = match f.exit {
            Exit::InvalidInput => "invalid",
            Exit::Usage => "usage",
            Exit::LockBusy => "lock-busy",
            Exit::AuthFailed => "auth-failed",
            _ => "error",
        };
        progress.json(&serde_json::json!({
            "event": "result",
            "status": status,
            "exit_code": f.exit.code(),
            "error": f.report.to_string(),
            "causes": f.report.chain().skip(1).map(ToString::to_string).collect::<Vec<_>>(),
            "problems": problems,
        }));
    }
    result
}

/// With `GITHUB_ACTIONS=true`, a command that fails before it has an outcome still says so
/// the GitHub way: an `::error file=,line=,col=::` annotation per problem (at most GitHub's 10
/// per step; the summary counts the rest), the step outputs `status` and `exit_code`, and a
/// job summary headed by the outcome. The result is returned unchanged.
fn github_result_of(progress: &Progress, result: CmdResult) -> CmdResult {
    use crate::summary::{MAX_ANNOTATIONS, annotation_place};
    let Err(f) = &result else {
        return result;
    };
    if progress.mode() != Mode::GitHub || f.is_silent() {
        return result;
    }
    let workspace = progress.workspace();
    let problems = json_problems(f);
    let status = match f.exit {
        Exit::InvalidInput => "invalid",
        Exit::LockBusy => "lock-busy",
        Exit::AuthFailed => "auth-failed",
        Exit::Cancelled => "cancelled",
        _ => "error",
    };
    let text = |p: &serde_json::Value| {
        let s = |k: &str| p[k].as_str().unwrap_or("").to_owned();
        match (s("object").is_empty(), s("help").is_empty()) {
            (true, true) => s("message"),
            (true, false) => format!("{} ({})", s("message"), s("help")),
            (false, _) => format!("{}: {}", s("object"), s("message")),
        }
    };
    for p in problems.iter().take(MAX_ANNOTATIONS) {
        let place = annotation_place(p["at"].as_str().unwrap_or(""), workspace.as_deref());
        progress.annotate_at("error", place.as_deref(), "ferry", &text(p));
    }
    if problems.is_empty() {
        progress.annotate_at("error", None, "ferry", &f.report.to_string());
    }
    progress.step_output("status", status);
    progress.step_output("exit_code", &f.exit.code().to_string());
    progress.summary_heading(format!("### ferry: {status} — {}", f.report));
    for p in &problems {
        let at = p["at"].as_str().unwrap_or("");
        progress.summary_line(if at.is_empty() {
            format!("- {}", text(p))
        } else {
            format!("- `{at}`: {}", text(p))
        });
    }
    if problems.len() > MAX_ANNOTATIONS {
        progress.summary_line(format!(
            "\n{} more problems than the {MAX_ANNOTATIONS} annotations GitHub shows per step are listed above only",
            problems.len() - MAX_ANNOTATIONS
        ));
    }
    progress.finish_summary();
    result
}

/// The problems of a failure, for `--output json`: each problem of an invalid release, or the
/// one located config error, or (for any other invalid input) the error itself.
pub(crate) fn json_problems(f: &Failure) -> Vec<serde_json::Value> {
    use serde_json::json;
    if let Some(r) = f.report.downcast_ref::<InvalidRelease>() {
        return r
            .problems
            .iter()
            .map(|p| json!({"at": p.at, "object": p.object, "message": p.message}))
            .collect();
    }
    if f.exit != Exit::InvalidInput {
        return Vec::new();
    }
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(f.report.as_ref());
    while let Some(e) = current {
        if let Some(l) = e.downcast_ref::<crate::config::Located>() {
            return vec![json!({"at": format!("{}:{}:{}", l.path, l.line, l.column),
                "object": "", "message": l.message, "help": l.help})];
        }
        current = e.source();
    }
    vec![json!({"at": "", "object": "", "message": f.report.to_string()})]
}

/// The exit code and report of an engine error.
pub(crate) fn deploy_failure(e: DeployError) -> Failure {
    match e {
        DeployError::Invalid(problems) => {
            Failure::new(Exit::InvalidInput, problems_report(&problems))
        }
        DeployError::Lock(busy @ LockError::Busy { .. }) => Failure::new(
            Exit::LockBusy,
            miette::Report::from_err(busy)
                .wrap_err("the environment is being deployed by someone else (--no-wait)"),
        ),
        DeployError::NoRelease(msg) => Failure::new(Exit::InvalidInput, miette::miette!("{msg}")),
        DeployError::Cancelled(what) => Failure::new(
            Exit::Cancelled,
            miette::miette!("the deploy was cancelled {what}"),
        ),
        other => Failure::new(Exit::Failure, miette::Report::from_err(other)),
    }
}

/// SIGINT and SIGTERM while a deploy runs (what a cancelled CI job sends: GitHub Actions sends
/// SIGINT, then SIGTERM 7.5 s later): the first cancels the deploy, the second aborts it. Both
/// are listened for from creation on, so neither kills the process with the lock held.
pub(crate) struct CancelSignals {
    cancel: tokio_util::sync::CancellationToken,
    abort: tokio_util::sync::CancellationToken,
    listener: tokio::task::JoinHandle<()>,
}

impl CancelSignals {
    pub(crate) fn listen() -> Result<Self, Failure> {
        use tokio::signal::unix::{SignalKind, signal};
        let listen = |kind: SignalKind, name: &str| {
            signal(kind).map_err(|e| {
                Failure::new(
                    Exit::Failure,
                    miette::miette!("cannot listen for {name}: {e}"),
                )
            })
        };
        let mut interrupt = listen(SignalKind::interrupt(), "SIGINT")?;
        let mut terminate = listen(SignalKind::terminate(), "SIGTERM")?;
        let cancel = tokio_util::sync::CancellationToken::new();
        let abort = tokio_util::sync::CancellationToken::new();
        let (c, a) = (cancel.clone(), abort.clone());
        let listener = tokio::spawn(async move {
            let say = |text: String| {
                let _ = writeln!(anstream::stderr().lock(), "{text}");
            };
            let name = tokio::select! {
                _ = interrupt.recv() => "SIGINT",
                _ = terminate.recv() => "SIGTERM",
            };
            say(format!(
                "ferry: {name} received: stopping the deploy (a second signal stops at once)"
            ));
            c.cancel();
            let name = tokio::select! {
                _ = interrupt.recv() => "SIGINT",
                _ = terminate.recv() => "SIGTERM",
            };
            say(format!(
                "ferry: {name} received again: stopping now and releasing the lock"
            ));
            a.cancel();
        });
        Ok(CancelSignals {
            cancel,
            abort,
            listener,
        })
    }
}

impl Drop for CancelSignals {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// A `manifests` path that does not exist: located at its `ferry.toml` key, with the closest
/// entry of its folder as "did you mean".
pub(crate) fn missing_manifests(
    cfg: &LoadedConfig,
    env_name: &str,
    deploy: &DeployConfig,
) -> Option<crate::config::ConfigError> {
    let rel = deploy.manifests_path();
    let path = cfg.dir().join(&rel);
    if path.exists() {
        return None;
    }
    let name = path.file_name()?.to_str()?.to_owned();
    let entries: Vec<String> = path
        .parent()
        .and_then(|p| std::fs::read_dir(p).ok())
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|e| !e.starts_with('.'))
        .collect();
    let help = crate::config::did_you_mean(&name, entries.iter().map(String::as_str))
        .map(|close| format!("did you mean `{}`?", rel.with_file_name(close).display()));
    Some(cfg.error_at(
        &[
            "env".into(),
            KeySeg::from(env_name),
            "deploy".into(),
            "manifests".into(),
        ],
        format!(
            "`{}`: no such file or directory (relative to {})",
            rel.display(),
            cfg.dir().display()
        ),
        help,
    ))
}

/// A located config error on one line, its help after it.
fn located_text(e: &crate::config::ConfigError) -> String {
    use miette::Diagnostic as _;
    match e.help() {
        Some(h) => format!("{e} ({h})"),
        None => e.to_string(),
    }
}

/// The wall clock for the engine.
pub(crate) fn clock() -> ferry_deployer::clock::SharedClock {
    Arc::new(FnClock(now))
}

/// Renders the environment's manifests and pins the app's images.
pub(crate) async fn release_input(
    ctx: &EnvContext,
    tag: Option<&str>,
    commit: Option<&str>,
    resolver: Option<&dyn DigestResolver>,
    progress: &Progress,
) -> Result<ReleaseInput, Failure> {
    use ferry_deployer::events::{DeployEvent, EventSink as _};
    let images_cfg = &ctx.cfg.config.app.images;
    // Both are command-line problems (exit 2, as clap's own): the flag is wrong or missing.
    if let Some(t) = tag
        && !images::valid_tag(t)
    {
        return Err(Failure::new(
            Exit::Usage,
            miette::miette!(
                help = "pass the commit SHA, e.g. --tag \"$(git rev-parse --short HEAD)\"",
                "--tag `{t}` is not a valid image tag (letters, digits, `_`, `.`, `-`; at most 128; not starting with `.` or `-`)"
            ),
        ));
    }
    if tag.is_none() && !images_cfg.is_empty() {
        return Err(Failure::new(
            Exit::Usage,
            miette::miette!(
                help = "pass --tag SHA (or set FERRY_TAG); in GitHub Actions it defaults to $GITHUB_SHA",
                "--tag is required: [app.images] names {} image(s) that ferry sets to the tag (the commit SHA)",
                images_cfg.len()
            ),
        ));
    }
    if let Some(e) = missing_manifests(&ctx.cfg, &ctx.env_name, &ctx.deploy) {
        let _ = writeln!(anstream::stderr().lock(), "error: {}", located_text(&e));
        return Err(invalid(InvalidRelease {
            problems: vec![Problem {
                at: String::new(),
                object: String::new(),
                message: located_text(&e),
            }],
            summary: Some("cannot render the manifests; nothing was changed"),
        }));
    }
    let path = ctx.base.join(ctx.deploy.manifests_path());
    progress.emit(DeployEvent::Stage {
        stage: "render".into(),
        detail: path.display().to_string(),
    });
    let mut manifests = ferry_deployer::render::render(&path).map_err(|e| {
        // One unwrapped line: the file name stays whole; kept for `--output json` too.
        let _ = writeln!(anstream::stderr().lock(), "error: {e}");
        invalid(InvalidRelease {
            problems: vec![e.problem()],
            summary: Some("cannot render the manifests; nothing was changed"),
        })
    })?;
    let (pins, warnings) = match tag {
        Some(t) => images::resolve(&placed_images(ctx)?, t, resolver).await,
        None => (Vec::new(), Vec::new()),
    };
    for w in warnings {
        progress.emit(DeployEvent::Warning { message: w });
    }
    // Images that cannot be pinned are reported with what the cluster finds (kinds,
    // namespaces, references), so one run lists every problem: see `with_problems`.
    let pinned = images::pin(&mut manifests, images_cfg, &pins);
    let problems = image_problems(&manifests, pinned);
    Ok(ReleaseInput {
        manifests,
        tag: tag.map(str::to_owned),
        commit: commit.map(str::to_owned),
        images: pins,
        problems,
    })
}

/// Images that could not be pinned, as problems naming their file, object and container.
fn image_problems(manifests: &[Manifest], pinned: Vec<images::ImageProblem>) -> Vec<Problem> {
    pinned
        .into_iter()
        .map(|p| {
            let m = &manifests[p.index];
            Problem {
                at: m.source.to_string(),
                object: format!("{} {} container {}", m.kind(), m.name(), p.container),
                message: p.message,
            }
        })
        .collect()
}

/// What is known to be wrong with `input` without asking the cluster: nothing when its images
/// pinned (the engine's own checks then run as usual), else those problems and the offline
/// checks', for [`with_problems`] to report when the cluster cannot be asked.
pub(crate) fn known_problems(input: &ReleaseInput) -> Vec<Problem> {
    if input.problems.is_empty() {
        return Vec::new();
    }
    let mut all = input.problems.clone();
    all.extend(ferry_deployer::validate::check_offline(&input.manifests));
    all
}

/// A release with problems found before the cluster was asked fails with exit 3 listing them
/// (and the cluster's, when it could be asked), whatever else went wrong: an unreachable
/// cluster or refused credentials must not hide a mistake in the manifests.
pub(crate) fn with_problems<T>(
    earlier: &[Problem],
    result: Result<T, Failure>,
) -> Result<T, Failure> {
    match result {
        Err(f) if !earlier.is_empty() && f.exit != Exit::InvalidInput => {
            tracing::debug!(error = %f.report, "the cluster could not check the release");
            Err(Failure::new(Exit::InvalidInput, problems_report(earlier)))
        }
        other => other,
    }
}

/// The app's images where this environment keeps them: a repository written without a
/// registry (`shop/api`) is in `[env.NAME.registry]`'s host and prefix when the environment has
/// one (as `ferry image push --env` puts it there), so moving an environment from Docker Hub
/// to ECR or ACR is a change of that table only. Without one, as written.
fn placed_images(ctx: &EnvContext) -> Result<BTreeMap<String, String>, Failure> {
    let images = &ctx.cfg.config.app.images;
    let Some(registry) = &ctx.env_config().registry else {
        return Ok(images.clone());
    };
    images
        .iter()
        .map(|(name, repo)| {
            let placed = registry.place(repo).map_err(|e| {
                invalid(ctx.cfg.error_at(
                    &["app".into(), "images".into(), KeySeg::from(name.as_str())],
                    format!(
                        "`{repo}` is not an image repository in {}: {e}",
                        registry.registry()
                    ),
                    None,
                ))
            })?;
            Ok((name.clone(), placed.repo_only().familiar()))
        })
        .collect()
}

/// The digest resolver, unless `[env.NAME.deploy] resolve_digests = false` (the default on
/// the simulated cluster, whose images are on no registry). It logs in to each image's
/// registry the way `ferry image` does, with the environment's `[registry]` and `[auth]`.
pub(crate) fn digest_resolver(
    ctx: &EnvContext,
    env: &Environment,
) -> Result<Option<crate::providers::RegistryDigests>, Failure> {
    let env_cfg = ctx.env_config();
    let on_sim = matches!(
        env_cfg.cluster,
        Some(ferry_deployer::cluster::ClusterConfig::Sim(_))
    );
    if !ctx.deploy.resolve_digests.unwrap_or(!on_sim) || ctx.cfg.config.app.images.is_empty() {
        return Ok(None);
    }
    let images = placed_images(ctx)?;
    let hosts: Vec<String> = images
        .values()
        .filter_map(|repo| ferry_registry::ImageRef::parse(repo).ok())
        .map(|image| image.registry().to_owned())
        .collect();
    let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
    let client = crate::providers::registry_client(
        env_cfg.registry.as_ref(),
        env_cfg.auth.as_ref(),
        &hosts,
        ferry_registry::auth::AuthChain::default(),
        &ctx.deploy.insecure_registries,
        env,
    )?;
    Ok(Some(crate::providers::RegistryDigests::new(client)))
}

/// The tag: the flag (or FERRY_TAG), else GITHUB_SHA in GitHub Actions.
pub(crate) fn resolve_tag(flag: Option<&str>, env: &Environment) -> Option<String> {
    flag.map(str::to_owned)
        .or_else(|| env.get("GITHUB_SHA").map(str::to_owned))
}

/// Parses a `--timeout`-style flag.
pub(crate) fn duration_arg(s: &str) -> Result<Duration, String> {
    // Plain seconds, or humantime's `90s`, `5m`, `1h30m`.
    if let Ok(secs) = s.trim().parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("`{s}` is not a duration ({e}); write e.g. 90s, 5m, 1h"))
}

/// A deadline flag (`--timeout`, `--lock-ttl`): a duration above zero. A zero deadline would
/// fail the deploy, and then its rollback, before either could start.
pub(crate) fn deadline_arg(s: &str) -> Result<Duration, String> {
    let d = duration_arg(s)?;
    if d.is_zero() {
        return Err(format!(
            "`{s}` is zero: nothing could become ready in it; write e.g. 90s, 5m"
        ));
    }
    Ok(d)
}

fn apply_flags(settings: &mut Settings, args: &DeployArgs) {
    if let Some(t) = args.timeout {
        settings.timeout = t;
        settings.resource_timeout = settings.resource_timeout.min(t);
    }
    if let Some(t) = args.lock_ttl {
        settings.lock.ttl = t;
    }
    if args.no_wait {
        settings.lock.wait = false;
    }
    if args.no_rollback {
        settings.rollback = false;
    }
    if args.no_prune {
        settings.prune = false;
    }
    settings.prune_namespaces = args.prune_namespaces;
    settings.prune_pvcs = args.prune_pvcs;
    settings.force_conflicts = args.force_conflicts;
    settings.adopt_all = args.adopt;
    if let Some(p) = args.parallelism {
        settings.parallelism = p.clamp(1, 256);
    }
}

/// A failed release's exit code: the deadline's (9) when it was the cause, else `otherwise`;
/// and the words that say so.
fn failure_exit(timed_out: bool, otherwise: Exit) -> (Exit, &'static str) {
    if timed_out {
        (Exit::Timeout, " (timeout)")
    } else {
        (otherwise, "")
    }
}

/// Which command's outcome [`finish`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Command {
    /// `ferry deploy`.
    Deploy,
    /// `ferry rollback`.
    Rollback,
}

/// Prints the outcome and picks the exit code.
pub(crate) fn finish(
    outcome: &Outcome,
    progress: &Progress,
    env_name: &str,
    command: Command,
) -> Exit {
    use serde_json::json;
    let (exit, status, text, revision) = match outcome {
        Outcome::Deployed {
            revision,
            unchanged,
            load_balancers,
        } => {
            let mut text = if *unchanged {
                format!("ferry: {env_name} is already at release v{revision}; nothing changed")
            } else {
                match command {
                    Command::Deploy => format!("ferry: deployed release v{revision} to {env_name}"),
                    Command::Rollback => format!(
                        "ferry: rolled {env_name} back: release v{revision} (an earlier release's manifests) is live"
                    ),
                }
            };
            for (svc, addrs) in load_balancers {
                text.push_str(&format!("\n  load balancer {svc}: {}", addrs.join(", ")));
                progress.step_output("load_balancer", &addrs.join(","));
                progress.summary_load_balancer(format!("{svc}: {}", addrs.join(", ")));
            }
            (Exit::Success, "deployed", text, *revision)
        }
        Outcome::RolledBack {
            failed,
            restored,
            revision,
            timed_out,
            ..
        } => {
            let (exit, why) = failure_exit(*timed_out, Exit::RolledBack);
            (
                exit,
                "rolled-back",
                format!(
                    "ferry: release v{failed} failed{why}; rolled back to v{restored} (recorded as v{revision})"
                ),
                *failed,
            )
        }
        Outcome::Failed {
            revision,
            not_rolled_back,
            timed_out,
            ..
        } => {
            let (exit, why) = failure_exit(*timed_out, Exit::FailedNotRolledBack);
            (
                exit,
                "failed",
                format!(
                    "ferry: release v{revision} failed{why} and was not rolled back: {not_rolled_back}"
                ),
                *revision,
            )
        }
        Outcome::Cancelled {
            revision,
            restored,
            left,
        } => (
            Exit::Cancelled,
            "cancelled",
            match restored {
                Some((to, recorded)) => format!(
                    "ferry: release v{revision} was cancelled; rolled back to v{to} (recorded as v{recorded})"
                ),
                None => {
                    format!("ferry: release v{revision} was cancelled and not rolled back: {left}")
                }
            },
            *revision,
        ),
        _ => (
            Exit::Failure,
            "unknown",
            "ferry: unknown outcome".to_owned(),
            0,
        ),
    };
    progress.step_output("revision", &revision.to_string());
    progress.step_output("status", status);
    progress.summary_heading(format!(
        "### ferry: {env_name} — {status} (release v{revision})"
    ));
    progress.finish_summary();
    if progress.mode() == Mode::Json {
        let lbs: Vec<serde_json::Value> = match outcome {
            Outcome::Deployed { load_balancers, .. } => load_balancers
                .iter()
                .map(|(k, a)| json!({"service": k, "addresses": a}))
                .collect(),
            _ => Vec::new(),
        };
        progress.json(&json!({
            "event": "result",
            "status": status,
            "revision": revision,
            "exit_code": exit.code(),
            "load_balancers": lbs,
        }));
    } else {
        let _ = std::io::Write::write_all(
            &mut std::io::stdout().lock(),
            format!("{text}\n").as_bytes(),
        );
    }
    exit
}

/// Runs `ferry deploy`.
pub async fn run(args: &DeployArgs, color: bool, env: &Environment) -> CmdResult {
    let progress = Arc::new(Progress::new(
        Mode::detect(args.env.json(), env),
        color,
        env,
    ));
    json_result_of(&progress, deploy(args, env, &progress).await)
}

async fn deploy(args: &DeployArgs, env: &Environment, progress: &Arc<Progress>) -> CmdResult {
    // Listened for first: a cancel while rendering or resolving digests stops before the first
    // write, never by killing the process.
    let signals = CancelSignals::listen()?;
    let ctx = env_context(&args.env, env)?;
    let tag = resolve_tag(args.tag.as_deref(), env);
    let resolver = digest_resolver(&ctx, env)?;
    let input = release_input(
        &ctx,
        tag.as_deref(),
        args.commit.as_deref(),
        resolver.as_ref().map(|r| r as &dyn DigestResolver),
        progress,
    )
    .await?;
    let mut settings = ctx.settings.clone();
    apply_flags(&mut settings, args);
    let earlier = known_problems(&input);
    progress.summary_release(input.tag.clone(), input.images.clone());
    let outcome = with_problems(
        &earlier,
        ctx.with_cancellable_engine(settings, progress.clone(), Some(&signals), async |engine| {
            engine.deploy(input).await
        })
        .await,
    )?;
    Ok(finish(&outcome, progress, &ctx.env_name, Command::Deploy))
}

/// The manifest problems `ferry validate` reports for `envs` (offline: rendering, required
/// fields, names, labels, workload shapes, image pins). Environments without a `cluster` or
/// `deploy` table are skipped; environments sharing manifests are checked once.
pub(crate) fn check_manifests(cfg: &LoadedConfig, envs: &[String]) -> Vec<Problem> {
    let base = cfg.dir();
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for name in envs {
        let Some(env_cfg) = cfg.config.env.get(name) else {
            continue;
        };
        if env_cfg.cluster.is_none() && env_cfg.deploy.is_none() {
            continue;
        }
        let deploy = env_cfg.deploy.clone().unwrap_or_default();
        let path = base.join(deploy.manifests_path());
        if !seen.insert(path.clone()) {
            continue;
        }
        if let Some(e) = missing_manifests(cfg, name, &deploy) {
            out.push(Problem {
                at: String::new(),
                object: String::new(),
                message: located_text(&e),
            });
            continue;
        }
        let mut manifests = match ferry_deployer::render::render(&path) {
            Ok(m) => m,
            Err(e) => {
                out.push(Problem {
                    at: format!("env.{name}.deploy.manifests"),
                    object: String::new(),
                    message: e.to_string(),
                });
                continue;
            }
        };
        let mut offline = ferry_deployer::validate::check_offline(&manifests);
        offline.extend(ferry_deployer::validate::duplicates_offline(
            &manifests,
            deploy.namespace.as_deref().unwrap_or("default"),
        ));
        out.extend(ferry_deployer::schema::problems(
            &manifests,
            env_cfg
                .deploy
                .as_ref()
                .and_then(|d| d.field_validation)
                .unwrap_or_default(),
            &ferry_deployer::render::source_text,
            &offline,
        ));
        out.extend(offline);
        let pinned = images::pin(&mut manifests, &cfg.config.app.images, &[]);
        out.extend(image_problems(&manifests, pinned));
    }
    out
}

/// `ferry validate`'s failure for manifest problems.
pub(crate) fn manifests_failure(problems: &[Problem]) -> Failure {
    Failure::new(Exit::InvalidInput, problems_report(problems))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(duration_arg("90").unwrap(), Duration::from_secs(90));
        assert_eq!(duration_arg("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(duration_arg("1h30m").unwrap(), Duration::from_secs(5400));
        assert!(duration_arg("soon").is_err());
        assert!(duration_arg("5").is_ok());
        assert!(duration_arg("5x").is_err());
        assert_eq!(deadline_arg("90s").unwrap(), Duration::from_secs(90));
        assert!(deadline_arg("0s").unwrap_err().contains("is zero"));
        assert!(deadline_arg("0").is_err());
    }
}
