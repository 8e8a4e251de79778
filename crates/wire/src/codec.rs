//! Frame codec (to be implemented: see crate docs for the layout).
use crate::message::{Message, NodeId, Term};

pub const PROTOCOL_VERSION: u8 = 1;

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

/// Appends the encoded frame to `out`.
pub fn encode(_frame: &Frame, _out: &mut Vec<u8>) {
    todo!("implemented by the wire codec task")
}

pub fn encode_to_vec(frame: &Frame) -> Vec<u8> {
    let mut out = Vec::new();
    encode(frame, &mut out);
    out
}

/// Decodes one frame from the front of `buf`; returns it and the number of
/// bytes consumed. Never reads a length larger than `max_frame` before
/// rejecting it.
pub fn decode(_buf: &[u8], _max_frame: usize) -> Result<(Frame, usize), DecodeError> {
    todo!("implemented by the wire codec task")
}
