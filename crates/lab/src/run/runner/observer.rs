//! Watching the cluster from the control namespace (linked to every node,
//! never faulted): `/status` polls, waiting for a leader and for the cluster
//! to settle, steering leadership before the workload, and final reads.
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use client::{NodeStatus, Outcome, Protocol, Request, mono_ns};
use netlab::{Fault, Lab, NetnsThread};

use crate::run::progress::Progress;
use crate::run::scenario::Timing;
use crate::run::targets::ClusterView;

/// Polls every node's status from the control namespace, in parallel,
/// in the system's client protocol.
pub(super) struct Observer {
    pub(super) control: NetnsThread,
    /// Every node with its client address, in topology order.
    pub(super) nodes: Vec<(String, SocketAddr)>,
    /// How the nodes are asked.
    protocol: Protocol,
    /// etcd member ids seen so far, by node (a leader that stops
    /// answering is still named).
    member_ids: Arc<Mutex<BTreeMap<u64, String>>>,
}

impl Observer {
    /// An observer asking `nodes` through `control` in `protocol`.
    pub(super) fn new(
        control: NetnsThread,
        nodes: Vec<(String, SocketAddr)>,
        protocol: Protocol,
    ) -> Observer {
        Observer {
            control,
            nodes,
            protocol,
            member_ids: Arc::default(),
        }
    }

    /// What every node that answers within 300 ms says about itself.
    pub(super) fn statuses(&self) -> Vec<NodeStatus> {
        let (nodes, protocol, ids) = (self.nodes.clone(), self.protocol, self.member_ids.clone());
        self.control
            .run(move || {
                let mut ids = ids.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                protocol.poll_statuses(&nodes, Duration::from_millis(300), &mut ids)
            })
            .unwrap_or_default()
    }

