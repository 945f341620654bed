//! The ACR login flow (feature `acr`) against a wiremock double of ACR's endpoints: Azure AD
//! token -> POST /oauth2/exchange -> refresh token -> POST /oauth2/token -> access token.

#![cfg(feature = "acr")]

use std::sync::Arc;

use ferry_registry::auth::AuthChain;
use ferry_registry::auth::acr::{AcrAuth, StaticAadToken};
use ferry_registry::{Client, ImageRef};
use secrecy::SecretString;
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// ACR's `/v2/` challenge: a token from the registry's own `/oauth2/token`, for service HOST.
async fn challenge(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/v2/"))
        .respond_with(ResponseTemplate::new(401).insert_header(
            "www-authenticate",
            format!(
                r#"Bearer realm="{}/oauth2/token",service="{}""#,
                server.uri(),
                server.address()
            ),
        ))
        .mount(server)
        .await;
}

/// A form `POST` to `to` whose body has every one of `fields`, answered with `answer`, once.
async fn form_post(server: &MockServer, to: &str, fields: &[&str], answer: serde_json::Value) {
    let mut mock = Mock::given(method("POST")).and(path(to));
    for field in fields {
        mock = mock.and(body_string_contains(*field));
    }
    mock.respond_with(ResponseTemplate::new(200).set_body_json(answer))
        .expect(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn acr_exchanges_an_aad_token_for_registry_tokens() {
    let server = MockServer::start().await;
    let host = server.address().to_string();
    Mock::given(method("GET"))
        .and(path("/v2/"))
        .and(header("authorization", "Bearer acr-access-value"))
        .respond_with(ResponseTemplate::new(200))
        .with_priority(1)
        .mount(&server)
        .await;
    challenge(&server).await;
    form_post(
        &server,
        "/oauth2/exchange",
        &[
            "grant_type=access_token",
            "access_token=aad-token-value",
            "tenant=tenant-1",
        ],
        serde_json::json!({"refresh_token": "acr-refresh-value"}),
    )
    .await;
    form_post(
        &server,
        "/oauth2/token",
        &[
            "grant_type=refresh_token",
            "refresh_token=acr-refresh-value",
            "scope=repository%3Ashop%2Fweb%3Apull",
        ],
        serde_json::json!({"access_token": "acr-access-value"}),
    )
    .await;
    Mock::given(method("GET"))
        .and(path("/v2/shop/web/tags/list"))
        .and(header("authorization", "Bearer acr-access-value"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"name": "shop/web", "tags": ["b", "a"]})),
        )
        .mount(&server)
        .await;

    let acr = AcrAuth::new(
        reqwest::Client::new(),
        Arc::new(StaticAadToken(SecretString::from("aad-token-value"))),
    )
    .with_tenant("tenant-1")
    .with_host(&host);
    let client = Client::builder()
        .auth(Arc::new(AuthChain::first_try(acr)))
        .build()
        .unwrap();
    let repo = ImageRef::parse(&format!("{host}/shop/web")).unwrap();
    client.login(&repo, false).await.unwrap();
    assert_eq!(client.list_tags(&repo).await.unwrap(), ["a", "b"]);
    // The second call reuses the cached access token: no new exchange, no new token.
    assert_eq!(client.list_tags(&repo).await.unwrap(), ["a", "b"]);
    assert_eq!(client.stats().token_requests, 1);
}

#[tokio::test]
async fn acr_exchange_refusal_is_an_auth_failure() {
    let server = MockServer::start().await;
    let host = server.address().to_string();
    challenge(&server).await;
    Mock::given(method("POST"))
        .and(path("/oauth2/exchange"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    let acr = AcrAuth::new(
        reqwest::Client::new(),
        Arc::new(StaticAadToken(SecretString::from("aad-secret-xyz"))),
    )
    .with_host(&host);
    let client = Client::builder().auth(Arc::new(acr)).build().unwrap();
    let err = client
        .login(
            &ImageRef::parse(&format!("{host}/shop/web")).unwrap(),
            false,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ferry_registry::ErrorKind::Auth, "{err}");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("aad-secret-xyz"), "{shown}");
}

#[tokio::test]
async fn an_exchange_answer_that_stalls_mid_body_fails_instead_of_hanging() {
    use ferry_registry::auth::RegistryAuth as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    // Sends the exchange's headers and the start of its JSON, then nothing (the connection open).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let stalled = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut conn, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf).await;
            let _ = conn
                .write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 60\r\n\r\n{\"refresh_token\":",
                )
                .await;
            held.push(conn);
        }
    });
    let acr = AcrAuth::new(
        reqwest::Client::new(),
        Arc::new(StaticAadToken(SecretString::from("aad-secret-xyz"))),
    )
    .with_host(&host)
    .with_answer_timeout(std::time::Duration::from_millis(300));

    let err = acr.credential(&host).await.unwrap_err();

    let shown = format!("{err}");
    assert!(
        shown.contains(&host)
            && shown.contains("/oauth2/exchange stopped sending its answer after 17 bytes"),
        "{shown}"
    );
    assert!(!format!("{err:?}").contains("aad-secret-xyz"));
    stalled.abort();
}
