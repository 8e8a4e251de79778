//! Chunked snapshot transfer: staging in order, installing only a complete
//! and verified snapshot, starting over after a restart or a new term,
//! stop-and-wait pacing on the leader.
use wire::{Index, KvOp, Snapshot, SnapshotChunk, snapshot_checksum};

use super::*;
use crate::kv::Kv;

/// A decodable snapshot of `writes` puts, applied at term 1.
fn state_snapshot(writes: u64) -> Snapshot {
    let mut kv = Kv::new(16);
    for index in 1..=writes {
        kv.apply(&Entry {
            term: 1,
            index,
            payload: Payload::Command {
                client: index,
                seq: 1,
                op: KvOp::Put {
                    key: format!("key-{index}"),
                    value: "v".repeat(index as usize),
                },
            },
        });
    }
    kv.snapshot()
}

fn chunks(snapshot: &Snapshot, size: usize) -> Vec<SnapshotChunk> {
    let checksum = snapshot_checksum(&snapshot.data);
    let mut chunks = Vec::new();
    let mut offset = 0;
    loop {
        let chunk = SnapshotChunk::of(snapshot, checksum, offset, size);
        offset = chunk.end();
        let done = chunk.done;
        chunks.push(chunk);
        if done {
            return chunks;
        }
    }
}

/// The follower's answer among `actions`: (last_index, next_offset,
/// installed, held until this write is durable).
fn answer(actions: &[Action]) -> (Index, u64, bool, Option<crate::IoSeq>) {
    let answers: Vec<_> = sends(actions)
        .into_iter()
        .filter_map(
            |Outbound {
                 to, message, after, ..
             }| match message {
                Message::InstallSnapshotResponse {
                    last_index,
                    next_offset,
                    installed,
                } => {
                    assert_eq!(to, 1, "answers go to the sender");
                    Some((last_index, next_offset, installed, after))
                }
                _ => None,
            },
        )
        .collect();
    assert_eq!(answers.len(), 1, "one answer per chunk: {actions:?}");
    answers[0]
}

fn installs(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|action| matches!(action, Action::Write(Write::InstallSnapshot { .. })))
        .count()
}

fn send_chunk(replica: &mut Replica, from: u64, term: u64, chunk: &SnapshotChunk) -> Vec<Action> {
    let message = Message::InstallSnapshot {
        chunk: chunk.clone(),
    };
    receive(replica, 10_000 * MS, from, term, message)
}

#[test]
fn chunks_are_staged_in_order_and_installed_only_once_complete_and_durable() {
    let snapshot = state_snapshot(12);
    let chunks = chunks(&snapshot, 32);
    assert!(chunks.len() > 4, "{} chunks", chunks.len());
    let mut replica = follower(10_000 * MS);
    let (last, rest) = chunks.split_last().unwrap();
    for chunk in rest {
        let actions = send_chunk(&mut replica, 1, 1, chunk);
        assert_eq!(
            installs(&actions),
            0,
            "a partial snapshot is never installed"
        );
        assert_eq!(answer(&actions), (12, chunk.end(), false, None));
    }
    assert_eq!(replica.status().applied_index, 0);
    // A chunk ahead of the staging and a repeated one both get "send from
    // where I am".
    let held = last.offset;
    let ahead = SnapshotChunk {
        offset: held + 1,
        data: last.data[1..].to_vec(),
        ..last.clone()
    };
    assert_eq!(
        answer(&send_chunk(&mut replica, 1, 1, &ahead)),
        (12, held, false, None)
    );
    let repeated = &rest[1];
    assert_eq!(
        answer(&send_chunk(&mut replica, 1, 1, repeated)),
        (12, held, false, None)
    );
    let actions = send_chunk(&mut replica, 1, 1, last);
    assert_eq!(installs(&actions), 1);
    let (last_index, next_offset, installed, after) = answer(&actions);
    assert_eq!(
        (last_index, next_offset, installed),
        (12, snapshot.data.len() as u64, true)
    );
    assert_eq!(
        after,
        highest_seq(&actions),
        "installed is claimed only once durable"
    );
    let status = replica.status();
    assert_eq!((status.applied_index, status.commit_index), (12, 12));
    // A late chunk of the installed snapshot is answered "installed".
    let (_, _, installed, _) = answer(&send_chunk(&mut replica, 1, 1, &chunks[0]));
    assert!(installed);
}

