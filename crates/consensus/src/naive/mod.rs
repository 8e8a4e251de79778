//! The four incorrect strategies (#1 `timeout-failover` to #4 `no-fencing`,
//! as numbered on [`crate::Mode`]): common designs that split-brain, for
//! the lab to break on purpose. They share this deliberately naive
//! primary-backup engine, which has no commit quorum at all: a primary acknowledges a write
//! once it is on its own disk, replicates best effort, and replicas apply
//! whatever they receive, overwriting their log when it disagrees. Each
//! strategy is a row of [`Policy`] settings deciding the one thing the designs
//! vary: when a replica promotes itself, whether it gates writes, and whom
//! it listens to. Nothing here is shared with, or switched on in, `safe`;
//! both engines build their actions on the same `replica_core::Core`
//! (state, sends, votes, applying), which decides nothing.
//!
//! They emit the same events as `safe` (`BecameLeader`, `WriteAccepted`,
//! `WriteCommitted`, `Applied`, `Truncated`, ...), so the checker sees the
//! damage: two leaders per term, lost acknowledged writes, divergent state.
mod engine;
mod policy;

#[cfg(test)]
mod tests;

pub(crate) use engine::NaiveReplica;
pub(crate) use policy::Policy;
