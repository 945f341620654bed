//! `ferry cost` on the seed examples: the acceptance figures, totals recomputed by hand
//! from catalog rows, the budget and increase gates, and snapshots of each output format.

use std::str::FromStr as _;

use ferry_cost::{Catalog, Cloud};
use rust_decimal::Decimal;
use serde_json::Value;

use super::{code, cost, cost_json, example, ferry, stderr, stdout};

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn money(v: &Value) -> Decimal {
    d(v.as_str()
        .unwrap_or_else(|| panic!("not a money string: {v}")))
}

/// A catalog price, looked up by key (`aws/us-east-1/ec2/t3.medium`) and tier index.
fn row(key: &str, tier: usize) -> Decimal {
    let parts: Vec<&str> = key.splitn(4, '/').collect();
    let cloud = match parts[0] {
        "aws" => Cloud::Aws,
        _ => Cloud::Azure,
    };
    let tiers = Catalog::embedded().tiers(cloud, parts[1], parts[2], parts[3]);
    assert!(!tiers.is_empty(), "no catalog row {key}");
    tiers[tier].price
}

fn r(key: &str) -> Decimal {
    row(key, 0)
}

const H: i64 = 730;

fn h() -> Decimal {
    Decimal::from(H)
}

fn env<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no environment {name}"))
}

fn line<'a>(env: &'a Value, component_prefix: &str) -> &'a Value {
    env["resources"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["lines"].as_array().unwrap())
        .find(|l| {
            l["component"]
                .as_str()
                .unwrap()
                .starts_with(component_prefix)
        })
        .unwrap_or_else(|| panic!("no line {component_prefix}"))
}

fn sum_of_lines(env: &Value) -> Decimal {
    env["resources"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["lines"].as_array().unwrap())
        .map(|l| money(&l["monthly"]))
        .sum()
}

#[test]
fn cloudtolocalllm_dev_acceptance_figures() {
    let (exit, report) = cost_json(&example("cloudtolocalllm"), &["--env", "dev"]);
    assert_eq!(exit, 0);
    assert_eq!(report["schema_version"], 1);
    let dev = env(&report, "dev");
    assert_eq!(
        money(&line(dev, "EKS control plane")["monthly"]),
        d("73.00")
    );
    assert_eq!(line(dev, "EKS control plane")["monthly_rounded"], "73.00");
    let nodes = line(dev, "t3.medium");
    assert_eq!(money(&nodes["monthly"]), d("60.736"));
    assert_eq!(money(&nodes["monthly_rounded"]), d("60.74"));
    assert_eq!(money(&nodes["unit_price"]), d("0.0416"));
    assert_eq!(money(&nodes["quantity"]), d("1460"));
    // The total includes every line.
    assert_eq!(money(&dev["total_monthly"]), sum_of_lines(dev));
    assert!(dev["complete"].as_bool().unwrap());
}

#[test]
fn cloudtolocalllm_dev_budget_gate() {
    let config = example("cloudtolocalllm");
    let (over, report) = cost_json(&config, &["--env", "dev", "--budget", "150"]);
    assert_eq!(over, 4, "over budget");
    assert_eq!(env(&report, "dev")["status"], "over_budget");
    let (within, report) = cost_json(&config, &["--env", "dev", "--budget", "300"]);
    assert_eq!(within, 0);
    assert_eq!(env(&report, "dev")["budget"]["status"], "within");
    // The file's own budget ($300) applies without the flag.
    let (exit, report) = cost_json(&config, &["--env", "dev"]);
    assert_eq!(exit, 0);
    assert_eq!(
        money(&env(&report, "dev")["budget"]["monthly_usd"]),
        d("300")
    );
}

