//! splitlab checker: Jepsen-style client histories, node event logs and the
//! split-brain verdicts computed from them.
//!
//! Pure: no I/O besides the JSONL helpers, no async runtime. The same
//! checker judges the simulator's histories and the real lab's.
pub mod event;
pub mod history;
pub mod jsonl;

pub use event::{
    EventKind, LinkDirection, NodeEvent, StepDownReason, load_events, read_events, save_events,
    write_events,
};
pub use history::{History, Op, OpFn, OpKind, Token};
pub use jsonl::JsonlError;
