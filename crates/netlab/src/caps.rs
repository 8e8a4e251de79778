//! What the running kernel and userland can do, probed in a scratch namespace
//! (never in the host's). Fault rendering picks backends from this.

use serde::{Deserialize, Serialize};

/// Kernel/userland features the fault backends need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Capabilities {
    /// `tc qdisc ... netem` works (CONFIG_NET_SCH_NETEM).
    pub netem: bool,
    /// `nft` with `numgen` works (drop, loss).
    pub nft: bool,
    /// nft `dup to` works (CONFIG_NFT_DUP_IPV4).
    pub nft_dup: bool,
    /// nft payload mangling of the inner header works (corrupt).
    pub nft_mangle: bool,
    /// `iptables -j NFQUEUE` works (CONFIG_NETFILTER_XT_TARGET_NFQUEUE + iptables).
    pub nfqueue: bool,
    /// `tc qdisc ... tbf` works (CONFIG_NET_SCH_TBF).
    pub tbf: bool,
}

impl Capabilities {
    /// Everything available (for pure tests and dry runs).
    pub fn all() -> Capabilities {
        Capabilities {
            netem: true,
            nft: true,
            nft_dup: true,
            nft_mangle: true,
            nfqueue: true,
            tbf: true,
        }
    }

    /// What this project's reference kernel has: everything but netem.
    pub fn without_netem() -> Capabilities {
        Capabilities {
            netem: false,
            ..Capabilities::all()
        }
    }
}

/// The feature a fault needed and the kernel lacked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot apply {what}: this machine lacks {missing}")]
pub struct Unsupported {
    /// The fault part, e.g. "delay 50ms on n1->n2 (all)".
    pub what: String,
    /// The missing feature(s), named as kernel config / tool.
    pub missing: String,
}
