//! Logins against the real registries: Docker config identity tokens and credential helpers, and
//! ECR logins (from moto) that never reach a log line.

use std::collections::BTreeMap;

use ferry_registry::Client;
use ferry_registry::auth::{AuthChain, DockerConfigAuth};

use crate::support::*;

async fn push_with(client: &Client, registry: &str) -> ferry_registry::CopyReport {
    let tmp = tempfile::tempdir().unwrap();
    let layout = layout(tmp.path(), 2, 5_000);
    let dest = image(registry, &format!("{}:v1", repo("config")));
    let report = push(client, &layout.source("latest"), &dest).await;
    assert_eq!(report.digest, layout.digest);
    report
}

#[tokio::test]
async fn docker_config_identity_token_uses_the_oauth2_refresh_flow() {
    let registry = token();
    let realm = ferry_testkit::server("FERRY_TEST_REGISTRY_TOKEN_REALM");
    // Log in the way `docker login` does for identity tokens: ask the realm for an offline token.
    let answer: serde_json::Value = reqwest::Client::new()
        .get(&realm)
        .query(&[
            ("service", "ferry-test-registry"),
            ("offline_token", "true"),
        ])
        .basic_auth(user(), Some(password()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refresh = answer["refresh_token"].as_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = serde_json::json!({"auths": {registry.clone(): {"identitytoken": refresh}}});
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    let env = BTreeMap::from([("DOCKER_CONFIG".to_owned(), dir.path().display().to_string())]);
    let auth = DockerConfigAuth::from_env(&env).unwrap();
    let client = client_with(AuthChain::first_try(auth));
    let report = push_with(&client, &registry).await;
    assert_eq!(report.stats.token_requests, 1);
}

#[cfg(unix)]
#[tokio::test]
async fn docker_config_credential_helper_logs_in() {
    use std::os::unix::fs::PermissionsExt as _;
    let registry = htpasswd();
    let dir = tempfile::tempdir().unwrap();
    let helper = dir.path().join("docker-credential-ferrytest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread url\n[ \"$url\" = \"{registry}\" ] || {{ echo 'credentials not found in native keychain'; exit 1; }}\n\
             printf '{{\"ServerURL\":\"%s\",\"Username\":\"{}\",\"Secret\":\"{}\"}}' \"$url\"\n",
            user(),
            password()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        serde_json::json!({"credHelpers": {registry.clone(): "ferrytest"}}).to_string(),
    )
    .unwrap();
    let env = BTreeMap::from([
        ("DOCKER_CONFIG".to_owned(), dir.path().display().to_string()),
        (
            "PATH".to_owned(),
            format!("{}:/usr/bin:/bin", dir.path().display()),
        ),
    ]);
    let client = client_with(DockerConfigAuth::from_env(&env).unwrap());
    push_with(&client, &registry).await;
}

/// Log lines written by a test's subscriber.
#[cfg(feature = "ecr")]
#[derive(Clone, Default)]
struct CapturedLogs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

#[cfg(feature = "ecr")]
impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// At trace level the AWS SDK logs response bodies, and ECR's model does not mark the
/// authorization token sensitive: the login must still never reach a log line.
#[cfg(feature = "ecr")]
#[tokio::test]
async fn ecr_logins_never_reach_the_logs_even_at_trace_level() {
    use base64::Engine as _;
    use ferry_registry::auth::{Credential, RegistryAuth as _};
    use secrecy::ExposeSecret as _;
    let logs = CapturedLogs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let registry = ferry_testkit::server("FERRY_TEST_REGISTRY_ECR");
    let password = "123456789012-auth-token";
    match ecr_auth(&registry).credential(&registry).await.unwrap() {
        Credential::Basic {
            username,
            password: got,
        } => assert_eq!((username.as_str(), got.expose_secret()), ("AWS", password)),
        other => panic!("expected a user name and password, got {other:?}"),
    }
    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logged.contains("ECR login obtained"),
        "the subscriber saw the login: {logged}"
    );
    let token = base64::engine::general_purpose::STANDARD.encode(format!("AWS:{password}"));
    assert!(
        !logged.contains(&token) && !logged.contains(password),
        "the ECR login leaked into the logs:\n{logged}"
    );
}
