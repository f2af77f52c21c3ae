//! Native renderer of Kubernetes manifests: plain directories and kustomize, shared by hub and spoke.

pub mod schema;
