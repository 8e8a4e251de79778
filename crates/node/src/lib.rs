//! `splitnode`: the consensus core made real — UDP heartbeats, TCP
//! replication, a durable log and an HTTP/JSON client API.
//!
//! # Code map
//!
//! ```text
//! main.rs       flags/TOML → NodeConfig → tokio runtime → node::run(config, SIGTERM)
//! lib.rs        run(): open storage, bind sockets, spawn tasks, run the driver
//! config/       NodeConfig: raw TOML/flags model, merge + validation, errors with line:column
//! driver.rs     the ONLY owner of the Replica; biased select!, group commit, persist-before-send
//! storage/      meta / log / snapshot files: record codec, file primitives, recovery
//! failpoints.rs crash points for the crash-recovery tests (`failpoints` feature only)
//! forge.rs      `splitnode forge`: the lab's rogue sender of forged peer frames
//! transport.rs  UDP datagrams, TCP inbound (limits, deadlines) and outbound (reconnect)
//! transport_socket.rs  peer stream keepalive and TCP_USER_TIMEOUT (stalled streams reconnect)
//! peer_auth.rs  cluster key: keyed frames, sender address checks
//! client.rs     HTTP API handlers → driver over mpsc, oneshot back
//! http/         HTTP/1.1 parsing (Content-Length or chunked bodies), routing, responses (pure)
//! events.rs     events.jsonl in the checker's NodeEvent format
//! metrics.rs    atomic counters, Prometheus text
//! clock.rs      CLOCK_MONOTONIC and the node's (test-skewable) clock
//! ```
//!
//! # Start-up and empty data directories
//!
//! A node with an empty data directory cannot tell "first start of a new
//! cluster" from "lost its disk"; in the second case it forgot its vote and
//! could vote twice in one term. So it refuses to start unless told:
//! `--bootstrap` (first start; harmless on later starts) or `--join-empty`
//! (rejoin after data loss: the node ignores vote requests until it has
//! followed a leader, then catches up from the leader's log or snapshot).
//!
//! # Data directory
//!
//! `node.id`, `meta`, `log`, `snapshot` (see the `storage` module) and `events.jsonl`
//! (see the `events` module).
#![warn(missing_docs, unreachable_pub)]
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;

use checker::EventKind;
use consensus::Replica;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch};

mod client;
mod clock;
pub mod config;
mod driver;
mod events;
pub mod failpoints;
pub mod forge;
mod http;
mod metrics;
mod peer_auth;
mod storage;
mod transport;
mod transport_socket;

use crate::clock::NodeClock;
use crate::config::{NodeConfig, StartMode};
use crate::driver::{Driver, DriverState, StatusView};
use crate::events::EventLog;
use crate::metrics::Metrics;
use crate::peer_auth::PeerAuth;
use crate::storage::Storage;
use crate::transport::FrameFilter;

/// Inbound peer messages queued for the driver before datagrams are dropped.
const PEER_QUEUE: usize = 4096;
/// Client requests queued for the driver before `overloaded` is answered.
const CLIENT_QUEUE: usize = 4096;

