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

/// ferry's commands, listed in `ferry --help` in the order of the flow: ship, then look after.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(display_order = 14)]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// List ferry's exit codes and what each means.
    #[command(display_order = 15)]
    ExitCodes,
    /// Estimate an environment's monthly cloud cost and gate it on its budget.
    #[command(
        long_about = "Estimate an environment's monthly cloud cost from [env.NAME.infra] in ferry.toml, \
with prices from ferry's offline catalog (list prices, on-demand, 730 hours a month, USD), and \
gate it on the budget in [env.NAME.budget] or the flags.",
        after_long_help = COST_EXIT_HELP,
        after_help = COST_EXIT_HELP
    )]
    #[command(display_order = 9)]
    Cost(CostArgs),
    /// Check ferry.toml (syntax, keys, types, and the values of every section as the commands
    /// that use them would) and each environment's manifests, offline.
    #[command(
        after_help = "Exit codes: 0 the file is valid; 3 it is not (every problem is \
listed with file:line:column)."
    )]
    #[command(display_order = 10)]
    Validate(ValidateArgs),
    /// Deploy the app to an environment: render, validate, plan, lock, apply in order, wait
    /// for health, roll back automatically on failure, prune.
    #[command(after_help = DEPLOY_EXIT_HELP)]
    #[command(display_order = 1)]
    Deploy(DeployArgs),
    /// Show what `ferry deploy` would change (server-side dry-run): create, update (with a
    /// diff), unchanged, prune. Secret values are never shown.
    #[command(
        after_help = "Exit codes: 0 nothing would change; 6 something would; 3 invalid input \
(unknown or duplicate fields, immutable changes, a Secret value changed out of band). With \
--output json, stdout is one JSON document, also on failure."
    )]
    #[command(display_order = 2)]
    Diff(DiffArgs),
    /// Restore an earlier release (default: the one before the current one).
    #[command(
        after_help = "Exit codes: 0 restored and healthy; 8 the restored release is not \
healthy; 3 no such release; 10 another deploy holds the lock (--no-wait)."
    )]
    #[command(display_order = 3)]
    Rollback(RollbackArgs),
    /// Identity: which OIDC token and cloud identity ferry uses, cluster tokens for kubectl,
    /// and the trust policy that lets exactly this repository deploy.
    #[command(display_order = 11)]
    Auth(AuthArgs),
    /// Print a kubeconfig for an environment's EKS or AKS cluster that uses ferry as its
    /// credential plugin, or merge it into a file (no token in it).
    #[command(
        after_help = "Exit codes: 0 written; 3 invalid input (no such environment, not an eks/aks \
cluster, unknown cluster); 11 authentication failed; 1 the cloud could not be reached."
    )]
    #[command(display_order = 12)]
    Kubeconfig(KubeconfigArgs),
    /// List an environment's releases with their status and tags.
    #[command(display_order = 4)]
    History(EnvArgs),
    /// Show the current release of an environment and the health of its objects.
    #[command(
        after_help = "Exit codes: 0 every object of the current release is ready and it is the \
newest attempt; 13 an object is not ready, or a newer attempt failed or is still running; 3 \
invalid input; 1 the cluster could not be reached."
    )]
    #[command(display_order = 5)]
    Status(EnvArgs),
    /// Point the environment's DNS names at its load balancer, and check that they resolve.
    #[command(subcommand)]
    #[command(display_order = 8)]
    Dns(DnsCommand),
    /// Run the simulated Kubernetes cluster (ferry-sim) until Ctrl-C or SIGTERM, and write a
    /// kubeconfig for it.
    #[command(
        after_help = "Exit codes: 0 stopped by a signal (state saved); 3 invalid SIM.toml or \
state file; 10 another simulator holds the state file; 1 cannot listen."
    )]
    #[command(display_order = 13)]
    Sim(SimArgs),
    /// Images on any registry, no Docker daemon: push from an OCI layout or a `docker save`
    /// archive, copy and promote by digest, tag, resolve, list, inspect.
    #[command(subcommand)]
    #[command(display_order = 7)]
    Image(crate::commands::image::ImageCommand),
    /// Build an image with buildah, podman or docker buildx into an OCI layout, then push it.
    #[command(
        after_help = "Exit codes: 0 built (and pushed); 3 invalid input (no Dockerfile, a malformed \
reference, an immutable tag would move); 11 registry authentication failed; 1 no builder is \
installed, the build failed, or the registry could not be reached."
    )]
    #[command(display_order = 6)]
    Build(crate::commands::build::BuildArgs),
}

