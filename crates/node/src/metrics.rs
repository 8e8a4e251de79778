//! Counters and the Prometheus text rendering for `GET /metrics`.
//!
//! Counters are plain atomics shared by every task (no locks). Gauges that
//! describe the replica (term, role, lease) are read from the latest
//! [`crate::driver::StatusView`] when rendering.
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why an inbound peer frame or datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RejectReason {
    /// The bytes do not start with the frame magic.
    Magic,
    Version,
    Checksum,
    Malformed,
    /// The declared length exceeds the configured maximum.
    Oversized,
    /// The stream or datagram ended in the middle of a frame.
    Truncated,
    /// A different cluster id.
    Cluster,
    /// The sender is not a member (or claims to be us).
    UnknownSender,
    /// Addressed to another node.
    Misaddressed,
    /// A started frame did not complete within the read deadline.
    ReadTimeout,
    /// The driver's inbound queue was full (datagrams only).
    Overload,
    /// Too many inbound connections.
    ConnectionLimit,
    /// An unkeyed frame at a node with a cluster key.
    MacMissing,
    /// A keyed frame whose MAC does not match our cluster key (forged, wrong key).
    MacInvalid,
    /// A keyed frame at a node without a cluster key.
    MacUnexpected,
    /// From an address that is no member's (cluster key configured).
    SourceAddress,
    /// From one member's address but claiming another member's id.
    SenderMismatch,
}

impl RejectReason {
    pub(crate) const ALL: [RejectReason; 17] = [
        RejectReason::Magic,
        RejectReason::Version,
        RejectReason::Checksum,
        RejectReason::Malformed,
        RejectReason::Oversized,
        RejectReason::Truncated,
        RejectReason::Cluster,
        RejectReason::UnknownSender,
        RejectReason::Misaddressed,
        RejectReason::ReadTimeout,
        RejectReason::Overload,
        RejectReason::ConnectionLimit,
        RejectReason::MacMissing,
        RejectReason::MacInvalid,
        RejectReason::MacUnexpected,
        RejectReason::SourceAddress,
        RejectReason::SenderMismatch,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            RejectReason::Magic => "magic",
            RejectReason::Version => "version",
            RejectReason::Checksum => "checksum",
            RejectReason::Malformed => "malformed",
            RejectReason::Oversized => "oversized",
            RejectReason::Truncated => "truncated",
            RejectReason::Cluster => "cluster",
            RejectReason::UnknownSender => "unknown_sender",
            RejectReason::Misaddressed => "misaddressed",
            RejectReason::ReadTimeout => "read_timeout",
            RejectReason::Overload => "overload",
            RejectReason::ConnectionLimit => "connection_limit",
            RejectReason::MacMissing => "mac_missing",
            RejectReason::MacInvalid => "mac_invalid",
            RejectReason::MacUnexpected => "mac_unexpected",
            RejectReason::SourceAddress => "source_address",
            RejectReason::SenderMismatch => "sender_mismatch",
        }
    }

    fn slot(self) -> usize {
        RejectReason::ALL
            .iter()
            .position(|reason| *reason == self)
            .expect("every reason is in ALL")
    }

    pub(crate) fn from_decode(error: &wire::DecodeError) -> RejectReason {
        match error {
            wire::DecodeError::Incomplete { .. } => RejectReason::Truncated,
            wire::DecodeError::TooLarge { .. } => RejectReason::Oversized,
            wire::DecodeError::UnsupportedVersion(_) => RejectReason::Version,
            wire::DecodeError::BadMagic => RejectReason::Magic,
            wire::DecodeError::BadChecksum => RejectReason::Checksum,
            wire::DecodeError::MissingMac => RejectReason::MacMissing,
            wire::DecodeError::BadMac => RejectReason::MacInvalid,
            wire::DecodeError::UnexpectedMac => RejectReason::MacUnexpected,
            _ => RejectReason::Malformed,
        }
    }
}

/// Which transport a frame arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    Udp,
    Tcp,
}

impl Via {
    fn name(self) -> &'static str {
        match self {
            Via::Udp => "udp",
            Via::Tcp => "tcp",
        }
    }
}

/// Why an outbound frame was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendDrop {
    /// The peer's TCP queue was full.
    QueueFull,
    /// The datagram would exceed `max_datagram_bytes` or the socket buffer was full.
    Datagram,
    /// A TCP write did not finish within the RPC deadline.
    WriteTimeout,
    /// A TCP write failed (connection reset, refused...).
    WriteError,
}

