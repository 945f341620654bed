//! Image references and digests, parsed strictly and normalised the way Docker does.
//!
//! The grammar is distribution's `reference` package: `[domain/]path[:tag][@digest]`, where a
//! first path component counts as a domain only when it contains `.` or `:`, is `localhost`, or
//! has an upper-case letter. A name without a domain is on Docker Hub (`docker.io`), and a
//! one-component Docker Hub name lives under `library/`. `index.docker.io` is an alias of
//! `docker.io`. Repository paths are lower-case; the whole name is at most 255 characters; tags
//! are `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`; digests are `sha256:` (64 hex) or `sha512:`
//! (128 hex), lower-case.
//!
//! [`ImageRef`]'s `Display` is the full normalised form (`docker.io/library/nginx:1.27`), which
//! parses back to the same value; [`ImageRef::familiar`] is the short form Docker prints.

use std::fmt;
use std::str::FromStr;

use sha2::Digest as _;

/// Docker Hub's registry name in references.
pub const DOCKER_HUB: &str = "docker.io";
/// The host that serves Docker Hub's registry API.
pub const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";
/// The longest image name (domain and path) distribution accepts.
pub const NAME_MAX_LEN: usize = 255;
/// The longest tag.
pub const TAG_MAX_LEN: usize = 128;

/// Why a reference, tag or digest did not parse. The message names the offending part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReferenceError {
    /// The input is empty.
    #[error("empty image reference")]
    Empty,
    /// The name (domain and path) is longer than [`NAME_MAX_LEN`].
    #[error("image name `{name}` is {len} characters long; the limit is {NAME_MAX_LEN}")]
    NameTooLong {
        /// The name.
        name: String,
        /// Its length.
        len: usize,
    },
    /// The registry part is not a valid host name, IP address or `host:port`.
    #[error("invalid registry `{0}` (expected a host name or IP address, with an optional :port)")]
    InvalidDomain(String),
    /// The repository path has upper-case letters.
    #[error("repository name `{0}` must be lower-case")]
    UpperCase(String),
    /// The repository path is malformed.
    #[error(
        "invalid repository name `{0}` (path components are lower-case letters and digits, \
         separated by `.`, `_`, `__` or dashes, joined by `/`)"
    )]
    InvalidPath(String),
    /// A 64-character hex string was given as a name: Docker forbids it (it is an image ID).
    #[error(
        "`{0}` looks like an image ID, not a repository name; use NAME@sha256:{0} for a digest"
    )]
    LooksLikeId(String),
    /// The tag is malformed.
    #[error(
        "invalid tag `{0}` (tags are letters, digits, `_`, `.` and `-`, start with a letter, digit \
         or `_`, and are at most {TAG_MAX_LEN} characters)"
    )]
    InvalidTag(String),
    /// The reference holds `USER:PASSWORD@` (never repeated in the message).
    #[error(
        "an image reference cannot hold credentials (`USER:PASSWORD@HOST/...`); give them to the \
         registry login instead"
    )]
    Credentials,
    /// The reference starts with a URL scheme (`https://`).
    #[error(
        "`{0}://` is a URL scheme; an image reference has none: [REGISTRY/]REPOSITORY[:TAG][@DIGEST]"
    )]
    Scheme(String),
    /// The digest is malformed or uses an algorithm ferry does not verify.
    #[error("invalid digest `{digest}`: {reason}")]
    InvalidDigest {
        /// The digest as given.
        digest: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// A digest algorithm ferry can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// SHA-256, the algorithm every registry uses.
    Sha256,
    /// SHA-512.
    Sha512,
}

impl Algorithm {
    /// The algorithm's name in a digest string.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    /// A fresh incremental hasher for this algorithm.
    pub fn hasher(self) -> Hasher {
        match self {
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }
}

/// An incremental digest computation. `Clone` is cheap (the hash state is ~200 bytes), which is
/// what lets an interrupted upload resume without re-reading everything it already sent.
#[derive(Clone)]
pub enum Hasher {
    /// SHA-256 state.
    Sha256(sha2::Sha256),
    /// SHA-512 state.
    Sha512(sha2::Sha512),
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hasher::Sha256(_) => f.write_str("Hasher(sha256)"),
            Hasher::Sha512(_) => f.write_str("Hasher(sha512)"),
        }
    }
}

