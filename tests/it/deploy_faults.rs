//! Deploys that survive the network and other actors: a fault campaign (500s, 429s and dropped
//! connections injected by the simulator), objects that are not ferry's, and what a failed
//! release left behind.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::Value;

use super::deploy_support::{Cluster, app_dir, config_of};
use super::{code, stderr, stdout};

pub(crate) const APP: &str = r#"apiVersion: v1
kind: Namespace
metadata:
  name: demo
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {round}
  namespace: demo
data: {a: b}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: demo
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: demo/web:placeholder
"#;

fn app(round: &str, extra: &str) -> tempfile::TempDir {
    app_dir(
        "demo",
        "demo",
        &[("web", "demo/web")],
        &APP.replace("{round}", round),
        extra,
    )
}

fn set_round(dir: &tempfile::TempDir, round: &str) {
    std::fs::write(
        dir.path().join("k8s/app.yaml"),
        APP.replace("{round}", round),
    )
    .unwrap();
}

fn cfg(dir: &tempfile::TempDir) -> String {
    config_of(dir)
}

/// The labelled ConfigMaps in the cluster, read until the (faulty) server answers.
async fn labelled_config_maps(client: &kube::Client) -> BTreeSet<String> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "demo");
    for _ in 0..50 {
        if let Ok(list) = api
            .list(&ListParams::default().labels("ferry.dev/release=demo.local"))
            .await
        {
            return list
                .items
                .into_iter()
                .filter_map(|c| c.metadata.name)
                .collect();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the simulator never answered the list");
}

/// 100 deploys through 5% 500s, 2% 429s and 1% dropped connections on every request,
/// alternating good releases and releases whose image never pulls: each ends 0, 7 (or 8 when
/// the rollback itself was faulted past its retries), and afterwards no record is pending, one
/// is deployed, no lock is left, and the cluster holds exactly the current release's objects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_deploys_through_a_faulty_network_keep_history_true() {
    let mut config = ferry_sim::SimConfig {
        speed: 40.0,
        ..ferry_sim::SimConfig::default()
    };
    config.images.push(ferry_sim::ImageRule::new(
        "demo/web:bad*",
        ferry_sim::ImageBehaviour::PullForever,
    ));
    config.faults.per_verb.insert(
        "*".into(),
        ferry_sim::FaultRates {
            error_500: 0.05,
            throttle_429: 0.02,
            timeout: 0.0,
            drop: 0.01,
        },
    );
    config.faults.retry_after_seconds = 0;
    let cluster = Cluster::with_config(config).await;
    let dir = app("round-0", "");
    let c = cfg(&dir);
    let mut exits = std::collections::BTreeMap::<i32, usize>::new();
    let mut retried = 0;
    for round in 0..100 {
        let good = round % 2 == 0;
        set_round(&dir, &format!("round-{round}"));
        let tag = if good {
            format!("good{round}")
        } else {
            format!("bad{round}")
        };
        let out = cluster
            .ferry(&[
                "deploy", "--config", &c, "--env", "local", "--tag", &tag, "-o", "json",
            ])
            .await;
        let e = code(&out);
        retried += stdout(&out).matches("\"event\":\"retried\"").count();
        let allowed: &[i32] = if good { &[0, 8] } else { &[7, 8] };
        assert!(
            allowed.contains(&e),
            "round {round} ({tag}): exit {e}\n{}\n{}",
            stdout(&out),
            stderr(&out)
        );
        *exits.entry(e).or_default() += 1;
    }
    assert!(retried > 50, "the faults were retried {retried} times");
    // A last good deploy repairs whatever an exit 8 left, then the invariants hold.
    set_round(&dir, "final");
    let out = cluster
        .ferry(&[
            "deploy", "--config", &c, "--env", "local", "--tag", "final", "-o", "json",
        ])
        .await;
    assert_eq!(code(&out), 0, "{}\n{}", stdout(&out), stderr(&out));
    let out = cluster
        .ferry(&["history", "--config", &c, "--env", "local", "-o", "json"])
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let history: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let releases = history["releases"].as_array().unwrap();
    assert!(
        releases.iter().all(|r| r["status"] != "pending"),
        "{releases:#?}"
    );
    assert_eq!(
        releases
            .iter()
            .filter(|r| r["status"] == "deployed")
            .count(),
        1,
        "{releases:#?}"
    );
    let client = cluster.client().await;
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client.clone(), "demo");
    let mut lease_gone = false;
    for _ in 0..50 {
        if let Ok(l) = leases.get_opt("ferry.lock.demo.local").await {
            lease_gone = l.is_none();
            break;
        }
    }
    assert!(lease_gone, "the lock is left");
    // 0 orphans: the only ConfigMap labelled as this app's is the current release's.
    assert_eq!(
        labelled_config_maps(&client).await,
        BTreeSet::from(["final".to_owned()]),
        "exits: {exits:?}"
    );
}

