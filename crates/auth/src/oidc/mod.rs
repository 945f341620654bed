//! OIDC identity tokens (JWTs): where they come from, what they claim, and a chain that picks
//! the first source configured here.
//!
//! A source is an [`OidcTokenSource`]: GitHub Actions' token endpoint ([`GitHubActions`]), a
//! token file that a platform keeps fresh ([`TokenFile`], e.g. `AWS_WEB_IDENTITY_TOKEN_FILE`),
//! or a token handed over as is ([`StaticToken`]). [`TokenChain`] tries sources in order and
//! moves on only when one answers [`AuthError::NotConfigured`]; any other error stops it, so a
//! broken GitHub token is reported rather than silently replaced by a stale file.
//!
//! ferry does not verify a token's signature — the cloud it is presented to does. It does read
//! the claims (to show them, to check them against a trust policy, and to refuse an expired or
//! malformed token with a clear message before a cloud refuses it with a vague one).

mod file;
mod github;
mod literal;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};

use crate::clock::{from_unix, human_between, rfc3339};
use crate::error::AuthError;

pub use file::TokenFile;
pub use github::GitHubActions;
pub use literal::StaticToken;

/// The issuer of GitHub Actions OIDC tokens.
pub const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// The largest token ferry accepts (GitHub's are about 1 KiB; Kubernetes' a few KiB).
pub const MAX_TOKEN_BYTES: usize = 64 * 1024;

/// How far a token's `exp` may be in the past before ferry calls it expired. A token that
/// expires in under this margin is refused too: by the time a cloud checks it, it is gone.
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(10);

/// A source of OIDC identity tokens.
#[async_trait::async_trait]
pub trait OidcTokenSource: Send + Sync + fmt::Debug {
    /// A token for `audience`. Sources that cannot choose the audience (files, static tokens)
    /// return the token they have; the consumer checks its `aud`.
    async fn token(&self, audience: &str) -> Result<OidcToken, AuthError>;

    /// For messages: "GitHub Actions OIDC", "token file /var/run/token (AWS_WEB_IDENTITY_TOKEN_FILE)".
    fn describe(&self) -> String;
}

/// A token source shared between consumers.
pub type SharedOidcTokenSource = Arc<dyn OidcTokenSource>;

/// A JWT's `aud` claim: one audience or several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience.
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `aud` is (one of) the audiences.
    pub fn contains(&self, aud: &str) -> bool {
        match self {
            Audience::One(a) => a == aud,
            Audience::Many(all) => all.iter().any(|a| a == aud),
        }
    }

    /// The audiences, comma-separated.
    pub fn joined(&self) -> String {
        match self {
            Audience::One(a) => a.clone(),
            Audience::Many(all) => all.join(", "),
        }
    }
}

/// The claims of an OIDC token. Registered claims have fields; everything else (GitHub's
/// `repository`, `ref`, `environment`, `job_workflow_ref`, `run_id`, ...) is in `other`.
/// None of these is secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Subject, e.g. `repo:octo/shop:ref:refs/heads/main`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
    /// Expiry, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Issued at, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Not before, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Every other claim.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl Claims {
    /// The expiry, when the token has one.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.exp.map(from_unix)
    }

    /// A string claim from `other` (e.g. `repository`, `environment`).
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.other.get(name).and_then(serde_json::Value::as_str)
    }
}

/// An OIDC identity token: the JWT (secret) and its decoded claims (not secret).
#[derive(Clone)]
pub struct OidcToken {
    jwt: SecretString,
    claims: Claims,
    origin: String,
}

impl fmt::Debug for OidcToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcToken")
            .field("jwt", &"[redacted]")
            .field("claims", &self.claims)
            .field("origin", &self.origin)
            .finish()
    }
}

impl OidcToken {
    /// Decodes a JWT's claims (without verifying its signature: the cloud does that). `origin`
    /// names where it came from, for messages.
    pub fn parse(jwt: SecretString, origin: impl Into<String>) -> Result<Self, AuthError> {
        let origin = origin.into();
        let claims = decode_claims(jwt.expose_secret(), &origin)?;
        Ok(OidcToken {
            jwt,
            claims,
            origin,
        })
    }

    /// The JWT, for presenting to a cloud.
    pub fn secret(&self) -> &SecretString {
        &self.jwt
    }

