//! Pure quorum arithmetic shared by every strategy.
use wire::Index;

/// A strict majority of `members`; never below 2 for a two-node cluster.
pub fn quorum_size(members: usize) -> usize {
    members / 2 + 1
}

/// True if `count` voters (the local one included) form a quorum.
pub fn is_quorum(count: usize, members: usize) -> bool {
    count >= quorum_size(members)
}

/// The highest index that a quorum of `match_indexes` (one per member, the
/// leader's own durable index included) has reached.
pub fn quorum_index(match_indexes: &[Index]) -> Index {
    let mut sorted = match_indexes.to_vec();
    sorted.sort_unstable_by(|left, right| right.cmp(left));
    let quorum = quorum_size(sorted.len());
    sorted.get(quorum - 1).copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_sizes_table() {
        let table = [
            (1, 1),
            (2, 2),
            (3, 2),
            (4, 3),
            (5, 3),
            (6, 4),
            (7, 4),
            (9, 5),
        ];
        for (members, quorum) in table {
            assert_eq!(quorum_size(members), quorum, "{members} members");
        }
    }

    #[test]
    fn two_node_quorum_is_two() {
        assert!(!is_quorum(1, 2));
        assert!(is_quorum(2, 2));
        assert_eq!(quorum_index(&[10, 3]), 3);
    }

    #[test]
    fn quorum_index_table() {
        let table: [(&[Index], Index); 5] = [
            (&[5], 5),
            (&[5, 4, 3], 4),
            (&[1, 9, 9], 9),
            (&[7, 0, 0, 0, 7], 0),
            (&[7, 6, 0, 0, 7], 6),
        ];
        for (matches, expected) in table {
            assert_eq!(quorum_index(matches), expected, "{matches:?}");
        }
    }
}
