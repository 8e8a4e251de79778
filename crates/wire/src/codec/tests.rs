use proptest::prelude::*;

use super::*;
use crate::chunk::SnapshotChunk;
use crate::message::{AppendAnswer, Entry, KvOp, Message, Payload};

const MAX: usize = 1 << 20;

fn frame(message: Message) -> Frame {
    Frame::new(0xC1, 1, 2, 7, message)
}

fn sample_messages() -> Vec<Message> {
    let command = |index, op| Entry {
        term: 3,
        index,
        payload: Payload::Command {
            client: 9,
            seq: index,
            op,
        },
    };
    vec![
        Message::PreVote {
            last_log_index: 4,
            last_log_term: 2,
        },
        Message::PreVoteResponse { granted: true },
        Message::Vote {
            last_log_index: u64::MAX,
            last_log_term: 0,
        },
        Message::VoteResponse { granted: false },
        Message::Append {
            prev_log_index: 10,
            prev_log_term: 2,
            leader_commit: 9,
            entries: vec![
                Entry {
                    term: 3,
                    index: 11,
                    payload: Payload::Noop,
                },
                command(
                    12,
                    KvOp::Put {
                        key: "k".into(),
                        value: "v\u{e9}".into(),
                    },
                ),
                command(13, KvOp::Delete { key: "k".into() }),
                command(
                    14,
                    KvOp::Cas {
                        key: "k".into(),
                        expected: None,
                        value: "x".into(),
                    },
                ),
                command(
                    15,
                    KvOp::Cas {
                        key: "k".into(),
                        expected: Some("x".into()),
                        value: String::new(),
                    },
                ),
                command(
                    16,
                    KvOp::Append {
                        key: "list".into(),
                        element: "c1-7".into(),
                    },
                ),
            ],
        },
        Message::Append {
            prev_log_index: 0,
            prev_log_term: 0,
            leader_commit: 0,
            entries: vec![],
        },
        Message::AppendResponse {
            answer: AppendAnswer::Matched(15),
        },
        Message::InstallSnapshot {
            chunk: sample_chunk(),
        },
        Message::InstallSnapshotResponse {
            last_index: 100,
            next_offset: 8,
            installed: false,
        },
        Message::Heartbeat { seq: 1, commit: 2 },
        Message::HeartbeatAck { seq: 1 },
        Message::StaleTerm,
    ]
}

/// The middle chunk of a 12-byte snapshot.
fn sample_chunk() -> SnapshotChunk {
    SnapshotChunk {
        last_index: 100,
        last_term: 4,
        total_len: 12,
        checksum: 0xDEAD_BEEF,
        offset: 4,
        data: vec![0, 1, 2, 255],
        done: false,
    }
}

#[test]
fn every_sample_message_round_trips() {
    for message in sample_messages() {
        let original = frame(message);
        let bytes = encode_to_vec(&original);
        assert_eq!(
            decode(&bytes, MAX),
            Ok((original.clone(), bytes.len())),
            "{original:?}"
        );
    }
}

#[test]
fn layout_starts_with_magic_version_and_big_endian_length() {
    let bytes = encode_to_vec(&frame(Message::StaleTerm));
    assert_eq!(&bytes[..2], b"SL");
    assert_eq!(bytes[2], PROTOCOL_VERSION);
    let body_len = u32::from_be_bytes([bytes[3], bytes[4], bytes[5], bytes[6]]) as usize;
    assert_eq!(body_len, HEADER_LEN + 1);
    assert_eq!(bytes.len(), MIN_FRAME_LEN);
    // Header: cluster, from, to, term, big-endian.
    assert_eq!(&bytes[7..15], &0xC1u64.to_be_bytes());
    assert_eq!(&bytes[31..39], &7u64.to_be_bytes());
}

#[test]
fn append_answers_keep_the_version_1_layout() {
    // Success byte, match index, conflict index; the one that does not
    // apply is written as 0 and not read back.
    let body = |answer| {
        let bytes = encode_to_vec(&frame(Message::AppendResponse { answer }));
        bytes[PREFIX_LEN + HEADER_LEN + 1..bytes.len() - TRAILER_LEN].to_vec()
    };
    let layout = |success: u8, match_index: u64, conflict_index: u64| {
        let mut bytes = vec![success];
        bytes.extend_from_slice(&match_index.to_be_bytes());
        bytes.extend_from_slice(&conflict_index.to_be_bytes());
        bytes
    };
    assert_eq!(body(AppendAnswer::Matched(15)), layout(1, 15, 0));
    assert_eq!(body(AppendAnswer::Conflict(9)), layout(0, 0, 9));
}

