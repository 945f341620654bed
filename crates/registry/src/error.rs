//! The crate's error type. `Display` says what failed in one line and never repeats its source
//! (callers print the chain); nothing here ever holds a password or a token.

use crate::auth::AuthError;
use crate::reference::{Digest, ReferenceError};

/// Boxed source errors.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong talking to a registry or reading an image.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A reference, tag or digest is malformed.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// Getting credentials failed (before talking to the registry).
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The registry could not be reached (DNS, connection refused, TLS, timeout).
    #[error("cannot reach registry {registry} ({operation})")]
    Connect {
        /// The registry.
        registry: String,
        /// What ferry was doing.
        operation: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The registry accepted the connection but did not answer in time.
    #[error("no answer from registry {registry} within {seconds} s ({operation})")]
    NoAnswer {
        /// The registry.
        registry: String,
        /// What ferry was doing.
        operation: String,
        /// How long ferry waited.
        seconds: f64,
    },
    /// The registry (or its token service) sent the start of an answer and then nothing more for
    /// the answer timeout, through every retry.
    #[error(
        "registry {registry} stopped sending {what} after {received} bytes: nothing more within {seconds} s ({operation})"
    )]
    Stalled {
        /// The registry.
        registry: String,
        /// What ferry was doing.
        operation: String,
        /// What was being read (a manifest, a token, a tag list, an error message).
        what: String,
        /// The body bytes that arrived before the stall (on the last attempt).
        received: u64,
        /// How long ferry waited for the next byte.
        seconds: f64,
    },
    /// The registry (or its token service) rejected the credentials, or they do not grant the
    /// access needed.
    #[error("registry {registry} refused {operation}: {detail}")]
    Unauthorized {
        /// The registry.
        registry: String,
        /// What ferry was doing.
        operation: String,
        /// Why, as far as the registry said (never a credential).
        detail: String,
    },
    /// Something that must exist does not.
    #[error("{what} not found on {registry}")]
    NotFound {
        /// The registry.
        registry: String,
        /// What was looked for.
        what: String,
    },
    /// The registry answered with an error status.
    #[error("registry {registry} answered {status} to {operation}: {message}")]
    Registry {
        /// The registry.
        registry: String,
        /// What ferry was doing.
        operation: String,
        /// The HTTP status.
        status: u16,
        /// The registry's error codes and messages.
        message: String,
    },
    /// A manifest is larger than ferry accepts.
    #[error("manifest {what} is {size} bytes; ferry accepts manifests of at most {max} bytes")]
    ManifestTooLarge {
        /// Which manifest.
        what: String,
        /// Its size (or at least how much was read before giving up).
        size: u64,
        /// The limit.
        max: u64,
    },
    /// Content does not hash to the digest that names it.
    #[error("digest mismatch for {what}: expected {expected}, the content hashes to {actual}")]
    DigestMismatch {
        /// What was checked.
        what: String,
        /// The digest that names it.
        expected: Digest,
        /// The digest of the bytes.
        actual: Digest,
    },
    /// Content is not the size its descriptor says.
    #[error("size mismatch for {what}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// What was checked.
        what: String,
        /// The descriptor's size.
        expected: u64,
        /// The actual size.
        actual: u64,
    },
    /// A manifest's media type is not one ferry copies.
    #[error(
        "unsupported media type `{media_type}` for {what} (ferry copies OCI and Docker v2 image manifests and indexes)"
    )]
    UnsupportedMediaType {
        /// What had it.
        what: String,
        /// The media type.
        media_type: String,
    },
    /// A manifest is not valid JSON of the shape its media type promises.
    #[error("invalid manifest {what}: {message}")]
    InvalidManifest {
        /// Which manifest.
        what: String,
        /// What is wrong.
        message: String,
    },
    /// A local image source (OCI layout, archive) is malformed.
    #[error("{path}: {message}")]
    Source {
        /// The layout directory or archive.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Reading a local file failed.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Immutable mode refused to move a tag to another digest.
    #[error("{reference} already points to {existing}; immutable mode refuses to move it to {new}")]
    ImmutableTag {
        /// The tag.
        reference: String,
        /// Where it points now.
        existing: Digest,
        /// Where it would have pointed.
        new: Digest,
    },
    /// A transfer kept failing after every retry.
    #[error("{operation} on {registry} failed after {attempts} attempts")]
    GaveUp {
        /// The registry.
        registry: String,
        /// What ferry was doing.
        operation: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last error.
        #[source]
        source: BoxError,
    },
}

