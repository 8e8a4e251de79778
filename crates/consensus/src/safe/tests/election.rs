use super::*;
use crate::safe::election::{pre_vote, vote};

#[test]
fn three_nodes_elect_one_leader_and_converge() {
    let (mut cluster, leader) = Cluster::elected(3, Mode::Safe);
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
    let became = cluster.count_events(|event| matches!(event, Event::BecameLeader { .. }));
    assert_eq!(became, 1);
}

#[test]
fn vote_rejected_inside_leader_lease_without_adopting_the_term() {
    let now = 10_000 * MS;
    let mut replica = led_follower(now, 1);
    let vote = vote(100, 5);
    // 200 ms after hearing the leader (ET_min is 250 ms): refused.
    let actions = receive(&mut replica, now + 200 * MS, 3, 2, vote.clone());
    assert_eq!(
        replica.status().term,
        1,
        "term must not move inside the lease"
    );
    assert!(sent(&actions, &Message::VoteResponse { granted: false }));
    // After ET_min without contact: granted, persisted before it is sent.
    let actions = receive(&mut replica, now + 300 * MS, 3, 2, vote);
    assert_eq!(replica.status().term, 2);
    let persist_seq = highest_seq(&actions).unwrap();
    let grant = sends(&actions)
        .into_iter()
        .find(|send| send.message == Message::VoteResponse { granted: true });
    assert_eq!(grant.map(|send| send.after), Some(Some(persist_seq)));
}

#[test]
fn pre_vote_refused_inside_lease_and_never_changes_term() {
    let now = 10_000 * MS;
    let mut replica = led_follower(now, 1);
    let pre_vote = pre_vote(9, 9);
    for (at, granted) in [(now + 100 * MS, false), (now + 260 * MS, true)] {
        let actions = receive(&mut replica, at, 3, 2, pre_vote.clone());
        assert!(sent(&actions, &Message::PreVoteResponse { granted }));
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
    let _ = receive(&mut replica, 10 * MS, 3, 4, vote(0, 0));
    assert_eq!(replica.status().term, 3);
}

#[test]
fn stale_term_is_rejected_and_answered_with_our_term() {
    let now = 10_000 * MS;
    let mut replica = led_follower(now, 5);
    let actions = receive(&mut replica, now, 3, 4, append(0, 0, vec![], 0));
    assert!(actions.contains(&Action::Event(Event::StaleTermRejected {
        from: 3,
        their_term: 4,
        our_term: 5
    })));
    let reply = sends(&actions);
    assert_eq!(reply.len(), 1);
    assert_eq!(
        (reply[0].to, reply[0].term, &reply[0].message),
        (3, 5, &Message::StaleTerm)
    );
    let stale_heartbeat = heartbeat(&mut replica, now, 3, 4, 1);
    assert_eq!(sends(&stale_heartbeat)[0].transport, Transport::Datagram);
}

#[test]
fn higher_term_makes_a_leader_step_down_first() {
    let (mut cluster, leader) = Cluster::elected(3, Mode::Safe);
    let term = cluster.term_of(leader);
    cluster.step(
        leader,
        Input::Message {
            from: cluster.next_after(leader),
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
fn two_node_cluster_needs_both_nodes() {
    let (mut cluster, leader) = Cluster::elected(2, Mode::Safe);
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
fn pre_vote_keeps_an_isolated_node_from_inflating_terms() {
    let (mut cluster, leader) = Cluster::elected(3, Mode::Safe);
    let loner = cluster.next_after(leader);
    let term = cluster.term_of(loner);
    cluster.isolate(loner);
    cluster.run_for(3_000 * MS);
    assert_eq!(cluster.term_of(loner), term);
    cluster.heal();
    cluster.run_for(500 * MS);
    assert_eq!(
        cluster.leaders(),
        vec![leader],
        "the rejoining node deposed the leader"
    );
}
