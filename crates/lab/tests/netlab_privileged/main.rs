//! Privileged netlab tests: real namespaces, veths, nft, NFQUEUE. They share
//! kernel state, so they serialise on one mutex (CI also passes
//! `--test-threads=1`). Without root or the tools they skip with a printed
//! reason; under `CI=true` they FAIL instead so a CI machine that lost
//! its privileges is noticed.
//!
//! Every test compares the host namespace's `ip -d link`, `ip addr`,
//! `ip route` and `nft list ruleset` before and after, and checks that no
//! namespace of its run is left.

use netlab::clean::clean;
use netlab::grudge;
use netlab::journal::Journal;
use netlab::probe::{LinkMeasurement, ProbeOptions, probe};
use netlab::{Fault, Lab, LabOptions, LinkShaping, Planes, ProcessSpec, RunId, Target, Topology};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn splitlab() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_splitlab"))
}

/// Returns false (skip) when the machine cannot run the tests; panics under CI.
fn privileged() -> bool {
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

fn host(args: &[&str]) -> String {
    let out = Command::new(netlab::tools::find_tool(args[0]).expect("tool"))
        .args(&args[1..])
        .output()
        .expect("run host tool");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The host namespace as seen by the four commands the issue names.
fn host_snapshot() -> Vec<String> {
    vec![
        host(&["ip", "-d", "link"]),
        host(&["ip", "addr"]),
        host(&["ip", "route"]),
        host(&["nft", "list", "ruleset"]),
    ]
}

fn options() -> LabOptions {
    LabOptions {
        helper_exe: Some(splitlab()),
        ..LabOptions::default()
    }
}

fn leftovers(run: &RunId) -> Vec<String> {
    netlab::netns::list_netns(&run.netns_prefix())
}

fn names(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("n{i}")).collect()
}

fn quick() -> ProbeOptions {
    ProbeOptions {
        udp_packets: 40,
        interval: Duration::from_millis(1),
        tcp_messages: 3,
        connect_timeout: Duration::from_millis(400),
        links: None,
    }
}

/// (from, to) → (udp reachable, tcp connected)
fn matrix(results: &[LinkMeasurement]) -> BTreeMap<(String, String), (bool, bool)> {
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

fn expect_matrix(lab: &Lab, label: &str, expected: impl Fn(&str, &str) -> (bool, bool)) {
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

fn with_lab(topology: &Topology, test: impl FnOnce(&mut Lab)) {
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

fn mesh(n: usize) -> Topology {
    Topology::load(&repo().join(format!("lab/topologies/mesh-{n}.toml"))).expect("topology")
}

/// Issue 4: the 5-node mesh has full UDP and TCP reachability, and the
/// control namespace reaches every node (even an isolated one).
#[test]
fn t10_mesh5_full_reachability_and_control_plane() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !privileged() {
        return;
    }
    with_lab(&mesh(5), |lab| {
        expect_matrix(lab, "mesh-5", |_, _| (true, true));
        lab.apply(&Fault::Partition {
            grudge: grudge::isolate_one("n1", &names(5)),
            planes: Planes::All,
        })
        .unwrap();
        let addr = lab.client_addr("n1").unwrap();
        let listener = lab.tcp_listen(&Target::Node("n1".into()), addr).unwrap();
        let mut stream = lab
            .tcp_connect(&Target::Control, addr, Duration::from_secs(1))
            .expect("control reaches an isolated node");
        stream.write_all(b"ping").unwrap();
        let (mut accepted, peer) = listener.accept().unwrap();
        assert_eq!(
            peer.ip(),
            std::net::IpAddr::from(netlab::naming::CONTROL_ADDR)
        );
        let mut buf = [0u8; 4];
        accepted.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ping");
        // A peer node cannot reach it.
        let from_n2 = lab.tcp_connect(&Target::Node("n2".into()), addr, Duration::from_millis(300));
        assert!(from_n2.is_err(), "n2 must not reach isolated n1");
    });
}

/// Issue 4: `{n1,n2} | {n3,n4,n5}`, then a one-way partition, each changes the
/// matrix exactly as asked and heals.
#[test]
fn t20_partitions_change_the_matrix_exactly_and_heal() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !privileged() {
        return;
    }
    with_lab(&mesh(5), |lab| {
        let all = names(5);
        let minority = ["n1", "n2"];
        let side = |n: &str| minority.contains(&n);
        lab.apply(&Fault::Partition {
            grudge: grudge::complete(&[all[..2].to_vec(), all[2..].to_vec()]),
            planes: Planes::All,
        })
        .unwrap();
        expect_matrix(lab, "{n1,n2}|{n3,n4,n5}", |f, t| {
            let same = side(f) == side(t);
            (same, same)
        });
        lab.apply(&Fault::Heal).unwrap();
        expect_matrix(lab, "healed", |_, _| (true, true));

        // One way: n3 drops everything from n1; n1 still hears n3. TCP needs
        // both directions, so it fails both ways between them.
        lab.apply(&Fault::Partition {
            grudge: grudge::one_way(&["n1".into()], &["n3".into()]),
            planes: Planes::All,
        })
        .unwrap();
        expect_matrix(lab, "one-way n1 -/-> n3", |f, t| match (f, t) {
            ("n1", "n3") => (false, false),
            ("n3", "n1") => (true, false),
            _ => (true, true),
        });
        // Per plane: only heartbeats from n4 to n5 are cut.
        lab.apply(&Fault::Heal).unwrap();
        lab.apply(&Fault::Partition {
            grudge: grudge::one_way(&["n4".into()], &["n5".into()]),
            planes: Planes::Heartbeat,
        })
        .unwrap();
        expect_matrix(lab, "heartbeat-only n4 -/-> n5", |f, t| match (f, t) {
            ("n4", "n5") => (false, true),
            _ => (true, true),
        });
        lab.apply(&Fault::Heal).unwrap();
        expect_matrix(lab, "healed again", |_, _| (true, true));
    });
}

/// Issue 4: loss 30 % (±5) and added delay 50 ms (±5 ms) through whichever
/// backend this kernel allows; duplicates also arrive.
#[test]
fn t30_loss_delay_and_duplicate_are_measured() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !privileged() {
        return;
    }
    with_lab(&mesh(3), |lab| {
        let link = vec![("n1".to_string(), "n2".to_string())];
        let measure = |lab: &Lab| {
            let options = ProbeOptions {
                udp_packets: 2000,
                interval: Duration::from_micros(500),
                tcp_messages: 5,
                connect_timeout: Duration::from_secs(3),
                links: Some(link.clone()),
            };
            probe(lab, &options).expect("probe").remove(0)
        };
        let base = measure(lab);
        assert_eq!(base.udp_loss_pct(), 0.0);
        let base_delay = base.udp_delay_mean_ms.unwrap();

        let shape = |shape: LinkShaping| Fault::Shape {
            links: link.clone(),
            planes: Planes::All,
            shape,
        };
        lab.apply(&shape(LinkShaping {
            loss_pct: Some(30.0),
            ..LinkShaping::default()
        }))
        .unwrap();
        let lossy = measure(lab);
        eprintln!(
            "loss requested 30%, measured {:.2}% over {} datagrams",
            lossy.udp_loss_pct(),
            lossy.udp_sent
        );
        assert!(
            (lossy.udp_loss_pct() - 30.0).abs() <= 5.0,
            "loss {:.2}%",
            lossy.udp_loss_pct()
        );

        lab.apply(&Fault::Unshape).unwrap();
        lab.apply(&shape(LinkShaping {
            delay_ms: Some(50.0),
            ..LinkShaping::default()
        }))
        .unwrap();
        let slow = measure(lab);
        let added = slow.udp_delay_mean_ms.unwrap() - base_delay;
        eprintln!(
            "delay requested +50 ms, measured +{added:.3} ms (p50 {:.3}, p99 {:.3}), tcp one-way {:.3} ms, loss {:.2}%",
            slow.udp_delay_p50_ms.unwrap(),
            slow.udp_delay_p99_ms.unwrap(),
            slow.tcp_delay_mean_ms.unwrap_or(f64::NAN),
            slow.udp_loss_pct()
        );
        assert!((added - 50.0).abs() <= 5.0, "added delay {added:.3} ms");
        assert_eq!(slow.udp_loss_pct(), 0.0, "the delay backend must not drop");
        assert!(slow.tcp_connected);

        lab.apply(&shape(LinkShaping {
            duplicate_pct: Some(10.0),
            ..LinkShaping::default()
        }))
        .unwrap();
        let doubled = measure(lab);
        let dup_pct = 100.0 * f64::from(doubled.udp_duplicates) / f64::from(doubled.udp_sent);
        eprintln!(
            "duplicate requested 10%, measured {dup_pct:.2}% (one-way delay {:.3} ms: the new shape replaced the delay)",
            doubled.udp_delay_mean_ms.unwrap()
        );
        assert!((dup_pct - 10.0).abs() <= 5.0, "duplicates {dup_pct:.2}%");

        lab.apply(&Fault::Unshape).unwrap();
        let healed = measure(lab);
        assert!(healed.udp_delay_mean_ms.unwrap() < 5.0);
        assert_eq!(healed.udp_loss_pct(), 0.0);
    });
}

/// Link down makes senders fail fast; link up restores routes.
#[test]
fn t40_link_down_and_up() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !privileged() {
        return;
    }
    with_lab(&mesh(3), |lab| {
        let to = SocketAddr::from((lab.node_addr("n2").unwrap(), 9));
        let send = |lab: &Lab| {
            let socket = lab
                .udp_bind(
                    &Target::Node("n1".into()),
                    SocketAddr::from(([0, 0, 0, 0], 0)),
                )
                .unwrap();
            socket.send_to(b"x", to)
        };
        assert!(send(lab).is_ok());
        lab.apply(&Fault::LinkDown {
            a: "n1".into(),
            b: "n2".into(),
        })
        .unwrap();
        assert!(send(lab).is_err(), "a downed link fails at the sender");
        lab.apply(&Fault::LinkUp {
            a: "n1".into(),
            b: "n2".into(),
        })
        .unwrap();
        assert!(send(lab).is_ok(), "routes are back after link up");
        let results = probe(lab, &quick()).unwrap();
        assert!(results.iter().all(|m| m.udp_reachable() && m.tcp_connected));
    });
}

