//! Cloudflare (API v4).
//!
//! A small typed client over reqwest rather than the `cloudflare` crate: its 0.14 release
//! (March 2025) has no PATCH and no batch endpoint, no pagination helper, no rate-limit
//! handling, builds on another reqwest major version, and its record type is a closed enum
//! without CAA, HTTPS, SVCB, ... so listing a zone that has such a record fails
//! (cloudflare-rs#219). ferry needs all of those, and uses five endpoints:
//!
//! | what | request |
//! |---|---|
//! | find the zone | `GET /zones?name=ZONE` (`Zone:Read`) |
//! | list records | `GET /zones/ID/dns_records?page=N&per_page=M`, every page |
//! | change records atomically | `POST /zones/ID/dns_records/batch` (all plans; deletes, patches, puts, posts in one database transaction) |
//! | without batch | `POST /zones/ID/dns_records`, `PATCH`/`DELETE /zones/ID/dns_records/RID` |
//!
//! Behaviour: a record set is one Cloudflare record per value; TXT content is sent quoted and
//! read back unquoted; proxied records have TTL 1 ("automatic"), which [`canonicalize`] applies
//! so a proxied record is never "updated" to the configured TTL forever; records ferry writes
//! carry a comment. HTTP 429 is retried after `Retry-After` (bounded), 5xx and transport
//! errors with backoff; 401/403 say which permission the token lacks. Before applying, the
//! records are read again and each change's `old` is checked against them, so a record changed
//! since the plan is refused ([`DnsError::ZoneChanged`]) rather than overwritten. Without the
//! batch endpoint, changes are sent in the planner's order, and within an update new values are
//! added before old ones are removed, so the name keeps resolving if a request fails.
//!
//! [`canonicalize`]: DnsProvider::canonicalize

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use async_trait::async_trait;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::OnceCell;
use url::Url;

use crate::change::{Change, ChangeSet};
use crate::error::DnsError;
use crate::name::DnsName;
use crate::provider::{Capabilities, DnsProvider, NameServer};
use crate::record::{RecordSet, RecordType, quote_txt, unquote_txt};
use crate::rest;
use crate::retry::{AttemptError, RetryPolicy};

const PROVIDER: &str = "cloudflare";
/// Cloudflare's API.
pub const DEFAULT_API_URL: &str = "https://api.cloudflare.com/client/v4";
/// The most changes one batch may hold on the Free plan (3500 on paid plans).
pub const BATCH_LIMIT: usize = 200;

/// A zone on Cloudflare.
#[derive(Clone)]
pub struct CloudflareProvider {
    zone: DnsName,
    token: SecretString,
    base: Url,
    http: reqwest::Client,
    retry: RetryPolicy,
    batch: bool,
    comment: Option<String>,
    per_page: u32,
    zone_info: std::sync::Arc<OnceCell<ZoneInfo>>,
    configured_zone_id: Option<String>,
}

impl fmt::Debug for CloudflareProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudflareProvider")
            .field("zone", &self.zone)
            .field("base", &self.base.as_str())
            .field("token", &"<redacted>")
            .field("batch", &self.batch)
            .finish()
    }
}

#[derive(Clone, Debug, Deserialize)]
struct ZoneInfo {
    id: String,
    name: String,
    #[serde(default)]
    name_servers: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(default)]
    success: bool,
    #[serde(default)]
    errors: Vec<ApiMessage>,
    #[serde(default)]
    result: Value,
    #[serde(default)]
    result_info: Option<ResultInfo>,
}

#[derive(Debug, Deserialize)]
struct ApiMessage {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    message: String,
}

#[derive(Debug, Deserialize)]
struct ResultInfo {
    #[serde(default)]
    page: u32,
    #[serde(default)]
    total_pages: u32,
}

/// A record as the API returns it.
#[derive(Clone, Debug, Deserialize)]
struct CfRecord {
    id: String,
    name: String,
    #[serde(rename = "type")]
    rtype: String,
    #[serde(default)]
    content: String,
    #[serde(default)]
    ttl: u32,
    #[serde(default)]
    proxied: Option<bool>,
}

