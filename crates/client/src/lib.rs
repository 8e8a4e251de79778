//! The one client toolkit for `splitnode`, shared by the lab's runner, the
//! benches and the node's own integration tests.
//!
//! - [`http`]: a blocking HTTP/1.1 client (one-shot or keep-alive).
//! - [`ops`]: client operations and their Jepsen outcomes.
//! - [`mod@status`]: `/status` documents, leader agreement, waiting for a leader.
//! - [`prometheus`]: reading samples out of `/metrics` text.
//! - [`etcd`]: etcd's v3 HTTP/JSON gateway (operations, member status).
//! - [`redis_sentinel`]: Redis behind Sentinel (a client session that asks
//!   its sentinel for the primary, member roles).
//! - [`protocol`]: the protocols the lab speaks, one dispatch point.
//! - [`command`]: the typed `splitnode` command line (argv and environment,
//!   log level included).
#![warn(missing_docs, unreachable_pub)]

pub mod command;
pub mod etcd;
pub mod http;
pub mod ops;
pub mod prometheus;
pub mod protocol;
pub mod redis_sentinel;
pub mod status;
pub mod system;

pub use command::{LOG_ENV, Peer, SplitnodeCommand, ensure_cluster_key, find_splitnode, log_env};
pub use http::{HttpConn, Response, Transport, request, set_default_bearer};
pub use ops::{Outcome, Request, execute, interpret};
pub use prometheus::{Histogram, sample, sample_sum};
pub use protocol::{Protocol, Session};
pub use status::{
    LeaderView, NodeStatus, WaitError, agreed_leader, newest_leader, parse_status, poll_statuses,
    status, wait_for_agreed_leader,
};

/// The host's CLOCK_MONOTONIC in nanoseconds: the clock every namespace and
/// every node's event log shares.
pub fn mono_ns() -> u64 {
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always available on Linux");
    now.tv_sec() as u64 * 1_000_000_000 + now.tv_nsec() as u64
}
