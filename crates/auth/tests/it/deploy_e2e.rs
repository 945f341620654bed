//! End to end: `ferry deploy` through the EKS and AKS cluster providers, with the simulator
//! behind the cluster endpoint the cloud reports. moto's DescribeCluster (patched by the AWS
//! front) and a wiremock ARM `listClusterUserCredential` both answer with the address and CA of
//! a TLS endpoint that, like a real API server's authenticator, refuses any request without an
//! acceptable bearer token; ferry-sim serves behind it. The same manifests deploy to both: the
//! two ferry.toml files differ only in `[env.prod.cluster]` and `[env.prod.auth]`. kubectl, an
//! independent client, then reads the cluster through a `ferry kubeconfig` whose user is ferry
//! as exec plugin.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::cli_eks::EksWorld;
use crate::support::cluster_front::ClusterFront;
use crate::support::ferry::{Run, SimProcess, ferry, ferry_toml};
use crate::support::{
    self, assert_aws_cli_agrees, assert_no_secrets, eks_token_url, fixture, github_jwt, query,
    signed_at, uuid_like, wall_clock,
};

fn copy_manifests(dir: &Path) {
    let to = dir.join("k8s");
    std::fs::create_dir_all(&to).unwrap();
    std::fs::copy(fixture("app/k8s/app.yaml"), to.join("app.yaml")).unwrap();
}

/// What an EKS authenticator checks before asking STS: an EKS token for this region, a
/// presigned GetCallerIdentity whose signature covers the cluster header, signed within the
/// last 15 minutes. (The signature itself is checked against the AWS CLI afterwards.)
fn eks_token_acceptable(token: &str, region: &str) -> bool {
    let Some(url) = eks_token_url(token) else {
        return false;
    };
    let age = signed_at(&url).map(|t| support::unix(wall_clock()) - t.as_second());
    url.host_str() == Some(&format!("sts.{region}.amazonaws.com"))
        && query(&url, "Action").as_deref() == Some("GetCallerIdentity")
        && query(&url, "X-Amz-SignedHeaders").as_deref() == Some("host;x-k8s-aws-id")
        && query(&url, "X-Amz-Signature").is_some_and(|s| s.len() == 64)
        && age.is_some_and(|a| (-60..15 * 60).contains(&a))
}

/// kubectl, through a kubeconfig written by `ferry kubeconfig`: ferry runs as its exec plugin.
fn kubectl_get_deployment(dir: &Path) -> (serde_json::Value, String) {
    let kc = dir.join("kubeconfig");
    let run = ferry(
        dir,
        &["kubeconfig", "--env", "prod", "--out", kc.to_str().unwrap()],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let kubectl = ferry_testkit::lookup("FERRY_TEST_KUBECTL").unwrap_or_else(|| "kubectl".into());
    let out = std::process::Command::new(kubectl)
        .args([
            "--kubeconfig",
            kc.to_str().unwrap(),
            "get",
            "deployment",
            "web",
            "-n",
            "shop",
            "-o",
            "json",
        ])
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", dir)
        .output()
        .expect("run kubectl");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "kubectl failed: {stderr}");
    (
        serde_json::from_slice(&out.stdout).unwrap(),
        format!("{}\n{stderr}", run.all()),
    )
}

