//! The acceptance scenario with kube-rs, the client ferry uses: apply through discovery,
//! watch rollouts with `kube::runtime::watcher`, fail on the progress deadline, roll back, and
//! delete with garbage collection.

use std::time::Duration;

use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::{Discovery, Scope};
use kube::runtime::{WatchStreamExt as _, watcher};
use serde::Deserialize as _;
use serde_json::json;

use ferry_sim::{ImageBehaviour, ImageRule, SimConfig};

use crate::support::{Cluster, fast, fixture};

/// Applies every document of a multi-document YAML file server-side, as ferry's deploy engine
/// does; returns the applied objects.
pub(crate) async fn apply_file(
    client: &kube::Client,
    path: &std::path::Path,
    manager: &str,
) -> Vec<DynamicObject> {
    let text = std::fs::read_to_string(path).unwrap();
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    let mut applied = Vec::new();
    for document in serde_norway::Deserializer::from_str(&text) {
        let object = DynamicObject::deserialize(document).unwrap();
        let types = object.types.as_ref().unwrap();
        let gvk = GroupVersionKind::try_from(types).unwrap();
        let (resource, caps) = discovery.resolve_gvk(&gvk).unwrap();
        let name = object.metadata.name.clone().unwrap();
        let api: Api<DynamicObject> = if caps.scope == Scope::Namespaced {
            Api::namespaced_with(
                client.clone(),
                object.metadata.namespace.as_deref().unwrap(),
                &resource,
            )
        } else {
            Api::all_with(client.clone(), &resource)
        };
        let result = api
            .patch(&name, &PatchParams::apply(manager), &Patch::Apply(&object))
            .await
            .unwrap();
        applied.push(result);
    }
    applied
}

fn rolled_out(d: &Deployment) -> bool {
    let (Some(spec), Some(status)) = (&d.spec, &d.status) else {
        return false;
    };
    let want = spec.replicas.unwrap_or(1);
    status.observed_generation >= d.metadata.generation
        && status.updated_replicas == Some(want)
        && status.replicas == Some(want)
        && status.available_replicas == Some(want)
}

fn deadline_exceeded(d: &Deployment) -> bool {
    d.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
            })
        })
}

