//! `one-way-quorum` (incorrect approach #3): every replica broadcasts
//! heartbeats, and quorum is the number of heartbeats *received*. There is
//! no vote and no split detection: a primary keeps leading while it hears
//! a majority, whoever else claims to lead. Symmetric partitions look safe;
//! an asymmetric link does not. If A's messages to B are lost, B stops
//! hearing the primary A, still hears C, counts 2 of 3 and promotes itself,
//! while A still hears both B and C and keeps its crown: two primaries.
use super::engine::NaiveReplica;
use super::{OnSilence, Policy, View};
use crate::action::Rejection;
use crate::{Config, ConfigError, Restored};

pub(crate) struct OneWayQuorum;

impl Policy for OneWayQuorum {
    fn on_silence(&self, view: View) -> OnSilence {
        if view.heard_quorum() {
            OnSilence::Promote
        } else {
            OnSilence::Wait
        }
    }

    fn admit_write(&self, view: View) -> Result<(), Rejection> {
        if view.heard_quorum() {
            Ok(())
        } else {
            Err(Rejection::NoQuorum)
        }
    }

    fn keeps_leading(&self, view: View) -> bool {
        view.heard_quorum()
    }

    /// No split detection: another primary's claims are ignored.
    fn yields_to_newer_term(&self) -> bool {
        false
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
) -> Result<NaiveReplica<OneWayQuorum>, ConfigError> {
    NaiveReplica::new(OneWayQuorum, config, restored, seed, now)
}
