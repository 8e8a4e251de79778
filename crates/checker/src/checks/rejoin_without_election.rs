//! I17 Quiet rejoin: a heal that reconnects cut-off nodes to a leader which
//! held a connected quorum all along causes no election.
//!
//! For each [`RejoinWindow`] the leader at the heal is the highest-term
//! leadership claim still open just before it (`became_leader` not yet
//! followed by that node's `stepped_down` or restart). It must belong to the
//! window's quorum; then, until the window ends, no node may start or win a
//! term that jumps [`INFLATED_JUMP`] or more above every term the quorum's
//! nodes had logged before it: such a term came from outside the quorum,
//! from a node that campaigned while cut off. Without PreVote that node
//! comes back with an inflated term and deposes the leader (etcd 3.4's
//! default; Raft thesis 9.6); PreVote plus CheckQuorum keep the rejoin
//! silent. Elections the quorum ran up to by itself (a leader stalled by a
//! loaded host, a split vote after it) are noted and left to
//! `bounded_elections`. A window without a leader of its quorum at the heal
//! is not judged (named in the notes); a check that judged no window is
//! `unknown`. Invariant I17 (see crates/checker/README.md).
use std::collections::BTreeMap;

use crate::config::RejoinWindow;
use crate::event::{EventKind, NodeEvent};
use crate::verdict::{CheckResult, Evidence, fmt_duration, fmt_ns};

/// The check's name in reports and `CheckResult::name`.
pub const NAME: &str = "rejoin_without_election";

/// How far above the quorum's highest term a new term must be to have come
/// from outside it: one election raises the term by one and a split vote
/// by one more, which an observer that sees only applied terms (etcd) may
/// miss; a third step is not the quorum's own doing.
pub const INFLATED_JUMP: u64 = 3;

/// The leader whose claim is open just before `at` (`became_leader` not
/// yet followed by its `stepped_down` or restart), with its term; of
/// several open claims (a cut-off leader that has not noticed yet), the
/// highest term's.
pub fn leader_at(events: &[NodeEvent], at: u64) -> Option<(&str, u64)> {
    let mut claims: BTreeMap<&str, u64> = BTreeMap::new();
    let mut before: Vec<&NodeEvent> = events.iter().filter(|event| event.mono_ns < at).collect();
    before.sort_by_key(|event| event.mono_ns);
    for event in before {
        match event.kind {
            EventKind::BecameLeader => {
                claims.insert(&event.node, event.term);
            }
            EventKind::SteppedDown { .. } | EventKind::Started => {
                claims.remove(event.node.as_str());
            }
            _ => {}
        }
    }
    claims.into_iter().max_by_key(|(_, term)| *term)
}

/// Elections above the leader's term that the rejoin may have caused:
/// those started or won inside the window, and, once the leader stepped
/// down inside it, the first one after that however late it came (a
/// deposed etcd leader's successor can take many seconds when the
/// rejoining member keeps campaigning). Split into the inflated ones (see
/// [`INFLATED_JUMP`]) and the others, one line each (who started or won
/// which term, how long after the heal, from what).
fn elections_after(
    events: &[NodeEvent],
    window: &RejoinWindow,
    leader: (&str, u64),
) -> (Vec<String>, Vec<String>) {
    let (node, term) = leader;
    let mut sorted: Vec<&NodeEvent> = events.iter().collect();
    sorted.sort_by_key(|event| event.mono_ns);
    let (mut inflated, mut others) = (Vec::new(), Vec::new());
    let mut seen_terms: Vec<u64> = Vec::new();
    let after = |at: u64| fmt_duration(at.saturating_sub(window.heal_ns));
    // The highest term any node of the quorum had logged so far.
    let mut quorum_max = 0;
    // The leader's step-down inside the window, until a later term shows.
    let mut deposed: Option<String> = None;
    for event in sorted {
        let in_window = event.mono_ns >= window.heal_ns && event.mono_ns < window.end_ns;
        let verb = match event.kind {
            EventKind::ElectionStarted => Some("started"),
            EventKind::BecameLeader => Some("won"),
            EventKind::SteppedDown { .. } if in_window && event.node == node => {
                deposed.get_or_insert_with(|| {
                    format!(
                        "{node} stepped down {} after the heal",
                        after(event.mono_ns)
                    )
                });
                None
            }
            _ => None,
        };
        if let Some(verb) = verb
            && event.term > term
            && !seen_terms.contains(&event.term)
            && (in_window || deposed.is_some())
        {
            seen_terms.push(event.term);
            let mut line = format!(
                "{} {verb} term {} {} after the heal (the quorum had reached term {quorum_max})",
                event.node,
                event.term,
                after(event.mono_ns)
            );
            // The first term after the step-down judges it, in the window or not.
            if let Some(down) = deposed.take()
                && !in_window
            {
                line = format!("{down}, then {line}");
            }
            if event.term >= quorum_max + INFLATED_JUMP {
                inflated.push(line);
            } else {
                others.push(line);
            }
        }
        if window.quorum.contains(&event.node) {
            quorum_max = quorum_max.max(event.term);
        }
        if event.mono_ns >= window.end_ns && deposed.is_none() {
            break;
        }
    }
    (inflated, others)
}

