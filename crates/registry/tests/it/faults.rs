//! A copy interrupted by 503s and dropped connections completes, with correct digests.

use ferry_registry::{CopyOptions, SourceSpec, copy_image};
use ferry_testkit::proxy::{Fault, FaultProxy};

use crate::support::*;

#[tokio::test]
async fn interrupted_copy_completes_with_correct_digests() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("ferry_registry=info")
        .with_test_writer()
        .try_init();
    let (from, to) = (noauth(), htpasswd());
    let tmp = tempfile::tempdir().unwrap();
    let layout = layout(tmp.path(), 4, 1_500_000);
    let path = repo("faults");
    let seeded = image(&from, &format!("{path}:v1"));
    push(&anonymous_client(), &layout.source("latest"), &seeded).await;

    // Both sides through fault-injecting proxies; a cross-registry copy, so every blob moves.
    let src_proxy = FaultProxy::start(&from).await;
    let dst_proxy = FaultProxy::start(&to).await;
    src_proxy.add_fault(Fault::status("GET", "/manifests/", 503).retry_after(1));
    src_proxy.add_fault(Fault::drop_response_body(
        "GET",
        "/blobs/sha256:",
        1_000_000,
    ));
    src_proxy.add_fault(Fault::status("GET", "/blobs/sha256:", 502));
    dst_proxy.add_fault(Fault::status("HEAD", "/blobs/", 503).times(2));
    dst_proxy.add_fault(Fault::status("POST", "/blobs/uploads/", 429).retry_after(0));
    dst_proxy.add_fault(Fault::drop_request_body(
        "PATCH",
        "/blobs/uploads/",
        1_200_000,
    ));
    dst_proxy.add_fault(Fault::status("PATCH", "/blobs/uploads/", 503));
    dst_proxy.add_fault(Fault::status("PUT", "/blobs/uploads/", 500));
    dst_proxy.add_fault(Fault::status("PUT", "/manifests/", 503));

    let client = client_for(&[&dst_proxy.addr()]);
    let src = image(&src_proxy.addr(), &format!("{path}:v1"));
    let remote = SourceSpec::Registry(src).open(&client).await.unwrap();
    let dest = image(&dst_proxy.addr(), &format!("{path}:v1"));
    // Two uploads at a time: whichever upload a fault lands on, each is met once.
    let options = CopyOptions {
        concurrency: 2,
        ..CopyOptions::default()
    };
    let report = copy_with(&client, remote.as_ref(), &dest, &[], &options).await;

    assert_eq!(
        src_proxy.pending_faults() + dst_proxy.pending_faults(),
        0,
        "every fault was hit"
    );
    assert_eq!(report.digest, layout.digest);
    assert_eq!(report.blobs.uploaded, 5);
    // The 503 on a PATCH: the session was untouched, so the upload continued in it. The PATCH
    // cut after 1.2 MB: distribution cancels such a session, so that blob started again. The
    // source download cut after 1.0 MB: re-opened where it broke, inside the same PATCH.
    assert_eq!(report.stats.uploads_resumed, 1, "{:?}", report.stats);
    assert_eq!(report.stats.uploads_restarted, 1, "{:?}", report.stats);
    assert!(report.stats.retries >= 9, "{:?}", report.stats);
    // What reached the registry, counted by the proxy: every blob once, plus the 1.2 MB of the
    // cut PATCH. Nothing more: the cut download did not cost a re-upload.
    let forwarded_twice = dst_proxy.upload_bytes() - report.blob_bytes_total;
    assert!(
        (1_200_000..1_300_000).contains(&forwarded_twice),
        "{forwarded_twice} bytes reached the registry twice: only the cut PATCH's 1.2 MB should have"
    );
    assert!(report.blob_bytes_uploaded >= dst_proxy.upload_bytes());
    let (u, p) = (user(), password());
    assert_eq!(
        skopeo_digest(&to, &format!("{path}:v1"), Some((&u, &p))),
        layout.digest.to_string()
    );
    // skopeo copies the image out of the destination, verifying every blob's digest.
    let out = tmp.path().join("pulled");
    let status = std::process::Command::new("skopeo")
        .args([
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            &format!("--src-creds={u}:{p}"),
        ])
        .arg(format!("docker://{to}/{path}:v1"))
        .arg(format!("oci:{}:v1", out.display()))
        .status()
        .unwrap();
    assert!(status.success());
    for (digest, bytes) in &layout.blobs {
        let pulled = std::fs::read(out.join("blobs/sha256").join(digest.hex())).unwrap();
        assert!(
            pulled == *bytes,
            "blob {digest} differs after the interrupted copy"
        );
    }
}

#[tokio::test]
async fn an_upload_that_keeps_failing_gives_up_and_tags_nothing() {
    let registry = noauth();
    let proxy = FaultProxy::start(&registry).await;
    proxy.add_fault(Fault::drop_request_body("PATCH", "/blobs/uploads/", 1000).times(100));
    let client = anonymous_client();
    let tmp = tempfile::tempdir().unwrap();
    let layout = layout(tmp.path(), 1, 100_000);
    let source = open(&client, &layout.source("latest")).await;
    let path = repo("gives-up");
    let err = copy_image(
        &client,
        source.as_ref(),
        &image(&proxy.addr(), &format!("{path}:v1")),
        &[],
        &CopyOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("failed after"), "{err}");
    let direct = anonymous_client();
    assert!(
        direct
            .head_manifest(&image(&registry, &format!("{path}:v1")))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_stalled_download_is_reopened_where_it_stopped() {
    let from = noauth();
    let tmp = tempfile::tempdir().unwrap();
    let layout = layout(tmp.path(), 2, 1_500_000);
    let path = repo("stall");
    push(
        &anonymous_client(),
        &layout.source("latest"),
        &image(&from, &format!("{path}:v1")),
    )
    .await;

    // The source, through a proxy, sends half a megabyte of a layer and then nothing.
    let src_proxy = FaultProxy::start(&from).await;
    // On a layer: the config blob is smaller than the stall point, and which blob is fetched
    // first depends on scheduling.
    let (layer, _) = layout.blobs.iter().max_by_key(|(_, b)| b.len()).unwrap();
    src_proxy.add_fault(Fault::stall_response_body(
        "GET",
        &format!("/blobs/{layer}"),
        500_000,
    ));
    // Long enough that a loaded machine's slow answers are not taken for stalls.
    let client = ferry_registry::Client::builder()
        .answer_timeout(std::time::Duration::from_secs(2))
        .build()
        .unwrap();
    let src = image(&src_proxy.addr(), &format!("{path}:v1"));
    let remote = SourceSpec::Registry(src).open(&client).await.unwrap();
    // Another repository on the registry itself: the source's host differs, so every blob moves.
    let dest = image(&from, &format!("{path}-copy:v1"));
    let report = copy_with(
        &client,
        remote.as_ref(),
        &dest,
        &[],
        &CopyOptions::default(),
    )
    .await;

    assert_eq!(src_proxy.pending_faults(), 0, "the stall was hit");
    assert_eq!(report.digest, layout.digest);
    assert!(report.stats.retries >= 1, "{:?}", report.stats);
    assert_eq!(
        skopeo_digest(&from, &format!("{path}-copy:v1"), None),
        layout.digest.to_string()
    );
}
