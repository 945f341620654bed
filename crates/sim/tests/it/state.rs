//! The state file: a cluster survives a restart, and two simulators cannot share one file.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use ferry_sim::{Sim, SimError};

use crate::support::{Cluster, fast};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn state_survives_a_restart_and_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sim.json");
    let first = Cluster::start_with(Sim::builder().config(fast()).state_file(&path)).await;
    let api: Api<ConfigMap> = Api::namespaced(first.client().await, "default");
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kept"}, "data": {"k": "v"}});
    let created = api
        .patch("kept", &PatchParams::apply("ferry"), &Patch::Apply(&cm))
        .await
        .unwrap();
    let rv: u64 = created.metadata.resource_version.unwrap().parse().unwrap();

    // a second simulator on the same file is refused while the first runs
    let err = Sim::builder().state_file(&path).start().await.unwrap_err();
    assert!(matches!(err, SimError::StateLocked { .. }), "{err}");
    assert!(
        err.to_string().contains("in use by another simulator"),
        "{err}"
    );

    first.sim.shutdown().await.unwrap();
    let second = Cluster::start_with(Sim::builder().config(fast()).state_file(&path)).await;
    let api: Api<ConfigMap> = Api::namespaced(second.client().await, "default");
    let kept = api.get("kept").await.unwrap();
    assert_eq!(kept.data.unwrap()["k"], "v");
    assert_eq!(kept.metadata.uid, created.metadata.uid);
    // the same apply again is still a no-op; a change continues the resourceVersion sequence
    let again = api
        .patch("kept", &PatchParams::apply("ferry"), &Patch::Apply(&cm))
        .await
        .unwrap();
    assert_eq!(
        again.metadata.resource_version,
        kept.metadata.resource_version
    );
    let changed = api
        .patch("kept", &PatchParams::apply("ferry"), &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kept"}, "data": {"k": "w"}})))
        .await
        .unwrap();
    let new_rv: u64 = changed.metadata.resource_version.unwrap().parse().unwrap();
    assert!(new_rv > rv);
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn the_readme_sim_toml_example_is_a_valid_config() {
    let readme =
        std::fs::read_to_string(ferry_testkit::workspace_root().join("README.md")).unwrap();
    let section = &readme[readme
        .find("## Simulator")
        .expect("README has a Simulator section")..];
    let start = section
        .find("```toml\n")
        .expect("the section shows a SIM.toml")
        + "```toml\n".len();
    let example = &section[start..start + section[start..].find("```").unwrap()];
    let config = ferry_sim::SimConfig::from_toml_str(example).unwrap();
    assert_eq!(config.images.len(), 4);
    assert!(config.faults.per_verb.contains_key("apply"));
}
