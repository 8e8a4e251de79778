//! Start-up and shutdown behaviour of the real binary: refusing an empty data
//! directory, configuration errors, graceful stop, every mode selectable.
mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use support::{BIN, Cluster, ClusterOptions, TempDir, raw_exchange};

/// A one-node cluster `solo` on 127.0.`net`.1 with its data under `dir`,
/// then `extra`.
fn solo_args(dir: &std::path::Path, net: u8, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "--id".into(),
        "n1".into(),
        "--cluster".into(),
        "solo".into(),
        "--listen-peer".into(),
        format!("127.0.{net}.1:7100"),
        "--listen-client".into(),
        format!("127.0.{net}.1:7000"),
        "--data-dir".into(),
        dir.join("n1").display().to_string(),
    ];
    args.extend(extra.iter().map(|arg| arg.to_string()));
    args
}

#[test]
fn empty_data_dir_is_refused_without_an_explicit_flag() {
    let dir = TempDir::new("empty");
    let output = Command::new(BIN)
        .args(solo_args(&dir.0, 21, &[]))
        .output()
        .expect("run splitnode");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--bootstrap") && stderr.contains("--join-empty"),
        "{stderr}"
    );
    assert!(!dir.0.join("n1").join("node.id").exists());
}

#[test]
fn invalid_configuration_exits_2_naming_the_field() {
    let dir = TempDir::new("badconfig");
    let args = solo_args(&dir.0, 22, &["--mode", "yolo"]);
    let output = Command::new(BIN).args(&args).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("mode: unknown mode `yolo`"), "{stderr}");

    let file = dir.0.join("n1.toml");
    std::fs::write(
        &file,
        "id = \"n1\"\ncluster = \"c\"\nlisten_peer = \"127.0.22.1:7100\"\nlisten_client = \"127.0.22.1:7000\"\ndata_dir = \"/tmp/x\"\n[timing]\nheartbeat = 5\n",
    )
    .unwrap();
    let output = Command::new(BIN)
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("n1.toml:7:1: heartbeat:"), "{stderr}");
}

