//! `docker save` archives (`docker-archive:FILE[:REF|:@N]`).
//!
//! The archive's `manifest.json` lists, per image, its config file, its layer files and its
//! `RepoTags`. Docker's archive has no registry manifest, so ferry assembles an OCI image
//! manifest: the config keeps its exact bytes (its digest is the image ID), and each layer is
//! pushed as the archive holds it — uncompressed tars are `application/vnd.oci.image.layer.v1.tar`
//! with the digest the config's `rootfs.diff_ids` records (verified while streaming), compressed
//! ones are hashed once to learn their digest. Both the legacy layout (`ID/layer.tar`) and
//! Docker 25's (`blobs/sha256/HEX`) are read through `manifest.json`.

use std::collections::HashMap;
use std::path::Path;

use async_trait::async_trait;
use oci_client::manifest::{OciDescriptor, OciImageManifest};
use serde::Deserialize;

use super::store::Store;
use super::{ImageSource, shown};
use crate::client::BlobStream;
use crate::error::{Error, Result};
use crate::manifest::{
    Descriptor, Manifest, OCI_CONFIG, OCI_LAYER_TAR, OCI_LAYER_TAR_GZIP, OCI_MANIFEST,
};
use crate::reference::{Digest, ImageRef};

const MAX_CONFIG_BYTES: u64 = 32 * 1024 * 1024;
const ZSTD_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

#[derive(Deserialize)]
struct ArchiveEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

#[derive(Deserialize)]
struct ConfigProbe {
    #[serde(default)]
    rootfs: Option<RootFs>,
}

#[derive(Deserialize)]
struct RootFs {
    #[serde(default)]
    diff_ids: Vec<String>,
}

/// An image in a `docker save` archive.
#[derive(Debug)]
pub struct DockerArchive {
    store: Store,
    described: String,
    manifest: Manifest,
    /// Where each blob is in the archive.
    paths: HashMap<Digest, String>,
}

fn digest_from_path(path: &str) -> Option<Digest> {
    let rest = path.strip_prefix("blobs/")?;
    let (alg, hex) = rest.split_once('/')?;
    Digest::parse(&format!("{alg}:{hex}")).ok()
}

