//! `ferry status`: the current release of an environment and the live health of its objects,
//! and the latest attempt when it is newer than the current release and did not become it (a
//! deploy that failed without a rollback, or one still running or killed). Exit 0 when every
//! object is ready and the current release is the newest attempt; 13 otherwise.

use std::io::Write as _;
use std::sync::Arc;

use ferry_deployer::events::Discard;
use ferry_deployer::health::Health;

use crate::ambient::Environment;
use crate::cli::EnvArgs;
use crate::commands::deploy::env_context;
use crate::exit::{CmdResult, Exit};

/// Runs `ferry status`.
pub async fn run(args: &EnvArgs, env: &Environment) -> CmdResult {
    let ctx = env_context(args, env)?;
    let (status, history) = ctx
        .with_engine(ctx.settings.clone(), Arc::new(Discard), async |engine| {
            Ok((engine.status().await?, engine.history().await?))
        })
        .await?;
    let mut out = std::io::stdout().lock();
    let Some((release, objects)) = status else {
        if args.json() {
            writeln!(out, "{}", serde_json::json!({"release": null})).map_err(super::io_failure)?;
        } else {
            writeln!(
                out,
                "no releases of {} in {} yet",
                ctx.settings.app, ctx.env_name
            )
            .map_err(super::io_failure)?;
        }
        return Ok(Exit::Success);
    };
    let word = |h: &Health| match h {
        Health::Ready => ("ready", String::new()),
        Health::Pending(m) => ("waiting", m.clone()),
        Health::Failed(m) => ("failed", m.clone()),
    };
    let all_ready = objects.iter().all(|(_, h)| *h == Health::Ready);
    // The newest record, when it came after the current release and is not it.
    let latest = history
        .iter()
        .max_by_key(|r| r.revision)
        .filter(|r| r.revision > release.revision);
    if args.json() {
        let objs: Vec<serde_json::Value> = objects
            .iter()
            .map(|(k, h)| {
                let (state, message) = word(h);
                serde_json::json!({"object": k, "state": state, "message": message})
            })
            .collect();
        writeln!(
            out,
            "{}",
            serde_json::json!({
                "release": {"revision": release.revision, "status": release.status, "tag": release.tag,
                            "images": release.images, "started_at": release.started_at,
                            "finished_at": release.finished_at, "description": release.description},
                "healthy": all_ready,
                "objects": objs,
                "latest_attempt": latest.map(|r| serde_json::json!({
                    "revision": r.revision, "status": r.status, "tag": r.tag,
                    "started_at": r.started_at, "description": r.description})),
            })
        )
        .map_err(super::io_failure)?;
    } else {
        writeln!(
            out,
            "{} in {}: release v{} ({}), tag {}, deployed {}",
            ctx.settings.app,
            ctx.env_name,
            release.revision,
            release.status,
            release.tag.as_deref().unwrap_or("-"),
            release
                .finished_at
                .as_deref()
                .unwrap_or(&release.started_at)
        )
        .map_err(super::io_failure)?;
        if let Some(r) = latest {
            writeln!(
                out,
                "  latest attempt: v{} ({}), tag {}: {}",
                r.revision,
                r.status,
                r.tag.as_deref().unwrap_or("-"),
                r.description
            )
            .map_err(super::io_failure)?;
        }
        for img in &release.images {
            writeln!(out, "  image {}: {}", img.name, img.reference())
                .map_err(super::io_failure)?;
        }
        for (k, h) in &objects {
            let (state, message) = word(h);
            if message.is_empty() {
                writeln!(out, "  {state:<8} {k}").map_err(super::io_failure)?;
            } else {
                writeln!(out, "  {state:<8} {k}  {message}").map_err(super::io_failure)?;
            }
        }
        let not_ready = objects.iter().filter(|(_, h)| *h != Health::Ready).count();
        if not_ready > 0 {
            writeln!(out, "{not_ready} of {} objects not ready", objects.len())
                .map_err(super::io_failure)?;
        }
    }
    // As `kubectl rollout status` fails for a rollout that is not complete: a script can gate
    // on `ferry status`.
    Ok(if all_ready && latest.is_none() {
        Exit::Success
    } else {
        Exit::Unhealthy
    })
}
