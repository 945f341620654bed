//! Benchmark (`cargo bench -p ferry-sim`): how fast the simulator serves a real client.
//!
//! 1. create 2,000 ConfigMaps over 20 namespaces with kube-rs (16 requests in flight) while a
//!    `kube::runtime::watcher` watches them all: create requests/s, and when the watcher has
//!    seen every object;
//! 2. list them (paged by 500, as kubectl does) and get each one: requests/s;
//! 3. server-side apply 500 ConfigMaps, then apply the same 500 again: the no-op re-apply's
//!    requests/s and the writes it caused, read from `GET /metrics` (must be 0);
//! 4. 200 Deployments of 2 replicas applied and rolled out (the controllers' load);
//! 5. peak resident memory of the process (client and simulator together), from
//!    /proc/self/status.
//!
//! It prints figures; it asserts nothing about time.

use std::time::{Duration, Instant};

use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt as _, watcher};
use serde_json::json;

use ferry_sim::{Sim, SimConfig};

const OBJECTS: usize = 2_000;
const NAMESPACES: usize = 20;
const APPLIED: usize = 500;
const IN_FLIGHT: usize = 16;
const DEPLOYMENTS: usize = 200;

fn proc_status(field: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .map(|l| l[field.len()..].trim().to_owned())
        .unwrap_or_else(|| "?".to_owned())
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown CPU", str::trim)
        .to_owned();
    let cpus = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .map(|l| l["MemTotal:".len()..].trim().to_owned())
        .unwrap_or_default();
    format!("{model}, {cpus} CPUs, {memory} RAM")
}

fn rate(n: usize, elapsed: Duration) -> String {
    format!("{:.0}/s", n as f64 / elapsed.as_secs_f64())
}

