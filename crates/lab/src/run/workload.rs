//! The client workload: seeded operation generation (pure) and the client
//! loop that runs inside a lab namespace and records history.
//!
//! Values are unique per client and sequence number (`"<process>-<seq>"`),
//! so a read identifies exactly which write it saw. A compare-and-set expects
//! the last value this client saw for the key (or absence). Appends add the
//! same unique value as an element to a list key (`a<n>` next to the register
//! key `k<n>`), so every acknowledged append leaves a trace the final read of
//! that list must contain.
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::time::Duration;

use checker::{Op, OpFn, OpKind};

use super::scenario::{Mix, NodeCatalog, Placement, Route, Workload};
use super::targets::SeededRng;
use client::{Outcome, Request, mono_ns};

/// Produces one client's operations.
#[derive(Debug, Clone)]
pub struct Generator {
    process: u64,
    keys: u32,
    mix: Mix,
    rng: SeededRng,
    seq: u64,
    /// Last value this client observed per key (`None` = known absent).
    known: BTreeMap<String, Option<String>>,
}

impl Generator {
    /// The operation stream of client `process`, over `keys` keys.
    pub fn new(process: u64, keys: u32, mix: Mix, seed: u64) -> Generator {
        Generator {
            process,
            keys: keys.max(1),
            mix,
            rng: SeededRng::new(seed ^ process.wrapping_mul(0xA24B_AED4_963E_E407)),
            seq: 0,
            known: BTreeMap::new(),
        }
    }

    /// The next request and its sequence number.
    pub fn next_request(&mut self) -> (Request, u64) {
        self.seq += 1;
        let key = format!("k{}", self.rng.below(u64::from(self.keys)));
        let value = format!("{}-{}", self.process, self.seq);
        let Mix {
            write,
            read,
            cas,
            append,
        } = self.mix;
        let total = u64::from(write + read + cas + append).max(1);
        let pick = self.rng.below(total);
        // Appends come last so a mix without them draws exactly as before.
        let request = if pick < u64::from(write) {
            Request::Write { key, value }
        } else if pick < u64::from(write + read) {
            // With appends in the mix, half the reads read the lists.
            match list_key(&key) {
                Some(list) if append > 0 && self.seq.is_multiple_of(2) => {
                    Request::Read { key: list }
                }
                _ => Request::Read { key },
            }
        } else if pick >= u64::from(write + read + cas) {
            Request::Append {
                key: list_key(&key).unwrap_or(key),
                element: value,
            }
        } else {
            let expected = self.known.get(&key).cloned().flatten();
            Request::Cas {
                key,
                expected,
                value,
            }
        };
        (request, self.seq)
    }

    /// Remembers what an ok operation revealed about its key.
    pub fn observe(&mut self, request: &Request, outcome: &Outcome) {
        if let Outcome::Ok { value, .. } = outcome {
            match request {
                Request::Read { key } => {
                    self.known.insert(key.clone(), value.clone());
                }
                Request::Write { key, value } | Request::Cas { key, value, .. } => {
                    self.known.insert(key.clone(), Some(value.clone()));
                }
                // The list grew; no CAS ever targets a list key.
                Request::Append { .. } => {}
            }
        }
    }
}

/// The list key next to register key `k<n>`: `a<n>`.
pub fn list_key(register_key: &str) -> Option<String> {
    register_key.strip_prefix('k').map(|n| format!("a{n}"))
}

/// The invocation record of a request.
pub fn invoke_op(process: u64, request: &Request, node: &str, time_ns: u64) -> Op {
    let op = match request {
        Request::Read { key } => Op::new(process, OpKind::Invoke, OpFn::Read, key.clone(), time_ns),
        Request::Write { key, value } => {
            Op::new(process, OpKind::Invoke, OpFn::Write, key.clone(), time_ns)
                .with_value(value.clone())
        }
        Request::Append { key, element } => {
            Op::new(process, OpKind::Invoke, OpFn::Append, key.clone(), time_ns)
                .with_value(element.clone())
        }
        Request::Cas {
            key,
            expected,
            value,
        } => {
            let op = Op::new(process, OpKind::Invoke, OpFn::Cas, key.clone(), time_ns)
                .with_value(value.clone());
            match expected {
                Some(expected) => op.with_expected(expected.clone()),
                None => op,
            }
        }
    };
    op.with_node(node)
}

