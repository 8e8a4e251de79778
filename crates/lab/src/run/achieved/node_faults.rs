//! Achieved versus asked for the faults that act on a node rather than a
//! link: a full data disk (the filesystem reported no space left and the
//! node fail-stopped with its exit code), failing fsync (the FUSE data disk
//! failed at least one, and the node fail-stopped), slow fsync (the FUSE
//! data disk held fsyncs back by the asked delay, within a tolerance, and
//! the node kept running) and forged peer frames (they
//! reached the members: rejected-frame counters rose, or a forged term was
//! adopted). Pure: the runner and the nemesis take the readings.
use std::collections::BTreeMap;

use netlab::fusedisk::FsyncStats;
use serde::{Deserialize, Serialize};

use super::FaultAchieved;
use crate::run::judge::FaultRecord;

/// The exit code of a splitnode fail-stop (`node::FAIL_STOP_EXIT_CODE`;
/// the lab does not link the node crate).
pub const FAIL_STOP_EXIT_CODE: i32 = 74;

/// The first term the `forge` rogue claims (`splitnode forge --term`); far
/// above any term a run reaches, so a member at or past it adopted a forgery.
pub const FORGED_TERM: u64 = 1_000_000;

/// One node's data disk during a `disk-full` fault.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DiskMeasure {
    /// Bytes the filler took.
    pub filler_bytes: u64,
    /// Bytes free right after filling (0 = full).
    pub free_after_fill: u64,
    /// How the node's process had ended when the fault ended: its exit
    /// code, `None` while it still ran (it never failed a write).
    pub exit_code: Option<i32>,
    /// The process ended by a signal instead (its number).
    pub signal: Option<i32>,
    /// Bytes free after the filler was removed.
    #[serde(default)]
    pub free_after_heal: u64,
    /// Whether the lab started the node again after the fault.
    #[serde(default)]
    pub restarted: bool,
    /// fsync faults (`fsync-error`, `disk-slow`): what the node's FUSE data
    /// disk counted while the fault was in force (the filler fields are
    /// then 0); `None` for `disk-full`.
    pub fsync: Option<FsyncStats>,
}

impl DiskMeasure {
    /// Records how the node's process had ended when its disk fault ended
    /// (`None`: still running), and whether the lab restarted it (it does
    /// exactly when the process had ended).
    pub fn record_ending(&mut self, status: Option<std::process::ExitStatus>) {
        use std::os::unix::process::ExitStatusExt;
        self.exit_code = status.and_then(|status| status.code());
        self.signal = status.and_then(|status| status.signal());
        self.restarted = status.is_some();
    }
}

/// The disk measure of `node` in a fault's record, when the fault is being
/// recorded (the final heal passes no record).
pub fn disk_measure_of<'a>(
    record: Option<&'a mut FaultRecord>,
    node: &str,
) -> Option<&'a mut DiskMeasure> {
    record
        .and_then(|record| record.achieved.as_mut())
        .and_then(|achieved| achieved.disk.get_mut(node))
}

/// How far the measured p50 of a slow fsync may sit from the asked delay:
/// 10 %, or 2 ms for short delays (the FUSE round trip and the wake-up of
/// the delaying thread).
pub fn fsync_delay_tolerance_ms(asked_ms: f64) -> f64 {
    (asked_ms * 0.10).max(2.0)
}

/// What the members' `/metrics` said about a `forge` fault.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ForgeMeasure {
    /// The first forged term (each round sends one higher).
    pub forged_term: u64,
    /// Sum of `splitnode_frames_rejected_total` over the targets when the
    /// rogue started, per target.
    pub rejected_before: BTreeMap<String, u64>,
    /// The same when it stopped (targets that did not answer are absent).
    pub rejected_after: BTreeMap<String, u64>,
    /// Each target's term when the rogue stopped.
    pub term_after: BTreeMap<String, u64>,
}

impl ForgeMeasure {
    /// Frames the targets rejected while the rogue sent.
    pub fn rejected(&self) -> u64 {
        (self.rejected_after.iter())
            .map(|(node, after)| {
                after.saturating_sub(*self.rejected_before.get(node).unwrap_or(&0))
            })
            .sum()
    }

    /// Targets whose term reached the forged range (they adopted a forgery).
    pub fn adopted(&self) -> Vec<String> {
        (self.term_after.iter())
            .filter(|(_, term)| **term >= self.forged_term)
            .map(|(node, _)| node.clone())
            .collect()
    }
}

/// How a node's process had ended when its disk fault ended, and why that
/// is not a fail-stop (`None`: exit 74).
fn ending(node: &str, disk: &DiskMeasure) -> (String, Option<String>) {
    match (disk.exit_code, disk.signal) {
        (Some(FAIL_STOP_EXIT_CODE), _) => (format!("fail-stop (exit {FAIL_STOP_EXIT_CODE})"), None),
        (Some(code), _) => (
            format!("exit {code}"),
            Some(format!(
                "{node} exited with {code}, not the fail-stop code {FAIL_STOP_EXIT_CODE}"
            )),
        ),
        (None, Some(signal)) => (
            format!("signal {signal}"),
            Some(format!(
                "{node} was ended by signal {signal}, not a fail-stop"
            )),
        ),
        (None, None) => ("still running".into(), Some(String::new())),
    }
}

