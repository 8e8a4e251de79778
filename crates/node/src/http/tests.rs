//! Parser and router tests: bodies, sessions, compare-and-set, read modes,
//! refusals with their status codes, chunked bodies.
use consensus::{KvOp, ReadMode};

use super::request::Request;
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

/// Asserts that each request is refused by the parser with its status.
fn assert_parse_refuses(cases: &[(&str, u16)]) {
    for (text, status) in cases {
        assert_eq!(parse(text).unwrap_err().status, *status, "{text:?}");
    }
}

/// Asserts that each complete request is refused, by the parser or the
/// router, with its status.
fn assert_route_refuses(cases: &[(&str, u16)]) {
    for (text, status) in cases {
        assert_eq!(routed(text).unwrap_err().status, *status, "{text:?}");
    }
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
fn the_list_separator_is_the_one_the_checker_splits_on() {
    assert_eq!(wire::LIST_SEPARATOR, checker::history::LIST_SEPARATOR);
}

#[test]
fn post_appends_one_element_with_the_session() {
    assert_eq!(
        routed("POST /kv/a0 HTTP/1.1\r\nContent-Length: 3\r\nX-Client-Id: 7\r\nX-Request-Seq: 2\r\n\r\n7-2")
            .unwrap(),
        Route::Write {
            op: KvOp::Append {
                key: "a0".into(),
                element: "7-2".into()
            },
            client: Some(7),
            seq: Some(2)
        }
    );
    for body in ["", "a b"] {
        let text = format!(
            "POST /kv/a0 HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        assert_eq!(routed(&text).unwrap_err().status, 400, "{body:?}");
    }
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
    assert_route_refuses(&[
        ("POST /status HTTP/1.1\r\n\r\n", 405),
        ("GET /nope HTTP/1.1\r\n\r\n", 404),
        ("PATCH /kv/k HTTP/1.1\r\n\r\n", 405),
    ]);
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
    let long = format!("GET /kv/{} HTTP/1.1\r\n", "a".repeat(2000));
    let many: String = (0..40).map(|n| format!("H{n}: v\r\n")).collect();
    let many = format!("GET /status HTTP/1.1\r\n{many}\r\n");
    assert_parse_refuses(&[
        ("\x01\x02garbage\r\n\r\n", 400),
        ("PUT /kv/a HTTP/1.1\r\nContent-Length: 65\r\n\r\n", 413),
        ("PUT /kv/a HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400),
        ("PUT /kv/a HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
        (&long, 431),
        (&many, 431),
    ]);
    assert_route_refuses(&[
        ("GET /kv/%zz HTTP/1.1\r\n\r\n", 400),
        ("GET /kv/%ff HTTP/1.1\r\n\r\n", 400),
        ("GET /kv/ HTTP/1.1\r\n\r\n", 400),
        ("PUT /kv/a HTTP/1.1\r\nX-Client-Id: 1\r\n\r\n", 400),
    ]);
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

#[test]
fn chunked_bodies_are_decoded() {
    let text = "PUT /kv/k HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
                3\r\nval\r\nA;ext=1\r\nue-chunked\r\n0\r\n\r\nGET";
    let (request, used) = parse(text).unwrap().unwrap();
    assert_eq!(used, text.len() - 3);
    assert_eq!(request.body, b"value-chunked");
    assert_eq!(
        route(&request).unwrap(),
        Route::Write {
            op: KvOp::Put {
                key: "k".into(),
                value: "value-chunked".into()
            },
            client: None,
            seq: None
        }
    );

    // Trailer fields are skipped; the request ends at the empty line.
    let text = "PUT /kv/k HTTP/1.1\r\ntransfer-encoding: Chunked\r\n\r\n\
                1\r\nx\r\n0\r\nX-Trailer: t\r\n\r\n";
    let (request, used) = parse(text).unwrap().unwrap();
    assert_eq!((request.body.as_slice(), used), (&b"x"[..], text.len()));

    // Every proper prefix is incomplete, not an error.
    let full = "PUT /kv/k HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n";
    for cut in 0..full.len() {
        assert_eq!(parse(&full[..cut]), Ok(None), "cut at {cut}");
    }
}

#[test]
fn bad_chunked_bodies_are_refused() {
    let head = "PUT /kv/k HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    let status = |body: &str| parse(&format!("{head}{body}")).unwrap_err().status;
    assert_eq!(status("zz\r\n"), 400);
    assert_eq!(status("2\r\nabc\r\n"), 400);
    // Decoded size over max_body_bytes (64), in one chunk or spread out.
    assert_eq!(status("41\r\n"), 413);
    let small_chunks: String = (0..70).map(|_| "1\r\nx\r\n").collect();
    assert_eq!(status(&small_chunks), 413);
    // Chunk framing without end is bounded too.
    let endless_trailer = format!("0\r\nX: {}", "a".repeat(1200));
    assert_eq!(status(&endless_trailer), 413);
    assert_parse_refuses(&[
        (
            "PUT /kv/k HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            400,
        ),
        (
            "PUT /kv/k HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            400,
        ),
    ]);
}
