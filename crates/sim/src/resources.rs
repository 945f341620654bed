//! The resource types the server serves: the built-in table, plus types registered by
//! CustomResourceDefinitions. Discovery, routing, validation, defaulting and the controllers all
//! look a type up here.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::status::Named;

/// A built-in kind, for kind-specific behaviour (defaults, validation, printing, controllers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Builtin {
    Namespace,
    ConfigMap,
    Secret,
    ServiceAccount,
    Service,
    Endpoints,
    EndpointSlice,
    Pod,
    Event,
    PersistentVolumeClaim,
    PersistentVolume,
    Node,
    LimitRange,
    ResourceQuota,
    Deployment,
    ReplicaSet,
    StatefulSet,
    DaemonSet,
    ControllerRevision,
    Job,
    CronJob,
    Ingress,
    IngressClass,
    NetworkPolicy,
    HorizontalPodAutoscaler,
    PodDisruptionBudget,
    Lease,
    Role,
    RoleBinding,
    ClusterRole,
    ClusterRoleBinding,
    CustomResourceDefinition,
    StorageClass,
    PriorityClass,
}

/// How names of a type are validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameRule {
    /// RFC 1123 subdomain (most types).
    Subdomain,
    /// RFC 1123 label (namespaces).
    Label,
    /// RFC 1035 label (services: must start with a letter).
    Label1035,
    /// Any name that is a valid path segment (RBAC objects).
    PathSegment,
}

/// Where the scale subresource reads and writes replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScalePaths {
    /// JSON pointer of the desired replicas (`/spec/replicas`).
    pub(crate) spec_replicas: String,
    /// JSON pointer of the observed replicas (`/status/replicas`).
    pub(crate) status_replicas: String,
    /// JSON pointer of the label selector string, if any.
    pub(crate) label_selector: Option<String>,
}

/// What a CustomResourceDefinition adds to a served version.
#[derive(Debug, Clone)]
pub(crate) struct CrdVersion {
    /// The version's `openAPIV3Schema`, if given.
    pub(crate) schema: Option<Value>,
    /// `additionalPrinterColumns`.
    pub(crate) printer_columns: Vec<Value>,
    /// Every served version of the type (objects are stored at `storage_version`).
    pub(crate) storage_version: String,
    /// `selectableFields`: the field selector paths besides `metadata.name` and
    /// `metadata.namespace`, without the leading dot.
    pub(crate) selectable_fields: Vec<String>,
}

/// One served resource type at one group/version.
#[derive(Debug, Clone)]
pub(crate) struct ResourceType {
    pub(crate) group: String,
    pub(crate) version: String,
    pub(crate) plural: String,
    pub(crate) singular: String,
    pub(crate) kind: String,
    pub(crate) namespaced: bool,
    pub(crate) short_names: Vec<String>,
    pub(crate) categories: Vec<String>,
    /// Has a status subresource: writes to the main resource keep status, writes to /status
    /// keep everything else.
    pub(crate) status: bool,
    pub(crate) scale: Option<ScalePaths>,
    /// `metadata.generation` is maintained (bumped on spec changes).
    pub(crate) generation: bool,
    pub(crate) name_rule: NameRule,
    /// PUT of a missing object creates it.
    pub(crate) create_on_update: bool,
    pub(crate) builtin: Option<Builtin>,
    pub(crate) crd: Option<CrdVersion>,
}

impl ResourceType {
    pub(crate) fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `deployments.apps`, `pods`: the resource as kubectl and error messages name it.
    pub(crate) fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    pub(crate) fn key(&self) -> GroupResource {
        GroupResource {
            group: self.group.clone(),
            resource: self.plural.clone(),
        }
    }

    pub(crate) fn named<'a>(&'a self, name: &'a str) -> Named<'a> {
        Named {
            group: &self.group,
            resource: &self.plural,
            kind: &self.kind,
            name,
        }
    }

    pub(crate) fn is(&self, builtin: Builtin) -> bool {
        self.builtin == Some(builtin)
    }

