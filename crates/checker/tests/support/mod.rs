//! Small builders for hand-written histories and event logs.
#![allow(dead_code, clippy::too_many_arguments)]
use checker::{CheckResult, EventKind, History, NodeEvent, Op, OpFn, OpKind, Verdict};

pub const MS: u64 = 1_000_000;
pub const SEC: u64 = 1_000_000_000;

/// Builds a history from complete operations, emitting invoke/complete
/// records in time order.
#[derive(Default)]
pub struct HistoryBuilder {
    records: Vec<(u64, usize, Op)>,
    seq: usize,
}

impl HistoryBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, op: Op) {
        self.records.push((op.time_ns, self.seq, op));
        self.seq += 1;
    }

    /// Records `invoke` and its completion at `end` as `kind`, carrying
    /// `value` (the value read, for reads); failures and timeouts get the
    /// error a node would give.
    fn op(&mut self, invoke: Op, value: Option<&str>, end: u64, kind: OpKind) -> &mut Self {
        self.push(invoke.clone());
        let mut done = invoke.complete(kind, end);
        done.value = value.map(str::to_string);
        done.error = match kind {
            OpKind::Fail => Some("not_leader".to_string()),
            OpKind::Info => Some("timeout".to_string()),
            _ => None,
        };
        self.push(done);
        self
    }

    pub fn write(&mut self, p: u64, key: &str, v: &str, start: u64, end: u64) -> &mut Self {
        self.writing(invoke(p, OpFn::Write, key, start), v, end, OpKind::Ok)
    }

    /// A write sent through `node` that ended as `kind`.
    pub fn write_at(
        &mut self,
        p: u64,
        key: &str,
        v: &str,
        start: u64,
        end: u64,
        node: &str,
        kind: OpKind,
    ) -> &mut Self {
        let invoke = invoke(p, OpFn::Write, key, start).with_node(node);
        self.writing(invoke, v, end, kind)
    }

    pub fn write_info(&mut self, p: u64, key: &str, v: &str, start: u64, end: u64) -> &mut Self {
        self.writing(invoke(p, OpFn::Write, key, start), v, end, OpKind::Info)
    }

    pub fn read(&mut self, p: u64, key: &str, v: Option<&str>, start: u64, end: u64) -> &mut Self {
        self.op(invoke(p, OpFn::Read, key, start), v, end, OpKind::Ok)
    }

    /// A successful read through `node`.
    pub fn read_at(
        &mut self,
        p: u64,
        key: &str,
        v: Option<&str>,
        start: u64,
        end: u64,
        node: &str,
    ) -> &mut Self {
        self.op(
            invoke(p, OpFn::Read, key, start).with_node(node),
            v,
            end,
            OpKind::Ok,
        )
    }

    pub fn cas(
        &mut self,
        p: u64,
        key: &str,
        expected: &str,
        v: &str,
        start: u64,
        end: u64,
        kind: OpKind,
    ) -> &mut Self {
        let invoke = invoke(p, OpFn::Cas, key, start).with_expected(expected);
        self.writing(invoke, v, end, kind)
    }

    /// `invoke` writing `v`, completed at `end` as `kind`.
    fn writing(&mut self, invoke: Op, v: &str, end: u64, kind: OpKind) -> &mut Self {
        self.op(invoke.with_value(v), Some(v), end, kind)
    }

    pub fn delete(&mut self, p: u64, key: &str, start: u64, end: u64) -> &mut Self {
        self.op(invoke(p, OpFn::Delete, key, start), None, end, OpKind::Ok)
    }

    pub fn build(&mut self) -> History {
        let mut records = std::mem::take(&mut self.records);
        records.sort_by_key(|(t, seq, _)| (*t, *seq));
        History::new(records.into_iter().map(|(_, _, op)| op).collect())
    }
}

fn invoke(p: u64, f: OpFn, key: &str, start: u64) -> Op {
    Op::new(p, OpKind::Invoke, f, key, start)
}

/// Asserts a check's verdict and that its first detail lines contain
/// `details`, in order.
#[track_caller]
pub fn assert_check(result: &CheckResult, verdict: Verdict, details: &[&str]) {
    assert_eq!(result.verdict, verdict, "{result:?}");
    for (line, fragment) in details.iter().enumerate() {
        assert!(result.details[line].contains(fragment), "{result:?}");
    }
}

pub fn ev(node: &str, mono_ns: u64, term: u64, kind: EventKind) -> NodeEvent {
    NodeEvent::new(node, mono_ns, mono_ns, term, kind)
}
