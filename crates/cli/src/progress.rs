//! How a deploy shows its progress: live lines on a terminal (one per resource, updated in
//! place), plain lines in CI, a JSON event stream with `--output json`, and GitHub Actions
//! annotations, step outputs and a job summary when `GITHUB_ACTIONS=true`.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ferry_deployer::events::{Action, DeployEvent, EventSink, ResourceState};
use ferry_deployer::images::PinnedImage;
use ferry_deployer::report::FailureReport;

use crate::summary::{JobSummary, escape_data, escape_property};

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
    /// terminal when stderr is one, `CI` is not set and the terminal is at least 40 columns by
    /// 8 rows; plain lines otherwise.
    pub fn detect(json: bool, env: &Environment) -> Mode {
        use std::io::IsTerminal as _;
        if json {
            Mode::Json
        } else if env.flag("GITHUB_ACTIONS") {
            Mode::GitHub
        } else if std::io::stderr().is_terminal()
            && !env.flag("CI")
            && env.get("TERM") != Some("dumb")
            && !Size::of_stderr().too_small()
        {
            Mode::Terminal
        } else {
            Mode::Plain
        }
    }
}

/// A terminal's size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Size {
    cols: usize,
    rows: usize,
}

/// Below this many columns or rows the live view falls back to plain lines.
const MIN_COLS: usize = 40;
const MIN_ROWS: usize = 8;

impl Size {
    /// What a terminal whose size cannot be read is taken to be.
    const FALLBACK: Size = Size { cols: 80, rows: 24 };

    /// The size of the terminal on stderr (the terminal's own, not `COLUMNS`/`LINES`), or
    /// [`Size::FALLBACK`] when it cannot be read. Read at each redraw, so a resized terminal
    /// is followed.
    fn of_stderr() -> Size {
        terminal_size::terminal_size_of(std::io::stderr())
            .map(|(w, h)| Size {
                cols: usize::from(w.0),
                rows: usize::from(h.0),
            })
            .filter(|s| s.cols > 0 && s.rows > 0)
            .unwrap_or(Size::FALLBACK)
    }

    fn too_small(self) -> bool {
        self.cols < MIN_COLS || self.rows < MIN_ROWS
    }

    /// The columns a live line may fill: one is kept free, so the terminal never wraps a line
    /// on its own (some wrap as soon as the last column is written).
    fn width(self) -> usize {
        self.cols.saturating_sub(1).max(1)
    }

    /// How many lines the live block may take: two rows stay for the lines above it.
    fn live_rows(self) -> usize {
        self.rows.saturating_sub(2).clamp(1, MAX_LIVE_ROWS)
    }
}

/// A resource's live line.
#[derive(Debug)]
struct Row {
    key: String,
    state: ResourceState,
    msg: String,
    /// When the resource's first event came.
    since: Instant,
    /// How long it took to become ready (or fail): the elapsed time stops then.
    took: Option<Duration>,
}

impl Row {
    fn elapsed(&self, now: Instant) -> Duration {
        self.took
            .unwrap_or_else(|| now.saturating_duration_since(self.since))
    }
}

/// The live block at the bottom of a terminal.
#[derive(Debug, Default)]
struct Live {
    rows: Vec<Row>,
    /// The screen lines the block took when last drawn: clearing moves up exactly these.
    drawn: usize,
}

impl Live {
    /// Records a resource's new state: its row is updated in place, or added at the end.
    fn update(&mut self, key: String, state: ResourceState, msg: String, now: Instant) {
        let row = match self.rows.iter().position(|r| r.key == key) {
            Some(i) => &mut self.rows[i],
            None => {
                self.rows.push(Row {
                    key,
                    state,
                    msg: String::new(),
                    since: now,
                    took: None,
                });
                let last = self.rows.len() - 1;
                &mut self.rows[last]
            }
        };
        row.state = state;
        row.msg = msg;
        row.took = match state {
            ResourceState::Pending => None,
            ResourceState::Ready | ResourceState::Failed => Some(
                row.took
                    .unwrap_or_else(|| now.saturating_duration_since(row.since)),
            ),
        };
    }

