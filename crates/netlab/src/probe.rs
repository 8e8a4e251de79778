//! `splitlab probe`: measures every directed link of a live lab, UDP and TCP,
//! on the real plane ports, from sockets created inside the lab namespaces.
//! All namespaces share the host's monotonic clock, so one-way delay is
//! measured directly (arrival − send), not halved from a round trip.

use crate::error::NetlabError;
use crate::lab::{Lab, Target};
use crate::shape::Planes;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How hard to probe.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// UDP datagrams per directed link.
    pub udp_packets: u32,
    /// Gap between rounds of UDP datagrams (one to every peer per round).
    pub interval: Duration,
    /// Stamped messages per TCP connection.
    pub tcp_messages: u32,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Only these directed links (default: all).
    pub links: Option<Vec<(String, String)>>,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            udp_packets: 200,
            interval: Duration::from_millis(2),
            tcp_messages: 10,
            connect_timeout: Duration::from_millis(3200),
            links: None,
        }
    }
}

/// What the lab was asked to do to a link (for display next to results).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Requested {
    /// UDP (heartbeat plane) is cut.
    pub udp_cut: bool,
    /// TCP (replication plane) is cut.
    pub tcp_cut: bool,
    /// Link down.
    pub down: bool,
    /// Requested loss of the heartbeat plane, %.
    pub udp_loss_pct: f64,
    /// Requested one-way delay of the heartbeat plane, ms.
    pub udp_delay_ms: f64,
    /// Requested one-way delay of the replication plane, ms.
    pub tcp_delay_ms: f64,
}

/// Measured results of one directed link.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LinkMeasurement {
    /// Sender.
    pub from: String,
    /// Receiver.
    pub to: String,
    /// What was requested.
    pub requested: Requested,
    /// UDP datagrams sent.
    pub udp_sent: u32,
    /// Distinct UDP datagrams received.
    pub udp_received: u32,
    /// Extra copies received (duplicates).
    pub udp_duplicates: u32,
    /// Datagrams that arrived after a later-sent one (reordered).
    pub udp_reordered: u32,
    /// Datagrams whose payload arrived altered (the corrupt fault overwrites
    /// the first payload byte with 0xab).
    pub udp_corrupted: u32,
    /// Mean one-way delay of received datagrams, ms.
    pub udp_delay_mean_ms: Option<f64>,
    /// Median one-way delay, ms.
    pub udp_delay_p50_ms: Option<f64>,
    /// 99th percentile one-way delay, ms.
    pub udp_delay_p99_ms: Option<f64>,
    /// The TCP connection was established.
    pub tcp_connected: bool,
    /// Stamped TCP messages received.
    pub tcp_received: u32,
    /// Mean one-way delay of TCP messages, ms.
    pub tcp_delay_mean_ms: Option<f64>,
}

impl LinkMeasurement {
    /// UDP loss in percent.
    pub fn udp_loss_pct(&self) -> f64 {
        if self.udp_sent == 0 {
            return 0.0;
        }
        100.0 * f64::from(self.udp_sent - self.udp_received.min(self.udp_sent))
            / f64::from(self.udp_sent)
    }

    /// Reachable over UDP at all.
    pub fn udp_reachable(&self) -> bool {
        self.udp_received > 0
    }
}

type Arrivals = Arc<Mutex<BTreeMap<(usize, usize), Vec<(u32, f64)>>>>;

const MESSAGE: usize = 16;
/// The byte the corrupt fault writes (see `nft::render_table`).
const CORRUPT_MARK: usize = 0xab;
/// Gap between TCP probe messages: wide enough that a 150 ms round trip keeps
/// fewer messages in flight than the initial congestion window, so the figure
/// is the link's delay and not slow start.
const TCP_GAP: Duration = Duration::from_millis(20);

fn encode(from: usize, seq: u32, sent_ns: u64) -> [u8; MESSAGE] {
    let mut buf = [0u8; MESSAGE];
    buf[0..4].copy_from_slice(&(from as u32).to_be_bytes());
    buf[4..8].copy_from_slice(&seq.to_be_bytes());
    buf[8..16].copy_from_slice(&sent_ns.to_be_bytes());
    buf
}

fn decode(buf: &[u8]) -> Option<(usize, u32, u64)> {
    if buf.len() < MESSAGE {
        return None;
    }
    let from = u32::from_be_bytes(buf[0..4].try_into().ok()?) as usize;
    let seq = u32::from_be_bytes(buf[4..8].try_into().ok()?);
    let sent = u64::from_be_bytes(buf[8..16].try_into().ok()?);
    Some((from, seq, sent))
}

fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted.get(rank).copied()
}

/// Measures the lab's links. Binds the peer port in every node namespace, so
/// run it while no node process holds that port.
///
/// # Errors
/// Namespace entry or bind failures (e.g. the port is in use).
pub fn probe(lab: &Lab, options: &ProbeOptions) -> Result<Vec<LinkMeasurement>, NetlabError> {
    let plan = lab.plan().clone();
    let port = plan.ports.peer;
    let epoch = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let udp_arrivals: Arrivals = Arc::default();
    let tcp_arrivals: Arrivals = Arc::default();
    let wanted = |from: &str, to: &str| match &options.links {
        None => true,
        Some(list) => list.iter().any(|(f, t)| f == from && t == to),
    };
    let topology = lab.topology().clone();
    let mut pairs = Vec::new();
    for &(a, b) in &topology.links {
        for (f, t) in [(a, b), (b, a)] {
            if wanted(&topology.nodes[f].name, &topology.nodes[t].name) {
                pairs.push((f, t));
            }
        }
    }

    // The longest requested delay: late packets must still be counted.
    let state = lab.net_state().clone();
    let mut longest = 0.0f64;
    for &(f, t) in &pairs {
        let (from, to) = (&topology.nodes[f].name, &topology.nodes[t].name);
        for plane in [Planes::Heartbeat, Planes::Replication] {
            let s = state.shape_for(from, to, plane);
            longest = longest.max(s.delay_ms.unwrap_or(0.0) + s.jitter_ms.unwrap_or(0.0));
        }
    }
    let settle = Duration::from_millis(longest as u64 * 2 + 150);

    // Receivers: one UDP socket and one TCP listener per node, on the peer port.
    let mut receivers = Vec::new();
    for (index, node) in plan.nodes.iter().enumerate() {
        let addr = SocketAddr::from((node.addr, port));
        let target = Target::Node(node.name.clone());
        let udp = lab.udp_bind(&target, addr).map_err(|e| {
            NetlabError::io(
                format!("bind udp {addr} in {} (is a node running?)", node.netns),
                e,
            )
        })?;
        let tcp = lab.tcp_listen(&target, addr).map_err(|e| {
            NetlabError::io(
                format!("listen tcp {addr} in {} (is a node running?)", node.netns),
                e,
            )
        })?;
        udp.set_read_timeout(Some(Duration::from_millis(5)))
            .map_err(|e| NetlabError::io("udp timeout", e))?;
        tcp.set_nonblocking(true)
            .map_err(|e| NetlabError::io("tcp nonblocking", e))?;
        let (stop_u, arrivals_u) = (stop.clone(), udp_arrivals.clone());
        receivers.push(thread::spawn(move || {
            udp_receiver(index, udp, epoch, &stop_u, &arrivals_u)
        }));
        let (stop_t, arrivals_t) = (stop.clone(), tcp_arrivals.clone());
        receivers.push(thread::spawn(move || {
            tcp_receiver(index, tcp, epoch, &stop_t, &arrivals_t)
        }));
    }

    // Senders: per node one UDP socket; per directed link one TCP connection.
    let connected: Arc<Mutex<BTreeMap<(usize, usize), bool>>> = Arc::default();
    let mut senders = Vec::new();
    for (index, node) in plan.nodes.iter().enumerate() {
        let targets: Vec<(usize, SocketAddr)> = pairs
            .iter()
            .filter(|(f, _)| *f == index)
            .map(|&(_, t)| (t, SocketAddr::from((plan.nodes[t].addr, port))))
            .collect();
        if targets.is_empty() {
            continue;
        }
        let source = Target::Node(node.name.clone());
        let udp = lab
            .udp_bind(&source, SocketAddr::from((node.addr, 0)))
            .map_err(|e| NetlabError::io("bind udp sender", e))?;
        let (packets, interval) = (options.udp_packets, options.interval);
        let udp_targets = targets.clone();
        senders.push(thread::spawn(move || {
            for seq in 0..packets {
                for (_, addr) in &udp_targets {
                    let sent = epoch.elapsed().as_nanos() as u64;
                    // ENETUNREACH / EPERM on cut or downed links is a result, not an error.
                    let _ = udp.send_to(&encode(index, seq, sent), addr);
                }
                thread::sleep(interval);
            }
        }));
        for (to, addr) in targets {
            let ns = node.netns.clone();
            let connected = connected.clone();
            let (messages, timeout) = (options.tcp_messages, options.connect_timeout);
            senders.push(thread::spawn(move || {
                let stream =
                    crate::netns::in_netns(&ns, || TcpStream::connect_timeout(&addr, timeout));
                let Ok(Ok(mut stream)) = stream else {
                    connected.lock().unwrap().insert((index, to), false);
                    return;
                };
                connected.lock().unwrap().insert((index, to), true);
                let _ = stream.set_nodelay(true);
                for seq in 0..messages {
                    let sent = epoch.elapsed().as_nanos() as u64;
                    if stream.write_all(&encode(index, seq, sent)).is_err() {
                        break;
                    }
                    thread::sleep(TCP_GAP);
                }
                // Keep the connection open until the receivers have read everything.
                thread::sleep(settle);
            }));
        }
    }
    // Senders are done once everything is sent; then wait out the longest
    // requested delay so late packets still count.
    for handle in senders {
        let _ = handle.join();
    }
    thread::sleep(settle);
    stop.store(true, Ordering::SeqCst);
    for handle in receivers {
        let _ = handle.join();
    }

    let udp = udp_arrivals.lock().unwrap().clone();
    let tcp = tcp_arrivals.lock().unwrap().clone();
    let connected = connected.lock().unwrap().clone();
    let mut results = Vec::new();
    for &(f, t) in &pairs {
        let (from, to) = (
            topology.nodes[f].name.clone(),
            topology.nodes[t].name.clone(),
        );
        let hb = state.shape_for(&from, &to, Planes::Heartbeat);
        let repl = state.shape_for(&from, &to, Planes::Replication);
        let requested = Requested {
            udp_cut: state.cut(&from, &to, Planes::Heartbeat),
            tcp_cut: state.cut(&from, &to, Planes::Replication)
                || state.cut(&to, &from, Planes::Replication),
            down: state.is_down(&from, &to),
            udp_loss_pct: hb.loss_pct.unwrap_or(0.0),
            udp_delay_ms: hb.delay_ms.unwrap_or(0.0),
            tcp_delay_ms: repl.delay_ms.unwrap_or(0.0),
        };
        let got = udp.get(&(f, t)).cloned().unwrap_or_default();
        let mut seen = std::collections::BTreeSet::new();
        let mut delays = Vec::new();
        let (mut duplicates, mut reordered, mut corrupted) = (0, 0, 0);
        let mut highest: Option<u32> = None;
        for (seq, delay) in got {
            if delay < 0.0 {
                corrupted += 1;
                continue;
            }
            if !seen.insert(seq) {
                duplicates += 1;
                continue;
            }
            if highest.is_some_and(|h| seq < h) {
                reordered += 1;
            }
            highest = Some(highest.map_or(seq, |h| h.max(seq)));
            delays.push(delay);
        }
        delays.sort_by(f64::total_cmp);
        let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
        let mut tcp_delays: Vec<f64> = tcp
            .get(&(f, t))
            .map(|v| v.iter().map(|(_, d)| *d).collect())
            .unwrap_or_default();
        tcp_delays.sort_by(f64::total_cmp);
        results.push(LinkMeasurement {
            from,
            to,
            requested,
            udp_sent: options.udp_packets,
            udp_received: seen.len() as u32,
            udp_duplicates: duplicates,
            udp_reordered: reordered,
            udp_corrupted: corrupted,
            udp_delay_mean_ms: mean(&delays),
            udp_delay_p50_ms: percentile(&delays, 50.0),
            udp_delay_p99_ms: percentile(&delays, 99.0),
            tcp_connected: connected.get(&(f, t)).copied().unwrap_or(false),
            tcp_received: tcp_delays.len() as u32,
            tcp_delay_mean_ms: mean(&tcp_delays),
        });
    }
    Ok(results)
}

