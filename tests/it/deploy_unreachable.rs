//! A cluster that cannot be reached: `ferry deploy`, `diff` and `status` name the environment's
//! cluster and its API server and say what to check, with runtime-failure exit 1.

use super::deploy_support::write_config;
use super::{code, ferry_in, stderr, stdout};

#[test]
fn an_unreachable_cluster_is_named_with_what_to_check() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("prod.kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: prod\n  cluster: {{server: '{server}'}}\n\
             users:\n- name: ci\n  user: {{token: not-a-secret}}\ncontexts:\n- name: prod\n  \
             context: {{cluster: prod, user: ci}}\ncurrent-context: prod\n"
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("k8s")).unwrap();
    std::fs::write(
        dir.path().join("k8s/settings.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {mode: one}\n",
    )
    .unwrap();
    let config = write_config(dir.path(), "shop", &[], "resolve_digests = false\n");
    let config = config.to_str().unwrap();
    for command in ["deploy", "diff", "status"] {
        let out = ferry_in(
            [command, "--config", config, "--env", "local"],
            &[("KUBECONFIG", kubeconfig.to_str().unwrap())],
        );
        let err = stderr(&out);
        assert_eq!(code(&out), 1, "{command}:\n{}\n{err}", stdout(&out));
        let want = format!(
            "cannot reach the cluster of environment `local` (kubeconfig {} (current context), API server {server}/)",
            kubeconfig.display()
        );
        assert!(err.contains(&want), "{command}: want {want:?} in\n{err}");
        assert!(err.contains("Connection refused"), "{command}:\n{err}");
        assert!(
            err.contains("check that the cluster is running")
                && err.contains("[env.local.cluster] in "),
            "{command}:\n{err}"
        );
        // kube's own per-request error lines are not repeated above the report.
        assert!(!err.contains("ERROR"), "{command}:\n{err}");
    }

    // A mistake in the manifests that needs no cluster to see is still invalid input (3),
    // listed, when the cluster cannot be reached.
    std::fs::write(
        dir.path().join("k8s/web.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec: {containers: [{name: web, image: 'nginx:latest'}]}\n",
    )
    .unwrap();
    for command in ["deploy", "diff"] {
        let out = ferry_in(
            [command, "--config", config, "--env", "local"],
            &[("KUBECONFIG", kubeconfig.to_str().unwrap())],
        );
        let err = stderr(&out);
        assert_eq!(code(&out), 3, "{command}:\n{}\n{err}", stdout(&out));
        assert!(
            err.contains("Pod web container web") && err.contains("nginx:latest"),
            "{command}:\n{err}"
        );
    }
}

/// A kubeconfig with two contexts, and a project whose `[env.local.cluster]` is `cluster`.
fn kubeconfig_project(dir: &std::path::Path, cluster: &str) -> std::path::PathBuf {
    std::fs::write(
        dir.join("two.kubeconfig"),
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'http://127.0.0.1:9'}\n\
         users:\n- name: ci\n  user: {token: not-a-secret}\ncontexts:\n- name: staging\n  \
         context: {cluster: c, user: ci}\n- name: prod\n  context: {cluster: c, user: ci}\n\
         current-context: staging\n",
    )
    .unwrap();
    std::fs::write(dir.join("broken.kubeconfig"), "clusters: [unclosed\n").unwrap();
    std::fs::create_dir_all(dir.join("k8s")).unwrap();
    std::fs::write(
        dir.join("k8s/settings.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {mode: one}\n",
    )
    .unwrap();
    let config = write_config(dir, "shop", &[], "resolve_digests = false\n");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[env.local.cluster]\nprovider = \"kubeconfig\"\n",
        &format!("[env.local.cluster]\nprovider = \"kubeconfig\"\n{cluster}"),
    );
    std::fs::write(&config, text).unwrap();
    config
}

#[test]
fn a_wrong_kubeconfig_path_or_context_is_invalid_input_at_its_key() {
    // (cluster table lines, the line:column of the key's value, what the message says)
    let cases = [
        (
            "path = \"missing.kubeconfig\"\n",
            ":8:8",
            "missing.kubeconfig does not exist",
        ),
        (
            "path = \"broken.kubeconfig\"\n",
            ":8:8",
            "broken.kubeconfig is not a valid kubeconfig file",
        ),
        (
            "path = \"two.kubeconfig\"\ncontext = \"qa\"\n",
            ":9:11",
            "has no context `qa`; it has: staging, prod",
        ),
    ];
    for (cluster, at, says) in cases {
        let dir = tempfile::tempdir().unwrap();
        let config = kubeconfig_project(dir.path(), cluster);
        let config = config.to_str().unwrap();
        for command in ["deploy", "diff", "status", "history", "rollback"] {
            let out = ferry_in([command, "--config", config, "--env", "local"], &[]);
            let err = stderr(&out);
            assert_eq!(code(&out), 3, "{command} {cluster}:\n{err}");
            assert!(err.contains(says), "{command}: want {says:?} in\n{err}");
            assert!(
                err.contains(&format!("ferry.toml{at}")),
                "{command}: want ferry.toml{at} in\n{err}"
            );
            assert!(!err.contains("not-a-secret"), "{err}");
        }
        // `ferry validate` finds it too, offline.
        let out = ferry_in(["validate", "--config", config], &[]);
        let err = stderr(&out);
        assert_eq!(code(&out), 3, "validate {cluster}:\n{err}");
        assert!(err.contains(says), "validate: want {says:?} in\n{err}");
        assert!(err.contains(&format!("ferry.toml{at}")), "validate:\n{err}");
    }
    // The default file ($KUBECONFIG) is checked where it resolves, located at the table.
    let dir = tempfile::tempdir().unwrap();
    let config = kubeconfig_project(dir.path(), "");
    let missing = dir.path().join("nowhere/config");
    let out = ferry_in(
        [
            "deploy",
            "--config",
            config.to_str().unwrap(),
            "--env",
            "local",
        ],
        &[("KUBECONFIG", missing.to_str().unwrap())],
    );
    let err = stderr(&out);
    assert_eq!(code(&out), 3, "{err}");
    assert!(
        err.contains(&format!("{} does not exist", missing.display())),
        "{err}"
    );
    assert!(err.contains("set `path` in [env.local.cluster]"), "{err}");
}

/// A simulator config file the simulator would refuse is invalid input at its key, before any
/// simulator starts (no state file is written), for deploy and validate alike.
#[test]
fn a_bad_simulator_config_is_invalid_input_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("k8s")).unwrap();
    std::fs::write(
        dir.path().join("k8s/settings.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {mode: one}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("sim.toml"), "speed = \"fast\"\n").unwrap();
    std::fs::write(
        dir.path().join("ferry.toml"),
        "[app]\nname = \"shop\"\n[env.local.cluster]\nprovider = \"sim\"\nconfig = \"sim.toml\"\n\
         [env.local.deploy]\nmanifests = \"k8s\"\nnamespace = \"default\"\n",
    )
    .unwrap();
    let config = dir.path().join("ferry.toml");
    let config = config.to_str().unwrap();
    for command in [
        &["deploy", "--config", config, "--env", "local"][..],
        &["validate", "--config", config][..],
    ] {
        let out = ferry_in(command.iter().copied(), &[]);
        let err = stderr(&out);
        assert_eq!(code(&out), 3, "{command:?}:\n{err}");
        assert!(
            err.contains("ferry.toml:5:10") && err.contains("expected f64"),
            "{command:?}:\n{err}"
        );
    }
    assert!(!dir.path().join(".ferry").exists(), "no simulator started");
}
