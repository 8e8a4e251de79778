//! A minimal blocking HTTP/1.1 client for splitnode (and, in the benches,
//! etcd's JSON gateway): one-shot requests and keep-alive connections over
//! one answer parser (Content-Length, chunked, or close-delimited bodies).
//!
//! Callers run on threads inside a lab namespace, so every socket is opened
//! lazily on the caller's thread and belongs to that namespace. [`request`]
//! uses one connection per request (a partition must not hide behind a
//! pooled connection); [`HttpConn`] keeps one open (benches measure the
//! server, not connection set-up).

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde_json::Value;

/// An HTTP answer: status code and body (chunked bodies decoded; invalid
/// UTF-8 replaced).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Body text.
    pub body: String,
}

impl Response {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// Why a request produced no HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// Never connected: the request certainly did not arrive.
    Connect(String),
    /// Connected and (maybe) sent, then nothing usable came back in time.
    AfterSend(String),
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transport::Connect(error) => write!(f, "connect: {error}"),
            Transport::AfterSend(error) => f.write_str(error),
        }
    }
}

impl std::error::Error for Transport {}

impl From<Transport> for io::Error {
    fn from(error: Transport) -> io::Error {
        io::Error::other(error.to_string())
    }
}

fn short_io(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => "timeout".into(),
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        io::ErrorKind::ConnectionReset => "connection reset".into(),
        _ => error.to_string(),
    }
}

/// How long an [`HttpConn`] request may take unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(8);

/// One keep-alive connection to one server, opened by the first request and
/// reopened after an error or a `Connection: close` answer.
#[derive(Debug)]
pub struct HttpConn {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    buffer: Vec<u8>,
    timeout: Duration,
    close_each: bool,
    /// Sent as `Authorization: Bearer <token>` when set.
    bearer: Option<Arc<str>>,
}

/// The bearer token every new [`HttpConn`] starts with (see [`set_default_bearer`]).
static DEFAULT_BEARER: RwLock<Option<Arc<str>>> = RwLock::new(None);

/// Sets the bearer token that every [`HttpConn`] created afterwards sends
/// (`None`: none). A lab or bench run talks to one cluster with one token,
/// so it is set once instead of being threaded through every poller.
pub fn set_default_bearer(token: Option<&str>) {
    *DEFAULT_BEARER
        .write()
        .unwrap_or_else(|poison| poison.into_inner()) = token.map(Arc::from);
}

fn default_bearer() -> Option<Arc<str>> {
    DEFAULT_BEARER
        .read()
        .unwrap_or_else(|poison| poison.into_inner())
        .clone()
}

impl HttpConn {
    /// A client for `addr` with [`DEFAULT_TIMEOUT`]; nothing is opened yet.
    pub fn new(addr: SocketAddr) -> HttpConn {
        HttpConn {
            addr,
            stream: None,
            buffer: Vec::with_capacity(4096),
            timeout: DEFAULT_TIMEOUT,
            close_each: false,
            bearer: default_bearer(),
        }
    }

    /// This connection sends `Authorization: Bearer <token>` (`None`: nothing).
    pub fn with_bearer(mut self, token: Option<&str>) -> HttpConn {
        self.bearer = token.map(Arc::from);
        self
    }

    /// Connects now (within `timeout`, also the default per-request timeout).
    ///
    /// # Errors
    /// Connect failures.
    pub fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<HttpConn> {
        let mut conn = HttpConn::new(addr);
        conn.timeout = timeout;
        conn.open(Instant::now() + timeout)
            .map_err(|error| io::Error::other(error.to_string()))?;
        Ok(conn)
    }

    /// The server address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Drops the connection (the next request reconnects).
    pub fn reset(&mut self) {
        self.stream = None;
        self.buffer.clear();
    }

