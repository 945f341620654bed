//! `ferry deploy` refuses what a real cluster refuses and keeps what others own: strict field
//! validation, an HPA's replicas, `ignore_fields`, Secret values changed out of band, Jobs run
//! per release, immutable fields, and cancellation by SIGINT/SIGTERM.

use std::path::Path;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use super::deploy_support::{Cluster, app_dir, sim_config_with};
use super::{code, stderr, stdout};

const WEB: &str = r#"apiVersion: v1
kind: Namespace
metadata:
  name: demo
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

const HPA: &str = r#"---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: web
  namespace: demo
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 2
  maxReplicas: 10
"#;

fn app(manifests: &str, deploy_extra: &str) -> tempfile::TempDir {
    app_dir(
        "demo",
        "demo",
        &[("web", "demo/web"), ("api", "demo/api")],
        manifests,
        deploy_extra,
    )
}

fn config(dir: &Path) -> String {
    dir.join("ferry.toml").display().to_string()
}

async fn deploy(cluster: &Cluster, dir: &Path, tag: &str, extra: &[&str]) -> std::process::Output {
    cluster.deploy(dir, tag, extra).await
}

fn both(out: &std::process::Output) -> String {
    format!("{}\n{}", stdout(out), stderr(out))
}

/// A `readinessProbe` indented one level too far is valid YAML but an unknown field: refused
/// (exit 3, nothing written) naming the file, the object and the field; under
/// `field_validation = "warn"` it deploys and the server's warning is shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_fields_are_refused_before_the_first_write() {
    let cluster = Cluster::start(20.0).await;
    let misplaced = WEB.replace(
        "          image: demo/web:placeholder\n",
        "          image: demo/web:placeholder\n      readinessProbe: {httpGet: {path: /, port: 80}}\n",
    );
    let dir = app(&misplaced, "");
    let before = cluster.sim.metrics().total_writes();
    let out = deploy(&cluster, dir.path(), "f1", &[]).await;
    let err = stderr(&out);
    assert_eq!(code(&out), 3, "{}", both(&out));
    // Found offline, at the field's line and column, before the cluster is asked.
    assert!(
        err.contains(
            "app.yaml:20:7: Deployment web: unknown field \"spec.template.spec.readinessProbe\""
        ),
        "{err}"
    );
    assert_eq!(cluster.sim.metrics().total_writes(), before);

    let dir = app(&misplaced, "field_validation = \"warn\"");
    let out = deploy(&cluster, dir.path(), "f1", &[]).await;
    assert_eq!(code(&out), 0, "{}", both(&out));
    let err = stderr(&out);
    assert!(
        err.contains("warning: Deployment demo/web: the server warns: unknown field \"spec.template.spec.readinessProbe\""),
        "{err}"
    );

    // In JSON too, and as a GitHub annotation.
    let dir = app(
        &misplaced.replace("demo/web:placeholder", "demo/web:other"),
        "field_validation = \"warn\"",
    );
    let cfg = config(dir.path());
    let out = cluster
        .ferry_with_env(
            &[
                "deploy", "--config", &cfg, "--env", "local", "--tag", "f2", "-o", "json",
            ],
            &[],
        )
        .await;
    assert_eq!(code(&out), 0, "{}", both(&out));
    let warning = stdout(&out)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["event"] == "server-warning")
        .unwrap_or_else(|| panic!("{}", stdout(&out)));
    assert_eq!(warning["object"]["name"], "web", "{warning}");
    let out = cluster
        .ferry_with_env(
            &["deploy", "--config", &cfg, "--env", "local", "--tag", "f3"],
            &[("GITHUB_ACTIONS", "true")],
        )
        .await;
    assert_eq!(code(&out), 0, "{}", both(&out));
    assert!(
        stdout(&out).contains("::warning title=ferry%3A Deployment demo/web::unknown field")
            || stdout(&out).contains("::warning title=ferry: Deployment demo/web::unknown field"),
        "{}",
        stdout(&out)
    );
}

