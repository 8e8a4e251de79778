//! Peers prove who they are: a keyed cluster (`--cluster-key-file`) refuses
//! frames without a valid MAC, from a stranger's address or claiming another
//! member's id, counts each reason in `/metrics`, and keeps its term; a node
//! without the key cannot join; the client API can require a bearer token.
mod support;

use std::io::Write;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::time::Duration;

use node::forge::{FORGED_TERM_BASE, forged_frame};
use support::{Cluster, ClusterOptions, TempDir, http_with, metric};
use wire::{ClusterKey, Message};

const ELECTION: Duration = Duration::from_secs(15);
const SECRET: &str = "integration-test cluster key secret";

fn key_file(dir: &TempDir, name: &str, secret: &str) -> PathBuf {
    std::fs::create_dir_all(&dir.0).unwrap();
    let path = dir.0.join(name);
    std::fs::write(&path, secret).unwrap();
    path
}

fn keyed(net: u8, key: &std::path::Path) -> ClusterOptions {
    ClusterOptions {
        size: 3,
        net,
        mode: "safe",
        extra: vec!["--cluster-key-file".into(), key.display().to_string()],
    }
}

/// A vote request with a huge term: what a rogue sends to depose a leader.
fn forged(cluster: &str, from: &str, to: &str, key: Option<&ClusterKey>) -> Vec<u8> {
    let vote = Message::Vote {
        last_log_index: u64::MAX,
        last_log_term: u64::MAX,
    };
    forged_frame(cluster, from, to, FORGED_TERM_BASE, vote, key)
}

fn udp_from(ip: &str, to: SocketAddr, bytes: &[u8]) {
    let socket = UdpSocket::bind(format!("{ip}:0")).unwrap();
    socket.send_to(bytes, to).unwrap();
}

fn tcp_from(ip: &str, to: SocketAddr, bytes: &[u8]) {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let local: SocketAddr = format!("{ip}:0").parse().unwrap();
    socket.bind(&local.into()).unwrap();
    socket.connect(&to.into()).unwrap();
    let mut stream: TcpStream = socket.into();
    let _ = stream.write_all(bytes);
    std::thread::sleep(Duration::from_millis(50));
}

fn rejected(text: &str, transport: &str, reason: &str) -> u64 {
    metric(
        text,
        &format!(
            "splitnode_frames_rejected_total{{transport=\"{transport}\",reason=\"{reason}\"}}"
        ),
    )
}

fn term(node: &support::Node) -> u64 {
    node.status().unwrap()["term"].as_u64().unwrap()
}

#[test]
fn a_keyed_cluster_refuses_forged_frames_by_reason_and_keeps_its_term() {
    let keys = TempDir::new("auth-keys-forge");
    let key = key_file(&keys, "cluster.key", SECRET);
    let cluster = Cluster::start("auth-forge", keyed(31, &key));
    let leader = cluster.wait_for_leader(ELECTION);
    cluster.write("k", "v", ELECTION);
    let target = &cluster.nodes[leader];
    let others: Vec<&support::Node> = (cluster.nodes.iter())
        .filter(|node| node.name != target.name)
        .collect();
    let (member, bystander) = (others[0], others[1]);
    let member_ip = member.peer_addr.ip().to_string();
    let bystander_ip = bystander.peer_addr.ip().to_string();
    let before = term(target);

    let ours = ClusterKey::from_secret(SECRET.as_bytes()).unwrap();
    let wrong = ClusterKey::from_secret(b"some other cluster's secret").unwrap();
    let name = "it-auth-forge";
    let to = target.peer_addr;
    // (source address, key, also over TCP).
    let attacks = [
        // No MAC, from the member's own address.
        (member_ip.as_str(), None, true),
        // Another cluster's key, from the member's own address.
        (member_ip.as_str(), Some(&wrong), true),
        // A stranger's address.
        ("127.0.31.99", Some(&ours), false),
        // The bystander's address claiming the member's id (even with the key).
        (bystander_ip.as_str(), Some(&ours), true),
    ];
    for _ in 0..3 {
        for (ip, key, over_tcp) in attacks {
            let bytes = forged(name, &member.name, &target.name, key);
            udp_from(ip, to, &bytes);
            if over_tcp {
                tcp_from(ip, to, &bytes);
            }
        }
    }
    std::thread::sleep(Duration::from_millis(300));

    let text = target.metrics().unwrap();
    for (transport, reason) in [
        ("udp", "mac_missing"),
        ("tcp", "mac_missing"),
        ("udp", "mac_invalid"),
        ("tcp", "mac_invalid"),
        ("udp", "source_address"),
        ("udp", "sender_mismatch"),
        ("tcp", "sender_mismatch"),
    ] {
        assert!(
            rejected(&text, transport, reason) >= 3,
            "{transport} {reason}:\n{text}"
        );
    }
    // Nobody's term jumped to the forged one, and the leader kept serving.
    for node in &cluster.nodes {
        let now = term(node);
        assert!(now < 1_000_000, "{} moved to the forged term", node.name);
    }
    assert_eq!(term(target), before, "the leader's term changed");
    assert_eq!(cluster.wait_for_leader(ELECTION), leader);
    cluster.write("k2", "v2", ELECTION);
}