    /// Sends one request with the default timeout (see
    /// [`HttpConn::request_within`]).
    ///
    /// # Errors
    /// As [`HttpConn::request_within`].
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
        headers: &[(&str, String)],
    ) -> Result<Response, Transport> {
        self.request_within(method, path, body, headers, self.timeout)
    }

    /// Sends one request and waits for the whole answer, at most `timeout`
    /// in total. On any error the connection is dropped.
    ///
    /// # Errors
    /// [`Transport::Connect`] when no connection could be opened,
    /// [`Transport::AfterSend`] for send/receive failures, timeouts and
    /// malformed answers.
    pub fn request_within(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
        headers: &[(&str, String)],
        timeout: Duration,
    ) -> Result<Response, Transport> {
        let result = self.exchange(method, path, body, headers, Instant::now() + timeout);
        if result.is_err() {
            self.reset();
        }
        result
    }

    fn open(&mut self, deadline: Instant) -> Result<(), Transport> {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        let stream = TcpStream::connect_timeout(&self.addr, left)
            .map_err(|error| Transport::Connect(short_io(&error)))?;
        let _ = stream.set_nodelay(true);
        self.stream = Some(stream);
        self.buffer.clear();
        Ok(())
    }

    fn exchange(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
        headers: &[(&str, String)],
        deadline: Instant,
    ) -> Result<Response, Transport> {
        let after = |error: &io::Error| Transport::AfterSend(short_io(error));
        let left = || {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                Err(Transport::AfterSend("timeout".into()))
            } else {
                Ok(left)
            }
        };
        if self.stream.is_none() {
            self.open(deadline)?;
        }
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        if !body.is_empty() {
            head.push_str("Content-Type: application/json\r\n");
        }
        if self.close_each {
            head.push_str("Connection: close\r\n");
        }
        if let Some(token) = &self.bearer {
            head.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        let stream = self.stream.as_mut().expect("connected above");
        stream
            .set_write_timeout(Some(left()?))
            .and_then(|()| stream.write_all(&request))
            .map_err(|error| Transport::AfterSend(format!("send: {}", short_io(&error))))?;
        let mut chunk = [0u8; 8192];
        let mut eof = false;
        loop {
            if let Some((response, used, close)) =
                parse_response(&self.buffer, eof).map_err(Transport::AfterSend)?
            {
                self.buffer.drain(..used);
                if close || self.close_each {
                    self.reset();
                }
                return Ok(response);
            }
            if eof {
                return Err(Transport::AfterSend(
                    "connection closed before a full answer".into(),
                ));
            }
            let stream = self.stream.as_mut().expect("connected above");
            stream
                .set_read_timeout(Some(left()?))
                .map_err(|e| after(&e))?;
            match stream.read(&mut chunk) {
                Ok(0) => eof = true,
                Ok(read) => self.buffer.extend_from_slice(&chunk[..read]),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(after(&error)),
            }
        }
    }
}

/// Sends one request on a fresh connection (`Connection: close`) and reads
/// the whole answer before `deadline`.
///
/// # Errors
/// As [`HttpConn::request_within`].
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &str,
    deadline: Instant,
) -> Result<Response, Transport> {
    let mut conn = HttpConn::new(addr);
    conn.close_each = true;
    conn.exchange(method, path, body.as_bytes(), headers, deadline)
}

