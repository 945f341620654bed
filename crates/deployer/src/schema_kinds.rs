// The built-in kinds ferry checks offline, one line each: apiVersion, kind => k8s-openapi type.
// Shared by `schema.rs` and `scripts/schema` (which generates the required-fields table from
// the same list): `for_each_kind!(m)` calls the macro `m` with every entry.
macro_rules! for_each_kind {
    ($m:ident) => {
        $m! {
        "v1", "Pod" => k8s_openapi::api::core::v1::Pod;
        "v1", "Service" => k8s_openapi::api::core::v1::Service;
        "v1", "ConfigMap" => k8s_openapi::api::core::v1::ConfigMap;
        "v1", "Secret" => k8s_openapi::api::core::v1::Secret;
        "v1", "Namespace" => k8s_openapi::api::core::v1::Namespace;
        "v1", "ServiceAccount" => k8s_openapi::api::core::v1::ServiceAccount;
        "v1", "PersistentVolumeClaim" => k8s_openapi::api::core::v1::PersistentVolumeClaim;
        "v1", "PersistentVolume" => k8s_openapi::api::core::v1::PersistentVolume;
        "v1", "LimitRange" => k8s_openapi::api::core::v1::LimitRange;
        "v1", "ResourceQuota" => k8s_openapi::api::core::v1::ResourceQuota;
        "v1", "Endpoints" => k8s_openapi::api::core::v1::Endpoints;
        "v1", "ReplicationController" => k8s_openapi::api::core::v1::ReplicationController;
        "apps/v1", "Deployment" => k8s_openapi::api::apps::v1::Deployment;
        "apps/v1", "StatefulSet" => k8s_openapi::api::apps::v1::StatefulSet;
        "apps/v1", "DaemonSet" => k8s_openapi::api::apps::v1::DaemonSet;
        "apps/v1", "ReplicaSet" => k8s_openapi::api::apps::v1::ReplicaSet;
        "batch/v1", "Job" => k8s_openapi::api::batch::v1::Job;
        "batch/v1", "CronJob" => k8s_openapi::api::batch::v1::CronJob;
        "networking.k8s.io/v1", "Ingress" => k8s_openapi::api::networking::v1::Ingress;
        "networking.k8s.io/v1", "IngressClass" => k8s_openapi::api::networking::v1::IngressClass;
        "networking.k8s.io/v1", "NetworkPolicy" => k8s_openapi::api::networking::v1::NetworkPolicy;
        "autoscaling/v2", "HorizontalPodAutoscaler" => k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
        "autoscaling/v1", "HorizontalPodAutoscaler" => k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler;
        "policy/v1", "PodDisruptionBudget" => k8s_openapi::api::policy::v1::PodDisruptionBudget;
        "rbac.authorization.k8s.io/v1", "Role" => k8s_openapi::api::rbac::v1::Role;
        "rbac.authorization.k8s.io/v1", "RoleBinding" => k8s_openapi::api::rbac::v1::RoleBinding;
        "rbac.authorization.k8s.io/v1", "ClusterRole" => k8s_openapi::api::rbac::v1::ClusterRole;
        "rbac.authorization.k8s.io/v1", "ClusterRoleBinding" => k8s_openapi::api::rbac::v1::ClusterRoleBinding;
        "scheduling.k8s.io/v1", "PriorityClass" => k8s_openapi::api::scheduling::v1::PriorityClass;
        "storage.k8s.io/v1", "StorageClass" => k8s_openapi::api::storage::v1::StorageClass;
        "coordination.k8s.io/v1", "Lease" => k8s_openapi::api::coordination::v1::Lease;
        "discovery.k8s.io/v1", "EndpointSlice" => k8s_openapi::api::discovery::v1::EndpointSlice;
        "admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration" => k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
        "admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration" => k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
        "apiextensions.k8s.io/v1", "CustomResourceDefinition" => k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
        }
    };
}
