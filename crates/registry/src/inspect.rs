//! What an image is: its digest, kind, platforms, layers and config, read from a registry.

use serde::{Deserialize, Serialize};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::manifest::{Descriptor, ManifestContent};
use crate::reference::{Digest, ImageRef};
use crate::upload::read_verified;

const MAX_CONFIG_BYTES: u64 = 32 * 1024 * 1024;

/// The parts of an image config worth showing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigSummary {
    /// Operating system.
    #[serde(default)]
    pub os: Option<String>,
    /// CPU architecture.
    #[serde(default)]
    pub architecture: Option<String>,
    /// When it was built (RFC 3339, as the builder wrote it).
    #[serde(default)]
    pub created: Option<String>,
}

/// One platform of an index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlatformEntry {
    /// `os/arch[/variant]`, or `unknown`.
    pub platform: String,
    /// The platform manifest.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
}

/// An image as a registry holds it.
#[derive(Debug, Clone, Serialize)]
pub struct ImageInfo {
    /// The reference asked about.
    pub reference: String,
    /// Pinned by digest.
    pub pinned: String,
    /// The top manifest's digest.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub manifest_size: u64,
    /// `image` or `index`.
    pub kind: &'static str,
    /// For an index: its platforms.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<PlatformEntry>,
    /// For an image: its config blob.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<Descriptor>,
    /// For an image: what the config says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_summary: Option<ConfigSummary>,
    /// For an image: its layers, base first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<Descriptor>,
    /// For an image: the sum of its layer sizes.
    pub layer_bytes: u64,
}

/// Resolves a reference to the digest of its manifest (a `HEAD`, no download).
pub async fn resolve(client: &Client, image: &ImageRef) -> Result<Digest> {
    match client.head_manifest(image).await? {
        Some(d) => {
            if let Some(asked) = image.digest()
                && *asked != d.digest
                && asked.algorithm() == d.digest.algorithm()
            {
                return Err(Error::DigestMismatch {
                    what: format!("manifest {image}"),
                    expected: asked.clone(),
                    actual: d.digest,
                });
            }
            Ok(d.digest)
        }
        None => Err(Error::NotFound {
            registry: image.registry().to_owned(),
            what: format!("image {}", image.familiar()),
        }),
    }
}

/// Reads an image's manifest (and, for a single image, its config).
pub async fn inspect(client: &Client, image: &ImageRef) -> Result<ImageInfo> {
    let manifest = client.get_manifest(image).await?;
    let mut info = ImageInfo {
        reference: image.to_string(),
        pinned: image
            .repo_only()
            .with_digest(manifest.digest.clone())
            .to_string(),
        digest: manifest.digest.clone(),
        media_type: manifest.media_type.clone(),
        manifest_size: manifest.bytes.len() as u64,
        kind: if manifest.is_index() {
            "index"
        } else {
            "image"
        },
        platforms: Vec::new(),
        config: None,
        config_summary: None,
        layers: Vec::new(),
        layer_bytes: 0,
    };
    match manifest.content()? {
        ManifestContent::Index { manifests } => {
            info.platforms = manifests
                .into_iter()
                .map(|d| PlatformEntry {
                    platform: d
                        .platform
                        .as_ref()
                        .map_or_else(|| "unknown".to_owned(), ToString::to_string),
                    digest: d.digest,
                    size: d.size,
                })
                .collect();
        }
        ManifestContent::Image { config, layers } => {
            let stream = client.get_blob(image, &config.digest, 0).await?;
            let bytes = read_verified(
                stream,
                &config,
                &format!("config {}", config.digest),
                MAX_CONFIG_BYTES,
            )
            .await?;
            // Artifacts have configs that are not image configs: show what parses.
            info.config_summary = serde_json::from_slice(&bytes).ok();
            info.layer_bytes = layers.iter().map(|l| l.size).sum();
            info.config = Some(config);
            info.layers = layers;
        }
    }
    Ok(info)
}
