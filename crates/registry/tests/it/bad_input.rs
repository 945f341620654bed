//! Bad input: a clear error, and nothing half-written left tagged.

use std::sync::Arc;

use ferry_registry::auth::{Anonymous, AuthChain, BasicAuth};
use ferry_registry::{Client, CopyOptions, Error, ErrorKind, ImageRef, SourceSpec, copy_image};
use secrecy::SecretString;

use crate::support::*;

async fn push_layout(
    client: &Client,
    source: &str,
    dest: &ImageRef,
) -> Result<ferry_registry::CopyReport, Error> {
    let source = SourceSpec::parse(source)?.open(client).await?;
    copy_image(client, source.as_ref(), dest, &[], &CopyOptions::default()).await
}

async fn assert_not_tagged(registry: &str, path: &str) {
    let client = client_for(&[registry]);
    let tagged = client
        .head_manifest(&image(registry, &format!("{path}:v1")))
        .await
        .unwrap();
    assert!(tagged.is_none(), "{path}:v1 must not exist");
}

#[tokio::test]
async fn malformed_references_are_invalid_input() {
    for bad in [
        "Shop/Web",
        "shop:",
        "shop:-x",
        "a//b",
        "ghcr.io/a@sha256:abc",
        "",
        "oci:",
    ] {
        let err = SourceSpec::parse(bad).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad}: {err}");
    }
    let err = SourceSpec::parse("containers-storage:x").unwrap_err();
    assert!(err.to_string().contains("not supported"), "{err}");
}

#[tokio::test]
async fn unknown_registry_fails_fast_and_says_so() {
    let client = anonymous_client();
    let dest = ImageRef::parse("ferry-no-such-registry.invalid/app:v1").unwrap();
    let err = client.login(&dest, true).await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains("does not resolve"), "{err}");
    // Name lookups are not retried with backoff (a failure, not a measurement).
    assert_eq!(client.stats().retries, 0);
    // A registry host with nothing listening: retried, then a connection error.
    let err = anonymous_client()
        .login(&ImageRef::parse("127.0.0.1:1/app").unwrap(), true)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
}

#[tokio::test]
async fn wrong_credentials_are_auth_failures_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = layout(tmp.path(), 1, 1000);
    for registry in [htpasswd(), token()] {
        let wrong = Client::builder()
            .auth(Arc::new(
                AuthChain::first_try(BasicAuth::new(
                    &registry,
                    user(),
                    SecretString::from("not-the-password"),
                ))
                .or_else(Anonymous),
            ))
            .retry(fast_retry())
            .build()
            .unwrap();
        let path = repo("wrong-creds");
        let err = push_layout(
            &wrong,
            &layout.source("latest"),
            &image(&registry, &format!("{path}:v1")),
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Auth, "{registry}: {err}");
        assert!(!format!("{err:?}").contains("not-the-password"));
        assert_not_tagged(&registry, &path).await;

        let none = anonymous_client();
        let err = push_layout(
            &none,
            &layout.source("latest"),
            &image(&registry, &format!("{path}:v1")),
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Auth, "{registry} anonymous: {err}");
    }
    // A user with pull access only: the token realm grants no push, the registry refuses.
    let registry = token();
    let reader = Client::builder()
        .auth(Arc::new(BasicAuth::new(
            &registry,
            ferry_testkit::server("FERRY_TEST_REGISTRY_READER_USER"),
            SecretString::from(ferry_testkit::server("FERRY_TEST_REGISTRY_READER_PASSWORD")),
        )))
        .retry(fast_retry())
        .build()
        .unwrap();
    let path = repo("reader");
    let err = push_layout(
        &reader,
        &layout.source("latest"),
        &image(&registry, &format!("{path}:v1")),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    assert_not_tagged(&registry, &path).await;
}

fn rewrite_index(layout: &Layout, media_type: &str, digest: &str, size: usize) {
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": media_type, "digest": digest, "size": size,
        "annotations": {"org.opencontainers.image.ref.name": "latest"}}]});
    std::fs::write(
        layout.dir.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
}

