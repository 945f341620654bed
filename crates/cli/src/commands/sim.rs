//! `ferry sim`: run the simulated Kubernetes cluster (ferry-sim) until SIGINT or SIGTERM, with
//! a kubeconfig for kubectl, kube-rs or `ferry` itself.
//!
//! With `--state FILE` it also writes `FILE.kubeconfig` while it runs, as the in-process host
//! of `provider = "sim"` does ([`SimProvider::kubeconfig_path`]): a `ferry deploy` whose sim
//! environment uses that state file finds the file locked and connects through it.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use ferry_deployer::cluster::SimProvider;
use ferry_sim::{Sim, SimConfig, SimError};

use crate::ambient::Environment;
use crate::cli::SimArgs;
use crate::commands::io_failure;
use crate::exit::{CmdResult, Exit, Failure};

fn failure(err: SimError) -> Failure {
    let exit = match &err {
        SimError::ConfigInvalid { .. }
        | SimError::ConfigRead { .. }
        | SimError::StateFormat { .. } => Exit::InvalidInput,
        SimError::StateLocked { .. } => Exit::LockBusy,
        _ => Exit::Failure,
    };
    Failure::new(exit, miette::Report::from_err(err))
}

/// A state file in use: the simulator using it cannot be joined by a second server, but when
/// it publishes its kubeconfig next to the state (as `ferry deploy`'s in-process simulator and
/// `ferry sim --state` do), the help names it for kubectl.
fn start_failure(err: SimError, state: Option<&Path>) -> Failure {
    if let (SimError::StateLocked { .. }, Some(state)) = (&err, state) {
        let kubeconfig = SimProvider::kubeconfig_path(state);
        if kubeconfig.is_file() {
            return Failure::new(
                Exit::LockBusy,
                miette::miette!(
                    help = format!(
                        "the running simulator's kubeconfig is {}: use it with kubectl \
                         (export KUBECONFIG={}) or stop that simulator first",
                        kubeconfig.display(),
                        kubeconfig.display()
                    ),
                    "{err}"
                ),
            );
        }
    }
    failure(err)
}

/// Builds the simulator configuration: the file (if any), then the flags.
pub fn config(args: &SimArgs) -> Result<SimConfig, Failure> {
    let mut config = match &args.config {
        Some(path) => SimConfig::load(path).map_err(failure)?,
        None => SimConfig::default(),
    };
    if let Some(speed) = args.speed {
        config.speed = speed;
    }
    config.validate().map_err(failure)?;
    Ok(config)
}

/// Runs the simulator until a signal, then persists its state (when `--state` is given).
pub async fn run(args: &SimArgs, env: &Environment) -> CmdResult {
    let _ = env;
    let config = config(args)?;
    let mut builder = Sim::builder()
        .config(config)
        .listen(args.listen)
        .tls(args.tls);
    if let Some(state) = &args.state {
        builder = builder.state_file(state);
    }
    let sim = builder
        .start()
        .await
        .map_err(|e| start_failure(e, args.state.as_deref()))?;
    if !sim.address().ip().is_loopback() {
        tracing::warn!(
            "listening on {}: ferry-sim has no authentication, so anyone who can reach this \
             address can read and change the simulated cluster, Secrets included",
            sim.address()
        );
    }
    // The kubeconfig next to the state file, for `ferry deploy` (and kubectl) to find.
    let published: Option<PathBuf> = args.state.as_deref().map(SimProvider::kubeconfig_path);
    let served = async {
        if let Some(path) = &published {
            sim.write_kubeconfig(path).map_err(failure)?;
        }
        if let Some(path) = &args.kubeconfig_out {
            sim.write_kubeconfig(path).map_err(failure)?;
        }
        let signals = StopSignals::listen()?;
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "ferry-sim: Kubernetes API at {}", sim.url()).map_err(io_failure)?;
            match &args.kubeconfig_out {
                Some(path) => writeln!(
                    out,
                    "kubeconfig: {} (export KUBECONFIG={})",
                    path.display(),
                    path.display()
                ),
                None => writeln!(out, "kubeconfig: not written (use --kubeconfig-out FILE)"),
            }
            .map_err(io_failure)?;
            if let (Some(state), Some(published)) = (&args.state, &published) {
                writeln!(
                    out,
                    "state: {} (kubeconfig for ferry deploy: {})",
                    state.display(),
                    published.display()
                )
                .map_err(io_failure)?;
            }
            writeln!(out, "running until Ctrl-C (SIGINT) or SIGTERM").map_err(io_failure)?;
            out.flush().map_err(io_failure)?;
        }
        signals.wait().await;
        tracing::info!("stopping the simulator");
        Ok::<(), Failure>(())
    }
    .await;
    // On every way out (a signal, or stdout closed early): the published kubeconfig is removed
    // while the state's lock is still held (as the in-process host does), so it never removes
    // the kubeconfig of a simulator started on the file afterwards; then the state is saved. A
    // file the user named with --kubeconfig-out (by whatever path) stays.
    if let Some(path) = published {
        let same = |a: &std::path::Path, b: &std::path::Path| {
            a == b
                || matches!(
                    (std::fs::canonicalize(a), std::fs::canonicalize(b)),
                    (Ok(x), Ok(y)) if x == y
                )
        };
        let users = args
            .kubeconfig_out
            .as_deref()
            .is_some_and(|out| same(out, &path));
        if !users {
            let _ = std::fs::remove_file(path);
        }
    }
    let stopped = sim.shutdown().await.map_err(failure);
    served?;
    stopped?;
    Ok(Exit::Success)
}

/// SIGINT and SIGTERM, listened for from creation on: until then a signal would kill the
/// process without saving its state, so they are registered before "running until" is printed.
struct StopSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn listen() -> Result<Self, Failure> {
        use tokio::signal::unix::{SignalKind, signal};
        let listen = |kind: SignalKind, name: &str| {
            signal(kind).map_err(|e| {
                Failure::new(
                    Exit::Failure,
                    miette::miette!("cannot listen for {name}: {e}"),
                )
            })
        };
        Ok(StopSignals {
            interrupt: listen(SignalKind::interrupt(), "SIGINT")?,
            terminate: listen(SignalKind::terminate(), "SIGTERM")?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}
