//! A fault-injecting HTTP/1.1 proxy for tests: it sits between a client and a real server,
//! forwards every request as-is (the `Host` header included, so servers that build absolute
//! `Location` URLs point back at the proxy), counts the bytes that pass, and on request injects
//! faults: an error status (with `Retry-After`), a connection dropped part-way through a
//! request body, one dropped part-way through a response body, or a response that stalls
//! part-way through its body. It can also rewrite response headers (a token realm's address).
//! A fault matches on the method and a part of the path, and optionally on the query string
//! ([`Fault::query_contains`], [`Fault::query_lacks`]: a dry-run apply from the real one); a
//! status fault can answer with a chosen body ([`Fault::body`]).
//!
//! ```no_run
//! # async fn demo() {
//! use ferry_testkit::proxy::{Fault, FaultProxy};
//! let proxy = FaultProxy::start("127.0.0.1:5020").await;
//! proxy.add_fault(Fault::status("PATCH", "/blobs/uploads/", 503).retry_after(1));
//! proxy.add_fault(Fault::drop_request_body("PATCH", "/blobs/uploads/", 100_000));
//! // point the client at proxy.addr() ...
//! assert!(proxy.upload_bytes() > 0);
//! # }
//! ```

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, BodyStream, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type ProxyBody = BoxBody<Bytes, BoxError>;

/// What to do to a matching request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultAction {
    /// Answer with this status instead of forwarding (and close the connection).
    Status {
        /// The status code.
        status: u16,
        /// A `Retry-After` in seconds.
        retry_after: Option<u64>,
    },
    /// Forward, but cut both connections after this many request-body bytes. The server's
    /// side is half-closed first and the proxy waits for the server to answer or close, so
    /// the server has finished with the broken request before the client learns of the cut:
    /// what the server made of it is settled however loaded the machine is.
    DropRequestBody(u64),
    /// Forward, but cut the client's connection after this many response-body bytes.
    DropResponseBody(u64),
    /// Forward this many response-body bytes, then send nothing more (the connection stays
    /// open): a stalled download.
    StallResponseBody(u64),
}

/// A fault for requests whose method is `method` and whose path contains `path` (and,
/// optionally, whose query string contains, or lacks, given text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    method: String,
    path: String,
    action: FaultAction,
    times: u32,
    query_has: Vec<String>,
    query_lacks: Vec<String>,
    body: Option<String>,
}

impl Fault {
    /// Answer `status` once.
    pub fn status(method: &str, path: &str, status: u16) -> Self {
        Fault {
            method: method.to_owned(),
            path: path.to_owned(),
            action: FaultAction::Status {
                status,
                retry_after: None,
            },
            times: 1,
            query_has: Vec::new(),
            query_lacks: Vec::new(),
            body: None,
        }
    }

    /// Cut the connection once, after `after` bytes of the request body.
    pub fn drop_request_body(method: &str, path: &str, after: u64) -> Self {
        Fault {
            method: method.to_owned(),
            path: path.to_owned(),
            action: FaultAction::DropRequestBody(after),
            times: 1,
            query_has: Vec::new(),
            query_lacks: Vec::new(),
            body: None,
        }
    }

    /// Cut the connection once, after `after` bytes of the response body.
    pub fn drop_response_body(method: &str, path: &str, after: u64) -> Self {
        Fault {
            method: method.to_owned(),
            path: path.to_owned(),
            action: FaultAction::DropResponseBody(after),
            times: 1,
            query_has: Vec::new(),
            query_lacks: Vec::new(),
            body: None,
        }
    }

    /// Stall the response once, after `after` bytes of its body.
    pub fn stall_response_body(method: &str, path: &str, after: u64) -> Self {
        Fault {
            method: method.to_owned(),
            path: path.to_owned(),
            action: FaultAction::StallResponseBody(after),
            times: 1,
            query_has: Vec::new(),
            query_lacks: Vec::new(),
            body: None,
        }
    }

    /// Add `Retry-After: SECS` to a status fault.
    #[must_use]
    pub fn retry_after(mut self, secs: u64) -> Self {
        if let FaultAction::Status { retry_after, .. } = &mut self.action {
            *retry_after = Some(secs);
        }
        self
    }

    /// Apply to the next `n` matching requests instead of one.
    #[must_use]
    pub fn times(mut self, n: u32) -> Self {
        self.times = n;
        self
    }

    /// Match only requests whose query string (without the `?`) contains `text`, such as
    /// `dryRun=All`. May be given several times: all must be present.
    #[must_use]
    pub fn query_contains(mut self, text: &str) -> Self {
        self.query_has.push(text.to_owned());
        self
    }