fn assert_deployed(deployment: &serde_json::Value) {
    let image = deployment["spec"]["template"]["spec"]["containers"][0]["image"].as_str();
    assert_eq!(
        image,
        Some("example/shop-web:abc1234"),
        "the image is pinned to the tag"
    );
    assert_eq!(deployment["status"]["readyReplicas"], 2, "{deployment}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ferry_deploy_works_end_to_end_through_the_eks_provider() {
    support::init();
    let sim = SimProcess::start(20.0);
    let front = ClusterFront::start(
        sim.url(),
        Arc::new(|t: &str| eks_token_acceptable(t, "eu-west-1")),
    )
    .await;
    let w = EksWorld::new(&front).await;
    copy_manifests(w.path());

    let deploy = w.run(&["deploy", "--env", "prod", "--tag", "abc1234"]);
    assert_eq!(deploy.code, 0, "{}\n{}", deploy.stdout, deploy.stderr);
    let (requests, refused) = front.counts();
    assert!(
        requests >= 5,
        "the deploy talked to the cluster ({requests} requests)"
    );
    assert_eq!(refused, 0, "every request carried an acceptable token");
    let tokens = front.tokens();
    assert!(!tokens.is_empty());
    for token in &tokens {
        assert_aws_cli_agrees(token, &w.cluster, w.region, &w.aws.issued());
    }
    assert_eq!(
        w.aws.count_path("/clusters/"),
        1,
        "one DescribeCluster per deploy"
    );

    let (deployment, outputs) = kubectl_get_deployment(w.path());
    assert_deployed(&deployment);
    let (_, refused) = front.counts();
    assert_eq!(refused, 0, "kubectl's requests carried ferry's tokens too");

    let mut secrets = w.secrets();
    secrets.extend(front.tokens());
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    assert_no_secrets(&secrets, &[&deploy.all(), &outputs]);
}

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT: &str = "0c3b6d1e-5a1b-4c7e-9b1e-2f4b8d0e6a11";
const SUB: &str = "00000000-1111-2222-3333-444444444444";

/// An AKS environment: wiremock Azure AD and ARM, a token file, and ferry.toml.
struct AksWorld {
    aad: MockServer,
    arm: MockServer,
    dir: tempfile::TempDir,
    jwt: String,
    arm_token: String,
    aks_token: String,
}

/// A JWT-shaped Azure AD access token (so whoami can show its claims).
fn aad_token(aud: &str) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let claims = serde_json::json!({
        "aud": aud, "tid": TENANT, "oid": "5f3c1a2b-0000-4000-8000-000000000001",
        "appid": CLIENT, "idtyp": "app", "exp": support::unix(wall_clock()) + 3600,
        "nonce": uuid_like(),
    });
    format!(
        "{}.{}.{}",
        b64.encode(br#"{"alg":"RS256","typ":"JWT"}"#),
        b64.encode(claims.to_string()),
        b64.encode(uuid_like())
    )
}

/// ARM's `listClusterUserCredential` for cluster `shop-aks` in `resource_group`: what AKS hands
/// out for an AAD-enabled cluster, its server and CA, and a kubelogin user ferry ignores.
async fn mount_user_credential(
    arm: &MockServer,
    resource_group: &str,
    arm_token: &str,
    server: &str,
    ca_data: &str,
) {
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: shop-aks\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca_data}\ncontexts:\n- name: shop-aks\n  context:\n    cluster: shop-aks\n    user: clusterUser_shop-prod_shop-aks\ncurrent-context: shop-aks\nusers:\n- name: clusterUser_shop-prod_shop-aks\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: kubelogin\n      args: [get-token, --server-id, 6dae42f8-4368-4678-94ff-3960e28e3630]\n",
    );
    Mock::given(method("POST"))
        .and(path(format!(
            "/subscriptions/{SUB}/resourceGroups/{resource_group}/providers/Microsoft.ContainerService/managedClusters/shop-aks/listClusterUserCredential"
        )))
        .and(header("authorization", format!("Bearer {arm_token}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "kubeconfigs": [{
                "name": "clusterUser",
                "value": base64::engine::general_purpose::STANDARD.encode(kubeconfig),
            }]
        })))
        .mount(arm)
        .await;
}

