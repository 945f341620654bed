//! EKS bearer tokens, minted in-process (what `aws eks get-token` and aws-iam-authenticator
//! do): a presigned STS `GetCallerIdentity` URL whose signature covers the header
//! `x-k8s-aws-id: CLUSTER`, as `k8s-aws-v1.` + unpadded base64url. The API server replays the
//! URL to STS to learn who is calling; STS honours it for 15 minutes after signing.

use std::fmt;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use base64::Engine as _;
use secrecy::SecretString;

use super::{AwsAuth, dns_suffix};
use crate::bearer::{BearerToken, BearerTokenSource, TokenCache};
use crate::error::AuthError;

/// The prefix of EKS tokens.
pub const EKS_TOKEN_PREFIX: &str = "k8s-aws-v1.";

/// How long ferry treats a token as valid: the server accepts it for 15 minutes after signing;
/// like `aws eks get-token`, ferry says 14 to leave room for clock skew.
pub const EKS_TOKEN_LIFETIME: Duration = Duration::from_secs(14 * 60);

/// A new token is minted when the current one has less than this left.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);

const CLUSTER_HEADER: &str = "x-k8s-aws-id";

/// The regional STS host for `region` (the API server accepts regional and global hosts;
/// regional is what AWS recommends).
pub fn sts_host(region: &str) -> String {
    format!("sts.{region}.{}", dns_suffix(region))
}

/// Mints an EKS token for `cluster` with `credentials`, signed at `at`.
///
/// The token expires [`EKS_TOKEN_LIFETIME`] after `at`, or when the credentials expire if that
/// is sooner (a URL signed with temporary credentials dies with them).
pub fn presign_eks_token(
    credentials: &Credentials,
    region: &str,
    cluster: &str,
    at: SystemTime,
) -> Result<BearerToken, AuthError> {
    let signing_error = |e: Box<dyn std::error::Error + Send + Sync>| AuthError::Service {
        service: "EKS token signing",
        message: "cannot presign the STS request".into(),
        source: Some(e),
    };
    let url = format!(
        "https://{}/?Action=GetCallerIdentity&Version=2011-06-15",
        sts_host(region)
    );
    let identity = credentials.clone().into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(Duration::from_secs(60));
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(at)
        .settings(settings)
        .build()
        .map_err(|e| signing_error(Box::new(e)))?
        .into();
    let signable = SignableRequest::new(
        "GET",
        &url,
        std::iter::once((CLUSTER_HEADER, cluster)),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| signing_error(Box::new(e)))?;
    // aws-sigv4 logs the canonical request at trace level, and for a presigned URL that holds
    // the session token in the query (it redacts it only in headers): sign with tracing off so
    // no subscriber, whatever its level, ever sees it.
    let signed =
        tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::default(), || {
            sign(signable, &params)
        });
    let (instructions, _signature) = signed.map_err(|e| signing_error(Box::new(e)))?.into_parts();
    let mut request = http::Request::builder()
        .method("GET")
        .uri(&url)
        .body(())
        .map_err(|e| signing_error(Box::new(e)))?;
    instructions.apply_to_request_http1x(&mut request);
    let presigned = signature_last(&request.uri().to_string());
    let token = format!(
        "{EKS_TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(presigned)
    );
    let mut expires_at = at + EKS_TOKEN_LIFETIME;
    if let Some(creds_expiry) = credentials.expiry() {
        expires_at = expires_at.min(creds_expiry);
    }
    Ok(BearerToken {
        token: SecretString::from(token),
        expires_at,
    })
}

/// Moves `X-Amz-Signature` to the end of the query, where botocore puts it, so ferry's token
/// is byte-for-byte the one `aws eks get-token` makes for the same credentials and time (the
/// API server does not care about the order; people comparing tokens do).
fn signature_last(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let (signature, mut rest): (Vec<&str>, Vec<&str>) = query
        .split('&')
        .partition(|pair| pair.starts_with("X-Amz-Signature="));
    rest.extend(signature);
    format!("{base}?{}", rest.join("&"))
}