#[test]
fn ode_production_reproduces_the_seed_line_items_with_real_prices() {
    let (exit, report) = cost_json(&example("ode"), &["--env", "production"]);
    assert_eq!(exit, 0);
    let prod = env(&report, "production");
    let ec2 = money(&line(prod, "t3.medium on-demand")["monthly"])
        + money(&line(prod, "t3.large on-demand")["monthly"]);
    assert_eq!(ec2, d("242.944"), "EC2 $242.94, not the seed's $150");
    assert_eq!(money(&line(prod, "cache.t3.medium")["monthly"]), d("99.28"));
    assert_eq!(
        money(&line(prod, "NAT gateway hours")["monthly"]),
        d("98.55")
    );
    assert_eq!(
        money(&line(prod, "db.t3.medium postgres Multi-AZ")["monthly"]),
        d("105.12")
    );
}

/// Every example's totals, recomputed by hand from catalog rows (not by the estimator).
#[test]
fn example_totals_match_a_hand_computation_from_catalog_rows() {
    let e1 = "aws/us-east-1";
    let hand: Vec<(&str, &str, Decimal)> = vec![
        (
            "cloudtolocalllm",
            "dev",
            r(&format!("{e1}/eks/standard")) * h()
                + r(&format!("{e1}/ec2/t3.medium")) * d("2") * h()
                + r(&format!("{e1}/ebs/gp2")) * d("100")
                + r(&format!("{e1}/elb/nlb")) * h()
                + row(&format!("{e1}/data-transfer/internet-egress"), 1) * d("150")
                + row(&format!("{e1}/cloudwatch/logs-ingestion"), 1) * d("5"),
        ),
        (
            "cloudtolocalllm",
            "dev-aks",
            r("azure/eastus/vm/Standard_B2s") * d("2") * h()
                + r("azure/eastus/managed-disk/standard_ssd/E6") * d("2")
                + r("azure/eastus/load-balancer/standard") * h()
                + r("azure/eastus/load-balancer/standard-data") * d("250")
                + r("azure/eastus/public-ip/standard-ipv4") * h()
                + row("azure/eastus/bandwidth/internet-egress", 1) * d("150")
                + row("azure/eastus/monitor/logs-ingestion", 1) * d("5")
                + r("azure/eastus/acr/basic") * h() / d("24"),
        ),
        (
            "ode",
            "production",
            r(&format!("{e1}/eks/standard")) * h()
                + r(&format!("{e1}/ec2/t3.medium")) * d("2") * h()
                + r(&format!("{e1}/ec2/t3.large")) * d("3") * h()
                + r(&format!("{e1}/ebs/gp2")) * d("100")
                + r(&format!("{e1}/vpc/nat-gateway")) * d("3") * h()
                + r(&format!("{e1}/vpc/public-ipv4")) * d("3") * h()
                + r(&format!("{e1}/rds/postgres/db.t3.medium/multi-az")) * h()
                + r(&format!("{e1}/rds-storage/gp3/multi-az")) * d("100")
                + r(&format!("{e1}/elasticache/cache.t3.medium")) * d("2") * h()
                + r(&format!("{e1}/s3/standard")) * d("1024")
                + r(&format!("{e1}/ecr/storage")) * d("100"),
        ),
        (
            "devops-platform",
            "dev",
            r(&format!("{e1}/eks/standard")) * h()
                + r(&format!("{e1}/ec2/t3.medium")) * h()
                + r(&format!("{e1}/ebs/gp3")) * d("30")
                + r(&format!("{e1}/vpc/nat-gateway")) * h()
                + r(&format!("{e1}/vpc/public-ipv4")) * h(),
        ),
        (
            "devops-platform",
            "staging",
            r(&format!("{e1}/eks/standard")) * h()
                + r(&format!("{e1}/ec2/m5.large")) * d("2") * h()
                + r(&format!("{e1}/ebs/gp3")) * d("100")
                + r(&format!("{e1}/vpc/nat-gateway")) * h()
                + r(&format!("{e1}/vpc/public-ipv4")) * h(),
        ),
        (
            "devops-platform",
            "prod",
            r(&format!("{e1}/eks/standard")) * h()
                + r(&format!("{e1}/ec2/m5.xlarge")) * d("3") * h()
                + r(&format!("{e1}/ec2/c5.xlarge")) * d("2") * h()
                + r(&format!("{e1}/ebs/gp3")) * d("500")
                + r(&format!("{e1}/vpc/nat-gateway")) * d("3") * h()
                + r(&format!("{e1}/vpc/public-ipv4")) * d("3") * h(),
        ),
        (
            "cloudage",
            "dev",
            r(&format!("{e1}/eks/standard")) * h()
                + r(&format!("{e1}/ec2/m5.large")) * d("2") * h()
                + r(&format!("{e1}/ebs/gp3")) * d("160")
                + r(&format!("{e1}/elb/nlb")) * h()
                + r(&format!("{e1}/vpc/public-ipv4")) * d("2") * h()
                + r(&format!("{e1}/ecr/storage")) * d("1"),
        ),
    ];
    for (example_name, env_name, expected) in hand {
        let (exit, report) = cost_json(&example(example_name), &["--env", env_name]);
        assert!(
            exit == 0 || exit == 4,
            "{example_name} {env_name}: exit {exit}"
        );
        let e = env(&report, env_name);
        assert_eq!(
            money(&e["total_monthly"]),
            expected,
            "{example_name} {env_name}"
        );
        assert_eq!(money(&e["total_monthly"]), sum_of_lines(e));
    }
}

