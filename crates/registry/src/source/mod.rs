//! Where images come from: an OCI image layout (a directory or a tar archive of one), a
//! `docker save` archive, or a repository on a registry.
//!
//! Every source hands out the image's top manifest (verified), child manifests (verified
//! against their descriptors) and blob streams from any offset, so uploads stream straight from
//! the source and resume mid-blob. Local archives are indexed once (entry → offset, size) and
//! read with seeks: no extraction, no temporary copies.

use std::fmt;
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use crate::client::{BlobStream, Client};
use crate::error::{Error, Result};
use crate::manifest::{Descriptor, MAX_MANIFEST_BYTES, Manifest};
use crate::reference::ImageRef;

mod docker_archive;
mod layout;
mod remote;
mod store;

pub use docker_archive::DockerArchive;
pub use layout::OciLayout;
pub use remote::RemoteImage;

/// An image to copy.
#[async_trait]
pub trait ImageSource: Send + Sync + fmt::Debug {
    /// The image's top manifest: an image manifest or an index.
    async fn root(&self) -> Result<Manifest>;

    /// A child manifest of an index, verified against `descriptor`.
    async fn manifest(&self, descriptor: &Descriptor) -> Result<Manifest>;

    /// A blob's bytes from `offset` on. The stream is not verified: the uploader hashes it.
    async fn open_blob(&self, descriptor: &Descriptor, offset: u64) -> Result<BlobStream>;

    /// The registry repository the image is in, when it is in one (enables mounts).
    fn repository(&self) -> Option<&ImageRef> {
        None
    }

    /// A short description for messages (`oci:./out:latest`).
    fn describe(&self) -> String;
}

/// A source as written on the command line, skopeo-style.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// `oci:PATH[:TAG]`: an OCI image layout directory.
    OciLayout {
        /// The directory.
        path: PathBuf,
        /// The `org.opencontainers.image.ref.name` to pick.
        tag: Option<String>,
    },
    /// `oci-archive:FILE[:TAG]`: a tar archive of an OCI image layout.
    OciArchive {
        /// The archive.
        path: PathBuf,
        /// The `org.opencontainers.image.ref.name` to pick.
        tag: Option<String>,
    },
    /// `docker-archive:FILE[:REF|:@N]`: a `docker save` tarball.
    DockerArchive {
        /// The archive.
        path: PathBuf,
        /// Which image: a reference among its `RepoTags`, or `@N` for the N-th.
        reference: Option<String>,
    },
    /// `docker://REF`, or a plain reference: an image in a registry.
    Registry(ImageRef),
}

impl SourceSpec {
    /// Parses `oci:PATH[:TAG]`, `oci-archive:FILE[:TAG]`, `docker-archive:FILE[:REF]`,
    /// `docker://REF` or a plain reference.
    pub fn parse(s: &str) -> Result<Self> {
        // `PATH[:NAME]`: a path is required; the name is optional.
        let path_and_name = |transport: &str, rest: &str| -> Result<(PathBuf, Option<String>)> {
            let (path, name) = match rest.split_once(':') {
                Some((path, name)) if !name.is_empty() => (path, Some(name.to_owned())),
                Some((path, _)) => (path, None),
                None => (rest, None),
            };
            if path.is_empty() {
                return Err(Error::source(
                    s,
                    format!("`{transport}:` needs a path, e.g. {transport}:./image"),
                ));
            }
            Ok((PathBuf::from(path), name))
        };
        // An OCI layout's name is a tag (`org.opencontainers.image.ref.name`).
        let layout = |transport: &str, rest: &str| -> Result<(PathBuf, Option<String>)> {
            let (path, tag) = path_and_name(transport, rest)?;
            if let Some(t) = &tag {
                crate::reference::Tag::parse(t)?;
            }
            Ok((path, tag))
        };
        if let Some(rest) = s.strip_prefix("oci:") {
            let (path, tag) = layout("oci", rest)?;
            Ok(SourceSpec::OciLayout { path, tag })
        } else if let Some(rest) = s.strip_prefix("oci-archive:") {
            let (path, tag) = layout("oci-archive", rest)?;
            Ok(SourceSpec::OciArchive { path, tag })
        } else if let Some(rest) = s.strip_prefix("docker-archive:") {
            let (path, reference) = path_and_name("docker-archive", rest)?;
            Ok(SourceSpec::DockerArchive { path, reference })
        } else if let Some(rest) = s.strip_prefix("docker://") {
            Ok(SourceSpec::Registry(ImageRef::parse(rest)?))
        } else if let Some((transport, _)) = s.split_once(':')
            && [
                "dir",
                "containers-storage",
                "docker-daemon",
                "ostree",
                "sif",
            ]
            .contains(&transport)
        {
            Err(Error::source(
                s,
                format!(
                    "the `{transport}:` transport is not supported; use oci:, oci-archive:, docker-archive: or a registry reference"
                ),
            ))
        } else {
            ImageRef::parse(s).map(SourceSpec::Registry).map_err(|e| {
                // `oci-arhive:./x.tar`, `foo:/tmp`: a mistyped transport, not a bad reference.
                match s.split_once(':') {
                    Some((word, rest))
                        if e != crate::reference::ReferenceError::Credentials
                            && !word.is_empty()
                            && !word.contains(['/', '.'])
                            && (rest.starts_with(['/', '.', '~']) || rest.contains(".tar")) =>
                    {
                        Error::source(
                            s,
                            format!(
                                "unknown transport `{word}:`; sources are oci:PATH[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REF] or a registry reference"
                            ),
                        )
                    }
                    _ => e.into(),
                }
            })
        }
    }

