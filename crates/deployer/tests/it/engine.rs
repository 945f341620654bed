//! The engine against an in-process ferry-sim: a seed-shaped release deploys, becomes healthy
//! and prints its load balancer; the same release again writes nothing.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use ferry_deployer::clock::FnClock;
use ferry_deployer::engine::{Engine, Outcome, ReleaseInput, Settings};
use ferry_deployer::events::Collect;
use ferry_deployer::images;

async fn sim(speed: f64) -> (ferry_sim::SimHandle, kube::Client) {
    let sim = ferry_sim::Sim::builder()
        .config(ferry_sim::SimConfig {
            speed,
            ..ferry_sim::SimConfig::default()
        })
        .start()
        .await
        .unwrap();
    let kc = kube::config::Kubeconfig::from_yaml(&sim.kubeconfig_yaml()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    (sim, kube::Client::try_from(config).unwrap())
}

fn clock() -> ferry_deployer::clock::SharedClock {
    #[expect(
        clippy::disallowed_methods,
        reason = "lease times in a test against a live simulator"
    )]
    Arc::new(FnClock(std::time::SystemTime::now))
}

async fn release(dir: &Path, tag: &str, images: &[(&str, &str)]) -> ReleaseInput {
    let images: BTreeMap<String, String> = images
        .iter()
        .map(|(n, r)| ((*n).to_owned(), (*r).to_owned()))
        .collect();
    let mut manifests = ferry_deployer::render::render(dir).unwrap();
    let (pins, _) = images::resolve(&images, tag, None).await;
    assert!(images::pin(&mut manifests, &images, &pins).is_empty());
    ReleaseInput {
        manifests,
        tag: Some(tag.to_owned()),
        commit: None,
        images: pins,
        problems: Vec::new(),
    }
}

