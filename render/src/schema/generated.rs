//! Generated list/map merge strategies of built-in Kubernetes types (from k8s-openapi 0.29.0, v1_33); do not edit.
//!
//! Regenerate with `EDGECD_REGEN_SCHEMA=1 cargo test -p edgecd-render --test schema_table`.

use super::{FieldDef, KindDef, ListStrategy::*, NONE, TypeDef};

/// Object types reachable from a kind that have a strategy somewhere below them.
pub(super) static TYPES: &[TypeDef] = &[
    TypeDef {
        name: "api.admissionregistration.v1.MatchResources",
        fields: &[
            FieldDef { name: "excludeResourceRules", child: 3, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "namespaceSelector", child: 333, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "objectSelector", child: 333, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "resourceRules", child: 3, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.admissionregistration.v1.MutatingWebhook",
        fields: &[
            FieldDef { name: "admissionReviewVersions", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "matchConditions", child: NONE, keyed: false, list: Some(Map { keys: &["name"] }), map_atomic: false },
            FieldDef { name: "namespaceSelector", child: 333, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "objectSelector", child: 333, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "rules", child: 5, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.admissionregistration.v1.MutatingWebhookConfiguration",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "webhooks", child: 1, keyed: false, list: Some(Map { keys: &["name"] }), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.admissionregistration.v1.NamedRuleWithOperations",
        fields: &[
            FieldDef { name: "apiGroups", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "apiVersions", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "operations", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "resourceNames", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "resources", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.admissionregistration.v1.ParamRef",
        fields: &[
            FieldDef { name: "selector", child: 333, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.admissionregistration.v1.RuleWithOperations",
        fields: &[
            FieldDef { name: "apiGroups", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "apiVersions", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "operations", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "resources", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.admissionregistration.v1.TypeChecking",
        fields: &[
            FieldDef { name: "expressionWarnings", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.admissionregistration.v1.ValidatingAdmissionPolicy",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 10, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "status", child: 11, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.admissionregistration.v1.ValidatingAdmissionPolicyBinding",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 9, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.admissionregistration.v1.ValidatingAdmissionPolicyBindingSpec",
        fields: &[
            FieldDef { name: "matchResources", child: 0, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "paramRef", child: 4, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "validationActions", child: NONE, keyed: false, list: Some(Set), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.admissionregistration.v1.ValidatingAdmissionPolicySpec",
        fields: &[
            FieldDef { name: "auditAnnotations", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "matchConditions", child: NONE, keyed: false, list: Some(Map { keys: &["name"] }), map_atomic: false },
            FieldDef { name: "matchConstraints", child: 0, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "validations", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "variables", child: NONE, keyed: false, list: Some(Map { keys: &["name"] }), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.admissionregistration.v1.ValidatingAdmissionPolicyStatus",
        fields: &[
            FieldDef { name: "conditions", child: NONE, keyed: false, list: Some(Map { keys: &["type"] }), map_atomic: false },
            FieldDef { name: "typeChecking", child: 6, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.admissionregistration.v1.ValidatingWebhook",
        fields: &[
            FieldDef { name: "admissionReviewVersions", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "matchConditions", child: NONE, keyed: false, list: Some(Map { keys: &["name"] }), map_atomic: false },
            FieldDef { name: "namespaceSelector", child: 333, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "objectSelector", child: 333, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "rules", child: 5, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.admissionregistration.v1.ValidatingWebhookConfiguration",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "webhooks", child: 12, keyed: false, list: Some(Map { keys: &["name"] }), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.admissionregistration.v1alpha1.MatchResources",
        fields: &[
            FieldDef { name: "excludeResourceRules", child: 19, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "namespaceSelector", child: 333, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "objectSelector", child: 333, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "resourceRules", child: 19, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.admissionregistration.v1alpha1.MutatingAdmissionPolicy",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 18, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.admissionregistration.v1alpha1.MutatingAdmissionPolicyBinding",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 17, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.admissionregistration.v1alpha1.MutatingAdmissionPolicyBindingSpec",
        fields: &[
            FieldDef { name: "matchResources", child: 14, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "paramRef", child: 20, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.admissionregistration.v1alpha1.MutatingAdmissionPolicySpec",
        fields: &[
            FieldDef { name: "matchConditions", child: NONE, keyed: false, list: Some(Map { keys: &["name"] }), map_atomic: false },
            FieldDef { name: "matchConstraints", child: 14, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "mutations", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "variables", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.admissionregistration.v1alpha1.NamedRuleWithOperations",
        fields: &[
            FieldDef { name: "apiGroups", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "apiVersions", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "operations", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "resourceNames", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "resources", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.admissionregistration.v1alpha1.ParamRef",
        fields: &[
            FieldDef { name: "selector", child: 333, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.admissionregistration.v1beta1.MatchResources",
        fields: &[
            FieldDef { name: "excludeResourceRules", child: 22, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "namespaceSelector", child: 333, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "objectSelector", child: 333, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "resourceRules", child: 22, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.admissionregistration.v1beta1.NamedRuleWithOperations",
        fields: &[
            FieldDef { name: "apiGroups", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "apiVersions", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "operations", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "resourceNames", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "resources", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.admissionregistration.v1beta1.ParamRef",
        fields: &[
            FieldDef { name: "selector", child: 333, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.admissionregistration.v1beta1.TypeChecking",
        fields: &[
            FieldDef { name: "expressionWarnings", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.admissionregistration.v1beta1.ValidatingAdmissionPolicy",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 28, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "status", child: 29, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.admissionregistration.v1beta1.ValidatingAdmissionPolicyBinding",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 27, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.admissionregistration.v1beta1.ValidatingAdmissionPolicyBindingSpec",
        fields: &[
            FieldDef { name: "matchResources", child: 21, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "paramRef", child: 23, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "validationActions", child: NONE, keyed: false, list: Some(Set), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.admissionregistration.v1beta1.ValidatingAdmissionPolicySpec",
        fields: &[
            FieldDef { name: "auditAnnotations", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "matchConditions", child: NONE, keyed: false, list: Some(Map { keys: &["name"] }), map_atomic: false },
            FieldDef { name: "matchConstraints", child: 21, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "validations", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "variables", child: NONE, keyed: false, list: Some(Map { keys: &["name"] }), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.admissionregistration.v1beta1.ValidatingAdmissionPolicyStatus",
        fields: &[
            FieldDef { name: "conditions", child: NONE, keyed: false, list: Some(Map { keys: &["type"] }), map_atomic: false },
            FieldDef { name: "typeChecking", child: 24, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.apiserverinternal.v1alpha1.ServerStorageVersion",
        fields: &[
            FieldDef { name: "decodableVersions", child: NONE, keyed: false, list: Some(Set), map_atomic: false },
            FieldDef { name: "servedVersions", child: NONE, keyed: false, list: Some(Set), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.apiserverinternal.v1alpha1.StorageVersion",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "status", child: 32, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.apiserverinternal.v1alpha1.StorageVersionStatus",
        fields: &[
            FieldDef { name: "conditions", child: NONE, keyed: false, list: Some(Map { keys: &["type"] }), map_atomic: false },
            FieldDef { name: "storageVersions", child: 30, keyed: false, list: Some(Map { keys: &["apiServerID"] }), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.apps.v1.ControllerRevision",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.apps.v1.DaemonSet",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 35, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "status", child: 36, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.apps.v1.DaemonSetSpec",
        fields: &[
            FieldDef { name: "selector", child: 333, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "template", child: 158, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.apps.v1.DaemonSetStatus",
        fields: &[
            FieldDef { name: "conditions", child: NONE, keyed: false, list: Some(Map { keys: &["type"] }), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.apps.v1.Deployment",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 38, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "status", child: 39, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.apps.v1.DeploymentSpec",
        fields: &[
            FieldDef { name: "selector", child: 333, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "template", child: 158, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.apps.v1.DeploymentStatus",
        fields: &[
            FieldDef { name: "conditions", child: NONE, keyed: false, list: Some(Map { keys: &["type"] }), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.apps.v1.ReplicaSet",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 41, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "status", child: 42, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.apps.v1.ReplicaSetSpec",
        fields: &[
            FieldDef { name: "selector", child: 333, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "template", child: 158, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.apps.v1.ReplicaSetStatus",
        fields: &[
            FieldDef { name: "conditions", child: NONE, keyed: false, list: Some(Map { keys: &["type"] }), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.apps.v1.StatefulSet",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 44, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "status", child: 45, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.apps.v1.StatefulSetSpec",
        fields: &[
            FieldDef { name: "selector", child: 333, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "template", child: 158, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "volumeClaimTemplates", child: 144, keyed: false, list: Some(Map { keys: &["metadata.name"] }), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.apps.v1.StatefulSetStatus",
        fields: &[
            FieldDef { name: "conditions", child: NONE, keyed: false, list: Some(Map { keys: &["type"] }), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.authentication.v1.SelfSubjectReview",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "status", child: 47, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.authentication.v1.SelfSubjectReviewStatus",
        fields: &[
            FieldDef { name: "userInfo", child: 51, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.authentication.v1.TokenReview",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 49, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "status", child: 50, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.authentication.v1.TokenReviewSpec",
        fields: &[
            FieldDef { name: "audiences", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.authentication.v1.TokenReviewStatus",
        fields: &[
            FieldDef { name: "audiences", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "user", child: 51, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.authentication.v1.UserInfo",
        fields: &[
            FieldDef { name: "groups", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.authorization.v1.FieldSelectorAttributes",
        fields: &[
            FieldDef { name: "requirements", child: 332, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.authorization.v1.LabelSelectorAttributes",
        fields: &[
            FieldDef { name: "requirements", child: 334, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.authorization.v1.LocalSubjectAccessReview",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 62, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.authorization.v1.NonResourceRule",
        fields: &[
            FieldDef { name: "nonResourceURLs", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "verbs", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.authorization.v1.ResourceAttributes",
        fields: &[
            FieldDef { name: "fieldSelector", child: 52, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "labelSelector", child: 53, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.authorization.v1.ResourceRule",
        fields: &[
            FieldDef { name: "apiGroups", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "resourceNames", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "resources", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "verbs", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.authorization.v1.SelfSubjectAccessReview",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 59, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.authorization.v1.SelfSubjectAccessReviewSpec",
        fields: &[
            FieldDef { name: "resourceAttributes", child: 56, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.authorization.v1.SelfSubjectRulesReview",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "status", child: 63, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.authorization.v1.SubjectAccessReview",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 62, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.authorization.v1.SubjectAccessReviewSpec",
        fields: &[
            FieldDef { name: "groups", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "resourceAttributes", child: 56, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.authorization.v1.SubjectRulesReviewStatus",
        fields: &[
            FieldDef { name: "nonResourceRules", child: 55, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "resourceRules", child: 57, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.autoscaling.v1.HorizontalPodAutoscaler",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.autoscaling.v2.ExternalMetricSource",
        fields: &[
            FieldDef { name: "metric", child: 72, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.autoscaling.v2.ExternalMetricStatus",
        fields: &[
            FieldDef { name: "metric", child: 72, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.autoscaling.v2.HPAScalingRules",
        fields: &[
            FieldDef { name: "policies", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.autoscaling.v2.HorizontalPodAutoscaler",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 70, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "status", child: 71, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.autoscaling.v2.HorizontalPodAutoscalerBehavior",
        fields: &[
            FieldDef { name: "scaleDown", child: 67, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "scaleUp", child: 67, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.autoscaling.v2.HorizontalPodAutoscalerSpec",
        fields: &[
            FieldDef { name: "behavior", child: 69, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "metrics", child: 73, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.autoscaling.v2.HorizontalPodAutoscalerStatus",
        fields: &[
            FieldDef { name: "conditions", child: NONE, keyed: false, list: Some(Map { keys: &["type"] }), map_atomic: false },
            FieldDef { name: "currentMetrics", child: 74, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.autoscaling.v2.MetricIdentifier",
        fields: &[
            FieldDef { name: "selector", child: 333, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.autoscaling.v2.MetricSpec",
        fields: &[
            FieldDef { name: "external", child: 65, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "object", child: 75, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "pods", child: 77, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.autoscaling.v2.MetricStatus",
        fields: &[
            FieldDef { name: "external", child: 66, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "object", child: 76, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "pods", child: 78, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.autoscaling.v2.ObjectMetricSource",
        fields: &[
            FieldDef { name: "metric", child: 72, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.autoscaling.v2.ObjectMetricStatus",
        fields: &[
            FieldDef { name: "metric", child: 72, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.autoscaling.v2.PodsMetricSource",
        fields: &[
            FieldDef { name: "metric", child: 72, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.autoscaling.v2.PodsMetricStatus",
        fields: &[
            FieldDef { name: "metric", child: 72, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.batch.v1.CronJob",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 80, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "status", child: 81, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.batch.v1.CronJobSpec",
        fields: &[
            FieldDef { name: "jobTemplate", child: 85, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.batch.v1.CronJobStatus",
        fields: &[
            FieldDef { name: "active", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.batch.v1.Job",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 83, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "status", child: 84, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.batch.v1.JobSpec",
        fields: &[
            FieldDef { name: "podFailurePolicy", child: 86, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "selector", child: 333, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "successPolicy", child: 89, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "template", child: 158, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.batch.v1.JobStatus",
        fields: &[
            FieldDef { name: "conditions", child: NONE, keyed: false, list: Some(Map { keys: &["type"] }), map_atomic: false },
            FieldDef { name: "uncountedTerminatedPods", child: 90, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.batch.v1.JobTemplateSpec",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 83, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.batch.v1.PodFailurePolicy",
        fields: &[
            FieldDef { name: "rules", child: 88, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.batch.v1.PodFailurePolicyOnExitCodesRequirement",
        fields: &[
            FieldDef { name: "values", child: NONE, keyed: false, list: Some(Set), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.batch.v1.PodFailurePolicyRule",
        fields: &[
            FieldDef { name: "onExitCodes", child: 87, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "onPodConditions", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.batch.v1.SuccessPolicy",
        fields: &[
            FieldDef { name: "rules", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.batch.v1.UncountedTerminatedPods",
        fields: &[
            FieldDef { name: "failed", child: NONE, keyed: false, list: Some(Set), map_atomic: false },
            FieldDef { name: "succeeded", child: NONE, keyed: false, list: Some(Set), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.certificates.v1.CertificateSigningRequest",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 92, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "status", child: 93, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.certificates.v1.CertificateSigningRequestSpec",
        fields: &[
            FieldDef { name: "groups", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "usages", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.certificates.v1.CertificateSigningRequestStatus",
        fields: &[
            FieldDef { name: "conditions", child: NONE, keyed: false, list: Some(Map { keys: &["type"] }), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.certificates.v1alpha1.ClusterTrustBundle",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.certificates.v1beta1.ClusterTrustBundle",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.coordination.v1.Lease",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.coordination.v1alpha2.LeaseCandidate",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.coordination.v1beta1.LeaseCandidate",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.Affinity",
        fields: &[
            FieldDef { name: "nodeAffinity", child: 137, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "podAffinity", child: 150, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "podAntiAffinity", child: 152, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.Binding",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.Capabilities",
        fields: &[
            FieldDef { name: "add", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "drop", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.CephFSPersistentVolumeSource",
        fields: &[
            FieldDef { name: "monitors", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.CephFSVolumeSource",
        fields: &[
            FieldDef { name: "monitors", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.ClusterTrustBundleProjection",
        fields: &[
            FieldDef { name: "labelSelector", child: 333, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.ComponentStatus",
        fields: &[
            FieldDef { name: "conditions", child: NONE, keyed: false, list: Some(Map { keys: &["type"] }), map_atomic: false },
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.ConfigMap",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.ConfigMapProjection",
        fields: &[
            FieldDef { name: "items", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.ConfigMapVolumeSource",
        fields: &[
            FieldDef { name: "items", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.Container",
        fields: &[
            FieldDef { name: "args", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "command", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "env", child: NONE, keyed: false, list: Some(Map { keys: &["name"] }), map_atomic: false },
            FieldDef { name: "envFrom", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "lifecycle", child: 126, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "livenessProbe", child: 160, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "ports", child: NONE, keyed: false, list: Some(Map { keys: &["containerPort"] }), map_atomic: false },
            FieldDef { name: "readinessProbe", child: 160, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "resizePolicy", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "resources", child: 169, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "securityContext", child: 176, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "startupProbe", child: 160, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "volumeDevices", child: NONE, keyed: false, list: Some(Map { keys: &["devicePath"] }), map_atomic: false },
            FieldDef { name: "volumeMounts", child: NONE, keyed: false, list: Some(Map { keys: &["mountPath"] }), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.ContainerImage",
        fields: &[
            FieldDef { name: "names", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.ContainerStatus",
        fields: &[
            FieldDef { name: "allocatedResourcesStatus", child: 170, keyed: false, list: Some(Map { keys: &["name"] }), map_atomic: false },
            FieldDef { name: "resources", child: 169, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "user", child: 112, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "volumeMounts", child: NONE, keyed: false, list: Some(Map { keys: &["mountPath"] }), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.ContainerUser",
        fields: &[
            FieldDef { name: "linux", child: 130, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.DownwardAPIProjection",
        fields: &[
            FieldDef { name: "items", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.DownwardAPIVolumeSource",
        fields: &[
            FieldDef { name: "items", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.EndpointSubset",
        fields: &[
            FieldDef { name: "addresses", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "notReadyAddresses", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "ports", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.Endpoints",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "subsets", child: 115, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.EphemeralContainer",
        fields: &[
            FieldDef { name: "args", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "command", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "env", child: NONE, keyed: false, list: Some(Map { keys: &["name"] }), map_atomic: false },
            FieldDef { name: "envFrom", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "lifecycle", child: 126, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "livenessProbe", child: 160, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "ports", child: NONE, keyed: false, list: Some(Map { keys: &["containerPort"] }), map_atomic: false },
            FieldDef { name: "readinessProbe", child: 160, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "resizePolicy", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "resources", child: 169, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "securityContext", child: 176, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "startupProbe", child: 160, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "volumeDevices", child: NONE, keyed: false, list: Some(Map { keys: &["devicePath"] }), map_atomic: false },
            FieldDef { name: "volumeMounts", child: NONE, keyed: false, list: Some(Map { keys: &["mountPath"] }), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.EphemeralVolumeSource",
        fields: &[
            FieldDef { name: "volumeClaimTemplate", child: 147, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.Event",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.ExecAction",
        fields: &[
            FieldDef { name: "command", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.FCVolumeSource",
        fields: &[
            FieldDef { name: "targetWWNs", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "wwids", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.HTTPGetAction",
        fields: &[
            FieldDef { name: "httpHeaders", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.HostAlias",
        fields: &[
            FieldDef { name: "hostnames", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.ISCSIPersistentVolumeSource",
        fields: &[
            FieldDef { name: "portals", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.ISCSIVolumeSource",
        fields: &[
            FieldDef { name: "portals", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.Lifecycle",
        fields: &[
            FieldDef { name: "postStart", child: 127, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "preStop", child: 127, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.LifecycleHandler",
        fields: &[
            FieldDef { name: "exec", child: 120, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "httpGet", child: 122, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.LimitRange",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 129, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.LimitRangeSpec",
        fields: &[
            FieldDef { name: "limits", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.LinuxContainerUser",
        fields: &[
            FieldDef { name: "supplementalGroups", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.LoadBalancerIngress",
        fields: &[
            FieldDef { name: "ports", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.LoadBalancerStatus",
        fields: &[
            FieldDef { name: "ingress", child: 131, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.Namespace",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 134, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "status", child: 135, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.NamespaceSpec",
        fields: &[
            FieldDef { name: "finalizers", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.NamespaceStatus",
        fields: &[
            FieldDef { name: "conditions", child: NONE, keyed: false, list: Some(Map { keys: &["type"] }), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.Node",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 141, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "status", child: 142, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.NodeAffinity",
        fields: &[
            FieldDef { name: "preferredDuringSchedulingIgnoredDuringExecution", child: 159, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "requiredDuringSchedulingIgnoredDuringExecution", child: 138, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.NodeSelector",
        fields: &[
            FieldDef { name: "nodeSelectorTerms", child: 140, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.NodeSelectorRequirement",
        fields: &[
            FieldDef { name: "values", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.NodeSelectorTerm",
        fields: &[
            FieldDef { name: "matchExpressions", child: 139, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "matchFields", child: 139, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.NodeSpec",
        fields: &[
            FieldDef { name: "podCIDRs", child: NONE, keyed: false, list: Some(Set), map_atomic: false },
            FieldDef { name: "taints", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.NodeStatus",
        fields: &[
            FieldDef { name: "addresses", child: NONE, keyed: false, list: Some(Map { keys: &["type"] }), map_atomic: false },
            FieldDef { name: "conditions", child: NONE, keyed: false, list: Some(Map { keys: &["type"] }), map_atomic: false },
            FieldDef { name: "images", child: 110, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "runtimeHandlers", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "volumesAttached", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "volumesInUse", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.PersistentVolume",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 148, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.PersistentVolumeClaim",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 145, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "status", child: 146, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.PersistentVolumeClaimSpec",
        fields: &[
            FieldDef { name: "accessModes", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "selector", child: 333, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.PersistentVolumeClaimStatus",
        fields: &[
            FieldDef { name: "accessModes", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "conditions", child: NONE, keyed: false, list: Some(Map { keys: &["type"] }), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.PersistentVolumeClaimTemplate",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 145, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.PersistentVolumeSpec",
        fields: &[
            FieldDef { name: "accessModes", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "cephfs", child: 102, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "fc", child: 121, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "iscsi", child: 124, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "mountOptions", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "nodeAffinity", child: 185, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "rbd", child: 162, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.Pod",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 155, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "status", child: 156, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.PodAffinity",
        fields: &[
            FieldDef { name: "preferredDuringSchedulingIgnoredDuringExecution", child: 187, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "requiredDuringSchedulingIgnoredDuringExecution", child: 151, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.PodAffinityTerm",
        fields: &[
            FieldDef { name: "labelSelector", child: 333, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "matchLabelKeys", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "mismatchLabelKeys", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "namespaceSelector", child: 333, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "namespaces", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.PodAntiAffinity",
        fields: &[
            FieldDef { name: "preferredDuringSchedulingIgnoredDuringExecution", child: 187, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "requiredDuringSchedulingIgnoredDuringExecution", child: 151, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.PodDNSConfig",
        fields: &[
            FieldDef { name: "nameservers", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "options", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "searches", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.PodSecurityContext",
        fields: &[
            FieldDef { name: "supplementalGroups", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "sysctls", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.PodSpec",
        fields: &[
            FieldDef { name: "affinity", child: 99, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "containers", child: 109, keyed: false, list: Some(Map { keys: &["name"] }), map_atomic: false },
            FieldDef { name: "dnsConfig", child: 153, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "ephemeralContainers", child: 117, keyed: false, list: Some(Map { keys: &["name"] }), map_atomic: false },
            FieldDef { name: "hostAliases", child: 123, keyed: false, list: Some(Map { keys: &["ip"] }), map_atomic: false },
            FieldDef { name: "imagePullSecrets", child: NONE, keyed: false, list: Some(Map { keys: &["name"] }), map_atomic: false },
            FieldDef { name: "initContainers", child: 109, keyed: false, list: Some(Map { keys: &["name"] }), map_atomic: false },
            FieldDef { name: "nodeSelector", child: NONE, keyed: true, list: None, map_atomic: true },
            FieldDef { name: "readinessGates", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "resourceClaims", child: NONE, keyed: false, list: Some(Map { keys: &["name"] }), map_atomic: false },
            FieldDef { name: "resources", child: 169, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "schedulingGates", child: NONE, keyed: false, list: Some(Map { keys: &["name"] }), map_atomic: false },
            FieldDef { name: "securityContext", child: 154, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "tolerations", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "topologySpreadConstraints", child: 183, keyed: false, list: Some(Map { keys: &["topologyKey"] }), map_atomic: false },
            FieldDef { name: "volumes", child: 184, keyed: false, list: Some(Map { keys: &["name"] }), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.PodStatus",
        fields: &[
            FieldDef { name: "conditions", child: NONE, keyed: false, list: Some(Map { keys: &["type"] }), map_atomic: false },
            FieldDef { name: "containerStatuses", child: 111, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "ephemeralContainerStatuses", child: 111, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "hostIPs", child: NONE, keyed: false, list: Some(Map { keys: &["ip"] }), map_atomic: false },
            FieldDef { name: "initContainerStatuses", child: 111, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "podIPs", child: NONE, keyed: false, list: Some(Map { keys: &["ip"] }), map_atomic: false },
            FieldDef { name: "resourceClaimStatuses", child: NONE, keyed: false, list: Some(Map { keys: &["name"] }), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.PodTemplate",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "template", child: 158, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.PodTemplateSpec",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 155, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.PreferredSchedulingTerm",
        fields: &[
            FieldDef { name: "preference", child: 140, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.Probe",
        fields: &[
            FieldDef { name: "exec", child: 120, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "httpGet", child: 122, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.ProjectedVolumeSource",
        fields: &[
            FieldDef { name: "sources", child: 186, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.RBDPersistentVolumeSource",
        fields: &[
            FieldDef { name: "monitors", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.RBDVolumeSource",
        fields: &[
            FieldDef { name: "monitors", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.ReplicationController",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 165, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "status", child: 166, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.ReplicationControllerSpec",
        fields: &[
            FieldDef { name: "selector", child: NONE, keyed: true, list: None, map_atomic: true },
            FieldDef { name: "template", child: 158, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.ReplicationControllerStatus",
        fields: &[
            FieldDef { name: "conditions", child: NONE, keyed: false, list: Some(Map { keys: &["type"] }), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.ResourceQuota",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 168, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.ResourceQuotaSpec",
        fields: &[
            FieldDef { name: "scopeSelector", child: 171, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "scopes", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.ResourceRequirements",
        fields: &[
            FieldDef { name: "claims", child: NONE, keyed: false, list: Some(Map { keys: &["name"] }), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.ResourceStatus",
        fields: &[
            FieldDef { name: "resources", child: NONE, keyed: false, list: Some(Map { keys: &["resourceID"] }), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.ScopeSelector",
        fields: &[
            FieldDef { name: "matchExpressions", child: 172, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.ScopedResourceSelectorRequirement",
        fields: &[
            FieldDef { name: "values", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.Secret",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.SecretProjection",
        fields: &[
            FieldDef { name: "items", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.SecretVolumeSource",
        fields: &[
            FieldDef { name: "items", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.SecurityContext",
        fields: &[
            FieldDef { name: "capabilities", child: 101, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.Service",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 179, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "status", child: 180, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.ServiceAccount",
        fields: &[
            FieldDef { name: "imagePullSecrets", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "secrets", child: NONE, keyed: false, list: Some(Map { keys: &["name"] }), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.ServiceSpec",
        fields: &[
            FieldDef { name: "clusterIPs", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "externalIPs", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "ipFamilies", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "loadBalancerSourceRanges", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "ports", child: NONE, keyed: false, list: Some(Map { keys: &["port"] }), map_atomic: false },
            FieldDef { name: "selector", child: NONE, keyed: true, list: None, map_atomic: true },
        ],
    },
    TypeDef {
        name: "api.core.v1.ServiceStatus",
        fields: &[
            FieldDef { name: "conditions", child: NONE, keyed: false, list: Some(Map { keys: &["type"] }), map_atomic: false },
            FieldDef { name: "loadBalancer", child: 132, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.TopologySelectorLabelRequirement",
        fields: &[
            FieldDef { name: "values", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.TopologySelectorTerm",
        fields: &[
            FieldDef { name: "matchLabelExpressions", child: 181, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.TopologySpreadConstraint",
        fields: &[
            FieldDef { name: "labelSelector", child: 333, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "matchLabelKeys", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.Volume",
        fields: &[
            FieldDef { name: "cephfs", child: 103, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "configMap", child: 108, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "downwardAPI", child: 114, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "ephemeral", child: 118, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "fc", child: 121, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "iscsi", child: 125, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "projected", child: 161, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "rbd", child: 163, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "secret", child: 175, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.VolumeNodeAffinity",
        fields: &[
            FieldDef { name: "required", child: 138, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.VolumeProjection",
        fields: &[
            FieldDef { name: "clusterTrustBundle", child: 104, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "configMap", child: 107, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "downwardAPI", child: 113, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "secret", child: 174, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.core.v1.WeightedPodAffinityTerm",
        fields: &[
            FieldDef { name: "podAffinityTerm", child: 151, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.discovery.v1.Endpoint",
        fields: &[
            FieldDef { name: "addresses", child: NONE, keyed: false, list: Some(Set), map_atomic: false },
            FieldDef { name: "hints", child: 189, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.discovery.v1.EndpointHints",
        fields: &[
            FieldDef { name: "forNodes", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "forZones", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.discovery.v1.EndpointSlice",
        fields: &[
            FieldDef { name: "endpoints", child: 188, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "ports", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.events.v1.Event",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.flowcontrol.v1.FlowSchema",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 193, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "status", child: 194, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.flowcontrol.v1.FlowSchemaSpec",
        fields: &[
            FieldDef { name: "rules", child: 196, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.flowcontrol.v1.FlowSchemaStatus",
        fields: &[
            FieldDef { name: "conditions", child: NONE, keyed: false, list: Some(Map { keys: &["type"] }), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.flowcontrol.v1.NonResourcePolicyRule",
        fields: &[
            FieldDef { name: "nonResourceURLs", child: NONE, keyed: false, list: Some(Set), map_atomic: false },
            FieldDef { name: "verbs", child: NONE, keyed: false, list: Some(Set), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.flowcontrol.v1.PolicyRulesWithSubjects",
        fields: &[
            FieldDef { name: "nonResourceRules", child: 195, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "resourceRules", child: 199, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "subjects", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.flowcontrol.v1.PriorityLevelConfiguration",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "status", child: 198, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.flowcontrol.v1.PriorityLevelConfigurationStatus",
        fields: &[
            FieldDef { name: "conditions", child: NONE, keyed: false, list: Some(Map { keys: &["type"] }), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.flowcontrol.v1.ResourcePolicyRule",
        fields: &[
            FieldDef { name: "apiGroups", child: NONE, keyed: false, list: Some(Set), map_atomic: false },
            FieldDef { name: "namespaces", child: NONE, keyed: false, list: Some(Set), map_atomic: false },
            FieldDef { name: "resources", child: NONE, keyed: false, list: Some(Set), map_atomic: false },
            FieldDef { name: "verbs", child: NONE, keyed: false, list: Some(Set), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.networking.v1.HTTPIngressRuleValue",
        fields: &[
            FieldDef { name: "paths", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.networking.v1.IPAddress",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.networking.v1.IPBlock",
        fields: &[
            FieldDef { name: "except", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.networking.v1.Ingress",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 208, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "status", child: 209, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.networking.v1.IngressClass",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.networking.v1.IngressLoadBalancerIngress",
        fields: &[
            FieldDef { name: "ports", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.networking.v1.IngressLoadBalancerStatus",
        fields: &[
            FieldDef { name: "ingress", child: 205, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.networking.v1.IngressRule",
        fields: &[
            FieldDef { name: "http", child: 200, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.networking.v1.IngressSpec",
        fields: &[
            FieldDef { name: "rules", child: 207, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "tls", child: 210, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.networking.v1.IngressStatus",
        fields: &[
            FieldDef { name: "loadBalancer", child: 206, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.networking.v1.IngressTLS",
        fields: &[
            FieldDef { name: "hosts", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.networking.v1.NetworkPolicy",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 215, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.networking.v1.NetworkPolicyEgressRule",
        fields: &[
            FieldDef { name: "ports", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "to", child: 214, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.networking.v1.NetworkPolicyIngressRule",
        fields: &[
            FieldDef { name: "from", child: 214, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "ports", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.networking.v1.NetworkPolicyPeer",
        fields: &[
            FieldDef { name: "ipBlock", child: 202, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "namespaceSelector", child: 333, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "podSelector", child: 333, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.networking.v1.NetworkPolicySpec",
        fields: &[
            FieldDef { name: "egress", child: 212, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "ingress", child: 213, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "podSelector", child: 333, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "policyTypes", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.networking.v1.ServiceCIDR",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 217, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "status", child: 218, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.networking.v1.ServiceCIDRSpec",
        fields: &[
            FieldDef { name: "cidrs", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.networking.v1.ServiceCIDRStatus",
        fields: &[
            FieldDef { name: "conditions", child: NONE, keyed: false, list: Some(Map { keys: &["type"] }), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.networking.v1beta1.IPAddress",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.networking.v1beta1.ServiceCIDR",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 221, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "status", child: 222, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.networking.v1beta1.ServiceCIDRSpec",
        fields: &[
            FieldDef { name: "cidrs", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.networking.v1beta1.ServiceCIDRStatus",
        fields: &[
            FieldDef { name: "conditions", child: NONE, keyed: false, list: Some(Map { keys: &["type"] }), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.node.v1.RuntimeClass",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "scheduling", child: 224, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.node.v1.Scheduling",
        fields: &[
            FieldDef { name: "nodeSelector", child: NONE, keyed: true, list: None, map_atomic: true },
            FieldDef { name: "tolerations", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.policy.v1.PodDisruptionBudget",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 226, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "status", child: 227, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.policy.v1.PodDisruptionBudgetSpec",
        fields: &[
            FieldDef { name: "selector", child: 333, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.policy.v1.PodDisruptionBudgetStatus",
        fields: &[
            FieldDef { name: "conditions", child: NONE, keyed: false, list: Some(Map { keys: &["type"] }), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.rbac.v1.AggregationRule",
        fields: &[
            FieldDef { name: "clusterRoleSelectors", child: 333, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.rbac.v1.ClusterRole",
        fields: &[
            FieldDef { name: "aggregationRule", child: 228, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "rules", child: 231, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.rbac.v1.ClusterRoleBinding",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "subjects", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.rbac.v1.PolicyRule",
        fields: &[
            FieldDef { name: "apiGroups", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "nonResourceURLs", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "resourceNames", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "resources", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "verbs", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.rbac.v1.Role",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "rules", child: 231, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.rbac.v1.RoleBinding",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "subjects", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1alpha3.AllocatedDeviceStatus",
        fields: &[
            FieldDef { name: "conditions", child: NONE, keyed: false, list: Some(Map { keys: &["type"] }), map_atomic: false },
            FieldDef { name: "networkData", child: 251, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1alpha3.AllocationResult",
        fields: &[
            FieldDef { name: "devices", child: 239, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "nodeSelector", child: 138, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1alpha3.BasicDevice",
        fields: &[
            FieldDef { name: "consumesCounters", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "nodeSelector", child: 138, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "taints", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1alpha3.Device",
        fields: &[
            FieldDef { name: "basic", child: 236, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1alpha3.DeviceAllocationConfiguration",
        fields: &[
            FieldDef { name: "requests", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1alpha3.DeviceAllocationResult",
        fields: &[
            FieldDef { name: "config", child: 238, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "results", child: 246, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1alpha3.DeviceClaim",
        fields: &[
            FieldDef { name: "config", child: 241, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "constraints", child: 244, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "requests", child: 245, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1alpha3.DeviceClaimConfiguration",
        fields: &[
            FieldDef { name: "requests", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1alpha3.DeviceClass",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 243, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1alpha3.DeviceClassSpec",
        fields: &[
            FieldDef { name: "config", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "selectors", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1alpha3.DeviceConstraint",
        fields: &[
            FieldDef { name: "requests", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1alpha3.DeviceRequest",
        fields: &[
            FieldDef { name: "firstAvailable", child: 247, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "selectors", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "tolerations", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1alpha3.DeviceRequestAllocationResult",
        fields: &[
            FieldDef { name: "tolerations", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1alpha3.DeviceSubRequest",
        fields: &[
            FieldDef { name: "selectors", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "tolerations", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1alpha3.DeviceTaintRule",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 249, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1alpha3.DeviceTaintRuleSpec",
        fields: &[
            FieldDef { name: "deviceSelector", child: 250, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1alpha3.DeviceTaintSelector",
        fields: &[
            FieldDef { name: "selectors", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1alpha3.NetworkDeviceData",
        fields: &[
            FieldDef { name: "ips", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1alpha3.ResourceClaim",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 253, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "status", child: 254, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1alpha3.ResourceClaimSpec",
        fields: &[
            FieldDef { name: "devices", child: 240, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1alpha3.ResourceClaimStatus",
        fields: &[
            FieldDef { name: "allocation", child: 235, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "devices", child: 234, keyed: false, list: Some(Map { keys: &["driver", "device", "pool"] }), map_atomic: false },
            FieldDef { name: "reservedFor", child: NONE, keyed: false, list: Some(Map { keys: &["uid"] }), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1alpha3.ResourceClaimTemplate",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 256, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1alpha3.ResourceClaimTemplateSpec",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 253, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1alpha3.ResourceSlice",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 258, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1alpha3.ResourceSliceSpec",
        fields: &[
            FieldDef { name: "devices", child: 237, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "nodeSelector", child: 138, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "sharedCounters", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1beta1.AllocatedDeviceStatus",
        fields: &[
            FieldDef { name: "conditions", child: NONE, keyed: false, list: Some(Map { keys: &["type"] }), map_atomic: false },
            FieldDef { name: "networkData", child: 273, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1beta1.AllocationResult",
        fields: &[
            FieldDef { name: "devices", child: 264, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "nodeSelector", child: 138, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1beta1.BasicDevice",
        fields: &[
            FieldDef { name: "consumesCounters", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "nodeSelector", child: 138, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "taints", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1beta1.Device",
        fields: &[
            FieldDef { name: "basic", child: 261, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1beta1.DeviceAllocationConfiguration",
        fields: &[
            FieldDef { name: "requests", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1beta1.DeviceAllocationResult",
        fields: &[
            FieldDef { name: "config", child: 263, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "results", child: 271, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1beta1.DeviceClaim",
        fields: &[
            FieldDef { name: "config", child: 266, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "constraints", child: 269, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "requests", child: 270, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1beta1.DeviceClaimConfiguration",
        fields: &[
            FieldDef { name: "requests", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1beta1.DeviceClass",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 268, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1beta1.DeviceClassSpec",
        fields: &[
            FieldDef { name: "config", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "selectors", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1beta1.DeviceConstraint",
        fields: &[
            FieldDef { name: "requests", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1beta1.DeviceRequest",
        fields: &[
            FieldDef { name: "firstAvailable", child: 272, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "selectors", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "tolerations", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1beta1.DeviceRequestAllocationResult",
        fields: &[
            FieldDef { name: "tolerations", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1beta1.DeviceSubRequest",
        fields: &[
            FieldDef { name: "selectors", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "tolerations", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1beta1.NetworkDeviceData",
        fields: &[
            FieldDef { name: "ips", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1beta1.ResourceClaim",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 275, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "status", child: 276, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1beta1.ResourceClaimSpec",
        fields: &[
            FieldDef { name: "devices", child: 265, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1beta1.ResourceClaimStatus",
        fields: &[
            FieldDef { name: "allocation", child: 260, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "devices", child: 259, keyed: false, list: Some(Map { keys: &["driver", "device", "pool"] }), map_atomic: false },
            FieldDef { name: "reservedFor", child: NONE, keyed: false, list: Some(Map { keys: &["uid"] }), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1beta1.ResourceClaimTemplate",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 278, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1beta1.ResourceClaimTemplateSpec",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 275, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1beta1.ResourceSlice",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 280, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1beta1.ResourceSliceSpec",
        fields: &[
            FieldDef { name: "devices", child: 262, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "nodeSelector", child: 138, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "sharedCounters", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1beta2.AllocatedDeviceStatus",
        fields: &[
            FieldDef { name: "conditions", child: NONE, keyed: false, list: Some(Map { keys: &["type"] }), map_atomic: false },
            FieldDef { name: "networkData", child: 295, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1beta2.AllocationResult",
        fields: &[
            FieldDef { name: "devices", child: 285, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "nodeSelector", child: 138, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1beta2.Device",
        fields: &[
            FieldDef { name: "consumesCounters", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "nodeSelector", child: 138, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "taints", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1beta2.DeviceAllocationConfiguration",
        fields: &[
            FieldDef { name: "requests", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1beta2.DeviceAllocationResult",
        fields: &[
            FieldDef { name: "config", child: 284, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "results", child: 292, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1beta2.DeviceClaim",
        fields: &[
            FieldDef { name: "config", child: 287, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "constraints", child: 290, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "requests", child: 291, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1beta2.DeviceClaimConfiguration",
        fields: &[
            FieldDef { name: "requests", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1beta2.DeviceClass",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 289, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1beta2.DeviceClassSpec",
        fields: &[
            FieldDef { name: "config", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "selectors", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1beta2.DeviceConstraint",
        fields: &[
            FieldDef { name: "requests", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1beta2.DeviceRequest",
        fields: &[
            FieldDef { name: "exactly", child: 294, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "firstAvailable", child: 293, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1beta2.DeviceRequestAllocationResult",
        fields: &[
            FieldDef { name: "tolerations", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1beta2.DeviceSubRequest",
        fields: &[
            FieldDef { name: "selectors", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "tolerations", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1beta2.ExactDeviceRequest",
        fields: &[
            FieldDef { name: "selectors", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "tolerations", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1beta2.NetworkDeviceData",
        fields: &[
            FieldDef { name: "ips", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1beta2.ResourceClaim",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 297, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "status", child: 298, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1beta2.ResourceClaimSpec",
        fields: &[
            FieldDef { name: "devices", child: 286, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1beta2.ResourceClaimStatus",
        fields: &[
            FieldDef { name: "allocation", child: 282, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "devices", child: 281, keyed: false, list: Some(Map { keys: &["driver", "device", "pool"] }), map_atomic: false },
            FieldDef { name: "reservedFor", child: NONE, keyed: false, list: Some(Map { keys: &["uid"] }), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1beta2.ResourceClaimTemplate",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 300, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1beta2.ResourceClaimTemplateSpec",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 297, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1beta2.ResourceSlice",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 302, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.resource.v1beta2.ResourceSliceSpec",
        fields: &[
            FieldDef { name: "devices", child: 283, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "nodeSelector", child: 138, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "sharedCounters", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.scheduling.v1.PriorityClass",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.storage.v1.CSIDriver",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 305, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.storage.v1.CSIDriverSpec",
        fields: &[
            FieldDef { name: "tokenRequests", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "volumeLifecycleModes", child: NONE, keyed: false, list: Some(Set), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.storage.v1.CSINode",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 308, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.storage.v1.CSINodeDriver",
        fields: &[
            FieldDef { name: "topologyKeys", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.storage.v1.CSINodeSpec",
        fields: &[
            FieldDef { name: "drivers", child: 307, keyed: false, list: Some(Map { keys: &["name"] }), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.storage.v1.CSIStorageCapacity",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "nodeTopology", child: 333, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.storage.v1.StorageClass",
        fields: &[
            FieldDef { name: "allowedTopologies", child: 182, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "mountOptions", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.storage.v1.VolumeAttachment",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 313, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.storage.v1.VolumeAttachmentSource",
        fields: &[
            FieldDef { name: "inlineVolumeSpec", child: 148, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.storage.v1.VolumeAttachmentSpec",
        fields: &[
            FieldDef { name: "source", child: 312, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.storage.v1alpha1.VolumeAttributesClass",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.storage.v1beta1.VolumeAttributesClass",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.storagemigration.v1alpha1.StorageVersionMigration",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "status", child: 317, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "api.storagemigration.v1alpha1.StorageVersionMigrationStatus",
        fields: &[
            FieldDef { name: "conditions", child: NONE, keyed: false, list: Some(Map { keys: &["type"] }), map_atomic: false },
        ],
    },
    TypeDef {
        name: "apiextensions_apiserver.pkg.apis.apiextensions.v1.CustomResourceConversion",
        fields: &[
            FieldDef { name: "webhook", child: 326, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "apiextensions_apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "spec", child: 321, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "status", child: 322, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "apiextensions_apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionNames",
        fields: &[
            FieldDef { name: "categories", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "shortNames", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "apiextensions_apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionSpec",
        fields: &[
            FieldDef { name: "conversion", child: 318, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "names", child: 320, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "versions", child: 323, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "apiextensions_apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionStatus",
        fields: &[
            FieldDef { name: "acceptedNames", child: 320, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "conditions", child: NONE, keyed: false, list: Some(Map { keys: &["type"] }), map_atomic: false },
            FieldDef { name: "storedVersions", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "apiextensions_apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionVersion",
        fields: &[
            FieldDef { name: "additionalPrinterColumns", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "schema", child: 324, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "selectableFields", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "apiextensions_apiserver.pkg.apis.apiextensions.v1.CustomResourceValidation",
        fields: &[
            FieldDef { name: "openAPIV3Schema", child: 325, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps",
        fields: &[
            FieldDef { name: "allOf", child: 325, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "anyOf", child: 325, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "definitions", child: 325, keyed: true, list: None, map_atomic: false },
            FieldDef { name: "enum", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "oneOf", child: 325, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "patternProperties", child: 325, keyed: true, list: None, map_atomic: false },
            FieldDef { name: "properties", child: 325, keyed: true, list: None, map_atomic: false },
            FieldDef { name: "required", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "x-kubernetes-list-map-keys", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "x-kubernetes-validations", child: NONE, keyed: false, list: Some(Map { keys: &["rule"] }), map_atomic: false },
        ],
    },
    TypeDef {
        name: "apiextensions_apiserver.pkg.apis.apiextensions.v1.WebhookConversion",
        fields: &[
            FieldDef { name: "conversionReviewVersions", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "apimachinery.pkg.apis.meta.v1.APIGroup",
        fields: &[
            FieldDef { name: "serverAddressByClientCIDRs", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "versions", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "apimachinery.pkg.apis.meta.v1.APIGroupList",
        fields: &[
            FieldDef { name: "groups", child: 327, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "apimachinery.pkg.apis.meta.v1.APIResource",
        fields: &[
            FieldDef { name: "categories", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "shortNames", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "verbs", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "apimachinery.pkg.apis.meta.v1.APIResourceList",
        fields: &[
            FieldDef { name: "resources", child: 329, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "apimachinery.pkg.apis.meta.v1.APIVersions",
        fields: &[
            FieldDef { name: "serverAddressByClientCIDRs", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "versions", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "apimachinery.pkg.apis.meta.v1.FieldSelectorRequirement",
        fields: &[
            FieldDef { name: "values", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "apimachinery.pkg.apis.meta.v1.LabelSelector",
        fields: &[
            FieldDef { name: "matchExpressions", child: 334, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "apimachinery.pkg.apis.meta.v1.LabelSelectorRequirement",
        fields: &[
            FieldDef { name: "values", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
        ],
    },
    TypeDef {
        name: "apimachinery.pkg.apis.meta.v1.ObjectMeta",
        fields: &[
            FieldDef { name: "finalizers", child: NONE, keyed: false, list: Some(Set), map_atomic: false },
            FieldDef { name: "managedFields", child: NONE, keyed: false, list: Some(Atomic), map_atomic: false },
            FieldDef { name: "ownerReferences", child: NONE, keyed: false, list: Some(Map { keys: &["uid"] }), map_atomic: false },
        ],
    },
    TypeDef {
        name: "kube_aggregator.pkg.apis.apiregistration.v1.APIService",
        fields: &[
            FieldDef { name: "metadata", child: 335, keyed: false, list: None, map_atomic: false },
            FieldDef { name: "status", child: 337, keyed: false, list: None, map_atomic: false },
        ],
    },
    TypeDef {
        name: "kube_aggregator.pkg.apis.apiregistration.v1.APIServiceStatus",
        fields: &[
            FieldDef { name: "conditions", child: NONE, keyed: false, list: Some(Map { keys: &["type"] }), map_atomic: false },
        ],
    },
];

/// Every built-in kind: group, version, kind, namespaced, root type (`NONE` when it has no strategies).
pub(super) static KINDS: &[KindDef] = &[
    KindDef { group: "", version: "v1", kind: "APIGroup", namespaced: false, root: 327 },
    KindDef { group: "", version: "v1", kind: "APIGroupList", namespaced: false, root: 328 },
    KindDef { group: "", version: "v1", kind: "APIResourceList", namespaced: false, root: 330 },
    KindDef { group: "", version: "v1", kind: "APIVersions", namespaced: false, root: 331 },
    KindDef { group: "", version: "v1", kind: "Binding", namespaced: true, root: 100 },
    KindDef { group: "", version: "v1", kind: "ComponentStatus", namespaced: false, root: 105 },
    KindDef { group: "", version: "v1", kind: "ConfigMap", namespaced: true, root: 106 },
    KindDef { group: "", version: "v1", kind: "Endpoints", namespaced: true, root: 116 },
    KindDef { group: "", version: "v1", kind: "Event", namespaced: true, root: 119 },
    KindDef { group: "", version: "v1", kind: "LimitRange", namespaced: true, root: 128 },
    KindDef { group: "", version: "v1", kind: "Namespace", namespaced: false, root: 133 },
    KindDef { group: "", version: "v1", kind: "Node", namespaced: false, root: 136 },
    KindDef { group: "", version: "v1", kind: "PersistentVolume", namespaced: false, root: 143 },
    KindDef { group: "", version: "v1", kind: "PersistentVolumeClaim", namespaced: true, root: 144 },
    KindDef { group: "", version: "v1", kind: "Pod", namespaced: true, root: 149 },
    KindDef { group: "", version: "v1", kind: "PodTemplate", namespaced: true, root: 157 },
    KindDef { group: "", version: "v1", kind: "ReplicationController", namespaced: true, root: 164 },
    KindDef { group: "", version: "v1", kind: "ResourceQuota", namespaced: true, root: 167 },
    KindDef { group: "", version: "v1", kind: "Secret", namespaced: true, root: 173 },
    KindDef { group: "", version: "v1", kind: "Service", namespaced: true, root: 177 },
    KindDef { group: "", version: "v1", kind: "ServiceAccount", namespaced: true, root: 178 },
    KindDef { group: "admissionregistration.k8s.io", version: "v1", kind: "MutatingWebhookConfiguration", namespaced: false, root: 2 },
    KindDef { group: "admissionregistration.k8s.io", version: "v1", kind: "ValidatingAdmissionPolicy", namespaced: false, root: 7 },
    KindDef { group: "admissionregistration.k8s.io", version: "v1", kind: "ValidatingAdmissionPolicyBinding", namespaced: false, root: 8 },
    KindDef { group: "admissionregistration.k8s.io", version: "v1", kind: "ValidatingWebhookConfiguration", namespaced: false, root: 13 },
    KindDef { group: "admissionregistration.k8s.io", version: "v1alpha1", kind: "MutatingAdmissionPolicy", namespaced: false, root: 15 },
    KindDef { group: "admissionregistration.k8s.io", version: "v1alpha1", kind: "MutatingAdmissionPolicyBinding", namespaced: false, root: 16 },
    KindDef { group: "admissionregistration.k8s.io", version: "v1beta1", kind: "ValidatingAdmissionPolicy", namespaced: false, root: 25 },
    KindDef { group: "admissionregistration.k8s.io", version: "v1beta1", kind: "ValidatingAdmissionPolicyBinding", namespaced: false, root: 26 },
    KindDef { group: "apiextensions.k8s.io", version: "v1", kind: "CustomResourceDefinition", namespaced: false, root: 319 },
    KindDef { group: "apiregistration.k8s.io", version: "v1", kind: "APIService", namespaced: false, root: 336 },
    KindDef { group: "apps", version: "v1", kind: "ControllerRevision", namespaced: true, root: 33 },
    KindDef { group: "apps", version: "v1", kind: "DaemonSet", namespaced: true, root: 34 },
    KindDef { group: "apps", version: "v1", kind: "Deployment", namespaced: true, root: 37 },
    KindDef { group: "apps", version: "v1", kind: "ReplicaSet", namespaced: true, root: 40 },
    KindDef { group: "apps", version: "v1", kind: "StatefulSet", namespaced: true, root: 43 },
    KindDef { group: "authentication.k8s.io", version: "v1", kind: "SelfSubjectReview", namespaced: false, root: 46 },
    KindDef { group: "authentication.k8s.io", version: "v1", kind: "TokenReview", namespaced: false, root: 48 },
    KindDef { group: "authorization.k8s.io", version: "v1", kind: "LocalSubjectAccessReview", namespaced: true, root: 54 },
    KindDef { group: "authorization.k8s.io", version: "v1", kind: "SelfSubjectAccessReview", namespaced: false, root: 58 },
    KindDef { group: "authorization.k8s.io", version: "v1", kind: "SelfSubjectRulesReview", namespaced: false, root: 60 },
    KindDef { group: "authorization.k8s.io", version: "v1", kind: "SubjectAccessReview", namespaced: false, root: 61 },
    KindDef { group: "autoscaling", version: "v1", kind: "HorizontalPodAutoscaler", namespaced: true, root: 64 },
    KindDef { group: "autoscaling", version: "v2", kind: "HorizontalPodAutoscaler", namespaced: true, root: 68 },
    KindDef { group: "batch", version: "v1", kind: "CronJob", namespaced: true, root: 79 },
    KindDef { group: "batch", version: "v1", kind: "Job", namespaced: true, root: 82 },
    KindDef { group: "certificates.k8s.io", version: "v1", kind: "CertificateSigningRequest", namespaced: false, root: 91 },
    KindDef { group: "certificates.k8s.io", version: "v1alpha1", kind: "ClusterTrustBundle", namespaced: false, root: 94 },
    KindDef { group: "certificates.k8s.io", version: "v1beta1", kind: "ClusterTrustBundle", namespaced: false, root: 95 },
    KindDef { group: "coordination.k8s.io", version: "v1", kind: "Lease", namespaced: true, root: 96 },
    KindDef { group: "coordination.k8s.io", version: "v1alpha2", kind: "LeaseCandidate", namespaced: true, root: 97 },
    KindDef { group: "coordination.k8s.io", version: "v1beta1", kind: "LeaseCandidate", namespaced: true, root: 98 },
    KindDef { group: "discovery.k8s.io", version: "v1", kind: "EndpointSlice", namespaced: true, root: 190 },
    KindDef { group: "events.k8s.io", version: "v1", kind: "Event", namespaced: true, root: 191 },
    KindDef { group: "flowcontrol.apiserver.k8s.io", version: "v1", kind: "FlowSchema", namespaced: false, root: 192 },
    KindDef { group: "flowcontrol.apiserver.k8s.io", version: "v1", kind: "PriorityLevelConfiguration", namespaced: false, root: 197 },
    KindDef { group: "internal.apiserver.k8s.io", version: "v1alpha1", kind: "StorageVersion", namespaced: false, root: 31 },
    KindDef { group: "networking.k8s.io", version: "v1", kind: "IPAddress", namespaced: false, root: 201 },
    KindDef { group: "networking.k8s.io", version: "v1", kind: "Ingress", namespaced: true, root: 203 },
    KindDef { group: "networking.k8s.io", version: "v1", kind: "IngressClass", namespaced: false, root: 204 },
    KindDef { group: "networking.k8s.io", version: "v1", kind: "NetworkPolicy", namespaced: true, root: 211 },
    KindDef { group: "networking.k8s.io", version: "v1", kind: "ServiceCIDR", namespaced: false, root: 216 },
    KindDef { group: "networking.k8s.io", version: "v1beta1", kind: "IPAddress", namespaced: false, root: 219 },
    KindDef { group: "networking.k8s.io", version: "v1beta1", kind: "ServiceCIDR", namespaced: false, root: 220 },
    KindDef { group: "node.k8s.io", version: "v1", kind: "RuntimeClass", namespaced: false, root: 223 },
    KindDef { group: "policy", version: "v1", kind: "PodDisruptionBudget", namespaced: true, root: 225 },
    KindDef { group: "rbac.authorization.k8s.io", version: "v1", kind: "ClusterRole", namespaced: false, root: 229 },
    KindDef { group: "rbac.authorization.k8s.io", version: "v1", kind: "ClusterRoleBinding", namespaced: false, root: 230 },
    KindDef { group: "rbac.authorization.k8s.io", version: "v1", kind: "Role", namespaced: true, root: 232 },
    KindDef { group: "rbac.authorization.k8s.io", version: "v1", kind: "RoleBinding", namespaced: true, root: 233 },
    KindDef { group: "resource.k8s.io", version: "v1alpha3", kind: "DeviceClass", namespaced: false, root: 242 },
    KindDef { group: "resource.k8s.io", version: "v1alpha3", kind: "DeviceTaintRule", namespaced: false, root: 248 },
    KindDef { group: "resource.k8s.io", version: "v1alpha3", kind: "ResourceClaim", namespaced: true, root: 252 },
    KindDef { group: "resource.k8s.io", version: "v1alpha3", kind: "ResourceClaimTemplate", namespaced: true, root: 255 },
    KindDef { group: "resource.k8s.io", version: "v1alpha3", kind: "ResourceSlice", namespaced: false, root: 257 },
    KindDef { group: "resource.k8s.io", version: "v1beta1", kind: "DeviceClass", namespaced: false, root: 267 },
    KindDef { group: "resource.k8s.io", version: "v1beta1", kind: "ResourceClaim", namespaced: true, root: 274 },
    KindDef { group: "resource.k8s.io", version: "v1beta1", kind: "ResourceClaimTemplate", namespaced: true, root: 277 },
    KindDef { group: "resource.k8s.io", version: "v1beta1", kind: "ResourceSlice", namespaced: false, root: 279 },
    KindDef { group: "resource.k8s.io", version: "v1beta2", kind: "DeviceClass", namespaced: false, root: 288 },
    KindDef { group: "resource.k8s.io", version: "v1beta2", kind: "ResourceClaim", namespaced: true, root: 296 },
    KindDef { group: "resource.k8s.io", version: "v1beta2", kind: "ResourceClaimTemplate", namespaced: true, root: 299 },
    KindDef { group: "resource.k8s.io", version: "v1beta2", kind: "ResourceSlice", namespaced: false, root: 301 },
    KindDef { group: "scheduling.k8s.io", version: "v1", kind: "PriorityClass", namespaced: false, root: 303 },
    KindDef { group: "storage.k8s.io", version: "v1", kind: "CSIDriver", namespaced: false, root: 304 },
    KindDef { group: "storage.k8s.io", version: "v1", kind: "CSINode", namespaced: false, root: 306 },
    KindDef { group: "storage.k8s.io", version: "v1", kind: "CSIStorageCapacity", namespaced: true, root: 309 },
    KindDef { group: "storage.k8s.io", version: "v1", kind: "StorageClass", namespaced: false, root: 310 },
    KindDef { group: "storage.k8s.io", version: "v1", kind: "VolumeAttachment", namespaced: false, root: 311 },
    KindDef { group: "storage.k8s.io", version: "v1alpha1", kind: "VolumeAttributesClass", namespaced: false, root: 314 },
    KindDef { group: "storage.k8s.io", version: "v1beta1", kind: "VolumeAttributesClass", namespaced: false, root: 315 },
    KindDef { group: "storagemigration.k8s.io", version: "v1alpha1", kind: "StorageVersionMigration", namespaced: false, root: 316 },
];
