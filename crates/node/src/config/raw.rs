//! The raw, unvalidated configuration shared by the TOML file and the
//! command-line flags: every field optional, unknown TOML fields rejected.
//!
//! [`parse_file`] turns a TOML text into a [`FileConfig`] with serde's
//! errors placed at `file:line:column`.
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::error::{ConfigError, line_column};

/// The TOML file. Unknown fields are errors.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// This node's name.
    pub id: Option<String>,
    /// The cluster's name.
    pub cluster: Option<String>,
    /// Address for peer traffic (UDP and TCP on the same port).
    pub listen_peer: Option<SocketAddr>,
    /// Address of the HTTP client API.
    pub listen_client: Option<SocketAddr>,
    /// Directory for the log, meta record, snapshot and events.jsonl.
    pub data_dir: Option<PathBuf>,
    /// Consensus mode name (default `safe`).
    pub mode: Option<String>,
    /// Timing profile name: `fast` (default) or `default`.
    pub profile: Option<String>,
    /// First start of a new cluster: initialise an empty data directory.
    pub bootstrap: Option<bool>,
    /// This node lost its state: rejoin from an empty data directory.
    pub join_empty: Option<bool>,
    /// File holding the cluster key secret: peer frames are MACed with it
    /// and frames without a valid MAC are refused (see `wire::ClusterKey`).
    pub cluster_key_file: Option<PathBuf>,
    /// File holding the bearer token the client API requires.
    pub client_token_file: Option<PathBuf>,
    /// `name = "host:port"` for every other voter.
    #[serde(default)]
    pub peers: BTreeMap<String, SocketAddr>,
    /// Optional `name = "host:port"` HTTP addresses of the peers.
    #[serde(default)]
    pub peer_clients: BTreeMap<String, SocketAddr>,
    #[serde(default)]
    /// `[timing]`: consensus timing overrides.
    pub timing: FileTiming,
    #[serde(default)]
    /// `[limits]`: I/O limits and deadlines.
    pub limits: FileLimits,
    #[serde(default)]
    /// `[test_clock]`: test-only clock skew and drift.
    pub test_clock: FileTestClock,
}

#[derive(Debug, Default, Clone, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
/// Consensus timing fields, all optional: the `[timing]` table and the timing flags.
pub struct FileTiming {
    /// Heartbeat interval (profile default: fast 50, default 100).
    #[arg(long = "heartbeat-ms")]
    pub heartbeat_ms: Option<u64>,
    /// Lower bound of the randomised election timeout.
    #[arg(long = "election-timeout-min-ms")]
    pub election_timeout_min_ms: Option<u64>,
    /// Upper bound (exclusive) of the randomised election timeout.
    #[arg(long = "election-timeout-max-ms")]
    pub election_timeout_max_ms: Option<u64>,
    /// Safety margin subtracted from the lease (default heartbeat/5).
    #[arg(long = "lease-margin-ms")]
    pub lease_margin_ms: Option<u64>,
    /// Timer tick interval (default heartbeat/5).
    #[arg(long = "tick-ms")]
    pub tick_ms: Option<u64>,
    /// Assumed bound rho >= 1 on the clock-rate ratio between nodes (default 1.01).
    #[arg(long = "clock-drift-bound")]
    pub clock_drift_bound: Option<f64>,
    /// Snapshot and compact the log after this many applied entries (default 10000).
    #[arg(long = "snapshot-threshold")]
    pub snapshot_threshold: Option<u64>,
    /// Maximum entries per Append message (default 256).
    #[arg(long = "max-append-entries")]
    pub max_append_entries: Option<usize>,
    /// Client requests in flight before `overloaded` (default 10000).
    #[arg(long = "max-pending-requests")]
    pub max_pending_requests: Option<usize>,
    /// Exactly-once client sessions kept, least recently used evicted
    /// (default 100000); must be equal on every member.
    #[arg(long = "max-sessions")]
    pub max_sessions: Option<usize>,
}

#[derive(Debug, Default, Clone, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
/// I/O limit fields, all optional: the `[limits]` table and the limit flags.
pub struct FileLimits {
    /// Largest accepted TCP peer frame in bytes (default 16 MiB).
    #[arg(long = "max-frame-bytes")]
    pub max_frame_bytes: Option<usize>,
    /// Largest accepted UDP datagram in bytes (default 1400).
    #[arg(long = "max-datagram-bytes")]
    pub max_datagram_bytes: Option<usize>,
    /// Deadline for connecting to a peer (default 500).
    #[arg(long = "connect-timeout-ms")]
    pub connect_timeout_ms: Option<u64>,
    /// Deadline for writing one frame to a peer (default 1000).
    #[arg(long = "rpc-timeout-ms")]
    pub rpc_timeout_ms: Option<u64>,
    /// A started inbound frame must complete within this (default 2000).
    #[arg(long = "frame-read-timeout-ms")]
    pub frame_read_timeout_ms: Option<u64>,
    /// Close inbound peer connections silent this long (default 60000).
    #[arg(long = "peer-idle-timeout-ms")]
    pub peer_idle_timeout_ms: Option<u64>,
    /// First reconnect delay (default 20), doubled up to the maximum.
    #[arg(long = "reconnect-backoff-min-ms")]
    pub reconnect_backoff_min_ms: Option<u64>,
    /// Largest reconnect delay (default 1000).
    #[arg(long = "reconnect-backoff-max-ms")]
    pub reconnect_backoff_max_ms: Option<u64>,
    /// Frames queued per peer before dropping (default 1024).
    #[arg(long = "peer-queue-frames")]
    pub peer_queue_frames: Option<usize>,
    /// Concurrent inbound peer connections (default 64).
    #[arg(long = "max-inbound-connections")]
    pub max_inbound_connections: Option<usize>,
    /// Largest HTTP request head (default 8192).
    #[arg(long = "http-max-header-bytes")]
    pub http_max_header_bytes: Option<usize>,
    /// Largest HTTP request body (default 1 MiB).
    #[arg(long = "http-max-body-bytes")]
    pub http_max_body_bytes: Option<usize>,
    /// How long a client request waits before 504 unknown (default 5000).
    #[arg(long = "client-timeout-ms")]
    pub client_timeout_ms: Option<u64>,
    /// Close idle keep-alive HTTP connections after this (default 30000).
    #[arg(long = "http-idle-timeout-ms")]
    pub http_idle_timeout_ms: Option<u64>,
}

