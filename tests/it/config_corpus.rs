//! The bad-config corpus (`tests/fixtures/bad-config/`): every file through `ferry validate` and
//! `ferry cost`. Each must fail with its documented exit code, name the file and (where the
//! problem has one) its line and column, fit on one screen, and never panic.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{code, ferry, root, stderr, stdout};

const SCREEN_LINES: usize = 30;
const SCREEN_COLUMNS: usize = 200;

fn corpus_dir() -> PathBuf {
    root().join("tests/fixtures/bad-config")
}

struct Case {
    file: PathBuf,
    exit: i32,
    validate_exit: i32,
    location: Option<String>,
    mentions: Option<String>,
    args: Vec<String>,
}

fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(corpus_dir().join("cases.toml")).unwrap();
    let doc: toml::Table = toml::from_str(&text).unwrap();
    let as_json = serde_json::to_value(&doc).unwrap();
    as_json["case"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let exit = c["exit"].as_i64().unwrap() as i32;
            Case {
                file: corpus_dir().join(c["file"].as_str().unwrap()),
                exit,
                validate_exit: c
                    .get("validate_exit")
                    .and_then(Value::as_i64)
                    .map_or(exit, |v| v as i32),
                location: c.get("location").and_then(Value::as_str).map(str::to_owned),
                mentions: c.get("mentions").and_then(Value::as_str).map(str::to_owned),
                args: c
                    .get("args")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
                    .unwrap_or_default(),
            }
        })
        .collect()
}

/// Runs one command on a bad file and checks the common promises; returns stderr.
fn check(
    command: &str,
    file: &Path,
    args: &[String],
    expected_exit: i32,
) -> Result<String, String> {
    let mut argv = vec![
        command.to_owned(),
        "--config".to_owned(),
        file.display().to_string(),
    ];
    argv.extend(args.iter().cloned());
    let out = ferry(&argv);
    let err = stderr(&out);
    let name = file.file_name().unwrap().to_string_lossy();
    let what = format!("ferry {} on {name}", argv.join(" "));
    if code(&out) != expected_exit {
        return Err(format!(
            "{what}: exit {} (expected {expected_exit})\n{err}",
            code(&out)
        ));
    }
    if err.contains("panicked") || err.contains("RUST_BACKTRACE") {
        return Err(format!("{what}: panicked\n{err}"));
    }
    if expected_exit != 0 {
        if !stdout(&out).is_empty() {
            return Err(format!(
                "{what}: printed to stdout on failure:\n{}",
                stdout(&out)
            ));
        }
        if !err.contains(&*name) {
            return Err(format!("{what}: error does not name the file\n{err}"));
        }
        // One screen per problem reported (a file with several problems lists them all).
        let problems = err.matches("Error: ").count().max(1);
        let lines = err.lines().count();
        if lines > SCREEN_LINES * problems {
            return Err(format!(
                "{what}: {lines} lines of error, more than one screen\n{err}"
            ));
        }
        // ...and no snippet line so wide that a terminal wraps it over many screens (a
        // one-line file of 10,000 brackets). Messages are prose a terminal wraps once or twice.
        if let Some(wide) = err
            .lines()
            .filter(|l| l.contains('│'))
            .find(|l| l.chars().count() > SCREEN_COLUMNS)
        {
            return Err(format!(
                "{what}: a line of {} characters in the error\n{wide:.300}…",
                wide.chars().count()
            ));
        }
    }
    Ok(err)
}

fn squeeze(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_whitespace() && *c != '│')
        .collect()
}

#[test]
fn the_corpus_has_at_least_thirty_invalid_files() {
    assert!(cases().len() >= 30, "{}", cases().len());
    for case in cases() {
        assert!(case.file.exists(), "{}", case.file.display());
    }
}

