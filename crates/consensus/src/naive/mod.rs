//! The four incorrect strategies (work in progress).
pub(crate) mod timeout_failover {
    use crate::{Config, ConfigError, Restored};
    pub(crate) fn new(
        _: Config,
        _: Restored,
        _: u64,
        _: u64,
    ) -> Result<crate::safe::SafeReplica, ConfigError> {
        Err(ConfigError::Invalid {
            field: "mode",
            reason: "timeout-failover is not implemented yet".into(),
        })
    }
}
pub(crate) use timeout_failover as unenforced_quorum;
pub(crate) use timeout_failover as one_way_quorum;
pub(crate) use timeout_failover as no_fencing;
