//! A tiny in-memory cluster for unit tests of every strategy: instant
//! fsync, instant delivery, directed link cuts, crash and restart from the
//! durable state. The real simulator lives in `crates/sim`.
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use wire::{Entry, Message, NodeId, Term};

use crate::{
    Action, ClientReply, ClientRequest, ClientResponse, Config, Event, Input, IoSeq, Mode,
    Outbound, ReadMode, Replica, RequestId, Restored, Role, Write,
};

pub(crate) const MS: u64 = 1_000_000;

/// Decides which messages a [`Cluster`] loses, beyond its link cuts.
pub(crate) type LossFilter = Box<dyn Fn(NodeId, NodeId, &Message) -> bool>;

pub(crate) struct Cluster {
    pub(crate) now: u64,
    pub(crate) nodes: BTreeMap<NodeId, Replica>,
    configs: BTreeMap<NodeId, Config>,
    pub(crate) durable: BTreeMap<NodeId, Restored>,
    pub(crate) down: BTreeSet<NodeId>,
    /// Directed cuts: messages from `.0` to `.1` are dropped.
    pub(crate) cut: BTreeSet<(NodeId, NodeId)>,
    /// Messages (from, to, message) for which this says true are dropped too.
    pub(crate) lose: Option<LossFilter>,
    queue: VecDeque<(NodeId, NodeId, Term, Message)>,
    pub(crate) events: Vec<(NodeId, u64, Event)>,
    pub(crate) replies: BTreeMap<RequestId, ClientReply>,
    /// Appends carrying entries, per directed link.
    pub(crate) appends_sent: BTreeMap<(NodeId, NodeId), usize>,
    /// Snapshot chunks, per directed link.
    pub(crate) snapshot_chunks_sent: BTreeMap<(NodeId, NodeId), usize>,
    next_request: RequestId,
}

impl Cluster {
    pub(crate) fn new(size: u64, mode: Mode) -> Cluster {
        Cluster::with_config(size, mode, |_| {})
    }

    pub(crate) fn with_config(size: u64, mode: Mode, tweak: impl Fn(&mut Config)) -> Cluster {
        let members: Vec<NodeId> = (1..=size).collect();
        let mut cluster = Cluster {
            now: 1_000 * MS,
            nodes: BTreeMap::new(),
            configs: BTreeMap::new(),
            durable: BTreeMap::new(),
            down: BTreeSet::new(),
            cut: BTreeSet::new(),
            lose: None,
            queue: VecDeque::new(),
            events: Vec::new(),
            replies: BTreeMap::new(),
            appends_sent: BTreeMap::new(),
            snapshot_chunks_sent: BTreeMap::new(),
            next_request: 1,
        };
        for id in &members {
            let mut config = Config::fast(*id, members.clone(), 7, mode);
            tweak(&mut config);
            cluster.configs.insert(*id, config.clone());
            cluster.durable.insert(*id, Restored::default());
            let replica =
                Replica::new(config, Restored::default(), *id * 1000 + 1, cluster.now).unwrap();
            cluster.nodes.insert(*id, replica);
        }
        cluster
    }

    pub(crate) fn step(&mut self, id: NodeId, input: Input) {
        if self.down.contains(&id) {
            return;
        }
        let Some(replica) = self.nodes.get_mut(&id) else {
            return;
        };
        replica.step(self.now, input);
        let actions = replica.take_actions();
        let mut highest = None;
        let mut sends = Vec::new();
        for action in actions {
            let durable = self.durable.get_mut(&id).unwrap();
            match action {
                Action::Write(write) => {
                    highest = write.seq().or(highest);
                    match write {
                        Write::Meta {
                            term, voted_for, ..
                        } => {
                            durable.term = term;
                            durable.voted_for = voted_for;
                        }
                        Write::Append {
                            truncate_after,
                            entries,
                            ..
                        } => {
                            if let Some(after) = truncate_after {
                                durable.entries.retain(|entry| entry.index <= after);
                            }
                            durable.entries.extend(entries);
                        }
                        Write::InstallSnapshot { snapshot, .. } | Write::Compact { snapshot } => {
                            durable
                                .entries
                                .retain(|entry: &Entry| entry.index > snapshot.last_index);
                            durable.snapshot = Some(snapshot);
                        }
                    }
                }
                Action::Send(Outbound {
                    to, term, message, ..
                }) => {
                    if matches!(&message, Message::Append { entries, .. } if !entries.is_empty()) {
                        *self.appends_sent.entry((id, to)).or_default() += 1;
                    }
                    if matches!(&message, Message::InstallSnapshot { .. }) {
                        *self.snapshot_chunks_sent.entry((id, to)).or_default() += 1;
                    }
                    sends.push((id, to, term, message));
                }
                Action::Reply { id: request, reply } => {
                    self.replies.insert(request, reply);
                }
                Action::Event(event) => self.events.push((id, self.now, event)),
            }
        }
        // Instant fsync, then the held sends go out in order.
        if let Some(upto) = highest {
            self.step(id, Input::Persisted { upto });
        }
        self.queue.extend(sends);
    }

    pub(crate) fn deliver_all(&mut self) {
        let mut budget = 100_000;
        while let Some((from, to, term, message)) = self.queue.pop_front() {
            budget -= 1;
            assert!(budget > 0, "message storm");
            let lost = self
                .lose
                .as_ref()
                .is_some_and(|lose| lose(from, to, &message));
            if lost || self.cut.contains(&(from, to)) || self.down.contains(&to) {
                continue;
            }
            self.step(
                to,
                Input::Message {
                    from,
                    term,
                    message,
                },
            );
        }
    }

