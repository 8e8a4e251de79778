//! The body of a frame: tagged messages, entries and KV operations, and
//! the bounds-checked [`Reader`] that parses them.
use super::DecodeError;
use crate::chunk::SnapshotChunk;
use crate::message::{AppendAnswer, Entry, KvOp, Message, Payload};

// Message tags. Stable: they are part of protocol version 1. Tags 7 and 8
// carried whole snapshots in one frame; they are retired (a frame with one
// is malformed) and snapshots travel in chunks under tags 12 and 13.
const TAG_PRE_VOTE: u8 = 1;
const TAG_PRE_VOTE_RESPONSE: u8 = 2;
const TAG_VOTE: u8 = 3;
const TAG_VOTE_RESPONSE: u8 = 4;
const TAG_APPEND: u8 = 5;
const TAG_APPEND_RESPONSE: u8 = 6;
const TAG_HEARTBEAT: u8 = 9;
const TAG_HEARTBEAT_ACK: u8 = 10;
const TAG_STALE_TERM: u8 = 11;
const TAG_SNAPSHOT_CHUNK: u8 = 12;
const TAG_SNAPSHOT_CHUNK_RESPONSE: u8 = 13;

const PAYLOAD_NOOP: u8 = 0;
const PAYLOAD_COMMAND: u8 = 1;

const OP_PUT: u8 = 1;
const OP_DELETE: u8 = 2;
const OP_CAS: u8 = 3;
const OP_APPEND: u8 = 4;

/// Smallest encoding of an entry: term, index, payload tag.
const MIN_ENTRY_LEN: usize = 8 + 8 + 1;

/// The tag that opens `message`'s encoding.
fn tag(message: &Message) -> u8 {
    match message {
        Message::PreVote { .. } => TAG_PRE_VOTE,
        Message::PreVoteResponse { .. } => TAG_PRE_VOTE_RESPONSE,
        Message::Vote { .. } => TAG_VOTE,
        Message::VoteResponse { .. } => TAG_VOTE_RESPONSE,
        Message::Append { .. } => TAG_APPEND,
        Message::AppendResponse { .. } => TAG_APPEND_RESPONSE,
        Message::InstallSnapshot { .. } => TAG_SNAPSHOT_CHUNK,
        Message::InstallSnapshotResponse { .. } => TAG_SNAPSHOT_CHUNK_RESPONSE,
        Message::Heartbeat { .. } => TAG_HEARTBEAT,
        Message::HeartbeatAck { .. } => TAG_HEARTBEAT_ACK,
        Message::StaleTerm => TAG_STALE_TERM,
    }
}

pub(super) fn encode_message(message: &Message, out: &mut Vec<u8>) {
    out.push(tag(message));
    match message {
        Message::PreVote {
            last_log_index,
            last_log_term,
        }
        | Message::Vote {
            last_log_index,
            last_log_term,
        } => {
            put_u64(out, *last_log_index);
            put_u64(out, *last_log_term);
        }
        Message::PreVoteResponse { granted } | Message::VoteResponse { granted } => {
            out.push(u8::from(*granted));
        }
        Message::Append {
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit,
        } => {
            put_u64(out, *prev_log_index);
            put_u64(out, *prev_log_term);
            put_u64(out, *leader_commit);
            put_len(out, entries.len());
            for entry in entries {
                encode_entry(entry, out);
            }
        }
        Message::AppendResponse { answer } => {
            let (success, match_index, conflict_index) = match *answer {
                AppendAnswer::Matched(index) => (true, index, 0),
                AppendAnswer::Conflict(index) => (false, 0, index),
            };
            out.push(u8::from(success));
            put_u64(out, match_index);
            put_u64(out, conflict_index);
        }
        Message::InstallSnapshot { chunk } => {
            put_u64(out, chunk.last_index);
            put_u64(out, chunk.last_term);
            put_u64(out, chunk.total_len);
            out.extend_from_slice(&chunk.checksum.to_be_bytes());
            put_u64(out, chunk.offset);
            out.push(u8::from(chunk.done));
            put_bytes(out, &chunk.data);
        }
        Message::InstallSnapshotResponse {
            last_index,
            next_offset,
            installed,
        } => {
            put_u64(out, *last_index);
            put_u64(out, *next_offset);
            out.push(u8::from(*installed));
        }
        Message::HeartbeatAck { seq } => put_u64(out, *seq),
        Message::Heartbeat { seq, commit } => {
            put_u64(out, *seq);
            put_u64(out, *commit);
        }
        Message::StaleTerm => {}
    }
}

