//! Image pinning against the real reference registry: the app's image tag is resolved to its
//! digest, the Deployment runs `repo:tag@digest`, and the release records both; the digest
//! is the one skopeo (an independent client) reports.

use std::path::Path;
use std::process::Command;

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use serde_json::{Value, json};
use sha2::Digest as _;

use super::deploy_support::{Cluster, sim_config_with, write_config};
use super::{code, stderr, stdout};

fn blob(dir: &Path, bytes: &[u8]) -> (String, usize) {
    let hex = hex::encode(sha2::Sha256::digest(bytes));
    std::fs::write(dir.join("blobs/sha256").join(&hex), bytes).unwrap();
    (format!("sha256:{hex}"), bytes.len())
}

/// A one-layer OCI image layout (an empty tar layer), tagged `tag`; its config carries the tag as
/// a label, so each tag is its own image with its own digest.
fn oci_layout(dir: &Path, tag: &str) {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let layer = vec![0u8; 1024]; // an empty tar archive
    let (layer_digest, layer_size) = blob(dir, &layer);
    let config = json!({"architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]}, "config": {"Labels": {"tag": tag}}});
    let (config_digest, config_size) = blob(dir, config.to_string().as_bytes());
    let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer_size}]});
    let (manifest_digest, manifest_size) = blob(dir, manifest.to_string().as_bytes());
    let index = json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": manifest_digest, "size": manifest_size, "annotations": {"org.opencontainers.image.ref.name": tag}}]});
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
}

fn skopeo(args: &[&str]) -> String {
    let out = Command::new("skopeo")
        .args(args)
        .output()
        .expect("skopeo runs (scripts/servers.sh install)");
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Pushes a one-layer image to `repo:tag` with skopeo (`creds` is `USER:PASSWORD`) and returns
/// the digest skopeo reports for it.
fn push_with_skopeo(repo: &str, tag: &str, creds: Option<&str>) -> String {
    let layout = tempfile::tempdir().unwrap();
    oci_layout(layout.path(), tag);
    let source = format!("oci:{}:{tag}", layout.path().display());
    let dest = format!("docker://{repo}:{tag}");
    let mut copy = vec!["copy", "--dest-tls-verify=false"];
    let mut inspect = vec!["inspect", "--tls-verify=false"];
    if let Some(creds) = creds {
        copy.extend(["--dest-creds", creds]);
        inspect.extend(["--creds", creds]);
    }
    copy.extend([source.as_str(), dest.as_str()]);
    skopeo(&copy);
    inspect.push(&dest);
    let inspected: Value = serde_json::from_str(&skopeo(&inspect)).unwrap();
    inspected["Digest"].as_str().unwrap().to_owned()
}

/// A project whose one Deployment, `api` in namespace `ns`, runs `image`.
fn project(ns: &str, app: &str, repo: &str, image: &str, env_tables: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("k8s")).unwrap();
    std::fs::write(
        dir.path().join("k8s/app.yaml"),
        format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n---\napiVersion: apps/v1\nkind: Deployment\n\
             metadata: {{name: api, namespace: {ns}}}\nspec:\n  replicas: 1\n  selector: {{matchLabels: {{app: api}}}}\n\
             \x20 template:\n    metadata: {{labels: {{app: api}}}}\n    spec:\n      containers:\n        - name: api\n          image: {image}\n"
        ),
    )
    .unwrap();
    write_config(
        dir.path(),
        app,
        &[("api", repo)],
        &format!("namespace = \"{ns}\"\nresolve_digests = true\n{env_tables}"),
    );
    dir
}

async fn deployed_image(cluster: &Cluster, ns: &str) -> String {
    let api: Api<Deployment> = Api::namespaced(cluster.client().await, ns);
    api.get("api")
        .await
        .unwrap()
        .spec
        .unwrap()
        .template
        .spec
        .unwrap()
        .containers[0]
        .image
        .clone()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_images_are_deployed_by_digest_and_recorded() {
    let registry = ferry_testkit::server("FERRY_TEST_REGISTRY_NOAUTH");
    let repo = format!("{registry}/ferry-e2e-digests-{}/api", std::process::id());
    let digest = push_with_skopeo(&repo, "c0ffee1", None);

    let cluster = Cluster::start(20.0).await;
    let dir = project(
        "pinned",
        "pinned",
        &repo,
        &format!("{repo}:latest"),
        &format!("insecure_registries = [\"{registry}\"]\n"),
    );
    let cfg = dir.path().join("ferry.toml").display().to_string();
    let out = cluster
        .ferry(&[
            "deploy", "--config", &cfg, "--env", "local", "--tag", "c0ffee1",
        ])
        .await;
    assert_eq!(code(&out), 0, "{}\n{}", stdout(&out), stderr(&out));
    assert_eq!(
        deployed_image(&cluster, "pinned").await,
        format!("{repo}:c0ffee1@{digest}")
    );

    let out = cluster
        .ferry(&[
            "history", "--config", &cfg, "--env", "local", "--output", "json",
        ])
        .await;
    let history: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let recorded = &history["releases"][0]["images"][0];
    assert_eq!(recorded["tag"], "c0ffee1");
    assert_eq!(recorded["digest"], digest.as_str());

    // A tag the registry does not have is deployed by tag, with a warning.
    let out = cluster
        .ferry(&[
            "diff", "--config", &cfg, "--env", "local", "--tag", "missing9",
        ])
        .await;
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is not on the registry"),
        "{}",
        stderr(&out)
    );
}

