//! Azure DNS, through Azure Resource Manager's REST API (api-version 2018-05-01).
//!
//! There is no Azure SDK crate for DNS worth its weight (the official Rust SDK has no DNS
//! management client), and ferry needs four calls, so this is a small typed client over
//! reqwest:
//!
//! | what | request |
//! |---|---|
//! | the zone's name servers | `GET .../dnsZones/ZONE` |
//! | list record sets | `GET .../dnsZones/ZONE/recordsets`, following `nextLink` |
//! | create or replace a set | `PUT .../dnsZones/ZONE/TYPE/NAME` with `If-None-Match: *` or `If-Match: ETAG` |
//! | delete a set | `DELETE .../dnsZones/ZONE/TYPE/NAME` with `If-Match: ETAG` |
//!
//! The bearer token comes from a caller-supplied [`AccessTokenSource`] for the ARM scope (the CLI
//! adapts ferry-auth's Azure AD credential: a federated OIDC assertion in CI).
//!
//! Azure DNS has no batch: changes are applied one record set at a time, in the planner's
//! order (ownership first, removals last), each guarded by the set's ETag, so a set changed by
//! someone else since it was read is refused (HTTP 412) instead of overwritten. Changing the
//! values of a set is one PUT, so the name keeps resolving; changing a name from A to CNAME
//! cannot be done in place on any provider without a batch, so for that moment the name does
//! not resolve (ferry reports which change failed if one does; see
//! [`DnsError::PartiallyApplied`]). Azure's alias record sets (pointing at an Azure resource)
//! are listed as A/AAAA sets with an alias whose `hosted_zone_id` is the resource id, so they
//! count as records in the way and are never overwritten unless adopted.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Value, json};
use tokio::sync::OnceCell;
use url::Url;

use crate::change::{Change, ChangeSet};
use crate::error::DnsError;
use crate::name::DnsName;
use crate::provider::{Capabilities, DnsProvider, NameServer};
use crate::record::{AliasTarget, RecordSet, RecordType, split_txt};
use crate::rest;
use crate::retry::{AttemptError, RetryPolicy};

const PROVIDER: &str = "azure";
const API_VERSION: &str = "2018-05-01";
/// Azure Resource Manager.
pub const DEFAULT_API_URL: &str = "https://management.azure.com";
/// The scope of ARM tokens.
pub const ARM_SCOPE: &str = "https://management.azure.com/.default";

/// A source of Azure AD access tokens (ferry-auth's credential, or a fixed token).
#[async_trait]
pub trait AccessTokenSource: Send + Sync + fmt::Debug {
    /// A token for `scope`.
    async fn token(&self, scope: &str) -> Result<SecretString, DnsError>;
}

/// A token handed in as it is (from a variable; it expires within the hour).
#[derive(Clone)]
pub struct StaticToken(pub SecretString);

impl fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StaticToken(<redacted>)")
    }
}

#[async_trait]
impl AccessTokenSource for StaticToken {
    async fn token(&self, _scope: &str) -> Result<SecretString, DnsError> {
        Ok(self.0.clone())
    }
}

/// A zone on Azure DNS.
#[derive(Clone)]
pub struct AzureDnsProvider {
    zone: DnsName,
    subscription: String,
    resource_group: String,
    tokens: Arc<dyn AccessTokenSource>,
    base: Url,
    http: reqwest::Client,
    retry: RetryPolicy,
    name_servers: Arc<OnceCell<Vec<String>>>,
}

impl fmt::Debug for AzureDnsProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureDnsProvider")
            .field("zone", &self.zone)
            .field("subscription", &self.subscription)
            .field("resource_group", &self.resource_group)
            .field("tokens", &self.tokens)
            .finish()
    }
}

/// A record set as listed, with its ETag.
#[derive(Clone, Debug)]
struct Listed {
    set: RecordSet,
    etag: Option<String>,
}

fn type_segment(t: &RecordType) -> Option<&'static str> {
    Some(match t {
        RecordType::A => "A",
        RecordType::Aaaa => "AAAA",
        RecordType::Cname => "CNAME",
        RecordType::Txt => "TXT",
        _ => return None,
    })
}

impl AzureDnsProvider {
    /// A provider for `zone` in a subscription and resource group.
    pub fn new(
        zone: DnsName,
        subscription: impl Into<String>,
        resource_group: impl Into<String>,
        tokens: Arc<dyn AccessTokenSource>,
    ) -> Self {
        AzureDnsProvider {
            zone,
            subscription: subscription.into(),
            resource_group: resource_group.into(),
            tokens,
            base: Url::parse(DEFAULT_API_URL).expect("the default API URL is valid"),
            http: rest::default_client(),
            retry: RetryPolicy::default(),
            name_servers: Arc::default(),
        }
    }

