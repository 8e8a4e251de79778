//! Node configuration: a TOML file (`--config FILE`) and/or command-line
//! flags, merged (flags win) and validated into a [`NodeConfig`].
//!
//! Every error names the offending field; errors found in a TOML file also
//! carry `line:column`. Node and cluster names become numeric ids through
//! 64-bit FNV-1a ([`name_to_id`]); two names that hash to the same id are
//! rejected at load time.
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use consensus::Mode;
use serde::Deserialize;
use wire::NodeId;

/// 64-bit FNV-1a of a name. Used for node ids and the cluster id, so every
/// process (and the lab) derives the same id from the same name.
pub fn name_to_id(name: &str) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    name.bytes().fold(OFFSET_BASIS, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    })
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// An error at a known place in a TOML file.
    #[error("{file}:{line}:{column}: {field}: {message}")]
    InFile {
        file: String,
        line: usize,
        column: usize,
        field: String,
        message: String,
    },
    #[error("{field}: {message}")]
    Field { field: String, message: String },
    #[error("cannot read config file {file}: {message}")]
    Read { file: String, message: String },
}

fn field_error(field: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Field {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// Timing profile: the defaults every timing value starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// heartbeat 50 ms, election timeout 250–500 ms (the lab's choice).
    Fast,
    /// heartbeat 100 ms, election timeout 1000–2000 ms (etcd's defaults).
    Default,
}

impl Profile {
    pub fn from_name(name: &str) -> Option<Profile> {
        match name {
            "fast" => Some(Profile::Fast),
            "default" => Some(Profile::Default),
            _ => None,
        }
    }

    fn heartbeat_and_election_ms(self) -> (u64, u64, u64) {
        match self {
            Profile::Fast => (50, 250, 500),
            Profile::Default => (100, 1000, 2000),
        }
    }
}

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
pub struct PeerConfig {
    pub name: String,
    pub id: NodeId,
    /// UDP heartbeats and TCP replication both use this address.
    pub addr: SocketAddr,
    /// The peer's HTTP address, used only for leader hints in 503 answers.
    pub client_addr: Option<SocketAddr>,
}

/// Consensus timing, in milliseconds on the node's own clock.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    pub heartbeat_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    pub lease_margin_ms: u64,
    pub tick_ms: u64,
    pub clock_drift_bound: f64,
    pub snapshot_threshold: u64,
    pub max_append_entries: usize,
    pub max_pending_requests: usize,
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
    pub reconnect_backoff_min_ms: u64,
    pub reconnect_backoff_max_ms: u64,
    /// Frames queued per peer connection before new ones are dropped.
    pub peer_queue_frames: usize,
    pub max_inbound_connections: usize,
    pub http_max_header_bytes: usize,
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
    pub name: String,
    pub id: NodeId,
    pub cluster_name: String,
    pub cluster_id: u64,
    pub peers: Vec<PeerConfig>,
    pub listen_peer: SocketAddr,
    pub listen_client: SocketAddr,
    pub data_dir: PathBuf,
    pub mode: Mode,
    pub profile: Profile,
    pub timing: Timing,
    pub limits: Limits,
    pub start: StartMode,
    pub test_clock: TestClock,
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
        }
    }

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

// ---------------------------------------------------------------------------
// The raw, unvalidated form shared by the TOML file and the flags.

/// The TOML file. Unknown fields are errors.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub id: Option<String>,
    pub cluster: Option<String>,
    pub listen_peer: Option<SocketAddr>,
    pub listen_client: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub mode: Option<String>,
    pub profile: Option<String>,
    pub bootstrap: Option<bool>,
    pub join_empty: Option<bool>,
    /// `name = "host:port"` for every other voter.
    #[serde(default)]
    pub peers: BTreeMap<String, SocketAddr>,
    /// Optional `name = "host:port"` HTTP addresses of the peers.
    #[serde(default)]
    pub peer_clients: BTreeMap<String, SocketAddr>,
    #[serde(default)]
    pub timing: FileTiming,
    #[serde(default)]
    pub limits: FileLimits,
    #[serde(default)]
    pub test_clock: FileTestClock,
}

