//! Manifests and descriptors.
//!
//! A [`Manifest`] keeps the exact bytes it was read as: its digest is the hash of those bytes,
//! so ferry never re-serialises a manifest it copies (that would change the digest and break
//! every reference pinned to it). Parsing uses oci-client's manifest types; this module adds the
//! checks a copier needs: known media types only (OCI and Docker v2 image manifests and
//! indexes; schema 1 is refused), the media type in the JSON agreeing with the one announced,
//! valid digests and sizes in every descriptor, and a size limit.

use bytes::Bytes;
use oci_client::manifest::{OciImageIndex, OciImageManifest};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::reference::Digest;

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Uncompressed OCI layer.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// Gzip-compressed OCI layer.
pub const OCI_LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// The `Accept` header for manifest requests.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
    application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json, \
    application/vnd.docker.distribution.manifest.list.v2+json";

/// The largest manifest ferry reads or writes: 4 MiB, distribution's and containerd's limit.
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

/// Whether `media_type` is an image manifest (as opposed to an index).
pub fn is_image_manifest(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}

/// Whether `media_type` is an index / manifest list.
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

/// The platform an index entry is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Platform {
    /// `linux`, `windows`, ...
    pub os: String,
    /// `amd64`, `arm64`, ...
    pub architecture: String,
    /// `v8`, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// A validated content descriptor: what a manifest says about a blob or child manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Descriptor {
    /// The media type.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// The digest.
    pub digest: Digest,
    /// The size in bytes.
    pub size: u64,
    /// For index entries: the platform.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

impl Descriptor {
    fn from_parts(media_type: &str, digest: &str, size: i64, what: &str) -> Result<Self> {
        let digest = Digest::parse(digest).map_err(|e| Error::InvalidManifest {
            what: what.to_owned(),
            message: e.to_string(),
        })?;
        let size = u64::try_from(size).map_err(|_| Error::InvalidManifest {
            what: what.to_owned(),
            message: format!("descriptor {digest} has a negative size"),
        })?;
        if !valid_media_type(media_type) {
            return Err(Error::InvalidManifest {
                what: what.to_owned(),
                message: format!("descriptor {digest} has an invalid media type `{media_type}`"),
            });
        }
        Ok(Descriptor {
            media_type: media_type.to_owned(),
            digest,
            size,
            platform: None,
        })
    }
}

/// RFC 6838's `type/subtype` shape (with the `+suffix` and `.` the OCI types use).
fn valid_media_type(s: &str) -> bool {
    let ok = |part: &str| {
        !part.is_empty()
            && part.len() <= 127
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    matches!(s.split_once('/'), Some((t, st)) if ok(t) && ok(st))
}

/// A manifest's exact bytes, with its media type and digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The media type.
    pub media_type: String,
    /// The digest of `bytes`.
    pub digest: Digest,
    /// The bytes, exactly as stored.
    pub bytes: Bytes,
}

/// What a manifest says.
#[derive(Debug, Clone)]
pub enum ManifestContent {
    /// An image: a config and layers.
    Image {
        /// The config blob.
        config: Descriptor,
        /// The layers, base first.
        layers: Vec<Descriptor>,
    },
    /// An index: child manifests, usually one per platform.
    Index {
        /// The child manifests.
        manifests: Vec<Descriptor>,
    },
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(default)]
    schema_version: Option<i64>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
    #[serde(default)]
    config: Option<serde_json::Value>,
}

