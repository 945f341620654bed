//! The HTTP(S) server: connections, routing of non-resource paths, fault injection, the
//! request log, and the controller loop.

use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use crate::clock::{VirtualClock, format_micro_time, timestamp_of, wall_now};
use crate::config::{Fault, SimConfig};
use crate::metrics::{Metrics, RequestRecord};
use crate::state::State;
use crate::status::ApiError;

mod api;
pub(crate) mod discovery;
mod openapi;
pub(crate) mod table;
mod watch_stream;

pub(crate) type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Everything the server, the controllers and the handle share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    pub(crate) clock: VirtualClock,
    pub(crate) config: RwLock<Arc<SimConfig>>,
    pub(crate) metrics: Metrics,
    /// The latest resourceVersion, for watches and persistence.
    pub(crate) changes: watch::Sender<u64>,
    /// Wakes the controller loop.
    pub(crate) kick: Notify,
    pub(crate) shutdown: watch::Sender<bool>,
    pub(crate) fault_rng: Mutex<fastrand::Rng>,
    /// `127.0.0.1:PORT`, for discovery.
    pub(crate) address: String,
}

impl Shared {
    /// Locks the state, with its clock set to now.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.now = self.clock.now();
        state
    }

    /// Tells watchers, the persister and the controllers that state may have changed.
    pub(crate) fn changed(&self, rv: u64) {
        self.changes.send_if_modified(|current| {
            if *current == rv {
                false
            } else {
                *current = rv;
                true
            }
        });
        self.kick.notify_one();
    }

    pub(crate) fn config(&self) -> Arc<SimConfig> {
        Arc::clone(
            &self
                .config
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

/// Resolves once shutdown is signalled (without holding a borrow across awaits).
pub(crate) async fn stopped(rx: &mut watch::Receiver<bool>) {
    loop {
        if *rx.borrow_and_update() {
            return;
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// The answer to a request that is dropped on purpose (fault injection).
#[derive(Debug)]
pub(crate) struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by ferry-sim fault injection")
    }
}

impl std::error::Error for Dropped {}

pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

pub(crate) fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

pub(crate) fn error_response(err: &ApiError) -> Response<Body> {
    let mut response = json_response(
        StatusCode::from_u16(err.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &err.to_status(),
    );
    if let Some(after) = err.retry_after
        && let Ok(v) = HeaderValue::from_str(&after.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

fn text_response(status: StatusCode, content_type: &'static str, text: String) -> Response<Body> {
    let mut response = Response::new(full(text));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// What a request did, for the log and the counters.
#[derive(Debug, Default, Clone)]
pub(crate) struct RequestInfo {
    pub(crate) verb: String,
    pub(crate) group: String,
    pub(crate) resource: String,
    pub(crate) subresource: String,
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) field_manager: String,
    pub(crate) wrote: bool,
    pub(crate) dry_run: bool,
    pub(crate) fault: Option<String>,
}

/// Picks the fault (if any) for a verb.
pub(crate) fn pick_fault(shared: &Shared, verb: &str) -> Option<Fault> {
    let config = shared.config();
    let rates = config.faults.rates_for(verb)?;
    let x = shared
        .fault_rng
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .f64();
    rates.pick(x)
}

/// Answers a faulted request: `Err` drops the connection.
pub(crate) async fn fault_response(
    shared: &Shared,
    fault: Fault,
    info: &mut RequestInfo,
) -> Result<Response<Body>, Dropped> {
    let config = shared.config();
    match fault {
        Fault::Error500 => {
            info.fault = Some("error_500".to_owned());
            Ok(error_response(&ApiError::internal(
                "Internal error occurred: injected by ferry-sim fault injection",
            )))
        }
        Fault::Throttle429 => {
            info.fault = Some("throttle_429".to_owned());
            Ok(error_response(&ApiError::too_many_requests(
                config.faults.retry_after_seconds,
            )))
        }
        Fault::Timeout => {
            info.fault = Some("timeout".to_owned());
            let mut shutdown = shared.shutdown.subscribe();
            tokio::select! {
                () = tokio::time::sleep(config.faults.timeout_after) => {}
                () = stopped(&mut shutdown) => {}
            }
            Ok(error_response(&ApiError::timeout()))
        }
        Fault::Drop => {
            info.fault = Some("drop".to_owned());
            Err(Dropped)
        }
    }
}

/// Handles one request and records it.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Dropped> {
    let path = request.uri().path().to_owned();
    // Observability and health are never faulted nor logged.
    match path.as_str() {
        "/healthz" | "/livez" | "/readyz" => {
            return Ok(text_response(
                StatusCode::OK,
                "text/plain; charset=utf-8",
                "ok".to_owned(),
            ));
        }
        "/metrics" => {
            let controller_writes = shared.lock().controller_writes.clone();
            let text = shared.metrics.snapshot(controller_writes).to_prometheus();
            return Ok(text_response(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                text,
            ));
        }
        "/debug/requests" => {
            let log = shared.metrics.log();
            return Ok(json_response(
                StatusCode::OK,
                &serde_json::to_value(log).unwrap_or_default(),
            ));
        }
        _ => {}
    }
    let seq = shared.metrics.next_seq();
    let wall = format_micro_time(timestamp_of(wall_now()));
    let virtual_time = format_micro_time(shared.clock.now());
    let method = request.method().clone();
    let user_agent = header_text(&request, header::USER_AGENT);
    let mut info = RequestInfo {
        verb: "get".to_owned(),
        ..RequestInfo::default()
    };
    let result = route(&shared, request, &path, &mut info).await;
    let code = match &result {
        Ok(response) => response.status().as_u16(),
        Err(Dropped) => 0,
    };
    let limit = shared.config().request_log_limit;
    shared.metrics.record(
        RequestRecord {
            seq,
            wall_time: wall,
            virtual_time,
            verb: info.verb,
            method: method.to_string(),
            path,
            group: info.group,
            resource: info.resource,
            subresource: info.subresource,
            namespace: info.namespace,
            name: info.name,
            code,
            user_agent,
            field_manager: info.field_manager,
            wrote: info.wrote,
            dry_run: info.dry_run,
            fault: info.fault,
        },
        limit,
    );
    result
}

/// A request header as text (empty when absent or not text).
pub(super) fn header_text<B>(request: &Request<B>, name: header::HeaderName) -> String {
    request
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

async fn route(
    shared: &Arc<Shared>,
    request: Request<Incoming>,
    path: &str,
    info: &mut RequestInfo,
) -> Result<Response<Body>, Dropped> {
    let accept = header_text(&request, header::ACCEPT);
    let segments: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let get_only = |response: Response<Body>| {
        if request.method() == Method::GET || request.method() == Method::HEAD {
            response
        } else {
            error_response(&ApiError::method_not_allowed(format!(
                "the server does not allow this method on the requested resource ({} {path})",
                request.method()
            )))
        }
    };
    match segments.as_slice() {
        ["version"] => {
            return Ok(get_only(json_response(
                StatusCode::OK,
                &discovery::version(),
            )));
        }
        ["openapi", "v2"] => {
            let response = if openapi::wants_v2_protobuf(&accept) {
                let mut response = Response::new(full(openapi::v2_protobuf()));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(openapi::V2_PROTOBUF),
                );
                response
            } else {
                json_response(StatusCode::OK, &openapi::v2_json())
            };
            return Ok(get_only(response));
        }
        ["openapi", "v3"] => {
            let index = openapi::index(&shared.lock().registry);
            return Ok(get_only(json_response(StatusCode::OK, &index)));
        }
        ["openapi", "v3", "api", version] => {
            let doc = openapi::group_version(&shared.lock().registry, "", version);
            return Ok(get_only(doc.map_or_else(
                || error_response(&ApiError::no_route()),
                |d| json_response(StatusCode::OK, &d),
            )));
        }
        ["openapi", "v3", "apis", group, version] => {
            let doc = openapi::group_version(&shared.lock().registry, group, version);
            return Ok(get_only(doc.map_or_else(
                || error_response(&ApiError::no_route()),
                |d| json_response(StatusCode::OK, &d),
            )));
        }
        ["api"] | ["apis"] => {
            let registry = shared.lock().registry.clone();
            let core = segments[0] == "api";
            if discovery::wants_aggregated(&accept) {
                let mut response =
                    json_response(StatusCode::OK, &discovery::aggregated(&registry, core));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(discovery::AGGREGATED_CONTENT_TYPE),
                );
                return Ok(get_only(response));
            }
            let doc = if core {
                discovery::api_versions(&shared.address)
            } else {
                discovery::api_group_list(&registry)
            };
            return Ok(get_only(json_response(StatusCode::OK, &doc)));
        }
        ["api", version] => {
            let doc = discovery::api_resource_list(&shared.lock().registry, "", version);
            return Ok(get_only(doc.map_or_else(
                || error_response(&ApiError::no_route()),
                |d| json_response(StatusCode::OK, &d),
            )));
        }
        ["apis", group] => {
            let doc = discovery::api_group(&shared.lock().registry, group);
            return Ok(get_only(doc.map_or_else(
                || error_response(&ApiError::no_route()),
                |d| json_response(StatusCode::OK, &d),
            )));
        }
        ["apis", group, version] => {
            let doc = discovery::api_resource_list(&shared.lock().registry, group, version);
            return Ok(get_only(doc.map_or_else(
                || error_response(&ApiError::no_route()),
                |d| json_response(StatusCode::OK, &d),
            )));
        }
        ["api", ..] | ["apis", ..] => {}
        _ => return Ok(error_response(&ApiError::no_route())),
    }
    api::handle(shared, request, &segments, info).await
}

/// Runs the controllers: a pass, then sleep until the next due time or a write.
pub(crate) async fn controller_loop(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        let next = {
            let mut state = shared.lock();
            let before = state.store.rv();
            let next = crate::controllers::run_pass(&mut state);
            let after = state.store.rv();
            if after != before {
                shared.changes.send_replace(after);
            }
            next
        };
        let sleep = match next {
            Some(t) => shared.clock.wall_until(t).max(Duration::from_millis(1)),
            None => Duration::from_secs(3600),
        };
        tokio::select! {
            () = shared.kick.notified() => {
                // Let a burst of writes land before the next pass: a pass holds the state lock,
                // and passes back to back would starve the API (real controllers lag their
                // informers by about this much too).
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            () = tokio::time::sleep(sleep) => {}
            () = stopped(&mut shutdown) => return,
        }
    }
}

/// Accepts connections until shutdown.
pub(crate) async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stopped(&mut shutdown) => return,
        };
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let shared = Arc::clone(&shared);
        let tls = tls.clone();
        tokio::spawn(async move {
            let mut shutdown = shared.shutdown.subscribe();
            let service = hyper::service::service_fn({
                let shared = Arc::clone(&shared);
                move |request| handle(Arc::clone(&shared), request)
            });
            let builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            match tls {
                Some(acceptor) => {
                    let Ok(stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    let connection =
                        builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                    tokio::select! {
                        _ = connection => {}
                        () = stopped(&mut shutdown) => {}
                    }
                }
                None => {
                    let connection =
                        builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                    tokio::select! {
                        _ = connection => {}
                        () = stopped(&mut shutdown) => {}
                    }
                }
            }
        });
    }
}
