//! What `ferry deploy`, `diff` and `status` tell the user is true: one JSON document from
//! `diff -o json`, every problem in JSON results (render errors too), no false problems for a
//! Namespace that already exists, "did you mean" for typos, and a warning for a Service that
//! selects nothing.

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::Api;
use kube::api::PostParams;
use serde_json::Value;

use super::deploy_support::{Cluster, write_config};
use super::{code, stderr, stdout};

const SHOP: &str = r#"apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      serviceAccountName: runner
      containers:
        - name: web
          image: shop/web:placeholder
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  selector: {app: wbe}
  ports: [{port: 80}]
"#;

fn app(manifests: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("k8s")).unwrap();
    std::fs::write(dir.path().join("k8s/app.yaml"), manifests).unwrap();
    write_config(
        dir.path(),
        "shop",
        &[("web", "shop/web")],
        "namespace = \"shop\"\ntimeout = \"1m\"\nresolve_digests = false\n",
    );
    dir
}

fn cfg(dir: &tempfile::TempDir) -> String {
    dir.path().join("ferry.toml").display().to_string()
}

/// A release that declares a Namespace which already exists is checked against what the
/// namespace holds (its ServiceAccount is not "missing"), and a Service whose selector matches
/// no pod template gets a warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_namespace_is_checked_as_it_is() {
    let cluster = Cluster::start(20.0).await;
    let client = cluster.client().await;
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "shop"}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let sa: ServiceAccount =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "runner"}})).unwrap();
    Api::<ServiceAccount>::namespaced(client, "shop")
        .create(&PostParams::default(), &sa)
        .await
        .unwrap();
    let dir = app(SHOP);
    let c = cfg(&dir);
    let out = cluster
        .ferry(&["deploy", "--config", &c, "--env", "local", "--tag", "n1"])
        .await;
    let err = stderr(&out);
    assert_eq!(code(&out), 0, "{}\n{err}", stdout(&out));
    assert!(!err.contains("runner"), "{err}");
    assert!(
        err.contains("warning: Service web (") && err.contains("its selector app=wbe matches no pod template of the release and no pod in namespace shop"),
        "{err}"
    );
}

/// `ferry diff -o json` prints exactly one JSON document on stdout, on success and on failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_json_is_one_document() {
    let cluster = Cluster::start(20.0).await;
    let dir = app(&SHOP.replace("      serviceAccountName: runner\n", ""));
    let c = cfg(&dir);
    let out = cluster
        .ferry(&[
            "diff", "--config", &c, "--env", "local", "--tag", "d1", "-o", "json",
        ])
        .await;
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    let doc: Value =
        serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {:?}", stdout(&out)));
    assert_eq!(doc["changed"], 3, "{doc:#}");
    // Invalid: still one document, with the problem.
    std::fs::write(dir.path().join("k8s/bad.yaml"), "a: [\n").unwrap();
    let out = cluster
        .ferry(&[
            "diff", "--config", &c, "--env", "local", "--tag", "d1", "-o", "json",
        ])
        .await;
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let doc: Value =
        serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {:?}", stdout(&out)));
    assert_eq!(doc["exit_code"], 3, "{doc:#}");
    let at = doc["problems"][0]["at"].as_str().unwrap();
    assert!(at.ends_with("bad.yaml:2:1"), "{doc:#}");
}

/// `ferry deploy -o json` ends with a result that carries a render error as a problem (not
/// only on stderr), and a typo gets "did you mean".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_results_and_typos_carry_every_problem() {
    let cluster = Cluster::start(20.0).await;
    let dir = app("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a\n");
    let c = cfg(&dir);
    let out = cluster
        .ferry(&[
            "deploy", "--config", &c, "--env", "local", "--tag", "r1", "-o", "json",
        ])
        .await;
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let result: Value = stdout(&out)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["event"] == "result")
        .unwrap();
    let problems = result["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{result:#}");
    assert!(
        problems[0]["at"].as_str().unwrap().contains("app.yaml:"),
        "{result:#}"
    );

    let out = cluster
        .ferry(&["deploy", "--config", &c, "--env", "locl", "--tag", "r1"])
        .await;
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("did you mean `local`?"),
        "{}",
        stderr(&out)
    );
    let out = cluster
        .ferry(&["validate", "--config", &c, "--env", "locl"])
        .await;
    assert!(
        stderr(&out).contains("did you mean `local`?"),
        "{}",
        stderr(&out)
    );
}
