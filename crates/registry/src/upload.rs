//! Blob uploads: streamed, verified, resumable.
//!
//! A blob goes up as `POST` (open a session), `PATCH` (the bytes, streamed straight from the
//! source: no temporary copy), `PUT ?digest=` (commit). The bytes are hashed as they pass; the
//! last `PATCH` fails on purpose if they do not hash to the descriptor's digest or are not its
//! size, so a corrupt source never gets committed. When the registry announces a minimum chunk
//! size, or the caller sets a chunk size, the `PATCH` is split into chunks, following the new
//! `Location` after each.
//!
//! When a `PATCH` fails (a dropped connection, a 5xx, an expired token), the upload asks the
//! session how many bytes arrived (`GET` → `Range`) and continues from there. The hash state is
//! snapshotted every MiB, so resuming at byte K re-reads the source from the last snapshot
//! before K (at most a MiB plus a chunk) rather than from the start. If the session is gone,
//! the blob starts over in a new one.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::StreamExt as _;
use url::Url;

use crate::client::{BlobStream, Client};
use crate::error::{Error, Result};
use crate::manifest::Descriptor;
use crate::reference::{Hasher, ImageRef};
use crate::source::ImageSource;

const SNAPSHOT_EVERY: u64 = 1024 * 1024;

struct Progress {
    /// Bytes hashed so far (always a prefix of the blob).
    hashed: u64,
    hasher: Hasher,
    /// (offset, hash state after `offset` bytes), ascending.
    snapshots: Vec<(u64, Hasher)>,
    /// Set when the content failed verification: the upload must not be committed.
    failure: Option<Error>,
    /// Whether all `size` bytes were hashed and matched the digest.
    verified: bool,
}

impl Progress {
    fn new(desc: &Descriptor) -> Self {
        let fresh = desc.digest.algorithm().hasher();
        Progress {
            hashed: 0,
            hasher: fresh.clone(),
            snapshots: vec![(0, fresh)],
            failure: None,
            verified: false,
        }
    }

    /// Rewinds the hash state to the last snapshot at or before `offset`; returns its offset.
    fn rewind_to(&mut self, offset: u64) -> u64 {
        self.snapshots.retain(|(at, _)| *at <= offset);
        let (at, hasher) = self
            .snapshots
            .last()
            .cloned()
            .expect("the snapshot at 0 is never removed");
        self.hashed = at;
        self.hasher = hasher;
        self.verified = false;
        at
    }
}

