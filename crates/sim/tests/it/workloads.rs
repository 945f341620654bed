//! StatefulSets, DaemonSets, Jobs, CronJobs and custom resources behave as on a cluster.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;

use ferry_sim::{ImageBehaviour, ImageRule, SimConfig};

use crate::support::{Cluster, fast, fixture};

async fn until<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut check: impl FnMut() -> F,
) -> T {
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if let Some(v) = check().await {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what} never happened"))
}

fn apply<T: serde::Serialize>(value: &T) -> Patch<&T> {
    Patch::Apply(value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stateful_sets_roll_out_in_order_with_claims() {
    let cluster = Cluster::start(fast()).await;
    let client = cluster.client().await;
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), "default");
    let sts = |image: &str| {
        json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
            "spec": {"replicas": 3, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                     "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": image}]}},
                     "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}
        })
    };
    sets.patch(
        "db",
        &PatchParams::apply("test"),
        &apply(&sts("postgres:16")),
    )
    .await
    .unwrap();
    let done = until("the StatefulSet to be ready", || async {
        let s = sets.get("db").await.unwrap();
        let st = s.status.clone()?;
        (st.ready_replicas == Some(3) && st.current_revision == st.update_revision).then_some(s)
    })
    .await;
    let status = done.status.unwrap();
    assert!(status.update_revision.unwrap().starts_with("db-"));
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let mut names: Vec<String> = pods
        .list(&ListParams::default().labels("app=db"))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|p| p.metadata.name.unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["db-0", "db-1", "db-2"]);
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    let claim = claims.get("data-db-0").await.unwrap();
    assert_eq!(claim.status.unwrap().phase.as_deref(), Some("Bound"));
    // an update replaces the pods from the highest ordinal down, to a new revision
    sets.patch(
        "db",
        &PatchParams::apply("test"),
        &apply(&sts("postgres:17")),
    )
    .await
    .unwrap();
    until("the update to finish", || async {
        let s = sets.get("db").await.unwrap();
        let st = s.status?;
        (st.observed_generation == s.metadata.generation
            && st.updated_replicas == Some(3)
            && st.ready_replicas == Some(3)
            && st.current_revision == st.update_revision)
            .then_some(())
    })
    .await;
    // each pod was recreated only once its old self was gone: no create was refused
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), "default");
    let failed: Vec<String> = events
        .list(&ListParams::default().fields("reason=FailedCreate"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|e| e.message)
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    let revisions: Api<k8s_openapi::api::apps::v1::ControllerRevision> =
        Api::namespaced(client, "default");
    let names: Vec<(String, i64)> = revisions
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|r| (r.metadata.name.unwrap(), r.revision))
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn daemon_sets_run_on_every_node_and_jobs_complete_or_fail() {
    let cluster = Cluster::start(SimConfig {
        images: vec![ImageRule::new("failing-task", ImageBehaviour::Crash)],
        ..fast()
    })
    .await;
    let client = cluster.client().await;
    let daemons: Api<DaemonSet> = Api::namespaced(client.clone(), "default");
    let ds = json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": [{"name": "agent", "image": "agent:1"}]}}}});
    daemons
        .patch("agent", &PatchParams::apply("test"), &apply(&ds))
        .await
        .unwrap();
    let status = until("the DaemonSet to be available", || async {
        let st = daemons.get("agent").await.unwrap().status?;
        (st.number_available == Some(3)).then_some(st)
    })
    .await;
    assert_eq!(
        (status.desired_number_scheduled, status.number_ready),
        (3, 3)
    );

    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    let job = |name: &str, image: &str| {
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
        "spec": {"backoffLimit": 1, "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "task", "image": image}]}}}})
    };
    jobs.patch(
        "migrate",
        &PatchParams::apply("test"),
        &apply(&job("migrate", "migrate:1")),
    )
    .await
    .unwrap();
    jobs.patch(
        "broken",
        &PatchParams::apply("test"),
        &apply(&job("broken", "failing-task:1")),
    )
    .await
    .unwrap();
    let condition = |j: &Job, t: &str| {
        j.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == t && c.status == "True"))
    };
    let done = until("the Job to complete", || async {
        let j = jobs.get("migrate").await.unwrap();
        condition(&j, "Complete").then_some(j)
    })
    .await;
    assert_eq!(done.status.unwrap().succeeded, Some(1));
    let failed = until("the Job to fail", || async {
        let j = jobs.get("broken").await.unwrap();
        condition(&j, "Failed").then_some(j)
    })
    .await;
    let reason = failed
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Failed")
        .unwrap()
        .reason;
    assert_eq!(reason.as_deref(), Some("BackoffLimitExceeded"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cron_jobs_schedule_jobs() {
    let cluster = Cluster::start(SimConfig {
        speed: 600.0,
        ..fast()
    })
    .await;
    let client = cluster.client().await;
    let cronjobs: Api<k8s_openapi::api::batch::v1::CronJob> =
        Api::namespaced(client.clone(), "default");
    let cj = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "report"},
        "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "r", "image": "report:1"}]}}}}}});
    cronjobs
        .patch("report", &PatchParams::apply("test"), &apply(&cj))
        .await
        .unwrap();
    let jobs: Api<Job> = Api::namespaced(client, "default");
    let job = until("a scheduled Job", || async {
        jobs.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .next()
    })
    .await;
    assert!(job.metadata.name.unwrap().starts_with("report-"));
    until("lastScheduleTime", || async {
        cronjobs
            .get("report")
            .await
            .unwrap()
            .status?
            .last_schedule_time
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn custom_resources_are_served_once_their_crd_is_applied() {
    let cluster = Cluster::start(fast()).await;
    cluster.kubectl_ok(&[
        "apply",
        "--server-side",
        "-f",
        fixture("crd.yaml").to_str().unwrap(),
    ]);
    cluster.kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.example.com",
        "--timeout=30s",
    ]);
    cluster.kubectl_ok(&[
        "apply",
        "--server-side",
        "-f",
        fixture("widget.yaml").to_str().unwrap(),
    ]);
    let got = cluster.kubectl_ok(&["get", "widgets"]);
    let header: Vec<&str> = got.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "SIZE", "COLOUR"]);
    assert!(
        got.lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .eq(["gizmo", "3", "blue"]),
        "{got}"
    );
    // the schema is enforced: unknown fields under Strict, wrong types
    let bad = cluster.dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: bad\nspec:\n  size: big\n",
    )
    .unwrap();
    let out = cluster.kubectl(&["apply", "--server-side", "-f", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        crate::support::text(&out).contains("spec.size"),
        "{}",
        crate::support::text(&out)
    );
    // deleting the CRD deletes its resources
    cluster.kubectl_ok(&["delete", "crd", "widgets.example.com"]);
    let out = cluster.kubectl(&["get", "widgets"]);
    assert!(!out.status.success());
}
