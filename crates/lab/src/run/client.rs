//! A minimal blocking HTTP/1.1 client for the `splitnode` API, and the
//! mapping from answers to Jepsen outcomes.
//!
//! It is used from threads that live inside a lab namespace (client threads
//! in their home node's namespace, status polls in the control namespace),
//! so every socket it opens belongs to that namespace. One connection per
//! request: a partition must not hide behind a pooled connection.
//!
//! Outcome rules (a timeout is never a failure):
//! - connect refused/unreachable/timed out: `fail` (the request never left);
//! - 200: `ok` (a compare-and-set answered `"applied": false` is `fail`);
//! - 503 (`not_leader`, `no_quorum`, `lease_expired`, `overloaded`): `fail`;
//! - 4xx: `fail` (rejected before doing anything);
//! - 504, a timeout or a broken connection after sending: `info`.
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The host's CLOCK_MONOTONIC in nanoseconds: the clock every namespace and
/// every node's event log shares.
pub fn mono_ns() -> u64 {
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always available on Linux");
    now.tv_sec() as u64 * 1_000_000_000 + now.tv_nsec() as u64
}

/// A raw HTTP answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub body: Value,
}

/// Why a request produced no HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// Never connected: the request certainly did not arrive.
    Connect(String),
    /// Connected and (maybe) sent, then nothing usable came back in time.
    AfterSend(String),
}

/// Sends one request and reads the whole answer before `deadline`.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &str,
    deadline: Instant,
) -> Result<Response, Transport> {
    let remaining = |deadline: Instant| {
        deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };
    let mut stream = TcpStream::connect_timeout(&addr, remaining(deadline))
        .map_err(|error| Transport::Connect(short_io(&error)))?;
    let _ = stream.set_nodelay(true);
    let mut text = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(body);
    stream
        .set_write_timeout(Some(remaining(deadline)))
        .and_then(|()| stream.write_all(text.as_bytes()))
        .map_err(|error| Transport::AfterSend(format!("send: {}", short_io(&error))))?;

    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(response) = parse_response(&buffer)? {
            return Ok(response);
        }
        let wait = deadline.saturating_duration_since(Instant::now());
        if wait.is_zero() {
            return Err(Transport::AfterSend("timeout".into()));
        }
        stream
            .set_read_timeout(Some(wait))
            .map_err(|error| Transport::AfterSend(short_io(&error)))?;
        match stream.read(&mut chunk) {
            Ok(0) => {
                return parse_response(&buffer)?.ok_or_else(|| {
                    Transport::AfterSend("connection closed before a full answer".into())
                });
            }
            Ok(read) => buffer.extend_from_slice(&chunk[..read]),
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(Transport::AfterSend("timeout".into()));
            }
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(Transport::AfterSend(short_io(&error))),
        }
    }
}

fn short_io(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => "timeout".into(),
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        std::io::ErrorKind::ConnectionReset => "connection reset".into(),
        _ => error.to_string(),
    }
}

/// `Ok(None)` while the answer is incomplete.
fn parse_response(buffer: &[u8]) -> Result<Option<Response>, Transport> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Response::new(&mut headers);
    let head_len = match parsed.parse(buffer) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(error) => return Err(Transport::AfterSend(format!("bad HTTP answer: {error}"))),
    };
    let status = parsed.code.unwrap_or(0);
    let length = parsed
        .headers
        .iter()
        .find(|header| header.name.eq_ignore_ascii_case("content-length"))
        .and_then(|header| {
            std::str::from_utf8(header.value)
                .ok()?
                .trim()
                .parse::<usize>()
                .ok()
        })
        .unwrap_or(0);
    if buffer.len() < head_len + length {
        return Ok(None);
    }
    let body_bytes = &buffer[head_len..head_len + length];
    let body = serde_json::from_slice(body_bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body_bytes).into_owned()));
    Ok(Some(Response { status, body }))
}

/// One client operation's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Read {
        key: String,
    },
    Write {
        key: String,
        value: String,
    },
    /// `expected = None`: write only if the key is absent.
    Cas {
        key: String,
        expected: Option<String>,
        value: String,
    },
}

/// How an operation ended, in Jepsen terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Took effect. `value` is what a read returned; `token` a write's fence.
    Ok {
        value: Option<String>,
        token: Option<(u64, u64)>,
    },
    /// Certainly did not take effect.
    Fail {
        error: String,
        /// The node's leader hint, if it gave one.
        leader: Option<String>,
    },
    /// May or may not have taken effect.
    Info { error: String },
}

/// Percent-encodes a key or value for the path/query.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Executes one operation against `addr`. `client`/`seq` make writes
/// exactly-once on the node.
pub fn execute(
    addr: SocketAddr,
    request: &Request,
    client: u64,
    seq: u64,
    timeout: Duration,
) -> Outcome {
    let deadline = Instant::now() + timeout;
    let session = [
        ("X-Client-Id", client.to_string()),
        ("X-Request-Seq", seq.to_string()),
    ];
    let (method, path, body, is_cas) = match request {
        Request::Read { key } => ("GET", format!("/kv/{}", encode(key)), String::new(), false),
        Request::Write { key, value } => {
            ("PUT", format!("/kv/{}", encode(key)), value.clone(), false)
        }
        Request::Cas {
            key,
            expected: Some(expected),
            value,
        } => (
            "PUT",
            format!("/kv/{}?if={}", encode(key), encode(expected)),
            value.clone(),
            true,
        ),
        Request::Cas {
            key,
            expected: None,
            value,
        } => (
            "PUT",
            format!("/kv/{}?if_absent=true", encode(key)),
            value.clone(),
            true,
        ),
    };
    let headers: &[(&str, String)] = if matches!(request, Request::Read { .. }) {
        &[]
    } else {
        &session
    };
    match self::request(addr, method, &path, headers, &body, deadline) {
        Err(Transport::Connect(error)) => Outcome::Fail {
            error: format!("connect: {error}"),
            leader: None,
        },
        Err(Transport::AfterSend(error)) => Outcome::Info { error },
        Ok(response) => interpret(&response, is_cas),
    }
}

