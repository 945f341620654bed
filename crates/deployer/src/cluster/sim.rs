//! `provider = "sim"`: ferry's simulated cluster (ferry-sim), the embedded default.
//!
//! The cluster's state lives in a file under the project (`.ferry/sim/<env>.json`), so a
//! deploy, then a `ferry status`, then a redeploy all see the same cluster. The first ferry
//! process that needs the cluster runs the simulator in-process on that file (ferry-sim holds
//! the file's lock while it runs) and writes a kubeconfig for it next to the state
//! (`<state>.kubeconfig`, mode 0600). A second process that finds the state locked connects
//! through that kubeconfig instead of starting a second cluster on the same file, so
//! concurrent `ferry deploy`s of one sim environment share one cluster and ferry's deploy lock
//! serialises them. A `ferry sim --state FILE` server writes `FILE.kubeconfig` too, so it is
//! used the same way.
//!
//! The process hosting the simulator keeps serving when its own command is done while other
//! processes still use the cluster — one of them holds a live ferry deploy lock (a Lease whose
//! resourceVersion moved within its duration: a killed holder does not count), or made a
//! request in the last [`LINGER_IDLE`] — up to [`LINGER_MAX`], then persists the state and
//! stops.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio::sync::Mutex;

use super::{ClusterError, ClusterProvider, ServerUrl, SimOptions, client_from_config};

/// How long the host waits after the last request of another client (holding no deploy
/// lock) before stopping.
pub(crate) const LINGER_IDLE: Duration = Duration::from_secs(2);
/// The longest the host keeps serving other clients after its own command ended.
pub(crate) const LINGER_MAX: Duration = Duration::from_secs(1800);

enum Running {
    Hosted(ferry_sim::SimHandle),
    Remote,
}

/// The simulated cluster of one environment.
pub struct SimProvider {
    options: SimOptions,
    running: Mutex<Option<(Running, String)>>,
    server: ServerUrl,
}

impl std::fmt::Debug for SimProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimProvider")
            .field("options", &self.options)
            .finish()
    }
}

fn sim_err(what: impl Into<String>) -> impl FnOnce(ferry_sim::SimError) -> ClusterError {
    let what = what.into();
    move |e| ClusterError::Provider {
        what,
        source: Box::new(e),
    }
}

impl SimProvider {
    /// A provider for the simulator described by `options` (started on first use).
    pub fn new(options: SimOptions) -> Self {
        SimProvider {
            options,
            running: Mutex::new(None),
            server: ServerUrl::default(),
        }
    }

    /// The kubeconfig written next to the state file while a process hosts the simulator.
    pub fn kubeconfig_path(state: &Path) -> PathBuf {
        let mut name = state
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        name.push(".kubeconfig");
        state.with_file_name(name)
    }

    async fn start(&self) -> Result<(Running, String), ClusterError> {
        let state = &self.options.state;
        if let Some(dir) = state.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| ClusterError::Provider {
                what: format!("cannot create {}", dir.display()),
                source: Box::new(e),
            })?;
        }
        let mut config = match &self.options.config {
            Some(path) => ferry_sim::SimConfig::load(path).map_err(sim_err(format!(
                "cannot load simulator config {}",
                path.display()
            )))?,
            None => ferry_sim::SimConfig::default(),
        };
        if let Some(speed) = self.options.speed {
            config.speed = speed;
        }
        let kubeconfig_file = Self::kubeconfig_path(state);
        // A few tries: another process may be between taking the lock and writing its
        // kubeconfig.
        let mut last_err = None;
        for attempt in 0..50 {
            match ferry_sim::Sim::builder()
                .config(config.clone())
                .state_file(state.clone())
                .start()
                .await
            {
                Ok(handle) => {
                    handle
                        .write_kubeconfig(&kubeconfig_file)
                        .map_err(sim_err(format!(
                            "cannot write {}",
                            kubeconfig_file.display()
                        )))?;
                    let yaml = handle.kubeconfig_yaml();
                    return Ok((Running::Hosted(handle), yaml));
                }
                Err(e) => {
                    // Someone else runs this cluster: use theirs.
                    if let Ok(yaml) = std::fs::read_to_string(&kubeconfig_file)
                        && self.reachable(&yaml).await
                    {
                        return Ok((Running::Remote, yaml));
                    }
                    tracing::debug!(attempt, error = %e, "simulator state is busy; waiting for its host");
                    last_err = Some(e);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        Err(ClusterError::Provider {
            what: format!(
                "cannot start the simulated cluster on {} (and no running simulator serves it: is another process using the file?)",
                state.display()
            ),
            source: Box::new(last_err.expect("at least one attempt")),
        })
    }

    async fn reachable(&self, yaml: &str) -> bool {
        let Ok(client) = self.client_for(yaml).await else {
            return false;
        };
        client.apiserver_version().await.is_ok()
    }

    async fn client_for(&self, yaml: &str) -> Result<kube::Client, ClusterError> {
        let shown = Self::kubeconfig_path(&self.options.state)
            .display()
            .to_string();
        let kubeconfig =
            Kubeconfig::from_yaml(yaml).map_err(|source| ClusterError::Kubeconfig {
                path: shown.clone(),
                source,
            })?;
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|source| ClusterError::Kubeconfig {
                    path: shown,
                    source,
                })?;
        client_from_config(
            config,
            self.options.user_agent.as_deref(),
            &self.describe(),
            &self.server,
        )
    }
}

