//! One module per command. Each takes its parsed arguments and returns a
//! [`crate::exit::CmdResult`].

use std::io::Write as _;

use clap::CommandFactory as _;

use crate::ambient::Environment;
use crate::cli::{Cli, Command};
use crate::exit::{CmdResult, Exit, Failure};

pub mod auth;
pub mod build;
pub mod cost;
pub mod deploy;
pub mod diff;
pub mod dns;
pub mod history;
pub mod image;
pub mod kubeconfig;
pub mod rollback;
pub mod sim;
pub mod status;
pub mod validate;

/// Runs one parsed command line.
pub async fn run(cli: Cli, env: Environment) -> CmdResult {
    let _ = &env;
    match cli.command {
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            // clap_complete panics when its writer fails: generate in memory, then write.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cmd, "ferry", &mut script);
            std::io::stdout()
                .lock()
                .write_all(&script)
                .map_err(io_failure)?;
            Ok(Exit::Success)
        }
        Command::ExitCodes => {
            let mut out = std::io::stdout().lock();
            for exit in Exit::ALL {
                writeln!(out, "{:>3}  {}", exit.code(), exit.describe()).map_err(io_failure)?;
            }
            Ok(Exit::Success)
        }
        Command::Cost(args) => cost::run(&args, cli.global.color, &env),
        Command::Validate(args) => validate::run(&args),
        Command::Deploy(args) => {
            deploy::run(&args, cli.global.color.enabled_for_stderr(&env), &env).await
        }
        Command::Diff(args) => {
            diff::run(&args, cli.global.color.enabled_for_stderr(&env), &env).await
        }
        Command::Rollback(args) => {
            rollback::run(&args, cli.global.color.enabled_for_stderr(&env), &env).await
        }
        Command::Auth(args) => auth::run(&args, &env).await,
        Command::Kubeconfig(args) => kubeconfig::run(&args, &env).await,
        Command::History(args) => history::run(&args, &env).await,
        Command::Status(args) => status::run(&args, &env).await,
        Command::Dns(cmd) => dns::run(&cmd, &env).await,
        Command::Sim(args) => sim::run(&args, &env).await,
        Command::Image(cmd) => image::run(&cmd, &env).await,
        Command::Build(args) => build::run(&args, &env).await,
    }
}

/// Writing to stdout failed (a closed pipe, a full disk). A closed pipe (`ferry status | head`)
/// means the reader has all it wants: the command stops with exit 1 and says nothing, as tools
/// killed by SIGPIPE do; anything else is reported.
pub fn io_failure(err: std::io::Error) -> Failure {
    if err.kind() == std::io::ErrorKind::BrokenPipe {
        return Failure::new(Exit::Failure, crate::exit::ReaderGone);
    }
    Failure::new(Exit::Failure, miette::miette!("cannot write output: {err}"))
}
