//! Protocol versions and capability negotiation: both sides use only what both announced.

use std::collections::BTreeSet;
use std::fmt;

/// Capability names of protocol v1. A peer that lacks one is never sent the
/// messages it governs; see docs/protocol.md for each.
pub mod names {
    /// Spoke sends per-app status deltas (AppStatusBatch).
    pub const STATUS_DELTAS: &str = "status-deltas.v1";
    /// Spoke sends live resource trees (ResourceTree).
    pub const RESOURCE_TREES: &str = "resource-trees.v1";
    /// Spoke forwards Kubernetes and sync events (EventBatch).
    pub const EVENTS: &str = "events.v1";
    /// Periodic anti-entropy digests in both directions.
    pub const DIGEST: &str = "digest.v1";
    /// Hub sends the desired application set (DesiredApps).
    pub const DESIRED_APPS: &str = "desired-apps.v1";
    /// Sync, refresh and rollback commands.
    pub const COMMANDS: &str = "commands.v1";
    /// Terminate commands for running operations.
    pub const COMMAND_TERMINATE: &str = "commands.terminate.v1";
    /// Diff and manifests queries answered by the spoke.
    pub const COMMAND_QUERIES: &str = "commands.queries.v1";
    /// Delete commands for apps created at the edge.
    pub const COMMAND_DELETE: &str = "commands.delete.v1";
    /// Sync commands with options beyond prune and dry run: selected
    /// resources, force (replace what cannot be patched) and apply out of
    /// sync only. A spoke without it would sync everything, so such a
    /// command is refused for it rather than sent.
    pub const COMMAND_SYNC_OPTIONS: &str = "commands.sync-options.v1";
    /// Certificate renewal over the stream.
    pub const CERT_RENEWAL: &str = "cert-renewal.v1";
    /// Repository credentials pushed to the spoke.
    pub const REPO_CREDENTIALS: &str = "repo-credentials.v1";
    /// Project policies pushed for spoke-side enforcement.
    pub const PROJECT_POLICIES: &str = "project-policies.v1";
    /// Autonomous (edge-created) apps reported read-only.
    pub const AUTONOMOUS_APPS: &str = "autonomous-apps.v1";
    /// Hub assigns application sets for the spoke to evaluate (SpokeApplicationSets).
    pub const APPLICATION_SETS: &str = "application-sets.v1";
    /// Application sets carry their whole Argo CD spec (`ApplicationSet.spec_json`): Go templates, template
    /// patches, generator selectors and templates. A set that needs it is not sent to a spoke without it, which
    /// would generate other apps from the typed summary.
    pub const APPSET_ARGO_SPEC: &str = "application-sets.argo-spec.v1";
    /// Commands carry the W3C trace context of the action that issued them (`Command.traceparent`), and
    /// operation states and history entries the trace they ran in (`trace_id`).
    pub const TRACE_CONTEXT: &str = "trace-context.v1";
    /// Spoke sends each finished sync and rollback for the fleet's deployment record (DeploymentBatch).
    pub const DEPLOYMENTS: &str = "deployments.v1";
    /// Live sessions on the stream (LiveOpen, LiveChunk, …): a resource's live manifest, its events, pod logs.
    pub const LIVE_SESSIONS: &str = "live-sessions.v1";
    /// Exec sessions on the stream (LiveExecRequest, LiveInput, the spoke's input credit, exit codes).
    pub const LIVE_EXEC: &str = "live-exec.v1";
    /// Multi-source apps (`ApplicationSpec.sources`, source refs, `$ref/…` value files). A spoke without it
    /// would read such an app as one without a source, so the hub sends it as deleted without cascade (the spoke
    /// stops managing it and prunes nothing).
    pub const MULTI_SOURCE: &str = "multi-source.v1";
    /// The hub stores a status message only from the stream that owns the cluster's link (the newest
    /// handshake), so once it said `Welcome.resume_spoke_seq`, nothing beyond it can be stored from an older
    /// stream: the spoke may send again what it had in flight coalesced by app, numbered on from that point,
    /// instead of message by message.
    pub const COALESCED_RESUME: &str = "coalesced-resume.v1";
}

