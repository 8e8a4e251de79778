//! `splitnode forge`: the lab's rogue sender. It claims to be each member in
//! turn and sends frames with a huge, rising term (heartbeats over UDP, vote
//! requests and empty appends over TCP), each both without a MAC and with a
//! MAC under a wrong key, so a keyed cluster must reject every one of them.
//!
//! It has no cluster key: it is what a stranger on the network can do. The
//! lab starts it for a `forge` timeline step and kills it when the step ends.
use std::io::Write;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use wire::{ClusterKey, Frame, Message};

use crate::config::name_to_id;

/// The first forged term: far above anything a lab run reaches, so a
/// member whose term passes it has adopted a forgery.
pub const FORGED_TERM_BASE: u64 = 1_000_000;

/// `splitnode forge --cluster NAME --member n1=ADDR ... [--target n1 ...]`.
#[derive(Debug, Parser)]
#[command(
    name = "splitnode forge",
    about = "Send forged peer frames (lab fault `forge`)"
)]
struct ForgeArgs {
    /// The cluster name the members were started with (ids derive from it).
    #[arg(long)]
    cluster: String,
    /// Every member as `name=peer-address` (their ids are claimed as senders).
    #[arg(long = "member", value_parser = parse_member, required = true)]
    members: Vec<(String, SocketAddr)>,
    /// The members that receive forgeries (default: every member).
    #[arg(long = "target")]
    targets: Vec<String>,
    /// The term of the first round; each round sends one higher.
    #[arg(long, default_value_t = FORGED_TERM_BASE)]
    term: u64,
    /// Pause between rounds.
    #[arg(long, default_value_t = 50)]
    interval_ms: u64,
}

fn parse_member(text: &str) -> Result<(String, SocketAddr), String> {
    let (name, addr) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not name=address"))?;
    let addr = addr
        .parse()
        .map_err(|error| format!("{addr:?} is not an address: {error}"))?;
    Ok((name.to_string(), addr))
}

/// Entry point of `splitnode forge` (`args` starts with "forge").
pub fn main(args: impl Iterator<Item = String>) -> ExitCode {
    let args = match ForgeArgs::try_parse_from(args) {
        Ok(args) => args,
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(2);
        }
    };
    let unknown: Vec<&String> = (args.targets.iter())
        .filter(|target| !args.members.iter().any(|(name, _)| name == *target))
        .collect();
    if !unknown.is_empty() {
        eprintln!("Error: --target {unknown:?} is not a --member");
        return ExitCode::from(2);
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("Error: {error}");
            ExitCode::from(1)
        }
    }
}

/// Sends forgeries until killed; prints a count line about once a second.
fn run(args: &ForgeArgs) -> std::io::Result<()> {
    let udp = UdpSocket::bind(("0.0.0.0", 0))?;
    let mut seed = seeded::SplitMix64::new(u64::from(std::process::id()) ^ args.term);
    // A random key in the key file's text form (hex), never the cluster's.
    let wrong_secret: String = (0..4)
        .map(|_| format!("{:016x}", seed.next_u64()))
        .collect();
    let wrong_key = ClusterKey::from_secret(wrong_secret.as_bytes())
        .map_err(|error| std::io::Error::other(error.to_string()))?;
    let targets: Vec<&(String, SocketAddr)> = (args.members.iter())
        .filter(|(name, _)| args.targets.is_empty() || args.targets.contains(name))
        .collect();
    let mut counts = Counts::default();
    let mut last_report = Instant::now();
    for round in 0u64.. {
        let term = args.term.saturating_add(round);
        for (to, addr) in &targets {
            for (from, _) in args.members.iter().filter(|(name, _)| name != to) {
                for key in [None, Some(&wrong_key)] {
                    let forged =
                        |message| forged_frame(&args.cluster, from, to, term, message, key);
                    let heartbeat = forged(Message::Heartbeat {
                        seq: round + 1,
                        commit: 0,
                    });
                    counts.udp += u64::from(udp.send_to(&heartbeat, addr).is_ok());
                    let mut stream = forged(Message::Vote {
                        last_log_index: u64::MAX,
                        last_log_term: u64::MAX,
                    });
                    stream.extend(forged(Message::Append {
                        prev_log_index: 0,
                        prev_log_term: 0,
                        entries: Vec::new(),
                        leader_commit: 0,
                    }));
                    match send_tcp(*addr, &stream) {
                        Ok(()) => counts.tcp += 1,
                        Err(_) => counts.tcp_failed += 1,
                    }
                }
            }
        }
        if last_report.elapsed() >= Duration::from_secs(1) {
            println!(
                "forge: round {round} term {term}: {} udp datagrams, {} tcp streams sent, {} tcp connects failed",
                counts.udp, counts.tcp, counts.tcp_failed
            );
            std::io::stdout().flush()?;
            last_report = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(args.interval_ms));
    }
    Ok(())
}

