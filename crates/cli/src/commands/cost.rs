//! `ferry cost`: estimate each environment's monthly cost with ferry-cost, print it as a table,
//! JSON or markdown, and end with the gate's exit code (4 over budget, 5 over the allowed
//! increase, 4 when both).

use std::io::{IsTerminal as _, Write as _};
use std::path::Path;
use std::sync::Arc;

use comfy_table::{CellAlignment, ContentArrangement, Table, presets};
use ferry_cost::money::{display_price, display_quantity, display_usd, round_cents};
use ferry_cost::report::{ComparisonReport, EnvReport, Report};
use ferry_cost::{Catalog, Decimal, Estimate, IssueKind, Limits, PathSeg, Previous};
use miette::{Diagnostic, NamedSource, SourceSpan};

use crate::ambient::Environment;
use crate::cli::{ColorChoice, CostArgs, CostFormat};
use crate::config::{ConfigError, KeySeg, LoadedConfig};
use crate::exit::{CmdResult, Exit, Failure};

/// The largest `--compare-to` file ferry reads; real reports are a few KiB per environment.
pub const MAX_REPORT_BYTES: u64 = 16 * 1024 * 1024;

/// Several problems in the config file, each located.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{path}: {count} problems")]
#[diagnostic(code(ferry::config::problems))]
pub struct ConfigProblems {
    /// The file.
    pub path: String,
    /// How many.
    pub count: usize,
    /// Each problem.
    #[related]
    pub problems: Vec<ConfigError>,
}

/// A `--compare-to` file that cannot be used.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{location}: {message}")]
#[diagnostic(
    code(ferry::cost::compare_to),
    help("pass a file written by `ferry cost --format json` (schema_version 1)")
)]
pub struct CompareFileError {
    /// `file:line:column`, or the file alone when there is no position.
    pub location: String,
    /// What is wrong.
    pub message: String,
    /// The file's text, when it is text.
    #[source_code]
    pub src: Option<NamedSource<Arc<String>>>,
    /// Where.
    #[label("here")]
    pub span: Option<SourceSpan>,
}

/// Loads the config, turning every failure into exit code 3.
pub(crate) fn load_config(path: &Path) -> Result<LoadedConfig, Failure> {
    LoadedConfig::load(path).map_err(|e| Failure::new(Exit::InvalidInput, e))
}

/// Converts a path inside `[env.NAME.infra]` to a path in the document.
pub(crate) fn infra_path(env: &str, path: &[PathSeg]) -> Vec<KeySeg> {
    let mut out = vec![
        KeySeg::from("env"),
        KeySeg::from(env),
        KeySeg::from("infra"),
    ];
    out.extend(path.iter().map(|seg| match seg {
        PathSeg::Key(k) => KeySeg::Key(k.clone()),
        PathSeg::Index(i) => KeySeg::Index(*i),
    }));
    out
}

/// The estimate's issues as located config errors (unpriced ones only when not allowed); the
/// help of an unpriced value mentions `--allow-unpriced` when `hint_allow_unpriced`.
pub(crate) fn estimate_problems(
    cfg: &LoadedConfig,
    env: &str,
    est: &Estimate,
    allow_unpriced: bool,
    hint_allow_unpriced: bool,
) -> Vec<ConfigError> {
    est.issues
        .iter()
        .filter(|i| !(allow_unpriced && i.kind == IssueKind::Unpriced))
        .map(|i| {
            let help = match (i.kind, &i.help) {
                (IssueKind::Unpriced, Some(h)) if hint_allow_unpriced => Some(format!(
                    "{h}. To estimate anyway, pass --allow-unpriced (the total is then marked incomplete)"
                )),
                (_, h) => h.clone(),
            };
            cfg.error_at(&infra_path(env, &i.key_path), &i.message, help)
        })
        .collect()
}

/// One failure carrying every problem (a single one is reported as itself).
pub(crate) fn problems_failure(cfg: &LoadedConfig, mut problems: Vec<ConfigError>) -> Failure {
    if problems.len() == 1 {
        return Failure::new(Exit::InvalidInput, problems.remove(0));
    }
    Failure::new(
        Exit::InvalidInput,
        ConfigProblems {
            path: cfg.path.display().to_string(),
            count: problems.len(),
            problems,
        },
    )
}

