//! Applying replica steps per the driver contract: start and tick the
//! replicas, step them with inputs, carry out their actions (sends held until
//! the write they wait for is durable, replies, events, persistence), and the
//! fsync loop that reports durability back.
use consensus::{Action, Input, IoSeq, Message, Outbound, Replica, Write};
use seeded::mix64;

use super::{Cluster, DriverBug, Ev, MS};
use crate::trace::describe;
use checker::EventKind;

fn describe_input(input: &Input) -> String {
    match input {
        Input::Tick => "tick".to_string(),
        Input::Message {
            from,
            term,
            message,
        } => format!("msg from n{from} t{term} {}", describe(message)),
        Input::Client { id, request } => format!("client #{id} {request:?}"),
        Input::Persisted { upto } => format!("persisted upto {}", upto.0),
    }
}

impl Cluster {
    pub(super) fn local_now(&self, index: usize) -> u64 {
        self.nodes[index].clock.local(self.now)
    }

    pub(super) fn start_node(&mut self, index: usize) {
        let local = self.local_now(index);
        let node = &mut self.nodes[index];
        let restored = node.disk.durable().restore();
        let last_index = restored.last_index();
        let term = restored.term;
        let replica_seed =
            mix64(self.seed ^ mix64(node.id) ^ mix64(node.incarnation.wrapping_add(0x51)));
        match Replica::new(node.config.clone(), restored, replica_seed, local) {
            Ok(replica) => node.replica = Some(replica),
            Err(error) => {
                let text = format!(
                    "{}: the replica rejected its configuration: {error}",
                    node.name
                );
                self.violation(text);
                return;
            }
        }
        let name = node.name.clone();
        self.trace.line(
            self.now,
            format_args!("{name} start term={term} last_index={last_index}"),
        );
        self.push_event(index, local, term, EventKind::Started);
        self.push_event(index, local, term, EventKind::Recovered { last_index });
        let actions = self.nodes[index]
            .replica
            .as_mut()
            .map(Replica::take_actions)
            .unwrap_or_default();
        self.handle_actions(index, actions);
        self.schedule_tick(index);
    }

    pub(super) fn schedule_tick(&mut self, index: usize) {
        let node = &self.nodes[index];
        let next_local = node.clock.local(self.now) + node.config.tick_interval_ns;
        let at = node.clock.to_true(next_local).max(self.now + 1);
        let epoch = node.tick_epoch;
        self.schedule(at, Ev::Tick { node: index, epoch });
    }

    pub(super) fn tick(&mut self, index: usize, epoch: u64) {
        let node = &self.nodes[index];
        if node.tick_epoch != epoch || node.replica.is_none() || node.paused {
            return;
        }
        self.step_node(index, Input::Tick);
        self.schedule_tick(index);
    }

    pub(super) fn step_node(&mut self, index: usize, input: Input) {
        let local = self.local_now(index);
        let node = &mut self.nodes[index];
        let Some(replica) = node.replica.as_mut() else {
            return;
        };
        if self.trace.enabled() {
            self.trace.line(
                self.now,
                format_args!("{} step @{local} {}", node.name, describe_input(&input)),
            );
        }
        replica.step(local, input);
        let actions = replica.take_actions();
        self.stats.steps += 1;
        self.handle_actions(index, actions);
        let node = &self.nodes[index];
        if let (Some(episode), true) = (
            node.crash_armed,
            node.replica.is_some() && node.disk.has_pending(),
        ) {
            self.trace.line(
                self.now,
                format_args!("{} armed crash fires after a write", node.name),
            );
            self.fired(episode);
            self.crash(index);
        }
    }

    fn handle_actions(&mut self, index: usize, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Send(send) => {
                    if self.options.driver_bug == Some(DriverBug::LoseVoteReplies)
                        && matches!(send.message, Message::VoteResponse { .. })
                    {
                        self.stats.lost += 1;
                        continue;
                    }
                    let honour_after =
                        self.options.driver_bug != Some(DriverBug::SendBeforePersist);
                    if honour_after && send.waits_for(self.nodes[index].disk.durable_seq()) {
                        self.nodes[index].held.push(send);
                    } else {
                        self.transmit(index, send);
                    }
                }
                Action::Reply { id, reply } => self.reply(index, id, reply),
                Action::Event(event) => self.record(index, event),
                Action::Write(write) => {
                    if self.trace.enabled() {
                        let name = &self.nodes[index].name;
                        let text = match &write {
                            Write::Meta {
                                term,
                                voted_for,
                                seq,
                            } => {
                                format!(
                                    "{name} persist meta term={term} voted_for={voted_for:?} seq={}",
                                    seq.0
                                )
                            }
                            Write::Append {
                                truncate_after,
                                entries,
                                seq,
                            } => format!(
                                "{name} persist append truncate_after={truncate_after:?} entries={:?} seq={}",
                                entries
                                    .iter()
                                    .map(|e| (e.index, e.term))
                                    .collect::<Vec<_>>(),
                                seq.0
                            ),
                            Write::InstallSnapshot { snapshot, seq } => format!(
                                "{name} persist snapshot {}@{} seq={}",
                                snapshot.last_index, snapshot.last_term, seq.0
                            ),
                            Write::Compact { snapshot } => {
                                format!(
                                    "{name} compact to {}@{}",
                                    snapshot.last_index, snapshot.last_term
                                )
                            }
                        };
                        self.trace.line(self.now, format_args!("{text}"));
                    }
                    if let Err(error) = self.nodes[index].disk.enqueue(write) {
                        let text = format!("{}: storage contract: {error}", self.nodes[index].name);
                        self.violation(text);
                    }
                }
            }
        }
        self.maybe_fsync(index);
    }

    // ----- storage -----------------------------------------------------

    pub(super) fn maybe_fsync(&mut self, index: usize) {
        let node = &mut self.nodes[index];
        if node.replica.is_none() || node.paused || !node.disk.start_fsync() {
            return;
        }
        let delay = self.disk_rng.range(50_000, 2 * MS) * node.disk_slowdown;
        let incarnation = node.incarnation;
        self.stats.fsyncs += 1;
        self.schedule(
            self.now + delay,
            Ev::Fsync {
                node: index,
                incarnation,
            },
        );
    }

    pub(super) fn fsync_done(&mut self, index: usize, incarnation: u64) {
        let node = &mut self.nodes[index];
        if node.incarnation != incarnation || node.replica.is_none() {
            return;
        }
        match node.disk.finish_fsync() {
            Err(error) => {
                let text = format!("{}: storage contract: {error}", node.name);
                self.violation(text);
            }
            Ok(Some(upto)) => {
                self.trace.line(
                    self.now,
                    format_args!("{} fsync done upto {}", self.nodes[index].name, upto.0),
                );
                if self.nodes[index].paused {
                    self.nodes[index]
                        .backlog
                        .push_back(Input::Persisted { upto });
                } else {
                    self.persisted(index, upto);
                }
            }
            Ok(None) => {}
        }
        self.maybe_fsync(index);
    }

    /// Step 2 and 3 of the driver contract: release the sends that waited
    /// for `upto`, then tell the replica.
    pub(super) fn persisted(&mut self, index: usize, upto: IoSeq) {
        let held = std::mem::take(&mut self.nodes[index].held);
        let (waiting, ready): (Vec<Outbound>, Vec<Outbound>) =
            held.into_iter().partition(|send| send.waits_for(upto));
        self.nodes[index].held = waiting;
        for send in ready {
            self.transmit(index, send);
        }
        self.step_node(index, Input::Persisted { upto });
    }
}
