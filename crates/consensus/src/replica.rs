//! The public replica: one of five strategies behind the same API.
use crate::naive::{self, NaiveReplica};
use crate::safe::SafeReplica;
use crate::{Action, Config, ConfigError, Input, Restored, Status};

/// What every strategy implements; [`Replica`] forwards to one of them.
pub(crate) trait Strategy: Send {
    fn step(&mut self, now: u64, input: Input);
    fn take_actions(&mut self) -> Vec<Action>;
    fn status(&self) -> Status;
}

/// One replica's state machine. Wraps the strategy selected by
/// [`Config::mode`]; every strategy is driven through the same API.
pub struct Replica {
    strategy: Box<dyn Strategy>,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Replica")
            .field("status", &self.strategy.status())
            .finish()
    }
}

impl Replica {
    /// Builds a replica from recovered state. `seed` feeds its ChaCha RNG
    /// (election timeouts); `now` is the current time on its own clock.
    /// Fails if the configuration is invalid (see [`Config::validate`]) or
    /// the restored snapshot cannot be decoded.
    pub fn new(
        config: Config,
        restored: Restored,
        seed: u64,
        now: u64,
    ) -> Result<Replica, ConfigError> {
        config.validate()?;
        let strategy: Box<dyn Strategy> = match naive::Policy::for_mode(config.mode) {
            None => Box::new(SafeReplica::new(config, restored, seed, now)?),
            Some(policy) => Box::new(NaiveReplica::new(policy, config, restored, seed, now)?),
        };
        Ok(Replica { strategy })
    }

    /// Feeds one input at `now` (nanoseconds on the replica's own clock).
    pub fn step(&mut self, now: u64, input: Input) {
        self.strategy.step(now, input);
    }

    /// Drains the actions produced since the last call, in order.
    pub fn take_actions(&mut self) -> Vec<Action> {
        self.strategy.take_actions()
    }

    /// The replica's state as of its last step, for `/status` and metrics.
    pub fn status(&self) -> Status {
        self.strategy.status()
    }
}