    /// Match only requests whose query string does not contain `text` (a request without a
    /// query lacks everything): for instance the real server-side apply, not its dry-run, with
    /// `query_lacks("dryRun")`. May be given several times: none may be present.
    #[must_use]
    pub fn query_lacks(mut self, text: &str) -> Self {
        self.query_lacks.push(text.to_owned());
        self
    }

    /// Answer a status fault with this JSON body instead of the default one (for instance a
    /// Kubernetes `Status` object, as an API server sends with its errors).
    #[must_use]
    pub fn body(mut self, json: &str) -> Self {
        self.body = Some(json.to_owned());
        self
    }

    /// Whether this fault matches a request.
    fn matches(&self, method: &str, path: &str, query: &str) -> bool {
        self.method.eq_ignore_ascii_case(method)
            && path.contains(&self.path)
            && self.query_has.iter().all(|q| query.contains(q.as_str()))
            && !self.query_lacks.iter().any(|q| query.contains(q.as_str()))
    }
}

/// One request that went through the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    /// The method.
    pub method: String,
    /// The path (no query).
    pub path: String,
    /// The status the client got (0 when the connection was cut or forwarding failed).
    pub status: u16,
    /// Whether a fault was injected.
    pub faulted: bool,
}

#[derive(Default)]
struct State {
    faults: Mutex<Vec<Fault>>,
    /// Each request with its query string.
    log: Mutex<Vec<(Logged, String)>>,
    upload_bytes: AtomicU64,
    download_bytes: AtomicU64,
    rewrites: Mutex<Vec<(String, String)>>,
}

impl State {
    /// The action of the first fault matching a request (used up once), with the body a
    /// status fault answers with.
    fn take_fault(
        &self,
        method: &str,
        path: &str,
        query: &str,
    ) -> Option<(FaultAction, Option<String>)> {
        let mut faults = self.faults.lock().expect("faults lock");
        let i = faults.iter().position(|f| f.matches(method, path, query))?;
        let taken = (faults[i].action.clone(), faults[i].body.clone());
        faults[i].times -= 1;
        if faults[i].times == 0 {
            faults.remove(i);
        }
        Some(taken)
    }

    fn log(&self, method: &str, path: &str, query: &str, status: u16, faulted: bool) {
        self.log.lock().expect("log lock").push((
            Logged {
                method: method.to_owned(),
                path: path.to_owned(),
                status,
                faulted,
            },
            query.to_owned(),
        ));
    }
}

/// A running proxy; it stops when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.addr)
            .finish()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// Starts a proxy on a free loopback port, forwarding to `upstream` (`host:port`).
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port for the proxy");
        let addr = listener.local_addr().expect("bound address");
        let state = Arc::new(State::default());
        let upstream = upstream.to_owned();
        let task_state = Arc::clone(&state);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = Arc::clone(&task_state);
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        handle(req, upstream.clone(), Arc::clone(&state))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FaultProxy { addr, state, task }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// Adds a fault; faults are matched in the order added.
    pub fn add_fault(&self, fault: Fault) {
        self.state.faults.lock().expect("faults lock").push(fault);
    }

    /// Replaces `from` with `to` in every response header value from now on: for instance a
    /// token realm's address in `WWW-Authenticate`, to send the token request through another
    /// proxy.
    pub fn rewrite_response_headers(&self, from: &str, to: &str) {
        self.state
            .rewrites
            .lock()
            .expect("rewrites lock")
            .push((from.to_owned(), to.to_owned()));
    }

    /// Faults not yet triggered.
    pub fn pending_faults(&self) -> usize {
        self.state.faults.lock().expect("faults lock").len()
    }

    /// Request-body bytes forwarded for blob uploads (`PATCH`/`PUT`/`POST` on a
    /// `/blobs/uploads/` path).
    pub fn upload_bytes(&self) -> u64 {
        self.state.upload_bytes.load(Ordering::Relaxed)
    }

    /// Response-body bytes forwarded for blob downloads (`GET` on a `/blobs/` path).
    pub fn download_bytes(&self) -> u64 {
        self.state.download_bytes.load(Ordering::Relaxed)
    }

    /// Every request so far.
    pub fn log(&self) -> Vec<Logged> {
        self.state
            .log
            .lock()
            .expect("log lock")
            .iter()
            .map(|(logged, _)| logged.clone())
            .collect()
    }

    /// Every request so far, each with its query string (without the `?`; empty when none).
    pub fn log_with_queries(&self) -> Vec<(Logged, String)> {
        self.state.log.lock().expect("log lock").clone()
    }

    /// Clears the counters and the log.
    pub fn reset(&self) {
        self.state.upload_bytes.store(0, Ordering::Relaxed);
        self.state.download_bytes.store(0, Ordering::Relaxed);
        self.state.log.lock().expect("log lock").clear();
    }
}

