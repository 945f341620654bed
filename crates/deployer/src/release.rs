//! Release records: one Secret per revision, written before ferry mutates anything, holding the
//! revision and status, the manifests as applied (gzip'd JSON), the images (tags and digests),
//! the commit, the previous revision and timestamps. History is bounded (10 by default).
//!
//! Records are named `ferry.release.v1.<app>.<env>.v<N>` (a prefix no user object shares:
//! kapp#146), typed `ferry.dev/release.v1`, and labelled `ferry.dev/app`, `ferry.dev/env`,
//! `ferry.dev/revision` and `ferry.dev/status` so one labelled LIST reads the history.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};

use base64::Engine as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, PostParams};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::images::PinnedImage;

/// The Secret type of release records.
pub const RECORD_TYPE: &str = "ferry.dev/release.v1";
/// The default number of records kept.
pub const DEFAULT_HISTORY: usize = 10;
/// The largest record ferry writes (the API server's Secret limit is 1 MiB).
pub const MAX_RECORD_BYTES: usize = 1000 * 1024;

/// A release's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReleaseStatus {
    /// Being deployed now (or its deploy was killed).
    Pending,
    /// Deployed and healthy: the current release.
    Deployed,
    /// Was deployed; a later release replaced it.
    Superseded,
    /// Failed and was not rolled back.
    Failed,
    /// Failed and was rolled back to the previous release.
    RolledBack,
}

impl ReleaseStatus {
    /// The status as written in labels and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseStatus::Pending => "pending",
            ReleaseStatus::Deployed => "deployed",
            ReleaseStatus::Superseded => "superseded",
            ReleaseStatus::Failed => "failed",
            ReleaseStatus::RolledBack => "rolled-back",
        }
    }
}

impl std::fmt::Display for ReleaseStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Release {
    /// The app.
    pub app: String,
    /// The environment.
    pub env: String,
    /// The revision (1, 2, ...).
    pub revision: u32,
    /// The status.
    pub status: ReleaseStatus,
    /// The image tag deployed (the commit SHA).
    #[serde(default)]
    pub tag: Option<String>,
    /// The commit, when known.
    #[serde(default)]
    pub commit: Option<String>,
    /// The app's images, with digests when resolved.
    #[serde(default)]
    pub images: Vec<PinnedImage>,
    /// The revision that was current before this one.
    #[serde(default)]
    pub previous: Option<u32>,
    /// For a rollback: the revision whose manifests it restored.
    #[serde(default)]
    pub restores: Option<u32>,
    /// When the deploy began (RFC 3339).
    pub started_at: String,
    /// When it ended.
    #[serde(default)]
    pub finished_at: Option<String>,
    /// What happened, in a line.
    #[serde(default)]
    pub description: String,
    /// A digest of the manifests (tells an identical redeploy).
    pub digest: String,
    /// The objects as applied.
    pub manifests: Vec<Value>,
    /// Objects that existed without ferry's label and were taken over on purpose (`--adopt`,
    /// `adopt = [...]`): never pruned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adopted: Vec<crate::manifest::ObjectKey>,
}

/// Why reading or writing records failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The API call failed.
    #[error("cannot {what} release records in namespace {namespace}")]
    Api {
        /// What was being done.
        what: &'static str,
        /// The namespace.
        namespace: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
    /// A record could not be read.
    #[error("release record {name} is unreadable: {message}")]
    Corrupt {
        /// The Secret.
        name: String,
        /// Why.
        message: String,
    },
    /// A record would be larger than a Secret may be.
    #[error(
        "the release is {size} bytes compressed; a release record holds at most {max} (split the app, or drop large generated data)"
    )]
    TooLarge {
        /// The compressed size.
        size: usize,
        /// The limit.
        max: usize,
    },
}

/// The records of one app and environment, in one namespace.
#[derive(Debug, Clone)]
pub struct RecordStore {
    api: Api<Secret>,
    namespace: String,
    app: String,
    env: String,
}

/// The Secret name of a revision.
pub fn record_name(app: &str, env: &str, revision: u32) -> String {
    format!("ferry.release.v1.{app}.{env}.v{revision}")
}

