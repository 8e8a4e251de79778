//! The bounded client-session table behind exactly-once writes: the last
//! applied `(seq, result)` per client, evicted least recently used first
//! (by the log index of each client's last applied command).
//!
//! Eviction runs only when a new client would take the table past
//! `max_sessions`, and then drops the least recently used tenth at once
//! (at least one session), so applying a write costs one map update while
//! the table has room and eviction's sort is amortised over many new
//! clients. It depends only on the applied entries and the bound, so every
//! replica with the same `Config::max_sessions` evicts the same sessions at
//! the same index, and a snapshot (which lists the sessions) restores the
//! same table. The bound must therefore be equal on every member.
//!
//! The de-duplication window: a retried `(client, seq)` is recognised (and
//! answered with its first result) while `client` is among the
//! `max_sessions - max_sessions / 10` clients whose latest applied write is
//! most recent (often longer: up to `max_sessions`). A retry arriving after
//! its session was evicted is indistinguishable from a new client's write:
//! it is applied again and its client sees an ordinary success with a new
//! token (at-least-once for that request). Retries beyond the window need
//! tens of thousands of other clients to write in between, so the bound is
//! sized for the anonymous one-write sessions the node's HTTP API creates.
use std::collections::BTreeMap;

use wire::Token;

/// Sessions kept by default: the de-duplication window is at least the
/// 90,000 clients with the most recently applied writes.
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
    max: usize,
}

impl Sessions {
    pub(crate) fn new(max: usize) -> Sessions {
        Sessions {
            by_client: BTreeMap::new(),
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

    /// Records `client`'s newly applied request; a client new to a full
    /// table makes room first.
    pub(crate) fn record(&mut self, client: u64, session: Session) {
        if self.by_client.insert(client, session).is_none() && self.by_client.len() > self.max {
            self.evict_oldest();
        }
    }

    /// Shrinks the table to `max - max / 10` sessions, dropping those whose
    /// last applied index is oldest (ties, which only a corrupt snapshot
    /// holds, by client id). A table restored under a smaller bound
    /// shrinks here too.
    fn evict_oldest(&mut self) {
        let keep = self.max - self.max / 10;
        let Some(excess) = self.by_client.len().checked_sub(keep).filter(|n| *n > 0) else {
            return;
        };
        let mut by_age: Vec<(u64, u64)> = (self.by_client.iter())
            .map(|(client, session)| (session.result.token.index, *client))
            .collect();
        by_age.select_nth_unstable(excess - 1);
        for (_, client) in &by_age[..excess] {
            self.by_client.remove(client);
        }
    }

    /// Adds a session read from a snapshot, without evicting: call
    /// [`Sessions::enforce_bound`] once all are in.
    pub(crate) fn insert_restored(&mut self, client: u64, session: Session) {
        self.by_client.insert(client, session);
    }

    /// Applies the bound to a table filled from a snapshot (a no-op when
    /// the snapshot was taken under the same bound).
    pub(crate) fn enforce_bound(&mut self) {
        if self.by_client.len() > self.max {
            self.evict_oldest();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wire::Index;

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
        sessions.record(10, session(1, 1));
        sessions.record(20, session(1, 2));
        sessions.record(30, session(1, 3));
        // Client 10 writes again: now 20 is the least recently used.
        sessions.record(10, session(2, 4));
        sessions.record(40, session(1, 5));
        assert_eq!(clients(&sessions), vec![10, 30, 40]);
        assert_eq!(sessions.get(10).map(|s| s.seq), Some(2));
        assert!(sessions.get(20).is_none());
        sessions.record(50, session(1, 6));
        assert_eq!(clients(&sessions), vec![10, 40, 50]);
    }

    #[test]
    fn a_full_large_table_drops_its_oldest_tenth_at_once() {
        let mut sessions = Sessions::new(100);
        for client in 1..=100 {
            sessions.record(client, session(1, client));
        }
        assert_eq!(sessions.len(), 100);
        sessions.record(101, session(1, 101));
        // 90 kept: the most recent ones, 12..=101.
        assert_eq!(clients(&sessions), (12..=101).collect::<Vec<_>>());
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
    fn same_records_under_the_same_bound_give_the_same_table() {
        let build = || {
            let mut sessions = Sessions::new(20);
            for index in 1..2_000u64 {
                sessions.record(index * 7 % 37, session(index, index));
            }
            sessions
        };
        assert_eq!(build(), build());
        assert!((18..=20).contains(&build().len()));
    }
}