    /// Opens the source (reading and checking its index, not its blobs).
    pub async fn open(&self, client: &Client) -> Result<Box<dyn ImageSource>> {
        Ok(match self {
            SourceSpec::OciLayout { path, tag } => {
                Box::new(OciLayout::open_dir(path, tag.as_deref()).await?)
            }
            SourceSpec::OciArchive { path, tag } => {
                Box::new(OciLayout::open_archive(path, tag.as_deref()).await?)
            }
            SourceSpec::DockerArchive { path, reference } => {
                Box::new(DockerArchive::open(path, reference.as_deref()).await?)
            }
            SourceSpec::Registry(image) => {
                Box::new(RemoteImage::open(client.clone(), image).await?)
            }
        })
    }

    /// The registry image, for `Registry` sources.
    pub fn registry_image(&self) -> Option<&ImageRef> {
        match self {
            SourceSpec::Registry(r) => Some(r),
            _ => None,
        }
    }
}

/// Reads a manifest blob from a local store and checks it against its descriptor.
pub(crate) async fn verified_manifest(
    stream: BlobStream,
    descriptor: &Descriptor,
    what: &str,
) -> Result<Manifest> {
    let bytes = crate::upload::read_verified(stream, descriptor, what, MAX_MANIFEST_BYTES).await?;
    Manifest::from_bytes(bytes, Some(&descriptor.media_type), what)
}

pub(crate) fn shown(path: &Path) -> String {
    path.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse_skopeo_style() {
        let path = |p: &str| PathBuf::from(p);
        let cases = [
            (
                "oci:./out:v1",
                SourceSpec::OciLayout {
                    path: path("./out"),
                    tag: Some("v1".to_owned()),
                },
            ),
            (
                "oci:./out",
                SourceSpec::OciLayout {
                    path: path("./out"),
                    tag: None,
                },
            ),
            (
                "oci-archive:img.tar:",
                SourceSpec::OciArchive {
                    path: path("img.tar"),
                    tag: None,
                },
            ),
            (
                "docker-archive:img.tar:shop/web:dev",
                SourceSpec::DockerArchive {
                    path: path("img.tar"),
                    reference: Some("shop/web:dev".to_owned()),
                },
            ),
            (
                "docker://ghcr.io/a/b:v1",
                SourceSpec::Registry(ImageRef::parse("ghcr.io/a/b:v1").unwrap()),
            ),
            (
                "nginx",
                SourceSpec::Registry(ImageRef::parse("docker.io/library/nginx").unwrap()),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(SourceSpec::parse(text).unwrap(), expected, "{text}");
        }
        for (text, says) in [
            ("oci:", "`oci:` needs a path"),
            ("oci-archive::v1", "`oci-archive:` needs a path"),
            ("docker-archive:", "`docker-archive:` needs a path"),
            ("dir:/tmp/x", "not supported"),
            ("foo:/tmp/x", "unknown transport `foo:`"),
            ("oci-arhive:./img.tar", "unknown transport `oci-arhive:`"),
        ] {
            let err = SourceSpec::parse(text).unwrap_err();
            assert!(err.to_string().contains(says), "{text}: {err}");
        }
        assert!(matches!(
            SourceSpec::parse("oci:./out:Bad Tag").unwrap_err(),
            Error::Reference(_)
        ));
        // Credentials in a reference are refused as such, whatever else the text looks like.
        assert!(matches!(
            SourceSpec::parse("u:s3cret@host.io/x.tar").unwrap_err(),
            Error::Reference(crate::reference::ReferenceError::Credentials)
        ));
        // A bad reference that does not look like a transport stays a reference error.
        assert!(matches!(
            SourceSpec::parse("localhost:5000/a//b").unwrap_err(),
            Error::Reference(_)
        ));
    }
}
