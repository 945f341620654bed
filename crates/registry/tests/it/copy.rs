//! Copying between repositories and registries: mounts, promotion by digest, immutable tags.

use ferry_registry::{CopyOptions, Error, SourceSpec, Tag, copy_image, tag_image};
use ferry_testkit::proxy::FaultProxy;

use crate::support::*;

#[tokio::test]
async fn copy_within_one_registry_mounts_and_uploads_nothing() {
    // The token registry: a mount needs one token with push on the target and pull on the
    // source, which is what the per-scope cache asks for.
    let registry = token();
    let proxy = FaultProxy::start(&registry).await;
    let client = client_for(&[&registry, &proxy.addr()]);
    let tmp = tempfile::tempdir().unwrap();
    let layout = layout(tmp.path(), 4, 150_000);
    let staging = repo("staging");
    let src = image(&proxy.addr(), &format!("{staging}:staging-latest"));
    push(&client, &layout.source("latest"), &src).await;

    proxy.reset();
    let prod = repo("prod");
    let dest = image(&proxy.addr(), &format!("{prod}:v1.2.3"));
    let remote = SourceSpec::Registry(src.clone())
        .open(&client)
        .await
        .unwrap();
    let report = copy(&client, remote.as_ref(), &dest, &["prod-latest"]).await;
    assert_eq!(report.digest, layout.digest);
    assert_eq!(report.blobs.mounted, 5, "{report:?}");
    assert_eq!(report.blobs.uploaded, 0);
    assert_eq!(report.blob_bytes_uploaded, 0);
    assert_eq!(proxy.upload_bytes(), 0, "no blob byte crossed the wire");
    assert_eq!(proxy.download_bytes(), 0, "nothing was downloaded either");
    let mounts = proxy
        .log()
        .iter()
        .filter(|l| l.method == "POST" && l.status == 201)
        .count();
    assert_eq!(mounts, 5);
    let (u, p) = (user(), password());
    for tag in ["v1.2.3", "prod-latest"] {
        assert_eq!(
            skopeo_digest(&registry, &format!("{prod}:{tag}"), Some((&u, &p))),
            layout.digest.to_string()
        );
    }
}

#[tokio::test]
async fn copy_across_registries_keeps_the_index_digest() {
    let (from, to) = (noauth(), htpasswd());
    let client = client_for(&[&to]);
    let tmp = tempfile::tempdir().unwrap();
    let layout = index_layout(tmp.path());
    let path = repo("multi");
    let src = image(&from, &format!("{path}:v1"));
    push(&client, &layout.source("latest"), &src).await;

    let dest = image(&to, &format!("{path}:v1"));
    let remote = SourceSpec::Registry(src).open(&client).await.unwrap();
    let report = copy(&client, remote.as_ref(), &dest, &[]).await;
    assert_eq!(report.digest, layout.digest);
    assert_eq!(report.blobs.uploaded, report.blobs.total);
    assert_eq!(report.manifests_written, 2);
    let (u, p) = (user(), password());
    assert_eq!(
        skopeo_raw(&to, &format!("{path}:v1"), Some((&u, &p))),
        layout.manifest
    );
}

#[tokio::test]
async fn promotion_copies_the_digest_the_tag_named() {
    let registry = noauth();
    let client = anonymous_client();
    let tmp = tempfile::tempdir().unwrap();
    let first = layout(tmp.path(), 2, 20_000);
    let second = layout(tmp.path(), 2, 20_000);
    let app = repo("app");
    let staging = image(&registry, &format!("{app}:staging-latest"));
    push(&client, &first.source("latest"), &staging).await;

    // The source is pinned when opened: moving the tag afterwards does not change what is copied.
    let promoted = SourceSpec::Registry(staging.clone())
        .open(&client)
        .await
        .unwrap();
    push(&client, &second.source("latest"), &staging).await;
    assert_eq!(
        promoted.describe(),
        staging.with_digest(first.digest.clone()).to_string()
    );

    let prod = image(&registry, &format!("{}:v1.2.3", repo("prod")));
    let report = copy(&client, promoted.as_ref(), &prod, &["prod-latest"]).await;
    assert_eq!(report.digest, first.digest);
    assert!(report.pinned.ends_with(&format!("@{}", first.digest)));
    assert_eq!(
        ferry_registry::resolve(&client, &prod).await.unwrap(),
        first.digest
    );
    assert_eq!(
        ferry_registry::resolve(&client, &staging).await.unwrap(),
        second.digest
    );
}

#[tokio::test]
async fn immutable_mode_refuses_to_move_a_tag_and_uploads_nothing() {
    let registry = noauth();
    let proxy = FaultProxy::start(&registry).await;
    let client = anonymous_client();
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (layout(tmp.path(), 2, 30_000), layout(tmp.path(), 2, 30_000));
    let path = repo("immutable");
    let v1 = image(&proxy.addr(), &format!("{path}:v1"));
    let immutable = CopyOptions {
        immutable: true,
        ..CopyOptions::default()
    };
    let sa = open(&client, &a.source("latest")).await;
    copy_with(&client, sa.as_ref(), &v1, &[], &immutable).await;
    // The same image again is fine.
    assert!(
        copy_with(&client, sa.as_ref(), &v1, &[], &immutable)
            .await
            .unchanged
    );

    proxy.reset();
    let sb = open(&client, &b.source("latest")).await;
    let err = copy_image(
        &client,
        sb.as_ref(),
        &v1,
        &[Tag::parse("v2").unwrap()],
        &immutable,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Error::ImmutableTag { existing, new, .. } if *existing == a.digest && *new == b.digest),
        "{err}"
    );
    assert_eq!(proxy.upload_bytes(), 0);
    assert!(
        proxy
            .log()
            .iter()
            .all(|l| l.method == "GET" || l.method == "HEAD"),
        "{:?}",
        proxy.log()
    );
    assert_eq!(
        skopeo_digest(&registry, &format!("{path}:v1"), None),
        a.digest.to_string()
    );

    // tag_image follows the same rule; without immutability it moves the tag by digest.
    let by_digest = image(&registry, &format!("{path}@{}", b.digest));
    push(&client, &b.source("latest"), &by_digest).await;
    let err = tag_image(&client, &by_digest, &[Tag::parse("v1").unwrap()], true)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ImmutableTag { .. }));
    let moved = tag_image(&client, &by_digest, &[Tag::parse("v1").unwrap()], false)
        .await
        .unwrap();
    assert_eq!(moved[0].previous.as_ref(), Some(&a.digest));
    assert_eq!(
        skopeo_digest(&registry, &format!("{path}:v1"), None),
        b.digest.to_string()
    );
}
