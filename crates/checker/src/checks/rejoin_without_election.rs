//! I17 Quiet rejoin: a heal that reconnects cut-off nodes to a leader which
//! held a connected quorum all along causes no election.
//!
//! For each [`RejoinWindow`] the leader at the heal is the highest-term
//! leadership claim still open just before it (`became_leader` not yet
//! followed by that node's `stepped_down` or restart). It must belong to the
//! window's quorum; then, until the window ends, no node may start or win a
//! term two or more above the leader's. Without PreVote a node cut off for
//! many election timeouts comes back with an inflated term and deposes the
//! leader (etcd 3.4's default; Raft thesis 9.6); PreVote plus CheckQuorum
//! keep the rejoin silent. A single election one term up is what a stalled
//! leader causes on a loaded host: noted, left to `bounded_elections`. A window without a leader of its
//! quorum at the heal is not judged (named in the notes); a check that
//! judged no window is `unknown`. Invariant I17 (see crates/checker/README.md).
use std::collections::BTreeMap;

use crate::config::RejoinWindow;
use crate::event::{EventKind, NodeEvent};
use crate::verdict::{CheckResult, Evidence, fmt_duration, fmt_ns};

/// The check's name in reports and `CheckResult::name`.
pub const NAME: &str = "rejoin_without_election";

/// The leader whose claim is open just before `at`: highest term wins.
fn leader_at(events: &[NodeEvent], at: u64) -> Option<(&str, u64)> {
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

/// Elections in `[heal, end)` above the leader's `term`, as (term, line):
/// who started or won it and how long after the heal.
fn elections_after(events: &[NodeEvent], window: &RejoinWindow, term: u64) -> Vec<(u64, String)> {
    let mut found: Vec<(u64, String)> = Vec::new();
    let in_window =
        |event: &&NodeEvent| event.mono_ns >= window.heal_ns && event.mono_ns < window.end_ns;
    for event in events.iter().filter(in_window) {
        let verb = match event.kind {
            EventKind::ElectionStarted => "started",
            EventKind::BecameLeader => "won",
            _ => continue,
        };
        if event.term > term && !found.iter().any(|(seen, _)| *seen == event.term) {
            let after = fmt_duration(event.mono_ns.saturating_sub(window.heal_ns));
            found.push((
                event.term,
                format!(
                    "{} {verb} term {} {after} after the heal",
                    event.node, event.term
                ),
            ));
        }
    }
    found
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
        // One election after a stall raises the term by one; a term two or
        // more above the leader's was carried in by a node that campaigned
        // while cut off.
        let (inflated, stray): (Vec<_>, Vec<_>) = (elections_after(events, window, term))
            .into_iter()
            .partition(|(seen, _)| *seen > term + 1);
        let lines = |found: Vec<(u64, String)>| -> Vec<String> {
            found.into_iter().map(|(_, line)| line).collect()
        };
        if !inflated.is_empty() {
            evidence.violation(format!(
                "{label}: {node} led term {term} with [{}] connected, yet {}",
                window.quorum.join(", "),
                lines(inflated).join("; ")
            ));
        } else if !stray.is_empty() {
            evidence.note(format!(
                "{label}: {node} led term {term}; one term up only, as a stall of the leader would give, not \
                 attributed to the rejoin (bounded_elections judges it): {}",
                lines(stray).join("; ")
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
        // A stalled leader replaced one term up: noted, not the rejoin's.
        events.push(ev("n2", 9_900, 3, EventKind::ElectionStarted));
        let result = check(&events, &[window()]);
        assert_eq!(result.verdict, Verdict::Valid, "{result:?}");
        assert!(
            result.details[0].contains("n2 started term 3"),
            "{result:?}"
        );
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
