//! Merging the flags over the file (flags win) and validating every field
//! into a [`NodeConfig`]; errors point at the file when the value came from it.
use std::collections::BTreeMap;
use std::net::SocketAddr;

use consensus::Mode;
use wire::NodeId;

use super::error::{ConfigError, Origin, field_error};
use super::model::{Limits, NodeConfig, PeerConfig, Profile, StartMode, TestClock, Timing};
use super::name_to_id;
use super::raw::{FileConfig, FileLimits, FileTestClock, FileTiming, Flags};
use super::secrets;

fn parse_name_addr(field: &str, text: &str) -> Result<(String, SocketAddr), ConfigError> {
    let (name, addr) = text
        .split_once('=')
        .ok_or_else(|| field_error(field, format!("`{text}` is not NAME=HOST:PORT")))?;
    let addr = addr
        .parse::<SocketAddr>()
        .map_err(|error| field_error(field, format!("`{addr}` is not HOST:PORT: {error}")))?;
    Ok((name.to_owned(), addr))
}

fn validate_name(
    origin: &Origin<'_>,
    field: &str,
    from_file: bool,
    name: &str,
) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_' || ch == '.');
    if ok {
        Ok(())
    } else {
        Err(origin.error(
            field,
            from_file,
            format!("`{name}` must be 1-64 characters of [A-Za-z0-9._-]"),
        ))
    }
}

/// Picks the flag value if given, otherwise the file value; the bool says
/// whether the value came from the file.
fn pick<T: Clone>(flag: &Option<T>, file: &Option<T>) -> Option<(T, bool)> {
    match (flag, file) {
        (Some(value), _) => Some((value.clone(), false)),
        (None, Some(value)) => Some((value.clone(), true)),
        (None, None) => None,
    }
}

pub(super) fn merge(
    source: Option<(&str, &str)>,
    file: FileConfig,
    flags: &Flags,
) -> Result<NodeConfig, ConfigError> {
    let origin = Origin { file: source };
    let required = |field: &str, flag: &str| {
        field_error(
            field,
            format!("required (set `{field}` in the config file or pass --{flag})"),
        )
    };

    let (name, name_in_file) = pick(&flags.id, &file.id).ok_or_else(|| required("id", "id"))?;
    validate_name(&origin, "id", name_in_file, &name)?;
    let (cluster_name, cluster_in_file) =
        pick(&flags.cluster, &file.cluster).ok_or_else(|| required("cluster", "cluster"))?;
    validate_name(&origin, "cluster", cluster_in_file, &cluster_name)?;
    let (listen_peer, _) = pick(&flags.listen_peer, &file.listen_peer)
        .ok_or_else(|| required("listen_peer", "listen-peer"))?;
    let (listen_client, _) = pick(&flags.listen_client, &file.listen_client)
        .ok_or_else(|| required("listen_client", "listen-client"))?;
    let (data_dir, _) =
        pick(&flags.data_dir, &file.data_dir).ok_or_else(|| required("data_dir", "data-dir"))?;

    let mode = match pick(&flags.mode, &file.mode) {
        None => Mode::Safe,
        Some((text, in_file)) => Mode::from_name(&text).ok_or_else(|| {
            let names: Vec<&str> = Mode::ALL.iter().map(|mode| mode.name()).collect();
            origin.error(
                "mode",
                in_file,
                format!(
                    "unknown mode `{text}` (expected one of {})",
                    names.join(", ")
                ),
            )
        })?,
    };
    let profile = match pick(&flags.profile, &file.profile) {
        None => Profile::Fast,
        Some((text, in_file)) => Profile::from_name(&text).ok_or_else(|| {
            origin.error(
                "profile",
                in_file,
                format!("unknown profile `{text}` (expected fast or default)"),
            )
        })?,
    };

    // Peers: flags replace the file's list entirely when any is given.
    let mut peer_list: Vec<(String, SocketAddr, bool)> = Vec::new();
    if flags.peers.is_empty() {
        for (peer_name, addr) in &file.peers {
            peer_list.push((peer_name.clone(), *addr, true));
        }
    } else {
        for text in &flags.peers {
            let (peer_name, addr) = parse_name_addr("peer", text)?;
            peer_list.push((peer_name, addr, false));
        }
    }
    let mut peer_clients: BTreeMap<String, SocketAddr> = file.peer_clients.clone();
    for text in &flags.peer_clients {
        let (peer_name, addr) = parse_name_addr("peer_clients", text)?;
        peer_clients.insert(peer_name, addr);
    }

    let id = name_to_id(&name);
    let mut ids: BTreeMap<NodeId, String> = BTreeMap::new();
    ids.insert(id, name.clone());
    let mut peers = Vec::new();
    for (peer_name, addr, in_file) in peer_list {
        let field = format!("peers.{peer_name}");
        validate_name(&origin, &field, in_file, &peer_name)?;
        let peer_id = name_to_id(&peer_name);
        if let Some(existing) = ids.get(&peer_id) {
            let message = if *existing == peer_name {
                format!("`{peer_name}` is listed twice (or is this node's own name)")
            } else {
                format!(
                    "`{peer_name}` and `{existing}` hash to the same node id {peer_id:#x}; rename one"
                )
            };
            return Err(origin.error(&field, in_file, message));
        }
        ids.insert(peer_id, peer_name.clone());
        peers.push(PeerConfig {
            client_addr: peer_clients.get(&peer_name).copied(),
            name: peer_name,
            id: peer_id,
            addr,
        });
    }
    for client_name in peer_clients.keys() {
        if !peers.iter().any(|peer| &peer.name == client_name) {
            return Err(origin.error(
                &format!("peer_clients.{client_name}"),
                file.peer_clients.contains_key(client_name),
                format!("`{client_name}` is not a peer"),
            ));
        }
    }
    if peers.len() + 1 > 9 {
        return Err(field_error(
            "peers",
            format!("cluster size {} is outside 1..=9", peers.len() + 1),
        ));
    }
    if peers.iter().any(|peer| peer.addr == listen_peer) {
        return Err(field_error(
            "peers",
            "a peer uses this node's own listen_peer address",
        ));
    }

    let timing = merge_timing(&origin, profile, &file.timing, &flags.timing)?;
    let limits = merge_limits(&origin, &file.limits, &flags.limits)?;
    let test_clock = merge_test_clock(&origin, &file.test_clock, &flags.test_clock)?;

    let bootstrap = flags.bootstrap || file.bootstrap.unwrap_or(false);
    let join_empty = flags.join_empty || file.join_empty.unwrap_or(false);
    let start = match (bootstrap, join_empty) {
        (true, true) => {
            return Err(origin.error(
                "join_empty",
                file.join_empty.is_some(),
                "bootstrap and join_empty exclude each other",
            ));
        }
        (true, false) => StartMode::Bootstrap,
        (false, true) => StartMode::JoinEmpty,
        (false, false) => StartMode::Existing,
    };

    let cluster_key = match pick(&flags.cluster_key_file, &file.cluster_key_file) {
        Some((path, in_file)) => Some(secrets::cluster_key(&origin, &path, in_file)?),
        None => None,
    };
    let client_token = match pick(&flags.client_token_file, &file.client_token_file) {
        Some((path, in_file)) => Some(secrets::client_token(&origin, &path, in_file)?),
        None => None,
    };

    Ok(NodeConfig {
        name,
        id,
        cluster_id: name_to_id(&cluster_name),
        cluster_name,
        peers,
        listen_peer,
        listen_client,
        data_dir,
        mode,
        profile,
        timing,
        limits,
        start,
        test_clock,
        cluster_key,
        client_token,
    })
}