/// Sums `ferry_sim_writes_total` from the Prometheus text.
async fn writes_from_metrics(url: &str) -> u64 {
    let text = reqwest::get(format!("{url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("ferry_sim_writes_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Runs `request` for objects `0..n` (object `i` in namespace `bench-{i % NAMESPACES}`),
/// `IN_FLIGHT` at a time; returns how long they took.
async fn each<F, Fut>(client: &kube::Client, n: usize, request: F) -> Duration
where
    F: Fn(Api<ConfigMap>, usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let start = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let api = Api::namespaced(client.clone(), &format!("bench-{}", i % NAMESPACES));
            request(api, i)
        })
        .buffer_unordered(IN_FLIGHT)
        .collect::<()>()
        .await;
    start.elapsed()
}

#[expect(clippy::print_stdout, reason = "a benchmark prints its figures")]
fn report(line: &str) {
    println!("{line}");
}

#[tokio::main]
async fn main() {
    let sim = Sim::builder()
        .config(SimConfig {
            speed: 60.0,
            request_log_limit: 1_000,
            ..SimConfig::default()
        })
        .start()
        .await
        .unwrap();
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&sim.kubeconfig_yaml()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    report(&format!("ferry-sim benchmark; machine: {}", machine()));

    let namespaces: Api<Namespace> = Api::all(client.clone());
    for n in 0..NAMESPACES {
        let ns = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": format!("bench-{n}")}})).unwrap();
        namespaces
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
    }

    // 1. create while watching
    let all: Api<ConfigMap> = Api::all(client.clone());
    let watched = tokio::spawn(async move {
        let stream =
            watcher(all, watcher::Config::default().labels("bench=create")).applied_objects();
        let mut stream = std::pin::pin!(stream);
        let mut seen = std::collections::HashSet::new();
        while seen.len() < OBJECTS {
            let cm = stream.try_next().await.unwrap().unwrap();
            seen.insert((cm.metadata.namespace.unwrap(), cm.metadata.name.unwrap()));
        }
        Instant::now()
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = Instant::now();
    let created = each(&client, OBJECTS, |api, i| async move {
        let cm = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("cm-{i}"), "labels": {"bench": "create"}},
            "data": {"index": i.to_string(), "payload": "x".repeat(256)},
        }))
        .unwrap();
        api.create(&PostParams::default(), &cm).await.unwrap();
    })
    .await;
    let seen_at = tokio::time::timeout(Duration::from_secs(120), watched)
        .await
        .unwrap()
        .unwrap();
    report(&format!(
        "create {OBJECTS} ConfigMaps ({IN_FLIGHT} in flight): {:.2}s, {}; watcher saw all {OBJECTS} {:.0} ms after the last create returned",
        created.as_secs_f64(),
        rate(OBJECTS, created),
        seen_at
            .saturating_duration_since(start + created)
            .as_secs_f64()
            * 1000.0
    ));

    // 2. list and get
    let all: Api<ConfigMap> = Api::all(client.clone());
    let start = Instant::now();
    let mut listed = 0;
    let mut params = ListParams::default().labels("bench=create").limit(500);
    let mut pages = 0;
    loop {
        let page = all.list(&params).await.unwrap();
        listed += page.items.len();
        pages += 1;
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    let list_time = start.elapsed();
    assert_eq!(listed, OBJECTS);
    let get_time = each(&client, OBJECTS, |api, i| async move {
        api.get(&format!("cm-{i}")).await.unwrap();
    })
    .await;
    report(&format!(
        "list {OBJECTS} in {pages} pages of 500: {:.0} ms; get each: {:.2}s, {}",
        list_time.as_secs_f64() * 1000.0,
        get_time.as_secs_f64(),
        rate(OBJECTS, get_time)
    ));

    // 3. server-side apply, then the same again
    let apply = || {
        each(&client, APPLIED, |api, i| async move {
            let cm = json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": format!("applied-{i}"), "labels": {"bench": "apply"}},
                "data": {"index": i.to_string()},
            });
            api.patch(
                &format!("applied-{i}"),
                &PatchParams::apply("ferry-bench"),
                &Patch::Apply(&cm),
            )
            .await
            .unwrap();
        })
    };
    let url = sim.url();
    let before = writes_from_metrics(&url).await;
    let first = apply().await;
    let middle = writes_from_metrics(&url).await;
    let second = apply().await;
    let after = writes_from_metrics(&url).await;
    report(&format!(
        "server-side apply {APPLIED} new ConfigMaps: {:.2}s, {}, {} writes; the same {APPLIED} again: {:.2}s, {}, {} writes (from /metrics)",
        first.as_secs_f64(),
        rate(APPLIED, first),
        middle - before,
        second.as_secs_f64(),
        rate(APPLIED, second),
        after - middle
    ));
    assert_eq!(after - middle, 0, "a no-op re-apply wrote");

    // 4. a controller-heavy load: Deployments rolled out to pods
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), "bench-0");
    let start = Instant::now();
    futures::stream::iter(0..DEPLOYMENTS)
        .map(|i| {
            let api = deployments.clone();
            async move {
                let d = json!({
                    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": format!("app-{i}")},
                    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": format!("app-{i}")}},
                             "template": {"metadata": {"labels": {"app": format!("app-{i}")}},
                                          "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}},
                });
                api.patch(&format!("app-{i}"), &PatchParams::apply("ferry-bench"), &Patch::Apply(&d)).await.unwrap();
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect::<()>()
        .await;
    let applied_at = start.elapsed();
    loop {
        let list = deployments.list(&ListParams::default()).await.unwrap();
        let ready = list
            .items
            .iter()
            .filter(|d| d.status.as_ref().and_then(|s| s.available_replicas) == Some(2))
            .count();
        if ready == DEPLOYMENTS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    report(&format!(
        "{DEPLOYMENTS} Deployments x 2 replicas: applied in {:.2}s, all available after {:.2}s (virtual clock x60; {} pods)",
        applied_at.as_secs_f64(),
        start.elapsed().as_secs_f64(),
        DEPLOYMENTS * 2
    ));

    let metrics = sim.metrics();
    report(&format!(
        "requests served: {}; peak RSS (client + simulator): {}; now {}",
        metrics.total_requests(),
        proc_status("VmHWM:"),
        proc_status("VmRSS:")
    ));
    sim.shutdown().await.unwrap();
}
