//! The registry client: the OCI distribution API over reqwest, with authentication (Basic and
//! the Bearer token realm with a per-scope token cache), retries and digest checks.
//!
//! Every request goes through one place (`Client::execute`): it attaches the right `Authorization` for
//! the request's scopes (learned from the registry's first `WWW-Authenticate` challenge, then
//! sent up front), answers one 401 by (re)authenticating, and retries transport failures and
//! 408/429/5xx with backoff, honouring `Retry-After`. Requests with streamed bodies (blob
//! uploads) cannot be replayed; the upload module resumes them instead.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt as _, TryStreamExt as _};
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, LINK, LOCATION};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use url::Url;

use crate::auth::{Anonymous, Credential, SharedAuth};
use crate::clock::{FixedClock, SharedClock};
use crate::error::{Error, Result};
use crate::manifest::{Descriptor, MANIFEST_ACCEPT, MAX_MANIFEST_BYTES, Manifest};
use crate::reference::{Digest, ImageRef};
use crate::retry::{RetryPolicy, is_dns_failure, retryable_error, retryable_status};
use crate::token::{Scope, TokenCache, normalise, parse_scope_param};

/// A stream of blob bytes.
pub type BlobStream = futures::stream::BoxStream<'static, std::io::Result<Bytes>>;

/// `http` for loopback registries (`localhost`, `127.0.0.0/8`, `::1`), as Docker does for its
/// implicitly insecure registries; `https` for everything else.
pub fn default_scheme(registry: &str) -> &'static str {
    if is_loopback(registry) {
        "http"
    } else {
        "https"
    }
}

