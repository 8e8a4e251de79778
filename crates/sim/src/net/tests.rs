//! Unit tests of the network model: partitions, layers, datagram and stream behaviour.
use super::*;
use crate::rng::SimRng;

fn net() -> Network {
    Network::new(vec![1, 2, 3], LinkFaults::CLEAN)
}

fn flights(outcome: SendOutcome) -> Vec<Flight> {
    match outcome {
        SendOutcome::InFlight(flights) => flights,
        SendOutcome::Lost(loss) => panic!("lost: {loss:?}"),
    }
}

fn all_links() -> BTreeSet<(NodeId, NodeId)> {
    [(1, 2), (2, 1), (1, 3), (3, 1), (2, 3), (3, 2)]
        .into_iter()
        .collect()
}

fn both() -> BTreeSet<Channel> {
    [Channel::Datagram, Channel::Stream].into_iter().collect()
}

#[test]
fn clean_link_delivers_once_within_delay_bounds() {
    let mut net = net();
    let mut rng = SimRng::stream(1, "net");
    for channel in [Channel::Datagram, Channel::Stream] {
        for _ in 0..100 {
            let got = flights(net.send(&mut rng, 1_000, 1, 2, channel));
            assert_eq!(got.len(), 1);
            assert!(got[0].deliver_at >= 1_000 + LinkFaults::CLEAN.delay_min_ns);
            assert_eq!(net.admit(1, 2, channel, got[0].generation), Ok(()));
        }
    }
}

#[test]
fn partition_blocks_only_its_directions_and_heals() {
    let mut net = net();
    let mut rng = SimRng::stream(2, "net");
    net.partition(7, faults::one_way(&[1], &[1, 2, 3]));
    assert_eq!(
        net.send(&mut rng, 0, 1, 2, Channel::Datagram),
        SendOutcome::Lost(Loss::Partitioned)
    );
    assert_eq!(
        flights(net.send(&mut rng, 0, 2, 1, Channel::Datagram)).len(),
        1
    );
    net.heal(7);
    assert_eq!(
        flights(net.send(&mut rng, 0, 1, 2, Channel::Datagram)).len(),
        1
    );
}

#[test]
fn overlapping_partitions_heal_independently() {
    let mut net = net();
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
    let mut net = net();
    let mut rng = SimRng::stream(3, "net");
    let flight = flights(net.send(&mut rng, 0, 1, 2, Channel::Stream))[0];
    net.partition(1, faults::cut_link(1, 2));
    assert_eq!(
        net.admit(1, 2, Channel::Stream, flight.generation),
        Err(Loss::Partitioned)
    );
    net.heal(1);
    // The connection was reset by the partition, so the old flight stays lost.
    assert_eq!(
        net.admit(1, 2, Channel::Stream, flight.generation),
        Err(Loss::ConnectionReset)
    );
}

#[test]
fn stream_is_fifo_despite_jitter() {
    let mut net = net();
    let mut rng = SimRng::stream(4, "net");
    let mut wide = LinkFaults::CLEAN;
    wide.delay_min_ns = 0;
    wide.delay_max_ns = 50_000_000;
    net.add_faults(1, all_links(), both(), wide);
    let mut last = 0;
    for i in 0..200 {
        let flight = flights(net.send(&mut rng, i * 1_000, 1, 2, Channel::Stream))[0];
        assert!(
            flight.deliver_at >= last,
            "stream reordered without a reconnect"
        );
        last = flight.deliver_at;
    }
}

#[test]
fn datagrams_reorder_under_jitter() {
    let mut net = net();
    let mut rng = SimRng::stream(5, "net");
    let mut wide = LinkFaults::CLEAN;
    wide.delay_min_ns = 0;
    wide.delay_max_ns = 50_000_000;
    net.add_faults(1, all_links(), both(), wide);
    let times: Vec<u64> = (0..100)
        .map(|i| flights(net.send(&mut rng, i * 1_000, 1, 2, Channel::Datagram))[0].deliver_at)
        .collect();
    assert!(times.windows(2).any(|w| w[1] < w[0]));
}

#[test]
fn stream_drop_resets_connection_and_loses_in_flight() {
    let mut net = net();
    let mut rng = SimRng::stream(6, "net");
    let before = flights(net.send(&mut rng, 0, 1, 2, Channel::Stream))[0];
    let mut lossy = LinkFaults::CLEAN;
    lossy.drop_ppm = 1_000_000;
    net.add_faults(
        1,
        all_links(),
        [Channel::Stream].into_iter().collect(),
        lossy,
    );
    assert_eq!(
        net.send(&mut rng, 1, 1, 2, Channel::Stream),
        SendOutcome::Lost(Loss::Dropped)
    );
    assert_eq!(
        net.admit(1, 2, Channel::Stream, before.generation),
        Err(Loss::ConnectionReset)
    );
    // Datagrams were not covered by the stream-only layer.
    assert_eq!(
        flights(net.send(&mut rng, 1, 1, 2, Channel::Datagram)).len(),
        1
    );
    net.clear_faults(1);
    let after = flights(net.send(&mut rng, 2, 1, 2, Channel::Stream))[0];
    assert_eq!(net.admit(1, 2, Channel::Stream, after.generation), Ok(()));
}