/// The completion record matching `invoke`.
pub fn completion_op(invoke: &Op, outcome: &Outcome, time_ns: u64) -> Op {
    match outcome {
        Outcome::Ok { value, token } => {
            let mut op = invoke.complete(OpKind::Ok, time_ns);
            if invoke.f == OpFn::Read {
                op.value = value.clone();
            }
            if let Some((term, index)) = token {
                op = op.with_token(*term, *index);
            }
            op
        }
        Outcome::Fail { error, .. } => invoke.complete(OpKind::Fail, time_ns).with_error(error),
        Outcome::Info { error } => invoke.complete(OpKind::Info, time_ns).with_error(error),
    }
}

/// Where each client lives: its process id and home node, in order.
pub fn place_clients(workload: &Workload, catalog: &NodeCatalog) -> Vec<String> {
    match &workload.placement {
        Placement::Spread | Placement::Named(_) => (0..workload.clients as usize)
            .map(|i| catalog.nodes[i % catalog.nodes.len()].clone())
            .collect(),
        Placement::Table(table) => {
            let mut homes = Vec::new();
            for (place, count) in table {
                let nodes = catalog.resolve_place(place.get_ref()).unwrap_or_default();
                for i in 0..*count as usize {
                    if !nodes.is_empty() {
                        homes.push(nodes[i % nodes.len()].clone());
                    }
                }
            }
            homes
        }
    }
}

/// Everything one client thread needs.
pub struct ClientPlan {
    /// The history process id.
    pub process: u64,
    /// The node whose namespace the client runs in.
    pub home: String,
    /// Node name → client address, in topology order.
    pub nodes: Vec<(String, SocketAddr)>,
    /// Which node each request goes to.
    pub route: Route,
    /// Operations per second; absent = closed loop.
    pub rate: Option<f64>,
    /// Per-operation timeout.
    pub timeout: Duration,
    /// Where the operations come from.
    pub generator: Generator,
    /// Stop issuing new operations at this monotonic time.
    pub end_ns: u64,
    /// The system's client protocol (splitnode's HTTP API, etcd's gateway,
    /// Redis behind the sentinel beside the client's home node).
    pub protocol: client::Protocol,
}

/// Counters shared with the progress display.
#[derive(Debug, Default)]
pub struct Counters {
    /// Operations that succeeded.
    pub ok: std::sync::atomic::AtomicU64,
    /// Operations that definitely failed.
    pub fail: std::sync::atomic::AtomicU64,
    /// Operations with an unknown outcome (timeouts).
    pub info: std::sync::atomic::AtomicU64,
}

impl Counters {
    /// The counts as (ok, fail, info).
    pub fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.ok.load(Ordering::Relaxed),
            self.fail.load(Ordering::Relaxed),
            self.info.load(Ordering::Relaxed),
        )
    }
}

