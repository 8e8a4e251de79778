//! The two systems under test (splitnode and etcd), the timing profile both
//! run with, and their client APIs as the benches use them: writes, leader
//! hints, leadership views and fsync counters.

use base64::prelude::{BASE64_STANDARD, Engine};
use client::{HttpConn, LeaderView, Response};
use serde_json::Value;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// etcd as the lab describes it (`lab/systems/etcd.toml`, built in), with
/// the benches' setting: PreVote on, like splitnode. The benches start etcd
/// through this description, as `splitlab run` does (one launcher).
pub fn etcd_description() -> client::system::System {
    let mut etcd = client::system::System::builtin("etcd")
        .expect("the built-in etcd description parses (a unit test holds it)");
    etcd.set_option("pre-vote", "true")
        .expect("the etcd description has a pre-vote option");
    etcd
}

/// The system under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum System {
    /// This project's node.
    Splitnode,
    /// The baseline: Debian's etcd-server (3.4).
    Etcd,
}

impl System {
    /// Name used in tables and bench ids.
    pub fn name(self) -> &'static str {
        match self {
            System::Splitnode => "splitnode",
            System::Etcd => "etcd",
        }
    }

    /// Line colour in plots.
    pub fn colour(self) -> &'static str {
        match self {
            System::Splitnode => "#1f77b4",
            System::Etcd => "#d62728",
        }
    }
}

/// Timing profile, applied identically to both systems (etcd gets the
/// same heartbeat and election timeout; it randomises in `[t, 2t]` itself).
pub use consensus::Profile;

/// Where the server binaries are.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// `splitnode`.
    pub splitnode: PathBuf,
    /// `etcd`, when installed.
    pub etcd: Option<PathBuf>,
}

impl Binaries {
    /// Every system with its binary: splitnode, then etcd when installed.
    pub fn installed(&self) -> impl Iterator<Item = (System, &Path)> {
        let etcd = self.etcd.as_deref().map(|etcd| (System::Etcd, etcd));
        std::iter::once((System::Splitnode, self.splitnode.as_path())).chain(etcd)
    }
}

/// Finds `etcd` as its description says (`$SPLITLAB_ETCD`, then `$PATH`,
/// then `/usr/bin/etcd`).
pub fn find_etcd() -> Option<PathBuf> {
    etcd_description()
        .binary()
        .ok()
        .filter(|path| path.is_file())
}

/// Parses `node`'s leadership view out of a status answer.
///
/// # Errors
/// A body that is not the system's status JSON.
pub fn parse_view(system: System, node: &str, body: &str) -> Result<LeaderView, String> {
    let json: Value = serde_json::from_str(body).map_err(|e| format!("status JSON: {e}"))?;
    match system {
        System::Splitnode => {
            json.get("id")
                .and_then(Value::as_str)
                .ok_or("status without id")?;
            client::parse_status(node, &json)
                .map(|status| status.view())
                .ok_or_else(|| "status without role or term".to_string())
        }
        System::Etcd => {
            let text = |v: &Value| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            };
            let id = json
                .get("header")
                .and_then(|h| h.get("member_id"))
                .and_then(text)
                .ok_or("status without header.member_id")?;
            // The gateway omits zero values: no `leader` means no leader.
            let leader = json.get("leader").and_then(text).filter(|l| l != "0");
            Ok(LeaderView {
                node: node.to_string(),
                claims_leader: leader.as_deref() == Some(id.as_str()),
                id,
                leader,
                // etcd's status has a raft term, but the gateway's view of
                // it lags the leader field; agreement on the leader suffices.
                term: None,
            })
        }
    }
}

/// Asks `node` for its leadership view.
///
/// # Errors
/// Transport errors, non-200 answers, unparsable bodies.
pub fn view(
    conn: &mut HttpConn,
    system: System,
    node: &str,
    timeout: Duration,
) -> io::Result<LeaderView> {
    let answer = match system {
        System::Splitnode => conn.request_within("GET", "/status", b"", &[], timeout)?,
        System::Etcd => {
            conn.request_within("POST", "/v3/maintenance/status", b"{}", &[], timeout)?
        }
    };
    if answer.status != 200 {
        return Err(io::Error::other(format!(
            "status answered {}",
            answer.status
        )));
    }
    parse_view(system, node, &answer.body).map_err(io::Error::other)
}

/// The Prometheus counter that counts a system's write-path fsyncs:
/// splitnode's log/meta syncs, etcd's WAL syncs.
pub fn fsync_metric(system: System) -> &'static str {
    match system {
        System::Splitnode => "splitnode_fsyncs_total",
        System::Etcd => "etcd_disk_wal_fsync_duration_seconds_count",
    }
}