async fn deploy_then_redeploy(example: &str, app: &str, images: &[(&str, &str)]) {
    let (sim, client) = sim(20.0).await;
    let dir = ferry_testkit::workspace_root()
        .join("examples")
        .join(example)
        .join("k8s");
    let mut settings = Settings::new(app, "test", "engine test");
    settings.namespace = app.into();
    let events = Arc::new(Collect::default());
    let engine = Engine::new(client.clone(), settings.clone(), clock(), events.clone());
    let outcome = engine
        .deploy(release(&dir, "abc1234", images).await)
        .await
        .unwrap();
    let Outcome::Deployed {
        revision,
        unchanged,
        load_balancers,
    } = outcome
    else {
        panic!("{outcome:?}\n{:#?}", events.events())
    };
    assert_eq!((revision, unchanged), (1, false));
    assert_eq!(load_balancers.len(), 1, "{load_balancers:?}");
    assert!(!load_balancers[0].1.is_empty(), "{load_balancers:?}");

    let before = sim.metrics().total_writes();
    let engine = Engine::new(client, settings, clock(), Arc::new(Collect::default()));
    let outcome = engine
        .deploy(release(&dir, "abc1234", images).await)
        .await
        .unwrap();
    assert!(
        matches!(
            outcome,
            Outcome::Deployed {
                revision: 1,
                unchanged: true,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(sim.metrics().total_writes(), before);
    sim.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_004_deploys_then_redeploys_without_writes() {
    deploy_then_redeploy(
        "cloudage",
        "cloudage",
        &[(
            "cloudage",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/cloudage",
        )],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_000_deploys_then_redeploys_without_writes() {
    deploy_then_redeploy(
        "cloudtolocalllm",
        "cloudtolocalllm",
        &[
            ("web", "cloudtolocalllm/cloudtolocalllm-web"),
            ("api", "cloudtolocalllm/cloudtolocalllm-api"),
        ],
    )
    .await;
}

/// History is bounded: after 12 releases the 10 newest records remain (the Secrets themselves,
/// typed and labelled so one LIST finds them), the newest deployed and the rest superseded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_keeps_the_ten_newest_releases() {
    let (sim, client) = sim(20.0).await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::new("hist", "test", "engine test");
    settings.namespace = "hist".into();
    for i in 1..=12 {
        std::fs::write(
            dir.path().join("app.yaml"),
            format!(
                "apiVersion: v1\nkind: Namespace\nmetadata: {{name: hist}}\n---\n\
                 apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: settings, namespace: hist}}\n\
                 data: {{release: \"{i}\"}}\n"
            ),
        )
        .unwrap();
        let engine = Engine::new(
            client.clone(),
            settings.clone(),
            clock(),
            Arc::new(Collect::default()),
        );
        let outcome = engine
            .deploy(release(dir.path(), &format!("t{i}"), &[]).await)
            .await
            .unwrap();
        assert!(
            matches!(outcome, Outcome::Deployed { revision, unchanged: false, .. } if revision == i),
            "{i}: {outcome:?}"
        );
    }
    let store = ferry_deployer::release::RecordStore::new(&client, "hist", "hist", "test");
    let records = store.list().await.unwrap();
    let rows: Vec<(u32, String, Option<String>)> = records
        .iter()
        .map(|r| (r.revision, r.status.to_string(), r.tag.clone()))
        .collect();
    let want: Vec<(u32, String, Option<String>)> = (3..=12)
        .map(|i| {
            let status = if i == 12 { "deployed" } else { "superseded" };
            (i, status.to_owned(), Some(format!("t{i}")))
        })
        .collect();
    assert_eq!(rows, want);
    // The records are Secrets of ferry's own type with a prefixed name, found by their labels.
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(client.clone(), "hist");
    let listed = secrets
        .list(&kube::api::ListParams::default().labels("ferry.dev/app=hist,ferry.dev/env=test"))
        .await
        .unwrap();
    let mut names: Vec<String> = listed
        .items
        .iter()
        .inspect(|s| {
            assert_eq!(
                s.type_.as_deref(),
                Some(ferry_deployer::release::RECORD_TYPE)
            )
        })
        .filter_map(|s| s.metadata.name.clone())
        .collect();
    names.sort();
    assert_eq!(names.len(), 10, "{names:?}");
    assert!(
        names.contains(&"ferry.release.v1.hist.test.v12".to_owned())
            && !names.contains(&"ferry.release.v1.hist.test.v2".to_owned()),
        "{names:?}"
    );
    sim.shutdown().await.unwrap();
}

/// The lock (seed property 10): a holder renews its lease, so it keeps the lock well past one
/// TTL; a holder that stops renewing (a killed deploy: dropped without release) loses it to the
/// next one once the lease has expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_holder_keeps_the_lock_and_a_dead_one_loses_it() {
    use ferry_deployer::lock::{LeaseId, LockError, LockOptions, acquire};
    use std::time::Duration;
    let (sim, client) = sim(1.0).await;
    let id = |holder: &str| LeaseId {
        namespace: "default".into(),
        app: "locked".into(),
        env: "test".into(),
        holder: holder.into(),
    };
    let no_wait = LockOptions {
        ttl: Duration::from_secs(1),
        wait: false,
        max_wait: Duration::from_secs(30),
    };
    let sink = Collect::default();
    let first = acquire(&client, &id("first"), &no_wait, clock(), &sink)
        .await
        .unwrap();
    // Three TTLs on, the first holder still has it: it renews.
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let busy = acquire(&client, &id("second"), &no_wait, clock(), &sink)
            .await
            .unwrap_err();
        assert!(
            matches!(&busy, LockError::Busy { holder, .. } if holder.contains("first")),
            "{busy}"
        );
    }
    // The first holder dies without releasing; the second, waiting, gets the lock.
    drop(first);
    let wait = LockOptions {
        wait: true,
        ..no_wait
    };
    let second = acquire(&client, &id("second"), &wait, clock(), &sink)
        .await
        .unwrap();
    assert!(second.waited());
    second.release().await.unwrap();
    // Released: the next one takes it at once.
    acquire(&client, &id("third"), &no_wait, clock(), &sink)
        .await
        .unwrap()
        .release()
        .await
        .unwrap();
    sim.shutdown().await.unwrap();
}

fn target(object: serde_json::Value) -> ferry_deployer::plan::Target {
    ferry_deployer::plan::Target {
        manifest: ferry_deployer::manifest::Manifest {
            source: ferry_deployer::manifest::Source::document("app.yaml", 1),
            object,
        },
        resource: kube::discovery::ApiResource {
            group: String::new(),
            version: "v1".into(),
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            plural: "configmaps".into(),
        },
        namespaced: true,
    }
}

/// The apply request itself: Strict refuses an unknown field with the server's 400 naming it,
/// Warn accepts it and returns the server's `Warning` header, and a dry-run writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applies_are_strict_and_keep_the_servers_warnings() {
    use ferry_deployer::apply::{ApplyOptions, FieldValidation, server_side_apply};
    let (sim, client) = sim(20.0).await;
    let t = target(serde_json::json!({"apiVersion":"v1","kind":"ConfigMap",
        "metadata":{"name":"settings","namespace":"default"},"data":{"a":"b"},"dta":{"x":"y"}}));
    let opts = |validation, dry_run| ApplyOptions {
        dry_run,
        force: false,
        validation,
    };
    let before = sim.metrics().total_writes();
    let err = server_side_apply(
        &client,
        &t,
        &t.manifest.object,
        opts(FieldValidation::Strict, true),
    )
    .await
    .unwrap_err();
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 400, "{s:?}");
            assert!(s.message.contains("unknown field \"dta\""), "{}", s.message);
        }
        other => panic!("{other}"),
    }
    let applied = server_side_apply(
        &client,
        &t,
        &t.manifest.object,
        opts(FieldValidation::Warn, true),
    )
    .await
    .unwrap();
    assert_eq!(applied.warnings, ["unknown field \"dta\""]);
    assert_eq!(applied.object["data"]["a"], "b");
    assert_eq!(
        sim.metrics().total_writes(),
        before,
        "dry-runs write nothing"
    );
    let applied = server_side_apply(
        &client,
        &t,
        &t.manifest.object,
        opts(FieldValidation::Ignore, false),
    )
    .await
    .unwrap();
    assert!(applied.warnings.is_empty(), "{:?}", applied.warnings);
    assert!(applied.object.get("dta").is_none());
}

