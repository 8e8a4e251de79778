//! Observed leadership, for systems that write no event log (etcd, Redis):
//! every member's status (etcd: leader id, raft term, raft index; Redis:
//! `ROLE` and the sentinel's config epoch, `client::redis_sentinel`) polled
//! from the control namespace every [`INTERVAL`], kept as raw samples
//! (`nodes/<node>/observed-status.jsonl`, each marked `"observed": true`)
//! and turned into the checker's leadership events
//! (`nodes/<node>/observed.jsonl`): became leader, stepped down, election
//! started. Plus the figure no node reports: how long an old leader still
//! claimed leadership after its successor was elected.
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use checker::{EventKind, LinkDirection, NodeEvent, StepDownReason};
use client::etcd::{MemberStatus, member_status};
use client::redis_sentinel::RoleWatch;
use client::{Protocol, mono_ns};
use serde::{Deserialize, Serialize};

/// How often each member is asked (the bound: ≤ 20 ms).
pub const INTERVAL: Duration = Duration::from_millis(20);

/// A poll that takes longer than this counts as no answer.
const POLL_TIMEOUT: Duration = Duration::from_millis(200);

/// One answered status poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    /// Midpoint of the request on the host's monotonic clock.
    pub mono_ns: u64,
    /// The member's id.
    pub member_id: u64,
    /// The leader it knows of (0: none).
    pub leader: u64,
    /// Its raft term.
    pub term: u64,
    /// Its raft index.
    pub index: u64,
    /// Always true: this was observed from outside, not logged by the node.
    pub observed: bool,
}

type Poller = JoinHandle<std::io::Result<Vec<Sample>>>;

/// The running pollers (one thread per member, in the control namespace).
pub struct LeadershipWatch {
    stop: Arc<AtomicBool>,
    pollers: Vec<(String, Poller)>,
}

impl LeadershipWatch {
    /// Starts polling every member from `control_netns`, in `protocol`.
    ///
    /// # Errors
    /// A poller thread could not be spawned.
    pub fn start(
        control_netns: &str,
        members: &[(String, SocketAddr)],
        protocol: Protocol,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut pollers = Vec::new();
        for (me, (node, addr)) in members.iter().enumerate() {
            let (netns, addr, stop) = (control_netns.to_string(), *addr, stop.clone());
            let mut ask: Box<dyn FnMut() -> Option<MemberStatus> + Send> = match protocol {
                Protocol::RedisSentinel { discovery_port } => {
                    let mut watch = RoleWatch::new(members.to_vec(), me, discovery_port);
                    Box::new(move || watch.poll(POLL_TIMEOUT))
                }
                _ => Box::new(move || member_status(addr, POLL_TIMEOUT)),
            };
            let poller = std::thread::Builder::new()
                .name(format!("observe-{node}"))
                .spawn(move || netlab::netns::in_netns(&netns, move || poll(&mut ask, &stop)))?;
            pollers.push((node.clone(), poller));
        }
        Ok(LeadershipWatch { stop, pollers })
    }

    /// Stops polling; writes each member's samples and observed events
    /// under `nodes_dir/<node>/`; returns every observed event.
    ///
    /// # Errors
    /// A poller could not enter the namespace, or a file write failed.
    pub fn finish(mut self, nodes_dir: &Path) -> anyhow::Result<Vec<NodeEvent>> {
        self.stop.store(true, Ordering::Relaxed);
        let mut samples = BTreeMap::new();
        for (node, poller) in std::mem::take(&mut self.pollers) {
            let taken = poller
                .join()
                .map_err(|_| anyhow::anyhow!("observer of {node} panicked"))??;
            samples.insert(node, taken);
        }
        let events = events_from_samples(&samples);
        for (node, taken) in &samples {
            let dir = nodes_dir.join(node);
            std::fs::create_dir_all(&dir)?;
            let mut lines = String::new();
            for sample in taken {
                lines.push_str(&serde_json::to_string(sample)?);
                lines.push('\n');
            }
            std::fs::write(dir.join("observed-status.jsonl"), lines)?;
            let mine: Vec<NodeEvent> = events.iter().filter(|e| &e.node == node).cloned().collect();
            checker::save_events(&dir.join("observed.jsonl"), &mine)
                .map_err(|error| anyhow::anyhow!("{error}"))?;
        }
        Ok(events)
    }
}

