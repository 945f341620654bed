//! What the two REST providers (Cloudflare, Azure DNS) share: the HTTP client they are built
//! with, and the step of one attempt that does not depend on the API — send the request, turn
//! HTTP 429 into [`AttemptError::RateLimited`] with the server's `Retry-After`, read the body.
//! Each provider then reads its own error format from the status and body.

use std::time::Duration;

use reqwest::StatusCode;

use crate::error::DnsError;
use crate::retry::AttemptError;

/// The client a provider uses unless it is handed one: bounded connect and request times, so a
/// hung server ends in a (retried) transport error rather than a hang.
pub(crate) fn default_client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_default()
}

/// Sends one request and reads the answer's status and body. A transport error is transient;
/// 429 is [`AttemptError::RateLimited`] with the `Retry-After` seconds, when the server gave
/// them.
pub(crate) async fn send(
    provider: &'static str,
    operation: &str,
    request: reqwest::RequestBuilder,
) -> Result<(StatusCode, String), AttemptError> {
    let transient = |e| AttemptError::Transient(DnsError::transport(provider, operation, e));
    let resp = request.send().await.map_err(transient)?;
    let status = resp.status();
    if status == StatusCode::TOO_MANY_REQUESTS {
        let after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        return Err(AttemptError::RateLimited(after));
    }
    let text = resp.text().await.map_err(transient)?;
    Ok((status, text))
}

/// What an operation was trying to do to the zone, for [`DnsError::Unauthorized`]: reading
/// (listing, finding, reading) or editing.
pub(crate) fn action(operation: &str) -> &'static str {
    if ["list", "find", "read"]
        .iter()
        .any(|verb| operation.starts_with(verb))
    {
        "read"
    } else {
        "edit"
    }
}
