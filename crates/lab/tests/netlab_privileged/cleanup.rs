//! Crash and cleanup paths: a killed orchestrator, `splitlab clean` by
//! journal and by prefix, cancelled bring-up, bad input, and Ctrl-C.

use crate::support::*;
use netlab::clean::clean;
use netlab::journal::Journal;
use netlab::{Lab, LabOptions, ProcessSpec, RunId};
use std::io::{BufRead, BufReader, Lines};
use std::process::{Child, ChildStdout, Command, Stdio};

/// Starts `splitlab up mesh-3 --hold --run RUN` with `faults` and waits
/// until it holds; returns it with the rest of its standard output.
fn up_holding(run: &RunId, faults: &[&str]) -> (Child, Lines<BufReader<ChildStdout>>) {
    let mut up = Command::new(splitlab())
        .args([
            "up",
            "lab/topologies/mesh-3.toml",
            "--hold",
            "--run",
            run.as_str(),
        ])
        .args(faults.iter().flat_map(|fault| ["--fault", fault]))
        .current_dir(repo())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(up.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let holding = line.starts_with("holding");
        seen.push(line);
        if holding {
            break;
        }
    }
    assert!(
        seen.iter().any(|l| l.starts_with("holding")),
        "up did not come up: {seen:?}"
    );
    (up, lines)
}