/// `ferry sim`.
#[derive(Debug, Clone, Args)]
pub struct SimArgs {
    /// Address to listen on (port 0: any free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub listen: std::net::SocketAddr,
    /// Write a kubeconfig for the simulator to this file (mode 0600).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig_out: Option<PathBuf>,
    /// Keep the cluster in this state file: loaded if it exists, saved as it changes and on
    /// exit. One simulator at a time may use it; while it runs, its kubeconfig is also written
    /// to FILE.kubeconfig, where `ferry deploy` (provider = "sim" on this file) finds it.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Virtual clock speed: 1 is real time, 60 a virtual minute per second (overrides SIM.toml).
    #[arg(long, value_name = "X", allow_negative_numbers = true)]
    pub speed: Option<f64>,
    /// The simulator config: image rules, faults, delays (see the README's Simulator section).
    #[arg(long, value_name = "SIM.toml")]
    pub config: Option<PathBuf>,
    /// Serve HTTPS with a generated CA (the kubeconfig carries it).
    #[arg(long)]
    pub tls: bool,
}

/// `ferry dns` subcommands.
#[derive(Debug, Subcommand)]
pub enum DnsCommand {
    /// Show the DNS changes `ferry dns apply` would make.
    #[command(
        after_help = "Exit codes: 0 nothing to change; 6 changes are pending; 3 invalid input, or \
a record ferry does not own is in the way (see --adopt); 11 the credentials were refused; 1 the \
provider failed."
    )]
    Plan(DnsArgs),
    /// Apply the DNS changes, then wait until the zone's authoritative servers answer the
    /// target and report what public resolvers answer.
    #[command(after_help = DNS_APPLY_EXIT_HELP)]
    Apply(DnsApplyArgs),
    /// Check what the zone's authoritative servers and public resolvers answer for the names.
    #[command(
        after_help = "Exit codes: 0 the authoritative servers answer the target; 9 they do not \
within the verify timeout; 3 invalid input; 11 the credentials were refused; 1 the provider failed."
    )]
    Verify(DnsVerifyArgs),
    /// Move the names from one environment's load balancer to another's (`--env A --to B`),
    /// e.g. from AKS to EKS and back; then verify as `apply` does.
    #[command(after_help = DNS_APPLY_EXIT_HELP)]
    Switch(DnsSwitchArgs),
}

const DNS_APPLY_EXIT_HELP: &str = "Exit codes: 0 applied and the authoritative servers answer \
the target; 3 invalid input or a record ferry does not own is in the way (nothing changed; see \
--adopt); 9 applied but not answered within the verify timeout; 11 the credentials were refused; \
1 the provider failed (rate limits after bounded retries, API errors).";

/// What every `ferry dns` command takes.
#[derive(Debug, Clone, Args)]
pub struct DnsArgs {
    /// The environment and output.
    #[command(flatten)]
    pub env: EnvArgs,
    /// What the names point at: the load balancer's IP address(es) (`192.0.2.10`,
    /// `192.0.2.10,2001:db8::10`) or hostname (`lb-1.elb.us-east-1.amazonaws.com`).
    /// Default: [env.NAME.dns] target, else the LoadBalancer Service or Ingress of the
    /// environment's current release in its cluster.
    #[arg(long, value_name = "IP[,IP]|HOSTNAME")]
    pub target: Option<String>,
    /// Take over records at the configured names that ferry did not create (or another owner
    /// id owns), instead of refusing to touch them.
    #[arg(long)]
    pub adopt: bool,
}