/// The client loop. Must run on a thread inside the client's namespace.
/// Every invocation is followed by exactly one completion in `history`.
/// `Err` when the client had to stop early (the history recorder is gone),
/// which leaves the run without a complete history.
pub fn run_client(
    mut plan: ClientPlan,
    history: Sender<Op>,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
) -> Result<(), String> {
    let recorder_gone = || Err("the history recorder is gone".to_string());
    let home_index = plan
        .nodes
        .iter()
        .position(|(name, _)| *name == plan.home)
        .unwrap_or(0);
    let mut target = home_index;
    let mut failover = Failover::new(home_index, plan.nodes.len());
    let mut session = client::Session::new(plan.protocol, plan.nodes[home_index].1);
    let interval_ns = plan.rate.map(|rate| (1e9 / rate) as u64);
    let mut next_at = mono_ns();
    while !stop.load(Ordering::Relaxed) {
        let now = mono_ns();
        if now >= plan.end_ns {
            break;
        }
        if let Some(interval) = interval_ns {
            if now < next_at {
                let wait = (next_at - now).min(50_000_000);
                std::thread::sleep(Duration::from_nanos(wait));
                continue;
            }
            next_at = next_at.saturating_add(interval).max(now);
        }
        let (request, seq) = plan.generator.next_request();
        // Where the request goes: the routed node, or (Redis) the primary
        // the client's sentinel names, recorded under its node's name.
        let addr = session.destination(plan.nodes[target].1, plan.timeout);
        let node = (plan.nodes.iter())
            .find(|(_, known)| *known == addr)
            .map_or_else(|| addr.to_string(), |(name, _)| name.clone());
        let invoke = invoke_op(plan.process, &request, &node, mono_ns());
        if history.send(invoke.clone()).is_err() {
            return recorder_gone();
        }
        let outcome = session.execute(addr, &request, plan.process, seq, plan.timeout);
        let done = completion_op(&invoke, &outcome, mono_ns());
        let counter = match done.kind {
            OpKind::Ok => &counters.ok,
            OpKind::Fail => &counters.fail,
            _ => &counters.info,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if history.send(done).is_err() {
            return recorder_gone();
        }
        plan.generator.observe(&request, &outcome);
        if plan.route == Route::FollowLeader {
            target = failover.next(&plan.nodes, target, &outcome);
        }
        if interval_ns.is_none() && !matches!(outcome, Outcome::Ok { .. }) {
            // Closed loop: do not spin on a node that refuses.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(())
}

/// Client failover: follow a leader hint; after a refusal without a hint
/// or an unreachable node away from home, go back home; after one at home,
/// try the next node away. Returning home between away nodes keeps a client
/// cut off with its home node writing to it (the minority checks need
/// those writes within about a second of the cut; rotating through every
/// other node first cost one timeout each), and the cursor keeps a dead
/// home from pinning the client to the same away node.
#[derive(Debug, Clone)]
pub struct Failover {
    home: usize,
    nodes: usize,
    away: usize,
}

impl Failover {
    /// A client living beside node `home` of `nodes`.
    pub fn new(home: usize, nodes: usize) -> Self {
        Failover {
            home,
            nodes: nodes.max(1),
            away: home,
        }
    }

    /// The node the next request goes to, after `outcome` at `current`.
    pub fn next(
        &mut self,
        names: &[(String, SocketAddr)],
        current: usize,
        outcome: &Outcome,
    ) -> usize {
        match outcome {
            Outcome::Ok { .. } => return current,
            Outcome::Fail {
                leader: Some(leader),
                ..
            } => {
                let hinted = names.iter().position(|(name, _)| name == leader);
                if let Some(index) = hinted.filter(|index| *index != current) {
                    return index;
                }
            }
            Outcome::Fail { error, .. } if error.starts_with("cas") => return current,
            _ => {}
        }
        if current != self.home || self.nodes == 1 {
            return self.home;
        }
        self.away = (self.away + 1) % self.nodes;
        if self.away == self.home {
            self.away = (self.away + 1) % self.nodes;
        }
        self.away
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The mix of these weights.
    fn weights(write: u32, read: u32, cas: u32, append: u32) -> Mix {
        Mix {
            write,
            read,
            cas,
            append,
        }
    }

    #[test]
    fn generator_is_seeded_and_values_are_unique() {
        let mix = weights(50, 40, 10, 0);
        let mut a = Generator::new(3, 5, mix, 42);
        let mut b = Generator::new(3, 5, mix, 42);
        let ops_a: Vec<_> = (0..50).map(|_| a.next_request()).collect();
        let ops_b: Vec<_> = (0..50).map(|_| b.next_request()).collect();
        assert_eq!(ops_a, ops_b);
        let mut values = std::collections::BTreeSet::new();
        for (request, _) in &ops_a {
            if let Request::Write { value, .. } | Request::Cas { value, .. } = request {
                assert!(values.insert(value.clone()), "duplicate value {value}");
            }
        }
        let kinds: std::collections::HashSet<_> = ops_a
            .iter()
            .map(|(r, _)| std::mem::discriminant(r))
            .collect();
        assert_eq!(kinds.len(), 3, "all three kinds appear in 50 ops");
    }

    #[test]
    fn appends_go_to_list_keys_with_unique_elements() {
        let mut generator = Generator::new(4, 5, weights(30, 30, 10, 30), 9);
        let mut elements = std::collections::BTreeSet::new();
        let mut list_reads = 0;
        for _ in 0..200 {
            match generator.next_request().0 {
                Request::Append { key, element } => {
                    assert!(key.starts_with('a'), "{key}");
                    assert!(!element.contains(' '), "{element}");
                    assert!(elements.insert(element.clone()), "duplicate {element}");
                }
                Request::Read { key } if key.starts_with('a') => list_reads += 1,
                Request::Write { key, .. } | Request::Cas { key, .. } => {
                    assert!(key.starts_with('k'), "{key}")
                }
                Request::Read { .. } => {}
            }
        }
        assert!(elements.len() > 30 && list_reads > 10, "{elements:?}");
        let invoke = invoke_op(
            4,
            &Request::Append {
                key: "a1".into(),
                element: "4-1".into(),
            },
            "n1",
            5,
        );
        assert_eq!(
            (invoke.f, invoke.value.as_deref()),
            (OpFn::Append, Some("4-1"))
        );
    }

    #[test]
    fn cas_expects_the_last_observed_value() {
        let mut generator = Generator::new(1, 1, weights(0, 0, 1, 0), 7);
        let (first, _) = generator.next_request();
        assert!(matches!(&first, Request::Cas { expected: None, .. }));
        generator.observe(
            &first,
            &Outcome::Ok {
                value: None,
                token: Some((1, 1)),
            },
        );
        let (second, _) = generator.next_request();
        match (&first, &second) {
            (Request::Cas { value, .. }, Request::Cas { expected, .. }) => {
                assert_eq!(expected.as_ref(), Some(value));
            }
            _ => unreachable!(),
        }
    }

    #[test]
    fn completions_carry_read_values_and_tokens() {
        let request = Request::Read { key: "k1".into() };
        let invoke = invoke_op(2, &request, "n1", 10);
        let ok = completion_op(
            &invoke,
            &Outcome::Ok {
                value: Some("1-1".into()),
                token: None,
            },
            20,
        );
        assert_eq!(
            (ok.kind, ok.value.as_deref(), ok.time_ns),
            (OpKind::Ok, Some("1-1"), 20)
        );
        let info = completion_op(
            &invoke,
            &Outcome::Info {
                error: "timeout".into(),
            },
            30,
        );
        assert_eq!(info.kind, OpKind::Info);
        assert_eq!(info.error.as_deref(), Some("timeout"));
    }

    #[test]
    fn failover_follows_hints_and_returns_home_between_away_nodes() {
        let nodes: Vec<(String, SocketAddr)> = (1..=4)
            .map(|i| {
                (
                    format!("n{i}"),
                    format!("10.77.0.{i}:7000").parse().unwrap(),
                )
            })
            .collect();
        let hint = |leader: &str| Outcome::Fail {
            error: "not_leader".into(),
            leader: Some(leader.into()),
        };
        let timeout = Outcome::Info {
            error: "timeout".into(),
        };
        let ok = Outcome::Ok {
            value: None,
            token: None,
        };
        let mut failover = Failover::new(1, nodes.len());
        assert_eq!(failover.next(&nodes, 1, &hint("n3")), 2);
        assert_eq!(failover.next(&nodes, 2, &ok), 2);
        // The leader went away: back home, which may know the new one.
        assert_eq!(failover.next(&nodes, 2, &timeout), 1);
        // Home unreachable too: every away node in turn, home between them.
        let mut visited = Vec::new();
        let mut at = 1;
        for _ in 0..6 {
            at = failover.next(&nodes, at, &timeout);
            visited.push(at);
        }
        assert_eq!(visited, vec![2, 1, 3, 1, 0, 1]);
        // A hint naming the node itself is no hint.
        assert_eq!(failover.next(&nodes, 1, &hint("n2")), 2);
        let cas = Outcome::Fail {
            error: "cas_mismatch".into(),
            leader: None,
        };
        assert_eq!(failover.next(&nodes, 3, &cas), 3);
    }

    #[test]
    fn placement_by_region_and_spread() {
        let mut catalog = NodeCatalog::new(vec!["a".into(), "b".into(), "c".into()]);
        catalog
            .regions
            .insert("west".into(), vec!["b".into(), "c".into()]);
        let spread: Workload = toml::from_str("clients = 4").unwrap();
        assert_eq!(place_clients(&spread, &catalog), vec!["a", "b", "c", "a"]);
        let by_region: Workload =
            toml::from_str("clients = 3\nplacement = { west = 2, a = 1 }").unwrap();
        assert_eq!(place_clients(&by_region, &catalog), vec!["a", "b", "c"]);
    }
}
