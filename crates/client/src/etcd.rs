//! etcd's v3 HTTP/JSON gateway on the client port: key-value operations
//! with the same Jepsen outcomes as splitnode's client, and member status
//! (member id, leader id, raft term, raft index).
//!
//! Outcome rules (a timeout is never a failure):
//! - connect refused/unreachable/timed out: `fail` (the request never left);
//! - 200: `ok`; a txn whose comparison failed (`succeeded` absent) is `fail`;
//! - a gateway error whose gRPC code means "rejected before proposing"
//!   (invalid argument, permission denied, unauthenticated, too many
//!   requests): `fail`;
//! - any other error, a timeout or a broken connection after sending:
//!   `info` (etcd may still commit the proposal, e.g. after a heal).
//!
//! Reads are linearizable unless [`ReadConsistency::Serializable`] is asked
//! for: then any member answers from its own state, even cut off from the
//! quorum.
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::prelude::{BASE64_STANDARD, Engine};
use serde_json::{Value, json};

use crate::http::{Transport, request};
use crate::ops::{Outcome, Request};
use crate::status::NodeStatus;

/// How an etcd read is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadConsistency {
    /// Through the raft read index: never stale (etcd's default).
    #[default]
    Linearizable,
    /// From the member's local state: fast, available in a minority, and
    /// possibly stale.
    Serializable,
}

/// gRPC codes etcd returns before a request reaches raft: the operation
/// certainly did not apply. 3 invalid argument, 7 permission denied,
/// 8 resource exhausted ("too many requests"), 16 unauthenticated.
const REJECTED_BEFORE_PROPOSAL: [u64; 4] = [3, 7, 8, 16];

/// How many compare-and-swap rounds an append tries before giving up
/// (each lost round certainly did not apply).
const APPEND_ROUNDS: usize = 8;

fn b64(text: &str) -> String {
    BASE64_STANDARD.encode(text)
}

fn unb64(value: &Value) -> Option<String> {
    let bytes = BASE64_STANDARD.decode(value.as_str()?).ok()?;
    String::from_utf8(bytes).ok()
}

/// The JSON answer of one gateway call, or its outcome when it is not 200.
fn call(addr: SocketAddr, path: &str, body: &Value, deadline: Instant) -> Result<Value, Outcome> {
    let body = body.to_string();
    match request(addr, "POST", path, &[], &body, deadline) {
        Err(Transport::Connect(error)) => Err(Outcome::Fail {
            error: format!("connect: {error}"),
            leader: None,
        }),
        Err(Transport::AfterSend(error)) => Err(Outcome::Info { error }),
        Ok(response) if response.status == 200 => Ok(response.json()),
        Ok(response) => {
            let json = response.json();
            let error = json
                .get("error")
                .or_else(|| json.get("message"))
                .and_then(Value::as_str)
                .map_or_else(|| format!("http {}", response.status), str::to_string);
            let code = json.get("code").and_then(Value::as_u64).unwrap_or(0);
            if REJECTED_BEFORE_PROPOSAL.contains(&code) {
                Err(Outcome::Fail {
                    error,
                    leader: None,
                })
            } else {
                Err(Outcome::Info { error })
            }
        }
    }
}

fn range_body(key: &str, consistency: ReadConsistency) -> Value {
    let mut body = json!({ "key": b64(key) });
    if consistency == ReadConsistency::Serializable {
        body["serializable"] = json!(true);
    }
    body
}

/// The value and mod revision of `key` in a range answer (`None`: absent).
fn first_kv(answer: &Value) -> Option<(String, i64)> {
    let kv = answer.get("kvs")?.as_array()?.first()?;
    let value = kv.get("value").and_then(unb64).unwrap_or_default();
    let revision = kv
        .get("mod_revision")
        .and_then(|r| r.as_str().and_then(|s| s.parse().ok()).or(r.as_i64()))
        .unwrap_or(0);
    Some((value, revision))
}

fn ok(value: Option<String>) -> Outcome {
    Outcome::Ok { value, token: None }
}

/// A txn answer: `ok` when its comparisons held, `fail` otherwise.
fn txn_outcome(answer: &Value) -> Outcome {
    if answer.get("succeeded").and_then(Value::as_bool) == Some(true) {
        ok(None)
    } else {
        Outcome::Fail {
            error: "cas: comparison failed".into(),
            leader: None,
        }
    }
}

