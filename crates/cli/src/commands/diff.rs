//! `ferry diff`: what `ferry deploy` would change, from a server-side dry-run of every object
//! (create, update with a diff, unchanged, prune). Exit 0 when nothing would change, 6 when
//! something would. Secret values are never shown.

use std::io::Write as _;
use std::sync::Arc;

use ferry_deployer::events::{Action, Discard};
use ferry_deployer::images::DigestResolver;

use crate::ambient::Environment;
use crate::cli::DiffArgs;
use crate::commands::deploy::{
    digest_resolver, env_context, known_problems, release_input, resolve_tag, with_problems,
};
use crate::exit::{CmdResult, Exit};
use crate::progress::{Mode, Progress};

/// Runs `ferry diff`.
pub async fn run(args: &DiffArgs, color: bool, env: &Environment) -> CmdResult {
    let result = diff(args, color, env).await;
    // With --output json, stdout holds exactly one JSON document, failures included.
    if args.env.json()
        && let Err(f) = &result
    {
        let _ = writeln!(
            std::io::stdout().lock(),
            "{}",
            serde_json::json!({
                "error": f.report.to_string(),
                "exit_code": f.exit.code(),
                "problems": crate::commands::deploy::json_problems(f),
            })
        );
    }
    result
}

async fn diff(args: &DiffArgs, color: bool, env: &Environment) -> CmdResult {
    let ctx = env_context(&args.env, env)?;
    // Progress lines (render, warnings) go to stderr; the diff itself is the output, and with
    // --output json it is one JSON document.
    let progress = Arc::new(Progress::new(Mode::Plain, color, env));
    let tag = resolve_tag(args.tag.as_deref(), env);
    let resolver = digest_resolver(&ctx, env)?;
    let input = release_input(
        &ctx,
        tag.as_deref(),
        None,
        resolver.as_ref().map(|r| r as &dyn DigestResolver),
        &progress,
    )
    .await?;
    let mut settings = ctx.settings.clone();
    settings.force_conflicts = args.force_conflicts;
    settings.adopt_all = args.adopt;
    let earlier = known_problems(&input);
    let changes = with_problems(
        &earlier,
        ctx.with_engine(settings, Arc::new(Discard), async |engine| {
            engine.diff(input).await
        })
        .await,
    )?;
    let changed = changes
        .iter()
        .filter(|c| c.action != Action::Unchanged)
        .count();
    let mut out = std::io::stdout().lock();
    if args.env.json() {
        let list: Vec<serde_json::Value> = changes
            .iter()
            .map(|c| {
                serde_json::json!({"object": c.key, "action": c.action, "diff": c.diff,
                    "warnings": c.warnings, "notes": c.notes})
            })
            .collect();
        writeln!(
            out,
            "{}",
            serde_json::json!({"changes": list, "changed": changed})
        )
        .map_err(super::io_failure)?;
    } else {
        for c in &changes {
            for w in &c.warnings {
                writeln!(out, "warning: {}: the server warns: {w}", c.key)
                    .map_err(super::io_failure)?;
            }
            for n in &c.notes {
                writeln!(out, "note: {}: {n}", c.key).map_err(super::io_failure)?;
            }
        }
        for c in changes.iter().filter(|c| c.action != Action::Unchanged) {
            writeln!(out, "{} {}", c.action, c.key).map_err(super::io_failure)?;
            if matches!(c.action, Action::Update | Action::Replace) {
                for line in c.diff.lines() {
                    writeln!(out, "    {line}").map_err(super::io_failure)?;
                }
            }
        }
        let unchanged = changes.len() - changed;
        writeln!(
            out,
            "{changed} object{} would change, {unchanged} unchanged",
            if changed == 1 { "" } else { "s" }
        )
        .map_err(super::io_failure)?;
    }
    Ok(if changed == 0 {
        Exit::Success
    } else {
        Exit::ChangesPending
    })
}
