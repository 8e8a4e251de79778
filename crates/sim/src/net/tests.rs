//! Unit tests of the network model: partitions, layers, datagram and stream behaviour.
use super::*;
use crate::rng::SimRng;

const BOTH: [Channel; 2] = [Channel::Datagram, Channel::Stream];

/// Nodes 1, 2 and 3 on clean links, with a seeded random stream of their own.
struct Harness {
    net: Network,
    rng: SimRng,
}

impl Harness {
    fn new(seed: u64) -> Harness {
        Harness {
            net: Network::new(vec![1, 2, 3], LinkFaults::CLEAN),
            rng: SimRng::stream(seed, "net"),
        }
    }

    /// Fault layer `id` on every link, for `channels`.
    fn with_faults(mut self, id: u64, channels: &[Channel], faults: LinkFaults) -> Harness {
        self.net
            .add_faults(id, all_links(), channels_of(channels), faults);
        self
    }

    fn send(&mut self, at: u64, from: NodeId, to: NodeId, channel: Channel) -> SendOutcome {
        self.net.send(&mut self.rng, at, from, to, channel)
    }

    /// The copies of one message in flight (panics if it was lost).
    fn fly(&mut self, at: u64, from: NodeId, to: NodeId, channel: Channel) -> Vec<Flight> {
        match self.send(at, from, to, channel) {
            SendOutcome::InFlight(flights) => flights,
            SendOutcome::Lost(loss) => panic!("lost: {loss:?}"),
        }
    }

    /// The first copy of one message (panics if it was lost).
    fn first(&mut self, at: u64, from: NodeId, to: NodeId, channel: Channel) -> Flight {
        self.fly(at, from, to, channel)[0]
    }

    /// Whether a stream message in `flight` from `from` to `to` still counts on arrival.
    fn admit_stream(&mut self, from: NodeId, to: NodeId, flight: Flight) -> Result<(), Loss> {
        self.net.admit(from, to, Channel::Stream, flight.generation)
    }
}

fn all_links() -> BTreeSet<(NodeId, NodeId)> {
    [(1, 2), (2, 1), (1, 3), (3, 1), (2, 3), (3, 2)]
        .into_iter()
        .collect()
}

fn channels_of(channels: &[Channel]) -> BTreeSet<Channel> {
    channels.iter().copied().collect()
}

/// Delays drawn from `[min, max]` on otherwise clean links.
fn delays(min: u64, max: u64) -> LinkFaults {
    LinkFaults {
        delay_min_ns: min,
        delay_max_ns: max,
        ..LinkFaults::CLEAN
    }
}

#[test]
fn clean_link_delivers_once_within_delay_bounds() {
    let mut sim = Harness::new(1);
    for channel in BOTH {
        for _ in 0..100 {
            let got = sim.fly(1_000, 1, 2, channel);
            assert_eq!(got.len(), 1);
            assert!(got[0].deliver_at >= 1_000 + LinkFaults::CLEAN.delay_min_ns);
            assert_eq!(sim.net.admit(1, 2, channel, got[0].generation), Ok(()));
        }
    }
}

#[test]
fn partition_blocks_only_its_directions_and_heals() {
    let mut sim = Harness::new(2);
    sim.net.partition(7, faults::one_way(&[1], &[1, 2, 3]));
    assert_eq!(
        sim.send(0, 1, 2, Channel::Datagram),
        SendOutcome::Lost(Loss::Partitioned)
    );
    assert_eq!(sim.fly(0, 2, 1, Channel::Datagram).len(), 1);
    sim.net.heal(7);
    assert_eq!(sim.fly(0, 1, 2, Channel::Datagram).len(), 1);
}

#[test]
fn overlapping_partitions_heal_independently() {
    let mut net = Harness::new(0).net;
    net.partition(1, faults::isolate(1, &[1, 2, 3]));
    net.partition(2, faults::cut_link(2, 3));
    net.heal(1);
    assert!(!net.is_blocked(1, 2));
    assert!(net.is_blocked(2, 3) && net.is_blocked(3, 2));
    net.heal_all();
    assert!(!net.is_blocked(2, 3));
}

#[test]
fn partition_starting_mid_flight_loses_the_message() {
    let mut sim = Harness::new(3);
    let flight = sim.first(0, 1, 2, Channel::Stream);
    sim.net.partition(1, faults::cut_link(1, 2));
    assert_eq!(sim.admit_stream(1, 2, flight), Err(Loss::Partitioned));
    sim.net.heal(1);
    // The connection was reset by the partition, so the old flight stays lost.
    assert_eq!(sim.admit_stream(1, 2, flight), Err(Loss::ConnectionReset));
}

#[test]
fn stream_is_fifo_despite_jitter() {
    let mut sim = Harness::new(4).with_faults(1, &BOTH, delays(0, 50_000_000));
    let mut last = 0;
    for i in 0..200 {
        let flight = sim.first(i * 1_000, 1, 2, Channel::Stream);
        assert!(
            flight.deliver_at >= last,
            "stream reordered without a reconnect"
        );
        last = flight.deliver_at;
    }
}

