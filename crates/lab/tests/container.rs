//! splitlab in what a container is made of. Four tests:
//!
//! - a scenario run inside a fresh `unshare` sandbox (new network, mount,
//!   PID, UTS and IPC namespaces, a private /run, loopback up): the verdict
//!   is as expected and nothing (namespaces, links, nft tables, processes)
//!   is left in the outer namespaces;
//! - `doctor`, `run` and `up` in an unprivileged `unshare --user
//!   --map-root-user --net` sandbox, and as root without CAP_NET_ADMIN and
//!   CAP_SYS_ADMIN: each names what is missing and how to get it, exit 2,
//!   nothing created;
//! - the interactive lab: `up --system splitnode`, `fault partition
//!   --grudge isolate --targets leader`, a write through `exec`, `heal`,
//!   `down`; and `up --system etcd`: a leader found through etcd's status,
//!   `fault restart`, `fault --targets leader` resolved by asking etcd,
//!   `heal`, `down`.
//!
//! They need root, the lab's tools and unshare; without them they skip with
//! a reason, under `CI=true` they fail instead.

mod common;

use common::{host, missing_root_and_tools, ready_or_skip, repo, serial_when, splitlab};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

/// The splitnode binary: `$SPLITNODE_BIN`, else beside splitlab, else the
/// release build.
fn splitnode() -> Option<PathBuf> {
    std::env::var_os("SPLITNODE_BIN")
        .map(PathBuf::from)
        .into_iter()
        .chain([
            splitlab().with_file_name("splitnode"),
            repo().join("target/release/splitnode"),
        ])
        .find(|path| path.is_file())
}

/// A test's hold on the machine: the serial lock, and a fresh scratch
/// directory that goes when the test ends.
struct Scratch {
    dir: PathBuf,
    _serial: MutexGuard<'static, ()>,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The serial lock and a scratch directory named for `tag`, when the
/// machine can run the test; `None`: skip (under `CI=true`, fail).
fn ready(needs_splitnode: bool, tag: &str) -> Option<Scratch> {
    let serial = serial_when(|| {
        let mut missing = missing_root_and_tools(&["ip", "nft", "tc", "unshare"]);
        if needs_splitnode && splitnode().is_none() {
            missing.push("splitnode (cargo build -p node, or SPLITNODE_BIN)".into());
        }
        ready_or_skip("container test", &missing)
    })?;
    let dir = std::env::temp_dir().join(format!("sl-container-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    Some(Scratch {
        dir,
        _serial: serial,
    })
}

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// What of the lab could leak into the outer namespaces: `sl-` namespaces,
/// links named `sl…`, nft tables, and processes running splitnode or the
/// delay worker.
fn outer_lab_state() -> Vec<String> {
    let mut state: Vec<String> = netlab::netns::list_netns("sl-")
        .into_iter()
        .map(|ns| format!("netns {ns}"))
        .collect();
    for line in host(&["ip", "-o", "link"]).lines() {
        let name = line.split(':').nth(1).unwrap_or("").trim();
        if name.starts_with("sl") {
            state.push(format!("link {name}"));
        }
    }
    for line in host(&["nft", "list", "tables"]).lines() {
        state.push(format!("nft {line}"));
    }
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains("splitnode --id") || cmdline.contains(netlab::DELAY_WORKER_ARG) {
            state.push(format!("process {cmdline}"));
        }
    }
    state.sort();
    state
}

const SANDBOX_SCENARIO: &str = include_str!("scenarios/sandbox-smoke.toml");

#[test]
fn a_scenario_runs_inside_a_fresh_sandbox_and_leaves_nothing_outside() {
    let Some(scratch) = ready(true, "sandbox") else {
        return;
    };
    let scenario = scratch.dir.join("sandbox-smoke.toml");
    std::fs::write(&scenario, SANDBOX_SCENARIO).unwrap();
    // Kept after the test (target/tmp/sandbox-runs) so its report can be opened.
    let runs = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sandbox-runs");
    let _ = std::fs::remove_dir_all(&runs);
    let before = outer_lab_state();
    // What a container runtime gives a privileged container: its own
    // network, mount, PID, UTS and IPC namespaces, its own /proc and /run
    // (so /run/netns and the journal are private), loopback up.
    let script = format!(
        "set -e; mount -t tmpfs tmpfs /run; mkdir -p /run/netns; ip link set lo up; \
         hostname sandbox; exec {} run {} --runs-dir {} --splitnode {}",
        splitlab().display(),
        scenario.display(),
        runs.display(),
        splitnode().unwrap().display()
    );
    let output = Command::new("unshare")
        .args([
            "--net",
            "--mount",
            "--pid",
            "--uts",
            "--ipc",
            "--fork",
            "--mount-proc",
            "--propagation",
            "private",
            "--",
            "bash",
            "-c",
            &script,
        ])
        .output()
        .unwrap();
    let after = outer_lab_state();
    let run_dir = std::fs::read_dir(&runs)
        .ok()
        .and_then(|entries| entries.flatten().map(|e| e.path()).find(|p| p.is_dir()));
    let results = run_dir
        .as_ref()
        .and_then(|dir| std::fs::read_to_string(dir.join("results.json")).ok())
        .unwrap_or_default();
    let report = run_dir.as_ref().map(|dir| dir.join("report.html"));
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(results.contains("\"verdict\": \"valid\""), "{results}");
    assert!(results.contains("\"expectation_met\": true"), "{results}");
    assert!(report.as_ref().is_some_and(|r| r.is_file()), "no report");
    assert_eq!(
        before, after,
        "the sandboxed run leaked into the outer namespaces"
    );
    eprintln!("sandbox run report: {}", report.unwrap().display());
}

