//! Who is cut off and who can still serve, from a connectivity snapshot: the
//! minority side of a partition (I6) and the largest fully connected quorum
//! (I12), plus the timing bounds every caller derives from the heartbeat and
//! the election timeout. Pure; the lab (from its partition timeline) and the
//! simulator (from its network as the nemesis changes it) both call these.
//! Invariant ids refer to the table in crates/checker/README.md.

/// The smallest majority of `nodes` nodes.
pub fn quorum_size(nodes: usize) -> usize {
    nodes / 2 + 1
}

/// Nodes connected to `node` in both directions (per `linked`), itself
/// included.
fn neighbourhood<'a>(
    node: &str,
    nodes: &'a [String],
    linked: &impl Fn(&str, &str) -> bool,
) -> Vec<&'a String> {
    nodes
        .iter()
        .filter(|other| *other == node || linked(node, other))
        .collect()
}

/// The `members` that cannot reach a quorum of `cluster_size` directly in
/// both directions: they must not acknowledge writes (I6), and cannot lead.
/// `linked(a, b)` says whether packets flow both ways between `a` and `b`;
/// members are usually the whole cluster (the simulator also asks about its
/// healthy nodes only).
pub fn minority(
    members: &[String],
    cluster_size: usize,
    linked: impl Fn(&str, &str) -> bool,
) -> Vec<String> {
    members
        .iter()
        .filter(|node| neighbourhood(node, members, &linked).len() < quorum_size(cluster_size))
        .cloned()
        .collect()
}

/// The largest set of `members` that are pairwise linked in both directions,
/// if it is a quorum of `cluster_size` (I12). Brute force over subsets:
/// clusters have at most 16 members (`None` beyond).
pub fn connected_quorum(
    members: &[String],
    cluster_size: usize,
    linked: impl Fn(&str, &str) -> bool,
) -> Option<Vec<String>> {
    let size = members.len();
    if size > 16 {
        return None;
    }
    let mut best: Vec<String> = Vec::new();
    for mask in 1u32..(1 << size) {
        if (mask.count_ones() as usize) <= best.len() {
            continue;
        }
        let chosen: Vec<&String> = (0..size)
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| &members[i])
            .collect();
        let clique = chosen
            .iter()
            .all(|a| chosen.iter().all(|b| a == b || linked(a, b)));
        if clique {
            best = chosen.into_iter().cloned().collect();
        }
    }
    (best.len() >= quorum_size(cluster_size)).then_some(best)
}

/// The heartbeat and the longest election timeout, from which the I6 and
/// I12 bounds follow (see "Timing terms" in crates/checker/README.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElectionTiming {
    /// Leader heartbeat interval (ns).
    pub heartbeat_ns: u64,
    /// Longest randomized election timeout, `ET_max` (ns).
    pub election_timeout_max_ns: u64,
}

impl ElectionTiming {
    /// `X = 2·ET_max + 2·HB`: CheckQuorum runs every election timeout, so a
    /// leader cut off from its quorum steps down within about `2·ET_max`,
    /// and a heartbeat round later every minority node refuses writes (I6 b).
    pub fn minority_reject_bound_ns(&self) -> u64 {
        2 * self.election_timeout_max_ns + 2 * self.heartbeat_ns
    }

    /// `2·ET_max`: after a fault ends, a stale leader's lease and the
    /// followers' election timers have run out; from then on the cluster is
    /// calm (at most one election per window, I11).
    pub fn settle_ns(&self) -> u64 {
        2 * self.election_timeout_max_ns
    }

    /// `T_live = X + 2·ET_max + 200 ms`: once its minority has stepped down
    /// (`X`), a quorum elects a leader within two election timeouts (a
    /// PreVote round refused while the old leader's heartbeats are still
    /// fresh, then one that wins), plus time for a client to find it.
    pub fn live_bound_ns(&self) -> u64 {
        self.minority_reject_bound_ns() + 2 * self.election_timeout_max_ns + 200_000_000
    }

    /// I12's grace `2·ET_max + T_live`: how long a quorum must have been
    /// connected before a write through it must succeed.
    pub fn progress_grace_ns(&self) -> u64 {
        2 * self.election_timeout_max_ns + self.live_bound_ns()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    /// `linked` for a set of cut undirected links.
    fn cut(links: &'static [(&'static str, &'static str)]) -> impl Fn(&str, &str) -> bool {
        move |a, b| {
            !links
                .iter()
                .any(|(x, y)| (*x == a && *y == b) || (*x == b && *y == a))
        }
    }

    #[test]
    fn an_isolated_node_is_the_minority_and_the_rest_the_quorum() {
        let nodes = names(5);
        let linked = cut(&[("n1", "n2"), ("n1", "n3"), ("n1", "n4"), ("n1", "n5")]);
        assert_eq!(minority(&nodes, nodes.len(), &linked), vec!["n1"]);
        assert_eq!(
            connected_quorum(&nodes, 5, &linked),
            Some(vec!["n2".into(), "n3".into(), "n4".into(), "n5".into()])
        );
    }

    #[test]
    fn a_bridge_leaves_no_minority_and_a_quorum_through_the_bridge() {
        // {n1,n2} | n3 | {n4,n5}: n3 reaches both sides.
        let nodes = names(5);
        let linked = cut(&[("n1", "n4"), ("n1", "n5"), ("n2", "n4"), ("n2", "n5")]);
        assert!(minority(&nodes, nodes.len(), &linked).is_empty());
        assert_eq!(
            connected_quorum(&nodes, 5, &linked).map(|q| q.len()),
            Some(3)
        );
    }

    #[test]
    fn a_relayed_node_is_still_a_minority() {
        // n1 reaches only n2: it cannot gather a quorum of 3 directly.
        let nodes = names(5);
        let linked = cut(&[("n1", "n3"), ("n1", "n4"), ("n1", "n5")]);
        assert_eq!(minority(&nodes, nodes.len(), &linked), vec!["n1"]);
    }

    #[test]
    fn an_even_split_has_no_quorum_and_the_members_can_be_fewer_than_the_cluster() {
        let nodes = names(4);
        let linked = cut(&[("n1", "n3"), ("n1", "n4"), ("n2", "n3"), ("n2", "n4")]);
        assert_eq!(minority(&nodes, 4, &linked).len(), 4);
        assert_eq!(connected_quorum(&nodes, 4, &linked), None);
        // Three healthy members of five, all linked: none is cut off; two
        // would be.
        assert!(minority(&names(3), 5, |_, _| true).is_empty());
        assert_eq!(minority(&names(2), 5, |_, _| true).len(), 2);
        // Two of five members left alive cannot be a quorum of five.
        assert_eq!(connected_quorum(&names(2), 5, |_, _| true), None);
        assert_eq!(
            connected_quorum(&names(3), 5, |_, _| true).map(|q| q.len()),
            Some(3)
        );
    }

    #[test]
    fn bounds_follow_the_timing_terms() {
        let timing = ElectionTiming {
            heartbeat_ns: 50_000_000,
            election_timeout_max_ns: 500_000_000,
        };
        assert_eq!(timing.minority_reject_bound_ns(), 1_100_000_000);
        assert_eq!(timing.settle_ns(), 1_000_000_000);
        assert_eq!(timing.live_bound_ns(), 2_300_000_000);
        assert_eq!(timing.progress_grace_ns(), 3_300_000_000);
    }
}