#[test]
fn a_node_with_no_key_or_another_key_is_refused_and_counted() {
    let keys = TempDir::new("auth-keys-mismatch");
    let key = key_file(&keys, "cluster.key", SECRET);
    let wrong = key_file(&keys, "wrong.key", "a different secret, same length!!");
    let mut cluster = Cluster::start("auth-mismatch", keyed(32, &key));
    cluster.wait_for_leader(ELECTION);
    // n3 restarts without a key, n2 with the wrong one: n1 is alone.
    for (index, replacement) in [(1, Some(&wrong)), (2, None)] {
        let node = &mut cluster.nodes[index];
        node.kill();
        let at = node
            .args
            .iter()
            .position(|arg| arg == "--cluster-key-file")
            .unwrap();
        match replacement {
            Some(path) => node.args[at + 1] = path.display().to_string(),
            None => {
                node.args.drain(at..at + 2);
            }
        }
        node.start(&[]);
    }
    std::thread::sleep(Duration::from_secs(3));
    let count = |index: usize, reason: &str| {
        let text = cluster.nodes[index].metrics().unwrap();
        rejected(&text, "udp", reason) + rejected(&text, "tcp", reason)
    };
    // Unkeyed n3 does not bind its streams to its peer address, so on
    // loopback they arrive from 127.0.0.1: refused before the MAC check.
    assert!(
        count(0, "mac_missing") + count(0, "source_address") > 0,
        "n1 saw n3's unkeyed frames: {}",
        cluster.nodes[0].metrics().unwrap()
    );
    assert!(
        count(0, "mac_invalid") > 0,
        "n1 saw n2's wrongly keyed frames"
    );
    assert!(
        count(2, "mac_unexpected") > 0,
        "unkeyed n3 saw keyed frames"
    );
    assert!(
        count(1, "mac_invalid") > 0,
        "n2 saw frames under the other key"
    );
    // No two of them can form a quorum: nobody leads.
    for node in &cluster.nodes {
        let status = node.status().unwrap();
        assert_ne!(status["role"], "leader", "{} leads: {status}", node.name);
    }
}

#[test]
fn the_client_api_requires_the_bearer_token_when_configured() {
    let keys = TempDir::new("auth-keys-token");
    let token = "client-token-0123456789abcdef";
    let token_path = key_file(&keys, "client.token", &format!("{token}\n"));
    let mut options = ClusterOptions {
        size: 3,
        net: 33,
        mode: "safe",
        extra: Vec::new(),
    };
    options.extra = vec![
        "--client-token-file".into(),
        token_path.display().to_string(),
    ];
    let cluster = Cluster::start("auth-token", options);
    let node = &cluster.nodes[0];
    let bare = (0..100)
        .find_map(|_| {
            let answer = http_with(node.client_addr, "GET", "/status", "", &[]);
            if answer.is_none() {
                std::thread::sleep(Duration::from_millis(50));
            }
            answer
        })
        .expect("node answers HTTP");
    assert_eq!(bare.status, 401, "{}", bare.body);
    let wrong = [("Authorization", "Bearer not-the-token-at-all".to_owned())];
    let refused = http_with(node.client_addr, "GET", "/kv/a", "", &wrong).unwrap();
    assert_eq!(refused.status, 401, "{}", refused.body);
    let right = [("Authorization", format!("Bearer {token}"))];
    let answered = http_with(node.client_addr, "GET", "/status", "", &right).unwrap();
    assert_eq!(answered.status, 200, "{}", answered.body);
    let metrics = http_with(node.client_addr, "GET", "/metrics", "", &right).unwrap();
    assert!(
        metric(&metrics.body, "splitnode_http_unauthorized_total") >= 2,
        "{}",
        metrics.body
    );
    // The client crate sends the token when configured.
    let mut conn = client::HttpConn::new(node.client_addr).with_bearer(Some(token));
    assert_eq!(
        conn.request("GET", "/status", b"", &[]).unwrap().status,
        200
    );
}

/// The contrast (a museum piece at node level): without a key, one forged
/// heartbeat claiming a member's id and a huge term, from any address,
/// deposes the leader and inflates every term it reaches.
#[test]
fn without_a_key_one_forged_frame_deposes_the_leader() {
    let cluster = Cluster::start(
        "auth-unkeyed",
        ClusterOptions {
            size: 3,
            net: 34,
            mode: "safe",
            extra: Vec::new(),
        },
    );
    let leader = cluster.wait_for_leader(ELECTION);
    let target = &cluster.nodes[leader];
    let member = &cluster.nodes[(leader + 1) % 3];
    let heartbeat = Message::Heartbeat { seq: 1, commit: 0 };
    let frame = forged_frame(
        "it-auth-unkeyed",
        &member.name,
        &target.name,
        FORGED_TERM_BASE,
        heartbeat,
        None,
    );
    udp_from("127.0.34.99", target.peer_addr, &frame);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        term(target) >= 1_000_000,
        "the forged term was not adopted: {}",
        target.status().unwrap()
    );
}
