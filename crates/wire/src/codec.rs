//! Frame codec: see the crate docs for the layout.
//!
//! Decoding is split like mini-redis `Frame::check` / `Frame::parse`: first
//! the fixed prefix is validated and the declared length is checked against
//! `max_frame` (so a hostile length never makes us wait for or allocate a
//! huge buffer), then the checksum covers the whole frame, and only then is
//! the body parsed by a bounds-checked [`Reader`]. Every length and count in
//! the body is compared with the bytes that remain before anything is
//! allocated.
use crate::message::{Message, NodeId, Term};

use body::{Reader, decode_message, encode_message, put_u64};
pub use keyed::{ClusterKey, KEYED_VERSION, KeyError, MAC_LEN, MIN_SECRET_LEN, encode_keyed};

/// The unkeyed frame version (crc32 trailer). A node without a cluster key
/// speaks only this one; a keyed node only [`KEYED_VERSION`].
pub const PROTOCOL_VERSION: u8 = 1;

/// A sensible `max_frame` for drivers: 16 MiB (snapshots travel in chunks
/// far smaller than that, see [`crate::SnapshotChunk`]).
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

/// The envelope fields a receiver checks before it looks at the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Wire version: [`PROTOCOL_VERSION`] (crc32) or [`KEYED_VERSION`] (MAC).
    pub version: u8,
    /// Cluster id; frames from another cluster are dropped by the driver.
    pub cluster: u64,
    /// The sender.
    pub from: NodeId,
    /// The addressee; a frame for another node is dropped by the driver.
    pub to: NodeId,
    /// The sender's current term (the fencing epoch of every message).
    pub term: Term,
}

/// One decoded unit on the wire: a header and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Who sent it, to whom, in which cluster and term.
    pub header: Header,
    /// The body.
    pub message: Message,
}

impl Frame {
    /// `message` from `from` to `to` in `cluster` and `term`, at
    /// [`PROTOCOL_VERSION`] ([`encode_keyed`] seals it with a MAC instead
    /// when given a key).
    pub fn new(cluster: u64, from: NodeId, to: NodeId, term: Term, message: Message) -> Frame {
        Frame {
            header: Header {
                version: PROTOCOL_VERSION,
                cluster,
                from,
                to,
                term,
            },
            message,
        }
    }
}

/// Why [`decode`] could not return a frame. Everything but `Incomplete`
/// means the bytes can never become a valid frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Control flow, not an error: wait for at least `needed` bytes in total.
    #[error("incomplete frame: need at least {needed} bytes")]
    Incomplete {
        /// Total bytes (from the frame start) needed before decoding can go on.
        needed: usize,
    },
    /// The declared frame length exceeds `max_frame`; rejected before reading
    /// or allocating the body.
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// Declared frame length in bytes, prefix and trailer included.
        len: usize,
        /// The configured maximum in bytes.
        max: usize,
    },
    /// The version byte is neither [`PROTOCOL_VERSION`] nor [`KEYED_VERSION`].
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u8),
    /// The first bytes are not [`MAGIC`]: not a splitlab frame, or out of sync.
    #[error("bad magic")]
    BadMagic,
    /// The crc32 trailer does not match the frame (corruption in flight).
    #[error("checksum mismatch")]
    BadChecksum,
    /// An unkeyed frame reached a node that has a cluster key.
    #[error("frame carries no MAC but a cluster key is configured")]
    MissingMac,
    /// A keyed frame whose MAC does not match under our cluster key: forged,
    /// another cluster's key, or corrupted in flight.
    #[error("frame MAC does not match the cluster key")]
    BadMac,
    /// A keyed frame reached a node without a cluster key, which cannot check it.
    #[error("frame carries a MAC but no cluster key is configured")]
    UnexpectedMac,
    /// The checksum held but the body does not parse; the text says where.
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
            DecodeError::MissingMac => "mac_missing",
            DecodeError::BadMac => "mac_invalid",
            DecodeError::UnexpectedMac => "mac_unexpected",
            DecodeError::Malformed(_) => "malformed",
        }
    }
}