/// The broad class of an [`Error`], for exit codes and for deciding what to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input is invalid (reference, manifest, source, digest, media type); nothing changed.
    InvalidInput,
    /// Credentials are missing, wrong or insufficient.
    Auth,
    /// Immutable mode refused a change; nothing changed.
    Policy,
    /// Something asked for does not exist.
    NotFound,
    /// Network, I/O or an unexpected registry answer.
    Runtime,
}

impl Error {
    /// The broad class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Reference(_)
            | Error::ManifestTooLarge { .. }
            | Error::DigestMismatch { .. }
            | Error::SizeMismatch { .. }
            | Error::UnsupportedMediaType { .. }
            | Error::InvalidManifest { .. }
            | Error::Source { .. } => ErrorKind::InvalidInput,
            Error::Auth(AuthError::BadFile { .. }) => ErrorKind::InvalidInput,
            Error::Auth(_) | Error::Unauthorized { .. } => ErrorKind::Auth,
            Error::ImmutableTag { .. } => ErrorKind::Policy,
            Error::NotFound { .. } => ErrorKind::NotFound,
            // A file or directory the user named that is not there is bad input, not a failure.
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                ErrorKind::InvalidInput
            }
            Error::Connect { .. }
            | Error::NoAnswer { .. }
            | Error::Stalled { .. }
            | Error::Registry { .. }
            | Error::Io { .. } => ErrorKind::Runtime,
            Error::GaveUp { source, .. } => match source.downcast_ref::<Error>() {
                Some(inner) => inner.kind(),
                None => ErrorKind::Runtime,
            },
        }
    }

    /// A hint for the user, when there is an obvious next step.
    pub fn help(&self) -> Option<String> {
        match self {
            Error::Unauthorized { registry, .. } | Error::Auth(AuthError::Failed { registry, .. }) => {
                Some(format!(
                    "check the credentials for {registry}: --username with --password-stdin, \
                     FERRY_REGISTRY_USERNAME/FERRY_REGISTRY_PASSWORD, or a docker config.json login"
                ))
            }
            Error::Auth(AuthError::BadFile { .. }) => Some(
                "fix the file (Docker's config.json: JSON with `auths`, `credsStore`, \
                 `credHelpers`), or point DOCKER_CONFIG / REGISTRY_AUTH_FILE elsewhere"
                    .to_owned(),
            ),
            Error::Connect { registry, .. } => Some(format!(
                "is `{registry}` the right registry host, and is it reachable from here?"
            )),
            Error::NoAnswer { registry, .. } => Some(format!(
                "`{registry}` took the connection but said nothing: is it a registry, and is it up?"
            )),
            Error::Stalled { registry, .. } => Some(format!(
                "`{registry}` (or a proxy in front of it) stopped part-way through its answer: \
                 is it overloaded or failing? Running the command again is safe"
            )),
            Error::Registry {
                registry,
                operation,
                status: 404,
                ..
            } if operation.starts_with("log in") => Some(format!(
                "`{registry}` does not serve the registry API at /v2/: is it a container registry?"
            )),
            Error::ImmutableTag { .. } => Some(
                "push a new tag (the commit SHA), or copy by digest; immutable environments never move tags"
                    .to_owned(),
            ),
            Error::Reference(_) => Some(
                "references look like [REGISTRY/]REPOSITORY[:TAG][@sha256:DIGEST], lower-case".to_owned(),
            ),
            _ => None,
        }
    }

    pub(crate) fn io(path: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn source(path: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Source {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_invalid_input_other_io_failures_are_runtime() {
        let missing = Error::io(
            "/no/such",
            std::io::Error::from(std::io::ErrorKind::NotFound),
        );
        assert_eq!(missing.kind(), ErrorKind::InvalidInput);
        let denied = Error::io(
            "/x",
            std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        );
        assert_eq!(denied.kind(), ErrorKind::Runtime);
        let broken = Error::io("/x", std::io::Error::other("disk on fire"));
        assert_eq!(broken.kind(), ErrorKind::Runtime);
    }

    #[test]
    fn a_host_without_the_registry_api_is_named_as_such() {
        let answered = |operation: &str, status| Error::Registry {
            registry: "example.com".into(),
            operation: operation.into(),
            status,
            message: "Not Found".into(),
        };
        let help = answered("log in to example.com", 404).help().unwrap();
        assert!(
            help.contains("does not serve the registry API at /v2/"),
            "{help}"
        );
        assert_eq!(answered("log in to example.com", 500).help(), None);
        assert_eq!(answered("PUT manifest", 404).help(), None);
    }
}
