//! The Wing & Gong / Lowe linearizability search over a single register
//! (as in Porcupine and Knossos), with a time and memory budget.
//!
//! The search is depth-first. At each configuration the candidates are the
//! pending operations invoked no later than the earliest pending return
//! (calls before returns at equal times, which treats touching operations
//! as concurrent — the lenient reading); if none of them applies, the
//! search backtracks. Configurations already explored — the set of
//! linearized operations plus the register state — are memoized (Lowe's
//! improvement), which turns the exponential search into one that is fast
//! on real histories. Two register-specific refinements keep branching low
//! under contention: candidates are tried earliest-deadline first, and a
//! read that matches the current state is linearized without branching.
//!
//! Operations of unknown outcome have no return entry: they may be
//! linearized at any point after their call, or never. The search succeeds
//! once every completed operation is linearized.
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::time::Instant;

/// A register value id; [`ABSENT`] is the missing key.
pub type Value = u32;
/// The register state of a missing key, and the initial state.
pub const ABSENT: Value = 0;
/// Stands for every written value that no read or CAS ever observes; such
/// values are interchangeable, and sharing one id lets the memo merge them.
pub const UNSEEN: Value = Value::MAX;

/// What an operation does to the register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Completed read that observed the value.
    Read(Value),
    /// Unconditional write (a delete writes [`ABSENT`]).
    Write(Value),
    /// Compare-and-set: requires `expected`, then writes `new`.
    Cas {
        /// The state the register must hold.
        expected: Value,
        /// The state written when it does.
        new: Value,
    },
}

impl Effect {
    fn apply(self, state: Value) -> Option<Value> {
        match self {
            Effect::Read(value) => (value == state).then_some(state),
            Effect::Write(value) => Some(value),
            Effect::Cas { expected, new } => (expected == state).then_some(new),
        }
    }
}

/// One operation of the single-register history the search runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegisterOp {
    /// Its effect.
    pub effect: Effect,
    /// Invocation time (reference clock, ns).
    pub call_ns: u64,
    /// `None`: outcome unknown, may take effect any time after the call.
    pub return_ns: Option<u64>,
}

/// The search's budget; running out yields [`Outcome::Unknown`].
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Give up at this instant (checked every 4096 steps).
    pub deadline: Instant,
    /// Approximate memory the memo table may use, in bytes.
    pub max_memo_bytes: u64,
}

/// The search's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// An order exists that explains every completed operation.
    Linearizable,
    /// No order exists: the history is wrong.
    NotLinearizable,
    /// The budget ran out; the string says which one.
    Unknown(String),
}

/// How much work a search did (for reports and benchmarks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Distinct configurations stored in the memo table.
    pub configurations: u64,
    /// Iterations of the search loop (each tries to extend or backtrack).
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

/// The operations not linearized yet, in two dancing-links lists: by call
/// time (to find the candidates) and, for completed operations, by return
/// time (the earliest pending return bounds the candidates). Removal and
/// reinsertion happen in LIFO order, as the depth-first search needs.
struct Pending {
    call_next: Vec<usize>,
    call_prev: Vec<usize>,
    return_next: Vec<usize>,
    return_prev: Vec<usize>,
    /// Sentinel index of both lists.
    head: usize,
}

impl Pending {
    fn new(ops: &[RegisterOp]) -> Self {
        let n = ops.len();
        let mut by_call: Vec<usize> = (0..n).collect();
        by_call.sort_by_key(|&i| (ops[i].call_ns, i));
        let mut by_return: Vec<usize> = (0..n).filter(|&i| ops[i].return_ns.is_some()).collect();
        by_return.sort_by_key(|&i| (ops[i].return_ns, i));
        let mut pending = Pending {
            call_next: vec![NONE; n + 1],
            call_prev: vec![NONE; n + 1],
            return_next: vec![NONE; n + 1],
            return_prev: vec![NONE; n + 1],
            head: n,
        };
        Self::chain(&mut pending.call_next, &mut pending.call_prev, n, &by_call);
        Self::chain(
            &mut pending.return_next,
            &mut pending.return_prev,
            n,
            &by_return,
        );
        pending
    }

    fn chain(next: &mut [usize], prev: &mut [usize], head: usize, order: &[usize]) {
        let mut last = head;
        for &i in order {
            next[last] = i;
            prev[i] = last;
            last = i;
        }
        next[last] = NONE;
    }

    fn unlink(next: &mut [usize], prev: &mut [usize], i: usize) {
        let (p, n) = (prev[i], next[i]);
        next[p] = n;
        if n != NONE {
            prev[n] = p;
        }
    }

    fn relink(next: &mut [usize], prev: &mut [usize], i: usize) {
        let (p, n) = (prev[i], next[i]);
        next[p] = i;
        if n != NONE {
            prev[n] = i;
        }
    }

