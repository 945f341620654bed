//! Acceptance: `ferry dns` against knot, with dig (and nsupdate for other people's records) as
//! the independent tools. Needs the ferry binary (`cargo build -p ferry-cli`) and the test
//! servers (`scripts/servers.sh start`).

use std::path::PathBuf;
use std::process::Command;

use ferry_testkit::{ferry_bin, server};

use crate::knot::dig;

/// `ferry` on one ferry.toml, with the variables it needs (and `NO_COLOR`), as CI runs it.
#[derive(Clone)]
struct Ferry {
    config: PathBuf,
    env: Vec<(&'static str, Option<String>)>,
    dir: Option<PathBuf>,
}

impl Ferry {
    fn new(config: PathBuf) -> Ferry {
        Ferry {
            config,
            env: vec![("NO_COLOR", Some("1".into()))],
            dir: None,
        }
    }

    fn env(mut self, key: &'static str, value: impl Into<String>) -> Ferry {
        self.env.push((key, Some(value.into())));
        self
    }

    fn env_remove(mut self, key: &'static str) -> Ferry {
        self.env.push((key, None));
        self
    }

    fn current_dir(mut self, dir: PathBuf) -> Ferry {
        self.dir = Some(dir);
        self
    }

    fn run(&self, args: &[&str]) -> Ran {
        let mut cmd = Command::new(ferry_bin());
        cmd.args(args).arg("--config").arg(&self.config);
        for (key, value) in &self.env {
            match value {
                Some(v) => cmd.env(key, v),
                None => cmd.env_remove(key),
            };
        }
        if let Some(dir) = &self.dir {
            cmd.current_dir(dir);
        }
        let out = cmd.output().expect("ferry runs");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let all = format!(
            "--- stdout\n{stdout}--- stderr\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ran {
            code: out.status.code().unwrap_or(-1),
            stdout,
            all,
        }
    }
}

/// How one ferry run ended, and what it printed.
struct Ran {
    code: i32,
    stdout: String,
    /// stdout and stderr, labelled.
    all: String,
}

impl Ran {
    /// Checks the exit code; on failure shows everything ferry printed.
    #[track_caller]
    fn exits(self, code: i32) -> Ran {
        assert_eq!(self.code, code, "{}", self.all);
        self
    }

    /// Checks that ferry printed `what` (on stdout or stderr).
    #[track_caller]
    fn says(self, what: &str) -> Ran {
        assert!(self.all.contains(what), "`{what}` not in:\n{}", self.all);
        self
    }
}

/// A ferry.toml in a temporary directory, with two environments (`aks` pointing at an IP,
/// `eks` at a load balancer hostname) managing `names` under a fresh label in the knot zone.
struct Setup {
    dir: PathBuf,
    base: String,
    zone: String,
    ferry: Ferry,
}

impl Setup {
    fn new(label: &str, names: &[&str], extra: &str) -> Setup {
        let zone = server("FERRY_TEST_KNOT_ZONE");
        let base = crate::unique(label);
        let dir = std::env::temp_dir().join(format!("ferry-dns-{base}"));
        std::fs::create_dir_all(&dir).unwrap();
        let records: Vec<String> = names
            .iter()
            .map(|n| {
                if *n == "@" {
                    format!("\"{base}.{zone}\"")
                } else {
                    format!("\"{n}.{base}.{zone}\"")
                }
            })
            .collect();
        let env = |name: &str, target: &str| {
            format!(
                r#"
[env.{name}.dns]
provider = "rfc2136"
zone = "{zone}"
records = [{records}]
ttl = 60
target = "{target}"
{extra}
[env.{name}.dns.rfc2136]
server = "{server}"
key_name = "{key}"
key_algorithm = "hmac-sha256"
[env.{name}.dns.verify]
timeout = "10s"
interval = "200ms"
query_timeout = "1s"
resolvers = ["{server}", "127.0.0.1:9"]
"#,
                records = records.join(", "),
                server = server("FERRY_TEST_KNOT"),
                key = server("FERRY_TEST_KNOT_TSIG_KEY"),
            )
        };
        let text = format!(
            "[app]\nname = \"shop\"\n{}{}",
            env("aks", "192.0.2.10"),
            env("eks", "k8s-shop-0123456789.elb.us-east-1.amazonaws.com")
        );
        std::fs::write(dir.join("ferry.toml"), text).unwrap();
        let ferry = Ferry::new(dir.join("ferry.toml"));
        Setup {
            dir,
            base,
            zone,
            ferry,
        }
    }

