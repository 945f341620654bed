//! Benchmark: deploy-and-wait of 50, 500 and 2,000 objects on ferry-sim, and a no-op redeploy
//! of 500, with ferry's engine; in the same run and on the same simulator, the same manifests
//! with `kubectl apply --server-side -f` followed by `kubectl rollout status` for each
//! Deployment (the way CI scripts do it). Prints a table and the machine.
//!
//! `cargo bench -p ferry-deployer --bench deploy` (kubectl on PATH, or FERRY_TEST_KUBECTL).

#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_deployer::clock::FnClock;
use ferry_deployer::engine::{Engine, Outcome, ReleaseInput, Settings};
use ferry_deployer::events::Discard;

const SPEED: f64 = 50.0;

fn manifests(dir: &Path, ns: &str, n: usize) -> usize {
    let deployments = (n / 10).max(1);
    let services = deployments;
    let configmaps = n.saturating_sub(1 + deployments + services);
    let mut text = format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n");
    for i in 0..configmaps {
        let _ = write!(
            text,
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config-{i}\n  namespace: {ns}\ndata:\n  key: value-{i}\n  other: \"{i}\"\n"
        );
    }
    for i in 0..deployments {
        let _ = write!(
            text,
            "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{i}\n  namespace: {ns}\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: app-{i}}}\n  template:\n    metadata:\n      labels: {{app: app-{i}}}\n    spec:\n      containers:\n        - name: app\n          image: bench/app:1.0\n          envFrom: [{{configMapRef: {{name: config-0}}}}]\n"
        );
        let _ = write!(
            text,
            "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: app-{i}\n  namespace: {ns}\nspec:\n  selector: {{app: app-{i}}}\n  ports: [{{port: 80}}]\n"
        );
    }
    std::fs::write(dir.join("objects.yaml"), text).unwrap();
    deployments
}

fn kubectl() -> String {
    #[expect(
        clippy::disallowed_methods,
        reason = "the benchmark binary reads where kubectl is"
    )]
    std::env::var("FERRY_TEST_KUBECTL").unwrap_or_else(|_| "kubectl".to_owned())
}

fn run_kubectl(kubeconfig: &Path, args: &[&str]) {
    let out = Command::new(kubectl())
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `kubectl apply --server-side` then `kubectl rollout status` per Deployment: the time of the
/// apply alone and of both.
fn kubectl_deploy(
    kubeconfig: &Path,
    dir: &Path,
    ns: &str,
    deployments: usize,
) -> (Duration, Duration) {
    let started = Instant::now();
    let file = dir.join("objects.yaml");
    run_kubectl(
        kubeconfig,
        &[
            "apply",
            "--server-side",
            "--field-manager",
            "kubectl-bench",
            "-f",
            file.to_str().unwrap(),
        ],
    );
    let applied = started.elapsed();
    for i in 0..deployments {
        run_kubectl(
            kubeconfig,
            &[
                "rollout",
                "status",
                "-n",
                ns,
                &format!("deployment/app-{i}"),
                "--timeout=600s",
            ],
        );
    }
    (applied, started.elapsed())
}

fn settings(ns: &str) -> Settings {
    let mut s = Settings::new("bench", ns.to_owned(), "bench");
    s.namespace = ns.to_owned();
    s.parallelism = 16;
    s
}

async fn ferry_deploy(client: &kube::Client, dir: &Path, ns: &str) -> (Duration, Outcome) {
    let started = Instant::now();
    #[expect(
        clippy::disallowed_methods,
        reason = "the benchmark is its own binary; it reads the wall clock for lease times"
    )]
    let clock = Arc::new(FnClock(std::time::SystemTime::now));
    let engine = Engine::new(client.clone(), settings(ns), clock, Arc::new(Discard));
    let manifests = ferry_deployer::render::render(dir).unwrap();
    let outcome = engine
        .deploy(ReleaseInput {
            manifests,
            ..ReleaseInput::default()
        })
        .await
        .unwrap();
    (started.elapsed(), outcome)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines().next().map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<u64>()
                    .unwrap_or(0)
                    / 1024
                    / 1024
            })
        })
        .unwrap_or(0);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores ({cpu}), {mem} GiB RAM")
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let sim = ferry_sim::Sim::builder()
            .config(ferry_sim::SimConfig {
                speed: SPEED,
                ..ferry_sim::SimConfig::default()
            })
            .start()
            .await
            .unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let kubeconfig = tmp.path().join("kubeconfig");
        sim.write_kubeconfig(&kubeconfig).unwrap();
        let kc = kube::config::Kubeconfig::read_from(&kubeconfig).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .unwrap();
        let client = kube::Client::try_from(config).unwrap();

        println!(
            "deploy + wait on ferry-sim (virtual clock x{SPEED}); machine: {}",
            machine()
        );
        println!(
            "{:<22} {:>10} {:>15} {:>17} {:>8} {:>8}",
            "case", "ferry", "kubectl apply", "kubectl + rollout", "writes", "writes"
        );
        println!(
            "{:<22} {:>10} {:>15} {:>17} {:>8} {:>8}",
            "", "", "", "status", "(ferry)", "(kubectl)"
        );
        for n in [50usize, 500, 2000] {
            let fdir = tmp.path().join(format!("ferry-{n}"));
            let kdir = tmp.path().join(format!("kubectl-{n}"));
            std::fs::create_dir_all(&fdir).unwrap();
            std::fs::create_dir_all(&kdir).unwrap();
            let fns = format!("bench-ferry-{n}");
            let kns = format!("bench-kubectl-{n}");
            manifests(&fdir, &fns, n);
            let deployments = manifests(&kdir, &kns, n);

            let cases: &[&str] = if n == 500 {
                &["deploy", "no-op redeploy"]
            } else {
                &["deploy"]
            };
            for case in cases {
                let w0 = sim.metrics().total_writes();
                let (ferry_time, outcome) = ferry_deploy(&client, &fdir, &fns).await;
                assert!(matches!(outcome, Outcome::Deployed { .. }), "{outcome:?}");
                let ferry_writes = sim.metrics().total_writes() - w0;
                let (dir, kc, kns2) = (kdir.clone(), kubeconfig.clone(), kns.clone());
                let w0 = sim.metrics().total_writes();
                let (apply, total) = tokio::task::spawn_blocking(move || {
                    kubectl_deploy(&kc, &dir, &kns2, deployments)
                })
                .await
                .unwrap();
                let kubectl_writes = sim.metrics().total_writes() - w0;
                println!(
                    "{:<22} {:>9.2}s {:>14.2}s {:>16.2}s {:>8} {:>8}",
                    format!("{case} {n}"),
                    ferry_time.as_secs_f64(),
                    apply.as_secs_f64(),
                    total.as_secs_f64(),
                    ferry_writes,
                    kubectl_writes
                );
            }
        }
        sim.shutdown().await.unwrap();
    });
}
