//! `no-fencing` (incorrect approach #4): primaries are elected by a real
//! majority vote and carry a generation number, but nothing fences the old
//! one: a deposed primary never steps down and keeps acknowledging writes,
//! and replicas accept appends from any generation, so an old primary can
//! overwrite what the new one wrote.
use super::engine::NaiveReplica;
use super::{OnSilence, Policy, View};
use crate::action::Rejection;
use crate::{Config, ConfigError, Restored};

pub(crate) struct NoFencing;

impl Policy for NoFencing {
    fn on_silence(&self, _view: View) -> OnSilence {
        OnSilence::Campaign
    }

    fn admit_write(&self, _view: View) -> Result<(), Rejection> {
        Ok(())
    }

    fn keeps_leading(&self, _view: View) -> bool {
        true
    }

    fn yields_to_newer_term(&self) -> bool {
        false
    }

    /// The generation is carried but never compared.
    fn accepts_append(&self, _ours: wire::Term, _theirs: wire::Term) -> bool {
        true
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
) -> Result<NaiveReplica<NoFencing>, ConfigError> {
    NaiveReplica::new(NoFencing, config, restored, seed, now)
}