    /// Takes out of the block the rows that do not fit in `max` lines, the oldest finished
    /// (ready or failed) first; they are printed above it once, as they ended. Rows still
    /// waiting stay.
    fn overflow(&mut self, max: usize) -> Vec<Row> {
        let mut out = Vec::new();
        while self.rows.len() > max {
            let Some(i) = self
                .rows
                .iter()
                .position(|r| r.state != ResourceState::Pending)
            else {
                break;
            };
            out.push(self.rows.remove(i));
        }
        out
    }
}

/// The progress printer; an [`EventSink`] for the deploy engine.
#[derive(Debug)]
pub struct Progress {
    mode: Mode,
    color: bool,
    live: Mutex<Live>,
    github_output: Option<PathBuf>,
    github_summary: Option<PathBuf>,
    summary: Mutex<JobSummary>,
    quiet: bool,
    workspace: Option<String>,
}

/// Whether the log filter lets only errors through (`-q`, or `FERRY_LOG=error`): then progress
/// shows only failure reports. The filter is the one place `-q` is recorded (the binary sets it
/// before any command runs), so the printer reads it rather than take another flag.
fn only_errors() -> bool {
    use tracing::level_filters::LevelFilter;
    LevelFilter::current() < LevelFilter::WARN
}

/// The most lines the live block takes, however tall the terminal.
const MAX_LIVE_ROWS: usize = 30;

/// The width of the state column (`waiting`, the longest word).
const STATE_WIDTH: usize = 7;

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

/// An elapsed time, short: `3s`, `1m05s`, `1h02m`.
fn elapsed_text(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    }
}

/// `text` with control characters (newlines, tabs, escapes) made spaces: a live line is one
/// screen line, and a message cannot move the cursor.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The length in bytes of the escape sequence `s` starts with: a CSI sequence (`ESC [`
/// parameters, then a final byte `@`..`~`), or ESC and one character.
fn escape_len(s: &str) -> usize {
    let b = s.as_bytes();
    if b.get(1) == Some(&b'[') {
        b[2..]
            .iter()
            .position(|c| (0x40..=0x7e).contains(c))
            .map_or(b.len(), |p| p + 3)
    } else {
        s[1..].chars().next().map_or(1, |c| 1 + c.len_utf8())
    }
}

/// The columns `line` takes: one per character, none for escape sequences (colours).
fn visible_width(line: &str) -> usize {
    let mut n = 0;
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        let len = if c == '\x1b' {
            escape_len(rest)
        } else {
            n += 1;
            c.len_utf8()
        };
        rest = &rest[len..];
    }
    n
}

