//! The validated configuration of one node: identity, peers, addresses,
//! consensus timing and I/O limits, as `node::run` consumes them.
//!
//! Built only by [`super::load`] / [`super::load_str`] from the raw model.
use std::net::SocketAddr;
use std::path::PathBuf;

use consensus::Mode;
use wire::NodeId;

pub use consensus::Profile;

/// How the node treats its data directory at start-up.
///
/// An empty data directory is ambiguous: it is either the very first start
/// of a new cluster, or a node that lost its disk. A node that lost its disk
/// has forgotten its vote and could vote twice in an old term, so it must not
/// silently come back as a voter. The operator says which case it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartMode {
    /// The data directory must already hold this node's state.
    Existing,
    /// `--bootstrap`: first start of a new cluster. An empty data directory is
    /// initialised; a non-empty one is used as is (so a lab may pass the flag
    /// on every start of a node it created).
    Bootstrap,
    /// `--join-empty`: the operator confirms the node lost its state and
    /// rejoins an existing cluster. The node then withholds its vote until it
    /// has followed a leader (see `driver`).
    JoinEmpty,
}

/// Test-only clock faults, injected in-process. Off unless set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TestClock {
    /// Constant offset of the node's clock from CLOCK_MONOTONIC.
    pub offset_ms: i64,
    /// Rate of the node's clock relative to CLOCK_MONOTONIC (1.0 = exact).
    pub rate: f64,
}

impl Default for TestClock {
    fn default() -> Self {
        TestClock {
            offset_ms: 0,
            rate: 1.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
/// Another voter of the cluster.
pub struct PeerConfig {
    /// The peer's name, as in `--peer NAME=ADDR`.
    pub name: String,
    /// The FNV-1a id derived from the name.
    pub id: NodeId,
    /// UDP heartbeats and TCP replication both use this address.
    pub addr: SocketAddr,
    /// The peer's HTTP address, used only for leader hints in 503 answers.
    pub client_addr: Option<SocketAddr>,
}

/// Consensus timing, in milliseconds on the node's own clock.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    /// Leader heartbeat interval.
    pub heartbeat_ms: u64,
    /// Lower bound of the randomised election timeout.
    pub election_timeout_min_ms: u64,
    /// Upper bound (exclusive) of the randomised election timeout.
    pub election_timeout_max_ms: u64,
    /// Safety margin subtracted from the lease.
    pub lease_margin_ms: u64,
    /// Timer tick interval of the replica.
    pub tick_ms: u64,
    /// Assumed bound rho >= 1 on the clock-rate ratio between nodes.
    pub clock_drift_bound: f64,
    /// Snapshot and compact the log after this many applied entries.
    pub snapshot_threshold: u64,
    /// Most entries per Append message.
    pub max_append_entries: usize,
    /// Client requests in flight before `overloaded` is answered.
    pub max_pending_requests: usize,
    /// Exactly-once sessions kept (`consensus::Config::max_sessions`).
    pub max_sessions: usize,
}

/// I/O limits and deadlines (real milliseconds).
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Largest accepted TCP frame, prefix and trailer included.
    pub max_frame_bytes: usize,
    /// Largest accepted UDP datagram.
    pub max_datagram_bytes: usize,
    /// Deadline to connect to a peer.
    pub connect_timeout_ms: u64,
    /// Deadline for writing one frame to a peer (the per-RPC deadline).
    pub rpc_timeout_ms: u64,
    /// A frame that has started arriving must be complete within this
    /// (slowloris defence).
    pub frame_read_timeout_ms: u64,
    /// An inbound peer connection silent for this long is closed.
    pub peer_idle_timeout_ms: u64,
    /// First reconnect delay to a peer, doubled on every failure.
    pub reconnect_backoff_min_ms: u64,
    /// Largest reconnect delay to a peer.
    pub reconnect_backoff_max_ms: u64,
    /// Frames queued per peer connection before new ones are dropped.
    pub peer_queue_frames: usize,
    /// Concurrent inbound peer connections accepted.
    pub max_inbound_connections: usize,
    /// Largest HTTP request head.
    pub http_max_header_bytes: usize,
    /// Largest HTTP request body (decoded, for chunked bodies).
    pub http_max_body_bytes: usize,
    /// How long an HTTP request waits for its outcome before answering 504.
    pub client_timeout_ms: u64,
    /// A keep-alive HTTP connection idle for this long is closed.
    pub http_idle_timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: wire::DEFAULT_MAX_FRAME,
            max_datagram_bytes: 1400,
            connect_timeout_ms: 500,
            rpc_timeout_ms: 1000,
            frame_read_timeout_ms: 2000,
            peer_idle_timeout_ms: 60_000,
            reconnect_backoff_min_ms: 20,
            reconnect_backoff_max_ms: 1000,
            peer_queue_frames: 1024,
            max_inbound_connections: 64,
            http_max_header_bytes: 8 * 1024,
            http_max_body_bytes: 1024 * 1024,
            client_timeout_ms: 5000,
            http_idle_timeout_ms: 30_000,
        }
    }
}