#[test]
fn single_node_from_toml_serves_and_stops_gracefully() {
    let dir = TempDir::new("toml");
    let file = dir.0.join("n1.toml");
    std::fs::write(
        &file,
        format!(
            "id = \"n1\"\ncluster = \"solo\"\nlisten_peer = \"127.0.23.1:7100\"\n\
             listen_client = \"127.0.23.1:7000\"\ndata_dir = \"{}\"\nbootstrap = true\n\
             [timing]\nheartbeat_ms = 20\nelection_timeout_min_ms = 100\nelection_timeout_max_ms = 200\n",
            dir.0.join("n1").display()
        ),
    )
    .unwrap();
    let mut node = support::Node {
        name: "n1".into(),
        peer_addr: "127.0.23.1:7100".parse().unwrap(),
        client_addr: "127.0.23.1:7000".parse().unwrap(),
        data_dir: dir.0.join("n1"),
        args: vec!["--config".into(), file.display().to_string()],
        child: None,
    };
    node.start(&[]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let written = loop {
        if let Some(response) = node.put("k", "v")
            && response.status == 200
        {
            break response.json();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "single node never accepted a write"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(written["applied"], true);
    assert_eq!(node.terminate(Duration::from_secs(5)), Some(0));
    let events = node.events();
    let names: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(names.first(), Some(&"started"));
    assert_eq!(names.get(1), Some(&"recovered"));
    assert!(names.contains(&"became_leader"), "{names:?}");
    assert!(names.contains(&"write_committed"), "{names:?}");
    let last = events.last().unwrap();
    assert_eq!(last["event"], "final_state");
    assert!(last["commit_index"].as_u64().unwrap() >= 2);
    for event in &events {
        assert_eq!(event["node"], "n1");
        assert!(event["mono_ns"].as_u64().unwrap() > 0);
        assert!(event["local_ns"].as_u64().is_some());
        assert!(event["term"].as_u64().is_some());
    }
    // Simulate a crash in the middle of an append: a torn record at the end.
    let log_path = dir.0.join("n1").join("log");
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(&log_path)
        .unwrap();
    std::io::Write::write_all(&mut log, &[0, 0, 0, 99, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3]).unwrap();
    drop(log);
    // Restart without --bootstrap: the directory is initialised now.
    node.start(&[]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(response) = node.get("k", "linearizable")
            && response.status == 200
        {
            assert_eq!(response.json()["value"], "v");
            break;
        }
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        node.stderr_log()
            .contains("dropped an incomplete last record"),
        "{}",
        node.stderr_log()
    );
}

#[test]
fn test_clock_hooks_skew_local_time_and_map_leases_back() {
    let dir = TempDir::new("skew");
    let flags = [
        "--bootstrap",
        "--test-clock-offset-ms",
        "5000",
        "--test-clock-rate",
        "1.5",
    ];
    let args = solo_args(&dir.0, 24, &flags);
    let mut node = support::Node {
        name: "n1".into(),
        peer_addr: "127.0.24.1:7100".parse().unwrap(),
        client_addr: "127.0.24.1:7000".parse().unwrap(),
        data_dir: dir.0.join("n1"),
        args,
        child: None,
    };
    node.start(&[]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = node.status()
            && status["role"] == "leader"
        {
            let skew = status["local_ns"].as_u64().unwrap() as i128
                - status["mono_ns"].as_u64().unwrap() as i128;
            assert!(skew >= 5_000_000_000, "local clock not offset: {status}");
            break;
        }
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(node.terminate(Duration::from_secs(5)), Some(0));
    let lease = node
        .events()
        .into_iter()
        .find(|event| event["event"] == "lease_extended");
    if let Some(lease) = lease {
        // The lease end is on the true clock: after the event, but within a
        // few seconds of it (not 5 s in the future like the local clock).
        let until = lease["until_mono_ns"].as_u64().unwrap();
        let at = lease["mono_ns"].as_u64().unwrap();
        assert!(until >= at && until < at + 3_000_000_000, "{lease}");
    }
}

#[test]
fn every_mode_runs_a_cluster_that_elects_a_leader() {
    for (n, mode) in [
        "safe",
        "timeout-failover",
        "unenforced-quorum",
        "one-way-quorum",
        "no-fencing",
    ]
    .into_iter()
    .enumerate()
    {
        let cluster = Cluster::start(
            &format!("mode-{mode}"),
            ClusterOptions {
                size: 3,
                net: 30 + n as u8,
                mode,
                extra: Vec::new(),
            },
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            let leaders = cluster
                .nodes
                .iter()
                .filter_map(|node| node.status())
                .filter(|status| status["role"] == "leader")
                .inspect(|status| assert_eq!(status["mode"], mode))
                .count();
            if leaders >= 1 {
                break;
            }
            let exited: Vec<String> = cluster
                .nodes
                .iter()
                .filter(|node| node.status().is_none())
                .map(|node| node.stderr_log())
                .collect();
            assert!(
                std::time::Instant::now() < deadline,
                "mode {mode}: no leader; logs: {exited:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// One HTTP/1.1 exchange on a fresh connection (`Connection: close`, so the
/// answer ends at EOF), split into status and body; `None` while the node
/// is not listening yet.
fn exchange(addr: SocketAddr, request: &[u8]) -> Option<(u16, String)> {
    let answer = raw_exchange(addr, request);
    let status = answer.split(' ').nth(1)?.parse().ok()?;
    let body = answer.split_once("\r\n\r\n")?.1.to_owned();
    Some((status, body))
}

#[test]
fn chunked_request_body_is_accepted_and_applied() {
    let dir = TempDir::new("chunked");
    let args = solo_args(
        &dir.0,
        25,
        &[
            "--bootstrap",
            "--heartbeat-ms",
            "20",
            "--election-timeout-min-ms",
            "100",
            "--election-timeout-max-ms",
            "200",
        ],
    );
    let mut child = Command::new(BIN)
        .args(&args)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn splitnode");
    let addr: SocketAddr = "127.0.25.1:7000".parse().unwrap();
    let put = b"PUT /kv/chunky HTTP/1.1\r\nHost: n1\r\nConnection: close\r\n\
                Transfer-Encoding: chunked\r\n\r\n\
                6\r\nvalue-\r\n7;ext=1\r\nchunked\r\n0\r\n\r\n";
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let written = loop {
        if let Some((200, body)) = exchange(addr, put) {
            break body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "single node never accepted the chunked write"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(written.contains("\"applied\":true"), "{written}");
    let get = b"GET /kv/chunky HTTP/1.1\r\nHost: n1\r\nConnection: close\r\n\r\n";
    let read = exchange(addr, get);
    let _ = child.kill();
    let _ = child.wait();
    let (status, body) = read.expect("read answered");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"value\":\"value-chunked\""), "{body}");
}
