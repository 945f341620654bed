//! The one error type of the crate.
//!
//! "Not configured" ([`AuthError::NotConfigured`]) is distinct from every failure: chains such as
//! [`TokenChain`](crate::oidc::TokenChain) move on only on it. Every other variant carries a
//! `help` line that says what to fix; [`AuthError::help`] returns it and the CLI prints it under
//! the message. `Display` never repeats the source (the CLI prints the chain), and no variant
//! ever holds a token, key or secret.

use std::path::PathBuf;

/// A boxed error from a lower layer (an SDK, an HTTP client), kept as the source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong while obtaining or using a credential.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// This source or method has nothing to work with here (its variables or settings are
    /// absent). Chains try the next source; alone, it means "configure one".
    #[error("{what} is not configured")]
    NotConfigured {
        /// What was looked for, e.g. "GitHub Actions OIDC (ACTIONS_ID_TOKEN_REQUEST_URL)".
        what: String,
        /// How to configure it.
        help: String,
    },
    /// A setting is missing or has an invalid value.
    #[error("invalid auth setting `{key}`: {message}")]
    InvalidConfig {
        /// The setting, as a key path (`auth.aws.role_arn`) or variable name.
        key: String,
        /// What is wrong.
        message: String,
        /// How to fix it.
        help: String,
    },
    /// The OIDC token is not a well-formed JWT with a JSON claims set.
    #[error("the OIDC token from {origin} is malformed: {reason}")]
    MalformedToken {
        /// Where the token came from.
        origin: String,
        /// What is wrong with it (never the token itself).
        reason: String,
        /// How to fix it.
        help: String,
    },
    /// The OIDC token's `exp` claim is in the past.
    #[error("the OIDC token from {origin} expired at {expired_at}")]
    ExpiredToken {
        /// Where the token came from.
        origin: String,
        /// When it expired (RFC 3339).
        expired_at: String,
        /// How to fix it.
        help: String,
    },
    /// The token file could not be read.
    #[error("cannot read the OIDC token file {path}")]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// How to fix it.
        help: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A service refused the credentials or the request they were for (STS AccessDenied,
    /// InvalidIdentityToken, an Azure AD AADSTS error, a GitHub 401).
    #[error("{service} refused the request ({code}): {message}")]
    Rejected {
        /// The service, e.g. "AWS STS".
        service: &'static str,
        /// The service's error code, e.g. `AccessDenied` or `AADSTS70021`.
        code: String,
        /// The service's message (secrets are never part of it).
        message: String,
        /// How to fix it.
        help: String,
    },
    /// The service kept throttling after every retry.
    #[error("{service} is throttling requests; gave up after {attempts} attempts")]
    Throttled {
        /// The service.
        service: &'static str,
        /// How many attempts were made.
        attempts: u32,
        /// How to fix it.
        help: String,
    },
    /// The service could not be reached (connection refused, DNS failure, timeout) after every
    /// retry.
    #[error("cannot reach {service} at {endpoint} (gave up after {attempts} attempts)")]
    Unreachable {
        /// The service.
        service: &'static str,
        /// The endpoint (never with credentials in it).
        endpoint: String,
        /// How many attempts were made.
        attempts: u32,
        /// How to fix it.
        help: String,
        /// The transport error.
        #[source]
        source: BoxError,
    },
    /// A resource the configuration names does not exist (an EKS or AKS cluster).
    #[error("{what} was not found")]
    NotFound {
        /// What was looked for, e.g. "EKS cluster `shop` in region eu-west-1".
        what: String,
        /// How to fix it.
        help: String,
    },
    /// The service answered something unexpected (a 5xx after every retry, an unreadable body).
    #[error("{service} failed: {message}")]
    Service {
        /// The service.
        service: &'static str,
        /// What happened.
        message: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
}

/// The broad class of an [`AuthError`], for mapping to exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Nothing configured.
    NotConfigured,
    /// A setting is wrong, or names something that does not exist.
    InvalidConfig,
    /// Authentication or authorisation failed (bad, expired or refused credentials,
    /// throttling that outlasted the retries).
    Denied,
    /// The network or the service is down.
    Unavailable,
}

impl AuthError {
    /// How to fix the problem, when known.
    pub fn help(&self) -> Option<&str> {
        match self {
            AuthError::NotConfigured { help, .. }
            | AuthError::InvalidConfig { help, .. }
            | AuthError::MalformedToken { help, .. }
            | AuthError::ExpiredToken { help, .. }
            | AuthError::TokenFile { help, .. }
            | AuthError::Rejected { help, .. }
            | AuthError::Throttled { help, .. }
            | AuthError::Unreachable { help, .. }
            | AuthError::NotFound { help, .. } => Some(help),
            AuthError::Service { .. } => None,
        }
    }

    /// The broad class of the error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            AuthError::NotConfigured { .. } => ErrorKind::NotConfigured,
            AuthError::InvalidConfig { .. } | AuthError::NotFound { .. } => {
                ErrorKind::InvalidConfig
            }
            AuthError::MalformedToken { .. }
            | AuthError::ExpiredToken { .. }
            | AuthError::TokenFile { .. }
            | AuthError::Rejected { .. }
            | AuthError::Throttled { .. } => ErrorKind::Denied,
            AuthError::Unreachable { .. } | AuthError::Service { .. } => ErrorKind::Unavailable,
        }
    }

    /// Whether this is [`AuthError::NotConfigured`].
    pub fn is_not_configured(&self) -> bool {
        matches!(self, AuthError::NotConfigured { .. })
    }

    /// The first `AuthError` in an error's source chain (itself included). SDK clients that use
    /// ferry's credential providers wrap their errors; this digs them out again so the CLI can
    /// show the specific message and help.
    pub fn find_in<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a AuthError> {
        let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
        while let Some(e) = current {
            if let Some(found) = e.downcast_ref::<AuthError>() {
                return Some(found);
            }
            current = e.source();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_does_not_repeat_the_source() {
        let err = AuthError::Unreachable {
            service: "AWS STS",
            endpoint: "http://127.0.0.1:1".into(),
            attempts: 3,
            help: "check the endpoint".into(),
            source: Box::new(std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                "connection refused",
            )),
        };
        let shown = err.to_string();
        assert!(!shown.contains("connection refused"), "{shown}");
        assert!(std::error::Error::source(&err).is_some());
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert_eq!(err.help(), Some("check the endpoint"));
    }

    #[test]
    fn find_in_digs_through_wrappers() {
        #[derive(Debug, thiserror::Error)]
        #[error("wrapper")]
        struct Wrapper(#[source] AuthError);
        let wrapped = Wrapper(AuthError::Throttled {
            service: "AWS STS",
            attempts: 4,
            help: String::new(),
        });
        let found = AuthError::find_in(&wrapped).expect("found");
        assert!(matches!(found, AuthError::Throttled { attempts: 4, .. }));
    }
}