/// Watches the Deployment until `done` holds (bounded wait).
async fn watch_until(
    api: &Api<Deployment>,
    name: &str,
    done: fn(&Deployment) -> bool,
) -> Deployment {
    let stream = watcher(
        api.clone(),
        watcher::Config::default().fields(&format!("metadata.name={name}")),
    )
    .applied_objects();
    let found = tokio::time::timeout(Duration::from_secs(60), async {
        let mut stream = std::pin::pin!(stream);
        while let Some(d) = stream.try_next().await.unwrap() {
            if done(&d) {
                return d;
            }
        }
        panic!("the watch ended");
    })
    .await;
    found.unwrap_or_else(|_| panic!("deployment {name} never reached the condition"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kube_rs_drives_an_app_through_its_life() {
    let cluster = Cluster::start(SimConfig {
        images: vec![ImageRule::new("*:broken", ImageBehaviour::PullForever)],
        ..fast()
    })
    .await;
    let client = cluster.client().await;
    let applied = apply_file(&client, &fixture("app.yaml"), "ferry-test").await;
    assert_eq!(applied.len(), 9);

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    let done = watch_until(&deployments, "web", rolled_out).await;
    assert_eq!(done.status.as_ref().unwrap().ready_replicas, Some(3));
    let conditions = done.status.unwrap().conditions.unwrap();
    assert!(conditions.iter().any(|c| c.type_ == "Available"
        && c.status == "True"
        && c.reason.as_deref() == Some("MinimumReplicasAvailable")));

    // pods are Running, Ready, on nodes, with IPs
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let list = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    assert_eq!(list.items.len(), 3);
    for pod in &list.items {
        let status = pod.status.as_ref().unwrap();
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert!(status.pod_ip.is_some() && pod.spec.as_ref().unwrap().node_name.is_some());
    }

    // the LoadBalancer gets its hostname, seen through a watcher
    let services: Api<Service> = Api::namespaced(client.clone(), "shop");
    let svc = tokio::time::timeout(Duration::from_secs(60), async {
        let stream = watcher(services.clone(), watcher::Config::default()).applied_objects();
        let mut stream = std::pin::pin!(stream);
        while let Some(svc) = stream.try_next().await.unwrap() {
            let ingress = svc
                .status
                .as_ref()
                .and_then(|s| s.load_balancer.as_ref())
                .and_then(|lb| lb.ingress.clone());
            if ingress.is_some_and(|i| !i.is_empty()) {
                return svc;
            }
        }
        panic!("the watch ended");
    })
    .await
    .expect("the load balancer got no address");
    let hostname = svc.status.unwrap().load_balancer.unwrap().ingress.unwrap()[0]
        .hostname
        .clone()
        .unwrap();
    assert!(
        hostname.ends_with(".elb.us-east-1.amazonaws.com"),
        "{hostname}"
    );

    // update the image server-side, watch the rollout
    let image = |tag: &str| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
               "spec": {"template": {"spec": {"containers": [{"name": "web", "image": format!("nginx:{tag}")}]}}}})
    };
    // another manager than the one that applied the app: an applier owns exactly what it last applied
    let force = PatchParams::apply("image-updater").force();
    deployments
        .patch("web", &force, &Patch::Apply(image("1.28")))
        .await
        .unwrap();
    let updated = watch_until(&deployments, "web", rolled_out).await;
    assert_eq!(updated.metadata.generation, Some(2));
    assert_eq!(
        updated.metadata.annotations.unwrap()["deployment.kubernetes.io/revision"],
        "2"
    );

    // an image that never pulls fails the rollout on its deadline
    deployments
        .patch("web", &force, &Patch::Apply(image("broken")))
        .await
        .unwrap();
    let failed = watch_until(&deployments, "web", deadline_exceeded).await;
    let progressing = failed
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Progressing")
        .unwrap();
    assert_eq!(progressing.status, "False");
    assert!(
        progressing
            .message
            .unwrap()
            .ends_with("has timed out progressing.")
    );
    let stuck = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    let waiting: Vec<String> = stuck
        .items
        .iter()
        .filter_map(|p| {
            p.status.as_ref()?.container_statuses.as_ref()?[0]
                .state
                .as_ref()?
                .waiting
                .as_ref()?
                .reason
                .clone()
        })
        .collect();
    assert!(
        waiting
            .iter()
            .any(|r| r == "ImagePullBackOff" || r == "ErrImagePull"),
        "{waiting:?}"
    );

    // roll back by applying the previous image: the old ReplicaSet comes back
    deployments
        .patch("web", &force, &Patch::Apply(image("1.28")))
        .await
        .unwrap();
    let back = watch_until(&deployments, "web", rolled_out).await;
    assert!(!deadline_exceeded(&back));
    let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "shop");
    let sets = replica_sets.list(&ListParams::default()).await.unwrap();
    assert_eq!(sets.items.len(), 3);
    let active: Vec<_> = sets
        .items
        .iter()
        .filter(|rs| rs.spec.as_ref().unwrap().replicas.unwrap_or(0) > 0)
        .collect();
    assert_eq!(active.len(), 1);
    assert_eq!(
        active[0].metadata.annotations.as_ref().unwrap()["deployment.kubernetes.io/revision"],
        "4"
    );

    // delete the namespace: everything in it goes, the ReplicaSets and pods too
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .delete("shop", &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if namespaces.get_opt("shop").await.unwrap().is_none() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the namespace was never removed");
    assert!(
        replica_sets
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        pods.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_a_deployment_collects_its_replica_sets_and_pods() {
    let cluster = Cluster::start(fast()).await;
    let client = cluster.client().await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let d: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "api"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "api"}},
                 "template": {"metadata": {"labels": {"app": "api"}}, "spec": {"containers": [{"name": "api", "image": "api:1"}]}}}
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
    watch_until(&deployments, "api", rolled_out).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    assert_eq!(
        pods.list(&ListParams::default().labels("app=api"))
            .await
            .unwrap()
            .items
            .len(),
        2
    );

    // foreground: the Deployment stays until its dependents are gone
    deployments
        .delete("api", &DeleteParams::foreground())
        .await
        .unwrap();
    let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let gone = deployments.get_opt("api").await.unwrap().is_none();
            let rs = replica_sets
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .len();
            let pods_left = pods
                .list(&ListParams::default().labels("app=api"))
                .await
                .unwrap()
                .items
                .len();
            if gone {
                assert_eq!(
                    (rs, pods_left),
                    (0, 0),
                    "the owner went before its dependents"
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("foreground deletion never finished");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn watches_resume_report_gone_and_send_bookmarks() {
    let cluster = Cluster::start(SimConfig {
        watch_history: 5,
        bookmark_interval: Duration::from_millis(200),
        ..fast()
    })
    .await;
    let client = cluster.client().await;
    let config_maps: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), "default");
    let list = config_maps.list(&ListParams::default()).await.unwrap();
    let start = list.metadata.resource_version.unwrap();
    for i in 0..10 {
        let cm = serde_json::from_value(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("c{i}")}}),
        )
        .unwrap();
        config_maps
            .create(&PostParams::default(), &cm)
            .await
            .unwrap();
    }
    // ten changes since `start`, five kept: too old
    let params = kube::api::WatchParams::default();
    let mut events = std::pin::pin!(config_maps.watch(&params, &start).await.unwrap());
    match events.next().await.unwrap() {
        Ok(kube::api::WatchEvent::Error(err)) => {
            assert_eq!((err.code, err.reason.as_str()), (410, "Expired"))
        }
        other => panic!("expected 410 Gone, got {other:?}"),
    }
    // a recent version resumes; bookmarks arrive while idle
    let recent = config_maps
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let params = kube::api::WatchParams {
        bookmarks: true,
        ..kube::api::WatchParams::default()
    };
    let mut events = std::pin::pin!(config_maps.watch(&params, &recent).await.unwrap());
    let cm = serde_json::from_value(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late"}}),
    )
    .unwrap();
    config_maps
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    match events.next().await.unwrap().unwrap() {
        kube::api::WatchEvent::Added(cm) => assert_eq!(cm.metadata.name.as_deref(), Some("late")),
        other => panic!("expected ADDED, got {other:?}"),
    }
    match tokio::time::timeout(Duration::from_secs(60), events.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
    {
        kube::api::WatchEvent::Bookmark(b) => assert!(!b.metadata.resource_version.is_empty()),
        other => panic!("expected a BOOKMARK, got {other:?}"),
    }
    // the high-level watcher lists and watches all of them
    let stream = watcher(config_maps.clone(), watcher::Config::default()).applied_objects();
    let mut stream = std::pin::pin!(stream);
    let mut names = std::collections::BTreeSet::new();
    while names.len() < 12 {
        let cm = tokio::time::timeout(Duration::from_secs(60), stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        names.insert(cm.metadata.name.unwrap());
    }
    assert!(names.contains("late") && names.contains("c0") && names.contains("kube-root-ca.crt"));
}
