//! `ferry history`: the environment's releases, newest first, with their status, tag, images
//! and what happened.

use std::io::Write as _;
use std::sync::Arc;

use ferry_deployer::events::Discard;

use crate::ambient::Environment;
use crate::cli::EnvArgs;
use crate::commands::deploy::env_context;
use crate::exit::{CmdResult, Exit};

/// Runs `ferry history`.
pub async fn run(args: &EnvArgs, env: &Environment) -> CmdResult {
    let ctx = env_context(args, env)?;
    let history = ctx
        .with_engine(ctx.settings.clone(), Arc::new(Discard), async |engine| {
            engine.history().await
        })
        .await?;
    let mut out = std::io::stdout().lock();
    if args.json() {
        let list: Vec<serde_json::Value> = history
            .iter()
            .rev()
            .map(|r| {
                serde_json::json!({
                    "revision": r.revision, "status": r.status, "tag": r.tag, "commit": r.commit,
                    "images": r.images, "previous": r.previous, "restores": r.restores,
                    "started_at": r.started_at, "finished_at": r.finished_at,
                    "description": r.description, "objects": r.manifests.len(),
                })
            })
            .collect();
        writeln!(out, "{}", serde_json::json!({ "releases": list })).map_err(super::io_failure)?;
        return Ok(Exit::Success);
    }
    if history.is_empty() {
        writeln!(
            out,
            "no releases of {} in {} yet",
            ctx.settings.app, ctx.env_name
        )
        .map_err(super::io_failure)?;
        return Ok(Exit::Success);
    }
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    table.set_header(["REVISION", "STATUS", "TAG", "STARTED", "DESCRIPTION"]);
    for r in history.iter().rev() {
        table.add_row([
            format!("v{}", r.revision),
            r.status.to_string(),
            r.tag.clone().unwrap_or_else(|| "-".into()),
            r.started_at.clone(),
            r.description.clone(),
        ]);
    }
    // The last column is not padded: a long description would pad every row.
    for line in table.to_string().lines() {
        writeln!(out, "{}", line.trim_end()).map_err(super::io_failure)?;
    }
    Ok(Exit::Success)
}
