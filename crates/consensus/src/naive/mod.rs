//! The four incorrect strategies (#1 `timeout-failover` to #4 `no-fencing`,
//! as numbered on [`crate::Mode`]): common designs that split-brain, for
//! the lab to break on purpose. They share this deliberately naive
//! primary-backup engine, which has no commit quorum at all: a primary acknowledges a write
//! once it is on its own disk, replicates best effort, and replicas apply
//! whatever they receive, overwriting their log when it disagrees. Each
//! strategy module supplies a [`Policy`] deciding the one thing the designs
//! vary: when a replica promotes itself, whether it gates writes, and whom
//! it listens to. Nothing here is shared with, or switched on in, `safe`.
//!
//! They emit the same events as `safe` (`BecameLeader`, `WriteAccepted`,
//! `WriteCommitted`, `Applied`, `Truncated`, ...), so the checker sees the
//! damage: two leaders per term, lost acknowledged writes, divergent state.
pub(crate) mod no_fencing;
pub(crate) mod one_way_quorum;
pub(crate) mod timeout_failover;
pub(crate) mod unenforced_quorum;

mod engine;

#[cfg(test)]
mod tests;

use wire::Term;

use crate::action::Rejection;

/// What a policy may look at.
#[derive(Debug, Clone, Copy)]
pub(crate) struct View {
    pub(crate) quorum: usize,
    /// Replicas whose heartbeats we *received* within `ET_min`, ourselves
    /// included. Nobody checks that they hear us.
    pub(crate) heard: usize,
}

impl View {
    pub(crate) fn heard_quorum(&self) -> bool {
        self.heard >= self.quorum
    }
}

/// What a replica does when the primary has been silent for a timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnSilence {
    /// Declare itself primary of the next term, asking nobody.
    Promote,
    /// Run a vote for the next term.
    Campaign,
    /// Keep waiting.
    Wait,
}

pub(crate) trait Policy: Send + 'static {
    fn on_silence(&self, view: View) -> OnSilence;
    /// Checked when a write arrives at a primary.
    fn admit_write(&self, view: View) -> Result<(), Rejection>;
    /// Checked on every tick while primary.
    fn keeps_leading(&self, view: View) -> bool;
    /// Does a primary step down when it learns of a newer term?
    fn yields_to_newer_term(&self) -> bool;
    /// Does a replica accept an append from a primary of `their` term?
    fn accepts_append(&self, ours: Term, theirs: Term) -> bool;
    /// Emit `QuorumLost`/`QuorumRegained` as the heard count changes.
    fn logs_quorum(&self) -> bool;
}
