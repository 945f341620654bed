//! The `ferry` command line: turns flags, environment variables and `ferry.toml` into calls on
//! ferry's library crates, prints the results, and ends with a documented exit code
//! ([`exit::Exit`]).
//!
//! The binary is thin by design: each subcommand lives in [`commands`] as a function from parsed
//! arguments to an [`exit::CmdResult`]; configuration is resolved in one place ([`config`], with
//! flags > environment variables > file > defaults); ambient state (environment, clock) is read
//! only in [`ambient`].

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;

pub mod ambient;
pub mod cli;
pub mod commands;
pub mod config;
pub mod exit;
pub mod progress;
pub mod providers;
mod summary;

use exit::Exit;

/// Runs the `ferry` command with the process's arguments and environment.
pub fn main() -> ExitCode {
    let env = ambient::Environment::from_process();
    let args = match cli::Cli::try_parse() {
        Ok(args) => args,
        Err(err) => {
            // clap prints help/version to stdout with exit 0, and usage errors to stderr.
            let _ = err.print();
            return if err.use_stderr() {
                Exit::Usage.into()
            } else {
                Exit::Success.into()
            };
        }
    };
    init_tracing(&args, &env);
    init_error_reports(&args.global, &env);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            let _ = writeln!(
                std::io::stderr(),
                "ferry: cannot start the async runtime: {err}"
            );
            return Exit::Failure.into();
        }
    };
    let result = runtime.block_on(commands::run(args, env));
    match result {
        Ok(exit) => exit.into(),
        Err(failure) => {
            if !failure.is_silent() {
                let _ = writeln!(anstream::stderr(), "{:?}", failure.report);
            }
            failure.exit.into()
        }
    }
}

/// Error reports are never wrapped: a `file:line:column` location or a long path stays on one line,
/// where editors, CI log viewers and `grep` can find it.
fn init_error_reports(global: &cli::GlobalArgs, env: &ambient::Environment) {
    let color = global.color.enabled_for_stderr(env);
    let _ = miette::set_hook(Box::new(move |_| {
        Box::new(
            miette::MietteHandlerOpts::new()
                .wrap_lines(false)
                .color(color)
                .build(),
        )
    }));
}

fn init_tracing(args: &cli::Cli, env: &ambient::Environment) {
    use tracing_subscriber::EnvFilter;
    let filter = env
        .get("FERRY_LOG")
        .and_then(|spec| EnvFilter::try_new(spec).ok())
        .unwrap_or_else(|| EnvFilter::new(log_filter(args)));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(args.global.color.enabled_for_stderr(env))
        .with_target(false)
        .try_init();
}

/// The log filter for `-q`/`-v` when FERRY_LOG does not set one.
///
/// Without `-v`, two kinds of lines are left out because they are noise to someone deploying:
/// the warnings of the simulator that `provider = "sim"` runs inside ferry (its controllers'
/// internals; `ferry sim`, where the simulator is the point, keeps them), and kube's own
/// per-request error lines (ferry reports every failure itself, naming the cluster).
fn log_filter(args: &cli::Cli) -> String {
    let global = &args.global;
    let level = match (global.quiet, global.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info,ferry=info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    if global.verbose == 0 && !matches!(args.command, cli::Command::Sim(_)) {
        format!("{level},ferry_sim=error,kube_client=off")
    } else {
        level.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use clap::Parser as _;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What reaches stderr with the default filter of `args`, when ferry, the embedded
    /// simulator and kube each log a warning and an error.
    fn logged(args: &[&str]) -> String {
        let cli = cli::Cli::try_parse_from(args).unwrap();
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(log_filter(&cli)))
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(target: "ferry_cli::commands::deploy", "ferry's own warning");
            tracing::warn!(target: "ferry_sim::state", "controller update rejected");
            tracing::error!(target: "ferry_sim", "cannot persist the simulator state");
            tracing::error!(target: "kube_client::client", "failed with error client error (Connect)");
        });
        String::from_utf8(out.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn the_embedded_simulators_warnings_show_only_when_asked_for() {
        let deploy = logged(&["ferry", "deploy", "--env", "local"]);
        assert!(deploy.contains("ferry's own warning"), "{deploy}");
        assert!(!deploy.contains("controller update rejected"), "{deploy}");
        assert!(!deploy.contains("client error (Connect)"), "{deploy}");
        // A simulator that cannot save its state is the user's business.
        assert!(deploy.contains("cannot persist"), "{deploy}");

        let verbose = logged(&["ferry", "deploy", "--env", "local", "-v"]);
        assert!(verbose.contains("controller update rejected"), "{verbose}");
        assert!(verbose.contains("client error (Connect)"), "{verbose}");

        let sim = logged(&["ferry", "sim"]);
        assert!(sim.contains("controller update rejected"), "{sim}");
    }
}