/// The Prometheus histogram of a system's write-path fsync durations:
/// splitnode's group-commit fsyncs, etcd's WAL fsyncs (etcd's buckets start
/// at 1 ms, so below that only its mean tells anything).
pub fn fsync_duration_metric(system: System) -> &'static str {
    match system {
        System::Splitnode => "splitnode_fsync_duration_seconds",
        System::Etcd => "etcd_disk_wal_fsync_duration_seconds",
    }
}

/// One write. `Ok(true)` when acknowledged (committed), `Ok(false)` when the
/// server refused or could not commit it.
///
/// # Errors
/// Transport errors and timeouts (outcome unknown).
pub fn put(
    conn: &mut HttpConn,
    system: System,
    key: &str,
    value: &str,
    timeout: Duration,
) -> io::Result<bool> {
    Ok(put_answer(conn, system, key, value, timeout)?.status == 200)
}

/// The leader's client address a refusing splitnode names in its 503 body
/// (`leader_client_addr`); etcd followers forward writes themselves.
pub fn leader_hint(body: &str) -> Option<SocketAddr> {
    let json: Value = serde_json::from_str(body).ok()?;
    json.get("leader_client_addr")?.as_str()?.parse().ok()
}

/// One write, with the whole answer (status 200: acknowledged).
///
/// # Errors
/// Transport errors and timeouts (outcome unknown).
pub fn put_answer(
    conn: &mut HttpConn,
    system: System,
    key: &str,
    value: &str,
    timeout: Duration,
) -> io::Result<Response> {
    let answer = match system {
        System::Splitnode => {
            conn.request_within("PUT", &format!("/kv/{key}"), value.as_bytes(), &[], timeout)?
        }
        System::Etcd => {
            let body = format!(
                r#"{{"key":"{}","value":"{}"}}"#,
                BASE64_STANDARD.encode(key),
                BASE64_STANDARD.encode(value)
            );
            conn.request_within("POST", "/v3/kv/put", body.as_bytes(), &[], timeout)?
        }
    };
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitnode_and_etcd_status_views() {
        let status = r#"{"id":"n2","role":"follower","term":3,"leader":"n1"}"#;
        assert_eq!(
            parse_view(System::Splitnode, "n2", status).unwrap(),
            LeaderView {
                node: "n2".into(),
                id: "n2".into(),
                claims_leader: false,
                leader: Some("n1".into()),
                term: Some(3),
            }
        );
        let leader = r#"{"header":{"cluster_id":"1","member_id":"77"},"leader":"77"}"#;
        assert!(
            parse_view(System::Etcd, "n1", leader)
                .unwrap()
                .claims_leader
        );
        let lost = r#"{"header":{"member_id":"77"},"version":"3.4.23"}"#;
        let lost = parse_view(System::Etcd, "n1", lost).unwrap();
        assert!(!lost.claims_leader && lost.leader.is_none());
        assert!(parse_view(System::Etcd, "n1", "{}").is_err());
        assert!(parse_view(System::Splitnode, "n1", "nope").is_err());
    }

    #[test]
    fn leader_hints_from_refusals() {
        let refusal =
            r#"{"error":"not_leader","leader":"n3","leader_client_addr":"10.77.0.3:7000"}"#;
        assert_eq!(
            leader_hint(refusal),
            Some("10.77.0.3:7000".parse().unwrap())
        );
        assert_eq!(
            leader_hint(r#"{"error":"no_quorum","leader_client_addr":null}"#),
            None
        );
        assert_eq!(leader_hint("garbage"), None);
    }

    #[test]
    fn fsync_counters_by_exact_name() {
        let text = "# HELP x\nsplitnode_fsyncs_total 42\nsplitnode_fsyncs_total_x 1\n\
                    etcd_disk_wal_fsync_duration_seconds_count 7\n";
        assert_eq!(
            client::sample(text, fsync_metric(System::Splitnode)),
            Some(42.0)
        );
        assert_eq!(client::sample(text, fsync_metric(System::Etcd)), Some(7.0));
    }

    #[test]
    fn the_bench_etcd_is_the_lab_description_with_pre_vote() {
        let etcd = etcd_description();
        assert_eq!(etcd.name(), "etcd");
        assert_eq!(etcd.options["pre-vote"], "true");
        assert_eq!(etcd.client_port(), Some(2379));
    }

    #[test]
    fn etcd_keys_are_standard_base64() {
        assert_eq!(BASE64_STANDARD.encode("fooba"), "Zm9vYmE=");
    }
}
