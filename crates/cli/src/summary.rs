//! The GitHub Actions job summary of a deploy, rollback or failed run: a heading first (the
//! outcome), then a table (tag, duration, objects created, updated, replaced and pruned, load
//! balancers), the images with their digests, other lines, and each failing resource with its
//! events and log lines in a collapsible block. Also the `::error file=,line=,col=::`
//! annotations of an invalid release, at most GitHub's 10 per step, the rest counted.

use std::time::{Duration, Instant};

use ferry_deployer::events::Action;
use ferry_deployer::images::PinnedImage;
use ferry_deployer::report::FailureReport;

/// GitHub shows at most this many error annotations per step.
pub(crate) const MAX_ANNOTATIONS: usize = 10;

/// What the summary collects while a command runs.
#[derive(Debug)]
pub(crate) struct JobSummary {
    started: Instant,
    heading: Option<String>,
    tag: Option<String>,
    images: Vec<PinnedImage>,
    created: usize,
    updated: usize,
    replaced: usize,
    pruned: usize,
    load_balancers: Vec<String>,
    lines: Vec<String>,
    failures: Vec<String>,
}

impl Default for JobSummary {
    fn default() -> Self {
        JobSummary {
            started: Instant::now(),
            heading: None,
            tag: None,
            images: Vec::new(),
            created: 0,
            updated: 0,
            replaced: 0,
            pruned: 0,
            load_balancers: Vec::new(),
            lines: Vec::new(),
            failures: Vec::new(),
        }
    }
}

fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 60.0 {
        format!("{s:.1} s")
    } else {
        format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    }
}

impl JobSummary {
    pub(crate) fn heading(&mut self, line: String) {
        self.heading = Some(line);
    }

    pub(crate) fn release(&mut self, tag: Option<String>, images: Vec<PinnedImage>) {
        self.tag = tag;
        self.images = images;
    }

    pub(crate) fn applied(&mut self, action: Action) {
        match action {
            Action::Create => self.created += 1,
            Action::Update => self.updated += 1,
            Action::Replace => self.replaced += 1,
            Action::Prune => self.pruned += 1,
            Action::Unchanged => {}
        }
    }

    pub(crate) fn load_balancer(&mut self, service: String) {
        self.load_balancers.push(service);
    }

    pub(crate) fn line(&mut self, line: String) {
        self.lines.push(line);
    }

    /// A failing resource: its reason, pods, events and logs, folded.
    pub(crate) fn failure(&mut self, r: &FailureReport, text: &str) {
        self.failures.push(format!(
            "<details><summary><b>{}</b> failed: {}</summary>\n\n```text\n{}\n```\n\n</details>",
            html(&r.object.to_string()),
            html(&r.reason),
            text.replace("```", "'''")
        ));
    }

    /// The summary's Markdown, heading first; empty when nothing was collected.
    pub(crate) fn markdown(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(h) = &self.heading {
            out.push(h.clone());
            out.push(String::new());
        }
        if self.heading.is_some() && (self.tag.is_some() || !self.images.is_empty()) {
            out.push("| | |".into());
            out.push("|---|---|".into());
            if let Some(t) = &self.tag {
                out.push(format!("| tag | `{t}` |"));
            }
            out.push(format!(
                "| duration | {} |",
                seconds(self.started.elapsed())
            ));
            out.push(format!(
                "| objects | {} created, {} updated, {} replaced, {} pruned |",
                self.created, self.updated, self.replaced, self.pruned
            ));
            for lb in &self.load_balancers {
                out.push(format!("| load balancer | `{lb}` |"));
            }
            out.push(String::new());
            if !self.images.is_empty() {
                out.push("**Images**".into());
                out.push(String::new());
                for i in &self.images {
                    out.push(format!("- `{}`: `{}`", i.name, i.reference()));
                }
                out.push(String::new());
            }
        }
        out.extend(self.lines.iter().cloned());
        if !self.failures.is_empty() {
            out.push(String::new());
            out.extend(self.failures.iter().cloned());
        }
        out
    }
}

fn html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Where a problem is, for an annotation: the file (relative to the workspace when it is
/// below it), line and column; `at` is `file:line:column`, `file (document N)`, `file` or a
/// ferry.toml key.
pub(crate) fn annotation_place(at: &str, workspace: Option<&str>) -> Option<String> {
    let (file, line, col) = match at.rsplitn(3, ':').collect::<Vec<_>>().as_slice() {
        [c, l, f] if c.parse::<u32>().is_ok() && l.parse::<u32>().is_ok() => {
            ((*f).to_owned(), Some(*l), Some(*c))
        }
        _ => (at.split(" (").next().unwrap_or(at).to_owned(), None, None),
    };
    if file.is_empty() || file.starts_with("env.") || !file.contains('.') {
        return None;
    }
    let file = match workspace {
        Some(w) => file
            .strip_prefix(&format!("{}/", w.trim_end_matches('/')))
            .unwrap_or(&file)
            .to_owned(),
        None => file,
    };
    let mut out = format!("file={}", escape_property(&file));
    if let (Some(l), Some(c)) = (line, col)
        && l != "0"
    {
        out.push_str(&format!(",line={l},col={c}"));
    }
    Some(out)
}

/// A workflow command's property value: `%`, CR, LF, `:` and `,` escaped.
pub(crate) fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// A workflow command's message: `%`, CR and LF escaped.
pub(crate) fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_are_placed_in_their_files() {
        assert_eq!(
            annotation_place("/w/repo/k8s/app.yaml:20:7", Some("/w/repo")).as_deref(),
            Some("file=k8s/app.yaml,line=20,col=7")
        );
        assert_eq!(
            annotation_place("/w/repo/k8s/app.yaml (document 2)", Some("/w/repo")).as_deref(),
            Some("file=k8s/app.yaml")
        );
        assert_eq!(
            annotation_place("k8s/app.yaml:0:0", None).as_deref(),
            Some("file=k8s/app.yaml")
        );
        assert_eq!(annotation_place("env.prod.deploy.manifests", None), None);
        assert_eq!(annotation_place("", None), None);
    }

    #[test]
    fn the_heading_comes_first_and_failures_fold() {
        let mut s = JobSummary::default();
        s.line("- a line".into());
        s.heading("### ferry: prod — rolled-back (release v3)".into());
        s.release(Some("abc123".into()), Vec::new());
        s.applied(Action::Create);
        s.applied(Action::Update);
        s.applied(Action::Unchanged);
        let md = s.markdown();
        assert_eq!(md[0], "### ferry: prod — rolled-back (release v3)");
        assert!(md.contains(&"| tag | `abc123` |".to_owned()), "{md:#?}");
        assert!(
            md.contains(&"| objects | 1 created, 1 updated, 0 replaced, 0 pruned |".to_owned()),
            "{md:#?}"
        );
    }
}