    fn lift(&mut self, op: usize, completed: bool) {
        Self::unlink(&mut self.call_next, &mut self.call_prev, op);
        if completed {
            Self::unlink(&mut self.return_next, &mut self.return_prev, op);
        }
    }

    fn unlift(&mut self, op: usize, completed: bool) {
        if completed {
            Self::relink(&mut self.return_next, &mut self.return_prev, op);
        }
        Self::relink(&mut self.call_next, &mut self.call_prev, op);
    }

    /// The operations that may be linearized next: every pending operation
    /// invoked no later than the earliest pending return (calls before
    /// returns at equal times). Ordered earliest-deadline first — completed
    /// operations by return time, unknown ones last — which is the order a
    /// real execution most likely took. A read that matches `state` is the
    /// only candidate: linearizing it first is always possible (nothing
    /// pending had to precede it) and changes nothing, so no branching.
    /// Candidates with an effect already offered are left out.
    fn candidates(&self, ops: &[RegisterOp], state: Value, out: &mut Vec<usize>) {
        out.clear();
        let first_return = self.return_next[self.head];
        let limit = if first_return == NONE {
            u64::MAX
        } else {
            ops[first_return].return_ns.unwrap_or(u64::MAX)
        };
        let mut matching_read: Option<usize> = None;
        let mut i = self.call_next[self.head];
        while i != NONE && ops[i].call_ns <= limit {
            if ops[i].effect == Effect::Read(state)
                && matching_read.is_none_or(|r| ops[i].return_ns < ops[r].return_ns)
            {
                matching_read = Some(i);
            }
            out.push(i);
            i = self.call_next[i];
        }
        if let Some(read) = matching_read {
            out.clear();
            out.push(read);
            return;
        }
        out.sort_by_key(|&i| (ops[i].return_ns.unwrap_or(u64::MAX), ops[i].call_ns, i));
        // Candidates with the same effect are interchangeable: a completion
        // that starts with a later-returning one also works with the
        // earliest-returning one swapped in (it may sit anywhere the other
        // did). Try only the first of each effect.
        let mut kept = 0;
        for position in 0..out.len() {
            let effect = ops[out[position]].effect;
            if !out[..kept].iter().any(|&k| ops[k].effect == effect) {
                out[kept] = out[position];
                kept += 1;
            }
        }
        out.truncate(kept);
    }
}

/// One level of the depth-first search.
struct Frame {
    candidates: Vec<usize>,
    next: usize,
    /// The move that led to the child level: the candidate, the state
    /// before it, and how many unseen writes it absorbed (on `absorbed`).
    applied: Option<(usize, Value, usize)>,
}

/// Approximate bytes one memo entry costs: the boxed bitset plus state
/// word, the box pointer in the table and the table's control byte/slack.
fn memo_entry_bytes(words: usize) -> u64 {
    ((words + 1) * 8 + 40) as u64
}

fn set_bit(bits: &mut [u64], op: usize) {
    bits[op / 64] |= 1u64 << (op % 64);
}

fn clear_bit(bits: &mut [u64], op: usize) {
    bits[op / 64] &= !(1u64 << (op % 64));
}

/// A completed unconditional write of a value nobody observes.
fn is_unseen_write(op: &RegisterOp) -> bool {
    op.effect == Effect::Write(UNSEEN) && op.return_ns.is_some()
}

