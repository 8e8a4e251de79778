//! Keyed frames: the cluster key and the MAC that replaces the crc32 trailer.
//!
//! A keyed frame (version [`KEYED_VERSION`]) has the unkeyed layout with a
//! 32-byte keyed BLAKE3 MAC instead of the crc32. The MAC covers every byte
//! before it (magic, version, length, cluster, sender, receiver, term, body),
//! so a frame cannot be re-addressed, re-attributed or re-termed without the
//! key. What it does not stop is a verbatim replay: a replayed genuine frame
//! names the same sender, receiver and term as when it was first sent, so the
//! receiver sees a duplicate of a message it already had, which the protocol
//! tolerates (peers retransmit and reorder anyway); it cannot lift anyone's
//! term above what a member really reached.
use super::{Frame, PREFIX_LEN, write_unsealed};

/// The frame version that carries a MAC instead of a crc32.
pub const KEYED_VERSION: u8 = 2;
/// Length of the MAC trailer of a keyed frame.
pub const MAC_LEN: usize = 32;
/// The shortest secret accepted as a cluster key (128 bits).
pub const MIN_SECRET_LEN: usize = 16;

/// Separates this use of the secret from any other (BLAKE3 `derive_key`).
const KEY_CONTEXT: &str = "splitlab 2026-12 peer frame MAC v1";

/// The cluster key: a 32-byte BLAKE3 key derived from the key file's secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterKey([u8; 32]);

/// Why a secret cannot become a [`ClusterKey`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Fewer than [`MIN_SECRET_LEN`] bytes once surrounding whitespace is trimmed.
    #[error("cluster key secret has {0} bytes; at least {MIN_SECRET_LEN} are needed")]
    TooShort(usize),
}

impl ClusterKey {
    /// Derives the key from a secret (a key file's contents). Leading and
    /// trailing ASCII whitespace is ignored, so `echo secret > file` and an
    /// editor's final newline give the same key.
    pub fn from_secret(secret: &[u8]) -> Result<ClusterKey, KeyError> {
        let secret = secret.trim_ascii();
        if secret.len() < MIN_SECRET_LEN {
            return Err(KeyError::TooShort(secret.len()));
        }
        Ok(ClusterKey(blake3::derive_key(KEY_CONTEXT, secret)))
    }

    fn mac(&self, bytes: &[u8]) -> blake3::Hash {
        blake3::keyed_hash(&self.0, bytes)
    }

    /// Whether `mac` is this key's MAC of `bytes` (constant-time compare).
    pub(super) fn verify(&self, bytes: &[u8], mac: &[u8]) -> bool {
        let Ok(mac) = <[u8; MAC_LEN]>::try_from(mac) else {
            return false;
        };
        // blake3::Hash's PartialEq is constant-time.
        self.mac(bytes) == mac
    }
}

impl std::fmt::Debug for ClusterKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material (configs are logged).
        formatter.write_str("ClusterKey(..)")
    }
}

