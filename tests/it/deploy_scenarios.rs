//! `ferry deploy` end to end against ferry-sim: the seed examples on the embedded default, a
//! failing image rolled back, an idempotent redeploy, concurrent deploys, a killed deploy, and
//! pruning.

use std::path::Path;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use serde_json::Value;

use super::deploy_support::{Cluster, copy_dir, sim_config_with, write_config};
use super::{code, root, stderr, stdout};

const APP: &str = r#"apiVersion: v1
kind: Namespace
metadata:
  name: demo
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: demo
data:
  mode: "{mode}"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: demo
spec:
  replicas: 2
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: demo/web:placeholder
          envFrom: [{configMapRef: {name: settings}}]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  namespace: demo
spec:
  replicas: 2
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers:
        - name: api
          image: demo/api:placeholder
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: demo
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
"#;

fn app_dir(deploy_extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("k8s")).unwrap();
    std::fs::write(
        dir.path().join("k8s/app.yaml"),
        APP.replace("{mode}", "one"),
    )
    .unwrap();
    write_config(
        dir.path(),
        "demo",
        &[("web", "demo/web"), ("api", "demo/api")],
        &format!(
            "namespace = \"demo\"\ntimeout = \"2m\"\nlock_ttl = \"3s\"\nresolve_digests = false\n{deploy_extra}"
        ),
    );
    dir
}

fn config(dir: &Path) -> String {
    dir.join("ferry.toml").display().to_string()
}

async fn deploy(cluster: &Cluster, dir: &Path, tag: &str, extra: &[&str]) -> std::process::Output {
    let cfg = config(dir);
    let mut args = vec![
        "deploy",
        "--config",
        cfg.as_str(),
        "--env",
        "local",
        "--tag",
        tag,
    ];
    args.extend_from_slice(extra);
    cluster.ferry(&args).await
}

fn history(out: &std::process::Output) -> Vec<Value> {
    let v: Value =
        serde_json::from_str(&stdout(out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)));
    v["releases"].as_array().cloned().unwrap_or_default()
}

async fn image_of(cluster: &Cluster, name: &str) -> String {
    let api: Api<Deployment> = Api::namespaced(cluster.client().await, "demo");
    let d = api.get(name).await.unwrap();
    d.spec.unwrap().template.spec.unwrap().containers[0]
        .image
        .clone()
        .unwrap()
}

