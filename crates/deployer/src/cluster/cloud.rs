//! What the EKS and AKS providers share: a cluster's endpoint as a cloud reports it, and a kube
//! client that presents a fresh bearer token from a refreshing source on every request (the
//! token outlives no deploy: see [`ferry_auth::bearer`]).

use base64::Engine as _;
use ferry_auth::bearer::{BearerAuthLayer, SharedBearerTokenSource};
use kube::config::{KubeConfigOptions, Kubeconfig};

use super::ClusterError;

/// A cluster's API server and the CA that signs its serving certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterEndpoint {
    /// The API server URL.
    pub server: String,
    /// The CA bundle, base64-encoded PEM (kubeconfig's `certificate-authority-data`).
    pub ca_data: String,
}

impl ClusterEndpoint {
    /// Checks what a cloud API answered: an http(s) URL, and for https a base64 PEM
    /// certificate. `Err` says what is wrong, for the caller to word.
    pub fn checked(server: &str, ca_data: Option<&str>) -> Result<Self, String> {
        let uri = server
            .parse::<http::Uri>()
            .map_err(|e| format!("server `{server}` is not a URL ({e})"))?;
        let https = uri.scheme_str() == Some("https");
        if !(https || uri.scheme_str() == Some("http")) || uri.host().is_none() {
            return Err(format!("server `{server}` is not an http(s) URL"));
        }
        let ca_data = ca_data.unwrap_or("").trim().to_owned();
        if https {
            let pem = base64::engine::general_purpose::STANDARD
                .decode(&ca_data)
                .map_err(|_| "the certificate authority data is not base64".to_owned())?;
            let pem = String::from_utf8_lossy(&pem);
            if !pem.contains("-----BEGIN CERTIFICATE-----") {
                return Err("the certificate authority data is not a PEM certificate".to_owned());
            }
        }
        Ok(ClusterEndpoint {
            server: server.trim_end_matches('/').to_owned(),
            ca_data,
        })
    }
}

/// A kube client for `endpoint` whose requests carry a bearer token from `tokens`.
pub(crate) async fn bearer_client(
    endpoint: &ClusterEndpoint,
    tokens: SharedBearerTokenSource,
    user_agent: Option<&str>,
    describe: &str,
) -> Result<kube::Client, ClusterError> {
    let mut cluster = serde_json::json!({ "server": endpoint.server });
    if !endpoint.ca_data.is_empty() {
        cluster["certificate-authority-data"] = endpoint.ca_data.clone().into();
    }
    let kubeconfig: Kubeconfig = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{ "name": "cluster", "cluster": cluster }],
        "users": [{ "name": "ferry", "user": {} }],
        "contexts": [{ "name": "ferry", "context": { "cluster": "cluster", "user": "ferry" } }],
        "current-context": "ferry",
    }))
    .map_err(|e| ClusterError::Provider {
        what: format!("cannot describe {describe} to the Kubernetes client"),
        source: Box::new(e),
    })?;
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|source| ClusterError::Kubeconfig {
                path: describe.to_owned(),
                source,
            })?;
    if let Some(ua) = user_agent
        && let Ok(value) = http::HeaderValue::from_str(ua)
    {
        config.headers.push((http::header::USER_AGENT, value));
    }
    let builder =
        kube::client::ClientBuilder::try_from(config).map_err(|source| ClusterError::Client {
            cluster: describe.to_owned(),
            source,
        })?;
    Ok(builder.with_layer(&BearerAuthLayer::new(tokens)).build())
}

/// Wraps a ferry-auth error as a provider failure; the CLI finds the [`ferry_auth::AuthError`]
/// in the chain for its help line and exit code.
pub(crate) fn auth_failure(what: String, err: ferry_auth::AuthError) -> ClusterError {
    ClusterError::Provider {
        what,
        source: Box::new(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_checked() {
        let pem = base64::engine::general_purpose::STANDARD
            .encode("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
        let ok = ClusterEndpoint::checked("https://abc.eks.amazonaws.com/", Some(&pem)).unwrap();
        assert_eq!(ok.server, "https://abc.eks.amazonaws.com");
        // moto's random CA text is refused with a message saying so.
        let err = ClusterEndpoint::checked("https://x", Some("w33ISKdJZhJf")).unwrap_err();
        assert!(err.contains("certificate"), "{err}");
        assert!(ClusterEndpoint::checked("ftp://x", None).is_err());
        assert!(ClusterEndpoint::checked("https://x", None).is_err());
        assert!(ClusterEndpoint::checked("http://127.0.0.1:8080", None).is_ok());
    }
}