/// `line` cut to at most `width` columns (see [`visible_width`]): a line that is too wide
/// keeps `width - 1` characters and ends with `…`, and with a colour reset when it had
/// escape sequences. Escape sequences before the cut are kept.
fn fit(line: &str, width: usize) -> String {
    if visible_width(line) <= width {
        return line.to_owned();
    }
    let keep = width.saturating_sub(1);
    let mut out = String::with_capacity(line.len());
    let mut shown = 0;
    let mut escapes = false;
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        let len = if c == '\x1b' {
            let len = escape_len(rest);
            out.push_str(&rest[..len]);
            escapes = true;
            len
        } else if shown == keep {
            break;
        } else {
            out.push(c);
            shown += 1;
            c.len_utf8()
        };
        rest = &rest[len..];
    }
    if width > 0 {
        out.push('…');
    }
    if escapes {
        out.push_str("\x1b[0m");
    }
    out
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
            summary: Mutex::new(JobSummary::default()),
            quiet: only_errors(),
            workspace: env.get("GITHUB_WORKSPACE").map(str::to_owned),
        }
    }

    /// `$GITHUB_WORKSPACE`: annotation paths are relative to it.
    pub fn workspace(&self) -> Option<String> {
        self.workspace.clone()
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

    /// A resource's live line, uncut: `  waiting  Deployment demo/web  3s  1 of 2 ready`.
    fn row_line(&self, row: &Row, now: Instant) -> String {
        let word = state_word(row.state);
        let mut line = format!(
            "  {}{:pad$}  {}  {}",
            self.paint(row.state, word),
            "",
            one_line(&row.key),
            elapsed_text(row.elapsed(now)),
            pad = STATE_WIDTH.saturating_sub(word.chars().count()),
        );
        let msg = one_line(&row.msg);
        if !msg.trim().is_empty() {
            line.push_str("  ");
            line.push_str(msg.trim());
        }
        line
    }

    /// The live block's lines for a terminal of `size`, each cut to its width: every row when
    /// they fit in [`Size::live_rows`], else the first rows and a line saying how many more.
    fn block(&self, live: &Live, size: Size, now: Instant) -> Vec<String> {
        let max = size.live_rows();
        let width = size.width();
        let mut lines = Vec::with_capacity(live.rows.len().min(max));
        if live.rows.len() <= max {
            lines.extend(live.rows.iter().map(|r| fit(&self.row_line(r, now), width)));
        } else {
            let shown = max - 1;
            lines.extend(
                live.rows[..shown]
                    .iter()
                    .map(|r| fit(&self.row_line(r, now), width)),
            );
            let more = live.rows.len() - shown;
            lines.push(fit(&format!("  … and {more} more waiting"), width));
        }
        lines
    }

    /// Draws the live block below the cursor; `live.drawn` becomes the number of lines written.
    fn draw(&self, live: &mut Live, size: Size, out: &mut String) {
        let lines = self.block(live, size, Instant::now());
        for l in &lines {
            out.push_str("\x1b[2K");
            out.push_str(l);
            out.push('\n');
        }
        live.drawn = lines.len();
    }

    /// Moves up over the live block and clears from there down.
    fn clear(live: &mut Live, out: &mut String) {
        if live.drawn > 0 {
            out.push_str(&format!("\x1b[{}A\x1b[J", live.drawn));
            live.drawn = 0;
        }
    }

    /// What a terminal of `size` is sent to update the live block: the block cleared,
    /// `between`'s changes to it and its permanent lines above it, the rows that no longer fit
    /// as permanent lines too (once each), and the block drawn again below.
    fn frame(
        &self,
        live: &mut Live,
        size: Size,
        between: impl FnOnce(&mut Live, &mut String),
    ) -> String {
        let mut out = String::new();
        Self::clear(live, &mut out);
        between(live, &mut out);
        let now = Instant::now();
        for row in live.overflow(size.live_rows()) {
            out.push_str(&fit(&self.row_line(&row, now), size.width()));
            out.push('\n');
        }
        self.draw(live, size, &mut out);
        out
    }

    /// Sends a [`Progress::frame`] for stderr's terminal, in one write.
    fn redraw(&self, between: impl FnOnce(&mut Live, &mut String)) {
        let Ok(mut live) = self.live.lock() else {
            return;
        };
        let out = self.frame(&mut live, Size::of_stderr(), between);
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(out.as_bytes());
        let _ = err.flush();
    }

    /// Prints a line for people (above the live block on a terminal).
    pub fn line(&self, text: &str) {
        match self.mode {
            Mode::Json => {}
            Mode::Terminal => self.redraw(|_, out| {
                out.push_str(text);
                out.push('\n');
            }),
            Mode::Plain | Mode::GitHub => {
                let _ = writeln!(std::io::stderr().lock(), "{text}");
            }
        }
    }

    fn resource(&self, key: String, state: ResourceState, msg: String) {
        match self.mode {
            Mode::Terminal => self.redraw(|live, _| live.update(key, state, msg, Instant::now())),
            _ => self.line(&plain_line(&key, state, &msg)),
        }
    }

    fn annotate(&self, level: &str, title: &str, message: &str) {
        self.annotate_at(level, None, title, message);
    }

    /// A workflow command (`::error file=F,line=L,col=C,title=T::message`) in GitHub mode;
    /// `place` is `file=F[,line=L,col=C]`.
    pub fn annotate_at(&self, level: &str, place: Option<&str>, title: &str, message: &str) {
        if self.mode == Mode::GitHub {
            let place = place.map(|p| format!("{p},")).unwrap_or_default();
            let _ = writeln!(
                std::io::stdout().lock(),
                "::{level} {place}title={}::{}",
                escape_property(title),
                escape_data(message)
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
            s.line(line.into());
        }
    }

    /// The job summary's heading (the outcome): written first.
    pub fn summary_heading(&self, line: impl Into<String>) {
        if let Ok(mut s) = self.summary.lock() {
            s.heading(line.into());
        }
    }

    /// The release the summary describes: its tag and images (with digests).
    pub fn summary_release(&self, tag: Option<String>, images: Vec<PinnedImage>) {
        if let Ok(mut s) = self.summary.lock() {
            s.release(tag, images);
        }
    }

    /// A load balancer of the deployed release, for the summary.
    pub fn summary_load_balancer(&self, service: String) {
        if let Ok(mut s) = self.summary.lock() {
            s.load_balancer(service);
        }
    }

    /// Appends the collected summary to `$GITHUB_STEP_SUMMARY`.
    pub fn finish_summary(&self) {
        if let Some(path) = &self.github_summary
            && let Ok(summary) = self.summary.lock()
        {
            let lines = summary.markdown();
            if lines.is_empty() {
                return;
            }
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(path)
            {
                for l in &lines {
                    let _ = writeln!(f, "{l}");
                }
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
        if self.mode == Mode::GitHub {
            // The log folds each report under its resource.
            self.line(&format!("::group::FAILED {}: {}", r.object, r.reason));
            self.line(&text);
            self.line("::endgroup::");
        } else {
            self.line(&text);
        }
        self.annotate("error", &format!("ferry deploy: {}", r.object), &r.reason);
        if let Ok(mut s) = self.summary.lock() {
            s.failure(r, &text);
        }
    }
}

impl EventSink for Progress {
    fn emit(&self, event: DeployEvent) {
        if let Ok(mut s) = self.summary.lock() {
            match &event {
                DeployEvent::Applied { action, .. } => s.applied(*action),
                DeployEvent::Pruned { deleted: true, .. } => s.applied(Action::Prune),
                _ => {}
            }
        }
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
                // Every object of the release gets its line, those ready as soon as they exist
                // too: on a terminal, applied objects get no line of their own.
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

    fn terminal(color: bool) -> Progress {
        Progress::new(Mode::Terminal, color, &Environment::default())
    }

    /// A block of `rows` resources with long names and messages, as a deploy draws it.
    fn live_of(rows: usize, start: Instant) -> Live {
        let mut live = Live::default();
        for i in 0..rows {
            live.update(
                format!("Deployment demo/a-deployment-with-a-long-name-number-{i}"),
                ResourceState::Pending,
                "waiting for the controller to observe generation 1".into(),
                start,
            );
        }
        live
    }

    #[test]
    fn fit_keeps_a_line_exactly_as_wide_as_the_terminal() {
        assert_eq!(fit("abcde", 5), "abcde");
        assert_eq!(fit("", 5), "");
        // characters, not bytes
        assert_eq!(fit("ééééé", 5), "ééééé");
    }

    #[test]
    fn fit_cuts_a_wide_line_with_an_ellipsis() {
        assert_eq!(fit("abcdef", 5), "abcd…");
        assert_eq!(visible_width(&fit("abcdef", 5)), 5);
        assert_eq!(fit("ééééééé", 5), "éééé…");
        let long = "x".repeat(300);
        assert_eq!(visible_width(&fit(&long, 79)), 79);
    }

    #[test]
    fn fit_does_not_count_colour_codes() {
        let painted = "  \x1b[33mwaiting\x1b[0m  Service demo/web";
        assert_eq!(visible_width(painted), 27);
        // as wide as the width once the escapes are left out: unchanged
        assert_eq!(fit(painted, 27), painted);
        // cut: the escapes before the cut stay, and the colour is reset after the ellipsis
        assert_eq!(fit(painted, 12), "  \x1b[33mwaiting\x1b[0m  …\x1b[0m");
        // cut inside the coloured word: the reset comes after the ellipsis
        assert_eq!(fit(painted, 6), "  \x1b[33mwai…\x1b[0m");
        assert_eq!(visible_width(&fit(painted, 6)), 6);
    }

    #[test]
    fn elapsed_times_are_short() {
        assert_eq!(elapsed_text(Duration::from_millis(300)), "0s");
        assert_eq!(elapsed_text(Duration::from_secs(3)), "3s");
        assert_eq!(elapsed_text(Duration::from_secs(59)), "59s");
        assert_eq!(elapsed_text(Duration::from_secs(65)), "1m05s");
        assert_eq!(elapsed_text(Duration::from_secs(3725)), "1h02m");
    }

    #[test]
    fn a_row_shows_state_name_elapsed_time_and_message() {
        let start = Instant::now();
        let mut live = Live::default();
        live.update(
            "Deployment demo/web".into(),
            ResourceState::Pending,
            "1 of 2 replicas ready".into(),
            start,
        );
        let p = terminal(false);
        let later = start + Duration::from_secs(3);
        assert_eq!(
            p.row_line(&live.rows[0], later),
            "  waiting  Deployment demo/web  3s  1 of 2 replicas ready"
        );
        // ready: the time stops at the moment it became ready
        live.update(
            "Deployment demo/web".into(),
            ResourceState::Ready,
            "2 replicas ready".into(),
            start + Duration::from_secs(65),
        );
        assert_eq!(live.rows.len(), 1, "the row is updated in place");
        assert_eq!(
            p.row_line(&live.rows[0], start + Duration::from_secs(600)),
            "  ready    Deployment demo/web  1m05s  2 replicas ready"
        );
        // a message over several lines stays on one
        live.update(
            "Job demo/migrate".into(),
            ResourceState::Failed,
            "pod migrate-x: Error:\nexit 1".into(),
            start,
        );
        assert_eq!(
            p.row_line(&live.rows[1], start),
            "  FAILED   Job demo/migrate  0s  pod migrate-x: Error: exit 1"
        );
        // colour on the state word only; the columns line up all the same
        let coloured = terminal(true).row_line(&live.rows[0], start);
        assert!(
            coloured.starts_with("  \x1b[32mready\x1b[0m    Deployment"),
            "{coloured:?}"
        );
        assert_eq!(
            visible_width(&coloured),
            p.row_line(&live.rows[0], start).chars().count()
        );
    }

    #[test]
    fn every_line_of_the_block_fits_the_terminal_and_drawn_counts_them() {
        let start = Instant::now();
        for color in [false, true] {
            let p = terminal(color);
            for (cols, rows) in [(80, 24), (100, 30), (124, 30), (160, 40), (40, 8)] {
                let size = Size { cols, rows };
                let mut live = live_of(5, start);
                let mut out = String::new();
                p.draw(&mut live, size, &mut out);
                assert_eq!(live.drawn, 5);
                assert_eq!(out.matches('\n').count(), live.drawn);
                for line in out.lines() {
                    let line = line.trim_start_matches("\x1b[2K");
                    assert!(
                        visible_width(line) < cols,
                        "{cols} columns: {line:?} is {} wide",
                        visible_width(line)
                    );
                }
                let wide = visible_width(&p.row_line(&live.rows[0], start)) >= cols;
                assert_eq!(out.contains('…'), wide, "{cols} columns: {out}");
                // clearing moves up exactly over what was drawn
                let mut cleared = String::new();
                Progress::clear(&mut live, &mut cleared);
                assert_eq!(cleared, "\x1b[5A\x1b[J");
                assert_eq!(live.drawn, 0);
            }
        }
    }

    #[test]
    fn the_block_is_at_most_the_terminal_height_less_two() {
        let start = Instant::now();
        let p = terminal(false);
        let size = Size { cols: 80, rows: 8 };
        assert_eq!(size.live_rows(), 6);
        let mut live = live_of(9, start);
        // all still waiting: nothing leaves the block, and a last line says what is hidden
        assert!(live.overflow(size.live_rows()).is_empty());
        let mut out = String::new();
        p.draw(&mut live, size, &mut out);
        assert_eq!(live.drawn, 6);
        assert_eq!(out.lines().count(), 6);
        assert!(out.ends_with("  … and 4 more waiting\n"), "{out}");
        // finished rows make room: the oldest finished leave the block, once each
        for i in [1, 4, 7] {
            live.update(
                format!("Deployment demo/a-deployment-with-a-long-name-number-{i}"),
                ResourceState::Ready,
                "2 replicas ready".into(),
                start,
            );
        }
        let gone: Vec<String> = live
            .overflow(size.live_rows())
            .into_iter()
            .map(|r| r.key)
            .collect();
        assert_eq!(
            gone,
            [
                "Deployment demo/a-deployment-with-a-long-name-number-1",
                "Deployment demo/a-deployment-with-a-long-name-number-4",
                "Deployment demo/a-deployment-with-a-long-name-number-7",
            ]
        );
        let mut out = String::new();
        p.draw(&mut live, size, &mut out);
        assert_eq!(live.drawn, 6);
        assert!(!out.contains("more waiting"), "{out}");
        // never more than MAX_LIVE_ROWS, however tall the terminal
        assert_eq!(
            Size {
                cols: 200,
                rows: 100
            }
            .live_rows(),
            MAX_LIVE_ROWS
        );
    }

    /// The screen a terminal of `size` shows after `frames`.
    fn screen_after(frames: &[String], size: Size) -> Vec<String> {
        let nz = |n: usize| std::num::NonZeroU16::new(u16::try_from(n).unwrap()).unwrap();
        let mut parser = vt100::Parser::new(nz(size.rows), nz(size.cols), 0);
        for f in frames {
            // a terminal's line discipline turns each newline into CR LF
            parser.process(f.replace('\n', "\r\n").as_bytes());
        }
        let cols = u16::try_from(size.cols).unwrap();
        parser.screen().rows(0, cols).collect()
    }

    #[test]
    fn redrawing_moves_up_over_exactly_what_it_drew_and_leaves_one_line_per_resource() {
        let p = terminal(true);
        let size = Size { cols: 80, rows: 12 };
        let mut live = Live::default();
        let keys: Vec<String> = (0..14)
            .map(|i| format!("Deployment demo/a-deployment-with-a-long-name-number-{i:02}"))
            .collect();
        let mut frames = vec![p.frame(&mut live, size, |_, out| {
            out.push_str("ferry: wait: 14 objects\n");
        })];
        let mut update = |live: &mut Live, key: &str, state, msg: &str| {
            let before = live.drawn;
            let f = p.frame(live, size, |live, _| {
                live.update(key.to_owned(), state, msg.to_owned(), Instant::now());
            });
            if before > 0 {
                assert!(f.starts_with(&format!("\x1b[{before}A\x1b[J")), "{f:?}");
            }
            // each line written is one screen line, and the block is all of them
            let after_clear = f.split_once("\x1b[J").map_or(f.as_str(), |(_, rest)| rest);
            assert!(
                after_clear
                    .lines()
                    .all(|l| visible_width(l.trim_start_matches("\x1b[2K")) < 80)
            );
            assert!(live.drawn <= size.live_rows());
            frames.push(f);
        };
        for k in &keys {
            update(
                &mut live,
                k,
                ResourceState::Pending,
                "waiting for the controller to observe generation 1",
            );
        }
        for (i, k) in keys.iter().enumerate() {
            update(
                &mut live,
                k,
                ResourceState::Pending,
                &format!("{i} of 14 replicas ready"),
            );
            update(&mut live, k, ResourceState::Ready, "14 replicas ready");
        }
        // the deploy ends with a line under the block
        frames.push("ferry: deployed\n".into());
        let screen = screen_after(&frames, size);
        let text = screen.join("\n");
        // the last 10 rows are in the block; the 4 before it scrolled away as permanent lines,
        // and none of them is on the screen twice
        for k in &keys[4..] {
            let n = screen
                .iter()
                .filter(|l| l.contains(&format!("{k}  ")))
                .count();
            assert_eq!(n, 1, "{k}:\n{text}");
        }
        assert!(screen.iter().all(|l| l.chars().count() < 80), "{text}");
        assert!(!text.contains("waiting"), "{text}");
        assert!(text.trim_end().ends_with("ferry: deployed"), "{text}");
        // on a screen that keeps everything, every resource is there once
        let tall = screen_after(
            &frames,
            Size {
                cols: 80,
                rows: 100,
            },
        );
        for k in &keys {
            let n = tall
                .iter()
                .filter(|l| l.contains(&format!("{k}  ")))
                .count();
            assert_eq!(n, 1, "{k}:\n{}", tall.join("\n"));
        }
    }

    #[test]
    fn small_terminals_are_too_small_for_the_live_view() {
        assert!(!Size::FALLBACK.too_small());
        assert!(!Size { cols: 40, rows: 8 }.too_small());
        assert!(Size { cols: 39, rows: 24 }.too_small());
        assert!(Size { cols: 80, rows: 7 }.too_small());
    }
}
