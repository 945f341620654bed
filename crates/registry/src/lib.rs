//! ferry-registry moves container images between OCI image layouts, `docker save` archives and
//! registries — Docker Hub, ECR, ACR or any OCI distribution registry — with no Docker daemon.
//!
//! # How the pieces fit
//!
//! - [`reference`](mod@reference): [`ImageRef`], [`Digest`] and [`Tag`], parsed strictly with Docker's
//!   normalisation (`nginx` is `docker.io/library/nginx`).
//! - [`auth`]: the [`RegistryAuth`] trait says *which credential* to present to a registry
//!   (anonymous, user and password, an identity token); implementations read Docker's
//!   `config.json` and its credential helpers, Docker Hub logins, ECR (feature `ecr`) and ACR
//!   (feature `acr`), and [`AuthChain`] combines them.
//! - [`Client`]: the distribution API. It learns each registry's challenge (Basic, or the
//!   Bearer token realm) from its first 401, then sends credentials up front, caches one token
//!   per *set of scopes* (so a cross-repository mount gets a token with push on the target and
//!   pull on the source), and retries transport failures and 408/429/5xx with backoff,
//!   honouring `Retry-After`.
//! - [`source`]: where images come from — [`OciLayout`] (directory or archive),
//!   [`DockerArchive`], [`RemoteImage`] — behind the [`ImageSource`] trait, each giving verified
//!   manifests and blob streams from any offset.
//! - [`copy`]: [`copy_image`] moves an image (or a multi-platform index) into a repository with
//!   several tags at once: `HEAD` before upload, mounts within a registry, parallel streamed
//!   uploads that resume after a dropped connection, digest checks on every byte, manifests
//!   written only after every blob is confirmed, tags last. [`tag_image`] adds tags by digest;
//!   immutable mode refuses to move a tag.
//! - [`inspect`](mod@inspect): [`resolve`] (tag → digest) and [`inspect()`](fn@inspect).
//! - [`config`]: the `[env.NAME.registry]` section of `ferry.toml`.
//!
//! # Why not oci-client for the wire
//!
//! The `oci-client` crate provides the manifest types this crate parses with, and its reference
//! parser is the oracle the reference property tests compare against. Its `Client` is not used
//! for requests because what ferry needs most sits across its grain: it stores one credential
//! per registry for the client's lifetime and caches tokens per single repository (so mounts,
//! which need two repositories' scopes in one token, fail with 401 on token registries —
//! oci-client issue #235); its `push()` uploads every blob without checking for it first; it has
//! no retries or `Retry-After` handling, no way to resume an upload, and builds its own HTTP
//! client (so connection pools and counters could not be shared). The distribution API is a
//! dozen endpoints; [`Client`] implements them on reqwest in one module.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use ferry_registry::{Client, CopyOptions, ImageRef, SourceSpec, Tag, copy_image};
//! use ferry_registry::auth::{AuthChain, Anonymous, DockerConfigAuth};
//!
//! # async fn run(env: std::collections::BTreeMap<String, String>) -> Result<(), ferry_registry::Error> {
//! let auth = AuthChain::first_try(DockerConfigAuth::from_env(&env)?).or_else(Anonymous);
//! let client = Client::builder().auth(Arc::new(auth)).build()?;
//! let source = SourceSpec::parse("oci:./image:latest")?.open(&client).await?;
//! let dest = ImageRef::parse("ghcr.io/acme/shop:3f2c1e9")?;
//! let report = copy_image(&client, source.as_ref(), &dest, &[Tag::parse("latest")?],
//!     &CopyOptions::default()).await?;
//! println!("pushed {} ({} bytes uploaded)", report.pinned, report.blob_bytes_uploaded);
//! # Ok(()) }
//! ```

pub mod auth;
pub mod client;
pub mod clock;
pub mod config;
pub mod copy;
pub mod error;
pub mod inspect;
pub mod manifest;
pub mod reference;
pub mod retry;
pub mod source;
pub mod token;
mod upload;

pub use auth::{AuthChain, Credential, RegistryAuth, SharedAuth};
pub use client::{Client, ClientBuilder, DEFAULT_ANSWER_TIMEOUT, StatsSnapshot};
pub use config::{Provider, RegistryConfig};
pub use copy::{BlobCounts, CopyOptions, CopyReport, TagOutcome, copy_image, tag_image};
pub use error::{Error, ErrorKind, Result};
pub use inspect::{ImageInfo, inspect, resolve};
pub use manifest::{Descriptor, Manifest};
pub use reference::{Digest, ImageRef, Tag};
pub use retry::RetryPolicy;
pub use source::{DockerArchive, ImageSource, OciLayout, RemoteImage, SourceSpec};
