//! The impure side of measuring faults while the run goes on: the asked
//! links when a fault starts, a bulk transfer for rate limits, and the
//! kernel's rule counters and qdisc statistics when it ends.
use std::collections::BTreeMap;
use std::thread::JoinHandle;
use std::time::Duration;

use netlab::Lab;
use netlab::liveprobe::bulk_throughput_kbit;

use super::{Expect, FaultAchieved, asked_link_down, asked_partition, asked_shape};
use crate::run::judge::FaultRecord;
use crate::run::nemesis::{Resolved, links, pairs, planes};
use crate::run::scenario::{Step, StepFault};

/// Links per rate fault whose throughput is measured (each transfer loads
/// the machine for about 1.5 s).
const BULK_LINKS: usize = 2;

/// A bulk transfer in flight: its `from->to` link and the thread measuring it.
type Transfer = (String, JoinHandle<std::io::Result<f64>>);

/// Which backend serves a network step here (the netlab fault the nemesis
/// applies for it, up to the resolved links, which do not change the backend).
fn backend_of_step(step: &Step, lab: &Lab) -> String {
    let planes = planes(step.plane());
    let grudge = netlab::Grudge::default();
    let fault = match &step.fault {
        StepFault::Partition { kind, .. } => {
            if kind.is_some_and(crate::run::scenario::PartitionKind::is_data_only) {
                netlab::Fault::DataPartition { grudge, planes }
            } else {
                netlab::Fault::Partition { grudge, planes }
            }
        }
        StepFault::Shape { effect, .. } => netlab::Fault::Shape {
            links: Vec::new(),
            planes,
            shape: crate::run::nemesis::shape_of(effect),
        },
        StepFault::LinkDown { .. } | StepFault::Flap { .. } => netlab::Fault::LinkDown {
            a: String::new(),
            b: String::new(),
        },
        _ => return String::new(),
    };
    netlab::backend::backend_of(&fault, lab.capabilities())
}

/// Per-run state of the live measurement: bulk transfers in flight.
#[derive(Default)]
pub struct LiveMeasure {
    bulk: BTreeMap<usize, Vec<Transfer>>,
}

impl LiveMeasure {
    /// Records what step `index` asks of each link (after it was applied)
    /// and starts a bulk transfer on rate-limited links.
    pub fn on_start(
        &mut self,
        lab: &Lab,
        index: usize,
        step: &Step,
        resolved: &Resolved,
        record: &mut FaultRecord,
    ) {
        let nodes = lab.topology().node_names();
        let targets = resolved.targets.as_slice();
        let peers = resolved.peers.as_deref();
        let asked = match &step.fault {
            StepFault::Partition { .. } => match &record.grudge {
                Some(grudge) => asked_partition(grudge, planes(step.plane())),
                None => return,
            },
            StepFault::Shape { links: on, .. } => asked_shape(
                &links(&nodes, targets, peers),
                planes(on.plane),
                lab.net_state(),
            ),
            StepFault::LinkDown { .. } => {
                asked_link_down(&pairs(&links(&nodes, targets, peers)), false)
            }
            StepFault::Flap { .. } => asked_link_down(&pairs(&links(&nodes, targets, peers)), true),
            _ => return,
        };
        let rated: Vec<(String, String, u64)> = asked
            .iter()
            .filter_map(|ask| match &ask.expect {
                Expect::Shape { shape } => shape
                    .rate_kbit
                    .map(|r| (ask.from.clone(), ask.to.clone(), r)),
                _ => None,
            })
            .take(BULK_LINKS)
            .collect();
        let mut transfers = Vec::new();
        for (from, to, rate) in rated {
            let Ok(stream) = lab.bulk_stream(&from, &to, Duration::from_secs(2)) else {
                continue;
            };
            // 1.5 s worth of the asked rate, after the fault has settled.
            let bytes = (rate as usize * 1000 / 8 * 3 / 2).max(64 * 1024);
            let stagger = Duration::from_millis(300 + 1700 * transfers.len() as u64);
            transfers.push((
                format!("{from}->{to}"),
                std::thread::spawn(move || {
                    std::thread::sleep(stagger);
                    bulk_throughput_kbit(stream, bytes, Duration::from_secs(6))
                }),
            ));
        }
        if !transfers.is_empty() {
            self.bulk.insert(index, transfers);
        }
        record.achieved = Some(FaultAchieved {
            asked,
            backend: backend_of_step(step, lab),
            ..FaultAchieved::default()
        });
    }

    /// Reads the kernel's counters for an ending fault and collects its
    /// bulk transfers.
    pub fn on_end(&mut self, lab: &Lab, index: usize, record: &mut FaultRecord) {
        let Some(achieved) = record.achieved.as_mut() else {
            return;
        };
        if let Ok(counters) = lab.kernel_counters() {
            achieved.counters = counters;
        }
        // A dead or stalled delay worker drops its links' packets: whatever
        // the probes saw, the fault in force was not the one asked for.
        achieved.worker_problems = lab
            .delay_worker_problems()
            .iter()
            .map(ToString::to_string)
            .collect();
        for (link, handle) in self.bulk.remove(&index).unwrap_or_default() {
            match handle.join() {
                Ok(Ok(kbit)) => {
                    achieved.throughput_kbit.insert(link, kbit);
                }
                Ok(Err(error)) => eprintln!("splitlab: bulk transfer on {link}: {error}"),
                Err(_) => eprintln!("splitlab: bulk transfer on {link} panicked"),
            }
        }
    }
}
