//! The `ferry` binary with an EKS environment: `ferry kubeconfig`, `ferry auth token|whoami|
//! trust-policy|check`, and the errors a CI job meets (expired or malformed token, AccessDenied,
//! throttling, unknown cluster, wrong region, unreachable endpoint) — each with its exit code,
//! a message naming what to fix, bounded retries, and no secret in any output.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::aws_front::{AwsFront, Fault, Match};
use crate::support::cluster_front::ClusterFront;
use crate::support::ferry::{Run, ferry, ferry_toml};
use crate::support::{
    self, assert_aws_cli_agrees, assert_no_secrets, create_moto_cluster, eks_token_url, github_jwt,
    query, uuid_like, wall_clock,
};

const ROLE: &str = "arn:aws:iam::123456789012:role/ferry-deploy";

/// An EKS environment: a cluster in moto whose DescribeCluster answer points at `endpoint`, a
/// token file with a GitHub-shaped token, and a ferry.toml using both.
pub(crate) struct EksWorld {
    pub(crate) aws: AwsFront,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) cluster: String,
    pub(crate) region: &'static str,
    pub(crate) jwt: String,
    pub(crate) token_file: PathBuf,
}

impl EksWorld {
    pub(crate) async fn new(endpoint: &ClusterFront) -> EksWorld {
        support::init();
        let moto = ferry_testkit::server("FERRY_TEST_MOTO");
        let aws = AwsFront::start(&moto).await;
        let cluster = format!("shop-{}", &uuid_like()[..12]);
        let region = "eu-west-1";
        create_moto_cluster(&moto, &cluster, region).await;
        aws.patch_cluster(&cluster, &endpoint.url(), &endpoint.ca_data());
        let dir = tempfile::tempdir().unwrap();
        let jwt = github_jwt(
            "repo:octo/shop:ref:refs/heads/main",
            "sts.amazonaws.com",
            wall_clock() + Duration::from_secs(1800),
        );
        let token_file = support::write_file(dir.path(), "oidc-token", &jwt);
        let world = EksWorld {
            aws,
            dir,
            cluster,
            region,
            jwt,
            token_file,
        };
        world.write_config(region, "");
        world
    }