    /// The decoded claims.
    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    /// Where the token came from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The expiry, when the token has one.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.claims.expires_at()
    }

    /// Refuses a token that has expired (or expires within [`EXPIRY_MARGIN`]) at `now`.
    pub fn ensure_fresh(&self, now: SystemTime) -> Result<(), AuthError> {
        let Some(exp) = self.expires_at() else {
            return Ok(());
        };
        if exp <= now + EXPIRY_MARGIN {
            let ago = human_between(exp, now);
            return Err(AuthError::ExpiredToken {
                origin: self.origin.clone(),
                expired_at: rfc3339(exp),
                help: format!(
                    "the token expired {ago} ago (or is about to): get a fresh one — GitHub \
                     Actions tokens are requested per run, so re-run the job; a token file must \
                     be rewritten by whatever provides it (the kubelet, a CI step) before ferry \
                     reads it"
                ),
            });
        }
        Ok(())
    }
}

fn decode_claims(jwt: &str, origin: &str) -> Result<Claims, AuthError> {
    let malformed = |reason: &str| AuthError::MalformedToken {
        origin: origin.to_owned(),
        reason: reason.to_owned(),
        help: "the source must hold a single OIDC JWT (header.payload.signature, base64url, \
               no quotes or other text); check what writes it"
            .to_owned(),
    };
    if jwt.is_empty() {
        return Err(malformed("it is empty"));
    }
    if jwt.len() > MAX_TOKEN_BYTES {
        return Err(malformed(&format!(
            "it is {} bytes; OIDC tokens are a few KiB at most",
            jwt.len()
        )));
    }
    if jwt.split('.').count() != 3 {
        return Err(malformed(
            "it is not a JWT (expected three base64url parts separated by dots)",
        ));
    }
    // jsonwebtoken's errors describe the part that failed and never echo the input.
    match jsonwebtoken::dangerous::insecure_decode::<Claims>(jwt) {
        Ok(data) => Ok(data.claims),
        Err(err) => {
            use jsonwebtoken::errors::ErrorKind as K;
            let reason = match err.kind() {
                K::Base64(_) => "a part is not valid base64url".to_owned(),
                K::Json(e) => format!("its header or claims are not the expected JSON ({e})"),
                K::Utf8(_) => "its claims are not UTF-8".to_owned(),
                other => format!("it cannot be decoded ({other:?})"),
            };
            Err(malformed(&reason))
        }
    }
}

/// Tries token sources in order; moves on only when a source is not configured.
#[derive(Debug, Clone)]
pub struct TokenChain {
    sources: Vec<SharedOidcTokenSource>,
}

impl TokenChain {
    /// A chain that starts with `source`.
    #[must_use]
    pub fn first_try(source: impl OidcTokenSource + 'static) -> Self {
        TokenChain {
            sources: vec![Arc::new(source)],
        }
    }

    /// Adds `source` after the others.
    #[must_use]
    pub fn or_else(mut self, source: impl OidcTokenSource + 'static) -> Self {
        self.sources.push(Arc::new(source));
        self
    }

    /// Adds a shared source after the others.
    #[must_use]
    pub fn or_else_shared(mut self, source: SharedOidcTokenSource) -> Self {
        self.sources.push(source);
        self
    }
}

#[async_trait::async_trait]
impl OidcTokenSource for TokenChain {
    async fn token(&self, audience: &str) -> Result<OidcToken, AuthError> {
        let mut tried = Vec::new();
        for source in &self.sources {
            match source.token(audience).await {
                Err(AuthError::NotConfigured { what, .. }) => {
                    tracing::debug!(source = %what, "OIDC token source not configured; next");
                    tried.push(what);
                }
                other => return other,
            }
        }
        Err(AuthError::NotConfigured {
            what: "an OIDC token source".to_owned(),
            help: format!(
                "none of these is set up here: {}. In GitHub Actions, give the job \
                 `permissions: id-token: write`; elsewhere point AWS_WEB_IDENTITY_TOKEN_FILE or \
                 AZURE_FEDERATED_TOKEN_FILE at a token file, or set [env.NAME.auth.oidc]",
                tried.join("; ")
            ),
        })
    }