/// One node of an fsync fault: its summary part; `reasons` gains why the
/// fault was not achieved there.
fn judge_fsync(
    node: &str,
    disk: &DiskMeasure,
    fsync: &FsyncStats,
    reasons: &mut Vec<String>,
) -> String {
    let (ended, not_fail_stop) = ending(node, disk);
    let restarted = if disk.restarted { ", restarted" } else { "" };
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1} ms"));
    match fsync.delay_ms {
        None => {
            if fsync.failed == 0 {
                reasons.push(format!(
                    "no fsync failed on {node}'s data disk ({} fsyncs in {:.1} s): the node \
                     never synced while the fault was in force",
                    fsync.fsyncs,
                    fsync.window_ms / 1000.0
                ));
            } else if let Some(why) = not_fail_stop {
                reasons.push(if why.is_empty() {
                    format!(
                        "{node} was still running after {} failed fsyncs: it did not fail-stop",
                        fsync.failed
                    )
                } else {
                    why
                });
            }
            format!(
                "{node}: {} fsyncs failed with EIO (first after {}), {ended}{restarted}",
                fsync.failed,
                ms(fsync.first_failed_ms)
            )
        }
        Some(asked) => {
            let tolerance = fsync_delay_tolerance_ms(asked);
            match fsync.p50_ms {
                _ if fsync.delayed == 0 => reasons.push(format!(
                    "no fsync was delayed on {node}'s data disk: the node never synced while \
                     the fault was in force"
                )),
                Some(p50) if (p50 - asked).abs() > tolerance => reasons.push(format!(
                    "{node}'s fsyncs took {p50:.1} ms (p50), asked {asked:.1} ms ± {tolerance:.1} ms"
                )),
                _ => {}
            }
            if disk.exit_code.is_some() || disk.signal.is_some() {
                reasons.push(format!(
                    "{node} ended ({ended}) during a slow-disk fault, which fails no fsync"
                ));
            }
            format!(
                "{node}: {} fsyncs delayed, p50 {} p99 {} (asked {asked:.1} ms), {ended}{restarted}",
                fsync.delayed,
                ms(fsync.p50_ms),
                ms(fsync.p99_ms)
            )
        }
    }
}

