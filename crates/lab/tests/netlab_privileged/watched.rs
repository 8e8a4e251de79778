//! Issue 10 items 6 and 8: the delay worker is watched (a stopped or killed
//! worker is reported, its log outlives the lab), packets it holds when a
//! partition starts do not leak through it, and signals aimed at a dead
//! process are errors.

use crate::support::*;
use netlab::journal::Journal;
use netlab::process::{ProcessSignal, ProcessSpec, process_state, signal_pid};
use netlab::{Fault, LabOptions, LinkShaping, NetlabError, Planes, Topology};
use std::time::{Duration, Instant};

fn delay(ms: f64) -> Fault {
    shape_n1_n2(
        Planes::All,
        LinkShaping {
            delay_ms: Some(ms),
            ..LinkShaping::default()
        },
    )
}

/// Datagrams sent n1 → n2 while a 400 ms delay holds them, then a partition
/// n1 -/-> n2 before their release: none may arrive (fail-closed).
#[test]
fn t91_packets_held_by_the_delay_worker_do_not_leak_through_a_new_partition() {
    privileged_lab(&Topology::full_mesh(2), |lab| {
        let (receiver, sender, peer) = udp_n1_to_n2(lab, Duration::from_millis(50));
        let count = |window: Duration| {
            let deadline = Instant::now() + window;
            let mut got = 0;
            let mut buf = [0u8; 64];
            while Instant::now() < deadline {
                if receiver.recv(&mut buf).is_ok() {
                    got += 1;
                }
            }
            got
        };
        lab.apply(&delay(400.0)).unwrap();
        // Control: the same traffic without a partition arrives.
        for _ in 0..20 {
            sender.send_to(b"held", peer).unwrap();
        }
        assert_eq!(count(Duration::from_millis(900)), 20, "delayed, not lost");
        for _ in 0..20 {
            sender.send_to(b"held", peer).unwrap();
        }
        std::thread::sleep(Duration::from_millis(100));
        lab.apply(&Fault::Partition {
            grudge: n1_cuts_n2(),
            planes: Planes::All,
        })
        .unwrap();
        let leaked = count(Duration::from_millis(900));
        assert_eq!(
            leaked, 0,
            "datagrams held in the delay queue leaked through the partition"
        );
        assert!(lab.delay_worker_problems().is_empty());
    });
}

/// A stopped worker is reported as stalled, a killed one as exited, and its
/// log stays in the log directory after teardown.
#[test]
fn t92_a_stopped_or_killed_delay_worker_is_reported_and_its_log_kept() {
    let Some(_serial) = serial_privileged() else {
        return;
    };
    let logs = std::env::temp_dir().join(format!("splitlab-t81-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&logs);
    let options = LabOptions {
        log_dir: Some(logs.clone()),
        ..options()
    };
    let mut lab = netlab::Lab::up(&Topology::full_mesh(2), &options).expect("lab up");
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        lab.apply(&delay(20.0)).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(lab.delay_worker_problems(), Vec::new(), "healthy");
        let journal = Journal::load(&netlab::journal::state_dir(), lab.run_id()).unwrap();
        let pid = journal
            .processes
            .iter()
            .find(|p| p.role == "delay-worker")
            .expect("a journaled delay worker")
            .pid;
        signal_pid(pid, ProcessSignal::Stop).unwrap();
        std::thread::sleep(netlab::lab::STALL_AFTER + Duration::from_millis(400));
        let stalled = lab.delay_worker_problems();
        assert_eq!(stalled.len(), 1, "{stalled:?}");
        assert!(stalled[0].what.contains("stalled"), "{}", stalled[0]);
        signal_pid(pid, ProcessSignal::Kill).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let exited = lab.delay_worker_problems();
        assert_eq!(exited.len(), 1, "{exited:?}");
        assert!(exited[0].what.contains("exited"), "{}", exited[0]);
        assert!(
            exited[0].to_string().contains("n2.delay.log"),
            "{}",
            exited[0]
        );
    }));
    lab.teardown().expect("teardown");
    let kept = logs.join("n2.delay.log").exists();
    let _ = std::fs::remove_dir_all(&logs);
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    assert!(kept, "the worker's log must outlive the lab");
}

/// Killing or stopping a process that already exited is an error; a stop
/// that lands leaves the process stopped.
#[test]
fn t93_signals_to_a_dead_process_are_errors() {
    privileged_lab(&Topology::full_mesh(2), |lab| {
        let pid = lab.spawn("n1", ProcessSpec::new("sleep", ["30"])).unwrap();
        lab.apply(&Fault::Stop { node: "n1".into() }).unwrap();
        assert_eq!(process_state(pid), Some('T'));
        lab.apply(&Fault::Cont { node: "n1".into() }).unwrap();
        assert_ne!(process_state(pid), Some('T'));
        lab.apply(&Fault::Kill { node: "n1".into() }).unwrap();
        for fault in [
            Fault::Kill { node: "n1".into() },
            Fault::Stop { node: "n1".into() },
        ] {
            match lab.apply(&fault) {
                Err(NetlabError::SignalNotApplied { node, why, .. }) => {
                    assert_eq!(node, "n1");
                    assert!(why.contains("exited"), "{why}");
                }
                other => panic!("{} on a dead process: {other:?}", fault.describe()),
            }
        }
        // A restart brings it back (no liveness check there).
        let again = lab.restart("n1").unwrap();
        assert!(alive(again));
    });
}
