//! Running the real `ferry` binary (and `ferry sim`) the way CI would.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// One run of `ferry`: its exit code and everything it printed (stderr at trace level).
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    /// Both streams, for the secrets check.
    pub(crate) fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// A ferry.toml for app `shop` deploying `k8s/` to namespace `shop` as environment `prod`, with
/// its OIDC token in `token_file`: `cluster` is the body of `[env.prod.cluster]` and `auth` the
/// tables after `[env.prod.auth]` (the EKS and AKS set-ups differ only in these two).
pub(crate) fn ferry_toml(cluster: &str, token_file: &Path, auth: &str) -> String {
    format!(
        r#"[app]
name = "shop"

[app.images]
web = "example/shop-web"

[env.prod.cluster]
{cluster}
[env.prod.deploy]
manifests = "k8s"
namespace = "shop"
timeout = "3m"

[env.prod.auth]
oidc = {{ source = "file", file = "{token}" }}

{auth}"#,
        token = token_file.display()
    )
}

/// How long one `ferry` run may take before the test kills it and fails.
const RUN_LIMIT: Duration = Duration::from_secs(180);

/// Runs `ferry ARGS` in `dir` with exactly `vars` (plus PATH and HOME) and trace logging.
/// A run that outlasts [`RUN_LIMIT`] is killed and fails the test with what it printed.
pub(crate) fn ferry(dir: &Path, args: &[&str], vars: &[(&str, &str)]) -> Run {
    let mut child = command(dir, args, vars)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ferry");
    let read = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            buf
        })
    };
    let stdout = read(Box::new(child.stdout.take().unwrap()));
    let stderr = read(Box::new(child.stderr.take().unwrap()));
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = Output {
        status: status.unwrap_or_default(),
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    };
    let run = run_of(out);
    let tail = &run.stderr[run.stderr.len().saturating_sub(4000)..];
    assert!(
        status.is_some(),
        "ferry {} did not finish within {RUN_LIMIT:?}; its last output:\n{tail}",
        args.join(" "),
    );
    run
}

fn command(dir: &Path, args: &[&str], vars: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(ferry_testkit::ferry_bin());
    cmd.args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", dir)
        .env("NO_COLOR", "1")
        .env("FERRY_LOG", "trace");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd
}

fn run_of(out: Output) -> Run {
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `ferry sim` in the background, until dropped.
pub(crate) struct SimProcess {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl SimProcess {
    /// Starts a simulator (virtual clock at `speed`) and waits for its kubeconfig.
    pub(crate) fn start(speed: f64) -> SimProcess {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        let child = Command::new(ferry_testkit::ferry_bin())
            .args([
                "sim",
                "--listen",
                "127.0.0.1:0",
                "--speed",
                &speed.to_string(),
            ])
            .arg("--kubeconfig-out")
            .arg(&kubeconfig)
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ferry sim");
        let url = wait_for_server(&kubeconfig);
        SimProcess {
            child,
            url,
            _dir: dir,
        }
    }

    /// The API server's URL (plain HTTP).
    pub(crate) fn url(&self) -> &str {
        &self.url
    }
}

fn wait_for_server(kubeconfig: &PathBuf) -> String {
    // Up to a minute: a loaded CI machine may take a while to start a debug binary.
    for _ in 0..1200 {
        if let Ok(text) = std::fs::read_to_string(kubeconfig)
            && let Some(line) = text.lines().find(|l| l.trim_start().starts_with("server:"))
        {
            return line
                .trim_start()
                .trim_start_matches("server:")
                .trim()
                .trim_matches('"')
                .trim_matches('\'')
                .to_owned();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("ferry sim did not write its kubeconfig");
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
