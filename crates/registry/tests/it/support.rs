//! Test images, clients for each local registry, and skopeo as the independent verifier.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferry_registry::auth::{Anonymous, AuthChain, BasicAuth, RegistryAuth};
use ferry_registry::manifest::{OCI_CONFIG, OCI_INDEX, OCI_LAYER_TAR_GZIP, OCI_MANIFEST};
use ferry_registry::{
    Client, CopyOptions, CopyReport, Digest, ImageRef, ImageSource, RetryPolicy, SourceSpec, Tag,
    copy_image,
};
use secrecy::SecretString;
use serde_json::json;

/// A unique repository path for one test: `ferry-it/NAME-RANDOM`.
pub(crate) fn repo(name: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("ferry-it/{name}-{}", &id[..10])
}

pub(crate) fn noauth() -> String {
    ferry_testkit::server("FERRY_TEST_REGISTRY_NOAUTH")
}
pub(crate) fn htpasswd() -> String {
    ferry_testkit::server("FERRY_TEST_REGISTRY_HTPASSWD")
}
pub(crate) fn token() -> String {
    ferry_testkit::server("FERRY_TEST_REGISTRY_TOKEN")
}
pub(crate) fn user() -> String {
    ferry_testkit::server("FERRY_TEST_REGISTRY_USER")
}
pub(crate) fn password() -> String {
    ferry_testkit::server("FERRY_TEST_REGISTRY_PASSWORD")
}

/// Small backoff so tests with injected faults do not wait long.
pub(crate) fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_retries: 5,
        base_delay: std::time::Duration::from_millis(20),
        max_delay: std::time::Duration::from_millis(200),
        max_retry_after: std::time::Duration::from_secs(5),
    }
}

pub(crate) fn anonymous_client() -> Client {
    client_with(Anonymous)
}

/// A client logged in to `registries` with the test user.
pub(crate) fn client_for(registries: &[&str]) -> Client {
    let mut chain = AuthChain::default();
    for r in registries {
        chain = chain.or_else(BasicAuth::new(r, user(), SecretString::from(password())));
    }
    client_with(chain.or_else(Anonymous))
}

/// Opens a source written skopeo-style (`oci:DIR:TAG`, `docker://REF`, ...).
pub(crate) async fn open(client: &Client, spec: &str) -> Box<dyn ImageSource> {
    SourceSpec::parse(spec).unwrap().open(client).await.unwrap()
}

/// Copies `source` to `dest`, also tagged `extra_tags`, with `options`.
pub(crate) async fn copy_with(
    client: &Client,
    source: &dyn ImageSource,
    dest: &ImageRef,
    extra_tags: &[&str],
    options: &CopyOptions,
) -> CopyReport {
    let tags: Vec<Tag> = extra_tags.iter().map(|t| Tag::parse(t).unwrap()).collect();
    copy_image(client, source, dest, &tags, options)
        .await
        .unwrap()
}

/// Copies `source` to `dest`, also tagged `extra_tags`, with the default options.
pub(crate) async fn copy(
    client: &Client,
    source: &dyn ImageSource,
    dest: &ImageRef,
    extra_tags: &[&str],
) -> CopyReport {
    copy_with(client, source, dest, extra_tags, &CopyOptions::default()).await
}

/// Pushes the source `spec` to `dest` with the default options.
pub(crate) async fn push(client: &Client, spec: &str, dest: &ImageRef) -> CopyReport {
    copy(client, open(client, spec).await.as_ref(), dest, &[]).await
}

/// A client with `auth` and the tests' fast retries.
pub(crate) fn client_with(auth: impl RegistryAuth + 'static) -> Client {
    Client::builder()
        .auth(Arc::new(auth))
        .retry(fast_retry())
        .build()
        .unwrap()
}

