//! splitlab checker: Jepsen-style client histories, node event logs and the
//! split-brain verdicts computed from them.
//!
//! Pure: no I/O besides the JSONL helpers, no async runtime. The same
//! checker judges the simulator's histories and the real lab's.
//!
//! ```no_run
//! use checker::{CheckConfig, CheckInput, History, check_all, load_events};
//! let history = History::load("run/history.jsonl".as_ref()).unwrap();
//! let events = load_events("run/events.jsonl".as_ref()).unwrap();
//! let config = CheckConfig::default();
//! let report = check_all(&CheckInput { history: &history, events: &events, config: &config });
//! println!("{}", report.to_json_pretty());
//! ```
//!
//! Checks (one per file in [`checks`], each with a `NAME` and a `check`
//! function returning a [`CheckResult`]; invariant ids as in the table in
//! `crates/checker/README.md`): `election_safety` (I1),
//! `lease_exclusivity` (I3), `no_lost_writes` (I4), `linearizability` (I5),
//! `minority_never_acknowledges` (I6 a), `minority_fails_fast` (I6 b),
//! `log_agreement` (I8), `convergence`
//! (I10), `bounded_elections` (I11), `progress` (I12),
//! `rejoin_without_election` (I17). [`check_all`] runs
//! them all and merges the verdicts: `invalid` if any check found a
//! violation, else `unknown` if any could not decide (budget exhausted,
//! missing evidence, malformed input, a crashed check), else `valid`.
//! A check with nothing to judge (no acknowledged write, no key, no window
//! long enough, a node's event log missing) is `unknown` with the reason,
//! never `valid`; a check that cannot apply to the system or run (no
//! partition windows, a system without leases) is `not_applicable`, listed
//! by name, and does not count toward the merged verdict.
//!
//! Modules: [`history`] and [`event`] are the JSONL record types (the
//! source of truth for the formats); [`operation`] pairs invocations with
//! completions; [`config`] holds the fault windows and bounds; [`wgl`] is
//! the linearizability search; [`synthetic`] generates deterministic
//! linearizable histories for benchmarks and tests; [`windows`] derives
//! minority sides, connected quorums and the timing bounds from a
//! connectivity snapshot (the lab and the simulator share it).

#![warn(missing_docs, unreachable_pub)]

pub mod checks;
pub mod config;
pub mod event;
pub mod failover;
pub mod fixture;
pub mod history;
pub mod jsonl;
pub mod operation;
pub mod report;
pub mod synthetic;
pub mod verdict;
pub mod wgl;
pub mod windows;

pub use config::{
    CheckConfig, ClientReach, ElectionWindow, LinearizabilityBudget, PartitionWindow, QuorumWindow,
};
pub use event::{
    EventKind, LinkDirection, NodeEvent, StepDownReason, load_events, read_events, save_events,
    write_events,
};
pub use history::{History, Op, OpFn, OpKind, Token};
pub use jsonl::JsonlError;
pub use operation::{Operation, Outcome, PairingError, pair_operations};
pub use report::{CheckInput, Report, check_all};
pub use verdict::{CheckResult, Verdict};