    /// Advances time in tick-sized steps, delivering everything each step.
    pub(crate) fn run_for(&mut self, duration: u64) {
        let tick = self.configs.values().next().unwrap().tick_interval_ns;
        let end = self.now + duration;
        while self.now < end {
            self.now += tick;
            for id in self.configs.keys().copied().collect::<Vec<_>>() {
                self.step(id, Input::Tick);
            }
            self.deliver_all();
        }
    }

    pub(crate) fn leaders(&self) -> Vec<NodeId> {
        self.nodes
            .iter()
            .filter(|(id, replica)| {
                !self.down.contains(id) && replica.status().role == Role::Leader
            })
            .map(|(id, _)| *id)
            .collect()
    }

    /// A cluster of `size` nodes that has elected its one leader.
    pub(crate) fn elected(size: u64, mode: Mode) -> (Cluster, NodeId) {
        let mut cluster = Cluster::new(size, mode);
        let leader = cluster.elect();
        (cluster, leader)
    }

    /// The node after `id` in id order, wrapping round: a follower when
    /// `id` leads.
    pub(crate) fn next_after(&self, id: NodeId) -> NodeId {
        id % self.nodes.len() as u64 + 1
    }

    pub(crate) fn elect(&mut self) -> NodeId {
        for _ in 0..100 {
            self.run_for(100 * MS);
            if let [leader] = self.leaders()[..] {
                self.run_for(100 * MS); // let the lease and the no-op settle
                return leader;
            }
        }
        panic!("no single leader emerged: {:?}", self.leaders());
    }

    pub(crate) fn request(&mut self, node: NodeId, request: ClientRequest) -> RequestId {
        let id = self.next_request;
        self.next_request += 1;
        self.step(node, Input::Client { id, request });
        self.deliver_all();
        id
    }

    /// Reads `key` at `node` in `mode` and returns the value it answered
    /// with; panics on any other reply.
    pub(crate) fn read_value(&mut self, node: NodeId, key: &str, mode: ReadMode) -> Option<String> {
        let id = self.request(node, read(key, mode));
        match self.replies.get(&id) {
            Some(ClientReply::Ok(ClientResponse::Value { value, .. })) => value.clone(),
            other => panic!("{mode:?} read of {key:?} at {node} failed: {other:?}"),
        }
    }

    /// How many appends `from` has sent to `to` so far.
    pub(crate) fn appends_sent_to(&self, from: NodeId, to: NodeId) -> usize {
        self.appends_sent.get(&(from, to)).copied().unwrap_or(0)
    }

    /// Whether every replica (up or down) holds the same state hash.
    pub(crate) fn state_hashes_agree(&self) -> bool {
        let mut hashes = self.nodes.values().map(|node| node.status().state_hash);
        let first = hashes.next();
        hashes.all(|hash| Some(hash) == first)
    }

    pub(crate) fn crash(&mut self, id: NodeId) {
        self.down.insert(id);
    }

    pub(crate) fn restart(&mut self, id: NodeId) {
        self.down.remove(&id);
        let restored = self.durable[&id].clone();
        let config = self.configs[&id].clone();
        let replica = Replica::new(config, restored, id * 1000 + self.now, self.now).unwrap();
        self.nodes.insert(id, replica);
    }

    pub(crate) fn isolate(&mut self, id: NodeId) {
        for other in self.configs.keys().copied().collect::<Vec<_>>() {
            if other != id {
                self.cut.insert((id, other));
                self.cut.insert((other, id));
            }
        }
    }

    pub(crate) fn heal(&mut self) {
        self.cut.clear();
    }

    pub(crate) fn events_of(&self, id: NodeId) -> impl Iterator<Item = &Event> {
        self.events
            .iter()
            .filter(move |(node, _, _)| *node == id)
            .map(|(_, _, event)| event)
    }

    /// The current term of node `id`.
    pub(crate) fn term_of(&self, id: NodeId) -> Term {
        self.nodes[&id].status().term
    }

    /// How many events of any node `which` picks.
    pub(crate) fn count_events(&self, which: impl Fn(&Event) -> bool) -> usize {
        self.events
            .iter()
            .filter(|(_, _, event)| which(event))
            .count()
    }
}

/// An append of `entries` after `(prev_log_index, prev_log_term)`.
pub(crate) fn append(
    prev_log_index: u64,
    prev_log_term: u64,
    entries: Vec<Entry>,
    leader_commit: u64,
) -> Message {
    Message::Append {
        prev_log_index,
        prev_log_term,
        entries,
        leader_commit,
    }
}

pub(crate) fn put(client: u64, seq: u64, key: &str, value: &str) -> ClientRequest {
    ClientRequest::Write {
        client,
        seq,
        op: wire::KvOp::Put {
            key: key.into(),
            value: value.into(),
        },
    }
}

pub(crate) fn read(key: &str, mode: ReadMode) -> ClientRequest {
    ClientRequest::Read {
        key: key.into(),
        mode,
    }
}

pub(crate) fn highest_seq(actions: &[Action]) -> Option<IoSeq> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::Write(write) => write.seq(),
            _ => None,
        })
        .max()
}