    /// Whether a field selector may name `field` for this type: `metadata.name` and
    /// `metadata.namespace` everywhere, plus the fields the API server's field label
    /// conversions accept for the type (or a CRD's `selectableFields`).
    pub(crate) fn selectable(&self, field: &str) -> bool {
        if matches!(field, "metadata.name" | "metadata.namespace") {
            return true;
        }
        if let Some(crd) = &self.crd {
            return crd.selectable_fields.iter().any(|f| f == field);
        }
        let extra: &[&str] = match self.builtin {
            Some(Builtin::Pod) => &[
                "spec.nodeName",
                "spec.restartPolicy",
                "spec.schedulerName",
                "spec.serviceAccountName",
                "spec.hostNetwork",
                "status.phase",
                "status.podIP",
                "status.podIPs",
                "status.nominatedNodeName",
            ],
            Some(Builtin::Event) => &[
                "involvedObject.kind",
                "involvedObject.namespace",
                "involvedObject.name",
                "involvedObject.uid",
                "involvedObject.apiVersion",
                "involvedObject.resourceVersion",
                "involvedObject.fieldPath",
                "reason",
                "reportingComponent",
                "source",
                "type",
            ],
            Some(Builtin::Namespace) => &["status.phase"],
            Some(Builtin::Secret) => &["type"],
            Some(Builtin::Node) => &["spec.unschedulable"],
            Some(Builtin::ReplicaSet) => &["status.replicas"],
            Some(Builtin::Job) => &["status.successful"],
            _ => &[],
        };
        extra.contains(&field)
    }
}

/// Group and plural resource: the storage key of a type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct GroupResource {
    pub(crate) group: String,
    pub(crate) resource: String,
}

impl GroupResource {
    pub(crate) fn new(group: &str, resource: &str) -> Self {
        GroupResource {
            group: group.to_owned(),
            resource: resource.to_owned(),
        }
    }
}

impl std::fmt::Display for GroupResource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.group.is_empty() {
            f.write_str(&self.resource)
        } else {
            write!(f, "{}.{}", self.resource, self.group)
        }
    }
}

struct Spec {
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    all: bool,
    status: bool,
    scale: bool,
    generation: bool,
    builtin: Builtin,
}

const fn spec(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    builtin: Builtin,
) -> Spec {
    Spec {
        group,
        version,
        plural,
        kind,
        namespaced,
        short: &[],
        all: false,
        status: false,
        scale: false,
        generation: false,
        builtin,
    }
}

impl Spec {
    const fn short(mut self, short: &'static [&'static str]) -> Self {
        self.short = short;
        self
    }
    const fn all(mut self) -> Self {
        self.all = true;
        self
    }
    const fn status(mut self) -> Self {
        self.status = true;
        self
    }
    const fn scale(mut self) -> Self {
        self.scale = true;
        self
    }
    const fn generation(mut self) -> Self {
        self.generation = true;
        self
    }
}

use Builtin as B;

