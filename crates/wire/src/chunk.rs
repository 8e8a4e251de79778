//! Snapshots in transit: a snapshot travels as a sequence of
//! [`SnapshotChunk`]s, each bounded well under the frame limit, so a state
//! of any size can reach a follower that fell behind the leader's log.
//!
//! Every chunk names the whole snapshot (`last_index`, `last_term`,
//! `total_len` and the crc32 `checksum` of all its bytes), so a receiver can
//! tell chunks of different snapshots apart and verify the reassembled
//! bytes before it installs anything.
use crate::message::{Index, Snapshot, Term};

/// One piece of a snapshot: `data` holds the snapshot's bytes
/// `offset .. offset + data.len()`. The codec guarantees
/// `offset + data.len() <= total_len` and that `done` is true exactly when
/// the chunk ends the snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotChunk {
    /// Index of the last entry the whole snapshot covers.
    pub last_index: Index,
    /// Term of that entry.
    pub last_term: Term,
    /// Length of the whole snapshot's data in bytes.
    pub total_len: u64,
    /// [`snapshot_checksum`] of the whole snapshot's data.
    pub checksum: u32,
    /// Where `data` starts within the snapshot's data.
    pub offset: u64,
    /// The bytes of this chunk.
    pub data: Vec<u8>,
    /// True for the chunk that ends the snapshot.
    pub done: bool,
}

impl SnapshotChunk {
    /// The chunk of `snapshot` that starts at `offset` and holds at most
    /// `max_len` bytes (at least one byte unless the snapshot is empty).
    /// `checksum` is [`snapshot_checksum`] of `snapshot.data`, computed once
    /// per transfer by the caller. An `offset` past the end is clamped to it.
    pub fn of(snapshot: &Snapshot, checksum: u32, offset: u64, max_len: usize) -> SnapshotChunk {
        let total = snapshot.data.len();
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(total);
        let end = start.saturating_add(max_len.max(1)).min(total);
        SnapshotChunk {
            last_index: snapshot.last_index,
            last_term: snapshot.last_term,
            total_len: total as u64,
            checksum,
            offset: start as u64,
            data: snapshot.data[start..end].to_vec(),
            done: end == total,
        }
    }

    /// The offset just past this chunk: where the next one starts.
    pub fn end(&self) -> u64 {
        self.offset + self.data.len() as u64
    }
}

/// The checksum every chunk of a snapshot carries: crc32 of the whole
/// snapshot's data. Each frame is already checksummed (or MACed) on its
/// own; this one proves the reassembled bytes are the snapshot the leader
/// meant, in order and complete.
pub fn snapshot_checksum(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(len: usize) -> Snapshot {
        Snapshot {
            last_index: 9,
            last_term: 2,
            data: (0..len).map(|byte| byte as u8).collect(),
        }
    }

    #[test]
    fn chunks_cover_the_snapshot_in_order_and_only_the_last_is_done() {
        for (len, max) in [(0, 4), (1, 4), (7, 4), (8, 4), (9, 4), (10, 1)] {
            let snapshot = snapshot(len);
            let checksum = snapshot_checksum(&snapshot.data);
            let mut offset = 0;
            let mut reassembled = Vec::new();
            loop {
                let chunk = SnapshotChunk::of(&snapshot, checksum, offset, max);
                assert_eq!(chunk.offset, offset);
                assert!(chunk.data.len() <= max);
                assert_eq!(chunk.total_len, len as u64);
                reassembled.extend_from_slice(&chunk.data);
                offset = chunk.end();
                if chunk.done {
                    break;
                }
                assert!(!chunk.data.is_empty(), "len {len} max {max}: no progress");
            }
            assert_eq!(reassembled, snapshot.data, "len {len} max {max}");
            assert_eq!(snapshot_checksum(&reassembled), checksum);
        }
    }

    #[test]
    fn an_offset_past_the_end_is_clamped_to_an_empty_final_chunk() {
        let chunk = SnapshotChunk::of(&snapshot(5), 0, 99, 4);
        assert_eq!((chunk.offset, chunk.data.len(), chunk.done), (5, 0, true));
    }
}