/// Executes one operation against the member at `addr`. Appends are a
/// compare-and-swap loop on the key's mod revision (atomic per round).
pub fn execute(
    addr: SocketAddr,
    request: &Request,
    consistency: ReadConsistency,
    timeout: Duration,
) -> Outcome {
    let deadline = Instant::now() + timeout;
    let result = match request {
        Request::Read { key } => call(
            addr,
            "/v3/kv/range",
            &range_body(key, consistency),
            deadline,
        )
        .map(|answer| ok(first_kv(&answer).map(|(value, _)| value))),
        Request::Write { key, value } => call(
            addr,
            "/v3/kv/put",
            &json!({ "key": b64(key), "value": b64(value) }),
            deadline,
        )
        .map(|_| ok(None)),
        Request::Cas {
            key,
            expected,
            value,
        } => {
            let compare = match expected {
                Some(expected) => json!({
                    "key": b64(key), "target": "VALUE", "result": "EQUAL", "value": b64(expected)
                }),
                None => json!({
                    "key": b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": "0"
                }),
            };
            call(addr, "/v3/kv/txn", &txn(compare, key, value), deadline)
                .map(|answer| txn_outcome(&answer))
        }
        Request::Append { key, element } => append(addr, key, element, deadline),
    };
    result.unwrap_or_else(|outcome| outcome)
}

fn txn(compare: Value, key: &str, value: &str) -> Value {
    json!({
        "compare": [compare],
        "success": [{ "request_put": { "key": b64(key), "value": b64(value) } }],
    })
}

/// Appends `element` to the space-separated list under `key`: read the
/// list and its mod revision, then put the longer list only if the
/// revision is unchanged; a lost race is retried (it did not apply).
fn append(
    addr: SocketAddr,
    key: &str,
    element: &str,
    deadline: Instant,
) -> Result<Outcome, Outcome> {
    for _ in 0..APPEND_ROUNDS {
        let current = call(
            addr,
            "/v3/kv/range",
            &range_body(key, ReadConsistency::Linearizable),
            deadline,
        )
        .map_err(|outcome| match outcome {
            // Nothing was written yet: the append certainly did not apply.
            Outcome::Info { error } => Outcome::Fail {
                error: format!("append read: {error}"),
                leader: None,
            },
            other => other,
        })?;
        let (list, revision) = first_kv(&current).unwrap_or_default();
        let longer = if list.is_empty() {
            element.to_string()
        } else {
            format!("{list} {element}")
        };
        let compare = json!({
            "key": b64(key), "target": "MOD", "result": "EQUAL", "mod_revision": revision.to_string()
        });
        let answer = call(addr, "/v3/kv/txn", &txn(compare, key, &longer), deadline)?;
        if let outcome @ Outcome::Ok { .. } = txn_outcome(&answer) {
            return Ok(outcome);
        }
    }
    Ok(Outcome::Fail {
        error: format!("append: lost {APPEND_ROUNDS} compare-and-swap races"),
        leader: None,
    })
}

/// Deletes `key` (`ok` also when it was absent).
pub fn delete(addr: SocketAddr, key: &str, timeout: Duration) -> Outcome {
    call(
        addr,
        "/v3/kv/deleterange",
        &json!({ "key": b64(key) }),
        Instant::now() + timeout,
    )
    .map(|_| ok(None))
    .unwrap_or_else(|outcome| outcome)
}

/// One member's `/v3/maintenance/status`, reduced to leadership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberStatus {
    /// This member's id.
    pub member_id: u64,
    /// The leader it knows of (0: none).
    pub leader: u64,
    /// Its raft term.
    pub raft_term: u64,
    /// Its raft log index.
    pub raft_index: u64,
    /// Its applied index (`raftAppliedIndex`; 0 when not reported).
    pub applied_index: u64,
    /// Its MVCC store revision (`header.revision`): one step per applied
    /// write, so members that applied the same writes agree on it.
    pub revision: u64,
}

/// The gateway encodes 64-bit numbers as strings and omits zero values.
fn number(value: Option<&Value>) -> u64 {
    value
        .and_then(|v| v.as_str().and_then(|s| s.parse().ok()).or(v.as_u64()))
        .unwrap_or(0)
}

/// Parses a status answer; `None` without a member id.
pub fn parse_member_status(body: &Value) -> Option<MemberStatus> {
    let member_id = number(body.get("header").and_then(|h| h.get("member_id")));
    (member_id != 0).then(|| MemberStatus {
        member_id,
        leader: number(body.get("leader")),
        raft_term: number(body.get("raftTerm")),
        raft_index: number(body.get("raftIndex")),
        applied_index: number(body.get("raftAppliedIndex")),
        revision: number(body.get("header").and_then(|h| h.get("revision"))),
    })
}

/// Asks the member at `addr` for its status.
pub fn member_status(addr: SocketAddr, timeout: Duration) -> Option<MemberStatus> {
    call(
        addr,
        "/v3/maintenance/status",
        &json!({}),
        Instant::now() + timeout,
    )
    .ok()
    .and_then(|answer| parse_member_status(&answer))
}

