//! The probe's traffic: stamped messages (sender, sequence, send time) and
//! the UDP and TCP receivers that record each arrival's one-way delay.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::net::{TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Arrivals per directed link `(from, to)` (node indices): `(seq, delay ms)`;
/// a negative delay marks a corrupted datagram.
pub(super) type Arrivals = Arc<Mutex<BTreeMap<(usize, usize), Vec<(u32, f64)>>>>;

/// Bytes in one stamped message.
pub(super) const MESSAGE: usize = 16;
/// The byte the corrupt fault writes (see `nft::render_table`).
const CORRUPT_MARK: usize = 0xab;

pub(super) fn encode(from: usize, seq: u32, sent_ns: u64) -> [u8; MESSAGE] {
    let mut buf = [0u8; MESSAGE];
    buf[0..4].copy_from_slice(&(from as u32).to_be_bytes());
    buf[4..8].copy_from_slice(&seq.to_be_bytes());
    buf[8..16].copy_from_slice(&sent_ns.to_be_bytes());
    buf
}

pub(super) fn decode(buf: &[u8]) -> Option<(usize, u32, u64)> {
    if buf.len() < MESSAGE {
        return None;
    }
    let from = u32::from_be_bytes(buf[0..4].try_into().ok()?) as usize;
    let seq = u32::from_be_bytes(buf[4..8].try_into().ok()?);
    let sent = u64::from_be_bytes(buf[8..16].try_into().ok()?);
    Some((from, seq, sent))
}

/// The sender, sequence number and one-way delay (ms) of `message`,
/// stamped on `epoch`'s clock and arriving now; `None` if it does not decode.
fn arrival(message: &[u8], epoch: Instant) -> Option<(usize, u32, f64)> {
    let now = epoch.elapsed().as_nanos() as u64;
    let (from, seq, sent) = decode(message)?;
    Some((from, seq, now.saturating_sub(sent) as f64 / 1e6))
}

fn record(arrivals: &Arrivals, link: (usize, usize), seq: u32, delay_ms: f64) {
    arrivals
        .lock()
        .unwrap()
        .entry(link)
        .or_default()
        .push((seq, delay_ms));
}

/// A read that timed out or was interrupted: nothing yet, try again.
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

pub(super) fn udp_receiver(
    me: usize,
    socket: UdpSocket,
    epoch: Instant,
    stop: &AtomicBool,
    arrivals: &Arrivals,
) {
    let mut buf = [0u8; 64];
    while !stop.load(Ordering::SeqCst) {
        // Any error (a read timeout, a signal, an ICMP error) just means
        // nothing arrived this time.
        if let Ok((n, _)) = socket.recv_from(&mut buf)
            && let Some((from, seq, delay_ms)) = arrival(&buf[..n], epoch)
        {
            // A corrupted first byte turns the sender index into
            // 0xab______: keep it, flagged by a negative delay.
            if from >> 24 == CORRUPT_MARK {
                record(arrivals, (from & 0x00ff_ffff, me), seq, -1.0);
            } else {
                record(arrivals, (from, me), seq, delay_ms);
            }
        }
    }
}

pub(super) fn tcp_receiver(
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
                                        if let Some((from, seq, delay_ms)) = arrival(&buf, epoch) {
                                            record(&arrivals, (from, me), seq, delay_ms);
                                        }
                                    }
                                }
                                Err(e) if is_transient(&e) => {}
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let buf = encode(3, 77, 123_456_789);
        assert_eq!(decode(&buf), Some((3, 77, 123_456_789)));
        assert_eq!(decode(&buf[..10]), None);
    }
}
