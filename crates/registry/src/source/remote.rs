//! An image in a registry repository, pinned to a digest.
//!
//! Opening resolves a tag to a digest once; everything after reads by that digest, so a copy
//! (a promotion) moves exactly the image the tag named at that moment even if the tag moves
//! while the copy runs.

use async_trait::async_trait;

use super::ImageSource;
use crate::client::{BlobStream, Client};
use crate::error::{Error, Result};
use crate::manifest::{Descriptor, Manifest};
use crate::reference::ImageRef;

/// An image in a registry, pinned to the digest its reference resolved to.
#[derive(Debug)]
pub struct RemoteImage {
    client: Client,
    image: ImageRef,
    root: Manifest,
}

impl RemoteImage {
    /// Fetches `image`'s manifest and pins the image to its digest.
    pub async fn open(client: Client, image: &ImageRef) -> Result<Self> {
        let root = client.get_manifest(image).await?;
        let pinned = image.with_digest(root.digest.clone());
        Ok(RemoteImage {
            client,
            image: pinned,
            root,
        })
    }

    /// The image, with the digest it resolved to.
    pub fn pinned(&self) -> &ImageRef {
        &self.image
    }
}

#[async_trait]
impl ImageSource for RemoteImage {
    async fn root(&self) -> Result<Manifest> {
        Ok(self.root.clone())
    }

    async fn manifest(&self, descriptor: &Descriptor) -> Result<Manifest> {
        let child = self
            .image
            .repo_only()
            .with_digest(descriptor.digest.clone());
        let m = self.client.get_manifest(&child).await?;
        if m.bytes.len() as u64 != descriptor.size {
            return Err(Error::SizeMismatch {
                what: format!("manifest {child}"),
                expected: descriptor.size,
                actual: m.bytes.len() as u64,
            });
        }
        if m.media_type != descriptor.media_type {
            return Err(Error::InvalidManifest {
                what: child.to_string(),
                message: format!(
                    "the index says `{}` but the registry serves `{}`",
                    descriptor.media_type, m.media_type
                ),
            });
        }
        Ok(m)
    }

    async fn open_blob(&self, descriptor: &Descriptor, offset: u64) -> Result<BlobStream> {
        self.client
            .get_blob(&self.image, &descriptor.digest, offset)
            .await
    }

    fn repository(&self) -> Option<&ImageRef> {
        Some(&self.image)
    }

    fn describe(&self) -> String {
        self.image.to_string()
    }
}