/// `ferry dns verify`.
#[derive(Debug, Clone, Args)]
pub struct DnsVerifyArgs {
    /// The environment and output.
    #[command(flatten)]
    pub env: EnvArgs,
    /// What the names should point at (as for `plan`). Default: [env.NAME.dns] target, else
    /// the load balancer of the environment's current release.
    #[arg(long, value_name = "IP[,IP]|HOSTNAME")]
    pub target: Option<String>,
    /// How long the authoritative servers may take (default [env.NAME.dns.verify] timeout, else 2m).
    #[arg(long, value_name = "DURATION", value_parser = crate::commands::deploy::duration_arg)]
    pub verify_timeout: Option<std::time::Duration>,
}

/// `ferry dns apply`.
#[derive(Debug, Clone, Args)]
pub struct DnsApplyArgs {
    /// The environment, target and output.
    #[command(flatten)]
    pub common: DnsArgs,
    /// Do not wait for the authoritative servers to answer the target.
    #[arg(long)]
    pub no_verify: bool,
    /// How long the authoritative servers may take (default [env.NAME.dns.verify] timeout, else 2m).
    #[arg(long, value_name = "DURATION", value_parser = crate::commands::deploy::duration_arg)]
    pub verify_timeout: Option<std::time::Duration>,
}

/// `ferry dns switch`.
#[derive(Debug, Clone, Args)]
pub struct DnsSwitchArgs {
    /// The environment whose names move (`--env`), the target and output.
    #[command(flatten)]
    pub apply: DnsApplyArgs,
    /// The environment the names move to; its [env.NAME.dns] target (or --target) is where
    /// they will point.
    #[arg(long, value_name = "NAME")]
    pub to: String,
}

const DEPLOY_EXIT_HELP: &str = "Exit codes: 0 deployed and healthy; 3 invalid input (nothing \
changed); 7 failed and rolled back to the previous release; 8 failed and not rolled back; 9 \
--timeout passed (rolled back unless --no-rollback); 10 another deploy holds the lock (--no-wait); \
12 cancelled by SIGINT or SIGTERM (rolled back within cancel_grace, or left for the next \
deploy; the lock is released; a second signal stops at once); 2 bad command line (a missing or \
malformed --tag); 1 runtime failure (the cluster or a registry could not be reached).";

/// Output formats of the deploy commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeployOutput {
    /// Lines for people: live on a terminal, plain in CI, GitHub annotations in Actions.
    Text,
    /// JSON: a stream of events (deploy, rollback) or one document (diff, history, status).
    Json,
}

/// The environment a deploy command works on.
#[derive(Debug, Clone, Args)]
pub struct EnvArgs {
    /// Where ferry.toml is.
    #[command(flatten)]
    pub config: ConfigArg,
    /// The environment (`[env.NAME]` in ferry.toml).
    #[arg(long, short = 'e', value_name = "NAME", env = "FERRY_ENV")]
    pub env: String,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = DeployOutput::Text)]
    pub output: DeployOutput,
}

impl EnvArgs {
    /// Whether JSON output was asked for.
    pub fn json(&self) -> bool {
        self.output == DeployOutput::Json
    }
}

/// `ferry deploy`.
#[derive(Debug, Clone, Args)]
pub struct DeployArgs {
    /// The environment and output.
    #[command(flatten)]
    pub env: EnvArgs,
    /// The image tag to deploy (the commit SHA); the images in [app.images] are set to it.
    /// Default in GitHub Actions: $GITHUB_SHA.
    #[arg(long, short = 't', value_name = "SHA", env = "FERRY_TAG")]
    pub tag: Option<String>,
    /// The commit, recorded in the release (default: the tag).
    #[arg(long, value_name = "SHA")]
    pub commit: Option<String>,
    /// How long to wait for the release to become healthy (`10m`, `90s`); default from
    /// [env.NAME.deploy] timeout, else 10m.
    #[arg(long, value_name = "DURATION", value_parser = crate::commands::deploy::deadline_arg)]
    pub timeout: Option<std::time::Duration>,
    /// Do not roll back automatically when the release fails.
    #[arg(long)]
    pub no_rollback: bool,
    /// Fail at once (exit 10) when another deploy holds the environment's lock.
    #[arg(long)]
    pub no_wait: bool,
    /// The lock lease's duration: how long a killed deploy can block the next one.
    #[arg(long, value_name = "DURATION", value_parser = crate::commands::deploy::deadline_arg)]
    pub lock_ttl: Option<std::time::Duration>,
    /// Take fields other field managers own (server-side apply force).
    #[arg(long)]
    pub force_conflicts: bool,
    /// Take over objects that exist in the cluster without ferry's label for this app and
    /// environment (made by kubectl, Helm, another app); recorded, and never pruned.
    #[arg(long)]
    pub adopt: bool,
    /// Keep objects dropped from the release instead of deleting them.
    #[arg(long)]
    pub no_prune: bool,
    /// Also prune Namespaces dropped from the release.
    #[arg(long)]
    pub prune_namespaces: bool,
    /// Also prune PersistentVolumeClaims dropped from the release.
    #[arg(long)]
    pub prune_pvcs: bool,
    /// Objects applied at once within a step.
    #[arg(long, value_name = "N")]
    pub parallelism: Option<usize>,
}