/// A duplicate key in a manifest is refused as kube-apiserver refuses it under Strict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_fields_are_refused() {
    let cluster = Cluster::start(20.0).await;
    let dup = WEB.replace(
        "  replicas: 2\n",
        "  replicas: 2\n  paused: false\n  paused: true\n",
    );
    let dir = app(&dup, "");
    let out = deploy(&cluster, dir.path(), "d1", &[]).await;
    let err = stderr(&out);
    // Either ferry's own parser or the server names the duplicate; nothing is written.
    assert_eq!(code(&out), 3, "{}", both(&out));
    assert!(err.contains("paused"), "{err}");
    assert!(err.contains("app.yaml"), "{err}");
}

async fn scale(cluster: &Cluster, name: &str, replicas: i32) {
    let api: Api<Deployment> = Api::namespaced(cluster.client().await, "demo");
    api.patch_scale(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": replicas}})),
    )
    .await
    .unwrap();
}

async fn replicas(cluster: &Cluster, name: &str) -> i32 {
    let api: Api<Deployment> = Api::namespaced(cluster.client().await, "demo");
    api.get(name).await.unwrap().spec.unwrap().replicas.unwrap()
}

/// Once an HPA (or a person with `kubectl scale`) has scaled a workload, a deploy neither
/// conflicts on `spec.replicas` nor resets it; the plan says so once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_an_autoscaler_owns_stay_theirs() {
    let cluster = Cluster::start(20.0).await;
    let dir = app(&format!("{WEB}{HPA}"), "");
    let out = deploy(&cluster, dir.path(), "h1", &[]).await;
    assert_eq!(code(&out), 0, "{}", both(&out));
    assert_eq!(replicas(&cluster, "web").await, 2);

    // Before anyone scaled it, ferry still owns the field: a redeploy keeps it (no dip to 1).
    let out = deploy(&cluster, dir.path(), "h2", &[]).await;
    assert_eq!(code(&out), 0, "{}", both(&out));
    assert_eq!(replicas(&cluster, "web").await, 2);

    scale(&cluster, "web", 5).await;
    let out = deploy(&cluster, dir.path(), "h3", &[]).await;
    assert_eq!(code(&out), 0, "{}", both(&out));
    let err = stderr(&out);
    assert!(
        err.contains(
            "Deployment demo/web: spec.replicas is left to HorizontalPodAutoscaler demo/web (5 now)"
        ),
        "{err}"
    );
    assert_eq!(err.matches("spec.replicas is left to").count(), 1, "{err}");
    assert_eq!(replicas(&cluster, "web").await, 5);
    let api: Api<Deployment> = Api::namespaced(cluster.client().await, "demo");
    let d = api.get("web").await.unwrap();
    assert!(
        d.spec.unwrap().template.spec.unwrap().containers[0]
            .image
            .as_deref()
            .unwrap()
            .ends_with(":h3")
    );
    // ferry no longer claims the field.
    let ferry_fields = d
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .filter(|m| m.manager.as_deref() == Some("ferry"))
        .map(|m| serde_json::to_string(&m.fields_v1).unwrap())
        .collect::<String>();
    assert!(!ferry_fields.contains("f:replicas"), "{ferry_fields}");

    // An HPA already in the cluster (not in the release) counts as well.
    let dir = app(WEB, "");
    let other = app(HPA.trim_start_matches("---\n"), "");
    std::fs::write(
        other.path().join("ferry.toml"),
        std::fs::read_to_string(other.path().join("ferry.toml"))
            .unwrap()
            .replace("name = \"demo\"", "name = \"scaler\""),
    )
    .unwrap();
    scale(&cluster, "web", 6).await;
    let out = deploy(&cluster, dir.path(), "h4", &["--force-conflicts"]).await;
    assert_eq!(code(&out), 0, "{}", both(&out));
    assert_eq!(replicas(&cluster, "web").await, 6);
}