/// Every capability this build implements.
pub const ALL_V1: &[&str] = &[
    names::STATUS_DELTAS,
    names::RESOURCE_TREES,
    names::EVENTS,
    names::DIGEST,
    names::DESIRED_APPS,
    names::COMMANDS,
    names::COMMAND_TERMINATE,
    names::COMMAND_QUERIES,
    names::COMMAND_DELETE,
    names::COMMAND_SYNC_OPTIONS,
    names::CERT_RENEWAL,
    names::REPO_CREDENTIALS,
    names::PROJECT_POLICIES,
    names::AUTONOMOUS_APPS,
    names::APPLICATION_SETS,
    names::APPSET_ARGO_SPEC,
    names::TRACE_CONTEXT,
    names::DEPLOYMENTS,
    names::LIVE_SESSIONS,
    names::LIVE_EXEC,
    names::MULTI_SOURCE,
    names::COALESCED_RESUME,
];

/// `major.minor` of the wire protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ProtocolVersion {
    pub major: u32,
    pub minor: u32,
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Why two peers cannot talk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    #[error("protocol {theirs} is not compatible with {ours}: the major versions differ")]
    MajorMismatch {
        ours: ProtocolVersion,
        theirs: ProtocolVersion,
    },
    #[error("peer lacks required capabilities: {0:?}")]
    MissingRequired(Vec<String>),
}

/// A set of capability names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities(BTreeSet<String>);

impl Capabilities {
    pub fn all_v1() -> Self {
        Self::from_names(ALL_V1.iter().copied())
    }

    pub fn from_names<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Self {
        Self(names.into_iter().map(Into::into).collect())
    }

    pub fn without(mut self, name: &str) -> Self {
        self.0.remove(name);
        self
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.contains(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// Negotiates with a peer: same major version, and the peer must have
    /// every capability in `required`. The result is the intersection;
    /// names one side does not know are dropped (version skew is safe).
    pub fn negotiate(
        &self,
        ours: ProtocolVersion,
        theirs: ProtocolVersion,
        peer: &Capabilities,
        required: &[&str],
    ) -> Result<Capabilities, NegotiationError> {
        if ours.major != theirs.major {
            return Err(NegotiationError::MajorMismatch { ours, theirs });
        }
        let missing: Vec<String> = required
            .iter()
            .filter(|name| !peer.contains(name))
            .map(|name| (*name).to_owned())
            .collect();
        if !missing.is_empty() {
            return Err(NegotiationError::MissingRequired(missing));
        }
        Ok(Self(self.0.intersection(&peer.0).cloned().collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1_0: ProtocolVersion = ProtocolVersion { major: 1, minor: 0 };
    const V1_1: ProtocolVersion = ProtocolVersion { major: 1, minor: 1 };

    #[test]
    fn intersection_drops_unknown_and_missing() {
        let hub = Capabilities::all_v1();
        let newer_spoke = Capabilities::all_v1()
            .without(names::RESOURCE_TREES)
            .0
            .into_iter()
            .chain(["from-the-future.v2".to_owned()]);
        let spoke = Capabilities::from_names(newer_spoke);
        let agreed = hub.negotiate(V1_0, V1_1, &spoke, &[]).unwrap();
        assert!(!agreed.contains(names::RESOURCE_TREES));
        assert!(!agreed.contains("from-the-future.v2"));
        assert!(agreed.contains(names::STATUS_DELTAS));
    }

    #[test]
    fn major_mismatch_and_required() {
        let caps = Capabilities::all_v1();
        let v2 = ProtocolVersion { major: 2, minor: 0 };
        assert!(matches!(
            caps.negotiate(V1_0, v2, &caps, &[]),
            Err(NegotiationError::MajorMismatch { .. })
        ));
        let poor = Capabilities::from_names(["x"]);
        let err = caps
            .negotiate(V1_0, V1_0, &poor, &[names::STATUS_DELTAS])
            .unwrap_err();
        assert_eq!(
            err,
            NegotiationError::MissingRequired(vec![names::STATUS_DELTAS.to_owned()])
        );
    }
}
