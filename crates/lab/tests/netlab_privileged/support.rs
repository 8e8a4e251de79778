//! Shared fixtures of the privileged netlab tests: the skip-or-fail check,
//! host-namespace snapshots, a lab that is always torn down and checked
//! for leftovers, and the n1 → n2 link most tests fault and measure.

pub(crate) use crate::common::{host, repo, splitlab};
use crate::common::{missing_root_and_tools, ready_or_skip, serial_when};
use netlab::journal::Journal;
use netlab::probe::{LinkMeasurement, ProbeOptions, probe};
use netlab::{
    Fault, Grudge, Lab, LabOptions, LinkShaping, Planes, RunId, Target, Topology, grudge,
};
use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::MutexGuard;
use std::time::Duration;

/// The serial lock, when this machine can run the tests; `None`: skip
/// (under `CI=true` a machine without root or the tools fails instead).
pub(crate) fn serial_privileged() -> Option<MutexGuard<'static, ()>> {
    serial_when(|| {
        let missing = missing_root_and_tools(&["ip", "nft", "iptables-restore", "tc"]);
        ready_or_skip("privileged netlab test", &missing)
    })
}

/// The host namespace as seen by the four commands the issue names.
pub(crate) fn host_snapshot() -> Vec<String> {
    vec![
        host(&["ip", "-d", "link"]),
        host(&["ip", "addr"]),
        host(&["ip", "route"]),
        host(&["nft", "list", "ruleset"]),
    ]
}

pub(crate) fn options() -> LabOptions {
    LabOptions {
        helper_exe: Some(splitlab()),
        ..LabOptions::default()
    }
}

pub(crate) fn leftovers(run: &RunId) -> Vec<String> {
    netlab::netns::list_netns(&run.netns_prefix())
}

pub(crate) fn names(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("n{i}")).collect()
}

pub(crate) fn quick() -> ProbeOptions {
    ProbeOptions {
        udp_packets: 40,
        interval: Duration::from_millis(1),
        tcp_messages: 3,
        connect_timeout: Duration::from_millis(400),
        links: None,
    }
}

/// (from, to) → (udp reachable, tcp connected)
pub(crate) fn matrix(results: &[LinkMeasurement]) -> BTreeMap<(String, String), (bool, bool)> {
    results
        .iter()
        .map(|m| {
            (
                (m.from.clone(), m.to.clone()),
                (m.udp_reachable(), m.tcp_connected),
            )
        })
        .collect()
}

pub(crate) fn expect_matrix(lab: &Lab, label: &str, expected: impl Fn(&str, &str) -> (bool, bool)) {
    let results = probe(lab, &quick()).expect("probe");
    assert_eq!(results.len(), 20, "{label}: every directed link probed");
    for ((from, to), got) in matrix(&results) {
        assert_eq!(
            got,
            expected(&from, &to),
            "{label}: {from} -> {to} (udp, tcp)"
        );
    }
}

pub(crate) fn with_lab(topology: &Topology, test: impl FnOnce(&mut Lab)) {
    let before = host_snapshot();
    let mut lab = Lab::up(topology, &options()).expect("lab up");
    let run = lab.run_id().clone();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| test(&mut lab)));
    lab.teardown().expect("teardown");
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    assert_nothing_left(&run, &before);
}

/// For a test that drives a run by hand: the serial lock, the host
/// namespace as it was, and a fresh run id; `None`: skip.
pub(crate) fn privileged_run() -> Option<(MutexGuard<'static, ()>, Vec<String>, RunId)> {
    let serial = serial_privileged()?;
    Some((serial, host_snapshot(), RunId::random()))
}

/// After `run`: none of its namespaces, no journal, the host namespace as
/// `before`.
pub(crate) fn assert_nothing_left(run: &RunId, before: &[String]) {
    assert!(
        leftovers(run).is_empty(),
        "namespaces left: {:?}",
        leftovers(run)
    );
    assert!(
        !Journal::dir(&netlab::journal::state_dir(), run).exists(),
        "journal left"
    );
    assert_eq!(host_snapshot(), before, "host namespace changed");
}