fn udp_receiver(
    me: usize,
    socket: UdpSocket,
    epoch: Instant,
    stop: &AtomicBool,
    arrivals: &Arrivals,
) {
    let mut buf = [0u8; 64];
    while !stop.load(Ordering::SeqCst) {
        match socket.recv_from(&mut buf) {
            Ok((n, _)) => {
                let now = epoch.elapsed().as_nanos() as u64;
                if let Some((from, seq, sent)) = decode(&buf[..n]) {
                    let delay_ms = now.saturating_sub(sent) as f64 / 1e6;
                    // A corrupted first byte turns the sender index into
                    // 0xab______: keep it, flagged by a negative delay.
                    let (from, delay_ms) = if from >> 24 == CORRUPT_MARK {
                        (from & 0x00ff_ffff, -1.0)
                    } else {
                        (from, delay_ms)
                    };
                    arrivals
                        .lock()
                        .unwrap()
                        .entry((from, me))
                        .or_default()
                        .push((seq, delay_ms));
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(_) => {}
        }
    }
}

fn tcp_receiver(
    me: usize,
    listener: TcpListener,
    epoch: Instant,
    stop: &AtomicBool,
    arrivals: &Arrivals,
) {
    let mut readers = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((mut stream, _)) => {
                let arrivals = arrivals.clone();
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_millis(20)));
                let stop_flag = Arc::new(AtomicBool::new(false));
                let flag = stop_flag.clone();
                readers.push((
                    stop_flag,
                    thread::spawn(move || {
                        let mut buf = [0u8; MESSAGE];
                        let mut filled = 0;
                        while !flag.load(Ordering::SeqCst) {
                            match stream.read(&mut buf[filled..]) {
                                Ok(0) => break,
                                Ok(n) => {
                                    filled += n;
                                    if filled == MESSAGE {
                                        filled = 0;
                                        let now = epoch.elapsed().as_nanos() as u64;
                                        if let Some((from, seq, sent)) = decode(&buf) {
                                            let delay_ms = now.saturating_sub(sent) as f64 / 1e6;
                                            arrivals
                                                .lock()
                                                .unwrap()
                                                .entry((from, me))
                                                .or_default()
                                                .push((seq, delay_ms));
                                        }
                                    }
                                }
                                Err(e)
                                    if matches!(
                                        e.kind(),
                                        io::ErrorKind::WouldBlock
                                            | io::ErrorKind::TimedOut
                                            | io::ErrorKind::Interrupted
                                    ) => {}
                                Err(_) => break,
                            }
                        }
                    }),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(1))
            }
            Err(_) => thread::sleep(Duration::from_millis(1)),
        }
    }
    for (flag, handle) in readers {
        flag.store(true, Ordering::SeqCst);
        let _ = handle.join();
    }
}

