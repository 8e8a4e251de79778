//! The Wing & Gong / Lowe linearizability search over a single register
//! (as in Porcupine and Knossos), with a time and memory budget.
//!
//! Operations are turned into call and return entries ordered by time
//! (calls before returns at equal times, which treats touching operations as
//! concurrent — the lenient reading). The search walks the entry list
//! depth-first: it linearizes any pending call before the first remaining
//! return, and backtracks when it reaches a return whose operation is not
//! linearized yet. Configurations already explored — the set of linearized
//! operations plus the register state — are memoized, which turns the
//! exponential search into one that is fast on real histories.
//!
//! Operations of unknown outcome have no return entry: they may be
//! linearized at any point after their call, or never. The search succeeds
//! once every completed operation is linearized.
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::time::Instant;

/// A register value id; [`ABSENT`] is the missing key.
pub type Value = u32;
pub const ABSENT: Value = 0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Completed read that observed the value.
    Read(Value),
    /// Unconditional write (a delete writes [`ABSENT`]).
    Write(Value),
    /// Compare-and-set: requires `expected`, then writes `new`.
    Cas { expected: Value, new: Value },
}

impl Action {
    fn apply(self, state: Value) -> Option<Value> {
        match self {
            Action::Read(value) => (value == state).then_some(state),
            Action::Write(value) => Some(value),
            Action::Cas { expected, new } => (expected == state).then_some(new),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegisterOp {
    pub action: Action,
    pub call_ns: u64,
    /// `None`: outcome unknown, may take effect any time after the call.
    pub return_ns: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub deadline: Instant,
    pub max_memo_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Linearizable,
    NotLinearizable,
    /// The budget ran out; the string says which one.
    Unknown(String),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub configurations: u64,
    pub steps: u64,
}

/// FxHash: memo keys are already well mixed bitsets; SipHash would dominate
/// the search time.
#[derive(Default)]
struct FxHasher(u64);

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(u64::from_le_bytes(chunk.try_into().expect("8-byte chunk")));
        }
        for &byte in chunks.remainder() {
            self.add(u64::from(byte));
        }
    }

    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Memo keys: the bitset of linearized operations followed by one word
/// holding the register state, so lookups can borrow the working buffer.
type Memo = HashSet<Box<[u64]>, BuildHasherDefault<FxHasher>>;

const NONE: usize = usize::MAX;

/// Doubly linked list of call/return entries that supports removing an
/// operation's pair and putting it back in reverse order (dancing links).
struct Entries {
    next: Vec<usize>,
    prev: Vec<usize>,
    /// For each entry: the operation, and whether it is the call.
    op: Vec<usize>,
    is_call: Vec<bool>,
    /// For each operation: its return entry, if any.
    return_entry: Vec<usize>,
    head: usize,
}

impl Entries {
    fn new(ops: &[RegisterOp]) -> Self {
        // (time, returns after calls, op) — calls first at equal times.
        let mut order: Vec<(u64, bool, usize)> = Vec::with_capacity(ops.len() * 2);
        for (i, op) in ops.iter().enumerate() {
            order.push((op.call_ns, false, i));
            if let Some(ret) = op.return_ns {
                order.push((ret, true, i));
            }
        }
        order.sort_unstable();
        let count = order.len();
        let head = count;
        let mut entries = Entries {
            next: vec![NONE; count + 1],
            prev: vec![NONE; count + 1],
            op: Vec::with_capacity(count),
            is_call: Vec::with_capacity(count),
            return_entry: vec![NONE; ops.len()],
            head,
        };
        let mut last = head;
        for (index, &(_, is_return, op)) in order.iter().enumerate() {
            entries.op.push(op);
            entries.is_call.push(!is_return);
            if is_return {
                entries.return_entry[op] = index;
            }
            entries.next[last] = index;
            entries.prev[index] = last;
            last = index;
        }
        entries.next[last] = NONE;
        entries
    }

    fn unlink(&mut self, entry: usize) {
        let (prev, next) = (self.prev[entry], self.next[entry]);
        self.next[prev] = next;
        if next != NONE {
            self.prev[next] = prev;
        }
    }

    fn relink(&mut self, entry: usize) {
        let (prev, next) = (self.prev[entry], self.next[entry]);
        self.next[prev] = entry;
        if next != NONE {
            self.prev[next] = entry;
        }
    }

    /// Removes the operation's call (`entry`) and return from the list.
    fn lift(&mut self, entry: usize) {
        self.unlink(entry);
        let ret = self.return_entry[self.op[entry]];
        if ret != NONE {
            self.unlink(ret);
        }
    }