/// ECR logins from moto's `GetAuthorizationToken` (which answers `AWS:123456789012-auth-token`)
/// for the registry at `registry`.
#[cfg(feature = "ecr")]
pub(crate) fn ecr_auth(registry: &str) -> ferry_registry::auth::ecr::EcrAuth {
    use aws_sdk_ecr::config::{BehaviorVersion, Credentials, Region};
    let conf = aws_sdk_ecr::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(ferry_testkit::server("FERRY_TEST_MOTO"))
        .credentials_provider(Credentials::new(
            "AKIDFERRYTEST",
            "ferry-test-secret",
            None,
            None,
            "test",
        ))
        .build();
    ferry_registry::auth::ecr::EcrAuth::new(
        aws_sdk_ecr::Client::from_conf(conf),
        Arc::new(ferry_registry::clock::FixedClock(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000),
        )),
    )
    .with_host(registry)
}

/// Deterministic pseudo-random bytes (xorshift), different per seed.
pub(crate) fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn seed() -> u64 {
    let id = uuid::Uuid::new_v4();
    u64::from_le_bytes(id.as_bytes()[..8].try_into().unwrap())
}

/// An uncompressed layer tar holding one file.
pub(crate) fn layer_tar(name: &str, content: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_cksum();
    b.append_data(&mut h, name, content).unwrap();
    b.into_inner().unwrap()
}

pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// An OCI image layout on disk.
pub(crate) struct Layout {
    pub(crate) dir: PathBuf,
    /// The image's top manifest bytes and digest (the index for multi-arch layouts).
    pub(crate) manifest: Vec<u8>,
    pub(crate) digest: Digest,
    /// Every blob: (digest, bytes).
    pub(crate) blobs: Vec<(Digest, Vec<u8>)>,
}

impl Layout {
    pub(crate) fn source(&self, tag: &str) -> String {
        format!("oci:{}:{tag}", self.dir.display())
    }

    pub(crate) fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join("blobs/sha256").join(digest.hex())
    }
}

/// Blobs of a test image: (digest, bytes).
pub(crate) type Blobs = Vec<(Digest, Vec<u8>)>;

pub(crate) fn write_blob(dir: &Path, bytes: &[u8]) -> (Digest, i64) {
    let d = Digest::sha256_of(bytes);
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("blobs/sha256").join(d.hex()), bytes).unwrap();
    (d, bytes.len() as i64)
}