/// `ignore_fields` leaves a field to whoever set it in the cluster, once the object exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignore_fields_are_left_as_the_cluster_has_them() {
    let cluster = Cluster::start(20.0).await;
    let extra = "\n[[env.local.deploy.ignore_fields]]\nkind = \"Deployment\"\nname = \"web\"\npointers = [\"/spec/replicas\"]\n";
    let dir = app(WEB, extra);
    let out = deploy(&cluster, dir.path(), "i1", &[]).await;
    assert_eq!(code(&out), 0, "{}", both(&out));
    scale(&cluster, "web", 4).await;
    let out = deploy(&cluster, dir.path(), "i2", &[]).await;
    assert_eq!(code(&out), 0, "{}", both(&out));
    assert!(
        stderr(&out).contains("spec.replicas is left to ignore_fields (4 now)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(replicas(&cluster, "web").await, 4);

    // A pointer that is not one is located in ferry.toml.
    let dir = app(
        WEB,
        "\n[[env.local.deploy.ignore_fields]]\nkind = \"Deployment\"\npointers = [\"spec/replicas\"]\n",
    );
    let out = deploy(&cluster, dir.path(), "i3", &[]).await;
    assert_eq!(code(&out), 3, "{}", both(&out));
    assert!(stderr(&out).contains("ignore_fields"), "{}", stderr(&out));
}

const SECRET: &str = r#"---
apiVersion: v1
kind: Secret
metadata:
  name: ode-secrets
  namespace: demo
stringData:
  database-url: "postgres://placeholder"
  redis-url: "redis://placeholder"
"#;

/// Seed 002 patches the real database URL into a Secret by hand: the next deploy refuses to
/// reset it (exit 3, naming the Secret, the key and who changed it, never the value), and
/// `--force-conflicts` resets it on purpose.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_values_changed_out_of_band_are_not_reset() {
    let cluster = Cluster::start(20.0).await;
    let dir = app(&format!("{WEB}{SECRET}"), "");
    let out = deploy(&cluster, dir.path(), "s1", &[]).await;
    assert_eq!(code(&out), 0, "{}", both(&out));
    let secrets: Api<Secret> = Api::namespaced(cluster.client().await, "demo");
    secrets
        .patch(
            "ode-secrets",
            &PatchParams {
                field_manager: Some("kubectl-patch".into()),
                ..PatchParams::default()
            },
            &Patch::Merge(json!({"stringData": {"database-url": "postgres://real-rds-endpoint"}})),
        )
        .await
        .unwrap();
    let real = || async {
        let s = secrets.get("ode-secrets").await.unwrap();
        String::from_utf8(s.data.unwrap()["database-url"].0.clone()).unwrap()
    };
    assert_eq!(real().await, "postgres://real-rds-endpoint");

    let before = cluster.sim.metrics().total_writes();
    let out = deploy(&cluster, dir.path(), "s2", &[]).await;
    let all = both(&out);
    assert_eq!(code(&out), 3, "{all}");
    assert!(all.contains("app.yaml (document 3): Secret ode-secrets: the value of `database-url` was changed in the cluster by `kubectl-patch`"), "{all}");
    assert!(all.contains("`database-url`"), "{all}");
    assert!(!all.contains("`redis-url`"), "{all}");
    assert!(all.contains("kubectl-patch"), "{all}");
    assert!(!all.contains("real-rds-endpoint"), "{all}");
    assert_eq!(cluster.sim.metrics().total_writes(), before);
    assert_eq!(real().await, "postgres://real-rds-endpoint");

    // diff says so too, without the value.
    let cfg = config(dir.path());
    let out = cluster
        .ferry(&["diff", "--config", &cfg, "--env", "local", "--tag", "s2"])
        .await;
    assert_eq!(code(&out), 3, "{}", both(&out));
    assert!(!both(&out).contains("real-rds-endpoint"));

    let out = deploy(&cluster, dir.path(), "s2", &["--force-conflicts"]).await;
    assert_eq!(code(&out), 0, "{}", both(&out));
    assert_eq!(real().await, "postgres://placeholder");
}