/// Runs `splitlab ARGS` under `wrapper` (e.g. unshare or setpriv).
fn wrapped(wrapper: &[&str], args: &[&str], cwd: &Path) -> Output {
    Command::new(wrapper[0])
        .args(&wrapper[1..])
        .arg(splitlab())
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

#[test]
fn without_privileges_doctor_run_and_up_say_what_is_missing() {
    let Some(scratch) = ready(false, "unprivileged") else {
        return;
    };
    std::fs::write(scratch.dir.join("s.toml"), SANDBOX_SCENARIO).unwrap();
    let sandboxes: [(&[&str], &str); 2] = [
        // A user namespace: root inside, but it owns no mount namespace.
        (
            &["unshare", "--user", "--map-root-user", "--net", "--"],
            "mount /run/netns",
        ),
        // Root in the host's namespaces without the two capabilities, as
        // in a container started without --privileged.
        (
            &[
                "setpriv",
                "--inh-caps=-net_admin,-sys_admin",
                "--bounding-set=-net_admin,-sys_admin",
                "--",
            ],
            "CAP_NET_ADMIN",
        ),
    ];
    for (wrapper, missing) in sandboxes {
        let before = outer_lab_state();
        let doctor = wrapped(wrapper, &["doctor"], &scratch.dir);
        let report = text(&doctor);
        assert_eq!(doctor.status.code(), Some(2), "{wrapper:?}: {report}");
        assert!(
            report.contains(&format!("NO   {missing}")),
            "{wrapper:?}: {report}"
        );
        assert!(report.contains("--privileged"), "{wrapper:?}: {report}");
        assert!(report.contains("--cap-add"), "{wrapper:?}: {report}");
        for args in [
            &["run", "s.toml", "--runs-dir", "runs"][..],
            &["up", "mesh-3"][..],
        ] {
            let output = wrapped(wrapper, args, &scratch.dir);
            let report = text(&output);
            assert_eq!(
                output.status.code(),
                Some(2),
                "{wrapper:?} {args:?}: {report}"
            );
            assert!(
                report.contains(&format!("missing {missing}")),
                "{wrapper:?} {args:?}: {report}"
            );
            assert!(report.contains("--privileged"), "{report}");
        }
        assert!(
            !scratch.dir.join("runs").exists(),
            "run created its run directory"
        );
        assert_eq!(before, outer_lab_state(), "{wrapper:?} created lab state");
    }
}

fn splitlab_ok(args: &[&str]) -> String {
    let output = Command::new(splitlab()).args(args).output().unwrap();
    let report = text(&output);
    assert_eq!(output.status.code(), Some(0), "splitlab {args:?}: {report}");
    report
}

/// `splitlab up mesh-3 --system SYSTEM...` as a by-hand run (its id this
/// process's plus `offset`, its runs under `dir`): the run id and what up
/// printed.
fn up_by_hand(offset: u32, dir: &Path, system: &[&str]) -> (String, String) {
    let run = format!("{:04x}", (std::process::id() + offset) % 0xffff);
    let up = splitlab_ok(
        &[
            &["up", "mesh-3", "--run", &run, "--system"][..],
            system,
            &["--runs-dir", dir.to_str().unwrap()],
        ]
        .concat(),
    );
    (run, up)
}

/// `splitlab fault partition --grudge isolate --targets leader` on `run`,
/// asked again while no member reports itself leader (a restarted leader
/// leaves the cluster leaderless until the next election), for up to 10 s.
fn isolate_leader(run: &str) -> String {
    let args = [
        "fault",
        "partition",
        "--grudge",
        "isolate",
        "--targets",
        "leader",
        "--run",
        run,
    ];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let output = Command::new(splitlab()).args(args).output().unwrap();
        let report = text(&output);
        if output.status.code() == Some(0) {
            return report;
        }
        assert!(
            report.contains("no node reports itself leader") && Instant::now() < deadline,
            "splitlab {args:?}: {report}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Runs the by-hand `sequence` on the lab `run`, then `splitlab heal`, then
/// `splitlab down` whatever happened before (a panic included); asserts the
/// sequence and the heal succeeded, down exited cleanly and no namespace is
/// left.
fn heal_and_take_down(run: &str, sequence: impl FnOnce() -> Result<(), String>) {
    // A panic in the sequence (a failed splitlab command) still takes the
    // lab down before it is passed on.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        sequence().and_then(|()| {
            let heal = splitlab_ok(&["heal", "--run", run]);
            if heal.contains("healed") {
                Ok(())
            } else {
                Err(heal)
            }
        })
    }));
    let down = Command::new(splitlab())
        .args(["down", "--run", run])
        .output()
        .unwrap();
    outcome
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        .unwrap();
    assert_eq!(down.status.code(), Some(0), "{}", text(&down));
    assert!(netlab::netns::list_netns(&format!("sl-{run}-")).is_empty());
}

