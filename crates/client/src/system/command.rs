//! Rendering a description's command template for one member: the
//! `{placeholders}` a template may use and the argv they produce.
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

/// Placeholders of `[command] args`, option `args`, `[[files]]` texts and
/// `[[companion]]` args (besides `{option:<name>}`, each option's value).
pub const MEMBER_PLACEHOLDERS: [&str; 15] = [
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
    "seed_name",
    "seed_addr",
    "discovery_port",
    "quorum",
    "member_count",
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
pub(super) fn render(template: &str, values: &Values) -> Result<String, String> {
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
            let known: Vec<&str> = values.keys().map(String::as_str).collect();
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

/// Placeholder name → value.
pub(super) type Values = BTreeMap<String, String>;

/// The placeholder of an option's value in files and companions.
pub(super) fn option_placeholder(option: &str) -> String {
    format!("option:{option}")
}

/// Sample values for checking templates when a description is parsed.
pub(super) fn sample_values(names: &[&str]) -> Values {
    names
        .iter()
        .map(|name| (name.to_string(), "x".to_string()))
        .collect()
}

/// Every placeholder's value for one member: its own, the seed's, the
/// quorum, `{peers}` and each option's value as `{option:<name>}`.
pub(super) fn member_values(
    template: Option<&super::model::CommandTemplate>,
    ports: super::model::Ports,
    member: &MemberContext,
    options: &[(String, String)],
) -> Result<Values, String> {
    let addr_of = |name: &str| {
        member
            .members
            .iter()
            .find(|(node, _)| node == name)
            .map(|(_, addr)| addr.to_string())
            .unwrap_or_default()
    };
    let peers = match template.and_then(|t| t.peer.as_ref().map(|peer| (t, peer))) {
        Some((template, peer)) => member
            .members
            .iter()
            .map(|(name, addr)| {
                let values = Values::from([
                    ("peer_name".into(), name.clone()),
                    ("peer_addr".into(), addr.to_string()),
                    ("peer_port".into(), ports.peer.to_string()),
                    ("peer_client_port".into(), ports.client.to_string()),
                ]);
                render(peer.get_ref(), &values)
            })
            .collect::<Result<Vec<_>, _>>()?
            .join(&template.peer_separator),
        None => String::new(),
    };
    let seed = member.members.first().map(|(name, _)| name.clone());
    let count = member.members.len();
    let mut values = Values::from([
        ("name".into(), member.name.clone()),
        ("addr".into(), addr_of(&member.name)),
        ("client_port".into(), ports.client.to_string()),
        ("peer_port".into(), ports.peer.to_string()),
        ("data_dir".into(), member.data_dir.display().to_string()),
        ("cluster".into(), member.cluster.clone()),
        ("heartbeat_ms".into(), member.heartbeat_ms.to_string()),
        (
            "election_timeout_ms".into(),
            member.election_timeout_ms.0.to_string(),
        ),
        (
            "election_timeout_max_ms".into(),
            member.election_timeout_ms.1.to_string(),
        ),
        ("peers".into(), peers),
        (
            "seed_addr".into(),
            seed.as_deref().map(addr_of).unwrap_or_default(),
        ),
        ("seed_name".into(), seed.unwrap_or_default()),
        (
            "discovery_port".into(),
            ports
                .discovery
                .map(|port| port.to_string())
                .unwrap_or_default(),
        ),
        ("quorum".into(), (count / 2 + 1).to_string()),
        ("member_count".into(), count.to_string()),
    ]);
    for (name, value) in options {
        values.insert(option_placeholder(name), value.clone());
    }
    Ok(values)
}

/// Whether `member` is the seed (the first member in topology order).
pub(super) fn is_seed(member: &MemberContext) -> bool {
    member.members.first().map(|(name, _)| name) == Some(&member.name)
}

/// The member's argv: the template's args, its seed or join args, then
/// each option's args. `options`: (name, value, args).
pub(super) fn member_args(
    template: &super::model::CommandTemplate,
    ports: super::model::Ports,
    member: &MemberContext,
    options: &[(String, String, Vec<String>)],
) -> Result<Vec<String>, String> {
    let named: Vec<(String, String)> = (options.iter())
        .map(|(name, value, _)| (name.clone(), value.clone()))
        .collect();
    let mut values = member_values(Some(template), ports, member, &named)?;
    let role_args = if is_seed(member) {
        &template.seed_args
    } else {
        &template.join_args
    };
    let mut args = (template.args.iter().chain(role_args))
        .map(|arg| render(arg.get_ref(), &values))
        .collect::<Result<Vec<_>, _>>()?;
    for (_, value, option_args) in options {
        values.insert("value".into(), value.clone());
        for arg in option_args {
            args.push(render(arg, &values)?);
        }
    }
    Ok(args)
}
