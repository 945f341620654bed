//! What the two fronts share: the server task that stops when dropped, and passing a request on
//! to the real server behind them (moto, ferry-sim) and its answer back.

use std::net::SocketAddr;

use axum::body::Body;
use axum::response::Response;

/// Headers that belong to one connection, not to the request or answer passed on.
const HOP_BY_HOP: [&str; 4] = ["host", "content-length", "transfer-encoding", "connection"];

/// A server task on a loopback port; it stops when dropped.
pub(crate) struct Running {
    pub(crate) addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Binds a loopback port and runs `serve` on it.
    pub(crate) async fn start<F, Fut>(serve: F) -> Running
    where
        F: FnOnce(tokio::net::TcpListener) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(serve(listener));
        Running { addr, task }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Sends the request on to `upstream` (same method, path, query and body, its headers but the
/// hop-by-hop ones and `drop`), and returns the answer, or a 502 saying what failed.
pub(crate) async fn forward(
    client: &reqwest::Client,
    upstream: &str,
    parts: &axum::http::request::Parts,
    body: reqwest::Body,
    drop: &[&str],
) -> Result<reqwest::Response, Response> {
    let url = format!(
        "{upstream}{}",
        parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    );
    let mut fwd = client.request(parts.method.clone(), &url).body(body);
    for (name, value) in &parts.headers {
        if !HOP_BY_HOP.contains(&name.as_str()) && !drop.contains(&name.as_str()) {
            fwd = fwd.header(name, value);
        }
    }
    fwd.send().await.map_err(|e| {
        Response::builder()
            .status(502)
            .body(Body::from(format!("front: {upstream} failed: {e}")))
            .unwrap()
    })
}

/// The answer to pass back: the upstream's status and headers (but the hop-by-hop ones) with
/// `body`.
pub(crate) fn answer(status: u16, headers: &axum::http::HeaderMap, body: Body) -> Response {
    let mut out = Response::builder().status(status);
    for (name, value) in headers {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            out = out.header(name, value);
        }
    }
    out.body(body).unwrap()
}
