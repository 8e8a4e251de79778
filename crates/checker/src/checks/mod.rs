//! One property per file (openraft `invariants/`, jepsen `checker.clj`).
pub mod bounded_elections;
pub mod convergence;
pub mod election_safety;
pub mod lease_exclusivity;
pub mod linearizability;
pub mod log_agreement;
mod minority;
pub mod minority_fails_fast;
pub mod minority_never_acknowledges;
pub mod no_lost_writes;
pub mod progress;
pub mod rejoin_without_election;