    /// For each of `nodes`: ms until it stopped answering `/status`, polled
    /// until every one is silent or `within_ms` passed (`None`: it still
    /// answered). Measures a pause like a network fault.
    pub(super) fn stopped_answering(
        &self,
        nodes: &[String],
        within_ms: f64,
    ) -> BTreeMap<String, Option<f64>> {
        let started = mono_ns();
        let elapsed_ms = || (mono_ns() - started) as f64 / 1e6;
        let mut silent: BTreeMap<String, Option<f64>> =
            nodes.iter().map(|node| (node.clone(), None)).collect();
        while elapsed_ms() <= within_ms && silent.values().any(Option::is_none) {
            let answering: Vec<String> = self
                .statuses()
                .into_iter()
                .map(|status| status.node)
                .collect();
            let now = elapsed_ms();
            for (node, at) in silent.iter_mut() {
                if at.is_none() && !answering.contains(node) {
                    *at = Some(now);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        silent
    }

    /// The leader with the highest term, as seen right now.
    pub(super) fn view(&self) -> (ClusterView, Vec<NodeStatus>) {
        let statuses = self.statuses();
        let view = ClusterView {
            nodes: self.nodes.iter().map(|(name, _)| name.clone()).collect(),
            leader: client::newest_leader(&statuses).map(|(leader, _)| leader),
        };
        (view, statuses)
    }

    /// The current leader and its term, as "n1 t3" (or "none").
    pub(super) fn leader_label(&self) -> String {
        let (view, statuses) = self.view();
        view.leader.map_or_else(
            || "none".to_string(),
            |leader| format!("{leader} t{}", term_of(&statuses, &leader)),
        )
    }

    /// Waits up to `limit` for a leader; returns it with its term.
    pub(super) fn wait_for_leader(
        &self,
        limit: Duration,
        cancel: &AtomicBool,
    ) -> Option<(String, u64)> {
        let deadline = mono_ns() + limit.as_nanos() as u64;
        while mono_ns() < deadline && !cancel.load(Ordering::Relaxed) {
            let (view, statuses) = self.view();
            if let Some(leader) = view.leader {
                let term = term_of(&statuses, &leader);
                return Some((leader, term));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    /// Waits until every node names the same leader and term for two
    /// election timeouts in a row (bounded), so the workload and the
    /// fault-free window start on a settled cluster rather than in the
    /// aftermath of start-up.
    pub(super) fn wait_until_settled(
        &self,
        mut leader: (String, u64),
        timing: &Timing,
        cancel: &AtomicBool,
        progress: &Progress,
    ) -> (String, u64) {
        let needed = 2 * timing.election_timeout_max.as_nanos();
        let deadline = mono_ns() + 4 * needed.max(1_000_000_000);
        let mut stable_since: Option<(u64, (String, u64))> = None;
        while mono_ns() < deadline && !cancel.load(Ordering::Relaxed) {
            let (view, statuses) = self.view();
            let agreed = view.leader.as_ref().and_then(|name| {
                let term = statuses.iter().find(|s| &s.node == name)?.term;
                let all_agree = statuses.len() == self.nodes.len()
                    && statuses
                        .iter()
                        .all(|s| s.leader.as_deref() == Some(name.as_str()) && s.term == term);
                all_agree.then(|| (name.clone(), term))
            });
            match (agreed, &stable_since) {
                (Some(current), Some((since, seen))) if *seen == current => {
                    if mono_ns() - since >= needed {
                        return current;
                    }
                }
                (Some(current), _) => stable_since = Some((mono_ns(), current)),
                (None, _) => stable_since = None,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if let Some((_, current)) = stable_since {
            leader = current;
        }
        progress.note("the cluster did not settle on one leader; starting anyway");
        leader
    }

    /// One linearizable read through the control namespace (etcd: never
    /// serializable, whatever the workload's reads are).
    pub(super) fn read(&self, addr: SocketAddr, key: &str, timeout: Duration) -> Outcome {
        let request = Request::Read { key: key.into() };
        let protocol = match self.protocol {
            Protocol::EtcdV3 { .. } => Protocol::EtcdV3 {
                reads: client::etcd::ReadConsistency::Linearizable,
            },
            other => other,
        };
        self.control
            .run(move || protocol.execute(addr, &request, 0, 0, timeout))
            .unwrap_or(Outcome::Info {
                error: "control namespace thread stopped".into(),
            })
    }
}

/// The term `node` reported, 0 if it did not answer.
pub(super) fn term_of(statuses: &[NodeStatus], node: &str) -> u64 {
    statuses
        .iter()
        .find(|status| status.node == node)
        .map_or(0, |status| status.term)
}

/// Pauses a leader that is not `preferred` for one election timeout so the
/// others elect again, until `preferred` leads (bounded attempts).
pub(super) fn steer_leadership(
    lab: &mut Lab,
    observer: &Observer,
    preferred: &str,
    mut leader: (String, u64),
    timing: &Timing,
    cancel: &AtomicBool,
    progress: &Progress,
) -> anyhow::Result<(String, u64)> {
    for _ in 0..10 {
        if leader.0 == preferred || cancel.load(Ordering::Relaxed) {
            break;
        }
        progress.note(&format!(
            "steering leadership from {} to {preferred} ...",
            leader.0
        ));
        let pause = timing.election_timeout_max.as_std() + timing.heartbeat.as_std() * 2;
        lab.apply(&Fault::Stop {
            node: leader.0.clone(),
        })?;
        std::thread::sleep(pause);
        lab.apply(&Fault::Cont {
            node: leader.0.clone(),
        })?;
        std::thread::sleep(timing.election_timeout_max.as_std());
        leader = observer
            .wait_for_leader(Duration::from_secs(10), cancel)
            .ok_or_else(|| anyhow::anyhow!("no leader after steering leadership"))?;
    }
    if leader.0 != preferred {
        progress.note(&format!(
            "could not make {preferred} the leader; continuing with {}",
            leader.0
        ));
    }
    Ok(observer.wait_until_settled(leader, timing, cancel, progress))
}
