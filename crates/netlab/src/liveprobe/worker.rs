//! The live probe process (`splitlab __live-probe <json>`): one per lab
//! namespace for the whole run. Every tick it sends a sequenced, timestamped
//! probe to every peer on each plane (UDP heartbeat port, a TCP replication
//! stream, a TCP client stream) and records its ticks and every probe it
//! receives, so the lab can measure what each directed link did.

use super::record::{Arrival, FRAME_LEN, Frame, SentTick};
use crate::shaping::{Planes, Ports};
use serde::{Deserialize, Serialize};
use std::io::{self, BufWriter, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::watch;

/// Hidden first argument that turns the helper executable into a live probe.
pub const LIVE_PROBE_ARG: &str = "__live-probe";

/// First byte of a TCP connection to a probe port: a probe stream follows.
pub const KIND_STREAM: u8 = 1;
/// First byte of a TCP connection to a probe port: a bulk transfer follows;
/// the probe counts bytes until EOF and answers with the count (u64 LE).
pub const KIND_BULK: u8 = 2;

/// One peer a probe talks to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbePeer {
    /// Topology index of the peer.
    pub index: u8,
    /// The peer's node address.
    pub addr: Ipv4Addr,
}

/// Everything a probe process needs (passed as one JSON argument).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveProbeConfig {
    /// The node whose namespace the probe lives in.
    pub node: String,
    /// Its topology index (carried in every frame).
    pub index: u8,
    /// Its node address (the probe binds its ports there).
    pub addr: Ipv4Addr,
    /// Every other node.
    pub peers: Vec<ProbePeer>,
    /// The plane ports (probe ports derive from them).
    pub ports: Ports,
    /// Time between ticks, microseconds.
    pub interval_us: u64,
    /// Where `<node>.sent`, `<node>.recv` and `<node>.ready` go.
    pub out_dir: PathBuf,
}

/// CLOCK_MONOTONIC in ns (the same clock in every namespace).
pub fn mono_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

/// Entry point of the hidden subcommand; returns the exit code.
pub fn live_probe_main(args: &[String]) -> i32 {
    let config: LiveProbeConfig = match args.first().map(|a| serde_json::from_str(a)) {
        Some(Ok(config)) => config,
        Some(Err(e)) => {
            eprintln!("live probe: bad config: {e}");
            return 2;
        }
        None => {
            eprintln!("live probe: missing config argument");
            return 2;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("live probe: runtime: {e}");
            return 1;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("live probe: {e}");
            1
        }
    }
}

struct Sinks {
    sent: BufWriter<std::fs::File>,
    recv: BufWriter<std::fs::File>,
}

type Shared = Arc<Mutex<Sinks>>;

fn record(sinks: &Shared, arrival: Arrival) {
    if let Ok(mut sinks) = sinks.lock() {
        let _ = sinks.recv.write_all(&arrival.encode());
    }
}