/// Decides whether `ops`, starting from an absent key, are linearizable.
///
/// Besides the plain search, a completed write of [`UNSEEN`] is absorbed
/// into any unconditional write linearized while it is a candidate (it is
/// linearized just before it). That is never worse than leaving it pending:
/// its value is never observed, so wherever it is linearized later it must
/// be overwritten straight away, and dropping it from that spot changes no
/// state. This removes the exponential blow-up over unobserved concurrent
/// writes.
pub fn check(ops: &[RegisterOp], limits: &Limits) -> (Outcome, Stats) {
    let mut stats = Stats::default();
    let must_linearize = ops.iter().filter(|op| op.return_ns.is_some()).count();
    if must_linearize == 0 {
        return (Outcome::Linearizable, stats);
    }
    let mut pending = Pending::new(ops);
    let words = ops.len().div_ceil(64);
    let max_configurations = (limits.max_memo_bytes / memo_entry_bytes(words)).max(1);
    // `words` bitset words, then the candidate state in the last word.
    let mut linearized = vec![0u64; words + 1];
    let mut memo = Memo::default();
    let mut state = ABSENT;
    let mut linearized_completed = 0usize;
    let mut absorbed: Vec<usize> = Vec::new();
    let mut spare: Vec<Vec<usize>> = Vec::new();
    let mut root = Vec::new();
    pending.candidates(ops, state, &mut root);
    let mut frames = vec![Frame {
        candidates: root,
        next: 0,
        applied: None,
    }];
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
        let Some(top) = frames.last_mut() else {
            return (Outcome::NotLinearizable, stats);
        };
        if let Some((op, previous_state, absorbed_count)) = top.applied.take() {
            // Back from the child level: undo the move, in reverse order.
            for _ in 0..absorbed_count {
                let unseen = absorbed.pop().expect("absorbed writes are stacked");
                clear_bit(&mut linearized, unseen);
                linearized_completed -= 1;
                pending.unlift(unseen, true);
            }
            clear_bit(&mut linearized, op);
            let completed = ops[op].return_ns.is_some();
            if completed {
                linearized_completed -= 1;
            }
            pending.unlift(op, completed);
            state = previous_state;
        }
        let mut moved = false;
        while top.next < top.candidates.len() {
            let op = top.candidates[top.next];
            top.next += 1;
            let Some(next_state) = ops[op].effect.apply(state) else {
                continue;
            };
            let unconditional = matches!(ops[op].effect, Effect::Write(_));
            let absorbs = |&c: &usize| unconditional && c != op && is_unseen_write(&ops[c]);
            set_bit(&mut linearized, op);
            for &c in top.candidates.iter().filter(|c| absorbs(c)) {
                set_bit(&mut linearized, c);
            }
            linearized[words] = u64::from(next_state);
            if memo.contains(&linearized[..]) {
                clear_bit(&mut linearized, op);
                for &c in top.candidates.iter().filter(|c| absorbs(c)) {
                    clear_bit(&mut linearized, c);
                }
                continue;
            }
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
            let completed = ops[op].return_ns.is_some();
            if completed {
                linearized_completed += 1;
            }
            pending.lift(op, completed);
            let before = absorbed.len();
            for &c in top.candidates.iter().filter(|c| absorbs(c)) {
                pending.lift(c, true);
                absorbed.push(c);
                linearized_completed += 1;
            }
            top.applied = Some((op, state, absorbed.len() - before));
            state = next_state;
            moved = true;
            break;
        }
        if moved {
            let mut candidates = spare.pop().unwrap_or_default();
            pending.candidates(ops, state, &mut candidates);
            frames.push(Frame {
                candidates,
                next: 0,
                applied: None,
            });
        } else if let Some(frame) = frames.pop() {
            spare.push(frame.candidates);
        }
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

    fn op(effect: Effect, call_ns: u64, return_ns: Option<u64>) -> RegisterOp {
        RegisterOp {
            effect,
            call_ns,
            return_ns,
        }
    }

    /// Small register histories and whether they linearize.
    #[test]
    fn small_histories_linearize_as_expected() {
        use Effect::{Read, Write};
        use Outcome::{Linearizable, NotLinearizable};
        let cas = |expected, new| Effect::Cas { expected, new };
        let cases = [
            (
                "sequential write then read",
                vec![op(Write(1), 0, Some(10)), op(Read(1), 20, Some(30))],
                Linearizable,
            ),
            (
                "a stale read after a write is rejected",
                vec![
                    op(Write(1), 0, Some(10)),
                    op(Write(2), 20, Some(30)),
                    op(Read(1), 40, Some(50)),
                ],
                NotLinearizable,
            ),
            (
                "a concurrent read may see either value",
                vec![
                    op(Write(1), 0, Some(10)),
                    op(Write(2), 20, Some(50)),
                    op(Read(1), 25, Some(30)),
                    op(Read(2), 31, Some(40)),
                ],
                Linearizable,
            ),
            (
                "an info write may apply late",
                vec![
                    op(Write(7), 0, None),
                    op(Read(ABSENT), 10, Some(20)),
                    op(Read(7), 30, Some(40)),
                ],
                Linearizable,
            ),
            (
                "an info write may never apply",
                vec![op(Write(7), 0, None), op(Read(ABSENT), 10, Some(20))],
                Linearizable,
            ),
            (
                "an info write never applies before its call",
                vec![op(Read(7), 0, Some(5)), op(Write(7), 10, None)],
                NotLinearizable,
            ),
            (
                "a cas from the expected value applies",
                vec![
                    op(Write(1), 0, Some(10)),
                    op(cas(1, 2), 20, Some(30)),
                    op(Read(2), 40, Some(50)),
                ],
                Linearizable,
            ),
            (
                "a cas from another value does not",
                vec![op(Write(1), 0, Some(10)), op(cas(3, 2), 20, Some(30))],
                NotLinearizable,
            ),
        ];
        for (case, ops, expected) in cases {
            assert_eq!(check(&ops, &limits()).0, expected, "{case}");
        }
    }
}
