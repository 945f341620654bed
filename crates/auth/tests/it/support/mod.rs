//! Test support: minted OIDC tokens, captured logs, the secrets check, and a front for moto
//! that injects STS/EKS faults and patches DescribeCluster answers.

pub(crate) mod aws_front;
pub(crate) mod cluster_front;
pub(crate) mod ferry;
mod front;

use std::io::Write as _;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use ferry_auth::clock::{ManualClock, SharedClock};

/// Every log line of this test process, at trace level, from every crate (the AWS SDK's and
/// hyper's included).
static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

#[derive(Clone)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the trace-level log capture (once per process).
pub(crate) fn init() {
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = Capture(Arc::clone(&buf));
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .try_init();
        buf
    });
}

/// Everything logged so far.
pub(crate) fn logs() -> String {
    LOGS.get()
        .map(|b| String::from_utf8_lossy(&b.lock().unwrap()).into_owned())
        .unwrap_or_default()
}

/// Fails when any secret appears in any of `outputs` or in the captured logs. Also checks the
/// parts of a JWT (its signature alone is enough to replay nothing, but its payload+signature
/// would be).
pub(crate) fn assert_no_secrets(secrets: &[&str], outputs: &[&str]) {
    assert!(LOGS.get().is_some(), "the log capture is not installed");
    let logs = logs();
    let mut haystacks: Vec<(&str, &str)> = outputs.iter().map(|o| ("output", *o)).collect();
    haystacks.push(("logs", &logs));
    for secret in secrets {
        assert!(
            secret.len() >= 8,
            "test secret too short to grep for: {secret:?}"
        );
        let mut needles = vec![(*secret).to_owned()];
        // In a URL (a presigned query, a form body) a secret appears percent-encoded.
        let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        if encoded != *secret {
            needles.push(encoded);
        }
        // A JWT's signature part is as secret as the whole.
        if secret.matches('.').count() == 2 {
            needles.push(secret.rsplit('.').next().unwrap().to_owned());
        }
        for needle in &needles {
            for (what, hay) in &haystacks {
                assert!(
                    !hay.contains(needle.as_str()),
                    "a secret appears in the {what}: ...{}...",
                    &needle[..needle.len().min(6)]
                );
            }
        }
    }
}

/// Now, by the wall clock (tests may read it; the library may not).
pub(crate) fn wall_clock() -> SystemTime {
    #[expect(
        clippy::disallowed_methods,
        reason = "tests start their clocks at real time"
    )]
    SystemTime::now()
}

/// A manual clock at the current wall-clock time, and the same clock shared.
pub(crate) fn clock_now() -> (ManualClock, SharedClock) {
    let clock = ManualClock::new(wall_clock());
    (clock.clone(), Arc::new(clock))
}

/// Unix seconds of `at`.
pub(crate) fn unix(at: SystemTime) -> i64 {
    at.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// A signed (HS256, with a per-test key) GitHub-shaped OIDC token.
pub(crate) fn github_jwt(sub: &str, aud: &str, exp: SystemTime) -> String {
    let iat = exp - Duration::from_secs(300);
    let claims = serde_json::json!({
        "iss": "https://token.actions.githubusercontent.com",
        "sub": sub,
        "aud": aud,
        "exp": unix(exp),
        "iat": unix(iat),
        "nbf": unix(iat),
        "repository": sub.split(':').nth(1).unwrap_or(""),
        "ref": "refs/heads/main",
        "actor": "octocat",
        "run_id": "4242",
        "jti": uuid_like(),
    });
    let key = jsonwebtoken::EncodingKey::from_secret(uuid_like().as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap()
}

/// A unique-enough string (tests run in parallel processes against shared servers).
pub(crate) fn uuid_like() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

/// Writes `text` to a new file in `dir` and returns its path.
pub(crate) fn write_file(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
    path
}

/// A file under `tests/it/fixtures`.
pub(crate) fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/fixtures")
        .join(name)
}

/// Creates an EKS cluster in moto (which takes the region from the request's credential scope
/// and checks no signature).
pub(crate) async fn create_moto_cluster(moto: &str, name: &str, region: &str) {
    reqwest::Client::new()
        .post(format!("{moto}/clusters"))
        .header(
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential=AKIDTEST/20260101/{region}/eks/aws4_request, \
                 SignedHeaders=host, Signature=0"
            ),
        )
        .json(&serde_json::json!({
            "name": name,
            "roleArn": "arn:aws:iam::123456789012:role/eks-cluster",
            "resourcesVpcConfig": { "subnetIds": ["subnet-0123"] },
        }))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
}

/// The presigned URL inside an EKS token.
pub(crate) fn eks_token_url(token: &str) -> Option<url::Url> {
    use base64::Engine as _;
    let b64 = token.strip_prefix("k8s-aws-v1.")?;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(b64)
        .ok()?;
    url::Url::parse(std::str::from_utf8(&raw).ok()?).ok()
}

/// A query parameter of a URL.
pub(crate) fn query(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// When a presigned URL was signed: its `X-Amz-Date` (`20261123T152047Z`).
pub(crate) fn signed_at(url: &url::Url) -> Option<jiff::Timestamp> {
    let d = query(url, "X-Amz-Date")?;
    let rfc = format!(
        "{}-{}-{}T{}:{}:{}Z",
        d.get(0..4)?,
        d.get(4..6)?,
        d.get(6..8)?,
        d.get(9..11)?,
        d.get(11..13)?,
        d.get(13..15)?
    );
    rfc.parse().ok()
}

/// Checks an EKS token against the AWS CLI: `aws eks get-token` for the same cluster and
/// region, run with the credentials the token was signed with (found among those STS issued
/// through `issued`) and its clock fixed at the token's signing time, must make the identical
/// token. This verifies the SigV4 signature, the signed `x-k8s-aws-id` header and the encoding.
pub(crate) fn assert_aws_cli_agrees(
    token: &str,
    cluster: &str,
    region: &str,
    issued: &[(String, String, String)],
) {
    let url = eks_token_url(token).expect("an EKS token");
    let credential = query(&url, "X-Amz-Credential").expect("X-Amz-Credential");
    let key_id = credential.split('/').next().unwrap();
    let (_, secret, session) = issued
        .iter()
        .find(|(id, _, _)| id == key_id)
        .expect("the token is signed with credentials STS issued");
    let at = signed_at(&url).expect("X-Amz-Date");
    let aws = std::path::PathBuf::from(ferry_testkit::server("FERRY_TEST_AWS_CLI"));
    let python = aws.parent().unwrap().join("python3");
    let home = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(python)
        .arg(fixture("aws_at.py"))
        .arg(at.as_second().to_string())
        .args([
            "eks",
            "get-token",
            "--cluster-name",
            cluster,
            "--region",
            region,
        ])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home.path())
        .env("AWS_CONFIG_FILE", home.path().join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.path().join("none"))
        .env("AWS_ACCESS_KEY_ID", key_id)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_SESSION_TOKEN", session)
        .env("AWS_STS_REGIONAL_ENDPOINTS", "regional")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "aws eks get-token failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        cli["status"]["token"].as_str() == Some(token),
        "the AWS CLI makes a different token for cluster {cluster} at {at}"
    );
}
