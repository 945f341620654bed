//! Bad input: a clear error, and nothing half-written left tagged.

use ferry_registry::auth::{Anonymous, AuthChain, BasicAuth};
use ferry_registry::manifest::OCI_MANIFEST;
use ferry_registry::{Client, CopyOptions, Error, ErrorKind, ImageRef, SourceSpec, copy_image};
use secrecy::SecretString;

use crate::support::*;

/// Pushes `layout`'s `latest` to `REGISTRY/PATH:v1`, which must fail and leave `v1` untagged;
/// returns the error.
async fn push_refused(client: &Client, layout: &Layout, registry: &str, path: &str) -> Error {
    let dest = image(registry, &format!("{path}:v1"));
    let result = async {
        let source = SourceSpec::parse(&layout.source("latest"))?
            .open(client)
            .await?;
        copy_image(client, source.as_ref(), &dest, &[], &CopyOptions::default()).await
    }
    .await;
    let err = result.expect_err("the push must fail");
    let tagged = client_for(&[registry]).head_manifest(&dest).await.unwrap();
    assert!(tagged.is_none(), "{dest} must not exist after: {err}");
    err
}

/// Points `layout`'s `latest` at `manifest`, written as a blob of `media_type`.
fn replace_manifest(layout: &Layout, media_type: &str, manifest: &serde_json::Value) {
    let bytes = serde_json::to_vec(manifest).unwrap();
    let (digest, size) = write_blob(&layout.dir, &bytes);
    rewrite_index(layout, media_type, &digest.to_string(), size as usize);
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
        let wrong = client_with(
            AuthChain::first_try(BasicAuth::new(
                &registry,
                user(),
                SecretString::from("not-the-password"),
            ))
            .or_else(Anonymous),
        );
        let path = repo("wrong-creds");
        let err = push_refused(&wrong, &layout, &registry, &path).await;
        assert_eq!(err.kind(), ErrorKind::Auth, "{registry}: {err}");
        assert!(!format!("{err:?}").contains("not-the-password"));

        let err = push_refused(&anonymous_client(), &layout, &registry, &path).await;
        assert_eq!(err.kind(), ErrorKind::Auth, "{registry} anonymous: {err}");
    }
    // A user with pull access only: the token realm grants no push, the registry refuses.
    let registry = token();
    let reader = client_with(BasicAuth::new(
        &registry,
        ferry_testkit::server("FERRY_TEST_REGISTRY_READER_USER"),
        SecretString::from(ferry_testkit::server("FERRY_TEST_REGISTRY_READER_PASSWORD")),
    ));
    let err = push_refused(&reader, &layout, &registry, &repo("reader")).await;
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
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
    let tmp = tempfile::tempdir().unwrap();
    let layout = layout(tmp.path(), 1, 1000);
    let mut manifest: serde_json::Value = serde_json::from_slice(&layout.manifest).unwrap();
    manifest["annotations"] = serde_json::json!({"padding": "x".repeat(5 * 1024 * 1024)});
    replace_manifest(&layout, OCI_MANIFEST, &manifest);
    let err = push_refused(&anonymous_client(), &layout, &noauth(), &repo("too-large")).await;
    assert!(matches!(err, Error::ManifestTooLarge { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
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
    let err = push_refused(&client, &layout, &registry, &path).await;
    assert!(
        matches!(&err, Error::DigestMismatch { expected, .. } if expected == bad),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
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
        OCI_MANIFEST,
        &wrong.to_string(),
        other.manifest.len(),
    );
    let err = push_refused(&client, &other, &registry, &path).await;
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
}

#[tokio::test]
async fn unsupported_media_types_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = layout(tmp.path(), 1, 1000);
    // A manifest claiming a media type ferry does not copy.
    let schema1 = "application/vnd.docker.distribution.manifest.v1+prettyjws";
    let mut manifest: serde_json::Value = serde_json::from_slice(&layout.manifest).unwrap();
    manifest["mediaType"] = schema1.into();
    replace_manifest(&layout, schema1, &manifest);
    let err = push_refused(&anonymous_client(), &layout, &noauth(), &repo("media-type")).await;
    assert!(matches!(err, Error::UnsupportedMediaType { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
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
    let err = push_refused(&client, &layout, &noauth(), &repo("missing-blob")).await;
    assert!(err.to_string().contains("missing"), "{err}");
}

#[tokio::test]
async fn a_registry_that_never_answers_fails_instead_of_hanging() {
    // Takes connections and never says a word.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            held.push(conn);
        }
    });
    let client = Client::builder()
        .answer_timeout(std::time::Duration::from_millis(300))
        .build()
        .unwrap();
    let dest = ImageRef::parse(&format!("{addr}/silent:v1")).unwrap();
    let err = client.head_manifest(&dest).await.unwrap_err();
    assert!(matches!(err, Error::NoAnswer { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Runtime);
    assert!(err.to_string().contains("no answer from registry"), "{err}");
    assert!(err.help().unwrap().contains("said nothing"));
    let err = client.login(&dest, true).await.unwrap_err();
    assert!(matches!(err, Error::NoAnswer { .. }), "{err:?}");
    silent.abort();
}