#[test]
fn datagrams_reorder_under_jitter() {
    let mut sim = Harness::new(5).with_faults(1, &BOTH, delays(0, 50_000_000));
    let times: Vec<u64> = (0..100)
        .map(|i| sim.first(i * 1_000, 1, 2, Channel::Datagram).deliver_at)
        .collect();
    assert!(times.windows(2).any(|w| w[1] < w[0]));
}

#[test]
fn stream_drop_resets_connection_and_loses_in_flight() {
    let mut sim = Harness::new(6);
    let before = sim.first(0, 1, 2, Channel::Stream);
    let lossy = LinkFaults {
        drop_ppm: 1_000_000,
        ..LinkFaults::CLEAN
    };
    sim = sim.with_faults(1, &[Channel::Stream], lossy);
    assert_eq!(
        sim.send(1, 1, 2, Channel::Stream),
        SendOutcome::Lost(Loss::Dropped)
    );
    assert_eq!(sim.admit_stream(1, 2, before), Err(Loss::ConnectionReset));
    // Datagrams were not covered by the stream-only layer.
    assert_eq!(sim.fly(1, 1, 2, Channel::Datagram).len(), 1);
    sim.net.clear_faults(1);
    let after = sim.first(2, 1, 2, Channel::Stream);
    assert_eq!(sim.admit_stream(1, 2, after), Ok(()));
}

#[test]
fn stream_reorder_lets_new_connection_overtake_old() {
    let mut sim = Harness::new(7).with_faults(1, &BOTH, delays(10_000_000, 10_000_001));
    let old = sim.first(0, 1, 2, Channel::Stream);
    let reconnect = LinkFaults {
        reorder_ppm: 1_000_000,
        ..LinkFaults::CLEAN
    };
    sim.net.clear_faults(1);
    sim = sim.with_faults(2, &BOTH, reconnect);
    let new = sim.first(1, 1, 2, Channel::Stream);
    assert_eq!(new.copy, CopyKind::Reordered);
    assert!(new.deliver_at < old.deliver_at);
    assert_eq!(sim.admit_stream(1, 2, old), Ok(()));
    assert_eq!(sim.admit_stream(1, 2, new), Ok(()));
}

#[test]
fn duplicates_arrive_twice() {
    let dup = LinkFaults {
        duplicate_ppm: 1_000_000,
        ..LinkFaults::CLEAN
    };
    let mut sim = Harness::new(8).with_faults(1, &BOTH, dup);
    for channel in BOTH {
        let got = sim.fly(0, 3, 1, channel);
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].copy, CopyKind::Duplicate);
        for flight in got {
            assert_eq!(sim.net.admit(3, 1, channel, flight.generation), Ok(()));
        }
    }
}

#[test]
fn stream_duplicates_do_not_hold_up_later_messages() {
    let dup = LinkFaults {
        duplicate_ppm: 1_000_000,
        reorder_extra_ns: 500_000_000,
        ..LinkFaults::CLEAN
    };
    let mut sim = Harness::new(11).with_faults(1, &BOTH, dup);
    for i in 0..1_000 {
        let original = sim.first(i * 1_000_000, 1, 2, Channel::Stream);
        // The original always arrives within the link delay.
        assert!(original.deliver_at <= i * 1_000_000 + LinkFaults::CLEAN.delay_max_ns);
    }
}

#[test]
fn lossy_datagrams_drop_about_the_configured_share() {
    let lossy = LinkFaults {
        drop_ppm: 300_000,
        ..LinkFaults::CLEAN
    };
    let mut sim = Harness::new(9).with_faults(1, &[Channel::Datagram], lossy);
    let lost = (0..10_000)
        .filter(|_| matches!(sim.send(0, 1, 2, Channel::Datagram), SendOutcome::Lost(_)))
        .count();
    assert!((2_500..3_500).contains(&lost), "lost {lost} of 10000");
}

#[test]
fn layers_combine_to_the_worst() {
    let lossy = LinkFaults {
        drop_ppm: 10,
        ..LinkFaults::CLEAN
    };
    let mut net = Harness::new(0).with_faults(1, &BOTH, lossy).net;
    let slow_one_way = delays(LinkFaults::CLEAN.delay_min_ns, 9_000_000);
    net.add_faults(
        2,
        [(1, 2)].into_iter().collect(),
        channels_of(&BOTH),
        slow_one_way,
    );
    let f = net.faults(1, 2, Channel::Stream);
    assert_eq!((f.drop_ppm, f.delay_max_ns), (10, 9_000_000));
    let g = net.faults(2, 1, Channel::Stream);
    assert_eq!(
        (g.drop_ppm, g.delay_max_ns),
        (10, LinkFaults::CLEAN.delay_max_ns)
    );
}

#[test]
fn crash_resets_streams_in_both_directions() {
    let mut sim = Harness::new(10);
    let out = sim.first(0, 1, 2, Channel::Stream);
    let inc = sim.first(0, 3, 1, Channel::Stream);
    let other = sim.first(0, 2, 3, Channel::Stream);
    sim.net.reset_node(1);
    assert_eq!(sim.admit_stream(1, 2, out), Err(Loss::ConnectionReset));
    assert_eq!(sim.admit_stream(3, 1, inc), Err(Loss::ConnectionReset));
    assert_eq!(sim.admit_stream(2, 3, other), Ok(()));
}
