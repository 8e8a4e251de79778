//! Leader leases and heartbeat rounds, as pure functions and a small
//! bookkeeping type so the split-brain-critical rules can be table-tested.
//!
//! A leader numbers its heartbeat rounds. When a quorum (the leader
//! included) acknowledges round `seq`, the lease runs until
//! `send_time(seq) + L`: acks are matched to the round's *send* time by the
//! sequence number, never to their arrival time, because every follower that
//! acked received the round after it was sent and will refuse votes for
//! `ET_min` (on its clock) from then on. `L <= ET_min / rho` keeps the lease
//! inside that refusal window whatever the clock rates (within `rho`).
use std::collections::{BTreeMap, BTreeSet};

use wire::NodeId;

/// True while a lease that runs until `lease_until` is valid at `now`.
/// Checked at the instant a write or lease read is served.
pub fn holds(now: u64, lease_until: u64) -> bool {
    now < lease_until
}

/// True if a voter may grant a (pre)vote: it has not heard from a live
/// leader within `election_timeout_min` (Raft thesis §4.2.3).
pub fn may_grant_vote(
    now: u64,
    last_leader_contact: Option<u64>,
    election_timeout_min: u64,
) -> bool {
    match last_leader_contact {
        None => true,
        Some(contact) => now >= contact.saturating_add(election_timeout_min),
    }
}

/// The lease end earned by a quorum ack of a round sent at `send_time`.
pub fn lease_end(send_time: u64, lease: u64) -> u64 {
    send_time.saturating_add(lease)
}

#[derive(Debug, Clone)]
struct Round {
    sent_at: u64,
    acks: BTreeSet<NodeId>,
    confirmed: bool,
}

/// A quorum acknowledged heartbeat round `seq`, which was sent at `sent_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Confirmed {
    /// The round number.
    pub seq: u64,
    /// When the round was sent, on the leader's clock (ns); the lease runs
    /// from here, never from the ack's arrival.
    pub sent_at: u64,
}

/// The heartbeat rounds of one leader term.
#[derive(Debug, Clone)]
pub struct HeartbeatRounds {
    own_id: NodeId,
    quorum: usize,
    last_seq: u64,
    confirmed_seq: u64,
    rounds: BTreeMap<u64, Round>,
}

impl HeartbeatRounds {
    /// No rounds yet, for a leader `own_id` (its own ack counts) that needs
    /// `quorum` acks per round.
    pub fn new(own_id: NodeId, quorum: usize) -> HeartbeatRounds {
        HeartbeatRounds {
            own_id,
            quorum,
            last_seq: 0,
            confirmed_seq: 0,
            rounds: BTreeMap::new(),
        }
    }

    /// The sequence number of the latest round issued (0: none yet).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The highest round a quorum acknowledged (0: none yet).
    pub fn confirmed_seq(&self) -> u64 {
        self.confirmed_seq
    }

    /// Starts a round at `now` and returns its sequence number, plus the
    /// confirmation if the leader alone is a quorum (single-node cluster).
    pub fn start(&mut self, now: u64) -> (u64, Option<Confirmed>) {
        self.last_seq += 1;
        let seq = self.last_seq;
        let round = Round {
            sent_at: now,
            acks: BTreeSet::from([self.own_id]),
            confirmed: false,
        };
        self.rounds.insert(seq, round);
        (seq, self.check(seq))
    }

    /// Records `from`'s ack of round `seq`; returns the confirmation when
    /// this ack completes a quorum for a round newer than any confirmed one.
    /// Acks of unknown (pruned or never issued) rounds are ignored.
    pub fn ack(&mut self, seq: u64, from: NodeId) -> Option<Confirmed> {
        self.rounds.get_mut(&seq)?.acks.insert(from);
        self.check(seq)
    }

    fn check(&mut self, seq: u64) -> Option<Confirmed> {
        let round = self.rounds.get_mut(&seq)?;
        if round.confirmed || round.acks.len() < self.quorum || seq <= self.confirmed_seq {
            return None;
        }
        round.confirmed = true;
        self.confirmed_seq = seq;
        Some(Confirmed {
            seq,
            sent_at: round.sent_at,
        })
    }

