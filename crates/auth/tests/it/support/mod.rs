//! Test support: minted OIDC tokens, captured logs, the secrets check, and a front for moto
//! that injects STS/EKS faults and patches DescribeCluster answers.

pub(crate) mod aws_front;

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
    let logs = logs();
    assert!(!logs.is_empty(), "the log capture is not installed");
    let mut haystacks: Vec<(&str, &str)> = outputs.iter().map(|o| ("output", *o)).collect();
    haystacks.push(("logs", &logs));
    for secret in secrets {
        assert!(secret.len() >= 8, "test secret too short to grep for: {secret:?}");
        let mut needles = vec![(*secret).to_owned()];
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
    #[expect(clippy::disallowed_methods, reason = "tests start their clocks at real time")]
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
