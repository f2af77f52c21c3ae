//! Live reads and exec across replicas: a call for a cluster whose spoke stream another replica holds is relayed to that replica's peer address (each replica registers its own in the store), carrying the caller's own credentials, so the holder authenticates, authorizes, serves and audits it as if it had come there first. A relayed call is never relayed again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use edgecd_proto::v1::hub_service_client::HubServiceClient;
use tonic::Status;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use super::{Call, HubApi};

/// Metadata naming the replica that relayed a call (the holder answers it itself or not at all).
pub(crate) const RELAYED_BY: &str = "x-edgecd-relayed-by";
/// Metadata carrying the caller's address through a relay, for the holder's audit log.
pub(crate) const FORWARDED_FOR: &str = "x-edgecd-forwarded-for";
/// Relayed-for addresses are cut to this many bytes (anyone can send the header).
const MAX_FORWARDED: usize = 128;

/// This replica's way to its peers.
#[derive(Debug)]
pub struct Relay {
    replica: String,
    /// The hub CA that peers' serving certificates chain to; `None`: peers serve plaintext.
    ca_pem: Option<String>,
    channels: Mutex<HashMap<String, Channel>>,
}

impl Relay {
    /// A relay from replica `replica`, trusting peers' certificates issued by `ca_pem` (plaintext peers without).
    pub fn new(replica: impl Into<String>, ca_pem: Option<String>) -> Self {
        Self {
            replica: replica.into(),
            ca_pem,
            channels: Mutex::new(HashMap::new()),
        }
    }

    /// A (lazily connected, reused) channel to the peer at `address`.
    fn channel(&self, address: &str) -> Result<Channel, Status> {
        let mut channels = self
            .channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(channel) = channels.get(address) {
            return Ok(channel.clone());
        }
        let unusable = |e: &dyn std::fmt::Display| {
            Status::unavailable(format!("the peer address {address} is unusable: {e}"))
        };
        let mut endpoint = Endpoint::from_shared(address.to_owned())
            .map_err(|e| unusable(&e))?
            .connect_timeout(Duration::from_secs(5))
            .http2_keep_alive_interval(Duration::from_secs(30));
        if let Some(ca) = &self.ca_pem {
            endpoint = endpoint
                .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca)))
                .map_err(|e| unusable(&e))?;
        }
        let channel = endpoint.connect_lazy();
        channels.insert(address.to_owned(), channel.clone());
        Ok(channel)
    }
}

/// Where a call goes when this replica does not hold the stream of the cluster: the holder's API.
#[derive(Debug)]
pub(crate) struct Peer {
    pub client: HubServiceClient<Channel>,
    metadata: MetadataMap,
    pub replica: String,
}

impl Peer {
    /// `message` as the caller's request to the holder.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        *request.metadata_mut() = self.metadata.clone();
        request
    }
}

/// The holder `holder` of a cluster's stream, if this call may be relayed there: this replica relays (it has
/// a peer address), the call was not relayed already, its credentials can travel (a bearer token, or none
/// with authentication off), and the holder registered a peer address.
pub(crate) async fn peer(api: &HubApi, call: &Call, holder: &str) -> Option<Peer> {
    let relay = api.relay()?;
    if call.relayed || holder.is_empty() || holder == relay.replica {
        return None;
    }
    let mut metadata = MetadataMap::new();
    match (&call.bearer, call.principal.method) {
        (Some(token), _) => {
            let value = MetadataValue::try_from(format!("Bearer {}", token.0)).ok()?;
            metadata.insert("authorization", value);
        }
        (None, edgecd_core::access::AuthMethod::Disabled) => {}
        (None, _) => return None,
    }
    metadata.insert(
        RELAYED_BY,
        MetadataValue::try_from(relay.replica.as_str()).ok()?,
    );
    if let Ok(value) = MetadataValue::try_from(forwarded(&call.peer)) {
        metadata.insert(FORWARDED_FOR, value);
    }
    if let Some(trace) = &call.trace {
        trace.inject(&mut metadata);
    }
    let address = match api.store().replica_address(holder).await {
        Ok(Some(address)) => address,
        Ok(None) => return None,
        Err(error) => {
            tracing::warn!(%error, holder, "Cannot read the holder replica's peer address.");
            return None;
        }
    };
    let channel = match relay.channel(&address) {
        Ok(channel) => channel,
        Err(status) => {
            tracing::warn!(
                holder,
                message = status.message(),
                "Cannot relay to the holder replica."
            );
            return None;
        }
    };
    tracing::debug!(holder, %address, "Relaying a live call to the replica holding the stream.");
    Some(Peer {
        client: HubServiceClient::new(channel),
        metadata,
        replica: holder.to_owned(),
    })
}

/// An address as the holder's audit log records it: printable, bounded.
pub(crate) fn forwarded(address: &str) -> String {
    address
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(MAX_FORWARDED)
        .collect()
}

/// The audit source of a call that came through a relay: the caller as the relay saw it, then the relay.
pub(crate) fn audit_source(metadata: &MetadataMap, peer: &str) -> String {
    match metadata
        .get(FORWARDED_FOR)
        .and_then(|v| v.to_str().ok())
        .map(forwarded)
        .filter(|f| !f.is_empty())
    {
        Some(original) if metadata.contains_key(RELAYED_BY) => format!("{original} via {peer}"),
        _ => peer.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relayed_call_names_its_caller_and_the_relay_and_nothing_else_counts() {
        let mut metadata = MetadataMap::new();
        assert_eq!(audit_source(&metadata, "10.0.0.2:5000"), "10.0.0.2:5000");
        metadata.insert(FORWARDED_FOR, MetadataValue::from_static("192.0.2.7:41000"));
        // Not relayed: a client's own header is not believed.
        assert_eq!(audit_source(&metadata, "10.0.0.2:5000"), "10.0.0.2:5000");
        metadata.insert(RELAYED_BY, MetadataValue::from_static("hub-a"));
        assert_eq!(
            audit_source(&metadata, "10.0.0.2:5000"),
            "192.0.2.7:41000 via 10.0.0.2:5000"
        );
        let long = "x".repeat(1000);
        assert_eq!(forwarded(&long).len(), MAX_FORWARDED);
        assert_eq!(forwarded("a b\u{7f}c"), "abc");
    }
}