/// EKS bearer tokens for one cluster, minted from an [`AwsAuth`]'s credentials and cached until
/// a minute before they expire.
pub struct EksTokenSource {
    auth: AwsAuth,
    cluster: String,
    cache: TokenCache,
}

impl fmt::Debug for EksTokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EksTokenSource")
            .field("cluster", &self.cluster)
            .field("region", &self.auth.region())
            .finish()
    }
}

impl EksTokenSource {
    /// Tokens for `cluster` with `auth`'s credentials, region and clock.
    pub fn new(auth: AwsAuth, cluster: &str) -> Self {
        EksTokenSource {
            cache: TokenCache::new(auth.clock().clone(), REFRESH_MARGIN),
            auth,
            cluster: cluster.to_owned(),
        }
    }
}

#[async_trait::async_trait]
impl BearerTokenSource for EksTokenSource {
    async fn bearer_token(&self) -> Result<BearerToken, AuthError> {
        self.cache
            .get_or_refresh(|| async {
                let credentials = self.auth.credentials().await?;
                presign_eks_token(
                    &credentials,
                    self.auth.region(),
                    &self.cluster,
                    self.auth.clock().now(),
                )
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::from_unix;
    use secrecy::ExposeSecret as _;

    fn decode(token: &str) -> url::Url {
        let b64 = token.strip_prefix(EKS_TOKEN_PREFIX).expect("prefix");
        assert!(!b64.contains('='), "padded: {b64}");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(b64)
            .unwrap();
        url::Url::parse(std::str::from_utf8(&bytes).unwrap()).unwrap()
    }

    #[test]
    fn token_is_a_presigned_get_caller_identity_for_the_cluster() {
        let creds = Credentials::new(
            "ASIAEXAMPLE",
            "secret/key",
            Some("session".into()),
            None,
            "t",
        );
        let at = from_unix(1_795_446_174);
        let token = presign_eks_token(&creds, "eu-west-1", "shop", at).unwrap();
        let url = decode(token.token.expose_secret());
        assert_eq!(url.host_str(), Some("sts.eu-west-1.amazonaws.com"));
        let q: std::collections::BTreeMap<String, String> =
            url.query_pairs().into_owned().collect();
        assert_eq!(q["Action"], "GetCallerIdentity");
        assert_eq!(q["Version"], "2011-06-15");
        assert_eq!(q["X-Amz-Expires"], "60");
        assert_eq!(q["X-Amz-Date"], "20261123T150254Z");
        assert_eq!(q["X-Amz-SignedHeaders"], "host;x-k8s-aws-id");
        assert_eq!(q["X-Amz-Security-Token"], "session");
        assert!(q["X-Amz-Credential"].starts_with("ASIAEXAMPLE/20261123/eu-west-1/sts/"));
        assert_eq!(q["X-Amz-Signature"].len(), 64);
        let last = url.query_pairs().last().unwrap();
        assert_eq!(
            last.0, "X-Amz-Signature",
            "the signature comes last, as botocore puts it"
        );
        assert_eq!(token.expires_at, at + EKS_TOKEN_LIFETIME);
        // Deterministic for the same inputs; different for another cluster.
        let again = presign_eks_token(&creds, "eu-west-1", "shop", at).unwrap();
        assert_eq!(again.token.expose_secret(), token.token.expose_secret());
        let other = presign_eks_token(&creds, "eu-west-1", "other", at).unwrap();
        assert_ne!(other.token.expose_secret(), token.token.expose_secret());
    }

    #[test]
    fn token_dies_with_its_credentials() {
        let at = from_unix(1_800_000_000);
        let creds = Credentials::new(
            "ASIA",
            "s",
            Some("t".into()),
            Some(at + Duration::from_secs(300)),
            "t",
        );
        let token = presign_eks_token(&creds, "us-east-1", "c", at).unwrap();
        assert_eq!(token.expires_at, at + Duration::from_secs(300));
    }
}
