//! Pairs history records into complete operations (invoke + completion).
use std::collections::BTreeMap;
use std::fmt;

use crate::history::{History, OpFn, OpKind, Token};
use crate::verdict::{CheckResult, fmt_ns};

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Took effect between invocation and completion.
    Ok,
    /// Definitely did not take effect.
    Fail,
    /// Unknown: may take effect at any time after invocation, or never. Also
    /// used for invocations that never completed.
    Info,
}

/// One client operation: an invocation and its completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// The client that ran it.
    pub process: u64,
    /// What it did.
    pub f: OpFn,
    /// The key it touched.
    pub key: String,
    /// write: value written; cas: new value; read: value read (ok only;
    /// `None` = key absent); delete: unused.
    pub value: Option<String>,
    /// cas: required current value (`None` = key must be absent).
    pub expected: Option<String>,
    /// Invocation time (reference clock, ns).
    pub invoke_ns: u64,
    /// `None` when the invocation never completed.
    pub complete_ns: Option<u64>,
    /// How it ended.
    pub outcome: Outcome,
    /// The node that answered (else the node the request was sent to).
    pub node: Option<String>,
    /// The fencing token of an acknowledged write, from the completion.
    pub token: Option<Token>,
    /// The error text of a `fail` or `info` completion.
    pub error: Option<String>,
    /// Position of the invocation record in the history (0-based).
    pub invoke_position: usize,
}

impl Operation {
    /// Time by which the operation certainly took effect or not; `None` for
    /// operations that may still take effect (info, never completed).
    pub fn definite_end_ns(&self) -> Option<u64> {
        match self.outcome {
            Outcome::Ok | Outcome::Fail => self.complete_ns,
            Outcome::Info => None,
        }
    }

    /// An acknowledged write, CAS or delete.
    pub fn is_ok_mutation(&self) -> bool {
        self.outcome == Outcome::Ok && self.f.is_mutation()
    }

    /// The value the register holds right after this mutation applies.
    pub fn resulting_value(&self) -> Option<&str> {
        match self.f {
            OpFn::Write | OpFn::Cas => self.value.as_deref(),
            OpFn::Delete | OpFn::Read | OpFn::Append => None,
        }
    }
}

fn show(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or("∅")
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{} ", self.process)?;
        match self.f {
            OpFn::Read => {
                if self.outcome == Outcome::Ok {
                    write!(f, "read({})→{}", self.key, show(&self.value))?
                } else {
                    write!(f, "read({})", self.key)?
                }
            }
            OpFn::Write => write!(f, "write({}, {})", self.key, show(&self.value))?,
            OpFn::Cas => write!(
                f,
                "cas({}, {}→{})",
                self.key,
                show(&self.expected),
                show(&self.value)
            )?,
            OpFn::Delete => write!(f, "delete({})", self.key)?,
            OpFn::Append => write!(f, "append({}, {})", self.key, show(&self.value))?,
        }
        let end = match self.complete_ns {
            Some(t) => fmt_ns(t),
            None => "never".to_string(),
        };
        let outcome = match self.outcome {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Info => "info",
        };
        write!(f, " [{} .. {}] {}", fmt_ns(self.invoke_ns), end, outcome)?;
        if let Some(node) = &self.node {
            write!(f, " @{node}")?;
        }
        if let Some(token) = self.token {
            write!(f, " token {}/{}", token.term, token.index)?;
        }
        if let Some(error) = &self.error {
            write!(f, " ({error})")?;
        }
        Ok(())
    }
}

/// A history that does not follow the invoke/complete protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairingError {
    /// A completion arrived for a process with no open invocation.
    #[error("record {position}: process {process} completes an operation it never invoked")]
    CompletionWithoutInvoke {
        /// Index of the offending record (0-based).
        position: usize,
        /// Its process.
        process: u64,
    },
    /// A process invoked a second operation before the first completed.
    #[error(
        "record {position}: process {process} invokes again while its operation from record {pending} is still open"
    )]
    InvokeWhilePending {
        /// Index of the second invocation (0-based).
        position: usize,
        /// Its process.
        process: u64,
        /// Index of the still-open invocation.
        pending: usize,
    },
    /// A completion names another function or key than its invocation.
    #[error(
        "record {position}: completion of process {process} is {got_f}({got_key}) but the open invocation (record {pending}) is {want_f}({want_key})"
    )]
    Mismatch {
        /// Index of the completion (0-based).
        position: usize,
        /// Its process.
        process: u64,
        /// Index of the open invocation.
        pending: usize,
        /// The completion's function.
        got_f: &'static str,
        /// The completion's key.
        got_key: String,
        /// The invocation's function.
        want_f: &'static str,
        /// The invocation's key.
        want_key: String,
    },
    /// A completion is timestamped before its invocation.
    #[error(
        "record {position}: completion at {complete_ns}ns is before its invocation at {invoke_ns}ns"
    )]
    TimeTravel {
        /// Index of the completion (0-based).
        position: usize,
        /// The invocation's time (ns).
        invoke_ns: u64,
        /// The completion's earlier time (ns).
        complete_ns: u64,
    },
}

