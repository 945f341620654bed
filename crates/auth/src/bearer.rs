//! Short-lived bearer tokens for a Kubernetes API server (EKS, AKS), and a tower layer that puts
//! a fresh one on every request.
//!
//! A [`BearerTokenSource`] hands out a [`BearerToken`] with its expiry; [`TokenCache`] keeps the
//! current one and mints a new one a margin before it expires (the same cache keeps ferry's STS
//! credentials and Azure AD tokens: one refresh-ahead rule for everything that expires).
//! [`BearerAuthLayer`] wraps any
//! `http` service (kube's client stack) and asks the source before each request, so a deploy
//! that runs longer than one token's life never sends an expired token — unlike a kubeconfig
//! with a token baked in.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use secrecy::{ExposeSecret as _, SecretString};

use crate::clock::SharedClock;
use crate::error::{AuthError, BoxError};

/// A bearer token (for a cluster's API server, or an Azure AD access token for a scope), and
/// when it stops being valid.
#[derive(Clone)]
pub struct BearerToken {
    /// The token.
    pub token: SecretString,
    /// When it expires.
    pub expires_at: SystemTime,
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerToken")
            .field("token", &"[redacted]")
            .field("expires_at", &crate::clock::rfc3339(self.expires_at))
            .finish()
    }
}

/// Something that stops being valid at a known time, for [`TokenCache`].
pub trait Expiring {
    /// When it stops being valid.
    fn expires_at(&self) -> SystemTime;
}

impl Expiring for BearerToken {
    fn expires_at(&self) -> SystemTime {
        self.expires_at
    }
}

/// A source of bearer tokens for one cluster.
#[async_trait::async_trait]
pub trait BearerTokenSource: Send + Sync + fmt::Debug {
    /// A token that is valid now and for a while yet.
    async fn bearer_token(&self) -> Result<BearerToken, AuthError>;
}

/// A bearer token source shared between clients.
pub type SharedBearerTokenSource = Arc<dyn BearerTokenSource>;

/// Keeps the current token (or credentials) and replaces it `margin` before it expires, by the
/// injected clock. Concurrent callers wait for one refresh rather than each minting a token.
pub struct TokenCache<T = BearerToken> {
    clock: SharedClock,
    margin: Duration,
    current: tokio::sync::Mutex<Option<T>>,
}

impl<T> fmt::Debug for TokenCache<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("clock", &self.clock)
            .field("margin", &self.margin)
            .finish_non_exhaustive()
    }
}

impl<T: Expiring + Clone> TokenCache<T> {
    /// An empty cache that refreshes `margin` before expiry by `clock`.
    pub fn new(clock: SharedClock, margin: Duration) -> Self {
        TokenCache {
            clock,
            margin,
            current: tokio::sync::Mutex::new(None),
        }
    }

    /// The cached token if it is valid for more than the margin, else a new one from `mint`.
    pub async fn get_or_refresh<F, Fut>(&self, mint: F) -> Result<T, AuthError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, AuthError>>,
    {
        let mut current = self.current.lock().await;
        let now = self.clock.now();
        if let Some(token) = current.as_ref()
            && token.expires_at() > now + self.margin
        {
            return Ok(token.clone());
        }
        let token = mint().await?;
        tracing::debug!(
            expires_at = %crate::clock::rfc3339(token.expires_at()),
            "refreshed a token"
        );
        *current = Some(token.clone());
        Ok(token)
    }
}

/// A tower layer that sets `Authorization: Bearer <token>` on each request from a
/// [`BearerTokenSource`]; the header value is marked sensitive so `http`'s `Debug` hides it.
#[derive(Debug, Clone)]
pub struct BearerAuthLayer {
    source: SharedBearerTokenSource,
}

impl BearerAuthLayer {
    /// A layer that asks `source` for each request.
    pub fn new(source: SharedBearerTokenSource) -> Self {
        BearerAuthLayer { source }
    }
}

impl<S> tower::Layer<S> for BearerAuthLayer {
    type Service = BearerAuth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BearerAuth {
            inner,
            source: Arc::clone(&self.source),
            pending: None,
            ready: None,
        }
    }
}

/// The service [`BearerAuthLayer`] makes.
///
/// The token is fetched in `poll_ready` (the cache makes that cheap), so the wrapped service
/// need not be `Clone` — kube's default stack is a `BoxService`, which is not.
pub struct BearerAuth<S> {
    inner: S,
    source: SharedBearerTokenSource,
    pending: Option<TokenFuture>,
    ready: Option<BearerToken>,
}

type TokenFuture = Pin<Box<dyn Future<Output = Result<BearerToken, AuthError>> + Send>>;

impl<S: fmt::Debug> fmt::Debug for BearerAuth<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerAuth")
            .field("inner", &self.inner)
            .field("source", &self.source)
            .finish()
    }
}

