//! Peer authentication: who may send us peer frames. With a cluster key a
//! frame must come from the claimed member's own address and carry a valid
//! MAC (checked by `wire::decode_keyed`); without one, nothing changes.
//!
//! The address check runs on the raw header before the MAC is computed, so
//! a stranger costs no hashing. The MAC covers sender, receiver and term: a
//! genuine frame cannot be re-addressed or re-termed, and a verbatim replay
//! is a duplicate the protocol already tolerates (see `wire`'s keyed codec).
use std::collections::BTreeMap;
use std::net::IpAddr;

use wire::{ClusterKey, DecodeError, Frame, NodeId};

use crate::config::NodeConfig;
use crate::metrics::RejectReason;

/// The cluster key and the members' addresses, shared by every transport task.
#[derive(Debug, Clone, Default)]
pub(crate) struct PeerAuth {
    key: Option<ClusterKey>,
    /// Every member's peer IP by id (this node's too, when it is specific).
    addresses: BTreeMap<NodeId, IpAddr>,
}

impl PeerAuth {
    pub(crate) fn new(config: &NodeConfig) -> PeerAuth {
        let mut addresses: BTreeMap<NodeId, IpAddr> = config
            .peers
            .iter()
            .map(|peer| (peer.id, peer.addr.ip().to_canonical()))
            .collect();
        if !config.listen_peer.ip().is_unspecified() {
            addresses.insert(config.id, config.listen_peer.ip().to_canonical());
        }
        PeerAuth {
            key: config.cluster_key.clone(),
            addresses,
        }
    }

    /// A keyed filter for tests: `addresses` are the members' IPs.
    #[cfg(test)]
    pub(crate) fn keyed(key: ClusterKey, addresses: BTreeMap<NodeId, IpAddr>) -> PeerAuth {
        PeerAuth {
            key: Some(key),
            addresses,
        }
    }

    /// With a key: the sender a frame claims (from its raw header, once in)
    /// must be the member at `source`. A member's address claiming another
    /// member's id is `SenderMismatch`; any other address is `SourceAddress`.
    pub(crate) fn check_source(&self, bytes: &[u8], source: IpAddr) -> Result<(), RejectReason> {
        if self.key.is_none() {
            return Ok(());
        }
        let Some(claimed) = wire::peek_sender(bytes) else {
            return Ok(());
        };
        let source = source.to_canonical();
        if self.addresses.get(&claimed) == Some(&source) {
            return Ok(());
        }
        if self.addresses.values().any(|member| *member == source) {
            Err(RejectReason::SenderMismatch)
        } else {
            Err(RejectReason::SourceAddress)
        }
    }

    /// Decodes one frame: keyed (MAC checked) with a key, unkeyed without.
    pub(crate) fn decode(&self, bytes: &[u8], max: usize) -> Result<(Frame, usize), DecodeError> {
        wire::decode_keyed(bytes, max, self.key.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::sync::Arc;

    use wire::Message;

    use super::*;
    use crate::transport::{FrameFilter, FrameReader};

    const N1: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const N2: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
    const N3: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3));
    const STRANGER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 99));

    fn key(secret: &str) -> ClusterKey {
        ClusterKey::from_secret(secret.as_bytes()).unwrap()
    }

    /// Node 1's filter: peers 2 and 3, all three addresses known.
    fn keyed_filter() -> FrameFilter {
        let addresses = [(1, N1), (2, N2), (3, N3)].into_iter().collect();
        FrameFilter {
            cluster: 7,
            me: 1,
            peers: [2, 3].into_iter().collect(),
            auth: Arc::new(PeerAuth::keyed(key("the cluster secret"), addresses)),
        }
    }

    fn frame(from: NodeId, term: u64, key: Option<&ClusterKey>) -> Vec<u8> {
        let frame = Frame::new(7, from, 1, term, Message::Heartbeat { seq: 1, commit: 0 });
        let mut out = Vec::new();
        wire::encode_keyed(&frame, key, &mut out);
        out
    }

    #[test]
    fn a_keyed_frame_from_the_claimed_members_address_is_accepted() {
        let ours = key("the cluster secret");
        let inbound = keyed_filter().datagram(&frame(2, 5, Some(&ours)), 1400, N2);
        assert_eq!(
            inbound.map(|inbound| (inbound.from, inbound.term)),
            Ok((2, 5))
        );
    }

    #[test]
    fn each_rejection_has_its_own_reason() {
        let ours = key("the cluster secret");
        let theirs = key("a stranger's secret");
        let filter = keyed_filter();
        use RejectReason::{MacInvalid, MacMissing, SenderMismatch, SourceAddress};
        let unkeyed = frame(2, 5, None);
        let wrong_key = frame(2, 99, Some(&theirs));
        let from_n2 = frame(2, 99, Some(&ours));
        let from_n3 = frame(3, 99, Some(&ours));
        let cases = [
            ("no MAC", &unkeyed, N2, MacMissing),
            ("wrong key", &wrong_key, N2, MacInvalid),
            ("stranger", &from_n2, STRANGER, SourceAddress),
            ("n3 claims n2", &from_n2, N3, SenderMismatch),
            ("n1's address claims n3", &from_n3, N1, SenderMismatch),
        ];
        for (name, bytes, source, expected) in cases {
            assert_eq!(
                filter.datagram(bytes, 1400, source).map(|_| ()),
                Err(expected),
                "{name}"
            );
        }
    }

    #[test]
    fn an_unkeyed_node_refuses_keyed_frames_and_ignores_addresses() {
        let unkeyed = FrameFilter {
            auth: Arc::default(),
            ..keyed_filter()
        };
        let ours = key("the cluster secret");
        assert_eq!(
            unkeyed
                .datagram(&frame(2, 5, Some(&ours)), 1400, N2)
                .map(|_| ()),
            Err(RejectReason::MacUnexpected)
        );
        // Without a key the address is not checked (behaviour as before).
        assert!(unkeyed.datagram(&frame(2, 5, None), 1400, STRANGER).is_ok());
    }

    #[test]
    fn a_stream_is_checked_frame_by_frame() {
        let ours = key("the cluster secret");
        let filter = keyed_filter();
        let mut reader = FrameReader::with_auth(1 << 20, filter.auth.clone(), N3);
        reader.push(&frame(3, 4, Some(&ours)));
        let first = reader.next_frame().unwrap().unwrap();
        assert!(filter.accept(first).is_ok());
        // The same connection then claims to be n2: refused from the header,
        // before the rest of the frame arrives.
        let forged = frame(2, 40, Some(&ours));
        reader.push(&forged[..wire::PREFIX_LEN + 16]);
        assert_eq!(
            reader.next_frame().map(|_| ()),
            Err(RejectReason::SenderMismatch)
        );
    }
}
