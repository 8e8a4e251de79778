//! The bounded client-session table behind exactly-once writes: the last
//! applied `(seq, result)` per client, evicted least recently used first
//! (by the log index of each client's last applied command).
//!
//! Eviction depends only on the applied entries and the bound, so every
//! replica with the same `Config::max_sessions` evicts the same sessions at
//! the same index, and a snapshot (which lists the sessions) restores the
//! same table. The bound must therefore be equal on every member.
//!
//! The de-duplication window: a retried `(client, seq)` is recognised (and
//! answered with its first result) while `client` is among the
//! `max_sessions` clients whose latest applied write is most recent. A
//! retry arriving after its session was evicted is indistinguishable from
//! a new client's write: it is applied again and its client sees an
//! ordinary success with a new token (at-least-once for that request).
//! Retries beyond the window need `max_sessions` other clients to write in
//! between, so the bound is sized for the anonymous one-write sessions the
//! node's HTTP API creates.
use std::collections::BTreeMap;

use wire::{Index, Token};

/// Sessions kept by default: the de-duplication window is the 100,000
/// clients with the most recently applied writes.
pub const DEFAULT_MAX_SESSIONS: usize = 100_000;

/// The outcome of a command, remembered per client for exactly-once replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CommandResult {
    /// Where the command was applied; `token.index` is also the session's
    /// place in the eviction order.
    pub(crate) token: Token,
    /// False only for a CAS whose comparison failed.
    pub(crate) applied: bool,
}

/// One client's last applied request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Session {
    pub(crate) seq: u64,
    pub(crate) result: CommandResult,
}

/// Client id → last applied request, at most `max` of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sessions {
    by_client: BTreeMap<u64, Session>,
    /// The same sessions keyed by the index of their last applied command
    /// (unique: one command per entry); the first is the one evicted next.
    by_last_index: BTreeMap<Index, u64>,
    max: usize,
}

impl Sessions {
    pub(crate) fn new(max: usize) -> Sessions {
        Sessions {
            by_client: BTreeMap::new(),
            by_last_index: BTreeMap::new(),
            max: max.max(1),
        }
    }

    pub(crate) fn get(&self, client: u64) -> Option<&Session> {
        self.by_client.get(&client)
    }

    pub(crate) fn len(&self) -> usize {
        self.by_client.len()
    }

    /// Sessions in client-id order: the order a snapshot lists them in.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&u64, &Session)> {
        self.by_client.iter()
    }

    /// Records `client`'s newly applied request. A client that was not in
    /// the table evicts the least recently used sessions while the table is
    /// full. Returns false (and changes nothing) if another session already
    /// claims the same last index, which only a corrupt snapshot can cause.
    pub(crate) fn record(&mut self, client: u64, session: Session) -> bool {
        let index = session.result.token.index;
        if self
            .by_last_index
            .get(&index)
            .is_some_and(|owner| *owner != client)
        {
            return false;
        }
        match self.by_client.insert(client, session) {
            Some(previous) => {
                self.by_last_index.remove(&previous.result.token.index);
            }
            None => self.evict_beyond_bound(),
        }
        self.by_last_index.insert(index, client);
        true
    }

    /// Evicts least recently used sessions until the table is within its
    /// bound (a table restored under a smaller bound shrinks here too).
    fn evict_beyond_bound(&mut self) {
        while self.by_client.len() > self.max {
            let Some((_, client)) = self.by_last_index.pop_first() else {
                break;
            };
            self.by_client.remove(&client);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(seq: u64, index: Index) -> Session {
        Session {
            seq,
            result: CommandResult {
                token: Token { term: 1, index },
                applied: true,
            },
        }
    }

    fn clients(sessions: &Sessions) -> Vec<u64> {
        sessions.iter().map(|(client, _)| *client).collect()
    }

    #[test]
    fn the_least_recently_applied_client_is_evicted_first() {
        let mut sessions = Sessions::new(3);
        assert!(sessions.record(10, session(1, 1)));
        assert!(sessions.record(20, session(1, 2)));
        assert!(sessions.record(30, session(1, 3)));
        // Client 10 writes again: now 20 is the least recently used.
        assert!(sessions.record(10, session(2, 4)));
        assert!(sessions.record(40, session(1, 5)));
        assert_eq!(clients(&sessions), vec![10, 30, 40]);
        assert_eq!(sessions.get(10).map(|s| s.seq), Some(2));
        assert!(sessions.get(20).is_none());
        assert!(sessions.record(50, session(1, 6)));
        assert_eq!(clients(&sessions), vec![10, 40, 50]);
    }

    #[test]
    fn a_known_client_never_evicts_anyone() {
        let mut sessions = Sessions::new(2);
        sessions.record(1, session(1, 1));
        sessions.record(2, session(1, 2));
        for index in 3..20 {
            sessions.record(2, session(index, index));
        }
        assert_eq!(clients(&sessions), vec![1, 2]);
    }

    #[test]
    fn a_last_index_claimed_by_two_clients_is_refused() {
        let mut sessions = Sessions::new(4);
        assert!(sessions.record(1, session(1, 7)));
        assert!(!sessions.record(2, session(1, 7)));
        assert_eq!(clients(&sessions), vec![1]);
    }

    #[test]
    fn same_records_under_the_same_bound_give_the_same_table() {
        let build = || {
            let mut sessions = Sessions::new(5);
            for index in 1..200u64 {
                sessions.record(index * 7 % 13, session(index, index));
            }
            sessions
        };
        assert_eq!(build(), build());
        assert_eq!(build().len(), 5);
    }
}