/// Uploads one blob into `dest`'s repository. `session` is an upload already opened (by a
/// mount request the registry turned into an upload). Returns the bytes sent.
pub(crate) async fn upload_blob(
    client: &Client,
    dest: &ImageRef,
    desc: &Descriptor,
    source: &dyn ImageSource,
    session: Option<Url>,
    chunk_size: Option<u64>,
) -> Result<u64> {
    let what = format!("blob {}", desc.digest);
    let (mut session, min_chunk) = match session {
        Some(s) => (s, None),
        None => client.start_upload(dest).await?,
    };
    let chunk = match (chunk_size, min_chunk) {
        (Some(c), Some(m)) => Some(c.max(m)),
        (Some(c), None) => Some(c.max(1)),
        (None, Some(m)) if m > 0 => Some(m.max(8 * 1024 * 1024)),
        _ => None,
    };
    let size = desc.size;
    let progress = Arc::new(Mutex::new(Progress::new(desc)));
    let policy = client.retry_policy();
    let max_failures = policy.max_retries.max(3);
    let mut failures = 0u32;
    let mut restarts = 0u32;
    let mut offset = 0u64;
    let mut sent_total = 0u64;

    loop {
        if size == 0 {
            verify_empty(desc, &what)?;
            progress.lock().expect("progress lock").verified = true;
        }
        while offset < size {
            let end = chunk.map_or(size, |c| (offset + c).min(size));
            let from = progress.lock().expect("progress lock").rewind_to(offset);
            let stream = source.open_blob(desc, from).await?;
            let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let body = body_stream(
                stream,
                Arc::clone(&progress),
                BodyRange { skip_until: offset, end, size },
                desc.clone(),
                client.clone(),
                Arc::clone(&sent),
            );
            let result = client
                .patch_upload(dest, &session, reqwest::Body::wrap_stream(body), offset, end - offset)
                .await;
            sent_total += sent.load(std::sync::atomic::Ordering::Relaxed);
            if let Some(failure) = progress.lock().expect("progress lock").failure.take() {
                client.cancel_upload(dest, &session).await;
                return Err(failure);
            }
            match result {
                Ok(next) => {
                    session = next;
                    offset = end;
                }
                Err(err) => {
                    failures += 1;
                    if failures > max_failures {
                        client.cancel_upload(dest, &session).await;
                        return Err(Error::GaveUp {
                            registry: dest.registry().to_owned(),
                            operation: format!("upload of {what} to {}", dest.repo_only()),
                            attempts: failures,
                            source: Box::new(err),
                        });
                    }
                    client.counters().add_resumed();
                    client.counters().add_retry();
                    tokio::time::sleep(policy.backoff(failures - 1)).await;
                    match client.upload_status(dest, &session).await {
                        Ok(Some((received, next))) if received <= end => {
                            tracing::info!(
                                blob = %desc.digest.short(),
                                received,
                                size,
                                error = %err,
                                "upload interrupted; resuming"
                            );
                            session = next;
                            offset = received;
                        }
                        _ => {
                            tracing::info!(
                                blob = %desc.digest.short(),
                                error = %err,
                                "upload interrupted and its session is gone; starting the blob again"
                            );
                            session = client.start_upload(dest).await?.0;
                            offset = 0;
                        }
                    }
                }
            }
        }
        let verified = progress.lock().expect("progress lock").verified;
        if !verified {
            // The registry claims bytes we never hashed (should not happen): start over.
            restarts += 1;
            if restarts > 2 {
                return Err(Error::Registry {
                    registry: dest.registry().to_owned(),
                    operation: format!("upload of {what}"),
                    status: 0,
                    message: "the registry's upload session disagrees with what was sent".to_owned(),
                });
            }
            session = client.start_upload(dest).await?.0;
            offset = 0;
            continue;
        }
        match client.finish_upload(dest, &session, &desc.digest).await {
            Ok(()) => return Ok(sent_total),
            // The registry hashed something else than we sent (a resumed session that kept
            // bytes from a dropped request): once, start the blob again in a fresh session.
            Err(Error::Registry { status: 400, message, .. })
                if restarts == 0 && (message.contains("DIGEST_INVALID") || message.contains("BLOB_UPLOAD_INVALID")) =>
            {
                tracing::info!(blob = %desc.digest.short(), %message, "registry refused the resumed upload; starting the blob again");
                restarts += 1;
                session = client.start_upload(dest).await?.0;
                offset = 0;
                progress.lock().expect("progress lock").rewind_to(0);
            }
            Err(e) => return Err(e),
        }
    }
}

fn verify_empty(desc: &Descriptor, what: &str) -> Result<()> {
    let actual = desc.digest.compute_like(b"");
    if actual == desc.digest {
        Ok(())
    } else {
        Err(Error::DigestMismatch {
            what: what.to_owned(),
            expected: desc.digest.clone(),
            actual,
        })
    }
}

#[derive(Clone, Copy)]
struct BodyRange {
    /// Bytes before this offset are hashed but not sent (the registry has them).
    skip_until: u64,
    /// Stop after this offset (the end of this chunk).
    end: u64,
    /// The blob's size.
    size: u64,
}