#[derive(Debug, Default, Clone, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
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
}

#[derive(Debug, Default, Clone, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
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
    #[command(flatten)]
    pub timing: FileTiming,
    #[command(flatten)]
    pub limits: FileLimits,
    #[command(flatten)]
    pub test_clock: FileTestClock,
}

/// Where a merged field came from, for error messages.
struct Origin<'a> {
    file: Option<(&'a str, &'a str)>,
}

impl Origin<'_> {
    /// Error for `field`: with line:column if the field was set in the file
    /// and no flag overrode it (`from_file`).
    fn error(&self, field: &str, from_file: bool, message: impl Into<String>) -> ConfigError {
        let message = message.into();
        if from_file
            && let Some((file, text)) = self.file
            && let Some((line, column)) = locate_key(text, field)
        {
            return ConfigError::InFile {
                file: file.to_owned(),
                line,
                column,
                field: field.to_owned(),
                message,
            };
        }
        field_error(field, message)
    }
}

/// Finds the line and column of `path` ("timing.heartbeat_ms", "peers.n2")
/// in a TOML text: the key inside its `[section]`, or the section header.
fn locate_key(text: &str, path: &str) -> Option<(usize, usize)> {
    let (section, key) = match path.split_once('.') {
        Some((section, key)) => (Some(section), key),
        None => (None, path),
    };
    let mut current: Option<String> = None;
    let mut section_line = None;
    for (number, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if let Some(header) = trimmed.strip_prefix('[') {
            let name = header.split(']').next().unwrap_or("").trim().to_owned();
            if Some(name.as_str()) == section {
                section_line = Some((number + 1, indent + 1));
            }
            current = Some(name);
            continue;
        }
        let Some((candidate, _)) = trimmed.split_once('=') else {
            continue;
        };
        let candidate = candidate.trim().trim_matches('"');
        let matches = match (section, current.as_deref()) {
            (None, None) => candidate == key,
            (Some(section), Some(current)) => section == current && candidate == key,
            // Dotted keys at top level: `timing.heartbeat_ms = 5`.
            (Some(_), None) => candidate == path,
            (None, Some(_)) => false,
        };
        if matches {
            return Some((number + 1, indent + 1));
        }
    }
    section_line
}

/// Converts a byte offset into a 1-based line and column.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map_or(0, |rest| rest.chars().count())
        + 1;
    (line, column)
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

fn parse_name_addr(field: &str, text: &str) -> Result<(String, SocketAddr), ConfigError> {
    let (name, addr) = text
        .split_once('=')
        .ok_or_else(|| field_error(field, format!("`{text}` is not NAME=HOST:PORT")))?;
    let addr = addr
        .parse::<SocketAddr>()
        .map_err(|error| field_error(field, format!("`{addr}` is not HOST:PORT: {error}")))?;
    Ok((name.to_owned(), addr))
}

fn validate_name(
    origin: &Origin<'_>,
    field: &str,
    from_file: bool,
    name: &str,
) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_' || ch == '.');
    if ok {
        Ok(())
    } else {
        Err(origin.error(
            field,
            from_file,
            format!("`{name}` must be 1-64 characters of [A-Za-z0-9._-]"),
        ))
    }
}

/// Reads the file named by `--config` (if any), merges the flags over it
/// and validates the result.
pub fn load(flags: &Flags) -> Result<NodeConfig, ConfigError> {
    match &flags.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
                file: path.display().to_string(),
                message: error.to_string(),
            })?;
            let file_name = path.display().to_string();
            let file = parse_file(&file_name, &text)?;
            merge(Some((&file_name, &text)), file, flags)
        }
        None => merge(None, FileConfig::default(), flags),
    }
}

/// Like [`load`], but for a TOML text already in memory (tests).
pub fn load_str(file_name: &str, text: &str, flags: &Flags) -> Result<NodeConfig, ConfigError> {
    let file = parse_file(file_name, text)?;
    merge(Some((file_name, text)), file, flags)
}

