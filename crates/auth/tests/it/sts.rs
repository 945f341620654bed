//! STS web identity, static keys and errors, against the real moto (through a front that
//! injects the refusals and throttling moto never produces).

use std::time::Duration;

use ferry_auth::aws::{AwsAuth, Credentials};
use ferry_auth::config::{AuthConfig, AuthContext};
use ferry_auth::env::Env;
use ferry_auth::{AuthError, ErrorKind};

use crate::support::aws_front::{AwsFront, Fault};
use crate::support::{self, assert_no_secrets, clock_now, github_jwt, wall_clock};

const ROLE: &str = "arn:aws:iam::123456789012:role/ferry-deploy";

fn moto() -> String {
    ferry_testkit::server("FERRY_TEST_MOTO")
}

struct Setup {
    front: AwsFront,
    clock: ferry_auth::clock::ManualClock,
    ctx: AuthContext,
    jwt: String,
    _dir: tempfile::TempDir,
}

/// A front for moto, a token file holding `jwt` (or a fresh GitHub-shaped token), and a context
/// whose environment points AWS_WEB_IDENTITY_TOKEN_FILE at it.
async fn setup(jwt: Option<String>) -> Setup {
    support::init();
    let front = AwsFront::start(&moto()).await;
    let (clock, shared) = clock_now();
    let jwt = jwt.unwrap_or_else(|| {
        github_jwt(
            "repo:octo/shop:ref:refs/heads/main",
            "sts.amazonaws.com",
            wall_clock() + Duration::from_secs(600),
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let file = support::write_file(dir.path(), "token", &jwt);
    let env = Env::from_pairs([("AWS_WEB_IDENTITY_TOKEN_FILE", file.to_str().unwrap())]);
    Setup {
        front,
        clock,
        ctx: AuthContext::new(env, shared),
        jwt,
        _dir: dir,
    }
}

fn config(front: &AwsFront, extra: &str) -> AuthConfig {
    toml::from_str(&format!(
        "[aws]\nrole_arn = \"{ROLE}\"\nregion = \"eu-west-1\"\nendpoint_url = \"{}\"\n{extra}",
        front.url()
    ))
    .unwrap()
}

async fn auth(s: &Setup, extra: &str) -> AwsAuth {
    config(&s.front, extra).aws(&s.ctx, None).unwrap()
}

/// STS's answer `code` to `AssumeRoleWithWebIdentity`, as the front gives it.
fn refusal(status: u16, code: &str, message: &str) -> Fault {
    Fault::sts_error("AssumeRoleWithWebIdentity", status, code, message)
}

impl Setup {
    /// Credentials with `[aws]` settings `extra`, after arming `fault` in the front.
    async fn credentials_despite(
        &self,
        fault: Fault,
        extra: &str,
    ) -> Result<Credentials, AuthError> {
        self.front.add_fault(fault);
        auth(self, extra).await.credentials().await
    }

    /// How many times STS was asked for credentials.
    fn exchanges(&self) -> usize {
        self.front.count("AssumeRoleWithWebIdentity")
    }
}

#[tokio::test]
async fn web_identity_from_a_token_file_is_cached_and_refreshed_before_expiry() {
    // A token that outlives the clock's jump (a platform rewrites the file long before this).
    let s = setup(Some(github_jwt(
        "repo:octo/shop:ref:refs/heads/main",
        "sts.amazonaws.com",
        wall_clock() + Duration::from_secs(2 * 3600),
    )))
    .await;
    let auth = auth(&s, "duration = \"1h\"").await;
    assert!(auth.describe().contains(ROLE));

    let first = auth.credentials().await.unwrap();
    assert!(first.access_key_id().starts_with("ASIA"), "{first:?}");
    assert!(first.session_token().is_some());
    let expiry = first.expiry().expect("temporary credentials expire");
    let lifetime = expiry.duration_since(wall_clock()).unwrap();
    assert!(lifetime > Duration::from_secs(50 * 60), "{lifetime:?}");

    // Cached: no second exchange.
    let again = auth.credentials().await.unwrap();
    assert_eq!(again.access_key_id(), first.access_key_id());
    assert_eq!(s.exchanges(), 1);

    // The SDK clients see the same credentials: GetCallerIdentity through moto.
    let who = auth.caller_identity().await.unwrap();
    assert_eq!(who.account, "123456789012");
    assert!(who.arn.contains("ferry-deploy"), "{who:?}");
    assert_eq!(s.exchanges(), 1);

    // 56 minutes on, under 5 minutes remain: exchanged again before they expire.
    s.clock.advance(Duration::from_secs(56 * 60));
    let fresh = auth.credentials().await.unwrap();
    assert_ne!(fresh.access_key_id(), first.access_key_id());
    assert_eq!(s.exchanges(), 2);

    let secrets = s.front.issued_secrets();
    assert_eq!(secrets.len(), 4, "two key/token pairs were issued");
    let mut all: Vec<&str> = secrets.iter().map(String::as_str).collect();
    all.push(&s.jwt);
    let outputs = format!("{auth:?} {first:?} {fresh:?} {who:?}");
    assert_no_secrets(&all, &[&outputs]);
}

#[tokio::test]
async fn an_expired_token_is_refused_before_sts_is_asked() {
    let jwt = github_jwt(
        "repo:octo/shop:ref:refs/heads/main",
        "sts.amazonaws.com",
        wall_clock() - Duration::from_secs(120),
    );
    let s = setup(Some(jwt)).await;
    let err = auth(&s, "").await.credentials().await.unwrap_err();
    assert!(matches!(err, AuthError::ExpiredToken { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Denied);
    assert!(
        err.to_string().contains("AWS_WEB_IDENTITY_TOKEN_FILE"),
        "{err}"
    );
    assert!(err.help().unwrap().contains("2m ago"), "{:?}", err.help());
    assert_eq!(s.exchanges(), 0);
    assert_no_secrets(&[&s.jwt], &[&err.to_string(), &format!("{err:?}")]);
}

#[tokio::test]
async fn a_malformed_token_is_refused_before_sts_is_asked() {
    let s = setup(Some("ghp_notajwt_but_a_pat_0123456789".to_owned())).await;
    let err = auth(&s, "").await.credentials().await.unwrap_err();
    assert!(matches!(err, AuthError::MalformedToken { .. }), "{err:?}");
    assert!(err.to_string().contains("not a JWT"), "{err}");
    assert_eq!(s.exchanges(), 0);
    assert_no_secrets(&[&s.jwt], &[&err.to_string(), &format!("{err:?}")]);
}

#[tokio::test]
async fn access_denied_names_the_trust_policy_and_is_not_retried() {
    let s = setup(None).await;
    let denied = refusal(
        403,
        "AccessDenied",
        "Not authorized to perform sts:AssumeRoleWithWebIdentity",
    );
    let err = s.credentials_despite(denied, "").await.unwrap_err();
    match &err {
        AuthError::Rejected {
            code,
            message,
            help,
            ..
        } => {
            assert_eq!(code, "AccessDenied");
            assert!(message.contains("Not authorized"), "{message}");
            assert!(
                help.contains("trust-policy") && help.contains(ROLE),
                "{help}"
            );
            assert!(
                help.contains("repo:octo/shop:ref:refs/heads/main"),
                "{help}"
            );
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert_eq!(err.kind(), ErrorKind::Denied);
    assert_eq!(s.exchanges(), 1);
    assert_no_secrets(&[&s.jwt], &[&err.to_string(), &format!("{err:?}")]);
}

#[tokio::test]
async fn invalid_identity_token_says_to_set_up_the_oidc_provider() {
    let s = setup(None).await;
    let invalid = refusal(
        400,
        "InvalidIdentityToken",
        "No OpenIDConnect provider found in your account for https://token.actions.githubusercontent.com",
    );
    let err = s.credentials_despite(invalid, "").await.unwrap_err();
    assert!(
        err.help().unwrap().contains("OIDC identity provider"),
        "{:?}",
        err.help()
    );
    assert_eq!(s.exchanges(), 1);
}

#[tokio::test]
async fn throttling_is_retried_with_backoff_and_then_succeeds() {
    let s = setup(None).await;
    let throttled = refusal(400, "Throttling", "Rate exceeded").times(2);
    let creds = s
        .credentials_despite(throttled, "max_attempts = 4")
        .await
        .unwrap();
    assert!(creds.access_key_id().starts_with("ASIA"));
    assert_eq!(s.exchanges(), 3);
}

#[tokio::test]
async fn throttling_that_outlasts_the_retries_is_reported_with_the_attempt_count() {
    let s = setup(None).await;
    let throttled = refusal(400, "Throttling", "Rate exceeded").times(50);
    let err = s
        .credentials_despite(throttled, "max_attempts = 3")
        .await
        .unwrap_err();
    assert!(
        matches!(err, AuthError::Throttled { attempts: 3, .. }),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Denied);
    assert!(err.help().unwrap().contains("wait"), "{:?}", err.help());
    assert_eq!(s.exchanges(), 3, "bounded retries");
}

#[tokio::test]
async fn server_errors_are_retried() {
    let s = setup(None).await;
    let unavailable = refusal(503, "ServiceUnavailable", "try later");
    s.credentials_despite(unavailable, "").await.unwrap();
    assert_eq!(s.exchanges(), 2);
}

#[tokio::test]
async fn an_unreachable_sts_endpoint_is_retried_then_reported() {
    let s = setup(None).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let cfg: AuthConfig = toml::from_str(&format!(
        "[aws]\nrole_arn = \"{ROLE}\"\nregion = \"eu-west-1\"\nendpoint_url = \"http://{closed}\"\nmax_attempts = 3\n"
    ))
    .unwrap();
    let err = cfg
        .aws(&s.ctx, None)
        .unwrap()
        .credentials()
        .await
        .unwrap_err();
    assert!(
        matches!(err, AuthError::Unreachable { attempts: 3, .. }),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.to_string().contains(&closed.to_string()), "{err}");
    assert!(
        err.help().unwrap().contains("eu-west-1"),
        "{:?}",
        err.help()
    );
    assert_no_secrets(&[&s.jwt], &[&err.to_string(), &format!("{err:?}")]);
}

#[tokio::test]
async fn bad_settings_name_the_key() {
    let s = setup(None).await;
    let cases = [
        (
            "[aws]\nrole_arn = \"deploy\"\nregion = \"eu-west-1\"\n",
            "auth.aws.role_arn",
        ),
        (
            "[aws]\nrole_arn = \"arn:aws:iam::123456789012:role/x\"\nregion = \"eu-west-1\"\nduration = \"5m\"\n",
            "auth.aws.duration",
        ),
        (
            "[aws]\nrole_arn = \"arn:aws:iam::123456789012:role/x\"\nregion = \"Europe West\"\n",
            "auth.aws.region",
        ),
        (
            "[aws]\ncredentials = \"web-identity\"\nregion = \"eu-west-1\"\n",
            "auth.aws.role_arn",
        ),
    ];
    for (text, key) in cases {
        let cfg: AuthConfig = toml::from_str(text).unwrap();
        let err = cfg.aws(&s.ctx, None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{text}: {err:?}");
        assert!(err.to_string().contains(key), "{text}: {err}");
    }
}

#[tokio::test]
async fn static_keys_come_from_named_variables_and_never_show() {
    support::init();
    let front = AwsFront::start(&moto()).await;
    let (_, clock) = clock_now();
    let secret = format!("staticsecret{}", support::uuid_like());
    let env = Env::from_pairs([
        ("CI_AWS_KEY", "AKIAFERRYSTATICTEST1"),
        ("CI_AWS_SECRET", secret.as_str()),
    ]);
    let cfg: AuthConfig = toml::from_str(&format!(
        "[aws]\ncredentials = \"static\"\nregion = \"us-east-1\"\nendpoint_url = \"{}\"\n\
         access_key_id_env = \"CI_AWS_KEY\"\nsecret_access_key_env = \"CI_AWS_SECRET\"\n",
        front.url()
    ))
    .unwrap();
    let auth = cfg
        .aws(&AuthContext::new(env, clock.clone()), None)
        .unwrap();
    assert_eq!(auth.describe(), "static keys");
    let who = auth.caller_identity().await.unwrap();
    assert_eq!(who.account, "123456789012");

    // A missing secret variable is "not configured", naming the variable.
    let err = cfg
        .aws(
            &AuthContext::new(Env::from_pairs([("CI_AWS_KEY", "AKIA")]), clock),
            None,
        )
        .unwrap_err();
    assert!(
        err.is_not_configured() && err.to_string().contains("CI_AWS_SECRET"),
        "{err}"
    );
    assert_no_secrets(&[&secret], &[&format!("{auth:?} {who:?}")]);
}