const BUILTINS: &[Spec] = &[
    spec("", "v1", "namespaces", "Namespace", false, B::Namespace)
        .short(&["ns"])
        .status(),
    spec("", "v1", "configmaps", "ConfigMap", true, B::ConfigMap).short(&["cm"]),
    spec("", "v1", "secrets", "Secret", true, B::Secret),
    spec(
        "",
        "v1",
        "serviceaccounts",
        "ServiceAccount",
        true,
        B::ServiceAccount,
    )
    .short(&["sa"]),
    spec("", "v1", "services", "Service", true, B::Service)
        .short(&["svc"])
        .all()
        .status(),
    spec("", "v1", "endpoints", "Endpoints", true, B::Endpoints).short(&["ep"]),
    spec(
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        "EndpointSlice",
        true,
        B::EndpointSlice,
    ),
    spec("", "v1", "pods", "Pod", true, B::Pod)
        .short(&["po"])
        .all()
        .status(),
    spec("", "v1", "events", "Event", true, B::Event).short(&["ev"]),
    spec(
        "",
        "v1",
        "persistentvolumeclaims",
        "PersistentVolumeClaim",
        true,
        B::PersistentVolumeClaim,
    )
    .short(&["pvc"])
    .status(),
    spec(
        "",
        "v1",
        "persistentvolumes",
        "PersistentVolume",
        false,
        B::PersistentVolume,
    )
    .short(&["pv"])
    .status(),
    spec("", "v1", "nodes", "Node", false, B::Node)
        .short(&["no"])
        .status(),
    spec("", "v1", "limitranges", "LimitRange", true, B::LimitRange).short(&["limits"]),
    spec(
        "",
        "v1",
        "resourcequotas",
        "ResourceQuota",
        true,
        B::ResourceQuota,
    )
    .short(&["quota"])
    .status(),
    spec(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        true,
        B::Deployment,
    )
    .short(&["deploy"])
    .all()
    .status()
    .scale()
    .generation(),
    spec(
        "apps",
        "v1",
        "replicasets",
        "ReplicaSet",
        true,
        B::ReplicaSet,
    )
    .short(&["rs"])
    .all()
    .status()
    .scale()
    .generation(),
    spec(
        "apps",
        "v1",
        "statefulsets",
        "StatefulSet",
        true,
        B::StatefulSet,
    )
    .short(&["sts"])
    .all()
    .status()
    .scale()
    .generation(),
    spec("apps", "v1", "daemonsets", "DaemonSet", true, B::DaemonSet)
        .short(&["ds"])
        .all()
        .status()
        .generation(),
    spec(
        "apps",
        "v1",
        "controllerrevisions",
        "ControllerRevision",
        true,
        B::ControllerRevision,
    ),
    spec("batch", "v1", "jobs", "Job", true, B::Job)
        .all()
        .status()
        .generation(),
    spec("batch", "v1", "cronjobs", "CronJob", true, B::CronJob)
        .short(&["cj"])
        .all()
        .status()
        .generation(),
    spec(
        "networking.k8s.io",
        "v1",
        "ingresses",
        "Ingress",
        true,
        B::Ingress,
    )
    .short(&["ing"])
    .status()
    .generation(),
    spec(
        "networking.k8s.io",
        "v1",
        "ingressclasses",
        "IngressClass",
        false,
        B::IngressClass,
    ),
    spec(
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        "NetworkPolicy",
        true,
        B::NetworkPolicy,
    )
    .short(&["netpol"])
    .generation(),
    spec(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        true,
        B::HorizontalPodAutoscaler,
    )
    .short(&["hpa"])
    .status()
    .generation(),
    spec(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        true,
        B::PodDisruptionBudget,
    )
    .short(&["pdb"])
    .status()
    .generation(),
    spec(
        "coordination.k8s.io",
        "v1",
        "leases",
        "Lease",
        true,
        B::Lease,
    ),
    spec(
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        "Role",
        true,
        B::Role,
    ),
    spec(
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "RoleBinding",
        true,
        B::RoleBinding,
    ),
    spec(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "ClusterRole",
        false,
        B::ClusterRole,
    ),
    spec(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        false,
        B::ClusterRoleBinding,
    ),
    spec(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        false,
        B::CustomResourceDefinition,
    )
    .short(&["crd", "crds"])
    .status()
    .generation(),
    spec(
        "storage.k8s.io",
        "v1",
        "storageclasses",
        "StorageClass",
        false,
        B::StorageClass,
    )
    .short(&["sc"]),
    spec(
        "scheduling.k8s.io",
        "v1",
        "priorityclasses",
        "PriorityClass",
        false,
        B::PriorityClass,
    )
    .short(&["pc"]),
];

