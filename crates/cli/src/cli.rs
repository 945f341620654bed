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
    #[arg(
        long,
        short = 'c',
        value_name = "FILE",
        env = "FERRY_CONFIG",
        default_value = "ferry.toml"
    )]
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
    /// Estimate an environment's monthly cloud cost and gate it on its budget.
    #[command(
        long_about = "Estimate an environment's monthly cloud cost from [env.NAME.infra] in ferry.toml, \
with prices from ferry's offline catalog (list prices, on-demand, 730 hours a month, USD), and \
gate it on the budget in [env.NAME.budget] or the flags.",
        after_long_help = COST_EXIT_HELP,
        after_help = COST_EXIT_HELP
    )]
    Cost(CostArgs),
    /// Check ferry.toml: syntax, keys and types, and that the cost catalog knows every value.
    #[command(
        after_help = "Exit codes: 0 the file is valid; 3 it is not (every problem is \
listed with file:line:column)."
    )]
    Validate(ValidateArgs),
}

const COST_EXIT_HELP: &str = "Exit codes: 0 within budget and allowed increase; 3 invalid input \
(config, unknown instance type or region, bad --compare-to file); 4 over budget; 5 over the \
allowed increase. When an estimate is both over budget and over the increase, the exit code is 4.";

/// Output formats of `ferry cost`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CostFormat {
    /// A table for people (the default, on a terminal or not).
    Table,
    /// The versioned JSON report (schema_version 1), for machines and --compare-to.
    Json,
    /// Markdown for a pull-request comment: a summary line first, then the table.
    Markdown,
}

/// `ferry cost`.
#[derive(Debug, Clone, Args)]
pub struct CostArgs {
    /// Where ferry.toml is.
    #[command(flatten)]
    pub config: ConfigArg,
    /// The environment to estimate, or `all` for every environment with an [env.NAME.infra]
    /// table, side by side (each gated on its own budget).
    #[arg(long, short = 'e', value_name = "NAME|all", default_value = "all")]
    pub env: String,
    /// Output format.
    #[arg(long, short = 'f', visible_alias = "output", value_enum, default_value_t = CostFormat::Table)]
    pub format: CostFormat,
    /// Monthly budget in USD (`300`, `$299.99`); overrides [env.NAME.budget] monthly_usd.
    #[arg(long, value_name = "USD", value_parser = parse_budget)]
    pub budget: Option<ferry_cost::Decimal>,
    /// A JSON report written earlier by `ferry cost --format json`; each environment is
    /// compared with its entry there, line by line.
    #[arg(long, value_name = "PREVIOUS.json")]
    pub compare_to: Option<PathBuf>,
    /// Largest allowed increase over --compare-to, in USD (`25`) or percent (`10%`); overrides
    /// [env.NAME.budget] max_increase. Needs --compare-to.
    #[arg(long, value_name = "USD|PCT%", value_parser = parse_increase, requires = "compare_to")]
    pub max_increase: Option<ferry_cost::MaxIncrease>,
    /// Show values the catalog cannot price as "unpriced" and mark the total incomplete,
    /// instead of failing with exit code 3. The gate then applies to the priced part.
    #[arg(long)]
    pub allow_unpriced: bool,
}

/// `ferry validate`.
#[derive(Debug, Clone, Args)]
pub struct ValidateArgs {
    /// Where ferry.toml is.
    #[command(flatten)]
    pub config: ConfigArg,
    /// Check only this environment (default: all of them).
    #[arg(long, short = 'e', value_name = "NAME")]
    pub env: Option<String>,
}

fn parse_budget(text: &str) -> Result<ferry_cost::Decimal, String> {
    ferry_cost::money::parse_usd(text).map_err(|e| e.to_string())
}

fn parse_increase(text: &str) -> Result<ferry_cost::MaxIncrease, String> {
    ferry_cost::MaxIncrease::parse(text).map_err(|e| e.to_string())
}
