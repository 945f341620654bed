//! Copying an image (a single manifest or a multi-platform index) into a repository, fast and
//! safely.
//!
//! Fast: nothing is moved that the destination has — when every tag already names the image
//! the copy ends after one `HEAD` per tag; when the manifest is there by digest only the tags
//! are written; otherwise each blob is checked with `HEAD`, mounted from the source repository
//! when both are on one registry, and uploaded only when neither works. Uploads stream from the
//! source, several at once (a bound, default 4), biggest first.
//!
//! Safe: every manifest and blob is verified against its digest on the way; a blob that was
//! uploaded or mounted is confirmed present with `HEAD` before any manifest is written;
//! children of an index are written (by digest) before the index; tags are written last. A copy
//! that fails at any point has moved no tag. Immutable mode checks every tag first and refuses
//! before anything is uploaded if one would move to another digest.

use std::collections::{BTreeMap, HashSet};

use futures::{StreamExt as _, TryStreamExt as _};
use serde::Serialize;

use crate::client::{Client, Mount, StatsSnapshot};
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{Descriptor, Manifest, ManifestContent};
use crate::reference::{Digest, ImageRef, Tag};
use crate::source::ImageSource;
use crate::upload::upload_blob;

/// How deep indexes may nest (an index of indexes of manifests is 2).
const MAX_INDEX_DEPTH: usize = 4;

/// How a copy behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyOptions {
    /// Blobs moved at once (at least 1).
    pub concurrency: usize,
    /// Refuse to move an existing tag to another digest.
    pub immutable: bool,
    /// Split uploads into PATCH requests of this many bytes (default: one streamed PATCH per
    /// blob unless the registry asks for chunks).
    pub chunk_size: Option<u64>,
    /// Try cross-repository mounts when source and destination share a registry.
    pub mount: bool,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            concurrency: 4,
            immutable: false,
            chunk_size: None,
            mount: true,
        }
    }
}

/// What happened to one tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TagOutcome {
    /// The tag.
    pub tag: String,
    /// Where it pointed before, if it existed.
    pub previous: Option<Digest>,
    /// Whether it was written (false when it already named the image).
    pub written: bool,
}

/// Blob counts of a copy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BlobCounts {
    /// Distinct blobs in the image.
    pub total: u64,
    /// Already in the destination repository.
    pub present: u64,
    /// Mounted from the source repository.
    pub mounted: u64,
    /// Uploaded.
    pub uploaded: u64,
}

/// What a copy did.
#[derive(Debug, Clone, Serialize)]
pub struct CopyReport {
    /// Where the image came from.
    pub source: String,
    /// The destination repository.
    pub repository: String,
    /// The image's digest (the same in source and destination).
    pub digest: Digest,
    /// The destination pinned by digest (`REGISTRY/REPO@sha256:…`): what deploys should use.
    pub pinned: String,
    /// The top manifest's media type.
    pub media_type: String,
    /// The tags written (or found already right).
    pub tags: Vec<TagOutcome>,
    /// Manifests written by digest (children of an index).
    pub manifests_written: u64,
    /// Blob counts.
    pub blobs: BlobCounts,
    /// Bytes of all distinct blobs.
    pub blob_bytes_total: u64,
    /// Blob bytes sent over the network (re-sent bytes after interruptions included).
    pub blob_bytes_uploaded: u64,
    /// Whether the destination already had everything, tags included.
    pub unchanged: bool,
    /// The client's counters for this copy (requests, retries, tokens, resumed uploads).
    pub stats: StatsSnapshot,
}

enum BlobResult {
    Present,
    Mounted,
    Uploaded,
}

/// The image's manifests, children before parents, and its distinct blobs.
struct Tree {
    children: Vec<Manifest>,
    blobs: BTreeMap<Digest, Descriptor>,
}

async fn walk(source: &dyn ImageSource, root: &Manifest) -> Result<Tree> {
    let mut tree = Tree {
        children: Vec::new(),
        blobs: BTreeMap::new(),
    };
    let mut seen = HashSet::new();
    // (manifest, depth); children are pushed after their own children.
    let mut stack: Vec<(Manifest, usize, bool)> = vec![(root.clone(), 0, true)];
    while let Some((manifest, depth, is_root)) = stack.pop() {
        match manifest.content()? {
            ManifestContent::Image { config, layers } => {
                for d in std::iter::once(config).chain(layers) {
                    if let Some(existing) = tree.blobs.get(&d.digest)
                        && existing.size != d.size
                    {
                        return Err(Error::InvalidManifest {
                            what: manifest.digest.to_string(),
                            message: format!(
                                "blob {} is listed with sizes {} and {}",
                                d.digest, existing.size, d.size
                            ),
                        });
                    }
                    tree.blobs.insert(d.digest.clone(), d);
                }
                if !is_root {
                    tree.children.push(manifest);
                }
            }
            ManifestContent::Index { manifests } => {
                if depth >= MAX_INDEX_DEPTH {
                    return Err(Error::InvalidManifest {
                        what: manifest.digest.to_string(),
                        message: format!("indexes nest more than {MAX_INDEX_DEPTH} deep"),
                    });
                }
                let fetched: Vec<Manifest> = futures::stream::iter(manifests)
                    .filter(|d| futures::future::ready(seen.insert(d.digest.clone())))
                    .map(|d| async move { source.manifest(&d).await })
                    .buffered(4)
                    .try_collect()
                    .await?;
                if !is_root {
                    tree.children.push(manifest);
                }
                for child in fetched {
                    stack.push((child, depth + 1, false));
                }
            }
        }
    }
    // Parents were pushed before their children were visited: write children first.
    tree.children.reverse();
    Ok(tree)
}

