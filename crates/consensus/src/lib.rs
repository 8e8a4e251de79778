//! splitlab consensus core: a sans-IO replica that cannot split-brain, plus
//! the four incorrect strategies from the design notes behind the same
//! interface.
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
//! 2. Execute [`Action::PersistMeta`], [`Action::AppendLog`] and
//!    [`Action::InstallSnapshot`] against durable storage in order, fsync
//!    (group commit allowed), then feed [`Input::Persisted`] with the highest
//!    [`IoSeq`] made durable.
//! 3. Release an [`Action::Send`] whose `after` is `Some(seq)` only once
//!    `seq` is durable (step 2). Sends with `after: None` may go at once.
//!    This is how "persist before you answer a vote or acknowledge an entry"
//!    is expressed in the types.
//! 4. Heartbeats ([`Transport::Datagram`]) are best effort: they never carry
//!    state that needs persisting, and losing one is always safe.
//! 5. Deliver [`Action::Reply`] to the client that sent the request id.
//!    Replies for writes are emitted only after the entry is committed (a
//!    quorum persisted it) and applied.
//! 6. Record [`Action::Event`]s (stamped with the host's true monotonic time
//!    and the replica's clock) for the event log and the checker.
//! 7. Call `step(now, Input::Tick)` at least every
//!    [`Config::tick_interval_ns`]; timers fire on the first step at or after
//!    their deadline.
//!
//! After a crash the driver restores [`Restored`] from storage (anything not
//! fsynced is lost) and builds a fresh replica with [`Replica::new`].

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
mod safe;
mod status;
#[cfg(test)]
mod testkit;

pub use action::{Action, ClientReply, ClientResponse, Rejection, Transport};
pub use config::{Config, ConfigError, Mode, ReadMode};
pub use event::{Event, StepDownReason};
pub use input::{ClientRequest, Input, IoSeq, RequestId, Restored};
pub use replica::Replica;
pub use status::{PeerStatus, Role, Status};
pub use wire::{Entry, Index, KvOp, Message, NodeId, Payload, Snapshot, Term, Token};
