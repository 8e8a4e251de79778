//! Simulated clients and the Jepsen-style history they produce.
//!
//! Each client runs one operation at a time (read, write, cas or delete on a
//! small key set). Some clients are pinned to one node — so both sides of a
//! partition keep receiving requests — and the rest float, following the
//! leader. Within one operation a client follows `NotLeader` hints (the
//! request id stays the same, so a retry can never apply twice). Client
//! links are never cut: a client sits on its node's side of any partition,
//! as the lab's clients sit in their region's namespace.
//!
//! Outcomes follow Jepsen: `ok` took effect; `fail` definitely did not (a
//! rejection, a CAS whose comparison failed, a refused connection); `info`
//! is unknown (a timeout, a reset connection, an `Unknown` reply). After an
//! `info` the client continues as a new process, as in Jepsen, because the
//! old operation may still take effect at any later time.
//!
//! The workload never touches the event queue; it returns [`Command`]s that
//! the simulator turns into events.
use std::collections::BTreeMap;

use checker::{History, Op, OpFn, OpKind};
use consensus::{ClientReply, ClientRequest, ClientResponse, KvOp, ReadMode, Rejection};
use wire::NodeId;

use crate::rng::SimRng;

const MS: u64 = 1_000_000;
/// Attempt ids carry the client index in their low bits.
const CLIENT_BITS: u32 = 8;

/// Something the simulator must do for the workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Deliver `request` to `node` after `delay`, as request id `attempt`.
    Send {
        attempt: u64,
        node: NodeId,
        request: ClientRequest,
        delay: u64,
    },
    /// Call [`Workload::wake`] for `client` after `delay`.
    Wake { client: usize, delay: u64 },
    /// Call [`Workload::timeout`] for `client`/`serial` after `delay`.
    Timeout {
        client: usize,
        serial: u64,
        delay: u64,
    },
}

/// Tunables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkloadOptions {
    pub keys: usize,
    /// Clients pinned to one node each (node `i % n`).
    pub pinned: usize,
    pub floating: usize,
    /// Use lease reads for every other client (otherwise ReadIndex).
    pub lease_reads: bool,
    pub think_min_ns: u64,
    pub think_max_ns: u64,
    /// An operation with no answer by then is `info`.
    pub op_timeout_ns: u64,
    pub max_attempts: u32,
    /// One-way client ↔ node latency.
    pub latency_min_ns: u64,
    pub latency_max_ns: u64,
}

impl WorkloadOptions {
    pub fn default_for(nodes: usize) -> WorkloadOptions {
        WorkloadOptions {
            keys: 4,
            pinned: nodes,
            floating: 2,
            lease_reads: true,
            think_min_ns: 20 * MS,
            think_max_ns: 120 * MS,
            op_timeout_ns: 1_000 * MS,
            max_attempts: 6,
            latency_min_ns: 50_000,
            latency_max_ns: 500_000,
        }
    }
}

#[derive(Debug, Clone)]
struct Current {
    serial: u64,
    invoke: Op,
    request: ClientRequest,
    attempt: u64,
    node: NodeId,
    attempts: u32,
    deadline: u64,
}

#[derive(Debug, Clone)]
struct Client {
    process: u64,
    home: Option<NodeId>,
    read_mode: ReadMode,
    leader_guess: NodeId,
    next_seq: u64,
    current: Option<Current>,
    /// The last value this client saw per key (for CAS expectations).
    seen: BTreeMap<String, Option<String>>,
    /// Final-read client: reads each key in turn until it succeeds.
    final_keys: Option<Vec<String>>,
}

/// Counters for reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkloadStats {
    pub invoked: u64,
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
    pub retries: u64,
}

#[derive(Debug)]
pub struct Workload {
    options: WorkloadOptions,
    nodes: Vec<NodeId>,
    keys: Vec<String>,
    clients: Vec<Client>,
    rng: SimRng,
    history: History,
    next_process: u64,
    next_serial: u64,
    next_attempt: u64,
    next_value: u64,
    stopped: bool,
    stats: WorkloadStats,
}

/// The result of an attempt, as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Reply(ClientReply),
    /// The node was down: the request never reached a replica.
    Refused,
    /// The connection broke after the request was sent.
    Reset,
}