pub(super) fn decode_message(reader: &mut Reader<'_>) -> Result<Message, DecodeError> {
    let message = match reader.u8()? {
        TAG_PRE_VOTE => Message::PreVote {
            last_log_index: reader.u64()?,
            last_log_term: reader.u64()?,
        },
        TAG_PRE_VOTE_RESPONSE => Message::PreVoteResponse {
            granted: reader.bool()?,
        },
        TAG_VOTE => Message::Vote {
            last_log_index: reader.u64()?,
            last_log_term: reader.u64()?,
        },
        TAG_VOTE_RESPONSE => Message::VoteResponse {
            granted: reader.bool()?,
        },
        TAG_APPEND => {
            let prev_log_index = reader.u64()?;
            let prev_log_term = reader.u64()?;
            let leader_commit = reader.u64()?;
            let count = reader.count(MIN_ENTRY_LEN, std::mem::size_of::<Entry>())?;
            let mut entries = Vec::with_capacity(count);
            for _ in 0..count {
                entries.push(decode_entry(reader)?);
            }
            Message::Append {
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
            }
        }
        TAG_APPEND_RESPONSE => {
            let success = reader.bool()?;
            let match_index = reader.u64()?;
            let conflict_index = reader.u64()?;
            // The index that does not apply is not read (senders put 0 there).
            let answer = if success {
                AppendAnswer::Matched(match_index)
            } else {
                AppendAnswer::Conflict(conflict_index)
            };
            Message::AppendResponse { answer }
        }
        TAG_SNAPSHOT_CHUNK => Message::InstallSnapshot {
            chunk: decode_chunk(reader)?,
        },
        TAG_SNAPSHOT_CHUNK_RESPONSE => Message::InstallSnapshotResponse {
            last_index: reader.u64()?,
            next_offset: reader.u64()?,
            installed: reader.bool()?,
        },
        TAG_HEARTBEAT => Message::Heartbeat {
            seq: reader.u64()?,
            commit: reader.u64()?,
        },
        TAG_HEARTBEAT_ACK => Message::HeartbeatAck { seq: reader.u64()? },
        TAG_STALE_TERM => Message::StaleTerm,
        _ => return Err(DecodeError::Malformed("unknown message tag")),
    };
    Ok(message)
}

/// A chunk whose bytes fit inside the snapshot it names and whose `done`
/// flag says exactly whether it ends it; anything else is malformed.
fn decode_chunk(reader: &mut Reader<'_>) -> Result<SnapshotChunk, DecodeError> {
    let last_index = reader.u64()?;
    let last_term = reader.u64()?;
    let total_len = reader.u64()?;
    let checksum = reader.u32()?;
    let offset = reader.u64()?;
    let done = reader.bool()?;
    let data = reader.owned_bytes()?;
    let end = offset.checked_add(data.len() as u64);
    match end {
        Some(end) if end <= total_len && done == (end == total_len) => Ok(SnapshotChunk {
            last_index,
            last_term,
            total_len,
            checksum,
            offset,
            data,
            done,
        }),
        Some(end) if end <= total_len => Err(DecodeError::Malformed(
            "snapshot chunk's done flag disagrees with its end",
        )),
        _ => Err(DecodeError::Malformed(
            "snapshot chunk runs past the snapshot's length",
        )),
    }
}

fn encode_entry(entry: &Entry, out: &mut Vec<u8>) {
    put_u64(out, entry.term);
    put_u64(out, entry.index);
    match &entry.payload {
        Payload::Noop => out.push(PAYLOAD_NOOP),
        Payload::Command { client, seq, op } => {
            out.push(PAYLOAD_COMMAND);
            put_u64(out, *client);
            put_u64(out, *seq);
            match op {
                KvOp::Put { key, value } => {
                    out.push(OP_PUT);
                    put_bytes(out, key.as_bytes());
                    put_bytes(out, value.as_bytes());
                }
                KvOp::Delete { key } => {
                    out.push(OP_DELETE);
                    put_bytes(out, key.as_bytes());
                }
                KvOp::Cas {
                    key,
                    expected,
                    value,
                } => {
                    out.push(OP_CAS);
                    put_bytes(out, key.as_bytes());
                    match expected {
                        None => out.push(0),
                        Some(expected) => {
                            out.push(1);
                            put_bytes(out, expected.as_bytes());
                        }
                    }
                    put_bytes(out, value.as_bytes());
                }
                KvOp::Append { key, element } => {
                    out.push(OP_APPEND);
                    put_bytes(out, key.as_bytes());
                    put_bytes(out, element.as_bytes());
                }
            }
        }
    }
}

