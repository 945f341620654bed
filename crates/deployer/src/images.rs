//! Image pinning (seed property 3): the images an app builds, named in `[app.images]`, are set
//! to the tag given with `--tag` (the commit SHA), and resolved to digests when a registry can
//! be asked, so the pods run exactly what was built. The release records both.
//!
//! Every other image in the manifests (third-party ones such as `postgres:16`) must carry an
//! explicit tag or digest other than `latest`: a deploy is reproducible or it is refused.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::manifest::{Manifest, pod_spec_pointer};
use crate::render::kustomize::split_image;

/// Resolves an image tag to its digest on the registry.
///
/// ferry-registry implements it; the binary wires it in. Errors mean "could not ask" (the
/// registry is unreachable): ferry then deploys by tag and says so.
#[async_trait::async_trait]
pub trait DigestResolver: Send + Sync + fmt::Debug {
    /// The digest (`sha256:...`) of `repository:tag`, or `Ok(None)` when the registry answers
    /// that the tag does not exist.
    async fn resolve(
        &self,
        repository: &str,
        tag: &str,
    ) -> Result<Option<String>, Box<dyn std::error::Error + Send + Sync>>;
}

/// A resolver shared between tasks.
pub type SharedDigestResolver = Arc<dyn DigestResolver>;

/// One of the app's images as deployed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinnedImage {
    /// The name in `[app.images]`.
    pub name: String,
    /// The repository.
    pub repository: String,
    /// The tag (the commit SHA).
    pub tag: String,
    /// The digest, when the registry was reachable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

impl PinnedImage {
    /// The reference the pods use: `repo:tag@digest` when resolved, else `repo:tag`.
    pub fn reference(&self) -> String {
        match &self.digest {
            Some(d) => format!("{}:{}@{d}", self.repository, self.tag),
            None => format!("{}:{}", self.repository, self.tag),
        }
    }
}

/// An image problem found in the manifests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageProblem {
    /// The manifest's index.
    pub index: usize,
    /// The container.
    pub container: String,
    /// What is wrong.
    pub message: String,
}

/// Every container image of a pod-running object, with the container's name and a JSON
/// pointer to the image field.
pub fn container_images(object: &Value, kind: &str) -> Vec<(String, String, String)> {
    let Some(spec_ptr) = pod_spec_pointer(kind) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for list in ["initContainers", "containers"] {
        let ptr = format!("{spec_ptr}/{list}");
        if let Some(Value::Array(items)) = object.pointer(&ptr) {
            for (i, c) in items.iter().enumerate() {
                let name = c
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                if let Some(image) = c.get("image").and_then(Value::as_str) {
                    out.push((name, image.to_owned(), format!("{ptr}/{i}/image")));
                }
            }
        }
    }
    out
}

/// Sets the app's images (repositories in `images`, name -> repository as the manifests write
/// it) to their pins in every manifest, and checks every other image is pinned. A pin is
/// matched by its name, so its repository may differ from the one the manifests write (an
/// environment's registry: `shop/api` deployed as `x.azurecr.io/shop/api:SHA`). Returns the
/// problems found.
pub fn pin(
    manifests: &mut [Manifest],
    images: &BTreeMap<String, String>,
    pinned: &[PinnedImage],
) -> Vec<ImageProblem> {
    let by_repo: BTreeMap<&str, &PinnedImage> = pinned
        .iter()
        .filter_map(|p| Some((images.get(&p.name)?.as_str(), p)))
        .collect();
    let known: BTreeMap<&str, &str> = images
        .iter()
        .map(|(n, r)| (r.as_str(), n.as_str()))
        .collect();
    let mut problems = Vec::new();
    for (index, m) in manifests.iter_mut().enumerate() {
        let kind = m.kind().to_owned();
        for (container, image, ptr) in container_images(&m.object, &kind) {
            let (repo, tag, digest) = split_image(&image);
            if let Some(p) = by_repo.get(repo) {
                if let Some(v) = m.object.pointer_mut(&ptr) {
                    *v = Value::String(p.reference());
                }
            } else if known.contains_key(repo) || image.is_empty() {
                // Named in the config but not pinned (no --tag): leave as is. An empty image
                // is reported by the offline checks (validate::check_offline).
            } else if digest.is_none() && matches!(tag, None | Some("latest")) {
                problems.push(ImageProblem {
                    index,
                    container,
                    message: format!(
                        "image `{image}` is not in [app.images] and has no pinned tag: add it to \
                         [app.images] so ferry sets it to --tag, or pin a version (`{repo}:1.2.3`)"
                    ),
                });
            }
        }
    }
    problems
}

