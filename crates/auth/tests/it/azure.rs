//! Azure AD tokens (wiremock: Azure AD cannot run here).

use std::time::Duration;

use ferry_auth::azure::{ARM_SCOPE, AzureAdCredential, AzureTokenCredential as _};
use ferry_auth::clock::ManualClock;
use ferry_auth::config::{AuthConfig, AuthContext};
use ferry_auth::env::Env;
use ferry_auth::{AuthError, ErrorKind};
use secrecy::ExposeSecret as _;
use wiremock::matchers::{body_string_contains, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{self, assert_no_secrets, clock_now, github_jwt, wall_clock};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT: &str = "0c3b6d1e-5a1b-4c7e-9b1e-2f4b8d0e6a11";
const REQUEST_TOKEN: &str = "ghs_requesttoken_azure_abcdef012345";

fn token_path() -> String {
    format!("/{TENANT}/oauth2/v2.0/token")
}

fn config(aad: &MockServer, extra: &str) -> AuthConfig {
    toml::from_str(&format!(
        "[azure]\ntenant_id = \"{TENANT}\"\nclient_id = \"{CLIENT}\"\nauthority = \"{}\"\nmax_attempts = 3\n{extra}",
        aad.uri()
    ))
    .unwrap()
}

/// The credential `[azure]` (with `extra` lines) makes, with Azure AD at `aad` and the
/// variables `env`, on a clock that starts now.
fn credential(aad: &MockServer, extra: &str, env: Env) -> (AzureAdCredential, ManualClock) {
    let (clock, shared) = clock_now();
    let cred = config(aad, extra)
        .azure(&AuthContext::new(env, shared))
        .unwrap();
    (cred, clock)
}

fn token_answer(token: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(serde_json::json!({
        "token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token
    }))
}

/// GitHub's OIDC endpoint on a mock, answering with `jwt` for the Azure audience only.
async fn github(jwt: &str) -> (MockServer, Env) {
    let gh = MockServer::start().await;
    Mock::given(method("GET"))
        .and(query_param("audience", "api://AzureADTokenExchange"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"value": jwt})))
        .mount(&gh)
        .await;
    let env = Env::from_pairs([
        (
            "ACTIONS_ID_TOKEN_REQUEST_URL",
            format!("{}/token?api-version=2.0", gh.uri()),
        ),
        ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", REQUEST_TOKEN.to_owned()),
    ]);
    (gh, env)
}

#[tokio::test]
async fn a_github_token_is_exchanged_as_a_federated_assertion_and_cached_per_scope() {
    support::init();
    let jwt = github_jwt(
        "repo:octo/shop:environment:production",
        "api://AzureADTokenExchange",
        wall_clock() + Duration::from_secs(2 * 3600),
    );
    let (_gh, env) = github(&jwt).await;
    let aad = MockServer::start().await;
    let arm_token = format!("aad-arm-token-{}", support::uuid_like());
    let aks_token = format!("aad-aks-token-{}", support::uuid_like());
    Mock::given(method("POST"))
        .and(path(token_path()))
        .and(body_string_contains("grant_type=client_credentials"))
        .and(body_string_contains(format!("client_id={CLIENT}").as_str()))
        .and(body_string_contains(
            "client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer",
        ))
        .and(body_string_contains(format!("client_assertion={jwt}").as_str()))
        .and(body_string_contains("scope=https%3A%2F%2Fmanagement.azure.com%2F.default"))
        .respond_with(token_answer(&arm_token))
        .mount(&aad)
        .await;
    Mock::given(method("POST"))
        .and(path(token_path()))
        .and(body_string_contains(
            "scope=6dae42f8-4368-4678-94ff-3960e28e3630%2F.default",
        ))
        .respond_with(token_answer(&aks_token))
        .mount(&aad)
        .await;

    let (cred, clock) = credential(&aad, "", env);
    let arm = cred.token(ARM_SCOPE).await.unwrap();
    assert_eq!(arm.token.expose_secret(), arm_token);
    let again = cred.token(ARM_SCOPE).await.unwrap();
    assert_eq!(again.token.expose_secret(), arm_token);
    assert_eq!(aad.received_requests().await.unwrap().len(), 1, "cached");

    // The AKS server app is another scope: another request.
    use ferry_auth::bearer::BearerTokenSource as _;
    let aks = cred.aks_token_source().bearer_token().await.unwrap();
    assert_eq!(aks.token.expose_secret(), aks_token);
    assert_eq!(aad.received_requests().await.unwrap().len(), 2);

    // 55 minutes on, under 5 minutes of the hour remain: requested again.
    clock.advance(Duration::from_secs(55 * 60));
    cred.token(ARM_SCOPE).await.unwrap();
    assert_eq!(aad.received_requests().await.unwrap().len(), 3);

    let outputs = format!("{cred:?} {arm:?} {aks:?}");
    assert_no_secrets(&[&jwt, REQUEST_TOKEN, &arm_token, &aks_token], &[&outputs]);
}

