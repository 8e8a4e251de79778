//! Jepsen-style client histories: `invoke` / `ok` / `fail` / `info` records.
//!
//! A history is the flat list of records in the order they happened. Every
//! client operation is an `invoke` followed (later, by the same `process`) by
//! exactly one completion: `ok` (it took effect), `fail` (it definitely did
//! not take effect) or `info` (unknown: a timeout — it may take effect at any
//! time after the invocation, or never). An invocation that never completes
//! is treated as `info`.
//!
//! JSONL form, one record per line:
//!
//! ```json
//! {"process":3,"type":"invoke","f":"cas","key":"k1","value":"7","expected":"6","time_ns":1200}
//! {"process":3,"type":"ok","f":"cas","key":"k1","value":"7","expected":"6","time_ns":5400,"node":"n2","token":{"term":4,"index":17}}
//! ```
//!
//! Field meaning per operation:
//! - `read`: `value` on the `ok` is the value read; absent/`null` = key absent.
//! - `write`: `value` is the value written (on the invoke; may be repeated on
//!   the completion).
//! - `cas`: `expected` is the required current value (absent = key must be
//!   absent), `value` the new value. `fail` means it was not applied.
//! - `delete`: removes the key; `value`/`expected` unused.
use std::io::{Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::jsonl::{self, JsonlError};

/// Record type of a history entry (`"type"` in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    /// The client sent the request.
    Invoke,
    /// It took effect.
    Ok,
    /// It definitely did not take effect.
    Fail,
    /// Outcome unknown (timeout, lost connection).
    Info,
}

/// The client function (`"f"` in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpFn {
    /// Read one key.
    Read,
    /// Set a key unconditionally.
    Write,
    /// Compare-and-set a key.
    Cas,
    /// Remove a key.
    Delete,
    /// Append a unique element (`value`) to a key's list; a read of the key
    /// returns the elements joined by single spaces.
    Append,
}

impl OpFn {
    /// Whether the operation can change the register.
    pub fn is_mutation(self) -> bool {
        !matches!(self, OpFn::Read)
    }

    /// The `"f"` value in JSON.
    pub fn name(self) -> &'static str {
        match self {
            OpFn::Read => "read",
            OpFn::Write => "write",
            OpFn::Cas => "cas",
            OpFn::Delete => "delete",
            OpFn::Append => "append",
        }
    }
}

/// Separates the elements of a list value a read returns for a key built
/// by [`OpFn::Append`] (the same separator as `wire::LIST_SEPARATOR`).
pub const LIST_SEPARATOR: char = ' ';

/// Fencing token of a committed write: `(term, index)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Token {
    /// Term of the leader that committed the write.
    pub term: u64,
    /// Log index of the write.
    pub index: u64,
}

/// One history record.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    /// Client (logical process) id; invoke and completion share it.
    pub process: u64,
    /// Invocation or which completion (`"type"` in JSON).
    #[serde(rename = "type")]
    pub kind: OpKind,
    /// The client function.
    pub f: OpFn,
    /// The key operated on.
    pub key: String,
    /// Value written, CAS target, or value read (see the module docs).
    pub value: Option<String>,
    /// CAS only: the value required now (absent: the key must be absent).
    pub expected: Option<String>,
    /// Reference (true monotonic) clock, nanoseconds.
    pub time_ns: u64,
    /// The node that served (or was sent) the request.
    pub node: Option<String>,
    /// Where an acknowledged write committed, as the server reported it.
    pub token: Option<Token>,
    /// Why a request failed or has an unknown outcome.
    pub error: Option<String>,
}

impl Op {
    /// A record with no optional fields set; use the `with_*` builders.
    pub fn new(process: u64, kind: OpKind, f: OpFn, key: impl Into<String>, time_ns: u64) -> Self {
        Op {
            process,
            kind,
            f,
            key: key.into(),
            value: None,
            expected: None,
            time_ns,
            node: None,
            token: None,
            error: None,
        }
    }

    /// Sets `value`.
    pub fn with_value(mut self, value: impl Into<String>) -> Self {
        self.value = Some(value.into());
        self
    }

    /// Sets `expected`.
    pub fn with_expected(mut self, expected: impl Into<String>) -> Self {
        self.expected = Some(expected.into());
        self
    }

    /// Sets `node`.
    pub fn with_node(mut self, node: impl Into<String>) -> Self {
        self.node = Some(node.into());
        self
    }

    /// Sets `token` to `(term, index)`.
    pub fn with_token(mut self, term: u64, index: u64) -> Self {
        self.token = Some(Token { term, index });
        self
    }

    /// Sets `error`.
    pub fn with_error(mut self, error: impl Into<String>) -> Self {
        self.error = Some(error.into());
        self
    }

    /// The same operation completed with `kind` at `time_ns`, keeping the
    /// invocation's arguments (handy for drivers and tests).
    pub fn complete(&self, kind: OpKind, time_ns: u64) -> Self {
        Op {
            kind,
            time_ns,
            ..self.clone()
        }
    }
}

/// A client history: records in the order they were observed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct History {
    /// The records, oldest first.
    pub ops: Vec<Op>,
}

impl History {
    /// Wraps records already in observation order.
    pub fn new(ops: Vec<Op>) -> Self {
        History { ops }
    }

    /// Appends a record; callers push in the order they observe.
    pub fn push(&mut self, op: Op) {
        self.ops.push(op);
    }

    /// Number of records (invocations and completions).
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// No records at all.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Reads a JSONL history; parse errors name the line.
    pub fn load(path: &Path) -> Result<Self, JsonlError> {
        jsonl::load(path).map(History::new)
    }

    /// Writes the history to `path` as JSONL.
    pub fn save(&self, path: &Path) -> Result<(), JsonlError> {
        jsonl::save(path, &self.ops)
    }

    /// Reads a JSONL history from a stream.
    pub fn read_jsonl(reader: impl Read) -> Result<Self, JsonlError> {
        jsonl::read_from(reader, "<history>").map(History::new)
    }

    /// Writes the history as JSONL to a stream.
    pub fn write_jsonl(&self, writer: impl Write) -> Result<(), JsonlError> {
        jsonl::write_to(writer, &self.ops, "<history>")
    }

    /// The history as one JSONL string (tests, small dumps).
    pub fn to_jsonl_string(&self) -> String {
        let mut buf = Vec::new();
        self.write_jsonl(&mut buf)
            .expect("writing JSON to memory cannot fail");
        String::from_utf8(buf).expect("serde_json writes UTF-8")
    }
}

impl From<Vec<Op>> for History {
    fn from(ops: Vec<Op>) -> Self {
        History::new(ops)
    }
}