    fn describe(&self) -> String {
        let parts: Vec<String> = self.sources.iter().map(|s| s.describe()).collect();
        format!("first of: {}", parts.join(", "))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use base64::Engine as _;

    /// An unsigned JWT with these claims (ferry never checks signatures).
    pub(crate) fn jwt(claims: &serde_json::Value) -> String {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.{}",
            b64.encode(br#"{"alg":"RS256","typ":"JWT"}"#),
            b64.encode(claims.to_string()),
            b64.encode(b"signature")
        )
    }

    #[test]
    fn github_claims_decode() {
        let token = jwt(&serde_json::json!({
            "iss": GITHUB_ISSUER, "sub": "repo:octo/shop:ref:refs/heads/main",
            "aud": "sts.amazonaws.com", "exp": 1_900_000_000, "iat": 1_899_999_700,
            "repository": "octo/shop", "ref": "refs/heads/main"
        }));
        let token = OidcToken::parse(SecretString::from(token), "test").unwrap();
        let claims = token.claims();
        assert_eq!(
            claims.sub.as_deref(),
            Some("repo:octo/shop:ref:refs/heads/main")
        );
        assert!(claims.aud.as_ref().unwrap().contains("sts.amazonaws.com"));
        assert_eq!(claims.get_str("repository"), Some("octo/shop"));
        assert_eq!(token.expires_at(), Some(from_unix(1_900_000_000)));
    }

    #[test]
    fn audience_may_be_a_list() {
        let token = jwt(&serde_json::json!({"aud": ["a", "b"], "exp": 1}));
        let token = OidcToken::parse(SecretString::from(token), "test").unwrap();
        let aud = token.claims().aud.as_ref().unwrap();
        assert!(aud.contains("b") && !aud.contains("c"));
        assert_eq!(aud.joined(), "a, b");
    }

    #[test]
    fn malformed_tokens_are_refused_without_echoing_them() {
        let cases = [
            ("", "empty"),
            ("not-a-jwt", "three base64url parts"),
            ("a.b", "three base64url parts"),
            ("@@@.@@@.@@@", "base64url"),
            ("eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln", "JSON"),
        ];
        for (input, expect) in cases {
            let err = OidcToken::parse(SecretString::from(input), "token file t").unwrap_err();
            let shown = err.to_string();
            assert!(
                matches!(err, AuthError::MalformedToken { .. }),
                "{input}: {err:?}"
            );
            assert!(shown.contains(expect), "{input}: {shown}");
            assert!(shown.contains("token file t"), "{shown}");
            if !input.is_empty() {
                assert!(!shown.contains(input), "echoes the token: {shown}");
            }
        }
    }

    #[test]
    fn expiry_is_checked_with_a_margin() {
        let token = jwt(&serde_json::json!({"exp": 1_000_000}));
        let token = OidcToken::parse(SecretString::from(token), "static token").unwrap();
        assert!(token.ensure_fresh(from_unix(900_000)).is_ok());
        // Within the margin counts as expired.
        let err = token.ensure_fresh(from_unix(999_995)).unwrap_err();
        assert!(matches!(err, AuthError::ExpiredToken { .. }));
        let err = token.ensure_fresh(from_unix(1_000_300)).unwrap_err();
        assert!(err.to_string().contains("1970-01-12T13:46:40Z"), "{err}");
        assert!(err.help().unwrap().contains("5m ago"), "{:?}", err.help());
    }

    #[test]
    fn debug_never_shows_the_jwt() {
        let raw = jwt(&serde_json::json!({"sub": "x"}));
        let token = OidcToken::parse(SecretString::from(raw.clone()), "t").unwrap();
        let shown = format!("{token:?}");
        assert!(
            !shown.contains(&raw) && shown.contains("redacted"),
            "{shown}"
        );
    }

    #[derive(Debug)]
    struct Fixed(Result<&'static str, &'static str>);

    #[async_trait::async_trait]
    impl OidcTokenSource for Fixed {
        async fn token(&self, _audience: &str) -> Result<OidcToken, AuthError> {
            match self.0 {
                Ok(sub) => OidcToken::parse(
                    SecretString::from(jwt(&serde_json::json!({ "sub": sub }))),
                    "fixed",
                ),
                Err("not configured") => Err(AuthError::NotConfigured {
                    what: "fixed".into(),
                    help: String::new(),
                }),
                Err(_) => Err(AuthError::Rejected {
                    service: "test",
                    code: "X".into(),
                    message: "broken".into(),
                    help: String::new(),
                }),
            }
        }
        fn describe(&self) -> String {
            "fixed".into()
        }
    }

    #[tokio::test]
    async fn chain_moves_on_only_when_not_configured() {
        let chain = TokenChain::first_try(Fixed(Err("not configured"))).or_else(Fixed(Ok("b")));
        let token = chain.token("aud").await.unwrap();
        assert_eq!(token.claims().sub.as_deref(), Some("b"));

        let chain = TokenChain::first_try(Fixed(Err("broken"))).or_else(Fixed(Ok("b")));
        assert!(matches!(
            chain.token("aud").await,
            Err(AuthError::Rejected { .. })
        ));

        let chain = TokenChain::first_try(Fixed(Err("not configured")))
            .or_else(Fixed(Err("not configured")));
        let err = chain.token("aud").await.unwrap_err();
        assert!(err.is_not_configured());
        assert!(err.help().unwrap().contains("id-token: write"));
    }
}