/// An object someone else made (`kubectl create configmap`) is never taken over by accident,
/// even when the release's copy is identical: exit 3 naming it and who made it. `--adopt` takes
/// it on purpose, and a later release that drops it does not delete it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_that_are_not_ferrys_are_adopted_only_on_purpose() {
    let cluster = Cluster::start(20.0).await;
    let client = cluster.client().await;
    let ns: k8s_openapi::api::core::v1::Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "demo"}})).unwrap();
    Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let theirs: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "settings", "namespace": "demo"}, "data": {"a": "b"}}))
    .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "demo");
    cms.create(
        &PostParams {
            field_manager: Some("kubectl-create".into()),
            ..PostParams::default()
        },
        &theirs,
    )
    .await
    .unwrap();
    let dir = app("settings", "");
    let c = cfg(&dir);
    let before = cluster.sim.metrics().total_writes();
    let out = cluster
        .ferry(&["deploy", "--config", &c, "--env", "local", "--tag", "a1"])
        .await;
    let err = stderr(&out);
    assert_eq!(code(&out), 3, "{}\n{err}", stdout(&out));
    assert!(err.contains("ConfigMap settings"), "{err}");
    assert!(err.contains("kubectl-create"), "{err}");
    assert!(err.contains("--adopt"), "{err}");
    assert_eq!(cluster.sim.metrics().total_writes(), before);

    let out = cluster
        .ferry(&[
            "deploy", "--config", &c, "--env", "local", "--tag", "a1", "--adopt",
        ])
        .await;
    assert_eq!(code(&out), 0, "{}\n{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains("adopted"), "{}", stderr(&out));
    let out = cluster
        .ferry(&["history", "--config", &c, "--env", "local", "-o", "json"])
        .await;
    assert!(
        stdout(&out).contains("deployed; adopted ConfigMap demo/settings"),
        "{}",
        stdout(&out)
    );

    // Its next release drops it: it was someone else's, so it stays.
    set_round(&dir, "other");
    let out = cluster
        .ferry(&["deploy", "--config", &c, "--env", "local", "--tag", "a2"])
        .await;
    assert_eq!(code(&out), 0, "{}\n{}", stdout(&out), stderr(&out));
    assert!(cms.get_opt("settings").await.unwrap().is_some());
    // The namespace existed before ferry: ferry does not claim it.
    let ns = Api::<k8s_openapi::api::core::v1::Namespace>::all(client)
        .get("demo")
        .await
        .unwrap();
    assert!(
        !ns.metadata
            .labels
            .unwrap_or_default()
            .contains_key("ferry.dev/release")
    );
}