const MIGRATE: &str = r#"---
apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
  namespace: demo
  annotations: {ferry.dev/pre-deploy: "true"}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: migrate, image: "demo/api:placeholder"}]
---
apiVersion: batch/v1
kind: Job
metadata:
  name: smoke
  namespace: demo
  annotations: {ferry.dev/run: every-release, ferry.dev/wave: "1"}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: smoke, image: "demo/smoke:1.0"}]
"#;

async fn job_uid(cluster: &Cluster, name: &str) -> (String, String) {
    let jobs: Api<Job> = Api::namespaced(cluster.client().await, "demo");
    let j = jobs.get(name).await.unwrap();
    let image = j.spec.unwrap().template.spec.unwrap().containers[0]
        .image
        .clone()
        .unwrap();
    assert_eq!(
        j.status.unwrap().succeeded,
        Some(1),
        "{name} ran to completion"
    );
    (j.metadata.uid.unwrap(), image)
}

/// A migration Job with a new image is deleted and created again (Helm's
/// before-hook-creation), and a Job annotated `ferry.dev/run: every-release` reruns on every
/// new release, but not on the same release again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_run_once_per_release() {
    let cluster = Cluster::start(20.0).await;
    let dir = app(&format!("{WEB}{MIGRATE}"), "");
    let out = deploy(&cluster, dir.path(), "j1", &[]).await;
    assert_eq!(code(&out), 0, "{}", both(&out));
    let (m1, image) = job_uid(&cluster, "migrate").await;
    assert_eq!(image, "demo/api:j1");
    let (s1, _) = job_uid(&cluster, "smoke").await;

    let out = deploy(&cluster, dir.path(), "j2", &[]).await;
    assert_eq!(code(&out), 0, "{}", both(&out));
    assert!(
        stderr(&out).contains("2 to replace (delete and create)"),
        "{}",
        stderr(&out)
    );
    let (m2, image) = job_uid(&cluster, "migrate").await;
    assert_eq!(image, "demo/api:j2");
    assert_ne!(m1, m2, "the migration ran again");
    let (s2, _) = job_uid(&cluster, "smoke").await;
    assert_ne!(s1, s2, "the every-release Job ran again");

    // The same release again: nothing is written, no Job reruns.
    let before = cluster.sim.metrics().total_writes();
    let out = deploy(&cluster, dir.path(), "j2", &[]).await;
    assert_eq!(code(&out), 0, "{}", both(&out));
    assert!(stdout(&out).contains("nothing changed"), "{}", both(&out));
    assert_eq!(cluster.sim.metrics().total_writes(), before);
    assert_eq!(job_uid(&cluster, "smoke").await.0, s2);
}

/// Other immutable fields (a Deployment's selector) are refused before the first write with the
/// way out; with `ferry.dev/replace: "true"` the object is deleted and created again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn immutable_changes_are_refused_unless_replace_is_asked_for() {
    let cluster = Cluster::start(20.0).await;
    let dir = app(WEB, "");
    let out = deploy(&cluster, dir.path(), "m1", &[]).await;
    assert_eq!(code(&out), 0, "{}", both(&out));
    let relabelled = WEB.replace("{app: web}", "{app: web2}");
    std::fs::write(dir.path().join("k8s/app.yaml"), &relabelled).unwrap();
    let before = cluster.sim.metrics().total_writes();
    let out = deploy(&cluster, dir.path(), "m2", &[]).await;
    let err = stderr(&out);
    assert_eq!(code(&out), 3, "{}", both(&out));
    assert!(err.contains("Deployment web"), "{err}");
    assert!(err.contains("spec.selector"), "{err}");
    assert!(err.contains("field is immutable"), "{err}");
    assert!(err.contains("ferry.dev/replace: \"true\""), "{err}");
    assert_eq!(cluster.sim.metrics().total_writes(), before);

    let api: Api<Deployment> = Api::namespaced(cluster.client().await, "demo");
    let uid = api.get("web").await.unwrap().metadata.uid.unwrap();
    std::fs::write(
        dir.path().join("k8s/app.yaml"),
        relabelled.replace(
            "  name: web\n  namespace: demo\nspec:",
            "  name: web\n  namespace: demo\n  annotations: {ferry.dev/replace: \"true\"}\nspec:",
        ),
    )
    .unwrap();
    let out = deploy(&cluster, dir.path(), "m2", &[]).await;
    assert_eq!(code(&out), 0, "{}", both(&out));
    assert!(stderr(&out).contains("replace"), "{}", stderr(&out));
    let d = api.get("web").await.unwrap();
    assert_ne!(d.metadata.uid.unwrap(), uid);
    assert_eq!(
        d.spec.unwrap().selector.match_labels.unwrap()["app"],
        "web2"
    );
}

