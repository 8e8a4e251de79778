//! Client operations against splitnode's key-value API and how their
//! answers map to Jepsen outcomes.
//!
//! Outcome rules (a timeout is never a failure):
//! - connect refused/unreachable/timed out: `fail` (the request never left);
//! - 200: `ok` (a compare-and-set answered `"applied": false` is `fail`);
//! - 503 (`not_leader`, `no_quorum`, `lease_expired`, `overloaded`): `fail`;
//! - 4xx: `fail` (rejected before doing anything);
//! - 504, a timeout or a broken connection after sending: `info`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

use crate::http::{Response, Transport, request};

/// One client operation's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `GET /kv/<key>`.
    Read {
        /// The key.
        key: String,
    },
    /// `PUT /kv/<key>` with the value as body.
    Write {
        /// The key.
        key: String,
        /// The new value.
        value: String,
    },
    /// Compare-and-set; `expected = None`: write only if the key is absent.
    Cas {
        /// The key.
        key: String,
        /// The value the key must hold for the write to apply.
        expected: Option<String>,
        /// The new value.
        value: String,
    },
    /// `POST /kv/<key>` with the element as body: appends it to the key's
    /// list (a read returns the elements joined by single spaces).
    Append {
        /// The list's key.
        key: String,
        /// The element; unique per client and sequence number in the lab.
        element: String,
    },
}

/// How an operation ended, in Jepsen terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Took effect. `value` is what a read returned; `token` a write's fence.
    Ok {
        /// The value a read returned.
        value: Option<String>,
        /// A write's fencing token `(term, index)`.
        token: Option<(u64, u64)>,
    },
    /// Certainly did not take effect.
    Fail {
        /// Why.
        error: String,
        /// The node's leader hint, if it gave one.
        leader: Option<String>,
    },
    /// May or may not have taken effect.
    Info {
        /// Why the outcome is unknown.
        error: String,
    },
}

/// RFC 3986 unreserved characters stay; everything else is percent-encoded.
const PATH_SAFE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes a key or value for the path/query.
fn encode(text: &str) -> String {
    utf8_percent_encode(text, PATH_SAFE).to_string()
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
        Request::Append { key, element } => (
            "POST",
            format!("/kv/{}", encode(key)),
            element.clone(),
            false,
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
    let body = response.json();
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer(status: u16, body: Value) -> Response {
        Response {
            status,
            body: body.to_string(),
        }
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
    fn keys_and_values_are_percent_encoded() {
        assert_eq!(encode("a b/c"), "a%20b%2Fc");
        assert_eq!(encode("c3-17"), "c3-17");
        assert_eq!(encode("é~"), "%C3%A9~");
    }
}