/// True while the process runs (a zombie is dead: it holds no namespace, and
/// this machine's PID 1 does not reap orphans).
fn alive(pid: u32) -> bool {
    proc_state(pid).is_some_and(|s| s != 'Z' && s != 'X')
}

fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].chars().next()
}

/// Processes run inside their node's namespace; stop/cont/kill/restart act on
/// them; teardown leaves none behind.
#[test]
fn t50_processes_in_namespaces_and_process_faults() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !privileged() {
        return;
    }
    let mut pids = Vec::new();
    with_lab(&mesh(3), |lab| {
        let dir = std::env::temp_dir().join(format!("sl-test-{}", lab.run_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("n2.out");
        let spec = ProcessSpec {
            stdout: Some(out.clone()),
            ..ProcessSpec::new(
                "/bin/sh",
                ["-c", "readlink /proc/self/ns/net; exec sleep 600"],
            )
        };
        let pid = lab.spawn("n2", spec).unwrap();
        pids.push(pid);
        let ns_file = netlab::netns::netns_path(&lab.run_id().node_netns("n2"));
        let ns_inode = netlab::netns::netns_inode(&ns_file).unwrap();
        let deadline = Instant::now() + Duration::from_secs(2);
        while std::fs::read_to_string(&out).unwrap_or_default().is_empty()
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        let printed = std::fs::read_to_string(&out).unwrap();
        assert_eq!(
            printed.trim(),
            format!("net:[{ns_inode}]"),
            "child runs in n2's namespace"
        );

        lab.apply(&Fault::Stop { node: "n2".into() }).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(proc_state(pid), Some('T'));
        lab.apply(&Fault::Cont { node: "n2".into() }).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(proc_state(pid), Some('S'));
        lab.apply(&Fault::Restart { node: "n2".into() }).unwrap();
        let restarted = lab.pid("n2").unwrap();
        assert_ne!(restarted, pid);
        assert!(!alive(pid), "old process is gone");
        pids.push(restarted);
        lab.apply(&Fault::Kill { node: "n2".into() }).unwrap();
        assert_eq!(lab.pid("n2"), None);
        let again = lab.restart("n2").unwrap();
        pids.push(again);
        let mut aux = lab
            .spawn_aux(&Target::Control, &ProcessSpec::new("/bin/sleep", ["600"]))
            .unwrap();
        pids.push(aux.id());
        let _ = aux.try_wait();
        std::fs::remove_dir_all(&dir).unwrap();
    });
    for pid in pids {
        assert!(!alive(pid), "pid {pid} survived teardown");
    }
}

/// Issue 4: SIGKILL the orchestrator (a real `splitlab up --hold` process)
/// while a partition and a delay are active; `splitlab clean` then leaves
/// nothing: no namespaces, links, nft tables, NFQUEUE consumers, processes;
/// the host namespace is byte-identical. A second clean is a no-op.
#[test]
fn t60_sigkill_orchestrator_then_clean_leaves_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !privileged() {
        return;
    }
    let before = host_snapshot();
    let run = RunId::random();
    let partition = r#"{"fault":"partition","grudge":{"n3":["n1"]}}"#;
    let delay = r#"{"fault":"shape","links":[["n1","n2"],["n2","n1"]],"shape":{"delay_ms":20,"jitter_ms":2}}"#;
    let mut up = Command::new(splitlab())
        .args([
            "up",
            "lab/topologies/mesh-3.toml",
            "--hold",
            "--run",
            run.as_str(),
        ])
        .args(["--fault", partition, "--fault", delay])
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
    assert!(leftovers(&run).is_empty());
    assert!(!Journal::dir(&state_dir, &run).exists());
    let snapshot = host_snapshot();
    assert!(
        !snapshot[0].contains(&format!("sl{run}")),
        "links left in the host"
    );
    assert_eq!(snapshot, before, "host namespace changed");
    clean_run("cleaned 0 run(s): killed 0 recorded process(es), deleted 0 namespace(s)");
    let report = clean(&state_dir, Some(&run), false).unwrap();
    assert!(report.namespaces.is_empty() && report.killed.is_empty());
}

