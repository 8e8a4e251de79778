//! Pure rendering of the NFQUEUE rules (`iptables-restore` input). The kernel
//! has no nft `queue` expression, so delay uses the xtables NFQUEUE target at
//! the RECEIVER (queuing at the sender would charge held packets to the
//! sending socket's buffer and stall its writes), in the mangle table's
//! PREROUTING chain: that runs before the nft partition rules (INPUT hook),
//! so a packet released from the queue after a partition started meets the
//! partition and is dropped instead of leaking through it. The restore
//! replaces the namespace's whole mangle table in one transaction; the
//! namespace is ours.

use crate::shaping::{Planes, Ports};
use std::fmt::Write as _;
use std::net::Ipv4Addr;

/// Packets of `planes` from `from` go to `queue`, or are accepted (`None`:
/// exempts a plane from its sender's `all` rule).
#[derive(Debug, Clone, PartialEq)]
pub struct QueueRule {
    /// Sender address.
    pub from: Ipv4Addr,
    /// Traffic selection.
    pub planes: Planes,
    /// Queue number; `None` means ACCEPT.
    pub queue: Option<u16>,
}

/// Matches selecting `planes`; each plane also matches its live probe port
/// (after the plane port), so probes see exactly the plane's faults.
fn plane_matches(planes: Planes, ports: Ports) -> Vec<String> {
    let pair = |proto: &str| {
        [ports.plane_port(planes), ports.probe_port(planes)]
            .into_iter()
            .flat_map(|port| {
                [
                    format!(" -p {proto} -m {proto} --dport {port}"),
                    format!(" -p {proto} -m {proto} --sport {port}"),
                ]
            })
            .collect()
    };
    match planes {
        Planes::All => vec![String::new()],
        Planes::Heartbeat => pair("udp"),
        Planes::Replication | Planes::Client => pair("tcp"),
    }
}

/// The full mangle table. Without `--queue-bypass`: a dead consumer turns the
/// link into a black hole rather than silently removing the delay
/// (fail-closed, see [`crate::nfqueue`]).
pub fn render_restore(ports: Ports, rules: &[QueueRule]) -> String {
    let mut out = String::from(
        "*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n\
         :OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n",
    );
    for rule in rules {
        let target = match rule.queue {
            Some(num) => format!("NFQUEUE --queue-num {num}"),
            None => "ACCEPT".to_string(),
        };
        for m in plane_matches(rule.planes, ports) {
            let _ = writeln!(out, "-A PREROUTING -s {}/32{m} -j {target}", rule.from);
        }
    }
    out.push_str("COMMIT\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot() {
        let rules = vec![
            QueueRule {
                from: Ipv4Addr::new(10, 77, 0, 1),
                planes: Planes::Heartbeat,
                queue: Some(7),
            },
            QueueRule {
                from: Ipv4Addr::new(10, 77, 0, 1),
                planes: Planes::Client,
                queue: None,
            },
            QueueRule {
                from: Ipv4Addr::new(10, 77, 0, 1),
                planes: Planes::All,
                queue: Some(8),
            },
        ];
        let expected = "\
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -s 10.77.0.1/32 -p udp -m udp --dport 7100 -j NFQUEUE --queue-num 7
-A PREROUTING -s 10.77.0.1/32 -p udp -m udp --sport 7100 -j NFQUEUE --queue-num 7
-A PREROUTING -s 10.77.0.1/32 -p udp -m udp --dport 17100 -j NFQUEUE --queue-num 7
-A PREROUTING -s 10.77.0.1/32 -p udp -m udp --sport 17100 -j NFQUEUE --queue-num 7
-A PREROUTING -s 10.77.0.1/32 -p tcp -m tcp --dport 7000 -j ACCEPT
-A PREROUTING -s 10.77.0.1/32 -p tcp -m tcp --sport 7000 -j ACCEPT
-A PREROUTING -s 10.77.0.1/32 -p tcp -m tcp --dport 17000 -j ACCEPT
-A PREROUTING -s 10.77.0.1/32 -p tcp -m tcp --sport 17000 -j ACCEPT
-A PREROUTING -s 10.77.0.1/32 -j NFQUEUE --queue-num 8
COMMIT
";
        assert_eq!(render_restore(Ports::default(), &rules), expected);
    }
}
