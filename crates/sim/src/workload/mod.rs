//! Simulated clients and the Jepsen-style history they produce.
//!
//! Each client runs one operation at a time (read, write, cas or delete on a
//! small key set). Some clients are pinned to one node — so both sides of a
//! partition keep receiving requests — and the rest float, following the
//! leader. Within one operation a pinned or floating client follows
//! `NotLeader` hints (the request id stays the same, so a retry can never
//! apply twice). Home-bound clients never leave their node, like the lab's
//! `route = "home"`: every node, and so every partition's minority, keeps
//! receiving writes for as long as the partition lasts. Client
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
//! the simulator turns into events.//!
//! This module holds the clients' state and the workload's life cycle;
//! `operation` runs one operation (invoke, send, follow hints, retry,
//! complete).
use std::collections::BTreeMap;

use checker::{History, Op};
use consensus::{ClientReply, ClientRequest, ReadMode};
use wire::NodeId;

use crate::rng::SimRng;
mod operation;
#[cfg(test)]
mod tests;

const MS: u64 = 1_000_000;
/// Attempt ids carry the client index in their low bits.
const CLIENT_BITS: u32 = 8;

/// Something the simulator must do for the workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Deliver `request` to `node` after `delay`, as request id `attempt`.
    Send {
        /// Request id of this attempt (client index in the low bits).
        attempt: u64,
        /// The node to send it to.
        node: NodeId,
        /// The request.
        request: ClientRequest,
        /// Client-to-node latency.
        delay: u64,
    },
    /// Call [`Workload::wake`] for `client` after `delay`.
    Wake {
        /// The client to wake.
        client: usize,
        /// Think time before it invokes its next operation.
        delay: u64,
    },
    /// Call [`Workload::timeout`] for `client`/`serial` after `delay`.
    Timeout {
        /// The client whose operation may time out.
        client: usize,
        /// The operation's serial number (stale timeouts are ignored).
        serial: u64,
        /// The operation timeout.
        delay: u64,
    },
}

/// Tunables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkloadOptions {
    /// Number of keys the clients spread over.
    pub keys: usize,
    /// Clients pinned to one node each (node `i % n`).
    pub pinned: usize,
    /// Clients that follow the leader.
    pub floating: usize,
    /// Clients bound to one node each (node `i % n`) that never follow a
    /// hint elsewhere: a `NotLeader` answer ends their operation as `fail`.
    pub home_bound: usize,
    /// Use lease reads for every other client (otherwise ReadIndex).
    pub lease_reads: bool,
    /// Shortest pause between two operations of a client.
    pub think_min_ns: u64,
    /// Longest pause between two operations of a client.
    pub think_max_ns: u64,
    /// Longest pause between two writes of a home-bound client (shortest:
    /// a tenth of it): short enough that a minority that lasts only one
    /// flap of a flapping link still receives writes.
    pub home_think_max_ns: u64,
    /// An operation with no answer by then is `info`.
    pub op_timeout_ns: u64,
    /// Attempts per operation before it fails (following hints).
    pub max_attempts: u32,
    /// One-way client ↔ node latency.
    pub latency_min_ns: u64,
    /// Longest one-way client ↔ node latency.
    pub latency_max_ns: u64,
}

impl WorkloadOptions {
    /// The default mix for a cluster of `nodes`.
    pub fn default_for(nodes: usize) -> WorkloadOptions {
        WorkloadOptions {
            keys: 4,
            pinned: nodes,
            floating: 2,
            home_bound: nodes,
            lease_reads: true,
            think_min_ns: 20 * MS,
            think_max_ns: 120 * MS,
            home_think_max_ns: 20 * MS,
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
    /// Never leaves `home` (the lab's `route = "home"`).
    stays_home: bool,
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
    /// Operations invoked.
    pub invoked: u64,
    /// Operations that ended `ok`.
    pub ok: u64,
    /// Operations that ended `fail`.
    pub fail: u64,
    /// Operations that ended `info` (unknown).
    pub info: u64,
    /// Attempts beyond the first (hint follows and retries).
    pub retries: u64,
}

/// The simulated clients and the history they record.
#[derive(Debug)]
pub struct Workload {
    options: WorkloadOptions,
    nodes: Vec<NodeId>,
    /// The keys written while faults run (`k0`…), then those written during
    /// the recovery after the heal (`r0`…); final reads cover both.
    keys: Vec<String>,
    recovering: bool,
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
    /// The replica answered.
    Reply(ClientReply),
    /// The node was down: the request never reached a replica.
    Refused,
    /// The connection broke after the request was sent.
    Reset,
}

impl Workload {
    /// Clients over `nodes` per `options`, drawing from `rng`.
    pub fn new(nodes: Vec<NodeId>, options: WorkloadOptions, rng: SimRng) -> Workload {
        let keys = ["k", "r"]
            .iter()
            .flat_map(|prefix| (0..options.keys).map(move |k| format!("{prefix}{k}")))
            .collect();
        let mut clients = Vec::new();
        let roaming = options.pinned + options.floating;
        for index in 0..roaming + options.home_bound {
            let stays_home = index >= roaming;
            let home = if stays_home {
                Some(nodes[(index - roaming) % nodes.len()])
            } else {
                (index < options.pinned).then(|| nodes[index % nodes.len()])
            };
            let read_mode = if options.lease_reads && index % 2 == 1 {
                ReadMode::Lease
            } else {
                ReadMode::Linearizable
            };
            clients.push(Client {
                process: index as u64,
                home,
                stays_home,
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
            recovering: false,
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

    /// Number of clients.
    pub fn clients(&self) -> usize {
        self.clients.len()
    }

    /// Every key the clients use (final reads read them all).
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// Where in `keys` the keys regular clients pick from now start, and
    /// how many there are: the fault-time ones, or the recovery ones after
    /// [`Workload::recover`].
    fn current_keys(&self) -> (usize, usize) {
        let half = self.keys.len() / 2;
        (if self.recovering { half } else { 0 }, half)
    }

    /// The cluster was healed and the clients run on while it recovers:
    /// from now on they use fresh keys, so what they write then cannot
    /// overwrite, and so explain away, a write the faults lost (I4).
    pub fn recover(&mut self) {
        self.recovering = true;
    }

    /// The history recorded so far.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The final history.
    pub fn into_history(self) -> History {
        self.history
    }

    /// The clients' counters.
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
                delay: self.think(client),
            })
            .collect()
    }

    /// How long a client waits for an answer before it records `info`.
    pub fn op_timeout_ns(&self) -> u64 {
        self.options.op_timeout_ns
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
            stays_home: false,
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

    /// How long `client` waits before its next operation.
    pub(super) fn think(&mut self, client: usize) -> u64 {
        if self.clients[client].stays_home {
            let max = self.options.home_think_max_ns;
            self.rng.range(max / 10, max)
        } else {
            self.rng
                .range(self.options.think_min_ns, self.options.think_max_ns)
        }
    }

    pub(super) fn latency(&mut self) -> u64 {
        self.rng
            .range(self.options.latency_min_ns, self.options.latency_max_ns)
    }

    pub(super) fn fresh_value(&mut self) -> String {
        self.next_value += 1;
        format!("v{}", self.next_value)
    }

    pub(super) fn attempt_id(&mut self, client: usize) -> u64 {
        self.next_attempt += 1;
        (self.next_attempt << CLIENT_BITS) | client as u64
    }
}