impl Drop for LeadershipWatch {
    /// A run that fails before [`LeadershipWatch::finish`] still stops the
    /// pollers (their namespace is about to go).
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The observed events of a stored run, derived again from every
/// member's `observed-status.jsonl` under `nodes_dir` (none: empty).
///
/// # Errors
/// An unreadable or malformed samples file.
pub fn load_observed(nodes_dir: &Path) -> anyhow::Result<Vec<NodeEvent>> {
    let mut samples = BTreeMap::new();
    for entry in std::fs::read_dir(nodes_dir)?.flatten() {
        let path = entry.path().join("observed-status.jsonl");
        if !path.exists() {
            continue;
        }
        let node = entry.file_name().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path)?;
        let taken = (text.lines().filter(|line| !line.trim().is_empty()))
            .map(serde_json::from_str::<Sample>)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?;
        samples.insert(node, taken);
    }
    Ok(events_from_samples(&samples))
}

/// Polls one member until `stop`, one question every [`INTERVAL`].
fn poll(ask: &mut dyn FnMut() -> Option<MemberStatus>, stop: &AtomicBool) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut next = mono_ns();
    while !stop.load(Ordering::Relaxed) {
        let sent = mono_ns();
        if let Some(status) = ask() {
            samples.push(sample(sent / 2 + mono_ns() / 2, status));
        }
        next += INTERVAL.as_nanos() as u64;
        let now = mono_ns();
        if next > now {
            std::thread::sleep(Duration::from_nanos(next - now));
        } else {
            next = now;
        }
    }
    samples
}

fn sample(mono_ns: u64, status: MemberStatus) -> Sample {
    Sample {
        mono_ns,
        member_id: status.member_id,
        leader: status.leader,
        term: status.raft_term,
        index: status.raft_index,
        observed: true,
    }
}

/// Leadership events from each member's samples, merged in time order:
/// `started` at the first answer (watching began), `became_leader` when a member first reports itself leader in a term,
/// `stepped_down` when a leader stops doing so (a higher term:
/// `higher_term`; the same term: `quorum_lost`, etcd's CheckQuorum),
/// `peer_down` when a follower stops knowing the leader it followed (it
/// noticed the failure; Redis: its sentinel thinks the primary down),
/// `election_started` when its term rises while it knows no leader or
/// leads (a follower that learns the new term from the winner's heartbeat
/// did not campaign). Several term steps between two polls show as one.
pub fn events_from_samples(samples: &BTreeMap<String, Vec<Sample>>) -> Vec<NodeEvent> {
    /// What is known of one member so far.
    #[derive(Default)]
    struct Member {
        seen: bool,
        last_term: u64,
        /// The leader id it followed at its last sample (0: none).
        following: u64,
        /// The term it leads, once its claim is established.
        claim: Option<u64>,
        /// First sample of a claim whose term was still stale.
        pending_since: Option<u64>,
    }
    let mut merged: Vec<(&String, &Sample)> = (samples.iter())
        .flat_map(|(node, taken)| taken.iter().map(move |sample| (node, sample)))
        .collect();
    merged.sort_by_key(|(_, sample)| sample.mono_ns);
    let mut members: BTreeMap<&String, Member> = BTreeMap::new();
    // member id -> node, for naming a lost leader.
    let mut names: BTreeMap<u64, &String> = BTreeMap::new();
    for &(node, sample) in &merged {
        names.entry(sample.member_id).or_insert(node);
    }
    // term -> the member whose leadership of it was observed first.
    let mut taken: BTreeMap<u64, &String> = BTreeMap::new();
    let mut events = Vec::new();
    for (node, sample) in merged {
        let member = members.entry(node).or_default();
        let event = |at, term, kind| NodeEvent {
            node: node.clone(),
            mono_ns: at,
            local_ns: at,
            term,
            kind,
        };
        let at = sample.mono_ns;
        let leads = sample.leader != 0 && sample.leader == sample.member_id;
        if !member.seen {
            // Evidence that the member was watched from here on (a member
            // that never changes role still has an event log).
            events.push(event(at, sample.term, EventKind::Started));
        }
        if !leads && sample.leader == 0 && member.following != 0 {
            let peer = names
                .get(&member.following)
                .map_or_else(|| format!("{:x}", member.following), |name| (*name).clone());
            let direction = LinkDirection::Inbound;
            events.push(event(
                at,
                sample.term,
                EventKind::PeerDown { peer, direction },
            ));
        }
        member.following = if leads { 0 } else { sample.leader };
        if let Some(term) = member.claim
            && (!leads || sample.term > term)
        {
            let reason = if sample.term > term {
                StepDownReason::HigherTerm
            } else {
                StepDownReason::QuorumLost
            };
            events.push(event(at, term, EventKind::SteppedDown { reason }));
            member.claim = None;
        }
        if member.seen && sample.term > member.last_term && (sample.leader == 0 || leads) {
            // A claim seen before its term caught up started no later.
            let since = member.pending_since.unwrap_or(at);
            events.push(event(since, sample.term, EventKind::ElectionStarted));
        }
        if leads && member.claim.is_none() {
            // etcd can report itself leader before its reported term
            // catches up (the term follows applied entries): a term another
            // member was already seen leading is stale, so the claim waits
            // for the real term and is dated from its first sample.
            match taken.get(&sample.term) {
                Some(other) if *other != node => {
                    member.pending_since.get_or_insert(at);
                }
                _ => {
                    let since = member.pending_since.take().unwrap_or(at);
                    events.push(event(since, sample.term, EventKind::BecameLeader));
                    taken.insert(sample.term, node);
                    member.claim = Some(sample.term);
                }
            }
        }
        if !leads {
            member.pending_since = None;
        }
        member.seen = true;
        member.last_term = sample.term;
    }
    events.sort_by_key(|event| event.mono_ns);
    events
}