fn is_loopback(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        registry.split(':').next().unwrap_or(registry)
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Counters of what a client did, for reports and for the tests that assert on them.
#[derive(Debug, Default)]
pub struct Stats {
    requests: AtomicU64,
    retries: AtomicU64,
    token_requests: AtomicU64,
    blob_bytes_uploaded: AtomicU64,
    uploads_resumed: AtomicU64,
    uploads_restarted: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct StatsSnapshot {
    /// HTTP requests sent (including retries).
    pub requests: u64,
    /// Requests repeated after a failure or a "try again" status.
    pub retries: u64,
    /// Tokens fetched from token realms.
    pub token_requests: u64,
    /// Blob bytes sent in upload bodies (including bytes re-sent after an interruption).
    pub blob_bytes_uploaded: u64,
    /// Interrupted uploads continued in the same session, where the registry had got to.
    pub uploads_resumed: u64,
    /// Interrupted uploads started again in a new session (the registry dropped the old one).
    pub uploads_restarted: u64,
}

impl StatsSnapshot {
    /// The counts since `earlier`.
    #[must_use]
    pub fn since(&self, earlier: &StatsSnapshot) -> StatsSnapshot {
        StatsSnapshot {
            requests: self.requests - earlier.requests,
            retries: self.retries - earlier.retries,
            token_requests: self.token_requests - earlier.token_requests,
            blob_bytes_uploaded: self.blob_bytes_uploaded - earlier.blob_bytes_uploaded,
            uploads_resumed: self.uploads_resumed - earlier.uploads_resumed,
            uploads_restarted: self.uploads_restarted - earlier.uploads_restarted,
        }
    }
}

impl Stats {
    fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            requests: self.requests.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            token_requests: self.token_requests.load(Ordering::Relaxed),
            blob_bytes_uploaded: self.blob_bytes_uploaded.load(Ordering::Relaxed),
            uploads_resumed: self.uploads_resumed.load(Ordering::Relaxed),
            uploads_restarted: self.uploads_restarted.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn add_uploaded(&self, n: u64) {
        self.blob_bytes_uploaded.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn add_resumed(&self) {
        self.uploads_resumed.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add_restarted(&self) {
        self.uploads_restarted.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }
}

/// What a registry asked for on its first challenge.
#[derive(Clone)]
enum HostAuth {
    /// HTTP Basic with this header (or anonymous when `None`).
    Basic(Option<HeaderValue>),
    /// The token realm flow.
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

struct Inner {
    http: reqwest::Client,
    auth: SharedAuth,
    tokens: TokenCache,
    hosts: Mutex<HashMap<String, HostAuth>>,
    retry: RetryPolicy,
    plain_http: Vec<String>,
    clock: SharedClock,
    stats: Stats,
    max_manifest_bytes: u64,
    answer_timeout: Duration,
}

/// How long ferry waits, by default, for a registry (or its token service) to answer a request,
/// and how long a body or a blob transfer may go without moving a byte. A registry that accepts
/// the connection and never answers fails the command instead of hanging it; a stalled upload or
/// download is dropped and resumed; a small answer (manifest, token, tag list) that stalls
/// mid-body is requested again, then fails.
pub const DEFAULT_ANSWER_TIMEOUT: Duration = Duration::from_secs(120);

/// The most ferry reads of a token answer or an error message.
const MAX_SMALL_BODY_BYTES: u64 = 1024 * 1024;

/// The most ferry reads of one page of a tag list (1,000 tags of up to 128 characters, quoted,
/// fit in well under this).
const MAX_TAG_PAGE_BYTES: u64 = 16 * 1024 * 1024;

/// A registry client. Cheap to clone; clones share connections, tokens and counters.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("auth", &self.inner.auth)
            .field("tokens", &self.inner.tokens)
            .field("retry", &self.inner.retry)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Client`].
#[must_use]
pub struct ClientBuilder {
    http: Option<reqwest::Client>,
    auth: SharedAuth,
    retry: RetryPolicy,
    plain_http: Vec<String>,
    clock: SharedClock,
    max_manifest_bytes: u64,
    user_agent: String,
    answer_timeout: Duration,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("auth", &self.auth)
            .field("retry", &self.retry)
            .field("plain_http", &self.plain_http)
            .finish_non_exhaustive()
    }
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            http: None,
            auth: Arc::new(Anonymous),
            retry: RetryPolicy::default(),
            plain_http: Vec::new(),
            clock: Arc::new(FixedClock(std::time::UNIX_EPOCH)),
            max_manifest_bytes: MAX_MANIFEST_BYTES,
            user_agent: concat!("ferry/", env!("CARGO_PKG_VERSION")).to_owned(),
            answer_timeout: DEFAULT_ANSWER_TIMEOUT,
        }
    }
}

impl ClientBuilder {
    /// Where credentials come from (default: anonymous).
    pub fn auth(mut self, auth: SharedAuth) -> Self {
        self.auth = auth;
        self
    }

    /// The retry policy.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Talk plain HTTP to `registry` (loopback registries always are).
    pub fn plain_http(mut self, registry: &str) -> Self {
        self.plain_http.push(registry.to_owned());
        self
    }

    /// The wall clock (for `Retry-After` dates). Without one, dates are ignored in favour of
    /// the backoff.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The largest manifest accepted (default [`MAX_MANIFEST_BYTES`]).
    pub fn max_manifest_bytes(mut self, max: u64) -> Self {
        self.max_manifest_bytes = max;
        self
    }

    /// How long to wait for the answer (status and headers) to a request, how long reading an
    /// answer's body (a manifest, a token, a tag list, an error message) may go without a byte,
    /// and how long a blob upload or download may go without progress (default
    /// [`DEFAULT_ANSWER_TIMEOUT`]). A transfer that keeps moving is never cut: a large blob on a
    /// slow link takes what it takes. A body that stalls is requested again (GETs only), with
    /// the retry policy's backoff, then fails with [`Error::Stalled`].
    pub fn answer_timeout(mut self, limit: Duration) -> Self {
        self.answer_timeout = limit;
        self
    }

    /// Use this HTTP client (its timeouts, proxy and TLS settings).
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// The `User-Agent` (ignored when an HTTP client is given).
    pub fn user_agent(mut self, ua: impl Into<String>) -> Self {
        self.user_agent = ua.into();
        self
    }

    /// The client.
    pub fn build(self) -> Result<Client> {
        let http = match self.http {
            Some(h) => h,
            None => default_http_client(&self.user_agent)?,
        };
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                auth: self.auth,
                tokens: TokenCache::default(),
                hosts: Mutex::new(HashMap::new()),
                retry: self.retry,
                plain_http: self.plain_http,
                clock: self.clock,
                stats: Stats::default(),
                max_manifest_bytes: self.max_manifest_bytes,
                answer_timeout: self.answer_timeout,
            }),
        })
    }
}

/// The HTTP client ferry uses by default: rustls, HTTP/1.1 and HTTP/2, a connect timeout and
/// TCP keep-alive, redirects followed (blob downloads are redirected to storage; reqwest drops
/// the `Authorization` header when a redirect leaves the host). No read timeout: a large
/// upload on a slow link reads nothing for minutes, legitimately; silence and stalls are caught
/// by the client's answer timeout instead.
pub fn default_http_client(user_agent: &str) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(user_agent)
        .connect_timeout(Duration::from_secs(15))
        .tcp_keepalive(Duration::from_secs(30))
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| Error::Connect {
            registry: "(none)".to_owned(),
            operation: "building the HTTP client".to_owned(),
            source: e,
        })
}

/// One request, replayable (its body is in memory).
pub(crate) struct Request<'a> {
    method: Method,
    url: Url,
    headers: HeaderMap,
    body: Option<Bytes>,
    registry: &'a str,
    scopes: &'a [Scope],
    operation: &'a str,
}

impl<'a> Request<'a> {
    /// `method url` on `image`'s registry, authorised for `scopes`; no extra header, no body.
    fn new(
        method: Method,
        url: Url,
        image: &'a ImageRef,
        scopes: &'a [Scope],
        operation: &'a str,
    ) -> Self {
        Request {
            method,
            url,
            headers: HeaderMap::new(),
            body: None,
            registry: image.registry(),
            scopes,
            operation,
        }
    }

    fn header(mut self, name: http::header::HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// An empty body, announced (`POST` and `PUT` without one are refused by some registries).
    fn empty_body(self) -> Self {
        self.header(CONTENT_LENGTH, HeaderValue::from_static("0"))
    }

    fn body(mut self, body: Bytes) -> Self {
        self.body = Some(body);
        self
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    token: Option<SecretString>,
    #[serde(default)]
    access_token: Option<SecretString>,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorItem>,
}

#[derive(Deserialize)]
struct ErrorItem {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct TagList {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

/// The result of a cross-repository mount request.
#[derive(Debug)]
pub(crate) enum Mount {
    /// The blob is now in the target repository.
    Mounted,
    /// The registry did not mount and opened an upload session instead.
    Upload(Url),
}

impl Client {
    /// A builder.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// Counters so far.
    pub fn stats(&self) -> StatsSnapshot {
        self.inner.stats.snapshot()
    }

    pub(crate) fn counters(&self) -> &Stats {
        &self.inner.stats
    }

    pub(crate) fn retry_policy(&self) -> RetryPolicy {
        self.inner.retry
    }

    fn scheme(&self, registry: &str) -> &'static str {
        if self.inner.plain_http.iter().any(|h| h == registry) {
            "http"
        } else {
            default_scheme(registry)
        }
    }

    /// `SCHEME://HOST/v2/` for a registry.
    pub(crate) fn base_url(&self, image: &ImageRef) -> Result<Url> {
        let text = format!(
            "{}://{}/v2/",
            self.scheme(image.registry()),
            image.api_host()
        );
        Url::parse(&text).map_err(|_| {
            Error::Reference(crate::reference::ReferenceError::InvalidDomain(
                image.registry().to_owned(),
            ))
        })
    }

    fn url(&self, image: &ImageRef, path: &str) -> Result<Url> {
        let base = self.base_url(image)?;
        base.join(&format!("{}/{path}", image.repository()))
            .map_err(|_| {
                Error::Reference(crate::reference::ReferenceError::InvalidPath(
                    image.repository().to_owned(),
                ))
            })
    }

    /// Sends a replayable request with authentication and retries. The caller interprets the
    /// final status (a 401 that survived re-authentication, a 5xx that survived the retries).
    pub(crate) async fn execute(&self, req: Request<'_>) -> Result<reqwest::Response> {
        let mut attempt = 0u32;
        let mut reauthenticated = false;
        loop {
            let sent_auth = self.authorization(req.registry, req.scopes).await?;
            let mut builder = self
                .inner
                .http
                .request(req.method.clone(), req.url.clone())
                .headers(req.headers.clone());
            if let Some(h) = &sent_auth {
                builder = builder.header(AUTHORIZATION, h.clone());
            }
            if let Some(body) = &req.body {
                builder = builder.body(body.clone());
            }
            self.inner.stats.requests.fetch_add(1, Ordering::Relaxed);
            let Ok(sent) = tokio::time::timeout(self.inner.answer_timeout, builder.send()).await
            else {
                // Not retried: a registry silent this long is down, and retrying would only
                // multiply the wait.
                return Err(self.no_answer(req.registry, req.operation));
            };
            match sent {
                Err(err) => {
                    if retryable_error(&err) && attempt < self.inner.retry.max_retries {
                        let delay = self.inner.retry.backoff(attempt);
                        tracing::debug!(
                            operation = req.operation,
                            attempt,
                            ?delay,
                            error = %err.without_url_ref(),
                            "request failed; retrying"
                        );
                        attempt += 1;
                        self.inner.stats.add_retry();
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    return Err(self.transport_error(req.registry, req.operation, err));
                }
                Ok(response) => {
                    let status = response.status();
                    tracing::trace!(method = %req.method, path = req.url.path(), %status, "registry answered");
                    if status == StatusCode::UNAUTHORIZED && !reauthenticated {
                        reauthenticated = true;
                        let headers = response.headers().clone();
                        if self
                            .on_unauthorized(req.registry, req.scopes, &headers, sent_auth.as_ref())
                            .await?
                        {
                            continue;
                        }
                        return Ok(response);
                    }
                    if retryable_status(status) && attempt < self.inner.retry.max_retries {
                        let now = self.inner.clock.now();
                        if let Some(delay) =
                            self.inner
                                .retry
                                .delay_after(attempt, response.headers(), now)
                        {
                            tracing::debug!(
                                operation = req.operation,
                                %status,
                                attempt,
                                ?delay,
                                "registry asked to try again"
                            );
                            attempt += 1;
                            self.inner.stats.add_retry();
                            tokio::time::sleep(delay).await;
                            continue;
                        }
                    }
                    return Ok(response);
                }
            }
        }
    }

    /// Reads a whole (small) body: `what` for messages, at most `max` bytes (`too_large` makes
    /// the error past that). Every chunk must come within the answer timeout: a registry that
    /// sends the headers and then stalls mid-body fails with [`Error::Stalled`] instead of
    /// hanging. A body cut by the transport is an [`Error::Connect`]; both are worth a retry
    /// ([`Client::retry_body`]).
    async fn read_body(
        &self,
        response: reqwest::Response,
        registry: &str,
        operation: &str,
        what: &str,
        max: u64,
        too_large: impl FnOnce(u64) -> Error,
    ) -> Result<Bytes> {
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        loop {
            let next = tokio::time::timeout(self.inner.answer_timeout, stream.next())
                .await
                .map_err(|_| Error::Stalled {
                    registry: registry.to_owned(),
                    operation: operation.to_owned(),
                    what: what.to_owned(),
                    received: body.len() as u64,
                    seconds: self.inner.answer_timeout.as_secs_f64(),
                })?;
            let Some(chunk) = next else {
                return Ok(Bytes::from(body));
            };
            let chunk = chunk.map_err(|e| self.transport_error(registry, operation, e))?;
            body.extend_from_slice(&chunk);
            if body.len() as u64 > max {
                return Err(too_large(body.len() as u64));
            }
        }
    }

    /// After a body read failed with `err`: when it is a stall or a broken transfer and
    /// retries are left, waits the backoff and returns `Ok` (send the request again);
    /// otherwise returns the error.
    async fn retry_body(&self, attempt: &mut u32, err: Error, operation: &str) -> Result<()> {
        let transient = matches!(err, Error::Stalled { .. } | Error::Connect { .. });
        if !transient || *attempt >= self.inner.retry.max_retries {
            return Err(err);
        }
        let delay = self.inner.retry.backoff(*attempt);
        tracing::debug!(operation, attempt = *attempt, ?delay, error = %err, "reading the answer failed; retrying");
        *attempt += 1;
        self.inner.stats.add_retry();
        tokio::time::sleep(delay).await;
        Ok(())
    }

    /// How long a request may go without an answer, and a transfer without progress.
    pub(crate) fn answer_timeout(&self) -> Duration {
        self.inner.answer_timeout
    }

    /// The registry took longer than the answer timeout.
    pub(crate) fn no_answer(&self, registry: &str, operation: &str) -> Error {
        Error::NoAnswer {
            registry: registry.to_owned(),
            operation: operation.to_owned(),
            seconds: self.inner.answer_timeout.as_secs_f64(),
        }
    }

    pub(crate) fn transport_error(
        &self,
        registry: &str,
        operation: &str,
        err: reqwest::Error,
    ) -> Error {
        let dns = is_dns_failure(&err);
        Error::Connect {
            registry: registry.to_owned(),
            operation: if dns {
                format!("{operation}: the host name does not resolve")
            } else {
                operation.to_owned()
            },
            source: err.without_url(),
        }
    }

    /// The `Authorization` header to send for `scopes`, when the registry's scheme is known.
    pub(crate) async fn authorization(
        &self,
        registry: &str,
        scopes: &[Scope],
    ) -> Result<Option<HeaderValue>> {
        let state = self
            .inner
            .hosts
            .lock()
            .expect("host auth lock")
            .get(registry)
            .cloned();
        match state {
            None => Ok(None),
            Some(HostAuth::Basic(header)) => Ok(header),
            Some(HostAuth::Bearer { realm, service }) => {
                if let Some(h) = self.inner.tokens.get(registry, scopes) {
                    return Ok(Some(h));
                }
                let scopes = normalise(scopes);
                self.fetch_token(registry, &realm, service.as_deref(), scopes)
                    .await
                    .map(Some)
            }
        }
    }

    /// Handles a 401: learns the challenge and gets a new credential or token. Returns whether
    /// a retry can succeed.
    async fn on_unauthorized(
        &self,
        registry: &str,
        scopes: &[Scope],
        headers: &HeaderMap,
        sent: Option<&HeaderValue>,
    ) -> Result<bool> {
        if let Some(sent) = sent {
            self.inner.tokens.remove(registry, sent);
        }
        let Some(challenge) = parse_challenge(headers) else {
            return Ok(false);
        };
        match challenge {
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                self.inner.hosts.lock().expect("host auth lock").insert(
                    registry.to_owned(),
                    HostAuth::Bearer {
                        realm: realm.clone(),
                        service: service.clone(),
                    },
                );
                let mut wanted = scopes.to_vec();
                if let Some(scope) = scope {
                    wanted.extend(parse_scope_param(&scope));
                }
                if sent.is_some() {
                    // The token we sent was refused: the login may have expired.
                    self.inner.auth.invalidate(registry);
                }
                self.fetch_token(registry, &realm, service.as_deref(), normalise(&wanted))
                    .await?;
                Ok(true)
            }
            Challenge::Basic => {
                if sent.is_some() {
                    // Our Basic credentials were refused; fetching them again will not help,
                    // except for sources whose logins expire.
                    self.inner.auth.invalidate(registry);
                }
                let header = match self.credential(registry).await? {
                    Credential::Anonymous => None,
                    Credential::Basic { username, password } => {
                        Some(basic_header(&username, &password))
                    }
                    other => {
                        return Err(Error::Unauthorized {
                            registry: registry.to_owned(),
                            operation: "authentication".to_owned(),
                            detail: format!(
                                "the registry wants HTTP Basic credentials, but the configured credential is an {}",
                                other.describe()
                            ),
                        });
                    }
                };
                let retry = header.is_some();
                self.inner
                    .hosts
                    .lock()
                    .expect("host auth lock")
                    .insert(registry.to_owned(), HostAuth::Basic(header));
                Ok(retry)
            }
        }
    }

    async fn credential(&self, registry: &str) -> Result<Credential> {
        match self.inner.auth.credential(registry).await {
            Ok(c) => Ok(c),
            Err(e) if e.is_not_configured() => Ok(Credential::Anonymous),
            Err(e) => Err(e.into()),
        }
    }

    /// The token realm's `GET ?scope=...&service=...` (Basic or anonymous).
    fn token_get(
        &self,
        realm: Url,
        scopes: &[String],
        service: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let mut query: Vec<(&str, &str)> = scopes.iter().map(|s| ("scope", s.as_str())).collect();
        if let Some(s) = service {
            query.push(("service", s));
        }
        self.inner.http.get(realm).query(&query)
    }

    async fn fetch_token(
        &self,
        registry: &str,
        realm: &str,
        service: Option<&str>,
        scopes: Vec<Scope>,
    ) -> Result<HeaderValue> {
        let credential = self.credential(registry).await?;
        let scope_strings: Vec<String> = scopes.iter().map(Scope::to_scope_string).collect();
        let operation = format!("token request for {}", scope_strings.join(" "));
        let realm_url = Url::parse(realm).map_err(|_| Error::Registry {
            registry: registry.to_owned(),
            operation: operation.clone(),
            status: 401,
            message: format!("the token realm `{realm}` is not a URL"),
        })?;
        let request = match &credential {
            Credential::BearerToken(token) => {
                let header = bearer_header(token.expose_secret())?;
                self.inner
                    .tokens
                    .insert(registry, scopes, header.clone(), Duration::from_secs(60));
                return Ok(header);
            }
            Credential::IdentityToken(refresh) => {
                let mut form = vec![
                    ("grant_type", "refresh_token".to_owned()),
                    ("client_id", "ferry".to_owned()),
                    ("refresh_token", refresh.expose_secret().to_owned()),
                    ("scope", scope_strings.join(" ")),
                ];
                if let Some(s) = service {
                    form.push(("service", s.to_owned()));
                }
                self.inner.http.post(realm_url).form(&form)
            }
            Credential::Basic { username, password } => self
                .token_get(realm_url, &scope_strings, service)
                .basic_auth(username, Some(password.expose_secret())),
            Credential::Anonymous => self.token_get(realm_url, &scope_strings, service),
        };
        // A GET for a token can be sent again when its answer stalls or breaks; the refresh
        // token POST is not repeated.
        let repeatable = !matches!(credential, Credential::IdentityToken(_));
        let mut attempt = 0u32;
        let mut request = request;
        let (status, body) = loop {
            let again = if repeatable {
                request.try_clone()
            } else {
                None
            };
            self.inner
                .stats
                .token_requests
                .fetch_add(1, Ordering::Relaxed);
            self.inner.stats.requests.fetch_add(1, Ordering::Relaxed);
            let response = tokio::time::timeout(self.inner.answer_timeout, request.send())
                .await
                .map_err(|_| self.no_answer(registry, &operation))?
                .map_err(|e| self.transport_error(registry, &operation, e))?;
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                return Err(Error::Unauthorized {
                    registry: registry.to_owned(),
                    operation,
                    detail: format!(
                        "the token service answered {status} for {}: the credentials are wrong or lack access",
                        credential.describe()
                    ),
                });
            }
            if !status.is_success() {
                return Err(Error::Registry {
                    registry: registry.to_owned(),
                    operation,
                    status: status.as_u16(),
                    message: "the token service failed".to_owned(),
                });
            }
            let read = self
                .read_body(
                    response,
                    registry,
                    &operation,
                    &format!("a token from {realm}"),
                    MAX_SMALL_BODY_BYTES,
                    |size| Error::Registry {
                        registry: registry.to_owned(),
                        operation: operation.clone(),
                        status: status.as_u16(),
                        message: format!(
                            "the token service's answer is over {size} bytes; ferry reads at most {MAX_SMALL_BODY_BYTES}"
                        ),
                    },
                )
                .await;
            match (read, again) {
                (Ok(body), _) => break (status, body),
                (Err(e), Some(again)) => {
                    self.retry_body(&mut attempt, e, &operation).await?;
                    request = again;
                }
                (Err(e), None) => return Err(e),
            }
        };
        let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|_| Error::Registry {
            registry: registry.to_owned(),
            operation: operation.clone(),
            status: status.as_u16(),
            message: "the token service's answer is not token JSON".to_owned(),
        })?;
        let token = answer
            .token
            .filter(|t| !t.expose_secret().is_empty())
            .or(answer.access_token)
            .ok_or_else(|| Error::Registry {
                registry: registry.to_owned(),
                operation: operation.clone(),
                status: status.as_u16(),
                message: "the token service's answer has no token".to_owned(),
            })?;
        let header = bearer_header(token.expose_secret())?;
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(60).max(60));
        tracing::debug!(registry, scopes = %scope_strings.join(" "), ?lifetime, "token obtained");
        self.inner
            .tokens
            .insert(registry, scopes, header.clone(), lifetime);
        Ok(header)
    }

    /// Turns an unexpected answer into an error, reading the registry's error JSON.
    pub(crate) async fn error_from(
        &self,
        response: reqwest::Response,
        registry: &str,
        operation: &str,
    ) -> Error {
        let status = response.status();
        // The message is a nicety: a body that stalls, breaks or is huge leaves it empty.
        let body = self
            .read_body(
                response,
                registry,
                operation,
                "an error message",
                MAX_SMALL_BODY_BYTES,
                |_| Error::Registry {
                    registry: registry.to_owned(),
                    operation: operation.to_owned(),
                    status: status.as_u16(),
                    message: String::new(),
                },
            )
            .await
            .unwrap_or_default();
        let message = registry_message(&body);
        match status {
            StatusCode::UNAUTHORIZED => Error::Unauthorized {
                registry: registry.to_owned(),
                operation: operation.to_owned(),
                detail: if message.is_empty() {
                    "authentication required: the credentials are missing, wrong, or lack access"
                        .to_owned()
                } else {
                    format!("{message} (the credentials are missing, wrong, or lack access)")
                },
            },
            StatusCode::FORBIDDEN => Error::Unauthorized {
                registry: registry.to_owned(),
                operation: operation.to_owned(),
                detail: format!("access denied {message}").trim().to_owned(),
            },
            _ => Error::Registry {
                registry: registry.to_owned(),
                operation: operation.to_owned(),
                status: status.as_u16(),
                message: if message.is_empty() {
                    status.canonical_reason().unwrap_or("error").to_owned()
                } else {
                    message
                },
            },
        }
    }

    /// The response when its status is a success; else the error it stands for.
    async fn success(
        &self,
        response: reqwest::Response,
        image: &ImageRef,
        operation: &str,
    ) -> Result<reqwest::Response> {
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(self.error_from(response, image.registry(), operation).await)
        }
    }

    /// Checks that the registry answers and that the credentials work, and caches a token for
    /// `image`'s repository (with push access when `push`), so the requests that follow carry
    /// it from the start. Wrong credentials fail here, before anything is read or written.
    pub async fn login(&self, image: &ImageRef, push: bool) -> Result<()> {
        let operation = format!("log in to {}", image.registry());
        let scopes = [if push {
            Scope::push(image.repository())
        } else {
            Scope::pull(image.repository())
        }];
        let request = Request::new(
            Method::GET,
            self.base_url(image)?,
            image,
            &scopes,
            &operation,
        );
        let response = self.execute(request).await?;
        self.success(response, image, &operation).await.map(drop)
    }

    // ----- manifests -----

    /// `method` on `image`'s manifest (by its digest, else its tag), accepting every manifest
    /// type ferry reads.
    async fn manifest_request(
        &self,
        method: Method,
        image: &ImageRef,
        operation: &str,
    ) -> Result<reqwest::Response> {
        let url = self.url(image, &format!("manifests/{}", image.reference()))?;
        let scopes = [Scope::pull(image.repository())];
        let request = Request::new(method, url, image, &scopes, operation)
            .header(ACCEPT, HeaderValue::from_static(MANIFEST_ACCEPT));
        self.execute(request).await
    }

    /// The digest, media type and size of a manifest, without downloading it; `None` when it
    /// does not exist.
    pub async fn head_manifest(&self, image: &ImageRef) -> Result<Option<Descriptor>> {
        let operation = format!("HEAD manifest {image}");
        let response = self
            .manifest_request(Method::HEAD, image, &operation)
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = self.success(response, image, &operation).await?;
        let headers = response.headers();
        match (
            content_digest(headers),
            content_type(headers),
            header_u64(headers, CONTENT_LENGTH),
        ) {
            (Some(digest), Some(media_type), Some(size)) => Ok(Some(Descriptor {
                media_type,
                digest,
                size,
                platform: None,
            })),
            // Registries that omit the digest on HEAD: fetch and hash.
            _ => self.get_manifest(image).await.map(|m| Some(m.descriptor())),
        }
    }

    /// Downloads a manifest (by the reference's digest, else its tag), within the size limit,
    /// and verifies it against the digest it was asked by or the registry announced.
    pub async fn get_manifest(&self, image: &ImageRef) -> Result<Manifest> {
        let what = image.to_string();
        let operation = format!("GET manifest {image}");
        let max = self.inner.max_manifest_bytes;
        let mut attempt = 0u32;
        let (bytes, announced, hint) = loop {
            let response = self
                .manifest_request(Method::GET, image, &operation)
                .await?;
            if response.status() == StatusCode::NOT_FOUND {
                return Err(Error::NotFound {
                    registry: image.registry().to_owned(),
                    what: format!("manifest {}", image.familiar()),
                });
            }
            let response = self.success(response, image, &operation).await?;
            if let Some(len) = header_u64(response.headers(), CONTENT_LENGTH)
                && len > max
            {
                return Err(Error::ManifestTooLarge {
                    what,
                    size: len,
                    max,
                });
            }
            let announced = content_digest(response.headers());
            let hint = content_type(response.headers());
            let read = self
                .read_body(
                    response,
                    image.registry(),
                    &operation,
                    &format!("manifest {}", image.familiar()),
                    max,
                    |size| Error::ManifestTooLarge {
                        what: what.clone(),
                        size,
                        max,
                    },
                )
                .await;
            match read {
                Ok(bytes) => break (bytes, announced, hint),
                Err(e) => self.retry_body(&mut attempt, e, &operation).await?,
            }
        };
        if let Some(expected) = image.digest().or(announced.as_ref()) {
            let actual = expected.compute_like(&bytes);
            if actual != *expected {
                return Err(Error::DigestMismatch {
                    what: format!("manifest {what}"),
                    expected: expected.clone(),
                    actual,
                });
            }
        }
        let manifest = Manifest::from_bytes(bytes, hint.as_deref(), &what)?;
        Ok(match image.digest() {
            Some(d) if d.algorithm() != manifest.digest.algorithm() => Manifest {
                digest: d.clone(),
                ..manifest
            },
            _ => manifest,
        })
    }

    /// Uploads a manifest under `reference` (a tag or its digest) in `image`'s repository and
    /// checks the digest the registry computed.
    pub async fn put_manifest(
        &self,
        image: &ImageRef,
        reference: &str,
        manifest: &Manifest,
    ) -> Result<()> {
        let operation = format!("PUT manifest {}:{reference}", image.repo_only());
        let url = self.url(image, &format!("manifests/{reference}"))?;
        let scopes = [Scope::push(image.repository())];
        let content_type = HeaderValue::from_str(&manifest.media_type).map_err(|_| {
            Error::UnsupportedMediaType {
                what: "manifest".to_owned(),
                media_type: manifest.media_type.clone(),
            }
        })?;
        let request = Request::new(Method::PUT, url, image, &scopes, &operation)
            .header(CONTENT_TYPE, content_type)
            .body(manifest.bytes.clone());
        let response = self.execute(request).await?;
        let response = self.success(response, image, &operation).await?;
        if let Some(returned) = content_digest(response.headers())
            && returned.algorithm() == manifest.digest.algorithm()
            && returned != manifest.digest
        {
            return Err(Error::DigestMismatch {
                what: format!("manifest stored as {}:{reference}", image.repo_only()),
                expected: manifest.digest.clone(),
                actual: returned,
            });
        }
        Ok(())
    }

    /// All tags of a repository, following pagination.
    pub async fn list_tags(&self, image: &ImageRef) -> Result<Vec<String>> {
        let operation = format!("list tags of {}", image.repo_only());
        let scopes = [Scope::pull(image.repository())];
        let mut url = self.url(image, "tags/list")?;
        url.query_pairs_mut().append_pair("n", "1000");
        let mut tags = Vec::new();
        let mut attempt = 0u32;
        let mut pages = 0u32;
        while pages < 10_000 {
            let request = Request::new(Method::GET, url.clone(), image, &scopes, &operation);
            let response = self.execute(request).await?;
            if response.status() == StatusCode::NOT_FOUND {
                return Err(Error::NotFound {
                    registry: image.registry().to_owned(),
                    what: format!("repository {}", image.repo_only().familiar()),
                });
            }
            let response = self.success(response, image, &operation).await?;
            let next = response
                .headers()
                .get(LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(next_link)
                .and_then(|link| url.join(&link).ok());
            let read = self
                .read_body(
                    response,
                    image.registry(),
                    &operation,
                    "the tag list",
                    MAX_TAG_PAGE_BYTES,
                    |size| Error::Registry {
                        registry: image.registry().to_owned(),
                        operation: operation.clone(),
                        status: 200,
                        message: format!(
                            "a page of the tag list is over {size} bytes; ferry reads at most {MAX_TAG_PAGE_BYTES}"
                        ),
                    },
                )
                .await;
            let body = match read {
                Ok(body) => body,
                Err(e) => {
                    self.retry_body(&mut attempt, e, &operation).await?;
                    continue;
                }
            };
            pages += 1;
            let page: TagList = serde_json::from_slice(&body).map_err(|_| Error::Registry {
                registry: image.registry().to_owned(),
                operation: operation.clone(),
                status: 200,
                message: "the tag list is not JSON".to_owned(),
            })?;
            tags.extend(page.tags.unwrap_or_default());
            match next {
                Some(n) => url = n,
                None => break,
            }
        }
        tags.sort();
        tags.dedup();
        Ok(tags)
    }

    // ----- blobs -----

    /// The size of a blob in `image`'s repository; `None` when it is not there.
    pub async fn head_blob(&self, image: &ImageRef, digest: &Digest) -> Result<Option<u64>> {
        let operation = format!("HEAD blob {} in {}", digest.short(), image.repo_only());
        let url = self.url(image, &format!("blobs/{digest}"))?;
        let scopes = [Scope::pull(image.repository())];
        let request = Request::new(Method::HEAD, url, image, &scopes, &operation);
        let response = self.execute(request).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = self.success(response, image, &operation).await?;
        Ok(Some(
            header_u64(response.headers(), CONTENT_LENGTH).unwrap_or(0),
        ))
    }

    /// Streams a blob from `offset` (a `Range` request; registries that ignore ranges are
    /// handled by skipping).
    pub async fn get_blob(
        &self,
        image: &ImageRef,
        digest: &Digest,
        offset: u64,
    ) -> Result<BlobStream> {
        let operation = format!("GET blob {} from {}", digest.short(), image.repo_only());
        let url = self.url(image, &format!("blobs/{digest}"))?;
        let scopes = [Scope::pull(image.repository())];
        let mut request = Request::new(Method::GET, url, image, &scopes, &operation);
        if offset > 0 {
            request = request.header(
                http::header::RANGE,
                HeaderValue::from_str(&format!("bytes={offset}-")).expect("ascii"),
            );
        }
        let response = self.execute(request).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Err(Error::NotFound {
                registry: image.registry().to_owned(),
                what: format!("blob {digest} in {}", image.repo_only().familiar()),
            });
        }
        let response = self.success(response, image, &operation).await?;
        let partial = response.status() == StatusCode::PARTIAL_CONTENT;
        let stream = response.bytes_stream().map_err(std::io::Error::other);
        if offset > 0 && !partial {
            return Ok(skip_bytes(Box::pin(stream), offset));
        }
        Ok(Box::pin(stream))
    }

    /// Asks the registry to mount `digest` from `from` into `target` (same registry).
    pub(crate) async fn mount_blob(
        &self,
        target: &ImageRef,
        digest: &Digest,
        from: &ImageRef,
    ) -> Result<Mount> {
        let operation = format!(
            "mount blob {} from {} into {}",
            digest.short(),
            from.repo_only(),
            target.repo_only()
        );
        let mut url = self.url(target, "blobs/uploads/")?;
        url.query_pairs_mut()
            .append_pair("mount", &digest.to_string())
            .append_pair("from", from.repository());
        let scopes = normalise(&[
            Scope::push(target.repository()),
            Scope::pull(from.repository()),
        ]);
        let request =
            Request::new(Method::POST, url.clone(), target, &scopes, &operation).empty_body();
        let response = self.execute(request).await?;
        match response.status() {
            StatusCode::CREATED => Ok(Mount::Mounted),
            StatusCode::ACCEPTED => Ok(Mount::Upload(location(
                &response,
                &url,
                &operation,
                target.registry(),
            )?)),
            _ => Err(self
                .error_from(response, target.registry(), &operation)
                .await),
        }
    }

    /// Opens an upload session; returns its location and the registry's minimum chunk size.
    pub(crate) async fn start_upload(&self, image: &ImageRef) -> Result<(Url, Option<u64>)> {
        let operation = format!("start blob upload to {}", image.repo_only());
        let url = self.url(image, "blobs/uploads/")?;
        let scopes = [Scope::push(image.repository())];
        let request =
            Request::new(Method::POST, url.clone(), image, &scopes, &operation).empty_body();
        let response = self.execute(request).await?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(self
                .error_from(response, image.registry(), &operation)
                .await);
        }
        let min_chunk = header_u64(response.headers(), "oci-chunk-min-length");
        Ok((
            location(&response, &url, &operation, image.registry())?,
            min_chunk,
        ))
    }

    /// How many bytes an upload session holds, and its current location; `None` when the
    /// session is gone.
    pub(crate) async fn upload_status(
        &self,
        image: &ImageRef,
        session: &Url,
    ) -> Result<Option<(u64, Url)>> {
        let operation = format!("upload status in {}", image.repo_only());
        let scopes = [Scope::push(image.repository())];
        let request = Request::new(Method::GET, session.clone(), image, &scopes, &operation);
        let response = self.execute(request).await?;
        if !response.status().is_success() {
            return Ok(None);
        }
        let received = response
            .headers()
            .get(http::header::RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(range_end)
            .unwrap_or(0);
        let next = location(&response, session, &operation, image.registry())
            .unwrap_or_else(|_| session.clone());
        Ok(Some((received, next)))
    }

    /// Sends bytes `[start, start+len)` of a blob to an upload session in one PATCH. Not
    /// retried here: the caller resumes. Returns the session's next location.
    pub(crate) async fn patch_upload(
        &self,
        image: &ImageRef,
        session: &Url,
        body: reqwest::Body,
        start: u64,
        len: u64,
    ) -> Result<Url> {
        let operation = format!("upload blob data to {}", image.repo_only());
        let scopes = [Scope::push(image.repository())];
        let auth = self.authorization(image.registry(), &scopes).await?;
        let mut builder = self
            .inner
            .http
            .patch(session.clone())
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, len);
        if len > 0 {
            builder = builder.header(
                http::header::CONTENT_RANGE,
                format!("{start}-{}", start + len - 1),
            );
        }
        if let Some(h) = auth {
            builder = builder.header(AUTHORIZATION, h);
        }
        self.inner.stats.requests.fetch_add(1, Ordering::Relaxed);
        let response = builder
            .body(body)
            .send()
            .await
            .map_err(|e| self.transport_error(image.registry(), &operation, e))?;
        if response.status() == StatusCode::UNAUTHORIZED {
            // The token may have expired during a long upload: learn the challenge and get a
            // new one so the resumed request carries it.
            let headers = response.headers().clone();
            self.on_unauthorized(image.registry(), &scopes, &headers, None)
                .await?;
            return Err(self
                .error_from(response, image.registry(), &operation)
                .await);
        }
        if response.status() != StatusCode::ACCEPTED && !response.status().is_success() {
            return Err(self
                .error_from(response, image.registry(), &operation)
                .await);
        }
        location(&response, session, &operation, image.registry())
    }

    /// Closes an upload session with the blob's digest (`PUT ?digest=`), which makes the
    /// registry verify and commit it.
    pub(crate) async fn finish_upload(
        &self,
        image: &ImageRef,
        session: &Url,
        digest: &Digest,
    ) -> Result<()> {
        let operation = format!("commit blob {} in {}", digest.short(), image.repo_only());
        let scopes = [Scope::push(image.repository())];
        let mut url = session.clone();
        url.query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let request = Request::new(Method::PUT, url, image, &scopes, &operation).empty_body();
        let response = self.execute(request).await?;
        let response = self.success(response, image, &operation).await?;
        if let Some(returned) = content_digest(response.headers())
            && returned != *digest
        {
            return Err(Error::DigestMismatch {
                what: format!("blob committed to {}", image.repo_only()),
                expected: digest.clone(),
                actual: returned,
            });
        }
        Ok(())
    }

    /// Abandons an upload session (best effort: registries also expire them).
    pub(crate) async fn cancel_upload(&self, image: &ImageRef, session: &Url) {
        let scopes = [Scope::push(image.repository())];
        let request = Request::new(
            Method::DELETE,
            session.clone(),
            image,
            &scopes,
            "cancel upload",
        );
        let result = self.execute(request).await;
        if let Err(e) = result {
            tracing::debug!(error = %e, "cancelling an upload session failed");
        }
    }
}

