//! Resuming an upload mid-blob in the same session. The reference registry cannot do this (it
//! cancels a session after a broken PATCH), so this runs against a small in-test double of a
//! registry that keeps partial uploads and reports them with `Range`, as the distribution spec
//! describes and Docker Hub, ECR and ACR do.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ferry_registry::{CopyOptions, Digest};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::support::*;

#[derive(Default)]
struct Fake {
    uploads: HashMap<String, Vec<u8>>,
    blobs: HashMap<String, Vec<u8>>,
    manifests: HashMap<String, (Vec<u8>, String)>,
    next_id: u32,
    /// Keep only this many bytes of the first PATCH and fail it, as a dropped connection does.
    cut_first_patch_at: Option<usize>,
    /// (Content-Range start, body length) of every PATCH.
    patches: Vec<(u64, usize)>,
    /// Announce this `OCI-Chunk-Min-Length` when an upload starts.
    min_chunk: Option<u64>,
    /// Keep the first PATCH of more than 10 kB whole but answer it only after a minute, as a
    /// registry that hangs does.
    silent_first_layer_patch: bool,
}

#[derive(Clone, Default)]
struct FakeRegistry(Arc<Mutex<Fake>>);

fn range_header(len: usize) -> String {
    format!("0-{}", len.saturating_sub(1))
}

impl Respond for FakeRegistry {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut fake = self.0.lock().unwrap();
        let path = req.url.path().to_owned();
        let method = req.method.as_str();
        if path == "/v2/" {
            return ResponseTemplate::new(200);
        }
        if let Some((_, id)) = path
            .split_once("/blobs/uploads/")
            .filter(|(_, id)| !id.is_empty())
        {
            let id = id.to_owned();
            let location = path.clone();
            match method {
                "PATCH" => {
                    let start: u64 = req
                        .headers
                        .get("content-range")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.split('-').next())
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    fake.patches.push((start, req.body.len()));
                    // The length is announced up front, not chunked transfer encoding.
                    let announced = req
                        .headers
                        .get("content-length")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<usize>().ok());
                    assert_eq!(
                        announced,
                        Some(req.body.len()),
                        "PATCH without an exact Content-Length"
                    );
                    let have = fake.uploads.get(&id).map_or(0, Vec::len) as u64;
                    if start != have {
                        return ResponseTemplate::new(416);
                    }
                    if let Some(cut) = fake.cut_first_patch_at.take() {
                        let kept = req.body[..cut.min(req.body.len())].to_vec();
                        fake.uploads.get_mut(&id).unwrap().extend(kept);
                        return ResponseTemplate::new(500);
                    }
                    let data = fake.uploads.get_mut(&id).unwrap();
                    data.extend_from_slice(&req.body);
                    let len = data.len();
                    let answer = ResponseTemplate::new(202)
                        .insert_header("location", location)
                        .insert_header("range", range_header(len));
                    if req.body.len() > 10_000 && fake.silent_first_layer_patch {
                        fake.silent_first_layer_patch = false;
                        return answer.set_delay(std::time::Duration::from_secs(60));
                    }
                    answer
                }
                "GET" => {
                    let len = fake.uploads.get(&id).map_or(0, Vec::len);
                    ResponseTemplate::new(204)
                        .insert_header("location", location)
                        .insert_header("range", range_header(len))
                }
                "PUT" => {
                    let digest = req
                        .url
                        .query_pairs()
                        .find(|(k, _)| k == "digest")
                        .unwrap()
                        .1
                        .to_string();
                    let data = fake.uploads.remove(&id).unwrap();
                    if Digest::sha256_of(&data).to_string() != digest {
                        return ResponseTemplate::new(400).set_body_string(
                            r#"{"errors":[{"code":"DIGEST_INVALID","message":"digest invalid"}]}"#,
                        );
                    }
                    fake.blobs.insert(digest.clone(), data);
                    ResponseTemplate::new(201).insert_header("docker-content-digest", digest)
                }
                _ => ResponseTemplate::new(405),
            }
        } else if path.ends_with("/blobs/uploads/") && method == "POST" {
            fake.next_id += 1;
            let id = format!("u{}", fake.next_id);
            fake.uploads.insert(id.clone(), Vec::new());
            let mut answer =
                ResponseTemplate::new(202).insert_header("location", format!("{path}{id}"));
            if let Some(min) = fake.min_chunk {
                answer = answer.insert_header("oci-chunk-min-length", min.to_string());
            }
            answer
        } else if let Some((_, digest)) = path.split_once("/blobs/") {
            match fake.blobs.get(digest) {
                Some(b) => {
                    ResponseTemplate::new(200).insert_header("content-length", b.len().to_string())
                }
                None => ResponseTemplate::new(404),
            }
        } else if let Some((_, reference)) = path.split_once("/manifests/") {
            match method {
                "PUT" => {
                    let digest = Digest::sha256_of(&req.body).to_string();
                    let ct = req
                        .headers
                        .get("content-type")
                        .unwrap()
                        .to_str()
                        .unwrap()
                        .to_owned();
                    fake.manifests
                        .insert(reference.to_owned(), (req.body.clone(), ct.clone()));
                    fake.manifests
                        .insert(digest.clone(), (req.body.clone(), ct));
                    ResponseTemplate::new(201).insert_header("docker-content-digest", digest)
                }
                _ => match fake.manifests.get(reference) {
                    Some((body, ct)) => ResponseTemplate::new(200)
                        .insert_header("content-type", ct.as_str())
                        .insert_header("docker-content-digest", Digest::sha256_of(body).to_string())
                        .set_body_bytes(body.clone()),
                    None => ResponseTemplate::new(404),
                },
            }
        } else {
            ResponseTemplate::new(404)
        }
    }
}