fn opt_ms(value: Option<f64>) -> String {
    value.map_or("-".into(), |v| format!("{v:.2}"))
}

/// A fixed-width table of requested versus achieved figures.
pub fn format_table(results: &[LinkMeasurement]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<22} {:>9} {:>9} {:>10} {:>10} {:>10} {:>10} | {:>7} {:>10} {:>10}",
        "link",
        "udp req",
        "udp got",
        "loss req%",
        "loss got%",
        "delay req",
        "delay got",
        "tcp req",
        "tcp got",
        "tcp delay"
    );
    for m in results {
        let req_udp = if m.requested.down {
            "down"
        } else if m.requested.udp_cut {
            "cut"
        } else {
            "reach"
        };
        let req_tcp = if m.requested.down {
            "down"
        } else if m.requested.tcp_cut {
            "cut"
        } else {
            "reach"
        };
        let _ = writeln!(
            out,
            "{:<22} {:>9} {:>9} {:>10.1} {:>10.1} {:>10.2} {:>10} | {:>7} {:>10} {:>10}",
            format!("{} -> {}", m.from, m.to),
            req_udp,
            if m.udp_reachable() { "reach" } else { "cut" },
            m.requested.udp_loss_pct,
            m.udp_loss_pct(),
            m.requested.udp_delay_ms,
            opt_ms(m.udp_delay_mean_ms),
            req_tcp,
            if m.tcp_connected { "reach" } else { "cut" },
            opt_ms(m.tcp_delay_mean_ms),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let buf = encode(3, 77, 123_456_789);
        assert_eq!(decode(&buf), Some((3, 77, 123_456_789)));
        assert_eq!(decode(&buf[..10]), None);
    }

    #[test]
    fn loss_and_percentiles() {
        let m = LinkMeasurement {
            udp_sent: 200,
            udp_received: 140,
            ..LinkMeasurement::default()
        };
        assert!((m.udp_loss_pct() - 30.0).abs() < 1e-9);
        assert_eq!(percentile(&[1.0, 2.0, 3.0], 50.0), Some(2.0));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