#[tokio::test]
async fn a_manifest_too_large_is_refused_before_anything_moves() {
    let registry = noauth();
    let client = anonymous_client();
    let tmp = tempfile::tempdir().unwrap();
    let layout = layout(tmp.path(), 1, 1000);
    let mut manifest: serde_json::Value = serde_json::from_slice(&layout.manifest).unwrap();
    manifest["annotations"] = serde_json::json!({"padding": "x".repeat(5 * 1024 * 1024)});
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let (digest, size) = write_blob(&layout.dir, &bytes);
    rewrite_index(
        &layout,
        ferry_registry::manifest::OCI_MANIFEST,
        &digest.to_string(),
        size as usize,
    );
    let path = repo("too-large");
    let err = push_layout(
        &client,
        &layout.source("latest"),
        &image(&registry, &format!("{path}:v1")),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::ManifestTooLarge { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_not_tagged(&registry, &path).await;
}

#[tokio::test]
async fn a_blob_that_does_not_match_its_digest_is_never_committed() {
    let registry = noauth();
    let client = anonymous_client();
    let tmp = tempfile::tempdir().unwrap();
    let layout = layout(tmp.path(), 4, 300_000);
    // Corrupt one layer in place: same size, different bytes.
    let (bad, original) = &layout.blobs[2];
    let mut corrupt = original.clone();
    corrupt[original.len() / 2] ^= 0xff;
    std::fs::write(layout.blob_path(bad), &corrupt).unwrap();
    let path = repo("digest-mismatch");
    let err = push_layout(
        &client,
        &layout.source("latest"),
        &image(&registry, &format!("{path}:v1")),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Error::DigestMismatch { expected, .. } if expected == bad),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_not_tagged(&registry, &path).await;
    assert!(
        client
            .head_blob(&image(&registry, &path), bad)
            .await
            .unwrap()
            .is_none(),
        "the corrupt blob was not committed"
    );

    // A layout whose manifest itself does not match the digest index.json names.
    let other = crate::support::layout(tmp.path(), 1, 1000);
    let wrong = ferry_registry::Digest::sha256_of(b"something else");
    std::fs::rename(other.blob_path(&other.digest), other.blob_path(&wrong)).unwrap();
    rewrite_index(
        &other,
        ferry_registry::manifest::OCI_MANIFEST,
        &wrong.to_string(),
        other.manifest.len(),
    );
    let err = push_layout(
        &client,
        &other.source("latest"),
        &image(&registry, &format!("{path}:v1")),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert_not_tagged(&registry, &path).await;
}

#[tokio::test]
async fn unsupported_media_types_are_refused() {
    let registry = noauth();
    let client = anonymous_client();
    let tmp = tempfile::tempdir().unwrap();
    let layout = layout(tmp.path(), 1, 1000);
    let path = repo("media-type");
    // A manifest claiming a media type ferry does not copy.
    let mut manifest: serde_json::Value = serde_json::from_slice(&layout.manifest).unwrap();
    manifest["mediaType"] = "application/vnd.docker.distribution.manifest.v1+prettyjws".into();
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let (digest, size) = write_blob(&layout.dir, &bytes);
    rewrite_index(
        &layout,
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        &digest.to_string(),
        size as usize,
    );
    let err = push_layout(
        &client,
        &layout.source("latest"),
        &image(&registry, &format!("{path}:v1")),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::UnsupportedMediaType { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_not_tagged(&registry, &path).await;
}

#[tokio::test]
async fn broken_sources_name_the_problem() {
    let client = anonymous_client();
    let tmp = tempfile::tempdir().unwrap();
    let err = SourceSpec::parse(&format!("oci:{}", tmp.path().display()))
        .unwrap()
        .open(&client)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("oci-layout"), "{err}");
    let layout = layout(tmp.path(), 1, 1000);
    let err = SourceSpec::parse(&layout.source("nope"))
        .unwrap()
        .open(&client)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("no image named `nope`") && err.to_string().contains("latest"),
        "{err}"
    );
    // A missing layer blob.
    std::fs::remove_file(layout.blob_path(&layout.blobs[0].0)).unwrap();
    let path = repo("missing-blob");
    let err = push_layout(
        &client,
        &layout.source("latest"),
        &image(&noauth(), &format!("{path}:v1")),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
    assert_not_tagged(&noauth(), &path).await;
}