/// Jitter keeps order unless reordering is asked for; reorder releases some
/// packets at once; corrupt alters payloads; rate installs tbf on the
/// sender's veth and unshape removes it.
#[test]
fn t35_jitter_reorder_corrupt_and_rate() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !privileged() {
        return;
    }
    with_lab(&mesh(3), |lab| {
        let link = vec![("n1".to_string(), "n2".to_string())];
        let measure = |lab: &Lab| {
            let options = ProbeOptions {
                udp_packets: 1000,
                interval: Duration::from_millis(1),
                tcp_messages: 2,
                connect_timeout: Duration::from_secs(3),
                links: Some(link.clone()),
            };
            probe(lab, &options).expect("probe").remove(0)
        };
        let shape = |shape: LinkShaping| Fault::Shape {
            links: link.clone(),
            planes: Planes::Heartbeat,
            shape,
        };
        lab.apply(&shape(LinkShaping {
            delay_ms: Some(20.0),
            jitter_ms: Some(10.0),
            ..LinkShaping::default()
        }))
        .unwrap();
        let jittered = measure(lab);
        eprintln!(
            "jitter 20±10 ms: mean {:.2} p50 {:.2} p99 {:.2} ms, reordered {}",
            jittered.udp_delay_mean_ms.unwrap(),
            jittered.udp_delay_p50_ms.unwrap(),
            jittered.udp_delay_p99_ms.unwrap(),
            jittered.udp_reordered
        );
        assert_eq!(jittered.udp_reordered, 0, "jitter alone keeps order");
        assert!(jittered.udp_delay_p50_ms.unwrap() >= 10.0);

        lab.apply(&shape(LinkShaping {
            delay_ms: Some(20.0),
            reorder_pct: Some(25.0),
            ..LinkShaping::default()
        }))
        .unwrap();
        let reordered = measure(lab);
        eprintln!(
            "reorder 25% against 20 ms: reordered {} of {}, p50 {:.2} ms",
            reordered.udp_reordered,
            reordered.udp_received,
            reordered.udp_delay_p50_ms.unwrap()
        );
        assert!(reordered.udp_reordered > 100, "{}", reordered.udp_reordered);

        lab.apply(&shape(LinkShaping {
            corrupt_pct: Some(10.0),
            ..LinkShaping::default()
        }))
        .unwrap();
        let corrupted = measure(lab);
        let pct = 100.0 * f64::from(corrupted.udp_corrupted) / f64::from(corrupted.udp_sent);
        eprintln!("corrupt 10%: measured {pct:.2}%");
        assert!((pct - 10.0).abs() <= 5.0, "corrupted {pct:.2}%");

        lab.apply(&Fault::Unshape).unwrap();
        lab.apply(&Fault::Shape {
            links: link.clone(),
            planes: Planes::All,
            shape: LinkShaping {
                rate_kbit: Some(1000),
                ..LinkShaping::default()
            },
        })
        .unwrap();
        let ns = lab.run_id().node_netns("n1");
        let dev = lab.run_id().mesh_ifname(1, 2);
        let shown = host(&["tc", "-n", &ns, "qdisc", "show", "dev", &dev]);
        assert!(
            shown.contains("tbf") && shown.contains("rate 1Mbit"),
            "{shown}"
        );
        lab.apply(&Fault::Unshape).unwrap();
        let shown = host(&["tc", "-n", &ns, "qdisc", "show", "dev", &dev]);
        assert!(!shown.contains("tbf"), "{shown}");
        let plane_rate = lab.apply(&Fault::Shape {
            links: link.clone(),
            planes: Planes::Client,
            shape: LinkShaping {
                rate_kbit: Some(1000),
                ..LinkShaping::default()
            },
        });
        assert!(
            plane_rate.is_err(),
            "per-plane rate is refused, not ignored"
        );
        let delay = Fault::Shape {
            links: link.clone(),
            planes: Planes::All,
            shape: LinkShaping {
                delay_ms: Some(5.0),
                ..LinkShaping::default()
            },
        };
        lab.check_supported(std::slice::from_ref(&delay))
            .expect("this kernel has a delay backend");
        let unknown = Fault::Kill { node: "n9".into() };
        assert!(matches!(
            lab.check_supported(&[delay, unknown]),
            Err(netlab::NetlabError::InvalidFault(_))
        ));
    });
}

