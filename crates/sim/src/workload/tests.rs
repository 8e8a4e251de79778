//! Unit tests of the workload: commands, hints, outcome mapping, final reads.
use super::*;
use checker::{OpFn, OpKind};
use consensus::{ClientResponse, KvOp, Rejection};
use wire::Token;

fn workload() -> Workload {
    let mut options = WorkloadOptions::default_for(3);
    options.floating = 1;
    Workload::new(vec![1, 2, 3], options, SimRng::stream(1, "clients"))
}

fn send(commands: &[Command]) -> (u64, NodeId, ClientRequest) {
    commands
        .iter()
        .find_map(|c| match c {
            Command::Send {
                attempt,
                node,
                request,
                ..
            } => Some((*attempt, *node, request.clone())),
            _ => None,
        })
        .expect("a send")
}

/// A replica's refusal of the request.
fn refused(rejection: Rejection) -> Outcome {
    Outcome::Reply(ClientReply::Rejected(rejection))
}

/// The serial of the timeout armed among `commands`.
fn timeout_serial(commands: &[Command]) -> u64 {
    commands
        .iter()
        .find_map(|c| match c {
            Command::Timeout { serial, .. } => Some(*serial),
            _ => None,
        })
        .expect("a timeout")
}

/// Wakes `client` until it invokes a write-like operation.
fn invoke_write(w: &mut Workload, client: usize) -> (u64, NodeId, ClientRequest) {
    for now in 0..1_000 {
        let commands = w.wake(client, now);
        let (attempt, node, request) = send(&commands);
        if matches!(request, ClientRequest::Write { .. }) {
            return (attempt, node, request);
        }
        w.outcome(attempt, node, refused(Rejection::NoQuorum), now);
    }
    panic!("no write in 1000 operations");
}

#[test]
fn pinned_clients_cover_every_node() {
    let mut w = workload();
    let targets: Vec<NodeId> = (0..3).map(|c| send(&w.wake(c, 0)).1).collect();
    assert_eq!(targets, vec![1, 2, 3]);
}

#[test]
fn not_leader_hint_retries_same_request_then_ok() {
    let mut w = workload();
    let (attempt, node, request) = invoke_write(&mut w, 0);
    let retry = w.outcome(
        attempt,
        node,
        refused(Rejection::NotLeader { leader: Some(3) }),
        10,
    );
    let (attempt2, node2, request2) = send(&retry);
    assert_eq!(
        (node2, &request2),
        (3, &request),
        "same request id to the hinted leader"
    );
    let done = w.outcome(
        attempt2,
        3,
        Outcome::Reply(ClientReply::Ok(ClientResponse::Written {
            token: Token { term: 2, index: 9 },
            applied: true,
        })),
        20,
    );
    assert!(matches!(done[0], Command::Wake { client: 0, .. }));
    let last = w.history().ops.last().unwrap();
    assert_eq!(last.kind, OpKind::Ok);
    assert_eq!(last.node.as_deref(), Some("n3"));
    assert_eq!(last.token, Some(checker::Token { term: 2, index: 9 }));
    // A late answer to the first attempt is ignored.
    assert!(w.outcome(attempt, node, Outcome::Reset, 30).is_empty());
}

#[test]
fn outcomes_map_to_jepsen_types() {
    let mut w = workload();
    let (attempt, node, _) = invoke_write(&mut w, 1);
    w.outcome(attempt, node, refused(Rejection::LeaseExpired), 5);
    assert_eq!(w.history().ops.last().unwrap().kind, OpKind::Fail);

    let (attempt, node, _) = invoke_write(&mut w, 1);
    let process = w.history().ops.last().unwrap().process;
    w.outcome(
        attempt,
        node,
        Outcome::Reply(ClientReply::Unknown {
            reason: "lost".into(),
        }),
        6,
    );
    let info = w.history().ops.last().unwrap();
    assert_eq!((info.kind, info.process), (OpKind::Info, process));
    // After an info the client is a new process.
    let (_, _, _) = invoke_write(&mut w, 1);
    assert_ne!(w.history().ops.last().unwrap().process, process);
}

#[test]
fn timeout_is_info_and_stale_timeouts_are_ignored() {
    let mut w = workload();
    let serial = timeout_serial(&w.wake(0, 0));
    assert!(w.timeout(0, serial + 1, 5).is_empty());
    w.timeout(0, serial, 5);
    assert_eq!(w.history().ops.last().unwrap().kind, OpKind::Info);
    assert!(!w.busy());
}