    /// A managed name (`@` is the environment's own base name).
    fn name(&self, n: &str) -> String {
        if n == "@" {
            format!("{}.{}", self.base, self.zone)
        } else {
            format!("{n}.{}.{}", self.base, self.zone)
        }
    }

    fn ferry_with_secret(&self, secret: &str, args: &[&str]) -> Ran {
        self.ferry
            .clone()
            .env("FERRY_TSIG_SECRET", secret)
            .run(args)
    }

    fn ferry(&self, args: &[&str]) -> Ran {
        self.ferry_with_secret(&server("FERRY_TEST_KNOT_TSIG_SECRET"), args)
    }
}

/// nsupdate, as another team would use it.
fn nsupdate(commands: &str) {
    let knot = server("FERRY_TEST_KNOT");
    let (host, port) = knot.split_once(':').unwrap();
    let script = format!(
        "server {host} {port}\nzone {}\n{commands}\nsend\n",
        server("FERRY_TEST_KNOT_ZONE")
    );
    let mut child = Command::new("nsupdate")
        .arg("-y")
        .arg(format!(
            "hmac-sha256:{}:{}",
            server("FERRY_TEST_KNOT_TSIG_KEY"),
            server("FERRY_TEST_KNOT_TSIG_SECRET")
        ))
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("nsupdate is installed (bind9-dnsutils)");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "nsupdate failed: {script}");
}

#[test]
fn apply_creates_records_with_ownership_and_a_second_apply_changes_nothing() {
    let s = Setup::new("apply", &["@", "www"], "");
    let (apex, www) = (s.name("@"), s.name("www"));
    // Changes pending.
    s.ferry(&["dns", "plan", "--env", "aks"]).exits(6);

    let apply = s.ferry(&["dns", "apply", "--env", "aks"]).exits(0);
    assert!(
        apply
            .stdout
            .contains("authoritative servers answer the target"),
        "{}",
        apply.all
    );
    // dig, the independent client, answers the target...
    assert_eq!(dig(&apex, "A"), ["192.0.2.10"]);
    assert_eq!(dig(&www, "A"), ["192.0.2.10"]);
    // ...and the ownership records are external-dns's format.
    let owner =
        "\"heritage=external-dns,external-dns/owner=shop,external-dns/resource=ferry/shop/aks\"";
    assert_eq!(dig(&format!("a-{apex}"), "TXT"), [owner]);
    assert_eq!(dig(&format!("a-{www}"), "TXT"), [owner]);

    let again = s.ferry(&["dns", "apply", "--env", "aks"]).exits(0);
    assert!(again.stdout.contains("\n0 changes"), "{}", again.all);
    let plan = s
        .ferry(&["dns", "plan", "--env", "aks", "--output", "json"])
        .exits(0);
    let doc: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    assert_eq!(doc["changes"], serde_json::json!([]));
    assert_eq!(doc["in_sync"].as_array().unwrap().len(), 2);
}