/// Picks the flag value if given, otherwise the file value; the bool says
/// whether the value came from the file.
fn pick<T: Clone>(flag: &Option<T>, file: &Option<T>) -> Option<(T, bool)> {
    match (flag, file) {
        (Some(value), _) => Some((value.clone(), false)),
        (None, Some(value)) => Some((value.clone(), true)),
        (None, None) => None,
    }
}

fn merge(
    source: Option<(&str, &str)>,
    file: FileConfig,
    flags: &Flags,
) -> Result<NodeConfig, ConfigError> {
    let origin = Origin { file: source };
    let required = |field: &str, flag: &str| {
        field_error(
            field,
            format!("required (set `{field}` in the config file or pass --{flag})"),
        )
    };

    let (name, name_in_file) = pick(&flags.id, &file.id).ok_or_else(|| required("id", "id"))?;
    validate_name(&origin, "id", name_in_file, &name)?;
    let (cluster_name, cluster_in_file) =
        pick(&flags.cluster, &file.cluster).ok_or_else(|| required("cluster", "cluster"))?;
    validate_name(&origin, "cluster", cluster_in_file, &cluster_name)?;
    let (listen_peer, _) = pick(&flags.listen_peer, &file.listen_peer)
        .ok_or_else(|| required("listen_peer", "listen-peer"))?;
    let (listen_client, _) = pick(&flags.listen_client, &file.listen_client)
        .ok_or_else(|| required("listen_client", "listen-client"))?;
    let (data_dir, _) =
        pick(&flags.data_dir, &file.data_dir).ok_or_else(|| required("data_dir", "data-dir"))?;

    let mode = match pick(&flags.mode, &file.mode) {
        None => Mode::Safe,
        Some((text, in_file)) => Mode::from_name(&text).ok_or_else(|| {
            let names: Vec<&str> = Mode::ALL.iter().map(|mode| mode.name()).collect();
            origin.error(
                "mode",
                in_file,
                format!(
                    "unknown mode `{text}` (expected one of {})",
                    names.join(", ")
                ),
            )
        })?,
    };
    let profile = match pick(&flags.profile, &file.profile) {
        None => Profile::Fast,
        Some((text, in_file)) => Profile::from_name(&text).ok_or_else(|| {
            origin.error(
                "profile",
                in_file,
                format!("unknown profile `{text}` (expected fast or default)"),
            )
        })?,
    };

    // Peers: flags replace the file's list entirely when any is given.
    let mut peer_list: Vec<(String, SocketAddr, bool)> = Vec::new();
    if flags.peers.is_empty() {
        for (peer_name, addr) in &file.peers {
            peer_list.push((peer_name.clone(), *addr, true));
        }
    } else {
        for text in &flags.peers {
            let (peer_name, addr) = parse_name_addr("peer", text)?;
            peer_list.push((peer_name, addr, false));
        }
    }
    let mut peer_clients: BTreeMap<String, SocketAddr> = file.peer_clients.clone();
    for text in &flags.peer_clients {
        let (peer_name, addr) = parse_name_addr("peer_clients", text)?;
        peer_clients.insert(peer_name, addr);
    }

    let id = name_to_id(&name);
    let mut ids: BTreeMap<NodeId, String> = BTreeMap::new();
    ids.insert(id, name.clone());
    let mut peers = Vec::new();
    for (peer_name, addr, in_file) in peer_list {
        let field = format!("peers.{peer_name}");
        validate_name(&origin, &field, in_file, &peer_name)?;
        let peer_id = name_to_id(&peer_name);
        if let Some(existing) = ids.get(&peer_id) {
            let message = if *existing == peer_name {
                format!("`{peer_name}` is listed twice (or is this node's own name)")
            } else {
                format!(
                    "`{peer_name}` and `{existing}` hash to the same node id {peer_id:#x}; rename one"
                )
            };
            return Err(origin.error(&field, in_file, message));
        }
        ids.insert(peer_id, peer_name.clone());
        peers.push(PeerConfig {
            client_addr: peer_clients.get(&peer_name).copied(),
            name: peer_name,
            id: peer_id,
            addr,
        });
    }
    for client_name in peer_clients.keys() {
        if !peers.iter().any(|peer| &peer.name == client_name) {
            return Err(origin.error(
                &format!("peer_clients.{client_name}"),
                file.peer_clients.contains_key(client_name),
                format!("`{client_name}` is not a peer"),
            ));
        }
    }
    if peers.len() + 1 > 9 {
        return Err(field_error(
            "peers",
            format!("cluster size {} is outside 1..=9", peers.len() + 1),
        ));
    }
    if peers.iter().any(|peer| peer.addr == listen_peer) {
        return Err(field_error(
            "peers",
            "a peer uses this node's own listen_peer address",
        ));
    }

    let timing = merge_timing(&origin, profile, &file.timing, &flags.timing)?;
    let limits = merge_limits(&origin, &file.limits, &flags.limits)?;
    let test_clock = merge_test_clock(&origin, &file.test_clock, &flags.test_clock)?;

    let bootstrap = flags.bootstrap || file.bootstrap.unwrap_or(false);
    let join_empty = flags.join_empty || file.join_empty.unwrap_or(false);
    let start = match (bootstrap, join_empty) {
        (true, true) => {
            return Err(origin.error(
                "join_empty",
                file.join_empty.is_some(),
                "bootstrap and join_empty exclude each other",
            ));
        }
        (true, false) => StartMode::Bootstrap,
        (false, true) => StartMode::JoinEmpty,
        (false, false) => StartMode::Existing,
    };

    Ok(NodeConfig {
        name,
        id,
        cluster_id: name_to_id(&cluster_name),
        cluster_name,
        peers,
        listen_peer,
        listen_client,
        data_dir,
        mode,
        profile,
        timing,
        limits,
        start,
        test_clock,
    })
}