fn full(status: u16, retry_after: Option<u64>, body: Option<String>) -> Response<ProxyBody> {
    let mut builder = Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("connection", "close");
    if let Some(secs) = retry_after {
        builder = builder.header("retry-after", secs.to_string());
    }
    let body = body.unwrap_or_else(|| {
        format!(
            r#"{{"errors":[{{"code":"UNAVAILABLE","message":"injected by the test proxy ({status})"}}]}}"#
        )
    });
    builder
        .body(
            Full::new(Bytes::from(body))
                .map_err(|never: Infallible| match never {})
                .boxed(),
        )
        .expect("valid response")
}

enum Phase {
    Open,
    FailNext,
    StallNext,
    Done,
}

/// Wraps a body: counts data bytes into `counter` and, after `limit` bytes, fails (which makes
/// hyper abort the connection), or with `stall`, sends nothing more.
fn metered<B>(
    body: B,
    counter: Option<Arc<State>>,
    upload: bool,
    limit: Option<u64>,
    stall: bool,
) -> ProxyBody
where
    B: hyper::body::Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: Into<BoxError>,
{
    let start = (Box::pin(BodyStream::new(body)), 0u64, Phase::Open);
    let stream = futures::stream::unfold(start, move |(mut stream, seen, phase)| {
        let counter = counter.clone();
        async move {
            use futures::StreamExt as _;
            match phase {
                Phase::Done => return None,
                Phase::FailNext => {
                    let err: BoxError = "connection cut by the test proxy".into();
                    return Some((Err(err), (stream, seen, Phase::Done)));
                }
                Phase::StallNext => {
                    // Until the client gives up and the connection is dropped.
                    std::future::pending::<()>().await;
                    return None;
                }
                Phase::Open => {}
            }
            let frame = match stream.next().await? {
                Ok(frame) => frame,
                Err(e) => return Some((Err(e.into()), (stream, seen, Phase::Done))),
            };
            let mut data = match frame.into_data() {
                Ok(data) => data,
                Err(other) => return Some((Ok(other), (stream, seen, Phase::Open))),
            };
            let mut next = Phase::Open;
            if let Some(limit) = limit
                && seen + data.len() as u64 >= limit
            {
                data.truncate(usize::try_from(limit - seen).unwrap_or(usize::MAX));
                next = if stall {
                    Phase::StallNext
                } else {
                    Phase::FailNext
                };
            }
            if let Some(state) = &counter {
                let n = data.len() as u64;
                let target = if upload {
                    &state.upload_bytes
                } else {
                    &state.download_bytes
                };
                target.fetch_add(n, Ordering::Relaxed);
            }
            let seen = seen + data.len() as u64;
            if data.is_empty() && stall && matches!(next, Phase::StallNext) {
                std::future::pending::<()>().await;
            }
            if data.is_empty() && matches!(next, Phase::FailNext) {
                let err: BoxError = "connection cut by the test proxy".into();
                return Some((Err(err), (stream, seen, Phase::Done)));
            }
            Some((Ok(Frame::data(data)), (stream, seen, next)))
        }
    });
    StreamBody::new(stream).boxed()
}

