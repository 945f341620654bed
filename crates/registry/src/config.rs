//! `[env.NAME.registry]` in `ferry.toml`: where an environment's images live.
//!
//! ```toml
//! [env.prod.registry]
//! provider = "ecr"                                         # dockerhub | ecr | acr | oci
//! host = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"   # dockerhub defaults to docker.io
//! prefix = "shop"                                          # repositories live under it
//! immutable = true                                         # never move an existing tag
//! ```

use serde::{Deserialize, Serialize};

use crate::reference::{DOCKER_HUB, ImageRef, ReferenceError, validate_domain};

/// Which kind of registry, which decides how ferry logs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Docker Hub (`DOCKERHUB_USERNAME`/`DOCKERHUB_TOKEN`, or docker config).
    Dockerhub,
    /// Amazon ECR (GetAuthorizationToken with the environment's AWS credentials).
    Ecr,
    /// Azure Container Registry (Azure AD token exchanged for an ACR token).
    Acr,
    /// Any OCI registry (docker config, or a user name and password).
    Oci,
}

impl Provider {
    /// The config value.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Dockerhub => "dockerhub",
            Provider::Ecr => "ecr",
            Provider::Acr => "acr",
            Provider::Oci => "oci",
        }
    }
}

/// An environment's registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// The kind of registry.
    pub provider: Provider,
    /// The registry host (`ghcr.io`, `x.azurecr.io`, `127.0.0.1:5000`); Docker Hub's default
    /// is `docker.io`.
    #[serde(default)]
    pub host: Option<String>,
    /// A repository path prefix (`team/shop`): `ferry image push ... app` goes to
    /// `HOST/PREFIX/app`.
    #[serde(default)]
    pub prefix: Option<String>,
    /// Refuse to move an existing tag to another digest (for production).
    #[serde(default)]
    pub immutable: bool,
}

/// A problem with a registry config: the key it is about, what is wrong, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The key under `[env.NAME.registry]`.
    pub key: &'static str,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
}

impl RegistryConfig {
    /// Checks the values that serde cannot.
    pub fn validate(&self) -> Result<(), ConfigProblem> {
        match (&self.host, self.provider) {
            (None, Provider::Dockerhub) => {}
            (None, p) => {
                return Err(ConfigProblem {
                    key: "host",
                    message: format!("provider `{}` needs a host", p.as_str()),
                    help: Some(match p {
                        Provider::Ecr => {
                            "host = \"ACCOUNT.dkr.ecr.REGION.amazonaws.com\"".to_owned()
                        }
                        Provider::Acr => "host = \"NAME.azurecr.io\"".to_owned(),
                        _ => "host = \"registry.example.com\"".to_owned(),
                    }),
                });
            }
            (Some(h), _) => {
                if validate_domain(h).is_err() {
                    return Err(ConfigProblem {
                        key: "host",
                        message: format!("`{h}` is not a registry host"),
                        help: Some(
                            "a host name or IP address with an optional :port, no scheme or path"
                                .to_owned(),
                        ),
                    });
                }
            }
        }
        if let Some(prefix) = &self.prefix {
            let probe = format!("{}/{prefix}/x", self.registry());
            if let Err(e) = ImageRef::parse(&probe) {
                return Err(ConfigProblem {
                    key: "prefix",
                    message: format!("`{prefix}` is not a repository path prefix: {e}"),
                    help: Some(
                        "lower-case path components separated by /, e.g. \"team/shop\"".to_owned(),
                    ),
                });
            }
        }
        Ok(())
    }

    /// The registry host.
    pub fn registry(&self) -> String {
        self.host.clone().unwrap_or_else(|| DOCKER_HUB.to_owned())
    }

    /// Places a reference in this registry: a name written without a registry
    /// (`shop`, `shop:v1`) becomes `HOST/PREFIX/shop`; a name with a registry is kept.
    pub fn place(&self, reference: &str) -> Result<ImageRef, ReferenceError> {
        if has_explicit_registry(reference) {
            return ImageRef::parse(reference);
        }
        let prefix = self
            .prefix
            .as_deref()
            .map(|p| format!("{}/", p.trim_matches('/')))
            .unwrap_or_default();
        ImageRef::parse(&format!("{}/{prefix}{reference}", self.registry()))
    }
}

/// Whether a reference names its registry (`ghcr.io/a`, `localhost:5000/a`), as opposed to a
/// bare name Docker would put on Docker Hub.
pub fn has_explicit_registry(reference: &str) -> bool {
    match reference.split_once('/') {
        Some((first, _)) => {
            first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase())
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RegistryConfig, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn places_bare_names_under_host_and_prefix() {
        let cfg = parse("provider = \"oci\"\nhost = \"ghcr.io\"\nprefix = \"acme/shop\"").unwrap();
        cfg.validate().unwrap();
        assert_eq!(
            cfg.place("web:abc").unwrap().to_string(),
            "ghcr.io/acme/shop/web:abc"
        );
        assert_eq!(cfg.place("quay.io/x/y").unwrap().to_string(), "quay.io/x/y");
        let hub = parse("provider = \"dockerhub\"\nprefix = \"acme\"").unwrap();
        hub.validate().unwrap();
        assert_eq!(hub.place("web").unwrap().to_string(), "docker.io/acme/web");
    }

    #[test]
    fn bad_values_name_their_key() {
        let unknown = parse("provider = \"oci\"\nhost = \"h.io\"\ncolour = 1");
        assert!(unknown.unwrap_err().to_string().contains("unknown field"));
        let wrong_provider = parse("provider = \"gcr\"");
        assert!(wrong_provider.is_err());
        let no_host = parse("provider = \"ecr\"").unwrap();
        assert_eq!(no_host.validate().unwrap_err().key, "host");
        let bad_host = parse("provider = \"oci\"\nhost = \"https://h.io/x\"").unwrap();
        assert_eq!(bad_host.validate().unwrap_err().key, "host");
        let bad_prefix = parse("provider = \"oci\"\nhost = \"h.io\"\nprefix = \"Team\"").unwrap();
        assert_eq!(bad_prefix.validate().unwrap_err().key, "prefix");
    }

    #[test]
    fn explicit_registries() {
        assert!(has_explicit_registry("ghcr.io/a"));
        assert!(has_explicit_registry("localhost/a"));
        assert!(has_explicit_registry("127.0.0.1:5000/a"));
        assert!(!has_explicit_registry("a/b"));
        assert!(!has_explicit_registry("nginx:1.2"));
    }
}
