//! Issue 10 item 7: the probe-measured fault set, held to the run's
//! tolerances (`lab::run::achieved::tolerance`), on whatever backend this
//! kernel offers: the fallback (nft + NFQUEUE + tbf) on a kernel without
//! netem, netem inside User-Mode Linux (`scripts/netem-uml.sh` runs this test
//! there). It prints one table row per fault: asked, achieved, tolerance,
//! backend, verdict. A row outside its tolerance is measured once more
//! (the binomial intervals are 99 % ones) and fails only if it misses twice.

use crate::one_way::{Stream, streams_under};
use crate::support::*;
use lab::run::achieved::tolerance::{binomial_ok, delay_ok, rate_ok};
use netlab::backend::backend_of;
use netlab::probe::LinkMeasurement;
use netlab::{Fault, Lab, LinkShaping, NetlabError, Planes, Topology};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// One row of the table.
struct Row {
    fault: &'static str,
    asked: String,
    achieved: String,
    tolerance: &'static str,
    backend: String,
    /// `None`: not applied here (unsupported on this kernel, allowed).
    ok: Option<bool>,
}

/// The netlab probe on n1 → n2, with enough datagrams for the binomial
/// intervals to be tight.
fn probe_tight(lab: &Lab) -> LinkMeasurement {
    probe_n1_n2(
        lab,
        1000,
        Duration::from_millis(1),
        10,
        Duration::from_millis(1500),
    )
}

/// Datagrams n1 → n2 stamped with their send time; returns each arrival's
/// one-way delay in ms (the namespaces share CLOCK_MONOTONIC).
fn datagram_delays(lab: &Lab, count: u32) -> Vec<f64> {
    let (receiver, sender, peer) = udp_n1_to_n2(lab, Duration::from_millis(20));
    let epoch = Instant::now();
    let sending = std::thread::spawn(move || {
        for _ in 0..count {
            let stamp = epoch.elapsed().as_nanos() as u64;
            let _ = sender.send_to(&stamp.to_be_bytes(), peer);
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    let mut delays = Vec::new();
    let mut buf = [0u8; 8];
    let mut quiet_since = Instant::now();
    while quiet_since.elapsed() < Duration::from_millis(500) {
        if let Ok(8) = receiver.recv(&mut buf) {
            let sent = u64::from_be_bytes(buf);
            delays.push((epoch.elapsed().as_nanos() as u64 - sent) as f64 / 1e6);
            quiet_since = Instant::now();
        } else if !sending.is_finished() {
            quiet_since = Instant::now();
        }
    }
    sending.join().unwrap();
    delays
}

/// Applies `fault`; `Err(row)` when this kernel has no backend for it.
fn apply_or_unsupported(
    lab: &mut Lab,
    fault: &Fault,
    name: &'static str,
    asked: &str,
    tolerance: &'static str,
) -> Result<(), Row> {
    match lab.apply(fault) {
        Ok(()) => Ok(()),
        Err(NetlabError::Unsupported(why)) => Err(Row {
            fault: name,
            asked: asked.into(),
            achieved: format!("not applied: {}", why.missing),
            tolerance,
            backend: backend_of(fault, lab.capabilities()),
            ok: None,
        }),
        Err(other) => panic!("{name}: {other}"),
    }
}

const BINOMIAL: &str = "binomial 99% interval";

/// Runs `measure` while a thread measures how late this kernel's timers
/// fire (1 ms sleeps); returns its result and the median lateness in ms.
/// netem holds each delayed packet on a kernel timer, so a kernel that is
/// late waking sleepers (User-Mode Linux on a busy host: several ms) is
/// late releasing packets too, and that lateness is measured, not assumed.
fn with_timer_lateness<T>(lab: &Lab, measure: impl FnOnce(&Lab) -> T) -> (T, f64) {
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let sampler = scope.spawn(|| {
            let mut late_ms = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let asked = Duration::from_millis(1);
                let started = Instant::now();
                std::thread::sleep(asked);
                late_ms.push((started.elapsed() - asked).as_secs_f64() * 1e3);
            }
            late_ms.sort_by(f64::total_cmp);
            late_ms.get(late_ms.len() / 2).copied().unwrap_or(0.0)
        });
        let result = measure(lab);
        done.store(true, Ordering::Relaxed);
        (result, sampler.join().unwrap())
    })
}

/// Applies `shaping` on n1 → n2 on every plane, measures it with `measure`
/// (what was achieved, and whether within `tolerance`), then unshapes.
fn shaped_row(
    lab: &mut Lab,
    fault: &'static str,
    asked: String,
    tolerance: &'static str,
    shaping: LinkShaping,
    measure: impl FnOnce(&Lab) -> (String, bool),
) -> Row {
    let shape = shape_n1_n2(Planes::All, shaping);
    lab.apply(&shape).unwrap();
    let (achieved, ok) = measure(lab);
    let backend = backend_of(&shape, lab.capabilities());
    lab.apply(&Fault::Unshape).unwrap();
    Row {
        fault,
        asked,
        achieved,
        tolerance,
        backend,
        ok: Some(ok),
    }
}