impl SendDrop {
    const ALL: [SendDrop; 4] = [
        SendDrop::QueueFull,
        SendDrop::Datagram,
        SendDrop::WriteTimeout,
        SendDrop::WriteError,
    ];
    fn name(self) -> &'static str {
        match self {
            SendDrop::QueueFull => "queue_full",
            SendDrop::Datagram => "datagram",
            SendDrop::WriteTimeout => "write_timeout",
            SendDrop::WriteError => "write_error",
        }
    }
}

/// Upper bounds (seconds) of the write latency histogram buckets: fine
/// below a millisecond too, where a sequential write on a local disk lands
/// (0.2-0.7 ms on the reference VM), so its p50 and p99 can be told apart.
const LATENCY_BUCKETS: [f64; 19] = [
    0.000_1, 0.000_15, 0.000_2, 0.000_3, 0.000_5, 0.000_75, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05,
    0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
];

/// Upper bounds (seconds) of the fsync histogram buckets: fine below a
/// millisecond, where a healthy disk answers, so the bench can tell the
/// node's own fsync from the floor it measured beside it.
const FSYNC_BUCKETS: [f64; 14] = [
    0.000_1, 0.000_15, 0.000_2, 0.000_25, 0.000_3, 0.000_4, 0.000_5, 0.000_75, 0.001, 0.002, 0.005,
    0.01, 0.1, 1.0,
];

/// A Prometheus histogram over `N` bucket bounds (seconds) that its owner
/// passes to every call, always the same ones.
struct Histogram<const N: usize> {
    buckets: [AtomicU64; N],
    count: AtomicU64,
    sum_ns: AtomicU64,
}

impl<const N: usize> Default for Histogram<N> {
    fn default() -> Self {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_ns: AtomicU64::new(0),
        }
    }
}

impl<const N: usize> Histogram<N> {
    fn observe(&self, bounds: &[f64; N], nanos: u64) {
        let seconds = nanos as f64 / 1e9;
        for (bucket, bound) in self.buckets.iter().zip(bounds) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(nanos, Ordering::Relaxed);
    }

    fn render(&self, bounds: &[f64; N], out: &mut String, name: &str, help: &str) {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bucket, bound) in self.buckets.iter().zip(bounds) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {}", load(bucket));
        }
        let count = load(&self.count);
        let _ = writeln!(
            out,
            "{name}_bucket{{le=\"+Inf\"}} {count}\n{name}_sum {:.9}\n{name}_count {count}",
            load(&self.sum_ns) as f64 / 1e9
        );
    }
}

#[derive(Default)]
pub(crate) struct Metrics {
    frames_rejected: [[AtomicU64; RejectReason::ALL.len()]; 2],
    frames_accepted: [AtomicU64; 2],
    sends_dropped: [AtomicU64; 4],
    pub http_bad_requests: AtomicU64,
    pub http_unauthorized: AtomicU64,
    pub http_requests: AtomicU64,
    pub leadership_changes: AtomicU64,
    pub became_leader: AtomicU64,
    pub quorum_losses: AtomicU64,
    pub elections_started: AtomicU64,
    pub stale_term_rejections: AtomicU64,
    pub pre_vote_rejections: AtomicU64,
    pub writes_ok: AtomicU64,
    pub writes_rejected: AtomicU64,
    pub writes_unknown: AtomicU64,
    pub reads_ok: AtomicU64,
    pub peer_connects: AtomicU64,
    pub votes_withheld: AtomicU64,
    pub snapshots_sent: AtomicU64,
    pub snapshot_chunks_sent: AtomicU64,
    pub snapshot_bytes_sent: AtomicU64,
    pub snapshots_installed: AtomicU64,
    pub compactions: AtomicU64,
    write_latency: Histogram<{ LATENCY_BUCKETS.len() }>,
    fsync_duration: Histogram<{ FSYNC_BUCKETS.len() }>,
}

fn via_slot(via: Via) -> usize {
    match via {
        Via::Udp => 0,
        Via::Tcp => 1,
    }
}

/// Gauges read from the replica's status at render time.
pub(crate) struct Gauges {
    pub term: u64,
    pub is_leader: bool,
    pub lease_remaining_ns: u64,
    pub quorum_reachable: bool,
    pub commit_index: u64,
    pub applied_index: u64,
    pub last_index: u64,
}

