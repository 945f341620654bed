//! Docker's `config.json` logins, with `docker-credential-*` helpers.
//!
//! The lookup order is Docker's: `credHelpers[registry]`, then `credsStore`, then `auths`.
//! A helper is run as `docker-credential-NAME get` with the server URL on stdin and answers
//! `{"ServerURL", "Username", "Secret"}`; a user name of `<token>` means the secret is an
//! identity token. Helpers run with exactly the environment the caller injected (so `PATH`
//! decides which helper runs) and their output is never logged.
//!
//! Docker Hub's key is `https://index.docker.io/v1/`; other registries are keyed by host, with
//! or without a scheme (Docker strips both when it matches).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use secrecy::SecretString;
use serde::Deserialize;
use tokio::io::AsyncWriteExt as _;

use super::{AuthError, Credential, RegistryAuth, canonical_registry};
use crate::reference::DOCKER_HUB;

const PROVIDER: &str = "docker config";
/// Docker Hub's key in `config.json` and towards credential helpers.
pub const DOCKER_HUB_CONFIG_KEY: &str = "https://index.docker.io/v1/";
const HELPER_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;

/// The parts of `config.json` that hold logins.
#[derive(Default, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<SecretString>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<SecretString>,
    #[serde(default)]
    identitytoken: Option<SecretString>,
    #[serde(default)]
    registrytoken: Option<SecretString>,
}

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret")]
    secret: SecretString,
}

/// Logins from a Docker `config.json` (or a containers `auth.json`, which has the same shape).
pub struct DockerConfigAuth {
    path: Option<PathBuf>,
    config: ConfigFile,
    env: BTreeMap<String, String>,
}

impl fmt::Debug for DockerConfigAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DockerConfigAuth")
            .field("path", &self.path)
            .field("registries", &self.config.auths.keys().collect::<Vec<_>>())
            .field("creds_store", &self.config.creds_store)
            .field("cred_helpers", &self.config.cred_helpers)
            .finish()
    }
}

impl DockerConfigAuth {
    /// Reads `path`. A missing file means no logins; an unreadable or malformed one is an
    /// error. `env` is the environment helpers run with.
    pub fn load(path: &Path, env: BTreeMap<String, String>) -> Result<Self, AuthError> {
        let shown = path.display().to_string();
        let fail = |message: String, source: Option<crate::error::BoxError>| AuthError::BadFile {
            path: shown.clone(),
            message,
            source,
        };
        let text = match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(DockerConfigAuth {
                    path: None,
                    config: ConfigFile::default(),
                    env,
                });
            }
            Err(e) => return Err(fail("cannot read".into(), Some(Box::new(e)))),
            Ok(meta) if meta.len() > MAX_CONFIG_BYTES => {
                return Err(fail(format!("is {} bytes, too large", meta.len()), None));
            }
            Ok(_) => std::fs::read_to_string(path)
                .map_err(|e| fail("cannot read".into(), Some(Box::new(e))))?,
        };
        // serde_json's error names line and column but never echoes the document.
        let config: ConfigFile = serde_json::from_str(&text)
            .map_err(|e| fail("not a valid config.json".into(), Some(Box::new(e))))?;
        Ok(DockerConfigAuth {
            path: Some(path.to_owned()),
            config,
            env,
        })
    }

    /// Docker's default location from an environment: `$DOCKER_CONFIG/config.json`, else
    /// `$HOME/.docker/config.json`; `REGISTRY_AUTH_FILE` (podman, skopeo) wins when set.
    pub fn from_env(env: &BTreeMap<String, String>) -> Result<Self, AuthError> {
        let get = |k: &str| env.get(k).filter(|v| !v.is_empty());
        let path = if let Some(file) = get("REGISTRY_AUTH_FILE") {
            PathBuf::from(file)
        } else if let Some(dir) = get("DOCKER_CONFIG") {
            Path::new(dir).join("config.json")
        } else if let Some(home) = get("HOME") {
            Path::new(home).join(".docker/config.json")
        } else {
            return Ok(DockerConfigAuth {
                path: None,
                config: ConfigFile::default(),
                env: env.clone(),
            });
        };
        Self::load(&path, env.clone())
    }

    /// The file the logins came from, if one exists.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn server_url(registry: &str) -> String {
        if registry == DOCKER_HUB {
            DOCKER_HUB_CONFIG_KEY.to_owned()
        } else {
            registry.to_owned()
        }
    }

    fn auth_entry(&self, registry: &str) -> Option<&AuthEntry> {
        // An exact key first, then any key naming the same host.
        self.config
            .auths
            .get(&Self::server_url(registry))
            .or_else(|| {
                self.config
                    .auths
                    .iter()
                    .find(|(k, _)| canonical_registry(k) == registry)
                    .map(|(_, v)| v)
            })
    }

    async fn run_helper(&self, helper: &str, registry: &str) -> Result<Credential, AuthError> {
        let program = format!("docker-credential-{helper}");
        let fail = |message: String, source: Option<crate::error::BoxError>| {
            AuthError::failed(PROVIDER, registry, message, source)
        };
        let mut child = tokio::process::Command::new(&program)
            .arg("get")
            .env_clear()
            .envs(&self.env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| fail(format!("cannot run {program}"), Some(Box::new(e))))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A helper that fails early may exit without reading: its exit status says why.
            match stdin.write_all(Self::server_url(registry).as_bytes()).await {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    return Err(fail(format!("cannot talk to {program}"), Some(Box::new(e))));
                }
                _ => {}
            }
        }
        let output = tokio::time::timeout(HELPER_TIMEOUT, child.wait_with_output())
            .await
            .map_err(|_| fail(format!("{program} did not answer within 30 s"), None))?
            .map_err(|e| fail(format!("{program} failed"), Some(Box::new(e))))?;
        if !output.status.success() {
            // Helpers print "credentials not found in native keychain" (on stdout) when they
            // have nothing; on failure their output is an error message, not a secret.
            let said = String::from_utf8_lossy(&output.stdout).to_string()
                + &String::from_utf8_lossy(&output.stderr);
            if said.contains("credentials not found") {
                return Err(AuthError::not_configured(registry));
            }
            let said: String = said.trim().chars().take(200).collect();
            return Err(fail(
                format!("{program} failed ({}): {said}", output.status),
                None,
            ));
        }
        let answer: HelperAnswer = serde_json::from_slice(&output.stdout).map_err(|_| {
            fail(
                format!("{program} answered something that is not credentials JSON"),
                None,
            )
        })?;
        tracing::debug!(registry, helper, "credentials from helper");
        Ok(if answer.username == "<token>" {
            Credential::IdentityToken(answer.secret)
        } else {
            Credential::Basic {
                username: answer.username,
                password: answer.secret,
            }
        })
    }
}