fn signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// SIGINT (what a cancelled GitHub Actions job sends first) at random points of 20 deploys:
/// each ends with a documented exit code, and afterwards no release is pending, no lock is left
/// and the next deploy converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_deploy_records_rolls_back_and_releases_the_lock() {
    // Each new api becomes ready after 40 s of simulated time (2 s real at ×20).
    let mut sim_config = sim_config_with(
        "demo/web:*",
        ferry_sim::ImageBehaviour::SlowReady {
            after: std::time::Duration::from_secs(40),
        },
    );
    sim_config.speed = 20.0;
    let cluster = Cluster::with_config(sim_config).await;
    let dir = app(WEB, "cancel_grace = \"5s\"");
    let cfg = config(dir.path());
    let out = deploy(&cluster, dir.path(), "c0", &[]).await;
    assert_eq!(code(&out), 0, "{}", both(&out));
    let client = cluster.client().await;
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client.clone(), "demo");
    // A deterministic spread of signal times over the deploy's life (0–2.5 s).
    let mut seed: u64 = 0x5eed_f00d;
    let mut codes = std::collections::BTreeMap::<i32, usize>::new();
    for round in 1..=20 {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let delay_ms = 150 + (seed >> 33) % 2500;
        let tag = format!("c{round}");
        let child = std::process::Command::new(ferry_testkit::ferry_bin())
            .args(["deploy", "--config", &cfg, "--env", "local", "--tag", &tag])
            .env("KUBECONFIG", cluster.kubeconfig())
            .env("CI", "true")
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
        signal(child.id(), "INT");
        let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
            .await
            .unwrap();
        let c = code(&out);
        // 0: done before the signal; 12: cancelled (rolled back or left).
        assert!(
            c == 0 || c == 12,
            "round {round} after {delay_ms} ms: exit {c}\n{}",
            both(&out)
        );
        if c == 12 {
            assert!(stderr(&out).contains("SIGINT received"), "{}", both(&out));
            assert!(stdout(&out).contains("cancelled"), "{}", both(&out));
        }
        *codes.entry(c).or_default() += 1;
        assert!(
            leases
                .get_opt("ferry.lock.demo.local")
                .await
                .unwrap()
                .is_none(),
            "round {round}: the lock is left"
        );
        let out = cluster
            .ferry(&[
                "history", "--config", &cfg, "--env", "local", "--output", "json",
            ])
            .await;
        let history: Value = serde_json::from_str(&stdout(&out)).unwrap();
        let releases = history["releases"].as_array().unwrap();
        assert!(
            releases.iter().all(|r| r["status"] != "pending"),
            "round {round}: {releases:#?}"
        );
        assert!(
            releases
                .iter()
                .filter(|r| r["status"] == "deployed")
                .count()
                <= 1,
            "round {round}: {releases:#?}"
        );
    }
    assert!(codes.get(&12).copied().unwrap_or(0) >= 5, "{codes:?}");
    // The next deploy converges.
    let out = deploy(&cluster, dir.path(), "final", &[]).await;
    assert_eq!(code(&out), 0, "{}", both(&out));
    let api: Api<Deployment> = Api::namespaced(client, "demo");
    let d = api.get("web").await.unwrap();
    assert!(
        d.spec.unwrap().template.spec.unwrap().containers[0]
            .image
            .as_deref()
            .unwrap()
            .ends_with(":final")
    );
}