    /// Writes ferry.toml, with the cluster in `region` and `extra` lines in [env.prod.auth.aws].
    pub(crate) fn write_config(&self, region: &str, extra: &str) {
        let cluster = format!(
            "provider = \"eks\"\ncluster = \"{}\"\nregion = \"{region}\"\n",
            self.cluster
        );
        let auth = format!(
            r#"[env.prod.auth.github]
repository = "octo/shop"
branch = "main"

[env.prod.auth.aws]
role_arn = "{ROLE}"
endpoint_url = "{aws}"
max_attempts = 3
{extra}
"#,
            aws = self.aws.url(),
        );
        let text = ferry_toml(&cluster, &self.token_file, &auth);
        std::fs::write(self.dir.path().join("ferry.toml"), text).unwrap();
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn run(&self, args: &[&str]) -> Run {
        ferry(self.path(), args, &[])
    }

    /// The secrets of this world so far: the OIDC token and every key STS issued.
    pub(crate) fn secrets(&self) -> Vec<String> {
        let mut all = self.aws.issued_secrets();
        all.push(self.jwt.clone());
        all
    }
}

fn grep(secrets: &[String], outputs: &[&str]) {
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    assert_no_secrets(&secrets, outputs);
}

/// A cluster endpoint that refuses everything (nothing talks to the cluster in these tests).
async fn endpoint() -> ClusterFront {
    ClusterFront::start("http://127.0.0.1:9", std::sync::Arc::new(|_: &str| false)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kubeconfig_and_token_come_from_describe_cluster_and_sts() {
    let front = endpoint().await;
    let w = EksWorld::new(&front).await;

    // The kubeconfig: server and CA from DescribeCluster, ferry as exec plugin, mode 0600.
    let out = w.path().join("kube/config");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let kc = w.run(&[
        "kubeconfig",
        "--env",
        "prod",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(kc.code, 0, "{}", kc.stderr);
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains(&format!("server: {}", front.url())), "{text}");
    assert!(text.contains(&front.ca_data()), "{text}");
    assert!(text.contains("client.authentication.k8s.io/v1"), "{text}");
    assert!(
        text.contains("- token") && text.contains("- --env") && text.contains("- prod"),
        "{text}"
    );
    assert_eq!(w.aws.count_path("/clusters/"), 1, "one DescribeCluster");

    // The ExecCredential: a token the AWS CLI agrees with, for this cluster.
    let tok = w.run(&["auth", "token", "--env", "prod"]);
    assert_eq!(tok.code, 0, "{}", tok.stderr);
    let cred: serde_json::Value = serde_json::from_str(&tok.stdout).unwrap();
    assert_eq!(cred["apiVersion"], "client.authentication.k8s.io/v1");
    assert_eq!(cred["kind"], "ExecCredential");
    let token = cred["status"]["token"].as_str().unwrap().to_owned();
    let url = eks_token_url(&token).unwrap();
    assert_eq!(url.host_str(), Some("sts.eu-west-1.amazonaws.com"));
    assert_eq!(query(&url, "X-Amz-Expires").as_deref(), Some("60"));
    let expires: jiff::Timestamp = cred["status"]["expirationTimestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let left = expires.as_second() - support::unix(wall_clock());
    assert!((13 * 60..=14 * 60).contains(&left), "expires in {left}s");
    assert_aws_cli_agrees(&token, &w.cluster, w.region, &w.aws.issued());

    let mut secrets = w.secrets();
    secrets.push(token);
    grep(&secrets, &[&kc.all(), &text, &tok.stderr]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn whoami_shows_identity_claims_and_expiry_but_never_a_token() {
    let front = endpoint().await;
    let w = EksWorld::new(&front).await;
    let who = w.run(&["auth", "whoami", "--env", "prod"]);
    assert_eq!(who.code, 0, "{}", who.stderr);
    for expected in [
        "repo:octo/shop:ref:refs/heads/main",
        "https://token.actions.githubusercontent.com",
        "sts.amazonaws.com",
        "123456789012",
        "assumed-role/ferry-deploy",
        "expires",
        "(in ",
    ] {
        assert!(
            who.stdout.contains(expected),
            "missing {expected}:\n{}",
            who.stdout
        );
    }
    let json = w.run(&["auth", "whoami", "--env", "prod", "--output", "json"]);
    assert_eq!(json.code, 0, "{}", json.stderr);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(doc["oidc"]["claims"]["repository"], "octo/shop");
    assert_eq!(doc["aws"]["account"], "123456789012");
    assert_eq!(doc["oidc"]["expired"], false);
    assert_eq!(
        doc["aws"]["arn"],
        "arn:aws:sts::123456789012:assumed-role/ferry-deploy/ferry"
    );

    // In GitHub Actions the session is named after the run and attempt, so CloudTrail shows
    // which job used the role.
    let in_actions = ferry(
        w.path(),
        &["auth", "whoami", "--env", "prod", "-o", "json"],
        &[("GITHUB_RUN_ID", "8123456789"), ("GITHUB_RUN_ATTEMPT", "2")],
    );
    assert_eq!(in_actions.code, 0, "{}", in_actions.stderr);
    let doc: serde_json::Value = serde_json::from_str(&in_actions.stdout).unwrap();
    assert_eq!(
        doc["aws"]["arn"],
        "arn:aws:sts::123456789012:assumed-role/ferry-deploy/ferry-8123456789-2"
    );
    grep(&w.secrets(), &[&who.all(), &json.all(), &in_actions.all()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn trust_policy_is_seed_000s_with_string_equals_and_check_passes_for_main() {
    let front = endpoint().await;
    let w = EksWorld::new(&front).await;
    let tp = w.run(&["auth", "trust-policy", "--env", "prod", "--output", "json"]);
    assert_eq!(tp.code, 0, "{}", tp.stderr);
    let doc: serde_json::Value = serde_json::from_str(&tp.stdout).unwrap();
    let cond = &doc["aws"]["trust_policy"]["Statement"][0]["Condition"];
    assert_eq!(
        cond["StringEquals"]["token.actions.githubusercontent.com:sub"],
        "repo:octo/shop:ref:refs/heads/main"
    );
    assert_eq!(
        cond["StringEquals"]["token.actions.githubusercontent.com:aud"],
        "sts.amazonaws.com"
    );
    assert!(cond.get("StringLike").is_none());
    // The text form says how to install it, on this role.
    let tp_text = w.run(&["auth", "trust-policy", "--env", "prod"]);
    assert_eq!(tp_text.code, 0, "{}", tp_text.stderr);
    assert!(
        tp_text
            .stdout
            .contains("aws iam update-assume-role-policy --role-name ferry-deploy "),
        "{}",
        tp_text.stdout
    );
    assert_eq!(
        doc["aws"]["trust_policy"]["Statement"][0]["Principal"]["Federated"],
        "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    );

    // Without --env: every environment with [auth.github] (here, one).
    let all = w.run(&["auth", "check"]);
    assert_eq!(all.code, 0, "{}\n{}", all.stdout, all.stderr);
    assert!(all.stdout.contains("PASS prod (aws)"), "{}", all.stdout);

    // Another environment whose token source this job does not have: reported, and the check
    // still passes because the token could deploy to prod.
    let path = w.path().join("ferry.toml");
    let original = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        format!(
            "{original}\n[env.staging.auth]\noidc = {{ source = \"env\", token_env = \"FERRY_TEST_NO_SUCH_TOKEN\" }}\n\
             [env.staging.auth.github]\nrepository = \"octo/shop\"\nenvironment = \"staging\"\n"
        ),
    )
    .unwrap();
    let two = w.run(&["auth", "check"]);
    assert_eq!(two.code, 0, "{}\n{}", two.stdout, two.stderr);
    assert!(two.stdout.contains("PASS prod (aws)"), "{}", two.stdout);
    assert!(
        two.stdout.contains("FAIL staging (aws): no token to check")
            && two.stdout.contains("FERRY_TEST_NO_SUCH_TOKEN"),
        "{}",
        two.stdout
    );
    // That environment alone: no token is exit 11 with what to set.
    let alone = w.run(&["auth", "check", "--env", "staging"]);
    assert_eq!(alone.code, 11, "{}\n{}", alone.stdout, alone.stderr);
    assert!(
        alone.stderr.contains("FERRY_TEST_NO_SUCH_TOKEN"),
        "{}",
        alone.stderr
    );
    std::fs::write(&path, original).unwrap();

    let ok = w.run(&["auth", "check", "--env", "prod"]);
    assert_eq!(ok.code, 0, "{}\n{}", ok.stdout, ok.stderr);
    assert!(ok.stdout.contains("PASS prod"), "{}", ok.stdout);

    // A pull-request token has another subject: refused, and the output says which claim.
    let pr = github_jwt(
        "repo:octo/shop:pull_request",
        "sts.amazonaws.com",
        wall_clock() + Duration::from_secs(600),
    );
    std::fs::write(&w.token_file, &pr).unwrap();
    let bad = w.run(&["auth", "check", "--env", "prod"]);
    assert_eq!(bad.code, 11, "{}\n{}", bad.stdout, bad.stderr);
    assert!(
        bad.stdout.contains("BAD sub") && bad.stdout.contains("repo:octo/shop:pull_request"),
        "{}",
        bad.stdout
    );
    grep(&[w.jwt.clone(), pr], &[&tp.all(), &ok.all(), &bad.all()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_expired_or_malformed_token_exits_11_naming_the_file() {
    let front = endpoint().await;
    let w = EksWorld::new(&front).await;
    let old = github_jwt(
        "repo:octo/shop:ref:refs/heads/main",
        "sts.amazonaws.com",
        wall_clock() - Duration::from_secs(300),
    );
    std::fs::write(&w.token_file, &old).unwrap();
    let run = w.run(&["auth", "token", "--env", "prod"]);
    assert_eq!(run.code, 11, "{}", run.stderr);
    assert!(
        run.stderr.contains("expired") && run.stderr.contains("oidc-token"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("fresh"),
        "the help says what to do: {}",
        run.stderr
    );
    assert!(run.stdout.is_empty());

    std::fs::write(&w.token_file, "{\"not\": \"a jwt\"}").unwrap();
    let bad = w.run(&["kubeconfig", "--env", "prod"]);
    assert_eq!(bad.code, 11, "{}", bad.stderr);
    assert!(bad.stderr.contains("malformed"), "{}", bad.stderr);
    assert_eq!(
        w.aws.count("AssumeRoleWithWebIdentity"),
        0,
        "refused before STS"
    );
    grep(&[w.jwt.clone(), old], &[&run.all(), &bad.all()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sts_access_denied_and_throttling_exit_11_after_bounded_retries() {
    let front = endpoint().await;
    let w = EksWorld::new(&front).await;
    w.aws.add_fault(Fault::sts_error(
        "AssumeRoleWithWebIdentity",
        403,
        "AccessDenied",
        "Not authorized to perform sts:AssumeRoleWithWebIdentity",
    ));
    let denied = w.run(&["auth", "token", "--env", "prod"]);
    assert_eq!(denied.code, 11, "{}", denied.stderr);
    assert!(
        denied.stderr.contains("AccessDenied") && denied.stderr.contains("trust-policy"),
        "{}",
        denied.stderr
    );
    assert_eq!(w.aws.count("AssumeRoleWithWebIdentity"), 1);

    w.aws.add_fault(
        Fault::sts_error(
            "AssumeRoleWithWebIdentity",
            400,
            "Throttling",
            "Rate exceeded",
        )
        .times(100),
    );
    let throttled = w.run(&["auth", "token", "--env", "prod"]);
    assert_eq!(throttled.code, 11, "{}", throttled.stderr);
    assert!(
        throttled.stderr.contains("gave up after 3 attempts"),
        "{}",
        throttled.stderr
    );
    assert_eq!(
        w.aws.count("AssumeRoleWithWebIdentity"),
        1 + 3,
        "max_attempts = 3"
    );
    grep(&w.secrets(), &[&denied.all(), &throttled.all()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_cluster_and_wrong_region_exit_3_listing_what_exists() {
    let front = endpoint().await;
    let w = EksWorld::new(&front).await;
    // The cluster exists in eu-west-1; the config says us-west-2.
    w.write_config("us-west-2", "");
    let wrong = w.run(&["kubeconfig", "--env", "prod"]);
    assert_eq!(wrong.code, 3, "{}", wrong.stderr);
    assert!(
        wrong.stderr.contains(&format!(
            "EKS cluster `{}` in region us-west-2 was not found",
            w.cluster
        )),
        "{}",
        wrong.stderr
    );
    assert!(
        wrong
            .stderr
            .contains("check [env.prod.cluster] cluster and region"),
        "the help names the environment's table: {}",
        wrong.stderr
    );

    // A typo of the name, in the right region: the help lists the region's clusters, closest
    // names first, so the real one is there however many other clusters moto holds.
    let typo = format!("{}x", &w.cluster[..w.cluster.len() - 1]);
    let text = std::fs::read_to_string(w.path().join("ferry.toml")).unwrap();
    let renamed = text
        .replace(
            &format!("cluster = \"{}\"", w.cluster),
            &format!("cluster = \"{typo}\""),
        )
        .replace("us-west-2", "eu-west-1");
    std::fs::write(w.path().join("ferry.toml"), renamed).unwrap();
    let unknown = w.run(&["kubeconfig", "--env", "prod"]);
    assert_eq!(unknown.code, 3, "{}", unknown.stderr);
    assert!(
        unknown.stderr.contains(&format!("`{typo}`")),
        "{}",
        unknown.stderr
    );
    assert!(
        unknown.stderr.contains(&w.cluster),
        "lists the clusters that exist: {}",
        unknown.stderr
    );
    grep(&w.secrets(), &[&wrong.all(), &unknown.all()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eks_throttling_is_retried_then_reported() {
    let front = endpoint().await;
    let w = EksWorld::new(&front).await;
    w.aws.add_fault(Fault {
        matches: Match::PathPrefix(format!("/clusters/{}", w.cluster)),
        status: 429,
        content_type: "application/json",
        body: r#"{"__type":"TooManyRequestsException","message":"Rate exceeded"}"#.into(),
        times: 2,
    });
    // Two throttled answers, then the real one: the third attempt succeeds.
    let ok = w.run(&["kubeconfig", "--env", "prod"]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert_eq!(w.aws.count_path(&format!("/clusters/{}", w.cluster)), 3);
    grep(&w.secrets(), &[&ok.stderr]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreachable_aws_endpoint_exits_1_after_bounded_retries() {
    let front = endpoint().await;
    let w = EksWorld::new(&front).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let text = std::fs::read_to_string(w.path().join("ferry.toml"))
        .unwrap()
        .replace(&w.aws.url(), &format!("http://{closed}"));
    std::fs::write(w.path().join("ferry.toml"), text).unwrap();
    let run = w.run(&["auth", "token", "--env", "prod"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("cannot reach AWS STS at http://{closed}")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("3 attempts"), "{}", run.stderr);
    grep(std::slice::from_ref(&w.jwt), &[&run.all()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_auth_settings_are_located_in_the_file() {
    let front = endpoint().await;
    let w = EksWorld::new(&front).await;
    w.write_config("eu-west-1", "duration = \"5m\"");
    let run = w.run(&["auth", "token", "--env", "prod"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("ferry.toml:") && run.stderr.contains("auth.aws.duration"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("15m and 12h"), "{}", run.stderr);

    let text = std::fs::read_to_string(w.path().join("ferry.toml")).unwrap();
    std::fs::write(
        w.path().join("ferry.toml"),
        text.replace("role_arn =", "role_ar ="),
    )
    .unwrap();
    let typo = w.run(&["auth", "token", "--env", "prod"]);
    assert_eq!(typo.code, 3, "{}", typo.stderr);
    assert!(
        typo.stderr.contains("unknown field `role_ar`"),
        "{}",
        typo.stderr
    );
    grep(std::slice::from_ref(&w.jwt), &[&run.all(), &typo.all()]);
}

/// The access key a presigned EKS token was signed with (its `X-Amz-Credential` scope's head).
fn signing_key(exec_credential: &str) -> String {
    let cred: serde_json::Value = serde_json::from_str(exec_credential).unwrap();
    let url = eks_token_url(cred["status"]["token"].as_str().unwrap()).unwrap();
    let scope = query(&url, "X-Amz-Credential").unwrap();
    scope.split('/').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_standard_aws_chain_reads_a_profile_or_the_environment() {
    let front = endpoint().await;
    let w = EksWorld::new(&front).await;

    // credentials = "chain" with a profile: the shared credentials file's keys sign the token.
    w.write_config("eu-west-1", "credentials = \"chain\"\nprofile = \"ci\"");
    let profile_secret = format!("profilesecret{}", uuid_like());
    let file = support::write_file(
        w.path(),
        "aws-credentials",
        &format!(
            "[default]\naws_access_key_id = AKIAFERRYDEFAULT0001\naws_secret_access_key = \
             defaultsecret0001\n\n[ci]\naws_access_key_id = AKIAFERRYPROFILE0001\n\
             aws_secret_access_key = {profile_secret}\n"
        ),
    );
    let file = file.to_str().unwrap();
    let no_imds = ("AWS_EC2_METADATA_DISABLED", "true");
    let vars = [("AWS_SHARED_CREDENTIALS_FILE", file), no_imds];
    let who = ferry(
        w.path(),
        &["auth", "whoami", "--env", "prod", "-o", "json"],
        &vars,
    );
    assert_eq!(who.code, 0, "{}", who.stderr);
    let doc: serde_json::Value = serde_json::from_str(&who.stdout).unwrap();
    assert_eq!(
        doc["aws"]["method"],
        "the standard AWS credential chain, profile `ci`"
    );
    assert_eq!(doc["aws"]["account"], "123456789012");
    let tok = ferry(w.path(), &["auth", "token", "--env", "prod"], &vars);
    assert_eq!(tok.code, 0, "{}", tok.stderr);
    assert_eq!(signing_key(&tok.stdout), "AKIAFERRYPROFILE0001");

    // Without a profile: the environment's keys come first in the chain.
    w.write_config("eu-west-1", "credentials = \"chain\"");
    let env_secret = format!("envsecret{}", uuid_like());
    let vars = [
        ("AWS_SHARED_CREDENTIALS_FILE", file),
        ("AWS_ACCESS_KEY_ID", "AKIAFERRYENVIRON0001"),
        ("AWS_SECRET_ACCESS_KEY", env_secret.as_str()),
        no_imds,
    ];
    let from_env = ferry(w.path(), &["auth", "token", "--env", "prod"], &vars);
    assert_eq!(from_env.code, 0, "{}", from_env.stderr);
    assert_eq!(signing_key(&from_env.stdout), "AKIAFERRYENVIRON0001");
    assert_eq!(
        w.aws.count("AssumeRoleWithWebIdentity"),
        0,
        "the chain never exchanges the OIDC token"
    );

    // A profile the files do not have, and nothing else: not configured, exit 11.
    w.write_config("eu-west-1", "credentials = \"chain\"\nprofile = \"nope\"");
    let none = ferry(
        w.path(),
        &["auth", "token", "--env", "prod"],
        &[("AWS_SHARED_CREDENTIALS_FILE", file), no_imds],
    );
    assert_eq!(none.code, 11, "{}", none.stderr);
    assert!(
        none.stderr
            .contains("standard AWS credential chain, profile `nope`")
            && none.stdout.is_empty(),
        "{}",
        none.stderr
    );
    grep(
        &[w.jwt.clone(), profile_secret, env_secret],
        &[&who.all(), &tok.stderr, &from_env.stderr, &none.all()],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_relative_token_file_is_relative_to_ferry_toml_not_the_working_directory() {
    let front = endpoint().await;
    let w = EksWorld::new(&front).await;
    let config = w.path().join("ferry.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let absolute = format!("file = \"{}\"", w.token_file.display());
    assert!(text.contains(&absolute), "{text}");
    std::fs::write(&config, text.replace(&absolute, "file = \"oidc-token\"")).unwrap();

    // kubectl runs the exec plugin from its own working directory, with the absolute --config
    // `ferry kubeconfig` wrote into the kubeconfig.
    let elsewhere = tempfile::tempdir().unwrap();
    let args = |cmd: &[&'static str]| {
        let mut all: Vec<String> = cmd.iter().map(|s| (*s).to_owned()).collect();
        all.extend(["--env".into(), "prod".into(), "--config".into()]);
        all.push(config.to_str().unwrap().to_owned());
        all
    };
    let token_args = args(&["auth", "token"]);
    let tok = ferry(
        elsewhere.path(),
        &token_args.iter().map(String::as_str).collect::<Vec<_>>(),
        &[],
    );
    assert_eq!(tok.code, 0, "{}", tok.stderr);
    let cred: serde_json::Value = serde_json::from_str(&tok.stdout).unwrap();
    assert_eq!(cred["kind"], "ExecCredential");
    let who_args = args(&["auth", "whoami"]);
    let who = ferry(
        elsewhere.path(),
        &who_args.iter().map(String::as_str).collect::<Vec<_>>(),
        &[],
    );
    assert_eq!(who.code, 0, "{}", who.stderr);
    assert!(
        who.stdout
            .contains(&format!("token file {}", w.token_file.display())),
        "{}",
        who.stdout
    );
    grep(&w.secrets(), &[&tok.stderr, &who.all()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_role_without_eks_describe_cluster_exits_11_and_is_not_retried() {
    let front = endpoint().await;
    let w = EksWorld::new(&front).await;
    w.aws.add_fault(Fault {
        matches: Match::PathPrefix(format!("/clusters/{}", w.cluster)),
        status: 403,
        content_type: "application/json",
        body: r#"{"__type":"AccessDeniedException","message":"User: arn:aws:sts::123456789012:assumed-role/ferry-deploy/ferry is not authorized to perform: eks:DescribeCluster"}"#.into(),
        times: 100,
    });
    let run = w.run(&["kubeconfig", "--env", "prod"]);
    assert_eq!(run.code, 11, "{}", run.stderr);
    assert!(
        run.stderr.contains("AccessDeniedException")
            && run.stderr.contains("eks:DescribeCluster")
            && run.stderr.contains("permissions policy"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert_eq!(
        w.aws.count_path(&format!("/clusters/{}", w.cluster)),
        1,
        "a refusal is not retried"
    );
    grep(&w.secrets(), &[&run.all()]);
}

/// `ferry kubeconfig --out ~/.kube/config` merges like `aws eks update-kubeconfig`: kubectl, an
/// independent reader, still sees the user's other contexts, and ferry's is current. A file that
/// is not a kubeconfig is refused before the cloud is asked, and left as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kubeconfig_out_merges_into_an_existing_file_that_kubectl_still_reads() {
    use std::os::unix::fs::PermissionsExt as _;
    let front = endpoint().await;
    let w = EksWorld::new(&front).await;
    let out = w.path().join("config");
    let existing = r#"apiVersion: v1
kind: Config
current-context: staging
clusters:
- name: staging
  cluster:
    server: https://staging.example:6443
    x-team-note: keep me
- name: shop-prod
  cluster:
    server: https://stale.example:6443
contexts:
- name: staging
  context:
    cluster: staging
    user: alice
    namespace: web
- name: shop-prod
  context:
    cluster: shop-prod
    user: ferry-shop-prod
users:
- name: alice
  user:
    token: alice-token
- name: ferry-shop-prod
  user:
    token: stale
"#;
    std::fs::write(&out, existing).unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o640)).unwrap();
    let kc = w.run(&[
        "kubeconfig",
        "--env",
        "prod",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(kc.code, 0, "{}", kc.stderr);
    assert!(
        kc.stdout
            .contains("current-context is now `shop-prod` (was `staging`)"),
        "{}",
        kc.stdout
    );
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "the file keeps its mode");

    let kubectl = |args: &[&str]| {
        let o = std::process::Command::new("kubectl")
            .args(args)
            .arg("--kubeconfig")
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let mut contexts: Vec<String> = kubectl(&["config", "get-contexts", "-o", "name"])
        .lines()
        .map(str::to_owned)
        .collect();
    contexts.sort();
    assert_eq!(contexts, ["shop-prod", "staging"]);
    assert_eq!(kubectl(&["config", "current-context"]).trim(), "shop-prod");
    let view =
        |path: &str| kubectl(&["config", "view", "--raw", "-o", &format!("jsonpath={path}")]);
    assert_eq!(
        view("{.clusters[?(@.name==\"shop-prod\")].cluster.server}"),
        front.url()
    );
    assert_eq!(
        view("{.clusters[?(@.name==\"staging\")].cluster.server}"),
        "https://staging.example:6443"
    );
    assert_eq!(
        view("{.contexts[?(@.name==\"staging\")].context.namespace}"),
        "web"
    );
    assert_eq!(
        view("{.users[?(@.name==\"alice\")].user.token}"),
        "alice-token"
    );
    assert_eq!(
        view("{.users[?(@.name==\"ferry-shop-prod\")].user.exec.args[0]}"),
        "auth"
    );
    assert_eq!(
        view("{.users[?(@.name==\"ferry-shop-prod\")].user.token}"),
        "",
        "the stale entry is replaced, not merged"
    );
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("x-team-note: keep me"), "{text}");

    // Not a kubeconfig: exit 3, located, nothing written, the cloud not asked.
    let calls = w.aws.count_path("/clusters/");
    let bad = w.path().join("notes.yaml");
    let notes = "apiVersion: v1\nclusters: 5\n";
    std::fs::write(&bad, notes).unwrap();
    let refused = w.run(&[
        "kubeconfig",
        "--env",
        "prod",
        "--out",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("notes.yaml:2:11")
            && refused.stderr.contains("nothing was written"),
        "{}",
        refused.stderr
    );
    assert_eq!(std::fs::read_to_string(&bad).unwrap(), notes);
    assert_eq!(w.aws.count_path("/clusters/"), calls, "no DescribeCluster");
    grep(&w.secrets(), &[&kc.all(), &refused.all()]);
}