    fn unlift(&mut self, entry: usize) {
        let ret = self.return_entry[self.op[entry]];
        if ret != NONE {
            self.relink(ret);
        }
        self.relink(entry);
    }
}

/// Approximate bytes one memo entry costs: the boxed bitset, the tuple in
/// the table and the table's control byte/slack.
fn memo_entry_bytes(words: usize) -> u64 {
    ((words + 1) * 8 + 40) as u64
}

/// Decides whether `ops`, starting from an absent key, are linearizable.
pub fn check(ops: &[RegisterOp], limits: &Limits) -> (Outcome, Stats) {
    let mut stats = Stats::default();
    let must_linearize = ops.iter().filter(|op| op.return_ns.is_some()).count();
    if must_linearize == 0 {
        return (Outcome::Linearizable, stats);
    }
    let mut entries = Entries::new(ops);
    let words = ops.len().div_ceil(64);
    let max_configurations = (limits.max_memo_bytes / memo_entry_bytes(words)).max(1);
    // `words` bitset words, then the candidate state in the last word.
    let mut linearized = vec![0u64; words + 1];
    let mut memo = Memo::default();
    let mut stack: Vec<(usize, Value)> = Vec::new();
    let mut state = ABSENT;
    let mut linearized_completed = 0usize;
    let mut entry = entries.next[entries.head];
    loop {
        if linearized_completed == must_linearize {
            return (Outcome::Linearizable, stats);
        }
        stats.steps += 1;
        if stats.steps % 4096 == 0 && Instant::now() >= limits.deadline {
            return (
                Outcome::Unknown(format!(
                    "time budget exhausted after {} steps and {} configurations",
                    stats.steps, stats.configurations
                )),
                stats,
            );
        }
        if entry == NONE || !entries.is_call[entry] {
            // A return of a pending operation (or the end): backtrack.
            let Some((call, previous_state)) = stack.pop() else {
                return (Outcome::NotLinearizable, stats);
            };
            let op = entries.op[call];
            linearized[op / 64] &= !(1u64 << (op % 64));
            if ops[op].return_ns.is_some() {
                linearized_completed -= 1;
            }
            state = previous_state;
            entries.unlift(call);
            entry = entries.next[call];
            continue;
        }
        let op = entries.op[entry];
        if let Some(next_state) = ops[op].action.apply(state) {
            linearized[op / 64] |= 1u64 << (op % 64);
            linearized[words] = u64::from(next_state);
            let fresh = !memo.contains(&linearized[..]);
            if fresh {
                memo.insert(linearized.clone().into_boxed_slice());
                stats.configurations += 1;
                if stats.configurations >= max_configurations {
                    return (
                        Outcome::Unknown(format!(
                            "memory budget exhausted: {} configurations (~{} MiB)",
                            stats.configurations,
                            (stats.configurations * memo_entry_bytes(words)) >> 20
                        )),
                        stats,
                    );
                }
                stack.push((entry, state));
                state = next_state;
                if ops[op].return_ns.is_some() {
                    linearized_completed += 1;
                }
                entries.lift(entry);
                entry = entries.next[entries.head];
                continue;
            }
            linearized[op / 64] &= !(1u64 << (op % 64));
        }
        entry = entries.next[entry];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limits() -> Limits {
        Limits {
            deadline: Instant::now() + Duration::from_secs(10),
            max_memo_bytes: 64 << 20,
        }
    }

    fn op(action: Action, call_ns: u64, return_ns: Option<u64>) -> RegisterOp {
        RegisterOp {
            action,
            call_ns,
            return_ns,
        }
    }

    #[test]
    fn sequential_write_then_read() {
        let ops = [
            op(Action::Write(1), 0, Some(10)),
            op(Action::Read(1), 20, Some(30)),
        ];
        assert_eq!(check(&ops, &limits()).0, Outcome::Linearizable);
    }

    #[test]
    fn stale_read_after_write_is_rejected() {
        let ops = [
            op(Action::Write(1), 0, Some(10)),
            op(Action::Write(2), 20, Some(30)),
            op(Action::Read(1), 40, Some(50)),
        ];
        assert_eq!(check(&ops, &limits()).0, Outcome::NotLinearizable);
    }

    #[test]
    fn concurrent_read_may_see_either_value() {
        let ops = [
            op(Action::Write(1), 0, Some(10)),
            op(Action::Write(2), 20, Some(50)),
            op(Action::Read(1), 25, Some(30)),
            op(Action::Read(2), 31, Some(40)),
        ];
        assert_eq!(check(&ops, &limits()).0, Outcome::Linearizable);
    }

    #[test]
    fn info_write_may_apply_late_or_never() {
        let late = [
            op(Action::Write(7), 0, None),
            op(Action::Read(ABSENT), 10, Some(20)),
            op(Action::Read(7), 30, Some(40)),
        ];
        assert_eq!(check(&late, &limits()).0, Outcome::Linearizable);
        let never = [
            op(Action::Write(7), 0, None),
            op(Action::Read(ABSENT), 10, Some(20)),
        ];
        assert_eq!(check(&never, &limits()).0, Outcome::Linearizable);
        // ...but never before its call.
        let early = [
            op(Action::Read(7), 0, Some(5)),
            op(Action::Write(7), 10, None),
        ];
        assert_eq!(check(&early, &limits()).0, Outcome::NotLinearizable);
    }

    #[test]
    fn cas_requires_the_expected_value() {
        let ok = [
            op(Action::Write(1), 0, Some(10)),
            op(
                Action::Cas {
                    expected: 1,
                    new: 2,
                },
                20,
                Some(30),
            ),
            op(Action::Read(2), 40, Some(50)),
        ];
        assert_eq!(check(&ok, &limits()).0, Outcome::Linearizable);
        let bad = [
            op(Action::Write(1), 0, Some(10)),
            op(
                Action::Cas {
                    expected: 3,
                    new: 2,
                },
                20,
                Some(30),
            ),
        ];
        assert_eq!(check(&bad, &limits()).0, Outcome::NotLinearizable);
    }
}