#[test]
fn all_environments_side_by_side_each_gated_on_its_own_budget() {
    let out = cost(&example("cloudtolocalllm"), &["--env", "all"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("dev (aws)") && text.contains("dev-aks (azure)"),
        "{text}"
    );
    // A budget flag applies to every environment: both are over $100.
    let (exit, report) = cost_json(
        &example("cloudtolocalllm"),
        &["--env", "all", "--budget", "100"],
    );
    assert_eq!(exit, 4);
    assert_eq!(report["environments"].as_array().unwrap().len(), 2);
}

#[test]
fn compare_to_gates_the_increase_and_over_budget_wins() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ferry.toml");
    let previous = dir.path().join("previous.json");
    let base = std::fs::read_to_string(example("cloudtolocalllm")).unwrap();
    std::fs::write(&config, &base).unwrap();
    let out = cost(&config, &["--env", "dev", "--format", "json"]);
    assert_eq!(code(&out), 0);
    std::fs::write(&previous, out.stdout).unwrap();
    let compare = |extra: &[&str]| {
        let args = [
            &["--env", "dev", "--compare-to", previous.to_str().unwrap()],
            extra,
        ];
        cost_json(&config, &args.concat())
    };

    // Same spec: no change, within 10%.
    let (exit, report) = compare(&[]);
    assert_eq!(exit, 0);
    assert_eq!(env(&report, "dev")["comparison"]["status"], "within");
    assert_eq!(
        money(&env(&report, "dev")["comparison"]["delta"]),
        Decimal::ZERO
    );

    // Four nodes (with their disks) instead of two: +$70.74 (+40%), over the file's 10%.
    std::fs::write(&config, base.replacen("count = 2", "count = 4", 1)).unwrap();
    let (exit, report) = compare(&[]);
    assert_eq!(exit, 5, "over the allowed increase");
    let cmp = &env(&report, "dev")["comparison"];
    assert_eq!(cmp["status"], "over");
    assert_eq!(money(&cmp["delta"]), d("70.736"));
    assert_eq!(cmp["changes"].as_array().unwrap().len(), 2);
    // A flag overrides the file's limit.
    let (exit, _) = compare(&["--max-increase", "100"]);
    assert_eq!(exit, 0);
    // Over budget and over the increase: 4 wins.
    let (exit, report) = compare(&["--budget", "200"]);
    assert_eq!(exit, 4);
    assert_eq!(env(&report, "dev")["status"], "over_budget_and_increase");
}