/// A record as ferry sends it.
#[derive(Clone, Debug, Serialize)]
struct NewRecord {
    #[serde(rename = "type")]
    rtype: String,
    name: String,
    content: String,
    ttl: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    proxied: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
struct Patch {
    id: String,
    #[serde(flatten)]
    record: NewRecord,
}

#[derive(Clone, Debug, Serialize)]
struct Delete {
    id: String,
}

/// The operations a change set turns into.
#[derive(Debug, Default, Serialize)]
struct Batch {
    deletes: Vec<Delete>,
    patches: Vec<Patch>,
    posts: Vec<NewRecord>,
}

impl Batch {
    fn len(&self) -> usize {
        self.deletes.len() + self.patches.len() + self.posts.len()
    }
}

fn proxiable(t: &RecordType) -> bool {
    matches!(t, RecordType::A | RecordType::Aaaa | RecordType::Cname)
}

impl CloudflareProvider {
    /// A provider for `zone`, authenticating with an API token that has `Zone:Read` and
    /// `DNS:Edit` on it.
    pub fn new(zone: DnsName, token: SecretString) -> Self {
        CloudflareProvider {
            zone,
            token,
            base: Url::parse(&format!("{DEFAULT_API_URL}/")).expect("the default API URL is valid"),
            http: rest::default_client(),
            retry: RetryPolicy::default(),
            batch: true,
            comment: Some("managed by ferry".into()),
            per_page: 500,
            zone_info: std::sync::Arc::default(),
            configured_zone_id: None,
        }
    }

    /// Another API base URL (a test server).
    pub fn with_api_url(mut self, url: &str) -> Result<Self, DnsError> {
        let mut base = Url::parse(url)
            .map_err(|e| DnsError::invalid(format!("Cloudflare API URL `{url}`: {e}")))?;
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        self.base = base;
        Ok(self)
    }

    /// The zone's id, instead of looking it up by name.
    #[must_use]
    pub fn with_zone_id(mut self, id: Option<String>) -> Self {
        self.configured_zone_id = id;
        self
    }

    /// The HTTP client to use.
    #[must_use]
    pub fn with_http(mut self, http: reqwest::Client) -> Self {
        self.http = http;
        self
    }

    /// How to retry.
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Whether to use the batch endpoint (atomic; default true).
    #[must_use]
    pub fn with_batch(mut self, batch: bool) -> Self {
        self.batch = batch;
        self
    }

    /// The comment on records ferry writes (`None` for none).
    #[must_use]
    pub fn with_comment(mut self, comment: Option<String>) -> Self {
        self.comment = comment;
        self
    }

    /// Records per page when listing (Cloudflare allows up to 5,000,000; default 500).
    #[must_use]
    pub fn with_page_size(mut self, n: u32) -> Self {
        self.per_page = n.max(1);
        self
    }

    fn url(&self, path: &str) -> Result<Url, DnsError> {
        self.base
            .join(path.trim_start_matches('/'))
            .map_err(|e| DnsError::invalid(format!("Cloudflare API path `{path}`: {e}")))
    }

