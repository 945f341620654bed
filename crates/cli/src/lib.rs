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
    init_tracing(&args.global, &env);
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
            let _ = writeln!(anstream::stderr(), "{:?}", failure.report);
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

fn init_tracing(global: &cli::GlobalArgs, env: &ambient::Environment) {
    use tracing_subscriber::EnvFilter;
    let default = match (global.quiet, global.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info,ferry=info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    let filter = env
        .get("FERRY_LOG")
        .and_then(|spec| EnvFilter::try_new(spec).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(global.color.enabled_for_stderr(env))
        .with_target(false)
        .try_init();
}
