//! The command line, declared with clap. Only parsing lives here; each command's behaviour is in
//! [`crate::commands`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::ambient::Environment;

/// ferry ships containerised apps to Kubernetes (EKS, AKS, any kubeconfig, or a built-in
/// simulator) from CI: short-lived OIDC credentials, images tagged with the commit SHA,
/// server-side apply, real health checks, automatic rollback, DNS and a cost budget.
#[derive(Debug, Parser)]
#[command(
    name = "ferry",
    version,
    propagate_version = true,
    max_term_width = 100,
    after_help = "Exit codes: run `ferry exit-codes`. Config: ./ferry.toml unless --config is given."
)]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// More log output on stderr (-v info, -vv debug, -vvv trace). FERRY_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// When to use colour. NO_COLOR in the environment means never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    pub color: ColorChoice,
}

/// When to use colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless NO_COLOR is set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

impl ColorChoice {
    /// Whether to colour stderr.
    pub fn enabled_for_stderr(self, env: &Environment) -> bool {
        use std::io::IsTerminal as _;
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => env.get("NO_COLOR").is_none() && std::io::stderr().is_terminal(),
        }
    }
}

/// Where the config file is; every command that reads `ferry.toml` flattens this.
#[derive(Debug, Clone, Args)]
pub struct ConfigArg {
    /// The config file.
    #[arg(long, short = 'c', value_name = "FILE", env = "FERRY_CONFIG", default_value = "ferry.toml")]
    pub config: PathBuf,
}

/// ferry's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// List ferry's exit codes and what each means.
    ExitCodes,
}