#[async_trait::async_trait]
impl ClusterProvider for SimProvider {
    async fn client(&self) -> Result<kube::Client, ClusterError> {
        let mut guard = self.running.lock().await;
        if guard.is_none() {
            *guard = Some(self.start().await?);
        }
        let yaml = guard.as_ref().map(|(_, y)| y.clone()).unwrap_or_default();
        drop(guard);
        self.client_for(&yaml).await
    }

    fn describe(&self) -> String {
        format!("simulated cluster {}", self.options.state.display())
    }

    fn server(&self) -> Option<String> {
        self.server.get()
    }

    async fn close(&self) -> Result<(), ClusterError> {
        let Some((running, _)) = self.running.lock().await.take() else {
            return Ok(());
        };
        let Running::Hosted(handle) = running else {
            return Ok(());
        };
        // Keep serving while other processes use this cluster: while one of them holds a live
        // ferry deploy lock, or has made a request in the last LINGER_IDLE.
        let own = self.options.user_agent.clone().unwrap_or_default();
        let others = |h: &ferry_sim::SimHandle| {
            h.request_log()
                .iter()
                .filter(|r| r.user_agent != own)
                .map(|r| r.seq)
                .max()
                .unwrap_or(0)
        };
        let started = tokio::time::Instant::now();
        let mut seen = others(&handle);
        let mut last_activity = tokio::time::Instant::now();
        if seen > 0 {
            let yaml = handle.kubeconfig_yaml();
            let client = self.client_for(&yaml).await.ok();
            let mut leases = LiveLeases::default();
            while started.elapsed() < LINGER_MAX {
                let now_seen = others(&handle);
                if now_seen > seen {
                    seen = now_seen;
                    last_activity = tokio::time::Instant::now();
                }
                let locked = match &client {
                    Some(c) => leases.any_alive(c).await,
                    None => false,
                };
                if !locked && last_activity.elapsed() >= LINGER_IDLE {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
        let _ = std::fs::remove_file(Self::kubeconfig_path(&self.options.state));
        handle
            .shutdown()
            .await
            .map_err(sim_err("cannot stop the simulated cluster"))
    }
}

/// The ferry deploy-lock Leases seen, to tell live holders (who renew, so the resourceVersion
/// moves every third of the lease's duration) from dead ones, without reading a wall clock.
#[derive(Default)]
struct LiveLeases {
    seen: std::collections::BTreeMap<(String, String), (String, tokio::time::Instant)>,
}

impl LiveLeases {
    async fn any_alive(&mut self, client: &kube::Client) -> bool {
        use k8s_openapi::api::coordination::v1::Lease;
        let api: kube::Api<Lease> = kube::Api::all(client.clone());
        let params = kube::api::ListParams::default().labels("app.kubernetes.io/managed-by=ferry");
        let Ok(list) = api.list(&params).await else {
            return false;
        };
        let now = tokio::time::Instant::now();
        let mut alive = false;
        for lease in list.items {
            let key = (
                lease.metadata.namespace.clone().unwrap_or_default(),
                lease.metadata.name.clone().unwrap_or_default(),
            );
            let rv = lease.metadata.resource_version.clone().unwrap_or_default();
            let ttl = lease
                .spec
                .as_ref()
                .and_then(|s| s.lease_duration_seconds)
                .map_or(Duration::from_secs(30), |s| {
                    Duration::from_secs(u64::try_from(s).unwrap_or(30))
                });
            let since = match self.seen.get(&key) {
                Some((old, at)) if *old == rv => *at,
                _ => {
                    self.seen.insert(key, (rv, now));
                    now
                }
            };
            if now.duration_since(since) <= ttl {
                alive = true;
            }
        }
        alive
    }
}
