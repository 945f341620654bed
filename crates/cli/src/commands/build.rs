//! `ferry build`: build an image with a daemonless builder into an OCI layout, then push it with
//! ferry-registry (several tags, one upload).
//!
//! Builders, in the order `--builder auto` tries them: `buildah` (chroot isolation, vfs storage:
//! works unprivileged-in-a-container and as root without a daemon), `podman` (the same), then
//! `docker buildx` when a Docker daemon answers. buildah and podman keep their storage under
//! `--storage` (default `~/.cache/ferry/containers`), separate from the host's, so layer caching
//! works across builds without clashing with another storage driver. When no builder is
//! installed the error says what to install.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use clap::{Args, ValueEnum};
use ferry_registry::{CopyOptions, SourceSpec};

use super::image::{
    ImageOutput, RegistryOpts, Target, TransferOpts, client_for, print_report, registry_failure,
};
use crate::ambient::Environment;
use crate::exit::{CmdResult, Exit, Failure};

/// Which builder to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BuilderChoice {
    /// The first available: buildah, podman, docker buildx.
    Auto,
    /// buildah (daemonless).
    Buildah,
    /// podman (daemonless).
    Podman,
    /// docker buildx (needs a running Docker daemon).
    Docker,
}

/// `ferry build`.
#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("out").required(true).multiple(true).args(["push", "layout"])))]
pub struct BuildArgs {
    /// The build context.
    #[arg(value_name = "CONTEXT", default_value = ".")]
    pub context: PathBuf,
    /// The Dockerfile (default: CONTEXT/Dockerfile, else CONTEXT/Containerfile).
    #[arg(long, short = 'f', value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Push the image here (`REGISTRY/REPO:TAG`; with --env, `REPO:TAG`).
    #[arg(long, value_name = "DEST")]
    pub push: Option<String>,
    /// Also keep the image as an OCI image layout in this directory (tag `latest`).
    #[arg(long, value_name = "DIR")]
    pub layout: Option<PathBuf>,
    /// Another tag to push (repeatable): `--tag $GITHUB_SHA --tag latest`.
    #[arg(long = "tag", short = 't', value_name = "TAG")]
    pub tags: Vec<String>,
    /// The builder.
    #[arg(long, value_enum, default_value_t = BuilderChoice::Auto)]
    pub builder: BuilderChoice,
    /// A build argument (repeatable).
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,
    /// The stage to build.
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,
    /// The platform to build for (`linux/amd64`).
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<String>,
    /// Storage for buildah/podman (default ~/.cache/ferry/containers).
    #[arg(long, value_name = "DIR")]
    pub storage: Option<PathBuf>,
    /// How blobs move.
    #[command(flatten)]
    pub transfer: TransferOpts,
    /// Registry and credentials.
    #[command(flatten)]
    pub registry: RegistryOpts,
}

fn invalid(e: impl Into<miette::Report>) -> Failure {
    Failure::new(Exit::InvalidInput, e)
}

/// An executable named `name` on the environment's `PATH`.
fn on_path(name: &str, env: &Environment) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = env.get("PATH")?;
    std::env::split_paths(path)
        .map(|dir| dir.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

#[derive(Debug, Clone)]
enum Builder {
    Buildah(PathBuf),
    Podman(PathBuf),
    Docker(PathBuf),
}

impl Builder {
    fn name(&self) -> &'static str {
        match self {
            Builder::Buildah(_) => "buildah",
            Builder::Podman(_) => "podman",
            Builder::Docker(_) => "docker buildx",
        }
    }
}