#[test]
fn the_server_can_be_named_by_host_name() {
    let s = Setup::new("byname", &["app"], "");
    let path = s.dir.join("ferry.toml");
    let knot = server("FERRY_TEST_KNOT");
    let port = knot.rsplit_once(':').unwrap().1;
    // The update server and the verify server, both by name.
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace(
            &format!("server = \"{knot}\""),
            &format!("server = \"localhost:{port}\""),
        )
        .replace(
            "[env.aks.dns.verify]\n",
            &format!("[env.aks.dns.verify]\nservers = [\"localhost:{port}\"]\n"),
        );
    std::fs::write(&path, text).unwrap();
    s.ferry(&["validate"]).exits(0);
    let apply = s.ferry(&["dns", "apply", "--env", "aks"]).exits(0);
    assert!(
        apply
            .stdout
            .contains("authoritative servers answer the target"),
        "{}",
        apply.all
    );
    assert_eq!(dig(&s.name("app"), "A"), ["192.0.2.10"]);
    let json = s
        .ferry(&["dns", "verify", "--env", "aks", "-o", "json"])
        .exits(0);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(
        doc["verify"]["authoritative"][0]["server"],
        format!("127.0.0.1:{port}"),
        "{}",
        json.all
    );
    // A verify server that does not resolve: exit 1 naming it, before anything changes.
    let good = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        good.replace(
            &format!("servers = [\"localhost:{port}\"]"),
            "servers = [\"ns1.no-such-host.invalid\"]",
        ),
    )
    .unwrap();
    s.ferry(&["dns", "apply", "--env", "aks", "--target", "192.0.2.99"])
        .exits(1)
        .says("cannot resolve the verify server ns1.no-such-host.invalid");
    assert_eq!(dig(&s.name("app"), "A"), ["192.0.2.10"], "nothing changed");
    std::fs::write(&path, good).unwrap();

    // A name that is not a host name is refused where it is written, before anything runs.
    let text = std::fs::read_to_string(&path).unwrap().replacen(
        &format!("server = \"localhost:{port}\""),
        "server = \"10.0.0.256\"",
        1,
    );
    std::fs::write(&path, text).unwrap();
    s.ferry(&["dns", "plan", "--env", "aks"])
        .exits(3)
        .says("ferry.toml:")
        .says("`10.0.0.256` is not HOST[:PORT] or IP[:PORT]");
}

#[test]
fn hostnames_become_cnames_and_switch_moves_names_between_environments_and_back() {
    let s = Setup::new("switch", &["app", "api"], "");
    let (app, api) = (s.name("app"), s.name("api"));
    let lb = "k8s-shop-0123456789.elb.us-east-1.amazonaws.com.";

    s.ferry(&["dns", "apply", "--env", "aks"]).exits(0);
    assert_eq!(dig(&app, "A"), ["192.0.2.10"]);

    // AKS -> EKS: A records become CNAMEs to the NLB; ownership follows.
    s.ferry(&["dns", "switch", "--env", "aks", "--to", "eks"])
        .exits(0);
    for n in [&app, &api] {
        assert_eq!(dig(n, "CNAME"), [lb]);
        assert!(
            dig(n, "A").iter().all(|l| l == lb),
            "no A left beside the CNAME"
        );
        assert_eq!(dig(&format!("cname-{n}"), "TXT").len(), 1);
        assert!(
            dig(&format!("a-{n}"), "TXT").is_empty(),
            "the old claim is gone"
        );
    }

    // And back (seed 001's rollback).
    // To itself: a command-line mistake, nothing changed.
    s.ferry(&["dns", "switch", "--env", "eks", "--to", "eks"])
        .exits(2)
        .says("--env and --to are both `eks`");
    s.ferry(&["dns", "switch", "--env", "eks", "--to", "aks"])
        .exits(0);
    for n in [&app, &api] {
        assert_eq!(dig(n, "A"), ["192.0.2.10"]);
        assert!(dig(n, "CNAME").is_empty());
    }
    let verify = s.ferry(&["dns", "verify", "--env", "aks"]).exits(0);
    let stdout = &verify.stdout;
    assert!(
        stdout.contains("n/a") && stdout.contains("unreachable"),
        "an unreachable resolver is reported as such: {stdout}"
    );
}

