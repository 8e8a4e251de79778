//! Issue 14 items 5 and 6, end to end and privileged: a `disk-full` run
//! fail-stops its target (exit 74 on a disk that reported 0 bytes free),
//! restarts it and is judged valid, and leaves no mount behind; a `forge`
//! run against a keyed cluster is valid with the rejected frames counted;
//! `splitlab clean` unmounts the data disk of a lab whose owner died and
//! keeps its files; an `fsync-error` run fail-stops its target the same
//! way; the FUSE data disk passes file calls through, fails fsync with EIO
//! or delays it as asked, and `splitlab clean` removes it after a crash.
//! Run as root (skipped otherwise, failed under CI=true).
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::MutexGuard;

use netlab::{Lab, LabOptions, Topology};

// Shared with the other privileged test binaries; this one uses a part.
#[allow(dead_code)]
mod common;
use common::{missing_root_and_tools, ready_or_skip, serial_when, splitlab};

/// The serial lock when this machine can run lab tests; `None`: skip
/// (a panic under CI=true).
fn privileged() -> Option<MutexGuard<'static, ()>> {
    serial_when(|| {
        ready_or_skip(
            "node-fault lab tests",
            &missing_root_and_tools(&["ip", "nft", "tc"]),
        )
    })
}

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sl-node-faults-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One finished `splitlab run`.
struct Finished {
    /// The scratch directory (scenario file, `runs/`).
    dir: PathBuf,
    /// The run directory inside `runs/`.
    run_dir: PathBuf,
    stdout: String,
    results: serde_json::Value,
}

/// Runs `scenario` (text) with the splitnode beside splitlab in a fresh
/// scratch directory and asserts it ended valid (exit 0).
fn valid_run(tag: &str, scenario: &str) -> Finished {
    let splitnode = splitlab().with_file_name("splitnode");
    assert!(
        splitnode.exists(),
        "{} is missing: build it first (cargo build -p node, same profile as this test)",
        splitnode.display()
    );
    let dir = scratch(tag);
    let file = dir.join("scenario.toml");
    std::fs::write(&file, scenario).unwrap();
    let runs = dir.join("runs");
    let output = Command::new(splitlab())
        .arg("run")
        .arg(&file)
        .arg("--splitnode")
        .arg(&splitnode)
        .arg("--runs-dir")
        .arg(&runs)
        .output()
        .expect("splitlab run");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let run_dir = (std::fs::read_dir(&runs).unwrap().flatten().next())
        .expect("a run directory")
        .path();
    let results = std::fs::read_to_string(run_dir.join("results.json")).unwrap();
    let results: serde_json::Value = serde_json::from_str(&results).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert_eq!(results["verdict"], "valid", "{stdout}");
    Finished {
        dir,
        run_dir,
        stdout,
        results,
    }
}

/// Lab data disks whose mount point is under `dir`.
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    (netlab::disk::lab_mounts().into_iter())
        .map(|(_, path)| path)
        .filter(|path| path.starts_with(dir))
        .collect()
}

/// A valid-expected 3-node scenario whose one step starts at 3 s.
fn scenario(name: &str, duration: &str, step: &str) -> String {
    format!(
        "name = \"{name}\"\nseed = 3\ntopology = \"mesh-3\"\nduration = \"{duration}\"\n\
         expect = {{ verdict = \"valid\" }}\n[workload]\nclients = 3\nrate = 20.0\n\
         [[timeline]]\nat = \"3s\"\n{step}"
    )
}

/// A disk fault's valid run, as far as it went like every disk fault's.
struct FailStopped {
    run: Finished,
    /// The target's `achieved.disk` record.
    disk: serde_json::Value,
    /// The target's directory in the run (`data/`, `splitnode.log`).
    node_dir: PathBuf,
    /// The target's `splitnode.log`.
    log: String,
}

