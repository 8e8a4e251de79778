//! Fault application: validates a fault, folds it into the desired network
//! state, renders that per namespace and moves each namespace there (nft,
//! NFQUEUE rules, qdiscs, link state) with make-before-break delay workers.

use super::Lab;
use super::workers::{DelayWorker, delay_changed, flipped_queue_bases};
use crate::error::NetlabError;
use crate::fault::{Fault, NetState};
use crate::plan::Step;
use crate::process::{self, ProcessSignal};
use crate::render::{NsConfig, render};
use crate::tc;
use crate::tools::run_in;
use std::collections::BTreeMap;
use std::io;

impl Lab {
    /// Applies a fault (network or process). Network faults are rendered to
    /// the full desired state and applied per namespace atomically.
    ///
    /// # Errors
    /// Invalid references, an unsupported effect (naming the missing kernel
    /// feature), or a tool failure.
    pub fn apply(&mut self, fault: &Fault) -> Result<(), NetlabError> {
        fault
            .validate(&self.journal.topology)
            .map_err(NetlabError::InvalidFault)?;
        match fault {
            Fault::Kill { node } => self.signal(node, ProcessSignal::Kill),
            Fault::Stop { node } => self.signal(node, ProcessSignal::Stop),
            Fault::Cont { node } => self.signal(node, ProcessSignal::Cont),
            Fault::Restart { node } => self.restart(node).map(|_| ()),
            network => {
                let mut next = self.journal.net.clone();
                next.apply(network);
                self.apply_net(next)
            }
        }
    }

    /// Checks, without touching the kernel, that every fault is valid and
    /// that this machine has a backend for each (applied one after another
    /// from the current state). Use it before a run to report a scenario as
    /// SKIPPED rather than failing halfway.
    ///
    /// # Errors
    /// [`NetlabError::InvalidFault`] or [`NetlabError::Unsupported`] (naming
    /// the missing kernel feature).
    pub fn check_supported(&self, faults: &[Fault]) -> Result<(), NetlabError> {
        let mut state = self.journal.net.clone();
        for fault in faults {
            fault
                .validate(&self.journal.topology)
                .map_err(NetlabError::InvalidFault)?;
            state.apply(fault);
            render(
                &self.journal.run,
                &self.journal.topology,
                &state,
                &self.journal.capabilities,
                &self.journal.queue_bases,
            )?;
        }
        Ok(())
    }

    /// Removes every network fault (partitions, fault shapes, downed links);
    /// base shaping stays.
    ///
    /// # Errors
    /// As [`Lab::apply`].
    pub fn heal_all(&mut self) -> Result<(), NetlabError> {
        let next = NetState::from_topology(&self.journal.topology);
        self.apply_net(next)
    }

    pub(super) fn apply_net(&mut self, next: NetState) -> Result<(), NetlabError> {
        let run = self.journal.run.clone();
        let topology = self.journal.topology.clone();
        let caps = self.journal.capabilities;
        let bases = self.journal.queue_bases.clone();
        let same = render(&run, &topology, &next, &caps, &bases)?;
        let next_bases = flipped_queue_bases(&self.applied, &same, &bases);
        let configs = render(&run, &topology, &next, &caps, &next_bases)?;
        // 1. Make before break: new delay consumers bind their queues first.
        let mut fresh: BTreeMap<String, DelayWorker> = BTreeMap::new();
        let mut commands: Vec<(String, Vec<ToolCall>)> = Vec::new();
        for (node, config) in &configs {
            let old = self.applied.get(node).cloned().unwrap_or_default();
            let ns = run.node_netns(node);
            if delay_changed(&old, config) && !config.delay_queues.is_empty() {
                let worker = self.start_worker(node, &ns, config)?;
                fresh.insert(node.clone(), worker);
            }
            let calls = ns_tool_calls(&ns, &old, config);
            if !calls.is_empty() {
                commands.push((ns, calls));
            }
        }
        // 2. All namespaces at once: a fault should land everywhere at about
        //    the same instant (each namespace's change is itself atomic).
        let failures: Vec<NetlabError> = std::thread::scope(|scope| {
            let handles: Vec<_> = commands
                .iter()
                .map(|(ns, calls)| scope.spawn(move || run_calls(ns, calls)))
                .collect();
            handles
                .into_iter()
                .filter_map(|h| match h.join() {
                    Ok(result) => result.err(),
                    Err(_) => Some(NetlabError::io(
                        "apply",
                        io::Error::other("namespace apply thread panicked"),
                    )),
                })
                .collect()
        });
        // 3. Retire replaced consumers (they drain what they hold, then exit).
        for (node, config) in &configs {
            let old = self.applied.get(node).cloned().unwrap_or_default();
            if delay_changed(&old, config) {
                if let Some(old_worker) = self.workers.remove(node) {
                    let _ = process::signal_pid(old_worker.record.pid, ProcessSignal::Term);
                    self.retiring.push(old_worker);
                }
                if let Some(worker) = fresh.remove(node) {
                    self.workers.insert(node.clone(), worker);
                }
            }
        }
        if let Some(failure) = failures.into_iter().next() {
            // Leave `applied` as it was so the next apply retries everything.
            return Err(failure);
        }
        for (node, config) in &configs {
            self.applied.insert(node.clone(), config.clone());
        }
        self.journal.queue_bases = next_bases;
        // Links: down what is newly down, restore what came back.
        let before = self.journal.net.down.clone();
        for (a, b) in next.down.difference(&before) {
            self.set_link_pair(a, b, false)?;
        }
        for (a, b) in before.difference(&next.down) {
            self.set_link_pair(a, b, true)?;
        }
        self.journal.net = next;
        self.reap_retiring();
        self.save()
    }