/// Ctrl-C (SIGINT) on `splitlab up --hold` tears everything down.
#[test]
fn t80_sigint_tears_down() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !privileged() {
        return;
    }
    let before = host_snapshot();
    let run = RunId::random();
    let delay = r#"{"fault":"shape","links":[["n1","n2"]],"shape":{"delay_ms":10}}"#;
    let mut up = Command::new(splitlab())
        .args([
            "up",
            "lab/topologies/mesh-3.toml",
            "--hold",
            "--run",
            run.as_str(),
            "--fault",
            delay,
        ])
        .current_dir(repo())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(up.stdout.take().unwrap()).lines();
    assert!(
        lines
            .by_ref()
            .map_while(Result::ok)
            .any(|l| l.starts_with("holding")),
        "up did not reach holding"
    );
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
    assert!(leftovers(&run).is_empty());
    for record in &journal.processes {
        assert!(!alive(record.pid), "{record:?} left");
    }
    assert!(!Journal::dir(&netlab::journal::state_dir(), &run).exists());
    assert_eq!(host_snapshot(), before, "host namespace changed");
}

/// `clean` without a journal: an empty `sl-<run>-*` namespace is deleted by
/// prefix; one holding a process nobody recorded is left alone (and the
/// process is not killed: clean kills recorded PIDs only).
#[test]
fn t65_clean_by_prefix_kills_nothing_unrecorded() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !privileged() {
        return;
    }
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
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !privileged() {
        return;
    }
    let before = host_snapshot();
    let run = RunId::random();
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
    assert!(leftovers(&run).is_empty(), "{:?}", leftovers(&run));
    assert!(!Journal::dir(&netlab::journal::state_dir(), &run).exists());
    assert_eq!(host_snapshot(), before);
}

/// Bad input fails before any kernel change, with a distinct exit code.
#[test]
fn t70_invalid_input_creates_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !privileged() {
        return;
    }
    let before = netlab::netns::list_netns("sl-");
    let dir = std::env::temp_dir().join(format!("sl-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[[node]]\nname = \"n1\"\n[[link]]\na = \"n1\"\nb = \"n9\"\n",
    )
    .unwrap();
    let out = Command::new(splitlab())
        .arg("up")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.toml:5:5: unknown node \"n9\"; valid names: n1"),
        "{stderr}"
    );
    let out = Command::new(splitlab())
        .args([
            "up",
            "lab/topologies/mesh-3.toml",
            "--fault",
            r#"{"fault":"kill","node":"n7"}"#,
        ])
        .current_dir(repo())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        netlab::netns::list_netns("sl-"),
        before,
        "nothing was created"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