/// A release that failed without a rollback (and so never became current) created an object:
/// the next release that does not have it prunes it, because every record lists its objects
/// before its first write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_failed_release_created_is_pruned_by_the_next() {
    let mut config = ferry_sim::SimConfig {
        speed: 20.0,
        ..ferry_sim::SimConfig::default()
    };
    config.images.push(ferry_sim::ImageRule::new(
        "demo/web:bad*",
        ferry_sim::ImageBehaviour::PullForever,
    ));
    let cluster = Cluster::with_config(config).await;
    let dir = app("one", "");
    let c = cfg(&dir);
    let deploy = |tag: &'static str, extra: &'static [&'static str]| {
        let c = c.clone();
        let cluster = &cluster;
        async move {
            let mut args = vec![
                "deploy",
                "--config",
                c.as_str(),
                "--env",
                "local",
                "--tag",
                tag,
            ];
            args.extend_from_slice(extra);
            cluster.ferry(&args).await
        }
    };
    let out = deploy("good1", &[]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    set_round(&dir, "left-behind");
    let out = deploy("bad2", &["--no-rollback"]).await;
    assert_eq!(code(&out), 8, "{}", stderr(&out));
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client().await, "demo");
    assert!(cms.get_opt("left-behind").await.unwrap().is_some());
    set_round(&dir, "three");
    let out = deploy("good3", &[]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("pruned ConfigMap demo/left-behind"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("pruned ConfigMap demo/one"),
        "{}",
        stderr(&out)
    );
    assert!(cms.get_opt("left-behind").await.unwrap().is_none());
}

/// `--prune-namespaces` deletes a Namespace the release dropped only when it holds nothing but
/// this app's objects; otherwise it is kept and what is inside is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_is_pruned_only_when_it_holds_only_this_apps_objects() {
    let cluster = Cluster::start(20.0).await;
    let dir = app("one", "");
    let extra = "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: extra\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: mine\n  namespace: extra\ndata: {a: b}\n";
    std::fs::write(dir.path().join("k8s/extra.yaml"), extra).unwrap();
    let c = cfg(&dir);
    let out = cluster
        .ferry(&["deploy", "--config", &c, "--env", "local", "--tag", "p1"])
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let theirs: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "theirs", "namespace": "extra"}, "data": {"a": "b"}}))
    .unwrap();
    let client = cluster.client().await;
    Api::<ConfigMap>::namespaced(client.clone(), "extra")
        .create(&PostParams::default(), &theirs)
        .await
        .unwrap();
    std::fs::remove_file(dir.path().join("k8s/extra.yaml")).unwrap();
    let out = cluster
        .ferry(&[
            "deploy",
            "--config",
            &c,
            "--env",
            "local",
            "--tag",
            "p2",
            "--prune-namespaces",
        ])
        .await;
    let err = stderr(&out);
    assert_eq!(code(&out), 0, "{err}");
    assert!(err.contains("pruned ConfigMap extra/mine"), "{err}");
    assert!(
        err.contains(
            "kept Namespace extra: it holds objects that are not this app's: ConfigMap theirs"
        ),
        "{err}"
    );
    let ns = Api::<k8s_openapi::api::core::v1::Namespace>::all(client)
        .get("extra")
        .await
        .unwrap();
    assert!(ns.metadata.deletion_timestamp.is_none());
}

/// A kubeconfig that skips TLS verification gets a warning on every run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubeconfig_that_skips_tls_verification_is_warned_of() {
    let cluster = Cluster::start(20.0).await;
    let text = std::fs::read_to_string(cluster.kubeconfig()).unwrap();
    let mut kc: serde_json::Value = serde_norway::from_str(&text).unwrap();
    kc["clusters"][0]["cluster"]["insecure-skip-tls-verify"] = serde_json::json!(true);
    let insecure = cluster.dir.path().join("insecure-kubeconfig");
    std::fs::write(&insecure, serde_norway::to_string(&kc).unwrap()).unwrap();
    let dir = app("one", "");
    let c = cfg(&dir);
    let out = cluster
        .ferry_with_env(
            &["history", "--config", &c, "--env", "local"],
            &[("KUBECONFIG", insecure.to_str().unwrap())],
        )
        .await;
    assert!(
        stderr(&out)
            .contains("with insecure-skip-tls-verify: the API server's certificate is not checked"),
        "{}",
        stderr(&out)
    );
}
