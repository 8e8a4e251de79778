//! The replica: public entry points (to be implemented by the consensus task).
use crate::{Action, Config, ConfigError, Input, Restored, Status};

/// One replica's state machine. Wraps the strategy selected by
/// [`Config::mode`]; every strategy is driven through the same API.
pub struct Replica {
    _private: (),
}

impl Replica {
    /// Builds a replica from recovered state. `seed` feeds its ChaCha RNG
    /// (election timeouts); `now` is the current time on its own clock.
    pub fn new(_config: Config, _restored: Restored, _seed: u64, _now: u64) -> Result<Replica, ConfigError> {
        todo!()
    }

    pub fn step(&mut self, _now: u64, _input: Input) {
        todo!()
    }

    /// Drains the actions produced since the last call, in order.
    pub fn take_actions(&mut self) -> Vec<Action> {
        todo!()
    }

    pub fn status(&self) -> Status {
        todo!()
    }
}
