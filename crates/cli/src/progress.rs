//! How a deploy shows its progress: live lines on a terminal (one per resource, updated in
//! place), plain lines in CI, a JSON event stream with `--output json`, and GitHub Actions
//! annotations, step outputs and a job summary when `GITHUB_ACTIONS=true`.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;

use ferry_deployer::events::{Action, DeployEvent, EventSink, ResourceState};
use ferry_deployer::report::FailureReport;

use crate::ambient::Environment;

/// Where and how progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A terminal: resources' lines are redrawn in place.
    Terminal,
    /// Plain lines (CI logs, pipes).
    Plain,
    /// GitHub Actions: plain lines plus workflow commands.
    GitHub,
    /// A stream of JSON events on stdout.
    Json,
}

impl Mode {
    /// Picks the mode: JSON when asked; GitHub Actions when `GITHUB_ACTIONS=true`; a live
    /// terminal when stderr is one and `CI` is not set; plain lines otherwise.
    pub fn detect(json: bool, env: &Environment) -> Mode {
        use std::io::IsTerminal as _;
        if json {
            Mode::Json
        } else if env.flag("GITHUB_ACTIONS") {
            Mode::GitHub
        } else if std::io::stderr().is_terminal()
            && !env.flag("CI")
            && env.get("TERM") != Some("dumb")
        {
            Mode::Terminal
        } else {
            Mode::Plain
        }
    }
}

#[derive(Debug, Default)]
struct Live {
    rows: Vec<(String, ResourceState, String)>,
    drawn: usize,
}

/// The progress printer; an [`EventSink`] for the deploy engine.
#[derive(Debug)]
pub struct Progress {
    mode: Mode,
    color: bool,
    live: Mutex<Live>,
    github_output: Option<PathBuf>,
    github_summary: Option<PathBuf>,
    summary: Mutex<Vec<String>>,
    quiet: bool,
}

/// Whether the log filter lets only errors through (`-q`, or `FERRY_LOG=error`): then progress
/// shows only failure reports. The filter is the one place `-q` is recorded (the binary sets it
/// before any command runs), so the printer reads it rather than take another flag.
fn only_errors() -> bool {
    use tracing::level_filters::LevelFilter;
    LevelFilter::current() < LevelFilter::WARN
}

const MAX_LIVE_ROWS: usize = 30;

fn state_word(s: ResourceState) -> &'static str {
    match s {
        ResourceState::Ready => "ready",
        ResourceState::Pending => "waiting",
        ResourceState::Failed => "FAILED",
    }
}

/// A resource's line in CI logs: `KIND NS/NAME: STATE (DETAIL)`, or `KIND NS/NAME: DETAIL` when
/// the detail already says it is waiting.
fn plain_line(key: &str, state: ResourceState, msg: &str) -> String {
    if state == ResourceState::Pending && msg.starts_with("waiting ") {
        format!("{key}: {msg}")
    } else {
        format!("{key}: {} ({msg})", state_word(state))
    }
}

