//! Rejoin windows (I17, crates/checker/README.md): which heals reconnected
//! cut-off nodes to a quorum that stayed connected all along, and how long
//! after each heal an election is the rejoin's doing. Pure.
use checker::config::RejoinWindow;

use super::{FaultRecord, RunFrame, connected_quorum, minority_of};
use crate::run::scenario::FaultKind;

/// One window per all-plane partition that split the cluster cleanly (each
/// node either in the one connected quorum or cut off from every quorum),
/// lasted at least `grace_ns` (long enough for the quorum to have a leader)
/// and healed into a cluster with no other fault in force. The window runs
/// `reaction_ns` from the heal (the caller passes 2·X, X = 2·ET_max + 2·HB:
/// the rejoining node's term reaches the leader within a heartbeat, the
/// election it forces may take a split vote or two), cut short by the next
/// fault or the workload's end.
pub(super) fn rejoin_windows(
    nodes: &[String],
    faults: &[FaultRecord],
    frame: &RunFrame,
    grace_ns: u64,
    reaction_ns: u64,
) -> Vec<RejoinWindow> {
    let end_of = |fault: &FaultRecord| fault.end_ns.unwrap_or(frame.healed_ns);
    let mut windows = Vec::new();
    for (position, fault) in faults.iter().enumerate() {
        let (FaultKind::Partition, Some(grudge), true, Some(heal_ns)) =
            (fault.kind, &fault.grudge, fault.all_planes, fault.end_ns)
        else {
            continue;
        };
        if heal_ns.saturating_sub(fault.start_ns) < grace_ns {
            continue;
        }
        let (Some(quorum), rejoining) =
            (connected_quorum(nodes, grudge), minority_of(nodes, grudge))
        else {
            continue;
        };
        if rejoining.is_empty() || quorum.len() + rejoining.len() != nodes.len() {
            continue;
        }
        let others = || {
            (faults.iter().enumerate())
                .filter(move |(other, f)| *other != position && f.kind != FaultKind::Heal)
                .map(|(_, f)| f)
        };
        if others().any(|f| f.start_ns < heal_ns && end_of(f) > heal_ns) {
            continue;
        }
        let next_fault = (others().map(|f| f.start_ns))
            .filter(|start| *start >= heal_ns)
            .min();
        let end_ns = (heal_ns + reaction_ns)
            .min(frame.workload_end_ns)
            .min(next_fault.unwrap_or(u64::MAX));
        if end_ns > heal_ns {
            windows.push(RejoinWindow {
                heal_ns,
                end_ns,
                quorum,
                rejoining,
            });
        }
    }
    windows
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlab::grudge;

    const SEC: u64 = 1_000_000_000;

    fn nodes() -> Vec<String> {
        ["n1", "n2", "n3"].map(String::from).to_vec()
    }

    fn frame() -> RunFrame {
        RunFrame {
            workload_start_ns: 0,
            workload_end_ns: 20 * SEC,
            healed_ns: 20 * SEC,
            final_reads_ns: 21 * SEC,
        }
    }

    fn fault(kind: FaultKind, grudge: Option<grudge::Grudge>, start: u64, end: u64) -> FaultRecord {
        FaultRecord {
            step: 0,
            kind,
            description: String::new(),
            targets: Vec::new(),
            grudge,
            all_planes: true,
            start_ns: start * SEC,
            end_ns: Some(end * SEC),
            leader_before: None,
            achieved: None,
        }
    }

    fn isolate_n3(start: u64, end: u64) -> FaultRecord {
        let grudge = grudge::isolate_one("n3", &nodes());
        fault(FaultKind::Partition, Some(grudge), start, end)
    }

    #[test]
    fn an_isolated_follower_heals_into_one_window() {
        let windows = rejoin_windows(&nodes(), &[isolate_n3(3, 9)], &frame(), 3 * SEC, SEC);
        assert_eq!(windows.len(), 1);
        let window = &windows[0];
        assert_eq!((window.heal_ns, window.end_ns), (9 * SEC, 10 * SEC));
        assert_eq!(window.quorum, ["n1", "n2"]);
        assert_eq!(window.rejoining, ["n3"]);
    }

    #[test]
    fn short_overlapped_partial_and_unhealed_partitions_get_none() {
        let nodes = nodes();
        let none = |faults: &[FaultRecord]| {
            rejoin_windows(&nodes, faults, &frame(), 3 * SEC, SEC).is_empty()
        };
        // Shorter than the grace: the quorum may have had no leader yet.
        assert!(none(&[isolate_n3(3, 5)]));
        // A pause still in force at the heal: not a whole cluster.
        assert!(none(&[
            isolate_n3(3, 9),
            fault(FaultKind::Pause, None, 8, 12)
        ]));
        // n1–n2 cut, both reach n3: no minority, two quorums.
        let partial = grudge::complete(&[vec!["n1".into()], vec!["n2".into()]]);
        assert!(none(&[fault(FaultKind::Partition, Some(partial), 3, 9)]));
        // Healed only by the final heal, after the workload.
        let mut open = isolate_n3(3, 9);
        open.end_ns = None;
        assert!(none(&[open]));
    }

    #[test]
    fn the_next_fault_cuts_the_window_short_but_a_heal_step_does_not() {
        let faults = [
            isolate_n3(3, 9),
            fault(FaultKind::Heal, None, 9, 9),
            fault(FaultKind::Kill, None, 9, 15),
        ];
        let windows = rejoin_windows(&nodes(), &faults[..2], &frame(), 3 * SEC, SEC);
        assert_eq!(windows[0].end_ns, 10 * SEC);
        let mut later = faults[2].clone();
        later.start_ns = 9 * SEC + SEC / 2;
        let windows = rejoin_windows(
            &nodes(),
            &[faults[0].clone(), later],
            &frame(),
            3 * SEC,
            SEC,
        );
        assert_eq!(windows[0].end_ns, 9 * SEC + SEC / 2);
    }
}