/// Judges a disk or forge measurement: sets `ok` and `summary`, and
/// returns why the fault was not achieved (empty when it was).
pub fn judge(achieved: &mut FaultAchieved) -> Vec<String> {
    let mut reasons = Vec::new();
    if !achieved.disk.is_empty() {
        let mut parts = Vec::new();
        for (node, disk) in &achieved.disk {
            if let Some(fsync) = &disk.fsync {
                parts.push(judge_fsync(node, disk, fsync, &mut reasons));
                continue;
            }
            if disk.free_after_fill > 0 {
                reasons.push(format!(
                    "{node}'s data disk still had {} bytes free after filling",
                    disk.free_after_fill
                ));
            }
            let ended = match (disk.exit_code, disk.signal) {
                (Some(FAIL_STOP_EXIT_CODE), _) => format!("fail-stop (exit {FAIL_STOP_EXIT_CODE})"),
                (Some(code), _) => {
                    reasons.push(format!(
                        "{node} exited with {code}, not the fail-stop code {FAIL_STOP_EXIT_CODE}"
                    ));
                    format!("exit {code}")
                }
                (None, Some(signal)) => {
                    reasons.push(format!(
                        "{node} was ended by signal {signal}, not a fail-stop"
                    ));
                    format!("signal {signal}")
                }
                (None, None) => {
                    reasons.push(format!(
                        "{node} was still running when the disk fault ended (it never failed a write)"
                    ));
                    "still running".into()
                }
            };
            parts.push(format!(
                "{node}: {} MiB filler, {} bytes free, {ended}{}",
                disk.filler_bytes >> 20,
                disk.free_after_fill,
                if disk.restarted { ", restarted" } else { "" }
            ));
        }
        achieved.summary = parts.join("; ");
    }
    if let Some(forge) = &achieved.forge {
        let (rejected, adopted) = (forge.rejected(), forge.adopted());
        if forge.rejected_after.is_empty() {
            reasons.push("no target answered /metrics when the rogue stopped".into());
        } else if rejected == 0 && adopted.is_empty() {
            reasons.push(
                "the forgeries left no trace: no frame rejected, no forged term adopted".into(),
            );
        }
        achieved.summary = format!(
            "{rejected} forged frames rejected; forged term adopted by {}",
            if adopted.is_empty() {
                "none".to_string()
            } else {
                adopted.join(", ")
            }
        );
    }
    achieved.ok = reasons.is_empty();
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;

    /// n2's disk fault, its process ended with `exit_code` (`None`: still
    /// running) and restarted if it ended.
    fn on_n2(exit_code: Option<i32>, measure: DiskMeasure) -> FaultAchieved {
        let measure = DiskMeasure {
            exit_code,
            restarted: exit_code.is_some(),
            ..measure
        };
        FaultAchieved {
            disk: BTreeMap::from([("n2".to_string(), measure)]),
            ..FaultAchieved::default()
        }
    }

    fn disk(exit_code: Option<i32>, free: u64) -> FaultAchieved {
        let measure = DiskMeasure {
            filler_bytes: 60 << 20,
            free_after_fill: free,
            ..DiskMeasure::default()
        };
        on_n2(exit_code, measure)
    }

    #[test]
    fn a_full_disk_is_achieved_only_with_a_fail_stop() {
        let mut full = disk(Some(FAIL_STOP_EXIT_CODE), 0);
        assert!(judge(&mut full).is_empty() && full.ok, "{}", full.summary);
        assert!(
            full.summary.contains("fail-stop (exit 74)"),
            "{}",
            full.summary
        );
        let mut running = disk(None, 0);
        let reasons = judge(&mut running);
        assert!(
            !running.ok && reasons[0].contains("still running"),
            "{reasons:?}"
        );
        assert!(!judge(&mut disk(Some(1), 0)).is_empty());
        assert!(!judge(&mut disk(Some(FAIL_STOP_EXIT_CODE), 4096)).is_empty());
    }

    fn fsync(exit_code: Option<i32>, stats: FsyncStats) -> FaultAchieved {
        let measure = DiskMeasure {
            fsync: Some(stats),
            ..DiskMeasure::default()
        };
        on_n2(exit_code, measure)
    }

    #[test]
    fn failing_fsync_is_achieved_only_with_a_failure_and_a_fail_stop() {
        let failed = |failed: u64| FsyncStats {
            mode: "error".into(),
            window_ms: 5000.0,
            fsyncs: failed,
            failed,
            first_failed_ms: (failed > 0).then_some(12.0),
            ..FsyncStats::default()
        };
        let mut achieved = fsync(Some(FAIL_STOP_EXIT_CODE), failed(1));
        assert!(judge(&mut achieved).is_empty() && achieved.ok);
        assert!(
            achieved.summary.contains(
                "1 fsyncs failed with EIO (first after 12.0 ms), fail-stop (exit 74), restarted"
            ),
            "{}",
            achieved.summary
        );
        let reasons = judge(&mut fsync(None, failed(0)));
        assert!(reasons[0].contains("no fsync failed"), "{reasons:?}");
        let reasons = judge(&mut fsync(None, failed(3)));
        assert!(reasons[0].contains("did not fail-stop"), "{reasons:?}");
        let reasons = judge(&mut fsync(Some(1), failed(3)));
        assert!(reasons[0].contains("exited with 1"), "{reasons:?}");
    }

    #[test]
    fn slow_fsync_is_achieved_within_its_delay_tolerance() {
        let slow = |delayed: u64, p50: f64| FsyncStats {
            mode: "slow".into(),
            delay_ms: Some(50.0),
            window_ms: 5000.0,
            fsyncs: delayed,
            delayed,
            p50_ms: Some(p50),
            p99_ms: Some(p50 + 1.0),
            ..FsyncStats::default()
        };
        let mut achieved = fsync(None, slow(40, 52.0));
        assert!(judge(&mut achieved).is_empty(), "{}", achieved.summary);
        assert!(
            achieved.summary.contains("40 fsyncs delayed, p50 52.0 ms"),
            "{}",
            achieved.summary
        );
        let reasons = judge(&mut fsync(None, slow(40, 56.0)));
        assert!(reasons[0].contains("asked 50.0 ms ± 5.0 ms"), "{reasons:?}");
        assert!(!judge(&mut fsync(None, slow(0, 0.0))).is_empty());
        let reasons = judge(&mut fsync(Some(FAIL_STOP_EXIT_CODE), slow(40, 50.0)));
        assert!(
            reasons[0].contains("during a slow-disk fault"),
            "{reasons:?}"
        );
        assert_eq!(fsync_delay_tolerance_ms(5.0), 2.0);
    }

    #[test]
    fn forgeries_are_achieved_when_rejected_or_adopted() {
        let measure = |before: u64, after: u64, term: u64| FaultAchieved {
            forge: Some(ForgeMeasure {
                forged_term: 1_000_000,
                rejected_before: BTreeMap::from([("n1".to_string(), before)]),
                rejected_after: BTreeMap::from([("n1".to_string(), after)]),
                term_after: BTreeMap::from([("n1".to_string(), term)]),
            }),
            ..FaultAchieved::default()
        };
        let mut rejected = measure(3, 900, 4);
        assert!(judge(&mut rejected).is_empty());
        assert!(rejected.summary.starts_with("897 forged frames rejected"));
        assert!(judge(&mut measure(0, 0, 1_000_031)).is_empty());
        let mut traceless = measure(5, 5, 4);
        assert!(!judge(&mut traceless).is_empty() && !traceless.ok);
    }
}
