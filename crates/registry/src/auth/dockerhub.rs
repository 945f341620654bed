//! Docker Hub logins: a user name and a personal access token.
//!
//! Docker Hub is registry `docker.io`, served from `registry-1.docker.io`, with the token realm
//! `https://auth.docker.io/token` and service `registry.docker.io` — all discovered from the
//! registry's challenge, so this source only has to answer for Docker Hub's names.

use std::fmt;

use async_trait::async_trait;
use secrecy::SecretString;

use super::{AuthError, Credential, RegistryAuth, canonical_registry};
use crate::reference::DOCKER_HUB;

/// A Docker Hub user name and access token (or password); `NotConfigured` for other registries.
#[derive(Clone)]
pub struct DockerHubAuth {
    username: String,
    token: SecretString,
}

impl fmt::Debug for DockerHubAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DockerHubAuth")
            .field("username", &self.username)
            .field("token", &"[redacted]")
            .finish()
    }
}

impl DockerHubAuth {
    /// A login for Docker Hub.
    pub fn new(username: impl Into<String>, token: SecretString) -> Self {
        DockerHubAuth {
            username: username.into(),
            token,
        }
    }

    /// From `DOCKERHUB_USERNAME` and `DOCKERHUB_TOKEN` (the names Docker's GitHub actions use),
    /// when both are set.
    pub fn from_env(env: &std::collections::BTreeMap<String, String>) -> Option<Self> {
        let get = |k: &str| env.get(k).filter(|v| !v.is_empty());
        Some(DockerHubAuth::new(
            get("DOCKERHUB_USERNAME")?.clone(),
            SecretString::from(get("DOCKERHUB_TOKEN")?.clone()),
        ))
    }
}

#[async_trait]
impl RegistryAuth for DockerHubAuth {
    async fn credential(&self, registry: &str) -> Result<Credential, AuthError> {
        if canonical_registry(registry) == DOCKER_HUB {
            Ok(Credential::Basic {
                username: self.username.clone(),
                password: self.token.clone(),
            })
        } else {
            Err(AuthError::not_configured(registry))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_only_for_docker_hub() {
        let auth = DockerHubAuth::new("me", SecretString::from("dckr_pat_x"));
        assert!(matches!(
            auth.credential("registry-1.docker.io").await.unwrap(),
            Credential::Basic { username, .. } if username == "me"
        ));
        assert!(
            auth.credential("ghcr.io")
                .await
                .unwrap_err()
                .is_not_configured()
        );
        assert!(!format!("{auth:?}").contains("dckr_pat_x"));
    }
}
