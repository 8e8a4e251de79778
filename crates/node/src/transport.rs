//! Peer transport: UDP heartbeats and TCP replication on one address.
//!
//! * UDP: one frame per datagram, best effort. The receive task decodes,
//!   checks the header and `try_send`s to the driver; if the driver's queue is
//!   full the datagram is dropped and counted (`overload`), so memory stays
//!   bounded. The driver sends datagrams itself with a non-blocking
//!   `try_send_to`.
//! * TCP: every node keeps one persistent *outbound* connection per peer and
//!   sends everything for that peer over it; *inbound* connections are only
//!   read. An outbound task reconnects with exponential backoff and gives
//!   every write a deadline. An inbound task enforces the maximum frame size
//!   before reading a body, a read deadline for a frame that has started
//!   (slowloris) and an idle timeout; the first bad frame closes only that
//!   connection.
//!
//! Every rejected frame is counted in [`Metrics`] by transport and reason.
//! With a cluster key, [`PeerAuth`] first checks the claimed sender against
//! the source address, then the frame's MAC.
use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::{Instant, sleep, timeout, timeout_at};
use wire::{DecodeError, Frame, Header, Message, NodeId, Term};

use crate::config::Limits;
use crate::metrics::{Metrics, RejectReason, SendDrop, Via};
use crate::peer_auth::PeerAuth;
pub(crate) use crate::transport_socket::StallLimits;

/// A peer message that passed every header check, on its way to the driver.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Inbound {
    pub from: NodeId,
    pub term: Term,
    pub message: Message,
}

/// The header checks every frame must pass (scenario D.42).
#[derive(Debug, Clone)]
pub(crate) struct FrameFilter {
    pub cluster: u64,
    pub me: NodeId,
    pub peers: BTreeSet<NodeId>,
    /// The cluster key and the members' addresses.
    pub auth: Arc<PeerAuth>,
}

impl FrameFilter {
    pub(crate) fn check(&self, header: &Header) -> Result<(), RejectReason> {
        if header.cluster != self.cluster {
            return Err(RejectReason::Cluster);
        }
        if !self.peers.contains(&header.from) {
            return Err(RejectReason::UnknownSender);
        }
        if header.to != self.me {
            return Err(RejectReason::Misaddressed);
        }
        Ok(())
    }

    /// Decodes one datagram from `source`: exactly one frame, nothing after it.
    pub(crate) fn datagram(
        &self,
        bytes: &[u8],
        max: usize,
        source: IpAddr,
    ) -> Result<Inbound, RejectReason> {
        if bytes.len() > max {
            return Err(RejectReason::Oversized);
        }
        self.auth.check_source(bytes, source)?;
        let (frame, used) = self
            .auth
            .decode(bytes, max)
            .map_err(|error| RejectReason::from_decode(&error))?;
        if used != bytes.len() {
            return Err(RejectReason::Malformed);
        }
        self.accept(frame)
    }

    pub(crate) fn accept(&self, frame: Frame) -> Result<Inbound, RejectReason> {
        self.check(&frame.header)?;
        Ok(Inbound {
            from: frame.header.from,
            term: frame.header.term,
            message: frame.message,
        })
    }
}

/// Accumulates stream bytes and cuts frames out of them. The buffer never
/// grows past `max_frame` plus one read, because [`wire::decode`] rejects an
/// oversized length as soon as the 7-byte prefix is in.
pub(crate) struct FrameReader {
    buffer: Vec<u8>,
    max_frame: usize,
    auth: Arc<PeerAuth>,
    /// The connection's peer address, checked against each frame's sender.
    source: IpAddr,
}

impl FrameReader {
    /// An unkeyed reader (tests).
    #[cfg(test)]
    pub(crate) fn new(max_frame: usize) -> FrameReader {
        FrameReader::with_auth(max_frame, Arc::default(), IpAddr::from([127, 0, 0, 1]))
    }

    /// A reader for one connection from `source`.
    pub(crate) fn with_auth(max_frame: usize, auth: Arc<PeerAuth>, source: IpAddr) -> FrameReader {
        FrameReader {
            buffer: Vec::new(),
            max_frame,
            auth,
            source,
        }
    }

    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buffer.is_empty()
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed, or the
    /// reason the stream can never become valid.
    pub(crate) fn next_frame(&mut self) -> Result<Option<Frame>, RejectReason> {
        if self.buffer.is_empty() {
            return Ok(None);
        }
        self.auth.check_source(&self.buffer, self.source)?;
        match self.auth.decode(&self.buffer, self.max_frame) {
            Ok((frame, used)) => {
                self.buffer.drain(..used);
                Ok(Some(frame))
            }
            Err(DecodeError::Incomplete { .. }) => Ok(None),
            Err(error) => Err(RejectReason::from_decode(&error)),
        }
    }
}