impl Workload {
    pub fn new(nodes: Vec<NodeId>, options: WorkloadOptions, rng: SimRng) -> Workload {
        let keys = (0..options.keys).map(|k| format!("k{k}")).collect();
        let mut clients = Vec::new();
        for index in 0..options.pinned + options.floating {
            let home = (index < options.pinned).then(|| nodes[index % nodes.len()]);
            let read_mode = if options.lease_reads && index % 2 == 1 {
                ReadMode::Lease
            } else {
                ReadMode::Linearizable
            };
            clients.push(Client {
                process: index as u64,
                home,
                read_mode,
                leader_guess: home.unwrap_or(nodes[index % nodes.len()]),
                next_seq: 1,
                current: None,
                seen: BTreeMap::new(),
                final_keys: None,
            });
        }
        assert!(clients.len() < (1 << CLIENT_BITS) - 1, "too many clients");
        let next_process = clients.len() as u64;
        Workload {
            options,
            nodes,
            keys,
            clients,
            rng,
            history: History::default(),
            next_process,
            next_serial: 0,
            next_attempt: 0,
            next_value: 0,
            stopped: false,
            stats: WorkloadStats::default(),
        }
    }

    pub fn clients(&self) -> usize {
        self.clients.len()
    }

    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    pub fn history(&self) -> &History {
        &self.history
    }

    pub fn into_history(self) -> History {
        self.history
    }

    pub fn stats(&self) -> WorkloadStats {
        self.stats
    }

    /// The client an attempt belongs to.
    pub fn owner(&self, attempt: u64) -> usize {
        (attempt & ((1 << CLIENT_BITS) - 1)) as usize
    }

    /// First wake-ups: every client starts after a random think time.
    pub fn start(&mut self) -> Vec<Command> {
        (0..self.clients.len())
            .map(|client| Command::Wake {
                client,
                delay: self.think(),
            })
            .collect()
    }

    /// Regular clients invoke nothing new from now on.
    pub fn stop(&mut self) {
        self.stopped = true;
    }

    /// Whether any operation is still waiting for an outcome.
    pub fn busy(&self) -> bool {
        self.clients.iter().any(|c| c.current.is_some())
    }

    /// Adds a client that reads every key once, linearizably, retrying until
    /// each read succeeds; returns its first wake-up.
    pub fn final_reads(&mut self, leader_guess: NodeId) -> Vec<Command> {
        let process = self.next_process;
        self.next_process += 1;
        let mut keys = self.keys.clone();
        keys.reverse(); // popped from the back
        self.clients.push(Client {
            process,
            home: None,
            read_mode: ReadMode::Linearizable,
            leader_guess,
            next_seq: 1,
            current: None,
            seen: BTreeMap::new(),
            final_keys: Some(keys),
        });
        vec![Command::Wake {
            client: self.clients.len() - 1,
            delay: 0,
        }]
    }

    /// Whether the final-read client has read every key.
    pub fn final_reads_done(&self) -> bool {
        self.clients
            .iter()
            .filter_map(|c| c.final_keys.as_ref())
            .all(|keys| keys.is_empty())
            && !self
                .clients
                .iter()
                .any(|c| c.final_keys.is_some() && c.current.is_some())
    }

    fn think(&mut self) -> u64 {
        self.rng
            .range(self.options.think_min_ns, self.options.think_max_ns)
    }

    fn latency(&mut self) -> u64 {
        self.rng
            .range(self.options.latency_min_ns, self.options.latency_max_ns)
    }

    fn fresh_value(&mut self) -> String {
        self.next_value += 1;
        format!("v{}", self.next_value)
    }

    fn attempt_id(&mut self, client: usize) -> u64 {
        self.next_attempt += 1;
        (self.next_attempt << CLIENT_BITS) | client as u64
    }

