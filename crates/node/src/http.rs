//! HTTP/1.1 request parsing and routing for the client API (pure, no I/O).
//!
//! Only what the API needs: `Content-Length` bodies (no chunked encoding),
//! keep-alive by default on HTTP/1.1, bounded head and body sizes. Anything
//! else is a client error that the server answers with 4xx, counts, and
//! closes the connection on.
//!
//! Routes (see the crate docs for the JSON shapes):
//!
//! | request | meaning |
//! |---|---|
//! | `PUT /kv/{key}` body = value | write |
//! | `PUT /kv/{key}?if={expected}` | compare-and-set: write only if the current value equals `expected` |
//! | `PUT /kv/{key}?if_absent=true` | compare-and-set: write only if the key is absent |
//! | `DELETE /kv/{key}` | delete |
//! | `GET /kv/{key}[?read=linearizable\|lease\|stale]` | read (default linearizable) |
//! | `GET /status` | node status JSON |
//! | `GET /metrics` | Prometheus text |
//!
//! Keys and query values are percent-decoded and must be UTF-8; so must a
//! value (the body). Headers `X-Client-Id` and `X-Request-Seq` (both
//! unsigned 64-bit decimals, given together) name a write for exactly-once
//! retries: resending the same pair returns the original outcome instead of
//! applying the write twice.
use consensus::{ClientRequest, KvOp, ReadMode};

/// Most headers a request may carry.
const MAX_HEADERS: usize = 32;
/// Longest accepted key, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// Percent-encoded path without the query.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub client_id: Option<u64>,
    pub request_seq: Option<u64>,
    pub keep_alive: bool,
    pub body: Vec<u8>,
}

/// A request the server refuses before routing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    pub status: u16,
    pub reason: String,
}

impl HttpError {
    fn bad(reason: impl Into<String>) -> HttpError {
        HttpError {
            status: 400,
            reason: reason.into(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    pub max_header_bytes: usize,
    pub max_body_bytes: usize,
}

/// Parses one request from the front of `buf`. `Ok(None)`: incomplete,
/// read more. On success also returns the number of bytes consumed.
pub fn parse_request(
    buf: &[u8],
    limits: HttpLimits,
) -> Result<Option<(Request, usize)>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let head_len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            if buf.len() > limits.max_header_bytes {
                return Err(HttpError {
                    status: 431,
                    reason: format!("request head exceeds {} bytes", limits.max_header_bytes),
                });
            }
            return Ok(None);
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(HttpError {
                status: 431,
                reason: format!("more than {MAX_HEADERS} headers"),
            });
        }
        Err(error) => return Err(HttpError::bad(format!("malformed request: {error}"))),
    };
    if head_len > limits.max_header_bytes {
        return Err(HttpError {
            status: 431,
            reason: format!("request head exceeds {} bytes", limits.max_header_bytes),
        });
    }
    let method = parsed.method.unwrap_or_default().to_owned();
    let target = parsed.path.unwrap_or_default();
    let version = parsed.version.unwrap_or(1);
    let mut keep_alive = version >= 1;
    let mut content_length: Option<usize> = None;
    let mut client_id = None;
    let mut request_seq = None;
    for header in parsed.headers.iter() {
        let value = std::str::from_utf8(header.value)
            .map_err(|_| HttpError::bad(format!("header {} is not UTF-8", header.name)))?
            .trim();
        let name = header.name.to_ascii_lowercase();
        match name.as_str() {
            "content-length" => {
                let length = value
                    .parse::<usize>()
                    .map_err(|_| HttpError::bad("invalid Content-Length"))?;
                if content_length.is_some_and(|previous| previous != length) {
                    return Err(HttpError::bad("conflicting Content-Length headers"));
                }
                content_length = Some(length);
            }
            "transfer-encoding" => {
                return Err(HttpError::bad(
                    "Transfer-Encoding is not supported; send Content-Length",
                ));
            }
            "connection" => {
                let value = value.to_ascii_lowercase();
                if value.contains("close") {
                    keep_alive = false;
                } else if value.contains("keep-alive") {
                    keep_alive = true;
                }
            }
            "x-client-id" => {
                client_id = Some(value.parse::<u64>().map_err(|_| {
                    HttpError::bad("X-Client-Id must be an unsigned 64-bit integer")
                })?);
            }
            "x-request-seq" => {
                request_seq = Some(value.parse::<u64>().map_err(|_| {
                    HttpError::bad("X-Request-Seq must be an unsigned 64-bit integer")
                })?);
            }
            _ => {}
        }
    }
    let body_len = content_length.unwrap_or(0);
    if body_len > limits.max_body_bytes {
        return Err(HttpError {
            status: 413,
            reason: format!("body exceeds {} bytes", limits.max_body_bytes),
        });
    }
    if buf.len() < head_len + body_len {
        return Ok(None);
    }
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, parse_query(query)?),
        None => (target, Vec::new()),
    };
    Ok(Some((
        Request {
            method,
            path: path.to_owned(),
            query,
            client_id,
            request_seq,
            keep_alive,
            body: buf[head_len..head_len + body_len].to_vec(),
        },
        head_len + body_len,
    )))
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes `text` (and `+` as space when `plus_is_space`).
pub fn percent_decode(text: &str, plus_is_space: bool) -> Result<String, HttpError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut position = 0;
    while position < bytes.len() {
        match bytes[position] {
            b'%' => {
                let high = bytes.get(position + 1).copied().and_then(hex_value);
                let low = bytes.get(position + 2).copied().and_then(hex_value);
                match (high, low) {
                    (Some(high), Some(low)) => out.push(high * 16 + low),
                    _ => return Err(HttpError::bad("invalid percent escape")),
                }
                position += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                position += 1;
            }
            byte => {
                out.push(byte);
                position += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| HttpError::bad("percent-decoded text is not UTF-8"))
}

fn parse_query(query: &str) -> Result<Vec<(String, String)>, HttpError> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((percent_decode(name, true)?, percent_decode(value, true)?))
        })
        .collect()
}

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Status,
    Metrics,
    Read {
        key: String,
        mode: ReadMode,
    },
    /// A mutation; `client`/`seq` are set when the request carried them.
    Write {
        op: KvOp,
        client: Option<u64>,
        seq: Option<u64>,
    },
}

