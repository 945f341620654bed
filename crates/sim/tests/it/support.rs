//! Test support: a simulator per test, kubectl against it, kube-rs clients.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use ferry_sim::{Sim, SimConfig, SimHandle};

/// A running simulator with a kubeconfig in a temporary directory.
pub(crate) struct Cluster {
    pub(crate) sim: SimHandle,
    pub(crate) dir: tempfile::TempDir,
}

impl Cluster {
    pub(crate) async fn start(config: SimConfig) -> Cluster {
        Self::start_with(Sim::builder().config(config)).await
    }

    pub(crate) async fn start_with(builder: ferry_sim::SimBuilder) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let sim = builder.start().await.unwrap();
        sim.write_kubeconfig(&dir.path().join("kubeconfig"))
            .unwrap();
        Cluster { sim, dir }
    }

    pub(crate) fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// Runs kubectl with this cluster's kubeconfig (and a private HOME, so its discovery cache
    /// is this test's own).
    pub(crate) fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_in(args, None)
    }

    pub(crate) fn kubectl_in(&self, args: &[&str], stdin_file: Option<&Path>) -> Output {
        let mut cmd = Command::new(kubectl_bin());
        cmd.args(args)
            .env("KUBECONFIG", self.kubeconfig())
            .env("HOME", self.dir.path())
            .env_remove("KUBECTL_EXTERNAL_DIFF");
        if let Some(file) = stdin_file {
            cmd.stdin(std::fs::File::open(file).unwrap());
        }
        cmd.output().expect("kubectl runs")
    }

    /// kubectl that must succeed; returns stdout.
    #[track_caller]
    pub(crate) fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Polls `kubectl` until `pred` holds on its stdout (bounded; this is waiting, not timing).
    #[track_caller]
    pub(crate) fn kubectl_until(&self, args: &[&str], pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = self.kubectl(args);
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            if out.status.success() && pred(&stdout) {
                return stdout;
            }
            assert!(
                Instant::now() < deadline,
                "kubectl {args:?} never satisfied the condition; last stdout: {stdout}\nstderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub(crate) async fn client(&self) -> kube::Client {
        let yaml = self.sim.kubeconfig_yaml();
        let kubeconfig = kube::config::Kubeconfig::from_yaml(&yaml).unwrap();
        let config = kube::Config::from_custom_kubeconfig(
            kubeconfig,
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .unwrap();
        kube::Client::try_from(config).unwrap()
    }
}

/// The kubectl to test with: FERRY_TEST_KUBECTL (scripts/servers.sh start), else kubectl on
/// PATH.
pub(crate) fn kubectl_bin() -> PathBuf {
    if let Some(bin) = ferry_testkit::lookup("FERRY_TEST_KUBECTL") {
        return PathBuf::from(bin);
    }
    #[expect(clippy::disallowed_methods, reason = "tests look kubectl up on PATH")]
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join("kubectl");
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "no kubectl: set FERRY_TEST_KUBECTL (scripts/servers.sh install && scripts/servers.sh start) or put kubectl on PATH"
    );
}

pub(crate) fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/fixtures")
        .join(name)
}

pub(crate) fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A fast simulator: a virtual minute every half second.
pub(crate) fn fast() -> SimConfig {
    SimConfig {
        speed: 120.0,
        ..SimConfig::default()
    }
}