/// Parses one complete answer at the start of `buffer`: the answer, how many
/// bytes it used, and whether the server will close the connection. `None`
/// while more bytes are needed; `eof` says the server closed, which ends a
/// body without length or chunking.
///
/// # Errors
/// Malformed status line, headers, lengths or chunk sizes.
pub fn parse_response(buffer: &[u8], eof: bool) -> Result<Option<(Response, usize, bool)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Response::new(&mut headers);
    let head_len = match parsed.parse(buffer) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(error) => return Err(format!("bad HTTP answer: {error}")),
    };
    let status = parsed.code.unwrap_or(0);
    let mut length = None;
    let mut chunked = false;
    let mut close = parsed.version == Some(0);
    for header in parsed.headers.iter() {
        let value = String::from_utf8_lossy(header.value);
        let value = value.trim();
        if header.name.eq_ignore_ascii_case("content-length") {
            let parsed = value.parse::<usize>();
            length = Some(parsed.map_err(|_| format!("bad content-length {value:?}"))?);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        } else if header.name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        }
    }
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    if chunked {
        let mut at = head_len;
        let mut body = Vec::new();
        loop {
            let (size_len, size) = match httparse::parse_chunk_size(&buffer[at..]) {
                Ok(httparse::Status::Complete(found)) => found,
                Ok(httparse::Status::Partial) => return Ok(None),
                Err(_) => return Err("bad chunk size".into()),
            };
            let data = at + size_len;
            let size = usize::try_from(size).map_err(|_| "chunk too large".to_string())?;
            // No trailers expected: after the last chunk a CRLF ends the body.
            if buffer.len() < data + size + 2 {
                return Ok(None);
            }
            if size == 0 {
                let response = Response {
                    status,
                    body: text(&body),
                };
                return Ok(Some((response, data + 2, close)));
            }
            body.extend_from_slice(&buffer[data..data + size]);
            at = data + size + 2;
        }
    }
    let length = match length {
        Some(length) => length,
        None if status == 204 || status == 304 => 0,
        // Only "until close" remains.
        None if close && eof => buffer.len() - head_len,
        None if close => return Ok(None),
        None => return Err("answer without content-length".into()),
    };
    if buffer.len() < head_len + length {
        return Ok(None);
    }
    let body = text(&buffer[head_len..head_len + length]);
    Ok(Some((Response { status, body }, head_len + length, close)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_answers_and_pipelined_rest() {
        let text = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1 503";
        let (answer, used, close) = parse_response(text, false).unwrap().unwrap();
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body, "{}");
        assert_eq!(&text[used..], b"HTTP/1.1 503");
        assert!(!close);
        let partial = b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{\"ok\":true}";
        assert_eq!(parse_response(&partial[..30], false).unwrap(), None);
        assert_eq!(
            parse_response(partial, false).unwrap().unwrap().0.json()["ok"],
            true
        );
    }

    #[test]
    fn chunked_answers_and_close() {
        let text = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let (answer, used, close) = parse_response(text, false).unwrap().unwrap();
        assert_eq!(answer.body, "abcde");
        assert_eq!(used, text.len());
        assert!(close);
        assert_eq!(
            parse_response(&text[..text.len() - 3], false).unwrap(),
            None
        );
    }

    #[test]
    fn close_delimited_bodies_end_at_eof() {
        let text = b"HTTP/1.0 200 OK\r\n\r\nhello";
        assert_eq!(parse_response(text, false).unwrap(), None);
        let (answer, _, close) = parse_response(text, true).unwrap().unwrap();
        assert_eq!((answer.body.as_str(), close), ("hello", true));
    }

    #[test]
    fn malformed_answers_are_errors() {
        assert!(parse_response(b"SMTP 220 hi\r\n\r\n", false).is_err());
        assert!(parse_response(b"HTTP/1.1 abc\r\n\r\n", false).is_err());
        let bad_length = b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n";
        assert!(parse_response(bad_length, false).is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n\r\n", false).is_err());
        let bad_chunk = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert!(parse_response(bad_chunk, false).is_err());
    }

    #[test]
    fn keep_alive_and_one_shot_against_a_local_server() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 1024];
            for answer in [
                "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na",
                "HTTP/1.1 503 No\r\nContent-Length: 1\r\n\r\nb",
            ] {
                let read = socket.read(&mut buf).unwrap();
                seen.extend_from_slice(&buf[..read]);
                socket.write_all(answer.as_bytes()).unwrap();
            }
            String::from_utf8(seen).unwrap()
        });
        let mut conn = HttpConn::new(addr).with_bearer(Some("t0ken-for-this-test"));
        let first = conn
            .request("PUT", "/kv/a", b"1", &[("X-Client-Id", "7".into())])
            .unwrap();
        let second = conn.request("GET", "/status", b"", &[]).unwrap();
        assert_eq!((first.status, first.body.as_str()), (200, "a"));
        assert_eq!((second.status, second.body.as_str()), (503, "b"));
        let seen = server.join().unwrap();
        assert!(seen.contains("X-Client-Id: 7\r\n"), "{seen}");
        assert_eq!(
            seen.matches("Authorization: Bearer t0ken-for-this-test\r\n")
                .count(),
            2
        );
        assert_eq!(seen.matches("HTTP/1.1\r\n").count(), 2);
        // Nothing listens on the server's port any more: a definite connect failure.
        let refused = request(
            addr,
            "GET",
            "/status",
            &[],
            "",
            Instant::now() + Duration::from_millis(200),
        );
        assert!(matches!(refused, Err(Transport::Connect(_))), "{refused:?}");
    }
}
