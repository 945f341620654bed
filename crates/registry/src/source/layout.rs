//! OCI image layouts: `oci-layout`, `index.json` and `blobs/ALG/HEX`, as a directory
//! (`oci:PATH[:TAG]`) or a tar archive of one (`oci-archive:FILE[:TAG]`).
//!
//! The image is the `index.json` entry whose `org.opencontainers.image.ref.name` annotation is
//! the tag asked for, or the only entry when no tag is given.

use std::path::Path;

use async_trait::async_trait;
use bytes::Bytes;
use serde::Deserialize;

use super::store::Store;
use super::{ImageSource, shown, verified_manifest};
use crate::client::BlobStream;
use crate::error::{Error, Result};
use crate::manifest::{Descriptor, MAX_MANIFEST_BYTES, Manifest};

const REF_NAME: &str = "org.opencontainers.image.ref.name";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LayoutFile {
    image_layout_version: String,
}

#[derive(Deserialize)]
struct IndexFile {
    #[serde(default)]
    manifests: Vec<IndexEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IndexEntry {
    media_type: String,
    digest: String,
    size: i64,
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
}

/// An image in an OCI image layout.
#[derive(Debug)]
pub struct OciLayout {
    store: Store,
    described: String,
    root: Descriptor,
}

impl OciLayout {
    /// Opens a layout directory and picks the image tagged `tag` (or the only one).
    pub async fn open_dir(path: &Path, tag: Option<&str>) -> Result<Self> {
        match tokio::fs::metadata(path).await {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Error::source(
                    shown(path),
                    "is not a directory (for a tar archive of a layout, use oci-archive:)",
                ));
            }
            Err(e) => return Err(Error::io(shown(path), e)),
        }
        let described = format!(
            "oci:{}{}",
            shown(path),
            tag.map(|t| format!(":{t}")).unwrap_or_default()
        );
        Self::open(Store::Dir(path.to_owned()), tag, described).await
    }

    /// Opens a tar archive of a layout and picks the image tagged `tag` (or the only one).
    pub async fn open_archive(path: &Path, tag: Option<&str>) -> Result<Self> {
        let described = format!(
            "oci-archive:{}{}",
            shown(path),
            tag.map(|t| format!(":{t}")).unwrap_or_default()
        );
        Self::open(Store::open_tar(path).await?, tag, described).await
    }

    async fn open(store: Store, tag: Option<&str>, described: String) -> Result<Self> {
        let at = store.describe();
        let layout = store.read("oci-layout", 64 * 1024).await?.ok_or_else(|| {
            Error::source(
                &at,
                "not an OCI image layout: there is no `oci-layout` file",
            )
        })?;
        let layout: LayoutFile = serde_json::from_slice(&layout)
            .map_err(|e| Error::source(&at, format!("oci-layout is not valid: {e}")))?;
        if !layout.image_layout_version.starts_with("1.") {
            return Err(Error::source(
                &at,
                format!(
                    "unsupported OCI layout version {}",
                    layout.image_layout_version
                ),
            ));
        }
        let index = store
            .read("index.json", MAX_MANIFEST_BYTES)
            .await?
            .ok_or_else(|| Error::source(&at, "not an OCI image layout: there is no index.json"))?;
        let index: IndexFile = serde_json::from_slice(&index)
            .map_err(|e| Error::source(&at, format!("index.json is not valid: {e}")))?;
        let names = || {
            let list: Vec<String> = index
                .manifests
                .iter()
                .map(|m| {
                    m.annotations
                        .get(REF_NAME)
                        .cloned()
                        .unwrap_or_else(|| m.digest.clone())
                })
                .collect();
            if list.is_empty() {
                "none".to_owned()
            } else {
                list.join(", ")
            }
        };
        let entry = match tag {
            Some(tag) => index
                .manifests
                .iter()
                .find(|m| m.annotations.get(REF_NAME).map(String::as_str) == Some(tag))
                .ok_or_else(|| {
                    Error::source(
                        &at,
                        format!("has no image named `{tag}` (images: {})", names()),
                    )
                })?,
            None => match index.manifests.as_slice() {
                [only] => only,
                [] => return Err(Error::source(&at, "index.json lists no images")),
                _ => {
                    return Err(Error::source(
                        &at,
                        format!(
                            "holds several images; name one with :TAG (images: {})",
                            names()
                        ),
                    ));
                }
            },
        };
        let digest = crate::reference::Digest::parse(&entry.digest)
            .map_err(|e| Error::source(&at, format!("index.json: {e}")))?;
        let size = u64::try_from(entry.size)
            .map_err(|_| Error::source(&at, "index.json: negative size"))?;
        let root = Descriptor {
            media_type: entry.media_type.clone(),
            digest,
            size,
            platform: None,
        };
        Ok(OciLayout {
            store,
            described,
            root,
        })
    }

    fn blob_path(descriptor: &Descriptor) -> String {
        format!(
            "blobs/{}/{}",
            descriptor.digest.algorithm().name(),
            descriptor.digest.hex()
        )
    }

    async fn read_manifest(&self, descriptor: &Descriptor, what: &str) -> Result<Manifest> {
        if descriptor.size > MAX_MANIFEST_BYTES {
            return Err(Error::ManifestTooLarge {
                what: what.to_owned(),
                size: descriptor.size,
                max: MAX_MANIFEST_BYTES,
            });
        }
        let stream = self.open_blob(descriptor, 0).await?;
        let m = verified_manifest(stream, descriptor, what).await?;
        Ok(Manifest {
            digest: descriptor.digest.clone(),
            ..m
        })
    }

    /// The raw bytes of a small blob (a config), verified.
    pub async fn read_blob(&self, descriptor: &Descriptor, max: u64) -> Result<Bytes> {
        let stream = self.open_blob(descriptor, 0).await?;
        crate::upload::read_verified(
            stream,
            descriptor,
            &format!("{}: {}", self.described, descriptor.digest),
            max,
        )
        .await
    }
}

#[async_trait]
impl ImageSource for OciLayout {
    async fn root(&self) -> Result<Manifest> {
        let what = self.described.clone();
        self.read_manifest(&self.root.clone(), &what).await
    }

    async fn manifest(&self, descriptor: &Descriptor) -> Result<Manifest> {
        let what = format!("{}: manifest {}", self.described, descriptor.digest);
        self.read_manifest(descriptor, &what).await
    }

    async fn open_blob(&self, descriptor: &Descriptor, offset: u64) -> Result<BlobStream> {
        let path = Self::blob_path(descriptor);
        match self.store.size(&path).await? {
            None => Err(Error::source(
                self.store.describe(),
                format!("blob {} is missing ({path})", descriptor.digest),
            )),
            Some(size) if size != descriptor.size => Err(Error::SizeMismatch {
                what: format!("{}: blob {}", self.described, descriptor.digest),
                expected: descriptor.size,
                actual: size,
            }),
            Some(_) => self.store.open(&path, offset).await,
        }
    }

    fn describe(&self) -> String {
        self.described.clone()
    }
}