impl Route {
    /// The consensus request, given the session to use for a write.
    pub fn into_client_request(self, client: u64, seq: u64) -> Option<ClientRequest> {
        match self {
            Route::Read { key, mode } => Some(ClientRequest::Read { key, mode }),
            Route::Write { op, .. } => Some(ClientRequest::Write { client, seq, op }),
            Route::Status | Route::Metrics => None,
        }
    }
}

fn query_value<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request
        .query
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

fn reject_unknown_params(request: &Request, allowed: &[&str]) -> Result<(), HttpError> {
    for (name, _) in &request.query {
        if !allowed.contains(&name.as_str()) {
            return Err(HttpError::bad(format!("unknown query parameter `{name}`")));
        }
    }
    Ok(())
}

/// Maps a parsed request to a [`Route`], or to the error to answer with.
pub fn route(request: &Request) -> Result<Route, HttpError> {
    let method = request.method.as_str();
    match request.path.as_str() {
        "/status" | "/metrics" => {
            if method != "GET" {
                return Err(HttpError {
                    status: 405,
                    reason: format!("{} supports only GET", request.path),
                });
            }
            reject_unknown_params(request, &[])?;
            return Ok(if request.path == "/status" {
                Route::Status
            } else {
                Route::Metrics
            });
        }
        _ => {}
    }
    let Some(raw_key) = request.path.strip_prefix("/kv/") else {
        return Err(HttpError {
            status: 404,
            reason: format!("no such resource {}", request.path),
        });
    };
    let key = percent_decode(raw_key, false)?;
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(HttpError::bad(format!(
            "key must be 1..={MAX_KEY_BYTES} bytes"
        )));
    }
    let session = match (request.client_id, request.request_seq) {
        (Some(client), Some(seq)) => (Some(client), Some(seq)),
        (None, None) => (None, None),
        _ => {
            return Err(HttpError::bad(
                "X-Client-Id and X-Request-Seq must be given together",
            ));
        }
    };
    match method {
        "GET" => {
            reject_unknown_params(request, &["read"])?;
            let mode = match query_value(request, "read") {
                None | Some("linearizable") => ReadMode::Linearizable,
                Some("lease") => ReadMode::Lease,
                Some("stale") => ReadMode::Stale,
                Some(other) => {
                    return Err(HttpError::bad(format!(
                        "read={other}: expected linearizable, lease or stale"
                    )));
                }
            };
            Ok(Route::Read { key, mode })
        }
        "PUT" => {
            reject_unknown_params(request, &["if", "if_absent"])?;
            let value = String::from_utf8(request.body.clone())
                .map_err(|_| HttpError::bad("value (the body) must be UTF-8"))?;
            let expected = match (
                query_value(request, "if"),
                query_value(request, "if_absent"),
            ) {
                (Some(_), Some(_)) => {
                    return Err(HttpError::bad("give either `if` or `if_absent`, not both"));
                }
                (Some(expected), None) => Some(Some(expected.to_owned())),
                (None, Some("true")) => Some(None),
                (None, Some(other)) => {
                    return Err(HttpError::bad(format!(
                        "if_absent={other}: only `true` is accepted"
                    )));
                }
                (None, None) => None,
            };
            let op = match expected {
                None => KvOp::Put { key, value },
                Some(expected) => KvOp::Cas {
                    key,
                    expected,
                    value,
                },
            };
            Ok(Route::Write {
                op,
                client: session.0,
                seq: session.1,
            })
        }
        "DELETE" => {
            reject_unknown_params(request, &[])?;
            Ok(Route::Write {
                op: KvOp::Delete { key },
                client: session.0,
                seq: session.1,
            })
        }
        _ => Err(HttpError {
            status: 405,
            reason: format!("method {method} not allowed on /kv/"),
        }),
    }
}

