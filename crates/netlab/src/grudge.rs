//! Partitions as data for netlab: the shared [`faults::Grudge`] over node
//! names, plus the Jepsen constructors under the names the lab already uses.
//! Direction: a cut `from → to` means `to` drops every packet from `from`.

/// Directed cuts between named nodes; `drops(from, to)` is true when packets
/// sent by `from` never reach `to`. Serialized as Jepsen's map keyed by the
/// receiver (`{"n3": ["n1"]}`: n3 drops n1's packets).
pub type Grudge = faults::Grudge<String>;

pub use faults::{bisect, bridge, complete, majorities_ring, one_way, shuffled};

/// Cuts one node off from all others, both ways (Jepsen `isolate-one`); the
/// name-borrowing form of [`faults::isolate`].
pub fn isolate_one(node: &str, nodes: &[String]) -> Grudge {
    faults::isolate(node.to_string(), nodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    fn grudge(pairs: &[(&str, &[&str])]) -> Grudge {
        let mut g = Grudge::default();
        for (to, froms) in pairs {
            for from in *froms {
                g.block(from.to_string(), to.to_string());
            }
        }
        g
    }

    fn cut_links(g: &Grudge) -> Vec<(String, String)> {
        g.cut_links().map(|(f, t)| (f.clone(), t.clone())).collect()
    }

    #[test]
    fn complete_partition_two_three() {
        let g = complete(&[names(2), names(5)[2..].to_vec()]);
        assert!(g.drops("n1", "n3") && g.drops("n3", "n1"));
        assert!(!g.drops("n1", "n2") && !g.drops("n3", "n4"));
        assert_eq!(cut_links(&g).len(), 12);
    }

    #[test]
    fn bridge_matches_jepsen() {
        let expected = grudge(&[
            ("n1", &["n4", "n5"]),
            ("n2", &["n4", "n5"]),
            ("n4", &["n1", "n2"]),
            ("n5", &["n1", "n2"]),
        ]);
        assert_eq!(bridge(&names(5)), expected);
    }

    #[test]
    fn one_way_cuts_a_single_direction() {
        let g = one_way(&["n1".to_string()], &names(3));
        assert!(g.drops("n1", "n2") && g.drops("n1", "n3"));
        assert!(!g.drops("n2", "n1"));
    }

    #[test]
    fn isolate_one_is_symmetric() {
        let g = isolate_one("n3", &names(3));
        assert_eq!(
            cut_links(&g),
            vec![
                ("n1".into(), "n3".into()),
                ("n2".into(), "n3".into()),
                ("n3".into(), "n1".into()),
                ("n3".into(), "n2".into())
            ]
        );
    }

    #[test]
    fn shuffle_is_deterministic_permutation() {
        let a = shuffled(&names(7), 42);
        assert_eq!(a, shuffled(&names(7), 42));
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, names(7));
    }

    #[test]
    fn serialized_form_is_keyed_by_receiver() {
        let g = one_way(&["n1".to_string()], &["n3".to_string()]);
        assert_eq!(serde_json::to_string(&g).unwrap(), r#"{"n3":["n1"]}"#);
        let back: Grudge = serde_json::from_str(r#"{"n3":["n1"]}"#).unwrap();
        assert_eq!(back, g);
    }
}