/// The usual test here: on a machine that can run it, under the serial
/// lock, `test` on a lab of `topology` (see [`with_lab`]).
pub(crate) fn privileged_lab(topology: &Topology, test: impl FnOnce(&mut Lab)) {
    if let Some(_serial) = serial_privileged() {
        with_lab(topology, test);
    }
}

pub(crate) fn mesh(n: usize) -> Topology {
    Topology::load(&repo().join(format!("lab/topologies/mesh-{n}.toml"))).expect("topology")
}

/// True while the process runs (a zombie is dead: it holds no namespace, and
/// this machine's PID 1 does not reap orphans).
pub(crate) fn alive(pid: u32) -> bool {
    proc_state(pid).is_some_and(|s| s != 'Z' && s != 'X')
}

pub(crate) fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].chars().next()
}

/// The one-way cut n1 -/-> n2.
pub(crate) fn n1_cuts_n2() -> Grudge {
    grudge::one_way(&["n1".into()], &["n2".into()])
}

/// A shaping with only what `set` turns on.
pub(crate) fn shaping(set: impl FnOnce(&mut LinkShaping)) -> LinkShaping {
    let mut shaping = LinkShaping::default();
    set(&mut shaping);
    shaping
}

/// `shape` on the link n1 → n2, on `planes`.
pub(crate) fn shape_n1_n2(planes: Planes, shape: LinkShaping) -> Fault {
    Fault::Shape {
        links: vec![("n1".into(), "n2".into())],
        planes,
        shape,
    }
}

/// The netlab probe on n1 → n2 only.
pub(crate) fn probe_n1_n2(
    lab: &Lab,
    udp_packets: u32,
    interval: Duration,
    tcp_messages: u32,
    connect_timeout: Duration,
) -> LinkMeasurement {
    let options = ProbeOptions {
        udp_packets,
        interval,
        tcp_messages,
        connect_timeout,
        links: Some(vec![("n1".into(), "n2".into())]),
    };
    probe(lab, &options).expect("probe").remove(0)
}

/// What the delay worker serving `node`'s namespace added while `measure`
/// ran under the shaping already applied: the measurement, the mean of how
/// late the worker released each packet after its due time (ms; CPU steal
/// on a shared VM makes it late), and how many it released. Without a
/// worker (netem) both figures are 0.
pub(crate) fn with_worker_lateness<T>(
    lab: &Lab,
    node: &str,
    measure: impl FnOnce(&Lab) -> T,
) -> (T, f64, u64) {
    let heartbeat = |lab: &Lab| {
        // The worker publishes its counters once per heartbeat.
        std::thread::sleep(2 * netlab::nfqueue::HEARTBEAT);
        lab.delay_worker_stats(node)
            .map_or((0, 0), |stats| (stats.late_us_total, stats.released))
    };
    let (late_before, released_before) = heartbeat(lab);
    let measured = measure(lab);
    let (late_after, released_after) = heartbeat(lab);
    let released = released_after - released_before;
    let late_ms = (late_after - late_before) as f64 / 1e3 / released.max(1) as f64;
    (measured, late_ms, released)
}

/// A UDP receiver on n2's peer address (reads time out after
/// `read_timeout`), a sender in n1, and the address to send to.
pub(crate) fn udp_n1_to_n2(
    lab: &Lab,
    read_timeout: Duration,
) -> (UdpSocket, UdpSocket, SocketAddr) {
    let peer = lab.peer_addr("n2").unwrap();
    let receiver = lab.udp_bind(&Target::Node("n2".into()), peer).unwrap();
    receiver.set_read_timeout(Some(read_timeout)).unwrap();
    let sender = lab
        .udp_bind(
            &Target::Node("n1".into()),
            (lab.node_addr("n1").unwrap(), 0).into(),
        )
        .unwrap();
    (receiver, sender, peer)
}
