use super::*;

#[test]
fn committed_entries_are_never_truncated() {
    let now = 10_000 * MS;
    let mut replica = follower(now);
    let entries = (1..=3).map(|index| noop(1, index)).collect();
    let _ = receive(&mut replica, now, 1, 1, append(0, 0, entries, 2));
    assert_eq!(replica.status().commit_index, 2);
    // A (buggy) leader of term 2 claims index 2 holds a different entry.
    let conflicting = append(1, 1, vec![noop(2, 2)], 2);
    let actions = receive(&mut replica, now, 3, 2, conflicting);
    assert_eq!(replica.status().last_index, 3);
    assert!(
        !actions
            .iter()
            .any(|action| matches!(action, Action::Write(Write::Append { .. })))
    );
    assert!(
        !actions
            .iter()
            .any(|action| matches!(action, Action::Event(Event::Truncated { .. })))
    );
    // The uncommitted index 3 may be replaced.
    let replace = append(2, 1, vec![noop(2, 3)], 2);
    let actions = receive(&mut replica, now, 3, 2, replace);
    assert!(actions.contains(&Action::Event(Event::Truncated { after: 2 })));
    let ack = sends(&actions)
        .into_iter()
        .find(|send| matches!(send.message, Message::AppendResponse { .. }))
        .unwrap();
    assert_eq!(
        ack.after,
        highest_seq(&actions),
        "append ack waits for the fsync"
    );
}

#[test]
fn lagging_follower_catches_up_by_snapshot() {
    let mut cluster = Cluster::with_config(3, Mode::Safe, |config| config.snapshot_threshold = 5);
    let leader = cluster.elect();
    let lagging = cluster.next_after(leader);
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
    let (mut cluster, leader) = Cluster::elected(3, Mode::Safe);
    let id = cluster.request(leader, put(1, 1, "k", "v"));
    let token = written(cluster.replies.get(&id));
    for node in 1..=3 {
        cluster.crash(node);
        cluster.restart(node);
    }
    let term_before = token.term;
    let leader = cluster.elect();
    assert!(cluster.term_of(leader) > term_before);
    assert_eq!(
        cluster
            .read_value(leader, "k", ReadMode::Linearizable)
            .as_deref(),
        Some("v")
    );
}

#[test]
fn unanswered_appends_are_resent_with_backoff_not_every_heartbeat() {
    let (mut cluster, leader) = Cluster::elected(3, Mode::Safe);
    let deaf = cluster.next_after(leader);
    // The follower hears nothing from the leader; the leader stays healthy
    // through the third node.
    cluster.cut.insert((leader, deaf));
    let _ = cluster.request(leader, put(1, 1, "k", "v"));
    let before = cluster.appends_sent_to(leader, deaf);
    cluster.run_for(3_000 * MS);
    let resent = cluster.appends_sent[&(leader, deaf)] - before;
    // 60 heartbeats went by; backoff 100, 200, 400, 500, 500, ... ms.
    assert!((3..=10).contains(&resent), "resent {resent} times");
    assert_eq!(cluster.leaders(), vec![leader]);
    cluster.heal();
    cluster.run_for(1_000 * MS);
    assert!(cluster.state_hashes_agree(), "caught up after the heal");
}

#[test]
fn in_flight_appends_per_follower_are_capped_and_later_batched() {
    let (mut cluster, leader) = Cluster::elected(3, Mode::Safe);
    let slow = cluster.next_after(leader);
    // Messages to `slow` vanish, so none of its appends is ever answered.
    cluster.cut.insert((leader, slow));
    let before = cluster.appends_sent_to(leader, slow);
    for seq in 1..=20 {
        let id = cluster.request(leader, put(1, seq, "k", "v"));
        written(cluster.replies.get(&id)); // the third node makes a quorum
    }
    let sent = cluster.appends_sent[&(leader, slow)] - before;
    assert_eq!(sent, 4, "one append per write would be 20");
    cluster.heal();
    cluster.run_for(1_000 * MS);
    let status = cluster.nodes[&slow].status();
    assert_eq!(
        status.applied_index,
        cluster.nodes[&leader].status().applied_index
    );
}