impl Hasher {
    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }

    /// The digest of everything fed.
    pub fn finish(self) -> Digest {
        match self {
            Hasher::Sha256(h) => Digest {
                algorithm: Algorithm::Sha256,
                hex: hex::encode(h.finalize()),
            },
            Hasher::Sha512(h) => Digest {
                algorithm: Algorithm::Sha512,
                hex: hex::encode(h.finalize()),
            },
        }
    }
}

/// A content digest, `algorithm:hex`, validated (known algorithm, exact length, lower-case hex).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

impl Digest {
    /// Parses `sha256:<64 hex>` or `sha512:<128 hex>`.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        let bad = |reason| ReferenceError::InvalidDigest {
            digest: s.to_owned(),
            reason,
        };
        let (alg, hex) = s
            .split_once(':')
            .ok_or_else(|| bad("expected ALGORITHM:HEX, e.g. sha256:…"))?;
        let algorithm = match alg {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            "" => return Err(bad("the algorithm is missing")),
            _ if alg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+._-".contains(c)) =>
            {
                return Err(bad(
                    "unsupported algorithm (ferry verifies sha256 and sha512)",
                ));
            }
            _ => return Err(bad("malformed algorithm")),
        };
        if hex.len() != algorithm.hex_len() {
            return Err(bad(match algorithm {
                Algorithm::Sha256 => "a sha256 digest has 64 hex characters",
                Algorithm::Sha512 => "a sha512 digest has 128 hex characters",
            }));
        }
        if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad("the hex part must be lower-case hexadecimal"));
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_owned(),
        })
    }

    /// The SHA-256 digest of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Self {
        Digest {
            algorithm: Algorithm::Sha256,
            hex: hex::encode(sha2::Sha256::digest(bytes)),
        }
    }

    /// The digest of `bytes` with this digest's algorithm (to verify content against it).
    pub fn compute_like(&self, bytes: &[u8]) -> Self {
        let mut h = self.algorithm.hasher();
        h.update(bytes);
        h.finish()
    }

    /// Whether `bytes` hash to this digest.
    pub fn matches(&self, bytes: &[u8]) -> bool {
        self.compute_like(bytes) == *self
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The hex part.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The first 12 hex characters, for short human output.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

impl FromStr for Digest {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A validated tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

impl Tag {
    /// Parses a tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        let mut chars = s.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if first_ok && rest_ok && s.len() <= TAG_MAX_LEN {
            Ok(Tag(s.to_owned()))
        } else {
            Err(ReferenceError::InvalidTag(s.to_owned()))
        }
    }

    /// The tag `latest`, used when a reference names neither tag nor digest.
    pub fn latest() -> Self {
        Tag("latest".to_owned())
    }

    /// The tag text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Tag {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Tag::parse(s)
    }
}

/// Where `USER:PASSWORD@` ends in text meant as a reference: the last `@` with a `/` after
/// it (a digest's `@` never has one).
fn userinfo_end(s: &str) -> Option<usize> {
    s.rmatch_indices('@')
        .map(|(i, _)| i)
        .find(|&i| s[i..].contains('/'))
}

/// `text` with any `USER:PASSWORD@` it holds replaced by `***@`, for echoing user input that
/// should have been a reference (`https://u:p@host/repo` becomes `https://***@host/repo`).
pub fn redact_credentials(text: &str) -> std::borrow::Cow<'_, str> {
    match userinfo_end(text) {
        Some(end) => {
            let start = text.find("://").map_or(0, |i| i + 3).min(end);
            format!("{}***{}", &text[..start], &text[end..]).into()
        }
        None => text.into(),
    }
}

/// An image reference: registry, repository, and optionally a tag and/or a digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    registry: String,
    repository: String,
    tag: Option<Tag>,
    digest: Option<Digest>,
}