#[test]
fn two_frames_back_to_back_decode_one_at_a_time() {
    let first = frame(Message::HeartbeatAck { seq: 5 });
    let second = frame(Message::StaleTerm);
    let mut bytes = encode_to_vec(&first);
    encode(&second, &mut bytes);
    let (decoded, used) = decode(&bytes, MAX).unwrap();
    assert_eq!(decoded, first);
    let (decoded, rest) = decode(&bytes[used..], MAX).unwrap();
    assert_eq!(decoded, second);
    assert_eq!(used + rest, bytes.len());
}

/// Rewrites the body at `offset` (relative to the frame start) and fixes
/// the checksum, so the test reaches the body parser.
fn patched(mut bytes: Vec<u8>, offset: usize, replacement: &[u8]) -> Vec<u8> {
    bytes[offset..offset + replacement.len()].copy_from_slice(replacement);
    let end = bytes.len() - TRAILER_LEN;
    let crc = crc32fast::hash(&bytes[..end]);
    bytes[end..].copy_from_slice(&crc.to_be_bytes());
    bytes
}

#[test]
fn rejections_table() {
    let valid = encode_to_vec(&frame(Message::PreVoteResponse { granted: true }));
    let tag_offset = PREFIX_LEN + HEADER_LEN;
    let put = frame(Message::Append {
        prev_log_index: 0,
        prev_log_term: 0,
        leader_commit: 0,
        entries: vec![Entry {
            term: 1,
            index: 1,
            payload: Payload::Command {
                client: 1,
                seq: 1,
                op: KvOp::Put {
                    key: "ab".into(),
                    value: "c".into(),
                },
            },
        }],
    });
    let put_bytes = encode_to_vec(&put);
    // tag, 3 u64, count, term, index, payload tag, client, seq, op tag, key len
    let key_offset = tag_offset + 1 + 24 + 4 + 16 + 1 + 16 + 1 + 4;
    let count_offset = tag_offset + 1 + 24;
    let chunk_bytes = encode_to_vec(&frame(Message::InstallSnapshot {
        chunk: sample_chunk(),
    }));
    // tag, last_index, last_term, total_len, checksum, offset, done
    let total_len_offset = tag_offset + 1 + 16;
    let done_offset = total_len_offset + 8 + 4 + 8;
    let mut oversized_length = valid.clone();
    oversized_length[3..7].copy_from_slice(&u32::MAX.to_be_bytes());
    let mut short_length = valid.clone();
    short_length[3..7].copy_from_slice(&3u32.to_be_bytes());

    let cases: Vec<(&str, Vec<u8>, DecodeError)> = vec![
        ("bad magic", b"XL".to_vec(), DecodeError::BadMagic),
        (
            "bad second magic byte",
            b"SX".to_vec(),
            DecodeError::BadMagic,
        ),
        (
            "future version",
            patched(valid.clone(), 2, &[3]),
            DecodeError::UnsupportedVersion(3),
        ),
        (
            "keyed frame without a key",
            patched(valid.clone(), 2, &[KEYED_VERSION]),
            DecodeError::UnexpectedMac,
        ),
        (
            "length beyond max_frame",
            oversized_length,
            DecodeError::TooLarge {
                len: PREFIX_LEN + u32::MAX as usize + TRAILER_LEN,
                max: MAX,
            },
        ),
        (
            "length shorter than a header",
            short_length,
            DecodeError::Malformed("frame shorter than header"),
        ),
        (
            "unknown message tag",
            patched(valid.clone(), tag_offset, &[200]),
            DecodeError::Malformed("unknown message tag"),
        ),
        (
            "boolean out of range",
            patched(valid.clone(), tag_offset + 1, &[2]),
            DecodeError::Malformed("boolean is neither 0 nor 1"),
        ),
        (
            "invalid utf-8 key",
            patched(put_bytes.clone(), key_offset, &[0xff, 0xfe]),
            DecodeError::Malformed("string is not valid UTF-8"),
        ),
        (
            "entry count larger than the frame",
            patched(put_bytes.clone(), count_offset, &u32::MAX.to_be_bytes()),
            DecodeError::Malformed("item count exceeds the frame"),
        ),
        (
            "retired whole-snapshot tag",
            patched(valid.clone(), tag_offset, &[7]),
            DecodeError::Malformed("unknown message tag"),
        ),
        (
            "snapshot chunk claims to end the snapshot early",
            patched(chunk_bytes.clone(), done_offset, &[1]),
            DecodeError::Malformed("snapshot chunk's done flag disagrees with its end"),
        ),
        (
            "snapshot chunk ends at the snapshot's end without the done flag",
            patched(chunk_bytes.clone(), total_len_offset, &8u64.to_be_bytes()),
            DecodeError::Malformed("snapshot chunk's done flag disagrees with its end"),
        ),
        (
            "snapshot chunk runs past the snapshot",
            patched(chunk_bytes, total_len_offset, &7u64.to_be_bytes()),
            DecodeError::Malformed("snapshot chunk runs past the snapshot's length"),
        ),
        (
            "string length larger than the frame",
            patched(put_bytes, key_offset - 4, &1000u32.to_be_bytes()),
            DecodeError::Malformed("field runs past the end of the frame"),
        ),
    ];
    for (name, bytes, expected) in cases {
        assert_eq!(decode(&bytes, MAX).map(|_| ()), Err(expected), "{name}");
    }
}

