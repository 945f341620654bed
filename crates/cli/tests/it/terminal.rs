//! The live view on a real terminal: `ferry deploy` runs under a pseudo-terminal (util-linux
//! `script`) of 80x24, 100x30 and 160x40, against an in-process simulator; its output goes
//! through a terminal emulator (`vt100`) and the screen it ends with is checked: one line per
//! resource of the release, none wider than the terminal or wrapped, none repeated, each with
//! its elapsed time.

use std::io::Read as _;
use std::num::NonZeroU16;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferry_sim::{Sim, SimConfig};

/// Eight objects: two Deployments whose names make their lines wider than 80 columns, a
/// LoadBalancer Service, and objects that are ready as soon as they exist.
const RELEASE: &str = r#"apiVersion: v1
kind: Namespace
metadata: {name: demo}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: demo}
data: {greeting: hello}
---
apiVersion: v1
kind: Secret
metadata: {name: credentials, namespace: demo}
stringData: {token: not-a-secret}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: web, namespace: demo}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: storefront-web-frontend-public-pages, namespace: demo}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "nginx:1.27"}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: storefront-order-queue-worker-pool, namespace: demo}
spec:
  replicas: 3
  selector: {matchLabels: {app: worker}}
  template:
    metadata: {labels: {app: worker}}
    spec:
      containers: [{name: worker, image: "busybox:1.36"}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{port: 80, targetPort: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: worker, namespace: demo}
spec:
  selector: {app: worker}
  ports: [{port: 9000}]
"#;

/// The release's objects, as ferry names them.
const OBJECTS: [&str; 8] = [
    "Namespace demo",
    "ConfigMap demo/settings",
    "Secret demo/credentials",
    "ServiceAccount demo/web",
    "Deployment demo/storefront-web-frontend-public-pages",
    "Deployment demo/storefront-order-queue-worker-pool",
    "Service demo/web",
    "Service demo/worker",
];

const CONFIG: &str = "[app]\nname = \"demo\"\n\n\
    [env.local.cluster]\nprovider = \"kubeconfig\"\n\n\
    [env.local.deploy]\nmanifests = \"k8s\"\nnamespace = \"demo\"\ntimeout = \"2m\"\n";

/// `script` from util-linux (Debian: the bsdutils package, part of the base system).
fn script() -> PathBuf {
    #[expect(clippy::disallowed_methods, reason = "tests look script up on PATH")]
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("script"))
        .find(|candidate| candidate.is_file())
        .expect(
            "no `script` on PATH: it comes with util-linux (Debian: bsdutils, in the base system)",
        )
}

fn quoted(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

/// Runs `ferry deploy` of [`RELEASE`] under a pseudo-terminal of `cols` x `rows`, against a
/// fresh simulator, and returns what the terminal was sent (stderr and stdout, as a person
/// sees them).
fn deploy_on_a_terminal(cols: u16, rows: u16) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    std::fs::create_dir_all(project.join("k8s")).unwrap();
    std::fs::write(project.join("ferry.toml"), CONFIG).unwrap();
    std::fs::write(project.join("k8s/app.yaml"), RELEASE).unwrap();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let config = SimConfig {
        speed: 30.0,
        ..SimConfig::default()
    };
    let sim = runtime
        .block_on(Sim::builder().config(config).start())
        .expect("the simulator starts");
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();

    // `stty` sets the pseudo-terminal's size before ferry starts and reads it.
    let command = format!(
        "stty cols {cols} rows {rows} && exec {} deploy --config {} --env local",
        quoted(Path::new(env!("CARGO_BIN_EXE_ferry"))),
        quoted(&project.join("ferry.toml")),
    );
    #[expect(clippy::disallowed_methods, reason = "the child needs a PATH for stty")]
    let path = std::env::var_os("PATH").unwrap_or_default();
    // A person's terminal: no CI, no GitHub Actions, no NO_COLOR (colours are on).
    let mut child = Command::new(script())
        .args(["-qfec", &command, "/dev/null"])
        .env_clear()
        .env("PATH", path)
        .env("HOME", dir.path())
        .env("TERM", "xterm-256color")
        .env("KUBECONFIG", &kubeconfig)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script runs");
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        stdout.read_to_end(&mut bytes).map(|_| bytes)
    });
    let deadline = Instant::now() + Duration::from_secs(240);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ferry deploy under a {cols}x{rows} terminal did not end within 4 minutes");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let bytes = reader.join().unwrap().unwrap();
    let mut errors = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut errors)
        .unwrap();
    runtime.block_on(sim.shutdown()).unwrap();
    assert!(
        status.success(),
        "ferry deploy under a {cols}x{rows} terminal: {status}\n{errors}\n{}",
        String::from_utf8_lossy(&bytes)
    );
    bytes
}

/// The screen a terminal of `cols` x `rows` shows after `bytes`.
fn screen(bytes: &[u8], cols: u16, rows: u16) -> vt100::Parser {
    let mut parser = vt100::Parser::new(
        NonZeroU16::new(rows).unwrap(),
        NonZeroU16::new(cols).unwrap(),
        0,
    );
    parser.process(bytes);
    parser
}

/// A live line: `  STATE  KIND NS/NAME  ELAPSED  MESSAGE`; the object it is about, if any.
fn object_of(line: &str) -> Option<&'static str> {
    let rest = ["  ready ", "  waiting ", "  FAILED "]
        .iter()
        .find_map(|state| line.strip_prefix(state))?
        .trim_start();
    OBJECTS.iter().copied().find(|object| {
        rest.strip_prefix(object)
            .is_some_and(|after| after.is_empty() || after.starts_with("  "))
    })
}

