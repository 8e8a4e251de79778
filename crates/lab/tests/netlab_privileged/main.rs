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
//! Layout: [`common`] (what the container tests share), [`support`] (fixtures), [`achieved`] (faults measured by the live
//! probes during a run), [`links`] (network faults, measured),
//! [`processes`] (process faults), [`cleanup`] (crash, clean, cancel, Ctrl-C),
//! [`one_way`] (the two one-way shapes on live TCP streams), [`watched`] (delay
//! worker health, held packets vs partitions, signals to dead processes),
//! [`fault_set`] (the fault set measured against the run's tolerances; also
//! run inside User-Mode Linux by `scripts/netem-uml.sh`).

mod achieved;
mod cleanup;
#[path = "../common/mod.rs"]
mod common;
mod fault_set;
mod links;
mod one_way;
mod processes;
mod support;
mod watched;