/// `(node, "ip:port")` of every `  n1   client http://10.77.0.1:7001` line.
fn client_addrs(up: &str) -> Vec<(String, String)> {
    up.lines()
        .filter_map(|line| {
            let (node, addr) = line.trim().split_once(" client http://")?;
            Some((node.trim().to_string(), addr.trim().to_string()))
        })
        .collect()
}

#[test]
fn by_hand_up_fault_exec_heal_down() {
    let Some(scratch) = ready(true, "adhoc") else {
        return;
    };
    let splitnode = splitnode().unwrap();
    let system = ["splitnode", "--splitnode", splitnode.to_str().unwrap()];
    let (run, up) = up_by_hand(0, &scratch.dir, &system);
    let sequence = || -> Result<(), String> {
        let addrs = client_addrs(&up);
        if addrs.len() != 3 || !up.contains("leader: n") {
            return Err(format!("no cluster with a leader: {up}"));
        }
        let fault = isolate_leader(&run);
        let leader = fault
            .split("(targets: ")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .ok_or(format!("no resolved target: {fault}"))?
            .to_string();
        if !fault.contains("partition isolate leader") {
            return Err(fault);
        }
        // A write through exec, from inside a majority node's namespace
        // (bash's /dev/tcp: no HTTP client is needed in the image).
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut last = String::new();
        'write: while Instant::now() < deadline {
            for (node, addr) in addrs.iter().filter(|(node, _)| *node != leader) {
                let (ip, port) = addr.split_once(':').unwrap();
                let script = format!(
                    "exec 3<>/dev/tcp/{ip}/{port}; printf 'PUT /kv/by-hand HTTP/1.1\\r\\n\
                     Host: {ip}\\r\\nContent-Length: 2\\r\\nConnection: close\\r\\n\\r\\nok' >&3; \
                     timeout 3 cat <&3"
                );
                let output = Command::new(splitlab())
                    .args(["exec", node, "--run", &run, "--", "bash", "-c", &script])
                    .output()
                    .unwrap();
                last = text(&output);
                if String::from_utf8_lossy(&output.stdout).starts_with("HTTP/1.1 200") {
                    break 'write;
                }
            }
            std::thread::sleep(Duration::from_millis(300));
            last.insert_str(0, "still failing: ");
        }
        if last.starts_with("still failing") || last.is_empty() {
            return Err(format!("no write succeeded on the majority side: {last}"));
        }
        // The isolated leader's namespace cannot reach the majority.
        let (ip, port) = addrs
            .iter()
            .find(|(node, _)| *node != leader)
            .unwrap()
            .1
            .split_once(':')
            .unwrap();
        let cut = Command::new(splitlab())
            .args([
                "exec",
                &leader,
                "--run",
                &run,
                "--",
                "bash",
                "-c",
                &format!("timeout 2 bash -c 'exec 3<>/dev/tcp/{ip}/{port}'"),
            ])
            .output()
            .unwrap();
        if cut.status.success() {
            return Err(format!("the isolated leader reached {ip}:{port}"));
        }
        Ok(())
    };
    heal_and_take_down(&run, sequence);
}

/// etcd, where the lab's description looks for it (`$SPLITLAB_ETCD`, then
/// `etcd` on PATH or /usr/bin/etcd).
fn etcd() -> Option<PathBuf> {
    client::system::System::builtin("etcd")?.binary().ok()
}

#[test]
fn by_hand_up_system_etcd_finds_a_leader_and_goes_down() {
    let Some(scratch) = ready(false, "adhoc-etcd") else {
        return;
    };
    let missing: Vec<String> = etcd()
        .is_none()
        .then(|| "etcd (apt-get install etcd-server, or SPLITLAB_ETCD)".to_string())
        .into_iter()
        .collect();
    if !ready_or_skip("container test", &missing) {
        return;
    }
    let (run, up) = up_by_hand(1, &scratch.dir, &["etcd"]);
    let sequence = || -> Result<(), String> {
        let addrs = client_addrs(&up);
        if !up.contains("etcd cluster of 3 started") || !up.contains("leader: n") {
            return Err(format!("no etcd cluster with a leader: {up}"));
        }
        if addrs.len() != 3 || !addrs.iter().all(|(_, addr)| addr.ends_with(":2379")) {
            return Err(format!("expected three etcd client addresses: {up}"));
        }
        // `fault restart` starts a member again from its recorded spec.
        let restart = splitlab_ok(&["fault", "restart", "--targets", "n1", "--run", &run]);
        if !restart.contains("restart") {
            return Err(restart);
        }
        // The role is resolved by asking the members in etcd's protocol.
        let fault = isolate_leader(&run);
        if !fault.contains("(targets: n") {
            return Err(format!("the leader was not resolved: {fault}"));
        }
        Ok(())
    };
    heal_and_take_down(&run, sequence);
}