async fn handle(
    req: Request<Incoming>,
    upstream: String,
    state: Arc<State>,
) -> Result<Response<ProxyBody>, BoxError> {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or_default().to_owned();
    let (fault, fault_body) = state.take_fault(&method, &path, &query).unzip();
    if let Some(FaultAction::Status {
        status,
        retry_after,
    }) = fault
    {
        state.log(&method, &path, &query, status, true);
        return Ok(full(status, retry_after, fault_body.flatten()));
    }
    let upload =
        matches!(method.as_str(), "PATCH" | "PUT" | "POST") && path.contains("/blobs/uploads/");
    let download = method == "GET" && path.contains("/blobs/") && !path.contains("/uploads/");
    if let Some(FaultAction::DropRequestBody(limit)) = fault {
        forward_cut(req, &upstream, limit, upload.then_some(&*state)).await;
        state.log(&method, &path, &query, 0, true);
        return Err("connection cut by the test proxy".into());
    }
    let (response_limit, stall) = match fault {
        Some(FaultAction::DropResponseBody(n)) => (Some(n), false),
        Some(FaultAction::StallResponseBody(n)) => (Some(n), true),
        _ => (None, false),
    };
    let stream = match TcpStream::connect(&upstream).await {
        Ok(s) => s,
        Err(e) => {
            state.log(&method, &path, &query, 0, false);
            return Err(e.into());
        }
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let (parts, body) = req.into_parts();
    let body = metered(body, upload.then(|| Arc::clone(&state)), true, None, false);
    let response = match sender.send_request(Request::from_parts(parts, body)).await {
        Ok(r) => r,
        Err(e) => {
            state.log(&method, &path, &query, 0, false);
            return Err(e.into());
        }
    };
    state.log(
        &method,
        &path,
        &query,
        response.status().as_u16(),
        response_limit.is_some(),
    );
    let (mut parts, body) = response.into_parts();
    rewrite_headers(&mut parts.headers, &state);
    let body = metered(
        body,
        download.then(|| Arc::clone(&state)),
        false,
        response_limit,
        stall,
    );
    Ok(Response::from_parts(parts, body))
}

/// Applies the proxy's header rewrites to a response's headers.
fn rewrite_headers(headers: &mut hyper::HeaderMap, state: &State) {
    let rewrites = state.rewrites.lock().expect("rewrites lock").clone();
    if rewrites.is_empty() {
        return;
    }
    for value in headers.values_mut() {
        let Ok(text) = value.to_str() else {
            continue;
        };
        let mut text = text.to_owned();
        for (from, to) in &rewrites {
            text = text.replace(from.as_str(), to);
        }
        if let Ok(new) = hyper::header::HeaderValue::from_str(&text) {
            *value = new;
        }
    }
}

/// Sends `req` to `upstream` with its body cut after `limit` bytes (counted into `counter`'s
/// upload bytes), half-closes the connection and waits (at most 30 s) until the server has
/// answered or closed it.
async fn forward_cut(req: Request<Incoming>, upstream: &str, limit: u64, counter: Option<&State>) {
    use futures::StreamExt as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let Ok(mut stream) = TcpStream::connect(upstream).await else {
        return;
    };
    let (parts, body) = req.into_parts();
    let chunked = !parts.headers.contains_key(hyper::header::CONTENT_LENGTH);
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut head = format!("{} {target} HTTP/1.1\r\n", parts.method).into_bytes();
    for (name, value) in &parts.headers {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    if stream.write_all(&head).await.is_err() {
        return;
    }
    let mut body = Box::pin(BodyStream::new(body));
    let mut sent = 0u64;
    while sent < limit {
        let Some(Ok(frame)) = body.next().await else {
            break;
        };
        let Ok(mut data) = frame.into_data() else {
            continue;
        };
        data.truncate(usize::try_from(limit - sent).unwrap_or(usize::MAX));
        let framed = if chunked {
            [format!("{:x}\r\n", data.len()).as_bytes(), &data, b"\r\n"].concat()
        } else {
            data.to_vec()
        };
        if data.is_empty() || stream.write_all(&framed).await.is_err() {
            break;
        }
        sent += data.len() as u64;
        if let Some(state) = counter {
            state
                .upload_bytes
                .fetch_add(data.len() as u64, Ordering::Relaxed);
        }
    }
    let _ = stream.shutdown().await;
    let settled = async {
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = stream.read(&mut buf).await
            && n > 0
        {
            answer.extend_from_slice(&buf[..n]);
            if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(30), settled).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_match_on_method_path_and_query() {
        let state = State::default();
        state.faults.lock().unwrap().push(
            Fault::status("PATCH", "/configmaps/one", 500)
                .query_lacks("dryRun")
                .body(r#"{"kind":"Status"}"#)
                .times(2),
        );
        state
            .faults
            .lock()
            .unwrap()
            .push(Fault::status("PATCH", "/configmaps/one", 503).query_contains("dryRun=All"));
        let path = "/api/v1/namespaces/demo/configmaps/one";
        assert_eq!(state.take_fault("GET", path, "").map(|(a, _)| a), None);
        assert_eq!(
            state
                .take_fault("patch", path, "dryRun=All&fieldManager=ferry")
                .map(|(a, _)| a),
            Some(FaultAction::Status {
                status: 503,
                retry_after: None
            })
        );
        assert_eq!(
            state
                .take_fault("PATCH", path, "dryRun=All")
                .map(|(a, _)| a),
            None
        );
        for _ in 0..2 {
            assert_eq!(
                state.take_fault("PATCH", path, "fieldManager=ferry&force=true"),
                Some((
                    FaultAction::Status {
                        status: 500,
                        retry_after: None
                    },
                    Some(r#"{"kind":"Status"}"#.to_owned())
                ))
            );
        }
        assert_eq!(
            state
                .take_fault("PATCH", path, "fieldManager=ferry")
                .map(|(a, _)| a),
            None
        );
        assert!(state.faults.lock().unwrap().is_empty());
    }

    #[test]
    fn a_fault_without_a_query_matcher_matches_any_query() {
        let state = State::default();
        state
            .faults
            .lock()
            .unwrap()
            .push(Fault::drop_response_body("POST", "/secrets", 0));
        assert_eq!(
            state.take_fault("POST", "/api/v1/namespaces/demo/secrets", "fieldManager=x"),
            Some((FaultAction::DropResponseBody(0), None))
        );
    }
}
