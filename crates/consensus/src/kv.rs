//! The replicated key-value state machine with exactly-once client sessions.
//!
//! Every strategy applies committed (or, for the incorrect ones, merely
//! accepted) entries through [`Kv::apply`]. The state hash is a chain over
//! every applied entry, so two replicas report equal hashes at an index only
//! if they applied the same entries up to it (invariant I8, see
//! crates/checker/README.md); it travels in snapshots so the chain survives
//! compaction.
use std::collections::BTreeMap;

use seeded::Fnv1a;
use wire::{Entry, Index, KvOp, LIST_SEPARATOR, Payload, Snapshot, Term, Token};

use crate::ConfigError;
pub(crate) use crate::sessions::CommandResult;
use crate::sessions::{Session, Sessions};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Kv {
    data: BTreeMap<String, String>,
    /// Exactly-once sessions, bounded (see `sessions.rs` for the eviction
    /// order and the de-duplication window it implies).
    sessions: Sessions,
    applied_index: Index,
    applied_term: Term,
    /// FNV-1a chain over every applied entry (starts at the offset basis).
    state_hash: Fnv1a,
}

/// Why a snapshot could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CorruptSnapshot(pub(crate) &'static str);

impl Kv {
    /// An empty state whose session table holds at most `max_sessions`.
    pub(crate) fn new(max_sessions: usize) -> Kv {
        Kv {
            data: BTreeMap::new(),
            sessions: Sessions::new(max_sessions),
            applied_index: 0,
            applied_term: 0,
            state_hash: Fnv1a::default(),
        }
    }

    pub(crate) fn applied_index(&self) -> Index {
        self.applied_index
    }

    pub(crate) fn applied_term(&self) -> Term {
        self.applied_term
    }

    pub(crate) fn state_hash(&self) -> u64 {
        self.state_hash.finish()
    }

    pub(crate) fn get(&self, key: &str) -> Option<String> {
        self.data.get(key).cloned()
    }

    /// The remembered result of `(client, seq)` if that request (or a later
    /// one of the same client) was already applied. `Err(())` means a later
    /// request superseded it, so its own result is no longer known.
    pub(crate) fn session_result(
        &self,
        client: u64,
        seq: u64,
    ) -> Option<Result<CommandResult, ()>> {
        let session = self.sessions.get(client)?;
        match seq.cmp(&session.seq) {
            std::cmp::Ordering::Equal => Some(Ok(session.result)),
            std::cmp::Ordering::Less => Some(Err(())),
            std::cmp::Ordering::Greater => None,
        }
    }

    /// Applies the next entry. Returns the command's result (for a command
    /// that was already applied under an earlier index, the original one).
    pub(crate) fn apply(&mut self, entry: &Entry) -> Option<CommandResult> {
        self.applied_index = entry.index;
        self.applied_term = entry.term;
        self.state_hash.write(&entry.index.to_be_bytes());
        self.state_hash.write(&entry.term.to_be_bytes());
        let Payload::Command { client, seq, op } = &entry.payload else {
            self.state_hash.write(b"noop");
            return None;
        };
        if let Some(session) = self.sessions.get(*client)
            && *seq <= session.seq
        {
            // A retry that reached the log twice: applied once, answered with
            // the first result.
            self.state_hash.write(b"dup");
            return Some(session.result);
        }
        let token = Token {
            term: entry.term,
            index: entry.index,
        };
        let applied = self.apply_op(op);
        let result = CommandResult { token, applied };
        self.sessions.record(*client, Session { seq: *seq, result });
        Some(result)
    }

    fn apply_op(&mut self, op: &KvOp) -> bool {
        match op {
            KvOp::Put { key, value } => {
                self.hash_op(b"put", key, Some(value));
                self.data.insert(key.clone(), value.clone());
                true
            }
            KvOp::Delete { key } => {
                self.hash_op(b"del", key, None);
                self.data.remove(key);
                true
            }
            KvOp::Cas {
                key,
                expected,
                value,
            } => {
                let matches = self.data.get(key) == expected.as_ref();
                if matches {
                    self.hash_op(b"cas", key, Some(value));
                    self.data.insert(key.clone(), value.clone());
                } else {
                    self.hash_op(b"cas-miss", key, None);
                }
                matches
            }
            KvOp::Append { key, element } => {
                self.hash_op(b"append", key, Some(element));
                let list = self.data.entry(key.clone()).or_default();
                if !list.is_empty() {
                    list.push(LIST_SEPARATOR);
                }
                list.push_str(element);
                true
            }
        }
    }

    fn hash_op(&mut self, kind: &[u8], key: &str, value: Option<&String>) {
        self.state_hash.write(kind);
        self.state_hash.write(&(key.len() as u64).to_be_bytes());
        self.state_hash.write(key.as_bytes());
        if let Some(value) = value {
            self.state_hash.write(&(value.len() as u64).to_be_bytes());
            self.state_hash.write(value.as_bytes());
        }
    }

