use super::*;

#[test]
fn lease_extends_to_send_time_not_ack_time() {
    let (cluster, leader) = Cluster::elected(3, Mode::Safe);
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
        for Outbound {
            to, term, message, ..
        } in sends(&actions)
        {
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
    let Outbound {
        term,
        message,
        transport,
        ..
    } = sends(&actions)
        .into_iter()
        .find(|send| matches!(send.message, Message::Heartbeat { .. }))
        .unwrap();
    assert_eq!(transport, Transport::Datagram);
    let Message::Heartbeat { seq, .. } = message else {
        unreachable!()
    };
    let actions = receive(
        &mut replica,
        sent_at + 40 * MS,
        2,
        term,
        Message::HeartbeatAck { seq },
    );
    assert!(actions.contains(&Action::Event(Event::LeaseExtended {
        term,
        until: sent_at + lease
    })));
}

#[test]
fn one_way_link_does_not_count_toward_quorum() {
    let (mut cluster, leader) = Cluster::elected(3, Mode::Safe);
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
    assert!(cluster.state_hashes_agree());
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
