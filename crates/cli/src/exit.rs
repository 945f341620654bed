//! ferry's exit codes. They are part of the interface: CI scripts branch on them, so each
//! outcome has its own code and a code never changes meaning. `ferry help exit-codes` and the
//! README list them.

use std::fmt;

/// How a `ferry` invocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Exit {
    /// Everything asked for was done.
    Success = 0,
    /// A runtime failure not covered below (network, I/O, an unexpected server answer).
    Failure = 1,
    /// The command line itself was wrong (unknown flag, missing argument).
    Usage = 2,
    /// The input (config file, manifests, references) is invalid. Nothing was changed.
    InvalidInput = 3,
    /// The cost estimate is over the budget.
    OverBudget = 4,
    /// The cost estimate grew more than the allowed increase over the previous estimate.
    OverIncrease = 5,
    /// A diff or plan found changes to make (and made none).
    ChangesPending = 6,
    /// A deploy failed and ferry rolled back to the previous release.
    RolledBack = 7,
    /// A deploy failed and was not rolled back (--no-rollback, no previous release, or the
    /// rollback failed too).
    FailedNotRolledBack = 8,
    /// A deadline passed before the work finished.
    Timeout = 9,
    /// Another deploy holds the environment's lock (with --no-wait), or another simulator
    /// holds the `ferry sim --state` file.
    LockBusy = 10,
    /// Authentication or authorisation failed (OIDC token, cloud credentials, registry login).
    AuthFailed = 11,
    /// The deploy was cancelled by SIGINT or SIGTERM (a CI job cancelled): recorded as failed
    /// (cancelled) and rolled back when that finished within `cancel_grace`, else left for the
    /// next deploy; the lock released either way.
    Cancelled = 12,
    /// `ferry status`: an object of the current release is not ready, or a newer deploy
    /// attempt failed (or is still running) without becoming the current release.
    Unhealthy = 13,
}

impl Exit {
    /// Every exit code, in order.
    pub const ALL: [Exit; 14] = [
        Exit::Success,
        Exit::Failure,
        Exit::Usage,
        Exit::InvalidInput,
        Exit::OverBudget,
        Exit::OverIncrease,
        Exit::ChangesPending,
        Exit::RolledBack,
        Exit::FailedNotRolledBack,
        Exit::Timeout,
        Exit::LockBusy,
        Exit::AuthFailed,
        Exit::Cancelled,
        Exit::Unhealthy,
    ];

    /// The numeric process exit status.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// A one-line description, as printed by `ferry help exit-codes`.
    pub fn describe(self) -> &'static str {
        match self {
            Exit::Success => "success",
            Exit::Failure => "runtime failure (network, I/O, unexpected server answer)",
            Exit::Usage => "bad command line",
            Exit::InvalidInput => "invalid input (config, manifests, references); nothing changed",
            Exit::OverBudget => "cost estimate over budget",
            Exit::OverIncrease => "cost estimate grew more than the allowed increase",
            Exit::ChangesPending => "diff/plan found changes to make",
            Exit::RolledBack => "deploy failed and was rolled back to the previous release",
            Exit::FailedNotRolledBack => "deploy failed and was not rolled back",
            Exit::Timeout => "deadline passed",
            Exit::LockBusy => {
                "another deploy holds the environment's lock (for ferry sim: another simulator holds its state file)"
            }
            Exit::AuthFailed => "authentication or authorisation failed",
            Exit::Unhealthy => {
                "ferry status: an object is not ready, or a newer deploy attempt did not become current"
            }
            Exit::Cancelled => {
                "deploy cancelled (SIGINT/SIGTERM): rolled back within cancel_grace, or left for the next deploy"
            }
        }
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.code(), self.describe())
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit.code())
    }
}

/// A command that did not succeed: the exit code to end with and the report to print.
#[derive(Debug)]
pub struct Failure {
    /// The exit code.
    pub exit: Exit,
    /// What went wrong, printed to stderr with its cause chain.
    pub report: miette::Report,
}

impl Failure {
    /// A failure with the given exit code.
    pub fn new(exit: Exit, report: impl Into<miette::Report>) -> Self {
        Failure {
            exit,
            report: report.into(),
        }
    }
}

/// Stdout's reader went away (a closed pipe): nothing to report, nobody to report it to.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("the reader of the output went away")]
pub struct ReaderGone;

impl Failure {
    /// Whether this failure is best left unprinted: stdout's reader went away.
    pub fn is_silent(&self) -> bool {
        self.report.downcast_ref::<ReaderGone>().is_some()
    }
}

/// What every command returns: the exit code of a completed run (which may itself signal a
/// finding, such as [`Exit::OverBudget`]), or a failure to report.
pub type CmdResult = Result<Exit, Failure>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_distinct_and_listed_in_order() {
        let codes: HashSet<u8> = Exit::ALL.iter().map(|e| e.code()).collect();
        assert_eq!(codes.len(), Exit::ALL.len());
        for (i, exit) in Exit::ALL.iter().enumerate() {
            assert_eq!(usize::from(exit.code()), i);
        }
    }
}
