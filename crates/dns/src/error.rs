//! The one error type of ferry-dns.
//!
//! Each variant says what to fix. `Display` never repeats the source (the CLI prints the chain),
//! and no variant ever holds a secret: tokens and TSIG keys stay in the providers.

use std::time::Duration;

/// A boxed error from a transport or SDK, kept as the `source` of a [`DnsError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong while planning, applying or verifying DNS changes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DnsError {
    /// A DNS name is not valid (bad characters, label too long, ...).
    #[error("invalid DNS name `{name}`: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A record value is not valid for its type (an A record that is not an IPv4 address, ...).
    #[error("invalid {record_type} record value `{value}` at {name}: {reason}")]
    InvalidValue {
        /// The record's name.
        name: String,
        /// The record type.
        record_type: String,
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The input is wrong in a way the user must fix (a name outside the zone, a CNAME at the
    /// apex of a provider that cannot flatten it, ...).
    #[error("{0}")]
    Invalid(String),
    /// Credentials are not configured (no API token, no TSIG secret, no AWS credentials).
    #[error("{what} is not configured: {help}")]
    NotConfigured {
        /// What is missing.
        what: String,
        /// How to configure it.
        help: String,
    },
    /// The provider has no zone by that name, or the credentials cannot see it.
    #[error("{provider}: zone `{zone}` was not found{detail}")]
    ZoneNotFound {
        /// The provider.
        provider: &'static str,
        /// The zone.
        zone: String,
        /// More detail (starting with "; "), or empty.
        detail: String,
    },
    /// The credentials were refused, or they may not edit this zone.
    #[error("{provider}: not allowed to {action} zone `{zone}`: {detail}")]
    Unauthorized {
        /// The provider.
        provider: &'static str,
        /// The zone.
        zone: String,
        /// What was attempted ("read", "edit").
        action: &'static str,
        /// The server's explanation and what to do about it.
        detail: String,
    },
    /// The server rejected the TSIG signature of an RFC 2136 request.
    #[error("{server}: TSIG key `{key}` was rejected ({code}): {help}")]
    TsigRejected {
        /// The server.
        server: String,
        /// The key's name.
        key: String,
        /// The TSIG error code (BADSIG, BADKEY, BADTIME).
        code: String,
        /// What to check.
        help: String,
    },
    /// The provider kept answering "too many requests" until the retry budget ran out.
    #[error("{provider}: rate limited; gave up after {attempts} attempts{after}")]
    RateLimited {
        /// The provider.
        provider: &'static str,
        /// How many attempts were made.
        attempts: u32,
        /// The last Retry-After the server asked for, formatted (" (server asked to wait 30s)"), or empty.
        after: String,
    },
    /// The zone changed between planning and applying (a prerequisite failed, an ETag did not
    /// match, a record to update was gone). Nothing was changed by this batch.
    #[error("{provider}: the zone changed since it was read ({detail}); run the command again")]
    ZoneChanged {
        /// The provider.
        provider: &'static str,
        /// What differed.
        detail: String,
    },
    /// The provider's API answered with an error.
    #[error("{provider}: {operation} failed: {message}")]
    Api {
        /// The provider.
        provider: &'static str,
        /// What was attempted.
        operation: String,
        /// HTTP status, when there was one.
        status: Option<u16>,
        /// The provider's error code(s) and message(s).
        message: String,
        /// Whether trying again may help (5xx, timeouts).
        retryable: bool,
    },
    /// The provider could not be reached, or answered with something that is not its API.
    #[error("{provider}: {operation} failed")]
    Transport {
        /// The provider.
        provider: &'static str,
        /// What was attempted.
        operation: String,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
    /// Some changes of a non-atomic provider were applied before one failed. The changes are
    /// ordered so that the names kept resolving: see the crate docs.
    #[error(
        "{provider}: applied {applied} of {total} changes, then change {failed_change} failed; \
         the names still resolve (changes are ordered create/update before delete); run the \
         command again to finish"
    )]
    PartiallyApplied {
        /// The provider.
        provider: &'static str,
        /// How many changes were applied.
        applied: usize,
        /// How many changes there were.
        total: usize,
        /// A description of the change that failed.
        failed_change: String,
        /// Why it failed.
        #[source]
        source: Box<DnsError>,
    },
}

impl DnsError {
    /// Whether retrying the same request may succeed (server errors, time-outs, rate limits).
    pub fn is_retryable(&self) -> bool {
        match self {
            DnsError::Api { retryable, .. } => *retryable,
            DnsError::Transport { .. } => true,
            _ => false,
        }
    }

    /// Whether this is an authentication or authorisation problem, missing credentials
    /// included (for exit codes).
    pub fn is_auth(&self) -> bool {
        matches!(
            self,
            DnsError::Unauthorized { .. }
                | DnsError::TsigRejected { .. }
                | DnsError::NotConfigured { .. }
        )
    }

    /// Whether this is a problem with the input that the user must fix (for exit codes).
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            DnsError::InvalidName { .. }
                | DnsError::InvalidValue { .. }
                | DnsError::Invalid(_)
                | DnsError::ZoneNotFound { .. }
        )
    }

    /// How the failure of a change leaves a provider that applies changes one after another:
    /// as it is when nothing was applied yet, else as [`DnsError::PartiallyApplied`], `applied`
    /// changes of `total` in.
    #[cfg(any(feature = "cloudflare", feature = "azure", feature = "rfc2136"))]
    pub(crate) fn after_applied(
        self,
        provider: &'static str,
        applied: usize,
        total: usize,
        failed_change: &crate::change::Change,
    ) -> Self {
        if applied == 0 {
            return self;
        }
        DnsError::PartiallyApplied {
            provider,
            applied,
            total,
            failed_change: failed_change.to_string(),
            source: Box::new(self),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        DnsError::Invalid(message.into())
    }

    /// A [`DnsError::Transport`].
    pub fn transport(
        provider: &'static str,
        operation: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        DnsError::Transport {
            provider,
            operation: operation.into(),
            source: source.into(),
        }
    }
}

/// Formats a Retry-After for [`DnsError::RateLimited`].
pub(crate) fn retry_after_note(after: Option<Duration>) -> String {
    match after {
        Some(d) => format!(" (server asked to wait {}s)", d.as_secs()),
        None => String::new(),
    }
}
