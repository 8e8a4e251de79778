//! `unenforced-quorum` (incorrect approach #2): replicas count the peers
//! they hear and log `QuorumLost` when a majority is gone, but the check
//! is informational. A primary without quorum promotes itself and keeps
//! acknowledging writes anyway, exactly like #1 but with reassuring logs.
use super::engine::NaiveReplica;
use super::{OnSilence, Policy, View};
use crate::action::Rejection;
use crate::{Config, ConfigError, Restored};

pub(crate) struct UnenforcedQuorum;

impl Policy for UnenforcedQuorum {
    fn on_silence(&self, _view: View) -> OnSilence {
        // The quorum state was logged by the engine; it decides nothing.
        OnSilence::Promote
    }

    fn admit_write(&self, _view: View) -> Result<(), Rejection> {
        // "No quorum, but writing anyway."
        Ok(())
    }

    fn keeps_leading(&self, _view: View) -> bool {
        true
    }

    fn yields_to_newer_term(&self) -> bool {
        true
    }

    fn accepts_append(&self, ours: wire::Term, theirs: wire::Term) -> bool {
        theirs >= ours
    }

    fn logs_quorum(&self) -> bool {
        true
    }
}

pub(crate) fn new(
    config: Config,
    restored: Restored,
    seed: u64,
    now: u64,
) -> Result<NaiveReplica<UnenforcedQuorum>, ConfigError> {
    NaiveReplica::new(UnenforcedQuorum, config, restored, seed, now)
}
