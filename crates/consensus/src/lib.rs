//! splitlab consensus core: a sans-IO replica that cannot split-brain, plus
//! four deliberately incorrect strategies (the common designs that do, see
//! [`Mode`]) behind the same interface.
//!
//! Inputs go in through [`Replica::step`] together with the current time
//! (nanoseconds on the replica's own, possibly skewed, monotonic clock);
//! [`Action`]s come out of [`Replica::take_actions`]. The core never reads a
//! clock, never draws from a thread RNG and never performs I/O, so the
//! deterministic simulator (`crates/sim`) and the tokio node (`crates/node`)
//! run exactly the same code.
//!
//! # Driver contract
//!
//! A driver (the simulator or the node) must, after every `step`:
//!
//! 1. Drain [`Replica::take_actions`] and handle the actions **in order**.
//! 2. Execute [`Write::Meta`], [`Write::Append`] and
//!    [`Write::InstallSnapshot`] against durable storage in order, fsync
//!    (group commit allowed), then feed [`Input::Persisted`] with the highest
//!    [`IoSeq`] made durable. An `InstallSnapshot` may be followed by an
//!    `Append` with `truncate_after` and no entries: it removes a log
//!    suffix that disagreed with the snapshot.
//! 3. Release an [`Action::Send`] whose [`Outbound::after`] is `Some(seq)`
//!    only once `seq` is durable (step 2). Sends with `after: None` may go
//!    at once.
//!    This is how "persist before you answer a vote or acknowledge an entry"
//!    is expressed in the types. Put [`Outbound::term`] in the frame header.
//! 4. Heartbeats ([`Transport::Datagram`]) are best effort: they never carry
//!    state that needs persisting, and losing one is always safe. Stream
//!    messages may be lost too (a reset connection): the replica retransmits
//!    from the last acknowledged index every heartbeat interval.
//! 5. Deliver [`Action::Reply`] to the client that sent the request id.
//!    In `safe` mode, replies for writes are emitted only after the entry is
//!    committed (a quorum persisted it) and applied; the incorrect strategies
//!    acknowledge once the primary's own disk has it, by design. Every
//!    request gets exactly one reply, unless the replica crashes first.
//! 6. Record [`Action::Event`]s (stamped with the host's true monotonic time
//!    and the replica's clock) for the event log and the checker. Lease ends
//!    (`LeaseExtended::until`) are on the replica's clock; only the driver
//!    can map them onto the true clock.
//! 7. Call `step(now, Input::Tick)` at least every
//!    [`Config::tick_interval_ns`]; timers fire on the first step at or after
//!    their deadline. `now` must come from a monotonic clock; a `now` smaller
//!    than a previous one is treated as no time passing.
//! 8. Feed [`Input::Message`] with the frame header's sender and term, after
//!    checking version, cluster id and addressee. Messages from non-members
//!    are ignored by the replica as a second line of defence.
//! 9. [`Write::Compact`] needs no acknowledgement: the driver may store
//!    the snapshot and drop the log entries it covers whenever convenient,
//!    as long as what it restores after a crash is a snapshot plus the
//!    contiguous entries after it.
//!
//! After a crash the driver restores [`Restored`] from storage (anything not
//! fsynced is lost) and builds a fresh replica with [`Replica::new`]. A
//! restarted replica with a non-zero term refuses votes for one minimum
//! election timeout, because a lease it acknowledged before the crash may
//! still run.
//!
//! # Code map
//!
//! - [`lease`], [`quorum`]: the split-brain-critical rules as pure, public,
//!   table-tested functions.
//! - `safe/`: the correct strategy (`election`, `heartbeat` with leases and
//!   CheckQuorum, `replication`, `client`).
//! - `naive/`: the four incorrect strategies, one policy row each, on a shared
//!   naive primary-backup engine that is never used by `safe`.
//! - `replica_core`: what both engines hold and do alike (term and vote,
//!   log, KV state, the outgoing actions); `replica`'s `Strategy` takes
//!   inputs for both the same way.
//! - `log`, `kv`, `io`: the log mirror, the KV state machine with sessions
//!   and snapshots, and durable-write bookkeeping.
//!
//! Invariant ids in comments (I1 election safety, I7 fencing, I8
//! state-machine safety, I9 committed entries are never truncated, ...)
//! refer to the table in `crates/checker/README.md`.

#![warn(missing_docs, unreachable_pub)]

mod action;
mod config;
mod event;
mod input;
mod io;
mod kv;
pub mod lease;
mod log;
mod naive;
pub mod quorum;
mod replica;
mod replica_core;
mod safe;
mod sessions;
mod status;
#[cfg(test)]
mod testkit;

pub use action::{Action, ClientReply, ClientResponse, Outbound, Rejection, Transport, Write};
pub use config::{Config, ConfigError, DEFAULT_SNAPSHOT_CHUNK_BYTES, Mode, Profile, ReadMode};
pub use event::{Event, StepDownReason};
pub use input::{ClientRequest, Input, IoSeq, RequestId, Restored};
pub use replica::Replica;
pub use sessions::DEFAULT_MAX_SESSIONS;
pub use status::{PeerStatus, Role, Status};
pub use wire::{AppendAnswer, Entry, Index, KvOp, Message, NodeId, Payload, Snapshot, Term, Token};
