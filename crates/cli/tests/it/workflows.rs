//! The example GitHub Actions workflows for users (`.github/workflows/example-*.yml`) and the
//! examples' READMEs run `ferry` commands: each must be accepted by this ferry's command line
//! (clap, the same parser the binary uses), name environments its config defines, and the
//! workflows must stay examples (run by hand only, OIDC permissions, one deploy per environment
//! at a time). So the examples cannot rot when a flag or an environment changes.

use std::path::{Path, PathBuf};

use clap::Parser as _;
use ferry_cli::cli::Cli;
use ferry_cli::config::LoadedConfig;
use serde_norway::Value;

fn root() -> PathBuf {
    ferry_testkit::workspace_root()
}

/// A script's logical lines (`\` continuations joined) that run ferry.
fn ferry_lines(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in script.lines() {
        let line = line.trim();
        if let Some(start) = line.strip_suffix('\\') {
            current.push_str(start);
            current.push(' ');
            continue;
        }
        current.push_str(line);
        let logical = std::mem::take(&mut current);
        if logical.starts_with("ferry ") {
            out.push(logical);
        }
    }
    out
}

/// `${{ expr }}` replaced by a plain word, as the runner would put a value there.
fn substitute(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find("}}")
            .unwrap_or_else(|| panic!("unclosed ${{{{ in {line}"));
        out.push_str("x1f2e3d");
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    out
}

/// The words of a shell command line up to a pipe, redirection, `;`, `&&` or comment, with
/// quotes removed (`$VAR` is kept as written: any value parses the same).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, '|' | '>' | ';' | '&' | '#') if !in_word => break,
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    assert!(quote.is_none(), "unclosed quote in {line}");
    if in_word {
        out.push(word);
    }
    out
}

/// Parses one `ferry ...` line; returns the words, or why clap refused them.
fn parse(line: &str) -> Result<Vec<String>, String> {
    let words = words(&substitute(line));
    Cli::try_parse_from(&words)
        .map(|_| words.clone())
        .map_err(|e| format!("`{line}`:\n{e}"))
}

/// The value of `--env`/`-e` in a command's words.
fn env_of(words: &[String]) -> Option<&str> {
    words
        .windows(2)
        .find(|w| w[0] == "--env" || w[0] == "-e")
        .map(|w| w[1].as_str())
}

fn environments(config: &Path) -> Vec<String> {
    let cfg = LoadedConfig::load(config).unwrap_or_else(|e| panic!("{}: {e}", config.display()));
    cfg.config.env.keys().cloned().collect()
}

fn example_workflows() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(".github/workflows"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("example-") && n.ends_with(".yml"))
        })
        .collect();
    files.sort();
    files
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn workflow(file: &Path) -> Value {
    serde_norway::from_str(&std::fs::read_to_string(file).unwrap())
        .unwrap_or_else(|e| panic!("{}: not YAML: {e}", file.display()))
}

/// The `ferry` lines of every step's `run`, in order.
fn workflow_ferry_lines(doc: &Value) -> Vec<String> {
    let jobs = doc["jobs"].as_mapping().expect("jobs");
    jobs.values()
        .flat_map(|job| job["steps"].as_sequence().expect("steps"))
        .filter_map(|step| str_at(step, "run"))
        .flat_map(ferry_lines)
        .collect()
}