/// Names that do not answer the target within the verify timeout: exit 9, each failing name
/// with what it answers and what was expected.
#[test]
fn names_not_answering_the_target_in_time_are_exit_9_with_what_was_expected() {
    let s = Setup::new("late", &["app"], "");
    let path = s.dir.join("ferry.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("timeout = \"10s\"", "timeout = \"1s\"")).unwrap();
    // Before the records exist: the resolvers say so (`none`: knot, asked as a resolver,
    // answers NXDOMAIN) or cannot be asked (`n/a`: port 9).
    let knot = server("FERRY_TEST_KNOT");
    s.ferry(&["dns", "verify", "--env", "aks"])
        .exits(9)
        .says(&format!("none {} @{knot}: NXDOMAIN", s.name("app")))
        .says(&format!("n/a  {} @127.0.0.1:9: unreachable", s.name("app")));
    s.ferry(&["dns", "apply", "--env", "aks"]).exits(0);
    // The names answer 192.0.2.10; the zone is asked to answer another address.
    s.ferry(&["dns", "verify", "--env", "aks", "--target", "192.0.2.11"])
        .exits(9)
        .says("do NOT answer the target")
        .says(&format!("old  {} @{knot}: 192.0.2.10", s.name("app")))
        .says(&format!(
            "FAIL {} @{}: 192.0.2.10, expected 192.0.2.11",
            s.name("app"),
            server("FERRY_TEST_KNOT")
        ));
    let json = s
        .ferry(&[
            "dns",
            "verify",
            "--env",
            "aks",
            "--target",
            "192.0.2.11",
            "-o",
            "json",
        ])
        .exits(9);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(doc["verify"]["converged"], false, "{}", json.all);
    // --verify-timeout overrides the file's timeout for verify as for apply: with a file that
    // allows a minute, the check gives up after the flag's 1 s (the report says how long it
    // took; the bound leaves room for a loaded machine).
    std::fs::write(
        &path,
        text.replace("timeout = \"10s\"", "timeout = \"60s\""),
    )
    .unwrap();
    let json = s
        .ferry(&[
            "dns",
            "verify",
            "--env",
            "aks",
            "--target",
            "192.0.2.11",
            "--verify-timeout",
            "1s",
            "-o",
            "json",
        ])
        .exits(9);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let elapsed = doc["verify"]["elapsed_ms"].as_u64().unwrap();
    assert!(elapsed < 30_000, "gave up after {elapsed} ms: {}", json.all);
    // verify has no --adopt: it changes nothing.
    s.ferry(&["dns", "verify", "--env", "aks", "--adopt"])
        .exits(2);
    // Nothing was changed by verify.
    assert_eq!(dig(&s.name("app"), "A"), ["192.0.2.10"]);
}

/// A zone ferry could not verify is refused before anything changes; the memory provider
/// (nothing outside the process to ask) applies without verifying.
#[test]
fn verification_is_settled_before_anything_changes() {
    let s = Setup::new("noverify", &["app"], "");
    let path = s.dir.join("ferry.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace(
            "[env.aks.dns.verify]\n",
            "[env.aks.dns.verify]\nservers = []\n",
        ),
    )
    .unwrap();
    s.ferry(&["dns", "apply", "--env", "aks"])
        .exits(3)
        .says("no authoritative servers to verify against")
        .says("nothing was changed");
    assert!(dig(&s.name("app"), "A").is_empty(), "nothing was applied");

    let dir = std::env::temp_dir().join(crate::unique("ferry-dns-memory"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("ferry.toml"),
        "[app]\nname = \"shop\"\n[env.dev.dns]\nprovider = \"memory\"\nzone = \"example.com\"\n\
         records = [\"@\", \"app\"]\ntarget = \"192.0.2.1\"\n",
    )
    .unwrap();
    Ferry::new(dir.join("ferry.toml"))
        .run(&["dns", "apply", "--env", "dev"])
        .exits(0)
        .says("applied 4 changes")
        .says("verify: skipped");
}

