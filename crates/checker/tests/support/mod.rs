//! Small builders for hand-written histories and event logs.
#![allow(dead_code, clippy::too_many_arguments)]
use checker::{EventKind, History, NodeEvent, Op, OpFn, OpKind};

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

    /// A complete operation; `result` is the read value for reads.
    pub fn op(
        &mut self,
        process: u64,
        f: OpFn,
        key: &str,
        value: Option<&str>,
        expected: Option<&str>,
        start: u64,
        end: Option<u64>,
        kind: OpKind,
        node: Option<&str>,
    ) -> &mut Self {
        let mut invoke = Op::new(process, OpKind::Invoke, f, key, start);
        if f != OpFn::Read {
            invoke.value = value.map(str::to_string);
        }
        invoke.expected = expected.map(str::to_string);
        invoke.node = node.map(str::to_string);
        self.push(invoke.clone());
        if let Some(end) = end {
            let mut done = invoke.complete(kind, end);
            done.value = value.map(str::to_string);
            if kind == OpKind::Fail {
                done.error = Some("not_leader".to_string());
            }
            if kind == OpKind::Info {
                done.error = Some("timeout".to_string());
            }
            self.push(done);
        }
        self
    }

    pub fn write(&mut self, p: u64, key: &str, v: &str, start: u64, end: u64) -> &mut Self {
        self.op(
            p,
            OpFn::Write,
            key,
            Some(v),
            None,
            start,
            Some(end),
            OpKind::Ok,
            None,
        )
    }

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
        self.op(
            p,
            OpFn::Write,
            key,
            Some(v),
            None,
            start,
            Some(end),
            kind,
            Some(node),
        )
    }

    pub fn write_info(&mut self, p: u64, key: &str, v: &str, start: u64, end: u64) -> &mut Self {
        self.op(
            p,
            OpFn::Write,
            key,
            Some(v),
            None,
            start,
            Some(end),
            OpKind::Info,
            None,
        )
    }

    pub fn read(&mut self, p: u64, key: &str, v: Option<&str>, start: u64, end: u64) -> &mut Self {
        self.op(
            p,
            OpFn::Read,
            key,
            v,
            None,
            start,
            Some(end),
            OpKind::Ok,
            None,
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
        self.op(
            p,
            OpFn::Cas,
            key,
            Some(v),
            Some(expected),
            start,
            Some(end),
            kind,
            None,
        )
    }

    pub fn delete(&mut self, p: u64, key: &str, start: u64, end: u64) -> &mut Self {
        self.op(
            p,
            OpFn::Delete,
            key,
            None,
            None,
            start,
            Some(end),
            OpKind::Ok,
            None,
        )
    }

    pub fn build(&mut self) -> History {
        let mut records = std::mem::take(&mut self.records);
        records.sort_by_key(|(t, seq, _)| (*t, *seq));
        History::new(records.into_iter().map(|(_, _, op)| op).collect())
    }
}

pub fn ev(node: &str, mono_ns: u64, term: u64, kind: EventKind) -> NodeEvent {
    NodeEvent::new(node, mono_ns, mono_ns, term, kind)
}