fn merge_timing(
    origin: &Origin<'_>,
    profile: Profile,
    file: &FileTiming,
    flags: &FileTiming,
) -> Result<Timing, ConfigError> {
    let (heartbeat_default, election_min_default, election_max_default) =
        profile.heartbeat_and_election_ms();
    let get = |flag: Option<u64>, from_file: Option<u64>, default: u64| {
        pick(&flag, &from_file).unwrap_or((default, false))
    };
    let (heartbeat_ms, heartbeat_in_file) =
        get(flags.heartbeat_ms, file.heartbeat_ms, heartbeat_default);
    let (election_timeout_min_ms, min_in_file) = get(
        flags.election_timeout_min_ms,
        file.election_timeout_min_ms,
        election_min_default,
    );
    let (election_timeout_max_ms, max_in_file) = get(
        flags.election_timeout_max_ms,
        file.election_timeout_max_ms,
        election_max_default,
    );
    let (lease_margin_ms, _) = get(
        flags.lease_margin_ms,
        file.lease_margin_ms,
        heartbeat_ms / 5,
    );
    let (tick_ms, tick_in_file) = get(flags.tick_ms, file.tick_ms, (heartbeat_ms / 5).max(1));
    let (clock_drift_bound, drift_in_file) =
        pick(&flags.clock_drift_bound, &file.clock_drift_bound).unwrap_or((1.01, false));
    let (snapshot_threshold, snapshot_in_file) =
        get(flags.snapshot_threshold, file.snapshot_threshold, 10_000);
    let (max_append_entries, append_in_file) =
        pick(&flags.max_append_entries, &file.max_append_entries).unwrap_or((256, false));
    let (max_pending_requests, pending_in_file) =
        pick(&flags.max_pending_requests, &file.max_pending_requests).unwrap_or((10_000, false));

    if heartbeat_ms == 0 {
        return Err(origin.error("timing.heartbeat_ms", heartbeat_in_file, "must be > 0"));
    }
    if election_timeout_min_ms <= heartbeat_ms {
        return Err(origin.error(
            "timing.election_timeout_min_ms",
            min_in_file,
            format!("{election_timeout_min_ms} must exceed heartbeat_ms ({heartbeat_ms})"),
        ));
    }
    if election_timeout_max_ms <= election_timeout_min_ms {
        return Err(origin.error(
            "timing.election_timeout_max_ms",
            max_in_file,
            format!(
                "{election_timeout_max_ms} must exceed election_timeout_min_ms ({election_timeout_min_ms})"
            ),
        ));
    }
    if tick_ms == 0 || tick_ms > heartbeat_ms {
        return Err(origin.error(
            "timing.tick_ms",
            tick_in_file,
            format!("{tick_ms} must be in 1..=heartbeat_ms ({heartbeat_ms})"),
        ));
    }
    if !(clock_drift_bound.is_finite() && (1.0..=2.0).contains(&clock_drift_bound)) {
        return Err(origin.error(
            "timing.clock_drift_bound",
            drift_in_file,
            format!("{clock_drift_bound} must be in 1.0..=2.0"),
        ));
    }
    if snapshot_threshold == 0 {
        return Err(origin.error("timing.snapshot_threshold", snapshot_in_file, "must be > 0"));
    }
    if max_append_entries == 0 {
        return Err(origin.error("timing.max_append_entries", append_in_file, "must be > 0"));
    }
    if max_pending_requests == 0 {
        return Err(origin.error(
            "timing.max_pending_requests",
            pending_in_file,
            "must be > 0",
        ));
    }
    Ok(Timing {
        heartbeat_ms,
        election_timeout_min_ms,
        election_timeout_max_ms,
        lease_margin_ms,
        tick_ms,
        clock_drift_bound,
        snapshot_threshold,
        max_append_entries,
        max_pending_requests,
    })
}