    /// Time for `client` to invoke its next operation.
    pub fn wake(&mut self, client: usize, now: u64) -> Vec<Command> {
        if self.clients[client].current.is_some() {
            return Vec::new();
        }
        let is_final = self.clients[client].final_keys.is_some();
        if self.stopped && !is_final {
            return Vec::new();
        }
        let (f, key, value, expected) = if is_final {
            let Some(key) = self.clients[client]
                .final_keys
                .as_ref()
                .and_then(|k| k.last().cloned())
            else {
                return Vec::new();
            };
            (OpFn::Read, key, None, None)
        } else {
            let key = self.rng.pick(&self.keys).clone();
            let f = [OpFn::Read, OpFn::Write, OpFn::Cas, OpFn::Delete]
                [self.rng.weighted(&[40, 30, 20, 10])];
            match f {
                OpFn::Read | OpFn::Delete => (f, key, None, None),
                OpFn::Write => (f, key, Some(self.fresh_value()), None),
                OpFn::Cas => {
                    let expected = self.clients[client].seen.get(&key).cloned().flatten();
                    (f, key, Some(self.fresh_value()), expected)
                }
            }
        };
        let c = &mut self.clients[client];
        let consensus_client = c.process + 1;
        let request = match f {
            OpFn::Read => ClientRequest::Read {
                key: key.clone(),
                mode: c.read_mode,
            },
            OpFn::Write => ClientRequest::Write {
                client: consensus_client,
                seq: c.next_seq,
                op: KvOp::Put {
                    key: key.clone(),
                    value: value.clone().expect("a write has a value"),
                },
            },
            OpFn::Cas => ClientRequest::Write {
                client: consensus_client,
                seq: c.next_seq,
                op: KvOp::Cas {
                    key: key.clone(),
                    expected: expected.clone(),
                    value: value.clone().expect("a cas has a value"),
                },
            },
            OpFn::Delete => ClientRequest::Write {
                client: consensus_client,
                seq: c.next_seq,
                op: KvOp::Delete { key: key.clone() },
            },
        };
        if f.is_mutation() {
            c.next_seq += 1;
        }
        let mut invoke = Op::new(c.process, OpKind::Invoke, f, key, now);
        invoke.value = value;
        invoke.expected = expected;
        let node = c.home.unwrap_or(c.leader_guess);
        self.history.push(invoke.clone());
        self.stats.invoked += 1;
        self.next_serial += 1;
        let serial = self.next_serial;
        let attempt = self.attempt_id(client);
        let deadline = now + self.options.op_timeout_ns;
        self.clients[client].current = Some(Current {
            serial,
            invoke,
            request: request.clone(),
            attempt,
            node,
            attempts: 1,
            deadline,
        });
        let delay = self.latency();
        vec![
            Command::Send {
                attempt,
                node,
                request,
                delay,
            },
            Command::Timeout {
                client,
                serial,
                delay: self.options.op_timeout_ns,
            },
        ]
    }

    /// The operation `serial` of `client` ran out of time.
    pub fn timeout(&mut self, client: usize, serial: u64, now: u64) -> Vec<Command> {
        let matches = self.clients[client]
            .current
            .as_ref()
            .is_some_and(|current| current.serial == serial);
        if !matches {
            return Vec::new();
        }
        self.complete(client, now, OpKind::Info, |op| op.with_error("timeout"))
    }

    /// The outcome of `attempt` reached its client.
    pub fn outcome(
        &mut self,
        attempt: u64,
        node: NodeId,
        outcome: Outcome,
        now: u64,
    ) -> Vec<Command> {
        let client = self.owner(attempt);
        let Some(current) = self.clients.get(client).and_then(|c| c.current.as_ref()) else {
            return Vec::new();
        };
        if current.attempt != attempt {
            return Vec::new(); // a late answer to an attempt we gave up on
        }
        let node_name = format!("n{node}");
        let f = current.invoke.f;
        match outcome {
            Outcome::Reply(ClientReply::Ok(response)) => {
                self.clients[client].leader_guess = node;
                self.ok(client, f, node_name, response, now)
            }
            Outcome::Reply(ClientReply::Rejected(Rejection::NotLeader { leader })) => {
                if let Some(leader) = leader {
                    self.clients[client].leader_guess = leader;
                }
                self.retry(client, leader, "not_leader", now)
            }
            Outcome::Refused => self.retry(client, None, "unavailable", now),
            Outcome::Reply(ClientReply::Rejected(rejection)) => {
                let kind = rejection.kind();
                self.complete(client, now, OpKind::Fail, |op| {
                    op.with_node(node_name).with_error(kind)
                })
            }
            Outcome::Reply(ClientReply::Unknown { reason }) => {
                self.complete(client, now, OpKind::Info, |op| {
                    op.with_node(node_name)
                        .with_error(format!("unknown: {reason}"))
                })
            }
            Outcome::Reset => self.complete(client, now, OpKind::Info, |op| {
                op.with_node(node_name).with_error("connection reset")
            }),
        }
    }

