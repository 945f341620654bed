//! Pushing a 4-layer image in each auth mode; skopeo agrees; re-pushing moves nothing.

use ferry_registry::{Client, CopyOptions, ImageRef, Tag};

use crate::support::*;

/// Pushes a fresh 4-layer image to `registry` with two tags and checks everything a user
/// relies on: skopeo sees the same digest, the manifest reads back byte-identical by tag and
/// by digest, and a re-push uploads nothing.
async fn push_and_verify(client: &Client, registry: &str, creds: Option<(&str, &str)>) {
    let tmp = tempfile::tempdir().unwrap();
    let layout = layout(tmp.path(), 4, 200_000);
    let path = repo("push");
    let sha = "3f2c1e9a7b";
    let dest = image(registry, &format!("{path}:{sha}"));
    let source = open(client, &layout.source("latest")).await;

    let report = copy(client, source.as_ref(), &dest, &["latest"]).await;
    assert_eq!(report.digest, layout.digest);
    assert_eq!(report.blobs.total, 5);
    assert_eq!(report.blobs.uploaded, 5, "{report:?}");
    let total: u64 = layout.blobs.iter().map(|(_, b)| b.len() as u64).sum();
    assert_eq!(report.blob_bytes_total, total);
    assert_eq!(
        report.blob_bytes_uploaded, total,
        "every blob byte sent once for two tags"
    );
    assert!(
        report
            .tags
            .iter()
            .all(|t| t.written && t.previous.is_none())
    );

    // skopeo, independently, sees the image under both tags with our digest.
    for tag in [sha, "latest"] {
        assert_eq!(
            skopeo_digest(registry, &format!("{path}:{tag}"), creds),
            layout.digest.to_string()
        );
        assert_eq!(
            skopeo_raw(registry, &format!("{path}:{tag}"), creds),
            layout.manifest
        );
    }
    // By tag and by digest, the same bytes come back.
    let by_tag = client.get_manifest(&dest).await.unwrap();
    let by_digest = client
        .get_manifest(&dest.repo_only().with_digest(layout.digest.clone()))
        .await
        .unwrap();
    assert_eq!(by_tag.bytes, layout.manifest.as_slice());
    assert_eq!(by_tag.bytes, by_digest.bytes);
    assert_eq!(
        skopeo_raw(registry, &format!("{path}@{}", layout.digest), creds),
        layout.manifest
    );

    // Re-push: nothing moves.
    let again = copy(client, source.as_ref(), &dest, &["latest"]).await;
    assert!(again.unchanged, "{again:?}");
    assert_eq!(again.blob_bytes_uploaded, 0);
    assert_eq!(again.stats.blob_bytes_uploaded, 0);
    assert!(again.tags.iter().all(|t| !t.written));

    // A new tag for the same image: tags only, no blob bytes, blobs not even checked.
    let new_tag = copy(
        client,
        source.as_ref(),
        &dest.with_tag(Tag::parse("v1.2.3").unwrap()),
        &[],
    )
    .await;
    assert!(!new_tag.unchanged);
    assert_eq!(new_tag.blob_bytes_uploaded, 0);
    assert_eq!(new_tag.blobs.present, 5);
    assert_eq!(
        skopeo_digest(registry, &format!("{path}:v1.2.3"), creds),
        layout.digest.to_string()
    );
}

#[tokio::test]
async fn push_without_auth() {
    push_and_verify(&anonymous_client(), &noauth(), None).await;
}

#[tokio::test]
async fn push_with_htpasswd_basic_auth() {
    let registry = htpasswd();
    let (u, p) = (user(), password());
    push_and_verify(&client_for(&[&registry]), &registry, Some((&u, &p))).await;
}

#[tokio::test]
async fn push_with_bearer_token_realm_uses_one_token() {
    let registry = token();
    let (u, p) = (user(), password());
    let client = client_for(&[&registry]);
    push_and_verify(&client, &registry, Some((&u, &p))).await;

    // The per-scope cache: one push-scoped token serves every pull and push request of a push.
    let tmp = tempfile::tempdir().unwrap();
    let layout = layout(tmp.path(), 4, 10_000);
    let fresh = client_for(&[&registry]);
    let dest = image(&registry, &format!("{}:t", repo("tok")));
    let report = push(&fresh, &layout.source("latest"), &dest).await;
    assert_eq!(report.blobs.uploaded, 5);
    assert_eq!(report.stats.token_requests, 1, "{:?}", report.stats);
}

