//! Retries: every request the engine makes goes through one tower retry layer on kube's
//! client. On EKS and AKS, 500s, 503s and reset connections are routine while the control
//! plane is upgraded or an API server restarts; one of them must not fail a deploy, nor leave a
//! release half-applied.
//!
//! Retried: `429` and `503` (after `Retry-After` when the server sends one), `500`, `502` and
//! `504`, and requests whose connection failed (refused, reset, broken, timed out, HTTP/2
//! GOAWAY), with exponential backoff and full jitter, at most [`RetryPolicy::attempts`] times.
//! Every request the engine sends is safe to send again: reads, dry-runs and server-side apply
//! are idempotent; updates carry a resourceVersion and deletes are answered 404 when already
//! done, so a retry of a write the server had applied is told so (409, 404) and the caller
//! re-reads ([`crate::release::RecordStore`] does). Creates the same: 409 AlreadyExists.
//!
//! Written here rather than taken from kube: `kube::client::retry::RetryPolicy` retries only
//! 429, 503 and 504 responses, never a dropped connection or a 500.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use kube::client::Body;

use crate::events::{DeployEvent, SharedEventSink};

/// How often and how long to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all (the first one included).
    pub attempts: u32,
    /// The first backoff's upper bound; each next one doubles it.
    pub base: Duration,
    /// The largest backoff (and the largest `Retry-After` honoured).
    pub cap: Duration,
}

impl Default for RetryPolicy {
    /// 6 attempts, backoff up to 0.2 s, 0.4 s, ... 5 s: about 10 s in the worst case, well
    /// within a control-plane blip.
    fn default() -> Self {
        RetryPolicy {
            attempts: 6,
            base: Duration::from_millis(200),
            cap: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `n` (1 for the first retry): full jitter over
    /// `min(cap, base * 2^(n-1))`.
    pub fn backoff(&self, n: u32, draw: u64) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32 << (n.saturating_sub(1)).min(16))
            .min(self.cap);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(if nanos == 0 { 0 } else { draw % nanos })
    }
}

/// Why a request is worth sending again (None: it is not).
pub fn retry_reason(result: &Result<Response<Body>, kube::Error>) -> Option<String> {
    match result {
        Ok(r) => match r.status() {
            StatusCode::TOO_MANY_REQUESTS
            | StatusCode::INTERNAL_SERVER_ERROR
            | StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT => Some(format!("HTTP {}", r.status().as_u16())),
            _ => None,
        },
        Err(kube::Error::HyperError(e)) => Some(format!("connection: {e}")),
        Err(kube::Error::Service(e)) => Some(format!("connection: {e}")),
        Err(_) => None,
    }
}

/// `Retry-After` in seconds, when the answer has one (capped by `cap`).
fn retry_after(result: &Result<Response<Body>, kube::Error>, cap: Duration) -> Option<Duration> {
    let r = result.as_ref().ok()?;
    let secs: u64 = r
        .headers()
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs).min(cap))
}

fn draw() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x9e37_79b9_7f4a_7c15);
    h.finish()
}

/// A request whose connection failed on every attempt.
#[derive(Debug, thiserror::Error)]
#[error("{request}: no answer after {attempts} attempts")]
struct GaveUp {
    request: String,
    attempts: u32,
    #[source]
    source: kube::Error,
}

/// One request's retry state (tower clones the policy per request).
#[derive(Clone)]
struct Attempts {
    policy: RetryPolicy,
    made: u32,
    sink: Option<SharedEventSink>,
}

impl tower::retry::Policy<Request<Body>, Response<Body>, kube::Error> for Attempts {
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        req: &mut Request<Body>,
        result: &mut Result<Response<Body>, kube::Error>,
    ) -> Option<Self::Future> {
        let reason = retry_reason(result)?;
        self.made += 1;
        if self.made >= self.policy.attempts {
            tracing::info!(
                "{} {}: {reason}; giving up after {} attempts",
                req.method(),
                req.uri().path(),
                self.made
            );
            // A connection that kept failing: the error says which request, and how often.
            if result.is_err() {
                let Err(source) = std::mem::replace(result, Ok(Response::new(Body::empty())))
                else {
                    return None;
                };
                *result = Err(kube::Error::Service(Box::new(GaveUp {
                    request: format!("{} {}", req.method(), req.uri().path()),
                    attempts: self.made,
                    source,
                })));
            }
            return None;
        }
        let delay = retry_after(result, self.policy.cap)
            .unwrap_or_else(|| self.policy.backoff(self.made, draw()));
        tracing::info!(
            "{} {}: {reason}; retrying in {} ms (attempt {} of {})",
            req.method(),
            req.uri().path(),
            delay.as_millis(),
            self.made + 1,
            self.policy.attempts
        );
        if let Some(sink) = &self.sink {
            sink.emit(DeployEvent::Retried {
                request: format!("{} {}", req.method(), req.uri().path()),
                reason,
                attempt: self.made + 1,
            });
        }
        Some(tokio::time::sleep(delay))
    }

    fn clone_request(&mut self, req: &Request<Body>) -> Option<Request<Body>> {
        let body = req.body().try_clone()?;
        let mut out = Request::new(body);
        *out.method_mut() = req.method().clone();
        *out.uri_mut() = req.uri().clone();
        *out.version_mut() = req.version();
        *out.headers_mut() = req.headers().clone();
        Some(out)
    }
}

/// The inner client as a tower service.
#[derive(Clone)]
struct Send(kube::Client);

impl tower::Service<Request<Body>> for Send {
    type Response = Response<Body>;
    type Error = kube::Error;
    type Future =
        Pin<Box<dyn Future<Output = Result<Response<Body>, kube::Error>> + std::marker::Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), kube::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let client = self.0.clone();
        Box::pin(async move { client.send(req).await })
    }
}

/// `client` with every request retried by `policy`; each retry is reported to `sink` (when
/// given) as a [`DeployEvent::Retried`].
pub fn retrying(
    client: &kube::Client,
    policy: RetryPolicy,
    sink: Option<SharedEventSink>,
) -> kube::Client {
    let service = tower::retry::Retry::new(
        Attempts {
            policy,
            made: 0,
            sink,
        },
        Send(client.clone()),
    );
    kube::Client::new(service, client.default_namespace().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_full_jitter_under_a_doubling_cap() {
        let p = RetryPolicy::default();
        for n in 1..10 {
            let ceiling = (p.base * 2u32.pow(n - 1)).min(p.cap);
            for d in [0, 1, 12345, u64::MAX / 3, u64::MAX] {
                assert!(
                    p.backoff(n, d) < ceiling.max(Duration::from_nanos(1)),
                    "{n} {d}"
                );
            }
        }
        assert_eq!(p.backoff(1, 0), Duration::ZERO);
    }

    #[test]
    fn only_transient_answers_are_retried() {
        let answer = |code: u16| {
            Ok::<_, kube::Error>(
                Response::builder()
                    .status(code)
                    .body(Body::empty())
                    .unwrap(),
            )
        };
        for code in [429, 500, 502, 503, 504] {
            assert!(retry_reason(&answer(code)).is_some(), "{code}");
        }
        for code in [200, 201, 400, 403, 404, 409, 422] {
            assert!(retry_reason(&answer(code)).is_none(), "{code}");
        }
        let mut with_header = answer(429);
        with_header
            .as_mut()
            .unwrap()
            .headers_mut()
            .insert(http::header::RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(
            retry_after(&with_header, Duration::from_secs(5)),
            Some(Duration::from_secs(3))
        );
    }
}