fn basic_header(username: &str, password: &SecretString) -> HeaderValue {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD
        .encode(format!("{username}:{}", password.expose_secret()));
    let mut h =
        HeaderValue::from_str(&format!("Basic {encoded}")).expect("base64 is a valid header");
    h.set_sensitive(true);
    h
}

fn bearer_header(token: &str) -> Result<HeaderValue> {
    let mut h = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| Error::Registry {
        registry: "(token service)".to_owned(),
        operation: "token request".to_owned(),
        status: 200,
        message: "the token has characters not allowed in a header".to_owned(),
    })?;
    h.set_sensitive(true);
    Ok(h)
}

/// The `Docker-Content-Digest` a registry announced, when it is a digest.
fn content_digest(headers: &HeaderMap) -> Option<Digest> {
    let value = headers.get("docker-content-digest")?.to_str().ok()?;
    Digest::parse(value).ok()
}

fn header_u64(headers: &HeaderMap, name: impl http::header::AsHeaderName) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

fn content_type(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    Some(v.split(';').next().unwrap_or(v).trim().to_owned())
}

fn location(
    response: &reqwest::Response,
    base: &Url,
    operation: &str,
    registry: &str,
) -> Result<Url> {
    let value = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Error::Registry {
            registry: registry.to_owned(),
            operation: operation.to_owned(),
            status: response.status().as_u16(),
            message: "the answer has no Location header".to_owned(),
        })?;
    base.join(value).map_err(|_| Error::Registry {
        registry: registry.to_owned(),
        operation: operation.to_owned(),
        status: response.status().as_u16(),
        message: "the Location header is not a URL".to_owned(),
    })
}

