//! Shared by the deploy tests: an in-process ferry-sim cluster per test, and running the real
//! `ferry` against it through a kubeconfig.

use std::path::{Path, PathBuf};
use std::process::Output;

use ferry_sim::{Sim, SimConfig, SimHandle};

/// A simulator at 20 times real time whose images matching `image` behave as `behaviour`.
pub(crate) fn sim_config_with(image: &str, behaviour: ferry_sim::ImageBehaviour) -> SimConfig {
    let mut config = SimConfig {
        speed: 20.0,
        ..SimConfig::default()
    };
    config
        .images
        .push(ferry_sim::ImageRule::new(image, behaviour));
    config
}

/// A simulated cluster for one test, with its kubeconfig in a temp dir.
pub(crate) struct Cluster {
    pub sim: SimHandle,
    pub dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts a simulator running `speed` times real time.
    pub(crate) async fn start(speed: f64) -> Cluster {
        let config = SimConfig {
            speed,
            ..SimConfig::default()
        };
        Self::with_config(config).await
    }

    /// Starts a simulator with `config`.
    pub(crate) async fn with_config(config: SimConfig) -> Cluster {
        let sim = Sim::builder()
            .config(config)
            .start()
            .await
            .expect("the simulator starts");
        let dir = tempfile::tempdir().unwrap();
        sim.write_kubeconfig(&dir.path().join("kubeconfig"))
            .unwrap();
        Cluster { sim, dir }
    }

    /// The kubeconfig file.
    pub(crate) fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// Runs the real `ferry` with `args` against this cluster (KUBECONFIG set), off the async
    /// runtime.
    pub(crate) async fn ferry(&self, args: &[&str]) -> Output {
        self.ferry_with_env(args, &[]).await
    }

    /// Like [`Cluster::ferry`], with extra environment variables.
    pub(crate) async fn ferry_with_env(&self, args: &[&str], vars: &[(&str, &str)]) -> Output {
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let kubeconfig = self.kubeconfig();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(ferry_testkit::ferry_bin())
                .args(&args)
                .env("NO_COLOR", "1")
                .env("KUBECONFIG", &kubeconfig)
                .env_remove("FERRY_CONFIG")
                .env_remove("FERRY_LOG")
                .env_remove("GITHUB_ACTIONS")
                .env_remove("FERRY_TAG")
                .env_remove("GITHUB_SHA")
                .env("CI", "true")
                .envs(vars)
                .output()
                .expect("ferry runs")
        })
        .await
        .unwrap()
    }

    /// Runs `ferry deploy --config DIR/ferry.toml --env local --tag TAG EXTRA...`.
    pub(crate) async fn deploy(&self, dir: &Path, tag: &str, extra: &[&str]) -> Output {
        let cfg = dir.join("ferry.toml").display().to_string();
        let mut args = vec![
            "deploy",
            "--config",
            cfg.as_str(),
            "--env",
            "local",
            "--tag",
            tag,
        ];
        args.extend_from_slice(extra);
        self.ferry(&args).await
    }

    /// A kube client for checking the cluster from the test.
    pub(crate) async fn client(&self) -> kube::Client {
        let kc = kube::config::Kubeconfig::read_from(self.kubeconfig()).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .unwrap();
        kube::Client::try_from(config).unwrap()
    }
}

/// Writes a ferry.toml for an app deployed to env `local` through $KUBECONFIG.
pub(crate) fn write_config(
    dir: &Path,
    app: &str,
    images: &[(&str, &str)],
    deploy_extra: &str,
) -> PathBuf {
    let mut text = format!("[app]\nname = \"{app}\"\n\n[app.images]\n");
    for (name, repo) in images {
        text.push_str(&format!("{name} = \"{repo}\"\n"));
    }
    text.push_str(&format!(
        "\n[env.local.cluster]\nprovider = \"kubeconfig\"\n\n[env.local.deploy]\nmanifests = \"k8s\"\n{deploy_extra}\n"
    ));
    let path = dir.join("ferry.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// An app directory for a deploy test: `manifests` as `k8s/app.yaml` and a ferry.toml for `app`
/// deployed to env `local` through $KUBECONFIG, into `namespace`, by tag (no digests), with
/// `deploy_extra` added to `[env.local.deploy]`.
pub(crate) fn app_dir(
    app: &str,
    namespace: &str,
    images: &[(&str, &str)],
    manifests: &str,
    deploy_extra: &str,
) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("k8s")).unwrap();
    std::fs::write(dir.path().join("k8s/app.yaml"), manifests).unwrap();
    write_config(
        dir.path(),
        app,
        images,
        &format!(
            "namespace = \"{namespace}\"\ntimeout = \"2m\"\nlock_ttl = \"5s\"\nresolve_digests = false\n{deploy_extra}"
        ),
    );
    dir
}

/// The ferry.toml of an [`app_dir`].
pub(crate) fn config_of(dir: &tempfile::TempDir) -> String {
    dir.path().join("ferry.toml").display().to_string()
}

/// Copies a directory tree.
pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() == ".ferry" {
                continue;
            }
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