/// `ferry diff`.
#[derive(Debug, Clone, Args)]
pub struct DiffArgs {
    /// The environment and output.
    #[command(flatten)]
    pub env: EnvArgs,
    /// The image tag (the commit SHA); default in GitHub Actions: $GITHUB_SHA.
    #[arg(long, short = 't', value_name = "SHA", env = "FERRY_TAG")]
    pub tag: Option<String>,
    /// Plan as `ferry deploy --force-conflicts` would.
    #[arg(long)]
    pub force_conflicts: bool,
    /// Plan as `ferry deploy --adopt` would.
    #[arg(long)]
    pub adopt: bool,
}

/// `ferry rollback`.
#[derive(Debug, Clone, Args)]
pub struct RollbackArgs {
    /// The environment and output.
    #[command(flatten)]
    pub env: EnvArgs,
    /// The revision to restore (see `ferry history`). Default: the current release when a newer
    /// deploy failed and was not rolled back (or was killed), else the release before it.
    #[arg(long, value_name = "REVISION")]
    pub to: Option<u32>,
    /// How long to wait for the restored release to become healthy.
    #[arg(long, value_name = "DURATION", value_parser = crate::commands::deploy::deadline_arg)]
    pub timeout: Option<std::time::Duration>,
    /// Fail at once (exit 10) when another deploy holds the environment's lock.
    #[arg(long)]
    pub no_wait: bool,
    /// Also prune Namespaces the newer release added.
    #[arg(long)]
    pub prune_namespaces: bool,
    /// Also prune PersistentVolumeClaims the newer release added.
    #[arg(long)]
    pub prune_pvcs: bool,
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
    #[arg(long, short = 'f', visible_alias = "output", visible_short_alias = 'o', value_enum, default_value_t = CostFormat::Table)]
    pub format: CostFormat,
    /// Monthly budget in USD (`300`, `$299.99`); overrides [env.NAME.budget] monthly_usd.
    #[arg(long, value_name = "USD", value_parser = parse_budget, allow_negative_numbers = true)]
    pub budget: Option<ferry_cost::Decimal>,
    /// A JSON report written earlier by `ferry cost --format json`; each environment is
    /// compared with its entry there, line by line.
    #[arg(long, value_name = "PREVIOUS.json")]
    pub compare_to: Option<PathBuf>,
    /// Largest allowed increase over --compare-to, in USD (`25`) or percent (`10%`); overrides
    /// [env.NAME.budget] max_increase. Needs --compare-to.
    #[arg(
        long,
        value_name = "USD|PCT%",
        value_parser = parse_increase,
        requires = "compare_to",
        allow_hyphen_values = true
    )]
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
    /// Check only this environment; `all` (as for `ferry cost`) or no --env checks all of them.
    #[arg(long, short = 'e', value_name = "NAME|all")]
    pub env: Option<String>,
}

fn parse_budget(text: &str) -> Result<ferry_cost::Decimal, String> {
    ferry_cost::money::parse_usd(text).map_err(|e| e.to_string())
}