fn merge_limits(
    origin: &Origin<'_>,
    file: &FileLimits,
    flags: &FileLimits,
) -> Result<Limits, ConfigError> {
    let defaults = Limits::default();
    let mut out = defaults.clone();
    // (field name, flag value, file value, target, minimum)
    macro_rules! field {
        ($name:ident, $min:expr) => {{
            if let Some((value, in_file)) = pick(&flags.$name, &file.$name) {
                if value < $min {
                    return Err(origin.error(
                        concat!("limits.", stringify!($name)),
                        in_file,
                        format!("{} is below the minimum {}", value, $min),
                    ));
                }
                out.$name = value;
            }
        }};
    }
    field!(max_frame_bytes, wire::MIN_FRAME_LEN + 1024);
    field!(max_datagram_bytes, wire::MIN_FRAME_LEN + 64);
    field!(connect_timeout_ms, 1);
    field!(rpc_timeout_ms, 1);
    field!(frame_read_timeout_ms, 1);
    field!(peer_idle_timeout_ms, 1);
    field!(reconnect_backoff_min_ms, 1);
    field!(reconnect_backoff_max_ms, 1);
    field!(peer_queue_frames, 1);
    field!(max_inbound_connections, 1);
    field!(http_max_header_bytes, 256);
    field!(http_max_body_bytes, 1);
    field!(client_timeout_ms, 1);
    field!(http_idle_timeout_ms, 1);
    if out.max_datagram_bytes > 65_507 {
        return Err(field_error(
            "limits.max_datagram_bytes",
            format!("{} exceeds the UDP maximum 65507", out.max_datagram_bytes),
        ));
    }
    if out.reconnect_backoff_max_ms < out.reconnect_backoff_min_ms {
        return Err(field_error(
            "limits.reconnect_backoff_max_ms",
            "must be >= reconnect_backoff_min_ms",
        ));
    }
    Ok(out)
}

