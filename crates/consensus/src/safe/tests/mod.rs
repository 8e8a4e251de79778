//! Safe-mode tests: replica-level tables for the split-brain rules, and
//! small clusters (crate `testkit`) for end-to-end behaviour. Client-facing
//! tests live here; elections, leases and replication have their own files.

mod election;
mod lease;
mod replication;
mod snapshot;
use wire::{Entry, Message, Payload, Token};

use crate::testkit::{Cluster, MS, append, highest_seq, put, read};
use crate::{
    Action, ClientReply, ClientResponse, Config, ConfigError, Event, Input, Mode, Outbound,
    ReadMode, Rejection, Replica, Restored, Role, StepDownReason, Transport, Write,
};

pub(super) fn written(reply: Option<&ClientReply>) -> Token {
    match reply {
        Some(ClientReply::Ok(ClientResponse::Written { token, .. })) => *token,
        other => panic!("expected a committed write, got {other:?}"),
    }
}

pub(super) fn follower(now: u64) -> Replica {
    Replica::new(
        Config::fast(2, vec![1, 2, 3], 7, Mode::Safe),
        Restored::default(),
        2,
        now,
    )
    .unwrap()
}

/// Node 2 of three, that heard node 1 lead `term` (heartbeat round 1) at `now`.
pub(super) fn led_follower(now: u64, term: u64) -> Replica {
    let mut replica = follower(now);
    let _ = heartbeat(&mut replica, now, 1, term, 1);
    replica
}

pub(super) fn heartbeat(
    replica: &mut Replica,
    now: u64,
    from: u64,
    term: u64,
    seq: u64,
) -> Vec<Action> {
    let message = Message::Heartbeat { seq, commit: 0 };
    receive(replica, now, from, term, message)
}

/// Delivers `message` from peer `from` (sent at `term`) to `replica` at
/// `now`, and returns the actions it produced.
pub(super) fn receive(
    replica: &mut Replica,
    now: u64,
    from: u64,
    term: u64,
    message: Message,
) -> Vec<Action> {
    replica.step(
        now,
        Input::Message {
            from,
            term,
            message,
        },
    );
    replica.take_actions()
}

/// Whether `actions` send `message` to anyone.
pub(super) fn sent(actions: &[Action], message: &Message) -> bool {
    sends(actions).iter().any(|send| send.message == *message)
}

/// A no-op log entry, the filler for log-shape tests.
pub(super) fn noop(term: u64, index: u64) -> Entry {
    Entry {
        term,
        index,
        payload: Payload::Noop,
    }
}

