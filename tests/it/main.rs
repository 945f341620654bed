//! ferry's end-to-end tests: the real `ferry` binary on the seed examples and the bad-input
//! corpus. Each module is one area; shared helpers are below.

mod cli_help;
mod config_corpus;
mod cost_examples;
mod deploy_corpus;
mod deploy_digests;
mod deploy_faults;
mod deploy_owners;
mod deploy_reports;
mod deploy_scenarios;
mod deploy_single_faults;
mod deploy_support;
mod deploy_unreachable;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root.
fn root() -> PathBuf {
    ferry_testkit::workspace_root()
}

/// An example's ferry.toml.
fn example(name: &str) -> PathBuf {
    root().join("examples").join(name).join("ferry.toml")
}

/// Runs the real `ferry` with `args`, without colour and without an inherited FERRY_CONFIG.
fn ferry<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    ferry_in(args, &[])
}

/// Like [`ferry`], with extra environment variables.
fn ferry_in<I, S>(args: I, vars: &[(&str, &str)]) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Command::new(ferry_testkit::ferry_bin())
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("FERRY_CONFIG")
        .env_remove("FERRY_LOG")
        .env("COLUMNS", "100")
        .envs(vars.iter().copied())
        .output()
        .expect("ferry runs")
}

fn code(out: &Output) -> i32 {
    out.status
        .code()
        .expect("ferry exited, not killed by a signal")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `ferry cost --config CONFIG EXTRA...`.
fn cost(config: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["cost", "--config", config.to_str().unwrap()];
    args.extend_from_slice(extra);
    ferry(&args)
}

/// `ferry cost --format json` on a config, parsed.
fn cost_json(config: &Path, extra: &[&str]) -> (i32, serde_json::Value) {
    let out = cost(config, &[&["--format", "json"], extra].concat());
    let json = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("not JSON ({e}); stderr:\n{}", stderr(&out)));
    (code(&out), json)
}
