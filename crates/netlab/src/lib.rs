//! netlab: network-namespace topologies, links and kernel fault backends for
//! splitlab. Pure model → pure plan → impure apply: everything up to the
//! kernel calls is plain data and unit-tested without root.
//!
//! Map of the code (start with `topology`, then `plan`, then `lab`):
//! - [`topology`]: TOML topology files, validated with file:line:column errors.
//! - [`naming`]: run ids, namespace/interface/table names, addresses.
//! - [`mod@plan`]: PURE topology → ordered kernel steps (`splitlab plan` prints it).
//! - [`shaping`], [`grudge`], [`fault`]: faults as data and the state they build
//!   (partitions are the shared [`faults::Grudge`] over node names).
//! - [`render`] + [`nft`] + [`iptables`] + [`tc`]: PURE state → per-namespace
//!   nft table / NFQUEUE rules / qdiscs, with backend choice by [`caps`]
//!   ([`backend`] says in words which backend serves a fault).
//! - [`netns`]: create/delete namespaces, run code on threads inside them.
//! - [`rtnl`]: executes plan steps over rtnetlink on a private thread.
//! - [`lab`]: the live lab (`Lab::up`, `attach`, `teardown`), with reaching
//!   nodes, processes, fault application and delay workers in its submodules.
//! - [`nfqueue`]: the NFQUEUE delay worker (a helper process).
//! - [`journal`], [`clean`]: on-disk run records and crash cleanup.
//! - [`disk`]: per-node tmpfs data disks for disk faults (`disk-full`);
//!   [`fusedisk`]: the FUSE passthrough over them that fails or delays
//!   fsync (`fsync-error`, `disk-slow`), served by a hidden helper mode.
//! - [`probe`]: measuring what each directed link actually does.
//! - [`liveprobe`]: the probe process beside every run, and its records;
//!   [`counters`]: the rules' and qdiscs' own counters, read back.
//! - [`doctor`]: capability probe and `splitlab doctor` checks.
//!
//! ```text
//! Topology ──plan()──► Plan ──Lab::up──► namespaces+veths+routes ──► Lab
//! Fault ──NetState::apply──► NetState ──render(caps)──► NsConfig per node
//!        ──Lab::apply──► nft -f / iptables-restore / tc / delay workers
//! ```
#![warn(missing_docs, unreachable_pub)]

pub mod backend;
pub mod caps;
pub mod clean;
pub mod counters;
pub mod disk;
pub mod doctor;
pub mod error;
pub mod fault;
pub mod fusedisk;
pub mod grudge;
pub mod iptables;
pub mod journal;
pub mod lab;
pub mod liveprobe;
pub mod naming;
pub mod netns;
pub mod nfqueue;
pub mod nft;
pub mod plan;
pub mod probe;
pub mod process;
pub mod render;
pub mod rtnl;
pub mod shaping;
pub mod tc;
pub mod tools;
pub mod topology;

pub use caps::{Capabilities, Unsupported};
pub use error::NetlabError;
pub use fault::{Fault, NetState};
pub use fusedisk::{FUSE_DISK_ARG, fuse_disk_main};
pub use grudge::Grudge;
pub use lab::{Lab, LabOptions, Target};
pub use liveprobe::{LIVE_PROBE_ARG, LiveProbes, live_probe_main};
pub use naming::RunId;
pub use netns::NetnsThread;
pub use nfqueue::{DELAY_WORKER_ARG, WorkerStats, delay_worker_main};
pub use plan::{Plan, plan};
pub use process::{ProcessSignal, ProcessSpec};
pub use shaping::{LinkShaping, Planes, Ports};
pub use topology::{Topology, TopologyError};
