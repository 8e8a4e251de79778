//! Loading and validation tests: flags, TOML files, line:column errors.
use super::*;
use clap::Parser;
use consensus::Mode;

fn flags(args: &[&str]) -> Flags {
    let mut all = vec!["splitnode"];
    all.extend_from_slice(args);
    Flags::try_parse_from(all).expect("flags parse")
}

const BASE: &[&str] = &[
    "--id",
    "n1",
    "--cluster",
    "c1",
    "--peer",
    "n2=127.0.0.2:7100",
    "--peer",
    "n3=127.0.0.3:7100",
    "--listen-peer",
    "127.0.0.1:7100",
    "--listen-client",
    "127.0.0.1:7000",
    "--data-dir",
    "/tmp/x",
];

/// The flags of [`BASE`] followed by `extra`.
fn base_with(extra: &[&str]) -> Flags {
    flags(&[BASE, extra].concat())
}

/// The error that loading [`BASE`] plus `extra` ends in.
fn flag_error(extra: &[&str]) -> String {
    load(&base_with(extra)).unwrap_err().to_string()
}

/// The error that loading `text` as `n1.toml` ends in.
fn file_error(text: &str) -> String {
    load_str("n1.toml", text, &Flags::default())
        .unwrap_err()
        .to_string()
}