fn measure_all(lab: &mut Lab) -> Vec<Row> {
    let caps = *lab.capabilities();
    let mut rows = Vec::new();
    let backend = |fault: &Fault| backend_of(fault, &caps);

    // Cuts.
    for (name, planes, tolerance) in [
        (
            "cut (all planes)",
            Planes::All,
            "0 datagrams delivered, no TCP connection",
        ),
        (
            "cut (heartbeat plane only)",
            Planes::Heartbeat,
            "0 datagrams delivered, TCP carries every message",
        ),
    ] {
        let fault = Fault::Partition {
            grudge: n1_cuts_n2(),
            planes,
        };
        let asked = format!("n1 -/-> n2 ({planes})");
        match apply_or_unsupported(lab, &fault, name, &asked, tolerance) {
            Err(row) => rows.push(row),
            Ok(()) => {
                let m = probe_tight(lab);
                let ok = m.udp_received == 0
                    && if planes == Planes::All {
                        !m.tcp_connected
                    } else {
                        m.tcp_received == 10
                    };
                rows.push(Row {
                    fault: name,
                    asked,
                    achieved: format!(
                        "udp {}/{} delivered, tcp connected {} ({} msgs)",
                        m.udp_received, m.udp_sent, m.tcp_connected, m.tcp_received
                    ),
                    tolerance,
                    backend: backend(&fault),
                    ok: Some(ok),
                });
            }
        }
        lab.apply(&Fault::Heal).unwrap();
    }

    // The two one-way shapes on live TCP streams both ways.
    for (name, data_only, tolerance) in [
        (
            "one-way, every packet",
            false,
            "both streams stall (0 B in 1 s)",
        ),
        ("one-way, data only", true, "n1->n2 stalls, n2->n1 > 1 MB/s"),
    ] {
        let fault = if data_only {
            Fault::DataPartition {
                grudge: n1_cuts_n2(),
                planes: Planes::All,
            }
        } else {
            Fault::Partition {
                grudge: n1_cuts_n2(),
                planes: Planes::All,
            }
        };
        let asked = "n1 -/-> n2, TCP streams both ways".to_string();
        // Probe support first (streams_under unwraps the apply).
        if let Err(row) = apply_or_unsupported(lab, &fault, name, &asked, tolerance) {
            rows.push(row);
            continue;
        }
        lab.apply(&Fault::Heal).unwrap();
        let (forward, reverse) = streams_under(lab, fault.clone());
        let ok = forward == 0
            && if data_only {
                reverse > 1_000_000
            } else {
                reverse == 0
            };
        rows.push(Row {
            fault: name,
            asked,
            achieved: format!("n1->n2 {forward} B/s, n2->n1 {reverse} B/s"),
            tolerance,
            backend: backend(&fault),
            ok: Some(ok),
        });
    }

    // Loss.
    for pct in [20.0, 50.0] {
        let shaping = LinkShaping {
            loss_pct: Some(pct),
            ..LinkShaping::default()
        };
        let name = if pct == 20.0 { "loss 20%" } else { "loss 50%" };
        let asked = format!("{pct}% of datagrams");
        rows.push(shaped_row(lab, name, asked, BINOMIAL, shaping, |lab| {
            let m = probe_tight(lab);
            let lost = u64::from(m.udp_sent - m.udp_received.min(m.udp_sent));
            let achieved = format!("{:.1}% ({lost}/{})", m.udp_loss_pct(), m.udp_sent);
            (
                achieved,
                binomial_ok(lost, u64::from(m.udp_sent), pct / 100.0),
            )
        }));
    }

    // Delay with jitter.
    let shaping = LinkShaping {
        delay_ms: Some(50.0),
        jitter_ms: Some(10.0),
        ..LinkShaping::default()
    };
    let asked = "one-way +50 ms, ±10 ms jitter".into();
    let tolerance =
        "p50 over the unshaped p50 and the kernel's timer lateness within ±10% or ±2 ms";
    // The fault adds to what the path already takes: a few ms inside a
    // busy User-Mode Linux, a few µs on a host. Measured right before.
    let unshaped_p50 = probe_tight(lab).udp_delay_p50_ms.unwrap_or(f64::NAN);
    rows.push(shaped_row(
        lab,
        "delay 50ms ± 10ms",
        asked,
        tolerance,
        shaping,
        |lab| {
            let (m, timers_late_ms) = with_timer_lateness(lab, probe_tight);
            let p50 = m.udp_delay_p50_ms.unwrap_or(f64::NAN);
            let achieved = format!(
                "p50 {p50:.2} ms (unshaped {unshaped_p50:.2} ms, kernel timers {timers_late_ms:.2} ms late), p99 {:.2} ms, tcp mean {:.2} ms",
                m.udp_delay_p99_ms.unwrap_or(f64::NAN),
                m.tcp_delay_mean_ms.unwrap_or(f64::NAN)
            );
            (
                achieved,
                delay_ok(p50 - unshaped_p50 - timers_late_ms, 50.0),
            )
        },
    ));

    // Duplicates.
    let shaping = LinkShaping {
        duplicate_pct: Some(10.0),
        ..LinkShaping::default()
    };
    let asked = "10% of datagrams twice".into();
    rows.push(shaped_row(
        lab,
        "duplicate 10%",
        asked,
        BINOMIAL,
        shaping,
        |lab| {
            let m = probe_tight(lab);
            let dup = u64::from(m.udp_duplicates);
            let delivered = u64::from(m.udp_received);
            let achieved = format!(
                "{:.1}% ({dup} extra / {delivered})",
                100.0 * dup as f64 / delivered.max(1) as f64
            );
            (achieved, binomial_ok(dup, delivered, 0.10))
        },
    ));

    // Reorder: 20% released at once, the rest after 10 ms.
    let shaping = LinkShaping {
        delay_ms: Some(10.0),
        reorder_pct: Some(20.0),
        ..LinkShaping::default()
    };
    let asked = "20% sent at once, 80% after 10 ms".into();
    rows.push(shaped_row(
        lab,
        "reorder 20%",
        asked,
        BINOMIAL,
        shaping,
        |lab| {
            let delays = datagram_delays(lab, 1000);
            let fast = delays.iter().filter(|d| **d < 5.0).count() as u64;
            let achieved = format!(
                "{:.1}% at once ({fast}/{})",
                100.0 * fast as f64 / delays.len().max(1) as f64,
                delays.len()
            );
            (achieved, binomial_ok(fast, delays.len() as u64, 0.20))
        },
    ));

    // Rate: a bulk TCP transfer.
    let shaping = LinkShaping {
        rate_kbit: Some(1000),
        ..LinkShaping::default()
    };
    let tolerance = "0.6–1.25 × asked";
    rows.push(shaped_row(
        lab,
        "rate 1mbit",
        "1000 kbit/s".into(),
        tolerance,
        shaping,
        |lab| {
            let stream = Stream::open(lab, "n1", "n2");
            std::thread::sleep(Duration::from_millis(500));
            let bytes = stream.delivered_during(Duration::from_secs(3));
            stream.close();
            let kbit = bytes as f64 * 8.0 / 3.0 / 1000.0;
            (
                format!("{kbit:.0} kbit/s (bulk TCP, 3 s)"),
                rate_ok(kbit, 1000),
            )
        },
    ));
    rows
}