/// Member statuses as lab node statuses: `leader` names the node whose
/// member id is the leader id (`ids` remembers ids across polls, so a
/// leader that did not answer this time is still named).
pub fn node_statuses(
    answers: &[(String, MemberStatus)],
    ids: &mut std::collections::BTreeMap<u64, String>,
) -> Vec<NodeStatus> {
    for (node, status) in answers {
        ids.insert(status.member_id, node.clone());
    }
    answers
        .iter()
        .map(|(node, status)| NodeStatus {
            node: node.clone(),
            role: if status.leader != 0 && status.leader == status.member_id {
                "leader".into()
            } else {
                "follower".into()
            },
            term: status.raft_term,
            leader: (status.leader != 0).then(|| {
                ids.get(&status.leader)
                    .cloned()
                    .unwrap_or_else(|| format!("{:x}", status.leader))
            }),
            commit_index: status.raft_index,
            applied_index: status.applied_index,
            // The gateway has no hash of the key-value state (HashKV is
            // gRPC only); the store revision stands in for it.
            state_hash: status.revision,
        })
        .collect()
}

/// Polls every member's status in parallel on the caller's namespace;
/// members that did not answer are left out.
pub fn poll_member_statuses(
    nodes: &[(String, SocketAddr)],
    timeout: Duration,
) -> Vec<(String, MemberStatus)> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = nodes
            .iter()
            .map(|(name, addr)| {
                scope.spawn(move || member_status(*addr, timeout).map(|s| (name.clone(), s)))
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|handle| handle.join().ok().flatten())
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_answers_parse_with_string_numbers_and_omitted_zeroes() {
        let body = json!({
            "header": {"cluster_id": "1", "member_id": "77", "revision": "5", "raft_term": "3"},
            "leader": "77", "raftIndex": "12", "raftTerm": "3", "raftAppliedIndex": "12"
        });
        let status = parse_member_status(&body).unwrap();
        assert_eq!(
            status,
            MemberStatus {
                member_id: 77,
                leader: 77,
                raft_term: 3,
                raft_index: 12,
                applied_index: 12,
                revision: 5
            }
        );
        let lost = parse_member_status(&json!({"header": {"member_id": "9"}})).unwrap();
        assert_eq!((lost.leader, lost.raft_term), (0, 0));
        assert!(parse_member_status(&json!({})).is_none());
    }

    #[test]
    fn statuses_name_the_leader_by_node_across_polls() {
        let status = |id, leader, term| MemberStatus {
            member_id: id,
            leader,
            raft_term: term,
            raft_index: 0,
            applied_index: 0,
            revision: 0,
        };
        let mut ids = Default::default();
        let first = node_statuses(
            &[
                ("n1".into(), status(1, 1, 2)),
                ("n2".into(), status(2, 1, 2)),
            ],
            &mut ids,
        );
        assert_eq!(first[0].role, "leader");
        assert_eq!(first[1].role, "follower");
        assert_eq!(first[1].leader.as_deref(), Some("n1"));
        // n1 stops answering; n2 still names it.
        let later = node_statuses(&[("n2".into(), status(2, 1, 2))], &mut ids);
        assert_eq!(later[0].leader.as_deref(), Some("n1"));
        let unknown = node_statuses(&[("n3".into(), status(3, 0xab, 4))], &mut ids);
        assert_eq!(unknown[0].leader.as_deref(), Some("ab"));
        let none = node_statuses(&[("n3".into(), status(3, 0, 4))], &mut ids);
        assert_eq!(
            (none[0].role.as_str(), none[0].leader.as_ref()),
            ("follower", None)
        );
    }

    #[test]
    fn range_answers_and_txn_outcomes() {
        let answer = json!({"kvs": [{"key": b64("k"), "value": b64("a b"), "mod_revision": "7"}]});
        assert_eq!(first_kv(&answer), Some(("a b".into(), 7)));
        assert_eq!(first_kv(&json!({"header": {}})), None);
        assert!(matches!(
            txn_outcome(&json!({"succeeded": true})),
            Outcome::Ok { .. }
        ));
        assert!(matches!(txn_outcome(&json!({})), Outcome::Fail { .. }));
        assert_eq!(
            range_body("k", ReadConsistency::Serializable),
            json!({"key": "aw==", "serializable": true})
        );
        assert_eq!(
            range_body("k", ReadConsistency::Linearizable),
            json!({"key": "aw=="})
        );
    }

    #[test]
    fn nothing_listens_means_fail() {
        // Port 1 on loopback: connection refused, the request never left.
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let outcome = execute(
            addr,
            &Request::Write {
                key: "k".into(),
                value: "v".into(),
            },
            ReadConsistency::Linearizable,
            Duration::from_millis(200),
        );
        assert!(matches!(outcome, Outcome::Fail { .. }), "{outcome:?}");
        assert!(member_status(addr, Duration::from_millis(200)).is_none());
    }
}