/// Copies `source` into `dest`'s repository, tagged with `dest`'s tag and `extra_tags` (one
/// upload, several tags). A `dest` pinned by digest must name the source's digest. With no tag
/// at all the image is tagged `latest`, as Docker does.
pub async fn copy_image(
    client: &Client,
    source: &dyn ImageSource,
    dest: &ImageRef,
    extra_tags: &[Tag],
    options: &CopyOptions,
) -> Result<CopyReport> {
    let before = client.stats();
    let root = source.root().await?;
    if let Some(pinned) = dest.digest()
        && *pinned != root.digest
    {
        return Err(Error::DigestMismatch {
            what: format!(
                "destination {dest} (the source {} is another image)",
                source.describe()
            ),
            expected: pinned.clone(),
            actual: root.digest.clone(),
        });
    }
    let mut tags: Vec<Tag> = dest.tag().cloned().into_iter().collect();
    for t in extra_tags {
        if !tags.contains(t) {
            tags.push(t.clone());
        }
    }
    if tags.is_empty() && dest.digest().is_none() {
        tags.push(Tag::latest());
    }
    let repo = dest.repo_only();
    client.login(&repo, true).await?;

    // Policy first: nothing is uploaded if a tag may not move.
    let outcomes = plan_tags(client, &repo, &tags, &root.digest, options.immutable).await?;
    let pinned = repo.with_digest(root.digest.clone()).to_string();
    let tags_done = outcomes.iter().all(|o| !o.written);
    // When every tag already names the image there is nothing to do; with no tag at all (a
    // copy by digest), the manifest being there by digest says so.
    let have_root = (tags_done && !tags.is_empty())
        || client
            .head_manifest(&repo.with_digest(root.digest.clone()))
            .await?
            .is_some();
    let unchanged = tags_done && have_root;
    let moved = if unchanged {
        tracing::info!(%pinned, "destination already has the image and its tags");
        Moved::default()
    } else {
        let by_digest = tags.is_empty();
        let moved = transfer(client, source, &repo, &root, have_root, by_digest, options).await?;
        write_tags(client, &repo, &tags, &outcomes, &root).await?;
        moved
    };
    let stats = client.stats().since(&before);
    let blob_bytes_uploaded = if unchanged {
        0
    } else {
        tracing::info!(
            %pinned,
            uploaded = moved.blobs.uploaded,
            mounted = moved.blobs.mounted,
            present = moved.blobs.present,
            bytes = stats.blob_bytes_uploaded,
            "copied"
        );
        stats.blob_bytes_uploaded
    };
    Ok(CopyReport {
        source: source.describe(),
        repository: repo.to_string(),
        digest: root.digest.clone(),
        pinned,
        media_type: root.media_type.clone(),
        tags: outcomes,
        manifests_written: moved.manifests_written,
        blobs: moved.blobs,
        blob_bytes_total: moved.blob_bytes_total,
        blob_bytes_uploaded,
        unchanged,
        stats,
    })
}

/// What [`transfer`] moved.
#[derive(Default)]
struct Moved {
    blobs: BlobCounts,
    blob_bytes_total: u64,
    manifests_written: u64,
}

/// Puts everything `root` needs into `repo` but its tags: the blobs (unless the registry has
/// `root` by digest already: it only stores a manifest whose blobs it has), the child manifests
/// by digest, and `root` itself by digest when it gets no tag.
async fn transfer(
    client: &Client,
    source: &dyn ImageSource,
    repo: &ImageRef,
    root: &Manifest,
    have_root: bool,
    by_digest: bool,
    options: &CopyOptions,
) -> Result<Moved> {
    let tree = walk(source, root).await?;
    let mut moved = Moved {
        blobs: BlobCounts {
            total: tree.blobs.len() as u64,
            ..BlobCounts::default()
        },
        blob_bytes_total: tree.blobs.values().map(|d| d.size).sum(),
        manifests_written: 0,
    };
    if have_root {
        moved.blobs.present = moved.blobs.total;
        tracing::info!(digest = %root.digest, "destination has the image by digest; writing tags only");
        return Ok(moved);
    }
    let mut blobs: Vec<Descriptor> = tree.blobs.values().cloned().collect();
    blobs.sort_by_key(|b| std::cmp::Reverse(b.size));
    let results: Vec<BlobResult> = futures::stream::iter(blobs)
        .map(|desc| async move { copy_blob(client, source, repo, &desc, options).await })
        .buffer_unordered(options.concurrency.max(1))
        .try_collect()
        .await?;
    for r in results {
        match r {
            BlobResult::Present => moved.blobs.present += 1,
            BlobResult::Mounted => moved.blobs.mounted += 1,
            BlobResult::Uploaded => moved.blobs.uploaded += 1,
        }
    }
    for child in &tree.children {
        let at = repo.with_digest(child.digest.clone());
        if client.head_manifest(&at).await?.is_none() {
            client
                .put_manifest(repo, &child.digest.to_string(), child)
                .await?;
            moved.manifests_written += 1;
        }
    }
    if by_digest {
        client
            .put_manifest(repo, &root.digest.to_string(), root)
            .await?;
        moved.manifests_written += 1;
    }
    Ok(moved)
}

