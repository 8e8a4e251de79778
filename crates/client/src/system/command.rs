//! Rendering a description's command template for one member: the
//! `{placeholders}` a template may use and the argv they produce.
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

/// Placeholders of `[command] args` and option `args`.
pub const MEMBER_PLACEHOLDERS: [&str; 10] = [
    "name",
    "addr",
    "client_port",
    "peer_port",
    "data_dir",
    "cluster",
    "heartbeat_ms",
    "election_timeout_ms",
    "election_timeout_max_ms",
    "peers",
];

/// Placeholders of `[command] peer` (one `{peers}` entry).
pub const PEER_PLACEHOLDERS: [&str; 4] =
    ["peer_name", "peer_addr", "peer_port", "peer_client_port"];

/// Everything a member's command line may mention.
#[derive(Debug, Clone)]
pub struct MemberContext {
    /// The member's node name.
    pub name: String,
    /// The cluster (scenario) name.
    pub cluster: String,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// Heartbeat interval (ms).
    pub heartbeat_ms: u64,
    /// Election timeout, lower and upper bound (ms).
    pub election_timeout_ms: (u64, u64),
    /// Every member (this one included) with its node address, in order.
    pub members: Vec<(String, IpAddr)>,
}

/// Replaces every `{key}` of `template` from `values`.
///
/// # Errors
/// The first placeholder `values` has no entry for, or an unclosed brace.
pub(super) fn render(template: &str, values: &BTreeMap<&str, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("unclosed '{{' in \"{template}\""))?;
        let key = &after[..close];
        let value = values.get(key).ok_or_else(|| {
            let known: Vec<&str> = values.keys().copied().collect();
            format!(
                "unknown placeholder {{{key}}} (known: {})",
                known.join(", ")
            )
        })?;
        out.push_str(value);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Sample values for checking templates when a description is parsed.
pub(super) fn sample_values(names: &[&'static str]) -> BTreeMap<&'static str, String> {
    names.iter().map(|name| (*name, "x".to_string())).collect()
}

/// The member's argv: the template's args, then each option's args.
pub(super) fn member_args(
    template: &super::model::CommandTemplate,
    ports: super::model::Ports,
    member: &MemberContext,
    options: &[(String, Vec<String>)],
) -> Result<Vec<String>, String> {
    let addr_of = |name: &str| {
        member
            .members
            .iter()
            .find(|(node, _)| node == name)
            .map(|(_, addr)| addr.to_string())
            .unwrap_or_default()
    };
    let peers = match &template.peer {
        Some(peer) => member
            .members
            .iter()
            .map(|(name, addr)| {
                let values = BTreeMap::from([
                    ("peer_name", name.clone()),
                    ("peer_addr", addr.to_string()),
                    ("peer_port", ports.peer.to_string()),
                    ("peer_client_port", ports.client.to_string()),
                ]);
                render(peer.get_ref(), &values)
            })
            .collect::<Result<Vec<_>, _>>()?
            .join(&template.peer_separator),
        None => String::new(),
    };
    let mut values = BTreeMap::from([
        ("name", member.name.clone()),
        ("addr", addr_of(&member.name)),
        ("client_port", ports.client.to_string()),
        ("peer_port", ports.peer.to_string()),
        ("data_dir", member.data_dir.display().to_string()),
        ("cluster", member.cluster.clone()),
        ("heartbeat_ms", member.heartbeat_ms.to_string()),
        (
            "election_timeout_ms",
            member.election_timeout_ms.0.to_string(),
        ),
        (
            "election_timeout_max_ms",
            member.election_timeout_ms.1.to_string(),
        ),
        ("peers", peers),
    ]);
    let mut args = template
        .args
        .iter()
        .map(|arg| render(arg.get_ref(), &values))
        .collect::<Result<Vec<_>, _>>()?;
    for (value, option_args) in options {
        values.insert("value", value.clone());
        for arg in option_args {
            args.push(render(arg, &values)?);
        }
    }
    Ok(args)
}