/// A 14 s valid run whose one step puts `fault` on a follower for 4 s: the
/// target fail-stopped (exit 74) and was restarted, the fault counts as
/// achieved, the data disks are gone at the end and the node's log file
/// kept.
fn follower_fail_stops_and_restarts(fault: &str) -> FailStopped {
    let step = format!("for = \"4s\"\nfault = \"{fault}\"\ntargets = \"follower\"\n");
    let run = valid_run(fault, &scenario(&format!("t-{fault}"), "14s", &step));
    let record = &run.results["faults"][0];
    let target = record["targets"][0].as_str().unwrap().to_string();
    let disk = record["achieved"]["disk"][&target].clone();
    assert_eq!(disk["exit_code"], 74, "{disk}");
    assert_eq!(disk["restarted"], true, "{disk}");
    assert_eq!(record["achieved"]["ok"], true);
    assert!(
        mounts_under(&run.dir).is_empty(),
        "{:?}",
        mounts_under(&run.dir)
    );
    let node_dir = run.run_dir.join("nodes").join(&target);
    assert!(node_dir.join("data/log").is_file());
    let log = std::fs::read_to_string(node_dir.join("splitnode.log")).unwrap();
    FailStopped {
        run,
        disk,
        node_dir,
        log,
    }
}

#[test]
fn disk_full_fail_stops_the_node_which_restarts_and_the_run_is_valid() {
    let Some(_serial) = privileged() else {
        return;
    };
    let FailStopped {
        run,
        disk,
        node_dir,
        log,
    } = follower_fail_stops_and_restarts("disk-full");
    assert_eq!(disk["free_after_fill"], 0, "{disk}");
    assert!(run.stdout.contains("fail-stop (exit 74)"), "{}", run.stdout);
    // The filler is gone; the node said why it stopped.
    assert!(!node_dir.join("data").join(netlab::disk::FILLER).exists());
    assert!(log.contains("fail-stop: storage failed"), "{log}");
    assert!(log.contains("No space left on device"), "{log}");
    std::fs::remove_dir_all(&run.dir).unwrap();
}

const FORGE: &str = "for = \"5s\"\nfault = \"forge\"\ntargets = \"all\"\n";

