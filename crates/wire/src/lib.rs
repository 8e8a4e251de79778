//! splitlab wire format: the peer messages and the frame codec.
//!
//! Pure bytes-in, frames-out (no sockets, no tokio). A frame is
//!
//! ```text
//! magic "SL" (2) | version (1) | body length (4, BE) | header + body | crc32 (4)
//! ```
//!
//! and every frame carries protocol version, cluster id, sender, receiver and
//! the sender's term. With a cluster key ([`ClusterKey`]) the frame is keyed:
//! version [`KEYED_VERSION`] and a 32-byte keyed BLAKE3 MAC over the whole
//! frame in place of the crc32 ([`encode_keyed`], [`decode_keyed`]). [`decode`] never panics, never allocates more than the
//! configured maximum frame size, and tells [`DecodeError::Incomplete`] (wait
//! for more bytes) apart from a malformed frame (drop it, close a stream).

#![warn(missing_docs, unreachable_pub)]

mod chunk;
mod codec;
mod message;

pub use chunk::{SnapshotChunk, snapshot_checksum};
pub use codec::{
    ClusterKey, DEFAULT_MAX_FRAME, DecodeError, Frame, HEADER_LEN, Header, KEYED_VERSION, KeyError,
    MAC_LEN, MAGIC, MIN_FRAME_LEN, MIN_SECRET_LEN, PREFIX_LEN, PROTOCOL_VERSION, TRAILER_LEN,
    decode, decode_keyed, encode, encode_keyed, encode_to_vec, peek_sender,
};
pub use message::{
    AppendAnswer, Entry, Index, KvOp, LIST_SEPARATOR, Message, NodeId, Payload, Snapshot, Term,
    Token,
};
