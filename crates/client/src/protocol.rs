//! The client protocols the lab speaks, one value per wire API: every
//! operation and status poll goes through [`Protocol`], so a system is
//! "supported" exactly when its description names one of these.
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::etcd::{self, ReadConsistency};
use crate::ops::{Outcome, Request};
use crate::status::{NodeStatus, poll_statuses};

/// A client wire protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// splitnode's HTTP API (`/kv/<key>`, `/status`).
    #[default]
    Splitnode,
    /// etcd's v3 HTTP/JSON gateway (`/v3/kv/*`, `/v3/maintenance/status`).
    EtcdV3 {
        /// How reads are served.
        reads: ReadConsistency,
    },
}

impl Protocol {
    /// The names system descriptions use.
    pub const NAMES: [&'static str; 2] = ["splitnode-http", "etcd-v3-json"];

    /// Parses a protocol name (see [`Protocol::NAMES`]).
    pub fn from_name(name: &str) -> Option<Protocol> {
        match name {
            "splitnode-http" => Some(Protocol::Splitnode),
            "etcd-v3-json" => Some(Protocol::EtcdV3 {
                reads: ReadConsistency::Linearizable,
            }),
            _ => None,
        }
    }

    /// The protocol's name.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Splitnode => "splitnode-http",
            Protocol::EtcdV3 { .. } => "etcd-v3-json",
        }
    }

    /// Executes one operation; `client`/`seq` make splitnode writes
    /// exactly-once (etcd has no sessions: its retries are new requests).
    pub fn execute(
        self,
        addr: SocketAddr,
        request: &Request,
        client: u64,
        seq: u64,
        timeout: Duration,
    ) -> Outcome {
        match self {
            Protocol::Splitnode => crate::ops::execute(addr, request, client, seq, timeout),
            Protocol::EtcdV3 { reads } => etcd::execute(addr, request, reads, timeout),
        }
    }

    /// The statuses of the nodes that answer, polled in parallel on the
    /// caller's namespace. `ids` remembers etcd member ids across polls.
    pub fn poll_statuses(
        self,
        nodes: &[(String, SocketAddr)],
        timeout: Duration,
        ids: &mut BTreeMap<u64, String>,
    ) -> Vec<NodeStatus> {
        match self {
            Protocol::Splitnode => poll_statuses(nodes, timeout),
            Protocol::EtcdV3 { .. } => {
                etcd::node_statuses(&etcd::poll_member_statuses(nodes, timeout), ids)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in Protocol::NAMES {
            assert_eq!(Protocol::from_name(name).unwrap().name(), name);
        }
        assert_eq!(Protocol::from_name("grpc"), None);
    }
}
