//! Server-side apply: applying the same objects twice changes nothing (no resourceVersion
//! moves, no writes counted), and another field manager gets 409 unless it forces.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::json;

use crate::kube_rs::apply_file;
use crate::support::{Cluster, fast, fixture};

fn versions(objects: &[DynamicObject]) -> BTreeMap<String, String> {
    objects
        .iter()
        .map(|o| {
            (
                format!(
                    "{}/{}",
                    o.types.as_ref().unwrap().kind,
                    o.metadata.name.as_deref().unwrap()
                ),
                o.metadata.resource_version.clone().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn applying_the_same_objects_twice_changes_nothing() {
    let cluster = Cluster::start(fast()).await;
    let client = cluster.client().await;
    apply_file(&client, &fixture("app.yaml"), "ferry").await;
    // let the controllers settle: the rollout done and both load balancers assigned, the last
    // things they do on their own
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    let services: Api<Service> = Api::namespaced(client.clone(), "shop");
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), "shop");
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let svc = services.get("web").await.unwrap();
            let ing = ingresses.get("web").await.unwrap();
            let d = deployments.get("web").await.unwrap();
            let settled = svc
                .status
                .and_then(|s| s.load_balancer?.ingress)
                .is_some_and(|i| !i.is_empty())
                && ing
                    .status
                    .and_then(|s| s.load_balancer?.ingress)
                    .is_some_and(|i| !i.is_empty())
                && d.status.and_then(|s| s.conditions).is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c.reason.as_deref() == Some("NewReplicaSetAvailable"))
                });
            if settled {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap();

    let first = apply_file(&client, &fixture("app.yaml"), "ferry").await;
    let writes_before = cluster.sim.metrics().total_writes();
    let second = apply_file(&client, &fixture("app.yaml"), "ferry").await;
    let metrics = cluster.sim.metrics();
    assert_eq!(
        versions(&first),
        versions(&second),
        "a re-apply moved resourceVersions"
    );
    assert_eq!(
        metrics.total_writes() - writes_before,
        0,
        "a no-op apply counted as a write"
    );
    assert!(metrics.requests("apply", "deployments.apps") >= 3);
    // the request log says the same, request by request
    let log = cluster.sim.request_log();
    let last_applies: Vec<_> = log
        .iter()
        .rev()
        .filter(|r| r.verb == "apply")
        .take(9)
        .collect();
    assert_eq!(last_applies.len(), 9);
    assert!(
        last_applies
            .iter()
            .all(|r| !r.wrote && r.code == 200 && r.field_manager == "ferry")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_conflicting_manager_gets_409_unless_it_forces() {
    let cluster = Cluster::start(fast()).await;
    let client = cluster.client().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let cm = |value: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"mode": value, "region": "eu"}});
    let apply_mode = |params: PatchParams, value: &str| {
        let object = cm(value);
        let api = api.clone();
        async move { api.patch("settings", &params, &Patch::Apply(object)).await }
    };
    apply_mode(PatchParams::apply("ferry"), "blue")
        .await
        .unwrap();

    // the same value from another manager is shared ownership, not a conflict
    api.patch("settings", &PatchParams::apply("other"), &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"region": "eu"}})))
        .await
        .unwrap();

    let err = apply_mode(PatchParams::apply("other"), "green")
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 409);
            assert_eq!(status.reason, "Conflict");
            assert!(
                status
                    .message
                    .contains("conflict with \"ferry\": .data.mode"),
                "{}",
                status.message
            );
        }
        other => panic!("expected a 409, got {other:?}"),
    }
    assert_eq!(
        api.get("settings").await.unwrap().data.unwrap()["mode"],
        "blue"
    );

    let forced = apply_mode(PatchParams::apply("other").force(), "green")
        .await
        .unwrap();
    assert_eq!(forced.data.unwrap()["mode"], "green");
    let managers: Vec<(String, String)> = forced
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .map(|m| (m.manager.unwrap(), m.operation.unwrap()))
        .collect();
    assert!(
        managers.contains(&("ferry".into(), "Apply".into()))
            && managers.contains(&("other".into(), "Apply".into()))
    );

    // now the first manager is the one in conflict
    let err = apply_mode(PatchParams::apply("ferry"), "blue")
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 409 && s.message.contains("\"other\"")),
        "{err:?}"
    );

    // an update (PUT, merge patch) never conflicts: it takes the field over
    api.patch(
        "settings",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"mode": "red"}})),
    )
    .await
    .unwrap();
    let err = apply_mode(PatchParams::apply("other"), "green")
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 409),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dry_run_and_stale_updates() {
    let cluster = Cluster::start(fast()).await;
    let client = cluster.client().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dry"}, "data": {"a": "1"}});
    let mut params = PatchParams::apply("ferry");
    params.dry_run = true;
    let preview = api.patch("dry", &params, &Patch::Apply(&cm)).await.unwrap();
    assert_eq!(preview.data.unwrap()["a"], "1");
    assert!(
        api.get_opt("dry").await.unwrap().is_none(),
        "a dry run created the object"
    );
    let created = api
        .patch("dry", &PatchParams::apply("ferry"), &Patch::Apply(&cm))
        .await
        .unwrap();
    // an update with a stale resourceVersion is refused
    let mut stale = created.clone();
    api.patch(
        "dry",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"a": "2"}})),
    )
    .await
    .unwrap();
    stale.data = Some(BTreeMap::from([("a".to_owned(), "3".to_owned())]));
    let err = api
        .replace("dry", &kube::api::PostParams::default(), &stale)
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 409 && s.reason == "Conflict"),
        "{err:?}"
    );
}
