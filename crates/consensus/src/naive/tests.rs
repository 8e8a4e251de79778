//! Each incorrect strategy must break in exactly the way its name says, or
//! the lab would have nothing to catch.
use crate::testkit::{Cluster, MS, append, put};
use crate::{ClientReply, ClientResponse, Event, Mode, ReadMode, Rejection, Role};

fn acked(cluster: &Cluster, id: u64) -> bool {
    matches!(
        cluster.replies.get(&id),
        Some(ClientReply::Ok(ClientResponse::Written { .. }))
    )
}

/// Isolates the primary, lets the rest elect another, writes the same key
/// on both sides, heals, and returns (old, new, old write id, new write id).
fn split_and_write(mode: Mode) -> (Cluster, u64, u64, u64, u64) {
    let mut cluster = Cluster::new(3, mode);
    let old = cluster.elect();
    cluster.isolate(old);
    cluster.run_for(1_500 * MS);
    let new = cluster
        .leaders()
        .into_iter()
        .find(|leader| *leader != old)
        .expect("the majority side promoted a primary");
    let old_write = cluster.request(old, put(1, 1, "k", "old-side"));
    let new_write = cluster.request(new, put(2, 1, "k", "new-side"));
    (cluster, old, new, old_write, new_write)
}

/// True if, after the heal, some acknowledged write is visible nowhere.
fn lost_acknowledged_write(cluster: &mut Cluster, old_write: u64, new_write: u64) -> bool {
    cluster.heal();
    cluster.run_for(2_000 * MS);
    let values: Vec<Option<String>> = (1..=3)
        .map(|node| cluster.read_value(node, "k", ReadMode::Stale))
        .collect();
    let visible = |value: &str| values.iter().any(|seen| seen.as_deref() == Some(value));
    (acked(cluster, old_write) && !visible("old-side"))
        || (acked(cluster, new_write) && !visible("new-side"))
}

#[test]
fn timeout_failover_promotes_on_both_sides_and_loses_writes() {
    let (mut cluster, old, _new, old_write, new_write) = split_and_write(Mode::TimeoutFailover);
    // Often three: both majority replicas time out and promote themselves.
    assert!(cluster.leaders().len() >= 2, "both sides have a primary");
    assert_eq!(cluster.nodes[&old].status().role, Role::Leader);
    assert!(acked(&cluster, old_write) && acked(&cluster, new_write));
    assert!(lost_acknowledged_write(&mut cluster, old_write, new_write));
}

#[test]
fn timeout_failover_promotes_an_isolated_follower_without_asking() {
    let (mut cluster, leader) = Cluster::elected(3, Mode::TimeoutFailover);
    let loner = cluster.next_after(leader);
    cluster.isolate(loner);
    cluster.run_for(1_000 * MS);
    assert_eq!(cluster.nodes[&loner].status().role, Role::Leader);
    let write = cluster.request(loner, put(1, 1, "k", "v"));
    assert!(
        acked(&cluster, write),
        "a lone replica acknowledged a write"
    );
}

#[test]
fn unenforced_quorum_logs_quorum_loss_but_still_acknowledges() {
    let (mut cluster, old, _new, old_write, new_write) = split_and_write(Mode::UnenforcedQuorum);
    assert!(
        cluster
            .events_of(old)
            .any(|event| matches!(event, Event::QuorumLost { .. }))
    );
    assert_eq!(cluster.nodes[&old].status().role, Role::Leader);
    assert!(!cluster.nodes[&old].status().quorum_reachable);
    assert!(
        acked(&cluster, old_write),
        "the write went through without quorum"
    );
    assert!(lost_acknowledged_write(&mut cluster, old_write, new_write));
}

#[test]
fn one_way_quorum_refuses_in_a_symmetric_minority() {
    let (mut cluster, leader) = Cluster::elected(3, Mode::OneWayQuorum);
    cluster.isolate(leader);
    cluster.run_for(1_000 * MS);
    assert_ne!(cluster.nodes[&leader].status().role, Role::Leader);
    let write = cluster.request(leader, put(1, 1, "k", "v"));
    assert!(matches!(
        cluster.replies.get(&write),
        Some(ClientReply::Rejected(
            Rejection::NotLeader { .. } | Rejection::NoQuorum
        ))
    ));
}

#[test]
fn one_way_quorum_asymmetric_link_yields_two_primaries() {
    let (mut cluster, primary) = Cluster::elected(3, Mode::OneWayQuorum);
    let deaf = cluster.next_after(primary);
    // The primary's messages no longer reach `deaf`; everything else works.
    cluster.cut.insert((primary, deaf));
    cluster.run_for(1_500 * MS);
    let leaders = cluster.leaders();
    assert!(
        leaders.contains(&primary) && leaders.contains(&deaf),
        "{leaders:?}"
    );
    let first = cluster.request(primary, put(1, 1, "k", "a"));
    let second = cluster.request(deaf, put(2, 1, "k", "b"));
    assert!(
        acked(&cluster, first) && acked(&cluster, second),
        "both primaries acknowledge"
    );
    let terms: Vec<u64> = cluster
        .events
        .iter()
        .filter_map(|(_, _, event)| match event {
            Event::BecameLeader { term } => Some(*term),
            _ => None,
        })
        .collect();
    assert!(terms.len() >= 2);
}

#[test]
fn no_fencing_elects_by_vote_but_never_fences_the_old_primary() {
    let (mut cluster, old, new, old_write, new_write) = split_and_write(Mode::NoFencing);
    assert!(cluster.term_of(new) > cluster.term_of(old));
    assert!(
        cluster
            .events_of(new)
            .any(|event| matches!(event, Event::ElectionStarted { .. }))
    );
    assert_eq!(
        cluster.nodes[&old].status().role,
        Role::Leader,
        "the deposed primary still leads"
    );
    assert!(acked(&cluster, old_write) && acked(&cluster, new_write));
    cluster.heal();
    cluster.run_for(2_000 * MS);
    // Both primaries keep writing over each other's followers.
    assert_eq!(cluster.leaders().len(), 2);
    let truncations = cluster.count_events(|event| matches!(event, Event::Truncated { .. }));
    assert!(
        truncations > 0,
        "replicas accepted appends from the old generation"
    );
}

#[test]
fn no_fencing_follower_accepts_an_older_generation() {
    let (mut cluster, leader) = Cluster::elected(3, Mode::NoFencing);
    let follower = cluster.next_after(leader);
    let term = cluster.term_of(follower);
    let other = 6 - leader - follower;
    let message = append(0, 0, vec![], 0);
    let generation_0 = crate::Input::Message {
        from: other,
        term: 0,
        message,
    };
    cluster.step(follower, generation_0);
    let status = cluster.nodes[&follower].status();
    assert_eq!(
        status.leader,
        Some(other),
        "an append of generation 0 was obeyed at {term}"
    );
}