/// Runs `ferry cost`.
pub fn run(args: &CostArgs, color: ColorChoice, env: &Environment) -> CmdResult {
    let cfg = load_config(&args.config.config)?;
    let catalog = Catalog::embedded();
    let names: Vec<String> = if args.env == "all" {
        let with_infra: Vec<String> = cfg
            .config
            .env
            .iter()
            .filter(|(_, e)| e.infra.is_some())
            .map(|(n, _)| n.clone())
            .collect();
        if with_infra.is_empty() {
            return Err(Failure::new(
                Exit::InvalidInput,
                cfg.error_at(
                    &[KeySeg::from("env")],
                    "no environment has an [env.NAME.infra] table to estimate",
                    Some(
                        "add [env.NAME.infra] with cloud, region and control_plane (see examples/)"
                            .to_owned(),
                    ),
                ),
            ));
        }
        with_infra
    } else {
        vec![args.env.clone()]
    };

    let previous = match &args.compare_to {
        Some(path) => Some(read_previous(path)?),
        None => None,
    };

    let mut problems = Vec::new();
    let mut estimates = Vec::new();
    for name in &names {
        let env_cfg = cfg
            .env(name)
            .map_err(|e| Failure::new(Exit::InvalidInput, e))?;
        let Some(infra) = &env_cfg.infra else {
            problems.push(cfg.error_at(
                &[KeySeg::from("env"), KeySeg::from(name.as_str())],
                format!("environment `{name}` has no [env.{name}.infra] table, so there is nothing to estimate"),
                Some("add [env.NAME.infra] with cloud, region and control_plane (see examples/)".to_owned()),
            ));
            continue;
        };
        let est = ferry_cost::estimate(infra, catalog);
        problems.extend(estimate_problems(
            &cfg,
            name,
            &est,
            args.allow_unpriced,
            true,
        ));
        estimates.push((
            name.clone(),
            est,
            env_cfg.budget.clone().unwrap_or_default(),
        ));
    }
    if !problems.is_empty() {
        return Err(problems_failure(&cfg, problems));
    }

    let mut reports = Vec::new();
    for (name, est, budget) in &estimates {
        let limits = Limits {
            monthly_usd: args.budget.or(budget.monthly_usd),
            max_increase: args.max_increase.or(budget.max_increase),
        };
        let prev_env = previous.as_ref().and_then(|r| r.environment(name));
        let prev = match (&previous, prev_env) {
            (None, _) => Previous::NotGiven,
            (Some(_), None) => Previous::Missing,
            (Some(_), Some(p)) => Previous::Total(p.total_monthly.0),
        };
        let verdict = ferry_cost::check(est.total(), limits, prev);
        reports.push(EnvReport::new(name, est, &verdict, prev_env));
    }
    let report = Report::new(
        format!("ferry {}", env!("CARGO_PKG_VERSION")),
        catalog.as_of(),
        reports,
    );

    let use_color = match color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => env.get("NO_COLOR").is_none() && std::io::stdout().is_terminal(),
    };
    let text = match args.format {
        CostFormat::Json => {
            let mut s = serde_json::to_string_pretty(&report).map_err(|e| {
                Failure::new(
                    Exit::Failure,
                    miette::miette!("cannot encode the report: {e}"),
                )
            })?;
            s.push('\n');
            s
        }
        CostFormat::Table => render_table(&report, use_color),
        CostFormat::Markdown => render_markdown(&report),
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(super::io_failure)?;

    let over_budget = report
        .environments
        .iter()
        .any(|e| e.status.contains("over_budget"));
    let over_increase = report
        .environments
        .iter()
        .any(|e| e.status.contains("increase"));
    Ok(if over_budget {
        Exit::OverBudget
    } else if over_increase {
        Exit::OverIncrease
    } else {
        Exit::Success
    })
}