/// Judges every rejoin window; not applicable without windows.
pub fn check(events: &[NodeEvent], windows: &[RejoinWindow]) -> CheckResult {
    if windows.is_empty() {
        return CheckResult::not_applicable(
            NAME,
            "no heal reconnected nodes to a quorum that stayed connected through its fault",
        );
    }
    let mut evidence = Evidence::default();
    let mut judged = 0usize;
    let mut not_judged = Vec::new();
    for window in windows {
        let label = format!(
            "heal at {} ({} rejoined, window {})",
            fmt_ns(window.heal_ns),
            window.rejoining.join(", "),
            fmt_duration(window.end_ns.saturating_sub(window.heal_ns))
        );
        let leader = leader_at(events, window.heal_ns)
            .filter(|(node, _)| window.quorum.iter().any(|member| member == node));
        let Some((node, term)) = leader else {
            not_judged.push(format!(
                "{label}: not judged: no leader of the connected quorum [{}] was known at the heal",
                window.quorum.join(", ")
            ));
            continue;
        };
        judged += 1;
        let (inflated, others) = elections_after(events, window, (node, term));
        if !inflated.is_empty() {
            evidence.violation(format!(
                "{label}: {node} led term {term} with [{}] connected, yet {}",
                window.quorum.join(", "),
                inflated.join("; ")
            ));
        } else if !others.is_empty() {
            evidence.note(format!(
                "{label}: {node} led term {term}; elections the quorum ran up to by itself (a stalled \
                 leader, a split vote), not the rejoin's doing (bounded_elections judges them): {}",
                others.join("; ")
            ));
        } else {
            evidence.note(format!("{label}: {node} kept leading term {term}"));
        }
    }
    // Nothing judged is no evidence: unknown, never valid.
    for line in not_judged {
        if judged == 0 {
            evidence.unknown(line);
        } else {
            evidence.note(line);
        }
    }
    evidence.finish(NAME)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::StepDownReason;
    use crate::verdict::Verdict;

    const MS: u64 = 1_000_000;

    fn ev(node: &str, ms: u64, term: u64, kind: EventKind) -> NodeEvent {
        NodeEvent::new(node, ms * MS, ms * MS, term, kind)
    }

    fn window() -> RejoinWindow {
        RejoinWindow {
            heal_ns: 9_000 * MS,
            end_ns: 10_100 * MS,
            quorum: vec!["n1".into(), "n2".into()],
            rejoining: vec!["n3".into()],
        }
    }

    fn leading_n1() -> Vec<NodeEvent> {
        vec![
            ev("n1", 100, 2, EventKind::Started),
            ev("n1", 200, 2, EventKind::BecameLeader),
        ]
    }

    #[test]
    fn a_rejoin_that_deposes_the_leader_is_flagged() {
        // etcd with --pre-vote=false: n3 comes back at term 20, n1 steps
        // down and wins term 21.
        let mut events = leading_n1();
        events.extend([
            ev(
                "n1",
                9_260,
                2,
                EventKind::SteppedDown {
                    reason: StepDownReason::HigherTerm,
                },
            ),
            ev("n1", 9_630, 21, EventKind::ElectionStarted),
            ev("n1", 9_630, 21, EventKind::BecameLeader),
        ]);
        let result = check(&events, &[window()]);
        assert_eq!(result.verdict, Verdict::Invalid, "{result:?}");
        let text = result.details.join("\n");
        assert!(
            text.contains("n1 started term 21 630.000ms after the heal"),
            "{text}"
        );
    }

    #[test]
    fn a_silent_rejoin_is_valid_and_elections_outside_the_window_do_not_count() {
        let mut events = leading_n1();
        // n3's campaigns while cut off (no PreVote, native log) and an
        // election long after the window are not the rejoin's doing.
        events.push(ev("n3", 5_000, 7, EventKind::ElectionStarted));
        events.push(ev(
            "n3",
            9_100,
            2,
            EventKind::PreVoteRejected { by: "n1".into() },
        ));
        events.push(ev("n2", 15_000, 9, EventKind::ElectionStarted));
        let result = check(&events, &[window()]);
        assert_eq!(result.verdict, Verdict::Valid, "{result:?}");
        assert!(result.details[0].contains("n1 kept leading term 2"));
        // A stalled leader replaced after a split vote (terms 3 and 4, both
        // the quorum's): noted, not the rejoin's.
        events.push(ev("n2", 9_900, 3, EventKind::ElectionStarted));
        events.push(ev("n1", 10_000, 4, EventKind::ElectionStarted));
        events.push(ev("n1", 10_050, 4, EventKind::BecameLeader));
        let result = check(&events, &[window()]);
        assert_eq!(result.verdict, Verdict::Valid, "{result:?}");
        assert!(
            result.details[0].contains("n1 started term 4"),
            "{result:?}"
        );
    }

    #[test]
    fn a_leader_deposed_in_the_window_is_judged_by_its_late_successor() {
        // etcd, pre-vote off: n1 steps down inside the window, nobody leads
        // for 20 s, then term 34 (the rejoiner's inflated term) shows.
        let deposed = |successor_term: u64| {
            let mut events = leading_n1();
            events.push(ev(
                "n1",
                9_300,
                2,
                EventKind::SteppedDown {
                    reason: StepDownReason::QuorumLost,
                },
            ));
            events.push(ev("n2", 30_000, successor_term, EventKind::ElectionStarted));
            check(&events, &[window()])
        };
        let result = deposed(34);
        assert_eq!(result.verdict, Verdict::Invalid, "{result:?}");
        assert!(
            result.details[0]
                .contains("n1 stepped down 300.000ms after the heal, then n2 started term 34"),
            "{result:?}"
        );
        // A stall: the successor is one term up, the quorum's own doing.
        assert_eq!(deposed(3).verdict, Verdict::Valid);
    }

    #[test]
    fn a_native_log_without_prevote_is_flagged_by_the_jump() {
        // n3 logged its campaigns while cut off (terms up to 7); after the
        // heal n1 must campaign above them: term 8, six above the quorum.
        let mut events = leading_n1();
        events.push(ev("n3", 5_000, 7, EventKind::ElectionStarted));
        events.push(ev("n1", 9_300, 8, EventKind::ElectionStarted));
        let result = check(&events, &[window()]);
        assert_eq!(result.verdict, Verdict::Invalid, "{result:?}");
        // Two terms up only: what the quorum could reach by itself.
        let mut events = leading_n1();
        events.push(ev("n1", 9_300, 4, EventKind::ElectionStarted));
        assert_eq!(check(&events, &[window()]).verdict, Verdict::Valid);
    }

    #[test]
    fn without_a_leader_of_the_quorum_nothing_is_judged() {
        // n3 (cut off) is the only known leader: not the quorum's.
        let events = vec![ev("n3", 200, 2, EventKind::BecameLeader)];
        let result = check(&events, &[window()]);
        assert_eq!(result.verdict, Verdict::Unknown, "{result:?}");
        assert!(result.details[0].contains("not judged"));
        // A stepped-down leader no longer counts.
        let mut events = leading_n1();
        events.push(ev(
            "n1",
            8_000,
            2,
            EventKind::SteppedDown {
                reason: StepDownReason::QuorumLost,
            },
        ));
        assert_eq!(check(&events, &[window()]).verdict, Verdict::Unknown);
        assert_eq!(check(&events, &[]).verdict, Verdict::NotApplicable);
    }
}