#[test]
fn a_bad_compare_to_file_is_a_located_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("previous.json");
    std::fs::write(
        &bad,
        "{\n  \"schema_version\": 1,\n  \"environments\": [,]\n}\n",
    )
    .unwrap();
    let compare_to_bad = || {
        cost(
            &example("cloudtolocalllm"),
            &["--env", "dev", "--compare-to", bad.to_str().unwrap()],
        )
    };
    let out = compare_to_bad();
    assert_eq!(code(&out), 3);
    let err = stderr(&out);
    assert!(err.contains("previous.json:3:"), "{err}");
    assert!(stdout(&out).is_empty());
    std::fs::write(&bad, "{\"schema_version\": 7}").unwrap();
    let out = compare_to_bad();
    assert_eq!(code(&out), 3);
    assert!(
        stderr(&out).contains("schema_version 7 is not supported"),
        "{}",
        stderr(&out)
    );
    // A real report edited so that its amounts would overflow a sum: refused, no panic, and no
    // made-up `line 0, column 0`.
    let (_, mut report) = cost_json(&example("cloudtolocalllm"), &["--env", "dev"]);
    let max = "79228162514264337593543950335";
    let dev = &mut report["environments"][0];
    for r in dev["resources"].as_array_mut().unwrap() {
        for l in r["lines"].as_array_mut().unwrap() {
            l["monthly"] = max.into();
        }
    }
    dev["total_monthly"] = max.into();
    std::fs::write(&bad, report.to_string()).unwrap();
    let out = compare_to_bad();
    let err = stderr(&out);
    assert_eq!(code(&out), 3, "{err}");
    assert!(
        err.contains("previous.json") && err.contains("is out of range"),
        "{err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("line 0"),
        "{err}"
    );
}

#[test]
fn unpriced_values_fail_unless_allowed_and_are_never_zero() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ferry.toml");
    let text = std::fs::read_to_string(example("cloudtolocalllm"))
        .unwrap()
        .replacen(
            "instance_type = \"t3.medium\"",
            "instance_type = \"t3.colossal\"",
            1,
        );
    // The error points at the value: its line in the file, column 17 (after `instance_type = `).
    let line_no = text
        .lines()
        .position(|l| l.contains("t3.colossal"))
        .unwrap()
        + 1;
    std::fs::write(&config, text).unwrap();
    let out = cost(&config, &["--env", "dev"]);
    assert_eq!(code(&out), 3);
    assert!(
        stderr(&out).contains(&format!("ferry.toml:{line_no}:17")),
        "{}",
        stderr(&out)
    );
    let (exit, report) = cost_json(&config, &["--env", "dev", "--allow-unpriced"]);
    assert_eq!(exit, 0);
    let dev = env(&report, "dev");
    assert_eq!(dev["complete"], false);
    assert_eq!(dev["unpriced_lines"], 1);
    let l = line(dev, "t3.colossal");
    assert_eq!(l["priced"], false);
    assert!(l["monthly"].is_null());
    let out = cost(&config, &["--env", "dev", "--allow-unpriced"]);
    let total = stdout(&out)
        .lines()
        .find(|l| l.starts_with("total: "))
        .unwrap_or_default()
        .to_owned();
    assert!(
        total.starts_with("total: ≥ $") && total.contains("/month (incomplete: 1 unpriced)"),
        "{}",
        stdout(&out)
    );
    let out = cost(
        &config,
        &["--env", "dev", "--allow-unpriced", "--format", "markdown"],
    );
    assert!(
        stdout(&out).contains("**/month (incomplete: 1 unpriced)"),
        "{}",
        stdout(&out)
    );
}

fn snapshot_text(text: &str) -> String {
    // The catalog date and version change with releases; the figures are what is pinned.
    text.replace(env!("CARGO_PKG_VERSION"), "[version]")
}

