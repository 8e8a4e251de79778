//! Safe-mode tests: replica-level tables for the split-brain rules, and
//! small clusters (crate `testkit`) for end-to-end behaviour.
use wire::{Entry, Message, Payload, Token};

use crate::testkit::{Cluster, MS, highest_seq, put};
use crate::{
    Action, ClientReply, ClientRequest, ClientResponse, Config, ConfigError, Event, Input, Mode,
    ReadMode, Rejection, Replica, Restored, Role, StepDownReason, Transport,
};

fn written(reply: Option<&ClientReply>) -> Token {
    match reply {
        Some(ClientReply::Ok(ClientResponse::Written { token, .. })) => *token,
        other => panic!("expected a committed write, got {other:?}"),
    }
}

fn follower(now: u64) -> Replica {
    Replica::new(
        Config::fast(2, vec![1, 2, 3], 7, Mode::Safe),
        Restored::default(),
        2,
        now,
    )
    .unwrap()
}

fn heartbeat(replica: &mut Replica, now: u64, from: u64, term: u64, seq: u64) -> Vec<Action> {
    let message = Message::Heartbeat { seq, commit: 0 };
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

fn sends(actions: &[Action]) -> Vec<(u64, u64, Message, Transport, Option<crate::IoSeq>)> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::Send {
                to,
                term,
                message,
                transport,
                after,
            } => Some((*to, *term, message.clone(), *transport, *after)),
            _ => None,
        })
        .collect()
}

