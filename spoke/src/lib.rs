//! edgecd spoke: the GitOps reconcile engine that runs on each edge cluster and links to the hub.