    /// Forgets rounds sent before `cutoff`; their acks can no longer extend
    /// the lease beyond what a newer round would. Rounds start in time
    /// order, so the oldest come first and are popped from the front: no
    /// walk over every round still in the window (a leader under lease
    /// reads starts one per read, hundreds per election timeout).
    pub fn prune_before(&mut self, cutoff: u64) {
        while let Some(oldest) = self.rounds.first_entry() {
            if oldest.get().sent_at >= cutoff {
                break;
            }
            oldest.remove();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ET_MIN: u64 = 1000;

    #[test]
    fn lease_holds_only_strictly_before_its_end() {
        let table = [
            (0, 10, true),
            (9, 10, true),
            (10, 10, false),
            (11, 10, false),
            (0, 0, false),
        ];
        for (now, until, expected) in table {
            assert_eq!(holds(now, until), expected, "now {now} until {until}");
        }
    }

    #[test]
    fn vote_rejected_inside_leader_lease() {
        let table = [
            (500, None, true),
            (500, Some(0), false),
            (999, Some(0), false),
            (1000, Some(0), true),
            (1500, Some(600), false),
            (1600, Some(600), true),
        ];
        for (now, contact, expected) in table {
            assert_eq!(
                may_grant_vote(now, contact, ET_MIN),
                expected,
                "now {now} contact {contact:?}"
            );
        }
    }

    #[test]
    fn lease_extends_to_send_time_not_ack_time() {
        let mut rounds = HeartbeatRounds::new(1, 2);
        let (seq, confirmed) = rounds.start(100);
        assert_eq!(confirmed, None);
        // The ack arrives much later; the lease still counts from the send.
        let confirmed = rounds.ack(seq, 2).expect("quorum of two");
        assert_eq!(confirmed, Confirmed { seq, sent_at: 100 });
        assert_eq!(lease_end(confirmed.sent_at, 900), 1000);
    }

    #[test]
    fn late_ack_of_an_older_round_does_not_move_the_lease() {
        let mut rounds = HeartbeatRounds::new(1, 3);
        let (first, _) = rounds.start(100);
        let (second, _) = rounds.start(200);
        assert_eq!(rounds.ack(second, 2), None);
        assert_eq!(rounds.ack(second, 3).map(|c| c.sent_at), Some(200));
        assert_eq!(rounds.ack(first, 2), None);
        assert_eq!(rounds.ack(first, 3), None, "older than the confirmed round");
        assert_eq!(rounds.confirmed_seq(), second);
    }

    #[test]
    fn duplicate_acks_from_one_peer_are_not_a_quorum() {
        let mut rounds = HeartbeatRounds::new(1, 3);
        let (seq, _) = rounds.start(0);
        assert_eq!(rounds.ack(seq, 2), None);
        assert_eq!(rounds.ack(seq, 2), None);
        assert!(rounds.ack(seq, 4).is_some());
    }

    #[test]
    fn single_node_round_confirms_at_once() {
        let mut rounds = HeartbeatRounds::new(1, 1);
        assert_eq!(
            rounds.start(42).1,
            Some(Confirmed {
                seq: 1,
                sent_at: 42
            })
        );
    }

    #[test]
    fn pruning_drops_exactly_the_rounds_sent_before_the_cutoff() {
        let mut rounds = HeartbeatRounds::new(1, 2);
        let sent: Vec<(u64, u64)> = (0..10).map(|i| (rounds.start(i * 10).0, i * 10)).collect();
        rounds.prune_before(50);
        for (seq, sent_at) in sent {
            assert_eq!(
                rounds.ack(seq, 2).is_some(),
                sent_at >= 50,
                "round {seq} sent at {sent_at}"
            );
        }
    }

    #[test]
    fn pruned_and_unknown_rounds_are_ignored() {
        let mut rounds = HeartbeatRounds::new(1, 2);
        let (seq, _) = rounds.start(10);
        rounds.prune_before(11);
        assert_eq!(rounds.ack(seq, 2), None);
        assert_eq!(rounds.ack(99, 2), None);
    }
}