impl ImageRef {
    /// Parses and normalises a reference (`nginx`, `ghcr.io/o/r:v1`, `localhost:5000/a@sha256:…`).
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        if userinfo_end(s).is_some() {
            return Err(ReferenceError::Credentials);
        }
        if let Some((scheme, _)) = s.split_once("://") {
            return Err(ReferenceError::Scheme(scheme.to_owned()));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((rest, d)) => (rest, Some(Digest::parse(d)?)),
            None => (s, None),
        };
        // A tag is after the last ':' that follows the last '/' (a ':' before it is a port).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                (&rest[..at], Some(Tag::parse(&rest[at + 1..])?))
            }
            None => (rest, None),
        };
        if name.is_empty() {
            return Err(ReferenceError::InvalidPath(name.to_owned()));
        }
        if name.len() > NAME_MAX_LEN {
            return Err(ReferenceError::NameTooLong {
                name: name.to_owned(),
                len: name.len(),
            });
        }
        let (registry, path) = split_domain(name);
        let registry = match registry {
            Some(d) => {
                validate_domain(d)?;
                if d == "index.docker.io" {
                    DOCKER_HUB.to_owned()
                } else {
                    d.to_owned()
                }
            }
            None => {
                if is_hex64(path) {
                    return Err(ReferenceError::LooksLikeId(path.to_owned()));
                }
                DOCKER_HUB.to_owned()
            }
        };
        validate_path(path)?;
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_owned()
        };
        let full_len = registry.len() + 1 + repository.len();
        if full_len > NAME_MAX_LEN {
            return Err(ReferenceError::NameTooLong {
                name: format!("{registry}/{repository}"),
                len: full_len,
            });
        }
        Ok(ImageRef {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// A reference to `repository` on `registry`, validated like [`ImageRef::parse`].
    pub fn new(registry: &str, repository: &str) -> Result<Self, ReferenceError> {
        ImageRef::parse(&format!("{registry}/{repository}")).and_then(|r| {
            if r.tag.is_some() || r.digest.is_some() {
                Err(ReferenceError::InvalidPath(repository.to_owned()))
            } else {
                Ok(r)
            }
        })
    }

    /// The registry as written in references (`docker.io`, `127.0.0.1:5000`, `x.dkr.ecr…`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The host (and port) that serves this registry's API: Docker Hub's API is on
    /// `registry-1.docker.io`.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API_HOST
        } else {
            &self.registry
        }
    }

    /// The repository path (`library/nginx`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if one was given.
    pub fn tag(&self) -> Option<&Tag> {
        self.tag.as_ref()
    }

    /// The digest, if one was given.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What to ask the registry for: the digest when there is one, else the tag, else `latest`.
    pub fn reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.to_string(),
            (None, None) => "latest".to_owned(),
        }
    }

    /// The same repository with this tag (and no digest).
    #[must_use]
    pub fn with_tag(&self, tag: Tag) -> Self {
        ImageRef {
            tag: Some(tag),
            digest: None,
            ..self.clone()
        }
    }

    /// The same repository pinned to this digest (the tag is kept for display).
    #[must_use]
    pub fn with_digest(&self, digest: Digest) -> Self {
        ImageRef {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The same repository with neither tag nor digest.
    #[must_use]
    pub fn repo_only(&self) -> Self {
        ImageRef {
            tag: None,
            digest: None,
            ..self.clone()
        }
    }

    /// `registry/repository`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The short form Docker prints: `nginx:latest` for `docker.io/library/nginx:latest`.
    pub fn familiar(&self) -> String {
        let mut out = if self.registry == DOCKER_HUB {
            self.repository
                .strip_prefix("library/")
                .filter(|p| !p.contains('/'))
                .unwrap_or(&self.repository)
                .to_owned()
        } else {
            self.name()
        };
        push_suffix(&mut out, self.tag.as_ref(), self.digest.as_ref());
        out
    }

    /// Whether both name the same repository on the same registry.
    pub fn same_repository(&self, other: &ImageRef) -> bool {
        self.registry == other.registry && self.repository == other.repository
    }
}

fn push_suffix(out: &mut String, tag: Option<&Tag>, digest: Option<&Digest>) {
    if let Some(t) = tag {
        out.push(':');
        out.push_str(t.as_str());
    }
    if let Some(d) = digest {
        out.push('@');
        out.push_str(&d.to_string());
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = self.name();
        push_suffix(&mut out, self.tag.as_ref(), self.digest.as_ref());
        f.write_str(&out)
    }
}

impl FromStr for ImageRef {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ImageRef::parse(s)
    }
}

