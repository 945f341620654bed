//! Single-fault deploys: the real `ferry` talks to the simulator through a fault-injecting
//! proxy ([`ferry_testkit::proxy::FaultProxy`]) that fails exactly one chosen request (or one
//! request N times): a 500 on each kind of request in turn, a dropped connection, a record that
//! cannot be marked superseded, a rollback whose apply is refused once, a lock that cannot be
//! released. Afterwards the history and the cluster (read directly, not through the proxy) are
//! checked: no release pending, at most one deployed, no lock left, and the objects labelled
//! as the app's are exactly the current release's.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Output;

use ferry_testkit::proxy::{Fault, FaultProxy, Logged};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::api::ListParams;
use serde_json::Value;

use super::deploy_support::{Cluster, write_config};
use super::{code, stderr, stdout};

// A namespace, a ConfigMap named after the round (so each release's objects differ and the
// previous one's is pruned) and a Deployment whose image is the release's tag.
use super::deploy_faults::APP;

const LEASE: &str = "ferry.lock.demo.local";
const RECORDS: &str = "/api/v1/namespaces/demo/secrets";
const LEASE_PATH: &str =
    "/apis/coordination.k8s.io/v1/namespaces/demo/leases/ferry.lock.demo.local";

/// A status fault answered as kube-apiserver answers its errors: a `Status` object.
fn api_error(method: &str, path: &str, code: u16) -> Fault {
    Fault::status(method, path, code).body(&format!(
        r#"{{"kind":"Status","apiVersion":"v1","metadata":{{}},"status":"Failure","message":"{INJECTED}","reason":"InternalError","code":{code}}}"#
    ))
}

const INJECTED: &str = "injected by the test proxy";

fn record_path(revision: u32) -> String {
    format!("{RECORDS}/ferry.release.v1.demo.local.v{revision}")
}

/// A simulator (images `demo/web:bad*` never pull), a proxy in front of it, a kubeconfig
/// through the proxy, and an app directory.
struct Rig {
    cluster: Cluster,
    proxy: FaultProxy,
    proxied: PathBuf,
    app: tempfile::TempDir,
}

impl Rig {
    async fn start() -> Rig {
        let mut config = ferry_sim::SimConfig {
            speed: 20.0,
            ..ferry_sim::SimConfig::default()
        };
        config.images.push(ferry_sim::ImageRule::new(
            "demo/web:bad*",
            ferry_sim::ImageBehaviour::PullForever,
        ));
        let cluster = Cluster::with_config(config).await;
        let proxy = FaultProxy::start(&cluster.sim.address().to_string()).await;
        let yaml = cluster.sim.kubeconfig_yaml();
        let sim_url = cluster.sim.url();
        assert!(yaml.contains(&sim_url), "{yaml}");
        let proxied = cluster.dir.path().join("kubeconfig-through-proxy");
        std::fs::write(
            &proxied,
            yaml.replace(&sim_url, &format!("http://{}", proxy.addr())),
        )
        .unwrap();
        let app = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(app.path().join("k8s")).unwrap();
        write_config(
            app.path(),
            "demo",
            &[("web", "demo/web")],
            "namespace = \"demo\"\ntimeout = \"2m\"\nlock_ttl = \"5s\"\nresolve_digests = false\n",
        );
        Rig {
            cluster,
            proxy,
            proxied,
            app,
        }
    }

    fn config(&self) -> String {
        self.app.path().join("ferry.toml").display().to_string()
    }

    /// `ferry deploy --tag TAG` of the app with ConfigMap `round`, through the proxy.
    async fn deploy(&self, round: &str, tag: &str) -> Output {
        std::fs::write(
            self.app.path().join("k8s/app.yaml"),
            APP.replace("{round}", round),
        )
        .unwrap();
        let c = self.config();
        let kc = self.proxied.display().to_string();
        self.cluster
            .ferry_with_env(
                &["deploy", "--config", &c, "--env", "local", "--tag", tag],
                &[("KUBECONFIG", kc.as_str())],
            )
            .await
    }

