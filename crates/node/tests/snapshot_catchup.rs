//! A follower catches up from a state far larger than one frame: a real
//! three-node cluster builds at least 64 MiB of state while one follower is
//! isolated (SIGSTOP: it neither sends nor receives), the leader compacts
//! its log past the follower, the follower is healed (SIGCONT) and must
//! converge through a chunked snapshot transfer.
//!
//! Assertions are on correctness only (same applied index and state hash,
//! values readable on the follower, snapshot counters and events); the
//! catch-up time and the bytes and chunks sent are printed, not judged.
mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Cluster, ClusterOptions, HttpConn, metric};

const ELECTION: Duration = Duration::from_secs(15);
/// Target state size: 64 MiB, four times the 16 MiB frame limit.
const STATE_BYTES: u64 = 64 << 20;
const VALUE_BYTES: usize = 64 << 10;
/// Compact every this many applied entries (64 KiB each: 16 MiB apart).
const SNAPSHOT_THRESHOLD: &str = "256";

/// A 64 KiB value that differs per key (so a misplaced chunk shows).
fn value_for(n: usize) -> String {
    let stamp = format!("value-{n:06}-");
    stamp.repeat(VALUE_BYTES / stamp.len() + 1)[..VALUE_BYTES].to_owned()
}

/// The node among `candidates` that reports itself leader.
fn leader_among(cluster: &Cluster, candidates: &[usize]) -> usize {
    let deadline = Instant::now() + ELECTION;
    loop {
        for &i in candidates {
            if let Some(status) = cluster.nodes[i].status()
                && status["role"] == "leader"
            {
                return i;
            }
        }
        assert!(Instant::now() < deadline, "no leader among {candidates:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn snapshot_bytes_on_disk(cluster: &Cluster, i: usize) -> u64 {
    std::fs::metadata(cluster.nodes[i].data_dir.join("snapshot")).map_or(0, |meta| meta.len())
}

/// Writes `big-<n>` through whichever of `candidates` leads, retrying on
/// a refusal or a broken connection.
fn write_big(cluster: &Cluster, candidates: &[usize], conn: &mut Option<HttpConn>, n: usize) {
    let path = format!("/kv/big-{n}");
    let value = value_for(n);
    let deadline = Instant::now() + ELECTION;
    loop {
        let target = conn.get_or_insert_with(|| {
            let leader = leader_among(cluster, candidates);
            HttpConn::connect(cluster.nodes[leader].client_addr, Duration::from_secs(10))
                .expect("connect to the leader")
        });
        match target.request("PUT", &path, value.as_bytes(), &[]) {
            Ok(response) if response.status == 200 => return,
            _ => *conn = None,
        }
        assert!(Instant::now() < deadline, "write {n} did not succeed");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Snapshot (bytes, chunks) sent so far by the `senders` together (the
/// nodes that stayed connected: whichever leads, only the isolated follower
/// needs snapshots here).
fn snapshot_counters(cluster: &Cluster, senders: &[usize]) -> (u64, u64) {
    senders.iter().fold((0, 0), |(bytes, chunks), &i| {
        let text = cluster.nodes[i].metrics().unwrap_or_default();
        (
            bytes + metric(&text, "splitnode_snapshot_bytes_sent_total"),
            chunks + metric(&text, "splitnode_snapshot_chunks_sent_total"),
        )
    })
}

fn events_named(events: &[Value], name: &str) -> Vec<Value> {
    events
        .iter()
        .filter(|event| event["event"] == name)
        .cloned()
        .collect()
}

#[test]
fn follower_isolated_past_compaction_catches_up_from_a_64_mib_snapshot() {
    let options = ClusterOptions {
        size: 3,
        net: 61,
        mode: "safe",
        extra: vec!["--snapshot-threshold".into(), SNAPSHOT_THRESHOLD.into()],
    };
    let cluster = Cluster::start("bigsnap", options);
    let leader = cluster.wait_for_leader(ELECTION);
    let follower = (leader + 1) % 3;
    cluster.write("first", "1", ELECTION);
    cluster.wait_for_value(follower, "first", "1", ELECTION);

    // Isolate the follower, then build the state without it.
    cluster.nodes[follower].signal("STOP");
    let others: Vec<usize> = (0..3).filter(|i| *i != follower).collect();
    let at_isolation = snapshot_counters(&cluster, &others);
    let build_started = Instant::now();
    let mut conn = None;
    let mut written = 0;
    // Until the leader's latest snapshot alone holds 64 MiB, then a log
    // suffix beyond it that the follower replays after the install.
    loop {
        write_big(&cluster, &others, &mut conn, written);
        written += 1;
        if written % 16 == 0 {
            let leader = leader_among(&cluster, &others);
            if snapshot_bytes_on_disk(&cluster, leader) >= STATE_BYTES {
                break;
            }
        }
    }
    for _ in 0..20 {
        write_big(&cluster, &others, &mut conn, written);
        written += 1;
    }
    let build_time = build_started.elapsed();
    let leader = leader_among(&cluster, &others);
    let snapshot_file = snapshot_bytes_on_disk(&cluster, leader);
    // The leader's retransmit timer already started a transfer into the
    // isolated follower's stalled stream: counted, as "before the heal".
    let at_heal = snapshot_counters(&cluster, &others);

    // Heal and wait for convergence.
    cluster.nodes[follower].signal("CONT");
    let healed = Instant::now();
    // Converged: all three at the same applied index and state hash (a
    // leader change after the heal only moves the index they meet at).
    let deadline = healed + Duration::from_secs(120);
    loop {
        let statuses: Vec<Option<Value>> = (0..3).map(|i| cluster.nodes[i].status()).collect();
        let agreed = statuses.iter().all(|status| {
            status.as_ref().is_some_and(|status| {
                statuses[0].as_ref().is_some_and(|first| {
                    status["applied_index"] == first["applied_index"]
                        && status["state_hash"] == first["state_hash"]
                })
            })
        });
        if agreed {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "follower did not catch up: {statuses:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let catch_up = healed.elapsed();

    // It caught up by snapshot: counters and events on both sides.
    let at_end = snapshot_counters(&cluster, &others);
    let (bytes_sent, chunks_sent) = (at_end.0 - at_isolation.0, at_end.1 - at_isolation.1);
    let (bytes_after_heal, chunks_after_heal) = (at_end.0 - at_heal.0, at_end.1 - at_heal.1);
    let follower_metrics = cluster.nodes[follower].metrics().unwrap_or_default();
    let installed = metric(&follower_metrics, "splitnode_snapshots_installed_total");
    assert!(installed >= 1, "no snapshot installed:\n{follower_metrics}");
    assert!(
        bytes_sent >= STATE_BYTES,
        "only {bytes_sent} snapshot bytes sent"
    );
    assert!(
        chunks_sent as usize > STATE_BYTES as usize / wire::DEFAULT_MAX_FRAME,
        "{chunks_sent} chunks"
    );
    let follower_events = cluster.nodes[follower].events();
    let installs = events_named(&follower_events, "snapshot_installed");
    let largest_install = installs
        .iter()
        .filter_map(|event| event["bytes"].as_u64())
        .max()
        .unwrap_or(0);
    assert!(
        largest_install >= STATE_BYTES,
        "installed snapshots: {installs:?}"
    );
    let sent: Vec<Value> = (others.iter())
        .flat_map(|&i| events_named(&cluster.nodes[i].events(), "snapshot_sent"))
        .collect();
    assert!(
        sent.iter()
            .any(|event| event["peer"] == cluster.nodes[follower].name.as_str()),
        "no leader logged a snapshot_sent to the follower: {sent:?}"
    );
    // Values from the snapshot and from the log suffix after it.
    for n in [0, written / 2, written - 1] {
        let response = cluster.nodes[follower]
            .get(&format!("big-{n}"), "stale")
            .expect("follower answers");
        assert_eq!(response.status, 200);
        assert!(
            response.json()["value"].as_str() == Some(value_for(n).as_str()),
            "big-{n} differs on the follower"
        );
    }

    println!(
        "64 MiB catch-up: state {written} values x {VALUE_BYTES} B = {:.1} MiB, built in {:.1} s; \
         leader snapshot file {:.1} MiB; healed follower caught up in {:.2} s; \
         snapshot bytes sent {bytes_sent} ({:.1} MiB) in {chunks_sent} chunks since the \
         isolation, {bytes_after_heal} B in {chunks_after_heal} chunks after the heal; \
         largest install {largest_install} B; installs {installed}",
        (written * VALUE_BYTES) as f64 / (1 << 20) as f64,
        build_time.as_secs_f64(),
        snapshot_file as f64 / (1 << 20) as f64,
        catch_up.as_secs_f64(),
        bytes_sent as f64 / (1 << 20) as f64,
    );
}