#[cfg(feature = "ecr")]
#[tokio::test]
async fn push_through_an_ecr_login_from_moto() {
    use ferry_registry::auth::{Anonymous, AuthChain};
    let registry = ferry_testkit::server("FERRY_TEST_REGISTRY_ECR");
    let client = client_with(AuthChain::first_try(ecr_auth(&registry)).or_else(Anonymous));
    // skopeo logs in with what moto hands out, decoded independently here.
    push_and_verify(&client, &registry, Some(("AWS", "123456789012-auth-token"))).await;
}

#[tokio::test]
async fn push_from_a_docker_save_archive() {
    let registry = noauth();
    let client = anonymous_client();
    let tmp = tempfile::tempdir().unwrap();
    let (archive, image_id) = docker_archive(tmp.path(), 3, "shop/web:dev");
    let path = repo("docker-archive");
    let dest = image(&registry, &format!("{path}:dev"));
    let spec = format!("docker-archive:{}:shop/web:dev", archive.display());
    let report = push(&client, &spec, &dest).await;
    assert_eq!(report.blobs.uploaded, 4);
    assert_eq!(
        skopeo_digest(&registry, &format!("{path}:dev"), None),
        report.digest.to_string()
    );
    let info = ferry_registry::inspect(&client, &dest).await.unwrap();
    assert_eq!(
        info.config.unwrap().digest,
        image_id,
        "the config keeps its bytes: its digest is the image ID"
    );
    assert_eq!(info.layers.len(), 3);
    assert!(
        info.layers
            .iter()
            .all(|l| l.media_type == ferry_registry::manifest::OCI_LAYER_TAR)
    );
    assert_eq!(
        info.config_summary.unwrap().architecture.as_deref(),
        Some("amd64")
    );
}

#[tokio::test]
async fn push_a_multi_platform_index_from_an_oci_archive() {
    let registry = noauth();
    let client = anonymous_client();
    let tmp = tempfile::tempdir().unwrap();
    let layout = index_layout(tmp.path());
    let file = tmp.path().join("image.tar");
    archive(&layout, &file);
    let path = repo("index");
    let dest = image(&registry, &format!("{path}:multi"));
    let spec = format!("oci-archive:{}:latest", file.display());
    let report = push(&client, &spec, &dest).await;
    assert_eq!(report.digest, layout.digest);
    assert_eq!(
        report.manifests_written, 2,
        "both platform manifests, by digest"
    );
    assert_eq!(
        skopeo_raw(&registry, &format!("{path}:multi"), None),
        layout.manifest
    );
    let info = ferry_registry::inspect(&client, &dest).await.unwrap();
    assert_eq!(info.kind, "index");
    let platforms: Vec<_> = info.platforms.iter().map(|p| p.platform.as_str()).collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    for p in &info.platforms {
        let child = ImageRef::parse(&format!("{registry}/{path}@{}", p.digest)).unwrap();
        assert_eq!(
            skopeo_digest(&registry, &format!("{path}@{}", p.digest), None),
            p.digest.to_string()
        );
        client.get_manifest(&child).await.unwrap();
    }
}

#[tokio::test]
async fn chunked_uploads_follow_each_location() {
    let registry = noauth();
    let proxy = ferry_testkit::proxy::FaultProxy::start(&registry).await;
    let client = anonymous_client();
    let tmp = tempfile::tempdir().unwrap();
    let layout = layout(tmp.path(), 4, 300_000);
    let source = open(&client, &layout.source("latest")).await;
    let path = repo("chunked");
    let options = CopyOptions {
        chunk_size: Some(64 * 1024),
        ..CopyOptions::default()
    };
    let dest = image(&proxy.addr(), &format!("{path}:c"));
    let report = copy_with(&client, source.as_ref(), &dest, &[], &options).await;
    assert_eq!(report.digest, layout.digest);
    let patches = proxy
        .log()
        .iter()
        .filter(|l| l.method == "PATCH" && l.status == 202)
        .count();
    let expected: u64 = layout
        .blobs
        .iter()
        .map(|(_, b)| (b.len() as u64).div_ceil(64 * 1024))
        .sum();
    assert_eq!(patches as u64, expected, "one PATCH per 64 KiB chunk");
    assert_eq!(proxy.upload_bytes(), report.blob_bytes_total);
    assert_eq!(
        skopeo_digest(&registry, &format!("{path}:c"), None),
        layout.digest.to_string()
    );
}
