//! EKS tokens, checked against an independent implementation: the AWS CLI's
//! `aws eks get-token`, run with the same credentials (issued by moto's STS) — ferry mints its
//! token for the signing time the CLI used, and the two must be identical.

use std::sync::Arc;
use std::time::Duration;

use ferry_auth::aws::{AwsAuth, EKS_TOKEN_LIFETIME, EKS_TOKEN_PREFIX, presign_eks_token};
use ferry_auth::bearer::BearerTokenSource as _;
use ferry_auth::clock::ManualClock;
use ferry_auth::config::{AuthConfig, AuthContext};
use ferry_auth::env::Env;
use secrecy::ExposeSecret as _;

use crate::support::aws_front::AwsFront;
use crate::support::{
    self, assert_no_secrets, clock_now, eks_token_url, github_jwt, signed_at, wall_clock,
};

/// ferry's web identity provider in `region` with moto's STS behind a front, `[aws]` settings
/// `extra`, and an OIDC token valid for `token_life`; with its clock and the token.
async fn moto_auth(
    region: &str,
    extra: &str,
    token_life: Duration,
) -> (AwsAuth, AwsFront, ManualClock, String) {
    support::init();
    let front = AwsFront::start(&ferry_testkit::server("FERRY_TEST_MOTO")).await;
    let (clock, shared) = clock_now();
    let jwt = github_jwt(
        "repo:octo/shop:ref:refs/heads/main",
        "sts.amazonaws.com",
        wall_clock() + token_life,
    );
    let env = Env::from_pairs([("FERRY_OIDC_TOKEN", jwt.as_str())]);
    let cfg: AuthConfig = toml::from_str(&format!(
        "oidc = {{ source = \"env\" }}\n[aws]\nrole_arn = \"arn:aws:iam::123456789012:role/eks-deploy\"\nregion = \"{region}\"\nendpoint_url = \"{}\"\n{extra}",
        front.url()
    ))
    .unwrap();
    let auth = cfg.aws(&AuthContext::new(env, shared), None).unwrap();
    (auth, front, clock, jwt)
}

#[tokio::test]
async fn the_token_is_the_one_aws_eks_get_token_makes() {
    let aws = ferry_testkit::server("FERRY_TEST_AWS_CLI");
    let (auth, front, _, jwt) = moto_auth("eu-west-1", "", Duration::from_secs(600)).await;
    let creds = auth.credentials().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(&aws)
        .args([
            "eks",
            "get-token",
            "--cluster-name",
            "shop-prod",
            "--region",
            "eu-west-1",
            "--output",
            "json",
        ])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", dir.path())
        .env("AWS_CONFIG_FILE", dir.path().join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("none"))
        .env("AWS_ACCESS_KEY_ID", creds.access_key_id())
        .env("AWS_SECRET_ACCESS_KEY", creds.secret_access_key())
        .env("AWS_SESSION_TOKEN", creds.session_token().unwrap())
        .env("AWS_STS_REGIONAL_ENDPOINTS", "regional")
        .output()
        .expect("run aws eks get-token");
    assert!(
        out.status.success(),
        "aws eks get-token failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cli_token = cli["status"]["token"].as_str().unwrap();
    let cli_url = eks_token_url(cli_token).expect("a k8s-aws-v1. token");

    // The signing time the CLI used.
    let at = std::time::SystemTime::try_from(signed_at(&cli_url).unwrap()).unwrap();

    let ours = presign_eks_token(&creds, "eu-west-1", "shop-prod", at).unwrap();
    assert_eq!(
        eks_token_url(ours.token.expose_secret()).unwrap(),
        cli_url,
        "ferry's presigned URL differs from the AWS CLI's"
    );
    assert_eq!(
        ours.token.expose_secret(),
        cli_token,
        "byte-for-byte the same token"
    );

    // Both say it expires 14 minutes after signing.
    let cli_exp: jiff::Timestamp = cli["status"]["expirationTimestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        std::time::SystemTime::try_from(cli_exp).unwrap(),
        at + EKS_TOKEN_LIFETIME
    );
    assert_eq!(ours.expires_at, at + EKS_TOKEN_LIFETIME);

    // Another cluster gives another signature: the cluster name is signed.
    let other = presign_eks_token(&creds, "eu-west-1", "shop-dev", at).unwrap();
    assert_ne!(other.token.expose_secret(), cli_token);

    let mut secrets: Vec<String> = front.issued_secrets();
    secrets.push(jwt);
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    assert_no_secrets(&secrets, &[&format!("{ours:?} {creds:?}")]);
}

#[tokio::test]
async fn the_token_source_mints_a_new_token_before_the_old_one_expires() {
    let (auth, front, clock, _) = moto_auth(
        "us-west-2",
        "duration = \"2h\"\n",
        Duration::from_secs(3600),
    )
    .await;
    let source = Arc::new(auth.eks_token_source("shop"));

    let first = source.bearer_token().await.unwrap();
    assert!(first.token.expose_secret().starts_with(EKS_TOKEN_PREFIX));
    // Ten minutes later: still the same token.
    clock.advance(Duration::from_secs(10 * 60));
    let same = source.bearer_token().await.unwrap();
    assert_eq!(same.token.expose_secret(), first.token.expose_secret());
    // At 13m30s less than a minute is left: a new one, signed now.
    clock.advance(Duration::from_secs(210));
    let fresh = source.bearer_token().await.unwrap();
    assert_ne!(fresh.token.expose_secret(), first.token.expose_secret());
    assert!(fresh.expires_at > first.expires_at);
    // One STS exchange served all three (the credentials last 2 hours).
    assert_eq!(front.count("AssumeRoleWithWebIdentity"), 1);
}