    fn ok(
        &mut self,
        client: usize,
        f: OpFn,
        node: String,
        response: ClientResponse,
        now: u64,
    ) -> Vec<Command> {
        let key = self.clients[client]
            .current
            .as_ref()
            .map(|c| c.invoke.key.clone())
            .expect("an operation is running");
        match (f, response) {
            (OpFn::Read, ClientResponse::Value { value, .. }) => {
                self.clients[client].seen.insert(key, value.clone());
                if let Some(keys) = self.clients[client].final_keys.as_mut() {
                    keys.pop();
                }
                self.complete(client, now, OpKind::Ok, |mut op| {
                    op.value = value;
                    op.with_node(node)
                })
            }
            (OpFn::Write | OpFn::Delete, ClientResponse::Written { token, .. }) => {
                let written = self.clients[client]
                    .current
                    .as_ref()
                    .and_then(|c| c.invoke.value.clone());
                self.clients[client].seen.insert(key, written);
                self.complete(client, now, OpKind::Ok, |op| {
                    op.with_node(node).with_token(token.term, token.index)
                })
            }
            (OpFn::Cas, ClientResponse::Written { token, applied }) => {
                if applied {
                    let written = self.clients[client]
                        .current
                        .as_ref()
                        .and_then(|c| c.invoke.value.clone());
                    self.clients[client].seen.insert(key, written);
                    self.complete(client, now, OpKind::Ok, |op| {
                        op.with_node(node).with_token(token.term, token.index)
                    })
                } else {
                    // The comparison failed: the value did not change. We no
                    // longer know the current value.
                    self.clients[client].seen.remove(&key);
                    self.complete(client, now, OpKind::Fail, |op| {
                        op.with_node(node)
                            .with_token(token.term, token.index)
                            .with_error("cas_mismatch")
                    })
                }
            }
            (_, response) => self.complete(client, now, OpKind::Info, |op| {
                op.with_node(node)
                    .with_error(format!("response does not match the request: {response:?}"))
            }),
        }
    }

    /// Sends the same request again (same request id, so it applies at most
    /// once), to the hinted leader or the next node.
    fn retry(
        &mut self,
        client: usize,
        hint: Option<NodeId>,
        error: &'static str,
        now: u64,
    ) -> Vec<Command> {
        let nodes = self.nodes.clone();
        let max_attempts = self.options.max_attempts;
        let current = self.clients[client]
            .current
            .as_ref()
            .expect("an operation is running");
        let tried = current.node;
        if current.attempts >= max_attempts || now >= current.deadline {
            let name = format!("n{tried}");
            return self.complete(client, now, OpKind::Fail, |op| {
                op.with_node(name).with_error(error)
            });
        }
        let next = match hint {
            Some(leader) if leader != tried => leader,
            _ => {
                let position = nodes.iter().position(|n| *n == tried).unwrap_or(0);
                nodes[(position + 1) % nodes.len()]
            }
        };
        // A fresh hint is worth trying at once; otherwise give an election time.
        let backoff = if hint.is_some_and(|h| h != tried) {
            self.latency()
        } else {
            self.rng.range(20 * MS, 60 * MS)
        };
        let attempt = self.attempt_id(client);
        self.stats.retries += 1;
        let current = self.clients[client]
            .current
            .as_mut()
            .expect("an operation is running");
        current.attempt = attempt;
        current.node = next;
        current.attempts += 1;
        vec![Command::Send {
            attempt,
            node: next,
            request: current.request.clone(),
            delay: backoff,
        }]
    }

