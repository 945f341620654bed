//! Blob uploads: streamed, verified, resumable.
//!
//! A blob goes up as `POST` (open a session), `PATCH` (the bytes, streamed straight from the
//! source: no temporary copy), `PUT ?digest=` (commit). The bytes are hashed as they pass, and
//! the last piece is only sent once the whole blob has hashed to the descriptor's digest and
//! size, so a corrupt source is never committed (nor even fully sent). When the registry
//! announces a minimum chunk size, or the caller sets a chunk size, the `PATCH` is split into
//! chunks, following the new `Location` after each.
//!
//! Two kinds of interruption are handled differently:
//! - The *source* breaks (a download from another registry drops): the producer re-opens the
//!   source at the byte it had reached and carries on inside the same `PATCH`; the destination
//!   never notices.
//! - The *destination* breaks (a dropped connection, a 5xx, an expired token): the upload asks
//!   the session how many bytes arrived (`GET` → `Range`) and continues from there in the same
//!   session. The hash state is snapshotted every MiB, so continuing at byte K re-reads the
//!   source from the last snapshot before K, not from the start. Registries that cannot resume
//!   a session after a broken `PATCH` — the reference registry (distribution 2.8) cancels it
//!   ("upload resumed at wrong offset") — answer the status request with 404, and the blob
//!   starts over in a new session; blobs already committed stay committed.
//!
//! A transfer that stops moving counts as broken: a source that sends nothing, or a `PATCH`
//! that neither takes data nor answers, for the client's answer timeout is handled as above.

use bytes::Bytes;
use futures::StreamExt as _;
use url::Url;

use crate::client::{BlobStream, Client};
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::Descriptor;
use crate::reference::Hasher;
use crate::reference::ImageRef;
use crate::source::ImageSource;

const SNAPSHOT_EVERY: u64 = 1024 * 1024;
const CHANNEL_DEPTH: usize = 8;

/// Hash state of the blob prefix read so far.
struct Progress {
    /// Bytes hashed so far (always a prefix of the blob).
    hashed: u64,
    hasher: Hasher,
    /// (offset, hash state after `offset` bytes), ascending.
    snapshots: Vec<(u64, Hasher)>,
    /// Whether all bytes were hashed and matched the digest.
    verified: bool,
}