    /// One request, with retries; returns the envelope of a successful answer.
    async fn call(
        &self,
        operation: &str,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Envelope, DnsError> {
        self.retry
            .run(PROVIDER, operation, || {
                let url = url.clone();
                let method = method.clone();
                async move {
                    let mut req = self
                        .http
                        .request(method, url)
                        .bearer_auth(self.token.expose_secret());
                    if let Some(b) = body {
                        req = req.json(b);
                    }
                    let (status, text) = rest::send(PROVIDER, operation, req).await?;
                    self.envelope(operation, status, &text)
                }
            })
            .await
    }

    /// Reads Cloudflare's envelope: its `errors` say what went wrong.
    fn envelope(
        &self,
        operation: &str,
        status: StatusCode,
        text: &str,
    ) -> Result<Envelope, AttemptError> {
        let env: Option<Envelope> = serde_json::from_str(text).ok();
        let messages = env
            .as_ref()
            .map(|e| {
                e.errors
                    .iter()
                    .map(|m| format!("{} (code {})", m.message, m.code))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| format!("HTTP {status}"));
        let codes: Vec<i64> = env
            .as_ref()
            .map(|e| e.errors.iter().map(|m| m.code).collect())
            .unwrap_or_default();
        if status.is_server_error() {
            return Err(AttemptError::Transient(DnsError::Api {
                provider: PROVIDER,
                operation: operation.to_owned(),
                status: Some(status.as_u16()),
                message: messages,
                retryable: true,
            }));
        }
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(AttemptError::Fatal(DnsError::Unauthorized {
                provider: PROVIDER,
                zone: self.zone.to_string(),
                action: rest::action(operation),
                detail: format!(
                    "{messages}; the API token needs Zone:Read and DNS:Edit permissions on this zone"
                ),
            }));
        }
        // Record conflicts: it exists already, or no longer exists.
        if codes
            .iter()
            .any(|c| matches!(c, 81044 | 81053 | 81057 | 81058))
        {
            return Err(AttemptError::Fatal(DnsError::ZoneChanged {
                provider: PROVIDER,
                detail: messages,
            }));
        }
        match env {
            Some(env) if status.is_success() && env.success => Ok(env),
            _ => Err(AttemptError::Fatal(DnsError::Api {
                provider: PROVIDER,
                operation: operation.to_owned(),
                status: Some(status.as_u16()),
                message: messages,
                retryable: false,
            })),
        }
    }

    async fn zone_info(&self) -> Result<&ZoneInfo, DnsError> {
        self.zone_info
            .get_or_try_init(|| async {
                let mut url = self.url("zones")?;
                match &self.configured_zone_id {
                    Some(id) => {
                        url = self.url(&format!("zones/{id}"))?;
                        let env = self.call("find the zone", Method::GET, url, None).await.map_err(|e| self.zone_error(e))?;
                        let info: ZoneInfo = serde_json::from_value(env.result).map_err(|e| {
                            DnsError::transport(PROVIDER, "find the zone", e)
                        })?;
                        if info.name.trim_end_matches('.').to_ascii_lowercase() != self.zone.as_str() {
                            return Err(DnsError::invalid(format!(
                                "Cloudflare zone id {id} is zone `{}`, not `{}`",
                                info.name, self.zone
                            )));
                        }
                        Ok(info)
                    }
                    None => {
                        url.query_pairs_mut().append_pair("name", self.zone.as_str());
                        let env = self.call("find the zone", Method::GET, url, None).await?;
                        let zones: Vec<ZoneInfo> = serde_json::from_value(env.result)
                            .map_err(|e| DnsError::transport(PROVIDER, "find the zone", e))?;
                        zones
                            .into_iter()
                            .find(|z| z.name.trim_end_matches('.').eq_ignore_ascii_case(self.zone.as_str()))
                            .ok_or_else(|| DnsError::ZoneNotFound {
                                provider: PROVIDER,
                                zone: self.zone.to_string(),
                                detail: "; is it on this Cloudflare account, and may the token read it (Zone:Read)?".into(),
                            })
                    }
                }
            })
            .await
    }

    fn zone_error(&self, e: DnsError) -> DnsError {
        match e {
            DnsError::Api {
                status: Some(404), ..
            } => DnsError::ZoneNotFound {
                provider: PROVIDER,
                zone: self.zone.to_string(),
                detail: "; check zone_id".into(),
            },
            other => other,
        }
    }

    async fn list(&self) -> Result<Vec<CfRecord>, DnsError> {
        let zone_id = self.zone_info().await?.id.clone();
        let mut out = Vec::new();
        let mut page = 1u32;
        loop {
            let mut url = self.url(&format!("zones/{zone_id}/dns_records"))?;
            url.query_pairs_mut()
                .append_pair("page", &page.to_string())
                .append_pair("per_page", &self.per_page.to_string());
            let env = self.call("list records", Method::GET, url, None).await?;
            let records: Vec<CfRecord> = serde_json::from_value(env.result)
                .map_err(|e| DnsError::transport(PROVIDER, "list records", e))?;
            let done = records.is_empty()
                || env
                    .result_info
                    .as_ref()
                    .is_none_or(|i| i.page >= i.total_pages);
            out.extend(records);
            if done {
                return Ok(out);
            }
            page += 1;
            if page > 100_000 {
                return Err(DnsError::invalid(
                    "Cloudflare kept returning pages; giving up",
                ));
            }
        }
    }

    fn group(&self, records: &[CfRecord]) -> Vec<RecordSet> {
        // (name, type) -> (ttl, proxied, values)
        type Grouped = BTreeMap<(DnsName, RecordType), (u32, Option<bool>, Vec<String>)>;
        let mut sets = Grouped::new();
        for r in records {
            let Ok(name) = DnsName::parse(&r.name) else {
                tracing::debug!(name = %r.name, "skipping a record whose name ferry cannot represent");
                continue;
            };
            let Ok(rtype) = r.rtype.parse::<RecordType>() else {
                continue;
            };
            let proxied = if proxiable(&rtype) {
                Some(r.proxied.unwrap_or(false))
            } else {
                None
            };
            let entry = sets
                .entry((name, rtype))
                .or_insert((r.ttl, proxied, Vec::new()));
            entry.2.push(r.content.clone());
        }
        sets.into_iter()
            .filter_map(|((name, rtype), (ttl, proxied, values))| {
                match RecordSet::new(name, rtype, ttl, values) {
                    Ok(set) => Some(set.with_proxied(proxied)),
                    Err(e) => {
                        tracing::debug!(error = %e, "skipping a record ferry cannot represent");
                        None
                    }
                }
            })
            .collect()
    }

    fn new_record(&self, set: &RecordSet, value: &str) -> NewRecord {
        let content = if set.record_type == RecordType::Txt {
            quote_txt(value)
        } else {
            value.to_owned()
        };
        NewRecord {
            rtype: set.record_type.to_string(),
            name: set.name.to_string(),
            content,
            ttl: set.ttl,
            proxied: if proxiable(&set.record_type) {
                set.proxied
            } else {
                None
            },
            comment: self.comment.clone(),
        }
    }

    /// Turns the change set into API operations against the records as they are now,
    /// checking each change's `old` first.
    fn operations(&self, changes: &ChangeSet, live: &[CfRecord]) -> Result<Vec<Batch>, DnsError> {
        let mut by_key: BTreeMap<(DnsName, RecordType), Vec<&CfRecord>> = BTreeMap::new();
        for r in live {
            if let (Ok(n), Ok(t)) = (DnsName::parse(&r.name), r.rtype.parse::<RecordType>()) {
                by_key.entry((n, t)).or_default().push(r);
            }
        }
        let content_of = |r: &CfRecord, t: &RecordType| -> String {
            if *t == RecordType::Txt {
                unquote_txt(&r.content)
            } else {
                crate::record::canonical_value(&self.zone, t, &r.content)
                    .unwrap_or_else(|_| r.content.clone())
            }
        };
        let check = |set: &RecordSet| -> Result<Vec<&CfRecord>, DnsError> {
            let have = by_key
                .get(&(set.name.clone(), set.record_type.clone()))
                .cloned()
                .unwrap_or_default();
            let values: BTreeSet<String> = have
                .iter()
                .map(|r| content_of(r, &set.record_type))
                .collect();
            let wanted: BTreeSet<String> = set.values.iter().cloned().collect();
            if values != wanted {
                return Err(DnsError::ZoneChanged {
                    provider: PROVIDER,
                    detail: format!(
                        "{} holds [{}], not [{}]",
                        set.key(),
                        values.into_iter().collect::<Vec<_>>().join(", "),
                        set.describe_values()
                    ),
                });
            }
            Ok(have)
        };
        // One batch per change (the sequential path sends them in order); the batch path merges
        // them into one request.
        let mut out = Vec::new();
        for change in changes {
            let mut b = Batch::default();
            match change {
                Change::Create { record } => {
                    if by_key.contains_key(&(record.name.clone(), record.record_type.clone())) {
                        return Err(DnsError::ZoneChanged {
                            provider: PROVIDER,
                            detail: format!("{} already exists", record.key()),
                        });
                    }
                    b.posts = record
                        .values
                        .iter()
                        .map(|v| self.new_record(record, v))
                        .collect();
                }
                Change::Update { old, new } => {
                    let have = check(old)?;
                    for r in &have {
                        let v = content_of(r, &old.record_type);
                        if new.values.contains(&v) {
                            let changed = r.ttl != new.ttl
                                || (proxiable(&new.record_type)
                                    && new.proxied.is_some()
                                    && r.proxied != new.proxied);
                            if changed {
                                b.patches.push(Patch {
                                    id: r.id.clone(),
                                    record: self.new_record(new, &v),
                                });
                            }
                        } else {
                            b.deletes.push(Delete { id: r.id.clone() });
                        }
                    }
                    b.posts = new
                        .values
                        .iter()
                        .filter(|v| !old.values.contains(v))
                        .map(|v| self.new_record(new, v))
                        .collect();
                }
                Change::Delete { record } => {
                    b.deletes = check(record)?
                        .iter()
                        .map(|r| Delete { id: r.id.clone() })
                        .collect();
                }
            }
            out.push(b);
        }
        Ok(out)
    }

    async fn send_sequential(
        &self,
        zone_id: &str,
        batches: Vec<Batch>,
        changes: &ChangeSet,
    ) -> Result<(), DnsError> {
        let total = changes.len();
        for (i, b) in batches.into_iter().enumerate() {
            let result: Result<(), DnsError> = async {
                // Add new values, then change, then remove: the name keeps answering.
                for post in &b.posts {
                    let url = self.url(&format!("zones/{zone_id}/dns_records"))?;
                    self.call("create a record", Method::POST, url, Some(&json!(post)))
                        .await?;
                }
                for patch in &b.patches {
                    let url = self.url(&format!("zones/{zone_id}/dns_records/{}", patch.id))?;
                    self.call(
                        "update a record",
                        Method::PATCH,
                        url,
                        Some(&json!(patch.record)),
                    )
                    .await?;
                }
                for delete in &b.deletes {
                    let url = self.url(&format!("zones/{zone_id}/dns_records/{}", delete.id))?;
                    self.call("delete a record", Method::DELETE, url, None)
                        .await?;
                }
                Ok(())
            }
            .await;
            result.map_err(|e| e.after_applied(PROVIDER, i, total, &changes.changes()[i]))?;
        }
        Ok(())
    }
}

#[async_trait]
impl DnsProvider for CloudflareProvider {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn zone(&self) -> &DnsName {
        &self.zone
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            atomic: self.batch,
            cname_at_apex: true,
            alias: false,
            proxied: true,
        }
    }

