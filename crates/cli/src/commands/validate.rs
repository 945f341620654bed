//! `ferry validate`: load ferry.toml (syntax, keys, types, signs) and run every environment's
//! infra spec past the cost catalog, reporting all problems at once, each with file:line:column.

use std::io::Write as _;

use ferry_cost::Catalog;

use crate::cli::ValidateArgs;
use crate::commands::cost::{estimate_problems, load_config, problems_failure};
use crate::exit::{CmdResult, Exit, Failure};

/// Runs `ferry validate`.
pub fn run(args: &ValidateArgs) -> CmdResult {
    let cfg = load_config(&args.config.config)?;
    let names: Vec<String> = match &args.env {
        Some(name) => {
            cfg.env(name)
                .map_err(|e| Failure::new(Exit::InvalidInput, e))?;
            vec![name.clone()]
        }
        None => cfg.config.env.keys().cloned().collect(),
    };
    let catalog = Catalog::embedded();
    let mut problems = Vec::new();
    let mut with_infra = 0;
    for name in &names {
        let Some(infra) = cfg.config.env.get(name).and_then(|e| e.infra.as_ref()) else {
            continue;
        };
        with_infra += 1;
        let est = ferry_cost::estimate(infra, catalog);
        problems.extend(estimate_problems(&cfg, name, &est, false, false));
    }
    if !problems.is_empty() {
        return Err(problems_failure(&cfg, problems));
    }
    let manifest_problems = crate::commands::deploy::check_manifests(&cfg, &names);
    if !manifest_problems.is_empty() {
        return Err(crate::commands::deploy::manifests_failure(
            &manifest_problems,
        ));
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{}: valid ({} environment{}: {}; {with_infra} with a cost spec)",
        cfg.path.display(),
        names.len(),
        if names.len() == 1 { "" } else { "s" },
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        },
    )
    .map_err(super::io_failure)?;
    Ok(Exit::Success)
}