#[test]
fn refused_everywhere_ends_in_fail() {
    let mut w = workload();
    let (mut attempt, mut node, _) = send(&w.wake(3, 0));
    for step in 1..=10 {
        let commands = w.outcome(attempt, node, Outcome::Refused, step);
        match send_or_none(&commands) {
            Some((a, n)) => (attempt, node) = (a, n),
            None => break,
        }
    }
    let last = w.history().ops.last().unwrap();
    assert_eq!(
        (last.kind, last.error.as_deref()),
        (OpKind::Fail, Some("unavailable"))
    );
}

fn send_or_none(commands: &[Command]) -> Option<(u64, NodeId)> {
    commands.iter().find_map(|c| match c {
        Command::Send { attempt, node, .. } => Some((*attempt, *node)),
        _ => None,
    })
}

#[test]
fn failed_cas_is_fail_and_read_records_value() {
    let mut w = workload();
    for now in 0..1_000u64 {
        let (attempt, node, request) = send(&w.wake(0, now));
        let response = match request {
            ClientRequest::Read { .. } => ClientResponse::Value {
                value: Some("x".into()),
                index: 3,
            },
            ClientRequest::Write {
                op: KvOp::Cas { .. },
                ..
            } => ClientResponse::Written {
                token: Token { term: 1, index: 4 },
                applied: false,
            },
            ClientRequest::Write { .. } => ClientResponse::Written {
                token: Token { term: 1, index: 5 },
                applied: true,
            },
        };
        w.outcome(
            attempt,
            node,
            Outcome::Reply(ClientReply::Ok(response)),
            now,
        );
    }
    let ops = &w.history().ops;
    assert!(
        ops.iter()
            .any(|o| o.f == OpFn::Cas && o.kind == OpKind::Fail)
    );
    assert!(
        ops.iter()
            .any(|o| o.f == OpFn::Read && o.kind == OpKind::Ok && o.value.as_deref() == Some("x"))
    );
    let writes: Vec<&String> = ops
        .iter()
        .filter(|o| o.kind == OpKind::Invoke && o.f == OpFn::Write)
        .filter_map(|o| o.value.as_ref())
        .collect();
    let unique: std::collections::BTreeSet<&&String> = writes.iter().collect();
    assert_eq!(unique.len(), writes.len(), "written values are unique");
}

#[test]
fn final_reads_visit_every_key_and_retry() {
    let mut w = workload();
    w.stop();
    assert!(w.wake(0, 0).is_empty(), "stopped clients invoke nothing");
    let first = w.final_reads(2);
    let Command::Wake { client, .. } = first[0] else {
        panic!()
    };
    let mut reads = 0;
    for now in 0..20 {
        let commands = w.wake(client, now);
        let Some((attempt, node)) = send_or_none(&commands) else {
            break;
        };
        reads += 1;
        let outcome = if now % 2 == 0 {
            refused(Rejection::NoQuorum)
        } else {
            Outcome::Reply(ClientReply::Ok(ClientResponse::Value {
                value: None,
                index: 1,
            }))
        };
        w.outcome(attempt, node, outcome, now);
    }
    assert!(w.final_reads_done());
    assert_eq!(reads, 2 * w.keys().len());
}

#[test]
fn home_bound_clients_only_write_and_never_leave_their_node() {
    let mut w = workload();
    // Clients 0..3 pinned, 3 floating, 4..7 home-bound to n1, n2, n3.
    let home_bound = 4;
    let (attempt, node, request) = send(&w.wake(home_bound, 0));
    assert_eq!(node, 1);
    assert!(
        matches!(request, ClientRequest::Write { .. }),
        "{request:?}"
    );
    // A hint elsewhere ends the operation: the minority's refusal is the
    // answer the fail-fast check judges, so the client does not fail over.
    let done = w.outcome(
        attempt,
        node,
        refused(Rejection::NotLeader { leader: Some(3) }),
        10,
    );
    assert!(matches!(done[0], Command::Wake { client: 4, .. }));
    let last = w.history().ops.last().unwrap();
    assert_eq!(
        (last.kind, last.node.as_deref(), last.error.as_deref()),
        (OpKind::Fail, Some("n1"), Some("not_leader"))
    );
    // A refused connection is retried at home, never at another node.
    let (attempt, node, request) = send(&w.wake(home_bound, 20));
    let retry = w.outcome(attempt, node, Outcome::Refused, 30);
    assert_eq!(send(&retry).1, 1);
    assert_eq!(send(&retry).2, request, "same request id");
}

#[test]
fn a_timed_out_write_names_the_node_it_was_sent_to() {
    let mut w = workload();
    let serial = timeout_serial(&w.wake(4, 0));
    w.timeout(4, serial, 1_000);
    let last = w.history().ops.last().unwrap();
    assert_eq!(
        (last.kind, last.node.as_deref()),
        (OpKind::Info, Some("n1"))
    );
}