impl AksWorld {
    async fn new(endpoint: &ClusterFront, aks_token: String) -> AksWorld {
        support::init();
        let dir = tempfile::tempdir().unwrap();
        let jwt = github_jwt(
            "repo:octo/shop:environment:production",
            "api://AzureADTokenExchange",
            wall_clock() + Duration::from_secs(1800),
        );
        let token_file = support::write_file(dir.path(), "azure-token", &jwt);
        let aad = MockServer::start().await;
        let arm = MockServer::start().await;
        let arm_token = aad_token("https://management.azure.com");
        for (scope, token) in [
            (
                format!(
                    "{}%2F.default",
                    arm.uri().replace(':', "%3A").replace('/', "%2F")
                ),
                &arm_token,
            ),
            (
                "6dae42f8-4368-4678-94ff-3960e28e3630%2F.default".to_owned(),
                &aks_token,
            ),
        ] {
            Mock::given(method("POST"))
                .and(path(format!("/{TENANT}/oauth2/v2.0/token")))
                .and(body_string_contains(
                    format!("client_assertion={jwt}").as_str(),
                ))
                .and(body_string_contains(format!("scope={scope}").as_str()))
                .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                    "token_type": "Bearer", "expires_in": 3599, "access_token": token,
                })))
                .mount(&aad)
                .await;
        }
        mount_user_credential(
            &arm,
            "shop-prod",
            &arm_token,
            &endpoint.url(),
            &endpoint.ca_data(),
        )
        .await;
        let world = AksWorld {
            aad,
            arm,
            dir,
            jwt,
            arm_token,
            aks_token,
        };
        world.write_config(&token_file, "shop-prod");
        world
    }

    fn write_config(&self, token_file: &Path, resource_group: &str) {
        let cluster = format!(
            "provider = \"aks\"\nsubscription = \"{SUB}\"\nresource_group = \"{resource_group}\"\n\
             cluster = \"shop-aks\"\narm_endpoint = \"{}\"\n",
            self.arm.uri()
        );
        let auth = format!(
            r#"[env.prod.auth.github]
repository = "octo/shop"
environment = "production"

[env.prod.auth.azure]
tenant_id = "{TENANT}"
client_id = "{CLIENT}"
authority = "{aad}"
max_attempts = 2
"#,
            aad = self.aad.uri(),
        );
        let text = ferry_toml(&cluster, token_file, &auth);
        std::fs::write(self.dir.path().join("ferry.toml"), text).unwrap();
    }

    fn secrets(&self) -> Vec<String> {
        vec![
            self.jwt.clone(),
            self.arm_token.clone(),
            self.aks_token.clone(),
        ]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ferry_deploy_works_end_to_end_through_the_aks_provider() {
    support::init();
    let sim = SimProcess::start(20.0);
    let aks_token = aad_token("6dae42f8-4368-4678-94ff-3960e28e3630");
    let expected = aks_token.clone();
    let front = ClusterFront::start(sim.url(), Arc::new(move |t: &str| t == expected)).await;
    let w = AksWorld::new(&front, aks_token).await;
    copy_manifests(w.dir.path());

    let deploy = ferry(
        w.dir.path(),
        &["deploy", "--env", "prod", "--tag", "abc1234"],
        &[],
    );
    assert_eq!(deploy.code, 0, "{}\n{}", deploy.stdout, deploy.stderr);
    let (requests, refused) = front.counts();
    assert!(
        requests >= 5,
        "the deploy talked to the cluster ({requests} requests)"
    );
    assert_eq!(
        refused, 0,
        "every request carried the AKS server app's token"
    );
    assert_eq!(front.tokens(), vec![w.aks_token.clone()]);

    let (deployment, outputs) = kubectl_get_deployment(w.dir.path());
    assert_deployed(&deployment);
    assert_eq!(front.counts().1, 0);

    let who = ferry(w.dir.path(), &["auth", "whoami", "--env", "prod"], &[]);
    assert_eq!(who.code, 0, "{}", who.stderr);
    assert!(
        who.stdout.contains(TENANT) && who.stdout.contains("repo:octo/shop:environment:production"),
        "{}",
        who.stdout
    );

    // The Azure side of the trust relationship: the federated credential for this environment.
    let tp = ferry(
        w.dir.path(),
        &["auth", "trust-policy", "--env", "prod", "-o", "json"],
        &[],
    );
    assert_eq!(tp.code, 0, "{}", tp.stderr);
    let doc: serde_json::Value = serde_json::from_str(&tp.stdout).unwrap();
    let cred = &doc["azure"]["federated_credential"];
    assert_eq!(cred["subject"], "repo:octo/shop:environment:production");
    assert_eq!(
        cred["issuer"],
        "https://token.actions.githubusercontent.com"
    );
    assert_eq!(cred["audiences"][0], "api://AzureADTokenExchange");
    assert_eq!(doc["azure"]["client_id"], CLIENT);

    let secrets = w.secrets();
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    assert_no_secrets(&secrets, &[&deploy.all(), &outputs, &who.all(), &tp.all()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aks_errors_name_what_to_fix() {
    support::init();
    let front = ClusterFront::start("http://127.0.0.1:9", Arc::new(|_: &str| false)).await;
    let w = AksWorld::new(&front, aad_token("6dae42f8-4368-4678-94ff-3960e28e3630")).await;
    let token_file = w.dir.path().join("azure-token");

    // A resource group that does not exist: ARM's 404, exit 3.
    Mock::given(method("POST"))
        .and(path(format!(
            "/subscriptions/{SUB}/resourceGroups/shop-typo/providers/Microsoft.ContainerService/managedClusters/shop-aks/listClusterUserCredential"
        )))
        .respond_with(ResponseTemplate::new(404).set_body_json(serde_json::json!({
            "error": {"code": "ResourceGroupNotFound", "message": "Resource group 'shop-typo' could not be found."}
        })))
        .mount(&w.arm)
        .await;
    w.write_config(&token_file, "shop-typo");
    let missing = ferry(w.dir.path(), &["kubeconfig", "--env", "prod"], &[]);
    assert_eq!(missing.code, 3, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("ResourceGroupNotFound")
            && missing.stderr.contains("[env.prod.cluster]")
            && missing.stderr.contains("resource_group"),
        "{}",
        missing.stderr
    );

    // No role on the cluster: ARM's 403, exit 11 naming the role to grant.
    Mock::given(method("POST"))
        .and(path(format!(
            "/subscriptions/{SUB}/resourceGroups/shop-norole/providers/Microsoft.ContainerService/managedClusters/shop-aks/listClusterUserCredential"
        )))
        .respond_with(ResponseTemplate::new(403).set_body_json(serde_json::json!({
            "error": {"code": "AuthorizationFailed", "message": "The client does not have authorization to perform action 'Microsoft.ContainerService/managedClusters/listClusterUserCredential/action'."}
        })))
        .mount(&w.arm)
        .await;
    w.write_config(&token_file, "shop-norole");
    let forbidden = ferry(w.dir.path(), &["kubeconfig", "--env", "prod"], &[]);
    assert_eq!(forbidden.code, 11, "{}", forbidden.stderr);
    assert!(
        forbidden.stderr.contains("Cluster User Role"),
        "{}",
        forbidden.stderr
    );

    // A token from another branch: Azure AD has no matching federated credential, exit 11.
    let other = github_jwt(
        "repo:octo/shop:ref:refs/heads/feature",
        "api://AzureADTokenExchange",
        wall_clock() + Duration::from_secs(600),
    );
    std::fs::write(&token_file, &other).unwrap();
    Mock::given(method("POST"))
        .and(body_string_contains(format!("client_assertion={other}").as_str()))
        .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!({
            "error": "invalid_client",
            "error_description": "AADSTS70021: No matching federated identity record found for presented assertion. Assertion Subject: 'repo:octo/shop:ref:refs/heads/feature'.\r\nTrace ID: x",
            "error_codes": [70021],
        })))
        .mount(&w.aad)
        .await;
    w.write_config(&token_file, "shop-prod");
    let refused = ferry(w.dir.path(), &["auth", "token", "--env", "prod"], &[]);
    assert_eq!(refused.code, 11, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("AADSTS70021") && refused.stderr.contains("trust-policy"),
        "{}",
        refused.stderr
    );
    let check = ferry(w.dir.path(), &["auth", "check", "--env", "prod"], &[]);
    assert_eq!(check.code, 11, "{}", check.stdout);
    assert!(
        check
            .stdout
            .contains("repo:octo/shop:environment:production"),
        "{}",
        check.stdout
    );

    // ARM unreachable: exit 1 after [auth.azure]'s 2 attempts, naming the setting to check.
    std::fs::write(&token_file, &w.jwt).unwrap();
    let arm_closed = format!(
        "http://{}",
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    );
    let arm_scope = format!(
        "scope={}%2F.default",
        arm_closed.replace(':', "%3A").replace('/', "%2F")
    );
    Mock::given(method("POST"))
        .and(path(format!("/{TENANT}/oauth2/v2.0/token")))
        .and(body_string_contains(arm_scope.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "token_type": "Bearer", "expires_in": 3599, "access_token": w.arm_token,
        })))
        .mount(&w.aad)
        .await;
    w.write_config(&token_file, "shop-prod");
    let text = std::fs::read_to_string(w.dir.path().join("ferry.toml"))
        .unwrap()
        .replace(&w.arm.uri(), &arm_closed);
    std::fs::write(w.dir.path().join("ferry.toml"), text).unwrap();
    let arm_down = ferry(w.dir.path(), &["kubeconfig", "--env", "prod"], &[]);
    assert_eq!(arm_down.code, 1, "{}", arm_down.stderr);
    assert!(
        arm_down.stderr.contains(&format!(
            "cannot reach Azure Resource Manager at {arm_closed}"
        )) && arm_down.stderr.contains("2 attempts")
            && arm_down.stderr.contains("[env.prod.cluster] arm_endpoint"),
        "{}",
        arm_down.stderr
    );

    // Azure AD unreachable: exit 1 after the configured 2 attempts.
    w.write_config(&token_file, "shop-prod");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let text = std::fs::read_to_string(w.dir.path().join("ferry.toml"))
        .unwrap()
        .replace(&w.aad.uri(), &format!("http://{closed}"));
    std::fs::write(w.dir.path().join("ferry.toml"), text).unwrap();
    let down = ferry(w.dir.path(), &["auth", "token", "--env", "prod"], &[]);
    assert_eq!(down.code, 1, "{}", down.stderr);
    assert!(
        down.stderr.contains("cannot reach Azure AD") && down.stderr.contains("2 attempts"),
        "{}",
        down.stderr
    );

    let mut secrets = w.secrets();
    secrets.push(other);
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    assert_no_secrets(
        &secrets,
        &[
            &missing.all(),
            &forbidden.all(),
            &refused.all(),
            &check.all(),
            &arm_down.all(),
            &down.all(),
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreachable_eks_cluster_endpoint_fails_the_deploy_with_a_message() {
    support::init();
    // DescribeCluster points at a port nothing listens on.
    let front = ClusterFront::start("http://127.0.0.1:9", Arc::new(|_: &str| true)).await;
    let w = EksWorld::new(&front).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    w.aws
        .patch_cluster(&w.cluster, &format!("https://{closed}"), &front.ca_data());
    copy_manifests(w.path());
    let deploy = w.run(&["deploy", "--env", "prod", "--tag", "abc1234"]);
    assert_unreachable_named(
        &deploy,
        &format!("eks cluster {} in eu-west-1", w.cluster),
        &format!("https://{closed}"),
    );
    let secrets = w.secrets();
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    assert_no_secrets(&secrets, &[&deploy.all()]);
}

/// A deploy to a cluster nobody answers at: exit 1, the error naming the environment, its
/// cluster and the API server the cloud reported (the error line itself, not the trace log
/// around it).
fn assert_unreachable_named(deploy: &Run, cluster: &str, server: &str) {
    assert_eq!(deploy.code, 1, "{}", deploy.stderr);
    let error = deploy
        .stderr
        .lines()
        .find(|l| l.contains("cannot reach the cluster"))
        .unwrap_or_else(|| panic!("no error line:\n{}", deploy.stderr));
    for expected in ["`prod`", cluster, &format!("API server {server}")] {
        assert!(error.contains(expected), "missing {expected}: {error}");
    }
    assert!(
        deploy.stderr.contains("can reach its API server"),
        "the help says what to check: {}",
        deploy.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreachable_aks_cluster_endpoint_fails_the_deploy_with_a_message() {
    support::init();
    let front = ClusterFront::start("http://127.0.0.1:9", Arc::new(|_: &str| true)).await;
    let w = AksWorld::new(&front, aad_token("6dae42f8-4368-4678-94ff-3960e28e3630")).await;
    // listClusterUserCredential points at a port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let server = format!("https://{closed}");
    mount_user_credential(&w.arm, "shop-down", &w.arm_token, &server, &front.ca_data()).await;
    w.write_config(&w.dir.path().join("azure-token"), "shop-down");
    copy_manifests(w.dir.path());
    let deploy = ferry(
        w.dir.path(),
        &["deploy", "--env", "prod", "--tag", "abc1234"],
        &[],
    );
    assert_unreachable_named(
        &deploy,
        "aks cluster shop-aks in resource group shop-down",
        &server,
    );
    let secrets = w.secrets();
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    assert_no_secrets(&secrets, &[&deploy.all()]);
}