fn builtin_type(spec: &Spec) -> ResourceType {
    let singular = spec.kind.to_ascii_lowercase();
    let name_rule = match spec.builtin {
        B::Namespace => NameRule::Label,
        B::Service => NameRule::Label1035,
        B::Role | B::RoleBinding | B::ClusterRole | B::ClusterRoleBinding => NameRule::PathSegment,
        _ => NameRule::Subdomain,
    };
    ResourceType {
        group: spec.group.to_owned(),
        version: spec.version.to_owned(),
        plural: spec.plural.to_owned(),
        singular,
        kind: spec.kind.to_owned(),
        namespaced: spec.namespaced,
        short_names: spec.short.iter().map(|s| (*s).to_owned()).collect(),
        categories: if spec.all {
            vec!["all".to_owned()]
        } else {
            Vec::new()
        },
        status: spec.status,
        scale: spec.scale.then(|| ScalePaths {
            spec_replicas: "/spec/replicas".to_owned(),
            status_replicas: "/status/replicas".to_owned(),
            label_selector: None,
        }),
        generation: spec.generation,
        name_rule,
        create_on_update: matches!(spec.builtin, B::Endpoints | B::Lease),
        builtin: Some(spec.builtin),
        crd: None,
    }
}

/// Every served type, built-in and custom.
#[derive(Debug, Clone)]
pub(crate) struct Registry {
    types: Vec<Arc<ResourceType>>,
    by_path: BTreeMap<(String, String, String), usize>,
}

impl Registry {
    pub(crate) fn builtin() -> Self {
        let mut registry = Registry {
            types: Vec::new(),
            by_path: BTreeMap::new(),
        };
        for spec in BUILTINS {
            registry.push(builtin_type(spec));
        }
        registry
    }

    fn push(&mut self, rt: ResourceType) {
        self.by_path.insert(
            (rt.group.clone(), rt.version.clone(), rt.plural.clone()),
            self.types.len(),
        );
        self.types.push(Arc::new(rt));
    }

    fn reindex(&mut self) {
        self.by_path = self
            .types
            .iter()
            .enumerate()
            .map(|(i, rt)| ((rt.group.clone(), rt.version.clone(), rt.plural.clone()), i))
            .collect();
    }

    /// The type served at `/apis/{group}/{version}/{plural}`.
    pub(crate) fn lookup(
        &self,
        group: &str,
        version: &str,
        plural: &str,
    ) -> Option<Arc<ResourceType>> {
        self.by_path
            .get(&(group.to_owned(), version.to_owned(), plural.to_owned()))
            .map(|&i| Arc::clone(&self.types[i]))
    }

    pub(crate) fn builtin_type(&self, builtin: Builtin) -> Arc<ResourceType> {
        self.types
            .iter()
            .find(|rt| rt.builtin == Some(builtin))
            .cloned()
            .expect("every built-in kind is registered")
    }

    /// The type of an `apiVersion` and `kind` (for owner references and CRD lookups).
    pub(crate) fn by_kind(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceType>> {
        let (group, version) = split_api_version(api_version);
        self.types
            .iter()
            .find(|rt| rt.group == group && rt.version == version && rt.kind == kind)
            .cloned()
    }

    pub(crate) fn all(&self) -> impl Iterator<Item = &Arc<ResourceType>> {
        self.types.iter()
    }

    /// Groups in discovery order (built-ins first, in table order), each with its versions.
    pub(crate) fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for rt in &self.types {
            match groups.iter_mut().find(|(g, _)| *g == rt.group) {
                Some((_, versions)) => {
                    if !versions.contains(&rt.version) {
                        versions.push(rt.version.clone());
                    }
                }
                None => groups.push((rt.group.clone(), vec![rt.version.clone()])),
            }
        }
        groups
    }

    /// Replaces the types defined by custom resource definitions with `crd_types`.
    pub(crate) fn set_custom(&mut self, crd_types: Vec<ResourceType>) {
        self.types.retain(|rt| rt.crd.is_none());
        for rt in crd_types {
            self.types.push(Arc::new(rt));
        }
        self.reindex();
    }
}

/// `apps/v1` -> (`apps`, `v1`); `v1` -> (``, `v1`).
pub(crate) fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    }
}