/// An old leader that still claimed leadership when its successor was
/// elected, and for how long.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderOverlap {
    /// The old leader.
    pub old: String,
    /// Its term.
    pub old_term: u64,
    /// The successor.
    pub new: String,
    /// The successor's term.
    pub new_term: u64,
    /// When the successor became leader.
    pub elected_ns: u64,
    /// When the old leader stopped claiming (`None`: not seen to).
    pub old_stepped_down_ns: Option<u64>,
}

impl LeaderOverlap {
    /// The overlap in ms (`None` when the old leader was not seen to stop).
    pub fn overlap_ms(&self) -> Option<f64> {
        self.old_stepped_down_ns
            .map(|end| end.saturating_sub(self.elected_ns) as f64 / 1e6)
    }
}

/// Every successor election during which an older leader still claimed
/// leadership, from `became_leader` / `stepped_down` events (native or
/// observed alike); a killed process claims nothing from its kill on
/// (`kills`: node and time). `until_ns`: the end of the window looked at.
pub fn leader_overlaps(
    events: &[NodeEvent],
    kills: &[(String, u64)],
    until_ns: u64,
) -> Vec<LeaderOverlap> {
    let mut events: Vec<NodeEvent> = events.to_vec();
    for (node, at) in kills {
        events.push(NodeEvent {
            node: node.clone(),
            mono_ns: *at,
            local_ns: *at,
            term: 0,
            kind: EventKind::Started,
        });
    }
    events.sort_by_key(|event| event.mono_ns);
    // Open claims: node -> (term, since).
    let mut claims: BTreeMap<String, u64> = BTreeMap::new();
    let mut overlaps: Vec<LeaderOverlap> = Vec::new();
    for event in events.iter().filter(|e| e.mono_ns <= until_ns) {
        // A kill is marked as `started` (term 0): it ends any claim.
        match event.kind {
            EventKind::BecameLeader => {
                for (old, old_term) in &claims {
                    if old != &event.node && *old_term < event.term {
                        overlaps.push(LeaderOverlap {
                            old: old.clone(),
                            old_term: *old_term,
                            new: event.node.clone(),
                            new_term: event.term,
                            elected_ns: event.mono_ns,
                            old_stepped_down_ns: None,
                        });
                    }
                }
                claims.insert(event.node.clone(), event.term);
            }
            EventKind::SteppedDown { .. } | EventKind::Started
                if claims.remove(&event.node).is_some() =>
            {
                for overlap in overlaps
                    .iter_mut()
                    .filter(|o| o.old == event.node && o.old_stepped_down_ns.is_none())
                {
                    overlap.old_stepped_down_ns = Some(event.mono_ns);
                }
            }
            _ => {}
        }
    }
    overlaps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64, id: u64, leader: u64, term: u64) -> Sample {
        Sample {
            mono_ns: ms * 1_000_000,
            member_id: id,
            leader,
            term,
            index: 0,
            observed: true,
        }
    }

    /// (node, event kind, term, ms) of every event but `started`.
    fn transitions(events: &[NodeEvent]) -> Vec<(&str, &'static str, u64, u64)> {
        (events.iter())
            .filter(|e| e.kind != EventKind::Started)
            .map(|e| {
                (
                    e.node.as_str(),
                    e.kind.name(),
                    e.term,
                    e.mono_ns / 1_000_000,
                )
            })
            .collect()
    }

    #[test]
    fn samples_become_leadership_events() {
        let samples = BTreeMap::from([
            // n1 leads term 2, is cut off and keeps claiming until 300 ms,
            // then steps down by CheckQuorum in the same term.
            (
                "n1".to_string(),
                vec![at(0, 1, 1, 2), at(100, 1, 1, 2), at(300, 1, 0, 2)],
            ),
            // n2 follows, campaigns (term 3, no leader), wins at 200 ms.
            (
                "n2".to_string(),
                vec![at(0, 2, 1, 2), at(150, 2, 0, 3), at(200, 2, 2, 3)],
            ),
            // n3 learns the new term from the winner: no campaign.
            ("n3".to_string(), vec![at(0, 3, 1, 2), at(210, 3, 2, 3)]),
        ]);
        let events = events_from_samples(&samples);
        let started = events.iter().filter(|e| e.kind == EventKind::Started);
        assert_eq!(started.count(), 3, "one per member, at its first answer");
        let events: Vec<NodeEvent> = (events.into_iter())
            .filter(|e| e.kind != EventKind::Started)
            .collect();
        assert_eq!(
            transitions(&events),
            [
                ("n1", "became_leader", 2, 0),
                // n2 lost its leader: it noticed the failure.
                ("n2", "peer_down", 3, 150),
                ("n2", "election_started", 3, 150),
                ("n2", "became_leader", 3, 200),
                ("n1", "stepped_down", 2, 300),
            ]
        );
        assert!(matches!(
            events.last().unwrap().kind,
            EventKind::SteppedDown {
                reason: StepDownReason::QuorumLost
            }
        ));
        let overlaps = leader_overlaps(&events, &[], u64::MAX);
        assert_eq!(overlaps.len(), 1);
        assert_eq!(
            (overlaps[0].old.as_str(), overlaps[0].new.as_str()),
            ("n1", "n2")
        );
        assert_eq!(overlaps[0].overlap_ms(), Some(100.0));
    }

    #[test]
    fn a_stored_run_is_derived_again_from_its_samples() {
        let scratch = tempfile::tempdir().unwrap();
        let nodes = scratch.path();
        for (node, id) in [("n1", 1), ("n2", 2)] {
            std::fs::create_dir_all(nodes.join(node)).unwrap();
            let lines: Vec<String> = [at(0, id, 1, 2), at(50, id, 1, 2)]
                .iter()
                .map(|sample| serde_json::to_string(sample).unwrap())
                .collect();
            std::fs::write(
                nodes.join(node).join("observed-status.jsonl"),
                lines.join("\n"),
            )
            .unwrap();
        }
        let events = load_observed(nodes).unwrap();
        let kinds: Vec<&str> = events.iter().map(|e| e.kind.name()).collect();
        assert_eq!(kinds, ["started", "became_leader", "started"]);
    }

    #[test]
    fn a_claim_with_a_stale_term_waits_for_the_real_term() {
        let samples = BTreeMap::from([
            ("n1".to_string(), vec![at(0, 1, 1, 2), at(100, 1, 2, 2)]),
            // n2 reports itself leader at 90 ms while its term still says
            // 2 (n1's term), then 23 at 110 ms.
            (
                "n2".to_string(),
                vec![at(0, 2, 1, 2), at(90, 2, 2, 2), at(110, 2, 2, 23)],
            ),
        ]);
        assert_eq!(
            transitions(&events_from_samples(&samples)),
            [
                ("n1", "became_leader", 2, 0),
                ("n2", "election_started", 23, 90),
                ("n2", "became_leader", 23, 90),
                ("n1", "stepped_down", 2, 100),
            ]
        );
    }

    #[test]
    fn a_higher_term_step_down_and_an_unseen_one() {
        let samples = BTreeMap::from([
            ("n1".to_string(), vec![at(0, 1, 1, 2), at(50, 1, 2, 3)]),
            ("n2".to_string(), vec![at(0, 2, 1, 2), at(40, 2, 2, 3)]),
        ]);
        let events = events_from_samples(&samples);
        let down = events
            .iter()
            .find(|e| e.kind.name() == "stepped_down")
            .unwrap();
        assert!(matches!(
            down.kind,
            EventKind::SteppedDown {
                reason: StepDownReason::HigherTerm
            }
        ));
        assert_eq!(
            leader_overlaps(&events, &[], u64::MAX)[0].overlap_ms(),
            Some(10.0)
        );
        // Killed at 42 ms: its claim ends there.
        let killed = leader_overlaps(&events, &[("n1".into(), 42_000_000)], u64::MAX);
        assert_eq!(killed[0].overlap_ms(), Some(2.0));
        // Cut before the old leader's step-down: not seen to step down.
        assert_eq!(
            leader_overlaps(&events, &[], 45_000_000)[0].overlap_ms(),
            None
        );
    }
}