#[test]
fn output_formats_snapshot() {
    let config = example("cloudtolocalllm");
    let c = config.to_str().unwrap();
    for (name, args) in [
        (
            "cloudtolocalllm_dev_table",
            vec!["cost", "--config", c, "--env", "dev"],
        ),
        (
            "cloudtolocalllm_all_table",
            vec!["cost", "--config", c, "--env", "all"],
        ),
        (
            "cloudtolocalllm_dev_markdown",
            vec![
                "cost", "--config", c, "--env", "dev", "--format", "markdown",
            ],
        ),
        (
            "cloudtolocalllm_all_markdown",
            vec!["cost", "--config", c, "--format", "markdown"],
        ),
        (
            "cloudtolocalllm_dev_json",
            vec!["cost", "--config", c, "--env", "dev", "--format", "json"],
        ),
    ] {
        let out = ferry(&args);
        assert_eq!(code(&out), 0, "{name}: {}", stderr(&out));
        insta::assert_snapshot!(name, snapshot_text(&stdout(&out)));
    }
}

/// The headroom shown is the budget minus the total shown: $89.425 of $100 reads $89.43 and
/// $10.57 (which add up to the budget), in the table and in markdown; the JSON keeps 10.575.
#[test]
fn the_headroom_shown_adds_up_with_the_total_shown() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ferry.toml");
    std::fs::write(
        &config,
        "[app]\nname = \"shop\"\n\n[env.dev.infra]\ncloud = \"aws\"\nregion = \"us-east-1\"\n\
         control_plane = \"standard\"\n\n[[env.dev.infra.load_balancers]]\nname = \"ingress\"\n\
         kind = \"nlb\"\n\n[env.dev.budget]\nmonthly_usd = 100\n",
    )
    .unwrap();
    let (exit, report) = cost_json(&config, &["--env", "dev"]);
    assert_eq!(exit, 0);
    let dev = env(&report, "dev");
    assert_eq!(money(&dev["total_monthly"]), d("89.425"));
    assert_eq!(money(&dev["budget"]["headroom"]), d("10.575"));
    for format in ["table", "markdown"] {
        let out = cost(&config, &["--env", "dev", "--format", format]);
        assert_eq!(code(&out), 0);
        let text = stdout(&out);
        assert!(text.contains("$89.43"), "{text}");
        assert!(text.contains("(headroom $10.57)"), "{format}:\n{text}");
    }
}

/// Over budget by less than a cent ($176.161 against $176.16) is over (exit 4), and says by how
/// little instead of "by $0.00".
#[test]
fn over_budget_by_a_fraction_of_a_cent_says_so() {
    for format in ["table", "markdown"] {
        let out = cost(
            &example("cloudtolocalllm"),
            &["--env", "dev", "--budget", "176.16", "--format", format],
        );
        assert_eq!(code(&out), 4, "{}", stderr(&out));
        let text = stdout(&out);
        assert!(
            text.contains("OVER budget $176.16 by less than $0.01"),
            "{format}:\n{text}"
        );
    }
}

/// Names from ferry.toml cannot break the pull-request comment's table: a `|`, a line break or
/// HTML in a node group's name stay inside their cell.
#[test]
fn markdown_cells_hold_any_name() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ferry.toml");
    std::fs::write(
        &config,
        "[app]\nname = \"shop\"\n\n[env.dev.infra]\ncloud = \"aws\"\nregion = \"us-east-1\"\n\
         control_plane = \"standard\"\n\n[[env.dev.infra.node_groups]]\n\
         name = \"a|b\\nc <img src=x>\"\ninstance_type = \"t3.medium\"\ncount = 1\n",
    )
    .unwrap();
    let out = cost(&config, &["--env", "dev", "--format", "markdown"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with('|')).collect();
    let node_row = rows
        .iter()
        .find(|l| l.contains("t3.medium"))
        .unwrap_or_else(|| panic!("no node row in\n{text}"));
    assert!(node_row.contains("a\\|b c &lt;img src=x>"), "{node_row}");
    assert!(!text.contains("<img"), "{text}");
    for row in rows {
        assert!(row.ends_with('|'), "a row broken in two: {row}\n{text}");
    }
}
