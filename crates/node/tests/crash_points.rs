//! Crash points on the real binary (`cargo test -p node --features
//! failpoints`): every durable step of append, vote, commit, compaction and
//! snapshot install is armed in turn on one node of a three-node cluster
//! (`FAILPOINTS=<point>=return` makes it exit on the spot, as if killed).
//! After the restart its log, term and vote must be consistent (it rejoins,
//! converges to the leader's state, its term never went back, no term has
//! two leaders) and no acknowledged write may be lost.
#![cfg(feature = "failpoints")]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use support::{Cluster, ClusterOptions};

const WAIT: Duration = Duration::from_secs(20);
const CRASH_EXIT: i32 = node::failpoints::CRASH_EXIT_CODE;

/// Which node is armed, and how the point is driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Victim {
    /// A follower, armed, while writes flow (appends, compaction).
    Follower,
    /// A follower kept down while the leader compacts past its log, then
    /// restarted armed: it catches up by snapshot install.
    Lagging,
    /// A follower, armed, then the leader is killed: it votes or campaigns.
    Voter,
    /// Armed, then made leader: it dies right after acknowledging a write.
    Leader,
}

/// The durable steps of a snapshot (taken by compaction or installed from
/// the leader): each is armed on a follower that compacts and on a lagging
/// follower that installs.
const SNAPSHOT_POINTS: [&str; 4] = [
    "snapshot-before",
    "atomic-temp-written",
    "snapshot-written",
    "snapshot-log-rewritten",
];

/// Every point with how it is driven, in the order they are run.
fn points() -> impl Iterator<Item = (&'static str, Victim)> {
    let first = [
        ("log-appended", Victim::Follower),
        ("log-synced", Victim::Follower),
        ("meta-written", Victim::Voter),
        ("meta-synced", Victim::Voter),
        ("commit-replied", Victim::Leader),
    ];
    let snapshots = [Victim::Follower, Victim::Lagging]
        .into_iter()
        .flat_map(|victim| SNAPSHOT_POINTS.map(|point| (point, victim)));
    first.into_iter().chain(snapshots)
}

struct Run {
    cluster: Cluster,
    acked: BTreeMap<String, String>,
    next: usize,
}

impl Run {
    /// Marks nodes whose process exited as not running; returns the exit
    /// code of `watch` if it exited.
    fn reap(&mut self, watch: usize) -> Option<Option<i32>> {
        let mut code = None;
        for (i, node) in self.cluster.nodes.iter_mut().enumerate() {
            if let Some(exit) = node.exited()
                && i == watch
            {
                code = Some(exit);
            }
        }
        code
    }

    fn leader(&self) -> Option<usize> {
        (self.cluster.nodes.iter()).position(|node| {
            node.is_running() && node.view().is_some_and(|view| view.claims_leader)
        })
    }

    /// One write attempt through whoever claims leadership; acknowledged
    /// writes are remembered.
    fn try_write(&mut self) -> bool {
        let Some(leader) = self.leader() else {
            std::thread::sleep(Duration::from_millis(50));
            return false;
        };
        let key = format!("k{}", self.next);
        let value = format!("v{}", self.next);
        self.next += 1;
        match self.cluster.nodes[leader].put(&key, &value) {
            Some(response) if response.status == 200 => {
                self.acked.insert(key, value);
                true
            }
            _ => {
                std::thread::sleep(Duration::from_millis(30));
                false
            }
        }
    }

    fn write_n(&mut self, count: usize) {
        let deadline = Instant::now() + WAIT;
        let mut done = 0;
        while done < count {
            assert!(
                Instant::now() < deadline,
                "{done} of {count} writes acknowledged"
            );
            if self.try_write() {
                done += 1;
            }
        }
    }

    fn start_all_stopped(&mut self) {
        for node in &mut self.cluster.nodes {
            if !node.is_running() {
                node.start(&[]);
            }
        }
    }

    fn term_of(&self, i: usize) -> u64 {
        self.cluster.nodes[i]
            .view()
            .and_then(|view| view.term)
            .unwrap_or(0)
    }

