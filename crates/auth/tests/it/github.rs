//! GitHub Actions' OIDC endpoint (wiremock: it cannot run here).

use std::time::Duration;

use ferry_auth::env::Env;
use ferry_auth::oidc::{GitHubActions, OidcTokenSource as _, TokenChain, TokenFile};
use ferry_auth::retry::RetryPolicy;
use ferry_auth::{AuthError, ErrorKind};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{self, assert_no_secrets, github_jwt, wall_clock};

const REQUEST_TOKEN: &str = "ghs_requesttoken_0123456789abcdef";

fn quick() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
    }
}

fn env_for(server: &MockServer) -> Env {
    Env::from_pairs([
        (
            "ACTIONS_ID_TOKEN_REQUEST_URL",
            format!("{}/_apis/token?api-version=2.0", server.uri()),
        ),
        ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", REQUEST_TOKEN.to_owned()),
    ])
}

#[tokio::test]
async fn requests_a_token_for_the_audience_with_the_request_token() {
    support::init();
    let server = MockServer::start().await;
    let jwt = github_jwt(
        "repo:octo/shop:ref:refs/heads/main",
        "sts.amazonaws.com",
        wall_clock() + Duration::from_secs(300),
    );
    Mock::given(method("GET"))
        .and(path("/_apis/token"))
        .and(query_param("api-version", "2.0"))
        .and(query_param("audience", "sts.amazonaws.com"))
        .and(header(
            "authorization",
            format!("Bearer {REQUEST_TOKEN}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"value": jwt})))
        .expect(1)
        .mount(&server)
        .await;
    let source = GitHubActions::from_env(&env_for(&server), reqwest::Client::new());
    let token = source.token("sts.amazonaws.com").await.unwrap();
    assert_eq!(
        token.claims().sub.as_deref(),
        Some("repo:octo/shop:ref:refs/heads/main")
    );
    assert_eq!(token.claims().get_str("repository"), Some("octo/shop"));
    assert_eq!(token.origin(), "GitHub Actions OIDC");
    let debug = format!("{source:?} {token:?}");
    assert_no_secrets(&[REQUEST_TOKEN, &jwt], &[&debug]);
}

#[tokio::test]
async fn server_errors_are_retried_with_a_bound() {
    support::init();
    let server = MockServer::start().await;
    let jwt = github_jwt(
        "repo:o/r:ref:refs/heads/main",
        "x",
        wall_clock() + Duration::from_secs(300),
    );
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"value": jwt})))
        .with_priority(2)
        .mount(&server)
        .await;
    let source =
        GitHubActions::from_env(&env_for(&server), reqwest::Client::new()).with_retry(quick());
    source.token("x").await.unwrap();
    assert_eq!(server.received_requests().await.unwrap().len(), 3);

    // Throttled on every attempt: gives up after exactly max_attempts.
    server.reset().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429))
        .mount(&server)
        .await;
    let err = source.token("x").await.unwrap_err();
    assert!(
        matches!(err, AuthError::Throttled { attempts: 3, .. }),
        "{err:?}"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
    assert_no_secrets(
        &[REQUEST_TOKEN, &jwt],
        &[&format!("{err:?}"), &err.to_string()],
    );
}

#[tokio::test]
async fn a_refused_request_token_says_what_to_fix() {
    support::init();
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(serde_json::json!({"message": "Bad credentials"})),
        )
        .mount(&server)
        .await;
    let source =
        GitHubActions::from_env(&env_for(&server), reqwest::Client::new()).with_retry(quick());
    let err = source.token("sts.amazonaws.com").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Denied);
    assert!(err.to_string().contains("Bad credentials"), "{err}");
    assert!(
        err.help().unwrap().contains("id-token: write"),
        "{:?}",
        err.help()
    );
    // 4xx is not retried.
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    assert_no_secrets(&[REQUEST_TOKEN], &[&format!("{err:?}"), &err.to_string()]);
}

#[tokio::test]
async fn an_unreachable_endpoint_is_retried_then_reported() {
    support::init();
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let env = Env::from_pairs([
        (
            "ACTIONS_ID_TOKEN_REQUEST_URL",
            format!("http://{closed}/token?api-version=2.0"),
        ),
        ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", REQUEST_TOKEN.to_owned()),
    ]);
    let source = GitHubActions::from_env(&env, reqwest::Client::new()).with_retry(quick());
    let err = source.token("x").await.unwrap_err();
    assert!(
        matches!(err, AuthError::Unreachable { attempts: 3, .. }),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.to_string().contains(&closed.to_string()), "{err}");
}

#[tokio::test]
async fn the_chain_falls_back_to_the_token_file_outside_github() {
    support::init();
    let dir = tempfile::tempdir().unwrap();
    let jwt = github_jwt(
        "system:serviceaccount:ns:sa",
        "sts.amazonaws.com",
        wall_clock() + Duration::from_secs(600),
    );
    let file = support::write_file(dir.path(), "token", &jwt);
    let env = Env::from_pairs([("AWS_WEB_IDENTITY_TOKEN_FILE", file.to_str().unwrap())]);
    let chain = TokenChain::first_try(GitHubActions::from_env(&env, reqwest::Client::new()))
        .or_else(TokenFile::from_env_var(&env, "AWS_WEB_IDENTITY_TOKEN_FILE"));
    let token = chain.token("sts.amazonaws.com").await.unwrap();
    assert_eq!(
        token.claims().sub.as_deref(),
        Some("system:serviceaccount:ns:sa")
    );
    assert!(token.origin().contains("AWS_WEB_IDENTITY_TOKEN_FILE"));
    assert_no_secrets(&[&jwt], &[&format!("{token:?} {chain:?}")]);
}