#[test]
fn a_restarted_follower_asks_for_the_snapshot_from_the_start() {
    let chunks = chunks(&state_snapshot(8), 16);
    let mut replica = follower(10_000 * MS);
    let actions = send_chunk(&mut replica, 1, 1, &chunks[0]);
    assert_eq!(answer(&actions).1, chunks[0].end());
    // Staging is memory only: after a restart, chunk 2 finds nothing to extend.
    let mut restarted = follower(10_000 * MS);
    let actions = send_chunk(&mut restarted, 1, 1, &chunks[1]);
    assert_eq!(answer(&actions), (8, 0, false, None));
}

#[test]
fn a_new_term_discards_the_staged_chunks() {
    let chunks = chunks(&state_snapshot(8), 16);
    let mut replica = follower(10_000 * MS);
    let _ = send_chunk(&mut replica, 1, 1, &chunks[0]);
    // Leader 3 of term 2 continues at the same offset: a staging of term 1
    // is not its to extend.
    let actions = send_chunk(&mut replica, 3, 2, &chunks[1]);
    let answers: Vec<_> = sends(&actions)
        .into_iter()
        .filter(|send| matches!(send.message, Message::InstallSnapshotResponse { .. }))
        .collect();
    assert_eq!(answers.len(), 1);
    assert_eq!((answers[0].to, answers[0].term), (3, 2));
    assert!(matches!(
        answers[0].message,
        Message::InstallSnapshotResponse {
            next_offset: 0,
            installed: false,
            ..
        }
    ));
    // Starting over in term 2 from offset 0 works to the end.
    let mut actions = Vec::new();
    for chunk in &chunks {
        actions = send_chunk(&mut replica, 3, 2, chunk);
    }
    assert_eq!(installs(&actions), 1);
}

#[test]
fn stale_term_chunks_are_rejected() {
    let chunks = chunks(&state_snapshot(8), 16);
    let mut replica = follower(10_000 * MS);
    let _ = heartbeat(&mut replica, 10_000 * MS, 3, 3, 1);
    let actions = send_chunk(&mut replica, 1, 2, &chunks[0]);
    let replies = sends(&actions);
    assert_eq!(replies.len(), 1);
    assert_eq!((replies[0].to, replies[0].term), (1, 3));
    assert_eq!(replies[0].message, Message::StaleTerm);
    // Nothing was staged: the next chunk of term 3 must start at 0.
    let actions = send_chunk(&mut replica, 3, 3, &chunks[1]);
    assert!(matches!(
        sends(&actions)[0].message,
        Message::InstallSnapshotResponse { next_offset: 0, .. }
    ));
}

#[test]
fn a_reassembled_snapshot_with_a_wrong_checksum_is_not_installed() {
    let snapshot = state_snapshot(8);
    let mut bad = chunks(&snapshot, 16);
    for chunk in &mut bad {
        chunk.checksum ^= 1;
    }
    let mut replica = follower(10_000 * MS);
    let mut actions = Vec::new();
    for chunk in &bad {
        actions = send_chunk(&mut replica, 1, 1, chunk);
    }
    assert_eq!(installs(&actions), 0);
    assert_eq!(answer(&actions), (8, 0, false, None), "start over");
    assert_eq!(replica.status().applied_index, 0);
}