async fn run(config: LiveProbeConfig) -> io::Result<()> {
    let port = |plane| config.ports.probe_port(plane);
    let udp = Arc::new(UdpSocket::bind((config.addr, port(Planes::Heartbeat))).await?);
    let replication = TcpListener::bind((config.addr, port(Planes::Replication))).await?;
    let client = TcpListener::bind((config.addr, port(Planes::Client))).await?;
    let file =
        |ext: &str| std::fs::File::create(config.out_dir.join(format!("{}.{ext}", config.node)));
    let sinks: Shared = Arc::new(Mutex::new(Sinks {
        sent: BufWriter::new(file("sent")?),
        recv: BufWriter::new(file("recv")?),
    }));
    tokio::spawn(accept_loop(replication, Planes::Replication, sinks.clone()));
    tokio::spawn(accept_loop(client, Planes::Client, sinks.clone()));
    tokio::spawn(udp_receive(udp.clone(), sinks.clone()));
    let (tick_tx, tick_rx) = watch::channel(None::<Frame>);
    for peer in &config.peers {
        for plane in [Planes::Replication, Planes::Client] {
            let to = SocketAddr::from((peer.addr, port(plane)));
            tokio::spawn(stream_sender(to, tick_rx.clone()));
        }
    }
    std::fs::write(
        config.out_dir.join(format!("{}.ready", config.node)),
        b"ready\n",
    )?;
    let mut ticker = tokio::time::interval(Duration::from_micros(config.interval_us.max(1_000)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_flush = mono_ns();
    for seq in 0u64.. {
        ticker.tick().await;
        let at_ns = mono_ns();
        let frame = Frame {
            from: config.index,
            seq,
            sent_ns: at_ns,
        };
        let bytes = frame.encode();
        for peer in &config.peers {
            // A downed link answers ENETUNREACH: that probe is simply lost.
            let _ = udp
                .send_to(&bytes, (peer.addr, port(Planes::Heartbeat)))
                .await;
        }
        let _ = tick_tx.send(Some(frame));
        if let Ok(mut sinks) = sinks.lock() {
            sinks.sent.write_all(&SentTick { seq, at_ns }.encode())?;
            // The process is killed at teardown: flush often enough that
            // at most the last 100 ms are lost.
            if at_ns - last_flush >= 100_000_000 {
                sinks.sent.flush()?;
                sinks.recv.flush()?;
                last_flush = at_ns;
            }
        }
    }
    Ok(())
}

async fn udp_receive(udp: Arc<UdpSocket>, sinks: Shared) {
    let mut buf = [0u8; 512];
    loop {
        let Ok((len, _)) = udp.recv_from(&mut buf).await else {
            continue;
        };
        let recv_ns = mono_ns();
        let (frame, corrupted) = match Frame::decode(&buf[..len]) {
            Ok(frame) => (frame, false),
            Err(true) => (
                Frame::decode(&fixed_magic(&buf[..len])).unwrap_or(Frame {
                    from: u8::MAX,
                    seq: 0,
                    sent_ns: 0,
                }),
                true,
            ),
            Err(false) => continue,
        };
        record(
            &sinks,
            Arrival {
                from: frame.from,
                plane: Planes::Heartbeat,
                corrupted,
                seq: frame.seq,
                sent_ns: frame.sent_ns,
                recv_ns,
            },
        );
    }
}

fn fixed_magic(bytes: &[u8]) -> Vec<u8> {
    let mut fixed = bytes.to_vec();
    fixed[..4].copy_from_slice(&super::record::MAGIC);
    fixed
}

async fn accept_loop(listener: TcpListener, plane: Planes, sinks: Shared) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        tokio::spawn(serve(stream, plane, sinks.clone()));
    }
}

async fn serve(mut stream: TcpStream, plane: Planes, sinks: Shared) {
    let mut kind = [0u8; 1];
    if stream.read_exact(&mut kind).await.is_err() {
        return;
    }
    if kind[0] == KIND_BULK {
        let mut total = 0u64;
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        let _ = stream.write_all(&total.to_le_bytes()).await;
        return;
    }
    let mut buf = [0u8; FRAME_LEN];
    while stream.read_exact(&mut buf).await.is_ok() {
        let recv_ns = mono_ns();
        let (frame, corrupted) = match Frame::decode(&buf) {
            Ok(frame) => (frame, false),
            Err(_) => match Frame::decode(&fixed_magic(&buf)) {
                Ok(frame) => (frame, true),
                Err(_) => continue,
            },
        };
        record(
            &sinks,
            Arrival {
                from: frame.from,
                plane,
                corrupted,
                seq: frame.seq,
                sent_ns: frame.sent_ns,
                recv_ns,
            },
        );
    }
}

/// Keeps one TCP stream to `to` and writes the latest tick on it; while the
/// stream is blocked (a cut link) ticks are skipped, which the lab counts as
/// not delivered.
async fn stream_sender(to: SocketAddr, mut ticks: watch::Receiver<Option<Frame>>) {
    loop {
        let stream = tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(to)).await;
        let mut stream = match stream {
            Ok(Ok(stream)) => stream,
            _ => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        if stream.write_all(&[KIND_STREAM]).await.is_err() {
            continue;
        }
        loop {
            if ticks.changed().await.is_err() {
                return;
            }
            let Some(frame) = *ticks.borrow_and_update() else {
                continue;
            };
            if stream.write_all(&frame.encode()).await.is_err() {
                break;
            }
        }
    }
}