/// The request body for one PATCH: reads the source, hashes every byte, sends the bytes from
/// `skip_until` to `end`, and fails at the end of the blob if the content is not what the
/// descriptor says.
fn body_stream(
    source: BlobStream,
    progress: Arc<Mutex<Progress>>,
    range: BodyRange,
    desc: Descriptor,
    client: Client,
    sent: Arc<std::sync::atomic::AtomicU64>,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let what = format!("blob {}", desc.digest);
    futures::stream::unfold(
        (source, false),
        move |(mut source, done)| {
            let progress = Arc::clone(&progress);
            let desc = desc.clone();
            let client = client.clone();
            let sent = Arc::clone(&sent);
            let what = what.clone();
            async move {
                if done {
                    return None;
                }
                loop {
                    if progress.lock().expect("progress lock").hashed >= range.end {
                        return None;
                    }
                    let chunk = match source.next().await {
                        Some(Ok(chunk)) => chunk,
                        Some(Err(e)) => return Some((Err(e), (source, true))),
                        None => {
                            let mut p = progress.lock().expect("progress lock");
                            p.failure = Some(Error::SizeMismatch {
                                what: what.clone(),
                                expected: range.size,
                                actual: p.hashed,
                            });
                            return Some((
                                Err(std::io::Error::other("blob content ended early")),
                                (source, true),
                            ));
                        }
                    };
                    let mut p = progress.lock().expect("progress lock");
                    let start = p.hashed;
                    let take = (chunk.len() as u64).min(range.end - start) as usize;
                    let chunk = chunk.slice(..take);
                    p.hasher.update(&chunk);
                    p.hashed += take as u64;
                    let hashed = p.hashed;
                    let last_snapshot = p.snapshots.last().map_or(0, |(at, _)| *at);
                    if hashed / SNAPSHOT_EVERY > last_snapshot / SNAPSHOT_EVERY || hashed == range.end {
                        let state = p.hasher.clone();
                        if last_snapshot < hashed {
                            p.snapshots.push((hashed, state));
                        }
                    }
                    if hashed == range.size {
                        let actual = p.hasher.clone().finish();
                        if actual != desc.digest {
                            p.failure = Some(Error::DigestMismatch {
                                what: what.clone(),
                                expected: desc.digest.clone(),
                                actual,
                            });
                            return Some((
                                Err(std::io::Error::other("blob content does not match its digest")),
                                (source, true),
                            ));
                        }
                        p.verified = true;
                    }
                    drop(p);
                    let skip = range.skip_until.saturating_sub(start).min(take as u64) as usize;
                    let out = chunk.slice(skip..);
                    if out.is_empty() {
                        continue;
                    }
                    sent.fetch_add(out.len() as u64, std::sync::atomic::Ordering::Relaxed);
                    client.counters().add_uploaded(out.len() as u64);
                    return Some((Ok(out), (source, false)));
                }
            }
        },
    )
}

/// Hashes a whole blob stream and checks it against its descriptor (for content read
/// without uploading it, such as configs and child manifests).
pub(crate) async fn read_verified(
    mut stream: BlobStream,
    desc: &Descriptor,
    what: &str,
    max: u64,
) -> Result<Bytes> {
    if desc.size > max {
        return Err(Error::ManifestTooLarge {
            what: what.to_owned(),
            size: desc.size,
            max,
        });
    }
    let mut out = Vec::with_capacity(desc.size as usize);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Error::io(what, e))?;
        out.extend_from_slice(&chunk);
        if out.len() as u64 > desc.size {
            break;
        }
    }
    if out.len() as u64 != desc.size {
        return Err(Error::SizeMismatch {
            what: what.to_owned(),
            expected: desc.size,
            actual: out.len() as u64,
        });
    }
    let actual = desc.digest.compute_like(&out);
    if actual != desc.digest {
        return Err(Error::DigestMismatch {
            what: what.to_owned(),
            expected: desc.digest.clone(),
            actual,
        });
    }
    Ok(Bytes::from(out))
}
