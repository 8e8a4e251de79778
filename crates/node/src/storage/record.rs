//! The on-disk record format: `length (u32 BE) | crc32 (u32 BE) | payload`
//! framing, the scan that finds the valid prefix, and the payload codecs for
//! meta, log entries and snapshots.
use wire::{Entry, KvOp, NodeId, Payload, Snapshot, Term};

const RECORD_HEADER: usize = 8;
/// No single record may claim more than this (1 GiB): a corrupt length
/// must not make recovery allocate without bound.
const MAX_RECORD: usize = 1 << 30;

/// Appends one framed record to `out`.
pub(super) fn frame_record(payload: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(payload.len()).expect("record larger than 4 GiB");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_be_bytes());
    out.extend_from_slice(payload);
}

/// The payload of the valid record starting at `offset`, if there is one.
/// Payloads are never empty, so a zero-filled region (length 0, crc 0) is
/// not mistaken for records.
fn record_at(bytes: &[u8], offset: usize) -> Option<&[u8]> {
    let head = bytes.get(offset..offset.checked_add(RECORD_HEADER)?)?;
    let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let crc = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
    if len == 0 || len > MAX_RECORD {
        return None;
    }
    let start = offset + RECORD_HEADER;
    let payload = bytes.get(start..start + len)?;
    (crc32fast::hash(payload) == crc).then_some(payload)
}

/// Splits `bytes` into valid records. Returns `(offset, payload)` pairs and
/// the length of the valid prefix; what follows it is either a torn tail or
/// corruption, which [`valid_record_after`] tells apart.
pub(super) fn scan_records(bytes: &[u8]) -> (Vec<(u64, &[u8])>, usize) {
    let mut records = Vec::new();
    let mut offset = 0;
    while let Some(payload) = record_at(bytes, offset) {
        records.push((offset as u64, payload));
        offset += RECORD_HEADER + payload.len();
    }
    (records, offset)
}

/// The offset of the first valid record (checksum matches and `decodes`
/// accepts the payload) starting after `bad`, the offset where the valid
/// prefix ends. `None` means everything from `bad` on is an incomplete last
/// record (a torn tail) that may be dropped; `Some` means a bad record sits
/// between valid ones, which is corruption, never a crash artefact.
pub(super) fn valid_record_after(
    bytes: &[u8],
    bad: usize,
    decodes: impl Fn(&[u8]) -> bool,
) -> Option<u64> {
    (bad + 1..bytes.len().saturating_sub(RECORD_HEADER))
        .find(|&offset| record_at(bytes, offset).is_some_and(&decodes))
        .map(|offset| offset as u64)
}

// --- payload encodings ------------------------------------------------------

fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_be_bytes());
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    put_u64(out, text.len() as u64);
    out.extend_from_slice(text.as_bytes());
}

struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        if len > self.rest.len() {
            return None;
        }
        let (head, tail) = self.rest.split_at(len);
        self.rest = tail;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u64(&mut self) -> Option<u64> {
        let mut array = [0; 8];
        array.copy_from_slice(self.take(8)?);
        Some(u64::from_be_bytes(array))
    }
    fn string(&mut self) -> Option<String> {
        let len = usize::try_from(self.u64()?).ok()?;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }
}

pub(super) fn encode_meta(term: Term, voted_for: Option<NodeId>) -> Vec<u8> {
    let mut out = Vec::with_capacity(17);
    put_u64(&mut out, term);
    out.push(u8::from(voted_for.is_some()));
    put_u64(&mut out, voted_for.unwrap_or(0));
    out
}

pub(super) fn decode_meta(payload: &[u8]) -> Option<(Term, Option<NodeId>)> {
    let mut cursor = Cursor { rest: payload };
    let term = cursor.u64()?;
    let has_vote = cursor.u8()?;
    let vote = cursor.u64()?;
    match has_vote {
        0 => Some((term, None)),
        1 => Some((term, Some(vote))),
        _ => None,
    }
}

pub(super) fn encode_entry(entry: &Entry, out: &mut Vec<u8>) {
    put_u64(out, entry.term);
    put_u64(out, entry.index);
    match &entry.payload {
        Payload::Noop => out.push(0),
        Payload::Command { client, seq, op } => {
            out.push(1);
            put_u64(out, *client);
            put_u64(out, *seq);
            match op {
                KvOp::Put { key, value } => {
                    out.push(1);
                    put_str(out, key);
                    put_str(out, value);
                }
                KvOp::Delete { key } => {
                    out.push(2);
                    put_str(out, key);
                }
                KvOp::Cas {
                    key,
                    expected,
                    value,
                } => {
                    out.push(3);
                    put_str(out, key);
                    match expected {
                        None => out.push(0),
                        Some(expected) => {
                            out.push(1);
                            put_str(out, expected);
                        }
                    }
                    put_str(out, value);
                }
                KvOp::Append { key, element } => {
                    out.push(4);
                    put_str(out, key);
                    put_str(out, element);
                }
            }
        }
    }
}

pub(super) fn decode_entry(payload: &[u8]) -> Option<Entry> {
    let mut cursor = Cursor { rest: payload };
    let term = cursor.u64()?;
    let index = cursor.u64()?;
    let payload = match cursor.u8()? {
        0 => Payload::Noop,
        1 => {
            let client = cursor.u64()?;
            let seq = cursor.u64()?;
            let op = match cursor.u8()? {
                1 => KvOp::Put {
                    key: cursor.string()?,
                    value: cursor.string()?,
                },
                2 => KvOp::Delete {
                    key: cursor.string()?,
                },
                3 => {
                    let key = cursor.string()?;
                    let expected = match cursor.u8()? {
                        0 => None,
                        1 => Some(cursor.string()?),
                        _ => return None,
                    };
                    KvOp::Cas {
                        key,
                        expected,
                        value: cursor.string()?,
                    }
                }
                4 => KvOp::Append {
                    key: cursor.string()?,
                    element: cursor.string()?,
                },
                _ => return None,
            };
            Payload::Command { client, seq, op }
        }
        _ => return None,
    };
    if !cursor.rest.is_empty() {
        return None;
    }
    Some(Entry {
        term,
        index,
        payload,
    })
}

pub(super) fn encode_snapshot(snapshot: &Snapshot) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + snapshot.data.len());
    put_u64(&mut out, snapshot.last_index);
    put_u64(&mut out, snapshot.last_term);
    out.extend_from_slice(&snapshot.data);
    out
}

pub(super) fn decode_snapshot(payload: &[u8]) -> Option<Snapshot> {
    let mut cursor = Cursor { rest: payload };
    Some(Snapshot {
        last_index: cursor.u64()?,
        last_term: cursor.u64()?,
        data: cursor.rest.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_encoding_round_trips_every_op() {
        let ops = [
            KvOp::Put {
                key: "k".into(),
                value: "ü".into(),
            },
            KvOp::Delete { key: "k".into() },
            KvOp::Cas {
                key: "k".into(),
                expected: None,
                value: "v".into(),
            },
            KvOp::Cas {
                key: "k".into(),
                expected: Some("old".into()),
                value: "".into(),
            },
            KvOp::Append {
                key: "list".into(),
                element: "3-9".into(),
            },
        ];
        for op in ops {
            let entry = Entry {
                term: 9,
                index: 10,
                payload: Payload::Command {
                    client: u64::MAX,
                    seq: 3,
                    op,
                },
            };
            let mut bytes = Vec::new();
            encode_entry(&entry, &mut bytes);
            assert_eq!(decode_entry(&bytes), Some(entry));
            assert_eq!(decode_entry(&bytes[..bytes.len() - 1]), None);
        }
    }
}