impl DockerArchive {
    /// Opens an archive and picks the image named `reference` (a reference among its
    /// `RepoTags`, or `@N`), or the only image.
    pub async fn open(path: &Path, reference: Option<&str>) -> Result<Self> {
        let described = format!(
            "docker-archive:{}{}",
            shown(path),
            reference.map(|r| format!(":{r}")).unwrap_or_default()
        );
        let store = Store::open_tar(path).await?;
        let at = shown(path);
        let listing = store
            .read("manifest.json", 16 * 1024 * 1024)
            .await?
            .ok_or_else(|| {
                Error::source(&at, "not a docker save archive: there is no manifest.json")
            })?;
        let entries: Vec<ArchiveEntry> = serde_json::from_slice(&listing)
            .map_err(|e| Error::source(&at, format!("manifest.json is not valid: {e}")))?;
        let tags_of = |e: &ArchiveEntry| e.repo_tags.clone().unwrap_or_default().join(" ");
        let listed = || {
            let all: Vec<String> = entries
                .iter()
                .enumerate()
                .map(|(i, e)| format!("@{i} {}", tags_of(e)).trim().to_owned())
                .collect();
            all.join(", ")
        };
        let entry = match reference {
            Some(r) if r.starts_with('@') => {
                let i: usize = r[1..]
                    .parse()
                    .map_err(|_| Error::source(&at, format!("`{r}` is not @INDEX")))?;
                entries.get(i).ok_or_else(|| {
                    Error::source(&at, format!("has no image {r} (images: {})", listed()))
                })?
            }
            Some(r) => {
                let wanted = ImageRef::parse(r)?;
                entries
                    .iter()
                    .find(|e| {
                        e.repo_tags.iter().flatten().any(|t| {
                            ImageRef::parse(t).is_ok_and(|t| {
                                t.same_repository(&wanted) && t.tag() == wanted.tag().or(t.tag())
                            })
                        })
                    })
                    .ok_or_else(|| {
                        Error::source(
                            &at,
                            format!("has no image named {r} (images: {})", listed()),
                        )
                    })?
            }
            None => match entries.as_slice() {
                [only] => only,
                [] => return Err(Error::source(&at, "manifest.json lists no images")),
                _ => {
                    return Err(Error::source(
                        &at,
                        format!(
                            "holds several images; name one with :REF or :@N (images: {})",
                            listed()
                        ),
                    ));
                }
            },
        };

        let mut paths = HashMap::new();
        let config_bytes = store
            .read(&entry.config, MAX_CONFIG_BYTES)
            .await?
            .ok_or_else(|| Error::source(&at, format!("the config {} is missing", entry.config)))?;
        let config_digest = Digest::sha256_of(&config_bytes);
        // Legacy archives name the config HEX.json (the image ID), new ones blobs/sha256/HEX.
        let named = digest_from_path(&entry.config).or_else(|| {
            let stem = entry.config.strip_suffix(".json")?;
            Digest::parse(&format!("sha256:{stem}")).ok()
        });
        if let Some(named) = named
            && named != config_digest
        {
            return Err(Error::DigestMismatch {
                what: format!("{at}: config {}", entry.config),
                expected: named,
                actual: config_digest,
            });
        }
        paths.insert(config_digest.clone(), entry.config.clone());
        let diff_ids: Vec<String> = serde_json::from_slice::<ConfigProbe>(&config_bytes)
            .map_err(|e| Error::source(&at, format!("the image config is not valid JSON: {e}")))?
            .rootfs
            .map(|r| r.diff_ids)
            .unwrap_or_default();

        let mut layers = Vec::with_capacity(entry.layers.len());
        for (i, layer) in entry.layers.iter().enumerate() {
            let size = store
                .size(layer)
                .await?
                .ok_or_else(|| Error::source(&at, format!("the layer {layer} is missing")))?;
            let head = store.head(layer, 4).await?;
            let (media_type, compressed) = if head.starts_with(&[0x1f, 0x8b]) {
                (OCI_LAYER_TAR_GZIP, true)
            } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
                (ZSTD_LAYER, true)
            } else {
                (OCI_LAYER_TAR, false)
            };
            let digest = match digest_from_path(layer) {
                Some(d) => d,
                None if !compressed => diff_ids
                    .get(i)
                    .and_then(|d| Digest::parse(d).ok())
                    .ok_or_else(|| {
                        Error::source(
                            &at,
                            format!("the config has no diff_id for layer {i} ({layer})"),
                        )
                    })?,
                None => store.digest_of(layer).await?.0,
            };
            paths.insert(digest.clone(), layer.clone());
            layers.push(OciDescriptor {
                media_type: media_type.to_owned(),
                digest: digest.to_string(),
                size: i64::try_from(size).unwrap_or(i64::MAX),
                urls: None,
                annotations: None,
                artifact_type: None,
            });
        }
        let manifest = OciImageManifest {
            schema_version: 2,
            media_type: Some(OCI_MANIFEST.to_owned()),
            config: OciDescriptor {
                media_type: OCI_CONFIG.to_owned(),
                digest: config_digest.to_string(),
                size: config_bytes.len() as i64,
                urls: None,
                annotations: None,
                artifact_type: None,
            },
            layers,
            subject: None,
            artifact_type: None,
            annotations: None,
        };
        let manifest = Manifest::from_value(&manifest, OCI_MANIFEST)?;
        Ok(DockerArchive {
            store,
            described,
            manifest,
            paths,
        })
    }
}

#[async_trait]
impl ImageSource for DockerArchive {
    async fn root(&self) -> Result<Manifest> {
        Ok(self.manifest.clone())
    }

    async fn manifest(&self, descriptor: &Descriptor) -> Result<Manifest> {
        Err(Error::source(
            &self.described,
            format!(
                "a docker archive holds no child manifest {}",
                descriptor.digest
            ),
        ))
    }

    async fn open_blob(&self, descriptor: &Descriptor, offset: u64) -> Result<BlobStream> {
        let path = self.paths.get(&descriptor.digest).ok_or_else(|| {
            Error::source(
                &self.described,
                format!("has no blob {}", descriptor.digest),
            )
        })?;
        self.store.open(path, offset).await
    }

    fn describe(&self) -> String {
        self.described.clone()
    }
}