#[test]
fn foreign_records_are_left_alone_and_reported_unless_adopted() {
    let s = Setup::new("foreign", &["app"], "");
    let (app, other) = (s.name("app"), s.name("other"));
    // Another team's records: one at a name ferry does not manage, one at a name it does.
    nsupdate(&format!(
        "update add {other} 300 A 198.51.100.7\nupdate add {app} 300 A 198.51.100.8"
    ));

    s.ferry(&["dns", "plan", "--env", "aks"])
        .exits(3)
        .says("conflict:")
        .says("no ownership record")
        .says("--adopt");

    s.ferry(&["dns", "apply", "--env", "aks"])
        .exits(3)
        .says("nothing was changed");
    assert_eq!(dig(&app, "A"), ["198.51.100.8"], "not overwritten");
    assert!(
        dig(&format!("a-{app}"), "TXT").is_empty(),
        "no claim written"
    );

    s.ferry(&["dns", "apply", "--env", "aks", "--adopt"])
        .exits(0);
    assert_eq!(dig(&app, "A"), ["192.0.2.10"]);
    assert_eq!(dig(&format!("a-{app}"), "TXT").len(), 1);
    // The record at the other name was never touched.
    assert_eq!(dig(&other, "A"), ["198.51.100.7"]);
}

#[test]
fn a_record_owned_by_another_external_dns_is_reported_with_its_owner() {
    let s = Setup::new("owned", &["app"], "");
    let app = s.name("app");
    nsupdate(&format!(
        "update add {app} 300 A 198.51.100.9\nupdate add a-{app} 300 TXT \"heritage=external-dns,external-dns/owner=platform-team,external-dns/resource=ingress/web/web\""
    ));
    s.ferry(&["dns", "plan", "--env", "aks"])
        .exits(3)
        .says("owned by `platform-team`");
    assert_eq!(dig(&app, "A"), ["198.51.100.9"]);
}

#[test]
fn a_wrong_tsig_secret_is_an_auth_failure_that_changes_nothing_and_never_shows_the_secret() {
    let s = Setup::new("badkey", &["app"], "");
    let wrong = "c2VjcmV0LWJ1dC13cm9uZy1zZWNyZXQtYnV0LXdyb25nIQ==";
    let out = s
        .ferry_with_secret(wrong, &["dns", "apply", "--env", "aks"])
        .exits(11)
        .says("BADSIG")
        .says("check the secret");
    let all = out.all;
    assert!(!all.contains(wrong), "the secret is never printed: {all}");
    assert!(!all.contains(&server("FERRY_TEST_KNOT_TSIG_SECRET")));
    assert!(dig(&s.name("app"), "A").is_empty());
}

#[test]
fn a_zone_the_key_cannot_edit_is_an_auth_failure() {
    let s = Setup::new("ro", &["app"], "");
    let path = s.dir.join("ferry.toml");
    let ro = server("FERRY_TEST_KNOT_READONLY_ZONE");
    let text_cfg = std::fs::read_to_string(&path)
        .unwrap()
        .replace(&format!("\"{}\"", s.zone), &format!("\"{ro}\""))
        .replace(&format!(".{}\"", s.zone), &format!(".{ro}\""));
    std::fs::write(&path, text_cfg).unwrap();
    s.ferry(&["dns", "apply", "--env", "aks"])
        .exits(11)
        .says("ferry-readonly.test");
    assert!(dig(&format!("app.{}.{ro}", s.base), "A").is_empty());
}