/// Pairs `history` and runs `check` on its operations; a malformed history
/// makes the check named `name` `unknown` instead.
pub(crate) fn check_paired(
    name: &str,
    history: &History,
    check: impl FnOnce(&[Operation]) -> CheckResult,
) -> CheckResult {
    match pair_operations(history) {
        Ok(operations) => check(&operations),
        Err(error) => CheckResult::malformed_history(name, error),
    }
}

/// Pairs every invocation with the next completion of the same process, in
/// invocation order. Unfinished invocations become `Info`.
pub fn pair_operations(history: &History) -> Result<Vec<Operation>, PairingError> {
    let mut operations: Vec<Operation> = Vec::new();
    let mut open: BTreeMap<u64, usize> = BTreeMap::new();
    for (position, op) in history.ops.iter().enumerate() {
        match op.kind {
            OpKind::Invoke => {
                if let Some(&pending) = open.get(&op.process) {
                    return Err(PairingError::InvokeWhilePending {
                        position,
                        process: op.process,
                        pending: operations[pending].invoke_position,
                    });
                }
                open.insert(op.process, operations.len());
                operations.push(Operation {
                    process: op.process,
                    f: op.f,
                    key: op.key.clone(),
                    value: if op.f == OpFn::Read {
                        None
                    } else {
                        op.value.clone()
                    },
                    expected: op.expected.clone(),
                    invoke_ns: op.time_ns,
                    complete_ns: None,
                    outcome: Outcome::Info,
                    node: op.node.clone(),
                    token: None,
                    error: None,
                    invoke_position: position,
                });
            }
            OpKind::Ok | OpKind::Fail | OpKind::Info => {
                let Some(slot) = open.remove(&op.process) else {
                    return Err(PairingError::CompletionWithoutInvoke {
                        position,
                        process: op.process,
                    });
                };
                let operation = &mut operations[slot];
                if operation.f != op.f || operation.key != op.key {
                    return Err(PairingError::Mismatch {
                        position,
                        process: op.process,
                        pending: operation.invoke_position,
                        got_f: op.f.name(),
                        got_key: op.key.clone(),
                        want_f: operation.f.name(),
                        want_key: operation.key.clone(),
                    });
                }
                if op.time_ns < operation.invoke_ns {
                    return Err(PairingError::TimeTravel {
                        position,
                        invoke_ns: operation.invoke_ns,
                        complete_ns: op.time_ns,
                    });
                }
                operation.complete_ns = Some(op.time_ns);
                operation.outcome = match op.kind {
                    OpKind::Ok => Outcome::Ok,
                    OpKind::Fail => Outcome::Fail,
                    _ => Outcome::Info,
                };
                // A read's value is what it returned; a mutation keeps the
                // value it was invoked with unless only the completion has it.
                if op.f == OpFn::Read || operation.value.is_none() {
                    operation.value = op.value.clone();
                }
                if operation.expected.is_none() {
                    operation.expected = op.expected.clone();
                }
                if op.node.is_some() {
                    operation.node = op.node.clone();
                }
                operation.token = op.token;
                operation.error = op.error.clone();
            }
        }
    }
    Ok(operations)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Op;

    #[test]
    fn pairs_interleaved_processes_and_marks_unfinished_as_info() {
        let history = History::new(vec![
            Op::new(1, OpKind::Invoke, OpFn::Write, "a", 10).with_value("1"),
            Op::new(2, OpKind::Invoke, OpFn::Read, "a", 11),
            Op::new(2, OpKind::Ok, OpFn::Read, "a", 20).with_value("1"),
            Op::new(1, OpKind::Ok, OpFn::Write, "a", 21).with_node("n1"),
            Op::new(3, OpKind::Invoke, OpFn::Delete, "a", 30),
        ]);
        let ops = pair_operations(&history).unwrap();
        assert_eq!(ops.len(), 3);
        assert_eq!(ops[0].value.as_deref(), Some("1"));
        assert_eq!(ops[0].complete_ns, Some(21));
        assert_eq!(ops[0].node.as_deref(), Some("n1"));
        assert_eq!(ops[1].value.as_deref(), Some("1"));
        assert_eq!(ops[2].outcome, Outcome::Info);
        assert_eq!(ops[2].complete_ns, None);
        assert!(ops[0].to_string().contains("write(a, 1)"));
    }

    /// Pairs the records of one process reading: `(kind, key, time)` each.
    fn pair_reads(records: &[(OpKind, &str, u64)]) -> Result<Vec<Operation>, PairingError> {
        let ops = records
            .iter()
            .map(|(kind, key, at)| Op::new(1, *kind, OpFn::Read, *key, *at))
            .collect();
        pair_operations(&History::new(ops))
    }

    #[test]
    fn rejects_protocol_violations() {
        use OpKind::{Invoke, Ok};
        assert!(matches!(
            pair_reads(&[(Ok, "a", 1)]),
            Err(PairingError::CompletionWithoutInvoke { position: 0, .. })
        ));
        assert!(matches!(
            pair_reads(&[(Invoke, "a", 1), (Invoke, "a", 2)]),
            Err(PairingError::InvokeWhilePending { position: 1, .. })
        ));
        let err = pair_reads(&[(Invoke, "a", 1), (Ok, "b", 2)]).unwrap_err();
        assert!(err.to_string().contains("read(b)"), "{err}");
        assert!(matches!(
            pair_reads(&[(Invoke, "a", 5), (Ok, "a", 2)]),
            Err(PairingError::TimeTravel { .. })
        ));
    }
}
