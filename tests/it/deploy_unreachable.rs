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
}