#[derive(Debug, Default, Clone, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
/// Test-only clock fields: the `[test_clock]` table and the `--test-clock-*` flags.
pub struct FileTestClock {
    /// TEST ONLY: offset the node's clock by this many ms (may be negative).
    #[arg(long = "test-clock-offset-ms", allow_hyphen_values = true)]
    pub offset_ms: Option<i64>,
    /// TEST ONLY: run the node's clock at this rate (1.0 = real time).
    #[arg(long = "test-clock-rate")]
    pub rate: Option<f64>,
}

/// Command-line flags. Any flag given overrides the same field of the file.
#[derive(Debug, Default, Clone, clap::Parser)]
#[command(
    name = "splitnode",
    about = "splitlab replicated key-value node",
    long_about = "splitlab replicated key-value node: UDP heartbeats, TCP replication, \
                  a durable log and an HTTP/JSON client API.\n\n\
                  An empty data directory is refused unless --bootstrap (first start of a \
                  new cluster) or --join-empty (this node lost its disk and rejoins an \
                  existing cluster) is given: a node that forgot its vote could vote twice."
)]
pub struct Flags {
    /// TOML configuration file; flags override its fields.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// This node's name (its id is the FNV-1a hash of the name).
    #[arg(long)]
    pub id: Option<String>,
    /// Cluster name (its id is the FNV-1a hash of the name).
    #[arg(long)]
    pub cluster: Option<String>,
    /// Another voter, NAME=HOST:PORT (UDP heartbeats and TCP replication). Repeat per peer.
    #[arg(long = "peer", value_name = "NAME=ADDR")]
    pub peers: Vec<String>,
    /// A peer's HTTP address for leader hints, NAME=HOST:PORT. Optional.
    #[arg(long = "peer-client", value_name = "NAME=ADDR")]
    pub peer_clients: Vec<String>,
    /// Address for peer traffic (UDP and TCP on the same port).
    #[arg(long)]
    pub listen_peer: Option<SocketAddr>,
    /// Address of the HTTP client API.
    #[arg(long)]
    pub listen_client: Option<SocketAddr>,
    /// Directory for the log, meta record, snapshot and events.jsonl.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// safe | timeout-failover | unenforced-quorum | one-way-quorum | no-fencing
    #[arg(long)]
    pub mode: Option<String>,
    /// Timing profile: fast | default.
    #[arg(long)]
    pub profile: Option<String>,
    /// First start of a new cluster: initialise an empty data directory.
    #[arg(long, conflicts_with = "join_empty")]
    pub bootstrap: bool,
    /// This node lost its state: rejoin an existing cluster from an empty data directory.
    #[arg(long)]
    pub join_empty: bool,
    /// Cluster key file (>= 16 bytes of secret): every peer frame carries a
    /// MAC under it and frames without a valid one are refused.
    #[arg(long, value_name = "PATH")]
    pub cluster_key_file: Option<PathBuf>,
    /// Bearer token file: client API requests must send `Authorization: Bearer <token>`.
    #[arg(long, value_name = "PATH")]
    pub client_token_file: Option<PathBuf>,
    /// Timing flags (`--heartbeat-ms`, …).
    #[command(flatten)]
    pub timing: FileTiming,
    /// Limit flags (`--max-frame-bytes`, …).
    #[command(flatten)]
    pub limits: FileLimits,
    /// Test-only clock flags (`--test-clock-*`).
    #[command(flatten)]
    pub test_clock: FileTestClock,
}

/// Parses a TOML configuration text. `file` is used in error messages.
pub fn parse_file(file: &str, text: &str) -> Result<FileConfig, ConfigError> {
    toml::from_str(text).map_err(|error| {
        let (line, column) = error
            .span()
            .map_or((1, 1), |span| line_column(text, span.start));
        let message = error.message().to_owned();
        let field = field_from_message(&message).unwrap_or_else(|| "(file)".to_owned());
        ConfigError::InFile {
            file: file.to_owned(),
            line,
            column,
            field,
            message,
        }
    })
}

/// Pulls the field name out of serde's "unknown field `x`" and
/// "missing field `x`" messages.
fn field_from_message(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let end = start + message[start..].find('`')?;
    Some(message[start..end].to_owned())
}
