//! Frame codec: see the crate docs for the layout.
//!
//! Decoding is split like mini-redis `Frame::check` / `Frame::parse`: first
//! the fixed prefix is validated and the declared length is checked against
//! `max_frame` (so a hostile length never makes us wait for or allocate a
//! huge buffer), then the checksum covers the whole frame, and only then is
//! the body parsed by a bounds-checked [`Reader`]. Every length and count in
//! the body is compared with the bytes that remain before anything is
//! allocated.
use crate::message::{Entry, KvOp, Message, NodeId, Payload, Snapshot, Term};

pub const PROTOCOL_VERSION: u8 = 1;

/// A sensible `max_frame` for drivers: 16 MiB (snapshots travel in one frame).
pub const DEFAULT_MAX_FRAME: usize = 16 << 20;

/// The two magic bytes that start every frame.
pub const MAGIC: [u8; 2] = *b"SL";
/// magic (2) + version (1) + length (4).
pub const PREFIX_LEN: usize = 7;
/// The crc32 trailer.
pub const TRAILER_LEN: usize = 4;
/// cluster, from, to, term: four big-endian u64s.
pub const HEADER_LEN: usize = 32;
/// The smallest possible frame: prefix, header, one tag byte, trailer.
pub const MIN_FRAME_LEN: usize = PREFIX_LEN + HEADER_LEN + 1 + TRAILER_LEN;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub version: u8,
    pub cluster: u64,
    pub from: NodeId,
    pub to: NodeId,
    pub term: Term,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub header: Header,
    pub message: Message,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Control flow, not an error: wait for at least `needed` bytes in total.
    #[error("incomplete frame: need at least {needed} bytes")]
    Incomplete { needed: usize },
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u8),
    #[error("bad magic")]
    BadMagic,
    #[error("checksum mismatch")]
    BadChecksum,
    #[error("malformed frame: {0}")]
    Malformed(&'static str),
}

impl DecodeError {
    /// A short, stable label for metrics (`frames_rejected_total{reason=...}`).
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::Incomplete { .. } => "incomplete",
            DecodeError::TooLarge { .. } => "oversized",
            DecodeError::UnsupportedVersion(_) => "version",
            DecodeError::BadMagic => "magic",
            DecodeError::BadChecksum => "checksum",
            DecodeError::Malformed(_) => "malformed",
        }
    }
}

// Message tags. Stable: they are part of protocol version 1.
const TAG_PRE_VOTE: u8 = 1;
const TAG_PRE_VOTE_RESPONSE: u8 = 2;
const TAG_VOTE: u8 = 3;
const TAG_VOTE_RESPONSE: u8 = 4;
const TAG_APPEND: u8 = 5;
const TAG_APPEND_RESPONSE: u8 = 6;
const TAG_INSTALL_SNAPSHOT: u8 = 7;
const TAG_INSTALL_SNAPSHOT_RESPONSE: u8 = 8;
const TAG_HEARTBEAT: u8 = 9;
const TAG_HEARTBEAT_ACK: u8 = 10;
const TAG_STALE_TERM: u8 = 11;

const PAYLOAD_NOOP: u8 = 0;
const PAYLOAD_COMMAND: u8 = 1;

const OP_PUT: u8 = 1;
const OP_DELETE: u8 = 2;
const OP_CAS: u8 = 3;

/// Smallest encoding of an entry: term, index, payload tag.
const MIN_ENTRY_LEN: usize = 8 + 8 + 1;

/// Appends the encoded frame to `out`.
///
/// # Panics
/// If the frame body exceeds `u32::MAX` bytes, which no configured maximum
/// frame size allows.
pub fn encode(frame: &Frame, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&MAGIC);
    out.push(frame.header.version);
    out.extend_from_slice(&[0; 4]); // length, patched below
    put_u64(out, frame.header.cluster);
    put_u64(out, frame.header.from);
    put_u64(out, frame.header.to);
    put_u64(out, frame.header.term);
    encode_message(&frame.message, out);
    let body_len = out.len() - start - PREFIX_LEN;
    let body_len = u32::try_from(body_len).expect("frame body larger than 4 GiB");
    out[start + 3..start + PREFIX_LEN].copy_from_slice(&body_len.to_be_bytes());
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

pub fn encode_to_vec(frame: &Frame) -> Vec<u8> {
    let mut out = Vec::new();
    encode(frame, &mut out);
    out
}