    fn complete(
        &mut self,
        client: usize,
        now: u64,
        kind: OpKind,
        decorate: impl FnOnce(Op) -> Op,
    ) -> Vec<Command> {
        let current = self.clients[client]
            .current
            .take()
            .expect("an operation is running");
        let op = decorate(current.invoke.complete(kind, now));
        self.history.push(op);
        match kind {
            OpKind::Ok => self.stats.ok += 1,
            OpKind::Fail => self.stats.fail += 1,
            OpKind::Info => {
                self.stats.info += 1;
                // The old operation may still happen: continue as a new process.
                self.clients[client].process = self.next_process;
                self.clients[client].next_seq = 1;
                self.next_process += 1;
            }
            OpKind::Invoke => unreachable!("completions are never invokes"),
        }
        let delay = if self.clients[client].final_keys.is_some() {
            if kind == OpKind::Ok { 0 } else { 100 * MS }
        } else {
            self.think()
        };
        vec![Command::Wake { client, delay }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wire::Token;

    fn workload() -> Workload {
        let mut options = WorkloadOptions::default_for(3);
        options.floating = 1;
        Workload::new(vec![1, 2, 3], options, SimRng::stream(1, "clients"))
    }

    fn send(commands: &[Command]) -> (u64, NodeId, ClientRequest) {
        commands
            .iter()
            .find_map(|c| match c {
                Command::Send {
                    attempt,
                    node,
                    request,
                    ..
                } => Some((*attempt, *node, request.clone())),
                _ => None,
            })
            .expect("a send")
    }

    /// Wakes `client` until it invokes a write-like operation.
    fn invoke_write(w: &mut Workload, client: usize) -> (u64, NodeId, ClientRequest) {
        for now in 0..1_000 {
            let commands = w.wake(client, now);
            let (attempt, node, request) = send(&commands);
            if matches!(request, ClientRequest::Write { .. }) {
                return (attempt, node, request);
            }
            w.outcome(
                attempt,
                node,
                Outcome::Reply(ClientReply::Rejected(Rejection::NoQuorum)),
                now,
            );
        }
        panic!("no write in 1000 operations");
    }

    #[test]
    fn pinned_clients_cover_every_node() {
        let mut w = workload();
        let targets: Vec<NodeId> = (0..3).map(|c| send(&w.wake(c, 0)).1).collect();
        assert_eq!(targets, vec![1, 2, 3]);
    }

    #[test]
    fn not_leader_hint_retries_same_request_then_ok() {
        let mut w = workload();
        let (attempt, node, request) = invoke_write(&mut w, 0);
        let retry = w.outcome(
            attempt,
            node,
            Outcome::Reply(ClientReply::Rejected(Rejection::NotLeader {
                leader: Some(3),
            })),
            10,
        );
        let (attempt2, node2, request2) = send(&retry);
        assert_eq!(
            (node2, &request2),
            (3, &request),
            "same request id to the hinted leader"
        );
        let done = w.outcome(
            attempt2,
            3,
            Outcome::Reply(ClientReply::Ok(ClientResponse::Written {
                token: Token { term: 2, index: 9 },
                applied: true,
            })),
            20,
        );
        assert!(matches!(done[0], Command::Wake { client: 0, .. }));
        let last = w.history().ops.last().unwrap();
        assert_eq!(last.kind, OpKind::Ok);
        assert_eq!(last.node.as_deref(), Some("n3"));
        assert_eq!(last.token, Some(checker::Token { term: 2, index: 9 }));
        // A late answer to the first attempt is ignored.
        assert!(w.outcome(attempt, node, Outcome::Reset, 30).is_empty());
    }

    #[test]
    fn outcomes_map_to_jepsen_types() {
        let mut w = workload();
        let (attempt, node, _) = invoke_write(&mut w, 1);
        w.outcome(
            attempt,
            node,
            Outcome::Reply(ClientReply::Rejected(Rejection::LeaseExpired)),
            5,
        );
        assert_eq!(w.history().ops.last().unwrap().kind, OpKind::Fail);

        let (attempt, node, _) = invoke_write(&mut w, 1);
        let process = w.history().ops.last().unwrap().process;
        w.outcome(
            attempt,
            node,
            Outcome::Reply(ClientReply::Unknown {
                reason: "lost".into(),
            }),
            6,
        );
        let info = w.history().ops.last().unwrap();
        assert_eq!((info.kind, info.process), (OpKind::Info, process));
        // After an info the client is a new process.
        let (_, _, _) = invoke_write(&mut w, 1);
        assert_ne!(w.history().ops.last().unwrap().process, process);
    }

    #[test]
    fn timeout_is_info_and_stale_timeouts_are_ignored() {
        let mut w = workload();
        let commands = w.wake(0, 0);
        let serial = commands
            .iter()
            .find_map(|c| match c {
                Command::Timeout { serial, .. } => Some(*serial),
                _ => None,
            })
            .unwrap();
        assert!(w.timeout(0, serial + 1, 5).is_empty());
        w.timeout(0, serial, 5);
        assert_eq!(w.history().ops.last().unwrap().kind, OpKind::Info);
        assert!(!w.busy());
    }

    #[test]
    fn refused_everywhere_ends_in_fail() {
        let mut w = workload();
        let (mut attempt, mut node, _) = send(&w.wake(3, 0));
        for step in 1..=10 {
            let commands = w.outcome(attempt, node, Outcome::Refused, step);
            match send_or_none(&commands) {
                Some((a, n)) => (attempt, node) = (a, n),
                None => break,
            }
        }
        let last = w.history().ops.last().unwrap();
        assert_eq!(
            (last.kind, last.error.as_deref()),
            (OpKind::Fail, Some("unavailable"))
        );
    }

    fn send_or_none(commands: &[Command]) -> Option<(u64, NodeId)> {
        commands.iter().find_map(|c| match c {
            Command::Send { attempt, node, .. } => Some((*attempt, *node)),
            _ => None,
        })
    }

    #[test]
    fn failed_cas_is_fail_and_read_records_value() {
        let mut w = workload();
        for now in 0..1_000u64 {
            let (attempt, node, request) = send(&w.wake(0, now));
            let response = match request {
                ClientRequest::Read { .. } => ClientResponse::Value {
                    value: Some("x".into()),
                    index: 3,
                },
                ClientRequest::Write {
                    op: KvOp::Cas { .. },
                    ..
                } => ClientResponse::Written {
                    token: Token { term: 1, index: 4 },
                    applied: false,
                },
                ClientRequest::Write { .. } => ClientResponse::Written {
                    token: Token { term: 1, index: 5 },
                    applied: true,
                },
            };
            w.outcome(
                attempt,
                node,
                Outcome::Reply(ClientReply::Ok(response)),
                now,
            );
        }
        let ops = &w.history().ops;
        assert!(
            ops.iter()
                .any(|o| o.f == OpFn::Cas && o.kind == OpKind::Fail)
        );
        assert!(
            ops.iter().any(|o| o.f == OpFn::Read
                && o.kind == OpKind::Ok
                && o.value.as_deref() == Some("x"))
        );
        let writes: Vec<&String> = ops
            .iter()
            .filter(|o| o.kind == OpKind::Invoke && o.f == OpFn::Write)
            .filter_map(|o| o.value.as_ref())
            .collect();
        let unique: std::collections::BTreeSet<&&String> = writes.iter().collect();
        assert_eq!(unique.len(), writes.len(), "written values are unique");
    }

    #[test]
    fn final_reads_visit_every_key_and_retry() {
        let mut w = workload();
        w.stop();
        assert!(w.wake(0, 0).is_empty(), "stopped clients invoke nothing");
        let first = w.final_reads(2);
        let Command::Wake { client, .. } = first[0] else {
            panic!()
        };
        let mut reads = 0;
        for now in 0..20 {
            let commands = w.wake(client, now);
            let Some((attempt, node)) = send_or_none(&commands) else {
                break;
            };
            reads += 1;
            let outcome = if now % 2 == 0 {
                Outcome::Reply(ClientReply::Rejected(Rejection::NoQuorum))
            } else {
                Outcome::Reply(ClientReply::Ok(ClientResponse::Value {
                    value: None,
                    index: 1,
                }))
            };
            w.outcome(attempt, node, outcome, now);
        }
        assert!(w.final_reads_done());
        assert_eq!(reads, 2 * w.keys().len());
    }
}
