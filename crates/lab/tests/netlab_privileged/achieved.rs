//! Issue 10 items 1–3: every run measures its faults with the live probes.
//! A run in which one namespace's fault rules are flushed by hand while a
//! partition is in force ends unknown (exit 2), naming the leaking link.

use crate::support::*;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SCENARIO: &str = include_str!("../scenarios/flush-mid-fault.toml");

/// The namespace of `node` in the (only) lab that is up, once it exists.
/// The namespace of `node` in a lab that appeared after `before` was
/// listed: a namespace left by another lab (or another test) is never taken
/// for this run's.
fn node_netns(node: &str, before: &[String], deadline: Instant) -> Option<String> {
    while Instant::now() < deadline {
        if let Some(name) = netlab::netns::list_netns("sl-")
            .into_iter()
            .find(|name| name.ends_with(&format!("-{node}")) && !before.contains(name))
        {
            return Some(name);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

fn nft_in(ns: &str, args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    netlab::tools::run_in(ns, "nft", &args, "").unwrap_or_default()
}

#[test]
fn t101_rules_flushed_mid_fault_make_the_run_unknown_naming_the_leaking_link() {
    let Some(_serial) = serial_privileged() else {
        return;
    };
    let splitnode = splitlab().with_file_name("splitnode");
    if !splitnode.exists() {
        panic!(
            "{} is missing: build it first (cargo build -p node, same profile as this test)",
            splitnode.display()
        );
    }
    let dir = std::env::temp_dir().join(format!("sl-t101-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = dir.join("flush.toml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let runs: PathBuf = dir.join("runs");
    let before = netlab::netns::list_netns("sl-");
    let run = Command::new(splitlab())
        .arg("run")
        .arg(&scenario)
        .arg("--splitnode")
        .arg(&splitnode)
        .arg("--runs-dir")
        .arg(&runs)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start splitlab run");
    let deadline = Instant::now() + Duration::from_secs(60);
    let ns = node_netns("n2", &before, deadline).expect("the run's n2 namespace appears");
    // Wait until the partition's drop rules are in n2, let them work for a
    // second, then remove them by hand.
    while !nft_in(&ns, &["list", "ruleset"]).contains("partition n1") {
        assert!(
            Instant::now() < deadline,
            "the partition's rules never appeared in {ns}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    let flush: Vec<String> = vec!["flush".into(), "ruleset".into()];
    netlab::tools::run_in(&ns, "nft", &flush, "").expect("nft flush ruleset in n2");
    assert!(!nft_in(&ns, &["list", "ruleset"]).contains("partition n1"));
    eprintln!("t101: flushed the rules of {ns} mid-partition");
    let output = run.wait_with_output().expect("splitlab run finishes");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let run_dir = std::fs::read_dir(&runs)
        .unwrap()
        .flatten()
        .next()
        .expect("a run directory")
        .path();
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("results.json")).unwrap())
            .unwrap();
    let html = std::fs::read_to_string(run_dir.join("report.html")).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(output.status.code(), Some(2), "{stdout}");
    assert_eq!(results["verdict"], "unknown", "{stdout}");
    let unachieved = results["unachieved"].to_string();
    assert!(
        unachieved.contains("fault #1 not achieved: n1→n2"),
        "{unachieved}\n{stdout}"
    );
    assert!(
        stdout.contains("FAULT NOT ACHIEVED: fault #1 not achieved: n1→n2"),
        "{stdout}"
    );
    assert_eq!(results["faults"][0]["achieved"]["ok"], false);
    assert!(html.contains("Faults: achieved vs asked"));
}
