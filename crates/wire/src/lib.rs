//! splitlab wire format: the peer messages and the frame codec.
//!
//! Pure bytes-in, frames-out (no sockets, no tokio). A frame is
//!
//! ```text
//! magic "SL" (2) | version (1) | body length (4, BE) | header + body | crc32 (4)
//! ```
//!
//! and every frame carries protocol version, cluster id, sender, receiver and
//! the sender's term. [`decode`] never panics, never allocates more than the
//! configured maximum frame size, and tells [`DecodeError::Incomplete`] (wait
//! for more bytes) apart from a malformed frame (drop it, close a stream).

#![warn(missing_docs, unreachable_pub)]

mod codec;
mod message;

pub use codec::{
    DEFAULT_MAX_FRAME, DecodeError, Frame, HEADER_LEN, Header, MAGIC, MIN_FRAME_LEN, PREFIX_LEN,
    PROTOCOL_VERSION, TRAILER_LEN, decode, encode, encode_to_vec,
};
pub use message::{
    Entry, Index, KvOp, LIST_SEPARATOR, Message, NodeId, Payload, Snapshot, Term, Token,
};