fn decode_entry(reader: &mut Reader<'_>) -> Result<Entry, DecodeError> {
    let term = reader.u64()?;
    let index = reader.u64()?;
    let payload = match reader.u8()? {
        PAYLOAD_NOOP => Payload::Noop,
        PAYLOAD_COMMAND => {
            let client = reader.u64()?;
            let seq = reader.u64()?;
            let op = match reader.u8()? {
                OP_PUT => KvOp::Put {
                    key: reader.string()?,
                    value: reader.string()?,
                },
                OP_DELETE => KvOp::Delete {
                    key: reader.string()?,
                },
                OP_CAS => {
                    let key = reader.string()?;
                    let expected = if reader.bool()? {
                        Some(reader.string()?)
                    } else {
                        None
                    };
                    KvOp::Cas {
                        key,
                        expected,
                        value: reader.string()?,
                    }
                }
                OP_APPEND => KvOp::Append {
                    key: reader.string()?,
                    element: reader.string()?,
                },
                _ => return Err(DecodeError::Malformed("unknown kv op tag")),
            };
            Payload::Command { client, seq, op }
        }
        _ => return Err(DecodeError::Malformed("unknown payload tag")),
    };
    Ok(Entry {
        term,
        index,
        payload,
    })
}

pub(super) fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_be_bytes());
}

fn put_len(out: &mut Vec<u8>, len: usize) {
    let len = u32::try_from(len).expect("length larger than u32::MAX");
    out.extend_from_slice(&len.to_be_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_len(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// A bounds-checked cursor over a fully received, checksummed body. Running
/// out of bytes here is `Malformed`, never `Incomplete`: the frame length
/// already told us the body is complete.
///
/// Decoded values can be larger than their encoding (a 17-byte no-op entry
/// becomes a full [`Entry`]), so every allocation is also charged against
/// `max_frame`: decoding one frame never allocates more than that.
pub(super) struct Reader<'a> {
    rest: &'a [u8],
    max_frame: usize,
    allocated: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(rest: &'a [u8], max_frame: usize) -> Self {
        Reader {
            rest,
            max_frame,
            allocated: 0,
        }
    }

    fn charge(&mut self, bytes: usize) -> Result<(), DecodeError> {
        let allocated = self.allocated.saturating_add(bytes);
        if allocated > self.max_frame {
            return Err(DecodeError::TooLarge {
                len: allocated,
                max: self.max_frame,
            });
        }
        self.allocated = allocated;
        Ok(())
    }

    pub(super) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        if len > self.rest.len() {
            return Err(DecodeError::Malformed(
                "field runs past the end of the frame",
            ));
        }
        let (head, tail) = self.rest.split_at(len);
        self.rest = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::Malformed("boolean is neither 0 nor 1")),
        }
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        let bytes = self.take(4)?;
        Ok(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    pub(super) fn u64(&mut self) -> Result<u64, DecodeError> {
        let bytes = self.take(8)?;
        let mut array = [0; 8];
        array.copy_from_slice(bytes);
        Ok(u64::from_be_bytes(array))
    }

    /// A count of items each at least `min_item_len` bytes long, checked
    /// against the remaining bytes, and charged at `decoded_size` each, so
    /// `Vec::with_capacity` stays bounded.
    fn count(&mut self, min_item_len: usize, decoded_size: usize) -> Result<usize, DecodeError> {
        let count = self.u32()? as usize;
        if count.saturating_mul(min_item_len) > self.rest.len() {
            return Err(DecodeError::Malformed("item count exceeds the frame"));
        }
        self.charge(count.saturating_mul(decoded_size))?;
        Ok(count)
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    fn owned_bytes(&mut self) -> Result<Vec<u8>, DecodeError> {
        let bytes = self.bytes()?;
        self.charge(bytes.len())?;
        Ok(bytes.to_vec())
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let bytes = self.bytes()?;
        self.charge(bytes.len())?;
        match std::str::from_utf8(bytes) {
            Ok(text) => Ok(text.to_owned()),
            Err(_) => Err(DecodeError::Malformed("string is not valid UTF-8")),
        }
    }
}
