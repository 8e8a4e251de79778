//! Privileged netlab tests: real namespaces, veths, nft, NFQUEUE. They share
//! kernel state, so they serialise on one mutex (CI also passes
//! `--test-threads=1`). Without root or the tools they skip with a printed
//! reason; under `CI=true` they FAIL instead so a CI machine that lost
//! its privileges is noticed.
//!
//! Every test compares the host namespace's `ip -d link`, `ip addr`,
//! `ip route` and `nft list ruleset` before and after, and checks that no
//! namespace of its run is left.
//!
//! Layout: [`support`] (fixtures), [`achieved`] (faults measured by the live
//! probes during a run), [`links`] (network faults, measured),
//! [`processes`] (process faults), [`cleanup`] (crash, clean, cancel, Ctrl-C).

mod achieved;
mod cleanup;
mod links;
mod processes;
mod support;
mod one_way;
mod watched;
