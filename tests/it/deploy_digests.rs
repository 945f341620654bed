//! Image pinning against the real reference registry: the app's image tag is resolved to its
//! digest, the Deployment runs `repo:tag@digest`, and the release records both; the digest
//! is the one skopeo (an independent client) reports.

use std::path::Path;
use std::process::Command;

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use serde_json::{Value, json};
use sha2::Digest as _;

use super::deploy_support::{Cluster, write_config};
use super::{code, stderr, stdout};

fn blob(dir: &Path, bytes: &[u8]) -> (String, usize) {
    let hex = hex::encode(sha2::Sha256::digest(bytes));
    std::fs::write(dir.join("blobs/sha256").join(&hex), bytes).unwrap();
    (format!("sha256:{hex}"), bytes.len())
}

/// A one-layer OCI image layout (an empty tar layer), tagged `tag`.
fn oci_layout(dir: &Path, tag: &str) {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let layer = vec![0u8; 1024]; // an empty tar archive
    let (layer_digest, layer_size) = blob(dir, &layer);
    let config = json!({"architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]}, "config": {}});
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_images_are_deployed_by_digest_and_recorded() {
    let registry = ferry_testkit::server("FERRY_TEST_REGISTRY_NOAUTH");
    let repo = format!("{registry}/ferry-e2e-digests-{}/api", std::process::id());
    let layout = tempfile::tempdir().unwrap();
    oci_layout(layout.path(), "c0ffee1");
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:c0ffee1", layout.path().display()),
        &format!("docker://{repo}:c0ffee1"),
    ]);
    let inspected: Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{repo}:c0ffee1"),
    ]))
    .unwrap();
    let digest = inspected["Digest"].as_str().unwrap().to_owned();

    let cluster = Cluster::start(20.0).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("k8s")).unwrap();
    std::fs::write(
        dir.path().join("k8s/app.yaml"),
        format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: pinned}}\n---\napiVersion: apps/v1\nkind: Deployment\n\
             metadata: {{name: api, namespace: pinned}}\nspec:\n  replicas: 1\n  selector: {{matchLabels: {{app: api}}}}\n\
             \x20 template:\n    metadata: {{labels: {{app: api}}}}\n    spec:\n      containers:\n        - name: api\n          image: {repo}:latest\n"
        ),
    )
    .unwrap();
    let cfg = write_config(
        dir.path(),
        "pinned",
        &[("api", repo.as_str())],
        &format!(
            "namespace = \"pinned\"\nresolve_digests = true\ninsecure_registries = [\"{registry}\"]\n"
        ),
    );
    let cfg = cfg.display().to_string();
    let out = cluster
        .ferry(&[
            "deploy", "--config", &cfg, "--env", "local", "--tag", "c0ffee1",
        ])
        .await;
    assert_eq!(code(&out), 0, "{}\n{}", stdout(&out), stderr(&out));

    let api: Api<Deployment> = Api::namespaced(cluster.client().await, "pinned");
    let image = api
        .get("api")
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
        .unwrap();
    assert_eq!(image, format!("{repo}:c0ffee1@{digest}"));

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
