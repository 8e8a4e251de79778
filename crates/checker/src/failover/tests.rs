use super::*;
use crate::fixture::{MS, event, write_ok};
use crate::{LinkDirection, StepDownReason};

fn stepped_down(node: &str, at_ms: u64, term: u64) -> NodeEvent {
    event(
        node,
        at_ms,
        term,
        EventKind::SteppedDown {
            reason: StepDownReason::QuorumLost,
        },
    )
}

fn window(start_ms: u64, end_ms: u64) -> FaultWindow {
    FaultWindow {
        start_ns: start_ms * MS,
        end_ns: end_ms * MS,
    }
}

#[test]
fn figures_follow_the_isolated_leader_story() {
    let events = vec![
        event("us-east", 900, 2, EventKind::BecameLeader),
        event(
            "us-west",
            1300,
            2,
            EventKind::PeerDown {
                peer: "us-east".into(),
                direction: LinkDirection::Inbound,
            },
        ),
        event("us-east", 1400, 2, EventKind::LeaseLost),
        event("us-west", 1500, 3, EventKind::ElectionStarted),
        event("us-west", 1600, 3, EventKind::BecameLeader),
        stepped_down("us-east", 1700, 2),
    ];
    let mut history = vec![write_ok(950, 2), write_ok(1200, 2)];
    history.extend((0..32).map(|n| write_ok(1800 + n * 100, 3)));
    let evidence = Evidence::from_run(&events, &history);
    let f = measure(window(1000, 5000), Some(("us-east", Some(2))), &evidence);
    assert_eq!(f.detection, Some((300 * MS, "us-west peer_down".into())));
    assert_eq!(f.new_leader, Some((600 * MS, "us-west".into(), Some(3))));
    // The write at 1200 ms still carried term 2 (acknowledged by the old
    // leader before it noticed); the first write of the new term is at 1800.
    assert_eq!(f.first_ack_write, Some(800 * MS));
    assert_eq!(
        f.unavailable,
        Some(Unavailability {
            ns: 600 * MS,
            resumed: true
        })
    );
    assert_eq!(f.leaders_elected, 1);
}

#[test]
fn step_down_is_the_role_change_and_lease_end_is_its_own_figure() {
    // The lease lapses at 1400 ms; the old leader keeps claiming leadership
    // until CheckQuorum makes it step down at 1900 ms.
    let events = vec![
        event("n1", 1400, 2, EventKind::LeaseLost),
        event("n1", 1400, 2, EventKind::QuorumLost),
        stepped_down("n1", 1900, 2),
    ];
    let evidence = Evidence::from_run(&events, &[]);
    let f = measure(window(1000, 5000), Some(("n1", Some(2))), &evidence);
    assert_eq!(f.old_leader_lease_ended, Some(400 * MS));
    assert_eq!(f.old_leader_stepped_down, Some(900 * MS));
    assert_eq!(f.detection, Some((400 * MS, "n1 lease_lost".into())));
}

#[test]
fn unavailability_includes_the_open_tail() {
    // Writes stop at the fault and never resume before the heal at 4000 ms;
    // they resume after it, which is not this fault's doing.
    let history = vec![write_ok(900, 2), write_ok(4500, 3)];
    let evidence = Evidence::from_run(&[], &history);
    let f = measure(window(1000, 4000), Some(("n1", Some(2))), &evidence);
    assert_eq!(
        f.unavailable,
        Some(Unavailability {
            ns: 3000 * MS,
            resumed: false
        })
    );
    assert_eq!(f.first_ack_write, None);
}

#[test]
fn a_later_fault_election_is_not_credited_to_the_first() {
    // Fault 1 at 1000 ms (a follower is cut off: no election), fault 2 at
    // 3000 ms isolates the leader; the election at 3600 ms is fault 2's.
    let faults = [(1000 * MS, Some(5000 * MS)), (3000 * MS, Some(6000 * MS))];
    let windows = FaultWindow::for_faults(&faults, 10_000 * MS);
    assert_eq!(windows, vec![window(1000, 3000), window(3000, 6000)]);
    let events = vec![
        event("n2", 3400, 3, EventKind::ElectionStarted),
        event("n2", 3600, 3, EventKind::BecameLeader),
        stepped_down("n1", 3800, 2),
    ];
    let mut history: Vec<Op> = (0..20).map(|n| write_ok(900 + n * 100, 2)).collect();
    history.push(write_ok(3700, 3));
    let evidence = Evidence::from_run(&events, &history);
    let first = measure(windows[0], Some(("n1", Some(2))), &evidence);
    assert_eq!(first.new_leader, None);
    assert_eq!(first.leaders_elected, 0);
    assert_eq!(first.old_leader_stepped_down, None);
    assert_eq!(first.detection, None);
    assert_eq!(first.first_ack_write, Some(0));
    let second = measure(windows[1], Some(("n1", Some(2))), &evidence);
    assert_eq!(second.new_leader, Some((600 * MS, "n2".into(), Some(3))));
    assert_eq!(second.old_leader_stepped_down, Some(800 * MS));
    assert_eq!(second.first_ack_write, Some(700 * MS));
}

#[test]
fn windows_end_at_the_horizon_when_never_healed() {
    let windows = FaultWindow::for_faults(&[(1000 * MS, None)], 2500 * MS);
    assert_eq!(windows, vec![window(1000, 2500)]);
}

#[test]
fn a_restarted_process_stops_claiming_and_observers_without_terms_work() {
    // The bench sees no terms: the new leader is any other node.
    let evidence = Evidence {
        role_changes: vec![
            RoleChange {
                node: "n1".into(),
                at_ns: 1100 * MS,
                term: None,
                leads: true,
            },
            RoleChange {
                node: "n2".into(),
                at_ns: 1300 * MS,
                term: None,
                leads: true,
            },
            RoleChange {
                node: "n1".into(),
                at_ns: 1500 * MS,
                term: None,
                leads: false,
            },
        ],
        acked_writes: vec![(1400 * MS, None)],
        ..Evidence::default()
    };
    let f = measure(window(1000, 3000), Some(("n1", None)), &evidence);
    assert_eq!(f.new_leader, Some((300 * MS, "n2".into(), None)));
    assert_eq!(f.old_leader_stepped_down, Some(500 * MS));
    assert_eq!(f.first_ack_write, Some(400 * MS));
    let started = Evidence::from_run(&[event("n1", 2000, 2, EventKind::Started)], &[]);
    let f = measure(window(1000, 3000), Some(("n1", Some(2))), &started);
    assert_eq!(f.old_leader_stepped_down, Some(1000 * MS));
}

#[test]
fn nothing_happening_gives_empty_figures() {
    let f = measure(
        window(1000, 1000),
        Some(("n1", Some(1))),
        &Evidence::default(),
    );
    assert_eq!(f, FailoverFigures::default());
}