#[async_trait]
impl RegistryAuth for DockerConfigAuth {
    async fn credential(&self, registry: &str) -> Result<Credential, AuthError> {
        let registry = canonical_registry(registry);
        let helper = self
            .config
            .cred_helpers
            .iter()
            .find(|(k, _)| canonical_registry(k) == registry)
            .map(|(_, v)| v.as_str());
        if let Some(helper) = helper {
            return self.run_helper(helper, &registry).await;
        }
        if let Some(store) = self.config.creds_store.as_deref().filter(|s| !s.is_empty()) {
            match self.run_helper(store, &registry).await {
                Err(e) if e.is_not_configured() => {}
                other => return other,
            }
        }
        let Some(entry) = self.auth_entry(&registry) else {
            return Err(AuthError::not_configured(&registry));
        };
        entry_credential(entry, &registry)
    }
}

fn entry_credential(entry: &AuthEntry, registry: &str) -> Result<Credential, AuthError> {
    use secrecy::ExposeSecret as _;
    if let Some(token) = &entry.registrytoken {
        return Ok(Credential::BearerToken(token.clone()));
    }
    if let Some(token) = &entry.identitytoken
        && !token.expose_secret().is_empty()
    {
        return Ok(Credential::IdentityToken(token.clone()));
    }
    if let Some(auth) = entry
        .auth
        .as_ref()
        .filter(|a| !a.expose_secret().is_empty())
    {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.expose_secret().trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        let Some((user, password)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
            return Err(AuthError::failed(
                PROVIDER,
                registry,
                "the `auth` entry is not base64 of USER:PASSWORD",
                None,
            ));
        };
        return Ok(Credential::basic(user, password));
    }
    match (&entry.username, &entry.password) {
        (Some(u), Some(p)) => Ok(Credential::Basic {
            username: u.clone(),
            password: p.clone(),
        }),
        _ => Err(AuthError::not_configured(registry)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret as _;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("config.json");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn basic(c: Credential) -> (String, String) {
        match c {
            Credential::Basic { username, password } => {
                (username, password.expose_secret().to_owned())
            }
            other => panic!("expected basic, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn auths_entries_by_host_and_docker_hub_key() {
        let dir = tempfile::tempdir().unwrap();
        let b64 = base64::engine::general_purpose::STANDARD;
        let text = format!(
            r#"{{"auths": {{
                "https://index.docker.io/v1/": {{"auth": "{}"}},
                "https://ghcr.io": {{"username": "gh", "password": "gh-pw"}},
                "127.0.0.1:5000": {{"identitytoken": "idtok"}}
            }}}}"#,
            b64.encode("hubuser:hub-pw")
        );
        let auth = DockerConfigAuth::load(&write(dir.path(), &text), BTreeMap::new()).unwrap();
        assert_eq!(
            basic(auth.credential("docker.io").await.unwrap()),
            ("hubuser".into(), "hub-pw".into())
        );
        assert_eq!(
            basic(auth.credential("ghcr.io").await.unwrap()),
            ("gh".into(), "gh-pw".into())
        );
        assert!(matches!(
            auth.credential("127.0.0.1:5000").await.unwrap(),
            Credential::IdentityToken(t) if t.expose_secret() == "idtok"
        ));
        assert!(
            auth.credential("quay.io")
                .await
                .unwrap_err()
                .is_not_configured()
        );
    }

    #[tokio::test]
    async fn an_auth_entry_that_is_not_user_colon_password_is_an_error_without_content() {
        let dir = tempfile::tempdir().unwrap();
        let b64 = base64::engine::general_purpose::STANDARD;
        for entry in [b64.encode("no-colon-secret"), "not base64!".to_owned()] {
            let text = format!(r#"{{"auths": {{"h.example": {{"auth": "{entry}"}}}}}}"#);
            let auth = DockerConfigAuth::load(&write(dir.path(), &text), BTreeMap::new()).unwrap();
            let err = auth.credential("h.example").await.unwrap_err();
            assert!(!err.is_not_configured(), "{err}");
            let shown = err.to_string();
            assert!(shown.contains("USER:PASSWORD"), "{shown}");
            assert!(!shown.contains("no-colon-secret"), "{shown}");
        }
    }

    #[tokio::test]
    async fn missing_file_means_no_logins_and_bad_json_is_an_error_without_content() {
        let dir = tempfile::tempdir().unwrap();
        let auth = DockerConfigAuth::load(&dir.path().join("nope.json"), BTreeMap::new()).unwrap();
        assert!(
            auth.credential("ghcr.io")
                .await
                .unwrap_err()
                .is_not_configured()
        );
        let path = write(
            dir.path(),
            r#"{"auths": {"h": {"password": "leaky-secret" "#,
        );
        let err = DockerConfigAuth::load(&path, BTreeMap::new()).unwrap_err();
        let chain = format!("{err} {:?}", std::error::Error::source(&err));
        assert!(!chain.contains("leaky-secret"), "{chain}");
    }

    #[cfg(unix)]
    fn helper(dir: &Path, name: &str, script: &str) {
        use std::os::unix::fs::PermissionsExt as _;
        let path = dir.join(format!("docker-credential-{name}"));
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn helpers_are_run_in_docker_order() {
        let dir = tempfile::tempdir().unwrap();
        // A real helper process: echoes the server URL it was asked about into the user name.
        helper(
            dir.path(),
            "ferrytest",
            "#!/bin/sh\nread url\n[ \"$1\" = get ] || exit 2\n\
             case \"$url\" in nothere*) echo 'credentials not found in native keychain'; exit 1;; esac\n\
             printf '{\"ServerURL\":\"%s\",\"Username\":\"u-%s\",\"Secret\":\"helper-secret\"}' \"$url\" \"$url\"\n",
        );
        helper(
            dir.path(),
            "tokenhelper",
            "#!/bin/sh\nread url\nprintf '{\"Username\":\"<token>\",\"Secret\":\"refresh-1\"}'\n",
        );
        helper(
            dir.path(),
            "broken",
            "#!/bin/sh\necho 'keychain locked' >&2\nexit 3\n",
        );
        let text = r#"{
            "credsStore": "ferrytest",
            "credHelpers": {"tok.example": "tokenhelper", "broken.example": "broken"},
            "auths": {"nothere.example": {"username": "file-user", "password": "file-pw"}}
        }"#;
        let env = BTreeMap::from([(
            "PATH".to_owned(),
            format!("{}:/usr/bin:/bin", dir.path().display()),
        )]);
        let auth = DockerConfigAuth::load(&write(dir.path(), text), env).unwrap();
        assert_eq!(
            basic(auth.credential("ghcr.io").await.unwrap()),
            ("u-ghcr.io".into(), "helper-secret".into())
        );
        assert_eq!(
            basic(auth.credential("docker.io").await.unwrap()).0,
            "u-https://index.docker.io/v1/"
        );
        assert!(matches!(
            auth.credential("tok.example").await.unwrap(),
            Credential::IdentityToken(t) if t.expose_secret() == "refresh-1"
        ));
        // The store has nothing: fall back to auths.
        assert_eq!(
            basic(auth.credential("nothere.example").await.unwrap()),
            ("file-user".into(), "file-pw".into())
        );
        let err = auth.credential("broken.example").await.unwrap_err();
        assert!(!err.is_not_configured());
        assert!(err.to_string().contains("keychain locked"), "{err}");
    }

    #[test]
    fn from_env_follows_docker_config_and_registry_auth_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), r#"{"auths": {}}"#).unwrap();
        let env = BTreeMap::from([("DOCKER_CONFIG".to_owned(), dir.path().display().to_string())]);
        let auth = DockerConfigAuth::from_env(&env).unwrap();
        assert_eq!(auth.path(), Some(dir.path().join("config.json").as_path()));
        let env = BTreeMap::from([(
            "REGISTRY_AUTH_FILE".to_owned(),
            dir.path().join("auth.json").display().to_string(),
        )]);
        assert_eq!(DockerConfigAuth::from_env(&env).unwrap().path(), None);
    }
}