#[test]
fn bad_input_is_located_and_changes_nothing() {
    let s = Setup::new("bad", &["app"], "");
    let path = s.dir.join("ferry.toml");
    let original = std::fs::read_to_string(&path).unwrap();

    // An invalid name: file:line:column.
    std::fs::write(
        &path,
        original.replacen(
            &format!("\"app.{}", s.base),
            &format!("\"bad_name!.{}", s.base),
            1,
        ),
    )
    .unwrap();
    s.ferry(&["dns", "plan", "--env", "aks"])
        .exits(3)
        .says("ferry.toml:7:")
        .says("bad_name!");

    // An unknown key.
    std::fs::write(
        &path,
        original.replacen("ttl = 60", "ttl = 60\nttll = 3", 1),
    )
    .unwrap();
    s.ferry(&["dns", "plan", "--env", "aks"])
        .exits(3)
        .says("unknown field `ttll`");

    // A bad --target, a missing secret.
    std::fs::write(&path, &original).unwrap();
    s.ferry(&["dns", "apply", "--env", "aks", "--target", "not a host"])
        .exits(3)
        .says("--target");
    // A secret that is not base64: the variable is named, its value is not shown.
    s.ferry_with_secret("not base64!!", &["dns", "plan", "--env", "aks"])
        .exits(3)
        .says("FERRY_TSIG_SECRET is not usable")
        .says("is not base64");
    // Missing credentials are an auth failure.
    s.ferry
        .clone()
        .env_remove("FERRY_TSIG_SECRET")
        .run(&["dns", "apply", "--env", "aks"])
        .exits(11)
        .says("FERRY_TSIG_SECRET");
    // No environment with that name; no dns table.
    s.ferry(&["dns", "plan", "--env", "nope"])
        .exits(3)
        .says("aks, eks");
    assert!(dig(&s.name("app"), "A").is_empty(), "nothing was applied");
}