fn parse_increase(text: &str) -> Result<ferry_cost::MaxIncrease, String> {
    ferry_cost::MaxIncrease::parse(text).map_err(|e| e.to_string())
}

/// `ferry auth`.
#[derive(Debug, Clone, Args)]
pub struct AuthArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: AuthCommand,
}

const AUTH_EXIT_HELP: &str = "Exit codes: 0 success; 3 invalid input (config); 11 \
authentication failed (no, expired, malformed or refused token; refused credentials; \
throttled); 1 a service could not be reached.";

/// `ferry auth` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum AuthCommand {
    /// Show which identity ferry would use: the OIDC token's source, claims and expiry, and
    /// with --env the AWS principal or Azure AD app it becomes. Never prints a token.
    #[command(after_help = AUTH_EXIT_HELP)]
    Whoami(WhoamiArgs),
    /// Print a kubectl ExecCredential (client.authentication.k8s.io/v1) with a fresh bearer
    /// token for the environment's EKS or AKS cluster: the exec plugin `ferry kubeconfig` sets
    /// up. The token goes to stdout, for kubectl only.
    #[command(after_help = AUTH_EXIT_HELP)]
    Token(AuthEnvArgs),
    /// Print the AWS IAM role trust policy and the Azure federated credential that allow
    /// exactly this repository and branch (or GitHub environment), from [env.NAME.auth.github].
    #[command(after_help = AUTH_EXIT_HELP)]
    TrustPolicy(AuthEnvArgs),
    /// Check whether the current OIDC token's claims pass that trust policy (issuer, audience,
    /// subject, expiry). Without --env: every environment with [auth.github]; passes when the
    /// token could deploy to at least one.
    #[command(
        after_help = "Exit codes: 0 the token passes; 11 it does not (or there is no token); 3 \
invalid input."
    )]
    Check(CheckArgs),
}

/// Output formats of `ferry auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthOutput {
    /// Lines for people.
    Text,
    /// One JSON document.
    Json,
}

/// `ferry auth whoami`.
#[derive(Debug, Clone, Args)]
pub struct WhoamiArgs {
    /// Where ferry.toml is.
    #[command(flatten)]
    pub config: ConfigArg,
    /// Also show the cloud identity of this environment (`[env.NAME.auth]`).
    #[arg(long, short = 'e', value_name = "NAME", env = "FERRY_ENV")]
    pub env: Option<String>,
    /// The audience to request the OIDC token for (default: the cloud's, else GitHub's).
    #[arg(long, value_name = "AUD")]
    pub audience: Option<String>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = AuthOutput::Text)]
    pub output: AuthOutput,
}

/// `ferry auth token` and `ferry auth trust-policy`.
#[derive(Debug, Clone, Args)]
pub struct AuthEnvArgs {
    /// Where ferry.toml is.
    #[command(flatten)]
    pub config: ConfigArg,
    /// The environment (`[env.NAME]` in ferry.toml).
    #[arg(long, short = 'e', value_name = "NAME", env = "FERRY_ENV")]
    pub env: String,
    /// Output format (trust-policy only; a token is always an ExecCredential).
    #[arg(long, short = 'o', value_enum, default_value_t = AuthOutput::Text)]
    pub output: AuthOutput,
}

/// `ferry auth check`.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// Where ferry.toml is.
    #[command(flatten)]
    pub config: ConfigArg,
    /// The environment whose policy to check against (default: every one with
    /// [auth.github]).
    #[arg(long, short = 'e', value_name = "NAME", env = "FERRY_ENV")]
    pub env: Option<String>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = AuthOutput::Text)]
    pub output: AuthOutput,
}

/// `ferry kubeconfig`.
#[derive(Debug, Clone, Args)]
pub struct KubeconfigArgs {
    /// Where ferry.toml is.
    #[command(flatten)]
    pub config: ConfigArg,
    /// The environment (`[env.NAME]` in ferry.toml).
    #[arg(long, short = 'e', value_name = "NAME", env = "FERRY_ENV")]
    pub env: String,
    /// Merge into this kubeconfig (other entries kept, current-context set, mode kept; a new
    /// file is 0600), replaced atomically, instead of printing to stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<std::path::PathBuf>,
}