/// The types a CustomResourceDefinition object defines (one per served version), when it is
/// well-formed.
pub(crate) fn types_from_crd(crd: &Value) -> Vec<ResourceType> {
    let spec = &crd["spec"];
    let (Some(group), Some(plural), Some(kind)) = (
        spec["group"].as_str(),
        spec["names"]["plural"].as_str(),
        spec["names"]["kind"].as_str(),
    ) else {
        return Vec::new();
    };
    let singular = spec["names"]["singular"]
        .as_str()
        .map_or_else(|| kind.to_ascii_lowercase(), str::to_owned);
    let namespaced = spec["scope"].as_str() != Some("Cluster");
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    let storage_version = versions
        .iter()
        .find(|v| v["storage"].as_bool() == Some(true))
        .or_else(|| versions.first())
        .and_then(|v| v["name"].as_str())
        .unwrap_or("v1")
        .to_owned();
    versions
        .iter()
        .filter(|v| v["served"].as_bool() != Some(false))
        .filter_map(|v| {
            let version = v["name"].as_str()?;
            let subresources = &v["subresources"];
            let scale = subresources
                .get("scale")
                .filter(|s| s.is_object())
                .map(|s| ScalePaths {
                    spec_replicas: json_path_to_pointer(
                        s["specReplicasPath"].as_str().unwrap_or(".spec.replicas"),
                    ),
                    status_replicas: json_path_to_pointer(
                        s["statusReplicasPath"]
                            .as_str()
                            .unwrap_or(".status.replicas"),
                    ),
                    label_selector: s["labelSelectorPath"].as_str().map(json_path_to_pointer),
                });
            Some(ResourceType {
                group: group.to_owned(),
                version: version.to_owned(),
                plural: plural.to_owned(),
                singular: singular.clone(),
                kind: kind.to_owned(),
                namespaced,
                short_names: strings(&spec["names"]["shortNames"]),
                categories: strings(&spec["names"]["categories"]),
                status: subresources.get("status").is_some_and(Value::is_object),
                scale,
                generation: true,
                name_rule: NameRule::Subdomain,
                create_on_update: false,
                builtin: None,
                crd: Some(CrdVersion {
                    schema: v["schema"].get("openAPIV3Schema").cloned(),
                    printer_columns: v["additionalPrinterColumns"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default(),
                    storage_version: storage_version.clone(),
                    selectable_fields: v["selectableFields"]
                        .as_array()
                        .map(|fields| {
                            fields
                                .iter()
                                .filter_map(|f| f["jsonPath"].as_str())
                                .map(|p| p.trim_start_matches('.').to_owned())
                                .collect()
                        })
                        .unwrap_or_default(),
                }),
            })
        })
        .collect()
}

/// `.spec.replicas` -> `/spec/replicas`.
fn json_path_to_pointer(path: &str) -> String {
    path.trim_start_matches('.')
        .split('.')
        .fold(String::new(), |mut acc, part| {
            acc.push('/');
            acc.push_str(part);
            acc
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builtins_are_routable() {
        let registry = Registry::builtin();
        let deployments = registry.lookup("apps", "v1", "deployments").unwrap();
        assert_eq!(deployments.kind, "Deployment");
        assert!(deployments.namespaced && deployments.generation && deployments.scale.is_some());
        assert_eq!(deployments.qualified(), "deployments.apps");
        assert!(!registry.lookup("", "v1", "namespaces").unwrap().namespaced);
        assert!(registry.lookup("apps", "v2", "deployments").is_none());
        assert_eq!(registry.by_kind("v1", "Pod").unwrap().plural, "pods");
    }

    #[test]
    fn crds_define_one_type_per_served_version() {
        let crd = json!({"spec": {
            "group": "example.com",
            "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
            "scope": "Namespaced",
            "versions": [
                {"name": "v1", "served": true, "storage": true, "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.size", "statusReplicasPath": ".status.size"}}},
                {"name": "v1beta1", "served": true, "storage": false},
                {"name": "v0", "served": false, "storage": false}
            ]
        }});
        let types = types_from_crd(&crd);
        assert_eq!(types.len(), 2);
        assert!(types[0].status);
        assert_eq!(types[0].scale.as_ref().unwrap().spec_replicas, "/spec/size");
        assert_eq!(types[1].crd.as_ref().unwrap().storage_version, "v1");
        let mut registry = Registry::builtin();
        registry.set_custom(types);
        assert!(
            registry
                .lookup("example.com", "v1beta1", "widgets")
                .is_some()
        );
    }
}
