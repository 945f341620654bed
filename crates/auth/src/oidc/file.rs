//! A token file that something else keeps fresh (the kubelet's projected service-account token,
//! a CI step).

use std::path::{Path, PathBuf};

use secrecy::SecretString;
use tokio::io::AsyncReadExt as _;

use super::{MAX_TOKEN_BYTES, OidcToken, OidcTokenSource};
use crate::env::Env;
use crate::error::AuthError;

/// Reads the token from a file on every request (platforms rotate the file in place).
#[derive(Debug, Clone)]
pub struct TokenFile {
    path: Option<PathBuf>,
    /// The variable the path came from, for messages.
    var: Option<String>,
}

impl TokenFile {
    /// The file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        TokenFile {
            path: Some(path.into()),
            var: None,
        }
    }

    /// The file named by the variable `var` (e.g. `AWS_WEB_IDENTITY_TOKEN_FILE`); not configured
    /// when the variable is unset.
    pub fn from_env_var(env: &Env, var: &str) -> Self {
        TokenFile {
            path: env.get(var).map(PathBuf::from),
            var: Some(var.to_owned()),
        }
    }

    fn origin(&self, path: &Path) -> String {
        match &self.var {
            Some(var) => format!("token file {} ({var})", path.display()),
            None => format!("token file {}", path.display()),
        }
    }
}

#[async_trait::async_trait]
impl OidcTokenSource for TokenFile {
    async fn token(&self, _audience: &str) -> Result<OidcToken, AuthError> {
        let Some(path) = &self.path else {
            let var = self.var.as_deref().unwrap_or("a token file");
            return Err(AuthError::NotConfigured {
                what: format!("token file ({var})"),
                help: format!("set {var} to the path of a file holding the OIDC token"),
            });
        };
        let origin = self.origin(path);
        let read_err = |source: std::io::Error| AuthError::TokenFile {
            path: path.clone(),
            help: match &self.var {
                Some(var) => format!(
                    "{var} points at a file that cannot be read; check the path and that \
                     whatever writes the token (a CI step, the kubelet) has run"
                ),
                None => "check [env.NAME.auth.oidc] file and that whatever writes the token \
                         has run"
                    .to_owned(),
            },
            source,
        };
        let file = tokio::fs::File::open(path).await.map_err(read_err)?;
        // Read at most one byte past the limit, so a wrong path (a log, an image) is refused
        // without reading it all.
        let mut buf = Vec::new();
        file.take(MAX_TOKEN_BYTES as u64 + 1)
            .read_to_end(&mut buf)
            .await
            .map_err(read_err)?;
        let text = String::from_utf8(buf).map_err(|_| AuthError::MalformedToken {
            origin: origin.clone(),
            reason: "the file is not UTF-8 text".to_owned(),
            help: "the file must hold a single OIDC JWT".to_owned(),
        })?;
        OidcToken::parse(SecretString::from(text.trim().to_owned()), origin)
    }

    fn describe(&self) -> String {
        match (&self.path, &self.var) {
            (Some(path), _) => self.origin(path),
            (None, Some(var)) => format!("token file ({var}, unset)"),
            (None, None) => "token file (unset)".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oidc::tests::jwt;

    #[tokio::test]
    async fn reads_and_trims_the_file_each_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(
            &path,
            format!("{}\n", jwt(&serde_json::json!({"sub": "one"}))),
        )
        .unwrap();
        let env = Env::from_pairs([("AWS_WEB_IDENTITY_TOKEN_FILE", path.to_str().unwrap())]);
        let source = TokenFile::from_env_var(&env, "AWS_WEB_IDENTITY_TOKEN_FILE");
        let token = source.token("sts.amazonaws.com").await.unwrap();
        assert_eq!(token.claims().sub.as_deref(), Some("one"));
        assert!(token.origin().contains("AWS_WEB_IDENTITY_TOKEN_FILE"));
        // Rotated in place: the next request sees the new token.
        std::fs::write(&path, jwt(&serde_json::json!({"sub": "two"}))).unwrap();
        let token = source.token("sts.amazonaws.com").await.unwrap();
        assert_eq!(token.claims().sub.as_deref(), Some("two"));
    }

    #[tokio::test]
    async fn unset_variable_is_not_configured_and_missing_file_is_an_error() {
        let source = TokenFile::from_env_var(&Env::default(), "AZURE_FEDERATED_TOKEN_FILE");
        assert!(source.token("x").await.unwrap_err().is_not_configured());

        let source = TokenFile::new("/nonexistent/ferry/token");
        let err = source.token("x").await.unwrap_err();
        assert!(matches!(err, AuthError::TokenFile { .. }), "{err:?}");
        assert!(err.to_string().contains("/nonexistent/ferry/token"));
    }

    #[tokio::test]
    async fn oversized_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        std::fs::write(&path, vec![b'a'; MAX_TOKEN_BYTES + 100]).unwrap();
        let err = TokenFile::new(&path).token("x").await.unwrap_err();
        assert!(matches!(err, AuthError::MalformedToken { .. }), "{err:?}");
    }
}
