//! The client protocols the lab speaks, one value per wire API: every
//! operation and status poll goes through [`Protocol`], so a system is
//! "supported" exactly when its description names one of these.
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::etcd::{self, ReadConsistency};
use crate::ops::{Outcome, Request};
use crate::redis_sentinel::{self, SentinelSession};
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
    /// Redis (RESP) behind Sentinel: clients ask the sentinel beside their
    /// home node for the primary (`SENTINEL GET-MASTER-ADDR-BY-NAME`).
    RedisSentinel {
        /// The sentinels' port (`[ports] discovery`).
        discovery_port: u16,
    },
}

impl Protocol {
    /// The names system descriptions use.
    pub const NAMES: [&'static str; 3] = ["splitnode-http", "etcd-v3-json", "redis-sentinel"];

    /// Parses a protocol name (see [`Protocol::NAMES`]).
    pub fn from_name(name: &str) -> Option<Protocol> {
        match name {
            "splitnode-http" => Some(Protocol::Splitnode),
            "etcd-v3-json" => Some(Protocol::EtcdV3 {
                reads: ReadConsistency::Linearizable,
            }),
            "redis-sentinel" => Some(Protocol::RedisSentinel {
                discovery_port: 26379,
            }),
            _ => None,
        }
    }

    /// The protocol's name.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Splitnode => "splitnode-http",
            Protocol::EtcdV3 { .. } => "etcd-v3-json",
            Protocol::RedisSentinel { .. } => "redis-sentinel",
        }
    }

    /// Whether clients ask a discovery service for the primary rather
    /// than sending to the node they chose.
    pub fn discovers_primary(self) -> bool {
        matches!(self, Protocol::RedisSentinel { .. })
    }

    /// Executes one operation on the node at `addr` (Redis: that server,
    /// whatever its role); `client`/`seq` make splitnode writes
    /// exactly-once (etcd and Redis have no sessions: retries are new
    /// requests).
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
            Protocol::RedisSentinel { .. } => redis_sentinel::execute(addr, request, timeout),
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
            Protocol::RedisSentinel { discovery_port } => {
                redis_sentinel::node_statuses(nodes, discovery_port, timeout)
            }
        }
    }
}

/// One workload client's connection state: for a protocol that discovers
/// the primary, the session with the discovery service beside the client's
/// home node; otherwise nothing (every request goes where the caller sends
/// it).
pub struct Session {
    protocol: Protocol,
    sentinel: Option<SentinelSession>,
}

impl Session {
    /// A session for a client whose home node's client address is `home`.
    pub fn new(protocol: Protocol, home: SocketAddr) -> Session {
        let sentinel = match protocol {
            Protocol::RedisSentinel { discovery_port } => Some(SentinelSession::new(
                SocketAddr::new(home.ip(), discovery_port),
            )),
            _ => None,
        };
        Session { protocol, sentinel }
    }

    /// Where the next request goes: `chosen` (the caller's routing), or the
    /// primary the discovery service names (`chosen` while it names none).
    pub fn destination(&mut self, chosen: SocketAddr, timeout: Duration) -> SocketAddr {
        match &mut self.sentinel {
            Some(session) => session.primary(timeout).unwrap_or(chosen),
            None => chosen,
        }
    }

    /// Executes one operation on `addr` (see [`Protocol::execute`]).
    pub fn execute(
        &mut self,
        addr: SocketAddr,
        request: &Request,
        client: u64,
        seq: u64,
        timeout: Duration,
    ) -> Outcome {
        match &mut self.sentinel {
            Some(session) => session.execute(addr, request, timeout),
            None => self.protocol.execute(addr, request, client, seq, timeout),
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