#[test]
fn every_bad_file_fails_cleanly_in_validate_and_cost() {
    let mut failures = Vec::new();
    for case in cases() {
        for (command, exit) in [("validate", case.validate_exit), ("cost", case.exit)] {
            match check(command, &case.file, &case.args, exit) {
                Err(e) => failures.push(e),
                Ok(err) if exit != 0 => {
                    // miette wraps long messages to the terminal width: compare without
                    // whitespace and the wrap's gutter characters.
                    let err = squeeze(&err);
                    let name = case
                        .file
                        .file_name()
                        .unwrap()
                        .to_string_lossy()
                        .into_owned();
                    if let Some(loc) = &case.location {
                        let want = format!("{name}:{loc}");
                        if !err.contains(&squeeze(&want)) {
                            failures.push(format!("{command} {name}: expected `{want}` in\n{err}"));
                        }
                    }
                    if let Some(m) = &case.mentions
                        && !err.contains(&squeeze(m))
                    {
                        failures.push(format!("{command} {name}: expected `{m}` in\n{err}"));
                    }
                }
                Ok(_) => {}
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn a_ten_megabyte_file_is_refused_without_reading_it_as_config() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("huge.toml");
    let mut text = String::from("[app]\nname = \"shop\"\n");
    let filler = "# padding padding padding padding padding padding padding padding padding\n";
    while text.len() < 10 * 1024 * 1024 {
        text.push_str(filler);
    }
    std::fs::write(&file, text).unwrap();
    for command in ["validate", "cost"] {
        let err = check(command, &file, &[], 3).unwrap();
        assert!(err.contains("bytes"), "{err}");
    }
}

#[test]
fn a_missing_file_is_invalid_input() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nope.toml");
    for command in ["validate", "cost"] {
        let err = check(command, &file, &[], 3).unwrap();
        assert!(err.contains("cannot read config file"), "{err}");
    }
}

#[test]
fn validate_reports_every_problem_not_just_the_first() {
    let out = ferry([
        "validate",
        "--config",
        corpus_dir().join("two-problems.toml").to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 3);
    let err = stderr(&out);
    assert!(err.contains("two-problems.toml:7:17"), "{err}");
    assert!(err.contains("two-problems.toml:11:17"), "{err}");
}

#[test]
fn validate_checks_every_section_and_lists_every_problem() {
    let out = ferry([
        "validate",
        "--config",
        corpus_dir()
            .join("every-section-wrong.toml")
            .to_str()
            .unwrap(),
    ]);
    assert_eq!(code(&out), 3);
    let err = stderr(&out);
    for (at, what) in [
        ("12:10", "`useast1` is not an AWS region"),
        ("14:1", "provider `acr` needs a host"),
        ("18:14", "`shop` is not `owner/name`"),
        ("25:7", "ttl = 0 is out of range"),
    ] {
        assert!(
            err.contains(&format!("every-section-wrong.toml:{at}: ")) && err.contains(what),
            "{at} {what}:\n{err}"
        );
    }
}

#[test]
fn valid_examples_validate() {
    for name in ["cloudtolocalllm", "ode", "devops-platform", "cloudage"] {
        let file = super::example(name);
        let out = ferry(["validate", "--config", file.to_str().unwrap()]);
        assert_eq!(code(&out), 0, "{name}: {}", stderr(&out));
        assert!(stdout(&out).contains("valid"), "{name}");
    }
}

#[test]
fn validate_env_all_checks_every_environment_as_cost_does() {
    let file = super::example("cloudtolocalllm");
    let file = file.to_str().unwrap();
    let all = ferry(["validate", "--config", file, "--env", "all"]);
    assert_eq!(code(&all), 0, "{}", stderr(&all));
    let none = ferry(["validate", "--config", file]);
    assert_eq!(stdout(&all), stdout(&none));
    assert!(stdout(&all).contains("3 environments"), "{}", stdout(&all));
    let one = ferry(["validate", "--config", file, "--env", "dev"]);
    assert!(
        stdout(&one).contains("1 environment: dev"),
        "{}",
        stdout(&one)
    );
    // A problem in any environment fails `--env all`.
    let bad = corpus_dir().join("unknown-instance-type.toml");
    let out = ferry([
        "validate",
        "--config",
        bad.to_str().unwrap(),
        "--env",
        "all",
    ]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
}

/// `/dev/zero` says it holds 0 bytes and never ends: ferry reads one byte past its limit and
/// stops, for the config file and for `--compare-to`, instead of filling memory.
#[cfg(unix)]
#[test]
fn an_endless_device_is_refused_after_the_limit() {
    for command in ["validate", "cost"] {
        let err = check(command, Path::new("/dev/zero"), &[], 3).unwrap();
        assert!(err.contains("at most 1048576 bytes"), "{err}");
    }
    let out = ferry([
        "cost",
        "--config",
        super::example("ode").to_str().unwrap(),
        "--compare-to",
        "/dev/zero",
    ]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(stderr(&out).contains("bytes at most"), "{}", stderr(&out));
}