impl Progress {
    fn new(desc: &Descriptor) -> Self {
        let fresh = desc.digest.algorithm().hasher();
        Progress {
            hashed: 0,
            hasher: fresh.clone(),
            snapshots: vec![(0, fresh)],
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

/// The bytes `[start, end)` of one `PATCH`, for a blob of `size` bytes.
#[derive(Clone, Copy)]
struct Range {
    start: u64,
    end: u64,
    size: u64,
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
    let mut progress = Progress::new(desc);
    let policy = client.retry_policy();
    let max_failures = policy.max_retries.max(3);
    let mut failures = 0u32;
    let mut restarts_after_commit = 0u32;
    let mut offset = 0u64;
    let mut sent_total = 0u64;

    loop {
        if size == 0 {
            verify_empty(desc, &what)?;
            progress.verified = true;
        }
        while offset < size {
            let end = chunk.map_or(size, |c| (offset + c).min(size));
            let range = Range {
                start: offset,
                end,
                size,
            };
            let (result, produced, sent) =
                send_range(client, dest, &session, source, desc, &mut progress, range).await;
            sent_total += sent;
            if let Err(failure) = produced {
                // The content is wrong, or the source is unreadable: never commit.
                client.cancel_upload(dest, &session).await;
                return Err(failure);
            }
            let err = match result {
                Ok(next) => {
                    session = next;
                    offset = end;
                    continue;
                }
                Err(err) => err,
            };
            failures += 1;
            if failures > max_failures || (err.kind() == ErrorKind::Auth && failures > 1) {
                client.cancel_upload(dest, &session).await;
                return Err(Error::GaveUp {
                    registry: dest.registry().to_owned(),
                    operation: format!("upload of {what} to {}", dest.repo_only()),
                    attempts: failures,
                    source: Box::new(err),
                });
            }
            client.counters().add_retry();
            tokio::time::sleep(policy.backoff(failures - 1)).await;
            match client.upload_status(dest, &session).await {
                Ok(Some((received, next))) if received <= end => {
                    tracing::info!(
                        blob = %desc.digest.short(),
                        received,
                        size,
                        error = %err,
                        "upload interrupted; resuming in the same session"
                    );
                    client.counters().add_resumed();
                    session = next;
                    offset = received;
                }
                _ => {
                    tracing::info!(
                        blob = %desc.digest.short(),
                        error = %err,
                        "upload interrupted and the registry dropped the session; starting the blob again"
                    );
                    client.counters().add_restarted();
                    session = client.start_upload(dest).await?.0;
                    offset = 0;
                }
            }
        }
        if !progress.verified {
            // Only reachable if a registry claims bytes that were never sent: start over.
            restarts_after_commit += 1;
            if restarts_after_commit > 2 {
                return Err(Error::Registry {
                    registry: dest.registry().to_owned(),
                    operation: format!("upload of {what}"),
                    status: 0,
                    message: "the registry's upload session disagrees with what was sent"
                        .to_owned(),
                });
            }
            session = client.start_upload(dest).await?.0;
            offset = 0;
            continue;
        }
        match client.finish_upload(dest, &session, &desc.digest).await {
            Ok(()) => return Ok(sent_total),
            // The registry hashed other bytes than were sent (a resumed session that kept part
            // of a broken request): once, start the blob again in a fresh session.
            Err(Error::Registry {
                status: 400,
                message,
                ..
            }) if restarts_after_commit == 0
                && (message.contains("DIGEST_INVALID")
                    || message.contains("BLOB_UPLOAD_INVALID")) =>
            {
                tracing::info!(blob = %desc.digest.short(), %message, "registry refused the resumed upload; starting the blob again");
                restarts_after_commit += 1;
                client.counters().add_restarted();
                session = client.start_upload(dest).await?.0;
                offset = 0;
            }
            Err(e) => {
                // The commit may have happened with its answer lost (a retried PUT then finds
                // the session gone): what counts is whether the blob is there.
                if client.head_blob(dest, &desc.digest).await.ok().flatten() == Some(size) {
                    tracing::debug!(blob = %desc.digest.short(), "commit answer lost, blob present");
                    return Ok(sent_total);
                }
                return Err(e);
            }
        }
    }
}

/// One `PATCH` of `range`, its body fed by a producer reading the source. Returns the
/// `PATCH`'s result, the producer's (an error means: do not commit), and the bytes sent.
async fn send_range(
    client: &Client,
    dest: &ImageRef,
    session: &Url,
    source: &dyn ImageSource,
    desc: &Descriptor,
    progress: &mut Progress,
    range: Range,
) -> (Result<Url>, Result<()>, u64) {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(CHANNEL_DEPTH);
    // Chunks the HTTP client has taken: the PATCH's progress, for the stall watchdog.
    let taken = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = std::sync::Arc::clone(&taken);
    let body = futures::stream::unfold(rx, move |mut rx| {
        let counter = std::sync::Arc::clone(&counter);
        async move {
            let item = rx.recv().await?;
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Some((item, rx))
        }
    });
    let patch = client.patch_upload(
        dest,
        session,
        reqwest::Body::wrap_stream(body),
        range.start,
        range.end - range.start,
    );
    // A PATCH may take as long as it needs while it moves, but one that neither takes data
    // nor answers for the answer timeout is stalled (a registry that stopped reading): it is
    // dropped and the upload resumes like after a broken connection.
    let watched = async {
        tokio::pin!(patch);
        let mut seen = 0;
        loop {
            match tokio::time::timeout(client.answer_timeout(), &mut patch).await {
                Ok(result) => return result,
                Err(_) => {
                    let now = taken.load(std::sync::atomic::Ordering::Relaxed);
                    if now == seen {
                        return Err(client.no_answer(
                            dest.registry(),
                            &format!("upload blob data to {}", dest.repo_only()),
                        ));
                    }
                    seen = now;
                }
            }
        }
    };
    let produce = produce(client, source, desc, progress, range, tx);
    let (result, (produced, sent)) = tokio::join!(watched, produce);
    (result, produced, sent)
}

/// Reads the source into the body channel: hashes every byte from the last snapshot before
/// `range.start`, sends `[start, end)`, re-opens the source where it broke, and checks the
/// digest before the last bytes go out.
async fn produce(
    client: &Client,
    source: &dyn ImageSource,
    desc: &Descriptor,
    progress: &mut Progress,
    range: Range,
    tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
) -> (Result<()>, u64) {
    let what = format!("blob {}", desc.digest);
    let policy = client.retry_policy();
    let mut sent = 0u64;
    let mut source_failures = 0u32;
    let from = progress.rewind_to(range.start);
    let fail = |tx: &tokio::sync::mpsc::Sender<std::io::Result<Bytes>>, e: Error| {
        // Break the request body so the PATCH fails rather than completing short.
        let _ = tx.try_send(Err(std::io::Error::other("upload aborted")));
        e
    };
    let mut stream = match source.open_blob(desc, from).await {
        Ok(s) => s,
        Err(e) => return (Err(fail(&tx, e)), sent),
    };
    let stall = client.answer_timeout();
    while progress.hashed < range.end {
        // A source that sends nothing for the answer timeout has stalled: re-open it there.
        let next = tokio::time::timeout(stall, stream.next())
            .await
            .unwrap_or_else(|_| {
                Some(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no data for {} s", stall.as_secs_f64()),
                )))
            });
        let chunk = match next {
            Some(Ok(chunk)) => chunk,
            Some(Err(err)) => {
                source_failures += 1;
                if source_failures > policy.max_retries.max(3) {
                    let e = Error::GaveUp {
                        registry: "(source)".to_owned(),
                        operation: format!("read {what} from {}", source.describe()),
                        attempts: source_failures,
                        source: Box::new(err),
                    };
                    return (Err(fail(&tx, e)), sent);
                }
                tracing::info!(blob = %desc.digest.short(), at = progress.hashed, error = %err, "reading the source failed; re-opening it there");
                client.counters().add_retry();
                tokio::time::sleep(policy.backoff(source_failures - 1)).await;
                stream = match source.open_blob(desc, progress.hashed).await {
                    Ok(s) => s,
                    Err(e) => return (Err(fail(&tx, e)), sent),
                };
                continue;
            }
            None => {
                let e = Error::SizeMismatch {
                    what: what.clone(),
                    expected: range.size,
                    actual: progress.hashed,
                };
                return (Err(fail(&tx, e)), sent);
            }
        };
        let start = progress.hashed;
        let take = (chunk.len() as u64).min(range.end - start) as usize;
        let chunk = chunk.slice(..take);
        progress.hasher.update(&chunk);
        progress.hashed += take as u64;
        let hashed = progress.hashed;
        let last_snapshot = progress.snapshots.last().map_or(0, |(at, _)| *at);
        if last_snapshot < hashed
            && (hashed / SNAPSHOT_EVERY > last_snapshot / SNAPSHOT_EVERY || hashed == range.end)
        {
            let state = progress.hasher.clone();
            progress.snapshots.push((hashed, state));
        }
        if hashed == range.size {
            let actual = progress.hasher.clone().finish();
            if actual != desc.digest {
                let e = Error::DigestMismatch {
                    what: what.clone(),
                    expected: desc.digest.clone(),
                    actual,
                };
                return (Err(fail(&tx, e)), sent);
            }
            progress.verified = true;
        }
        let skip = range.start.saturating_sub(start).min(take as u64) as usize;
        let out = chunk.slice(skip..);
        if out.is_empty() {
            continue;
        }
        let n = out.len() as u64;
        // Err: the PATCH ended (the connection broke); timeout: it stopped taking data, and
        // its watchdog fails it. Either way, nothing more to send.
        if !matches!(
            tokio::time::timeout(stall, tx.send(Ok(out))).await,
            Ok(Ok(()))
        ) {
            return (Ok(()), sent);
        }
        sent += n;
        client.counters().add_uploaded(n);
    }
    (Ok(()), sent)
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