    /// A deploy that must succeed (no fault is set).
    async fn deploy_ok(&self, round: &str, tag: &str) {
        let out = self.deploy(round, tag).await;
        assert_eq!(code(&out), 0, "{}", both(&out));
    }

    /// `ferry history -o json` straight to the simulator: (revision, status, tag), newest
    /// first.
    async fn history(&self) -> Vec<(u64, String, String)> {
        let c = self.config();
        let out = self
            .cluster
            .ferry(&["history", "--config", &c, "--env", "local", "-o", "json"])
            .await;
        assert_eq!(code(&out), 0, "{}", both(&out));
        let json: Value = serde_json::from_str(&stdout(&out))
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", both(&out)));
        json["releases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["revision"].as_u64().unwrap(),
                    r["status"].as_str().unwrap().to_owned(),
                    r["tag"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// The records' `ferry.dev/status` labels as stored (not normalised), by revision.
    async fn stored_statuses(&self) -> Vec<(String, String)> {
        let api: Api<Secret> = Api::namespaced(self.cluster.client().await, "demo");
        let list = api
            .list(&ListParams::default().labels("ferry.dev/app=demo,ferry.dev/env=local"))
            .await
            .unwrap();
        let mut out: Vec<(String, String)> = list
            .items
            .into_iter()
            .map(|s| {
                let labels = s.metadata.labels.unwrap_or_default();
                (
                    labels
                        .get("ferry.dev/revision")
                        .cloned()
                        .unwrap_or_default(),
                    labels.get("ferry.dev/status").cloned().unwrap_or_default(),
                )
            })
            .collect();
        out.sort();
        out
    }

    async fn lease(&self) -> Option<Lease> {
        let api: Api<Lease> = Api::namespaced(self.cluster.client().await, "demo");
        api.get_opt(LEASE).await.unwrap()
    }

    /// Checks what every deploy must leave: `history` (revision, status, tag; newest first)
    /// exactly as expected, hence nothing pending and at most one deployed; no record stored
    /// pending; no lock; and the objects labelled `ferry.dev/release=demo.local` exactly the
    /// current release's (ConfigMap `round`, Deployment web running `demo/web:TAG`).
    async fn settled(&self, history: &[(u64, &str, &str)], round: &str, tag: &str) {
        let shown = self.history().await;
        assert!(
            shown.iter().all(|(_, s, _)| s != "pending"),
            "a release is pending: {shown:?}"
        );
        assert!(
            shown.iter().filter(|(_, s, _)| s == "deployed").count() <= 1,
            "more than one release is shown deployed: {shown:?}"
        );
        let expected: Vec<(u64, String, String)> = history
            .iter()
            .map(|(r, s, t)| (*r, (*s).to_owned(), (*t).to_owned()))
            .collect();
        assert_eq!(shown, expected);
        let stored = self.stored_statuses().await;
        assert!(
            stored.iter().all(|(_, s)| s != "pending"),
            "a record is stored pending: {stored:?}"
        );
        assert!(self.lease().await.is_none(), "the lock {LEASE} is left");

        let client = self.cluster.client().await;
        let owned = ListParams::default().labels("ferry.dev/release=demo.local");
        let cms: BTreeSet<String> = Api::<ConfigMap>::namespaced(client.clone(), "demo")
            .list(&owned)
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|c| c.metadata.name)
            .collect();
        assert_eq!(cms, BTreeSet::from([round.to_owned()]));
        let deployments = Api::<Deployment>::namespaced(client, "demo")
            .list(&owned)
            .await
            .unwrap()
            .items;
        let images: Vec<(String, String)> = deployments
            .into_iter()
            .map(|d| {
                let image = d.spec.unwrap().template.spec.unwrap().containers[0]
                    .image
                    .clone()
                    .unwrap_or_default();
                (d.metadata.name.unwrap_or_default(), image)
            })
            .collect();
        assert_eq!(
            images,
            vec![("web".to_owned(), format!("demo/web:{tag}"))],
            "the labelled Deployments"
        );
    }

    /// The proxy's log, one line a request, for failure messages.
    fn shown_log(&self) -> String {
        self.proxy
            .log_with_queries()
            .iter()
            .map(|(l, q)| {
                format!(
                    "{} {}?{q} -> {}{}",
                    l.method,
                    l.path,
                    l.status,
                    if l.faulted { " (faulted)" } else { "" }
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Asserts that every fault was used and that each faulted request was sent again
    /// afterwards (same method, path and query) and that the last such request got through.
    fn assert_faulted_then_sent_again(&self) {
        assert_eq!(self.proxy.pending_faults(), 0, "{}", self.shown_log());
        let log = self.proxy.log_with_queries();
        let faulted: Vec<usize> = (0..log.len()).filter(|&i| log[i].0.faulted).collect();
        assert!(!faulted.is_empty(), "no request was faulted");
        for i in faulted {
            let (l, q) = &log[i];
            let same =
                |(m, mq): &(Logged, String)| m.method == l.method && m.path == l.path && mq == q;
            let last = log[i + 1..]
                .iter()
                .rev()
                .find(|e| same(e))
                .unwrap_or_else(|| {
                    panic!(
                        "{} {}?{q} was not sent again:\n{}",
                        l.method,
                        l.path,
                        self.shown_log()
                    )
                });
            if !last.0.faulted {
                assert!(
                    (200..300).contains(&last.0.status) || last.0.status == 409,
                    "{} {}?{q} was sent again but did not get through:\n{}",
                    l.method,
                    l.path,
                    self.shown_log()
                );
            }
        }
    }
}

fn both(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        stdout(out),
        stderr(out)
    )
}

/// Deploys v1 (ConfigMap `one`, tag t1) cleanly, then v2 (ConfigMap `two`, tag t2) with
/// `fault`: it exits 0, the faulted request was sent again, and everything is as without the
/// fault.
async fn second_deploy_survives(fault: Fault) {
    let rig = Rig::start().await;
    rig.deploy_ok("one", "t1").await;
    rig.proxy.reset();
    rig.proxy.add_fault(fault.clone());
    let out = rig.deploy("two", "t2").await;
    assert_eq!(
        code(&out),
        0,
        "{fault:?}\n{}\nproxy log:\n{}",
        both(&out),
        rig.shown_log()
    );
    assert!(
        !stderr(&out).contains("warning:"),
        "{fault:?}: a single retried fault warns\n{}",
        both(&out)
    );
    rig.assert_faulted_then_sent_again();
    rig.settled(
        &[(2, "deployed", "t2"), (1, "superseded", "t1")],
        "two",
        "t2",
    )
    .await;
}

// 1. One 500 on each kind of request in turn.

/// The POST writing the new (pending) release record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_single_faults_500_on_the_record_post() {
    second_deploy_survives(api_error("POST", RECORDS, 500)).await;
}

/// The server-side apply PATCH of the new ConfigMap (the real one, not the plan's dry-run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_single_faults_500_on_an_apply_patch() {
    second_deploy_survives(
        api_error("PATCH", "/api/v1/namespaces/demo/configmaps/two", 500).query_lacks("dryRun"),
    )
    .await;
}

/// The server-side apply PATCH of the Deployment (the real one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_single_faults_500_on_the_deployment_apply_patch() {
    second_deploy_survives(
        api_error(
            "PATCH",
            "/apis/apps/v1/namespaces/demo/deployments/web",
            500,
        )
        .query_lacks("dryRun"),
    )
    .await;
}

/// The PUT marking the new record deployed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_single_faults_500_on_the_record_put_to_deployed() {
    second_deploy_survives(api_error("PUT", &record_path(2), 500)).await;
}

/// The PUT marking the previous record superseded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_single_faults_500_on_the_put_marking_the_previous_superseded() {
    second_deploy_survives(api_error("PUT", &record_path(1), 500)).await;
}