/// Builds an image manifest with `layers` gzip layers of `layer_size` random bytes each, plus
/// config, into `dir`'s blobs. Returns (manifest bytes, digest, blobs).
pub(crate) fn image_into(
    dir: &Path,
    layers: usize,
    layer_size: usize,
    arch: &str,
) -> (Vec<u8>, Digest, Blobs) {
    let base = seed();
    let mut blobs = Vec::new();
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    for i in 0..layers {
        let tar = layer_tar(
            &format!("file-{i}.bin"),
            &noise(base + i as u64, layer_size),
        );
        diff_ids.push(Digest::sha256_of(&tar).to_string());
        let gz = gzip(&tar);
        let (d, size) = write_blob(dir, &gz);
        descs.push(json!({"mediaType": OCI_LAYER_TAR_GZIP, "digest": d.to_string(), "size": size}));
        blobs.push((d, gz));
    }
    let config = serde_json::to_vec(&json!({
        "architecture": arch,
        "os": "linux",
        "created": "2026-01-01T00:00:00Z",
        "config": {"Cmd": ["/file-0.bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let (cd, csize) = write_blob(dir, &config);
    blobs.push((cd.clone(), config));
    let manifest = serde_json::to_vec_pretty(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": cd.to_string(), "size": csize},
        "layers": descs,
    }))
    .unwrap();
    let (md, _) = write_blob(dir, &manifest);
    (manifest, md, blobs)
}

fn write_layout(dir: &Path, media_type: &str, digest: &Digest, size: usize, tag: &str) {
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion": "1.0.0"}"#).unwrap();
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": media_type,
            "digest": digest.to_string(),
            "size": size,
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

/// A layout holding one image with `layers` layers of `layer_size` bytes, tagged `latest`.
pub(crate) fn layout(root: &Path, layers: usize, layer_size: usize) -> Layout {
    let dir = root.join(format!(
        "layout-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let (manifest, digest, blobs) = image_into(&dir, layers, layer_size, "amd64");
    write_layout(&dir, OCI_MANIFEST, &digest, manifest.len(), "latest");
    Layout {
        dir,
        manifest,
        digest,
        blobs,
    }
}

/// A layout holding a two-platform index (amd64, arm64), tagged `latest`.
pub(crate) fn index_layout(root: &Path) -> Layout {
    let dir = root.join(format!(
        "index-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let mut entries = Vec::new();
    let mut all = Vec::new();
    for arch in ["amd64", "arm64"] {
        let (m, d, blobs) = image_into(&dir, 2, 50_000, arch);
        entries.push(json!({
            "mediaType": OCI_MANIFEST, "digest": d.to_string(), "size": m.len(),
            "platform": {"os": "linux", "architecture": arch},
        }));
        all.extend(blobs);
        all.push((d, m));
    }
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries,
    }))
    .unwrap();
    let (digest, _) = write_blob(&dir, &index);
    write_layout(&dir, OCI_INDEX, &digest, index.len(), "latest");
    Layout {
        dir,
        manifest: index,
        digest,
        blobs: all,
    }
}

/// Tars a layout directory into an `oci-archive` file.
pub(crate) fn archive(layout: &Layout, path: &Path) {
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    b.append_dir_all(".", &layout.dir).unwrap();
    b.finish().unwrap();
}

/// A legacy `docker save` archive with `layers` uncompressed layers; returns its path and the
/// config digest (the image ID).
pub(crate) fn docker_archive(root: &Path, layers: usize, repo_tag: &str) -> (PathBuf, Digest) {
    let base = seed();
    let path = root.join(format!(
        "docker-{}.tar",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    ));
    let mut b = tar::Builder::new(std::fs::File::create(&path).unwrap());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    };
    let mut diff_ids = Vec::new();
    let mut paths = Vec::new();
    for i in 0..layers {
        let tar = layer_tar(&format!("f{i}"), &noise(base + i as u64, 30_000));
        let d = Digest::sha256_of(&tar);
        let p = format!("{}/layer.tar", d.hex());
        add(&p, &tar);
        diff_ids.push(d.to_string());
        paths.push(p);
    }
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let cd = Digest::sha256_of(&config);
    add(&format!("{}.json", cd.hex()), &config);
    let listing = serde_json::to_vec(&json!([{
        "Config": format!("{}.json", cd.hex()), "RepoTags": [repo_tag], "Layers": paths,
    }]))
    .unwrap();
    add("manifest.json", &listing);
    b.finish().unwrap();
    (path, cd)
}

/// skopeo's view: `skopeo inspect --raw` bytes of `reference` on `registry`.
pub(crate) fn skopeo_raw(registry: &str, reference: &str, creds: Option<(&str, &str)>) -> Vec<u8> {
    let mut cmd = std::process::Command::new("skopeo");
    cmd.args(["inspect", "--raw", "--tls-verify=false"]);
    if let Some((u, p)) = creds {
        cmd.arg(format!("--creds={u}:{p}"));
    }
    cmd.arg(format!("docker://{registry}/{reference}"));
    let out = cmd
        .output()
        .expect("skopeo is installed (scripts/servers.sh install)");
    assert!(
        out.status.success(),
        "skopeo inspect failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// skopeo's digest for `reference` (`skopeo inspect --format {{.Digest}}`).
pub(crate) fn skopeo_digest(
    registry: &str,
    reference: &str,
    creds: Option<(&str, &str)>,
) -> String {
    let mut cmd = std::process::Command::new("skopeo");
    cmd.args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"]);
    if let Some((u, p)) = creds {
        cmd.arg(format!("--creds={u}:{p}"));
    }
    cmd.arg(format!("docker://{registry}/{reference}"));
    let out = cmd.output().expect("skopeo is installed");
    assert!(
        out.status.success(),
        "skopeo inspect failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

pub(crate) fn image(registry: &str, path: &str) -> ImageRef {
    ImageRef::parse(&format!("{registry}/{path}")).unwrap()
}