#[derive(Debug, thiserror::Error)]
/// Why a node stopped with an error (a graceful stop is `Ok`).
pub enum NodeError {
    #[error("invalid consensus configuration: {0}")]
    /// The consensus configuration is invalid.
    Consensus(#[from] consensus::ConfigError),
    #[error(transparent)]
    /// The data directory could not be opened, recovered or written.
    Storage(#[from] storage::StorageError),
    #[error("cannot bind {what} on {addr}: {source}")]
    /// A listening socket could not be bound.
    Bind {
        /// Which socket: peer UDP, peer TCP or client HTTP.
        what: &'static str,
        /// The address it was to listen on.
        addr: SocketAddr,
        #[source]
        /// The bind error.
        source: std::io::Error,
    },
    #[error("event log {path}: {source}")]
    /// `events.jsonl` could not be opened or written.
    EventLog {
        /// The event log's path.
        path: String,
        #[source]
        /// The I/O error.
        source: std::io::Error,
    },
    #[error(transparent)]
    /// The driver failed (storage or event log during a batch).
    Driver(#[from] driver::DriverError),
}

/// The exit code of a fail-stop: a write or fsync to the data directory
/// failed while the node ran (EX_IOERR of sysexits.h). Distinct from 1 (any
/// other runtime failure) and 2 (invalid configuration), so a supervisor or
/// the lab can tell "stopped because the disk failed" from a crash.
pub const FAIL_STOP_EXIT_CODE: u8 = 74;

impl NodeError {
    /// Whether this is a fail-stop: storage or the event log failed to write
    /// or fsync while running. What reached the disk is then unknown (after
    /// a failed fsync the kernel may have dropped the dirty pages), so the
    /// node stops instead of retrying or carrying on; recovery at the next
    /// start drops an incomplete last record. A refusal at start-up (empty,
    /// foreign or corrupt directory) is not a fail-stop.
    pub fn is_fail_stop(&self) -> bool {
        matches!(
            self,
            NodeError::Driver(driver::DriverError::Storage(_) | driver::DriverError::EventLog(_))
        )
    }
}

fn bind_error(what: &'static str, addr: SocketAddr) -> impl FnOnce(std::io::Error) -> NodeError {
    move |source| NodeError::Bind { what, addr, source }
}

/// Runs a node until `shutdown` resolves (graceful stop) or a fatal error.
pub async fn run(
    config: NodeConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), NodeError> {
    let config = Arc::new(config);
    let consensus_config = config.consensus_config();
    for warning in consensus_config.validate()? {
        tracing::warn!("{warning}");
    }

    // Storage first: refuse an empty data directory before touching the network.
    let identity = format!("{} {}", config.name, config.cluster_name);
    let allow_init = config.start != StartMode::Existing;
    let dir = config.data_dir.clone();
    let (storage, restored, report) = Storage::open(&dir, &identity, allow_init)?;
    if report.torn_log_bytes > 0 || report.torn_meta_bytes > 0 {
        tracing::warn!(
            log_bytes = report.torn_log_bytes,
            meta_bytes = report.torn_meta_bytes,
            "dropped an incomplete last record left by a crash"
        );
    }
    if report.conflicting_entries > 0 || report.stale_temp_files > 0 {
        tracing::warn!(
            conflicting_entries = report.conflicting_entries,
            stale_temp_files = report.stale_temp_files,
            "finished a snapshot install or file replace interrupted by a crash"
        );
    }
    if report.initialised {
        tracing::info!(dir = %dir.display(), start = ?config.start, "initialised an empty data directory");
    }
    let withhold_votes = report.initialised && config.start == StartMode::JoinEmpty;

    let events_path = config::data_path(&config, "events.jsonl");
    let mut events =
        EventLog::open(&events_path, &config.name).map_err(|source| NodeError::EventLog {
            path: events_path.display().to_string(),
            source,
        })?;

    let udp = UdpSocket::bind(config.listen_peer)
        .await
        .map_err(bind_error("peer UDP", config.listen_peer))?;
    let peer_listener = TcpListener::bind(config.listen_peer)
        .await
        .map_err(bind_error("peer TCP", config.listen_peer))?;
    let client_listener = TcpListener::bind(config.listen_client)
        .await
        .map_err(bind_error("client HTTP", config.listen_client))?;

    let clock = NodeClock::new(config.test_clock);
    let start = clock.now();
    let last_index = restored.last_index();
    let restored_term = restored.term;
    let seed = config.id ^ start.mono_ns.rotate_left(32) ^ u64::from(std::process::id());
    let replica = Replica::new(consensus_config, restored, seed, start.local_ns)?;

    let event_error = |source| NodeError::EventLog {
        path: events_path.display().to_string(),
        source,
    };
    events
        .record(start, restored_term, EventKind::Started)
        .map_err(event_error)?;
    events
        .record(start, restored_term, EventKind::Recovered { last_index })
        .map_err(event_error)?;
    events.flush().map_err(event_error)?;
    tracing::info!(
        node = %config.name,
        mode = config.mode.name(),
        term = restored_term,
        last_index,
        peer = %config.listen_peer,
        client = %config.listen_client,
        "started"
    );

    let metrics = Arc::new(Metrics::default());
    let udp = Arc::new(udp);
    let filter = FrameFilter {
        cluster: config.cluster_id,
        me: config.id,
        peers: config
            .peers
            .iter()
            .map(|peer| peer.id)
            .collect::<BTreeSet<_>>(),
        auth: Arc::new(PeerAuth::new(&config)),
    };
    let (peer_tx, peer_rx) = mpsc::channel(PEER_QUEUE);
    let (client_tx, client_rx) = mpsc::channel(CLIENT_QUEUE);
    let (status_tx, status_rx) = watch::channel(Arc::new(StatusView {
        status: replica.status(),
        stamp: start,
    }));

    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(transport::run_udp_receiver(
        udp.clone(),
        filter.clone(),
        peer_tx.clone(),
        metrics.clone(),
        config.limits.max_datagram_bytes,
    ));
    let stall = transport::StallLimits::for_election_timeout(std::time::Duration::from_millis(
        config.timing.election_timeout_max_ms,
    ));
    tasks.spawn(transport::run_tcp_listener(
        peer_listener,
        filter,
        peer_tx,
        metrics.clone(),
        config.limits.clone(),
        stall,
    ));
    let mut peer_queues = BTreeMap::new();
    // With a cluster key, outbound peer streams leave from our (specific)
    // peer address: peers check that a sender's frames come from its address.
    let outbound_source = Some(config.listen_peer.ip()).filter(|ip| {
        config.cluster_key.is_some()
            && !ip.is_unspecified()
            && config
                .peers
                .iter()
                .all(|peer| peer.addr.is_ipv4() == ip.is_ipv4())
    });
    for peer in &config.peers {
        let (queue_tx, queue_rx) = mpsc::channel(config.limits.peer_queue_frames);
        peer_queues.insert(peer.id, queue_tx);
        tasks.spawn(transport::run_outbound(
            peer.addr,
            outbound_source,
            queue_rx,
            metrics.clone(),
            config.limits.clone(),
            stall,
        ));
    }
    let api = Arc::new(client::ClientApi::new(
        config.clone(),
        metrics.clone(),
        status_rx,
        client_tx,
    ));
    tasks.spawn(client::run_listener(client_listener, api));

    let driver = Driver {
        state: DriverState::new(replica.status().leader),
        replica,
        storage,
        events,
        clock,
        config,
        metrics,
        udp,
        peer_queues,
        status_tx,
        withhold_votes,
    };
    let result = driver.run(peer_rx, client_rx, shutdown).await;
    tasks.abort_all();
    result.map_err(NodeError::from)
}