/// `0-1023` -> 1024 bytes received. distribution answers `0-0` for an empty session.
fn range_end(value: &str) -> Option<u64> {
    let value = value.trim().trim_start_matches("bytes=");
    let (start, end) = value.split_once('-')?;
    let (start, end): (u64, u64) = (start.parse().ok()?, end.parse().ok()?);
    if start == 0 && end == 0 {
        Some(0)
    } else {
        Some(end + 1)
    }
}

/// The `rel="next"` target of a `Link` header.
fn next_link(value: &str) -> Option<String> {
    value.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params.contains("rel=\"next\"").then(|| {
            target
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
    })
}

fn registry_message(body: &[u8]) -> String {
    let Ok(parsed) = serde_json::from_slice::<ErrorBody>(body) else {
        return String::new();
    };
    let mut text = parsed
        .errors
        .iter()
        .map(|e| match (e.code.is_empty(), e.message.is_empty()) {
            (false, false) => format!("{}: {}", e.code, e.message),
            (false, true) => e.code.clone(),
            _ => e.message.clone(),
        })
        .collect::<Vec<_>>()
        .join("; ");
    if text.len() > 300 {
        let mut cut = 300;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

fn parse_challenge(headers: &HeaderMap) -> Option<Challenge> {
    for value in headers.get_all(http::header::WWW_AUTHENTICATE) {
        let Ok(text) = value.to_str() else { continue };
        let Ok(challenges) = http_auth::parse_challenges(text) else {
            continue;
        };
        for c in challenges {
            if c.scheme.eq_ignore_ascii_case("bearer") {
                let get = |name: &str| {
                    c.params
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v.to_unescaped())
                };
                if let Some(realm) = get("realm") {
                    return Some(Challenge::Bearer {
                        realm,
                        service: get("service"),
                        scope: get("scope"),
                    });
                }
            } else if c.scheme.eq_ignore_ascii_case("basic") {
                return Some(Challenge::Basic);
            }
        }
    }
    None
}

/// Drops the first `n` bytes of a stream (for servers that answer a range request with the
/// whole blob).
fn skip_bytes(stream: BlobStream, n: u64) -> BlobStream {
    let mut left = n;
    Box::pin(stream.filter_map(move |chunk| {
        let out = match chunk {
            Err(e) => Some(Err(e)),
            Ok(bytes) if left >= bytes.len() as u64 => {
                left -= bytes.len() as u64;
                None
            }
            Ok(bytes) => {
                let rest = bytes.slice(left as usize..);
                left = 0;
                Some(Ok(rest))
            }
        };
        futures::future::ready(out)
    }))
}

/// reqwest errors print their URL; ours carry upload-session state, so strip it.
trait WithoutUrlRef {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrlRef for reqwest::Error {
    fn without_url_ref(&self) -> String {
        let mut text = self.to_string();
        if let Some(url) = self.url() {
            text = text.replace(url.as_str(), url.path());
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries_are_plain_http() {
        for r in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5020",
            "[::1]:5000",
            "127.1.2.3",
        ] {
            assert_eq!(default_scheme(r), "http", "{r}");
        }
        for r in [
            "ghcr.io",
            "docker.io",
            "10.0.0.1:5000",
            "localhost.example:1",
        ] {
            assert_eq!(default_scheme(r), "https", "{r}");
        }
    }

    #[test]
    fn challenges_are_parsed() {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull,push""#,
            ),
        );
        match parse_challenge(&h) {
            Some(Challenge::Bearer {
                realm,
                service,
                scope,
            }) => {
                assert_eq!(realm, "https://auth.docker.io/token");
                assert_eq!(service.as_deref(), Some("registry.docker.io"));
                assert_eq!(scope.as_deref(), Some("repository:library/nginx:pull,push"));
            }
            _ => panic!("expected a bearer challenge"),
        }
        let mut h = HeaderMap::new();
        h.insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Basic realm="r""#),
        );
        assert!(matches!(parse_challenge(&h), Some(Challenge::Basic)));
        assert!(parse_challenge(&HeaderMap::new()).is_none());
    }

    #[test]
    fn ranges_links_and_error_bodies() {
        assert_eq!(range_end("0-1023"), Some(1024));
        assert_eq!(range_end("bytes=0-9"), Some(10));
        assert_eq!(range_end("0-0"), Some(0));
        assert_eq!(range_end("junk"), None);
        assert_eq!(
            next_link(r#"</v2/a/tags/list?last=x&n=2>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?last=x&n=2")
        );
        assert_eq!(next_link(r#"</x>; rel="prev""#), None);
        assert_eq!(
            registry_message(br#"{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid","detail":{}}]}"#),
            "MANIFEST_INVALID: manifest invalid"
        );
        assert_eq!(registry_message(b"<html>"), "");
    }

    #[test]
    fn auth_headers_are_sensitive() {
        assert!(basic_header("u", &SecretString::from("p")).is_sensitive());
        assert!(bearer_header("t").unwrap().is_sensitive());
    }

    #[tokio::test]
    async fn skipping_drops_exactly_the_prefix() {
        let chunks: Vec<std::io::Result<Bytes>> = vec![
            Ok(Bytes::from_static(b"abc")),
            Ok(Bytes::from_static(b"defg")),
        ];
        let out: Vec<Bytes> = skip_bytes(Box::pin(futures::stream::iter(chunks)), 4)
            .try_collect()
            .await
            .unwrap();
        assert_eq!(out.concat(), b"efg");
    }
}