/// `ferry dns` on Route53 with web identity but no token in this job: ferry's own error.
#[cfg(feature = "route53")]
#[test]
fn route53_without_a_token_is_an_auth_failure_that_says_what_to_set() {
    let moto = server("FERRY_TEST_MOTO");
    let zone = format!("{}.ferry-test.example", crate::unique("notoken"));
    let dir = std::env::temp_dir().join(format!("ferry-dns-{zone}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("ferry.toml"),
        format!(
            "[app]\nname = \"shop\"\n[env.eks.dns]\nprovider = \"route53\"\nzone = \"{zone}\"\nrecords = [\"app\"]\n\
             target = \"192.0.2.1\"\n[env.eks.dns.route53]\nendpoint_url = \"{moto}\"\n\
             [env.eks.auth]\noidc = {{ source = \"env\", token_env = \"FERRY_TEST_NO_SUCH_TOKEN\" }}\n\
             [env.eks.auth.aws]\nrole_arn = \"arn:aws:iam::123456789012:role/ferry-dns\"\n"
        ),
    )
    .unwrap();
    Ferry::new(dir.join("ferry.toml"))
        .env_remove("FERRY_TEST_NO_SUCH_TOKEN")
        .run(&["dns", "plan", "--env", "eks"])
        .exits(11)
        .says("FERRY_TEST_NO_SUCH_TOKEN");
}

/// `ferry dns` on Route53 (moto), with the credentials from the standard AWS chain.
#[cfg(feature = "route53")]
#[tokio::test]
async fn route53_apply_writes_alias_records_and_converges() {
    use aws_sdk_route53::config::{BehaviorVersion, Credentials, Region};
    let moto = server("FERRY_TEST_MOTO");
    let zone = format!("{}.ferry-test.example", crate::unique("cli"));
    let cfg = aws_sdk_route53::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(&moto)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("k", "s", None, None, "t"))
        .build();
    let client = aws_sdk_route53::Client::from_conf(cfg);
    client
        .create_hosted_zone()
        .name(&zone)
        .caller_reference(crate::unique("ref"))
        .send()
        .await
        .unwrap();
    let dir = std::env::temp_dir().join(format!("ferry-dns-{zone}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("ferry.toml"),
        format!(
            "[app]\nname = \"shop\"\n[env.eks.dns]\nprovider = \"route53\"\nzone = \"{zone}\"\nrecords = [\"@\", \"app\"]\n\
             target = \"k8s-shop-0123456789.elb.us-east-1.amazonaws.com\"\n[env.eks.dns.route53]\nendpoint_url = \"{moto}\"\n\
             [env.eks.dns.verify]\nenabled = false\n"
        ),
    )
    .unwrap();
    let ferry = Ferry::new(dir.join("ferry.toml"))
        .env("AWS_ACCESS_KEY_ID", "k")
        .env("AWS_SECRET_ACCESS_KEY", "s")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    ferry
        .run(&["dns", "apply", "--env", "eks"])
        .exits(0)
        .says("A ALIAS k8s-shop-0123456789.elb.us-east-1.amazonaws.com (Z26RNL4JYFTOTI)");
    ferry.run(&["dns", "plan", "--env", "eks"]).exits(0);
    // What moto holds: alias A at the apex and at app, ownership TXTs.
    let zones = client
        .list_hosted_zones_by_name()
        .dns_name(&zone)
        .send()
        .await
        .unwrap();
    let id = zones.hosted_zones()[0].id().to_owned();
    let sets = client
        .list_resource_record_sets()
        .hosted_zone_id(id)
        .send()
        .await
        .unwrap();
    let aliases = sets
        .resource_record_sets()
        .iter()
        .filter(|r| r.alias_target().is_some())
        .count();
    assert_eq!(aliases, 2);
}

/// `ferry dns` on Cloudflare (the fake API), with the token from CLOUDFLARE_API_TOKEN: proxied
/// records, and the token never printed, even at trace level.
#[cfg(feature = "cloudflare")]
#[tokio::test]
async fn cloudflare_apply_with_proxied_records_never_prints_the_token() {
    let (server, _fake) = crate::cloudflare::fake().await;
    let dir = std::env::temp_dir().join(crate::unique("ferry-dns-cf"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("ferry.toml"),
        format!(
            "[app]\nname = \"shop\"\n[env.prod.dns]\nprovider = \"cloudflare\"\nzone = \"example.com\"\n\
             records = [\"@\", \"app\"]\nproxied = true\ntarget = \"203.0.113.10\"\n\
             [env.prod.dns.cloudflare]\napi_url = \"{}/client/v4\"\n[env.prod.dns.verify]\nenabled = false\n",
            server.uri()
        ),
    )
    .unwrap();
    let cloudflare = Ferry::new(dir.join("ferry.toml"));
    let ferry = |args: &[&str]| {
        let out = cloudflare
            .clone()
            .env("CLOUDFLARE_API_TOKEN", crate::cloudflare::TOKEN)
            .run(args);
        assert!(
            !out.all.contains(crate::cloudflare::TOKEN),
            "the token was printed: {}",
            out.all
        );
        out
    };
    let out = ferry(&["-vvv", "dns", "apply", "--env", "prod"]).exits(0);
    let stdout = &out.stdout;
    assert!(
        stdout.contains("example.com A ttl=1 proxied 203.0.113.10"),
        "{stdout}"
    );
    ferry(&["dns", "plan", "--env", "prod"]).exits(0);
    // A token the API refuses: exit 11, with the permission to grant.
    let out = cloudflare
        .env("CLOUDFLARE_API_TOKEN", "not-the-token")
        .run(&["dns", "plan", "--env", "prod"])
        .exits(11)
        .says("DNS:Edit");
    assert!(!out.all.contains("not-the-token"), "{}", out.all);
}

/// The zone apex (its own zone, `ferry-apex.test`): an A record beside the zone's SOA and NS,
/// the ownership value in the old format at the apex itself (no `a-` name fits inside the
/// zone), converging on every run whatever an earlier run left.
#[test]
fn the_zone_apex_gets_an_address_and_an_ownership_value_beside_soa_and_ns() {
    let apex = server("FERRY_TEST_KNOT_APEX_ZONE");
    let dir = std::env::temp_dir().join(crate::unique("ferry-dns-apex"));
    std::fs::create_dir_all(&dir).unwrap();
    // Another address on every run, so each run has something to change.
    let octet = 100 + std::process::id() % 100;
    let ip = format!("192.0.2.{octet}");
    std::fs::write(
        dir.join("ferry.toml"),
        format!(
            "[app]\nname = \"apex-test\"\n[env.prod.dns]\nprovider = \"rfc2136\"\nzone = \"{apex}\"\nrecords = [\"@\"]\n\
             target = \"{ip}\"\nttl = 60\n[env.prod.dns.rfc2136]\nserver = \"{}\"\nkey_name = \"{}\"\n\
             [env.prod.dns.verify]\ntimeout = \"10s\"\ninterval = \"200ms\"\nresolvers = []\n",
            server("FERRY_TEST_KNOT"),
            server("FERRY_TEST_KNOT_TSIG_KEY"),
        ),
    )
    .unwrap();
    let ferry = Ferry::new(dir.join("ferry.toml"))
        .env("FERRY_TSIG_SECRET", server("FERRY_TEST_KNOT_TSIG_SECRET"));
    ferry.run(&["dns", "apply", "--env", "prod"]).exits(0);
    assert_eq!(dig(&apex, "A"), [ip.as_str()]);
    let txt = dig(&apex, "TXT");
    assert!(
        txt.iter()
            .any(|t| t.contains("external-dns/owner=apex-test")),
        "the claim sits at the apex: {txt:?}"
    );
    assert_eq!(dig(&apex, "SOA").len(), 1, "the SOA is untouched");
    assert_eq!(dig(&apex, "NS"), [format!("ns1.{apex}.")]);
    ferry.run(&["dns", "plan", "--env", "prod"]).exits(0);
    // A hostname cannot go at the apex on an RFC 2136 server: refused before anything changes.
    ferry
        .run(&["dns", "plan", "--env", "prod", "--target", "lb.example.net"])
        .exits(3)
        .says("zone apex, where a CNAME cannot live");
}

/// The whole flow of seed property 6: deploy to the simulated cluster, then `ferry dns apply`
/// with no target reads the LoadBalancer Service's address from the release and points the
/// names at it; dig answers it.
#[test]
fn with_no_target_the_names_point_at_the_load_balancer_of_the_deployed_release() {
    let fixture = ferry_testkit::workspace_root().join("crates/dns/tests/fixtures/lb-app");
    let base = crate::unique("lb");
    let dir = std::env::temp_dir().join(format!("ferry-dns-{base}"));
    std::fs::create_dir_all(dir.join("k8s")).unwrap();
    std::fs::copy(fixture.join("k8s/app.yaml"), dir.join("k8s/app.yaml")).unwrap();
    let zone = server("FERRY_TEST_KNOT_ZONE");
    let name = format!("{base}.{zone}");
    let cfg = std::fs::read_to_string(fixture.join("ferry.toml.in"))
        .unwrap()
        .replace("@ZONE@", &zone)
        .replace("@NAME@", &name)
        .replace("@SERVER@", &server("FERRY_TEST_KNOT"))
        .replace("@KEY@", &server("FERRY_TEST_KNOT_TSIG_KEY"));
    std::fs::write(dir.join("ferry.toml"), cfg).unwrap();
    let ferry = Ferry::new(dir.join("ferry.toml"))
        .env("FERRY_TSIG_SECRET", server("FERRY_TEST_KNOT_TSIG_SECRET"))
        .current_dir(dir.clone());
    // Before any deploy there is no load balancer to point at.
    ferry
        .run(&["dns", "plan", "--env", "local"])
        .exits(3)
        .says("deploy first");

    ferry.run(&["deploy", "--env", "local"]).exits(0);
    ferry
        .run(&["status", "--env", "local", "--output", "json"])
        .exits(0);

    let out = ferry.run(&["dns", "apply", "--env", "local"]).exits(0);
    let stdout = &out.stdout;
    let target = stdout
        .lines()
        .next()
        .and_then(|l| l.split("target ").nth(1))
        .unwrap_or_default()
        .to_owned();
    assert!(
        target.ends_with(".elb.us-east-1.amazonaws.com"),
        "the simulated NLB's hostname: {stdout}"
    );
    assert_eq!(dig(&name, "CNAME"), [format!("{target}.")]);
    assert_eq!(dig(&format!("www.{name}"), "CNAME"), [format!("{target}.")]);
    out.says("authoritative servers answer the target");
}