/// A cluster with 16-byte chunks whose leader compacted past a follower
/// taken `away` (crashed or isolated): (cluster, leader, that follower).
fn leader_compacted_past_a_follower(away: fn(&mut Cluster, u64)) -> (Cluster, u64, u64) {
    let mut cluster = Cluster::with_config(3, Mode::Safe, |config| {
        config.snapshot_threshold = 5;
        config.snapshot_chunk_bytes = 16;
    });
    let leader = cluster.elect();
    let lagging = cluster.next_after(leader);
    away(&mut cluster, lagging);
    for seq in 1..=20 {
        let id = cluster.request(leader, put(1, seq, "k", &"v".repeat(seq as usize)));
        written(cluster.replies.get(&id));
    }
    (cluster, leader, lagging)
}

#[test]
fn lagging_follower_catches_up_through_many_small_chunks() {
    let (mut cluster, leader, lagging) = leader_compacted_past_a_follower(Cluster::crash);
    cluster.restart(lagging);
    cluster.run_for(500 * MS);
    assert!(cluster.state_hashes_agree());
    let size = cluster.durable[&lagging]
        .snapshot
        .as_ref()
        .unwrap()
        .data
        .len();
    let sent = cluster.snapshot_chunks_sent[&(leader, lagging)];
    assert!(sent >= size / 16, "{sent} chunks for {size} bytes");
}

#[test]
fn the_leader_waits_for_each_chunk_and_resends_a_lost_one() {
    let (mut cluster, leader, lagging) = leader_compacted_past_a_follower(Cluster::crash);
    // The follower's answers to chunks are lost: one chunk in flight,
    // resent only when the retransmit timer fires (with backoff), never a
    // flood.
    cluster.lose = Some(Box::new(|_, _, message| {
        matches!(message, Message::InstallSnapshotResponse { .. })
    }));
    cluster.restart(lagging);
    let chunks_sent = |cluster: &Cluster| {
        cluster
            .snapshot_chunks_sent
            .get(&(leader, lagging))
            .copied()
    };
    for _ in 0..100 {
        if chunks_sent(&cluster).is_some() {
            break;
        }
        cluster.run_for(10 * MS);
    }
    cluster.run_for(60 * MS);
    assert_eq!(chunks_sent(&cluster), Some(1));
    cluster.run_for(2_000 * MS);
    let resent = cluster.snapshot_chunks_sent[&(leader, lagging)];
    assert!((3..=10).contains(&resent), "sent {resent} times");
    cluster.lose = None;
    cluster.run_for(1_000 * MS);
    assert!(
        cluster.state_hashes_agree(),
        "caught up once answers arrive"
    );
}

#[test]
fn a_chunk_to_a_silent_follower_is_not_resent_until_it_is_heard_again() {
    let (mut cluster, leader, lagging) = leader_compacted_past_a_follower(Cluster::crash);
    // The follower only refuses appends (so the leader learns it is behind
    // its log start); everything else it says is lost, as from a node cut
    // off right after: however long, the unanswered first chunk is not
    // resent, so nothing piles up in a send queue.
    cluster.lose = Some(Box::new(move |from, _, message| {
        from == lagging && !matches!(message, Message::AppendResponse { .. })
    }));
    cluster.restart(lagging);
    cluster.run_for(3_000 * MS);
    let chunks_sent = |cluster: &Cluster| cluster.snapshot_chunks_sent[&(leader, lagging)];
    assert_eq!(chunks_sent(&cluster), 1);
    cluster.lose = None;
    cluster.run_for(2_000 * MS);
    assert!(chunks_sent(&cluster) > 1);
    assert!(cluster.state_hashes_agree(), "caught up once heard again");
}

#[test]
fn a_follower_isolated_past_compaction_catches_up_after_the_heal() {
    let (mut cluster, leader, isolated) = leader_compacted_past_a_follower(Cluster::isolate);
    cluster.heal();
    cluster.run_for(3_000 * MS);
    assert!(cluster.state_hashes_agree(), "caught up after the heal");
    assert!(cluster.snapshot_chunks_sent[&(leader, isolated)] > 1);
}