#[test]
fn single_node_elects_itself_and_commits_after_persist() {
    let mut cluster = Cluster::new(1, Mode::Safe);
    let leader = cluster.elect();
    assert_eq!(leader, 1);
    let id = cluster.request(1, put(1, 1, "k", "v"));
    let token = written(cluster.replies.get(&id));
    assert_eq!(token.term, cluster.nodes[&1].status().term);
    let read = cluster.request(
        1,
        ClientRequest::Read {
            key: "k".into(),
            mode: ReadMode::Linearizable,
        },
    );
    assert!(matches!(
        cluster.replies.get(&read),
        Some(ClientReply::Ok(ClientResponse::Value { value: Some(value), .. })) if value == "v"
    ));
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
fn three_nodes_elect_one_leader_and_converge() {
    let mut cluster = Cluster::new(3, Mode::Safe);
    let leader = cluster.elect();
    let first = cluster.request(leader, put(1, 1, "a", "1"));
    let second = cluster.request(leader, put(1, 2, "a", "2"));
    assert!(written(cluster.replies.get(&first)) < written(cluster.replies.get(&second)));
    cluster.run_for(200 * MS);
    let statuses: Vec<_> = cluster.nodes.values().map(Replica::status).collect();
    assert!(
        statuses
            .iter()
            .all(|status| status.applied_index == statuses[0].applied_index)
    );
    assert!(
        statuses
            .iter()
            .all(|status| status.state_hash == statuses[0].state_hash)
    );
    let became: usize = cluster
        .events
        .iter()
        .filter(|(_, _, event)| matches!(event, Event::BecameLeader { .. }))
        .count();
    assert_eq!(became, 1);
}

#[test]
fn follower_rejects_writes_with_leader_hint() {
    let mut cluster = Cluster::new(3, Mode::Safe);
    let leader = cluster.elect();
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
fn vote_rejected_inside_leader_lease_without_adopting_the_term() {
    let now = 10_000 * MS;
    let mut replica = follower(now);
    let _ = heartbeat(&mut replica, now, 1, 1, 1);
    let vote = Message::Vote {
        last_log_index: 100,
        last_log_term: 5,
    };
    // 200 ms after hearing the leader (ET_min is 250 ms): refused.
    replica.step(
        now + 200 * MS,
        Input::Message {
            from: 3,
            term: 2,
            message: vote.clone(),
        },
    );
    let actions = replica.take_actions();
    assert_eq!(
        replica.status().term,
        1,
        "term must not move inside the lease"
    );
    assert!(
        sends(&actions)
            .iter()
            .any(|send| send.2 == Message::VoteResponse { granted: false })
    );
    // After ET_min without contact: granted, persisted before it is sent.
    replica.step(
        now + 300 * MS,
        Input::Message {
            from: 3,
            term: 2,
            message: vote,
        },
    );
    let actions = replica.take_actions();
    assert_eq!(replica.status().term, 2);
    let persist_seq = highest_seq(&actions).unwrap();
    let grant = sends(&actions)
        .into_iter()
        .find(|send| send.2 == Message::VoteResponse { granted: true });
    assert_eq!(grant.map(|send| send.4), Some(Some(persist_seq)));
}

#[test]
fn pre_vote_refused_inside_lease_and_never_changes_term() {
    let now = 10_000 * MS;
    let mut replica = follower(now);
    let _ = heartbeat(&mut replica, now, 1, 1, 1);
    let pre_vote = Message::PreVote {
        last_log_index: 9,
        last_log_term: 9,
    };
    for (at, granted) in [(now + 100 * MS, false), (now + 260 * MS, true)] {
        replica.step(
            at,
            Input::Message {
                from: 3,
                term: 2,
                message: pre_vote.clone(),
            },
        );
        let actions = replica.take_actions();
        assert!(
            sends(&actions)
                .iter()
                .any(|send| send.2 == Message::PreVoteResponse { granted })
        );
        assert_eq!(replica.status().term, 1);
        assert_eq!(replica.status().voted_for, None);
    }
}

#[test]
fn restarted_node_refuses_votes_for_an_election_timeout() {
    let restored = Restored {
        term: 3,
        ..Restored::default()
    };
    let config = Config::fast(2, vec![1, 2, 3], 7, Mode::Safe);
    let mut replica = Replica::new(config, restored, 2, 0).unwrap();
    let vote = Message::Vote {
        last_log_index: 0,
        last_log_term: 0,
    };
    replica.step(
        10 * MS,
        Input::Message {
            from: 3,
            term: 4,
            message: vote,
        },
    );
    assert_eq!(replica.status().term, 3);
}

#[test]
fn stale_term_is_rejected_and_answered_with_our_term() {
    let now = 10_000 * MS;
    let mut replica = follower(now);
    let _ = heartbeat(&mut replica, now, 1, 5, 1);
    let stale = Message::Append {
        prev_log_index: 0,
        prev_log_term: 0,
        entries: vec![],
        leader_commit: 0,
    };
    replica.step(
        now,
        Input::Message {
            from: 3,
            term: 4,
            message: stale,
        },
    );
    let actions = replica.take_actions();
    assert!(actions.contains(&Action::Event(Event::StaleTermRejected {
        from: 3,
        their_term: 4,
        our_term: 5
    })));
    let reply = sends(&actions);
    assert_eq!(reply.len(), 1);
    assert_eq!(
        (reply[0].0, reply[0].1, &reply[0].2),
        (3, 5, &Message::StaleTerm)
    );
    let stale_heartbeat = heartbeat(&mut replica, now, 3, 4, 1);
    assert_eq!(sends(&stale_heartbeat)[0].3, Transport::Datagram);
}

#[test]
fn higher_term_makes_a_leader_step_down_first() {
    let mut cluster = Cluster::new(3, Mode::Safe);
    let leader = cluster.elect();
    let term = cluster.nodes[&leader].status().term;
    cluster.step(
        leader,
        Input::Message {
            from: (leader % 3) + 1,
            term: term + 5,
            message: Message::StaleTerm,
        },
    );
    let status = cluster.nodes[&leader].status();
    assert_eq!((status.role, status.term), (Role::Follower, term + 5));
    assert!(cluster.events_of(leader).any(|event| *event
        == Event::SteppedDown {
            term,
            reason: StepDownReason::HigherTerm
        }));
}

#[test]
fn lease_extends_to_send_time_not_ack_time() {
    let mut cluster = Cluster::new(3, Mode::Safe);
    let leader = cluster.elect();
    let lease = Config::fast(1, vec![1, 2, 3], 7, Mode::Safe).lease_ns();
    // Every LeaseExtended must be the send time of a round plus L, and the
    // lease must be strictly shorter than a full L from the moment of ack.
    let extensions: Vec<(u64, u64)> = cluster
        .events
        .iter()
        .filter(|(node, _, _)| *node == leader)
        .filter_map(|(_, at, event)| match event {
            Event::LeaseExtended { until, .. } => Some((*at, *until)),
            _ => None,
        })
        .collect();
    assert!(!extensions.is_empty());
    for (acked_at, until) in extensions {
        assert!(until <= acked_at + lease, "lease counted from ack time");
    }

    // Replica level: send at t, ack at t + 40 ms, lease = t + L.
    let config = Config::fast(1, vec![1, 2], 7, Mode::Safe);
    let lease = config.lease_ns();
    let mut replica = Replica::new(config, Restored::default(), 1, 0).unwrap();
    let mut now = 0;
    while replica.status().role != Role::Leader {
        now += 10 * MS;
        replica.step(now, Input::Tick);
        let actions = replica.take_actions();
        for (to, term, message, _, _) in sends(&actions) {
            let reply = match message {
                Message::PreVote { .. } => Message::PreVoteResponse { granted: true },
                Message::Vote { .. } => Message::VoteResponse { granted: true },
                _ => continue,
            };
            replica.step(
                now,
                Input::Message {
                    from: to,
                    term,
                    message: reply,
                },
            );
        }
    }
    let _ = replica.take_actions();
    now += 50 * MS;
    replica.step(now, Input::Tick);
    let sent_at = now;
    let actions = replica.take_actions();
    let (_, term, message, transport, _) = sends(&actions)
        .into_iter()
        .find(|send| matches!(send.2, Message::Heartbeat { .. }))
        .unwrap();
    assert_eq!(transport, Transport::Datagram);
    let Message::Heartbeat { seq, .. } = message else {
        unreachable!()
    };
    replica.step(
        sent_at + 40 * MS,
        Input::Message {
            from: 2,
            term,
            message: Message::HeartbeatAck { seq },
        },
    );
    let actions = replica.take_actions();
    assert!(actions.contains(&Action::Event(Event::LeaseExtended {
        term,
        until: sent_at + lease
    })));
}

#[test]
fn one_way_link_does_not_count_toward_quorum() {
    let mut cluster = Cluster::new(3, Mode::Safe);
    let leader = cluster.elect();
    let mut others = (1..=3).filter(|id| *id != leader);
    let (hears_only, dead) = (others.next().unwrap(), others.next().unwrap());
    cluster.crash(dead);
    // The leader still hears `hears_only`, but its own messages never arrive.
    cluster.cut.insert((leader, hears_only));
    cluster.run_for(400 * MS);
    let status = cluster.nodes[&leader].status();
    let peer = status
        .peers
        .iter()
        .find(|peer| peer.id == hears_only)
        .unwrap();
    assert!(peer.inbound_alive, "the leader does hear the peer");
    assert!(!peer.outbound_alive);
    assert_ne!(
        status.role,
        Role::Leader,
        "one-way link kept a leader alive"
    );
    assert!(
        cluster
            .events_of(leader)
            .any(|event| matches!(event, Event::QuorumLost { .. }))
    );
    assert!(cluster.events_of(leader).any(|event| matches!(
        event,
        Event::SteppedDown {
            reason: StepDownReason::QuorumLost,
            ..
        }
    )));
}

#[test]
fn isolated_leader_refuses_writes_once_its_lease_runs_out() {
    let mut cluster = Cluster::new(3, Mode::Safe);
    let old = cluster.elect();
    cluster.isolate(old);
    let lease = Config::fast(1, vec![1, 2, 3], 7, Mode::Safe).lease_ns();
    cluster.run_for(lease + 60 * MS);
    let id = cluster.request(old, put(1, 1, "k", "v"));
    let reply = cluster.replies.get(&id).cloned();
    assert!(
        matches!(
            reply,
            Some(ClientReply::Rejected(
                Rejection::LeaseExpired | Rejection::NotLeader { .. }
            ))
        ),
        "{reply:?}"
    );
    cluster.run_for(1_000 * MS);
    let new = cluster.leaders();
    assert_eq!(new.len(), 1);
    assert_ne!(new[0], old);
    cluster.heal();
    cluster.run_for(600 * MS);
    assert_eq!(cluster.leaders().len(), 1);
    let hashes: Vec<u64> = cluster
        .nodes
        .values()
        .map(|node| node.status().state_hash)
        .collect();
    assert!(hashes.iter().all(|hash| *hash == hashes[0]));
}

#[test]
fn minority_leader_write_is_never_acknowledged() {
    let mut cluster = Cluster::new(5, Mode::Safe);
    let old = cluster.elect();
    cluster.isolate(old);
    // Served inside the lease: accepted, but it can never commit.
    let id = cluster.request(old, put(1, 1, "k", "lost"));
    assert!(!cluster.replies.contains_key(&id));
    cluster.run_for(2_000 * MS);
    assert!(matches!(
        cluster.replies.get(&id),
        Some(ClientReply::Unknown { .. })
    ));
    cluster.heal();
    cluster.run_for(1_000 * MS);
    let truncated = cluster
        .events_of(old)
        .any(|event| matches!(event, Event::Truncated { .. }));
    assert!(
        truncated,
        "the uncommitted minority entry is removed on heal"
    );
}

#[test]
fn committed_entries_are_never_truncated() {
    let now = 10_000 * MS;
    let mut replica = follower(now);
    let entries = (1..=3)
        .map(|index| Entry {
            term: 1,
            index,
            payload: Payload::Noop,
        })
        .collect();
    let append = Message::Append {
        prev_log_index: 0,
        prev_log_term: 0,
        entries,
        leader_commit: 2,
    };
    replica.step(
        now,
        Input::Message {
            from: 1,
            term: 1,
            message: append,
        },
    );
    let _ = replica.take_actions();
    assert_eq!(replica.status().commit_index, 2);
    // A (buggy) leader of term 2 claims index 2 holds a different entry.
    let conflicting = Message::Append {
        prev_log_index: 1,
        prev_log_term: 1,
        entries: vec![Entry {
            term: 2,
            index: 2,
            payload: Payload::Noop,
        }],
        leader_commit: 2,
    };
    replica.step(
        now,
        Input::Message {
            from: 3,
            term: 2,
            message: conflicting,
        },
    );
    let actions = replica.take_actions();
    assert_eq!(replica.status().last_index, 3);
    assert!(
        !actions
            .iter()
            .any(|action| matches!(action, Action::AppendLog { .. }))
    );
    assert!(
        !actions
            .iter()
            .any(|action| matches!(action, Action::Event(Event::Truncated { .. })))
    );
    // The uncommitted index 3 may be replaced.
    let replace = Message::Append {
        prev_log_index: 2,
        prev_log_term: 1,
        entries: vec![Entry {
            term: 2,
            index: 3,
            payload: Payload::Noop,
        }],
        leader_commit: 2,
    };
    replica.step(
        now,
        Input::Message {
            from: 3,
            term: 2,
            message: replace,
        },
    );
    let actions = replica.take_actions();
    assert!(actions.contains(&Action::Event(Event::Truncated { after: 2 })));
    let ack = sends(&actions)
        .into_iter()
        .find(|send| matches!(send.2, Message::AppendResponse { .. }))
        .unwrap();
    assert_eq!(
        ack.4,
        highest_seq(&actions),
        "append ack waits for the fsync"
    );
}

#[test]
fn two_node_cluster_needs_both_nodes() {
    let mut cluster = Cluster::new(2, Mode::Safe);
    let leader = cluster.elect();
    let other = 3 - leader;
    cluster.crash(other);
    let id = cluster.request(leader, put(1, 1, "k", "v"));
    cluster.run_for(1_500 * MS);
    assert!(!matches!(
        cluster.replies.get(&id),
        Some(ClientReply::Ok(_))
    ));
    assert!(
        cluster.leaders().is_empty(),
        "a lone node of two must not lead"
    );
}

#[test]
fn retried_request_is_applied_exactly_once() {
    let mut cluster = Cluster::new(3, Mode::Safe);
    let leader = cluster.elect();
    let first = cluster.request(leader, put(4, 1, "k", "a"));
    let _other = cluster.request(leader, put(5, 1, "k", "b"));
    let retry = cluster.request(leader, put(4, 1, "k", "a"));
    assert_eq!(
        written(cluster.replies.get(&first)),
        written(cluster.replies.get(&retry))
    );
    let read = cluster.request(
        leader,
        ClientRequest::Read {
            key: "k".into(),
            mode: ReadMode::Lease,
        },
    );
    assert!(matches!(
        cluster.replies.get(&read),
        Some(ClientReply::Ok(ClientResponse::Value { value: Some(value), .. })) if value == "b"
    ));
}

#[test]
fn duplicate_in_flight_request_shares_one_entry() {
    let mut cluster = Cluster::new(3, Mode::Safe);
    let leader = cluster.elect();
    let follower = (leader % 3) + 1;
    cluster.cut.insert((leader, follower));
    let third = 6 - leader - follower;
    cluster.cut.insert((leader, third));
    let first = cluster.request(leader, put(4, 1, "k", "a"));
    let retry = cluster.request(leader, put(4, 1, "k", "a"));
    let last_index = cluster.nodes[&leader].status().last_index;
    cluster.heal();
    cluster.run_for(100 * MS);
    assert_eq!(
        written(cluster.replies.get(&first)),
        written(cluster.replies.get(&retry))
    );
    assert_eq!(written(cluster.replies.get(&first)).index, last_index);
}

#[test]
fn linearizable_read_needs_a_quorum_round_after_arrival() {
    let mut cluster = Cluster::new(3, Mode::Safe);
    let leader = cluster.elect();
    let _ = cluster.request(leader, put(1, 1, "k", "v"));
    cluster.isolate(leader);
    let read = ClientRequest::Read {
        key: "k".into(),
        mode: ReadMode::Linearizable,
    };
    let id = cluster.request(leader, read.clone());
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
    let stale = cluster.request(
        (leader % 3) + 1,
        ClientRequest::Read {
            key: "k".into(),
            mode: ReadMode::Stale,
        },
    );
    assert!(matches!(
        cluster.replies.get(&stale),
        Some(ClientReply::Ok(_))
    ));
}

#[test]
fn lagging_follower_catches_up_by_snapshot() {
    let mut cluster = Cluster::with_config(3, Mode::Safe, |config| config.snapshot_threshold = 5);
    let leader = cluster.elect();
    let lagging = (leader % 3) + 1;
    cluster.crash(lagging);
    for seq in 1..=20 {
        let id = cluster.request(leader, put(1, seq, "k", &seq.to_string()));
        written(cluster.replies.get(&id));
    }
    assert!(
        cluster.nodes[&leader].status().first_index > 10,
        "leader compacted its log"
    );
    cluster.restart(lagging);
    cluster.run_for(500 * MS);
    let status = cluster.nodes[&lagging].status();
    assert_eq!(
        status.state_hash,
        cluster.nodes[&leader].status().state_hash
    );
    assert!(cluster.durable[&lagging].snapshot.is_some());
    // The snapshot survives a restart.
    cluster.crash(lagging);
    cluster.restart(lagging);
    assert_eq!(
        cluster.nodes[&lagging].status().applied_index,
        cluster.durable[&lagging]
            .snapshot
            .as_ref()
            .unwrap()
            .last_index
    );
}

#[test]
fn restart_keeps_votes_and_log() {
    let mut cluster = Cluster::new(3, Mode::Safe);
    let leader = cluster.elect();
    let id = cluster.request(leader, put(1, 1, "k", "v"));
    let token = written(cluster.replies.get(&id));
    for node in 1..=3 {
        cluster.crash(node);
        cluster.restart(node);
    }
    let term_before = token.term;
    let leader = cluster.elect();
    assert!(cluster.nodes[&leader].status().term > term_before);
    let read = cluster.request(
        leader,
        ClientRequest::Read {
            key: "k".into(),
            mode: ReadMode::Linearizable,
        },
    );
    assert!(matches!(
        cluster.replies.get(&read),
        Some(ClientReply::Ok(ClientResponse::Value { value: Some(value), .. })) if value == "v"
    ));
}

#[test]
fn pre_vote_keeps_an_isolated_node_from_inflating_terms() {
    let mut cluster = Cluster::new(3, Mode::Safe);
    let leader = cluster.elect();
    let loner = (leader % 3) + 1;
    let term = cluster.nodes[&loner].status().term;
    cluster.isolate(loner);
    cluster.run_for(3_000 * MS);
    assert_eq!(cluster.nodes[&loner].status().term, term);
    cluster.heal();
    cluster.run_for(500 * MS);
    assert_eq!(
        cluster.leaders(),
        vec![leader],
        "the rejoining node deposed the leader"
    );
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
