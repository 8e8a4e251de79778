//! One client operation from invocation to completion: choosing the
//! operation and the node, sending attempts, following `NotLeader` hints,
//! retrying, timing out, and recording the Jepsen outcome.
use checker::{Op, OpFn, OpKind};
use consensus::{ClientReply, ClientRequest, ClientResponse, KvOp, Rejection};
use wire::NodeId;

use super::{Command, Current, MS, Outcome, Workload};

impl Workload {
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
            let (first, count) = self.current_keys();
            let key = self.keys[first + self.rng.below(count as u64) as usize].clone();
            // Home-bound clients only write: they are there so that every
            // partition's minority receives writes to judge.
            let weights = if self.clients[client].stays_home {
                [0, 50, 30, 20]
            } else {
                [40, 30, 20, 10]
            };
            let f = [OpFn::Read, OpFn::Write, OpFn::Cas, OpFn::Delete][self.rng.weighted(&weights)];
            match f {
                OpFn::Read | OpFn::Delete => (f, key, None, None),
                OpFn::Write | OpFn::Append => (f, key, Some(self.fresh_value()), None),
                OpFn::Cas => {
                    let expected = self.clients[client].seen.get(&key).cloned().flatten();
                    (f, key, Some(self.fresh_value()), expected)
                }
            }
        };
        let c = &mut self.clients[client];
        let consensus_client = c.process + 1;
        let write = |op| ClientRequest::Write {
            client: consensus_client,
            seq: c.next_seq,
            op,
        };
        let request = match f {
            OpFn::Read => ClientRequest::Read {
                key: key.clone(),
                mode: c.read_mode,
            },
            OpFn::Write => write(KvOp::Put {
                key: key.clone(),
                value: value.clone().expect("a write has a value"),
            }),
            OpFn::Cas => write(KvOp::Cas {
                key: key.clone(),
                expected: expected.clone(),
                value: value.clone().expect("a cas has a value"),
            }),
            OpFn::Delete => write(KvOp::Delete { key: key.clone() }),
            OpFn::Append => write(KvOp::Append {
                key: key.clone(),
                element: value.clone().expect("an append has an element"),
            }),
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
        // The node of the last attempt: the one that left it unanswered.
        let node = self.clients[client]
            .current
            .as_ref()
            .map(|current| format!("n{}", current.node))
            .expect("an operation is running");
        self.complete(client, now, OpKind::Info, |op| {
            op.with_node(node).with_error("timeout")
        })
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
            Outcome::Reply(ClientReply::Rejected(Rejection::NotLeader { .. }))
                if self.clients[client].stays_home =>
            {
                // A home-bound client does not fail over: the refusal is its
                // answer (the minority failed fast).
                self.complete(client, now, OpKind::Fail, |op| {
                    op.with_node(node_name).with_error("not_leader")
                })
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
            // A write, a delete and a CAS that applied all leave the key
            // holding the value this operation carried.
            (OpFn::Write | OpFn::Delete, ClientResponse::Written { token, .. })
            | (
                OpFn::Cas,
                ClientResponse::Written {
                    token,
                    applied: true,
                },
            ) => {
                let written = self.clients[client]
                    .current
                    .as_ref()
                    .and_then(|c| c.invoke.value.clone());
                self.clients[client].seen.insert(key, written);
                self.complete(client, now, OpKind::Ok, |op| {
                    op.with_node(node).with_token(token.term, token.index)
                })
            }
            (
                OpFn::Cas,
                ClientResponse::Written {
                    token,
                    applied: false,
                },
            ) => {
                // The comparison failed: the value did not change. We no
                // longer know the current value.
                self.clients[client].seen.remove(&key);
                self.complete(client, now, OpKind::Fail, |op| {
                    op.with_node(node)
                        .with_token(token.term, token.index)
                        .with_error("cas_mismatch")
                })
            }
            (OpFn::Append, ClientResponse::Written { token, .. }) => {
                // The list grew by one element; its whole value is unknown.
                self.clients[client].seen.remove(&key);
                self.complete(client, now, OpKind::Ok, |op| {
                    op.with_node(node).with_token(token.term, token.index)
                })
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
        let stays_home = self.clients[client].stays_home;
        let next = match hint {
            _ if stays_home => tried,
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
            self.think(client)
        };
        vec![Command::Wake { client, delay }]
    }
}