/// Appends `frame` to `out`: keyed (version [`KEYED_VERSION`], MAC trailer)
/// with a key, else exactly what [`super::encode`] writes.
pub fn encode_keyed(frame: &Frame, key: Option<&ClusterKey>, out: &mut Vec<u8>) {
    let Some(key) = key else {
        super::encode(frame, out);
        return;
    };
    let start = write_unsealed(frame, KEYED_VERSION, out);
    debug_assert!(out.len() - start > PREFIX_LEN);
    let mac = key.mac(&out[start..]);
    out.extend_from_slice(mac.as_bytes());
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::codec::{
        DecodeError, Header, PROTOCOL_VERSION, decode, decode_keyed, encode_to_vec,
    };
    use crate::message::Message;

    const MAX: usize = 1 << 20;

    fn key(secret: &str) -> ClusterKey {
        ClusterKey::from_secret(secret.as_bytes()).expect("long enough")
    }

    fn frame(from: u64, to: u64, term: u64) -> Frame {
        Frame {
            header: Header {
                version: KEYED_VERSION,
                cluster: 0xC1,
                from,
                to,
                term,
            },
            message: Message::Heartbeat { seq: 3, commit: 2 },
        }
    }

    fn sealed(frame: &Frame, key: &ClusterKey) -> Vec<u8> {
        let mut out = Vec::new();
        encode_keyed(frame, Some(key), &mut out);
        out
    }

    #[test]
    fn a_keyed_frame_round_trips_under_the_same_key() {
        let key = key("sixteen-byte-key-0123");
        let original = frame(1, 2, 9);
        let bytes = sealed(&original, &key);
        assert_eq!(bytes[2], KEYED_VERSION);
        assert_eq!(
            bytes.len(),
            encode_to_vec(&frame(1, 2, 9)).len() - crate::TRAILER_LEN + MAC_LEN
        );
        assert_eq!(
            decode_keyed(&bytes, MAX, Some(&key)),
            Ok((original, bytes.len()))
        );
    }

    #[test]
    fn rejection_paths_name_their_reason() {
        let ours = key("our cluster secret, 32 bytes....");
        let theirs = key("another cluster's secret........");
        let keyed = sealed(&frame(1, 2, 9), &ours);
        let mut unkeyed_frame = frame(1, 2, 9);
        unkeyed_frame.header.version = PROTOCOL_VERSION;
        let unkeyed = encode_to_vec(&unkeyed_frame);
        let cases: Vec<(&str, Vec<u8>, Option<&ClusterKey>, DecodeError)> = vec![
            (
                "no MAC, key configured",
                unkeyed.clone(),
                Some(&ours),
                DecodeError::MissingMac,
            ),
            (
                "wrong key",
                sealed(&frame(1, 2, 9), &theirs),
                Some(&ours),
                DecodeError::BadMac,
            ),
            (
                "MAC, no key configured",
                keyed.clone(),
                None,
                DecodeError::UnexpectedMac,
            ),
        ];
        for (name, bytes, key, expected) in cases {
            assert_eq!(
                decode_keyed(&bytes, MAX, key).map(|_| ()),
                Err(expected),
                "{name}"
            );
        }
        // An unkeyed node still decodes unkeyed frames exactly as before.
        assert_eq!(decode(&unkeyed, MAX).map(|(f, _)| f), Ok(unkeyed_frame));
    }

    #[test]
    fn the_mac_covers_sender_receiver_and_term() {
        let key = key("our cluster secret, 32 bytes....");
        let genuine = sealed(&frame(1, 2, 9), &key);
        // Re-address, re-attribute or re-term a genuine frame (header
        // offsets: cluster 7..15, from 15..23, to 23..31, term 31..39).
        for (name, offset, value) in [
            ("sender", 15, 3u64),
            ("receiver", 23, 3),
            ("term", 31, 1_000),
        ] {
            let mut forged = genuine.clone();
            forged[offset..offset + 8].copy_from_slice(&value.to_be_bytes());
            assert_eq!(
                decode_keyed(&forged, MAX, Some(&key)).map(|_| ()),
                Err(DecodeError::BadMac),
                "{name}"
            );
        }
    }

    #[test]
    fn the_claimed_sender_is_readable_before_the_frame_is_complete() {
        let bytes = sealed(&frame(4, 2, 9), &key("0123456789abcdef"));
        assert_eq!(crate::peek_sender(&bytes[..22]), None);
        assert_eq!(crate::peek_sender(&bytes[..23]), Some(4));
    }

    #[test]
    fn secrets_are_trimmed_and_must_be_long_enough() {
        assert_eq!(key("0123456789abcdef\n"), key("  0123456789abcdef"));
        assert_ne!(key("0123456789abcdef"), key("0123456789abcdeF"));
        assert_eq!(
            ClusterKey::from_secret(b"short secret\n"),
            Err(KeyError::TooShort(12))
        );
        assert_eq!(format!("{:?}", key("0123456789abcdef")), "ClusterKey(..)");
    }

    #[test]
    fn every_truncation_of_a_keyed_frame_is_incomplete() {
        let key = key("0123456789abcdef");
        let bytes = sealed(&frame(1, 2, 9), &key);
        for cut in 0..bytes.len() {
            assert!(
                matches!(decode_keyed(&bytes[..cut], MAX, Some(&key)), Err(DecodeError::Incomplete { needed }) if needed > cut),
                "cut at {cut}"
            );
        }
    }

    proptest! {
        #[test]
        fn every_single_byte_change_breaks_the_mac(position in 0usize..128, flip in 1u8..=255) {
            let key = key("0123456789abcdef");
            let bytes = sealed(&frame(1, 2, 9), &key);
            let mut corrupted = bytes.clone();
            let position = position % bytes.len();
            corrupted[position] ^= flip;
            prop_assert!(decode_keyed(&corrupted, MAX, Some(&key)).is_err());
        }
    }
}
