//! Reading back what the kernel did: the packet counters of the run's nft
//! rules and the statistics of each namespace's qdiscs (`nft -j`, `tc -s -j`),
//! so a run records the rules' own view next to the probes' measurements.

use crate::error::NetlabError;
use crate::lab::{Lab, Target};
use crate::tools::run_in;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// One counted nft rule of the run's table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleCounter {
    /// The chain it sits in (`input`, `in_n2_all`, ...).
    pub chain: String,
    /// The rule's comment (empty when it has none), e.g. `partition n1 all`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    /// Packets that hit the rule.
    pub packets: u64,
    /// Bytes that hit the rule.
    pub bytes: u64,
}

/// Statistics of one qdisc (netem, tbf) on a lab interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QdiscCounter {
    /// Interface.
    pub dev: String,
    /// Qdisc kind (`netem`, `tbf`, ...).
    pub kind: String,
    /// Packets sent.
    pub packets: u64,
    /// Packets dropped.
    pub drops: u64,
    /// Times the qdisc was over its limit (tbf: throttled).
    pub overlimits: u64,
}

/// What one namespace's rules and qdiscs counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NsCounters {
    /// Counted rules of the run's nft table (none when the table is absent).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleCounter>,
    /// Qdiscs other than the defaults (`noqueue`, `noop`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub qdiscs: Vec<QdiscCounter>,
}

/// The counted rules in `nft -j list table ...` output.
pub fn parse_nft_counters(json: &str) -> Vec<RuleCounter> {
    let Ok(value) = serde_json::from_str::<Value>(json) else {
        return Vec::new();
    };
    let items = value["nftables"].as_array().cloned().unwrap_or_default();
    items
        .iter()
        .filter_map(|item| {
            let rule = item.get("rule")?;
            let counter = rule["expr"]
                .as_array()?
                .iter()
                .find_map(|expr| expr.get("counter"))?;
            Some(RuleCounter {
                chain: rule["chain"].as_str().unwrap_or_default().to_string(),
                comment: rule["comment"].as_str().unwrap_or_default().to_string(),
                packets: counter["packets"].as_u64().unwrap_or(0),
                bytes: counter["bytes"].as_u64().unwrap_or(0),
            })
        })
        .collect()
}

/// The non-default qdiscs in `tc -s -j qdisc show` output.
pub fn parse_tc_stats(json: &str) -> Vec<QdiscCounter> {
    let Ok(Value::Array(items)) = serde_json::from_str::<Value>(json) else {
        return Vec::new();
    };
    items
        .iter()
        .filter(|q| !matches!(q["kind"].as_str(), Some("noqueue" | "noop") | None))
        .map(|q| QdiscCounter {
            dev: q["dev"].as_str().unwrap_or_default().to_string(),
            kind: q["kind"].as_str().unwrap_or_default().to_string(),
            packets: q["packets"].as_u64().unwrap_or(0),
            drops: q["drops"].as_u64().unwrap_or(0),
            overlimits: q["overlimits"].as_u64().unwrap_or(0),
        })
        .collect()
}

impl Lab {
    /// Reads every node namespace's rule counters and qdisc statistics.
    /// A namespace without the run's table (no rules in force) has no rules.
    ///
    /// # Errors
    /// A namespace that cannot be entered.
    pub fn kernel_counters(&self) -> Result<BTreeMap<String, NsCounters>, NetlabError> {
        let table = self.run_id().nft_table();
        let mut out = BTreeMap::new();
        for node in self.topology().node_names() {
            let ns = self.netns_of(&Target::Node(node.clone()))?;
            let args = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
            let rules = run_in(
                &ns,
                "nft",
                &args(&["-j", "list", "table", "ip", &table]),
                "",
            )
            .map(|json| parse_nft_counters(&json))
            .unwrap_or_default();
            let qdiscs = run_in(&ns, "tc", &args(&["-s", "-j", "qdisc", "show"]), "")
                .map(|json| parse_tc_stats(&json))
                .unwrap_or_default();
            out.insert(node, NsCounters { rules, qdiscs });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_come_from_nft_and_tc_json() {
        let nft = r#"{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"table": {"family": "ip", "name": "t"}},
          {"rule": {"family": "ip", "table": "t", "chain": "input", "handle": 3, "comment": "partition n3 all",
            "expr": [{"match": {}}, {"counter": {"packets": 12, "bytes": 840}}, {"drop": null}]}},
          {"rule": {"chain": "in_n2_all", "expr": [{"jump": {"target": "x"}}]}}]}"#;
        assert_eq!(
            parse_nft_counters(nft),
            vec![RuleCounter {
                chain: "input".into(),
                comment: "partition n3 all".into(),
                packets: 12,
                bytes: 840
            }]
        );
        let tc = r#"[{"kind":"noqueue","dev":"lo","packets":0,"drops":0,"overlimits":0},
          {"kind":"tbf","dev":"sl1n1e2","packets":90,"drops":3,"overlimits":40}]"#;
        assert_eq!(
            parse_tc_stats(tc),
            vec![QdiscCounter {
                dev: "sl1n1e2".into(),
                kind: "tbf".into(),
                packets: 90,
                drops: 3,
                overlimits: 40
            }]
        );
    }
}
