//! Benchmarks of real clusters in a netns mesh, splitnode next to etcd:
//! the harness behind the root `benches/quorum_write.rs` and
//! `benches/failover.rs`, and `splitlab bench sweep`.
//!
//! - [`system`]: the two systems under test, their timing profiles and
//!   their client API (writes, leadership views, fsync counters).
//! - [`cluster`]: [`cluster::BenchLab`], a netlab mesh as a drop guard, with
//!   the cluster running in it.
//! - [`load`]: client threads in the control namespace (sequential and
//!   concurrent write patterns).
//! - [`failover`]: one leader-isolation measurement and its targets.
//! - [`floor`]: the physical floor (fsync, two fsyncs at once, namespace
//!   round trip) each write figure is divided by.
//! - [`table`]: side-by-side tables (pure); statistics and plots come from
//!   the `figures` crate, HTTP and splitnode's command line from `client`.
//! - [`sweep`]: `splitlab bench sweep`.
//! - [`netns`]: threads inside namespaces.
//!
//! Every client socket is created on a thread that entered a lab namespace
//! (the control namespace), so no bench packet leaves from the host
//! namespace.
#![warn(missing_docs, unreachable_pub)]

pub mod cluster;
pub mod failover;
pub mod floor;
pub mod load;
pub mod netns;
pub mod sweep;
pub mod system;
pub mod table;

pub use client::find_splitnode;