/// Decodes one frame from the front of `buf`; returns it and the number of
/// bytes consumed. Never reads a length larger than `max_frame` (the whole
/// frame, prefix and trailer included) before rejecting it.
///
/// `Incomplete` means every byte seen so far is consistent with a valid
/// frame; any other error means the bytes can never become one.
pub fn decode(buf: &[u8], max_frame: usize) -> Result<(Frame, usize), DecodeError> {
    let magic_seen = buf.len().min(MAGIC.len());
    if buf[..magic_seen] != MAGIC[..magic_seen] {
        return Err(DecodeError::BadMagic);
    }
    if buf.len() < 3 {
        return Err(DecodeError::Incomplete { needed: PREFIX_LEN });
    }
    let version = buf[2];
    if version != PROTOCOL_VERSION {
        return Err(DecodeError::UnsupportedVersion(version));
    }
    if buf.len() < PREFIX_LEN {
        return Err(DecodeError::Incomplete { needed: PREFIX_LEN });
    }
    let body_len = u32::from_be_bytes([buf[3], buf[4], buf[5], buf[6]]) as usize;
    let total = PREFIX_LEN
        .saturating_add(body_len)
        .saturating_add(TRAILER_LEN);
    if total > max_frame {
        return Err(DecodeError::TooLarge {
            len: total,
            max: max_frame,
        });
    }
    if total < MIN_FRAME_LEN {
        return Err(DecodeError::Malformed("frame shorter than header"));
    }
    if buf.len() < total {
        return Err(DecodeError::Incomplete { needed: total });
    }
    let checked = &buf[..total - TRAILER_LEN];
    let trailer = &buf[total - TRAILER_LEN..total];
    let expected = u32::from_be_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    if crc32fast::hash(checked) != expected {
        return Err(DecodeError::BadChecksum);
    }
    let mut reader = Reader::new(&checked[PREFIX_LEN..]);
    let header = Header {
        version,
        cluster: reader.u64()?,
        from: reader.u64()?,
        to: reader.u64()?,
        term: reader.u64()?,
    };
    let message = decode_message(&mut reader)?;
    if !reader.is_empty() {
        return Err(DecodeError::Malformed("trailing bytes after message"));
    }
    Ok((Frame { header, message }, total))
}

fn encode_message(message: &Message, out: &mut Vec<u8>) {
    match message {
        Message::PreVote {
            last_log_index,
            last_log_term,
        } => {
            out.push(TAG_PRE_VOTE);
            put_u64(out, *last_log_index);
            put_u64(out, *last_log_term);
        }
        Message::PreVoteResponse { granted } => {
            out.push(TAG_PRE_VOTE_RESPONSE);
            out.push(u8::from(*granted));
        }
        Message::Vote {
            last_log_index,
            last_log_term,
        } => {
            out.push(TAG_VOTE);
            put_u64(out, *last_log_index);
            put_u64(out, *last_log_term);
        }
        Message::VoteResponse { granted } => {
            out.push(TAG_VOTE_RESPONSE);
            out.push(u8::from(*granted));
        }
        Message::Append {
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit,
        } => {
            out.push(TAG_APPEND);
            put_u64(out, *prev_log_index);
            put_u64(out, *prev_log_term);
            put_u64(out, *leader_commit);
            put_len(out, entries.len());
            for entry in entries {
                encode_entry(entry, out);
            }
        }
        Message::AppendResponse {
            success,
            match_index,
            conflict_index,
        } => {
            out.push(TAG_APPEND_RESPONSE);
            out.push(u8::from(*success));
            put_u64(out, *match_index);
            put_u64(out, *conflict_index);
        }
        Message::InstallSnapshot { snapshot } => {
            out.push(TAG_INSTALL_SNAPSHOT);
            put_u64(out, snapshot.last_index);
            put_u64(out, snapshot.last_term);
            put_bytes(out, &snapshot.data);
        }
        Message::InstallSnapshotResponse { last_index } => {
            out.push(TAG_INSTALL_SNAPSHOT_RESPONSE);
            put_u64(out, *last_index);
        }
        Message::Heartbeat { seq, commit } => {
            out.push(TAG_HEARTBEAT);
            put_u64(out, *seq);
            put_u64(out, *commit);
        }
        Message::HeartbeatAck { seq } => {
            out.push(TAG_HEARTBEAT_ACK);
            put_u64(out, *seq);
        }
        Message::StaleTerm => out.push(TAG_STALE_TERM),
    }
}

fn decode_message(reader: &mut Reader<'_>) -> Result<Message, DecodeError> {
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
            let count = reader.count(MIN_ENTRY_LEN)?;
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
        TAG_APPEND_RESPONSE => Message::AppendResponse {
            success: reader.bool()?,
            match_index: reader.u64()?,
            conflict_index: reader.u64()?,
        },
        TAG_INSTALL_SNAPSHOT => Message::InstallSnapshot {
            snapshot: Snapshot {
                last_index: reader.u64()?,
                last_term: reader.u64()?,
                data: reader.bytes()?.to_vec(),
            },
        },
        TAG_INSTALL_SNAPSHOT_RESPONSE => Message::InstallSnapshotResponse {
            last_index: reader.u64()?,
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

fn put_u64(out: &mut Vec<u8>, value: u64) {
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
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(rest: &'a [u8]) -> Self {
        Reader { rest }
    }

    fn is_empty(&self) -> bool {
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

    fn u64(&mut self) -> Result<u64, DecodeError> {
        let bytes = self.take(8)?;
        let mut array = [0; 8];
        array.copy_from_slice(bytes);
        Ok(u64::from_be_bytes(array))
    }

    /// A count of items each at least `min_item_len` bytes long, checked
    /// against the remaining bytes so `Vec::with_capacity` stays bounded.
    fn count(&mut self, min_item_len: usize) -> Result<usize, DecodeError> {
        let count = self.u32()? as usize;
        if count.saturating_mul(min_item_len) > self.rest.len() {
            return Err(DecodeError::Malformed("item count exceeds the frame"));
        }
        Ok(count)
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let bytes = self.bytes()?;
        match std::str::from_utf8(bytes) {
            Ok(text) => Ok(text.to_owned()),
            Err(_) => Err(DecodeError::Malformed("string is not valid UTF-8")),
        }
    }
}

#[cfg(test)]
mod tests;