fn encode(release: &Release) -> Result<Vec<u8>, RecordError> {
    let json = serde_json::to_vec(release).map_err(|e| RecordError::Corrupt {
        name: record_name(&release.app, &release.env, release.revision),
        message: e.to_string(),
    })?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = gz.write_all(&json);
    let bytes = gz.finish().unwrap_or_default();
    if bytes.len() > MAX_RECORD_BYTES {
        return Err(RecordError::TooLarge {
            size: bytes.len(),
            max: MAX_RECORD_BYTES,
        });
    }
    Ok(bytes)
}

fn decode(name: &str, bytes: &[u8]) -> Result<Release, RecordError> {
    let corrupt = |message: String| RecordError::Corrupt {
        name: name.to_owned(),
        message,
    };
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .take(64 * 1024 * 1024)
        .read_to_end(&mut json)
        .map_err(|e| corrupt(format!("not gzip: {e}")))?;
    serde_json::from_slice(&json).map_err(|e| corrupt(format!("not a release: {e}")))
}

impl RecordStore {
    /// The records of `app` in `env`, kept in `namespace`.
    pub fn new(client: &kube::Client, namespace: &str, app: &str, env: &str) -> Self {
        RecordStore {
            api: Api::namespaced(client.clone(), namespace),
            namespace: namespace.to_owned(),
            app: app.to_owned(),
            env: env.to_owned(),
        }
    }

    /// The namespace holding the records.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    fn err(&self, what: &'static str) -> impl FnOnce(kube::Error) -> RecordError + '_ {
        move |source| RecordError::Api {
            what,
            namespace: self.namespace.clone(),
            source,
        }
    }

    /// Every record, oldest first.
    pub async fn list(&self) -> Result<Vec<Release>, RecordError> {
        let selector = format!("ferry.dev/app={},ferry.dev/env={}", self.app, self.env);
        let list = match self
            .api
            .list(&ListParams::default().labels(&selector))
            .await
        {
            Ok(l) => l,
            // No namespace yet: no history yet.
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(Vec::new()),
            Err(e) => return Err(self.err("list")(e)),
        };
        let mut out = Vec::new();
        for s in list.items {
            if s.type_.as_deref() != Some(RECORD_TYPE) {
                continue;
            }
            let name = s.metadata.name.clone().unwrap_or_default();
            let Some(bytes) = s.data.as_ref().and_then(|d| d.get("release")) else {
                continue;
            };
            out.push(decode(&name, &bytes.0)?);
        }
        out.sort_by_key(|r| r.revision);
        Ok(out)
    }

    fn secret(&self, release: &Release) -> Result<Secret, RecordError> {
        let bytes = encode(release)?;
        let labels = BTreeMap::from([
            ("ferry.dev/app".to_owned(), self.app.clone()),
            ("ferry.dev/env".to_owned(), self.env.clone()),
            (
                "ferry.dev/revision".to_owned(),
                release.revision.to_string(),
            ),
            ("ferry.dev/status".to_owned(), release.status.to_string()),
            (
                "app.kubernetes.io/managed-by".to_owned(),
                "ferry".to_owned(),
            ),
        ]);
        Ok(Secret {
            metadata: ObjectMeta {
                name: Some(record_name(&self.app, &self.env, release.revision)),
                namespace: Some(self.namespace.clone()),
                labels: Some(labels),
                ..ObjectMeta::default()
            },
            type_: Some(RECORD_TYPE.to_owned()),
            data: Some(BTreeMap::from([("release".to_owned(), ByteString(bytes))])),
            ..Secret::default()
        })
    }

    /// Writes a new record (fails if the revision exists: two writers never share one), and
    /// returns when the API server says it was created (its `creationTimestamp`, on the
    /// server's clock, which this machine's need not agree with).
    pub async fn create(
        &self,
        release: &Release,
    ) -> Result<Option<k8s_openapi::jiff::Timestamp>, RecordError> {
        let secret = self.secret(release)?;
        match self.api.create(&PostParams::default(), &secret).await {
            Ok(s) => Ok(s.metadata.creation_timestamp.map(|t| t.0)),
            // A retried create whose first attempt the server had applied: it is ours when it
            // holds exactly this record.
            Err(kube::Error::Api(s)) if s.code == 409 => {
                let name = record_name(&self.app, &self.env, release.revision);
                let existing = self.api.get(&name).await.map_err(self.err("read"))?;
                let same = existing
                    .data
                    .as_ref()
                    .and_then(|d| d.get("release"))
                    .and_then(|b| decode(&name, &b.0).ok())
                    .is_some_and(|r| r == *release);
                if same {
                    Ok(existing.metadata.creation_timestamp.map(|t| t.0))
                } else {
                    Err(self.err("create")(kube::Error::Api(s)))
                }
            }
            Err(e) => Err(self.err("create")(e)),
        }
    }

    /// Rewrites a record (status, end time, description).
    pub async fn update(&self, release: &Release) -> Result<(), RecordError> {
        let name = record_name(&self.app, &self.env, release.revision);
        let mut secret = self.secret(release)?;
        // One write with the resourceVersion just read; a 409 (another writer, or a retried
        // write the server had applied) reads again and writes again.
        let mut conflicts = 0;
        loop {
            let current = self.api.get(&name).await.map_err(self.err("read"))?;
            if current.data == secret.data && current.metadata.labels == secret.metadata.labels {
                return Ok(());
            }
            secret.metadata.resource_version = current.metadata.resource_version;
            match self
                .api
                .replace(&name, &PostParams::default(), &secret)
                .await
            {
                Ok(_) => return Ok(()),
                Err(kube::Error::Api(s)) if s.code == 409 && conflicts < 5 => conflicts += 1,
                Err(e) => return Err(self.err("update")(e)),
            }
        }
    }

    /// Deletes the oldest records beyond `keep`, never the newest deployed one.
    pub async fn trim(&self, keep: usize) -> Result<Vec<u32>, RecordError> {
        let all = self.list().await?;
        let current = all
            .iter()
            .rev()
            .find(|r| r.status == ReleaseStatus::Deployed)
            .map(|r| r.revision);
        let excess = all.len().saturating_sub(keep.max(1));
        let mut deleted = Vec::new();
        for r in all.iter().take(excess) {
            if Some(r.revision) == current {
                continue;
            }
            let name = record_name(&self.app, &self.env, r.revision);
            match self.api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => deleted.push(r.revision),
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(self.err("delete")(e)),
            }
        }
        Ok(deleted)
    }
}