    fn set_link_pair(&mut self, a: &str, b: &str, up: bool) -> Result<(), NetlabError> {
        let plan = &self.journal.plan;
        let (Some(na), Some(nb)) = (plan.node(a), plan.node(b)) else {
            return Ok(());
        };
        let rtnl = self.rtnl.as_ref().ok_or_else(|| {
            NetlabError::io("link change", io::Error::other("lab already torn down"))
        })?;
        let ends = [
            (na.netns.clone(), plan.run.mesh_ifname(na.index, nb.index)),
            (nb.netns.clone(), plan.run.mesh_ifname(nb.index, na.index)),
        ];
        for (ns, ifname) in &ends {
            rtnl.set_link(ns, ifname, up).map_err(|e| {
                NetlabError::io(
                    format!("set {ifname} in {ns} {}", if up { "up" } else { "down" }),
                    e,
                )
            })?;
        }
        if up {
            // Host routes over a device are flushed when it goes down.
            let routes: Vec<Step> = plan
                .link_steps(a, b)
                .into_iter()
                .filter(|s| matches!(s, Step::AddRoute { .. }))
                .collect();
            rtnl.execute(routes).map_err(|f| NetlabError::Step {
                step: f.step,
                source: f.source,
            })?;
        }
        Ok(())
    }
}

/// One tool invocation inside a namespace.
struct ToolCall {
    tool: &'static str,
    args: Vec<String>,
    stdin: String,
    /// "Already gone" is fine (removing a qdisc that is not there).
    ignore_failure: bool,
}

/// The commands that move a namespace from `old` to `new`, in order: nft
/// table (one transaction), NFQUEUE rules (one transaction), qdiscs.
fn ns_tool_calls(ns: &str, old: &NsConfig, new: &NsConfig) -> Vec<ToolCall> {
    let mut calls = Vec::new();
    if old.nft != new.nft && (old.nft_active || new.nft_active) {
        calls.push(ToolCall {
            tool: "nft",
            args: vec!["-f".into(), "-".into()],
            stdin: new.nft.clone(),
            ignore_failure: false,
        });
    }
    if delay_changed(old, new) {
        calls.push(ToolCall {
            tool: "iptables-restore",
            args: Vec::new(),
            stdin: new.iptables.clone(),
            ignore_failure: false,
        });
    }
    for q in &old.qdiscs {
        if !new.qdiscs.iter().any(|n| n.ifname() == q.ifname()) {
            calls.push(ToolCall {
                tool: "tc",
                args: tc::qdisc_delete_args(ns, q.ifname()),
                stdin: String::new(),
                ignore_failure: true,
            });
        }
    }
    for q in &new.qdiscs {
        if !old.qdiscs.contains(q) {
            calls.push(ToolCall {
                tool: "tc",
                args: tc::qdisc_replace_args(ns, q),
                stdin: String::new(),
                ignore_failure: false,
            });
        }
    }
    calls
}

fn run_calls(ns: &str, calls: &[ToolCall]) -> Result<(), NetlabError> {
    for call in calls {
        match run_in(ns, call.tool, &call.args, &call.stdin) {
            Ok(_) => {}
            Err(_) if call.ignore_failure => {}
            Err(e) => return Err(NetlabError::io(call.tool, e)),
        }
    }
    Ok(())
}