/// Whether `text` is an elapsed time as the live view shows it: `3s`, `1m05s`, `1h02m`.
fn is_elapsed(text: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    if let Some(s) = text.strip_suffix('s') {
        match s.split_once('m') {
            None => digits(s),
            Some((m, s)) => digits(m) && s.len() == 2 && digits(s),
        }
    } else {
        text.strip_suffix('m')
            .and_then(|s| s.split_once('h'))
            .is_some_and(|(h, m)| digits(h) && m.len() == 2 && digits(m))
    }
}

/// The live lines among `lines` (index, text, object), checked: exactly one for each object
/// of the release, all in one block, all ready, none wider than `cols - 1`.
fn live_lines(lines: &[String], cols: u16, what: &str) -> Vec<(usize, String, &'static str)> {
    let screen = lines.join("\n");
    let live: Vec<(usize, String, &'static str)> = lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| object_of(l).map(|o| (i, l.clone(), o)))
        .collect();
    for object in OBJECTS {
        let n = live.iter().filter(|(_, _, o)| *o == object).count();
        assert_eq!(n, 1, "{what}: {n} lines for {object}:\n{screen}");
    }
    assert_eq!(
        live.len(),
        OBJECTS.len(),
        "{what}: one line per resource:\n{screen}"
    );
    let first = live[0].0;
    assert!(
        live.iter()
            .enumerate()
            .all(|(n, (i, _, _))| *i == first + n),
        "{what}: the live lines are not one block:\n{screen}"
    );
    for (_, line, object) in &live {
        let width = line.chars().count();
        assert!(
            width < usize::from(cols),
            "{what}: {width} columns (the last one stays free): {line:?}"
        );
        assert!(
            line.starts_with("  ready "),
            "{what}: {object} is not ready: {line:?}"
        );
        // the elapsed time follows the object's name
        let after = line.split_once(object).unwrap().1.trim_start();
        let elapsed = after.split("  ").next().unwrap_or("");
        assert!(
            is_elapsed(elapsed),
            "{what}: no elapsed time after {object}: {line:?}"
        );
    }
    live
}

/// Checks the screen a deploy under a `cols` x `rows` terminal ends with; returns its live
/// lines.
fn check(cols: u16, rows: u16) -> Vec<String> {
    let bytes = deploy_on_a_terminal(cols, rows);
    let raw = String::from_utf8_lossy(&bytes);
    assert!(
        raw.contains("\u{1b}[J"),
        "{cols}x{rows}: no live view (plain lines?):\n{raw}"
    );

    let parser = screen(&bytes, cols, rows);
    let lines: Vec<String> = parser.screen().rows(0, cols).collect();
    let what = format!("{cols}x{rows}, final screen");
    for (i, line) in lines.iter().enumerate() {
        assert!(
            line.chars().count() <= usize::from(cols),
            "{what}: {line:?}"
        );
        if object_of(line).is_some() {
            assert!(
                !parser.screen().row_wrapped(u16::try_from(i).unwrap()),
                "{what}: a live line wrapped onto the next: {line:?}"
            );
        }
    }
    let live = live_lines(&lines, cols, &what);

    // On a screen tall enough that nothing scrolls away, the whole output shows each resource
    // once too: redrawing left no stale copies anywhere.
    let tall = screen(&bytes, cols, 1000);
    let all: Vec<String> = tall.screen().rows(0, cols).collect();
    live_lines(&all, cols, &format!("{cols}x{rows}, whole output"));

    live.into_iter().map(|(_, l, _)| l).collect()
}

#[test]
fn terminal_80x24_shows_one_cut_line_per_resource() {
    let live = check(80, 24);
    // The Deployments' lines are wider than 80 columns: cut to 79, ending with an ellipsis.
    for line in live.iter().filter(|l| l.contains("Deployment ")) {
        assert!(line.ends_with('…'), "not cut: {line:?}");
        assert_eq!(line.chars().count(), 79, "{line:?}");
    }
}

#[test]
fn terminal_100x30_shows_one_line_per_resource() {
    let live = check(100, 30);
    assert!(live.iter().all(|l| l.chars().count() <= 99), "{live:#?}");
}

#[test]
fn terminal_160x40_shows_one_whole_line_per_resource() {
    let live = check(160, 40);
    assert!(
        live.iter().all(|l| !l.ends_with('…')),
        "cut at 160 columns: {live:#?}"
    );
}

#[test]
fn terminal_too_small_for_the_live_view_gets_plain_lines() {
    let bytes = deploy_on_a_terminal(36, 24);
    let raw = String::from_utf8_lossy(&bytes);
    assert!(
        !raw.contains("\u{1b}[J") && !raw.contains("\u{1b}[2K"),
        "a live view at 36 columns:\n{raw}"
    );
    for object in OBJECTS {
        assert!(
            raw.contains(&format!("{object}: ready (")),
            "no plain line for {object}:\n{raw}"
        );
    }
}

#[test]
fn terminal_elapsed_times_read_as_the_live_view_writes_them() {
    for ok in ["0s", "3s", "59s", "1m05s", "12m00s", "1h02m"] {
        assert!(is_elapsed(ok), "{ok}");
    }
    for bad in ["", "s", "3", "1m5s", "ready", "1h2m", "address"] {
        assert!(!is_elapsed(bad), "{bad}");
    }
}
