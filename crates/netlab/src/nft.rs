//! Pure rendering of a namespace's nft table (`table ip sl_<run>`). The whole
//! table is replaced in one `nft -f` transaction, so rules never half-apply.

use crate::shaping::{Planes, Ports, basis_points};
use std::fmt::Write as _;
use std::net::Ipv4Addr;

/// One rule group of the input (receiver) chain.
#[derive(Debug, Clone, PartialEq)]
pub enum InputRule {
    /// Drop everything of `planes` from `from` (a partition).
    Drop {
        /// Sender address.
        from: Ipv4Addr,
        /// Sender name (comment).
        name: String,
        /// Traffic selection.
        planes: Planes,
    },
    /// Drop the payload-carrying packets of `planes` from `from` (a data-only
    /// partition): every UDP datagram and every TCP segment with data; pure
    /// ACKs and control segments pass.
    DropData {
        /// Sender address.
        from: Ipv4Addr,
        /// Sender name (chain name).
        name: String,
        /// Traffic selection.
        planes: Planes,
    },
    /// Random loss of `planes` from `from`; a plane-specific entry also exempts
    /// its packets from the sender's `all` entry.
    Loss {
        /// Sender address.
        from: Ipv4Addr,
        /// Sender name (chain name).
        name: String,
        /// Traffic selection.
        planes: Planes,
        /// Loss percentage (may be 0 for an exemption).
        loss_pct: f64,
    },
}

/// One rule group of the output (sender) chain.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputRule {
    /// Receiver address.
    pub to: Ipv4Addr,
    /// Receiver name (chain name).
    pub name: String,
    /// Traffic selection.
    pub planes: Planes,
    /// Duplicate percentage.
    pub duplicate_pct: f64,
    /// Corrupt percentage.
    pub corrupt_pct: f64,
}

/// Match expressions selecting `planes` (one rule per alternative: nft has no
/// OR across fields, so sport and dport get separate rules). Each plane also
/// matches its live probe port, so probes see exactly the plane's faults.
pub fn plane_matches(planes: Planes, ports: Ports) -> Vec<String> {
    let pair = |proto: &str| {
        let set = format!(
            "{{ {}, {} }}",
            ports.plane_port(planes),
            ports.probe_port(planes)
        );
        vec![
            format!("meta l4proto {proto} th dport {set}"),
            format!("meta l4proto {proto} th sport {set}"),
        ]
    };
    match planes {
        Planes::All => vec![String::new()],
        Planes::Heartbeat => pair("udp"),
        Planes::Replication | Planes::Client => pair("tcp"),
    }
}

/// One rule per match of `planes` for the packets `addr` selects
/// (`ip saddr …`), each ending in `verdict`.
fn plane_rules(script: &mut String, addr: &str, planes: Planes, ports: Ports, verdict: &str) {
    for m in plane_matches(planes, ports) {
        let _ = writeln!(script, "\t\t{} {verdict}", join(&[addr, &m]));
    }
}

/// Opens the base chain hooked at `hook` (`input`, `output`), ahead of the
/// default filter priority, accepting what no rule drops.
fn open_base_chain(script: &mut String, hook: &str) {
    let _ = writeln!(script, "\tchain {hook} {{");
    let _ = writeln!(
        script,
        "\t\ttype filter hook {hook} priority -10; policy accept;"
    );
}

/// Sends the packets `addr` selects on `planes` to `chain`, and opens that
/// chain in `chains` (the caller writes its rules and closes it).
fn open_chain(
    script: &mut String,
    chains: &mut String,
    addr: &str,
    planes: Planes,
    ports: Ports,
    chain: &str,
) {
    plane_rules(script, addr, planes, ports, &format!("jump {chain}"));
    let _ = writeln!(chains, "\tchain {chain} {{");
}

