//! The public replica: one of five strategies behind the same API.
use wire::{Message, NodeId, Term};

use crate::naive::{self, NaiveReplica};
use crate::replica_core::Core;
use crate::safe::SafeReplica;
use crate::{
    Action, ClientRequest, Config, ConfigError, Input, IoSeq, RequestId, Restored, Status,
};

/// What every strategy implements; [`Replica`] forwards to one of them.
/// Every strategy takes its inputs the same way: the clock first, then the
/// one handler for the kind of input.
pub(crate) trait Strategy: Send {
    fn core_mut(&mut self) -> &mut Core;
    fn on_tick(&mut self);
    fn on_message(&mut self, from: NodeId, term: Term, message: Message);
    fn on_client(&mut self, id: RequestId, request: ClientRequest);
    fn on_persisted(&mut self, upto: IoSeq);
    fn status(&self) -> Status;

    fn step(&mut self, now: u64, input: Input) {
        self.core_mut().advance_clock(now);
        match input {
            Input::Tick => self.on_tick(),
            Input::Message {
                from,
                term,
                message,
            } => self.on_message(from, term, message),
            Input::Client { id, request } => self.on_client(id, request),
            Input::Persisted { upto } => self.on_persisted(upto),
        }
    }

    fn take_actions(&mut self) -> Vec<Action> {
        self.core_mut().take_actions()
    }
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