#[test]
fn trailing_bytes_inside_the_frame_are_malformed() {
    let valid = encode_to_vec(&frame(Message::StaleTerm));
    let mut bytes = valid[..valid.len() - TRAILER_LEN].to_vec();
    bytes.push(0);
    let body_len = (bytes.len() - PREFIX_LEN) as u32;
    bytes[3..7].copy_from_slice(&body_len.to_be_bytes());
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_be_bytes());
    assert_eq!(
        decode(&bytes, MAX).map(|_| ()),
        Err(DecodeError::Malformed("trailing bytes after message"))
    );
}

#[test]
fn max_frame_is_checked_before_waiting_for_the_body() {
    let bytes = encode_to_vec(&frame(Message::HeartbeatAck { seq: 1 }));
    // Only the prefix has arrived, but the declared size already exceeds a tiny max.
    assert_eq!(
        decode(&bytes[..PREFIX_LEN], 10),
        Err(DecodeError::TooLarge {
            len: bytes.len(),
            max: 10
        })
    );
    assert!(decode(&bytes, bytes.len()).is_ok());
    assert!(decode(&bytes, bytes.len() - 1).is_err());
}

#[test]
fn reasons_are_stable_labels() {
    assert_eq!(DecodeError::Incomplete { needed: 1 }.reason(), "incomplete");
    assert_eq!(DecodeError::BadChecksum.reason(), "checksum");
    assert_eq!(DecodeError::Malformed("x").reason(), "malformed");
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-z0-9]{1,8}",
        any::<String>().prop_map(|s| s.chars().take(12).collect()),
    ]
}

fn kv_op() -> impl Strategy<Value = KvOp> {
    prop_oneof![
        (text(), text()).prop_map(|(key, value)| KvOp::Put { key, value }),
        text().prop_map(|key| KvOp::Delete { key }),
        (text(), text()).prop_map(|(key, element)| KvOp::Append { key, element }),
        (text(), proptest::option::of(text()), text()).prop_map(|(key, expected, value)| {
            KvOp::Cas {
                key,
                expected,
                value,
            }
        }),
    ]
}

