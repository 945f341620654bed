//! A cluster's API endpoint as a cloud runs it: TLS with its own CA, and an authenticator in
//! front of the API server that refuses every request without an acceptable bearer token. The
//! API server behind it is ferry-sim (plain HTTP, started as `ferry sim`). Tests point a cloud's
//! answer (EKS DescribeCluster through moto, AKS listClusterUserCredential on wiremock) at this
//! endpoint and CA, so a deploy through the EKS or AKS provider proves the server and CA came
//! from the cloud and that every request carried a token the check accepts.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use base64::Engine as _;

use super::front::{Running, answer, forward};

/// Decides whether a bearer token is acceptable.
pub(crate) type TokenCheck = Arc<dyn Fn(&str) -> bool + Send + Sync>;

struct Inner {
    upstream: String,
    check: TokenCheck,
    client: reqwest::Client,
    /// Every bearer token presented, in order (tests grep outputs for them: they are secrets).
    tokens: Mutex<Vec<String>>,
    requests: Mutex<u64>,
    refused: Mutex<u64>,
}

/// A running endpoint; it stops when dropped.
pub(crate) struct ClusterFront {
    server: Running,
    ca_pem: String,
    inner: Arc<Inner>,
}

impl ClusterFront {
    /// An endpoint for the API server at `upstream` (`http://127.0.0.1:PORT`).
    pub(crate) async fn start(upstream: &str, check: TokenCheck) -> ClusterFront {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "test cluster CA");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .unwrap()
                .signed_by(&leaf_key, &ca)
                .unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let inner = Arc::new(Inner {
            upstream: upstream.trim_end_matches('/').to_owned(),
            check,
            client: reqwest::Client::new(),
            tokens: Mutex::new(Vec::new()),
            requests: Mutex::new(0),
            refused: Mutex::new(0),
        });
        let app = axum::Router::new()
            .fallback(authenticate)
            .with_state(Arc::clone(&inner));
        let server = Running::start(|listener| async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let app = app.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper_util::service::TowerToHyperService::new(app);
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
                });
            }
        })
        .await;
        ClusterFront {
            server,
            ca_pem: ca.pem(),
            inner,
        }
    }

    /// `https://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> String {
        format!("https://{}", self.server.addr)
    }

    /// The CA as kubeconfig's `certificate-authority-data` (base64 PEM).
    pub(crate) fn ca_data(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.ca_pem)
    }

    /// The distinct bearer tokens presented, in order of first use.
    pub(crate) fn tokens(&self) -> Vec<String> {
        let mut seen = Vec::new();
        for t in self.inner.tokens.lock().unwrap().iter() {
            if !seen.contains(t) {
                seen.push(t.clone());
            }
        }
        seen
    }

    /// Requests that reached the endpoint, and how many were refused.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (
            *self.inner.requests.lock().unwrap(),
            *self.inner.refused.lock().unwrap(),
        )
    }
}

fn unauthorized() -> Response {
    Response::builder()
        .status(401)
        .header("content-type", "application/json")
        .body(Body::from(
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#,
        ))
        .unwrap()
}

async fn authenticate(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    *inner.requests.lock().unwrap() += 1;
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let Some(token) = token else {
        *inner.refused.lock().unwrap() += 1;
        return unauthorized();
    };
    inner.tokens.lock().unwrap().push(token.clone());
    if !(inner.check)(&token) {
        *inner.refused.lock().unwrap() += 1;
        return unauthorized();
    }
    let (parts, body) = req.into_parts();
    // The API server behind sees no token: the front is the authenticator.
    let body = reqwest::Body::wrap_stream(body.into_data_stream());
    match forward(
        &inner.client,
        &inner.upstream,
        &parts,
        body,
        &["authorization"],
    )
    .await
    {
        Ok(resp) => {
            let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
            answer(status, &headers, Body::from_stream(resp.bytes_stream()))
        }
        Err(failed) => failed,
    }
}
