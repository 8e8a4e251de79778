//! Which kernel backend serves a fault on this machine, in words, for
//! `splitlab doctor`, the run console and results.json. Pure: it mirrors
//! the choices [`crate::render`] makes from the probed [`Capabilities`].

use crate::caps::Capabilities;
use crate::fault::Fault;
use crate::shaping::Planes;

/// The backend(s) that apply `fault` given `caps` ("netem", "nft drop at
/// the receiver", "NFQUEUE delay worker + nft numgen", ...), or what is
/// missing ("unsupported: ...").
pub fn backend_of(fault: &Fault, caps: &Capabilities) -> String {
    match fault {
        Fault::Partition { planes, .. } => {
            if caps.nft {
                "nft drop at the receiver".into()
            } else if *planes == Planes::All && caps.netem {
                "netem loss 100% at the sender".into()
            } else {
                "unsupported: no nftables for the ip family".into()
            }
        }
        Fault::DataPartition { .. } => {
            if caps.nft {
                "nft payload drop at the receiver (pure ACKs pass)".into()
            } else {
                "unsupported: no nftables for the ip family".into()
            }
        }
        Fault::Heal => "nft table replaced".into(),
        Fault::Shape { planes, shape, .. } => {
            // Base shaping of a single plane can still push a link to the
            // fallback path; faults on whole links are the common case.
            if caps.netem && *planes == Planes::All {
                return if shape.rate_kbit.is_some() {
                    "netem (with rate)".into()
                } else {
                    "netem".into()
                };
            }
            let mut parts: Vec<&str> = Vec::new();
            if shape.needs_nft_input() {
                parts.push("nft numgen loss at the receiver");
            }
            if shape.needs_delay() {
                parts.push("NFQUEUE delay worker at the receiver");
            }
            if shape.duplicate_pct.is_some_and(|p| p > 0.0) {
                parts.push("nft dup at the sender");
            }
            if shape.corrupt_pct.is_some_and(|p| p > 0.0) {
                parts.push("nft payload mangle at the sender");
            }
            if shape.rate_kbit.is_some() {
                parts.push("tbf at the sender");
            }
            if parts.is_empty() {
                "none (no effect)".into()
            } else {
                parts.join(" + ")
            }
        }
        Fault::Unshape => "qdiscs, nft and NFQUEUE rules replaced".into(),
        Fault::LinkDown { .. } | Fault::LinkUp { .. } => "rtnetlink link state".into(),
        Fault::Kill { .. } => "SIGKILL".into(),
        Fault::Stop { .. } => "SIGSTOP (checked: process state T)".into(),
        Fault::Cont { .. } => "SIGCONT".into(),
        Fault::Restart { .. } => "SIGKILL + spawn".into(),
    }
}

/// One line per network fault kind: the backend this machine would use
/// (`splitlab doctor` prints it).
pub fn backend_summary(caps: &Capabilities) -> Vec<(&'static str, String)> {
    use crate::shaping::LinkShaping;
    let one = vec![("a".to_string(), "b".to_string())];
    // A whole-link shape with the one knob `set` turns.
    let shape = |set: fn(&mut LinkShaping)| {
        let mut shape = LinkShaping::default();
        set(&mut shape);
        Fault::Shape {
            links: one.clone(),
            planes: Planes::All,
            shape,
        }
    };
    let cut = |planes| Fault::Partition {
        grudge: faults::Grudge::default(),
        planes,
    };
    let data_cut = Fault::DataPartition {
        grudge: faults::Grudge::default(),
        planes: Planes::All,
    };
    let kinds: Vec<(&'static str, Fault)> = vec![
        ("cut (all planes)", cut(Planes::All)),
        ("cut (one plane)", cut(Planes::Heartbeat)),
        ("one-way data-only", data_cut),
        ("loss", shape(|s| s.loss_pct = Some(20.0))),
        ("delay/jitter/reorder", shape(|s| s.delay_ms = Some(50.0))),
        ("duplicate", shape(|s| s.duplicate_pct = Some(10.0))),
        ("corrupt", shape(|s| s.corrupt_pct = Some(1.0))),
        ("rate", shape(|s| s.rate_kbit = Some(1000))),
    ];
    kinds
        .into_iter()
        .map(|(name, fault)| (name, backend_of(&fault, caps)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machine_and_a_netem_kernel_without_nft() {
        let here = backend_summary(&Capabilities::without_netem());
        let line = |list: &[(&str, String)], name: &str| {
            list.iter().find(|(n, _)| *n == name).unwrap().1.clone()
        };
        assert_eq!(line(&here, "loss"), "nft numgen loss at the receiver");
        assert_eq!(
            line(&here, "delay/jitter/reorder"),
            "NFQUEUE delay worker at the receiver"
        );
        assert_eq!(line(&here, "cut (one plane)"), "nft drop at the receiver");
        let uml = backend_summary(&Capabilities {
            nft: false,
            nft_dup: false,
            nft_mangle: false,
            nfqueue: false,
            ..Capabilities::all()
        });
        assert_eq!(line(&uml, "loss"), "netem");
        assert_eq!(
            line(&uml, "cut (all planes)"),
            "netem loss 100% at the sender"
        );
        assert!(line(&uml, "one-way data-only").starts_with("unsupported"));
    }
}