fn entry() -> impl Strategy<Value = Entry> {
    let payload = prop_oneof![
        Just(Payload::Noop),
        (any::<u64>(), any::<u64>(), kv_op()).prop_map(|(client, seq, op)| Payload::Command {
            client,
            seq,
            op
        }),
    ];
    (any::<u64>(), any::<u64>(), payload).prop_map(|(term, index, payload)| Entry {
        term,
        index,
        payload,
    })
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (any::<u64>(), any::<u64>()).prop_map(|(last_log_index, last_log_term)| {
            Message::PreVote {
                last_log_index,
                last_log_term,
            }
        }),
        any::<bool>().prop_map(|granted| Message::PreVoteResponse { granted }),
        (any::<u64>(), any::<u64>()).prop_map(|(last_log_index, last_log_term)| {
            Message::Vote {
                last_log_index,
                last_log_term,
            }
        }),
        any::<bool>().prop_map(|granted| Message::VoteResponse { granted }),
        (
            any::<u64>(),
            any::<u64>(),
            proptest::collection::vec(entry(), 0..6),
            any::<u64>()
        )
            .prop_map(|(prev_log_index, prev_log_term, entries, leader_commit)| {
                Message::Append {
                    prev_log_index,
                    prev_log_term,
                    entries,
                    leader_commit,
                }
            }),
        (any::<bool>(), any::<u64>()).prop_map(|(success, index)| {
            let answer = if success {
                AppendAnswer::Matched(index)
            } else {
                AppendAnswer::Conflict(index)
            };
            Message::AppendResponse { answer }
        }),
        (
            (any::<u64>(), any::<u64>(), any::<u32>()),
            0u64..1000,
            proptest::collection::vec(any::<u8>(), 0..40),
            0u64..1000,
        )
            .prop_map(|((last_index, last_term, checksum), offset, data, tail)| {
                let end = offset + data.len() as u64;
                Message::InstallSnapshot {
                    chunk: SnapshotChunk {
                        last_index,
                        last_term,
                        total_len: end + tail,
                        checksum,
                        offset,
                        data,
                        done: tail == 0,
                    },
                }
            }),
        (any::<u64>(), any::<u64>(), any::<bool>()).prop_map(
            |(last_index, next_offset, installed)| Message::InstallSnapshotResponse {
                last_index,
                next_offset,
                installed,
            }
        ),
        (any::<u64>(), any::<u64>()).prop_map(|(seq, commit)| Message::Heartbeat { seq, commit }),
        any::<u64>().prop_map(|seq| Message::HeartbeatAck { seq }),
        Just(Message::StaleTerm),
    ]
}

fn any_frame() -> impl Strategy<Value = Frame> {
    (
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        message(),
    )
        .prop_map(|(cluster, from, to, term, message)| Frame::new(cluster, from, to, term, message))
}

proptest! {
    #[test]
    fn arbitrary_frames_round_trip(original in any_frame()) {
        let bytes = encode_to_vec(&original);
        prop_assert_eq!(decode(&bytes, MAX), Ok((original, bytes.len())));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256), max in 0usize..512) {
        if let Ok((_, used)) = decode(&bytes, max) {
            prop_assert!(used <= bytes.len() && used <= max);
        }
    }

    #[test]
    fn arbitrary_bodies_behind_a_valid_prefix_never_panic(body in proptest::collection::vec(any::<u8>(), 0..200)) {
        // A valid prefix and checksum force the body parser to run on garbage.
        let mut bytes = MAGIC.to_vec();
        bytes.push(PROTOCOL_VERSION);
        bytes.extend_from_slice(&(body.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&body);
        let crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&crc.to_be_bytes());
        match decode(&bytes, MAX) {
            Ok((frame, used)) => {
                prop_assert_eq!(used, bytes.len());
                prop_assert_eq!(encode_to_vec(&frame), bytes);
            }
            Err(error) => {
                let incomplete = matches!(error, DecodeError::Incomplete { .. });
                prop_assert!(!incomplete, "complete frame reported as incomplete");
            }
        }
    }

    #[test]
    fn every_truncation_is_incomplete(original in any_frame()) {
        let bytes = encode_to_vec(&original);
        for cut in 0..bytes.len() {
            match decode(&bytes[..cut], MAX) {
                Err(DecodeError::Incomplete { needed }) => prop_assert!(needed > cut),
                other => prop_assert!(false, "cut at {} gave {:?}", cut, other),
            }
        }
    }

    #[test]
    fn every_single_byte_corruption_is_rejected(original in any_frame(), flip in 1u8..=255) {
        let bytes = encode_to_vec(&original);
        for position in 0..bytes.len() {
            let mut corrupted = bytes.clone();
            corrupted[position] ^= flip;
            prop_assert!(decode(&corrupted, MAX).is_err(), "corruption at {} accepted", position);
        }
    }
}

#[test]
fn decoded_size_is_charged_against_max_frame() {
    let entries = (1..=1000)
        .map(|index| Entry {
            term: 1,
            index,
            payload: Payload::Noop,
        })
        .collect();
    let many_noops = frame(Message::Append {
        prev_log_index: 0,
        prev_log_term: 0,
        leader_commit: 0,
        entries,
    });
    let bytes = encode_to_vec(&many_noops);
    // The frame itself fits, but 1000 decoded entries would not.
    let max = bytes.len();
    assert!(1000 * std::mem::size_of::<Entry>() > max);
    assert!(matches!(
        decode(&bytes, max),
        Err(DecodeError::TooLarge { max: got, .. }) if got == max
    ));
    assert_eq!(
        decode(&bytes, 1000 * std::mem::size_of::<Entry>() + 1024).map(|(frame, _)| frame),
        Ok(many_noops)
    );
}