#[test]
fn stream_reorder_lets_new_connection_overtake_old() {
    let mut net = net();
    let mut rng = SimRng::stream(7, "net");
    let mut slow = LinkFaults::CLEAN;
    slow.delay_min_ns = 10_000_000;
    slow.delay_max_ns = 10_000_001;
    net.add_faults(1, all_links(), both(), slow);
    let old = flights(net.send(&mut rng, 0, 1, 2, Channel::Stream))[0];
    let mut reconnect = LinkFaults::CLEAN;
    reconnect.reorder_ppm = 1_000_000;
    net.clear_faults(1);
    net.add_faults(2, all_links(), both(), reconnect);
    let new = flights(net.send(&mut rng, 1, 1, 2, Channel::Stream))[0];
    assert_eq!(new.copy, CopyKind::Reordered);
    assert!(new.deliver_at < old.deliver_at);
    assert_eq!(net.admit(1, 2, Channel::Stream, old.generation), Ok(()));
    assert_eq!(net.admit(1, 2, Channel::Stream, new.generation), Ok(()));
}

#[test]
fn duplicates_arrive_twice() {
    let mut net = net();
    let mut rng = SimRng::stream(8, "net");
    let mut dup = LinkFaults::CLEAN;
    dup.duplicate_ppm = 1_000_000;
    net.add_faults(1, all_links(), both(), dup);
    for channel in [Channel::Datagram, Channel::Stream] {
        let got = flights(net.send(&mut rng, 0, 3, 1, channel));
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].copy, CopyKind::Duplicate);
        for flight in got {
            assert_eq!(net.admit(3, 1, channel, flight.generation), Ok(()));
        }
    }
}

#[test]
fn stream_duplicates_do_not_hold_up_later_messages() {
    let mut net = net();
    let mut rng = SimRng::stream(11, "net");
    let mut dup = LinkFaults::CLEAN;
    dup.duplicate_ppm = 1_000_000;
    dup.reorder_extra_ns = 500_000_000;
    net.add_faults(1, all_links(), both(), dup);
    for i in 0..1_000 {
        let got = flights(net.send(&mut rng, i * 1_000_000, 1, 2, Channel::Stream));
        // The original always arrives within the link delay.
        assert!(got[0].deliver_at <= i * 1_000_000 + LinkFaults::CLEAN.delay_max_ns);
    }
}

#[test]
fn lossy_datagrams_drop_about_the_configured_share() {
    let mut net = net();
    let mut rng = SimRng::stream(9, "net");
    let mut lossy = LinkFaults::CLEAN;
    lossy.drop_ppm = 300_000;
    net.add_faults(
        1,
        all_links(),
        [Channel::Datagram].into_iter().collect(),
        lossy,
    );
    let lost = (0..10_000)
        .filter(|_| {
            matches!(
                net.send(&mut rng, 0, 1, 2, Channel::Datagram),
                SendOutcome::Lost(_)
            )
        })
        .count();
    assert!((2_500..3_500).contains(&lost), "lost {lost} of 10000");
}

#[test]
fn layers_combine_to_the_worst() {
    let mut net = net();
    let mut a = LinkFaults::CLEAN;
    a.drop_ppm = 10;
    let mut b = LinkFaults::CLEAN;
    b.delay_max_ns = 9_000_000;
    net.add_faults(1, all_links(), both(), a);
    net.add_faults(2, [(1, 2)].into_iter().collect(), both(), b);
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
    let mut net = net();
    let mut rng = SimRng::stream(10, "net");
    let out = flights(net.send(&mut rng, 0, 1, 2, Channel::Stream))[0];
    let inc = flights(net.send(&mut rng, 0, 3, 1, Channel::Stream))[0];
    let other = flights(net.send(&mut rng, 0, 2, 3, Channel::Stream))[0];
    net.reset_node(1);
    assert_eq!(
        net.admit(1, 2, Channel::Stream, out.generation),
        Err(Loss::ConnectionReset)
    );
    assert_eq!(
        net.admit(3, 1, Channel::Stream, inc.generation),
        Err(Loss::ConnectionReset)
    );
    assert_eq!(net.admit(2, 3, Channel::Stream, other.generation), Ok(()));
}
