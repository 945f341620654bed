//! ferry-sim: a simulated Kubernetes cluster in-process: an API server that an unmodified
//! `kubectl` and kube-rs accept, plus the controllers that make workloads roll out, on a
//! virtual clock, with failures on request.
//!
//! It serves three users: ferry's own tests (the deploy engine is proven end to end against
//! it: apply, rollout, failure, rollback, locks, pruning); anyone embedding ferry's crates who
//! wants a cluster inside a test, as kwok offers in Go; and a newcomer running `ferry deploy`
//! with no cluster at all (`provider = "sim"`, state persisted in a file between runs).
//!
//! # Using it
//!
//! ```no_run
//! # async fn demo() -> Result<(), ferry_sim::SimError> {
//! use ferry_sim::{ImageBehaviour, ImageRule, Sim, SimConfig};
//!
//! let config = SimConfig {
//!     speed: 60.0, // a virtual minute per wall second
//!     images: vec![ImageRule::new("*:broken", ImageBehaviour::Crash)],
//!     ..SimConfig::default()
//! };
//! let sim = Sim::builder().config(config).start().await?;
//! let dir = std::env::temp_dir().join("ferry-sim-demo");
//! sim.write_kubeconfig(&dir.join("kubeconfig"))?; // for kubectl or kube::Config
//! println!("API server at {}", sim.url());
//! // ... deploy, then count what the client wrote:
//! let writes = sim.metrics().writes("apply", "deployments.apps");
//! # let _ = writes;
//! sim.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! Over HTTP, besides the Kubernetes API: `GET /metrics` (Prometheus text:
//! `ferry_sim_requests_total{verb,resource,code}`, `ferry_sim_writes_total{verb,resource}` and
//! `ferry_sim_controller_writes_total{resource}`) and `GET /debug/requests` (the request log as
//! JSON: sequence number, wall and virtual time, verb, path, group, resource, namespace, name,
//! status code, user agent, field manager, whether it wrote). A *write* is an actual change to
//! stored state: a server-side apply that changes nothing is a request, not a write.
//!
//! # How it fits together
//!
//! Objects are kept as JSON (`serde_json::Value`) keyed by group/resource, namespace and name,
//! with one resourceVersion counter and a bounded change history per type for watches
//! (`store`). Every write, from a client or a controller, goes through one pipeline
//! (`state`): decode against the typed object (k8s-openapi's structs, which gives the real
//! server's 400s for wrong types and its strict/warn handling of unknown fields), defaults,
//! admission (cluster IPs, node ports), validation (422 with causes), managed fields,
//! generation, and no write at all when nothing changed. Server-side apply (`apply`) follows
//! structured-merge-diff: field sets, ownership, conflicts and force. Strategic merge patch
//! (`smp`) covers what kubectl sends. List types and merge keys come from a small table of the
//! built-in paths that need them (`schema`) and, for custom resources, from the CRD's schema:
//! k8s-openapi does not carry the OpenAPI list extensions as data.
//!
//! Controllers (`controllers`) run in passes on a virtual clock ([`SimConfig::speed`]):
//! Deployments, ReplicaSets, StatefulSets, DaemonSets, Jobs, CronJobs, the scheduler and a
//! kubelet whose containers follow image rules ([`ImageBehaviour`]), Services (Endpoints, load
//! balancer hostnames), volumes, HPAs, PDBs, namespaces, CRDs and the garbage collector. They
//! keep no state of their own, so a state file restores a cluster mid-rollout.
//!
//! # What is not simulated
//!
//! - No container runs: pods are status only. `exec`, `attach`, `port-forward`, `cp` and
//!   `proxy` are not served (404). `GET .../log?follow=true` returns the lines so far and ends.
//! - The OpenAPI v3 documents carry paths and parameters but placeholder schemas, so
//!   `kubectl explain` shows no field documentation. Validation needs no client schema: the
//!   server validates, and kubectl sends `fieldValidation=Strict`. `/openapi/v2` is 404.
//! - Duplicate keys in a request body follow `fieldValidation` as upstream (Strict: 400
//!   `strict decoding error: duplicate field "data.a"`, or `line N: key "a" already set in map`
//!   for YAML and apply bodies; Warn: `Warning` headers; Ignore: the last value, quietly). When a
//!   create's JSON body has both duplicate and unknown fields, duplicates are listed first
//!   (upstream lists them in document order). `kubectl apply -f` and `create -f` drop
//!   duplicates on the client before sending, so only `--raw` requests show them.
//! - Protobuf is not spoken; clients asking for it with a JSON fallback (kubectl does) get JSON.
//! - No authentication or authorisation: every request is allowed.
//! - Paged lists (`limit`/`continue`) page over the current state, not a snapshot.
//! - Pods are deleted at once (no graceful termination).
//! - HPAs keep replicas within bounds but no metrics exist, as on a cluster without a metrics
//!   server (`ScalingActive=False`).
//! - `events.k8s.io/v1` is not served; Events are `core/v1`.
//! - Ages that kubectl computes itself (`describe`) use the wall clock, so at a speed above 1
//!   they look younger than the virtual ages `kubectl get` shows.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