#[tokio::test]
async fn no_matching_federated_credential_says_what_to_add() {
    support::init();
    let jwt = github_jwt(
        "repo:octo/shop:pull_request",
        "api://AzureADTokenExchange",
        wall_clock() + Duration::from_secs(300),
    );
    let (_gh, env) = github(&jwt).await;
    let aad = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!({
            "error": "invalid_client",
            "error_description": "AADSTS70021: No matching federated identity record found for presented assertion. Assertion Issuer: 'https://token.actions.githubusercontent.com'. Assertion Subject: 'repo:octo/shop:pull_request'. Assertion Audience: 'api://AzureADTokenExchange'.\r\nTrace ID: 1b7d\r\nCorrelation ID: 2c8e\r\nTimestamp: 2026-11-23 12:00:00Z",
            "error_codes": [70021],
        })))
        .mount(&aad)
        .await;
    let (cred, _) = credential(&aad, "", env);
    let err = cred.token(ARM_SCOPE).await.unwrap_err();
    match &err {
        AuthError::Rejected {
            code,
            message,
            help,
            ..
        } => {
            assert_eq!(code, "AADSTS70021");
            assert!(
                message.starts_with("AADSTS70021: No matching federated identity"),
                "{message}"
            );
            assert!(!message.contains("Trace ID"), "{message}");
            assert!(
                help.contains("repo:octo/shop:pull_request") && help.contains("trust-policy"),
                "{help}"
            );
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert_eq!(err.kind(), ErrorKind::Denied);
    assert_eq!(
        aad.received_requests().await.unwrap().len(),
        1,
        "a refusal is not retried"
    );
    assert_no_secrets(
        &[&jwt, REQUEST_TOKEN],
        &[&err.to_string(), &format!("{err:?}")],
    );
}

#[tokio::test]
async fn throttling_is_retried_and_an_expired_assertion_is_never_sent() {
    support::init();
    let jwt = github_jwt(
        "repo:o/r:ref:refs/heads/main",
        "api://AzureADTokenExchange",
        wall_clock() + Duration::from_secs(300),
    );
    let (_gh, env) = github(&jwt).await;
    let aad = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "0"))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&aad)
        .await;
    Mock::given(method("POST"))
        .respond_with(token_answer("aad-token-after-throttling-0001"))
        .with_priority(2)
        .mount(&aad)
        .await;
    let (cred, _) = credential(&aad, "", env);
    cred.token(ARM_SCOPE).await.unwrap();
    assert_eq!(aad.received_requests().await.unwrap().len(), 3);

    // An expired GitHub token: refused here, Azure AD is not asked.
    let old = github_jwt(
        "repo:o/r:ref:refs/heads/main",
        "api://AzureADTokenExchange",
        wall_clock() - Duration::from_secs(60),
    );
    let (_gh2, env) = github(&old).await;
    let aad2 = MockServer::start().await;
    let err = credential(&aad2, "", env)
        .0
        .token(ARM_SCOPE)
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::ExpiredToken { .. }), "{err:?}");
    assert_eq!(aad2.received_requests().await.unwrap().len(), 0);
    assert_no_secrets(
        &[&jwt, &old, "aad-token-after-throttling-0001"],
        &[&err.to_string(), &format!("{err:?} {:?}", err.help())],
    );
}

#[tokio::test]
async fn a_client_secret_is_the_alternative_and_never_shows() {
    support::init();
    let secret = format!("azsecret~{}", support::uuid_like());
    let aad = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_string_contains(
            format!("client_secret={}", secret.replace('~', "%7E")).as_str(),
        ))
        .respond_with(token_answer("aad-token-from-secret-0001"))
        .mount(&aad)
        .await;
    let by_secret = "credentials = \"secret\"\nclient_secret_env = \"DEPLOY_SECRET\"\n";
    let env = || Env::from_pairs([("DEPLOY_SECRET", secret.as_str())]);
    let (cred, _) = credential(&aad, by_secret, env());
    assert!(cred.describe().contains("client secret"));
    let token = cred.token(ARM_SCOPE).await.unwrap();
    assert_eq!(token.token.expose_secret(), "aad-token-from-secret-0001");

    // A wrong secret: AADSTS7000215, with the fix.
    let bad = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_json(serde_json::json!({
            "error": "invalid_client",
            "error_description": "AADSTS7000215: Invalid client secret provided.",
            "error_codes": [7000215]
        })))
        .mount(&bad)
        .await;
    let err = credential(&bad, by_secret, env())
        .0
        .token(ARM_SCOPE)
        .await
        .unwrap_err();
    assert!(
        err.help().unwrap().contains("secret's value"),
        "{:?}",
        err.help()
    );
    assert_no_secrets(
        &[&secret],
        &[&format!("{cred:?} {token:?} {err:?}"), &err.to_string()],
    );
}

#[tokio::test]
async fn unreachable_authority_and_missing_ids_are_reported() {
    support::init();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let env = Env::from_pairs([("AZURE_CLIENT_SECRET", "azsecret-unreachable-0001")]);
    let (_, shared) = clock_now();
    let cfg: AuthConfig = toml::from_str(&format!(
        "[azure]\ntenant_id = \"{TENANT}\"\nclient_id = \"{CLIENT}\"\nauthority = \"http://{closed}\"\ncredentials = \"secret\"\nmax_attempts = 2\n"
    ))
    .unwrap();
    let err = cfg
        .azure(&AuthContext::new(env, shared.clone()))
        .unwrap()
        .token(ARM_SCOPE)
        .await
        .unwrap_err();
    assert!(
        matches!(err, AuthError::Unreachable { attempts: 2, .. }),
        "{err:?}"
    );
    assert_no_secrets(
        &["azsecret-unreachable-0001"],
        &[&err.to_string(), &format!("{err:?} {:?}", err.help())],
    );

    let cfg: AuthConfig = toml::from_str("[azure]\nclient_id = \"c\"\n").unwrap();
    let err = cfg
        .azure(&AuthContext::new(Env::default(), shared))
        .unwrap_err();
    assert!(err.to_string().contains("auth.azure.tenant_id"), "{err}");
    assert!(
        err.help().unwrap().contains("AZURE_TENANT_ID"),
        "{:?}",
        err.help()
    );
}
