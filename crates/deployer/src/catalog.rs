//! What the server serves (discovery), plus the kinds the release's own CustomResourceDefinitions
//! will add: the catalog maps an object's apiVersion and kind to the resource to call and its
//! scope.

use std::collections::{BTreeMap, BTreeSet};

use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope};
use serde_json::Value;

use crate::manifest::{Manifest, group_of, version_of};

/// A resource the catalog knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    /// The API resource (group, version, kind, plural).
    pub resource: ApiResource,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Whether the kind comes from a CRD in this release (not served yet).
    pub from_release_crd: bool,
}

/// The server's resources by (group, version, kind).
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    by_gvk: BTreeMap<(String, String, String), Known>,
}

impl Catalog {
    /// Asks the server what it serves (aggregated discovery when the server has it, else one
    /// request per group version).
    pub async fn discover(client: &kube::Client) -> Result<Catalog, kube::Error> {
        let discovery = match Discovery::new(client.clone()).run_aggregated().await {
            Ok(d) => d,
            Err(e) => {
                tracing::debug!(error = %e, "aggregated discovery failed; using per-group discovery");
                Discovery::new(client.clone()).run().await?
            }
        };
        let mut catalog = Catalog::default();
        for group in discovery.groups() {
            for version in group.versions() {
                for (ar, caps) in group.versioned_resources(version) {
                    catalog.insert(ar, &caps, false);
                }
            }
        }
        Ok(catalog)
    }

    /// A catalog from a list of resources (tests, and the engine after a CRD is applied).
    pub fn insert(
        &mut self,
        resource: ApiResource,
        caps: &ApiCapabilities,
        from_release_crd: bool,
    ) {
        let namespaced = matches!(caps.scope, Scope::Namespaced);
        self.insert_scoped(resource, namespaced, from_release_crd);
    }

    fn insert_scoped(&mut self, resource: ApiResource, namespaced: bool, from_release_crd: bool) {
        let key = (
            resource.group.clone(),
            resource.version.clone(),
            resource.kind.clone(),
        );
        self.by_gvk.entry(key).or_insert(Known {
            resource,
            namespaced,
            from_release_crd,
        });
    }

    /// Adds the kinds defined by CustomResourceDefinitions among `manifests`.
    pub fn add_release_crds(&mut self, manifests: &[Manifest]) {
        for m in manifests.iter().filter(|m| {
            m.kind() == "CustomResourceDefinition"
                && group_of(m.api_version()) == "apiextensions.k8s.io"
        }) {
            let spec = &m.object["spec"];
            let (Some(group), Some(kind), Some(plural)) = (
                spec["group"].as_str(),
                spec.pointer("/names/kind").and_then(Value::as_str),
                spec.pointer("/names/plural").and_then(Value::as_str),
            ) else {
                continue;
            };
            let namespaced = spec["scope"].as_str() != Some("Cluster");
            for v in spec["versions"].as_array().into_iter().flatten() {
                if let Some(version) = v["name"].as_str()
                    && v["served"].as_bool() != Some(false)
                {
                    let ar = ApiResource {
                        group: group.to_owned(),
                        version: version.to_owned(),
                        api_version: format!("{group}/{version}"),
                        kind: kind.to_owned(),
                        plural: plural.to_owned(),
                    };
                    self.insert_scoped(ar, namespaced, true);
                }
            }
        }
    }

    /// The resource for an apiVersion and kind.
    pub fn resolve(&self, api_version: &str, kind: &str) -> Option<&Known> {
        self.by_gvk.get(&(
            group_of(api_version).to_owned(),
            version_of(api_version).to_owned(),
            kind.to_owned(),
        ))
    }

    /// The versions served for a group and kind (for "did you mean" messages).
    pub fn versions_of(&self, group: &str, kind: &str) -> Vec<String> {
        self.api_versions(|g, k| g == group && k == kind)
    }

    /// Every apiVersion a kind of exactly this name is served as, in any group (for "the
    /// server serves Deployment as apps/v1" when a manifest names an old group).
    pub fn api_versions_of_kind(&self, kind: &str) -> Vec<String> {
        self.api_versions(|_, k| k == kind)
    }

    /// The apiVersions (`v1`, `apps/v1`) of the served (group, kind)s `wanted` picks.
    fn api_versions(&self, wanted: impl Fn(&str, &str) -> bool) -> Vec<String> {
        self.by_gvk
            .keys()
            .filter(|(g, _, k)| wanted(g, k))
            .map(|(g, v, _)| {
                if g.is_empty() {
                    v.clone()
                } else {
                    format!("{g}/{v}")
                }
            })
            .collect()
    }

    /// Kinds whose name is close to `kind` (same letters ignoring case), for hints.
    pub fn similar_kinds(&self, kind: &str) -> BTreeSet<String> {
        let lower = kind.to_ascii_lowercase();
        self.by_gvk
            .keys()
            .filter(|(_, _, k)| {
                let kl = k.to_ascii_lowercase();
                kl == lower || (lower.len() > 3 && (kl.contains(&lower) || lower.contains(&kl)))
            })
            .map(|(_, _, k)| k.clone())
            .collect()
    }

    /// The resource of a kind by group (any version), for records whose version no longer
    /// matters (prune, rollback).
    pub fn by_group_kind(&self, group: &str, kind: &str) -> Option<&Known> {
        self.by_gvk
            .iter()
            .find(|((g, _, k), _)| g == group && k == kind)
            .map(|(_, v)| v)
    }

    /// How many resources the catalog knows.
    pub fn len(&self) -> usize {
        self.by_gvk.len()
    }

    /// Whether the catalog is empty.
    pub fn is_empty(&self) -> bool {
        self.by_gvk.is_empty()
    }
}