/// The validated configuration of one node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeConfig {
    /// This node's name.
    pub name: String,
    /// This node's id (FNV-1a of the name).
    pub id: NodeId,
    /// The cluster's name.
    pub cluster_name: String,
    /// The cluster id every frame carries (FNV-1a of the cluster name).
    pub cluster_id: u64,
    /// Every other voter.
    pub peers: Vec<PeerConfig>,
    /// Address for peer traffic (UDP heartbeats and TCP replication).
    pub listen_peer: SocketAddr,
    /// Address of the HTTP client API.
    pub listen_client: SocketAddr,
    /// Directory of the durable state and `events.jsonl`.
    pub data_dir: PathBuf,
    /// Which safety mechanisms are on (the lab's broken modes included).
    pub mode: Mode,
    /// The profile the timing defaults came from.
    pub profile: Profile,
    /// Consensus timing.
    pub timing: Timing,
    /// I/O limits and deadlines.
    pub limits: Limits,
    /// How to treat an empty data directory.
    pub start: StartMode,
    /// Test-only clock skew and drift.
    pub test_clock: TestClock,
    /// The cluster key: with it every peer frame is keyed (MACed) and only
    /// keyed frames from the member's own address are accepted.
    pub cluster_key: Option<wire::ClusterKey>,
    /// The bearer token every client API request must carry.
    pub client_token: Option<ClientToken>,
}

/// The client API's bearer token (never printed).
#[derive(Clone, PartialEq, Eq)]
pub struct ClientToken(pub(super) String);

impl ClientToken {
    /// Whether an `Authorization` header value is `Bearer <this token>`
    /// (the token compared in constant time).
    pub fn admits(&self, authorization: Option<&[u8]>) -> bool {
        let Some(given) = authorization.and_then(|value| value.strip_prefix(b"Bearer ")) else {
            return false;
        };
        let expected = self.0.as_bytes();
        // Length is not secret; the bytes are compared without an early exit.
        given.len() == expected.len()
            && given
                .iter()
                .zip(expected)
                .fold(0u8, |diff, (a, b)| diff | (a ^ b))
                == 0
    }
}

impl std::fmt::Debug for ClientToken {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("ClientToken(..)")
    }
}

impl NodeConfig {
    /// The consensus configuration for this node (all durations in ns).
    pub fn consensus_config(&self) -> consensus::Config {
        const MS: u64 = 1_000_000;
        let mut members: Vec<NodeId> = self.peers.iter().map(|peer| peer.id).collect();
        members.push(self.id);
        members.sort_unstable();
        let timing = &self.timing;
        consensus::Config {
            id: self.id,
            members,
            cluster: self.cluster_id,
            mode: self.mode,
            heartbeat_interval_ns: timing.heartbeat_ms * MS,
            election_timeout_min_ns: timing.election_timeout_min_ms * MS,
            election_timeout_max_ns: timing.election_timeout_max_ms * MS,
            clock_drift_bound: timing.clock_drift_bound,
            lease_margin_ns: timing.lease_margin_ms * MS,
            tick_interval_ns: timing.tick_ms * MS,
            max_append_entries: timing.max_append_entries,
            snapshot_threshold: timing.snapshot_threshold,
            max_pending_requests: timing.max_pending_requests,
            // Chunks stay far below the frame limit (a frame adds a header,
            // the chunk's own fields and a MAC).
            snapshot_chunk_bytes: consensus::DEFAULT_SNAPSHOT_CHUNK_BYTES
                .min(self.limits.max_frame_bytes / 4)
                .max(1),
            max_sessions: timing.max_sessions,
        }
    }

    /// The peer with this id, if it is one.
    pub fn peer(&self, id: NodeId) -> Option<&PeerConfig> {
        self.peers.iter().find(|peer| peer.id == id)
    }

    /// The name of a member (this node or a peer).
    pub fn member_name(&self, id: NodeId) -> Option<&str> {
        if id == self.id {
            return Some(&self.name);
        }
        self.peer(id).map(|peer| peer.name.as_str())
    }

    /// The client (HTTP) address of a member, if known.
    pub fn member_client_addr(&self, id: NodeId) -> Option<SocketAddr> {
        if id == self.id {
            return Some(self.listen_client);
        }
        self.peer(id).and_then(|peer| peer.client_addr)
    }
}
