//! `ferry sim`: the real binary serves a cluster that kubectl accepts, writes its kubeconfig,
//! and saves its state when stopped by SIGTERM.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

fn kubectl() -> PathBuf {
    if let Some(bin) = ferry_testkit::lookup("FERRY_TEST_KUBECTL") {
        return PathBuf::from(bin);
    }
    #[expect(clippy::disallowed_methods, reason = "tests look kubectl up on PATH")]
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("kubectl"))
        .find(|candidate| candidate.is_file())
        .expect(
            "no kubectl: set FERRY_TEST_KUBECTL (scripts/servers.sh start) or put kubectl on PATH",
        )
}

/// Starts `ferry sim` and waits until it says it serves; returns the child and its first lines.
#[expect(
    clippy::zombie_processes,
    reason = "the child is handed to the caller, which stops and waits for it"
)]
fn start(args: &[&str]) -> (Child, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("sim")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("ferry runs");
    let mut lines = Vec::new();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 {
            let _ = child.kill();
            let status = child.wait();
            panic!("ferry sim exited early ({status:?}): {lines:?}");
        }
        let done = line.starts_with("running until");
        lines.push(line.trim_end().to_owned());
        if done {
            return (child, lines);
        }
    }
}

fn kubectl_get_ns(kubeconfig: &Path, home: &Path) -> String {
    let out = Command::new(kubectl())
        .args(["get", "namespaces"])
        .env("KUBECONFIG", kubeconfig)
        .env("HOME", home)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl get ns: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn stop(child: &mut Child) {
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert_eq!(
        exit.code(),
        Some(0),
        "ferry sim did not exit cleanly on SIGTERM"
    );
}

#[test]
fn ferry_sim_serves_kubectl_and_saves_state() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let state = dir.path().join("cluster.json");
    let (mut child, lines) = start(&[
        "--kubeconfig-out",
        kubeconfig.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
        "--speed",
        "10",
    ]);
    assert!(
        lines[0].starts_with("ferry-sim: Kubernetes API at http://127.0.0.1:"),
        "{lines:?}"
    );
    assert!(lines[1].contains(kubeconfig.to_str().unwrap()), "{lines:?}");
    let namespaces = kubectl_get_ns(&kubeconfig, dir.path());
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(
            namespaces
                .lines()
                .any(|l| l.starts_with(ns) && l.contains("Active")),
            "{namespaces}"
        );
    }
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&kubeconfig).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // a second simulator on the same state file is refused with the lock exit code
    let second = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["sim", "--state", state.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        second.status.code(),
        Some(10),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("in use by another simulator"), "{stderr}");
    // ... and told where the running one's kubeconfig is, for kubectl
    let published = format!("{}.kubeconfig", state.display());
    assert!(
        stderr.contains(&format!("export KUBECONFIG={published}")),
        "{stderr}"
    );

    stop(&mut child);
    assert!(
        !Path::new(&published).exists(),
        "the kubeconfig next to the state outlived the simulator"
    );
    let saved = std::fs::read_to_string(&state).unwrap();
    assert!(
        saved.contains("\"kube-system\""),
        "the state file lacks the cluster"
    );
    assert_eq!(
        std::fs::metadata(&state).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn ferry_sim_serves_tls_with_its_ca_in_the_kubeconfig() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let (mut child, lines) = start(&["--tls", "--kubeconfig-out", kubeconfig.to_str().unwrap()]);
    assert!(lines[0].contains("https://127.0.0.1:"), "{lines:?}");
    assert!(
        std::fs::read_to_string(&kubeconfig)
            .unwrap()
            .contains("certificate-authority-data")
    );
    assert!(kubectl_get_ns(&kubeconfig, dir.path()).contains("default"));
    stop(&mut child);
}

#[test]
fn ferry_sim_rejects_a_bad_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("SIM.toml");
    std::fs::write(&config, "speed = 2.0\nimagez = []\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["sim", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("imagez") && stderr.contains("SIM.toml"),
        "{stderr}"
    );
}

#[test]
fn ferry_sim_refuses_a_speed_that_is_not_positive() {
    for speed in ["0", "-1", "NaN", "inf"] {
        let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(["sim", "--speed", speed])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "--speed {speed}: {stderr}");
        assert!(
            stderr.contains("speed must be"),
            "--speed {speed}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "--speed {speed}: started anyway");
    }
}

/// Starts `ferry sim` with `args`, stops it once it serves, and returns its stderr.
fn stderr_of(args: &[&str]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("sim")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ferry runs");
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("running until") {
        line.clear();
        if reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
    }
    stop(&mut child);
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    stderr
}