/// The DELETE releasing the lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_single_faults_500_on_the_lease_delete() {
    second_deploy_survives(api_error("DELETE", LEASE_PATH, 500)).await;
}

/// The plan's GET of the Deployment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_single_faults_500_on_the_deployment_get() {
    second_deploy_survives(api_error(
        "GET",
        "/apis/apps/v1/namespaces/demo/deployments/web",
        500,
    ))
    .await;
}

/// The wait's LIST of the Deployments (before it watches them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_single_faults_500_on_the_deployment_list() {
    second_deploy_survives(
        api_error("GET", "/apis/apps/v1/namespaces/demo/deployments", 500)
            .query_contains("limit=")
            .query_lacks("watch"),
    )
    .await;
}

/// The wait's WATCH of the Deployments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_single_faults_500_on_the_deployment_watch() {
    second_deploy_survives(
        api_error("GET", "/apis/apps/v1/namespaces/demo/deployments", 500)
            .query_contains("watch=true"),
    )
    .await;
}

/// The lock's POST creating the lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_single_faults_500_on_the_lease_post() {
    second_deploy_survives(api_error(
        "POST",
        "/apis/coordination.k8s.io/v1/namespaces/demo/leases",
        500,
    ))
    .await;
}

// 2. One dropped connection on an apply PATCH and on the record POST.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_single_faults_connection_dropped_before_an_apply_patch_body() {
    second_deploy_survives(
        Fault::drop_request_body("PATCH", "/api/v1/namespaces/demo/configmaps/two", 0)
            .query_lacks("dryRun"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_single_faults_connection_dropped_inside_an_apply_patch_body() {
    second_deploy_survives(
        Fault::drop_request_body("PATCH", "/api/v1/namespaces/demo/configmaps/two", 20)
            .query_lacks("dryRun"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_single_faults_connection_dropped_inside_an_apply_patch_response() {
    second_deploy_survives(
        Fault::drop_response_body("PATCH", "/api/v1/namespaces/demo/configmaps/two", 20)
            .query_lacks("dryRun"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_single_faults_connection_dropped_before_the_record_post_body() {
    second_deploy_survives(Fault::drop_request_body("POST", RECORDS, 0)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_single_faults_connection_dropped_inside_the_record_post_body() {
    second_deploy_survives(Fault::drop_request_body("POST", RECORDS, 20)).await;
}

/// The server wrote the record; its answer is lost: the retry is told 409 and finds the
/// record it wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_single_faults_connection_dropped_inside_the_record_post_response() {
    second_deploy_survives(Fault::drop_response_body("POST", RECORDS, 20)).await;
}

// 3. The previous record cannot be marked superseded, past the retries.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_single_faults_previous_record_not_marked_superseded_is_repaired_next() {
    let rig = Rig::start().await;
    rig.deploy_ok("one", "t1").await;
    rig.proxy.reset();
    rig.proxy
        .add_fault(api_error("PUT", &record_path(1), 500).times(6));
    let out = rig.deploy("two", "t2").await;
    assert_eq!(code(&out), 0, "{}\n{}", both(&out), rig.shown_log());
    let err = stderr(&out);
    assert!(
        err.lines().any(|l| l
            .starts_with("warning: release v2 is deployed, but v1 could not be marked superseded")
            && l.contains(INJECTED)),
        "{}",
        both(&out)
    );
    assert_eq!(rig.proxy.pending_faults(), 0, "{}", rig.shown_log());
    let puts = rig
        .proxy
        .log()
        .into_iter()
        .filter(|l| l.method == "PUT" && l.path == record_path(1))
        .count();
    assert_eq!(puts, 6, "{}", rig.shown_log());
    // As stored, both say deployed; as shown, only the newest is.
    assert_eq!(
        rig.stored_statuses().await,
        vec![
            ("1".to_owned(), "deployed".to_owned()),
            ("2".to_owned(), "deployed".to_owned())
        ]
    );
    rig.settled(
        &[(2, "deployed", "t2"), (1, "superseded", "t1")],
        "two",
        "t2",
    )
    .await;

    // The next deploy repairs the record, and says so.
    rig.proxy.reset();
    let out = rig.deploy("three", "t3").await;
    assert_eq!(code(&out), 0, "{}", both(&out));
    assert!(
        stderr(&out).contains("repaired the release history: v1"),
        "{}",
        both(&out)
    );
    assert!(
        rig.stored_statuses()
            .await
            .iter()
            .filter(|(_, s)| s == "deployed")
            .eq([&("3".to_owned(), "deployed".to_owned())]),
        "{:?}",
        rig.stored_statuses().await
    );
    rig.settled(
        &[
            (3, "deployed", "t3"),
            (2, "superseded", "t2"),
            (1, "superseded", "t1"),
        ],
        "three",
        "t3",
    )
    .await;
}

// 4. A failing release whose rollback's apply gets one 500.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_single_faults_500_on_the_rollbacks_apply() {
    let rig = Rig::start().await;
    rig.deploy_ok("one", "good1").await;
    rig.proxy.reset();
    // Only the rollback applies with force (the failed release's fields are taken back);
    // ConfigMap `one` is unchanged by then, so the Deployment is what it applies.
    rig.proxy.add_fault(
        api_error(
            "PATCH",
            "/apis/apps/v1/namespaces/demo/deployments/web",
            500,
        )
        .query_contains("force=true")
        .query_lacks("dryRun"),
    );
    let out = rig.deploy("two", "bad2").await;
    assert_eq!(code(&out), 7, "{}\n{}", both(&out), rig.shown_log());
    rig.assert_faulted_then_sent_again();
    rig.settled(
        &[
            (3, "deployed", "good1"),
            (2, "rolled-back", "bad2"),
            (1, "superseded", "good1"),
        ],
        "one",
        "good1",
    )
    .await;
}

// 5. The lock cannot be released, past the retries.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_single_faults_lease_delete_failing_past_the_retries_warns() {
    let rig = Rig::start().await;
    rig.deploy_ok("one", "t1").await;
    rig.proxy.reset();
    rig.proxy
        .add_fault(api_error("DELETE", LEASE_PATH, 500).times(6));
    let out = rig.deploy("two", "t2").await;
    assert_eq!(code(&out), 0, "{}\n{}", both(&out), rig.shown_log());
    let warned = stderr(&out).lines().any(|l| {
        l.starts_with("warning: ")
            && l.contains(LEASE)
            && l.contains(INJECTED)
            && l.contains("expires")
    });
    assert!(
        warned,
        "no warning that the lock expires by itself\n{}",
        both(&out)
    );
    let deletes = rig
        .proxy
        .log()
        .into_iter()
        .filter(|l| l.method == "DELETE" && l.path == LEASE_PATH)
        .count();
    assert_eq!(deletes, 6, "{}", rig.shown_log());
    assert_eq!(rig.proxy.pending_faults(), 0, "{}", rig.shown_log());
    // The lease stays until its TTL; the release is recorded as without the fault.
    assert!(rig.lease().await.is_some());
    assert_eq!(
        rig.history().await,
        vec![
            (2, "deployed".to_owned(), "t2".to_owned()),
            (1, "superseded".to_owned(), "t1".to_owned())
        ]
    );
    // The next deploy, at once, waits for it to expire (5 s), takes it over and releases it.
    rig.proxy.reset();
    let out = rig.deploy("three", "t3").await;
    assert_eq!(code(&out), 0, "{}", both(&out));
    rig.settled(
        &[
            (3, "deployed", "t3"),
            (2, "superseded", "t2"),
            (1, "superseded", "t1"),
        ],
        "three",
        "t3",
    )
    .await;
}
