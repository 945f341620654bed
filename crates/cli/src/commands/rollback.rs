//! `ferry rollback [--to REVISION]`: re-apply a recorded release's manifests (all of them, not
//! just pod templates), wait for health, prune what the newer release added, and record the
//! rollback as a new revision. Default: the current release when a newer deploy failed and was
//! not rolled back (or was killed: the cluster holds its objects), else the release before the
//! current one.

use std::sync::Arc;

use crate::ambient::Environment;
use crate::cli::RollbackArgs;
use crate::commands::deploy::{Command, env_context, finish, json_result_of};
use crate::exit::CmdResult;
use crate::progress::{Mode, Progress};

/// Runs `ferry rollback`.
pub async fn run(args: &RollbackArgs, color: bool, env: &Environment) -> CmdResult {
    let progress = Arc::new(Progress::new(
        Mode::detect(args.env.json(), env),
        color,
        env,
    ));
    json_result_of(&progress, rollback(args, env, &progress).await)
}

async fn rollback(args: &RollbackArgs, env: &Environment, progress: &Arc<Progress>) -> CmdResult {
    let ctx = env_context(&args.env, env)?;
    let mut settings = ctx.settings.clone();
    if let Some(t) = args.timeout {
        settings.timeout = t;
    }
    if args.no_wait {
        settings.lock.wait = false;
    }
    settings.prune_namespaces = args.prune_namespaces;
    settings.prune_pvcs = args.prune_pvcs;
    let outcome = ctx
        .with_engine(settings, progress.clone(), async |engine| {
            engine.rollback(args.to).await
        })
        .await?;
    Ok(finish(&outcome, progress, &ctx.env_name, Command::Rollback))
}