mod admission;
mod apply;
mod body;
mod clock;
mod config;
mod controllers;
mod defaults;
mod error;
mod fieldset;
mod metrics;
mod persist;
mod resources;
mod schema;
mod selector;
mod server;
mod smp;
mod state;
mod status;
mod store;
mod tls;
mod validate;

pub use config::{FaultConfig, FaultRates, ImageBehaviour, ImageRule, SimConfig, VERBS};
pub use error::SimError;
pub use metrics::{MetricsSnapshot, RequestRecord};

use clock::{VirtualClock, format_time, parse_time, timestamp_of, wall_now};
use persist::{Snapshot, StateFile, StoredObject};
use resources::GroupResource;
use server::Shared;
use state::State;

/// The simulator's entry point.
#[derive(Debug)]
pub struct Sim;

impl Sim {
    /// A builder with the default configuration, listening on `127.0.0.1:0` over plain HTTP,
    /// with state in memory.
    pub fn builder() -> SimBuilder {
        SimBuilder {
            config: SimConfig::default(),
            state_file: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: false,
            start_time: None,
        }
    }
}

/// Configures and starts a simulator.
#[derive(Debug)]
#[must_use]
pub struct SimBuilder {
    config: SimConfig,
    state_file: Option<PathBuf>,
    listen: SocketAddr,
    tls: bool,
    start_time: Option<SystemTime>,
}

impl SimBuilder {
    /// The simulator configuration (image rules, faults, speed).
    pub fn config(mut self, config: SimConfig) -> Self {
        self.config = config;
        self
    }

