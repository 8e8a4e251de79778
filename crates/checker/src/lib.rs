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
//! Checks (one per file in [`checks`]): `election_safety` (I1),
//! `lease_exclusivity` (I3), `no_lost_writes` (I4), `linearizability` (I5),
//! `minority_rejects_writes` (I6), `log_agreement` (I8), `convergence`
//! (I10), `bounded_elections` (I11), `progress` (I12).
pub mod checks;
pub mod config;
pub mod event;
pub mod history;
pub mod jsonl;
pub mod operation;
pub mod report;
pub mod synthetic;
pub mod verdict;
pub mod wgl;

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