#[test]
fn t95_fault_set_is_achieved_within_tolerance() {
    let Some(_serial) = serial_privileged() else {
        return;
    };
    let mut rows = Vec::new();
    let mut caps = None;
    with_lab(&Topology::full_mesh(2), |lab| {
        caps = Some(*lab.capabilities());
        rows = measure_all(lab);
        // Each judged row is a 99 % interval, so about one run in twenty
        // misses one by chance: a missed fault is measured once more, and
        // only a second miss counts.
        if rows.iter().any(|row| row.ok == Some(false)) {
            let again = measure_all(lab);
            for row in rows.iter_mut().filter(|row| row.ok == Some(false)) {
                let second = again.iter().find(|a| a.fault == row.fault).unwrap();
                row.achieved =
                    format!("{} (re-measured; first: {})", second.achieved, row.achieved);
                row.ok = second.ok;
            }
        }
    });
    let caps = caps.unwrap();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!(
        "\nfault set on kernel {} (netem {}, nft {}, NFQUEUE {})\n",
        kernel.trim(),
        caps.netem,
        caps.nft,
        caps.nfqueue
    );
    println!("| fault | asked | achieved | tolerance | backend | within |");
    println!("|---|---|---|---|---|---|");
    for row in &rows {
        let within = match row.ok {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "n/a",
        };
        println!(
            "| {} | {} | {} | {} | {} | {within} |",
            row.fault, row.asked, row.achieved, row.tolerance, row.backend
        );
    }
    let missed: Vec<&str> = rows
        .iter()
        .filter(|row| row.ok == Some(false))
        .map(|row| row.fault)
        .collect();
    assert!(missed.is_empty(), "outside tolerance: {missed:?}");
    // Only cuts that need nft may be missing, and only where nft is.
    for row in rows.iter().filter(|row| row.ok.is_none()) {
        assert!(
            !caps.nft && (row.fault.contains("heartbeat") || row.fault.contains("data only")),
            "{} not applied: {}",
            row.fault,
            row.achieved
        );
    }
}