#[test]
fn every_ferry_command_in_the_example_workflows_parses() {
    let files = example_workflows();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for want in [
        "example-deploy-eks.yml",
        "example-deploy-aks.yml",
        "example-promote.yml",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
    }
    let mut failures = Vec::new();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let doc = workflow(file);

        // Examples only: run by hand, never on this repository's pushes.
        let on = doc.get("on").and_then(Value::as_mapping).expect("on:");
        let triggers: Vec<&str> = on.keys().filter_map(Value::as_str).collect();
        assert_eq!(triggers, ["workflow_dispatch"], "{name}");
        let permissions = &doc["permissions"];
        assert_eq!(str_at(permissions, "id-token"), Some("write"), "{name}");
        assert_eq!(str_at(permissions, "contents"), Some("read"), "{name}");
        assert_eq!(
            permissions.as_mapping().map(|m| m.len()),
            Some(2),
            "{name}: only id-token and contents"
        );
        let group = str_at(&doc["concurrency"], "group").expect("a concurrency group");
        assert_eq!(
            doc["concurrency"]
                .get("cancel-in-progress")
                .and_then(Value::as_bool),
            Some(false),
            "{name}: a deploy is queued, never cancelled half-way"
        );

        let config = root().join(str_at(&doc["env"], "FERRY_CONFIG").expect("FERRY_CONFIG"));
        let defined = environments(&config);
        let mut deployed = Vec::new();
        let lines = workflow_ferry_lines(&doc);
        let count = lines.len();
        for line in lines {
            match parse(&line) {
                Err(e) => failures.push(format!("{name}: {e}")),
                Ok(words) => {
                    if let Some(env) = env_of(&words) {
                        if !defined.iter().any(|d| d == env) {
                            failures.push(format!(
                                "{name}: `{line}` names environment `{env}`, which {} does not define ({defined:?})",
                                config.display()
                            ));
                        }
                        if words[1] == "deploy" {
                            deployed.push(env.to_owned());
                        }
                    }
                }
            }
        }
        assert!(count >= 5, "{name}: only {count} ferry commands found");
        assert!(!deployed.is_empty(), "{name} deploys nothing");
        for env in &deployed {
            assert_eq!(
                group,
                format!("ferry-deploy-{env}"),
                "{name}: the concurrency group is per environment"
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_eks_example_builds_pushes_deploys_points_dns_and_reports_cost() {
    let lines = workflow_ferry_lines(&workflow(
        &root().join(".github/workflows/example-deploy-eks.yml"),
    ));
    let position = |what: &dyn Fn(&str) -> bool, label: &str| {
        lines
            .iter()
            .position(|l| what(l))
            .unwrap_or_else(|| panic!("no {label} in {lines:#?}"))
    };
    let check = position(&|l| l.starts_with("ferry auth check"), "auth check");
    let push = position(
        &|l| {
            l.starts_with("ferry image push")
                && l.contains("--tag ${{ github.sha }}")
                && l.contains("--tag latest")
        },
        "image push with the commit SHA and latest",
    );
    let deploy = position(&|l| l.starts_with("ferry deploy"), "deploy");
    let dns = position(&|l| l.starts_with("ferry dns apply"), "dns apply");
    let cost = position(
        &|l| l.starts_with("ferry cost") && l.contains("--format markdown"),
        "cost --format markdown",
    );
    assert!(check < push && push < deploy && deploy < dns && dns < cost);
}

#[test]
fn every_ferry_command_in_the_examples_readmes_parses() {
    let mut failures = Vec::new();
    let mut count = 0;
    let examples = root().join("examples");
    for entry in std::fs::read_dir(&examples).unwrap() {
        let dir = entry.unwrap().path();
        let Ok(readme) = std::fs::read_to_string(dir.join("README.md")) else {
            continue;
        };
        let defined = environments(&dir.join("ferry.toml"));
        let mut in_sh = false;
        let mut block = String::new();
        for line in readme.lines() {
            if line.starts_with("```") {
                in_sh = !in_sh && line.trim() == "```sh";
                continue;
            }
            if in_sh {
                block.push_str(line);
                block.push('\n');
            }
        }
        for line in ferry_lines(&block) {
            count += 1;
            match parse(&line) {
                Err(e) => failures.push(format!("{}: {e}", dir.display())),
                Ok(words) => {
                    let env = env_of(&words).filter(|e| *e != "all");
                    if let Some(env) = env
                        && !defined.iter().any(|d| d == env)
                    {
                        failures.push(format!(
                            "{}: `{line}` names environment `{env}`, not in its ferry.toml",
                            dir.display()
                        ));
                    }
                }
            }
        }
    }
    assert!(
        count >= 20,
        "only {count} ferry commands in the examples' READMEs"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_line_reader_joins_continuations_and_stops_at_shell_operators() {
    let lines = ferry_lines(
        "echo hi\nferry deploy \\\n  --env dev # go\nferry cost -f markdown >> \"$GITHUB_STEP_SUMMARY\"\n",
    );
    assert_eq!(lines.len(), 2);
    assert_eq!(words(&lines[0]), ["ferry", "deploy", "--env", "dev"]);
    assert_eq!(words(&lines[1]), ["ferry", "cost", "-f", "markdown"]);
    assert_eq!(
        words(&substitute("ferry image push a b --tag ${{ github.sha }}")),
        ["ferry", "image", "push", "a", "b", "--tag", "x1f2e3d"]
    );
    assert_eq!(
        words("ferry diff --tag \"$GITHUB_SHA\" | tee out"),
        ["ferry", "diff", "--tag", "$GITHUB_SHA"]
    );
    // A wrong flag is caught.
    assert!(parse("ferry deploy --env dev --tga 1").is_err());
    assert!(parse("ferry deploy --env dev --tag 1").is_ok());
}