/// A second signal stops at once, even in the middle of the rollback a first one started, and
/// the lock is released; the next deploy repairs what was left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_stops_at_once_and_releases_the_lock() {
    // `ok*` images become ready after 60 s of simulated time (3 s real), `slow*` never do; with
    // the Recreate strategy the rollback to `ok1` must start new pods, so it takes that long.
    let mut sim_config = sim_config_with(
        "demo/web:slow*",
        ferry_sim::ImageBehaviour::SlowReady {
            after: std::time::Duration::from_secs(36_000),
        },
    );
    sim_config.images.push(ferry_sim::ImageRule::new(
        "demo/web:ok*",
        ferry_sim::ImageBehaviour::SlowReady {
            after: std::time::Duration::from_secs(60),
        },
    ));
    let cluster = Cluster::with_config(sim_config).await;
    let recreate = WEB.replace(
        "  replicas: 2\n",
        "  replicas: 2\n  strategy: {type: Recreate}\n",
    );
    let dir = app(&recreate, "cancel_grace = \"30s\"");
    let cfg = config(dir.path());
    let out = deploy(&cluster, dir.path(), "ok1", &[]).await;
    assert_eq!(code(&out), 0, "{}", both(&out));
    let client = cluster.client().await;
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client.clone(), "demo");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "demo");
    let image = || async {
        deployments
            .get("web")
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
    };
    let child = std::process::Command::new(ferry_testkit::ferry_bin())
        .args([
            "deploy",
            "--config",
            &cfg,
            "--env",
            "local",
            "--tag",
            "slow2",
            "--timeout",
            "10m",
        ])
        .env("KUBECONFIG", cluster.kubeconfig())
        .env("CI", "true")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..600 {
        if image().await.ends_with(":slow2") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    signal(child.id(), "TERM");
    // The rollback to ok1 begins, then the second signal.
    for _ in 0..600 {
        if image().await.ends_with(":ok1") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    signal(child.id(), "INT");
    let started = std::time::Instant::now();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(code(&out), 12, "{}", both(&out));
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    let err = stderr(&out);
    assert!(err.contains("SIGTERM received"), "{err}");
    assert!(err.contains("received again"), "{err}");
    assert!(err.contains("at once"), "{err}");
    assert!(
        leases
            .get_opt("ferry.lock.demo.local")
            .await
            .unwrap()
            .is_none()
    );
    let history = |out: std::process::Output| -> Vec<Value> {
        let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
        v["releases"].as_array().unwrap().clone()
    };
    let h = history(
        cluster
            .ferry(&["history", "--config", &cfg, "--env", "local", "-o", "json"])
            .await,
    );
    let cancelled = h.iter().find(|r| r["revision"] == 2).unwrap();
    assert_eq!(cancelled["status"], "failed", "{h:#?}");
    assert!(
        cancelled["description"]
            .as_str()
            .unwrap()
            .contains("cancelled"),
        "{h:#?}"
    );
    // The next deploy repairs the interrupted rollback's record and converges.
    let out = deploy(&cluster, dir.path(), "ok3", &[]).await;
    assert_eq!(code(&out), 0, "{}", both(&out));
    let h = history(
        cluster
            .ferry(&["history", "--config", &cfg, "--env", "local", "-o", "json"])
            .await,
    );
    assert!(h.iter().all(|r| r["status"] != "pending"), "{h:#?}");
    assert_eq!(
        h.iter().filter(|r| r["status"] == "deployed").count(),
        1,
        "{h:#?}"
    );
}