fn merge_test_clock(
    origin: &Origin<'_>,
    file: &FileTestClock,
    flags: &FileTestClock,
) -> Result<TestClock, ConfigError> {
    let (offset_ms, _) = pick(&flags.offset_ms, &file.offset_ms).unwrap_or((0, false));
    let (rate, rate_in_file) = pick(&flags.rate, &file.rate).unwrap_or((1.0, false));
    if !(rate.is_finite() && rate > 0.0 && rate <= 100.0) {
        return Err(origin.error(
            "test_clock.rate",
            rate_in_file,
            format!("{rate} must be in (0, 100]"),
        ));
    }
    Ok(TestClock { offset_ms, rate })
}

/// `path` relative to the data directory.
pub fn data_path(config: &NodeConfig, name: &str) -> PathBuf {
    Path::new(&config.data_dir).join(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn flags(args: &[&str]) -> Flags {
        let mut all = vec!["splitnode"];
        all.extend_from_slice(args);
        Flags::try_parse_from(all).expect("flags parse")
    }

    const BASE: &[&str] = &[
        "--id",
        "n1",
        "--cluster",
        "c1",
        "--peer",
        "n2=127.0.0.2:7100",
        "--peer",
        "n3=127.0.0.3:7100",
        "--listen-peer",
        "127.0.0.1:7100",
        "--listen-client",
        "127.0.0.1:7000",
        "--data-dir",
        "/tmp/x",
    ];

    #[test]
    fn fnv1a_matches_reference_vectors() {
        assert_eq!(name_to_id(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(name_to_id("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(name_to_id("foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn flags_produce_a_config_with_profile_defaults() {
        let config = load(&flags(BASE)).unwrap();
        assert_eq!(config.name, "n1");
        assert_eq!(config.id, name_to_id("n1"));
        assert_eq!(config.cluster_id, name_to_id("c1"));
        assert_eq!(config.peers.len(), 2);
        assert_eq!(config.mode, Mode::Safe);
        assert_eq!(config.timing.heartbeat_ms, 50);
        assert_eq!(config.timing.election_timeout_min_ms, 250);
        assert_eq!(config.timing.election_timeout_max_ms, 500);
        assert_eq!(config.start, StartMode::Existing);
        let consensus = config.consensus_config();
        assert_eq!(consensus.members.len(), 3);
        assert_eq!(consensus.heartbeat_interval_ns, 50_000_000);
    }

    #[test]
    fn default_profile_and_overrides() {
        let mut args = BASE.to_vec();
        args.extend_from_slice(&[
            "--profile",
            "default",
            "--election-timeout-max-ms",
            "3000",
            "--mode",
            "no-fencing",
            "--test-clock-offset-ms",
            "-5000",
            "--test-clock-rate",
            "0.5",
            "--bootstrap",
        ]);
        let config = load(&flags(&args)).unwrap();
        assert_eq!(config.timing.heartbeat_ms, 100);
        assert_eq!(config.timing.election_timeout_min_ms, 1000);
        assert_eq!(config.timing.election_timeout_max_ms, 3000);
        assert_eq!(config.mode, Mode::NoFencing);
        assert_eq!(config.test_clock.offset_ms, -5000);
        assert_eq!(config.test_clock.rate, 0.5);
        assert_eq!(config.start, StartMode::Bootstrap);
    }

    #[test]
    fn every_mode_name_is_accepted() {
        for mode in Mode::ALL {
            let mut args = BASE.to_vec();
            args.extend_from_slice(&["--mode", mode.name()]);
            assert_eq!(load(&flags(&args)).unwrap().mode, mode);
        }
    }

    #[test]
    fn errors_name_the_field() {
        let mut args = BASE.to_vec();
        args.extend_from_slice(&["--mode", "yolo"]);
        let error = load(&flags(&args)).unwrap_err().to_string();
        assert!(error.starts_with("mode: unknown mode `yolo`"), "{error}");

        let mut args = BASE.to_vec();
        args.extend_from_slice(&["--election-timeout-min-ms", "40"]);
        let error = load(&flags(&args)).unwrap_err().to_string();
        assert!(
            error.starts_with("timing.election_timeout_min_ms:"),
            "{error}"
        );

        let mut args = BASE.to_vec();
        args.extend_from_slice(&["--peer", "n1=127.0.0.9:1"]);
        let error = load(&flags(&args)).unwrap_err().to_string();
        assert!(error.starts_with("peers.n1:"), "{error}");

        let error = load(&flags(&["--id", "n1"])).unwrap_err().to_string();
        assert!(error.starts_with("cluster: required"), "{error}");

        let mut args = BASE.to_vec();
        args.extend_from_slice(&["--peer", "bad"]);
        assert!(
            load(&flags(&args))
                .unwrap_err()
                .to_string()
                .starts_with("peer:")
        );
    }

    #[test]
    fn bootstrap_and_join_empty_conflict_on_the_command_line() {
        let mut args = vec!["splitnode"];
        args.extend_from_slice(BASE);
        args.extend_from_slice(&["--bootstrap", "--join-empty"]);
        assert!(Flags::try_parse_from(args).is_err());
    }

    const TOML: &str = r#"
id = "n1"
cluster = "c1"
listen_peer = "127.0.0.1:7100"
listen_client = "127.0.0.1:7000"
data_dir = "/tmp/n1"
mode = "safe"
profile = "fast"
bootstrap = true

[peers]
n2 = "127.0.0.2:7100"
n3 = "127.0.0.3:7100"

[peer_clients]
n2 = "127.0.0.2:7000"

[timing]
snapshot_threshold = 50

[test_clock]
offset_ms = 10000
"#;

    #[test]
    fn toml_file_loads_and_flags_override_it() {
        let config = load_str("n1.toml", TOML, &Flags::default()).unwrap();
        assert_eq!(config.timing.snapshot_threshold, 50);
        assert_eq!(config.start, StartMode::Bootstrap);
        assert_eq!(config.test_clock.offset_ms, 10_000);
        assert_eq!(
            config.member_client_addr(name_to_id("n2")),
            Some("127.0.0.2:7000".parse().unwrap())
        );
        assert_eq!(config.member_client_addr(name_to_id("n3")), None);

        let overriding = flags(&["--mode", "timeout-failover", "--snapshot-threshold", "7"]);
        let config = load_str("n1.toml", TOML, &overriding).unwrap();
        assert_eq!(config.mode, Mode::TimeoutFailover);
        assert_eq!(config.timing.snapshot_threshold, 7);
    }

    #[test]
    fn toml_unknown_field_reports_line_and_column() {
        let text = TOML.replace("[timing]\n", "[timing]\nheartbeat_msec = 5\n");
        let error = load_str("n1.toml", &text, &Flags::default()).unwrap_err();
        match &error {
            ConfigError::InFile {
                line,
                column,
                field,
                ..
            } => {
                assert_eq!(*line, 19, "{error}");
                assert_eq!(*column, 1, "{error}");
                assert_eq!(field, "heartbeat_msec");
            }
            other => panic!("expected an in-file error, got {other}"),
        }
    }

    #[test]
    fn toml_bad_value_and_semantic_errors_carry_line_and_column() {
        let text = TOML.replace("\"127.0.0.2:7100\"", "\"nowhere\"");
        let error = load_str("n1.toml", &text, &Flags::default())
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("n1.toml:12:"), "{error}");

        let text = TOML.replace("mode = \"safe\"", "mode = \"fast-and-loose\"");
        let error = load_str("n1.toml", &text, &Flags::default())
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("n1.toml:7:1: mode: unknown mode"),
            "{error}"
        );

        let text = TOML.replace("snapshot_threshold = 50", "election_timeout_max_ms = 100");
        let error = load_str("n1.toml", &text, &Flags::default())
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("n1.toml:19:1: timing.election_timeout_max_ms:"),
            "{error}"
        );
    }

    #[test]
    fn hash_collisions_and_duplicates_are_rejected() {
        let text = TOML.replace("n3 = \"127.0.0.3:7100\"", "n1 = \"127.0.0.3:7100\"");
        let error = load_str("n1.toml", &text, &Flags::default())
            .unwrap_err()
            .to_string();
        assert!(error.contains("peers.n1"), "{error}");
    }
}
