//! How numbers become figures people read, shared by the run report, the
//! bench sweep, the root benches and netlab's link probe. Pure: no I/O.
//!
//! - [`stats`]: the one percentile definition (nearest rank) and latency
//!   summaries; p99 means the same statistic everywhere in the workspace.
//! - [`svg`]: the one SVG writer (document frame, escaping, a line plot).
//! - [`stamp`]: UTC run stamps and RFC 3339 times (through `jiff`).
#![warn(missing_docs, unreachable_pub)]

pub mod stamp;
pub mod stats;
pub mod svg;

pub use stats::{Summary, ms, percentile};
