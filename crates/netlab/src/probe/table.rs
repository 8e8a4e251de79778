//! The probe's report: a fixed-width table of requested versus achieved
//! figures per directed link (what `splitlab probe` prints).

use super::LinkMeasurement;
use std::fmt::Write as _;

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
        // What was asked of one plane: the link down, that plane cut, or
        // reachable.
        let requested = |cut: bool| match (m.requested.down, cut) {
            (true, _) => "down",
            (false, true) => "cut",
            (false, false) => "reach",
        };
        let (req_udp, req_tcp) = (
            requested(m.requested.udp_cut),
            requested(m.requested.tcp_cut),
        );
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
