//! Topology text → validated [`Topology`]: the raw serde shape of the file
//! (with spans), and the whole-file checks that turn it into the model or a
//! `file:line:column` error.

use super::{BaseShaping, NodeSpec, Topology, TopologyError, all_pairs};
use crate::naming::MAX_NODES;
use crate::shaping::{LinkShaping, Ports};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::ops::Range;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTopology {
    name: Option<String>,
    #[serde(default)]
    #[allow(dead_code)] // free text for readers of the file
    description: Option<String>,
    ports: Option<RawPorts>,
    #[serde(default)]
    node: Vec<RawNode>,
    link: Option<Vec<RawLink>>,
    #[serde(default)]
    shape: Vec<Spanned<RawShape>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPorts {
    peer: Option<Spanned<i64>>,
    client: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    name: Spanned<String>,
    region: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLink {
    a: Spanned<String>,
    b: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShape {
    from: Spanned<String>,
    to: Spanned<String>,
    #[serde(default)]
    both_ways: bool,
    delay_ms: Option<Spanned<f64>>,
    jitter_ms: Option<Spanned<f64>>,
    loss_pct: Option<Spanned<f64>>,
    duplicate_pct: Option<Spanned<f64>>,
    corrupt_pct: Option<Spanned<f64>>,
    reorder_pct: Option<Spanned<f64>>,
    rate_kbit: Option<Spanned<i64>>,
}

/// Maps byte offsets to line:column for one source text.
struct Source<'a> {
    file: &'a str,
    text: &'a str,
}

impl Source<'_> {
    fn error(&self, span: Option<Range<usize>>, message: impl Into<String>) -> TopologyError {
        let (line, column) = match span {
            Some(span) => line_column(self.text, span.start),
            None => (0, 0),
        };
        TopologyError {
            file: self.file.to_string(),
            line,
            column,
            message: message.into(),
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = text[line_start..offset].chars().count() + 1;
    (line, column)
}

fn valid_node_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
}

/// Parses and validates topology text; see [`Topology::from_toml_str`].
pub(super) fn parse(text: &str, file: &str, default_name: &str) -> Result<Topology, TopologyError> {
    let source = Source { file, text };
    let raw: RawTopology = toml::from_str(text)
        .map_err(|e| source.error(e.span(), e.message().trim_end().replace('\n', " ")))?;
    build(&source, raw, default_name)
}

fn build(
    source: &Source<'_>,
    raw: RawTopology,
    default_name: &str,
) -> Result<Topology, TopologyError> {
    if raw.node.is_empty() {
        return Err(source.error(
            Some(0..0),
            "the topology defines no nodes; add [[node]] tables with a name",
        ));
    }
    if raw.node.len() > MAX_NODES {
        let span = raw.node[MAX_NODES].name.span();
        return Err(source.error(
            Some(span),
            format!("at most {MAX_NODES} nodes are supported"),
        ));
    }
    let mut ports = Ports::default();
    if let Some(raw_ports) = &raw.ports {
        let port = |value: &Option<Spanned<i64>>, default: u16| match value {
            None => Ok(default),
            Some(v) => u16::try_from(*v.get_ref())
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| {
                    source.error(
                        Some(v.span()),
                        format!("port {} is not within 1..=65535", v.get_ref()),
                    )
                }),
        };
        ports.peer = port(&raw_ports.peer, ports.peer)?;
        ports.client = port(&raw_ports.client, ports.client)?;
        if ports.peer == ports.client {
            let span = raw_ports.client.as_ref().map(Spanned::span);
            return Err(source.error(
                span,
                "the client port must differ from the peer port (planes are told apart by port)",
            ));
        }
    }

    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    let mut nodes = Vec::new();
    for (i, node) in raw.node.iter().enumerate() {
        let name = node.name.get_ref();
        if !valid_node_name(name) {
            return Err(source.error(
                Some(node.name.span()),
                format!("node name {name:?} must be 1..=32 of [a-z0-9-] and not start with '-'"),
            ));
        }
        if index.insert(name.clone(), i).is_some() {
            return Err(source.error(
                Some(node.name.span()),
                format!("duplicate node name {name:?}"),
            ));
        }
        nodes.push(NodeSpec {
            name: name.clone(),
            region: node.region.clone(),
        });
    }
    let valid_names = nodes
        .iter()
        .map(|n| n.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let resolve = |name: &Spanned<String>| {
        index.get(name.get_ref()).copied().ok_or_else(|| {
            source.error(
                Some(name.span()),
                format!(
                    "unknown node {:?}; valid names: {valid_names}",
                    name.get_ref()
                ),
            )
        })
    };

    // The two ends of a link or a shape, refused (at the second) when they
    // are the same node.
    let ends = |a: &Spanned<String>, b: &Spanned<String>, self_link: &dyn Fn(&str) -> String| {
        let (ia, ib) = (resolve(a)?, resolve(b)?);
        if ia == ib {
            return Err(source.error(Some(b.span()), self_link(a.get_ref())));
        }
        Ok((ia, ib))
    };

    let links = match &raw.link {
        None => all_pairs(nodes.len()),
        Some(raw_links) => {
            let mut seen = BTreeMap::new();
            for link in raw_links {
                let (a, b) = ends(&link.a, &link.b, &|a| {
                    format!("self-link: {a:?} is linked to itself")
                })?;
                let key = (a.min(b), a.max(b));
                if seen.insert(key, ()).is_some() {
                    return Err(source.error(
                        Some(link.a.span()),
                        format!(
                            "duplicate link {} -- {}",
                            nodes[key.0].name, nodes[key.1].name
                        ),
                    ));
                }
            }
            seen.into_keys().collect()
        }
    };

    let mut shapes: Vec<BaseShaping> = Vec::new();
    let mut shaped: BTreeMap<(usize, usize), ()> = BTreeMap::new();
    for spanned in &raw.shape {
        let entry = spanned.get_ref();
        let (from, to) = ends(&entry.from, &entry.to, &|a| {
            format!("self-link: shape from {a:?} to itself")
        })?;
        let key = (from.min(to), from.max(to));
        if links.binary_search(&key).is_err() {
            return Err(source.error(
                Some(entry.from.span()),
                format!(
                    "no link between {:?} and {:?} to shape",
                    entry.from.get_ref(),
                    entry.to.get_ref()
                ),
            ));
        }
        let value = |v: &Option<Spanned<f64>>| v.as_ref().map(|s| *s.get_ref());
        let rate = match &entry.rate_kbit {
            None => None,
            Some(r) => Some(u64::try_from(*r.get_ref()).map_err(|_| {
                source.error(Some(r.span()), "rate_kbit must be a positive integer")
            })?),
        };
        let shape = LinkShaping {
            delay_ms: value(&entry.delay_ms),
            jitter_ms: value(&entry.jitter_ms),
            loss_pct: value(&entry.loss_pct),
            duplicate_pct: value(&entry.duplicate_pct),
            corrupt_pct: value(&entry.corrupt_pct),
            reorder_pct: value(&entry.reorder_pct),
            rate_kbit: rate,
        };
        if let Err(e) = shape.validate() {
            let field_span = match e.field {
                "delay_ms" => entry.delay_ms.as_ref().map(Spanned::span),
                "jitter_ms" => entry.jitter_ms.as_ref().map(Spanned::span),
                "loss_pct" => entry.loss_pct.as_ref().map(Spanned::span),
                "duplicate_pct" => entry.duplicate_pct.as_ref().map(Spanned::span),
                "corrupt_pct" => entry.corrupt_pct.as_ref().map(Spanned::span),
                "reorder_pct" => entry.reorder_pct.as_ref().map(Spanned::span),
                "rate_kbit" => entry.rate_kbit.as_ref().map(Spanned::span),
                _ => None,
            };
            return Err(source.error(field_span.or(Some(spanned.span())), e.to_string()));
        }
        let mut directions = vec![(from, to)];
        if entry.both_ways {
            directions.push((to, from));
        }
        for (f, t) in directions {
            if shaped.insert((f, t), ()).is_some() {
                return Err(source.error(
                    Some(entry.from.span()),
                    format!("duplicate shape for {} -> {}", nodes[f].name, nodes[t].name),
                ));
            }
            shapes.push(BaseShaping {
                from: nodes[f].name.clone(),
                to: nodes[t].name.clone(),
                shape,
            });
        }
    }

    Ok(Topology {
        name: raw.name.unwrap_or_else(|| default_name.to_string()),
        ports,
        nodes,
        links,
        shapes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse(text: &str) -> Result<Topology, TopologyError> {
        Topology::from_toml_str(text, "t.toml", "t")
    }

    #[test]
    fn a_full_mesh_by_default() {
        let topo =
            parse("[[node]]\nname = \"a\"\n[[node]]\nname = \"b\"\n[[node]]\nname = \"c\"\n")
                .unwrap();
        assert_eq!(topo.links, vec![(0, 1), (0, 2), (1, 2)]);
        assert_eq!(topo.name, "t");
        assert_eq!(topo.ports, Ports::default());
    }

    #[test]
    fn unknown_fields_are_located() {
        let err = parse("[[node]]\nname = \"a\"\ncolour = \"red\"\n").unwrap_err();
        assert_eq!((err.line, err.column), (3, 1), "{err}");
        assert!(err.message.contains("colour"), "{err}");
        assert!(err.to_string().starts_with("t.toml:3:1: "), "{err}");
    }

    #[test]
    fn syntax_and_type_errors_are_located() {
        let err = parse("[[node]]\nname = \"a\n").unwrap_err();
        assert_eq!(err.line, 2, "{err}");
        let err = parse("[[node]]\nname = 5\n").unwrap_err();
        assert_eq!((err.line, err.column), (2, 8), "{err}");
    }

    #[test]
    fn missing_nodes_is_an_error() {
        let err = parse("name = \"x\"\n").unwrap_err();
        assert!(err.message.contains("no nodes"), "{err}");
    }

    #[test]
    fn duplicate_nodes_are_located() {
        let err = parse("[[node]]\nname = \"a\"\n[[node]]\nname = \"a\"\n").unwrap_err();
        assert_eq!((err.line, err.column), (4, 8), "{err}");
        assert!(err.message.contains("duplicate node name"), "{err}");
    }

    #[test]
    fn unknown_references_list_valid_names() {
        let text =
            "[[node]]\nname = \"a\"\n[[node]]\nname = \"b\"\n[[link]]\na = \"a\"\nb = \"n9\"\n";
        let err = parse(text).unwrap_err();
        assert_eq!((err.line, err.column), (7, 5), "{err}");
        assert!(err.message.contains("unknown node \"n9\""), "{err}");
        assert!(err.message.contains("valid names: a, b"), "{err}");
    }

    #[test]
    fn self_and_duplicate_links_are_rejected() {
        let nodes = "[[node]]\nname = \"a\"\n[[node]]\nname = \"b\"\n";
        let err = parse(&format!("{nodes}[[link]]\na = \"a\"\nb = \"a\"\n")).unwrap_err();
        assert!(err.message.contains("self-link"), "{err}");
        let err = parse(&format!(
            "{nodes}[[link]]\na = \"a\"\nb = \"b\"\n[[link]]\na = \"b\"\nb = \"a\"\n"
        ))
        .unwrap_err();
        assert!(err.message.contains("duplicate link a -- b"), "{err}");
        assert_eq!(err.line, 9, "{err}");
    }

    #[test]
    fn bad_shape_values_point_at_the_value() {
        let text = "[[node]]\nname = \"a\"\n[[node]]\nname = \"b\"\n[[shape]]\nfrom = \"a\"\nto = \"b\"\nloss_pct = 120\n";
        let err = parse(text).unwrap_err();
        assert_eq!((err.line, err.column), (8, 12), "{err}");
        assert!(err.message.starts_with("loss_pct:"), "{err}");
    }

    #[test]
    fn shapes_expand_both_ways_and_reject_duplicates() {
        let base = "[[node]]\nname = \"a\"\n[[node]]\nname = \"b\"\n[[shape]]\nfrom = \"a\"\nto = \"b\"\nboth_ways = true\ndelay_ms = 10\n";
        let topo = parse(base).unwrap();
        assert_eq!(topo.shapes.len(), 2);
        assert_eq!(topo.shapes[1].from, "b");
        let err = parse(&format!("{base}[[shape]]\nfrom = \"b\"\nto = \"a\"\n")).unwrap_err();
        assert!(err.message.contains("duplicate shape for b -> a"), "{err}");
    }

    #[test]
    fn bad_ports_and_names() {
        let err = parse("[ports]\npeer = 70000\n[[node]]\nname = \"a\"\n").unwrap_err();
        assert_eq!((err.line, err.column), (2, 8), "{err}");
        let err = parse("[ports]\npeer = 7\nclient = 7\n[[node]]\nname = \"a\"\n").unwrap_err();
        assert!(err.message.contains("must differ"), "{err}");
        let err = parse("[[node]]\nname = \"US East\"\n").unwrap_err();
        assert!(err.message.contains("[a-z0-9-]"), "{err}");
    }

    #[test]
    fn built_topologies_round_trip_through_validation() {
        let mut topo = Topology::full_mesh(3);
        topo.validate().unwrap();
        topo.shapes.push(BaseShaping {
            from: "n1".into(),
            to: "n9".into(),
            shape: LinkShaping::default(),
        });
        let err = topo.validate().unwrap_err();
        assert!(err.message.contains("valid names: n1, n2, n3"), "{err}");
    }

    #[test]
    fn shipped_topologies_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../lab/topologies");
        let mut seen = Vec::new();
        for name in ["wan-3dc", "mesh-3", "mesh-5", "mesh-7"] {
            let topo = Topology::load(&dir.join(format!("{name}.toml"))).unwrap();
            seen.push((name, topo.nodes.len()));
        }
        assert_eq!(
            seen,
            vec![("wan-3dc", 3), ("mesh-3", 3), ("mesh-5", 5), ("mesh-7", 7)]
        );
    }
}