    /// Another ARM base URL (a sovereign cloud, or a test server).
    pub fn with_api_url(mut self, url: &str) -> Result<Self, DnsError> {
        self.base = Url::parse(url)
            .map_err(|e| DnsError::invalid(format!("Azure API URL `{url}`: {e}")))?;
        Ok(self)
    }

    /// How to retry.
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The HTTP client.
    #[must_use]
    pub fn with_http(mut self, http: reqwest::Client) -> Self {
        self.http = http;
        self
    }

    fn zone_path(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/dnsZones/{}",
            self.subscription, self.resource_group, self.zone
        )
    }

    fn url(&self, path: &str) -> Result<Url, DnsError> {
        let mut url = self
            .base
            .join(path)
            .map_err(|e| DnsError::invalid(format!("Azure API path `{path}`: {e}")))?;
        url.query_pairs_mut()
            .append_pair("api-version", API_VERSION);
        Ok(url)
    }

    fn set_url(&self, set: &RecordSet) -> Result<Url, DnsError> {
        let t = type_segment(&set.record_type).ok_or_else(|| {
            DnsError::invalid(format!("ferry does not write {} records", set.record_type))
        })?;
        let rel = set.name.relative_to(&self.zone).ok_or_else(|| {
            DnsError::invalid(format!("{} is not in zone {}", set.name, self.zone))
        })?;
        self.url(&format!("{}/{t}/{rel}", self.zone_path()))
    }

    async fn call(
        &self,
        operation: &str,
        method: Method,
        url: Url,
        body: Option<&Value>,
        headers: &[(&'static str, String)],
    ) -> Result<(StatusCode, Value), DnsError> {
        self.retry
            .run(PROVIDER, operation, || {
                let (url, method) = (url.clone(), method.clone());
                async move {
                    let token = self
                        .tokens
                        .token(ARM_SCOPE)
                        .await
                        .map_err(AttemptError::Fatal)?;
                    let mut req = self
                        .http
                        .request(method, url)
                        .bearer_auth(token.expose_secret());
                    for (k, v) in headers {
                        req = req.header(*k, v);
                    }
                    if let Some(b) = body {
                        req = req.json(b);
                    }
                    let (status, text) = rest::send(PROVIDER, operation, req).await?;
                    self.answer(operation, status, &text)
                }
            })
            .await
    }

    /// Reads ARM's answer: its `error.code` and `error.message` say what went wrong.
    fn answer(
        &self,
        operation: &str,
        status: StatusCode,
        text: &str,
    ) -> Result<(StatusCode, Value), AttemptError> {
        let body: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(text).unwrap_or(Value::Null)
        };
        if status.is_success() {
            return Ok((status, body));
        }
        let code = body
            .pointer("/error/code")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let message = body
            .pointer("/error/message")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let detail = if code.is_empty() {
            format!("HTTP {status}")
        } else {
            format!("{code}: {message}")
        };
        let zone = self.zone.to_string();
        Err(match status {
            s if s.is_server_error() => AttemptError::Transient(DnsError::Api {
                provider: PROVIDER,
                operation: operation.to_owned(),
                status: Some(s.as_u16()),
                message: detail,
                retryable: true,
            }),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                AttemptError::Fatal(DnsError::Unauthorized {
                    provider: PROVIDER,
                    zone,
                    action: rest::action(operation),
                    detail: format!(
                        "{detail}; the identity needs the \"DNS Zone Contributor\" role on the zone (or its resource group)"
                    ),
                })
            }
            StatusCode::PRECONDITION_FAILED => AttemptError::Fatal(DnsError::ZoneChanged {
                provider: PROVIDER,
                detail,
            }),
            StatusCode::NOT_FOUND
                if code == "ParentResourceNotFound"
                    || operation.starts_with("list")
                    || operation.starts_with("read") =>
            {
                AttemptError::Fatal(DnsError::ZoneNotFound {
                    provider: PROVIDER,
                    zone,
                    detail: format!(
                        " in subscription {} resource group {} ({detail})",
                        self.subscription, self.resource_group
                    ),
                })
            }
            StatusCode::NOT_FOUND => AttemptError::Fatal(DnsError::ZoneChanged {
                provider: PROVIDER,
                detail,
            }),
            s => AttemptError::Fatal(DnsError::Api {
                provider: PROVIDER,
                operation: operation.to_owned(),
                status: Some(s.as_u16()),
                message: detail,
                retryable: false,
            }),
        })
    }

    fn parse_set(&self, v: &Value) -> Option<Listed> {
        let rel = v.get("name").and_then(Value::as_str)?;
        let name = if rel == "@" {
            self.zone.clone()
        } else {
            DnsName::parse(&format!("{rel}.{}", self.zone)).ok()?
        };
        let rtype: RecordType = v
            .get("type")
            .and_then(Value::as_str)?
            .rsplit('/')
            .next()?
            .parse()
            .ok()?;
        let p = v.get("properties")?;
        let ttl = p
            .get("TTL")
            .and_then(Value::as_u64)
            .and_then(|t| u32::try_from(t).ok())
            .unwrap_or(0);
        let etag = v.get("etag").and_then(Value::as_str).map(str::to_owned);
        let strings = |key: &str, field: &str| -> Vec<String> {
            p.get(key)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|r| r.get(field).and_then(Value::as_str).map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        if let Some(id) = p.pointer("/targetResource/id").and_then(Value::as_str) {
            return Some(Listed {
                set: RecordSet::alias(
                    name.clone(),
                    rtype,
                    AliasTarget {
                        hosted_zone_id: id.to_owned(),
                        dns_name: name,
                        evaluate_target_health: false,
                    },
                ),
                etag,
            });
        }
        let values: Vec<String> = match &rtype {
            RecordType::A => strings("ARecords", "ipv4Address"),
            RecordType::Aaaa => strings("AAAARecords", "ipv6Address"),
            RecordType::Cname => p
                .pointer("/CNAMERecord/cname")
                .and_then(Value::as_str)
                .map(|c| vec![c.to_owned()])
                .unwrap_or_default(),
            RecordType::Txt => p
                .get("TXTRecords")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|r| {
                            r.get("value")
                                .and_then(Value::as_array)
                                .map(|parts| {
                                    parts.iter().filter_map(Value::as_str).collect::<String>()
                                })
                                .unwrap_or_default()
                        })
                        .collect()
                })
                .unwrap_or_default(),
            RecordType::Other(t) => match t.as_str() {
                "NS" => strings("NSRecords", "nsdname"),
                "MX" => p
                    .get("MXRecords")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .map(|r| {
                                format!(
                                    "{} {}",
                                    r.get("preference").and_then(Value::as_u64).unwrap_or(0),
                                    r.get("exchange").and_then(Value::as_str).unwrap_or("")
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                _ => vec![p.to_string()],
            },
        };
        match RecordSet::new(name, rtype, ttl, values) {
            Ok(set) => Some(Listed { set, etag }),
            Err(e) => {
                tracing::debug!(error = %e, "skipping a record set ferry cannot represent");
                None
            }
        }
    }

    async fn list(&self) -> Result<Vec<Listed>, DnsError> {
        let mut url = self.url(&format!("{}/recordsets", self.zone_path()))?;
        url.query_pairs_mut().append_pair("$top", "500");
        let mut out = Vec::new();
        for _ in 0..100_000 {
            let (_, body) = self
                .call("list record sets", Method::GET, url.clone(), None, &[])
                .await?;
            if let Some(items) = body.get("value").and_then(Value::as_array) {
                out.extend(items.iter().filter_map(|v| self.parse_set(v)));
            }
            match body
                .get("nextLink")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                Some(next) => {
                    url = Url::parse(next)
                        .map_err(|e| DnsError::transport(PROVIDER, "list record sets", e))?;
                }
                None => return Ok(out),
            }
        }
        Err(DnsError::invalid("Azure kept returning pages; giving up"))
    }

    fn body(set: &RecordSet) -> Value {
        let mut props = serde_json::Map::new();
        props.insert("TTL".into(), json!(set.ttl));
        props.insert("metadata".into(), json!({"managed-by": "ferry"}));
        match set.record_type {
            RecordType::A => {
                props.insert(
                    "ARecords".into(),
                    json!(
                        set.values
                            .iter()
                            .map(|v| json!({"ipv4Address": v}))
                            .collect::<Vec<_>>()
                    ),
                );
            }
            RecordType::Aaaa => {
                props.insert(
                    "AAAARecords".into(),
                    json!(
                        set.values
                            .iter()
                            .map(|v| json!({"ipv6Address": v}))
                            .collect::<Vec<_>>()
                    ),
                );
            }
            RecordType::Cname => {
                props.insert("CNAMERecord".into(), json!({"cname": set.values.first()}));
            }
            RecordType::Txt => {
                let records: Vec<Value> = set
                    .values
                    .iter()
                    .map(|v| {
                        let parts: Vec<String> = split_txt(v)
                            .into_iter()
                            .map(|b| String::from_utf8_lossy(&b).into_owned())
                            .collect();
                        json!({"value": parts})
                    })
                    .collect();
                props.insert("TXTRecords".into(), json!(records));
            }
            RecordType::Other(_) => {}
        }
        json!({"properties": props})
    }

    /// The precondition that makes `change` refuse to overwrite someone else's change:
    /// `If-None-Match: *` for a create, `If-Match` with the ETag read for an update or delete,
    /// after checking the set as read holds what the plan expected.
    fn precondition(
        change: &Change,
        live: &BTreeMap<crate::record::RecordKey, Listed>,
    ) -> Result<Vec<(&'static str, String)>, DnsError> {
        let changed = |detail: String| DnsError::ZoneChanged {
            provider: PROVIDER,
            detail,
        };
        let expected = match change {
            Change::Create { record } => {
                if live.contains_key(&record.key()) {
                    return Err(changed(format!("{} already exists", record.key())));
                }
                return Ok(vec![("If-None-Match", "*".into())]);
            }
            Change::Update { old, .. } => old,
            Change::Delete { record } => record,
        };
        match live.get(&expected.key()) {
            Some(l) if l.set.values == expected.values && l.set.alias == expected.alias => {
                let if_match = l.etag.clone().map(|etag| ("If-Match", etag));
                Ok(if_match.into_iter().collect())
            }
            Some(l) => Err(changed(format!(
                "{} holds {}, not {}",
                expected.key(),
                l.set.describe_values(),
                expected.describe_values()
            ))),
            None => Err(changed(format!("{} no longer exists", expected.key()))),
        }
    }

    async fn apply_one(
        &self,
        change: &Change,
        precondition: &[(&'static str, String)],
    ) -> Result<(), DnsError> {
        let (operation, method, set, body) = match change {
            Change::Create { record } => (
                "create a record set",
                Method::PUT,
                record,
                Some(Self::body(record)),
            ),
            Change::Update { new, .. } => (
                "update a record set",
                Method::PUT,
                new,
                Some(Self::body(new)),
            ),
            Change::Delete { record } => ("delete a record set", Method::DELETE, record, None),
        };
        let url = self.set_url(set)?;
        self.call(operation, method, url, body.as_ref(), precondition)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl DnsProvider for AzureDnsProvider {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn zone(&self) -> &DnsName {
        &self.zone
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    fn canonicalize(&self, mut desired: RecordSet) -> Result<RecordSet, DnsError> {
        // Azure accepts TTLs up to 2147483647; 0 is allowed but ferry never asks for it.
        desired.ttl = desired.ttl.max(1);
        Ok(desired)
    }

    async fn records(&self) -> Result<Vec<RecordSet>, DnsError> {
        Ok(self.list().await?.into_iter().map(|l| l.set).collect())
    }

    async fn apply(&self, changes: &ChangeSet) -> Result<(), DnsError> {
        if changes.is_empty() {
            return Ok(());
        }
        let live: BTreeMap<_, _> = self
            .list()
            .await?
            .into_iter()
            .map(|l| (l.set.key(), l))
            .collect();
        // Check every change against the zone before the first write: a stale plan changes
        // nothing.
        let preconditions = changes
            .iter()
            .map(|change| Self::precondition(change, &live))
            .collect::<Result<Vec<_>, _>>()?;
        let total = changes.len();
        for (i, (change, precondition)) in changes.iter().zip(&preconditions).enumerate() {
            self.apply_one(change, precondition)
                .await
                .map_err(|e| e.after_applied(PROVIDER, i, total, change))?;
        }
        Ok(())
    }

    async fn name_servers(&self) -> Result<Vec<NameServer>, DnsError> {
        let names = self
            .name_servers
            .get_or_try_init(|| async {
                let (_, body) = self
                    .call(
                        "read the zone",
                        Method::GET,
                        self.url(&self.zone_path())?,
                        None,
                        &[],
                    )
                    .await?;
                Ok::<_, DnsError>(
                    body.pointer("/properties/nameServers")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_owned)
                                .collect()
                        })
                        .unwrap_or_default(),
                )
            })
            .await?;
        Ok(names
            .iter()
            .filter_map(|n| DnsName::parse(n).ok())
            .map(NameServer::Host)
            .collect())
    }
}
