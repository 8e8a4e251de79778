//! The crate's error type.

use crate::caps::Unsupported;
use crate::naming::RunId;
use crate::topology::TopologyError;
use std::io;

/// Everything that can go wrong building, faulting or tearing down a lab.
#[derive(Debug, thiserror::Error)]
pub enum NetlabError {
    /// The lab needs root.
    #[error(
        "splitlab must run as root (namespaces, veths and mounts need CAP_NET_ADMIN and CAP_SYS_ADMIN)"
    )]
    NotRoot,
    /// A userspace tool is missing.
    #[error("{tool} not found: install the Debian package {package} (scripts/setup.sh)")]
    MissingTool {
        /// Binary name.
        tool: &'static str,
        /// Debian package.
        package: &'static str,
    },
    /// The topology is invalid.
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// A fault refers to unknown nodes/links or has bad values.
    #[error("invalid fault: {0}")]
    InvalidFault(String),
    /// No backend on this machine can apply a fault.
    #[error(transparent)]
    Unsupported(#[from] Unsupported),
    /// A run with this id already has a journal or namespaces.
    #[error(
        "run {0} already exists (journal or sl-{0}-* namespaces); pick another id or `splitlab clean --run {0}`"
    )]
    RunExists(RunId),
    /// No journal for this run.
    #[error("no run {0} in the journal directory")]
    NoSuchRun(RunId),
    /// A plan step failed.
    #[error("step `{step}`: {source}")]
    Step {
        /// The step.
        step: String,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// Another I/O failure, with context.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// Bring-up was interrupted (Ctrl-C); everything created was removed.
    #[error("interrupted; the partial lab was torn down")]
    Interrupted,
    /// No process is recorded for a node.
    #[error("node {0} has no process started by this lab")]
    NoProcess(String),
    /// A signal fault aimed at a process that is no longer running (or that
    /// did not reach the state the signal asks for): the fault would be a
    /// silent no-op, so it is refused.
    #[error("cannot {signal} node {node}: {why}")]
    SignalNotApplied {
        /// Node name.
        node: String,
        /// The signal, as a verb ("kill", "stop").
        signal: &'static str,
        /// What happened instead ("its process already exited (exit status: 0)").
        why: String,
    },
}

impl NetlabError {
    /// Wraps an I/O error with context.
    pub fn io(context: impl Into<String>, source: io::Error) -> NetlabError {
        NetlabError::Io {
            context: context.into(),
            source,
        }
    }
}