#[derive(Debug, Default)]
struct Counts {
    udp: u64,
    tcp: u64,
    tcp_failed: u64,
}

/// One encoded frame of `cluster` claiming to come from member `from`,
/// addressed to `to` at `term`: unkeyed without `key`, else MAC'd with it.
/// (The node's auth tests send the same forgeries one at a time.)
pub fn forged_frame(
    cluster: &str,
    from: &str,
    to: &str,
    term: u64,
    message: Message,
    key: Option<&ClusterKey>,
) -> Vec<u8> {
    let frame = Frame::new(
        name_to_id(cluster),
        name_to_id(from),
        name_to_id(to),
        term,
        message,
    );
    let mut out = Vec::new();
    wire::encode_keyed(&frame, key, &mut out);
    out
}

/// One short TCP stream carrying `bytes` (a keyed member closes it at the
/// first frame it rejects).
fn send_tcp(addr: SocketAddr, bytes: &[u8]) -> std::io::Result<()> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200))?;
    stream.set_write_timeout(Some(Duration::from_millis(200)))?;
    stream.write_all(bytes)?;
    // Give the receiver a moment to read before the stream goes away.
    std::thread::sleep(Duration::from_millis(2));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forged_frames_decode_only_without_a_key_and_claim_the_member() {
        let key = ClusterKey::from_secret(b"the cluster's own secret").unwrap();
        let message = || Message::Heartbeat { seq: 1, commit: 0 };
        let plain = forged_frame("c", "n2", "n1", FORGED_TERM_BASE, message(), None);
        let (frame, _) = wire::decode(&plain, 1 << 20).unwrap();
        assert_eq!(frame.header.from, name_to_id("n2"));
        assert_eq!(frame.header.term, FORGED_TERM_BASE);
        assert_eq!(
            wire::decode_keyed(&plain, 1 << 20, Some(&key)).unwrap_err(),
            wire::DecodeError::MissingMac
        );
        let wrong = ClusterKey::from_secret(b"a stranger's guess at it").unwrap();
        let sealed = forged_frame("c", "n2", "n1", FORGED_TERM_BASE, message(), Some(&wrong));
        assert_eq!(
            wire::decode_keyed(&sealed, 1 << 20, Some(&key)).unwrap_err(),
            wire::DecodeError::BadMac
        );
    }

    #[test]
    fn members_and_targets_are_checked() {
        assert!(parse_member("n1=10.0.0.1:7100").is_ok());
        assert!(parse_member("n1").is_err());
        assert!(parse_member("n1=nowhere").is_err());
        let args = ["forge", "--cluster", "c", "--member", "n1=10.0.0.1:7100"];
        let parsed = ForgeArgs::try_parse_from(args).unwrap();
        assert_eq!(parsed.term, FORGED_TERM_BASE);
        assert!(ForgeArgs::try_parse_from(["forge", "--cluster", "c"]).is_err());
    }
}