/// Pins each of the app's images to `tag`, asking `resolver` for digests when there is one.
/// Returns the pins and, per image, why no digest was found (for a warning).
pub async fn resolve(
    images: &BTreeMap<String, String>,
    tag: &str,
    resolver: Option<&dyn DigestResolver>,
) -> (Vec<PinnedImage>, Vec<String>) {
    let mut pins = Vec::new();
    let mut warnings = Vec::new();
    for (name, repository) in images {
        let digest = match resolver {
            None => None,
            Some(r) => match r.resolve(repository, tag).await {
                Ok(Some(d)) => Some(d),
                Ok(None) => {
                    warnings.push(format!(
                        "{repository}:{tag} is not on the registry; deploying by tag"
                    ));
                    None
                }
                Err(e) => {
                    warnings.push(format!(
                        "cannot resolve {repository}:{tag} to a digest ({e}); deploying by tag"
                    ));
                    None
                }
            },
        };
        pins.push(PinnedImage {
            name: name.clone(),
            repository: repository.clone(),
            tag: tag.to_owned(),
            digest,
        });
    }
    (pins, warnings)
}

/// Whether a tag is usable in an image reference (the OCI tag grammar).
pub fn valid_tag(tag: &str) -> bool {
    let mut chars = tag.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric() || c == '_')
        && tag.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Source;
    use serde_json::json;

    fn deployment(images: &[&str]) -> Manifest {
        let containers: Vec<Value> = images
            .iter()
            .enumerate()
            .map(|(i, im)| json!({"name": format!("c{i}"), "image": im}))
            .collect();
        Manifest {
            source: Source::document("d.yaml", 1),
            object: json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},
                "spec":{"template":{"spec":{"containers": containers}}}}),
        }
    }

    #[test]
    fn app_images_get_the_tag_and_digest() {
        let images = BTreeMap::from([("api".to_owned(), "shop/api".to_owned())]);
        let pins = vec![PinnedImage {
            name: "api".into(),
            repository: "shop/api".into(),
            tag: "abc123".into(),
            digest: Some("sha256:00".into()),
        }];
        let mut ms = vec![deployment(&["shop/api:latest", "postgres:16"])];
        assert!(pin(&mut ms, &images, &pins).is_empty());
        assert_eq!(
            ms[0]
                .object
                .pointer("/spec/template/spec/containers/0/image"),
            Some(&json!("shop/api:abc123@sha256:00"))
        );
        assert_eq!(
            ms[0]
                .object
                .pointer("/spec/template/spec/containers/1/image"),
            Some(&json!("postgres:16"))
        );
    }

    #[test]
    fn a_pin_may_live_in_another_registry_than_the_manifests_say() {
        let images = BTreeMap::from([("api".to_owned(), "shop/api".to_owned())]);
        let pins = vec![PinnedImage {
            name: "api".into(),
            repository: "shop.azurecr.io/shop/api".into(),
            tag: "abc123".into(),
            digest: None,
        }];
        let mut ms = vec![deployment(&["shop/api:latest"])];
        assert!(pin(&mut ms, &images, &pins).is_empty());
        assert_eq!(
            ms[0]
                .object
                .pointer("/spec/template/spec/containers/0/image"),
            Some(&json!("shop.azurecr.io/shop/api:abc123"))
        );
    }

    #[test]
    fn unpinned_foreign_images_are_problems() {
        let mut ms = vec![deployment(&[
            "other/thing",
            "other/x:latest",
            "ok@sha256:1",
        ])];
        let problems = pin(&mut ms, &BTreeMap::new(), &[]);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].message.contains("not in [app.images]"));
    }

    #[test]
    fn tags_follow_the_oci_grammar() {
        assert!(valid_tag("3f9c2ab"));
        assert!(valid_tag("v1.2.3-rc_1"));
        assert!(!valid_tag("-x"));
        assert!(!valid_tag("a/b"));
        assert!(!valid_tag(""));
    }
}