impl Fake {
    /// (start, length) of every PATCH that carried more than 10 kB: a layer's, not the
    /// config's.
    fn layer_patches(&self) -> Vec<(u64, usize)> {
        self.patches
            .iter()
            .copied()
            .filter(|(_, len)| *len > 10_000)
            .collect()
    }
}

impl FakeRegistry {
    /// A server answering every request from a fresh fake, set up by `setup`.
    async fn start(setup: impl FnOnce(&mut Fake)) -> (MockServer, FakeRegistry) {
        let fake = FakeRegistry::default();
        setup(&mut fake.0.lock().unwrap());
        let server = MockServer::start().await;
        Mock::given(wiremock::matchers::any())
            .respond_with(fake.clone())
            .mount(&server)
            .await;
        (server, fake)
    }
}

#[tokio::test]
async fn a_broken_patch_resumes_where_the_registry_got_to() {
    let (server, fake) = FakeRegistry::start(|f| f.cut_first_patch_at = Some(1_000_000)).await;
    let tmp = tempfile::tempdir().unwrap();
    let layout = layout(tmp.path(), 1, 3_000_000);
    let client = anonymous_client();
    let source = open(&client, &layout.source("latest")).await;
    let dest = image(&server.address().to_string(), "app:v1");
    let options = CopyOptions {
        concurrency: 1,
        ..CopyOptions::default()
    };
    let report = copy_with(&client, source.as_ref(), &dest, &[], &options).await;

    assert_eq!(report.digest, layout.digest);
    assert_eq!(report.stats.uploads_resumed, 1, "{:?}", report.stats);
    assert_eq!(report.stats.uploads_restarted, 0);
    let fake = fake.0.lock().unwrap();
    let layer = &layout.blobs[0];
    assert_eq!(
        fake.blobs.get(&layer.0.to_string()).unwrap(),
        &layer.1,
        "the stored layer is exact"
    );
    // The layer's first PATCH was cut at 1,000,000 bytes; the next one carried the rest only.
    let layer_patches = fake.layer_patches();
    assert_eq!(layer_patches.len(), 2, "{:?}", fake.patches);
    assert_eq!(layer_patches[1], (1_000_000, layer.1.len() - 1_000_000));
}

#[tokio::test]
async fn a_registry_that_announces_chunk_sizes_gets_chunks() {
    let (server, fake) = FakeRegistry::start(|f| f.min_chunk = Some(1024 * 1024)).await;
    let tmp = tempfile::tempdir().unwrap();
    let layout = layout(tmp.path(), 1, 9_000_000);
    let client = anonymous_client();
    let dest = image(&server.address().to_string(), "app:v1");
    let report = push(&client, &layout.source("latest"), &dest).await;
    assert_eq!(report.digest, layout.digest);
    let fake = fake.0.lock().unwrap();
    let layer = &layout.blobs[0];
    assert_eq!(fake.blobs.get(&layer.0.to_string()).unwrap(), &layer.1);
    // 8 MiB chunks (at least the announced minimum), each at the offset the last one ended.
    let chunk = 8 * 1024 * 1024;
    let expected: Vec<(u64, usize)> = (0..layer.1.len())
        .step_by(chunk)
        .map(|start| (start as u64, chunk.min(layer.1.len() - start)))
        .collect();
    assert_eq!(fake.layer_patches(), expected);
}

#[tokio::test]
async fn a_patch_the_registry_never_answers_is_given_up_and_resumed() {
    let (server, fake) = FakeRegistry::start(|f| f.silent_first_layer_patch = true).await;
    let tmp = tempfile::tempdir().unwrap();
    let layout = layout(tmp.path(), 1, 2_000_000);
    let client = ferry_registry::Client::builder()
        .answer_timeout(std::time::Duration::from_millis(500))
        .build()
        .unwrap();
    let source = open(&client, &layout.source("latest")).await;
    let dest = image(&server.address().to_string(), "app:v1");
    let options = CopyOptions {
        concurrency: 1,
        ..CopyOptions::default()
    };
    let report = copy_with(&client, source.as_ref(), &dest, &[], &options).await;

    assert_eq!(report.digest, layout.digest);
    // The silent PATCH had delivered every byte: the session says so, and the upload goes on
    // from there (to the commit) without sending the layer again.
    assert_eq!(report.stats.uploads_resumed, 1, "{:?}", report.stats);
    let fake = fake.0.lock().unwrap();
    let layer = &layout.blobs[0];
    assert_eq!(fake.blobs.get(&layer.0.to_string()).unwrap(), &layer.1);
    assert_eq!(fake.layer_patches().len(), 1, "{:?}", fake.patches);
}