    /// Serialises the state at the applied index into a snapshot.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let mut data = Vec::new();
        put_u64(&mut data, self.state_hash.finish());
        put_u64(&mut data, self.data.len() as u64);
        for (key, value) in &self.data {
            put_bytes(&mut data, key.as_bytes());
            put_bytes(&mut data, value.as_bytes());
        }
        put_u64(&mut data, self.sessions.len() as u64);
        for (client, session) in self.sessions.iter() {
            put_u64(&mut data, *client);
            put_u64(&mut data, session.seq);
            put_u64(&mut data, session.result.token.term);
            put_u64(&mut data, session.result.token.index);
            data.push(u8::from(session.result.applied));
        }
        Snapshot {
            last_index: self.applied_index,
            last_term: self.applied_term,
            data,
        }
    }

    /// The state a replica starts from: the restored snapshot's, or empty.
    /// A snapshot that does not decode makes the recovered state invalid.
    pub(crate) fn recover(
        snapshot: Option<&Snapshot>,
        max_sessions: usize,
    ) -> Result<Kv, ConfigError> {
        match snapshot {
            Some(snapshot) => {
                Kv::restore(snapshot, max_sessions).map_err(|error| ConfigError::Invalid {
                    field: "restored.snapshot",
                    reason: error.0.to_owned(),
                })
            }
            None => Ok(Kv::new(max_sessions)),
        }
    }

    /// Rebuilds the state from a snapshot produced by [`Kv::snapshot`].
    /// Sessions are listed in client order; their eviction order comes from
    /// each one's token index, so the restored table evicts exactly as the
    /// snapshotted one would have.
    pub(crate) fn restore(snapshot: &Snapshot, max_sessions: usize) -> Result<Kv, CorruptSnapshot> {
        let mut reader = Reader(&snapshot.data);
        let state_hash = reader.u64()?;
        let mut kv = Kv {
            state_hash: Fnv1a::resume(state_hash),
            applied_index: snapshot.last_index,
            applied_term: snapshot.last_term,
            ..Kv::new(max_sessions)
        };
        for _ in 0..reader.u64()? {
            let key = reader.string()?;
            let value = reader.string()?;
            kv.data.insert(key, value);
        }
        for _ in 0..reader.u64()? {
            let client = reader.u64()?;
            let seq = reader.u64()?;
            let token = Token {
                term: reader.u64()?,
                index: reader.u64()?,
            };
            let applied = match reader.byte()? {
                0 => false,
                1 => true,
                _ => return Err(CorruptSnapshot("session flag is neither 0 nor 1")),
            };
            let result = CommandResult { token, applied };
            kv.sessions.insert_restored(client, Session { seq, result });
        }
        kv.sessions.enforce_bound();
        if !reader.0.is_empty() {
            return Err(CorruptSnapshot("trailing bytes"));
        }
        Ok(kv)
    }
}

fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_be_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u64(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, len: u64) -> Result<&[u8], CorruptSnapshot> {
        if len > self.0.len() as u64 {
            return Err(CorruptSnapshot("field runs past the end"));
        }
        let (head, tail) = self.0.split_at(len as usize);
        self.0 = tail;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, CorruptSnapshot> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, CorruptSnapshot> {
        let mut bytes = [0; 8];
        bytes.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(bytes))
    }

    fn string(&mut self) -> Result<String, CorruptSnapshot> {
        let len = self.u64()?;
        String::from_utf8(self.take(len)?.to_vec())
            .map_err(|_| CorruptSnapshot("string is not valid UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST_SESSIONS: usize = 64;

    fn command(index: Index, client: u64, seq: u64, op: KvOp) -> Entry {
        Entry {
            term: 1,
            index,
            payload: Payload::Command { client, seq, op },
        }
    }

    fn put(key: &str, value: &str) -> KvOp {
        KvOp::Put {
            key: key.into(),
            value: value.into(),
        }
    }

    #[test]
    fn operations_table() {
        let mut kv = Kv::new(TEST_SESSIONS);
        let cas = |expected: Option<&str>, value: &str| KvOp::Cas {
            key: "k".into(),
            expected: expected.map(Into::into),
            value: value.into(),
        };
        let steps: Vec<(KvOp, bool, Option<&str>)> = vec![
            (cas(Some("x"), "a"), false, None),
            (cas(None, "a"), true, Some("a")),
            (put("k", "b"), true, Some("b")),
            (cas(Some("a"), "c"), false, Some("b")),
            (cas(Some("b"), "c"), true, Some("c")),
            (KvOp::Delete { key: "k".into() }, true, None),
        ];
        for (position, (op, applied, value)) in steps.into_iter().enumerate() {
            let index = position as Index + 1;
            let result = kv.apply(&command(index, 1, index, op)).unwrap();
            assert_eq!(result.applied, applied, "step {index}");
            assert_eq!(result.token, Token { term: 1, index });
            assert_eq!(kv.get("k").as_deref(), value, "step {index}");
        }
    }

    #[test]
    fn appends_build_a_list_and_a_retried_append_lands_once() {
        let mut kv = Kv::new(TEST_SESSIONS);
        let append = |element: &str| KvOp::Append {
            key: "list".into(),
            element: element.into(),
        };
        kv.apply(&command(1, 1, 1, append("1-1"))).unwrap();
        kv.apply(&command(2, 2, 1, append("2-1"))).unwrap();
        // The retry of (1, 1) reached the log twice: applied once.
        kv.apply(&command(3, 1, 1, append("1-1"))).unwrap();
        kv.apply(&command(4, 1, 2, append("1-2"))).unwrap();
        assert_eq!(kv.get("list").as_deref(), Some("1-1 2-1 1-2"));
        let mut replaced = kv.clone();
        replaced.apply(&command(5, 3, 1, put("list", "x"))).unwrap();
        replaced.apply(&command(6, 3, 2, append("3-2"))).unwrap();
        assert_eq!(replaced.get("list").as_deref(), Some("x 3-2"));
        assert_eq!(Kv::restore(&kv.snapshot(), TEST_SESSIONS), Ok(kv));
    }

    #[test]
    fn duplicate_request_is_applied_once_and_answered_with_first_token() {
        let mut kv = Kv::new(TEST_SESSIONS);
        let first = kv.apply(&command(1, 7, 1, put("k", "a"))).unwrap();
        kv.apply(&command(2, 8, 1, put("k", "b"))).unwrap();
        // The retry of (7, 1) lands in the log again at index 3.
        let retry = kv.apply(&command(3, 7, 1, put("k", "a"))).unwrap();
        assert_eq!(retry, first);
        assert_eq!(kv.get("k").as_deref(), Some("b"));
        assert_eq!(kv.session_result(7, 1), Some(Ok(first)));
        assert_eq!(kv.session_result(7, 0), Some(Err(())));
        assert_eq!(kv.session_result(7, 2), None);
    }

    #[test]
    fn a_retry_outside_the_session_window_is_applied_again_and_restore_evicts_alike() {
        let append = |element: &str| KvOp::Append {
            key: "list".into(),
            element: element.into(),
        };
        let mut kv = Kv::new(2);
        kv.apply(&command(1, 1, 1, append("a")));
        kv.apply(&command(2, 2, 1, append("b")));
        kv.apply(&command(3, 1, 2, append("c"))); // client 1 is now the most recent
        let mut restored = Kv::restore(&kv.snapshot(), 2).unwrap();
        for state in [&mut kv, &mut restored] {
            // A third client evicts the least recently applied one: client 2.
            state.apply(&command(4, 3, 1, append("d")));
            assert_eq!(state.session_result(2, 1), None);
            assert!(state.session_result(1, 2).is_some());
            // The retry of (2, 1) is outside the window: applied a second time.
            let retry = state.apply(&command(5, 2, 1, append("b"))).unwrap();
            assert_eq!(retry.token, Token { term: 1, index: 5 });
            assert_eq!(state.get("list").as_deref(), Some("a b c d b"));
        }
        assert_eq!(kv, restored);
    }

    #[test]
    fn a_snapshot_restored_under_a_smaller_bound_keeps_the_most_recent_sessions() {
        let mut kv = Kv::new(8);
        for client in 1..=5 {
            kv.apply(&command(client, client, 1, put("k", "v")));
        }
        let mut restored = Kv::restore(&kv.snapshot(), 2).unwrap();
        assert!(restored.session_result(5, 1).is_some());
        assert!(restored.session_result(4, 1).is_some());
        assert_eq!(restored.session_result(3, 1), None);
        restored.apply(&command(6, 4, 2, put("k", "w")));
        assert_eq!(restored.session_result(5, 1).map(|r| r.is_ok()), Some(true));
    }

    #[test]
    fn same_entries_give_same_hash_and_different_entries_differ() {
        let entries = [
            command(1, 1, 1, put("a", "1")),
            command(2, 1, 2, put("b", "2")),
        ];
        let mut left = Kv::new(TEST_SESSIONS);
        let mut right = Kv::new(TEST_SESSIONS);
        for entry in &entries {
            left.apply(entry);
            right.apply(entry);
        }
        assert_eq!(left.state_hash(), right.state_hash());
        right.apply(&command(3, 1, 3, put("c", "3")));
        left.apply(&command(3, 1, 3, put("c", "4")));
        assert_ne!(left.state_hash(), right.state_hash());
    }

    #[test]
    fn snapshot_round_trips_and_rejects_garbage() {
        let mut kv = Kv::new(TEST_SESSIONS);
        kv.apply(&command(1, 1, 1, put("a", "\u{e9}")));
        kv.apply(&command(2, 2, 5, put("b", "2")));
        let snapshot = kv.snapshot();
        assert_eq!(snapshot.last_index, 2);
        assert_eq!(Kv::restore(&snapshot, TEST_SESSIONS), Ok(kv));
        for cut in 0..snapshot.data.len() {
            let truncated = Snapshot {
                data: snapshot.data[..cut].to_vec(),
                ..snapshot.clone()
            };
            assert!(
                Kv::restore(&truncated, TEST_SESSIONS).is_err(),
                "cut at {cut}"
            );
        }
    }
}