    /// Drives `point` on `victim` until the armed node exits; returns the
    /// armed node and its exit code.
    fn drive(&mut self, point: &str, victim: Victim) -> (usize, Option<i32>, u64) {
        let leader = self.cluster.wait_for_leader(WAIT);
        let armed = (leader + 1) % self.cluster.nodes.len();
        let term_before = self.term_of(armed);
        let env = format!("{point}=return");
        let failpoints = [("FAILPOINTS", env.as_str())];
        self.cluster.nodes[armed].kill();
        if victim == Victim::Lagging {
            // Enough for the leader to compact (threshold 10) past the
            // armed node's log.
            self.write_n(25);
        }
        self.cluster.nodes[armed].start_with_env(&[], &failpoints);
        let deadline = Instant::now() + WAIT * 2;
        let mut last_kick = Instant::now();
        loop {
            if let Some(code) = self.reap(armed) {
                return (armed, code, term_before);
            }
            assert!(
                Instant::now() < deadline,
                "{point} ({victim:?}) was never reached on {}",
                self.cluster.nodes[armed].name
            );
            match victim {
                Victim::Voter if last_kick.elapsed() > Duration::from_secs(2) => {
                    // Force an election: the armed node votes or campaigns.
                    if let Some(leader) = self.leader().filter(|l| *l != armed) {
                        self.cluster.nodes[leader].kill();
                        std::thread::sleep(Duration::from_millis(1500));
                        self.cluster.nodes[leader].start(&[]);
                    }
                    last_kick = Instant::now();
                }
                Victim::Leader if last_kick.elapsed() > Duration::from_secs(2) => {
                    // Move leadership until the armed node has it.
                    if let Some(leader) = self.leader().filter(|l| *l != armed) {
                        self.cluster.nodes[leader].kill();
                        self.cluster.nodes[leader].start(&[]);
                    }
                    last_kick = Instant::now();
                }
                _ => {}
            }
            self.try_write();
        }
    }

    /// Every node running again; the armed node converges to the leader;
    /// every acknowledged write is readable; no term has two leaders.
    fn verify(&mut self, armed: usize, victim: Victim, term_before: u64) -> Result<(), String> {
        self.start_all_stopped();
        let leader = self.cluster.wait_for_leader(WAIT);
        self.write_n(3);
        let term_after = self.term_of(armed);
        if term_after < term_before {
            return Err(format!("term went back from {term_before} to {term_after}"));
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let (Some(a), Some(b)) = (
                self.cluster.nodes[leader].status(),
                self.cluster.nodes[armed].status(),
            ) else {
                return Err("a node stopped answering /status".into());
            };
            if a["applied_index"] == b["applied_index"] && a["state_hash"] == b["state_hash"] {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("no convergence: {a} vs {b}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Leadership may move while we read (a loaded machine stalls the
        // leader past an election timeout): a refusal is asked again of
        // whoever leads now; only an answer without the value is a loss.
        let deadline = Instant::now() + WAIT;
        for (key, value) in &self.acked {
            loop {
                let reader = self.cluster.wait_for_leader(WAIT);
                match self.cluster.nodes[reader].get(key, "linearizable") {
                    Some(read) if read.status == 200 => {
                        if read.json()["value"].as_str() != Some(value) {
                            return Err(format!("acknowledged {key}={value} lost: {}", read.body));
                        }
                        break;
                    }
                    _ if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    refused => {
                        return Err(format!(
                            "no node answered a read of acknowledged {key}: {:?}",
                            refused.map(|read| (read.status, read.body))
                        ));
                    }
                }
            }
        }
        let mut leaders: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
        for node in &self.cluster.nodes {
            for event in node.events() {
                if event["event"] == "became_leader" {
                    let term = event["term"].as_u64().unwrap_or(0);
                    leaders.entry(term).or_default().insert(node.name.clone());
                }
            }
        }
        if let Some((term, names)) = leaders.iter().find(|(_, names)| names.len() > 1) {
            return Err(format!("term {term} had leaders {names:?}"));
        }
        if victim == Victim::Lagging
            && !(self.cluster.nodes[armed].events().iter())
                .any(|e| e["event"] == "snapshot_installed")
        {
            return Err("the lagging node never installed a snapshot".into());
        }
        Ok(())
    }
}

#[test]
fn every_crash_point_recovers_without_losing_acknowledged_writes() {
    let options = ClusterOptions {
        size: 3,
        net: 41,
        mode: "safe",
        extra: vec!["--snapshot-threshold".into(), "10".into()],
    };
    let mut run = Run {
        cluster: Cluster::start("crashpoints", options),
        acked: BTreeMap::new(),
        next: 0,
    };
    run.cluster.wait_for_leader(WAIT);
    run.write_n(5);
    let mut table = String::from(
        "| point | driven as | armed node exit | restarted ok | acknowledged writes intact |\n|---|---|---|---|---|\n",
    );
    let mut failures = Vec::new();
    for (point, victim) in points() {
        let (armed, code, term_before) = run.drive(point, victim);
        let name = run.cluster.nodes[armed].name.clone();
        let verdict = run.verify(armed, victim, term_before);
        let _ = writeln!(
            table,
            "| `{point}` | {victim:?} ({name}) | {} | {} | {} |",
            code.map_or("signal".into(), |c| c.to_string()),
            if verdict.is_ok() { "yes" } else { "NO" },
            match &verdict {
                Ok(()) => format!("yes ({} writes)", run.acked.len()),
                Err(why) => format!("NO: {why}"),
            }
        );
        if code != Some(CRASH_EXIT) {
            failures.push(format!(
                "{point}: {name} exited with {code:?}, not at the crash point"
            ));
        }
        if let Err(why) = verdict {
            failures.push(format!("{point} ({victim:?}): {why}"));
            break;
        }
    }
    println!("{table}");
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("crash-points.md");
    let _ = std::fs::write(&out, &table);
    assert!(failures.is_empty(), "{failures:#?}\n{table}");
}