/// Issue 4: SIGKILL the orchestrator (a real `splitlab up --hold` process)
/// while a partition and a delay are active; `splitlab clean` then leaves
/// nothing: no namespaces, links, nft tables, NFQUEUE consumers, processes;
/// the host namespace is byte-identical. A second clean is a no-op.
#[test]
fn t60_sigkill_orchestrator_then_clean_leaves_nothing() {
    let Some((_serial, before, run)) = privileged_run() else {
        return;
    };
    let partition = r#"{"fault":"partition","grudge":{"n3":["n1"]}}"#;
    let delay = r#"{"fault":"shape","links":[["n1","n2"],["n2","n1"]],"shape":{"delay_ms":20,"jitter_ms":2}}"#;
    // The rest of its output stays open: up keeps writing to it.
    let (mut up, _output) = up_holding(&run, &[partition, delay]);
    let state_dir = netlab::journal::state_dir();
    let journal = Journal::load(&state_dir, &run).unwrap();
    let workers: Vec<u32> = journal
        .processes
        .iter()
        .filter(|p| p.role == "delay-worker")
        .map(|p| p.pid)
        .collect();
    assert_eq!(
        workers.len(),
        2,
        "one NFQUEUE consumer per delayed receiver"
    );
    assert_eq!(leftovers(&run).len(), 4);
    let table = host(&[
        "ip",
        "netns",
        "exec",
        &run.node_netns("n3"),
        "nft",
        "list",
        "tables",
    ]);
    assert!(
        table.contains(&format!("table ip {}", run.nft_table())),
        "{table}"
    );

    up.kill().unwrap(); // SIGKILL
    up.wait().unwrap();
    for pid in &workers {
        assert!(
            alive(*pid),
            "workers outlive the orchestrator (as a crash leaves them)"
        );
    }
    let clean_run = |expect: &str| {
        let out = Command::new(splitlab())
            .args(["clean", "--run", run.as_str()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(text.contains(expect), "{text}");
    };
    clean_run("cleaned 1 run(s): killed 2 recorded process(es), deleted 4 namespace(s)");
    for pid in &workers {
        assert!(!alive(*pid), "NFQUEUE consumer {pid} left");
    }
    assert!(
        !host_snapshot()[0].contains(&format!("sl{run}")),
        "links left in the host"
    );
    assert_nothing_left(&run, &before);
    clean_run("cleaned 0 run(s): killed 0 recorded process(es), deleted 0 namespace(s)");
    let report = clean(&state_dir, Some(&run), false).unwrap();
    assert!(report.namespaces.is_empty() && report.killed.is_empty());
}

/// Ctrl-C (SIGINT) on `splitlab up --hold` tears everything down.
#[test]
fn t80_sigint_tears_down() {
    let Some((_serial, before, run)) = privileged_run() else {
        return;
    };
    let delay = r#"{"fault":"shape","links":[["n1","n2"]],"shape":{"delay_ms":10}}"#;
    let (mut up, lines) = up_holding(&run, &[delay]);
    let journal = Journal::load(&netlab::journal::state_dir(), &run).unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(up.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = up.wait().unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(status.success(), "{status} {rest:?}");
    assert!(
        rest.iter().any(|l| l.starts_with("lab torn down")),
        "{rest:?}"
    );
    for record in &journal.processes {
        assert!(!alive(record.pid), "{record:?} left");
    }
    assert_nothing_left(&run, &before);
}

/// `clean` without a journal: an empty `sl-<run>-*` namespace is deleted by
/// prefix; one holding a process nobody recorded is left alone (and the
/// process is not killed: clean kills recorded PIDs only).
#[test]
fn t65_clean_by_prefix_kills_nothing_unrecorded() {
    let Some(_serial) = serial_privileged() else {
        return;
    };
    let run = RunId::random();
    let state_dir = netlab::journal::state_dir();
    let empty = format!("{}orphan", run.netns_prefix());
    let busy = format!("{}busy", run.netns_prefix());
    netlab::netns::create_netns(&empty).unwrap();
    netlab::netns::create_netns(&busy).unwrap();
    let mut stranger =
        netlab::process::spawn_in(&busy, &ProcessSpec::new("/bin/sleep", ["600"])).unwrap();
    let report = clean(&state_dir, Some(&run), false).unwrap();
    assert_eq!(report.namespaces, vec![empty.clone()]);
    assert!(report.killed.is_empty());
    assert_eq!(report.unrecorded, vec![(busy.clone(), stranger.id())]);
    assert!(
        alive(stranger.id()),
        "an unrecorded process must not be killed"
    );
    assert!(netlab::netns::netns_exists(&busy));
    stranger.kill().unwrap();
    stranger.wait().unwrap();
    let report = clean(&state_dir, Some(&run), false).unwrap();
    assert_eq!(report.namespaces, vec![busy]);
    assert!(leftovers(&run).is_empty());
}

/// A cancelled bring-up (Ctrl-C while `Lab::up` runs) removes everything it
/// created: no namespace, no journal.
#[test]
fn t75_cancelled_bring_up_leaves_no_partial_state() {
    let Some((_serial, before, run)) = privileged_run() else {
        return;
    };
    let options = LabOptions {
        run: Some(run.clone()),
        cancel: Some(std::sync::Arc::new(std::sync::atomic::AtomicBool::new(
            true,
        ))),
        ..options()
    };
    match Lab::up(&mesh(5), &options) {
        Err(netlab::NetlabError::Interrupted) => {}
        Err(other) => panic!("expected Interrupted, got {other}"),
        Ok(lab) => {
            lab.teardown().unwrap();
            panic!("a cancelled bring-up must not succeed");
        }
    }
    assert_nothing_left(&run, &before);
}

/// Bad input fails before any kernel change, with a distinct exit code.
#[test]
fn t70_invalid_input_creates_nothing() {
    let Some(_serial) = serial_privileged() else {
        return;
    };
    let before = netlab::netns::list_netns("sl-");
    let dir = std::env::temp_dir().join(format!("sl-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[[node]]\nname = \"n1\"\n[[link]]\na = \"n1\"\nb = \"n9\"\n",
    )
    .unwrap();
    // Each fails with exit 5 (bad input); returns its standard error.
    let refused = |args: &[&str]| {
        let out = Command::new(splitlab())
            .args(args)
            .current_dir(repo())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(5), "{stderr}");
        stderr
    };
    let stderr = refused(&["up", bad.to_str().unwrap()]);
    assert!(
        stderr.contains("bad.toml:5:5: unknown node \"n9\"; valid names: n1"),
        "{stderr}"
    );
    let kill_unknown = r#"{"fault":"kill","node":"n7"}"#;
    refused(&["up", "lab/topologies/mesh-3.toml", "--fault", kill_unknown]);
    assert_eq!(
        netlab::netns::list_netns("sl-"),
        before,
        "nothing was created"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