/// An example's `local` environment deploys to the embedded simulator, its state persists for
/// `ferry status`, and the simulator's own tracing stays out of the user's output.
async fn example_deploys_to_the_embedded_simulator(name: &str, lb: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&root().join("examples").join(name), dir.path());
    let cfg = dir.path().join("ferry.toml").display().to_string();
    // The cluster here only runs the binary; the example itself uses provider = "sim".
    let cluster = Cluster::start(1.0).await;
    let out = cluster
        .ferry(&[
            "deploy", "--config", &cfg, "--env", "local", "--tag", "4f2a9c1",
        ])
        .await;
    assert_eq!(code(&out), 0, "{name}:\n{}\n{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("deployed release v1"), "{name}: {text}");
    if let Some(lb) = lb {
        assert!(
            text.contains(&format!("load balancer {lb}: ")),
            "{name}: {text}"
        );
    }
    let err = stderr(&out);
    assert!(
        !err.contains(" WARN ") && !err.contains(" ERROR "),
        "{name}: log lines in a default deploy's output:\n{err}"
    );
    // The state persisted: status sees every object of the release ready.
    let out = cluster
        .ferry(&[
            "status", "--config", &cfg, "--env", "local", "--output", "json",
        ])
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["healthy"], true, "{name}: {v:#}");
    assert_eq!(v["release"]["tag"], "4f2a9c1");
    assert!(dir.path().join(".ferry/sim/local.json").is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_004_cloudage_deploys_to_the_embedded_simulator() {
    example_deploys_to_the_embedded_simulator("cloudage", Some("Service cloudage/cloudage")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_000_cloudtolocalllm_deploys_to_the_embedded_simulator() {
    example_deploys_to_the_embedded_simulator(
        "cloudtolocalllm",
        Some("Service cloudtolocalllm/edge"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_002_ode_deploys_to_the_embedded_simulator() {
    example_deploys_to_the_embedded_simulator("ode", Some("Service ode/ode-edge")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_003_devops_platform_dev_overlay_deploys_to_the_embedded_simulator() {
    example_deploys_to_the_embedded_simulator("devops-platform", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_image_is_reported_and_rolled_back() {
    let cluster = Cluster::start(20.0).await;
    let dir = app_dir("");
    let out = deploy(&cluster, dir.path(), "good1", &[]).await;
    assert_eq!(code(&out), 0, "{}\n{}", stdout(&out), stderr(&out));

    let sim_config = sim_config_with("demo/api:bad2", ferry_sim::ImageBehaviour::PullForever);
    cluster.sim.set_config(sim_config).unwrap();
    let started = std::time::Instant::now();
    let out = deploy(&cluster, dir.path(), "bad2", &[]).await;
    let took = started.elapsed();
    let err = stderr(&out);
    assert_eq!(
        code(&out),
        7,
        "want 7 (rolled back):\n{}\n{err}",
        stdout(&out)
    );
    assert!(err.contains("FAILED Deployment demo/api"), "{err}");
    assert!(
        err.contains("ImagePullBackOff") || err.contains("ErrImagePull"),
        "{err}"
    );
    assert!(err.contains("events since the deploy began"), "{err}");
    eprintln!("failure reported and rolled back in {took:?}");

    // The cluster runs the previous images again.
    assert_eq!(image_of(&cluster, "api").await, "demo/api:good1");
    assert_eq!(image_of(&cluster, "web").await, "demo/web:good1");

    let cfg = config(dir.path());
    let out = cluster
        .ferry(&[
            "history", "--config", &cfg, "--env", "local", "--output", "json",
        ])
        .await;
    let h = history(&out);
    let status: Vec<(u64, String)> = h
        .iter()
        .map(|r| {
            (
                r["revision"].as_u64().unwrap(),
                r["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        status,
        vec![
            (3, "deployed".into()),
            (2, "rolled-back".into()),
            (1, "superseded".into())
        ],
        "{h:#?}"
    );
    assert_eq!(h[0]["tag"], "good1");

    // The text table: newest first, each row's statuses and tags, no padding after the last
    // column (the failed release's description is long).
    let out = cluster
        .ferry(&["history", "--config", &cfg, "--env", "local"])
        .await;
    let text = stdout(&out);
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert!(
        rows[0].contains("v3") && rows[1].contains("rolled-back") && rows[2].contains("v1"),
        "{text}"
    );
    assert!(text.lines().all(|l| l == l.trim_end()), "{text:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_release_twice_makes_no_writes() {
    let cluster = Cluster::start(20.0).await;
    let dir = app_dir("");
    let out = deploy(&cluster, dir.path(), "same1", &[]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let before = cluster.sim.metrics().total_writes();
    let out = deploy(&cluster, dir.path(), "same1", &[]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("nothing changed"), "{}", stdout(&out));
    let after = cluster.sim.metrics().total_writes();
    assert_eq!(
        after - before,
        0,
        "a no-op redeploy wrote {} times",
        after - before
    );
    let cfg = config(dir.path());
    let out = cluster
        .ferry(&["diff", "--config", &cfg, "--env", "local", "--tag", "same1"])
        .await;
    assert_eq!(code(&out), 0, "{}\n{}", stdout(&out), stderr(&out));
    // ... and a real change is a diff (exit 6) naming the object.
    std::fs::write(
        dir.path().join("k8s/app.yaml"),
        APP.replace("{mode}", "two"),
    )
    .unwrap();
    let out = cluster
        .ferry(&["diff", "--config", &cfg, "--env", "local", "--tag", "same1"])
        .await;
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("update ConfigMap demo/settings"),
        "{}",
        stdout(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deploys_run_one_at_a_time() {
    let cluster = Cluster::start(20.0).await;
    let dir = app_dir("");
    let out = deploy(&cluster, dir.path(), "base0", &[]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let first_seq = cluster.sim.request_log().last().map_or(0, |r| r.seq);
    let runs: Vec<_> = (1..=10)
        .map(|i| {
            let tag = format!("run{i}");
            let dir = dir.path().to_owned();
            let cluster = &cluster;
            async move { deploy(cluster, &dir, &tag, &[]).await }
        })
        .collect();
    let outs = futures::future::join_all(runs).await;
    for (i, out) in outs.iter().enumerate() {
        assert_eq!(
            code(out),
            0,
            "run {}:\n{}\n{}",
            i + 1,
            stdout(out),
            stderr(out)
        );
        assert!(
            stdout(out).contains("deployed release v"),
            "{}",
            stdout(out)
        );
    }
    // Writes come in one block per deploy: once another client has written, an earlier one
    // never writes again.
    let log = cluster.sim.request_log();
    let writers: Vec<&str> = log
        .iter()
        .filter(|r| r.seq > first_seq && r.wrote && r.user_agent.starts_with("ferry/"))
        .map(|r| r.user_agent.as_str())
        .collect();
    let mut finished: Vec<&str> = Vec::new();
    for w in writers.windows(2) {
        if w[0] != w[1] {
            assert!(
                !finished.contains(&w[1]),
                "{} wrote again after {} had written",
                w[1],
                w[0]
            );
            finished.push(w[0]);
        }
    }
    assert_eq!(
        finished.len(),
        9,
        "10 deploys wrote in {} blocks",
        finished.len() + 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_deploy_blocks_the_next_one_at_most_the_lease_ttl() {
    // The first release's api becomes ready only after a long while: the deploy is killed
    // while it waits, holding the lock.
    let sim_config = sim_config_with(
        "demo/api:slow1",
        ferry_sim::ImageBehaviour::SlowReady {
            after: std::time::Duration::from_secs(36_000),
        },
    );
    let cluster = Cluster::with_config(sim_config).await;
    let dir = app_dir("");
    let cfg = config_path(dir.path());
    let mut child = std::process::Command::new(ferry_testkit::ferry_bin())
        .args([
            "deploy", "--config", &cfg, "--env", "local", "--tag", "slow1",
        ])
        .env("KUBECONFIG", cluster.kubeconfig())
        .env("CI", "true")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until it has applied the api Deployment (it then waits for health, lock held).
    let client = cluster.client().await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "demo");
    for _ in 0..600 {
        if deployments.get_opt("api").await.ok().flatten().is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    child.kill().unwrap(); // SIGKILL
    let _ = child.wait();

    let out = cluster
        .ferry(&[
            "deploy", "--config", &cfg, "--env", "local", "--tag", "after2", "--output", "json",
        ])
        .await;
    assert_eq!(code(&out), 0, "{}\n{}", stdout(&out), stderr(&out));
    let events: Vec<Value> = stdout(&out)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    for e in events.iter().filter(|e| e["event"] == "lock-waiting") {
        assert!(e["expires_in_secs"].as_u64().unwrap() <= 3, "{e}");
    }
    assert_eq!(image_of(&cluster, "api").await, "demo/api:after2");
    let out = cluster
        .ferry(&[
            "history", "--config", &cfg, "--env", "local", "--output", "json",
        ])
        .await;
    let h = history(&out);
    assert_eq!(h[0]["status"], "deployed");
    assert_eq!(h[1]["status"], "failed");
    assert!(
        h[1]["description"]
            .as_str()
            .unwrap()
            .contains("interrupted"),
        "{h:#?}"
    );
}

fn config_path(dir: &Path) -> String {
    config(dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruning_removes_exactly_what_the_release_dropped() {
    let cluster = Cluster::start(20.0).await;
    let dir = app_dir("");
    let extra = "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: dropped, namespace: demo}\ndata: {a: b}\n\
                 ---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: handed-over, namespace: demo}\ndata: {a: b}\n\
                 ---\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: cache, namespace: demo}\n\
                 spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n";
    std::fs::write(dir.path().join("k8s/extra.yaml"), extra).unwrap();
    let out = deploy(&cluster, dir.path(), "p1", &[]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    let client = cluster.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "demo");
    // Someone else's ConfigMap in the same namespace, and one ferry applied that someone else
    // has since taken over (the owner label removed).
    let foreign: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "foreign", "namespace": "demo"}, "data": {"x": "y"}
    }))
    .unwrap();
    cms.create(&Default::default(), &foreign).await.unwrap();
    let patch = serde_json::json!({"metadata": {"labels": {"ferry.dev/release": null}}});
    cms.patch(
        "handed-over",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&patch),
    )
    .await
    .unwrap();

    std::fs::remove_file(dir.path().join("k8s/extra.yaml")).unwrap();
    let out = deploy(&cluster, dir.path(), "p2", &[]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("pruned ConfigMap demo/dropped"), "{err}");
    assert!(err.contains("kept ConfigMap demo/handed-over"), "{err}");
    assert!(
        err.contains("kept PersistentVolumeClaim demo/cache"),
        "{err}"
    );
    assert!(cms.get_opt("dropped").await.unwrap().is_none());
    assert!(cms.get_opt("foreign").await.unwrap().is_some());
    assert!(cms.get_opt("handed-over").await.unwrap().is_some());
    assert!(cms.get_opt("settings").await.unwrap().is_some());
    let pvcs: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> =
        Api::namespaced(client, "demo");
    assert!(pvcs.get_opt("cache").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_that_never_becomes_ready_times_out_naming_the_resource() {
    let sim_config = sim_config_with("demo/api:stuck1", ferry_sim::ImageBehaviour::NeverReady);
    let cluster = Cluster::with_config(sim_config).await;
    let dir = app_dir("");
    let out = deploy(&cluster, dir.path(), "stuck1", &["--timeout", "3s"]).await;
    let err = stderr(&out);
    // No previous release to go back to: the deadline passed (9), naming what was not ready.
    assert_eq!(code(&out), 9, "{}\n{err}", stdout(&out));
    assert!(err.contains("FAILED Deployment demo/api"), "{err}");
    assert!(err.contains("timeout passed"), "{err}");
    assert!(!err.contains("FAILED Deployment demo/web"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_actions_get_annotations_outputs_and_a_summary() {
    let cluster = Cluster::start(20.0).await;
    let dir = app_dir("");
    let gh = tempfile::tempdir().unwrap();
    let output = gh.path().join("output");
    let summary = gh.path().join("summary");
    let cfg = config(dir.path());
    let vars = [
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_OUTPUT", output.to_str().unwrap()),
        ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
        ("GITHUB_SHA", "feed123"),
        ("GITHUB_RUN_ID", "77"),
    ];
    // The tag comes from GITHUB_SHA.
    let out = cluster
        .ferry_with_env(&["deploy", "--config", &cfg, "--env", "local"], &vars)
        .await;
    assert_eq!(code(&out), 0, "{}\n{}", stdout(&out), stderr(&out));
    assert_eq!(image_of(&cluster, "web").await, "demo/web:feed123");
    let outputs = std::fs::read_to_string(&output).unwrap();
    assert!(outputs.contains("status=deployed"), "{outputs}");
    assert!(outputs.contains("revision=1"), "{outputs}");
    assert!(outputs.contains("load_balancer="), "{outputs}");
    assert!(
        std::fs::read_to_string(&summary)
            .unwrap()
            .contains("deployed")
    );

    let sim_config = sim_config_with("demo/api:dead2", ferry_sim::ImageBehaviour::Crash);
    cluster.sim.set_config(sim_config).unwrap();
    let out = cluster
        .ferry_with_env(
            &[
                "deploy", "--config", &cfg, "--env", "local", "--tag", "dead2",
            ],
            &vars,
        )
        .await;
    assert_eq!(code(&out), 7, "{}\n{}", stdout(&out), stderr(&out));
    let annotations = stdout(&out);
    assert!(
        annotations.contains("::error title=ferry deploy%3A Deployment demo/api::"),
        "{annotations}"
    );
    assert!(annotations.contains("CrashLoopBackOff"), "{annotations}");
    // The crashing container's last log lines are in the report.
    assert!(stderr(&out).contains("last "), "{}", stderr(&out));
    let outputs = std::fs::read_to_string(&output).unwrap();
    assert!(outputs.contains("status=rolled-back"), "{outputs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waves_and_pre_deploy_jobs_come_first() {
    let cluster = Cluster::start(20.0).await;
    let dir = app_dir("");
    let extra = "---\napiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\n  namespace: demo\n  \
                 annotations: {ferry.dev/pre-deploy: \"true\"}\nspec:\n  template:\n    spec:\n      \
                 restartPolicy: Never\n      containers: [{name: migrate, image: \"demo/migrate:1.0\"}]\n\
                 ---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: early\n  namespace: demo\n  \
                 annotations: {ferry.dev/wave: \"-1\"}\ndata: {a: b}\n";
    std::fs::write(dir.path().join("k8s/extra.yaml"), extra).unwrap();
    let out = deploy(&cluster, dir.path(), "w1", &[]).await;
    assert_eq!(code(&out), 0, "{}\n{}", stdout(&out), stderr(&out));
    // The order of the first real write to each object.
    let log = cluster.sim.request_log();
    let first_write = |resource: &str, name: &str| {
        log.iter()
            .find(|r| r.wrote && r.resource == resource && r.name == name && !r.dry_run)
            .map(|r| r.seq)
            .unwrap_or_else(|| panic!("no write to {resource} {name}"))
    };
    let early = first_write("configmaps", "early");
    let settings = first_write("configmaps", "settings");
    let job = first_write("jobs", "migrate");
    let web = first_write("deployments", "web");
    let svc = first_write("services", "web");
    assert!(early < settings, "wave -1 first: {early} vs {settings}");
    assert!(
        settings < job && job < web && web < svc,
        "{settings} {job} {web} {svc}"
    );
    let jobs: Api<k8s_openapi::api::batch::v1::Job> =
        Api::namespaced(cluster.client().await, "demo");
    let status = jobs.get("migrate").await.unwrap().status.unwrap();
    assert_eq!(status.succeeded, Some(1), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_brings_its_own_custom_resource_definition() {
    let cluster = Cluster::start(20.0).await;
    let dir = app_dir("");
    let crd = "---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  \
               name: widgets.example.com\nspec:\n  group: example.com\n  scope: Namespaced\n  names:\n    \
               plural: widgets\n    singular: widget\n    kind: Widget\n  versions:\n    - name: v1\n      \
               served: true\n      storage: true\n      schema:\n        openAPIV3Schema:\n          \
               type: object\n          x-kubernetes-preserve-unknown-fields: true\n\
               ---\napiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: gear\n  namespace: demo\n\
               spec:\n  teeth: 12\n";
    std::fs::write(dir.path().join("k8s/crd.yaml"), crd).unwrap();
    let out = deploy(&cluster, dir.path(), "crd1", &[]).await;
    assert_eq!(code(&out), 0, "{}\n{}", stdout(&out), stderr(&out));
    let before = cluster.sim.metrics().total_writes();
    let out = deploy(&cluster, dir.path(), "crd1", &[]).await;
    assert_eq!(code(&out), 0, "{}\n{}", stdout(&out), stderr(&out));
    assert_eq!(cluster.sim.metrics().total_writes(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_lock_fails_fast_with_no_wait_or_is_waited_for_visibly() {
    let sim_config = sim_config_with(
        "demo/api:held1",
        ferry_sim::ImageBehaviour::SlowReady {
            after: std::time::Duration::from_secs(60),
        },
    );
    let cluster = Cluster::with_config(sim_config).await;
    let dir = app_dir("");
    let cfg = config(dir.path());
    let mut holder = std::process::Command::new(ferry_testkit::ferry_bin())
        .args([
            "deploy", "--config", &cfg, "--env", "local", "--tag", "held1",
        ])
        .env("KUBECONFIG", cluster.kubeconfig())
        .env("CI", "true")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(cluster.client().await, "demo");
    for _ in 0..600 {
        if leases
            .get_opt("ferry.lock.demo.local")
            .await
            .ok()
            .flatten()
            .is_some()
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let out = deploy(&cluster, dir.path(), "other2", &["--no-wait"]).await;
    let err = stderr(&out);
    assert_eq!(code(&out), 10, "{}\n{err}", stdout(&out));
    assert!(err.contains("another deploy holds the lock"), "{err}");
    assert!(err.contains(&format!("pid {}", holder.id())), "{err}");

    // Without --no-wait the second deploy says whom it waits for, then runs.
    let out = deploy(&cluster, dir.path(), "other2", &[]).await;
    assert_eq!(code(&out), 0, "{}\n{}", stdout(&out), stderr(&out));
    assert!(
        stderr(&out).contains("waiting for the deploy lock held by"),
        "{}",
        stderr(&out)
    );
    assert!(holder.wait().unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deploys_on_the_embedded_simulator_share_one_cluster() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&root().join("examples/cloudage"), dir.path());
    let cfg = dir.path().join("ferry.toml").display().to_string();
    let cluster = Cluster::start(1.0).await; // only runs the binary; the example uses provider = "sim"
    let first_args = [
        "deploy", "--config", &cfg, "--env", "local", "--tag", "aaaa111",
    ];
    let first = cluster.ferry(&first_args);
    let second = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        cluster
            .ferry(&[
                "deploy", "--config", &cfg, "--env", "local", "--tag", "bbbb222",
            ])
            .await
    };
    let (a, b) = tokio::join!(first, second);
    assert_eq!(code(&a), 0, "{}\n{}", stdout(&a), stderr(&a));
    assert_eq!(code(&b), 0, "{}\n{}", stdout(&b), stderr(&b));
    // One cluster: the second deploy saw the first's release (and its lock), not a cluster of
    // its own on the same state file.
    let out = cluster
        .ferry(&[
            "history", "--config", &cfg, "--env", "local", "--output", "json",
        ])
        .await;
    let h = history(&out);
    let tags: Vec<&str> = h.iter().map(|r| r["tag"].as_str().unwrap()).collect();
    assert_eq!(h.len(), 2, "{h:#?}");
    assert!(
        tags.contains(&"aaaa111") && tags.contains(&"bbbb222"),
        "{tags:?}"
    );
    assert_eq!(h[0]["status"], "deployed");
    assert_eq!(h[1]["status"], "superseded");
}

/// `--no-rollback` leaves a failed release in place (exit 8); `ferry status` names that failed
/// attempt next to the current release; `ferry rollback` then goes back to the current release
/// (whose objects the cluster no longer runs) and prunes what the failed one added.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_rollback_leaves_the_failure_for_status_and_ferry_rollback() {
    let sim_config = sim_config_with("demo/api:nogo2", ferry_sim::ImageBehaviour::PullForever);
    let cluster = Cluster::with_config(sim_config).await;
    let dir = app_dir("");
    let out = deploy(&cluster, dir.path(), "good1", &[]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    // The failed release also adds a ConfigMap.
    std::fs::write(
        dir.path().join("k8s/extra.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: added, namespace: demo}\ndata: {a: b}\n",
    )
    .unwrap();
    let out = deploy(&cluster, dir.path(), "nogo2", &["--no-rollback"]).await;
    assert_eq!(code(&out), 8, "{}\n{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("was not rolled back: automatic rollback is off"),
        "{}",
        stdout(&out)
    );
    assert_eq!(image_of(&cluster, "api").await, "demo/api:nogo2");
    // maxUnavailable 0: while the new pod cannot start, the old ones keep serving.
    let deployments: Api<Deployment> = Api::namespaced(cluster.client().await, "demo");
    let status = deployments.get("api").await.unwrap().status.unwrap();
    assert_eq!(status.available_replicas, Some(2), "{status:?}");

    let cfg = config(dir.path());
    let status = ["status", "--config", &cfg, "--env", "local"];
    let out = cluster.ferry(&status).await;
    // Not ready, and a newer attempt failed: exit 13, as `kubectl rollout status` fails.
    assert_eq!(code(&out), 13, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("release v1 (deployed), tag good1"), "{text}");
    assert!(
        text.contains("latest attempt: v2 (failed), tag nogo2: Deployment demo/api"),
        "{text}"
    );
    assert!(text.contains("objects not ready"), "{text}");
    let out = cluster
        .ferry(&[&status[..], &["--output", "json"]].concat())
        .await;
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["release"]["revision"], 1, "{v:#}");
    assert_eq!(v["latest_attempt"]["revision"], 2, "{v:#}");
    assert_eq!(v["latest_attempt"]["status"], "failed", "{v:#}");
    assert_eq!(v["healthy"], false, "{v:#}");

    let out = cluster
        .ferry(&["rollback", "--config", &cfg, "--env", "local"])
        .await;
    assert_eq!(code(&out), 0, "{}\n{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains("rollback: to v1"), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("ferry: rolled local back: release v3"),
        "{}",
        stdout(&out)
    );
    // Like a deploy, it ends with the load balancer's address.
    assert!(
        stdout(&out).contains("load balancer Service demo/web: "),
        "{}",
        stdout(&out)
    );
    assert_eq!(image_of(&cluster, "api").await, "demo/api:good1");
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client().await, "demo");
    assert!(cms.get_opt("added").await.unwrap().is_none());

    let out = cluster
        .ferry(&[&status[..], &["--output", "json"]].concat())
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["release"]["revision"], 3, "{v:#}");
    assert_eq!(v["release"]["tag"], "good1", "{v:#}");
    assert_eq!(v["healthy"], true, "{v:#}");
    assert!(v["latest_attempt"].is_null(), "{v:#}");
}

/// A zero deadline is refused before anything happens: it would fail the deploy, then its
/// rollback, before either could start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_deadline_is_refused_before_any_write() {
    let cluster = Cluster::start(20.0).await;
    let dir = app_dir("");
    let before = cluster.sim.metrics().total_writes();
    let out = deploy(&cluster, dir.path(), "z1", &["--timeout", "0s"]).await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("`0s` is zero"), "{}", stderr(&out));
    let cfg = config(dir.path());
    // A missing or malformed --tag is a command-line problem too.
    let out = cluster
        .ferry(&["deploy", "--config", &cfg, "--env", "local"])
        .await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--tag is required"),
        "{}",
        stderr(&out)
    );
    let out = deploy(&cluster, dir.path(), "no/slash", &[]).await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not a valid image tag"),
        "{}",
        stderr(&out)
    );
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("timeout = \"2m\"", "timeout = \"0s\"");
    std::fs::write(&cfg, text).unwrap();
    let out = deploy(&cluster, dir.path(), "z1", &[]).await;
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(stderr(&out).contains("ferry.toml:"), "{}", stderr(&out));
    assert!(stderr(&out).contains("is zero"), "{}", stderr(&out));
    assert_eq!(cluster.sim.metrics().total_writes(), before);
}

/// `-q` (only errors on stderr): a deploy's progress lines go, its failure report stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_deploys_print_only_their_errors() {
    let cluster = Cluster::start(20.0).await;
    let dir = app_dir("");
    let out = deploy(&cluster, dir.path(), "calm1", &["-q"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("deployed release v1"),
        "{}",
        stdout(&out)
    );
    assert_eq!(stderr(&out), "", "stderr of a quiet deploy");
    let cfg = config(dir.path());
    let out = cluster
        .ferry(&[
            "diff", "-q", "--config", &cfg, "--env", "local", "--tag", "calm2",
        ])
        .await;
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    assert_eq!(stderr(&out), "", "stderr of a quiet diff");

    let sim_config = sim_config_with("demo/api:loud2", ferry_sim::ImageBehaviour::Crash);
    cluster.sim.set_config(sim_config).unwrap();
    let out = deploy(&cluster, dir.path(), "loud2", &["-q"]).await;
    assert_eq!(code(&out), 7, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("FAILED Deployment demo/api"), "{err}");
    assert!(!err.contains("ferry: render"), "{err}");
}

/// A resource's own deadline (`ferry.dev/timeout`) fails it well within the overall timeout:
/// the release is rolled back (7, not the overall deadline's 9), naming the resource.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_past_its_own_deadline_fails_the_release() {
    let sim_config = sim_config_with("demo/api:stall2", ferry_sim::ImageBehaviour::NeverReady);
    let cluster = Cluster::with_config(sim_config).await;
    let dir = app_dir("");
    let out = deploy(&cluster, dir.path(), "ok1", &[]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let manifests = APP.replace("{mode}", "one").replace(
        "  name: api\n  namespace: demo\n",
        "  name: api\n  namespace: demo\n  annotations: {ferry.dev/timeout: \"2s\"}\n",
    );
    assert!(manifests.contains("ferry.dev/timeout"));
    std::fs::write(dir.path().join("k8s/app.yaml"), manifests).unwrap();
    // The overall timeout is 2m ([deploy] timeout): only the annotation can end this early.
    let out = deploy(&cluster, dir.path(), "stall2", &[]).await;
    let err = stderr(&out);
    assert_eq!(code(&out), 7, "{}\n{err}", stdout(&out));
    assert!(
        err.contains("FAILED Deployment demo/api: not ready after "),
        "{err}"
    );
    assert!(!err.contains("FAILED Deployment demo/web"), "{err}");
    assert_eq!(image_of(&cluster, "api").await, "demo/api:ok1");
}

/// Server-side apply conflicts: a field another manager owns is not taken unless asked. The
/// conflict is found by the dry-run (exit 3, nothing written, the fix named); with
/// `--force-conflicts` ferry takes the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fields_another_manager_owns_are_taken_only_with_force_conflicts() {
    let cluster = Cluster::start(20.0).await;
    let dir = app_dir("");
    let out = deploy(&cluster, dir.path(), "own1", &[]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client().await, "demo");
    let theirs = serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": "demo"},
        "data": {"mode": "theirs"}
    });
    cms.patch(
        "settings",
        &kube::api::PatchParams::apply("someone-else").force(),
        &kube::api::Patch::Apply(&theirs),
    )
    .await
    .unwrap();
    std::fs::write(
        dir.path().join("k8s/app.yaml"),
        APP.replace("{mode}", "two"),
    )
    .unwrap();
    let before = cluster.sim.metrics().total_writes();
    let out = deploy(&cluster, dir.path(), "own1", &[]).await;
    let err = stderr(&out);
    assert_eq!(code(&out), 3, "{}\n{err}", stdout(&out));
    assert!(err.contains("ConfigMap settings"), "{err}");
    assert!(err.contains("--force-conflicts"), "{err}");
    assert_eq!(cluster.sim.metrics().total_writes(), before);
    let mode = |cm: ConfigMap| cm.data.unwrap()["mode"].clone();
    assert_eq!(mode(cms.get("settings").await.unwrap()), "theirs");

    let out = deploy(&cluster, dir.path(), "own1", &["--force-conflicts"]).await;
    assert_eq!(code(&out), 0, "{}\n{}", stdout(&out), stderr(&out));
    assert_eq!(mode(cms.get("settings").await.unwrap()), "two");
}

/// `--output json` ends with a `result` even when the deploy never starts: the exit code and
/// each problem of an invalid release with its file and object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_ends_with_a_result_when_the_release_is_invalid() {
    let cluster = Cluster::start(20.0).await;
    let dir = app_dir("");
    std::fs::write(
        dir.path().join("k8s/extra.yaml"),
        "apiVersion: v1\nkind: ConfigMapp\nmetadata: {name: typo, namespace: demo}\n",
    )
    .unwrap();
    let out = deploy(&cluster, dir.path(), "j1", &["--output", "json"]).await;
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let last: Value = serde_json::from_str(stdout(&out).lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "result", "{last}");
    assert_eq!(last["status"], "invalid", "{last}");
    assert_eq!(last["exit_code"], 3, "{last}");
    let problem = &last["problems"][0];
    assert!(
        problem["at"].as_str().unwrap().contains("extra.yaml"),
        "{last}"
    );
    assert_eq!(problem["object"], "ConfigMapp typo", "{last}");

    // A failure before the cluster is reached (an unknown environment) ends the same way.
    let cfg = config(dir.path());
    let out = cluster
        .ferry(&[
            "rollback", "--config", &cfg, "--env", "nowhere", "--output", "json",
        ])
        .await;
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let last: Value = serde_json::from_str(stdout(&out).lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "result", "{last}");
    assert!(
        last["error"].as_str().unwrap().contains("nowhere"),
        "{last}"
    );
}

/// The failure reports of `ferry deploy --output json`.
fn failure_reports(out: &std::process::Output) -> Vec<Value> {
    stdout(out)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == "failed")
        .map(|e| e["report"].clone())
        .collect()
}

/// The simulator's clock runs 20 times as fast as ferry's: a report's events are picked by the
/// failed revision's own objects and the server's time, so the events of an earlier failed
/// rollout (its pods, its ReplicaSet, the Deployment scaling it) never show up again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_after_a_failure_reports_only_its_own_events() {
    let cluster = Cluster::start(20.0).await;
    let dir = app_dir("");
    let out = deploy(&cluster, dir.path(), "good1", &[]).await;
    assert_eq!(code(&out), 0, "{}\n{}", stdout(&out), stderr(&out));
    let sim_config = sim_config_with("demo/api:bad*", ferry_sim::ImageBehaviour::PullForever);
    cluster.sim.set_config(sim_config).unwrap();

    let mut reports = Vec::new();
    for tag in ["bad2", "bad3"] {
        let out = deploy(&cluster, dir.path(), tag, &["--output", "json"]).await;
        assert_eq!(code(&out), 7, "{tag}:\n{}\n{}", stdout(&out), stderr(&out));
        let r = failure_reports(&out);
        assert_eq!(r.len(), 1, "{tag}: {r:#?}");
        assert_eq!(r[0]["object"]["name"], "api", "{r:#?}");
        reports.push(r[0].clone());
    }
    let pods_of = |r: &Value| -> Vec<String> {
        r["pods"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p[0].as_str().unwrap().to_owned())
            .collect()
    };
    // `api-HASH-SUFFIX` -> `api-HASH`.
    let replica_set = |pod: &str| pod.rsplit_once('-').unwrap().0.to_owned();
    let (old, new) = (pods_of(&reports[0]), pods_of(&reports[1]));
    assert!(!old.is_empty() && !new.is_empty(), "{reports:#?}");
    let old_rs = replica_set(&old[0]);
    let new_rs = replica_set(&new[0]);
    assert_ne!(old_rs, new_rs);
    let events = reports[1]["events"].as_array().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e["message"].as_str().unwrap().contains("demo/api:bad3")),
        "the new pods' pull failures are reported: {events:#?}"
    );
    for e in events {
        let object = e["object"].as_str().unwrap();
        let message = e["message"].as_str().unwrap();
        assert!(
            !message.contains("bad2") && !message.contains(&old_rs),
            "an event of the earlier rollout: {e:#}"
        );
        assert!(
            !old.iter().any(|p| object == format!("Pod {p}")),
            "an event of the earlier rollout's pod: {e:#}"
        );
        // Only the new revision's pods, its ReplicaSet and the Deployment.
        assert!(
            object == "Deployment api"
                || object == format!("ReplicaSet {new_rs}")
                || new.iter().any(|p| object == format!("Pod {p}")),
            "{e:#} in {reports:#?}"
        );
    }
}