/// Receives UDP datagrams until the socket fails.
pub(crate) async fn run_udp_receiver(
    socket: Arc<UdpSocket>,
    filter: FrameFilter,
    to_driver: mpsc::Sender<Inbound>,
    metrics: Arc<Metrics>,
    max_datagram: usize,
) {
    // One byte more than the maximum, so an oversized datagram is visible
    // as such instead of being silently cut by the kernel.
    let mut buffer = vec![0u8; max_datagram + 1];
    loop {
        let (received, source) = match socket.recv_from(&mut buffer).await {
            Ok((len, from)) => (len, from.ip()),
            Err(error) => {
                // ICMP errors from an earlier send (ECONNREFUSED) surface
                // here on Linux; they are not fatal for the socket.
                tracing::debug!(%error, "udp receive error");
                // Never spin on a persistent error.
                sleep(Duration::from_millis(1)).await;
                continue;
            }
        };
        match filter.datagram(&buffer[..received], max_datagram, source) {
            Ok(inbound) => match to_driver.try_send(inbound) {
                Ok(()) => metrics.accept(Via::Udp),
                Err(mpsc::error::TrySendError::Full(_)) => {
                    metrics.reject(Via::Udp, RejectReason::Overload);
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return,
            },
            Err(reason) => {
                metrics.reject(Via::Udp, reason);
                tracing::debug!(reason = reason.name(), "udp datagram rejected");
            }
        }
    }
}

/// Accepts inbound peer connections; each is served by [`serve_inbound`].
pub(crate) async fn run_tcp_listener(
    listener: TcpListener,
    filter: FrameFilter,
    to_driver: mpsc::Sender<Inbound>,
    metrics: Arc<Metrics>,
    limits: Limits,
    stall: StallLimits,
) {
    let slots = Arc::new(Semaphore::new(limits.max_inbound_connections));
    let mut backoff = Duration::from_millis(1);
    loop {
        let (stream, source) = match listener.accept().await {
            Ok((stream, from)) => {
                backoff = Duration::from_millis(1);
                stall.apply(&stream);
                (stream, from.ip())
            }
            Err(error) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(%error, "peer accept failed");
                sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            metrics.reject(Via::Tcp, RejectReason::ConnectionLimit);
            drop(stream);
            continue;
        };
        let filter = filter.clone();
        let to_driver = to_driver.clone();
        let metrics = metrics.clone();
        let limits = limits.clone();
        tokio::spawn(async move {
            serve_inbound(stream, source, filter, to_driver, &metrics, &limits).await;
            drop(permit);
        });
    }
}

/// Reads frames from one inbound peer connection until it closes or sends
/// something invalid.
pub(crate) async fn serve_inbound(
    mut stream: TcpStream,
    source: IpAddr,
    filter: FrameFilter,
    to_driver: mpsc::Sender<Inbound>,
    metrics: &Metrics,
    limits: &Limits,
) {
    let mut reader = FrameReader::with_auth(limits.max_frame_bytes, filter.auth.clone(), source);
    let mut chunk = vec![0u8; 64 * 1024];
    let idle = Duration::from_millis(limits.peer_idle_timeout_ms);
    let frame_deadline = Duration::from_millis(limits.frame_read_timeout_ms);
    // Set when the first byte of a frame arrives; the frame must be complete by then.
    let mut deadline: Option<Instant> = None;
    loop {
        loop {
            match reader.next_frame() {
                Ok(Some(frame)) => {
                    deadline = None;
                    match filter.accept(frame) {
                        Ok(inbound) => {
                            metrics.accept(Via::Tcp);
                            if to_driver.send(inbound).await.is_err() {
                                return;
                            }
                        }
                        Err(reason) => {
                            metrics.reject(Via::Tcp, reason);
                            tracing::debug!(reason = reason.name(), "tcp frame rejected; closing");
                            return;
                        }
                    }
                }
                Ok(None) => break,
                Err(reason) => {
                    metrics.reject(Via::Tcp, reason);
                    tracing::debug!(reason = reason.name(), "tcp stream rejected; closing");
                    return;
                }
            }
        }
        if reader.is_empty() {
            deadline = None;
        } else if deadline.is_none() {
            deadline = Some(Instant::now() + frame_deadline);
        }
        let read = match deadline {
            Some(at) => timeout_at(at, stream.read(&mut chunk)).await,
            None => timeout(idle, stream.read(&mut chunk)).await,
        };
        match read {
            Ok(Ok(0)) => {
                if !reader.is_empty() {
                    metrics.reject(Via::Tcp, RejectReason::Truncated);
                }
                return;
            }
            Ok(Ok(len)) => reader.push(&chunk[..len]),
            Ok(Err(_)) => return,
            Err(_elapsed) => {
                if deadline.is_some() {
                    metrics.reject(Via::Tcp, RejectReason::ReadTimeout);
                }
                return;
            }
        }
    }
}

/// Connects to `addr` from our own peer address when it is a specific one,
/// so the peer sees the address it knows us by (its cluster-key source
/// check compares them); otherwise the kernel picks the source.
async fn connect_from(local: Option<IpAddr>, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let Some(local) = local else {
        return TcpStream::connect(addr).await;
    };
    let socket = match local {
        IpAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        IpAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.bind(SocketAddr::new(local, 0))?;
    socket.connect(addr).await
}

/// Keeps one outbound connection to `addr` and writes every queued frame to
/// it. A frame whose write fails or misses its deadline is dropped (the
/// replica retransmits); the connection is then re-established with
/// exponential backoff.
pub(crate) async fn run_outbound(
    addr: SocketAddr,
    local: Option<IpAddr>,
    mut frames: mpsc::Receiver<Vec<u8>>,
    metrics: Arc<Metrics>,
    limits: Limits,
    stall: StallLimits,
) {
    let connect_deadline = Duration::from_millis(limits.connect_timeout_ms);
    let write_deadline = Duration::from_millis(limits.rpc_timeout_ms);
    let backoff_min = Duration::from_millis(limits.reconnect_backoff_min_ms);
    let backoff_max = Duration::from_millis(limits.reconnect_backoff_max_ms);
    let mut backoff = backoff_min;
    let mut batch = Vec::new();
    loop {
        let stream = match timeout(connect_deadline, connect_from(local, addr)).await {
            Ok(Ok(stream)) => stream,
            _ => {
                // While the peer is unreachable, frames wait in the bounded
                // queue; once it is full the driver drops new ones.
                if frames.is_closed() {
                    return;
                }
                sleep(backoff).await;
                backoff = (backoff * 2).min(backoff_max);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        stall.apply(&stream);
        metrics.peer_connects.fetch_add(1, Ordering::Relaxed);
        backoff = backoff_min;
        let (mut read_half, mut write_half) = stream.into_split();
        let mut discard = [0u8; 256];
        loop {
            tokio::select! {
                biased;
                // The peer never writes on this connection; a read result
                // means it closed or reset it.
                _ = read_half.read(&mut discard) => break,
                next = frames.recv() => {
                    let Some(first) = next else { return };
                    batch.clear();
                    batch.extend_from_slice(&first);
                    while batch.len() < 1 << 20 {
                        match frames.try_recv() {
                            Ok(more) => batch.extend_from_slice(&more),
                            Err(_) => break,
                        }
                    }
                    match timeout(write_deadline, write_half.write_all(&batch)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => {
                            metrics.drop_send(SendDrop::WriteError);
                            break;
                        }
                        Err(_) => {
                            metrics.drop_send(SendDrop::WriteTimeout);
                            break;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    fn filter() -> FrameFilter {
        FrameFilter {
            cluster: 7,
            me: 1,
            peers: [2, 3].into_iter().collect(),
            auth: Arc::default(),
        }
    }

    fn frame(cluster: u64, from: NodeId, to: NodeId) -> Vec<u8> {
        wire::encode_to_vec(&Frame::new(
            cluster,
            from,
            to,
            5,
            Message::Heartbeat { seq: 9, commit: 3 },
        ))
    }

    #[test]
    fn header_checks_reject_by_reason() {
        let filter = filter();
        let cases = [
            ((7, 2, 1), None),
            ((8, 2, 1), Some(RejectReason::Cluster)),
            ((7, 9, 1), Some(RejectReason::UnknownSender)),
            // From itself: not a peer.
            ((7, 1, 1), Some(RejectReason::UnknownSender)),
            ((7, 2, 3), Some(RejectReason::Misaddressed)),
        ];
        for ((cluster, from, to), rejected) in cases {
            let verdict = filter.datagram(&frame(cluster, from, to), 1400, LOCAL);
            assert_eq!(verdict.err(), rejected, "cluster {cluster}, {from} -> {to}");
        }
    }

    #[test]
    fn bad_datagrams_are_classified() {
        let filter = filter();
        let good = frame(7, 2, 1);
        let mut flipped = good.clone();
        flipped[20] ^= 1;
        let two = [good.clone(), good.clone()].concat();
        let mut version = good.clone();
        version[2] = 99;
        let cut = &good[..good.len() - 3];
        use RejectReason::{Checksum, Magic, Malformed, Oversized, Truncated, Version};
        let cases: [(&str, &[u8], usize, RejectReason); 6] = [
            ("garbage", b"garbage!", 1400, Magic),
            ("cut short", cut, 1400, Truncated),
            ("a flipped bit", &flipped, 1400, Checksum),
            ("two frames", &two, 1400, Malformed),
            ("over the maximum", &good, good.len() - 1, Oversized),
            ("version 99", &version, 1400, Version),
        ];
        for (what, bytes, max, reason) in cases {
            let verdict = filter.datagram(bytes, max, LOCAL);
            assert_eq!(verdict.err(), Some(reason), "{what}");
        }
    }

    #[test]
    fn frame_reader_handles_split_and_joined_frames() {
        let mut reader = FrameReader::new(1 << 20);
        let one = frame(7, 2, 1);
        let mut stream = one.clone();
        stream.extend_from_slice(&one);
        // Byte by byte.
        let mut frames = 0;
        for byte in &stream {
            reader.push(std::slice::from_ref(byte));
            while let Some(_frame) = reader.next_frame().unwrap() {
                frames += 1;
            }
        }
        assert_eq!(frames, 2);
        assert!(reader.is_empty());
    }

    #[test]
    fn frame_reader_rejects_a_huge_length_before_the_body() {
        let mut reader = FrameReader::new(4096);
        let mut prefix = b"SL\x01".to_vec();
        prefix.extend_from_slice(&(1u32 << 30).to_be_bytes());
        reader.push(&prefix);
        assert_eq!(reader.next_frame(), Err(RejectReason::Oversized));
    }

    proptest::proptest! {
        // 20,000 cases per property by default; SPLITNODE_FUZZ_CASES=N for a longer run.
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(
            std::env::var("SPLITNODE_FUZZ_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(20_000)
        ))]
        /// Arbitrary bytes, fed in arbitrary pieces, never panic the reader
        /// and never grow its buffer beyond the maximum plus one piece.
        #[test]
        fn frame_reader_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
                                     piece in 1usize..64) {
            let mut reader = FrameReader::new(256);
            for chunk in bytes.chunks(piece) {
                reader.push(chunk);
                match reader.next_frame() {
                    Ok(_) => {}
                    Err(_) => break,
                }
                proptest::prop_assert!(reader.buffer.len() <= 256 + piece);
            }
            let _ = filter().datagram(&bytes, 256, LOCAL);
        }

        /// Random bodies behind a valid prefix and a *correct* checksum reach
        /// the body parser; it must reject or accept without panicking, and
        /// anything accepted must re-encode to the same bytes.
        #[test]
        fn checksummed_random_bodies_never_panic(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let mut bytes = b"SL\x01".to_vec();
            bytes.extend_from_slice(&(body.len() as u32).to_be_bytes());
            bytes.extend_from_slice(&body);
            let crc = crc32fast::hash(&bytes);
            bytes.extend_from_slice(&crc.to_be_bytes());
            if let Ok((frame, used)) = wire::decode(&bytes, 4096) {
                proptest::prop_assert_eq!(used, bytes.len());
                proptest::prop_assert_eq!(wire::encode_to_vec(&frame), bytes.clone());
            }
            let mut reader = FrameReader::new(4096);
            reader.push(&bytes);
            let _ = reader.next_frame();
            let _ = filter().datagram(&bytes, 4096, LOCAL);
        }

        /// Valid frames with one corrupted byte are rejected, never accepted
        /// as a different message.
        #[test]
        fn corrupted_frames_are_rejected(position in 0usize..60, flip in 1u8..=255) {
            let good = frame(7, 2, 1);
            let mut bad = good.clone();
            let position = position % bad.len();
            bad[position] ^= flip;
            proptest::prop_assert!(filter().datagram(&bad, 1400, LOCAL).is_err());
        }
    }
}
