//! Crash points for the crash-recovery tests: with the `failpoints` cargo
//! feature, `FAILPOINTS="<point>=return"` (the `fail` crate's syntax, e.g.
//! `3*off->return` for the fourth hit) makes the process exit on the spot.
//! Without the feature `crash_point!` compiles to nothing.
//!
//! Points, in the order a write meets them:
//!
//! | point | where the process dies |
//! |---|---|
//! | `meta-written` | term/vote record in the page cache, not fsynced |
//! | `meta-synced` | term/vote fsynced, `Persisted` not yet fed |
//! | `meta-compacted` | meta file replaced by its one current record |
//! | `log-truncated` | conflicting suffix cut, not fsynced |
//! | `log-appended` | entries in the page cache, not fsynced |
//! | `log-synced` | entries fsynced, `Persisted` not yet fed (no ack sent) |
//! | `commit-replied` | a write committed and its client reply sent |
//! | `snapshot-before` | pending writes fsynced, snapshot not yet written |
//! | `atomic-temp-written` | a replacement file fsynced under its `.tmp` name, not renamed |
//! | `snapshot-written` | new snapshot durable, log not yet rewritten |
//! | `snapshot-log-rewritten` | snapshot and rewritten log both durable |

/// Exit code of a process stopped at a crash point, so a test can tell the
/// injected crash from any other failure.
#[cfg(feature = "failpoints")]
pub const CRASH_EXIT_CODE: i32 = 86;

/// Stops the process at once when the named point is armed: no destructor
/// runs and no buffer is flushed, as with a `kill -9`.
#[cfg(feature = "failpoints")]
macro_rules! crash_point {
    ($name:literal) => {
        if fail::eval($name, |_| ()).is_some() {
            eprintln!("failpoint {}: exiting as if killed", $name);
            std::process::exit($crate::failpoints::CRASH_EXIT_CODE);
        }
    };
}

/// Without the `failpoints` feature a crash point is nothing.
#[cfg(not(feature = "failpoints"))]
macro_rules! crash_point {
    ($name:literal) => {};
}

pub(crate) use crash_point;

/// Reads `FAILPOINTS` from the environment (the `failpoints` feature only);
/// keep the returned guard alive for the life of the process.
#[cfg(feature = "failpoints")]
pub fn setup() -> fail::FailScenario<'static> {
    fail::FailScenario::setup()
}