fn merge_timing(
    origin: &Origin<'_>,
    profile: Profile,
    file: &FileTiming,
    flags: &FileTiming,
) -> Result<Timing, ConfigError> {
    let get = |flag: Option<u64>, from_file: Option<u64>, default: u64| {
        pick(&flag, &from_file).unwrap_or((default, false))
    };
    let (heartbeat_ms, heartbeat_in_file) = get(
        flags.heartbeat_ms,
        file.heartbeat_ms,
        profile.heartbeat_ms(),
    );
    let (election_timeout_min_ms, min_in_file) = get(
        flags.election_timeout_min_ms,
        file.election_timeout_min_ms,
        profile.election_ms(),
    );
    let (election_timeout_max_ms, max_in_file) = get(
        flags.election_timeout_max_ms,
        file.election_timeout_max_ms,
        profile.election_max_ms(),
    );
    let (lease_margin_ms, _) = get(
        flags.lease_margin_ms,
        file.lease_margin_ms,
        heartbeat_ms / 5,
    );
    let (tick_ms, tick_in_file) = get(flags.tick_ms, file.tick_ms, (heartbeat_ms / 5).max(1));
    let (clock_drift_bound, drift_in_file) =
        pick(&flags.clock_drift_bound, &file.clock_drift_bound).unwrap_or((1.01, false));
    let (snapshot_threshold, snapshot_in_file) =
        get(flags.snapshot_threshold, file.snapshot_threshold, 10_000);
    let (max_append_entries, append_in_file) =
        pick(&flags.max_append_entries, &file.max_append_entries).unwrap_or((256, false));
    let (max_pending_requests, pending_in_file) =
        pick(&flags.max_pending_requests, &file.max_pending_requests).unwrap_or((10_000, false));
    let (max_sessions, sessions_in_file) = pick(&flags.max_sessions, &file.max_sessions)
        .unwrap_or((consensus::DEFAULT_MAX_SESSIONS, false));

    if heartbeat_ms == 0 {
        return Err(origin.error("timing.heartbeat_ms", heartbeat_in_file, "must be > 0"));
    }
    if election_timeout_min_ms <= heartbeat_ms {
        return Err(origin.error(
            "timing.election_timeout_min_ms",
            min_in_file,
            format!("{election_timeout_min_ms} must exceed heartbeat_ms ({heartbeat_ms})"),
        ));
    }
    if election_timeout_max_ms <= election_timeout_min_ms {
        return Err(origin.error(
            "timing.election_timeout_max_ms",
            max_in_file,
            format!(
                "{election_timeout_max_ms} must exceed election_timeout_min_ms ({election_timeout_min_ms})"
            ),
        ));
    }
    if tick_ms == 0 || tick_ms > heartbeat_ms {
        return Err(origin.error(
            "timing.tick_ms",
            tick_in_file,
            format!("{tick_ms} must be in 1..=heartbeat_ms ({heartbeat_ms})"),
        ));
    }
    if !(clock_drift_bound.is_finite() && (1.0..=2.0).contains(&clock_drift_bound)) {
        return Err(origin.error(
            "timing.clock_drift_bound",
            drift_in_file,
            format!("{clock_drift_bound} must be in 1.0..=2.0"),
        ));
    }
    if snapshot_threshold == 0 {
        return Err(origin.error("timing.snapshot_threshold", snapshot_in_file, "must be > 0"));
    }
    if max_append_entries == 0 {
        return Err(origin.error("timing.max_append_entries", append_in_file, "must be > 0"));
    }
    if max_pending_requests == 0 {
        return Err(origin.error(
            "timing.max_pending_requests",
            pending_in_file,
            "must be > 0",
        ));
    }
    if max_sessions == 0 {
        return Err(origin.error("timing.max_sessions", sessions_in_file, "must be > 0"));
    }
    Ok(Timing {
        heartbeat_ms,
        election_timeout_min_ms,
        election_timeout_max_ms,
        lease_margin_ms,
        tick_ms,
        clock_drift_bound,
        snapshot_threshold,
        max_append_entries,
        max_pending_requests,
        max_sessions,
    })
}