    /// Keep state in this file: loaded when it exists, written as it changes and at shutdown.
    /// The file is locked: a second simulator on it fails to start.
    pub fn state_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.state_file = Some(path.into());
        self
    }

    /// Where to listen (default `127.0.0.1:0`, a free port).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Serve HTTPS with a freshly generated CA and certificate (the kubeconfig carries the CA).
    /// The certificate is valid for `localhost`, `127.0.0.1`, `::1`, the in-cluster names of
    /// the `kubernetes` Service and the listen address when it is a specific one.
    pub fn tls(mut self, tls: bool) -> Self {
        self.tls = tls;
        self
    }

    /// Where virtual time starts (default: the wall clock now). A restored state file never
    /// moves time backwards: its saved time wins when it is later.
    pub fn start_time(mut self, start: SystemTime) -> Self {
        self.start_time = Some(start);
        self
    }

    /// Binds, restores state, creates the system objects and starts serving.
    pub async fn start(self) -> Result<SimHandle, SimError> {
        self.config.validate()?;
        let (state_file, snapshot) = match &self.state_file {
            Some(path) => {
                let (file, snapshot) = StateFile::open(path)?;
                (Some(Arc::new(file)), snapshot)
            }
            None => (None, None),
        };
        let pki = tls::generate(self.listen.ip())?;
        let acceptor = if self.tls {
            Some(tls::acceptor(&pki)?)
        } else {
            None
        };
        let listener = TcpListener::bind(self.listen)
            .await
            .map_err(|source| SimError::Bind {
                addr: self.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind {
            addr: self.listen,
            source,
        })?;

        let client_addr = client_address(addr);

        let start = timestamp_of(self.start_time.unwrap_or_else(wall_now));
        let config = Arc::new(self.config);
        let saved_time = snapshot
            .as_ref()
            .and_then(|s| parse_time(&s.virtual_time))
            .unwrap_or(start);
        let now = start.max(saved_time);
        let mut state = State::new(Arc::clone(&config), now);
        state.ca_pem = pki.ca_pem.clone();
        if let Some(snapshot) = snapshot {
            let objects = snapshot
                .objects
                .into_iter()
                .map(|o| (GroupResource::new(&o.group, &o.resource), o.object))
                .collect();
            state.store =
                store::Store::restore(config.watch_history, snapshot.resource_version, objects);
            state.refresh_custom_types();
        }
        controllers::bootstrap(&mut state);
        let rv = state.store.rv();
        let seed = config
            .seed
            .map_or_else(fastrand::Rng::new, |s| fastrand::Rng::with_seed(s ^ 0x5eed));
        let (changes, _) = tokio::sync::watch::channel(rv);
        let (shutdown, _) = tokio::sync::watch::channel(false);
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            clock: VirtualClock::new(now, config.speed),
            config: RwLock::new(config),
            metrics: metrics::Metrics::default(),
            changes,
            kick: tokio::sync::Notify::new(),
            shutdown,
            fault_rng: Mutex::new(seed),
            address: client_addr.to_string(),
        });
        let mut tasks = vec![
            tokio::spawn(server::accept_loop(Arc::clone(&shared), listener, acceptor)),
            tokio::spawn(server::controller_loop(Arc::clone(&shared))),
        ];
        if let Some(file) = &state_file {
            persist_now(&shared, file);
            tasks.push(tokio::spawn(persist_loop(
                Arc::clone(&shared),
                Arc::clone(file),
            )));
        }
        let scheme = if self.tls { "https" } else { "http" };
        Ok(SimHandle {
            shared,
            url: format!("{scheme}://{client_addr}"),
            addr,
            ca_pem: self.tls.then_some(pki.ca_pem),
            tasks,
            state_file,
            stopped: false,
        })
    }
}

/// Where clients reach a server bound to `bound`: the address itself, or for an unspecified
/// one (`0.0.0.0`, `[::]`) the loopback address of its family, which the server certificate
/// names (a client cannot connect to, or verify a certificate for, an unspecified address).
fn client_address(bound: SocketAddr) -> SocketAddr {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let ip = match bound.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, bound.port())
}

fn snapshot(shared: &Shared) -> Snapshot {
    let (now, rv, objects) = {
        let state = shared.lock();
        let objects: Vec<(GroupResource, store::Obj)> = state
            .store
            .all()
            .map(|(gr, o)| (gr.clone(), Arc::clone(o)))
            .collect();
        (state.now, state.store.rv(), objects)
    };
    Snapshot::new(
        format_time(now),
        rv,
        objects
            .into_iter()
            .map(|(gr, o)| StoredObject {
                group: gr.group,
                resource: gr.resource,
                object: (*o).clone(),
            })
            .collect(),
    )
}

fn persist_now(shared: &Shared, file: &StateFile) {
    if let Err(err) = file.write(&snapshot(shared)) {
        tracing::error!(error = %err, "cannot persist the simulator state");
    }
}

async fn persist_loop(shared: Arc<Shared>, file: Arc<StateFile>) {
    let mut changes = shared.changes.subscribe();
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return },
            () = server::stopped(&mut shutdown) => return,
        }
        // Debounce: write once a burst of changes settles (or at most every 250 ms).
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(250)) => {}
            () = server::stopped(&mut shutdown) => return,
        }
        let _ = changes.borrow_and_update();
        let snapshot = snapshot(&shared);
        let file = Arc::clone(&file);
        let written = tokio::task::spawn_blocking(move || file.write(&snapshot)).await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::error!(error = %err, "cannot persist the simulator state"),
            Err(err) => tracing::error!(error = %err, "the persistence task failed"),
        }
    }
}

/// A running simulator. Dropping it stops it (and persists state when a state file is set);
/// [`SimHandle::shutdown`] does the same and reports errors.
#[derive(Debug)]
pub struct SimHandle {
    shared: Arc<Shared>,
    url: String,
    addr: SocketAddr,
    ca_pem: Option<String>,
    tasks: Vec<JoinHandle<()>>,
    state_file: Option<Arc<StateFile>>,
    stopped: bool,
}