pub(super) fn sends(actions: &[Action]) -> Vec<Outbound> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::Send(send) => Some(send.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn single_node_elects_itself_and_commits_after_persist() {
    let (mut cluster, leader) = Cluster::elected(1, Mode::Safe);
    assert_eq!(leader, 1);
    let id = cluster.request(1, put(1, 1, "k", "v"));
    let token = written(cluster.replies.get(&id));
    assert_eq!(token.term, cluster.term_of(1));
    assert_eq!(
        cluster
            .read_value(1, "k", ReadMode::Linearizable)
            .as_deref(),
        Some("v")
    );
}

#[test]
fn single_node_write_waits_for_fsync() {
    let config = Config::fast(1, vec![1], 7, Mode::Safe);
    let mut replica = Replica::new(config, Restored::default(), 1, 0).unwrap();
    let mut now = 0;
    let mut persisted = None;
    while replica.status().role != Role::Leader {
        now += 10 * MS;
        replica.step(now, Input::Tick);
        persisted = highest_seq(&replica.take_actions()).or(persisted);
    }
    replica.step(
        now,
        Input::Persisted {
            upto: persisted.unwrap(),
        },
    );
    let _ = replica.take_actions();
    replica.step(
        now,
        Input::Client {
            id: 9,
            request: put(1, 1, "k", "v"),
        },
    );
    let actions = replica.take_actions();
    assert!(
        !actions
            .iter()
            .any(|action| matches!(action, Action::Reply { .. })),
        "acked before fsync"
    );
    let upto = highest_seq(&actions).unwrap();
    replica.step(now, Input::Persisted { upto });
    let actions = replica.take_actions();
    assert!(actions.iter().any(|action| matches!(
        action,
        Action::Reply {
            id: 9,
            reply: ClientReply::Ok(_)
        }
    )));
}

#[test]
fn follower_rejects_writes_with_leader_hint() {
    let (mut cluster, leader) = Cluster::elected(3, Mode::Safe);
    let other = (1..=3).find(|id| *id != leader).unwrap();
    let id = cluster.request(other, put(1, 1, "k", "v"));
    assert_eq!(
        cluster.replies.get(&id),
        Some(&ClientReply::Rejected(Rejection::NotLeader {
            leader: Some(leader)
        }))
    );
}

#[test]
fn retried_request_is_applied_exactly_once() {
    let (mut cluster, leader) = Cluster::elected(3, Mode::Safe);
    let first = cluster.request(leader, put(4, 1, "k", "a"));
    let _other = cluster.request(leader, put(5, 1, "k", "b"));
    let retry = cluster.request(leader, put(4, 1, "k", "a"));
    assert_eq!(
        written(cluster.replies.get(&first)),
        written(cluster.replies.get(&retry))
    );
    assert_eq!(
        cluster.read_value(leader, "k", ReadMode::Lease).as_deref(),
        Some("b")
    );
}

#[test]
fn duplicate_in_flight_request_shares_one_entry() {
    let (mut cluster, leader) = Cluster::elected(3, Mode::Safe);
    let follower = cluster.next_after(leader);
    cluster.cut.insert((leader, follower));
    let third = 6 - leader - follower;
    cluster.cut.insert((leader, third));
    let first = cluster.request(leader, put(4, 1, "k", "a"));
    let retry = cluster.request(leader, put(4, 1, "k", "a"));
    let last_index = cluster.nodes[&leader].status().last_index;
    cluster.heal();
    cluster.run_for(300 * MS); // lost appends are resent after the retransmit timeout
    assert_eq!(
        written(cluster.replies.get(&first)),
        written(cluster.replies.get(&retry))
    );
    assert_eq!(written(cluster.replies.get(&first)).index, last_index);
}

#[test]
fn linearizable_read_needs_a_quorum_round_after_arrival() {
    let (mut cluster, leader) = Cluster::elected(3, Mode::Safe);
    let _ = cluster.request(leader, put(1, 1, "k", "v"));
    cluster.isolate(leader);
    let id = cluster.request(leader, read("k", ReadMode::Linearizable));
    assert!(
        !cluster.replies.contains_key(&id),
        "served without a quorum round"
    );
    cluster.heal();
    cluster.run_for(60 * MS);
    assert!(matches!(
        cluster.replies.get(&id),
        Some(ClientReply::Ok(ClientResponse::Value { value: Some(value), .. })) if value == "v"
    ));
    let stale = cluster.request(cluster.next_after(leader), read("k", ReadMode::Stale));
    assert!(matches!(
        cluster.replies.get(&stale),
        Some(ClientReply::Ok(_))
    ));
}

#[test]
fn config_validation_table() {
    let base = || Config::fast(1, vec![1, 2, 3], 7, Mode::Safe);
    let with = |tweak: fn(&mut Config)| {
        let mut config = base();
        tweak(&mut config);
        config.validate()
    };
    assert_eq!(base().validate(), Ok(vec![]));
    assert_eq!(
        with(|c| c.members = vec![]),
        Err(ConfigError::ClusterSize(0))
    );
    assert_eq!(
        with(|c| c.members = (1..=10).collect()),
        Err(ConfigError::ClusterSize(10))
    );
    assert_eq!(
        with(|c| c.members = vec![1, 2, 2]),
        Err(ConfigError::DuplicateMember(2))
    );
    assert_eq!(with(|c| c.id = 9), Err(ConfigError::NotAMember(9)));
    type Tweak = fn(&mut Config);
    let invalid_fields: [(Tweak, &str); 7] = [
        (|c| c.heartbeat_interval_ns = 0, "heartbeat_interval_ns"),
        (
            |c| c.election_timeout_min_ns = c.heartbeat_interval_ns,
            "election_timeout_min_ns",
        ),
        (
            |c| c.election_timeout_max_ns = c.election_timeout_min_ns,
            "election_timeout_max_ns",
        ),
        (|c| c.clock_drift_bound = 0.5, "clock_drift_bound"),
        (|c| c.lease_margin_ns = u64::MAX, "lease_margin_ns"),
        (|c| c.tick_interval_ns = 0, "tick_interval_ns"),
        (|c| c.snapshot_threshold = 0, "snapshot_threshold"),
    ];
    for (tweak, field) in invalid_fields {
        assert!(
            matches!(with(tweak), Err(ConfigError::Invalid { field: got, .. }) if got == field),
            "{field}"
        );
    }
    let warnings = with(|c| c.members = vec![1, 2]).unwrap();
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains("quorum stays 2"));
}