fn read_previous(path: &Path) -> Result<Report, Failure> {
    let shown = path.display().to_string();
    let fail = |message: String, src: Option<(Arc<String>, usize)>, line: usize, column: usize| {
        let location = if line > 0 {
            format!("{shown}:{line}:{column}")
        } else {
            shown.clone()
        };
        let (src, span) = match src {
            Some((text, offset)) => (
                Some(NamedSource::new(shown.clone(), text)),
                Some(SourceSpan::from((offset, 0))),
            ),
            None => (None, None),
        };
        Failure::new(
            Exit::InvalidInput,
            CompareFileError {
                location,
                message,
                src,
                span,
            },
        )
    };
    let meta = std::fs::metadata(path).map_err(|e| {
        fail(
            format!("cannot read the previous estimate: {e}"),
            None,
            0,
            0,
        )
    })?;
    if meta.len() > MAX_REPORT_BYTES {
        return Err(fail(
            format!(
                "{} bytes is larger than a ferry cost report can be ({MAX_REPORT_BYTES} bytes at most)",
                meta.len()
            ),
            None,
            0,
            0,
        ));
    }
    let bytes = crate::config::read_at_most(path, MAX_REPORT_BYTES).map_err(|e| {
        fail(
            format!("cannot read the previous estimate: {e}"),
            None,
            0,
            0,
        )
    })?;
    // A device or pipe has no size to check beforehand (`/dev/zero` says 0 bytes).
    if bytes.len() as u64 > MAX_REPORT_BYTES {
        return Err(fail(
            format!("larger than a ferry cost report can be ({MAX_REPORT_BYTES} bytes at most)"),
            None,
            0,
            0,
        ));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        fail(
            format!(
                "not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
            None,
            0,
            0,
        )
    })?;
    let text = Arc::new(text);
    Report::from_json(&text).map_err(|e| match e {
        ferry_cost::CostError::Report {
            line,
            column,
            message,
        } if line > 0 => {
            let offset = offset_of(&text, line, column);
            fail(message, Some((Arc::clone(&text), offset)), line, column)
        }
        other => fail(other.to_string(), None, 0, 0),
    })
}

fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    let line_text = text[start.min(text.len())..].lines().next().unwrap_or("");
    let col = line_text
        .char_indices()
        .nth(column.saturating_sub(1))
        .map_or(line_text.len(), |(i, _)| i);
    (start + col).min(text.len())
}

fn usd(m: Decimal) -> String {
    format!("${}", display_usd(m))
}

fn signed_usd(m: Decimal) -> String {
    if m.is_sign_negative() && !m.is_zero() {
        format!("-${}", display_usd(-m))
    } else {
        format!("+${}", display_usd(m))
    }
}

/// The total, and what follows "/month": `$176.16`, or `≥ $149.76` and ` (incomplete: 2
/// unpriced)` when some lines have no price.
fn total_text(env: &EnvReport) -> (String, String) {
    if env.complete {
        (usd(env.total_monthly.0), String::new())
    } else {
        (
            format!("≥ {}", usd(env.total_monthly.0)),
            format!(" (incomplete: {} unpriced)", env.unpriced_lines),
        )
    }
}

/// The budget line. The headroom shown is the difference of the amounts shown (both in cents),
/// so that total + headroom reads as the budget: $115.425 of $300 shows $115.43 and $184.57,
/// not $184.58 (the JSON keeps the exact headroom).
fn budget_text(env: &EnvReport) -> Option<String> {
    env.budget.as_ref().map(|b| {
        let shown = round_cents(b.monthly_usd.0) - round_cents(env.total_monthly.0);
        if b.status == "over" {
            // Over by less than a cent shows as equal amounts: say so rather than "by $0.00".
            let by = if shown < Decimal::ZERO {
                usd(-shown)
            } else {
                "less than $0.01".to_owned()
            };
            format!("OVER budget {} by {by}", usd(b.monthly_usd.0))
        } else {
            format!(
                "within budget {} (headroom {})",
                usd(b.monthly_usd.0),
                usd(shown)
            )
        }
    })
}

fn comparison_text(c: &ComparisonReport) -> String {
    match c.status.as_str() {
        "new_environment" => {
            "not in the previous estimate (new environment): increase not checked".to_owned()
        }
        status => {
            let delta = c.delta.map(|d| signed_usd(d.0)).unwrap_or_default();
            let pct = c
                .delta_pct
                .map(|p| {
                    format!(
                        " ({}{}%)",
                        if p.0.is_sign_negative() { "" } else { "+" },
                        p.0.normalize()
                    )
                })
                .unwrap_or_default();
            let prev = c.previous_total.map(|p| usd(p.0)).unwrap_or_default();
            let limit = match (status, &c.max_increase) {
                ("over", Some(m)) => format!(": OVER the allowed increase of {m}"),
                ("within", Some(m)) => format!(": within the allowed increase of {m}"),
                _ => String::new(),
            };
            format!("{delta}{pct} vs previous {prev}{limit}")
        }
    }
}