impl<S, B> tower::Service<http::Request<B>> for BearerAuth<S>
where
    S: tower::Service<http::Request<B>>,
    S::Response: Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if self.ready.is_none() {
            let pending = self.pending.get_or_insert_with(|| {
                let source = Arc::clone(&self.source);
                Box::pin(async move { source.bearer_token().await })
            });
            match pending.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(result) => {
                    self.pending = None;
                    self.ready = Some(result?);
                }
            }
        }
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        // Each request takes the token fetched for it by poll_ready; the next one asks again.
        let Some(token) = self.ready.take() else {
            return Box::pin(std::future::ready(Err(
                "BearerAuth called without poll_ready".into(),
            )));
        };
        let value = http::HeaderValue::from_str(&format!("Bearer {}", token.token.expose_secret()));
        let Ok(mut value) = value else {
            return Box::pin(std::future::ready(Err(Box::new(AuthError::Service {
                service: "cluster token",
                message: "the token has characters a header cannot hold".to_owned(),
                source: None,
            }) as BoxError)));
        };
        value.set_sensitive(true);
        req.headers_mut().insert(http::header::AUTHORIZATION, value);
        let fut = self.inner.call(req);
        Box::pin(async move { fut.await.map_err(Into::into) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock as _, ManualClock, from_unix};
    use std::sync::atomic::{AtomicU32, Ordering};
    use tower::{Layer as _, ServiceExt as _};

    #[derive(Debug)]
    struct Counting {
        clock: ManualClock,
        minted: AtomicU32,
        cache: TokenCache,
    }

    #[async_trait::async_trait]
    impl BearerTokenSource for Counting {
        async fn bearer_token(&self) -> Result<BearerToken, AuthError> {
            self.cache
                .get_or_refresh(|| async {
                    let n = self.minted.fetch_add(1, Ordering::SeqCst) + 1;
                    Ok(BearerToken {
                        token: SecretString::from(format!("token-{n}")),
                        expires_at: self.clock.now() + Duration::from_secs(14 * 60),
                    })
                })
                .await
        }
    }

    fn counting() -> Arc<Counting> {
        let clock = ManualClock::new(from_unix(1_800_000_000));
        Arc::new(Counting {
            cache: TokenCache::new(Arc::new(clock.clone()), Duration::from_secs(60)),
            clock,
            minted: AtomicU32::new(0),
        })
    }

    #[tokio::test]
    async fn each_request_carries_a_token_that_is_refreshed_before_it_expires() {
        let source = counting();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen2 = Arc::clone(&seen);
        let echo = tower::service_fn(move |req: http::Request<()>| {
            let auth = req.headers().get(http::header::AUTHORIZATION).cloned();
            seen2.lock().unwrap().push(auth.clone());
            async move { Ok::<_, std::convert::Infallible>(auth) }
        });
        let layer = BearerAuthLayer::new(source.clone());
        let svc = || layer.layer(echo.clone());

        let first = svc()
            .oneshot(http::Request::new(()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.to_str().unwrap(), "Bearer token-1");
        assert!(first.is_sensitive());
        // 12 minutes later the token is still good for 2 more minutes: reused.
        source.clock.advance(Duration::from_secs(12 * 60));
        let again = svc()
            .oneshot(http::Request::new(()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again.to_str().unwrap(), "Bearer token-1");
        // At 13m30s less than the 60 s margin remains: a new token, never the expired one.
        source.clock.advance(Duration::from_secs(90));
        let fresh = svc()
            .oneshot(http::Request::new(()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(fresh.to_str().unwrap(), "Bearer token-2");
        assert_eq!(source.minted.load(Ordering::SeqCst), 2);
        assert_eq!(seen.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn works_over_services_that_cannot_be_cloned() {
        use tower::Service as _;
        let source = counting();
        let echo = tower::service_fn(|req: http::Request<()>| async move {
            Ok::<_, std::convert::Infallible>(req.headers().get("authorization").cloned())
        });
        // kube's default stack is a BoxService, which is not Clone.
        let mut svc =
            BearerAuthLayer::new(source.clone()).layer(tower::util::BoxService::new(echo));
        for _ in 0..3 {
            let auth = svc
                .ready()
                .await
                .unwrap()
                .call(http::Request::new(()))
                .await
                .unwrap();
            assert_eq!(auth.unwrap().to_str().unwrap(), "Bearer token-1");
        }
        assert_eq!(source.minted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn concurrent_requests_share_one_refresh() {
        let source = counting();
        let calls = (0..20).map(|_| {
            let s = Arc::clone(&source);
            tokio::spawn(async move { s.bearer_token().await.unwrap() })
        });
        for call in calls {
            call.await.unwrap();
        }
        assert_eq!(source.minted.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn debug_hides_the_token() {
        let token = BearerToken {
            token: SecretString::from("k8s-aws-v1.secretstuff"),
            expires_at: from_unix(0),
        };
        assert!(!format!("{token:?}").contains("secretstuff"));
    }
}
