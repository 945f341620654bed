//! The simulator's error type. API errors seen by clients are not here: they are
//! `metav1.Status` responses (see the `status` module).

use std::path::PathBuf;

/// Why the simulator could not start, persist or stop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The configuration is invalid (bad TOML, unknown keys, out-of-range values).
    #[error("invalid simulator config: {message}")]
    ConfigInvalid {
        /// What is wrong, naming the key.
        message: String,
    },
    /// The configuration file could not be read.
    #[error("cannot read the simulator config {}", path.display())]
    ConfigRead {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Another process holds the state file's lock.
    #[error(
        "the state file {} is in use by another simulator (lock {} is held); stop that one or use another --state file",
        path.display(),
        lock.display()
    )]
    StateLocked {
        /// The state file.
        path: PathBuf,
        /// The lock file.
        lock: PathBuf,
    },
    /// The state file (or its lock) could not be read or written.
    #[error("cannot {action} the state file {}", path.display())]
    StateIo {
        /// What was being done: "read", "write", "lock".
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The state file is not a ferry-sim state file of a version this build reads.
    #[error("the state file {} is not a ferry-sim state file this version can read", path.display())]
    StateFormat {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The kubeconfig could not be written.
    #[error("cannot write the kubeconfig {}", path.display())]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The self-signed TLS certificate could not be made or used.
    #[error("cannot set up TLS: {message}")]
    Tls {
        /// What failed.
        message: String,
    },
    /// A background task of the simulator panicked or could not be joined.
    #[error("a simulator task failed: {message}")]
    Task {
        /// What failed.
        message: String,
    },
}
