//! Connecting the workload's clients to the replicas: their commands become
//! queued events, requests reach (or miss) a process, replies travel back.
use consensus::{ClientReply, ClientRequest, Input, NodeId};

use super::{Cluster, Ev};
use crate::workload::{Command, Outcome, Workload};

impl Cluster {
    pub(super) fn client_latency(&mut self) -> u64 {
        self.net_rng
            .range(self.client_latency.0, self.client_latency.1)
    }

    /// Calls into the workload, traces the history records it added and
    /// carries out its commands.
    pub(super) fn drive_workload(&mut self, call: impl FnOnce(&mut Workload, u64) -> Vec<Command>) {
        let before = self.workload.history().len();
        let commands = call(&mut self.workload, self.now);
        self.trace_history_since(before);
        self.run_commands(commands);
    }

    fn trace_history_since(&mut self, before: usize) {
        if !self.trace.enabled() {
            return;
        }
        let ops: Vec<String> = self.workload.history().ops[before..]
            .iter()
            .map(|op| serde_json::to_string(op).expect("history ops serialize"))
            .collect();
        for op in ops {
            self.trace.line(self.now, format_args!("history {op}"));
        }
    }

    fn run_commands(&mut self, commands: Vec<Command>) {
        for command in commands {
            match command {
                Command::Send {
                    attempt,
                    node,
                    request,
                    delay,
                } => {
                    let incarnation = self.nodes[(node - 1) as usize].incarnation;
                    self.in_flight.insert(attempt, node);
                    self.schedule(
                        self.now + delay,
                        Ev::RequestArrives {
                            attempt,
                            node,
                            incarnation,
                            request,
                        },
                    );
                }
                Command::Wake { client, delay } => {
                    self.schedule(self.now + delay, Ev::ClientWake { client })
                }
                Command::Timeout {
                    client,
                    serial,
                    delay,
                } => self.schedule(self.now + delay, Ev::ClientTimeout { client, serial }),
            }
        }
    }

    pub(super) fn request_arrives(
        &mut self,
        attempt: u64,
        node: NodeId,
        incarnation: u64,
        request: ClientRequest,
    ) {
        let index = (node - 1) as usize;
        if self.nodes[index].replica.is_none() {
            // Connection refused: the request reached no replica.
            self.in_flight.remove(&attempt);
            self.return_outcome(attempt, node, Outcome::Refused);
            return;
        }
        if self.nodes[index].incarnation != incarnation {
            // Sent to a process that has since died; its client saw the reset.
            return;
        }
        let input = Input::Client {
            id: attempt,
            request,
        };
        if self.nodes[index].paused {
            self.nodes[index].backlog.push_back(input);
            return;
        }
        self.step_node(index, input);
    }

    pub(super) fn reply(&mut self, index: usize, id: u64, reply: ClientReply) {
        let node = self.nodes[index].id;
        if self.trace.enabled() {
            self.trace.line(
                self.now,
                format_args!("{} reply #{id} {reply:?}", self.nodes[index].name),
            );
        }
        if self.in_flight.remove(&id).is_none() {
            // Either already answered or never sent to this process.
            let text = format!(
                "{}: reply to request #{id}, which is not pending there",
                self.nodes[index].name
            );
            self.violation(text);
            return;
        }
        self.return_outcome(id, node, Outcome::Reply(reply));
    }

    /// Schedules an attempt's outcome at its client, one client-link latency
    /// from now.
    pub(super) fn return_outcome(&mut self, attempt: u64, node: NodeId, outcome: Outcome) {
        let at = self.now + self.client_latency();
        self.schedule(
            at,
            Ev::OutcomeArrives {
                attempt,
                node,
                outcome,
            },
        );
    }
}