fn paint(text: &str, ok: bool, color: bool) -> String {
    if color {
        let code = if ok { "32" } else { "31;1" };
        format!("\u{1b}[{code}m{text}\u{1b}[0m")
    } else {
        text.to_owned()
    }
}

fn new_table() -> Table {
    let mut t = Table::new();
    t.load_preset(presets::ASCII_BORDERS_ONLY_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled);
    t
}

fn render_table(report: &Report, color: bool) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "Prices: ferry catalog of {} (list prices, on-demand, USD, {} h/month).\n",
        report.catalog_as_of, report.hours_per_month
    ));
    if report.environments.len() > 1 {
        out.push('\n');
        out.push_str(&side_by_side(report).to_string());
        out.push('\n');
    }
    for env in &report.environments {
        out.push('\n');
        out.push_str(&format!("{} ({} {})\n", env.name, env.cloud, env.region));
        let mut t = new_table();
        t.set_header(vec![
            "resource",
            "component",
            "unit price",
            "quantity",
            "monthly",
        ]);
        for r in &env.resources {
            for (i, l) in r.lines.iter().enumerate() {
                let unit_price = l.unit_price.map_or_else(
                    || "unpriced".to_owned(),
                    |p| format!("${} / {}", display_price(p.0), l.unit),
                );
                let monthly = l
                    .monthly
                    .map_or_else(|| "unpriced".to_owned(), |m| display_usd(m.0));
                t.add_row(vec![
                    if i == 0 {
                        r.name.clone()
                    } else {
                        String::new()
                    },
                    l.component.clone(),
                    unit_price,
                    format!(
                        "{} {}",
                        display_quantity(l.quantity.0),
                        plural_unit(&l.unit)
                    ),
                    monthly,
                ]);
            }
        }
        t.add_row(vec![
            "total".to_owned(),
            String::new(),
            String::new(),
            String::new(),
            display_usd(env.total_monthly.0),
        ]);
        for col in [2, 3, 4] {
            if let Some(c) = t.column_mut(col) {
                c.set_cell_alignment(CellAlignment::Right);
            }
        }
        out.push_str(&t.to_string());
        out.push('\n');
        let (total, incomplete) = total_text(env);
        out.push_str(&format!("total: {total}/month{incomplete}"));
        if let Some(b) = budget_text(env) {
            out.push_str(&format!("; {}", paint(&b, !b.starts_with("OVER"), color)));
        }
        out.push('\n');
        if let Some(c) = &env.comparison {
            let text = comparison_text(c);
            out.push_str(&format!(
                "change: {}\n",
                paint(&text, c.status != "over", color)
            ));
            for ch in &c.changes {
                out.push_str(&format!(
                    "  {} / {}: {} -> {} ({})\n",
                    ch.resource,
                    ch.component,
                    ch.previous.map_or_else(|| "-".to_owned(), |m| usd(m.0)),
                    ch.current.map_or_else(|| "-".to_owned(), |m| usd(m.0)),
                    signed_usd(ch.delta.0)
                ));
            }
        }
    }
    out
}

fn plural_unit(unit: &str) -> String {
    match unit {
        "GB" => "GB".to_owned(),
        other => format!("{other}s"),
    }
}