/// Maps an HTTP answer to an outcome (see the module docs).
pub fn interpret(response: &Response, is_cas: bool) -> Outcome {
    let body = &response.body;
    let text = |field: &str| body.get(field).and_then(Value::as_str).map(str::to_string);
    match response.status {
        200 => {
            if is_cas && body.get("applied").and_then(Value::as_bool) == Some(false) {
                return Outcome::Fail {
                    error: "cas: comparison failed".into(),
                    leader: None,
                };
            }
            let token = body.get("token").and_then(|token| {
                Some((token.get("term")?.as_u64()?, token.get("index")?.as_u64()?))
            });
            Outcome::Ok {
                value: text("value"),
                token,
            }
        }
        503 => Outcome::Fail {
            error: text("error").unwrap_or_else(|| "unavailable".into()),
            leader: text("leader"),
        },
        400..=499 => Outcome::Fail {
            error: format!(
                "http {}: {}",
                response.status,
                text("reason").unwrap_or_default()
            ),
            leader: None,
        },
        status => Outcome::Info {
            error: text("reason").or_else(|| text("error")).map_or_else(
                || format!("http {status}"),
                |reason| format!("http {status}: {reason}"),
            ),
        },
    }
}

/// What `/status` says, reduced to what the runner needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    pub node: String,
    pub role: String,
    pub term: u64,
    pub leader: Option<String>,
    pub commit_index: u64,
    pub applied_index: u64,
    pub state_hash: u64,
}

/// Polls one node's `/status`.
pub fn status(addr: SocketAddr, node: &str, timeout: Duration) -> Option<NodeStatus> {
    let response = request(addr, "GET", "/status", &[], "", Instant::now() + timeout).ok()?;
    if response.status != 200 {
        return None;
    }
    parse_status(node, &response.body)
}

pub fn parse_status(node: &str, body: &Value) -> Option<NodeStatus> {
    Some(NodeStatus {
        node: node.to_string(),
        role: body.get("role")?.as_str()?.to_string(),
        term: body.get("term")?.as_u64()?,
        leader: body
            .get("leader")
            .and_then(Value::as_str)
            .map(str::to_string),
        commit_index: body
            .get("commit_index")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        applied_index: body
            .get("applied_index")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        state_hash: body.get("state_hash").and_then(Value::as_u64).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer(status: u16, body: Value) -> Response {
        Response { status, body }
    }

    #[test]
    fn answers_map_to_jepsen_outcomes() {
        let ok = interpret(
            &answer(
                200,
                json!({"ok":true,"token":{"term":3,"index":9},"applied":true}),
            ),
            false,
        );
        assert_eq!(
            ok,
            Outcome::Ok {
                value: None,
                token: Some((3, 9))
            }
        );
        let cas_miss = interpret(&answer(200, json!({"ok":true,"applied":false})), true);
        assert!(matches!(cas_miss, Outcome::Fail { .. }));
        let refused = interpret(
            &answer(503, json!({"error":"not_leader","leader":"n2"})),
            false,
        );
        assert_eq!(
            refused,
            Outcome::Fail {
                error: "not_leader".into(),
                leader: Some("n2".into())
            }
        );
        let unknown = interpret(&answer(504, json!({"error":"unknown","reason":"x"})), false);
        assert!(matches!(unknown, Outcome::Info { .. }));
        let read = interpret(&answer(200, json!({"ok":true,"value":"v1"})), false);
        assert_eq!(
            read,
            Outcome::Ok {
                value: Some("v1".into()),
                token: None
            }
        );
    }

    #[test]
    fn partial_answers_wait_for_the_body() {
        let full = b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{\"ok\":true}";
        assert_eq!(parse_response(&full[..30]).unwrap(), None);
        assert_eq!(parse_response(full).unwrap().unwrap().status, 200);
    }

    #[test]
    fn connect_failure_is_a_definite_fail() {
        // Port 9 on loopback in the test's namespace: nothing listens.
        let outcome = execute(
            "127.0.0.1:9".parse().unwrap(),
            &Request::Read { key: "k".into() },
            1,
            1,
            Duration::from_millis(200),
        );
        assert!(matches!(outcome, Outcome::Fail { .. }), "{outcome:?}");
    }

    #[test]
    fn status_documents_parse() {
        let body = json!({"role":"leader","term":4,"leader":"n1","commit_index":7,"applied_index":7,"state_hash":99});
        let status = parse_status("n1", &body).unwrap();
        assert_eq!(status.role, "leader");
        assert_eq!(status.leader.as_deref(), Some("n1"));
        assert!(parse_status("n1", &json!({"term":1})).is_none());
    }

    #[test]
    fn keys_and_values_are_percent_encoded() {
        assert_eq!(encode("a b/c"), "a%20b%2Fc");
        assert_eq!(encode("c3-17"), "c3-17");
    }
}
