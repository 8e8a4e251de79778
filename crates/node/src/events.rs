//! The append-only event log `events.jsonl` in the data directory, written
//! with the checker's own types ([`checker::NodeEvent`]), so what the node
//! writes is by construction what the checker reads:
//!
//! ```json
//! {"node":"n1","mono_ns":1000,"local_ns":1003,"term":2,"event":"became_leader"}
//! {"node":"n1","mono_ns":1500,"local_ns":1503,"term":2,"event":"lease_extended","until_mono_ns":9500}
//! ```
//!
//! Lines are written to the OS after every driver batch (so a SIGKILL loses
//! nothing already handed to the kernel) but not fsynced: the event log is an
//! observation, not state the protocol depends on.
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::Path;

use checker::{EventKind, NodeEvent};
use consensus::Event;
use wire::NodeId;

use crate::clock::{NodeClock, Stamp};

/// Converts a consensus event into the event-log form. `current_term` is the
/// replica's term after the step; `name_of` maps node ids to names.
pub(crate) fn convert(
    event: &Event,
    current_term: u64,
    clock: &NodeClock,
    name_of: &dyn Fn(NodeId) -> String,
) -> (u64, EventKind) {
    // A refused pre-vote is logged in the term the node is in, not the one
    // it would have campaigned in.
    let term = match event {
        Event::PreVoteRejected { .. } => current_term,
        _ => event.term().unwrap_or(current_term),
    };
    let kind = event.checker_kind(name_of, |until| clock.mono_of_local(until));
    (term, kind)
}

pub(crate) struct EventLog {
    node: String,
    out: BufWriter<File>,
}

impl EventLog {
    pub(crate) fn open(path: &Path, node: &str) -> io::Result<EventLog> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(EventLog {
            node: node.to_owned(),
            out: BufWriter::with_capacity(64 * 1024, file),
        })
    }

    pub(crate) fn record(&mut self, stamp: Stamp, term: u64, kind: EventKind) -> io::Result<()> {
        let line = NodeEvent::new(
            self.node.as_str(),
            stamp.mono_ns,
            stamp.local_ns,
            term,
            kind,
        );
        serde_json::to_writer(&mut self.out, &line).map_err(io::Error::other)?;
        self.out.write_all(b"\n")
    }

    /// Hands buffered lines to the OS.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TestClock;
    use checker::{LinkDirection, Token};
    use consensus::StepDownReason;

    fn line(term: u64, kind: EventKind) -> String {
        serde_json::to_string(&NodeEvent::new("n1", 1000, 1003, term, kind)).unwrap()
    }

    #[test]
    fn lines_match_the_checker_format() {
        assert_eq!(
            line(2, EventKind::BecameLeader),
            r#"{"node":"n1","mono_ns":1000,"local_ns":1003,"term":2,"event":"became_leader"}"#
        );
        assert_eq!(
            line(
                2,
                EventKind::LeaseExtended {
                    until_mono_ns: 9500
                }
            ),
            r#"{"node":"n1","mono_ns":1000,"local_ns":1003,"term":2,"event":"lease_extended","until_mono_ns":9500}"#
        );
        assert_eq!(
            line(
                2,
                EventKind::PeerDown {
                    peer: "n2".into(),
                    direction: LinkDirection::Inbound
                }
            ),
            r#"{"node":"n1","mono_ns":1000,"local_ns":1003,"term":2,"event":"peer_down","peer":"n2","direction":"inbound"}"#
        );
        assert_eq!(
            line(
                3,
                EventKind::WriteCommitted {
                    token: Token { term: 3, index: 7 }
                }
            ),
            r#"{"node":"n1","mono_ns":1000,"local_ns":1003,"term":3,"event":"write_committed","token":{"term":3,"index":7}}"#
        );
        assert_eq!(
            line(3, EventKind::Recovered { last_index: 4 }),
            r#"{"node":"n1","mono_ns":1000,"local_ns":1003,"term":3,"event":"recovered","last_index":4}"#
        );
        assert_eq!(
            line(
                3,
                EventKind::FinalState {
                    commit_index: 1,
                    applied_index: 1,
                    state_hash: 5
                }
            ),
            r#"{"node":"n1","mono_ns":1000,"local_ns":1003,"term":3,"event":"final_state","commit_index":1,"applied_index":1,"state_hash":5}"#
        );
    }

    #[test]
    fn lease_end_is_mapped_to_the_true_clock() {
        let clock = NodeClock::starting_at(
            1_000_000_000,
            TestClock {
                offset_ms: 500,
                rate: 2.0,
            },
        );
        let until_local = clock.local_at(3_000_000_000);
        let name_of = |id: NodeId| format!("n{id}");
        let (term, kind) = convert(
            &Event::LeaseExtended {
                term: 4,
                until: until_local,
            },
            4,
            &clock,
            &name_of,
        );
        assert_eq!(term, 4);
        assert_eq!(
            kind,
            EventKind::LeaseExtended {
                until_mono_ns: 3_000_000_000
            }
        );
        let (term, kind) = convert(
            &Event::WriteCommitted {
                token: wire::Token { term: 4, index: 9 },
            },
            5,
            &clock,
            &name_of,
        );
        assert_eq!(term, 4);
        assert_eq!(
            kind,
            EventKind::WriteCommitted {
                token: Token { term: 4, index: 9 }
            }
        );
        let (_, kind) = convert(
            &Event::SteppedDown {
                term: 4,
                reason: StepDownReason::QuorumLost,
            },
            4,
            &clock,
            &name_of,
        );
        assert_eq!(
            serde_json::to_value(&kind).unwrap(),
            serde_json::json!({"event": "stepped_down", "reason": "quorum_lost"})
        );
    }

    #[test]
    fn the_checker_reads_back_what_the_log_writes() {
        let path = std::env::temp_dir().join(format!(
            "splitnode-events-{}-read-back.jsonl",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        let mut log = EventLog::open(&path, "n1").unwrap();
        let stamp = Stamp {
            mono_ns: 10,
            local_ns: 12,
        };
        let kinds = [
            EventKind::Started,
            EventKind::PeerDown {
                peer: "n2".into(),
                direction: LinkDirection::Outbound,
            },
            EventKind::SteppedDown {
                reason: checker::StepDownReason::LeaseExpired,
            },
        ];
        for kind in &kinds {
            log.record(stamp, 3, kind.clone()).unwrap();
        }
        log.flush().unwrap();
        let read = checker::read_events(std::fs::File::open(&path).unwrap()).unwrap();
        let _ = std::fs::remove_file(&path);
        let expected: Vec<NodeEvent> = kinds
            .into_iter()
            .map(|kind| NodeEvent::new("n1", 10, 12, 3, kind))
            .collect();
        assert_eq!(read, expected);
    }
}