fn status_text(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

/// Serialises a response.
pub fn response(status: u16, content_type: &str, body: &[u8], keep_alive: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n",
        status_text(status),
        body.len(),
        if keep_alive { "keep-alive" } else { "close" },
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: HttpLimits = HttpLimits {
        max_header_bytes: 1024,
        max_body_bytes: 64,
    };

    fn parse(text: &str) -> Result<Option<(Request, usize)>, HttpError> {
        parse_request(text.as_bytes(), LIMITS)
    }

    fn routed(text: &str) -> Result<Route, HttpError> {
        let (request, _) = parse(text)?.expect("complete");
        route(&request)
    }

    #[test]
    fn parses_a_put_with_body_and_session() {
        let text = "PUT /kv/a%20b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nX-Client-Id: 7\r\nX-Request-Seq: 2\r\n\r\nvalGET";
        let (request, used) = parse(text).unwrap().unwrap();
        assert_eq!(used, text.len() - 3);
        assert_eq!(request.body, b"val");
        assert!(request.keep_alive);
        assert_eq!(
            route(&request).unwrap(),
            Route::Write {
                op: KvOp::Put {
                    key: "a b".into(),
                    value: "val".into()
                },
                client: Some(7),
                seq: Some(2)
            }
        );
    }

    #[test]
    fn incomplete_requests_wait_for_more() {
        assert_eq!(parse("GET /status HTTP/1.1\r\nHost"), Ok(None));
        assert_eq!(
            parse("PUT /kv/a HTTP/1.1\r\nContent-Length: 5\r\n\r\nab"),
            Ok(None)
        );
    }

    #[test]
    fn compare_and_set_forms() {
        assert_eq!(
            routed("PUT /kv/k?if=old%26v HTTP/1.1\r\nContent-Length: 1\r\n\r\nn").unwrap(),
            Route::Write {
                op: KvOp::Cas {
                    key: "k".into(),
                    expected: Some("old&v".into()),
                    value: "n".into()
                },
                client: None,
                seq: None
            }
        );
        assert_eq!(
            routed("PUT /kv/k?if_absent=true HTTP/1.1\r\nContent-Length: 0\r\n\r\n").unwrap(),
            Route::Write {
                op: KvOp::Cas {
                    key: "k".into(),
                    expected: None,
                    value: "".into()
                },
                client: None,
                seq: None
            }
        );
        assert_eq!(
            routed("PUT /kv/k?if=a&if_absent=true HTTP/1.1\r\n\r\n")
                .unwrap_err()
                .status,
            400
        );
    }

    #[test]
    fn read_modes_and_other_routes() {
        let read = |query: &str| routed(&format!("GET /kv/k{query} HTTP/1.1\r\n\r\n"));
        assert_eq!(
            read("").unwrap(),
            Route::Read {
                key: "k".into(),
                mode: ReadMode::Linearizable
            }
        );
        assert_eq!(
            read("?read=lease").unwrap(),
            Route::Read {
                key: "k".into(),
                mode: ReadMode::Lease
            }
        );
        assert_eq!(
            read("?read=stale").unwrap(),
            Route::Read {
                key: "k".into(),
                mode: ReadMode::Stale
            }
        );
        assert_eq!(read("?read=psychic").unwrap_err().status, 400);
        assert_eq!(read("?bogus=1").unwrap_err().status, 400);
        assert_eq!(
            routed("GET /status HTTP/1.1\r\n\r\n").unwrap(),
            Route::Status
        );
        assert_eq!(
            routed("GET /metrics HTTP/1.1\r\n\r\n").unwrap(),
            Route::Metrics
        );
        assert_eq!(
            routed("POST /status HTTP/1.1\r\n\r\n").unwrap_err().status,
            405
        );
        assert_eq!(
            routed("GET /nope HTTP/1.1\r\n\r\n").unwrap_err().status,
            404
        );
        assert_eq!(
            routed("PATCH /kv/k HTTP/1.1\r\n\r\n").unwrap_err().status,
            405
        );
        assert_eq!(
            routed("DELETE /kv/k HTTP/1.1\r\n\r\n").unwrap(),
            Route::Write {
                op: KvOp::Delete { key: "k".into() },
                client: None,
                seq: None
            }
        );
    }

    #[test]
    fn malformed_and_oversized_requests_are_refused() {
        assert_eq!(parse("\x01\x02garbage\r\n\r\n").unwrap_err().status, 400);
        assert_eq!(
            parse("PUT /kv/a HTTP/1.1\r\nContent-Length: 65\r\n\r\n")
                .unwrap_err()
                .status,
            413
        );
        assert_eq!(
            parse("PUT /kv/a HTTP/1.1\r\nContent-Length: x\r\n\r\n")
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(
            parse("PUT /kv/a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
                .unwrap_err()
                .status,
            400
        );
        let long = format!("GET /kv/{} HTTP/1.1\r\n", "a".repeat(2000));
        assert_eq!(parse(&long).unwrap_err().status, 431);
        let many: String = (0..40).map(|n| format!("H{n}: v\r\n")).collect();
        assert_eq!(
            parse(&format!("GET /status HTTP/1.1\r\n{many}\r\n"))
                .unwrap_err()
                .status,
            431
        );
        assert_eq!(
            routed("GET /kv/%zz HTTP/1.1\r\n\r\n").unwrap_err().status,
            400
        );
        assert_eq!(
            routed("GET /kv/%ff HTTP/1.1\r\n\r\n").unwrap_err().status,
            400
        );
        assert_eq!(routed("GET /kv/ HTTP/1.1\r\n\r\n").unwrap_err().status, 400);
        assert_eq!(
            routed("PUT /kv/a HTTP/1.1\r\nX-Client-Id: 1\r\n\r\n")
                .unwrap_err()
                .status,
            400
        );
        let invalid_utf8 = b"PUT /kv/a HTTP/1.1\r\nContent-Length: 1\r\n\r\n\xff";
        let (request, _) = parse_request(invalid_utf8, LIMITS).unwrap().unwrap();
        assert_eq!(route(&request).unwrap_err().status, 400);
    }

    #[test]
    fn connection_close_and_http_1_0() {
        let (request, _) = parse("GET /status HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!request.keep_alive);
        let (request, _) = parse("GET /status HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(!request.keep_alive);
    }

    #[test]
    fn response_has_length_and_connection() {
        let bytes = response(503, "application/json", b"{}", false);
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
        assert!(text.contains("Content-Length: 2\r\n"));
        assert!(text.contains("Connection: close\r\n"));
        assert!(text.ends_with("\r\n\r\n{}"));
    }
}