impl Progress {
    /// A printer in `mode`; GitHub step outputs and summary files come from the environment.
    pub fn new(mode: Mode, color: bool, env: &Environment) -> Self {
        Progress {
            mode,
            color: color && mode == Mode::Terminal,
            live: Mutex::new(Live::default()),
            github_output: env.get("GITHUB_OUTPUT").map(PathBuf::from),
            github_summary: env.get("GITHUB_STEP_SUMMARY").map(PathBuf::from),
            summary: Mutex::new(Vec::new()),
            quiet: only_errors(),
        }
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    fn paint(&self, s: ResourceState, text: &str) -> String {
        if !self.color {
            return text.to_owned();
        }
        let code = match s {
            ResourceState::Ready => "32",
            ResourceState::Pending => "33",
            ResourceState::Failed => "31",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }

    fn draw(&self, live: &mut Live, out: &mut impl std::io::Write) {
        let start = live.rows.len().saturating_sub(MAX_LIVE_ROWS);
        for (key, state, msg) in &live.rows[start..] {
            let _ = writeln!(
                out,
                "\x1b[2K  {:<8} {key}  {msg}",
                self.paint(*state, state_word(*state))
            );
        }
        live.drawn = live.rows.len() - start;
    }

    fn clear(live: &Live, out: &mut impl std::io::Write) {
        if live.drawn > 0 {
            let _ = write!(out, "\x1b[{}A\x1b[J", live.drawn);
        }
    }

    /// Prints a line for people (above the live block on a terminal).
    pub fn line(&self, text: &str) {
        match self.mode {
            Mode::Json => {}
            Mode::Terminal => {
                let mut err = std::io::stderr().lock();
                if let Ok(mut live) = self.live.lock() {
                    Self::clear(&live, &mut err);
                    let _ = writeln!(err, "{text}");
                    self.draw(&mut live, &mut err);
                }
            }
            Mode::Plain | Mode::GitHub => {
                let _ = writeln!(std::io::stderr().lock(), "{text}");
            }
        }
    }

    fn resource(&self, key: String, state: ResourceState, msg: String) {
        match self.mode {
            Mode::Terminal => {
                let mut err = std::io::stderr().lock();
                if let Ok(mut live) = self.live.lock() {
                    Self::clear(&live, &mut err);
                    match live.rows.iter_mut().find(|(k, _, _)| *k == key) {
                        Some(row) => {
                            row.1 = state;
                            row.2 = msg;
                        }
                        None => live.rows.push((key, state, msg)),
                    }
                    self.draw(&mut live, &mut err);
                }
            }
            _ => self.line(&plain_line(&key, state, &msg)),
        }
    }

    fn annotate(&self, level: &str, title: &str, message: &str) {
        if self.mode == Mode::GitHub {
            // Workflow commands: `%`, CR and LF are escaped in the message.
            let esc = |s: &str| {
                s.replace('%', "%25")
                    .replace('\r', "%0D")
                    .replace('\n', "%0A")
            };
            let _ = writeln!(
                std::io::stdout().lock(),
                "::{level} title={}::{}",
                esc(title).replace(':', "%3A").replace(',', "%2C"),
                esc(message)
            );
        }
    }

    /// Writes a GitHub Actions step output (`name=value`) when running there.
    pub fn step_output(&self, name: &str, value: &str) {
        if let Some(path) = &self.github_output
            && let Ok(mut f) = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(path)
        {
            let _ = writeln!(f, "{name}={}", value.replace('\n', " "));
        }
    }

    /// Adds a line to the GitHub job summary (written by [`Progress::finish_summary`]).
    pub fn summary_line(&self, line: impl Into<String>) {
        if let Ok(mut s) = self.summary.lock() {
            s.push(line.into());
        }
    }

    /// Appends the collected summary to `$GITHUB_STEP_SUMMARY`.
    pub fn finish_summary(&self) {
        if let Some(path) = &self.github_summary
            && let Ok(lines) = self.summary.lock()
            && !lines.is_empty()
            && let Ok(mut f) = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(path)
        {
            for l in lines.iter() {
                let _ = writeln!(f, "{l}");
            }
        }
    }

    /// Prints a JSON value as one line on stdout (JSON mode).
    pub fn json(&self, value: &serde_json::Value) {
        if self.mode == Mode::Json {
            let _ = writeln!(std::io::stdout().lock(), "{value}");
        }
    }

    fn failure_report(&self, r: &FailureReport) {
        let mut text = format!("FAILED {}: {}", r.object, r.reason);
        if !r.pods.is_empty() {
            text.push_str("\n  pods that cannot become ready:");
            for (pod, why) in &r.pods {
                text.push_str(&format!("\n    {pod}: {why}"));
            }
        }
        if r.events.is_empty() {
            text.push_str("\n  no events since the deploy began");
        } else {
            text.push_str("\n  events since the deploy began:");
            for e in &r.events {
                let times = if e.count > 1 {
                    format!(" (x{})", e.count)
                } else {
                    String::new()
                };
                text.push_str(&format!(
                    "\n    {:<7} {:<18} {}: {}{times}",
                    e.type_, e.reason, e.object, e.message
                ));
            }
        }
        for l in &r.logs {
            text.push_str(&format!(
                "\n  last {} log lines of {}/{}{}:",
                l.lines.len(),
                l.pod,
                l.container,
                if l.previous {
                    " (previous instance)"
                } else {
                    ""
                }
            ));
            for line in &l.lines {
                text.push_str(&format!("\n    | {line}"));
            }
        }
        self.line(&text);
        self.annotate("error", &format!("ferry deploy: {}", r.object), &r.reason);
        self.summary_line(format!("- **{}** failed: {}", r.object, r.reason));
    }
}

impl EventSink for Progress {
    fn emit(&self, event: DeployEvent) {
        if self.mode == Mode::Json {
            if let Ok(v) = serde_json::to_value(&event) {
                self.json(&v);
            }
            return;
        }
        if self.quiet && !matches!(event, DeployEvent::Failed { .. }) {
            // Only errors on stderr; GitHub annotations (stdout) stay.
            match &event {
                DeployEvent::Warning { message } => self.annotate("warning", "ferry", message),
                DeployEvent::ServerWarning { object, message } => {
                    self.annotate("warning", &format!("ferry: {object}"), message);
                }
                _ => {}
            }
            return;
        }
        match event {
            DeployEvent::Stage { stage, detail } => self.line(&format!("ferry: {stage}: {detail}")),
            DeployEvent::Warning { message } => {
                self.line(&format!("warning: {message}"));
                self.annotate("warning", "ferry", &message);
            }
            DeployEvent::LockWaiting { holder, expires_in_secs } => self.line(&format!(
                "ferry: waiting for the deploy lock held by {holder} (expires in {expires_in_secs}s unless renewed)"
            )),
            DeployEvent::LockAcquired { lease } => self.line(&format!("ferry: lock taken ({lease})")),
            DeployEvent::Planned { create, update, replace, unchanged, prune } => {
                let replace = if replace > 0 {
                    format!(", {replace} to replace (delete and create)")
                } else {
                    String::new()
                };
                self.line(&format!(
                    "ferry: plan: {create} to create, {update} to update{replace}, {unchanged} unchanged, {prune} to prune"
                ));
            }
            DeployEvent::ServerWarning { object, message } => {
                self.line(&format!("warning: {object}: the server warns: {message}"));
                self.annotate("warning", &format!("ferry: {object}"), &message);
            }
            DeployEvent::Note { object, message } => {
                self.line(&format!("ferry: plan: {object}: {message}"));
            }
            DeployEvent::Cancelled { message } => {
                self.line(&format!("ferry: cancelled: {message}"));
                self.annotate("warning", "ferry deploy cancelled", &message);
            }
            DeployEvent::Applied { object, action }
                if action != Action::Unchanged && self.mode != Mode::Terminal =>
            {
                self.line(&format!("{action} {object}"));
            }
            DeployEvent::Resource { object, state, message } => {
                // Objects ready as soon as they exist get a line only in plain/CI logs.
                if self.mode == Mode::Terminal && state == ResourceState::Ready && message == "present" {
                    return;
                }
                self.resource(object.to_string(), state, message);
            }
            DeployEvent::Failed { report } => self.failure_report(&report),
            DeployEvent::Pruned { object, deleted, reason } => {
                if deleted {
                    self.line(&format!("pruned {object}"));
                } else {
                    self.line(&format!("kept {object}: {reason}"));
                }
            }
            DeployEvent::Recorded { revision, status } => {
                self.line(&format!("ferry: release v{revision}: {status}"));
            }
            DeployEvent::LoadBalancer { object, addresses } => {
                self.line(&format!("load balancer {object}: {}", addresses.join(", ")));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_say_waiting_once() {
        let key = "Ingress shop/main";
        assert_eq!(
            plain_line(
                key,
                ResourceState::Pending,
                "waiting for an ingress address"
            ),
            "Ingress shop/main: waiting for an ingress address"
        );
        assert_eq!(
            plain_line(key, ResourceState::Pending, "0 of 2 replicas ready"),
            "Ingress shop/main: waiting (0 of 2 replicas ready)"
        );
        assert_eq!(
            plain_line(key, ResourceState::Ready, "present"),
            "Ingress shop/main: ready (present)"
        );
    }
}