#[test]
fn fnv1a_matches_reference_vectors() {
    assert_eq!(name_to_id(""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(name_to_id("a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(name_to_id("foobar"), 0x8594_4171_f739_67e8);
}

#[test]
fn flags_produce_a_config_with_profile_defaults() {
    let config = load(&flags(BASE)).unwrap();
    assert_eq!(config.name, "n1");
    assert_eq!(config.id, name_to_id("n1"));
    assert_eq!(config.cluster_id, name_to_id("c1"));
    assert_eq!(config.peers.len(), 2);
    assert_eq!(config.mode, Mode::Safe);
    assert_eq!(config.timing.heartbeat_ms, 50);
    assert_eq!(config.timing.election_timeout_min_ms, 250);
    assert_eq!(config.timing.election_timeout_max_ms, 500);
    assert_eq!(config.start, StartMode::Existing);
    let consensus = config.consensus_config();
    assert_eq!(consensus.members.len(), 3);
    assert_eq!(consensus.heartbeat_interval_ns, 50_000_000);
}

#[test]
fn default_profile_and_overrides() {
    let config = load(&base_with(&[
        "--profile",
        "default",
        "--election-timeout-max-ms",
        "3000",
        "--mode",
        "no-fencing",
        "--test-clock-offset-ms",
        "-5000",
        "--test-clock-rate",
        "0.5",
        "--bootstrap",
    ]))
    .unwrap();
    assert_eq!(config.timing.heartbeat_ms, 100);
    assert_eq!(config.timing.election_timeout_min_ms, 1000);
    assert_eq!(config.timing.election_timeout_max_ms, 3000);
    assert_eq!(config.mode, Mode::NoFencing);
    assert_eq!(config.test_clock.offset_ms, -5000);
    assert_eq!(config.test_clock.rate, 0.5);
    assert_eq!(config.start, StartMode::Bootstrap);
}

#[test]
fn every_mode_name_is_accepted() {
    for mode in Mode::ALL {
        let config = load(&base_with(&["--mode", mode.name()])).unwrap();
        assert_eq!(config.mode, mode);
    }
}

#[test]
fn errors_name_the_field() {
    for (extra, starts) in [
        (&["--mode", "yolo"][..], "mode: unknown mode `yolo`"),
        (
            &["--election-timeout-min-ms", "40"],
            "timing.election_timeout_min_ms:",
        ),
        (&["--peer", "n1=127.0.0.9:1"], "peers.n1:"),
        (&["--peer", "bad"], "peer:"),
    ] {
        let error = flag_error(extra);
        assert!(error.starts_with(starts), "{error}");
    }
    let error = load(&flags(&["--id", "n1"])).unwrap_err().to_string();
    assert!(error.starts_with("cluster: required"), "{error}");
}

#[test]
fn bootstrap_and_join_empty_conflict_on_the_command_line() {
    let args = [&["splitnode"], BASE, &["--bootstrap", "--join-empty"]].concat();
    assert!(Flags::try_parse_from(args).is_err());
}

const TOML: &str = r#"
id = "n1"
cluster = "c1"
listen_peer = "127.0.0.1:7100"
listen_client = "127.0.0.1:7000"
data_dir = "/tmp/n1"
mode = "safe"
profile = "fast"
bootstrap = true

[peers]
n2 = "127.0.0.2:7100"
n3 = "127.0.0.3:7100"

[peer_clients]
n2 = "127.0.0.2:7000"

[timing]
snapshot_threshold = 50

[test_clock]
offset_ms = 10000
"#;

#[test]
fn toml_file_loads_and_flags_override_it() {
    let config = load_str("n1.toml", TOML, &Flags::default()).unwrap();
    assert_eq!(config.timing.snapshot_threshold, 50);
    assert_eq!(config.start, StartMode::Bootstrap);
    assert_eq!(config.test_clock.offset_ms, 10_000);
    assert_eq!(
        config.member_client_addr(name_to_id("n2")),
        Some("127.0.0.2:7000".parse().unwrap())
    );
    assert_eq!(config.member_client_addr(name_to_id("n3")), None);

    let overriding = flags(&["--mode", "timeout-failover", "--snapshot-threshold", "7"]);
    let config = load_str("n1.toml", TOML, &overriding).unwrap();
    assert_eq!(config.mode, Mode::TimeoutFailover);
    assert_eq!(config.timing.snapshot_threshold, 7);
}

#[test]
fn toml_unknown_field_reports_line_and_column() {
    let text = TOML.replace("[timing]\n", "[timing]\nheartbeat_msec = 5\n");
    let error = load_str("n1.toml", &text, &Flags::default()).unwrap_err();
    match &error {
        ConfigError::InFile {
            line,
            column,
            field,
            ..
        } => {
            assert_eq!(*line, 19, "{error}");
            assert_eq!(*column, 1, "{error}");
            assert_eq!(field, "heartbeat_msec");
        }
        other => panic!("expected an in-file error, got {other}"),
    }
}

#[test]
fn toml_bad_value_and_semantic_errors_carry_line_and_column() {
    for (from, to, starts) in [
        ("\"127.0.0.2:7100\"", "\"nowhere\"", "n1.toml:12:"),
        (
            "mode = \"safe\"",
            "mode = \"fast-and-loose\"",
            "n1.toml:7:1: mode: unknown mode",
        ),
        (
            "snapshot_threshold = 50",
            "election_timeout_max_ms = 100",
            "n1.toml:19:1: timing.election_timeout_max_ms:",
        ),
    ] {
        let error = file_error(&TOML.replace(from, to));
        assert!(error.starts_with(starts), "{error}");
    }
}

#[test]
fn hash_collisions_and_duplicates_are_rejected() {
    let text = TOML.replace("n3 = \"127.0.0.3:7100\"", "n1 = \"127.0.0.3:7100\"");
    let error = file_error(&text);
    assert!(error.contains("peers.n1"), "{error}");
}

#[test]
fn key_positions_come_from_the_parser() {
    // A quoted key in a section: the error points at the key.
    let text = TOML.replace("n3 = \"127.0.0.3:7100\"", "  \"n1\" = \"127.0.0.3:7100\"");
    let error = file_error(&text);
    assert!(error.starts_with("n1.toml:13:3: peers.n1:"), "{error}");

    // A dotted key at top level.
    let text = TOML.replace("profile = \"fast\"", "timing.heartbeat_ms = 0");
    let text = text.replace("[timing]\nsnapshot_threshold = 50\n", "");
    let error = file_error(&text);
    assert!(
        error.starts_with("n1.toml:8:8: timing.heartbeat_ms: must be > 0"),
        "{error}"
    );
}

#[test]
fn max_sessions_reaches_the_replica_and_zero_is_refused() {
    let config = load(&flags(BASE)).unwrap();
    assert_eq!(
        config.consensus_config().max_sessions,
        consensus::DEFAULT_MAX_SESSIONS
    );
    let mut args = BASE.to_vec();
    args.extend_from_slice(&["--max-sessions", "7"]);
    assert_eq!(
        load(&flags(&args)).unwrap().consensus_config().max_sessions,
        7
    );
    let mut args = BASE.to_vec();
    args.extend_from_slice(&["--max-sessions", "0"]);
    let error = load(&flags(&args)).unwrap_err().to_string();
    assert!(error.starts_with("timing.max_sessions:"), "{error}");
}