async fn copy_blob(
    client: &Client,
    source: &dyn ImageSource,
    repo: &ImageRef,
    desc: &Descriptor,
    options: &CopyOptions,
) -> Result<BlobResult> {
    if let Some(size) = client.head_blob(repo, &desc.digest).await? {
        check_size(repo, desc, size)?;
        tracing::debug!(blob = %desc.digest.short(), "already present");
        return Ok(BlobResult::Present);
    }
    let mut session = None;
    if options.mount
        && let Some(from) = source.repository()
        && from.registry() == repo.registry()
        && !from.same_repository(repo)
    {
        match client.mount_blob(repo, &desc.digest, from).await {
            Ok(Mount::Mounted) => {
                confirm(client, repo, desc).await?;
                tracing::debug!(blob = %desc.digest.short(), from = %from.repo_only(), "mounted");
                return Ok(BlobResult::Mounted);
            }
            Ok(Mount::Upload(location)) => session = Some(location),
            // No pull access to the source for this login: upload instead.
            Err(e) if e.kind() == ErrorKind::Auth => {
                tracing::debug!(blob = %desc.digest.short(), error = %e, "mount refused; uploading");
            }
            Err(e) => return Err(e),
        }
    }
    let sent = upload_blob(client, repo, desc, source, session, options.chunk_size).await?;
    confirm(client, repo, desc).await?;
    tracing::debug!(blob = %desc.digest.short(), sent, "uploaded");
    Ok(BlobResult::Uploaded)
}

fn check_size(repo: &ImageRef, desc: &Descriptor, size: u64) -> Result<()> {
    if size == desc.size {
        Ok(())
    } else {
        Err(Error::SizeMismatch {
            what: format!("blob {} in {}", desc.digest, repo),
            expected: desc.size,
            actual: size,
        })
    }
}

/// A blob the registry accepted must now be there, with the right size.
async fn confirm(client: &Client, repo: &ImageRef, desc: &Descriptor) -> Result<()> {
    match client.head_blob(repo, &desc.digest).await? {
        Some(size) => check_size(repo, desc, size),
        None => Err(Error::Registry {
            registry: repo.registry().to_owned(),
            operation: format!("verify blob {}", desc.digest.short()),
            status: 404,
            message: "the registry accepted the blob but does not have it".to_owned(),
        }),
    }
}

/// Adds tags to an image already in a repository: the manifest is read once (by the
/// reference's digest, or the digest its tag resolves to) and written under each tag. No blob
/// moves. Immutable mode refuses to move a tag that names another digest.
pub async fn tag_image(
    client: &Client,
    image: &ImageRef,
    tags: &[Tag],
    immutable: bool,
) -> Result<Vec<TagOutcome>> {
    let manifest = client.get_manifest(image).await?;
    let repo = image.repo_only();
    client.login(&repo, true).await?;
    let outcomes = plan_tags(client, &repo, tags, &manifest.digest, immutable).await?;
    write_tags(client, &repo, tags, &outcomes, &manifest).await?;
    Ok(outcomes)
}

/// Where each tag points now, and whether it must be written to name `digest`. In immutable
/// mode, a tag that names another digest is refused before anything is written.
async fn plan_tags(
    client: &Client,
    repo: &ImageRef,
    tags: &[Tag],
    digest: &Digest,
    immutable: bool,
) -> Result<Vec<TagOutcome>> {
    let mut outcomes = Vec::with_capacity(tags.len());
    for tag in tags {
        let tagged = repo.with_tag(tag.clone());
        let previous = client.head_manifest(&tagged).await?.map(|d| d.digest);
        if immutable
            && let Some(prev) = &previous
            && prev != digest
        {
            return Err(Error::ImmutableTag {
                reference: tagged.to_string(),
                existing: prev.clone(),
                new: digest.clone(),
            });
        }
        outcomes.push(TagOutcome {
            tag: tag.to_string(),
            written: previous.as_ref() != Some(digest),
            previous,
        });
    }
    Ok(outcomes)
}

/// Writes `manifest` under the tags [`plan_tags`] found not naming it yet.
async fn write_tags(
    client: &Client,
    repo: &ImageRef,
    tags: &[Tag],
    outcomes: &[TagOutcome],
    manifest: &Manifest,
) -> Result<()> {
    for (tag, outcome) in tags.iter().zip(outcomes) {
        if outcome.written {
            client.put_manifest(repo, tag.as_str(), manifest).await?;
        }
    }
    Ok(())
}
