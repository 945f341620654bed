//! A front for moto: forwards every request, and on request answers with canned AWS errors
//! (moto never refuses a web identity token and never throttles), records what STS hands out
//! (so tests can grep for the secret keys it issued), and patches `DescribeCluster` answers so
//! a cluster's endpoint and CA point at a real API server (moto's are random text).

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;

use super::front::{Running, answer, forward};

/// Which requests a fault applies to.
#[derive(Debug, Clone)]
pub(crate) enum Match {
    /// An STS (awsQuery) request with this `Action=` in its form body.
    StsAction(&'static str),
    /// A request whose path starts with this (EKS is REST: `/clusters/NAME`).
    PathPrefix(String),
}

/// A canned answer for the next `times` matching requests.
#[derive(Debug, Clone)]
pub(crate) struct Fault {
    pub(crate) matches: Match,
    pub(crate) status: u16,
    pub(crate) content_type: &'static str,
    pub(crate) body: String,
    pub(crate) times: u32,
}

impl Fault {
    /// An STS error document, as STS sends it.
    pub(crate) fn sts_error(action: &'static str, status: u16, code: &str, message: &str) -> Self {
        Fault {
            matches: Match::StsAction(action),
            status,
            content_type: "text/xml",
            body: format!(
                "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error>\
                 <Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>\
                 <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ErrorResponse>"
            ),
            times: 1,
        }
    }

    /// Apply to `n` requests.
    pub(crate) fn times(mut self, n: u32) -> Self {
        self.times = n;
        self
    }
}

/// One request that reached the front.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    /// The path (EKS is REST: `/clusters/NAME`).
    pub(crate) path: String,
    /// The STS action, or "" for REST calls.
    pub(crate) action: String,
}

#[derive(Default)]
struct Inner {
    upstream: String,
    client: reqwest::Client,
    faults: Mutex<Vec<Fault>>,
    seen: Mutex<Vec<Seen>>,
    /// Response bodies that came back from moto.
    answers: Mutex<Vec<String>>,
    /// cluster name -> (endpoint, base64 CA)
    patches: Mutex<Vec<(String, String, String)>>,
}

/// A running front; it stops when dropped.
pub(crate) struct AwsFront {
    server: Running,
    inner: Arc<Inner>,
}

impl AwsFront {
    /// A front for the moto at `upstream` (`http://127.0.0.1:5010`).
    pub(crate) async fn start(upstream: &str) -> AwsFront {
        let inner = Arc::new(Inner {
            upstream: upstream.trim_end_matches('/').to_owned(),
            ..Inner::default()
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&inner));
        let server = Running::start(|listener| async move {
            let _ = axum::serve(listener, app).await;
        })
        .await;
        AwsFront { server, inner }
    }

    /// `http://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    pub(crate) fn add_fault(&self, fault: Fault) {
        self.inner.faults.lock().unwrap().push(fault);
    }

    /// Makes `DescribeCluster` for `cluster` answer with this endpoint and CA.
    pub(crate) fn patch_cluster(&self, cluster: &str, endpoint: &str, ca_b64: &str) {
        let mut patches = self.inner.patches.lock().unwrap();
        patches.retain(|(c, _, _)| c != cluster);
        patches.push((cluster.to_owned(), endpoint.to_owned(), ca_b64.to_owned()));
    }

    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.inner.seen.lock().unwrap().clone()
    }

    /// How many requests for this STS action arrived.
    pub(crate) fn count(&self, action: &str) -> usize {
        self.seen().iter().filter(|s| s.action == action).count()
    }

    /// How many requests for paths starting with this arrived.
    pub(crate) fn count_path(&self, prefix: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.path.starts_with(prefix))
            .count()
    }

    /// Every credential STS handed out through this front: (access key id, secret access key,
    /// session token).
    pub(crate) fn issued(&self) -> Vec<(String, String, String)> {
        let tag = |body: &str, name: &str| -> Option<String> {
            let open = format!("<{name}>");
            let start = body.find(&open)? + open.len();
            let end = body[start..].find(&format!("</{name}>"))? + start;
            Some(body[start..end].to_owned())
        };
        self.inner
            .answers
            .lock()
            .unwrap()
            .iter()
            .filter_map(|b| {
                Some((
                    tag(b, "AccessKeyId")?,
                    tag(b, "SecretAccessKey")?,
                    tag(b, "SessionToken")?,
                ))
            })
            .collect()
    }

    /// Every secret access key and session token STS handed out through this front.
    pub(crate) fn issued_secrets(&self) -> Vec<String> {
        self.issued()
            .into_iter()
            .flat_map(|(_, secret, token)| [secret, token])
            .collect()
    }
}

async fn handle(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&body);
    let action = text
        .split('&')
        .find_map(|kv| kv.strip_prefix("Action="))
        .unwrap_or("")
        .to_owned();
    let path = parts.uri.path().to_owned();
    let fault = {
        let mut faults = inner.faults.lock().unwrap();
        let i = faults.iter().position(|f| match &f.matches {
            Match::StsAction(a) => *a == action,
            Match::PathPrefix(p) => path.starts_with(p.as_str()),
        });
        i.map(|i| {
            let f = faults[i].clone();
            faults[i].times -= 1;
            if faults[i].times == 0 {
                faults.remove(i);
            }
            f
        })
    };
    inner.seen.lock().unwrap().push(Seen {
        path: path.clone(),
        action: action.clone(),
    });
    if let Some(f) = fault {
        return Response::builder()
            .status(f.status)
            .header("content-type", f.content_type)
            .header("x-amzn-requestid", "c6104cbe-af31-11e0-8154-cbc7ccf896c7")
            .body(Body::from(f.body))
            .unwrap();
    }
    let resp = match forward(
        &inner.client,
        &inner.upstream,
        &parts,
        body.to_vec().into(),
        &[],
    )
    .await
    {
        Ok(r) => r,
        Err(failed) => return failed,
    };
    let status = resp.status();
    let headers = resp.headers().clone();
    let mut bytes = resp.bytes().await.unwrap_or_default().to_vec();
    let text_of_answer = String::from_utf8_lossy(&bytes).into_owned();
    // DescribeCluster: GET /clusters/NAME
    if parts.method == "GET"
        && let Some(name) = path.strip_prefix("/clusters/")
        && !name.contains('/')
        && status.is_success()
    {
        let patch = inner
            .patches
            .lock()
            .unwrap()
            .iter()
            .find(|(c, _, _)| c == name)
            .cloned();
        if let Some((_, endpoint, ca)) = patch {
            let mut doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            doc["cluster"]["endpoint"] = endpoint.into();
            doc["cluster"]["certificateAuthority"]["data"] = ca.into();
            bytes = serde_json::to_vec(&doc).unwrap();
        }
    }
    inner.answers.lock().unwrap().push(text_of_answer);
    answer(status.as_u16(), &headers, Body::from(bytes))
}