impl Metrics {
    pub(crate) fn reject(&self, via: Via, reason: RejectReason) {
        self.frames_rejected[via_slot(via)][reason.slot()].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn rejected(&self, via: Via, reason: RejectReason) -> u64 {
        self.frames_rejected[via_slot(via)][reason.slot()].load(Ordering::Relaxed)
    }

    pub(crate) fn accept(&self, via: Via) {
        self.frames_accepted[via_slot(via)].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn drop_send(&self, why: SendDrop) {
        let slot = SendDrop::ALL
            .iter()
            .position(|each| *each == why)
            .unwrap_or(0);
        self.sends_dropped[slot].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn observe_write_latency(&self, nanos: u64) {
        self.write_latency.observe(&LATENCY_BUCKETS, nanos);
    }

    /// One group-commit fsync (log and meta of one batch) took `nanos`;
    /// the histogram's count is also `splitnode_fsyncs_total`.
    pub(crate) fn observe_fsync(&self, nanos: u64) {
        self.fsync_duration.observe(&FSYNC_BUCKETS, nanos);
    }

    pub(crate) fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::with_capacity(4096);
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let mut simple = |name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        simple(
            "splitnode_term",
            "gauge",
            "Current term.",
            gauges.term.to_string(),
        );
        simple(
            "splitnode_is_leader",
            "gauge",
            "1 if this node is leader.",
            u8::from(gauges.is_leader).to_string(),
        );
        simple(
            "splitnode_lease_remaining_seconds",
            "gauge",
            "Remaining leader lease on the node's clock.",
            format!("{:.6}", gauges.lease_remaining_ns as f64 / 1e9),
        );
        simple(
            "splitnode_quorum_reachable",
            "gauge",
            "1 if a quorum is reachable.",
            u8::from(gauges.quorum_reachable).to_string(),
        );
        simple(
            "splitnode_commit_index",
            "gauge",
            "Commit index.",
            gauges.commit_index.to_string(),
        );
        simple(
            "splitnode_applied_index",
            "gauge",
            "Applied index.",
            gauges.applied_index.to_string(),
        );
        simple(
            "splitnode_last_index",
            "gauge",
            "Last log index.",
            gauges.last_index.to_string(),
        );
        let counters: [(&str, &str, &AtomicU64); 21] = [
            (
                "splitnode_leadership_changes_total",
                "Times a new leader became known to this node.",
                &self.leadership_changes,
            ),
            (
                "splitnode_became_leader_total",
                "Times this node became leader.",
                &self.became_leader,
            ),
            (
                "splitnode_quorum_losses_total",
                "Times quorum was lost.",
                &self.quorum_losses,
            ),
            (
                "splitnode_elections_started_total",
                "Elections started by this node.",
                &self.elections_started,
            ),
            (
                "splitnode_stale_term_rejections_total",
                "Messages rejected for a stale term.",
                &self.stale_term_rejections,
            ),
            (
                "splitnode_pre_vote_rejections_total",
                "PreVotes rejected by peers.",
                &self.pre_vote_rejections,
            ),
            (
                "splitnode_writes_ok_total",
                "Writes committed.",
                &self.writes_ok,
            ),
            (
                "splitnode_writes_rejected_total",
                "Writes refused (not applied).",
                &self.writes_rejected,
            ),
            (
                "splitnode_writes_unknown_total",
                "Writes with unknown outcome.",
                &self.writes_unknown,
            ),
            ("splitnode_reads_ok_total", "Reads served.", &self.reads_ok),
            (
                "splitnode_fsyncs_total",
                "Group-commit fsyncs.",
                &self.fsync_duration.count,
            ),
            (
                "splitnode_peer_connects_total",
                "Outbound peer connections established.",
                &self.peer_connects,
            ),
            (
                "splitnode_http_requests_total",
                "HTTP requests parsed.",
                &self.http_requests,
            ),
            (
                "splitnode_http_bad_requests_total",
                "Malformed, oversized or timed-out HTTP requests (answered 4xx).",
                &self.http_bad_requests,
            ),
            (
                "splitnode_http_unauthorized_total",
                "HTTP requests refused with 401 (missing or wrong bearer token).",
                &self.http_unauthorized,
            ),
            (
                "splitnode_votes_withheld_total",
                "Vote requests ignored after --join-empty.",
                &self.votes_withheld,
            ),
            (
                "splitnode_snapshots_sent_total",
                "Snapshot transfers whose final chunk went out to a follower behind the log start.",
                &self.snapshots_sent,
            ),
            (
                "splitnode_snapshot_chunks_sent_total",
                "Snapshot chunks sent, resent ones included.",
                &self.snapshot_chunks_sent,
            ),
            (
                "splitnode_snapshot_bytes_sent_total",
                "Snapshot bytes sent in chunks, resent ones included.",
                &self.snapshot_bytes_sent,
            ),
            (
                "splitnode_snapshots_installed_total",
                "Snapshots received from a leader and durably installed.",
                &self.snapshots_installed,
            ),
            (
                "splitnode_compactions_total",
                "Local snapshots stored and log prefixes dropped.",
                &self.compactions,
            ),
        ];
        for (name, help, counter) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                load(counter)
            );
        }
        let _ = writeln!(
            out,
            "# HELP splitnode_frames_accepted_total Peer frames accepted, by transport.\n\
             # TYPE splitnode_frames_accepted_total counter\n\
             splitnode_frames_accepted_total{{transport=\"udp\"}} {}\n\
             splitnode_frames_accepted_total{{transport=\"tcp\"}} {}",
            load(&self.frames_accepted[0]),
            load(&self.frames_accepted[1])
        );

        let _ = writeln!(
            out,
            "# HELP splitnode_frames_rejected_total Peer frames dropped, by transport and reason.\n\
             # TYPE splitnode_frames_rejected_total counter"
        );
        for via in [Via::Udp, Via::Tcp] {
            for reason in RejectReason::ALL {
                let _ = writeln!(
                    out,
                    "splitnode_frames_rejected_total{{transport=\"{}\",reason=\"{}\"}} {}",
                    via.name(),
                    reason.name(),
                    self.rejected(via, reason)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP splitnode_sends_dropped_total Outbound frames not sent, by reason.\n\
             # TYPE splitnode_sends_dropped_total counter"
        );
        for (why, counter) in SendDrop::ALL.iter().zip(&self.sends_dropped) {
            let _ = writeln!(
                out,
                "splitnode_sends_dropped_total{{reason=\"{}\"}} {}",
                why.name(),
                load(counter)
            );
        }

        self.write_latency.render(
            &LATENCY_BUCKETS,
            &mut out,
            "splitnode_write_latency_seconds",
            "Client write latency, request to commit.",
        );
        self.fsync_duration.render(
            &FSYNC_BUCKETS,
            &mut out,
            "splitnode_fsync_duration_seconds",
            "Group-commit fsync latency (the batch's log and meta files).",
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gauges() -> Gauges {
        Gauges {
            term: 4,
            is_leader: true,
            lease_remaining_ns: 150_000_000,
            quorum_reachable: true,
            commit_index: 9,
            applied_index: 8,
            last_index: 10,
        }
    }

    #[test]
    fn renders_counters_by_reason_and_histogram() {
        let metrics = Metrics::default();
        metrics.reject(Via::Tcp, RejectReason::Checksum);
        metrics.reject(Via::Tcp, RejectReason::Checksum);
        metrics.reject(Via::Udp, RejectReason::Oversized);
        metrics.observe_write_latency(3_000_000);
        metrics.observe_write_latency(700_000_000);
        metrics.observe_fsync(180_000);
        metrics
            .stale_term_rejections
            .fetch_add(3, Ordering::Relaxed);
        let text = metrics.render(&gauges());
        let expected = [
            "splitnode_term 4\n",
            "splitnode_is_leader 1\n",
            "splitnode_lease_remaining_seconds 0.150000\n",
            "splitnode_frames_rejected_total{transport=\"tcp\",reason=\"checksum\"} 2\n",
            "splitnode_frames_rejected_total{transport=\"udp\",reason=\"oversized\"} 1\n",
            "splitnode_stale_term_rejections_total 3\n",
            "splitnode_write_latency_seconds_bucket{le=\"0.002\"} 0\n",
            "splitnode_write_latency_seconds_bucket{le=\"0.005\"} 1\n",
            "splitnode_write_latency_seconds_bucket{le=\"1\"} 2\n",
            "splitnode_write_latency_seconds_count 2\n",
            "splitnode_fsync_duration_seconds_bucket{le=\"0.00015\"} 0\n",
            "splitnode_fsync_duration_seconds_bucket{le=\"0.0002\"} 1\n",
            "splitnode_fsync_duration_seconds_sum 0.000180000\n",
            "splitnode_fsyncs_total 1\n",
        ];
        for line in expected {
            assert!(text.contains(line), "missing {line:?} in:\n{text}");
        }
    }

    #[test]
    fn decode_errors_map_to_reasons() {
        use wire::DecodeError;
        assert_eq!(
            RejectReason::from_decode(&DecodeError::BadMagic),
            RejectReason::Magic
        );
        assert_eq!(
            RejectReason::from_decode(&DecodeError::TooLarge { len: 9, max: 1 }),
            RejectReason::Oversized
        );
        assert_eq!(
            RejectReason::from_decode(&DecodeError::Malformed("x")),
            RejectReason::Malformed
        );
    }
}
