//! Hand-written histories for tests of anything that reads them: node
//! events and acknowledged writes at whole milliseconds, so a test states a
//! failover story in the units its assertions use.
use crate::event::{EventKind, NodeEvent};
use crate::history::{Op, OpFn, OpKind};

/// Nanoseconds per millisecond.
pub const MS: u64 = 1_000_000;

/// `node` logged `kind` in `term` at `at_ms` (wall and monotonic clocks equal).
pub fn event(node: &str, at_ms: u64, term: u64, kind: EventKind) -> NodeEvent {
    NodeEvent::new(node, at_ms * MS, at_ms * MS, term, kind)
}

/// Client 1's write of `k` acknowledged at `at_ms` under `term`'s token.
pub fn write_ok(at_ms: u64, term: u64) -> Op {
    Op::new(1, OpKind::Ok, OpFn::Write, "k", at_ms * MS)
        .with_value("v")
        .with_token(term, at_ms)
}
