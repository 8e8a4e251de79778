//! `timeout-failover` (incorrect approach #1): every replica that stops
//! hearing the primary for an election timeout promotes itself, asking
//! nobody. Writes are acknowledged as soon as the primary's own disk has
//! them. In a partition every side elects its own primary.
use super::engine::NaiveReplica;
use super::{OnSilence, Policy, View};
use crate::action::Rejection;
use crate::{Config, ConfigError, Restored};

pub(crate) struct TimeoutFailover;

impl Policy for TimeoutFailover {
    fn on_silence(&self, _view: View) -> OnSilence {
        OnSilence::Promote
    }

    fn admit_write(&self, _view: View) -> Result<(), Rejection> {
        Ok(())
    }

    fn keeps_leading(&self, _view: View) -> bool {
        true
    }

    /// After a heal, the primary with the older term defers; by then both
    /// sides have acknowledged conflicting writes.
    fn yields_to_newer_term(&self) -> bool {
        true
    }

    fn accepts_append(&self, ours: wire::Term, theirs: wire::Term) -> bool {
        theirs >= ours
    }

    fn logs_quorum(&self) -> bool {
        false
    }
}

pub(crate) fn new(
    config: Config,
    restored: Restored,
    seed: u64,
    now: u64,
) -> Result<NaiveReplica<TimeoutFailover>, ConfigError> {
    NaiveReplica::new(TimeoutFailover, config, restored, seed, now)
}