fn merge_limits(
    origin: &Origin<'_>,
    file: &FileLimits,
    flags: &FileLimits,
) -> Result<Limits, ConfigError> {
    let defaults = Limits::default();
    let mut out = defaults.clone();
    // (field name, flag value, file value, target, minimum)
    macro_rules! field {
        ($name:ident, $min:expr) => {{
            if let Some((value, in_file)) = pick(&flags.$name, &file.$name) {
                if value < $min {
                    return Err(origin.error(
                        concat!("limits.", stringify!($name)),
                        in_file,
                        format!("{} is below the minimum {}", value, $min),
                    ));
                }
                out.$name = value;
            }
        }};
    }
    field!(max_frame_bytes, wire::MIN_FRAME_LEN + 1024);
    field!(max_datagram_bytes, wire::MIN_FRAME_LEN + 64);
    field!(connect_timeout_ms, 1);
    field!(rpc_timeout_ms, 1);
    field!(frame_read_timeout_ms, 1);
    field!(peer_idle_timeout_ms, 1);
    field!(reconnect_backoff_min_ms, 1);
    field!(reconnect_backoff_max_ms, 1);
    field!(peer_queue_frames, 1);
    field!(max_inbound_connections, 1);
    field!(http_max_header_bytes, 256);
    field!(http_max_body_bytes, 1);
    field!(client_timeout_ms, 1);
    field!(http_idle_timeout_ms, 1);
    if out.max_datagram_bytes > 65_507 {
        return Err(field_error(
            "limits.max_datagram_bytes",
            format!("{} exceeds the UDP maximum 65507", out.max_datagram_bytes),
        ));
    }
    if out.reconnect_backoff_max_ms < out.reconnect_backoff_min_ms {
        return Err(field_error(
            "limits.reconnect_backoff_max_ms",
            "must be >= reconnect_backoff_min_ms",
        ));
    }
    Ok(out)
}

fn merge_test_clock(
    origin: &Origin<'_>,
    file: &FileTestClock,
    flags: &FileTestClock,
) -> Result<TestClock, ConfigError> {
    let (offset_ms, _) = pick(&flags.offset_ms, &file.offset_ms).unwrap_or((0, false));
    let (rate, rate_in_file) = pick(&flags.rate, &file.rate).unwrap_or((1.0, false));
    if !(rate.is_finite() && rate > 0.0 && rate <= 100.0) {
        return Err(origin.error(
            "test_clock.rate",
            rate_in_file,
            format!("{rate} must be in (0, 100]"),
        ));
    }
    Ok(TestClock { offset_ms, rate })
}
