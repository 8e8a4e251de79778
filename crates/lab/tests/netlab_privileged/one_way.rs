//! Issue 10 item 5: the two one-way shapes, measured on live TCP streams.
//! A plain one-way cut (`Fault::Partition`) drops every packet n1 → n2,
//! ACKs included, so the stream n2 → n1 stalls too (a dead fibre); the
//! data-only cut (`Fault::DataPartition`) drops only n1's payload, so the
//! stream n2 → n1 keeps flowing on n1's pure ACKs.

use crate::support::*;
use netlab::probe::probe;
use netlab::{Fault, Lab, Planes, Target, Topology};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// A bulk TCP stream `from → to` on the replication plane port: a writer
/// that never stops and a reader that counts the bytes it gets.
pub(crate) struct Stream {
    delivered: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Stream {
    /// Opens the stream and starts writing and counting.
    pub(crate) fn open(lab: &Lab, from: &str, to: &str) -> Stream {
        let addr = lab.peer_addr(to).unwrap();
        let listener: TcpListener = lab.tcp_listen(&Target::Node(to.into()), addr).unwrap();
        // 3 s: right after a netem cut heals, the neighbour entry may need
        // ARP again (netem dropped ARP too), and UML's syscalls are slow.
        let mut writer: TcpStream = lab
            .tcp_connect(&Target::Node(from.into()), addr, Duration::from_secs(3))
            .unwrap();
        let (mut reader, _) = listener.accept().unwrap();
        reader
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        writer
            .set_write_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let delivered = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, stop_reader) = (delivered.clone(), stop.clone());
        let read = thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            while !stop_reader.load(Ordering::Relaxed) {
                if let Ok(n) = reader.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    count.fetch_add(n as u64, Ordering::Relaxed);
                }
            }
        });
        let stop_writer = stop.clone();
        let write = thread::spawn(move || {
            let chunk = vec![7u8; 16 * 1024];
            while !stop_writer.load(Ordering::Relaxed) {
                // A timeout just means the window is full: try again.
                let _ = writer.write(&chunk);
            }
        });
        Stream {
            delivered,
            stop,
            threads: vec![read, write],
        }
    }

    /// Bytes delivered during `window`.
    pub(crate) fn delivered_during(&self, window: Duration) -> u64 {
        let before = self.delivered.load(Ordering::Relaxed);
        thread::sleep(window);
        self.delivered.load(Ordering::Relaxed) - before
    }

    /// Stops both ends.
    pub(crate) fn close(self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            thread.join().unwrap();
        }
    }
}

/// Bytes each stream (n1 → n2, n2 → n1) delivers in one second, measured
/// after the cut `n1 -/-> n2` (built by `cut`) has been in force for 500 ms
/// (long enough to deliver whatever was already in flight).
pub(crate) fn streams_under(lab: &mut Lab, cut: Fault) -> (u64, u64) {
    let forward = Stream::open(lab, "n1", "n2");
    let reverse = Stream::open(lab, "n2", "n1");
    assert!(forward.delivered_during(Duration::from_millis(200)) > 0);
    assert!(reverse.delivered_during(Duration::from_millis(200)) > 0);
    lab.apply(&cut).unwrap();
    thread::sleep(Duration::from_millis(500));
    let (tx, rx) = std::sync::mpsc::channel();
    let forward_count = forward.delivered.clone();
    let window = thread::spawn(move || {
        let before = forward_count.load(Ordering::Relaxed);
        thread::sleep(Duration::from_secs(1));
        tx.send(forward_count.load(Ordering::Relaxed) - before)
            .unwrap();
    });
    let reverse_bytes = reverse.delivered_during(Duration::from_secs(1));
    window.join().unwrap();
    let forward_bytes = rx.recv().unwrap();
    lab.apply(&Fault::Heal).unwrap();
    forward.close();
    reverse.close();
    (forward_bytes, reverse_bytes)
}

#[test]
fn t90_data_only_one_way_keeps_the_reverse_tcp_stream_plain_one_way_stalls_it() {
    privileged_lab(&Topology::full_mesh(2), |lab| {
        let (forward, reverse) = streams_under(
            lab,
            Fault::DataPartition {
                grudge: n1_cuts_n2(),
                planes: Planes::All,
            },
        );
        eprintln!("data-only n1-/->n2: n1->n2 {forward} B/s, n2->n1 {reverse} B/s");
        assert_eq!(forward, 0, "data-only cut: n1's payload must not reach n2");
        assert!(
            reverse > 1_000_000,
            "data-only cut: the stream n2 -> n1 must keep flowing on n1's ACKs, got {reverse} B/s"
        );

        let (forward, reverse) = streams_under(
            lab,
            Fault::Partition {
                grudge: n1_cuts_n2(),
                planes: Planes::All,
            },
        );
        eprintln!("plain one-way n1-/->n2: n1->n2 {forward} B/s, n2->n1 {reverse} B/s");
        assert_eq!(forward, 0, "plain cut: nothing of n1's reaches n2");
        assert_eq!(
            reverse, 0,
            "plain cut drops n1's ACKs too: the stream n2 -> n1 stalls"
        );

        // The probe shows the achieved direction: under the data-only cut
        // n1 -> n2 connects (handshakes pass) but carries nothing; n2 -> n1
        // carries both planes.
        lab.apply(&Fault::DataPartition {
            grudge: n1_cuts_n2(),
            planes: Planes::All,
        })
        .unwrap();
        let results = probe(lab, &quick()).unwrap();
        let link = |from: &str, to: &str| {
            results
                .iter()
                .find(|m| m.from == from && m.to == to)
                .unwrap()
                .clone()
        };
        let (cut, open) = (link("n1", "n2"), link("n2", "n1"));
        assert!(!cut.udp_reachable() && cut.tcp_received == 0, "{cut:?}");
        assert!(cut.requested.tcp_cut, "{cut:?}");
        assert!(
            open.udp_reachable() && open.tcp_connected && open.tcp_received > 0,
            "{open:?}"
        );
        lab.apply(&Fault::Heal).unwrap();
    });
}