impl serde::Serialize for ImageRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ImageRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ImageRef::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Splits off the domain the way distribution's `splitDockerDomain` does.
fn split_domain(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `host[:port]`, where host is a DNS name, an IPv4 address or a bracketed IPv6 address.
pub(crate) fn validate_domain(d: &str) -> Result<(), ReferenceError> {
    let bad = || ReferenceError::InvalidDomain(d.to_owned());
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or_else(bad)?;
        v6.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
        match after {
            "" => (None, None),
            p => (None, Some(p.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else {
        match d.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(d), None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) || port.len() > 5)
    {
        return Err(bad());
    }
    if let Some(host) = host {
        let ok = !host.is_empty()
            && host.split('.').all(|label| {
                let b = label.as_bytes();
                !b.is_empty()
                    && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
                    && b[0] != b'-'
                    && b[b.len() - 1] != b'-'
            });
        if !ok {
            return Err(bad());
        }
    }
    Ok(())
}

/// `component(/component)*`, each `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn validate_path(path: &str) -> Result<(), ReferenceError> {
    if path.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(ReferenceError::UpperCase(path.to_owned()));
    }
    let component_ok = |c: &str| {
        let b = c.as_bytes();
        if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
            return false;
        }
        let mut i = 0;
        while i < b.len() {
            if is_alnum(b[i]) {
                i += 1;
                continue;
            }
            // A separator run: ".", "_", "__", or one or more "-".
            let start = i;
            while i < b.len() && !is_alnum(b[i]) {
                i += 1;
            }
            let sep = &c[start..i];
            let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|x| x == b'-');
            if !ok {
                return false;
            }
        }
        true
    };
    if path.split('/').all(component_ok) {
        Ok(())
    } else {
        Err(ReferenceError::InvalidPath(path.to_owned()))
    }
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn parts(s: &str) -> (String, String, Option<String>, Option<String>) {
        let r = ImageRef::parse(s).unwrap();
        (
            r.registry().to_owned(),
            r.repository().to_owned(),
            r.tag().map(|t| t.to_string()),
            r.digest().map(|d| d.to_string()),
        )
    }

    #[test]
    fn docker_normalisation() {
        let t = |s: &str| Some(s.to_owned());
        assert_eq!(
            parts("nginx"),
            ("docker.io".into(), "library/nginx".into(), None, None)
        );
        assert_eq!(
            parts("nginx:1.27"),
            ("docker.io".into(), "library/nginx".into(), t("1.27"), None)
        );
        assert_eq!(
            parts("bitnami/redis"),
            ("docker.io".into(), "bitnami/redis".into(), None, None)
        );
        assert_eq!(
            parts("index.docker.io/nginx"),
            ("docker.io".into(), "library/nginx".into(), None, None)
        );
        assert_eq!(
            parts("localhost/app"),
            ("localhost".into(), "app".into(), None, None)
        );
        assert_eq!(
            parts("localhost:5000/a/b:v1"),
            ("localhost:5000".into(), "a/b".into(), t("v1"), None)
        );
        assert_eq!(
            parts(&format!("127.0.0.1:5020/app:v1@{D}")),
            ("127.0.0.1:5020".into(), "app".into(), t("v1"), t(D))
        );
        assert_eq!(
            parts("[::1]:5000/app"),
            ("[::1]:5000".into(), "app".into(), None, None)
        );
        assert_eq!(
            parts("Registry/app"),
            ("Registry".into(), "app".into(), None, None)
        );
        assert_eq!(
            parts("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/shop:abc123"),
            (
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com".into(),
                "team/shop".into(),
                t("abc123"),
                None
            )
        );
    }

    #[test]
    fn display_is_full_and_familiar_is_short() {
        let r = ImageRef::parse("nginx:1.27").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/nginx:1.27");
        assert_eq!(r.familiar(), "nginx:1.27");
        assert_eq!(
            ImageRef::parse("ghcr.io/o/r").unwrap().familiar(),
            "ghcr.io/o/r"
        );
        assert_eq!(ImageRef::parse("docker.io/a/b").unwrap().familiar(), "a/b");
        assert_eq!(
            ImageRef::parse("nginx").unwrap().api_host(),
            "registry-1.docker.io"
        );
    }

    #[test]
    fn malformed_references_are_refused_with_the_reason() {
        let err = |s: &str| ImageRef::parse(s).unwrap_err();
        assert_eq!(err(""), ReferenceError::Empty);
        // Credentials in a reference are refused without being repeated.
        for with_password in [
            "u:s3cret@ghcr.io/a/b:v1",
            "https://u:s3cret@ghcr.io/a/b",
            "u:p@ss@localhost:5000/a@sha256:0000000000000000000000000000000000000000000000000000000000000000",
        ] {
            let e = err(with_password);
            assert_eq!(e, ReferenceError::Credentials, "{with_password}");
            assert!(!e.to_string().contains("s3cret"));
            let shown = redact_credentials(with_password);
            assert!(shown.contains("***@") && !shown.contains("u:"), "{shown}");
        }
        assert_eq!(
            redact_credentials("https://u:s3cret@ghcr.io/a/b"),
            "https://***@ghcr.io/a/b"
        );
        let pinned =
            "ghcr.io/a/b@sha256:0000000000000000000000000000000000000000000000000000000000000000";
        assert_eq!(redact_credentials(pinned), pinned);
        assert_eq!(
            err("https://ghcr.io/a/b:v1"),
            ReferenceError::Scheme("https".into())
        );
        assert!(matches!(err("Nginx"), ReferenceError::UpperCase(_)));
        assert!(matches!(
            err("ghcr.io/Org/app"),
            ReferenceError::UpperCase(_)
        ));
        assert!(matches!(err("app:"), ReferenceError::InvalidTag(_)));
        assert!(matches!(err("app:-x"), ReferenceError::InvalidTag(_)));
        assert!(matches!(err("app:a/b"), ReferenceError::InvalidDomain(_)));
        assert!(matches!(err("a//b"), ReferenceError::InvalidPath(_)));
        assert!(matches!(err("a/b_"), ReferenceError::InvalidPath(_)));
        assert!(matches!(err("a/b___c"), ReferenceError::InvalidPath(_)));
        assert!(matches!(err("a/.b"), ReferenceError::InvalidPath(_)));
        assert!(matches!(err("-h.io/a"), ReferenceError::InvalidDomain(_)));
        assert!(matches!(
            err("h.io:port/a"),
            ReferenceError::InvalidDomain(_)
        ));
        assert!(matches!(
            err("[::zz]:1/a"),
            ReferenceError::InvalidDomain(_)
        ));
        assert!(matches!(
            err("app@sha256:abc"),
            ReferenceError::InvalidDigest { .. }
        ));
        assert!(matches!(
            err("app@md5:abc"),
            ReferenceError::InvalidDigest { .. }
        ));
        let upper = format!("app@{}", D.to_uppercase().replace("SHA256", "sha256"));
        assert!(matches!(err(&upper), ReferenceError::InvalidDigest { .. }));
        let id = &D["sha256:".len()..];
        assert!(matches!(err(id), ReferenceError::LooksLikeId(_)));
        let long = format!("h.io/{}", "a".repeat(251));
        assert!(matches!(err(&long), ReferenceError::NameTooLong { .. }));
        let long_tag = format!("app:{}", "t".repeat(129));
        assert!(matches!(err(&long_tag), ReferenceError::InvalidTag(_)));
        assert!(ImageRef::parse(&format!("app:{}", "t".repeat(128))).is_ok());
        // Docker Hub's library/ prefix counts towards the limit.
        let at_limit = "a".repeat(255 - "docker.io/library/".len());
        assert!(ImageRef::parse(&at_limit).is_ok());
        let over = "a".repeat(256 - "docker.io/library/".len());
        assert!(matches!(err(&over), ReferenceError::NameTooLong { .. }));
    }

    #[test]
    fn error_messages_name_the_input() {
        let msg = ImageRef::parse("ghcr.io/Org/app").unwrap_err().to_string();
        assert!(
            msg.contains("Org/app") && msg.contains("lower-case"),
            "{msg}"
        );
    }

    #[test]
    fn digests_verify_content() {
        let d = Digest::sha256_of(b"hello");
        assert_eq!(
            d.to_string(),
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert!(d.matches(b"hello"));
        assert!(!d.matches(b"hellO"));
        let mut h = Algorithm::Sha512.hasher();
        h.update(b"he");
        h.update(b"llo");
        let d512 = h.finish();
        assert_eq!(d512.hex().len(), 128);
        assert!(d512.matches(b"hello"));
        assert_eq!(Digest::parse(&d512.to_string()).unwrap(), d512);
    }

    fn component() -> impl Strategy<Value = String> {
        "[a-z0-9]{1,6}((\\.|_|__|-{1,3})[a-z0-9]{1,6}){0,2}"
    }

    fn domain() -> impl Strategy<Value = Option<String>> {
        prop_oneof![
            Just(None),
            Just(Some("localhost".to_owned())),
            "[a-z][a-z0-9-]{0,8}[a-z0-9](\\.[a-z0-9]{1,8}){1,2}(:[0-9]{1,5})?".prop_map(Some),
            "localhost:[0-9]{1,5}".prop_map(Some),
            "127\\.0\\.0\\.[0-9]{1,3}:[0-9]{4}".prop_map(Some),
        ]
    }

    prop_compose! {
        fn reference()(
            domain in domain(),
            path in proptest::collection::vec(component(), 1..4),
            tag in proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"),
            digest in proptest::option::of("[0-9a-f]{64}"),
        ) -> String {
            // Without a domain, a first component with '.' or ':' would read as one.
            let first_is_domainish = path[0].contains('.');
            let mut s = match domain {
                Some(d) => format!("{d}/"),
                None if first_is_domainish => "ghcr.io/".to_owned(),
                None => String::new(),
            };
            s.push_str(&path.join("/"));
            if let Some(t) = tag { s.push(':'); s.push_str(&t); }
            if let Some(d) = digest { s.push_str("@sha256:"); s.push_str(&d); }
            s
        }
    }

    proptest! {
        #[test]
        fn display_parses_back_to_the_same_reference(s in reference()) {
            let r = ImageRef::parse(&s).unwrap();
            let again = ImageRef::parse(&r.to_string()).unwrap();
            prop_assert_eq!(&again, &r);
            let familiar = ImageRef::parse(&r.familiar()).unwrap();
            prop_assert_eq!(familiar, r);
        }

        #[test]
        fn agrees_with_oci_spec_reference_parsing(s in reference()) {
            // oci-spec (the reference type oci-client uses) implements the same grammar.
            let ours = ImageRef::parse(&s).unwrap();
            let theirs: oci_client::Reference = s.parse().unwrap();
            prop_assert_eq!(ours.registry(), theirs.registry());
            prop_assert_eq!(ours.repository(), theirs.repository());
            prop_assert_eq!(ours.digest().map(|d| d.to_string()), theirs.digest().map(str::to_owned));
            if ours.digest().is_none() {
                prop_assert_eq!(ours.reference(), theirs.tag().unwrap_or("latest").to_owned());
            }
        }

        #[test]
        fn arbitrary_input_never_panics(s in "\\PC{0,80}") {
            if let Ok(r) = ImageRef::parse(&s) {
                prop_assert_eq!(ImageRef::parse(&r.to_string()).unwrap(), r);
            }
        }

        #[test]
        fn digests_round_trip(hex in "[0-9a-f]{64}") {
            let s = format!("sha256:{hex}");
            prop_assert_eq!(Digest::parse(&s).unwrap().to_string(), s);
        }
    }
}
