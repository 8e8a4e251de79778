//! JSONL round trips and parse errors for histories and node events.
use checker::{
    EventKind, History, LinkDirection, NodeEvent, Op, OpFn, OpKind, StepDownReason, Token,
    read_events, write_events,
};

fn sample_history() -> History {
    let cas = Op::new(3, OpKind::Invoke, OpFn::Cas, "k1", 1200)
        .with_value("7")
        .with_expected("6");
    History::new(vec![
        Op::new(1, OpKind::Invoke, OpFn::Write, "k1", 100).with_value("6"),
        cas.clone(),
        Op::new(1, OpKind::Ok, OpFn::Write, "k1", 900)
            .with_value("6")
            .with_node("n1")
            .with_token(2, 5),
        cas.complete(OpKind::Info, 9000).with_error("timeout"),
        Op::new(4, OpKind::Invoke, OpFn::Read, "k1", 9100),
        Op::new(4, OpKind::Ok, OpFn::Read, "k1", 9200).with_value("6"),
        Op::new(5, OpKind::Invoke, OpFn::Delete, "k2", 9300),
        Op::new(5, OpKind::Fail, OpFn::Delete, "k2", 9400).with_error("not_leader"),
    ])
}

fn sample_events() -> Vec<NodeEvent> {
    let kinds = vec![
        EventKind::Started,
        EventKind::Recovered { last_index: 4 },
        EventKind::ElectionStarted,
        EventKind::PreVoteRejected { by: "n2".into() },
        EventKind::BecameLeader,
        EventKind::SteppedDown {
            reason: StepDownReason::QuorumLost,
        },
        EventKind::LeaseExtended { until_mono_ns: 77 },
        EventKind::LeaseLost,
        EventKind::QuorumLost,
        EventKind::QuorumRegained,
        EventKind::PeerUp { peer: "n3".into() },
        EventKind::PeerDown {
            peer: "n3".into(),
            direction: LinkDirection::Outbound,
        },
        EventKind::WriteCommitted {
            token: Token { term: 2, index: 9 },
        },
        EventKind::WriteAccepted { index: 9 },
        EventKind::Applied {
            index: 9,
            state_hash: u64::MAX,
        },
        EventKind::Truncated { after: 3 },
        EventKind::StaleTermRejected {
            from: "n2".into(),
            their_term: 1,
        },
        EventKind::FinalState {
            commit_index: 9,
            applied_index: 9,
            state_hash: 12345,
        },
    ];
    kinds
        .into_iter()
        .enumerate()
        .map(|(i, kind)| NodeEvent::new("n1", i as u64 * 10, i as u64 * 10 + 1, 2, kind))
        .collect()
}

#[test]
fn history_round_trips_through_jsonl() {
    let history = sample_history();
    let text = history.to_jsonl_string();
    assert_eq!(text.lines().count(), history.len());
    let back = History::read_jsonl(text.as_bytes()).unwrap();
    assert_eq!(back, history);
}

#[test]
fn history_uses_the_contract_field_names() {
    let line = r#"{"process":3,"type":"ok","f":"cas","key":"k1","value":"7","expected":"6","time_ns":5400,"node":"n2","token":{"term":4,"index":17}}"#;
    let history = History::read_jsonl(line.as_bytes()).unwrap();
    let op = &history.ops[0];
    assert_eq!(op.kind, OpKind::Ok);
    assert_eq!(op.f, OpFn::Cas);
    assert_eq!(op.token, Some(Token { term: 4, index: 17 }));
    assert_eq!(op.expected.as_deref(), Some("6"));
    let written = history.to_jsonl_string();
    assert_eq!(written.trim(), line);
}

#[test]
fn history_file_round_trip() {
    let dir = std::env::temp_dir().join(format!("checker-jsonl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("history.jsonl");
    let history = sample_history();
    history.save(&path).unwrap();
    assert_eq!(History::load(&path).unwrap(), history);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn history_parse_error_names_the_line() {
    let text = concat!(
        r#"{"process":1,"type":"invoke","f":"read","key":"a","time_ns":1}"#,
        "\n\n",
        r#"{"process":1,"type":"okay","f":"read","key":"a","time_ns":2}"#,
        "\n"
    );
    let err = History::read_jsonl(text.as_bytes()).unwrap_err();
    assert_eq!(err.line(), Some(3));
    let message = err.to_string();
    assert!(message.contains(":3:"), "{message}");
    assert!(message.contains("okay"), "{message}");
}

#[test]
fn missing_file_is_a_clear_io_error() {
    let err = History::load(std::path::Path::new("/nonexistent/history.jsonl")).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/history.jsonl"));
    assert_eq!(err.line(), None);
}

#[test]
fn events_round_trip_through_jsonl() {
    let events = sample_events();
    let mut buf = Vec::new();
    write_events(&mut buf, &events).unwrap();
    let text = String::from_utf8(buf).unwrap();
    assert!(
        text.contains(r#""event":"lease_extended","until_mono_ns":77"#),
        "{text}"
    );
    assert!(text.contains(r#""direction":"outbound""#), "{text}");
    let back = read_events(text.as_bytes()).unwrap();
    assert_eq!(back, events);
}

#[test]
fn event_parse_error_names_the_line() {
    let text = concat!(
        r#"{"node":"n1","mono_ns":1,"local_ns":1,"term":1,"event":"became_leader"}"#,
        "\n",
        r#"{"node":"n1","mono_ns":2,"local_ns":2,"term":1,"event":"lease_extended"}"#,
        "\n"
    );
    let err = read_events(text.as_bytes()).unwrap_err();
    assert_eq!(err.line(), Some(2));
    assert!(err.to_string().contains("until_mono_ns"), "{err}");
}
