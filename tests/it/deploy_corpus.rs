//! The bad-input corpus of `ferry deploy` (tests/fixtures/bad-deploy): every case must exit 3
//! with an error naming its file and object, and the cluster must see zero writes.

use super::deploy_support::Cluster;
use super::{code, root, stderr};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_release_is_refused_before_any_write() {
    let cluster = Cluster::start(20.0).await;
    let corpus = root().join("tests/fixtures/bad-deploy");
    let mut cases: Vec<_> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("ferry.toml").is_file())
        .collect();
    cases.sort();
    assert!(cases.len() >= 40, "the corpus has {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        // A case may need a release first (an immutable change, a value someone else
        // changed): `before/` is deployed, then `before/patch.json` applied as another actor.
        if let Err(why) = prepare(&cluster, &case.join("before")).await {
            failures.push(format!("{name}: {why}"));
            continue;
        }
        let before = cluster.sim.metrics().total_writes();
        let config = case.join("ferry.toml");
        let out = cluster
            .ferry(&[
                "deploy",
                "--config",
                config.to_str().unwrap(),
                "--env",
                "local",
                "--tag",
                "abc123",
            ])
            .await;
        let err = stderr(&out);
        if code(&out) != 3 {
            failures.push(format!("{name}: exit {} (want 3)\n{err}", code(&out)));
            continue;
        }
        let expect = std::fs::read_to_string(case.join("expect")).unwrap();
        for needle in expect.lines().filter(|l| !l.is_empty()) {
            if !err.contains(needle) {
                failures.push(format!("{name}: stderr lacks {needle:?}\n{err}"));
            }
        }
        let writes = cluster.sim.metrics().total_writes();
        if writes != before {
            failures.push(format!(
                "{name}: the cluster saw {} writes",
                writes - before
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

/// Deploys a case's `before/` release and applies its `patch.json` (another actor's change).
async fn prepare(cluster: &Cluster, before: &std::path::Path) -> Result<(), String> {
    if !before.is_dir() {
        return Ok(());
    }
    let config = before.join("ferry.toml");
    let out = cluster
        .ferry(&[
            "deploy",
            "--config",
            config.to_str().unwrap(),
            "--env",
            "local",
            "--tag",
            "abc123",
        ])
        .await;
    if code(&out) != 0 {
        return Err(format!(
            "its before/ release exits {}\n{}",
            code(&out),
            stderr(&out)
        ));
    }
    let Ok(text) = std::fs::read_to_string(before.join("patch.json")) else {
        return Ok(());
    };
    let p: serde_json::Value = serde_json::from_str(&text).unwrap();
    let s = |k: &str| p[k].as_str().unwrap().to_owned();
    let resource = kube::discovery::ApiResource {
        group: String::new(),
        version: "v1".into(),
        api_version: "v1".into(),
        kind: String::new(),
        plural: s("resource"),
    };
    let api: kube::Api<kube::api::DynamicObject> =
        kube::Api::namespaced_with(cluster.client().await, &s("namespace"), &resource);
    let apply = p["apply"].as_bool() == Some(true);
    let params = if apply {
        kube::api::PatchParams::apply(&s("manager")).force()
    } else {
        kube::api::PatchParams {
            field_manager: Some(s("manager")),
            ..kube::api::PatchParams::default()
        }
    };
    let patch = if apply {
        kube::api::Patch::Apply(p["patch"].clone())
    } else {
        kube::api::Patch::Merge(p["patch"].clone())
    };
    api.patch(&s("name"), &params, &patch)
        .await
        .map(|_| ())
        .map_err(|e| format!("its patch.json fails: {e}"))
}
