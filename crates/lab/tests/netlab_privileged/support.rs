//! Shared fixtures of the privileged netlab tests: the skip-or-fail check,
//! host-namespace snapshots, and a lab that is always torn down and checked
//! for leftovers.

use netlab::journal::Journal;
use netlab::probe::{LinkMeasurement, ProbeOptions, probe};
use netlab::{Lab, LabOptions, RunId, Topology};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

pub(crate) static SERIAL: Mutex<()> = Mutex::new(());

pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub(crate) fn splitlab() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_splitlab"))
}

/// Returns false (skip) when the machine cannot run the tests; panics under CI.
pub(crate) fn privileged() -> bool {
    let mut missing = Vec::new();
    if !nix::unistd::geteuid().is_root() {
        missing.push("root".to_string());
    }
    for tool in ["ip", "nft", "iptables-restore", "tc"] {
        if netlab::tools::find_tool(tool).is_none() {
            missing.push(format!("{tool} (run scripts/setup.sh)"));
        }
    }
    if missing.is_empty() {
        return true;
    }
    let reason = format!("privileged netlab test needs: {}", missing.join(", "));
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{reason} (CI=true: failing instead of skipping)");
    }
    eprintln!("SKIPPED: {reason}");
    false
}

pub(crate) fn host(args: &[&str]) -> String {
    let out = Command::new(netlab::tools::find_tool(args[0]).expect("tool"))
        .args(&args[1..])
        .output()
        .expect("run host tool");
    String::from_utf8_lossy(&out.stdout).into_owned()
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
    assert!(
        leftovers(&run).is_empty(),
        "namespaces left: {:?}",
        leftovers(&run)
    );
    assert!(
        !Journal::path(&netlab::journal::state_dir(), &run).exists(),
        "journal left"
    );
    assert_eq!(host_snapshot(), before, "host namespace changed");
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
