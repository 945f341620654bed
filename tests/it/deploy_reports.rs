//! What `ferry deploy`, `diff` and `status` tell the user is true: one JSON document from
//! `diff -o json`, every problem in JSON results (render errors too), no false problems for a
//! Namespace that already exists, "did you mean" for typos, and a warning for a Service that
//! selects nothing.

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::Api;
use kube::api::PostParams;
use serde_json::Value;

use super::deploy_support::{Cluster, app_dir, config_of};
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
    app_dir("shop", "shop", &[("web", "shop/web")], manifests, "")
}

fn cfg(dir: &tempfile::TempDir) -> String {
    config_of(dir)
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

/// With `GITHUB_ACTIONS=true` every outcome says so the GitHub way: invalid input gets
/// `::error file=,line=,col=::` annotations (at most 10, the rest counted in the summary) and
/// outputs; a success gets a summary with the tag, images, objects and duration; a failure's
/// summary starts with its heading and folds each failing resource's events and logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_actions_mode_covers_every_outcome() {
    let cluster = Cluster::start(20.0).await;
    let dir = app(&SHOP.replace("      serviceAccountName: runner\n", ""));
    let c = cfg(&dir);
    let gh = tempfile::tempdir().unwrap();
    let output = gh.path().join("output");
    let summary = gh.path().join("summary");
    let workspace = dir.path().display().to_string();
    let vars = [
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_OUTPUT", output.to_str().unwrap()),
        ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
        ("GITHUB_WORKSPACE", workspace.as_str()),
    ];
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
    let reset = || {
        let _ = std::fs::remove_file(&output);
        let _ = std::fs::remove_file(&summary);
    };

    // Success.
    let out = cluster
        .ferry_with_env(
            &["deploy", "--config", &c, "--env", "local", "--tag", "gh1"],
            &vars,
        )
        .await;
    assert_eq!(code(&out), 0, "{}\n{}", stdout(&out), stderr(&out));
    let s = read(&summary);
    assert!(
        s.starts_with("### ferry: local — deployed (release v1)"),
        "{s}"
    );
    assert!(s.contains("| tag | `gh1` |"), "{s}");
    assert!(
        s.contains("| objects | 3 created, 0 updated, 0 replaced, 0 pruned |"),
        "{s}"
    );
    assert!(s.contains("| duration | "), "{s}");
    assert!(s.contains("- `web`: `shop/web:gh1`"), "{s}");

    // Invalid input: 12 unknown fields, 10 annotations.
    reset();
    let mut bad = String::new();
    for i in 0..12 {
        bad.push_str(&format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{i}\n  namespace: shop\ndta:\n  a: b\n"
        ));
    }
    std::fs::write(dir.path().join("k8s/bad.yaml"), bad).unwrap();
    let out = cluster
        .ferry_with_env(
            &["deploy", "--config", &c, "--env", "local", "--tag", "gh2"],
            &vars,
        )
        .await;
    assert_eq!(code(&out), 3, "{}\n{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    let annotations: Vec<&str> = text.lines().filter(|l| l.starts_with("::error ")).collect();
    assert_eq!(annotations.len(), 10, "{}", stdout(&out));
    assert!(
        annotations[0].starts_with("::error file=k8s/bad.yaml,line=7,col=1,title=ferry::ConfigMap c0: unknown field \"dta\""),
        "{}",
        annotations[0]
    );
    let s = read(&summary);
    assert!(
        s.starts_with("### ferry: invalid — the release is invalid (12 problems)"),
        "{s}"
    );
    assert!(s.contains("2 more problems than the 10 annotations"), "{s}");
    let o = read(&output);
    assert!(
        o.contains("status=invalid") && o.contains("exit_code=3"),
        "{o}"
    );
    std::fs::remove_file(dir.path().join("k8s/bad.yaml")).unwrap();

    // A failure, rolled back: the heading first, then the folded report.
    reset();
    let mut config = ferry_sim::SimConfig {
        speed: 20.0,
        ..ferry_sim::SimConfig::default()
    };
    config.images.push(ferry_sim::ImageRule::new(
        "shop/web:bad*",
        ferry_sim::ImageBehaviour::PullForever,
    ));
    cluster.sim.set_config(config).unwrap();
    let out = cluster
        .ferry_with_env(
            &["deploy", "--config", &c, "--env", "local", "--tag", "bad3"],
            &vars,
        )
        .await;
    assert_eq!(code(&out), 7, "{}\n{}", stdout(&out), stderr(&out));
    let s = read(&summary);
    assert!(
        s.starts_with("### ferry: local — rolled-back (release v2)"),
        "{s}"
    );
    assert!(
        s.contains("<details><summary><b>Deployment shop/web</b> failed:"),
        "{s}"
    );
    assert!(
        s.contains("ImagePullBackOff") || s.contains("ErrImagePull"),
        "{s}"
    );
    assert!(
        stderr(&out).contains("::group::FAILED Deployment shop/web"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("::endgroup::"), "{}", stderr(&out));
}

/// `ferry validate` finds what `deploy` finds before the cluster is asked: an object defined
/// twice, a FIFO and a symlink loop in the manifests tree, each at its path, exit 3.
#[test]
fn validate_finds_duplicates_fifos_and_symlink_loops() {
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: b}\n";
    let dir = app(&format!("{cm}---\n{cm}"));
    let c = cfg(&dir);
    let out = super::ferry(["validate", "--config", &c]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("ConfigMap shop/settings is defined twice"),
        "{}",
        stderr(&out)
    );
    let dir = app(cm);
    let c = cfg(&dir);
    let fifo = dir.path().join("k8s/pipe.yaml");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let out = super::ferry(["validate", "--config", &c]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("pipe.yaml:0:0: not a regular file"),
        "{}",
        stderr(&out)
    );
    std::fs::remove_file(&fifo).unwrap();
    std::fs::create_dir_all(dir.path().join("k8s/sub")).unwrap();
    std::os::unix::fs::symlink("..", dir.path().join("k8s/sub/loop")).unwrap();
    let out = super::ferry(["validate", "--config", &c]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(stderr(&out).contains("a symlink loop"), "{}", stderr(&out));
}