/// Appends the encoded frame to `out` (version byte from the header, crc32
/// trailer: the unkeyed frame).
///
/// # Panics
/// If the frame body exceeds `u32::MAX` bytes, which no configured maximum
/// frame size allows.
pub fn encode(frame: &Frame, out: &mut Vec<u8>) {
    let start = write_unsealed(frame, frame.header.version, out);
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// Writes prefix, header and body (length patched in) and returns where the
/// frame starts, so the caller can seal everything after it.
fn write_unsealed(frame: &Frame, version: u8, out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&MAGIC);
    out.push(version);
    out.extend_from_slice(&[0; 4]); // length, patched below
    put_u64(out, frame.header.cluster);
    put_u64(out, frame.header.from);
    put_u64(out, frame.header.to);
    put_u64(out, frame.header.term);
    encode_message(&frame.message, out);
    let body_len = out.len() - start - PREFIX_LEN;
    let body_len = u32::try_from(body_len).expect("frame body larger than 4 GiB");
    out[start + 3..start + PREFIX_LEN].copy_from_slice(&body_len.to_be_bytes());
    start
}

/// [`encode`] into a fresh buffer.
pub fn encode_to_vec(frame: &Frame) -> Vec<u8> {
    let mut out = Vec::new();
    encode(frame, &mut out);
    out
}

/// Decodes one unkeyed frame from the front of `buf`; returns it and the
/// number of bytes consumed. Never reads a length larger than `max_frame`
/// (the whole frame, prefix and trailer included) before rejecting it.
///
/// `Incomplete` means every byte seen so far is consistent with a valid
/// frame; any other error means the bytes can never become one. A keyed
/// frame is refused with [`DecodeError::UnexpectedMac`]: without the key it
/// cannot be checked.
pub fn decode(buf: &[u8], max_frame: usize) -> Result<(Frame, usize), DecodeError> {
    decode_keyed(buf, max_frame, None)
}

/// The sender id a frame claims, read from its header before any check
/// (`None` until the header is in). Lets a receiver refuse a sender at the
/// wrong address before it spends a MAC computation on the frame.
pub fn peek_sender(buf: &[u8]) -> Option<NodeId> {
    let from = buf.get(PREFIX_LEN + 8..PREFIX_LEN + 16)?;
    Some(u64::from_be_bytes(from.try_into().ok()?))
}

/// [`decode`] for a node with or without a cluster key: with `key`, only
/// keyed frames whose MAC matches are accepted; without, only unkeyed
/// frames whose crc32 matches.
pub fn decode_keyed(
    buf: &[u8],
    max_frame: usize,
    key: Option<&ClusterKey>,
) -> Result<(Frame, usize), DecodeError> {
    let magic_seen = buf.len().min(MAGIC.len());
    if buf[..magic_seen] != MAGIC[..magic_seen] {
        return Err(DecodeError::BadMagic);
    }
    if buf.len() < 3 {
        return Err(DecodeError::Incomplete { needed: PREFIX_LEN });
    }
    let version = buf[2];
    let trailer_len = match (version, key) {
        (PROTOCOL_VERSION, None) => TRAILER_LEN,
        (PROTOCOL_VERSION, Some(_)) => return Err(DecodeError::MissingMac),
        (KEYED_VERSION, Some(_)) => MAC_LEN,
        (KEYED_VERSION, None) => return Err(DecodeError::UnexpectedMac),
        (other, _) => return Err(DecodeError::UnsupportedVersion(other)),
    };
    if buf.len() < PREFIX_LEN {
        return Err(DecodeError::Incomplete { needed: PREFIX_LEN });
    }
    let body_len = u32::from_be_bytes([buf[3], buf[4], buf[5], buf[6]]) as usize;
    let total = PREFIX_LEN
        .saturating_add(body_len)
        .saturating_add(trailer_len);
    if total > max_frame {
        return Err(DecodeError::TooLarge {
            len: total,
            max: max_frame,
        });
    }
    if total < PREFIX_LEN + HEADER_LEN + 1 + trailer_len {
        return Err(DecodeError::Malformed("frame shorter than header"));
    }
    if buf.len() < total {
        return Err(DecodeError::Incomplete { needed: total });
    }
    let checked = &buf[..total - trailer_len];
    let trailer = &buf[total - trailer_len..total];
    match key {
        Some(key) => {
            if !key.verify(checked, trailer) {
                return Err(DecodeError::BadMac);
            }
        }
        None => {
            let expected = u32::from_be_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
            if crc32fast::hash(checked) != expected {
                return Err(DecodeError::BadChecksum);
            }
        }
    }
    let mut reader = Reader::new(&checked[PREFIX_LEN..], max_frame);
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

mod body;
mod keyed;
#[cfg(test)]
mod tests;