impl Manifest {
    /// Reads manifest bytes. `announced` is the media type the registry or a descriptor gave;
    /// the JSON's own `mediaType`, when present, must agree with it. `what` names the manifest
    /// in errors.
    pub fn from_bytes(bytes: Bytes, announced: Option<&str>, what: &str) -> Result<Self> {
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(Error::ManifestTooLarge {
                what: what.to_owned(),
                size: bytes.len() as u64,
                max: MAX_MANIFEST_BYTES,
            });
        }
        let probe: Probe = serde_json::from_slice(&bytes).map_err(|e| Error::InvalidManifest {
            what: what.to_owned(),
            message: format!("not JSON: {e}"),
        })?;
        let known = |m: &str| is_image_manifest(m) || is_index(m);
        // Registries answer `application/json` or `text/plain` for old content: not a claim.
        let announced = announced.filter(|m| !matches!(*m, "application/json" | "text/plain" | ""));
        if probe.schema_version == Some(1) {
            return Err(Error::UnsupportedMediaType {
                what: what.to_owned(),
                media_type: announced
                    .unwrap_or("application/vnd.docker.distribution.manifest.v1+json (schema 1)")
                    .to_owned(),
            });
        }
        let media_type = match (probe.media_type.as_deref(), announced) {
            (Some(inner), Some(outer)) if inner != outer => {
                return Err(Error::InvalidManifest {
                    what: what.to_owned(),
                    message: format!(
                        "its mediaType is `{inner}` but it was announced as `{outer}`"
                    ),
                });
            }
            (Some(m), _) | (None, Some(m)) => m.to_owned(),
            (None, None) if probe.manifests.is_some() => OCI_INDEX.to_owned(),
            (None, None) if probe.config.is_some() => OCI_MANIFEST.to_owned(),
            (None, None) => {
                return Err(Error::InvalidManifest {
                    what: what.to_owned(),
                    message: "it has no mediaType and is neither an image manifest nor an index"
                        .to_owned(),
                });
            }
        };
        if !known(&media_type) {
            return Err(Error::UnsupportedMediaType {
                what: what.to_owned(),
                media_type,
            });
        }
        let manifest = Manifest {
            digest: Digest::sha256_of(&bytes),
            media_type,
            bytes,
        };
        // Parse once now so a malformed manifest fails before anything is moved.
        manifest.content_named(what)?;
        Ok(manifest)
    }

    /// Builds a manifest from a value (for images ferry assembles itself, such as
    /// `docker save` archives). The bytes are canonical JSON of `value`.
    pub fn from_value<T: Serialize>(value: &T, media_type: &str) -> Result<Self> {
        let bytes = serde_json::to_vec(value).map_err(|e| Error::InvalidManifest {
            what: "assembled manifest".to_owned(),
            message: e.to_string(),
        })?;
        Manifest::from_bytes(Bytes::from(bytes), Some(media_type), "assembled manifest")
    }

    /// The descriptor of this manifest.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor {
            media_type: self.media_type.clone(),
            digest: self.digest.clone(),
            size: self.bytes.len() as u64,
            platform: None,
        }
    }

    /// Whether this is an index.
    pub fn is_index(&self) -> bool {
        is_index(&self.media_type)
    }

    /// Parses the content.
    pub fn content(&self) -> Result<ManifestContent> {
        self.content_named(&self.digest.to_string())
    }

    fn content_named(&self, what: &str) -> Result<ManifestContent> {
        let invalid = |e: serde_json::Error| Error::InvalidManifest {
            what: what.to_owned(),
            message: e.to_string(),
        };
        if is_index(&self.media_type) {
            let index: OciImageIndex = serde_json::from_slice(&self.bytes).map_err(invalid)?;
            let manifests = index
                .manifests
                .iter()
                .map(|entry| {
                    let mut d =
                        Descriptor::from_parts(&entry.media_type, &entry.digest, entry.size, what)?;
                    if !(is_image_manifest(&d.media_type) || is_index(&d.media_type)) {
                        return Err(Error::UnsupportedMediaType {
                            what: format!("{what}: index entry {}", d.digest),
                            media_type: d.media_type,
                        });
                    }
                    d.platform = entry.platform.as_ref().map(|p| Platform {
                        os: p.os.to_string(),
                        architecture: p.architecture.to_string(),
                        variant: p.variant.clone(),
                    });
                    Ok(d)
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(ManifestContent::Index { manifests })
        } else {
            let image: OciImageManifest = serde_json::from_slice(&self.bytes).map_err(invalid)?;
            let config = Descriptor::from_parts(
                &image.config.media_type,
                &image.config.digest,
                image.config.size,
                what,
            )?;
            let layers = image
                .layers
                .iter()
                .map(|l| Descriptor::from_parts(&l.media_type, &l.digest, l.size, what))
                .collect::<Result<Vec<_>>>()?;
            Ok(ManifestContent::Image { config, layers })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn image_json(media_type: Option<&str>) -> String {
        let mt = media_type
            .map(|m| format!(r#""mediaType": "{m}","#))
            .unwrap_or_default();
        format!(
            r#"{{"schemaVersion": 2, {mt}
              "config": {{"mediaType": "{OCI_CONFIG}", "digest": "{D1}", "size": 10}},
              "layers": [{{"mediaType": "{OCI_LAYER_TAR_GZIP}", "digest": "{D2}", "size": 20}}]}}"#
        )
    }

    #[test]
    fn image_manifests_parse_and_keep_their_bytes() {
        let text = image_json(Some(OCI_MANIFEST));
        let m = Manifest::from_bytes(Bytes::from(text.clone()), Some(OCI_MANIFEST), "t").unwrap();
        assert_eq!(m.bytes, text.as_bytes());
        assert_eq!(m.digest, Digest::sha256_of(text.as_bytes()));
        match m.content().unwrap() {
            ManifestContent::Image { config, layers } => {
                assert_eq!(config.size, 10);
                assert_eq!(layers[0].digest.to_string(), D2);
            }
            other => panic!("{other:?}"),
        }
        // No mediaType anywhere: the shape decides.
        let m = Manifest::from_bytes(Bytes::from(image_json(None)), None, "t").unwrap();
        assert_eq!(m.media_type, OCI_MANIFEST);
    }

    #[test]
    fn indexes_carry_platforms() {
        let text = format!(
            r#"{{"schemaVersion": 2, "mediaType": "{OCI_INDEX}", "manifests": [
                {{"mediaType": "{OCI_MANIFEST}", "digest": "{D1}", "size": 5,
                  "platform": {{"os": "linux", "architecture": "arm64", "variant": "v8"}}}}]}}"#
        );
        let m = Manifest::from_bytes(Bytes::from(text), None, "t").unwrap();
        match m.content().unwrap() {
            ManifestContent::Index { manifests } => {
                assert_eq!(
                    manifests[0].platform.as_ref().unwrap().to_string(),
                    "linux/arm64/v8"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_manifests_are_refused() {
        let err = |text: &str, announced: Option<&str>| {
            Manifest::from_bytes(Bytes::from(text.to_owned()), announced, "t").unwrap_err()
        };
        assert!(matches!(
            err(&image_json(Some(OCI_MANIFEST)), Some(DOCKER_MANIFEST)),
            Error::InvalidManifest { .. }
        ));
        assert!(matches!(
            err(
                &image_json(Some("application/vnd.example.thing+json")),
                None
            ),
            Error::UnsupportedMediaType { .. }
        ));
        assert!(matches!(
            err(r#"{"schemaVersion": 1, "name": "x", "fsLayers": []}"#, None),
            Error::UnsupportedMediaType { .. }
        ));
        assert!(matches!(
            err("not json", None),
            Error::InvalidManifest { .. }
        ));
        let bad_digest = image_json(Some(OCI_MANIFEST)).replace(D2, "sha256:abc");
        assert!(matches!(
            err(&bad_digest, None),
            Error::InvalidManifest { .. }
        ));
        let negative = image_json(Some(OCI_MANIFEST)).replace("\"size\": 20", "\"size\": -1");
        assert!(matches!(
            err(&negative, None),
            Error::InvalidManifest { .. }
        ));
        let big = format!(
            r#"{{"schemaVersion": 2, "config": {{}}, "pad": "{}"}}"#,
            "x".repeat(MAX_MANIFEST_BYTES as usize)
        );
        assert!(matches!(err(&big, None), Error::ManifestTooLarge { .. }));
    }
}