#[test]
fn forgeries_against_a_keyed_cluster_are_rejected_counted_and_change_nothing() {
    let Some(_serial) = privileged() else {
        return;
    };
    let Finished {
        dir,
        stdout,
        results,
        ..
    } = valid_run("forge", &scenario("t-forge", "12s", FORGE));
    let forge = &results["faults"][0]["achieved"]["forge"];
    // Summed over the members that answered /metrics both times (a loaded
    // machine may miss one reading; the judge does the same).
    let after = forge["rejected_after"].as_object().expect("readings");
    let rejected: u64 = (after.iter())
        .filter_map(|(node, count)| {
            Some(count.as_u64()? - forge["rejected_before"][node].as_u64()?)
        })
        .sum();
    assert!(rejected > 0, "{forge}");
    for (node, term) in forge["term_after"].as_object().unwrap() {
        assert!(term.as_u64().unwrap() < 1_000_000, "{node}: {forge}");
    }
    assert!(stdout.contains("forged term adopted by none"), "{stdout}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A two-node lab (the delay worker and FUSE server run as this build's
/// splitlab) with a `size`-byte data disk mounted for n1 under a scratch
/// directory: (scratch directory, lab, n1's data path).
fn lab_with_n1_data_disk(name: &str, size: u64) -> (PathBuf, Lab, PathBuf) {
    let dir = scratch(name);
    let options = LabOptions {
        helper_exe: Some(splitlab()),
        ..LabOptions::default()
    };
    let mut lab = Lab::up(&Topology::full_mesh(2), &options).expect("lab up");
    let data = dir.join("n1-data");
    lab.mount_data_disk("n1", &data, size).unwrap();
    (dir, lab, data)
}

/// The orchestrator of `lab` goes away without teardown, as a crash would,
/// and `splitlab clean --run <its run> --force` succeeds: its stdout.
fn crash_and_clean(lab: Lab) -> String {
    let run = lab.run_id().clone();
    lab.detach();
    let output = Command::new(splitlab())
        .args(["clean", "--run", run.as_str(), "--force"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{stdout}");
    stdout
}

#[test]
fn clean_unmounts_the_data_disks_of_a_dead_lab_and_keeps_their_files() {
    let Some(_serial) = privileged() else {
        return;
    };
    let (dir, mut lab, data) = lab_with_n1_data_disk("clean", 1 << 20);
    std::fs::write(data.join("log"), b"durable").unwrap();
    let fill = lab.fill_data_disk("n1").unwrap();
    assert_eq!(fill.free_bytes, 0, "{fill:?}");
    assert_eq!(mounts_under(&dir), vec![data.clone()]);
    let stdout = crash_and_clean(lab);
    assert!(stdout.contains("unmounted 1 data disk(s)"), "{stdout}");
    assert!(mounts_under(&dir).is_empty());
    assert_eq!(std::fs::read(data.join("log")).unwrap(), b"durable");
    assert!(!data.join(netlab::disk::FILLER).exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_failed_fsync_fail_stops_the_node_which_restarts_and_the_run_is_valid() {
    let Some(_serial) = privileged() else {
        return;
    };
    let FailStopped { run, disk, log, .. } = follower_fail_stops_and_restarts("fsync-error");
    assert!(disk["fsync"]["failed"].as_u64().unwrap() >= 1, "{disk}");
    assert!(run.stdout.contains("failed with EIO"), "{}", run.stdout);
    assert!(log.contains("Input/output error"), "{log}");
    std::fs::remove_dir_all(&run.dir).unwrap();
}

/// fsync on `file`, and how long it took.
fn timed_fsync(file: &std::fs::File) -> (std::io::Result<()>, std::time::Duration) {
    let started = std::time::Instant::now();
    let result = file.sync_all();
    (result, started.elapsed())
}

#[test]
fn a_fuse_data_disk_passes_through_fails_and_delays_fsync_and_clean_removes_it() {
    use netlab::fusedisk::{self, FsyncMode};
    use std::io::Write;
    use std::time::Duration;

    let Some(_serial) = privileged() else {
        return;
    };
    let (dir, mut lab, data) = lab_with_n1_data_disk("fuse", 4 << 20);
    std::fs::write(data.join("before"), b"on the tmpfs").unwrap();
    let record = fusedisk::mount_fuse_disk(&mut lab, "n1", &data).expect("FUSE disk");
    assert!(netlab::disk::is_fuse_mounted(&data, &record.source));
    assert!(record.source.starts_with("sl-") && record.source.ends_with("-fuse-n1"));

    // Passthrough: what was underneath, a write, an atomic replace, a
    // truncation and an append, a directory and a symlink, each read back
    // through the mount.
    assert_eq!(std::fs::read(data.join("before")).unwrap(), b"on the tmpfs");
    std::fs::write(data.join("state.tmp"), b"new state").unwrap();
    std::fs::rename(data.join("state.tmp"), data.join("before")).unwrap();
    assert_eq!(std::fs::read(data.join("before")).unwrap(), b"new state");
    assert!(!data.join("state.tmp").exists());
    let mut log = (std::fs::OpenOptions::new().create(true).append(true))
        .open(data.join("log"))
        .unwrap();
    log.write_all(b"abcdef").unwrap();
    log.set_len(3).unwrap();
    log.write_all(b"XY").unwrap();
    assert_eq!(std::fs::read(data.join("log")).unwrap(), b"abcXY");
    std::fs::create_dir(data.join("dir")).unwrap();
    std::fs::write(data.join("dir/file"), b"in a directory").unwrap();
    std::os::unix::fs::symlink("dir/file", data.join("link")).unwrap();
    assert_eq!(
        std::fs::read_link(data.join("link")).unwrap(),
        Path::new("dir/file")
    );
    assert_eq!(std::fs::read(data.join("link")).unwrap(), b"in a directory");
    // fallocate passes through too (a node's log preallocates with it).
    let preallocated = std::fs::File::create(data.join("preallocated")).unwrap();
    nix::fcntl::fallocate(
        &preallocated,
        nix::fcntl::FallocateFlags::empty(),
        0,
        1 << 20,
    )
    .expect("fallocate through the FUSE disk");
    assert_eq!(preallocated.metadata().unwrap().len(), 1 << 20);
    let zeros = std::fs::read(data.join("preallocated")).unwrap();
    assert!(zeros.len() == 1 << 20 && zeros.iter().all(|&byte| byte == 0));
    drop(preallocated);
    std::fs::remove_file(data.join("preallocated")).unwrap();
    let (passed, _) = timed_fsync(&log);
    passed.expect("fsync in pass mode");
    std::fs::File::open(&data)
        .unwrap()
        .sync_all()
        .expect("directory fsync");

    // fsync-error: EIO, counted; the data stays readable.
    fusedisk::set_fsync_mode(&lab, "n1", FsyncMode::Error).unwrap();
    let (failed, _) = timed_fsync(&log);
    assert_eq!(failed.unwrap_err().raw_os_error(), Some(nix::libc::EIO));
    let dir_sync = std::fs::File::open(&data).unwrap().sync_all();
    assert_eq!(dir_sync.unwrap_err().raw_os_error(), Some(nix::libc::EIO));
    assert_eq!(std::fs::read(data.join("log")).unwrap(), b"abcXY");
    let delay = Duration::from_millis(30);
    let window = fusedisk::set_fsync_mode(&lab, "n1", FsyncMode::Slow(delay)).unwrap();
    assert_eq!(
        (window.mode.as_str(), window.failed),
        ("error", 2),
        "{window:?}"
    );

    // disk-slow: held back by the delay, measured by the server.
    for _ in 0..3 {
        let (slow, took) = timed_fsync(&log);
        slow.expect("fsync in slow mode");
        assert!(took >= delay, "{took:?}");
    }
    let window = fusedisk::set_fsync_mode(&lab, "n1", FsyncMode::Pass).unwrap();
    assert_eq!(
        (window.mode.as_str(), window.delayed),
        ("slow", 3),
        "{window:?}"
    );
    let p50 = window.p50_ms.unwrap();
    assert!((30.0..40.0).contains(&p50), "{window:?}");
    let (passed, took) = timed_fsync(&log);
    passed.expect("fsync in pass mode again");
    assert!(took < delay, "{took:?}");
    drop(log);

    // A crash: the orchestrator goes away; clean detaches the FUSE disk,
    // kills only its recorded server and keeps the files.
    let server = record.server.clone().expect("server recorded");
    assert!(server.is_alive());
    crash_and_clean(lab);
    assert!(mounts_under(&dir).is_empty(), "{:?}", mounts_under(&dir));
    assert!(!netlab::disk::is_fuse_mounted(&data, &record.source));
    assert!(!server.is_alive());
    assert_eq!(std::fs::read(data.join("before")).unwrap(), b"new state");
    assert_eq!(std::fs::read(data.join("log")).unwrap(), b"abcXY");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_fuse_disk_detached_under_a_live_server_leaves_the_tmpfs_and_teardown_removes_both() {
    let Some(_serial) = privileged() else {
        return;
    };
    let (dir, mut lab, data) = lab_with_n1_data_disk("fuse-detach", 1 << 20);
    let record = netlab::fusedisk::mount_fuse_disk(&mut lab, "n1", &data).expect("FUSE disk");
    std::fs::write(data.join("log"), b"through the FUSE disk").unwrap();
    let tmpfs = (netlab::disk::lab_mounts().into_iter())
        .find(|(source, path)| *path == data && source.contains("-disk-"))
        .map(|(source, _)| source)
        .expect("the tmpfs data disk");
    // The server sees its session end and exits; it must not unmount the
    // path on its way out, which now holds the tmpfs with the node's files.
    netlab::disk::detach_fuse(&data, Some(&record.source)).unwrap();
    let server = record.server.clone().expect("server recorded");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while server.is_alive() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(!server.is_alive(), "the server outlived its mount");
    assert!(
        netlab::disk::is_mounted(&data, &tmpfs),
        "{:?}",
        mounts_under(&dir)
    );
    assert_eq!(
        std::fs::read(data.join("log")).unwrap(),
        b"through the FUSE disk"
    );
    // A FUSE disk over the tmpfs at teardown: both come off, files kept.
    netlab::fusedisk::mount_fuse_disk(&mut lab, "n1", &data).expect("FUSE disk again");
    lab.teardown().expect("teardown");
    assert!(mounts_under(&dir).is_empty(), "{:?}", mounts_under(&dir));
    assert_eq!(
        std::fs::read(data.join("log")).unwrap(),
        b"through the FUSE disk"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