async fn succeeds(program: &Path, args: &[&str]) -> bool {
    tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

/// Docker counts only with buildx and a daemon that answers.
async fn docker(env: &Environment) -> Option<Builder> {
    let bin = on_path("docker", env)?;
    (succeeds(&bin, &["buildx", "version"]).await && succeeds(&bin, &["info"]).await)
        .then_some(Builder::Docker(bin))
}

async fn pick_builder(choice: BuilderChoice, env: &Environment) -> Result<Builder, Failure> {
    let found = match choice {
        BuilderChoice::Buildah => on_path("buildah", env).map(Builder::Buildah),
        BuilderChoice::Podman => on_path("podman", env).map(Builder::Podman),
        BuilderChoice::Docker => docker(env).await,
        BuilderChoice::Auto => match on_path("buildah", env) {
            Some(b) => Some(Builder::Buildah(b)),
            None => match on_path("podman", env) {
                Some(p) => Some(Builder::Podman(p)),
                None => docker(env).await,
            },
        },
    };
    found.ok_or_else(|| {
        let wanted = match choice {
            BuilderChoice::Auto => "buildah, podman, or docker with buildx and a running daemon",
            BuilderChoice::Buildah => "buildah",
            BuilderChoice::Podman => "podman",
            BuilderChoice::Docker => "docker with buildx and a running daemon",
        };
        Failure::new(
            Exit::Failure,
            miette::miette!(
                help = "install a daemonless builder: `apt-get install buildah` (Debian, Ubuntu), \
                        `dnf install buildah` (Fedora), or build elsewhere and push the result \
                        with `ferry image push oci:DIR DEST`",
                "no container builder found: ferry build needs {wanted} on PATH"
            ),
        )
    })
}

fn dockerfile(args: &BuildArgs) -> Result<PathBuf, Failure> {
    if !args.context.is_dir() {
        return Err(invalid(miette::miette!(
            "the build context {} is not a directory",
            args.context.display()
        )));
    }
    let file = match &args.file {
        Some(f) => f.clone(),
        None => {
            let docker = args.context.join("Dockerfile");
            let container = args.context.join("Containerfile");
            if !docker.exists() && container.exists() {
                container
            } else {
                docker
            }
        }
    };
    if !file.is_file() {
        return Err(invalid(miette::miette!(
            help = "pass the file with --file",
            "no Dockerfile at {}",
            file.display()
        )));
    }
    Ok(file)
}

fn storage_dirs(args: &BuildArgs, env: &Environment) -> (PathBuf, PathBuf) {
    let base = args.storage.clone().unwrap_or_else(|| {
        let cache = env
            .get("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| env.get("HOME").map(|h| Path::new(h).join(".cache")))
            .unwrap_or_else(|| PathBuf::from("/var/tmp"));
        cache.join("ferry/containers")
    });
    (base.join("storage"), base.join("run"))
}

async fn run_step(program: &Path, args: &[String], what: &str) -> Result<(), Failure> {
    tracing::info!(command = %format!("{} {}", program.display(), args.join(" ")), "running");
    // The builder's output goes to stderr: stdout stays ferry's (JSON with --output json).
    let status = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::io::stderr())
        .stderr(std::io::stderr())
        .status()
        .await
        .map_err(|e| {
            Failure::new(
                Exit::Failure,
                miette::miette!("cannot run {}: {e}", program.display()),
            )
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(Failure::new(
            Exit::Failure,
            miette::miette!("{what} failed ({status}); its output is above"),
        ))
    }
}

fn common_build_flags(args: &BuildArgs, file: &Path) -> Vec<String> {
    let mut out = vec!["-f".to_owned(), file.display().to_string()];
    for a in &args.build_args {
        out.push("--build-arg".to_owned());
        out.push(a.clone());
    }
    if let Some(t) = &args.target {
        out.push("--target".to_owned());
        out.push(t.clone());
    }
    if let Some(p) = &args.platform {
        out.push("--platform".to_owned());
        out.push(p.clone());
    }
    out
}

/// Builds into `layout` (an OCI layout directory); returns the source to push from.
async fn build_into(
    builder: &Builder,
    args: &BuildArgs,
    file: &Path,
    layout: &Path,
    scratch: &Path,
    env: &Environment,
) -> Result<String, Failure> {
    let name = format!(
        "localhost/ferry-build-{}-{}",
        std::process::id(),
        short_random()
    );
    match builder {
        Builder::Buildah(bin) | Builder::Podman(bin) => {
            let (root, runroot) = storage_dirs(args, env);
            let global = vec![
                "--root".to_owned(),
                root.display().to_string(),
                "--runroot".to_owned(),
                runroot.display().to_string(),
                "--storage-driver".to_owned(),
                "vfs".to_owned(),
            ];
            let build_verb = if matches!(builder, Builder::Buildah(_)) {
                "bud"
            } else {
                "build"
            };
            let mut build = global.clone();
            build.extend([
                build_verb.to_owned(),
                "--isolation".to_owned(),
                "chroot".to_owned(),
                "--layers".to_owned(),
            ]);
            build.extend(common_build_flags(args, file));
            build.extend([
                "-t".to_owned(),
                name.clone(),
                args.context.display().to_string(),
            ]);
            run_step(bin, &build, &format!("{} build", builder.name())).await?;
            // The push goes to a local directory and needs no login; an empty auth file keeps
            // buildah from insisting on $DOCKER_CONFIG/config.json.
            let authfile = scratch.join("auth.json");
            std::fs::write(&authfile, "{}").map_err(|e| {
                Failure::new(
                    Exit::Failure,
                    miette::miette!("cannot write {}: {e}", authfile.display()),
                )
            })?;
            let mut push = global.clone();
            push.extend([
                "push".to_owned(),
                "--authfile".to_owned(),
                authfile.display().to_string(),
                name.clone(),
                format!("oci:{}:latest", layout.display()),
            ]);
            let pushed = run_step(
                bin,
                &push,
                &format!("{} push to the OCI layout", builder.name()),
            )
            .await;
            let mut rmi = global;
            rmi.extend(["rmi".to_owned(), name]);
            if let Err(e) = run_step(bin, &rmi, "removing the build's local image").await {
                tracing::warn!("{:?}", e.report);
            }
            pushed?;
            Ok(format!("oci:{}:latest", layout.display()))
        }
        Builder::Docker(bin) => {
            std::fs::create_dir_all(layout).map_err(|e| {
                Failure::new(
                    Exit::Failure,
                    miette::miette!("cannot create {}: {e}", layout.display()),
                )
            })?;
            let archive = layout.join("image.tar");
            let mut build = vec!["buildx".to_owned(), "build".to_owned()];
            build.extend(common_build_flags(args, file));
            build.extend([
                "--output".to_owned(),
                format!("type=oci,dest={}", archive.display()),
                args.context.display().to_string(),
            ]);
            run_step(bin, &build, "docker buildx build").await?;
            Ok(format!("oci-archive:{}", archive.display()))
        }
    }
}

fn short_random() -> String {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    format!("{:08x}", h.finish() as u32)
}

/// Runs `ferry build`.
pub async fn run(args: &BuildArgs, env: &Environment) -> CmdResult {
    let started = Instant::now();
    let file = dockerfile(args)?;
    // Check the destination and tags before spending minutes on a build.
    let target = Target::load(&args.registry)?;
    let dest = match &args.push {
        Some(d) => Some(target.reference("--push", d)?),
        None => None,
    };
    let tags = super::image::parse_tags("--tag", &args.tags)?;
    let builder = pick_builder(args.builder, env).await?;
    tracing::info!(builder = builder.name(), "building");

    let scratch = tempfile::Builder::new()
        .prefix("ferry-build-")
        .tempdir_in(super::image::scratch_dir(env))
        .map_err(|e| {
            Failure::new(
                Exit::Failure,
                miette::miette!("cannot create a scratch directory: {e}"),
            )
        })?;
    let layout = match &args.layout {
        Some(dir) => dir.clone(),
        None => scratch.path().join("layout"),
    };
    let source = build_into(&builder, args, &file, &layout, scratch.path(), env).await?;

    let Some(dest) = dest else {
        let message = format!("built with {} into {source}\n", builder.name());
        if args.registry.output == ImageOutput::Json {
            let text = serde_json::json!({"builder": builder.name(), "layout": source});
            println_out(&format!(
                "{}\n",
                serde_json::to_string_pretty(&text).expect("json")
            ))?;
        } else {
            println_out(&message)?;
        }
        return Ok(Exit::Success);
    };
    let client = client_for(&args.registry, &target, &dest, env)?;
    let image = SourceSpec::parse(&source)
        .map_err(registry_failure)?
        .open(&client)
        .await
        .map_err(registry_failure)?;
    let options = CopyOptions {
        concurrency: usize::from(args.transfer.jobs),
        immutable: args.transfer.immutable || target.config.as_ref().is_some_and(|r| r.immutable),
        chunk_size: args.transfer.chunk_size,
        mount: !args.transfer.no_mount,
    };
    let report = ferry_registry::copy_image(&client, image.as_ref(), &dest, &tags, &options)
        .await
        .map_err(registry_failure)?;
    print_report(
        &report,
        &format!("built with {} and pushed", builder.name()),
        args.registry.output,
        started,
        env,
    )?;
    Ok(Exit::Success)
}

fn println_out(text: &str) -> Result<(), Failure> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(crate::commands::io_failure)
}
