//! Link conditions as plain data: which traffic (plane) and what happens to it
//! (shape). Pure; rendered into nft / iptables / tc text by the backends.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Which traffic of a directed link a rule applies to. The node uses ONE peer
/// port for UDP heartbeats and TCP replication (the protocol tells the planes
/// apart) and a separate TCP client port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Planes {
    /// Every packet from the sender (any protocol, any port, ICMP included).
    All,
    /// UDP to or from the peer port.
    Heartbeat,
    /// TCP to or from the peer port.
    Replication,
    /// TCP to or from the client port.
    Client,
}

impl Planes {
    /// Planes other than `All`, in rendering order.
    pub const EACH: [Planes; 3] = [Planes::Heartbeat, Planes::Replication, Planes::Client];

    /// Short label used in names and tables.
    pub fn label(self) -> &'static str {
        match self {
            Planes::All => "all",
            Planes::Heartbeat => "heartbeat",
            Planes::Replication => "replication",
            Planes::Client => "client",
        }
    }
}

impl fmt::Display for Planes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl std::str::FromStr for Planes {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "all" => Ok(Planes::All),
            "heartbeat" | "udp" => Ok(Planes::Heartbeat),
            "replication" | "tcp" => Ok(Planes::Replication),
            "client" => Ok(Planes::Client),
            other => Err(format!(
                "unknown plane {other:?}; valid planes: all, heartbeat, replication, client"
            )),
        }
    }
}

/// The transport ports that define the planes (the same in every namespace).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ports {
    /// UDP heartbeats and TCP replication.
    pub peer: u16,
    /// TCP client (HTTP) port.
    pub client: u16,
}

/// Live probe ports sit this far above the plane port they stand for
/// (below it when that would pass 65535).
pub const PROBE_PORT_OFFSET: u16 = 10_000;

impl Ports {
    /// The port of `plane` (heartbeat and replication share the peer port;
    /// `All` has none and gives the peer port).
    pub fn plane_port(self, plane: Planes) -> u16 {
        match plane {
            Planes::Client => self.client,
            Planes::All | Planes::Heartbeat | Planes::Replication => self.peer,
        }
    }

    /// The live probe's port for `plane`: every plane match renders it next
    /// to the plane port, so fault rules treat probes like the plane.
    pub fn probe_port(self, plane: Planes) -> u16 {
        let port = self.plane_port(plane);
        port.checked_add(PROBE_PORT_OFFSET)
            .unwrap_or_else(|| port - PROBE_PORT_OFFSET)
    }
}

impl Default for Ports {
    fn default() -> Self {
        Ports {
            peer: 7100,
            client: 7000,
        }
    }
}

/// What happens to packets of a directed link. `None` / `0` fields do nothing.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkShaping {
    /// Added one-way delay, milliseconds.
    pub delay_ms: Option<f64>,
    /// Uniform jitter around the delay (± milliseconds). Without `reorder_pct`
    /// packets keep their order (each is released no earlier than the one
    /// before it), so when packets come faster than the jitter span the mean
    /// rises toward delay + jitter (measured: 20±10 ms at 1 kpps → mean 25 ms);
    /// at heartbeat rates there is no such bias.
    pub jitter_ms: Option<f64>,
    /// Percentage of packets dropped.
    pub loss_pct: Option<f64>,
    /// Percentage of packets delivered twice.
    pub duplicate_pct: Option<f64>,
    /// Percentage of packets whose first payload byte is overwritten.
    pub corrupt_pct: Option<f64>,
    /// Percentage of delayed packets sent without the delay (netem semantics),
    /// which reorders them ahead of the rest; with jitter, order is not kept.
    pub reorder_pct: Option<f64>,
    /// Bandwidth limit, kbit/s (whole directed link only).
    pub rate_kbit: Option<u64>,
}

/// Why a shape is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ShapingError {
    /// The offending field name.
    pub field: &'static str,
    /// Human explanation.
    pub reason: String,
}

/// Upper bound on delay + jitter: packets are held in userspace memory.
pub const MAX_DELAY_MS: f64 = 10_000.0;