/// Seed 002/003/004's set-up: the app's images in ECR. The environment's `[registry]` places
/// `[app.images]` written without a registry in its ECR host, and the digests are resolved
/// through ECR's own login (GetAuthorizationToken, on moto, with the environment's
/// `[auth.aws]` keys) — the same login `ferry image push --env` uses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecr_images_are_resolved_with_the_environments_aws_login() {
    let registry = ferry_testkit::server("FERRY_TEST_REGISTRY_ECR");
    let moto = ferry_testkit::server("FERRY_TEST_MOTO");
    let path = format!("ferry-e2e-ecr-{}/api", std::process::id());
    // moto's ECR login is AWS:123456789012-auth-token; the test registry accepts exactly that.
    let digest = push_with_skopeo(
        &format!("{registry}/{path}"),
        "c0ffee2",
        Some("AWS:123456789012-auth-token"),
    );

    let cluster = Cluster::start(20.0).await;
    let dir = project(
        "ecr",
        "ecr",
        &path,
        &format!("{path}:latest"),
        &format!(
            "\n[env.local.registry]\nprovider = \"ecr\"\nhost = \"{registry}\"\n\n\
             [env.local.auth.aws]\ncredentials = \"static\"\nregion = \"us-east-1\"\nendpoint_url = \"{moto}\"\n"
        ),
    );
    let cfg = dir.path().join("ferry.toml").display().to_string();
    let secret = "ferry-e2e-aws-secret-value";
    let out = cluster
        .ferry_with_env(
            &[
                "deploy", "--config", &cfg, "--env", "local", "--tag", "c0ffee2", "-vv",
            ],
            &[
                ("AWS_ACCESS_KEY_ID", "AKIDFERRYE2E"),
                ("AWS_SECRET_ACCESS_KEY", secret),
            ],
        )
        .await;
    let all = format!("{}\n{}", stdout(&out), stderr(&out));
    assert_eq!(code(&out), 0, "{all}");
    assert!(!all.contains("deploying by tag"), "{all}");
    assert_eq!(
        deployed_image(&cluster, "ecr").await,
        format!("{registry}/{path}:c0ffee2@{digest}")
    );
    assert!(
        !all.contains(secret) && !all.contains("123456789012-auth-token"),
        "a secret was printed:\n{all}"
    );
}

/// A release whose image cannot be pulled is rolled back, and the cluster runs the previous
/// release's image digests again (not just its tags); both digests are in the history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_release_rolls_back_to_the_previous_digests() {
    let registry = ferry_testkit::server("FERRY_TEST_REGISTRY_NOAUTH");
    let repo = format!("{registry}/ferry-e2e-rollback-{}/api", std::process::id());
    let good = push_with_skopeo(&repo, "good1", None);
    let bad = push_with_skopeo(&repo, "bad2", None);
    assert_ne!(good, bad);

    let sim_config = sim_config_with("*:bad2@*", ferry_sim::ImageBehaviour::PullForever);
    let cluster = Cluster::with_config(sim_config).await;
    let dir = project(
        "goback",
        "goback",
        &repo,
        &format!("{repo}:latest"),
        &format!("insecure_registries = [\"{registry}\"]\n"),
    );
    let cfg = dir.path().join("ferry.toml").display().to_string();
    let deploy = |tag: &'static str| {
        let cfg = cfg.clone();
        let cluster = &cluster;
        async move {
            cluster
                .ferry(&["deploy", "--config", &cfg, "--env", "local", "--tag", tag])
                .await
        }
    };
    let out = deploy("good1").await;
    assert_eq!(code(&out), 0, "{}\n{}", stdout(&out), stderr(&out));
    let pinned = format!("{repo}:good1@{good}");
    assert_eq!(deployed_image(&cluster, "goback").await, pinned);

    let out = deploy("bad2").await;
    assert_eq!(code(&out), 7, "{}\n{}", stdout(&out), stderr(&out));
    assert!(
        stderr(&out).contains(&format!("{repo}:bad2@{bad}")),
        "the report names the image that failed:\n{}",
        stderr(&out)
    );
    assert_eq!(deployed_image(&cluster, "goback").await, pinned);

    let out = cluster
        .ferry(&[
            "history", "--config", &cfg, "--env", "local", "--output", "json",
        ])
        .await;
    let history: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let releases = history["releases"].as_array().unwrap();
    let row = |i: usize| {
        (
            releases[i]["status"].as_str().unwrap().to_owned(),
            releases[i]["images"][0]["digest"]
                .as_str()
                .unwrap()
                .to_owned(),
        )
    };
    assert_eq!(row(0), ("deployed".to_owned(), good.clone()), "{history:#}");
    assert_eq!(row(1), ("rolled-back".to_owned(), bad), "{history:#}");
    assert_eq!(row(2), ("superseded".to_owned(), good), "{history:#}");
}
