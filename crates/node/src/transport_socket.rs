//! Socket options of peer TCP streams: keepalive and `TCP_USER_TIMEOUT`, so
//! a stream a one-way fault stalled is torn down and reconnected instead of
//! sitting out TCP's retransmission backoff after the heal.
use std::time::Duration;

use tokio::net::TcpStream;

/// How soon a peer stream that stopped making progress is torn down: a
/// one-way fault can leave a connection "established" while the data sits
/// unacknowledged, and TCP's own retransmission backoff would then hold the
/// stream for many seconds after the heal. With `TCP_USER_TIMEOUT` the
/// kernel drops the connection once sent data stays unacknowledged (or
/// keepalive probes stay unanswered) for `user_timeout`, and the outbound
/// task reconnects at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StallLimits {
    /// Unacknowledged data (or probes) for this long kill the connection.
    pub user_timeout: Duration,
    /// Idle time before the first keepalive probe, and between probes.
    pub keepalive: Duration,
}

impl StallLimits {
    /// About one election timeout: a stream that has not delivered for that
    /// long is as good as a partition, and a fresh connection after the heal
    /// resumes replication at once instead of after TCP's backoff.
    pub(crate) fn for_election_timeout(election_timeout_max: Duration) -> StallLimits {
        StallLimits {
            user_timeout: election_timeout_max,
            // Keepalive timing has whole-second granularity in the kernel.
            keepalive: Duration::from_secs(1),
        }
    }

    /// Applies keepalive and `TCP_USER_TIMEOUT` to a peer stream. Failures
    /// are logged, not fatal: the stream still works, only slower to notice
    /// a stall.
    pub(crate) fn apply(&self, stream: &TcpStream) {
        let socket = socket2::SockRef::from(stream);
        let keepalive = socket2::TcpKeepalive::new()
            .with_time(self.keepalive)
            .with_interval(self.keepalive)
            .with_retries(3);
        let result = socket
            .set_tcp_keepalive(&keepalive)
            .and_then(|()| socket.set_tcp_user_timeout(Some(self.user_timeout)));
        if let Err(error) = result {
            tracing::warn!(%error, "peer socket: keepalive/TCP_USER_TIMEOUT not set");
        }
    }
}