/// Resources as rows, environments as columns.
fn side_by_side(report: &Report) -> Table {
    let mut t = new_table();
    let mut header = vec!["resource".to_owned()];
    header.extend(
        report
            .environments
            .iter()
            .map(|e| format!("{} ({})", e.name, e.cloud)),
    );
    t.set_header(header);
    let mut names: Vec<&str> = Vec::new();
    for env in &report.environments {
        for r in &env.resources {
            if !names.contains(&r.name.as_str()) {
                names.push(&r.name);
            }
        }
    }
    for name in names {
        let mut row = vec![name.to_owned()];
        for env in &report.environments {
            row.push(
                env.resources
                    .iter()
                    .find(|r| r.name == name)
                    .map_or_else(|| "-".to_owned(), |r| display_usd(r.monthly.0)),
            );
        }
        t.add_row(row);
    }
    let mut total = vec!["total".to_owned()];
    total.extend(
        report
            .environments
            .iter()
            .map(|e| display_usd(e.total_monthly.0)),
    );
    t.add_row(total);
    let mut budget = vec!["budget".to_owned()];
    budget.extend(report.environments.iter().map(|e| {
        e.budget
            .as_ref()
            .map_or_else(|| "-".to_owned(), |b| display_usd(b.monthly_usd.0))
    }));
    t.add_row(budget);
    let mut status = vec!["status".to_owned()];
    status.extend(
        report
            .environments
            .iter()
            .map(|e| e.status.replace('_', " ")),
    );
    t.add_row(status);
    for col in 1..=report.environments.len() {
        if let Some(c) = t.column_mut(col) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    t
}

/// Text from ferry.toml (names) or the catalog, safe inside a markdown table cell of a
/// pull-request comment: a `|` would end the cell, a line break the row, and `<` start HTML.
fn md_escape(text: &str) -> String {
    text.replace('|', "\\|")
        .replace('<', "&lt;")
        .replace(['\r', '\n'], " ")
}

fn render_markdown(report: &Report) -> String {
    let mut out = String::new();
    for env in &report.environments {
        let mark = if env.status == "ok" { "✅" } else { "❌" };
        let (total, incomplete) = total_text(env);
        let mut line = format!(
            "{mark} **ferry cost · {}** ({} {}): **{total}**/month{incomplete}",
            env.name, env.cloud, env.region,
        );
        if let Some(b) = budget_text(env) {
            line.push_str(&format!(" · {b}"));
        }
        if let Some(c) = &env.comparison {
            line.push_str(&format!(" · {}", comparison_text(c)));
        }
        out.push_str(&line);
        out.push_str("\n\n");
    }
    if report.environments.len() > 1 {
        out.push_str("| resource |");
        for e in &report.environments {
            out.push_str(&format!(" {} |", md_escape(&e.name)));
        }
        out.push_str("\n|---|");
        out.push_str(&"---:|".repeat(report.environments.len()));
        out.push('\n');
        let table = side_by_side(report);
        for row in table.row_iter() {
            let cells: Vec<String> = row.cell_iter().map(|c| md_escape(&c.content())).collect();
            out.push_str(&format!("| {} |\n", cells.join(" | ")));
        }
        out.push('\n');
    }
    for env in &report.environments {
        if report.environments.len() > 1 {
            out.push_str(&format!(
                "<details><summary>{} line items</summary>\n\n",
                md_escape(&env.name)
            ));
        }
        out.push_str("| resource | component | unit price | quantity | monthly |\n|---|---|---:|---:|---:|\n");
        for r in &env.resources {
            for l in &r.lines {
                out.push_str(&format!(
                    "| {} | {} | {} | {} {} | {} |\n",
                    md_escape(&r.name),
                    md_escape(&l.component),
                    l.unit_price.map_or_else(
                        || "unpriced".to_owned(),
                        |p| format!("${} / {}", display_price(p.0), l.unit)
                    ),
                    display_quantity(l.quantity.0),
                    plural_unit(&l.unit),
                    l.monthly
                        .map_or_else(|| "unpriced".to_owned(), |m| usd(m.0)),
                ));
            }
        }
        out.push_str(&format!(
            "| **total** | | | | **{}** |\n",
            usd(env.total_monthly.0)
        ));
        if let Some(c) = env.comparison.as_ref().filter(|c| !c.changes.is_empty()) {
            out.push_str("\n| changed line | previous | now | change |\n|---|---:|---:|---:|\n");
            for ch in &c.changes {
                out.push_str(&format!(
                    "| {} / {} | {} | {} | {} |\n",
                    md_escape(&ch.resource),
                    md_escape(&ch.component),
                    ch.previous.map_or_else(|| "-".to_owned(), |m| usd(m.0)),
                    ch.current.map_or_else(|| "-".to_owned(), |m| usd(m.0)),
                    signed_usd(ch.delta.0)
                ));
            }
        }
        if report.environments.len() > 1 {
            out.push_str("\n</details>\n");
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "<sub>ferry catalog of {}: list prices, on-demand, USD, {} h/month. Exit code 4 = over budget, 5 = over the allowed increase.</sub>\n",
        report.catalog_as_of, report.hours_per_month
    ));
    out
}
