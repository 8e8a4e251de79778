//! The end of a run: heal every fault, wait for the cluster to converge,
//! read every key through the leader, snapshot each node's final state, and
//! tear the lab down on every path ([`LabGuard`]).
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use checker::{EventKind, NodeEvent, Op, OpKind};
use client::{NodeStatus, Request, mono_ns};
use netlab::{Lab, NetlabError};

use super::FINAL_READ_PROCESS;
use super::observer::Observer;
use crate::run::duration::Dur;
use crate::run::scenario::{Scenario, Timing};
use crate::run::workload;

/// Tears the lab down when dropped, so every exit path (errors, panics,
/// Ctrl-C) removes namespaces and processes.
pub(super) struct LabGuard {
    lab: Option<Lab>,
    /// How long the teardown took (ms), once it ran.
    pub(super) down_ms: f64,
}

impl LabGuard {
    /// Guards a lab that is up.
    pub(super) fn new(lab: Lab) -> LabGuard {
        LabGuard {
            lab: Some(lab),
            down_ms: 0.0,
        }
    }

    /// The lab, until teardown.
    pub(super) fn lab(&mut self) -> &mut Lab {
        self.lab.as_mut().expect("the lab is up until teardown")
    }

    /// Removes namespaces and processes (once; later calls do nothing).
    pub(super) fn teardown(&mut self) -> Result<(), NetlabError> {
        match self.lab.take() {
            Some(lab) => {
                let took = lab.teardown()?;
                self.down_ms = took.as_secs_f64() * 1e3;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

impl Drop for LabGuard {
    fn drop(&mut self) {
        if let Err(error) = self.teardown() {
            eprintln!("splitlab: teardown failed: {error}; run `splitlab clean`");
        }
    }
}

/// Waits until every node reports the same commit index and state hash
/// three polls in a row, or the bound runs out (the convergence check then
/// says so). The bound is the scenario's convergence bound (default
/// 5·ET_max + 2 s), at least its quiesce time, counted from `healed_ns`.
pub(super) fn quiesce(
    scenario: &Scenario,
    timing: &Timing,
    observer: &Observer,
    healed_ns: u64,
    cancel: &AtomicBool,
) {
    let bound = scenario
        .checks
        .convergence_within
        .unwrap_or(Dur(
            5 * timing.election_timeout_max.as_nanos() + 2_000_000_000
        ))
        .max(scenario.quiesce);
    let deadline = healed_ns + bound.as_nanos();
    let mut stable = 0;
    while mono_ns() < deadline && !cancel.load(Ordering::Relaxed) {
        let (view, statuses) = observer.view();
        let converged = view.leader.is_some() && all_agree(&statuses, observer.nodes.len());
        stable = if converged { stable + 1 } else { 0 };
        if stable >= 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(150));
    }
}

/// Final reads: every key, through the leader (any node when none is
/// known), from the control namespace; up to six attempts per key. Each
/// attempt is recorded in the history under [`FINAL_READ_PROCESS`] + key.
pub(super) fn final_reads(
    keys: u32,
    lists: bool,
    observer: &Observer,
    client_addrs: &[(String, SocketAddr)],
    history: &mpsc::Sender<Op>,
) {
    // The register keys, then (when the workload appends) the list keys.
    let registers = (0..keys).map(|n| format!("k{n}"));
    let list_keys = (0..keys).filter(|_| lists).map(|n| format!("a{n}"));
    for (key_index, key) in (0u64..).zip(registers.chain(list_keys)) {
        for attempt in 0..6u64 {
            let (view, _) = observer.view();
            let target = view
                .leader
                .and_then(|leader| client_addrs.iter().position(|(n, _)| *n == leader))
                .unwrap_or(attempt as usize % client_addrs.len());
            let (node, addr) = client_addrs[target].clone();
            let request = Request::Read { key: key.clone() };
            let process = FINAL_READ_PROCESS + key_index;
            let invoke = workload::invoke_op(process, &request, &node, mono_ns());
            let outcome = observer.read(addr, &key, Duration::from_secs(2));
            let done = workload::completion_op(&invoke, &outcome, mono_ns());
            let ok = done.kind == OpKind::Ok;
            let _ = history.send(invoke);
            let _ = history.send(done);
            if ok {
                break;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

/// Whether every one of `nodes` answered and all report the same commit
/// index, applied index and state hash.
fn all_agree(statuses: &[NodeStatus], nodes: usize) -> bool {
    statuses.len() == nodes
        && statuses.windows(2).all(|pair| {
            pair[0].commit_index == pair[1].commit_index
                && pair[0].applied_index == pair[1].applied_index
                && pair[0].state_hash == pair[1].state_hash
        })
}

/// How many times [`final_state`] asks for a snapshot in which the nodes
/// agree, [`SNAPSHOT_RETRY`] apart.
const SNAPSHOT_ATTEMPTS: usize = 20;
const SNAPSHOT_RETRY: Duration = Duration::from_millis(100);

/// The end-of-run snapshot convergence is judged on: one `final_state`
/// event per node that answers.
///
/// The nodes are polled one by one in parallel, so a snapshot can catch a
/// message in flight: a Redis primary counts its sentinels' hello messages
/// into its replication offset some hundred microseconds before its
/// replicas do. So the snapshot is retaken (up to two seconds) until every
/// node answers in agreement; nodes that really diverged never agree, and
/// the last snapshot then shows how.
pub(super) fn final_state(observer: &Observer) -> Vec<NodeEvent> {
    let mut statuses = observer.statuses();
    for _ in 1..SNAPSHOT_ATTEMPTS {
        if all_agree(&statuses, observer.nodes.len()) {
            break;
        }
        std::thread::sleep(SNAPSHOT_RETRY);
        statuses = observer.statuses();
    }
    let now = mono_ns();
    statuses
        .into_iter()
        .map(|status| {
            NodeEvent::new(
                status.node.clone(),
                now,
                now,
                status.term,
                EventKind::FinalState {
                    commit_index: status.commit_index,
                    applied_index: status.applied_index,
                    state_hash: status.state_hash,
                },
            )
        })
        .collect()
}