impl LinkShaping {
    /// Checks ranges; the field name is returned so callers can point at it.
    pub fn validate(&self) -> Result<(), ShapingError> {
        let pct = |field: &'static str, value: Option<f64>| match value {
            Some(v) if !(0.0..=100.0).contains(&v) || v.is_nan() => Err(ShapingError {
                field,
                reason: format!("{v} is not a percentage in 0..=100"),
            }),
            _ => Ok(()),
        };
        pct("loss_pct", self.loss_pct)?;
        pct("duplicate_pct", self.duplicate_pct)?;
        pct("corrupt_pct", self.corrupt_pct)?;
        pct("reorder_pct", self.reorder_pct)?;
        let delay = self.delay_ms.unwrap_or(0.0);
        let jitter = self.jitter_ms.unwrap_or(0.0);
        for (field, value) in [("delay_ms", delay), ("jitter_ms", jitter)] {
            if !(0.0..=MAX_DELAY_MS).contains(&value) || value.is_nan() {
                return Err(ShapingError {
                    field,
                    reason: format!("{value} must be within 0..={MAX_DELAY_MS} ms"),
                });
            }
        }
        if jitter > delay {
            return Err(ShapingError {
                field: "jitter_ms",
                reason: format!("jitter {jitter} ms exceeds the delay {delay} ms"),
            });
        }
        if self.reorder_pct.unwrap_or(0.0) > 0.0 && delay <= 0.0 {
            return Err(ShapingError {
                field: "reorder_pct",
                reason: "reordering needs a delay to reorder against".into(),
            });
        }
        if self.rate_kbit == Some(0) {
            return Err(ShapingError {
                field: "rate_kbit",
                reason: "a zero rate is a partition; use a partition fault".into(),
            });
        }
        Ok(())
    }

    /// Fields set in `over` replace those in `self`.
    pub fn overlay(&self, over: &LinkShaping) -> LinkShaping {
        LinkShaping {
            delay_ms: over.delay_ms.or(self.delay_ms),
            jitter_ms: over.jitter_ms.or(self.jitter_ms),
            loss_pct: over.loss_pct.or(self.loss_pct),
            duplicate_pct: over.duplicate_pct.or(self.duplicate_pct),
            corrupt_pct: over.corrupt_pct.or(self.corrupt_pct),
            reorder_pct: over.reorder_pct.or(self.reorder_pct),
            rate_kbit: over.rate_kbit.or(self.rate_kbit),
        }
    }

    /// True when the shape changes nothing.
    pub fn is_noop(&self) -> bool {
        !self.needs_delay()
            && !self.needs_nft_input()
            && !self.needs_nft_output()
            && self.rate_kbit.is_none()
    }

    /// Delay, jitter or reorder: needs netem or the NFQUEUE consumer.
    pub fn needs_delay(&self) -> bool {
        self.delay_ms.unwrap_or(0.0) > 0.0 || self.jitter_ms.unwrap_or(0.0) > 0.0
    }

    /// Loss: a receiver-side nft rule.
    pub fn needs_nft_input(&self) -> bool {
        self.loss_pct.unwrap_or(0.0) > 0.0
    }

    /// Duplicate or corrupt: sender-side nft rules.
    pub fn needs_nft_output(&self) -> bool {
        self.duplicate_pct.unwrap_or(0.0) > 0.0 || self.corrupt_pct.unwrap_or(0.0) > 0.0
    }

    /// The percentage knobs that are set (above zero), by their netem names,
    /// in netem's argument order.
    pub(crate) fn percentages(&self) -> impl Iterator<Item = (&'static str, f64)> {
        [
            ("loss", self.loss_pct),
            ("duplicate", self.duplicate_pct),
            ("corrupt", self.corrupt_pct),
            ("reorder", self.reorder_pct),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value.filter(|v| *v > 0.0)?)))
    }

    /// A compact human description, e.g. `delay 50ms±5ms loss 30%`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(d) = self.delay_ms.filter(|d| *d > 0.0) {
            match self.jitter_ms.filter(|j| *j > 0.0) {
                Some(j) => parts.push(format!("delay {d}ms±{j}ms")),
                None => parts.push(format!("delay {d}ms")),
            }
        }
        for (name, v) in self.percentages() {
            parts.push(format!("{name} {v}%"));
        }
        if let Some(r) = self.rate_kbit {
            parts.push(format!("rate {r}kbit"));
        }
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(" ")
        }
    }
}

/// Percent (0..=100) as basis points out of 10 000, for `numgen random mod 10000`.
pub fn basis_points(pct: f64) -> u32 {
    (pct * 100.0).round().clamp(0.0, 10_000.0) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_field() {
        let bad = LinkShaping {
            loss_pct: Some(130.0),
            ..LinkShaping::default()
        };
        assert_eq!(bad.validate().unwrap_err().field, "loss_pct");
        let jitter = LinkShaping {
            delay_ms: Some(5.0),
            jitter_ms: Some(6.0),
            ..LinkShaping::default()
        };
        assert_eq!(jitter.validate().unwrap_err().field, "jitter_ms");
        let reorder = LinkShaping {
            reorder_pct: Some(10.0),
            ..LinkShaping::default()
        };
        assert_eq!(reorder.validate().unwrap_err().field, "reorder_pct");
        assert!(LinkShaping::default().validate().is_ok());
    }

    #[test]
    fn overlay_replaces_only_set_fields() {
        let base = LinkShaping {
            delay_ms: Some(30.0),
            loss_pct: Some(1.0),
            ..LinkShaping::default()
        };
        let fault = LinkShaping {
            loss_pct: Some(30.0),
            ..LinkShaping::default()
        };
        let merged = base.overlay(&fault);
        assert_eq!(merged.delay_ms, Some(30.0));
        assert_eq!(merged.loss_pct, Some(30.0));
        assert_eq!(merged.describe(), "delay 30ms loss 30%");
        assert!(LinkShaping::default().is_noop());
    }

    #[test]
    fn basis_points_round() {
        assert_eq!(basis_points(30.0), 3000);
        assert_eq!(basis_points(0.015), 2);
        assert_eq!(basis_points(100.0), 10_000);
    }
}
