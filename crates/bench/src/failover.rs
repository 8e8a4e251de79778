//! One failover measurement: isolate the leader with a netlab partition and
//! time (a) the first write acknowledged by the majority side and (b) the
//! moment the old leader stops claiming leadership on its own `/status`.
//! The figures come from `checker::failover::measure`, the definition the
//! lab's failover table uses, fed with what the clients observed.
//!
//! Both systems get the same client pattern: per majority node, a new write
//! attempt starts every [`ATTEMPT_SPACING`] (staggered over
//! [`WRITERS_PER_NODE`] threads, each attempt with a timeout of
//! `WRITERS_PER_NODE × ATTEMPT_SPACING`). A server that answers "no leader"
//! at once (splitnode's 503) and one that holds a request it forwarded to a
//! dead leader (etcd) are thus sampled at the same rate, so the measurement
//! resolution is one spacing for both.

use crate::cluster::BenchLab;
use crate::netns::spawn_in_netns;
use crate::system::{Profile, put, view};
use crate::table::Goal;
use anyhow::{Context, bail};
use checker::failover::{Evidence, FaultWindow, RoleChange, measure};
use client::HttpConn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Time between write attempts per majority node.
pub const ATTEMPT_SPACING: Duration = Duration::from_millis(5);
/// Writer threads per majority node.
pub const WRITERS_PER_NODE: u32 = 10;
/// How often the old leader's status is polled.
pub const POLL_INTERVAL: Duration = Duration::from_millis(2);

/// The target for the median time to the first write: at most this
/// much past the lowest election timeout (ET_min, [`Profile::election_ms`]).
/// No follower can tell a silent leader from a slow one sooner than ET_min;
/// the margin is for the election and one write.
pub const MEDIAN_GOAL_MARGIN_MS: u64 = 30;
/// The same for the p99 first write.
pub const P99_GOAL_MARGIN_MS: u64 = 150;

/// Target of the median first write after isolating the leader, ms.
pub fn median_goal(profile: Profile) -> Goal {
    Goal::AtMost((profile.election_ms() + MEDIAN_GOAL_MARGIN_MS) as f64)
}

/// Target of the p99 first write after isolating the leader, ms.
pub fn p99_goal(profile: Profile) -> Goal {
    Goal::AtMost((profile.election_ms() + P99_GOAL_MARGIN_MS) as f64)
}

/// One repetition's figures, measured from the moment the partition was in
/// place.
#[derive(Debug, Clone)]
pub struct FailoverSample {
    /// The leader that was isolated.
    pub old_leader: String,
    /// Until the first write acknowledged by a majority-side node.
    pub first_write: Duration,
    /// Until the old leader's status stopped claiming leadership.
    pub old_leader_stepped_down: Duration,
    /// How long netlab took to install the partition. Figures count from
    /// the end of the installation (the moment the leader is fully cut
    /// off); the cut may have started biting up to this much earlier.
    pub partition_apply: Duration,
}

fn give_up_after(profile: Profile) -> Duration {
    Duration::from_millis(profile.election_ms() * 20)
}