    fn canonicalize(&self, mut desired: RecordSet) -> Result<RecordSet, DnsError> {
        if !proxiable(&desired.record_type) {
            desired.proxied = None;
        }
        if desired.proxied == Some(true) {
            desired.ttl = 1;
        } else if desired.ttl != 1 {
            // Cloudflare accepts 60 to 86400 (30 on Enterprise), or 1 for automatic.
            desired.ttl = desired.ttl.clamp(60, 86_400);
        }
        Ok(desired)
    }

    async fn records(&self) -> Result<Vec<RecordSet>, DnsError> {
        let records = self.list().await?;
        Ok(self.group(&records))
    }

    async fn apply(&self, changes: &ChangeSet) -> Result<(), DnsError> {
        if changes.is_empty() {
            return Ok(());
        }
        let zone_id = self.zone_info().await?.id.clone();
        let live = self.list().await?;
        let batches = self.operations(changes, &live)?;
        let ops: usize = batches.iter().map(Batch::len).sum();
        if self.batch && ops <= BATCH_LIMIT {
            let mut all = Batch::default();
            for b in batches {
                all.deletes.extend(b.deletes);
                all.patches.extend(b.patches);
                all.posts.extend(b.posts);
            }
            let url = self.url(&format!("zones/{zone_id}/dns_records/batch"))?;
            self.call("apply the batch", Method::POST, url, Some(&json!(all)))
                .await?;
            return Ok(());
        }
        if self.batch {
            tracing::warn!(
                ops,
                limit = BATCH_LIMIT,
                "too many operations for one batch; sending them one by one, in order"
            );
        }
        self.send_sequential(&zone_id, batches, changes).await
    }

    async fn name_servers(&self) -> Result<Vec<NameServer>, DnsError> {
        let info = self.zone_info().await?;
        Ok(info
            .name_servers
            .iter()
            .filter_map(|n| DnsName::parse(n).ok())
            .map(NameServer::Host)
            .collect())
    }
}
