//! What the four incorrect strategies vary, as one table: a [`Policy`] per
//! strategy, read by the shared engine. Each strategy is a row of settings,
//! not a type, so the designs can be compared side by side.
use wire::Term;

use crate::Mode;
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

/// The settings one incorrect strategy chooses; everything else is the
/// shared engine's.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    /// What a replica does when the primary goes silent (subject to
    /// `needs_heard_quorum`).
    silence: OnSilence,
    /// Promote, admit writes and keep leading only while heartbeats from a
    /// majority are *received*; otherwise wait, reject with `NoQuorum`, or
    /// step down.
    needs_heard_quorum: bool,
    /// Does a primary step down when it learns of a newer term?
    yields_to_newer_term: bool,
    /// Does a replica refuse appends from a primary of an older term?
    fences_appends: bool,
    /// Emit `QuorumLost`/`QuorumRegained` as the heard count changes.
    logs_quorum: bool,
}

/// `timeout-failover` (incorrect approach #1): every replica that stops
/// hearing the primary for an election timeout promotes itself, asking
/// nobody. Writes are acknowledged as soon as the primary's own disk has
/// them. In a partition every side elects its own primary. After a heal, the
/// primary with the older term defers; by then both sides have acknowledged
/// conflicting writes.
const TIMEOUT_FAILOVER: Policy = Policy {
    silence: OnSilence::Promote,
    needs_heard_quorum: false,
    yields_to_newer_term: true,
    fences_appends: true,
    logs_quorum: false,
};

/// `unenforced-quorum` (incorrect approach #2): replicas count the peers
/// they hear and log `QuorumLost` when a majority is gone, but the check
/// is informational. A primary without quorum promotes itself and keeps
/// acknowledging writes anyway ("no quorum, but writing anyway"), exactly
/// like #1 but with reassuring logs.
const UNENFORCED_QUORUM: Policy = Policy {
    logs_quorum: true,
    ..TIMEOUT_FAILOVER
};

/// `one-way-quorum` (incorrect approach #3): every replica broadcasts
/// heartbeats, and quorum is the number of heartbeats *received*. There is
/// no vote and no split detection: a primary keeps leading while it hears
/// a majority, whoever else claims to lead, and ignores another primary's
/// newer term. Symmetric partitions look safe; an asymmetric link does not.
/// If A's messages to B are lost, B stops hearing the primary A, still
/// hears C, counts 2 of 3 and promotes itself, while A still hears both B
/// and C and keeps its crown: two primaries.
const ONE_WAY_QUORUM: Policy = Policy {
    silence: OnSilence::Promote,
    needs_heard_quorum: true,
    yields_to_newer_term: false,
    fences_appends: true,
    logs_quorum: true,
};

/// `no-fencing` (incorrect approach #4): primaries are elected by a real
/// majority vote and carry a generation number, but nothing fences the old
/// one: a deposed primary never steps down and keeps acknowledging writes,
/// and replicas accept appends from any generation (the generation is
/// carried but never compared), so an old primary can overwrite what the
/// new one wrote.
const NO_FENCING: Policy = Policy {
    silence: OnSilence::Campaign,
    needs_heard_quorum: false,
    yields_to_newer_term: false,
    fences_appends: false,
    logs_quorum: false,
};

impl Policy {
    /// The policy of an incorrect strategy; `None` for [`Mode::Safe`],
    /// which does not use the naive engine.
    pub(crate) fn for_mode(mode: Mode) -> Option<Policy> {
        match mode {
            Mode::Safe => None,
            Mode::TimeoutFailover => Some(TIMEOUT_FAILOVER),
            Mode::UnenforcedQuorum => Some(UNENFORCED_QUORUM),
            Mode::OneWayQuorum => Some(ONE_WAY_QUORUM),
            Mode::NoFencing => Some(NO_FENCING),
        }
    }

    /// What a replica does when the primary has been silent for a timeout.
    pub(crate) fn on_silence(&self, view: View) -> OnSilence {
        if self.needs_heard_quorum && !view.heard_quorum() {
            OnSilence::Wait
        } else {
            self.silence
        }
    }

    /// Checked when a write arrives at a primary.
    pub(crate) fn admit_write(&self, view: View) -> Result<(), Rejection> {
        if self.needs_heard_quorum && !view.heard_quorum() {
            Err(Rejection::NoQuorum)
        } else {
            Ok(())
        }
    }

    /// Checked on every tick while primary.
    pub(crate) fn keeps_leading(&self, view: View) -> bool {
        !self.needs_heard_quorum || view.heard_quorum()
    }

    /// Does a primary step down when it learns of a newer term?
    pub(crate) fn yields_to_newer_term(&self) -> bool {
        self.yields_to_newer_term
    }

    /// Does a replica accept an append from a primary of `theirs` term?
    pub(crate) fn accepts_append(&self, ours: Term, theirs: Term) -> bool {
        !self.fences_appends || theirs >= ours
    }

    /// Emit `QuorumLost`/`QuorumRegained` as the heard count changes.
    pub(crate) fn logs_quorum(&self) -> bool {
        self.logs_quorum
    }
}