#[test]
fn ferry_sim_warns_when_it_listens_beyond_loopback() {
    let stderr = stderr_of(&["--listen", "0.0.0.0:0"]);
    // the address it is bound to, with the port it got
    let warned = stderr
        .split("listening on 0.0.0.0:")
        .nth(1)
        .and_then(|rest| rest.split_once(": ferry-sim has no authentication"))
        .map(|(port, _)| port.to_owned());
    let port = warned.unwrap_or_else(|| panic!("no warning naming the address: {stderr}"));
    assert!(
        port.parse::<u16>().is_ok_and(|p| p != 0),
        "the warning names port {port:?}: {stderr}"
    );
    // on loopback (the default) it says nothing of the kind
    let stderr = stderr_of(&[]);
    assert!(!stderr.contains("no authentication"), "{stderr}");
}

#[test]
fn ferry_sim_on_every_address_with_tls_writes_a_kubeconfig_kubectl_trusts() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let (mut child, lines) = start(&[
        "--tls",
        "--listen",
        "0.0.0.0:0",
        "--kubeconfig-out",
        kubeconfig.to_str().unwrap(),
    ]);
    // a client cannot reach (or verify a certificate for) 0.0.0.0: the loopback it can
    assert!(lines[0].contains("https://127.0.0.1:"), "{lines:?}");
    assert!(!lines[0].ends_with(":0"), "{lines:?}");
    let written = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(written.contains("server: https://127.0.0.1:"), "{written}");
    assert!(kubectl_get_ns(&kubeconfig, dir.path()).contains("kube-system"));
    stop(&mut child);
}

/// `ferry deploy` on a sim environment whose state file a `ferry sim --state` server holds
/// connects to that server (through the kubeconfig it publishes next to the state) and deploys
/// there.
#[test]
fn ferry_deploy_uses_the_ferry_sim_server_that_holds_its_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    std::fs::create_dir_all(project.join("k8s")).unwrap();
    std::fs::write(
        project.join("ferry.toml"),
        "[app]\nname = \"demo\"\n\n\
         [env.local.cluster]\nprovider = \"sim\"\nstate = \"cluster.json\"\n\n\
         [env.local.deploy]\nmanifests = \"k8s\"\nnamespace = \"demo\"\ntimeout = \"1m\"\n",
    )
    .unwrap();
    std::fs::write(
        project.join("k8s/app.yaml"),
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: demo}\n---\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: demo}\n\
         data: {greeting: hello}\n",
    )
    .unwrap();
    let state = project.join("cluster.json");
    // --kubeconfig-out elsewhere: the server publishes STATE.kubeconfig anyway
    let own = dir.path().join("own.kubeconfig");
    let (mut child, _) = start(&[
        "--state",
        state.to_str().unwrap(),
        "--kubeconfig-out",
        own.to_str().unwrap(),
    ]);
    let published = project.join("cluster.json.kubeconfig");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&published).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::read_to_string(&published).unwrap(),
        std::fs::read_to_string(&own).unwrap()
    );

    let config = project.join("ferry.toml");
    let ferry = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(args)
            .args(["--config", config.to_str().unwrap(), "--env", "local"])
            .env("HOME", dir.path())
            .env_remove("KUBECONFIG")
            .output()
            .unwrap()
    };
    let out = ferry(&["deploy"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // the objects are in the server's cluster, as kubectl sees it
    let cm = Command::new(kubectl())
        .args(["get", "configmap", "settings", "-n", "demo", "-o", "name"])
        .env("KUBECONFIG", &own)
        .env("HOME", dir.path())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&cm.stdout).trim(),
        "configmap/settings",
        "{}",
        String::from_utf8_lossy(&cm.stderr)
    );
    // and ferry status (through the same server) sees the release
    let out = ferry(&["status", "--output", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["healthy"], true, "{status:#}");
    assert_eq!(status["release"]["revision"], 1, "{status:#}");

    stop(&mut child);
    assert!(
        !published.exists(),
        "{} outlived the server",
        published.display()
    );
    assert!(
        own.exists(),
        "--kubeconfig-out is the user's file: it stays"
    );

    // --kubeconfig-out naming STATE.kubeconfig by another spelling: the user's file, it stays.
    let spelled = project.join(".").join("cluster.json.kubeconfig");
    let (mut child, _) = start(&[
        "--state",
        state.to_str().unwrap(),
        "--kubeconfig-out",
        spelled.to_str().unwrap(),
    ]);
    stop(&mut child);
    assert!(
        published.exists(),
        "{} was asked for with --kubeconfig-out: it stays",
        published.display()
    );
}
