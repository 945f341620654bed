//! `ferry --help`, `ferry cost --help` and shell completions.

use super::{code, ferry, stderr, stdout};

#[test]
fn top_level_help_lists_the_commands() {
    let out = ferry(["--help"]);
    assert_eq!(code(&out), 0);
    let text = stdout(&out);
    for command in ["cost", "validate", "completions", "exit-codes"] {
        assert!(text.contains(command), "{command} missing from:\n{text}");
    }
    insta::assert_snapshot!("ferry_help", text);
}

#[test]
fn cost_help_describes_every_flag_and_the_exit_codes() {
    let out = ferry(["cost", "--help"]);
    assert_eq!(code(&out), 0);
    let text = stdout(&out);
    for flag in [
        "--config",
        "--env",
        "--format",
        "--budget",
        "--compare-to",
        "--max-increase",
        "--allow-unpriced",
    ] {
        assert!(text.contains(flag), "{flag} missing from:\n{text}");
    }
    for code in [
        "0 within budget",
        "3 invalid input",
        "4 over budget",
        "5 over the",
    ] {
        assert!(text.contains(code), "`{code}` missing from:\n{text}");
    }
    insta::assert_snapshot!("ferry_cost_help", text);
}

#[test]
fn validate_help_mentions_its_exit_codes() {
    let text = stdout(&ferry(["validate", "--help"]));
    assert!(
        text.contains("--config") && text.contains("Exit codes: 0"),
        "{text}"
    );
}

#[test]
fn completions_are_generated_for_bash_zsh_and_fish() {
    for shell in ["bash", "zsh", "fish"] {
        let out = ferry(["completions", shell]);
        assert_eq!(code(&out), 0, "{shell}");
        let text = stdout(&out);
        assert!(text.len() > 500, "{shell}: {text}");
        assert!(
            text.contains("cost") && text.contains("max-increase"),
            "{shell}"
        );
    }
}

#[test]
fn bad_flag_values_are_usage_errors() {
    for args in [
        &["cost", "--budget", "lots"][..],
        &["cost", "--budget", "-5"],
        &["cost", "--max-increase", "10%"], // needs --compare-to
        &["cost", "--format", "yaml"],
    ] {
        let out = ferry(args);
        assert_eq!(code(&out), 2, "{args:?}");
    }
    // A negative amount is refused as a value, with what was expected, not mistaken for a flag.
    let config = super::example("cloudtolocalllm");
    let config = config.to_str().unwrap();
    for (flag, value) in [("--budget", "-5"), ("--max-increase", "-10%")] {
        let out = ferry([
            "cost",
            "--config",
            config,
            "--compare-to",
            config,
            flag,
            value,
        ]);
        let err = stderr(&out);
        assert_eq!(code(&out), 2, "{flag} {value}: {err}");
        assert!(
            err.contains(&format!("invalid value '{value}' for '{flag}")),
            "{err}"
        );
    }
}
