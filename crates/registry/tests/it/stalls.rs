//! Registries that send an answer's headers and then stall part-way through its body (a
//! manifest, a token, a tag list): ferry asks again, and when the stall persists fails with an
//! error naming the registry and what it was reading, instead of hanging.

use std::sync::Arc;
use std::time::Duration;

use ferry_registry::auth::{Anonymous, AuthChain, BasicAuth};
use ferry_registry::{Client, Error, ErrorKind};
use ferry_testkit::proxy::{Fault, FaultProxy};
use secrecy::SecretString;

use crate::support::*;

/// How long the tests let a body go without a byte.
const STALL: Duration = Duration::from_millis(400);

fn stall_client(auth: AuthChain) -> Client {
    Client::builder()
        .auth(Arc::new(auth.or_else(Anonymous)))
        .retry(fast_retry())
        .answer_timeout(STALL)
        .build()
        .unwrap()
}

/// An image on the no-auth registry, and a proxy in front of that registry.
async fn seeded(name: &str) -> (String, FaultProxy, ferry_registry::Digest) {
    let tmp = tempfile::tempdir().unwrap();
    let layout = layout(tmp.path(), 1, 10_000);
    let path = repo(name);
    push(
        &anonymous_client(),
        &layout.source("latest"),
        &image(&noauth(), &format!("{path}:v1")),
    )
    .await;
    (path, FaultProxy::start(&noauth()).await, layout.digest)
}

#[tokio::test]
async fn a_manifest_that_stalls_mid_body_is_fetched_again() {
    let (path, proxy, digest) = seeded("stall-manifest").await;
    proxy.add_fault(Fault::stall_response_body("GET", "/manifests/", 100));
    let client = stall_client(AuthChain::default());

    let manifest = client
        .get_manifest(&image(&proxy.addr(), &format!("{path}:v1")))
        .await
        .unwrap();

    assert_eq!(proxy.pending_faults(), 0, "the stall was hit");
    assert_eq!(manifest.digest, digest);
    assert_eq!(client.stats().retries, 1, "{:?}", client.stats());
}

#[tokio::test]
async fn a_manifest_that_keeps_stalling_fails_naming_the_registry_and_the_manifest() {
    let (path, proxy, _) = seeded("stall-manifest-always").await;
    proxy.add_fault(Fault::stall_response_body("GET", "/manifests/", 100).times(100));
    let client = stall_client(AuthChain::default());

    let err = client
        .get_manifest(&image(&proxy.addr(), &format!("{path}:v1")))
        .await
        .unwrap_err();

    assert!(
        matches!(err, Error::Stalled { received: 100, .. }),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Runtime, "the CLI exits 1");
    let text = err.to_string();
    assert!(
        text.contains(&format!(
            "registry {} stopped sending manifest",
            proxy.addr()
        )) && text.contains(&format!("{path}:v1"))
            && text.contains("after 100 bytes"),
        "{text}"
    );
    assert!(err.help().unwrap().contains("stopped part-way"));
    // The first try and every retry, then the error.
    let gets = proxy
        .log()
        .iter()
        .filter(|l| l.method == "GET" && l.path.contains("/manifests/"))
        .count();
    assert_eq!(gets, 1 + fast_retry().max_retries as usize);
}

#[tokio::test]
async fn a_tag_list_that_stalls_mid_body_is_fetched_again() {
    let (path, proxy, _) = seeded("stall-tags").await;
    proxy.add_fault(Fault::stall_response_body("GET", "/tags/list", 5));
    let client = stall_client(AuthChain::default());

    let tags = client
        .list_tags(&image(&proxy.addr(), &format!("{path}:v1")))
        .await
        .unwrap();

    assert_eq!(proxy.pending_faults(), 0, "the stall was hit");
    assert_eq!(tags, vec!["v1".to_owned()]);
}

/// The token registry behind one proxy and its token realm behind another (the registry's
/// challenge rewritten to point there), with a client logged in to the registry's proxy.
async fn token_proxies() -> (FaultProxy, FaultProxy, Client) {
    let realm = ferry_testkit::server("FERRY_TEST_REGISTRY_TOKEN_REALM");
    let realm_host = realm
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let realm_proxy = FaultProxy::start(&realm_host).await;
    let registry_proxy = FaultProxy::start(&token()).await;
    registry_proxy.rewrite_response_headers(
        &format!("http://{realm_host}/"),
        &format!("http://{}/", realm_proxy.addr()),
    );
    let client = stall_client(AuthChain::default().or_else(BasicAuth::new(
        &registry_proxy.addr(),
        user(),
        SecretString::from(password()),
    )));
    (registry_proxy, realm_proxy, client)
}

#[tokio::test]
async fn a_token_answer_that_stalls_mid_body_is_fetched_again() {
    let (registry_proxy, realm_proxy, client) = token_proxies().await;
    realm_proxy.add_fault(Fault::stall_response_body("GET", "/token", 10));
    let dest = image(&registry_proxy.addr(), &repo("stall-token"));

    client.login(&dest, true).await.unwrap();

    assert_eq!(realm_proxy.pending_faults(), 0, "the stall was hit");
    assert_eq!(client.stats().token_requests, 2, "{:?}", client.stats());
    assert_eq!(client.stats().retries, 1, "{:?}", client.stats());
}

#[tokio::test]
async fn a_token_answer_that_keeps_stalling_fails_naming_the_registry_and_the_token() {
    let (registry_proxy, realm_proxy, client) = token_proxies().await;
    realm_proxy.add_fault(Fault::stall_response_body("GET", "/token", 10).times(100));
    let dest = image(&registry_proxy.addr(), &repo("stall-token-always"));

    let err = client.login(&dest, true).await.unwrap_err();

    assert!(
        matches!(err, Error::Stalled { received: 10, .. }),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Runtime, "the CLI exits 1");
    let text = err.to_string();
    assert!(
        text.contains(&format!(
            "registry {} stopped sending a token from http://{}/token",
            registry_proxy.addr(),
            realm_proxy.addr()
        )) && text.contains("token request for repository:"),
        "{text}"
    );
    // Nothing of the token, nor the password, in the error.
    let chain = format!("{err:?}");
    assert!(!chain.contains(&password()), "{chain}");
    assert_eq!(
        client.stats().token_requests,
        1 + u64::from(fast_retry().max_retries)
    );
}