fn join(parts: &[&str]) -> String {
    parts
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Renders the `nft -f` script that atomically replaces `table ip <table>`.
/// With no rules the script only deletes the table (it is absent afterwards).
pub fn render_table(
    table: &str,
    ports: Ports,
    input: &[InputRule],
    output: &[OutputRule],
) -> String {
    let mut script = format!("table ip {table}\ndelete table ip {table}\n");
    if input.is_empty() && output.is_empty() {
        return script;
    }
    let mut chains = String::new();
    let _ = writeln!(script, "table ip {table} {{");
    open_base_chain(&mut script, "input");
    for rule in input {
        match rule {
            InputRule::Drop { from, name, planes } => {
                let saddr = format!("ip saddr {from}");
                let verdict = format!("counter drop comment \"partition {name} {planes}\"");
                plane_rules(&mut script, &saddr, *planes, ports, &verdict);
            }
            InputRule::DropData { from, name, planes } => {
                let chain = format!("data_{}_{}", chain_safe(name), planes.label());
                let saddr = format!("ip saddr {from}");
                open_chain(&mut script, &mut chains, &saddr, *planes, ports, &chain);
                let comment = format!("data-only partition {name} {planes}");
                let _ = writeln!(
                    chains,
                    "\t\tmeta l4proto udp counter drop comment \"{comment}\""
                );
                for rule in tcp_payload_matches() {
                    let _ = writeln!(chains, "\t\t{rule} counter drop comment \"{comment}\"");
                }
                let _ = writeln!(chains, "\t}}");
            }
            InputRule::Loss {
                from,
                name,
                planes,
                loss_pct,
            } => {
                let chain = format!("in_{}_{}", chain_safe(name), planes.label());
                let saddr = format!("ip saddr {from}");
                open_chain(&mut script, &mut chains, &saddr, *planes, ports, &chain);
                let bp = basis_points(*loss_pct);
                if bp > 0 {
                    let _ = writeln!(
                        chains,
                        "\t\tnumgen random mod 10000 < {bp} counter drop comment \"loss {loss_pct}%\""
                    );
                }
                let _ = writeln!(chains, "\t\tcounter accept\n\t}}");
            }
        }
    }
    let _ = writeln!(script, "\t}}");
    open_base_chain(&mut script, "output");
    for rule in output {
        let chain = format!("out_{}_{}", chain_safe(&rule.name), rule.planes.label());
        let daddr = format!("ip daddr {}", rule.to);
        open_chain(&mut script, &mut chains, &daddr, rule.planes, ports, &chain);
        let dup = basis_points(rule.duplicate_pct);
        if dup > 0 {
            let _ = writeln!(
                chains,
                "\t\tnumgen random mod 10000 < {dup} counter dup to {} comment \"duplicate {}%\"",
                rule.to, rule.duplicate_pct
            );
        }
        let corrupt = basis_points(rule.corrupt_pct);
        if corrupt > 0 {
            let _ = writeln!(
                chains,
                "\t\tnumgen random mod 10000 < {corrupt} counter @ih,0,8 set 0xab comment \"corrupt {}%\"",
                rule.corrupt_pct
            );
        }
        let _ = writeln!(chains, "\t\tcounter accept\n\t}}");
    }
    let _ = writeln!(script, "\t}}");
    script.push_str(&chains);
    script.push_str("}\n");
    script
}

/// Matches for TCP segments that carry payload. nft compares a field with
/// constants only (no `ip length > ip hdrlength + tcp doff`), so there is one
/// rule per TCP header length (`doff` 5..=15 words): payload exists when the
/// IP total length exceeds 20 + 4·doff. Packets with IP options (never sent by
/// the lab's sockets) count as data: the data-only cut fails closed.
fn tcp_payload_matches() -> Vec<String> {
    let mut rules: Vec<String> = (5..=15u32)
        .map(|doff| {
            format!(
                "ip hdrlength 5 tcp doff {doff} ip length > {}",
                20 + 4 * doff
            )
        })
        .collect();
    rules.push("meta l4proto tcp ip hdrlength != 5".into());
    rules
}

/// Node names may contain '-', which nft chain names allow only when quoted;
/// use '_' instead.
fn chain_safe(name: &str) -> String {
    name.replace('-', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_state_deletes_the_table() {
        assert_eq!(
            render_table("sl_3f9a", Ports::default(), &[], &[]),
            "table ip sl_3f9a\ndelete table ip sl_3f9a\n"
        );
    }

    #[test]
    fn data_only_partition_drops_udp_and_tcp_payload_only() {
        let input = vec![InputRule::DropData {
            from: Ipv4Addr::new(10, 77, 0, 1),
            name: "n1".into(),
            planes: Planes::Replication,
        }];
        let script = render_table("sl_3f9a", Ports::default(), &input, &[]);
        let comment = "counter drop comment \"data-only partition n1 replication\"";
        let mut expected = String::from(
            "\
table ip sl_3f9a
delete table ip sl_3f9a
table ip sl_3f9a {
\tchain input {
\t\ttype filter hook input priority -10; policy accept;
",
        );
        for m in plane_matches(Planes::Replication, Ports::default()) {
            expected.push_str(&format!(
                "\t\tip saddr 10.77.0.1 {m} jump data_n1_replication\n"
            ));
        }
        expected.push_str(
            "\t}
\tchain output {
\t\ttype filter hook output priority -10; policy accept;
\t}
\tchain data_n1_replication {
",
        );
        expected.push_str(&format!("\t\tmeta l4proto udp {comment}\n"));
        for doff in 5..=15 {
            let length = 20 + 4 * doff;
            expected.push_str(&format!(
                "\t\tip hdrlength 5 tcp doff {doff} ip length > {length} {comment}\n"
            ));
        }
        expected.push_str(&format!(
            "\t\tmeta l4proto tcp ip hdrlength != 5 {comment}\n\t}}\n}}\n"
        ));
        assert_eq!(script, expected);
    }

    #[test]
    fn snapshot_partition_loss_duplicate_corrupt() {
        let input = vec![
            InputRule::Drop {
                from: Ipv4Addr::new(10, 77, 0, 3),
                name: "n3".into(),
                planes: Planes::All,
            },
            InputRule::Drop {
                from: Ipv4Addr::new(10, 77, 0, 4),
                name: "n4".into(),
                planes: Planes::Heartbeat,
            },
            InputRule::Loss {
                from: Ipv4Addr::new(10, 77, 0, 2),
                name: "us-west".into(),
                planes: Planes::Client,
                loss_pct: 0.0,
            },
            InputRule::Loss {
                from: Ipv4Addr::new(10, 77, 0, 2),
                name: "us-west".into(),
                planes: Planes::All,
                loss_pct: 30.0,
            },
        ];
        let output = vec![OutputRule {
            to: Ipv4Addr::new(10, 77, 0, 2),
            name: "us-west".into(),
            planes: Planes::Replication,
            duplicate_pct: 10.0,
            corrupt_pct: 0.5,
        }];
        let expected = "\
table ip sl_3f9a
delete table ip sl_3f9a
table ip sl_3f9a {
\tchain input {
\t\ttype filter hook input priority -10; policy accept;
\t\tip saddr 10.77.0.3 counter drop comment \"partition n3 all\"
\t\tip saddr 10.77.0.4 meta l4proto udp th dport { 7100, 17100 } counter drop comment \"partition n4 heartbeat\"
\t\tip saddr 10.77.0.4 meta l4proto udp th sport { 7100, 17100 } counter drop comment \"partition n4 heartbeat\"
\t\tip saddr 10.77.0.2 meta l4proto tcp th dport { 7000, 17000 } jump in_us_west_client
\t\tip saddr 10.77.0.2 meta l4proto tcp th sport { 7000, 17000 } jump in_us_west_client
\t\tip saddr 10.77.0.2 jump in_us_west_all
\t}
\tchain output {
\t\ttype filter hook output priority -10; policy accept;
\t\tip daddr 10.77.0.2 meta l4proto tcp th dport { 7100, 17100 } jump out_us_west_replication
\t\tip daddr 10.77.0.2 meta l4proto tcp th sport { 7100, 17100 } jump out_us_west_replication
\t}
\tchain in_us_west_client {
\t\tcounter accept
\t}
\tchain in_us_west_all {
\t\tnumgen random mod 10000 < 3000 counter drop comment \"loss 30%\"
\t\tcounter accept
\t}
\tchain out_us_west_replication {
\t\tnumgen random mod 10000 < 1000 counter dup to 10.77.0.2 comment \"duplicate 10%\"
\t\tnumgen random mod 10000 < 50 counter @ih,0,8 set 0xab comment \"corrupt 0.5%\"
\t\tcounter accept
\t}
}
";
        assert_eq!(
            render_table("sl_3f9a", Ports::default(), &input, &output),
            expected
        );
    }
}