/// Runs one repetition on the running cluster, heals, and waits until the
/// cluster agrees on a leader again (plus a few heartbeats) so the next
/// repetition starts from a settled state.
///
/// # Errors
/// Fewer than 3 nodes, no cluster, fault failures, or no failover within
/// 20 election timeouts.
pub fn failover_once(lab: &mut BenchLab) -> anyhow::Result<FailoverSample> {
    let Some((system, profile)) = lab.running() else {
        bail!("no cluster is running");
    };
    if lab.nodes().len() < 3 {
        bail!("failover needs at least 3 nodes (a majority without the leader)");
    }
    let leader = lab.stable_leader(Duration::from_secs(30))?;
    let majority: Vec<String> = lab
        .nodes()
        .iter()
        .filter(|n| **n != leader)
        .cloned()
        .collect();
    let netns = lab.control_netns().to_string();
    let leader_addr = lab.client_addr(system, &leader);
    let majority_addrs: Vec<_> = majority
        .iter()
        .map(|n| lab.client_addr(system, n))
        .collect();

    let applying = Instant::now();
    // Observations are nanoseconds on one clock, counted from here.
    let at = move |instant: Instant| (instant - applying).as_nanos() as u64;
    lab.isolate(&leader)?;
    let partitioned = Instant::now();
    let partition_apply = partitioned - applying;
    let deadline = partitioned + give_up_after(profile);
    let acknowledged: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let done = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    let period = ATTEMPT_SPACING * WRITERS_PER_NODE;
    for (n, addr) in majority_addrs.into_iter().enumerate() {
        for w in 0..WRITERS_PER_NODE {
            let (acknowledged, done) = (acknowledged.clone(), done.clone());
            let mut next = partitioned + ATTEMPT_SPACING * w;
            threads.push(spawn_in_netns(
                &netns,
                format!("failover-w{n}-{w}"),
                move || {
                    let mut conn = HttpConn::new(addr);
                    let key = format!("failover-{n}-{w}");
                    let mut attempt = 0u64;
                    while !done.load(Ordering::Relaxed) && Instant::now() < deadline {
                        let now = Instant::now();
                        if now < next {
                            std::thread::sleep(next - now);
                            continue;
                        }
                        attempt += 1;
                        let timeout =
                            period.min(deadline.saturating_duration_since(Instant::now()));
                        if let Ok(true) =
                            put(&mut conn, system, &key, &attempt.to_string(), timeout)
                        {
                            let at = Instant::now();
                            let mut first = acknowledged.lock().expect("no panics while held");
                            if first.is_none_or(|f| at < f) {
                                *first = Some(at);
                            }
                            done.store(true, Ordering::Relaxed);
                        }
                        next += period;
                    }
                },
            )?);
        }
    }
    let old_leader = leader.clone();
    let stepped_down = spawn_in_netns(&netns, "failover-poll".into(), move || {
        let mut conn = HttpConn::new(leader_addr);
        while Instant::now() < deadline {
            match view(&mut conn, system, &old_leader, Duration::from_millis(100)) {
                Ok(v) if !v.claims_leader => return Some(Instant::now()),
                _ => std::thread::sleep(POLL_INTERVAL),
            }
        }
        None
    })?;
    for thread in threads {
        thread
            .join()
            .map_err(|_| anyhow::anyhow!("a failover writer panicked"))??;
    }
    let stepped_down = stepped_down
        .join()
        .map_err(|_| anyhow::anyhow!("the status poller panicked"))??;
    let healing = Instant::now();
    lab.heal()?;
    let first_write = *acknowledged.lock().expect("writers are done");
    let evidence = Evidence {
        role_changes: stepped_down
            .map(|down| RoleChange {
                node: leader.clone(),
                at_ns: at(down),
                term: None,
                leads: false,
            })
            .into_iter()
            .collect(),
        acked_writes: first_write
            .map(|write| (at(write), None))
            .into_iter()
            .collect(),
        ..Evidence::default()
    };
    let window = FaultWindow {
        start_ns: at(partitioned),
        end_ns: at(healing),
    };
    let figures = measure(window, Some((&leader, None)), &evidence);
    let sample = match (figures.first_ack_write, figures.old_leader_stepped_down) {
        (Some(write), Some(down)) => FailoverSample {
            old_leader: leader.clone(),
            first_write: Duration::from_nanos(write),
            old_leader_stepped_down: Duration::from_nanos(down),
            partition_apply,
        },
        (write, down) => bail!(
            "{} failover after isolating {leader} incomplete within {:?}: first write {}, old leader stepped down {}",
            system.name(),
            give_up_after(profile),
            if write.is_some() { "seen" } else { "never" },
            if down.is_some() { "seen" } else { "never" },
        ),
    };
    lab.stable_leader(Duration::from_secs(30))
        .context("cluster did not settle after healing")?;
    std::thread::sleep(Duration::from_millis(profile.heartbeat_ms() * 4));
    Ok(sample)
}
