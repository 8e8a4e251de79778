//! `splitlab probe`: measures every directed link of a live lab, UDP and TCP,
//! on the real plane ports, from sockets created inside the lab namespaces.
//! All namespaces share the host's monotonic clock, so one-way delay is
//! measured directly (arrival − send), not halved from a round trip.

mod table;
mod traffic;

use crate::error::NetlabError;
use crate::fault::NetState;
use crate::lab::{Lab, Target};
use crate::shaping::Planes;
use crate::topology::Topology;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};
pub use table::format_table;
use traffic::{Arrivals, encode, tcp_receiver, udp_receiver};

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

/// Gap between TCP probe messages: wide enough that a 150 ms round trip keeps
/// fewer messages in flight than the initial congestion window, so the figure
/// is the link's delay and not slow start.
const TCP_GAP: Duration = Duration::from_millis(20);

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
    let arrived = Arrived {
        udp: &udp,
        tcp: &tcp,
        connected: &connected,
    };
    Ok(pairs
        .iter()
        .map(|&(f, t)| measure_link(&topology, &state, &arrived, options.udp_packets, f, t))
        .collect())
}

/// Everything the receivers recorded, per directed link of node indices.
struct Arrived<'a> {
    udp: &'a BTreeMap<(usize, usize), Vec<(u32, f64)>>,
    tcp: &'a BTreeMap<(usize, usize), Vec<(u32, f64)>>,
    connected: &'a BTreeMap<(usize, usize), bool>,
}

/// The figures of directed link `f → t` (node indices) next to what the lab
/// was asked to do to it.
fn measure_link(
    topology: &Topology,
    state: &NetState,
    arrived: &Arrived<'_>,
    udp_sent: u32,
    f: usize,
    t: usize,
) -> LinkMeasurement {
    let (from, to) = (
        topology.nodes[f].name.clone(),
        topology.nodes[t].name.clone(),
    );
    let hb = state.shape_for(&from, &to, Planes::Heartbeat);
    let repl = state.shape_for(&from, &to, Planes::Replication);
    let requested = Requested {
        udp_cut: state.cut(&from, &to, Planes::Heartbeat),
        // A full cut either way breaks the connection (no SYN or no
        // SYN-ACK); a data-only cut from → to lets it connect but carries no
        // data this way.
        tcp_cut: state.cut(&from, &to, Planes::Replication)
            || state.cut(&to, &from, Planes::Replication)
            || state.data_cut(&from, &to, Planes::Replication),
        down: state.is_down(&from, &to),
        udp_loss_pct: hb.loss_pct.unwrap_or(0.0),
        udp_delay_ms: hb.delay_ms.unwrap_or(0.0),
        tcp_delay_ms: repl.delay_ms.unwrap_or(0.0),
    };
    let got = arrived.udp.get(&(f, t)).cloned().unwrap_or_default();
    let mut seen = BTreeSet::new();
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
    let mut tcp_delays: Vec<f64> = arrived
        .tcp
        .get(&(f, t))
        .map(|v| v.iter().map(|(_, d)| *d).collect())
        .unwrap_or_default();
    tcp_delays.sort_by(f64::total_cmp);
    LinkMeasurement {
        from,
        to,
        requested,
        udp_sent,
        udp_received: seen.len() as u32,
        udp_duplicates: duplicates,
        udp_reordered: reordered,
        udp_corrupted: corrupted,
        udp_delay_mean_ms: mean(&delays),
        udp_delay_p50_ms: figures::percentile(&delays, 0.50),
        udp_delay_p99_ms: figures::percentile(&delays, 0.99),
        tcp_connected: arrived.connected.get(&(f, t)).copied().unwrap_or(false),
        tcp_received: tcp_delays.len() as u32,
        tcp_delay_mean_ms: mean(&tcp_delays),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_in_percent() {
        let m = LinkMeasurement {
            udp_sent: 200,
            udp_received: 140,
            ..LinkMeasurement::default()
        };
        assert!((m.udp_loss_pct() - 30.0).abs() < 1e-9);
    }
}