impl SimHandle {
    /// The API server's URL: `http://127.0.0.1:PORT` (or `https://` with TLS). When listening
    /// on an unspecified address (`0.0.0.0`, `[::]`), the URL names the loopback address of
    /// that family (`127.0.0.1`, `[::1]`) with the bound port; the kubeconfig uses this URL.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The address the server listens on (with the port actually bound, when asked for port 0).
    pub fn address(&self) -> SocketAddr {
        self.addr
    }

    /// The cluster CA (PEM) when serving TLS.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// A kubeconfig for the simulator: cluster, context and user named `ferry-sim`, namespace
    /// `default`, with the CA when serving TLS. The simulator does not authenticate: the user's
    /// token is a placeholder it never checks.
    pub fn kubeconfig_yaml(&self) -> String {
        let mut cluster = json!({"server": self.url});
        if let Some(ca) = &self.ca_pem {
            use base64::Engine as _;
            cluster["certificate-authority-data"] =
                json!(base64::engine::general_purpose::STANDARD.encode(ca));
        }
        let config = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "ferry-sim", "cluster": cluster}],
            "contexts": [{"name": "ferry-sim", "context": {"cluster": "ferry-sim", "user": "ferry-sim", "namespace": "default"}}],
            "current-context": "ferry-sim",
            // kubectl asks for a username when an HTTPS cluster's user has no credentials; the
            // simulator accepts any token and checks none.
            "users": [{"name": "ferry-sim", "user": {"token": "ferry-sim-does-not-authenticate"}}],
            "preferences": {},
        });
        serde_norway::to_string(&config).unwrap_or_default()
    }

    /// Writes [`SimHandle::kubeconfig_yaml`] to `path` with mode 0600, creating directories.
    pub fn write_kubeconfig(&self, path: &Path) -> Result<(), SimError> {
        use std::io::Write as _;
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        let fail = |source| SimError::Kubeconfig {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(path)
            .map_err(fail)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(fail)?;
        file.write_all(self.kubeconfig_yaml().as_bytes())
            .map_err(fail)
    }

    /// Request and write counters by verb and resource.
    pub fn metrics(&self) -> MetricsSnapshot {
        let controller_writes = self.shared.lock().controller_writes.clone();
        self.shared.metrics.snapshot(controller_writes)
    }

    /// The request log, oldest first (bounded by [`SimConfig::request_log_limit`]).
    pub fn request_log(&self) -> Vec<RequestRecord> {
        self.shared.metrics.log()
    }

    /// The current virtual time.
    pub fn virtual_time(&self) -> SystemTime {
        SystemTime::try_from(self.shared.clock.now()).unwrap_or(SystemTime::UNIX_EPOCH)
    }

    /// The current configuration.
    pub fn config(&self) -> SimConfig {
        (*self.shared.config()).clone()
    }

    /// Replaces the configuration at run time (image rules, faults, speed, delays). An invalid
    /// configuration is refused and the current one kept.
    pub fn set_config(&self, config: SimConfig) -> Result<(), SimError> {
        config.validate()?;
        self.shared.clock.set_speed(config.speed);
        let config = Arc::new(config);
        {
            let mut state = self.shared.lock();
            state.store.set_history_limit(config.watch_history);
            state.config = Arc::clone(&config);
        }
        *self
            .shared
            .config
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = config;
        self.shared.kick.notify_one();
        Ok(())
    }

    /// Stops serving and the controllers, and persists state when a state file is set.
    pub async fn shutdown(mut self) -> Result<(), SimError> {
        self.stopped = true;
        self.shared.shutdown.send_replace(true);
        for task in self.tasks.drain(..) {
            task.await.map_err(|err| SimError::Task {
                message: err.to_string(),
            })?;
        }
        if let Some(file) = self.state_file.take() {
            file.write(&snapshot(&self.shared))?;
        }
        Ok(())
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if self.stopped {
            return;
        }
        self.shared.shutdown.send_replace(true);
        for task in &self.tasks {
            task.abort();
        }
        if let Some(file) = self.state_file.take() {
            persist_now(&self.shared, &file);
        }
    }
}