#[test]
fn lease_read_in_a_minority_is_refused_after_the_lease() {
    let (mut cluster, leader) = Cluster::elected(3, Mode::Safe);
    let lease_read = read("k", ReadMode::Lease);
    let served = cluster.request(leader, lease_read.clone());
    assert!(matches!(
        cluster.replies.get(&served),
        Some(ClientReply::Ok(_))
    ));
    cluster.isolate(leader);
    cluster.run_for(Config::fast(1, vec![1], 7, Mode::Safe).lease_ns() + 20 * MS);
    let refused = cluster.request(leader, lease_read);
    assert!(matches!(
        cluster.replies.get(&refused),
        Some(ClientReply::Rejected(
            Rejection::LeaseExpired | Rejection::NotLeader { .. }
        ))
    ));
    assert!(
        cluster
            .events_of(leader)
            .any(|event| matches!(event, Event::LeaseLost { .. }))
    );
}

#[test]
fn quorum_loss_and_regain_are_reported_while_leading() {
    // A wide margin leaves room between the lease running out (QuorumLost)
    // and CheckQuorum's step-down, so the quorum can come back in between.
    let mut cluster =
        Cluster::with_config(3, Mode::Safe, |config| config.lease_margin_ns = 120 * MS);
    let leader = cluster.elect();
    cluster.isolate(leader);
    while !cluster
        .events_of(leader)
        .any(|event| matches!(event, Event::QuorumLost { .. }))
    {
        cluster.run_for(10 * MS);
    }
    assert!(!cluster.nodes[&leader].status().quorum_reachable);
    cluster.heal();
    cluster.run_for(60 * MS);
    let events: Vec<&Event> = cluster.events_of(leader).collect();
    let lost = events
        .iter()
        .position(|event| matches!(event, Event::QuorumLost { .. }));
    let regained = events
        .iter()
        .position(|event| matches!(event, Event::QuorumRegained { .. }));
    assert!(lost.is_some() && regained > lost, "{events:?}");
    assert_eq!(cluster.leaders(), vec![leader]);
}

#[test]
fn peer_liveness_events_follow_the_link() {
    let (mut cluster, leader) = Cluster::elected(3, Mode::Safe);
    let peer = cluster.next_after(leader);
    assert!(
        cluster
            .events_of(leader)
            .any(|event| *event == Event::PeerUp { peer })
    );
    cluster.cut.insert((peer, leader));
    cluster.run_for(300 * MS);
    assert!(cluster.events_of(leader).any(|event| *event
        == Event::PeerDown {
            peer,
            inbound: true
        }));
    assert!(cluster.events_of(leader).any(|event| *event
        == Event::PeerDown {
            peer,
            inbound: false
        }));
}

#[test]
fn back_pressure_rejects_requests_beyond_the_limit() {
    let mut cluster = Cluster::with_config(3, Mode::Safe, |config| config.max_pending_requests = 2);
    let leader = cluster.elect();
    for other in (1..=3).filter(|id| *id != leader) {
        cluster.cut.insert((leader, other));
    }
    let ids: Vec<u64> = (1..=3)
        .map(|seq| cluster.request(leader, put(1, seq, "k", "v")))
        .collect();
    assert!(!cluster.replies.contains_key(&ids[0]) && !cluster.replies.contains_key(&ids[1]));
    assert_eq!(
        cluster.replies.get(&ids[2]),
        Some(&ClientReply::Rejected(Rejection::Overloaded))
    );
}

#[test]
fn corrupt_restored_snapshot_is_a_clear_error() {
    let restored = Restored {
        snapshot: Some(wire::Snapshot {
            last_index: 3,
            last_term: 1,
            data: vec![1, 2, 3],
        }),
        ..Restored::default()
    };
    let config = Config::fast(1, vec![1], 7, Mode::Safe);
    let error = Replica::new(config, restored, 1, 0).unwrap_err();
    assert!(
        matches!(
            error,
            ConfigError::Invalid {
                field: "restored.snapshot",
                ..
            }
        ),
        "{error}"
    );
}