/// The repair on start reads the live objects: a `pending` record whose objects are all live,
/// ready and running its images (its deploy stopped after the rollout) becomes `deployed`, the
/// one before it `superseded`; a `pending` record whose objects are not there is `failed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_repair_on_start_reads_the_live_objects() {
    use ferry_deployer::release::{RecordStore, ReleaseStatus};
    let (sim, client) = sim(20.0).await;
    let dir = ferry_testkit::workspace_root().join("examples/cloudage/k8s");
    let images = [(
        "cloudage",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/cloudage",
    )];
    let mut settings = Settings::new("cloudage", "test", "engine test");
    settings.namespace = "cloudage".into();
    let engine = Engine::new(
        client.clone(),
        settings.clone(),
        clock(),
        Arc::new(Collect::default()),
    );
    for tag in ["aaa1111", "bbb2222"] {
        let outcome = engine
            .deploy(release(&dir, tag, &images).await)
            .await
            .unwrap();
        assert!(matches!(outcome, Outcome::Deployed { .. }), "{outcome:?}");
    }
    // As if v2's deploy had been killed after its rollout, before it marked its records.
    let store = RecordStore::new(&client, "cloudage", "cloudage", "test");
    let mut h = store.list().await.unwrap();
    h[0].status = ReleaseStatus::Deployed;
    h[1].status = ReleaseStatus::Pending;
    store.update(&h[0]).await.unwrap();
    store.update(&h[1]).await.unwrap();
    let events = Arc::new(Collect::default());
    let engine = Engine::new(client.clone(), settings.clone(), clock(), events.clone());
    let outcome = engine
        .deploy(release(&dir, "ccc3333", &images).await)
        .await
        .unwrap();
    assert!(
        matches!(outcome, Outcome::Deployed { revision: 3, .. }),
        "{outcome:?}"
    );
    let warnings: Vec<String> = events
        .events()
        .into_iter()
        .filter_map(|e| match e {
            ferry_deployer::events::DeployEvent::Warning { message } => Some(message),
            _ => None,
        })
        .collect();
    assert!(
        warnings.iter().any(|w| w
            .contains("v2 was pending, but every object of it is live and ready: marked deployed")),
        "{warnings:#?}"
    );
    let h = store.list().await.unwrap();
    let statuses: Vec<ReleaseStatus> = h.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [
            ReleaseStatus::Superseded,
            ReleaseStatus::Superseded,
            ReleaseStatus::Deployed
        ]
    );
    sim.shutdown().await.unwrap();
}