/// The history as it is true: of several `deployed` records (a run stopped between marking the
/// new release and the old one; the next run repairs the records), only the newest is current,
/// and the others are shown `superseded`.
pub fn normalized(mut history: Vec<Release>) -> Vec<Release> {
    let newest = current(&history).map(|r| r.revision);
    for r in history
        .iter_mut()
        .filter(|r| r.status == ReleaseStatus::Deployed && Some(r.revision) != newest)
    {
        r.status = ReleaseStatus::Superseded;
    }
    history
}

/// The current release: the newest deployed one.
pub fn current(history: &[Release]) -> Option<&Release> {
    history
        .iter()
        .rev()
        .find(|r| r.status == ReleaseStatus::Deployed)
}

/// A base64 digest helper for displays.
pub fn short_digest(d: &str) -> String {
    let hex = d.trim_start_matches("sha256:");
    format!("sha256:{}", &hex[..hex.len().min(12)])
}

/// Encodes bytes as base64 (for JSON output of raw record data).
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn release(n: u32) -> Release {
        Release {
            app: "shop".into(),
            env: "dev".into(),
            revision: n,
            status: ReleaseStatus::Deployed,
            tag: Some("abc".into()),
            commit: None,
            images: vec![],
            previous: None,
            restores: None,
            started_at: "2026-01-01T00:00:00Z".into(),
            finished_at: None,
            description: String::new(),
            digest: "sha256:00".into(),
            manifests: vec![json!({"kind":"ConfigMap","metadata":{"name":"a"}})],
            adopted: Vec::new(),
        }
    }

    #[test]
    fn records_round_trip_compressed() {
        let r = release(3);
        let bytes = encode(&r).unwrap();
        assert_eq!(decode("x", &bytes).unwrap(), r);
        assert!(decode("x", b"not gzip").is_err());
        assert_eq!(
            record_name("shop", "dev", 3),
            "ferry.release.v1.shop.dev.v3"
        );
    }

    #[test]
    fn current_is_the_newest_deployed() {
        let mut h = vec![release(1), release(2), release(3)];
        h[1].status = ReleaseStatus::Superseded;
        h[2].status = ReleaseStatus::Failed;
        assert_eq!(current(&h).map(|r| r.revision), Some(1));
    }
}
