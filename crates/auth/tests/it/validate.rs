//! `ferry validate` on `[env.NAME.auth.aws]` and `[env.NAME.auth.azure]`: every problem of
//! each table, each at its file:line:column, not only the first one the credential setup meets.

use crate::support::ferry::ferry;

const TOML: &str = r#"[app]
name = "shop"

[env.prod.cluster]
provider = "eks"
cluster = "shop"
region = "eu-west-1"

[env.prod.auth.aws]
role_arn = "arn:aws:iam::12:role/x"
duration = "20h"
session_name = "a b"
endpoint_url = "not a url"

[env.az.auth.azure]
tenant_id = "bad tenant"
client_id = "bad client"
authority = "ftp://x"
"#;

#[test]
fn validate_lists_every_problem_of_the_aws_and_azure_tables_each_located() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ferry.toml"), TOML).unwrap();
    let run = ferry(dir.path(), &["validate"], &[]);
    assert_eq!(run.code, 3, "{}", run.all());
    let out = run.stderr.replace('\n', " ");
    for located in [
        "ferry.toml:10:12: auth.aws.role_arn:",
        "ferry.toml:11:12: auth.aws.duration: 20h is outside what STS grants",
        "ferry.toml:12:16: auth.aws.session_name:",
        "ferry.toml:13:16: auth.aws.endpoint_url:",
        "ferry.toml:16:13: auth.azure.tenant_id:",
        "ferry.toml:17:13: auth.azure.client_id:",
        "ferry.toml:18:13: auth.azure.authority:",
    ] {
        assert!(out.contains(located), "missing {located}:\n{}", run.stderr);
    }
    assert!(out.contains("ferry.toml: 7 problems"), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
}
