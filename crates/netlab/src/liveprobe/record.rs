//! The live probe's wire frame and its on-disk records (little-endian, fixed
//! size): what a probe carries between namespaces and what each namespace
//! writes about the ticks it sent and the probes it received.

use crate::shaping::Planes;
use std::io::{self, Read};
use std::path::Path;

/// First four bytes of every probe frame. A frame whose magic differs but
/// whose length is right was corrupted on the way (nft `@ih` mangling
/// overwrites the first payload byte).
pub const MAGIC: [u8; 4] = *b"SLPB";
/// Bytes of one probe frame: magic, sender index, tick sequence, send time.
pub const FRAME_LEN: usize = 4 + 1 + 8 + 8;
/// Bytes of one [`SentTick`] record.
pub const SENT_LEN: usize = 16;
/// Bytes of one [`Arrival`] record.
pub const ARRIVAL_LEN: usize = 1 + 1 + 1 + 8 + 8 + 8;

/// One probe as it travels: who sent it, which tick, when (CLOCK_MONOTONIC,
/// shared by every namespace of the machine).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// Topology index of the sender.
    pub from: u8,
    /// Tick sequence number (the same tick on every plane and peer).
    pub seq: u64,
    /// When the tick fired at the sender, monotonic ns.
    pub sent_ns: u64,
}

impl Frame {
    /// The frame's bytes.
    pub fn encode(&self) -> [u8; FRAME_LEN] {
        let mut out = [0u8; FRAME_LEN];
        out[..4].copy_from_slice(&MAGIC);
        out[4] = self.from;
        out[5..13].copy_from_slice(&self.seq.to_le_bytes());
        out[13..21].copy_from_slice(&self.sent_ns.to_le_bytes());
        out
    }

    /// Decodes a frame; `Err(true)` for a frame of the right length whose
    /// magic was mangled (corrupted), `Err(false)` for anything else.
    pub fn decode(bytes: &[u8]) -> Result<Frame, bool> {
        if bytes.len() != FRAME_LEN {
            return Err(false);
        }
        let frame = Frame {
            from: bytes[4],
            seq: u64::from_le_bytes(bytes[5..13].try_into().map_err(|_| false)?),
            sent_ns: u64::from_le_bytes(bytes[13..21].try_into().map_err(|_| false)?),
        };
        if bytes[..4] == MAGIC {
            Ok(frame)
        } else {
            Err(true)
        }
    }
}

/// One tick of a sender: every plane and peer got a probe with this `seq`
/// (TCP streams that were blocked skip ticks: those count as not delivered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentTick {
    /// Tick sequence number.
    pub seq: u64,
    /// When it fired, monotonic ns.
    pub at_ns: u64,
}

/// One probe received by a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    /// Topology index of the sender.
    pub from: u8,
    /// The plane it travelled on.
    pub plane: Planes,
    /// True when the payload arrived mangled.
    pub corrupted: bool,
    /// Tick sequence number.
    pub seq: u64,
    /// Send time, monotonic ns.
    pub sent_ns: u64,
    /// Receive time, monotonic ns.
    pub recv_ns: u64,
}

/// Plane ↔ byte in the records.
pub fn plane_code(plane: Planes) -> u8 {
    match plane {
        Planes::All => 0,
        Planes::Heartbeat => 1,
        Planes::Replication => 2,
        Planes::Client => 3,
    }
}

fn plane_of(code: u8) -> Planes {
    match code {
        1 => Planes::Heartbeat,
        2 => Planes::Replication,
        3 => Planes::Client,
        _ => Planes::All,
    }
}

impl SentTick {
    /// The record's bytes.
    pub fn encode(&self) -> [u8; SENT_LEN] {
        let mut out = [0u8; SENT_LEN];
        out[..8].copy_from_slice(&self.seq.to_le_bytes());
        out[8..].copy_from_slice(&self.at_ns.to_le_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> SentTick {
        let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or([0; 8]));
        SentTick {
            seq: word(0),
            at_ns: word(8),
        }
    }
}

impl Arrival {
    /// The record's bytes.
    pub fn encode(&self) -> [u8; ARRIVAL_LEN] {
        let mut out = [0u8; ARRIVAL_LEN];
        out[0] = self.from;
        out[1] = plane_code(self.plane);
        out[2] = u8::from(self.corrupted);
        out[3..11].copy_from_slice(&self.seq.to_le_bytes());
        out[11..19].copy_from_slice(&self.sent_ns.to_le_bytes());
        out[19..27].copy_from_slice(&self.recv_ns.to_le_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Arrival {
        let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or([0; 8]));
        Arrival {
            from: bytes[0],
            plane: plane_of(bytes[1]),
            corrupted: bytes[2] != 0,
            seq: word(3),
            sent_ns: word(11),
            recv_ns: word(19),
        }
    }
}

fn read_all(path: &Path) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Every tick in a `<node>.sent` file (a torn last record is ignored: the
/// probe is killed at teardown).
///
/// # Errors
/// The file cannot be read.
pub fn read_sent(path: &Path) -> io::Result<Vec<SentTick>> {
    Ok(read_all(path)?
        .chunks_exact(SENT_LEN)
        .map(SentTick::decode)
        .collect())
}

/// Every arrival in a `<node>.recv` file (a torn last record is ignored).
///
/// # Errors
/// The file cannot be read.
pub fn read_arrivals(path: &Path) -> io::Result<Vec<Arrival>> {
    Ok(read_all(path)?
        .chunks_exact(ARRIVAL_LEN)
        .map(Arrival::decode)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_records_round_trip_and_mangled_magic_is_corruption() {
        let frame = Frame {
            from: 3,
            seq: 77,
            sent_ns: 123_456_789,
        };
        let mut bytes = frame.encode();
        assert_eq!(Frame::decode(&bytes), Ok(frame));
        bytes[0] = 0xab;
        assert_eq!(Frame::decode(&bytes), Err(true));
        assert_eq!(Frame::decode(&bytes[..5]), Err(false));
        let arrival = Arrival {
            from: 2,
            plane: Planes::Client,
            corrupted: true,
            seq: 9,
            sent_ns: 10,
            recv_ns: 11,
        };
        assert_eq!(Arrival::decode(&arrival.encode()), arrival);
        let tick = SentTick { seq: 5, at_ns: 6 };
        assert_eq!(SentTick::decode(&tick.encode()), tick);
    }
}
