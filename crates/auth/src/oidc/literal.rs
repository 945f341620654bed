//! A token handed over as is.

use std::fmt;

use secrecy::SecretString;

use super::{OidcToken, OidcTokenSource};
use crate::env::Env;
use crate::error::AuthError;

/// A fixed token: from the embedding program, or from an environment variable a CI system
/// filled. It is parsed on each request, so a malformed token is reported where it is used.
#[derive(Clone)]
pub struct StaticToken {
    token: Option<SecretString>,
    origin: String,
}

impl fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticToken")
            .field("origin", &self.origin)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl StaticToken {
    /// This token.
    pub fn new(token: SecretString) -> Self {
        StaticToken {
            token: Some(token),
            origin: "static token".to_owned(),
        }
    }

    /// The token in the variable `var`; not configured when it is unset.
    pub fn from_env_var(env: &Env, var: &str) -> Self {
        StaticToken {
            token: env
                .get(var)
                .map(|t| SecretString::from(t.trim().to_owned())),
            origin: format!("variable {var}"),
        }
    }
}

#[async_trait::async_trait]
impl OidcTokenSource for StaticToken {
    async fn token(&self, _audience: &str) -> Result<OidcToken, AuthError> {
        match &self.token {
            Some(token) => OidcToken::parse(token.clone(), self.origin.clone()),
            None => Err(AuthError::NotConfigured {
                what: self.origin.clone(),
                help: format!("set {} to the OIDC token", self.origin),
            }),
        }
    }

    fn describe(&self) -> String {
        self.origin.clone()
    }
}
