//! A minimal blocking HTTP/1.1 keep-alive client for the benches.
//!
//! Benches measure the server, not connection set-up, so a client keeps one
//! connection open and reconnects only after an error or `Connection: close`.
//! The connection is opened lazily by the first request, on the caller's
//! thread: callers live on threads inside a lab namespace (see
//! [`super::netns`]), so every socket belongs to that namespace.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// An HTTP answer: status code and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Body (chunked bodies are decoded).
    pub body: Vec<u8>,
}

/// One keep-alive connection to one server.
pub struct HttpConn {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    buffer: Vec<u8>,
}

impl HttpConn {
    /// A client for `addr`; nothing is opened yet.
    pub fn new(addr: SocketAddr) -> HttpConn {
        HttpConn {
            addr,
            stream: None,
            buffer: Vec::with_capacity(4096),
        }
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

    /// Sends one request and waits for the whole answer, at most `timeout`
    /// in total. On any error the connection is dropped.
    ///
    /// # Errors
    /// Connect, send or receive failures, timeouts, malformed answers.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
        timeout: Duration,
    ) -> io::Result<Answer> {
        let result = self.exchange(method, path, body, Instant::now() + timeout);
        if result.is_err() {
            self.reset();
        }
        result
    }

    fn exchange(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
        deadline: Instant,
    ) -> io::Result<Answer> {
        let left = || {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                Err(io::Error::new(io::ErrorKind::TimedOut, "request deadline"))
            } else {
                Ok(left)
            }
        };
        if self.stream.is_none() {
            let stream = TcpStream::connect_timeout(&self.addr, left()?)?;
            stream.set_nodelay(true)?;
            self.stream = Some(stream);
            self.buffer.clear();
        }
        let stream = self.stream.as_mut().expect("connected above");
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.addr,
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body);
        stream.set_write_timeout(Some(left()?))?;
        stream.write_all(&request)?;
        let mut chunk = [0u8; 8192];
        loop {
            if let Some((answer, used, close)) = parse_answer(&self.buffer)? {
                self.buffer.drain(..used);
                if close {
                    self.reset();
                }
                return Ok(answer);
            }
            let stream = self.stream.as_mut().expect("connected above");
            stream.set_read_timeout(Some(left()?))?;
            let read = match stream.read(&mut chunk) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "read timed out"));
                }
                Err(e) => return Err(e),
            };
            if read == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "server closed the connection",
                ));
            }
            self.buffer.extend_from_slice(&chunk[..read]);
        }
    }
}

fn bad(reason: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, reason.into())
}

/// Parses one complete answer at the start of `buffer`: the answer, how many
/// bytes it used, and whether the server will close the connection. `None`
/// when more bytes are needed.
///
/// # Errors
/// Malformed status line, headers or chunk sizes.
pub fn parse_answer(buffer: &[u8]) -> io::Result<Option<(Answer, usize, bool)>> {
    let Some(head_end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buffer.len() > 64 * 1024 {
            return Err(bad("answer headers too large"));
        }
        return Ok(None);
    };
    let head = std::str::from_utf8(&buffer[..head_end]).map_err(|_| bad("non-UTF-8 headers"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.split_whitespace();
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(bad(format!("bad status line {status_line:?}")));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("bad status line {status_line:?}")))?;
    let mut length = None;
    let mut chunked = false;
    let mut close = version == "HTTP/1.0";
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(bad(format!("bad header {line:?}")));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| bad(format!("bad content-length {value:?}")))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        }
    }
    let body_start = head_end + 4;
    if chunked {
        let mut at = body_start;
        let mut body = Vec::new();
        loop {
            let Some(line_end) = buffer[at..].windows(2).position(|w| w == b"\r\n") else {
                return Ok(None);
            };
            let size_text = std::str::from_utf8(&buffer[at..at + line_end])
                .map_err(|_| bad("bad chunk size"))?;
            let size_text = size_text.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|_| bad(format!("bad chunk size {size_text:?}")))?;
            let data = at + line_end + 2;
            if size == 0 {
                // No trailers expected: the final CRLF ends the body.
                if buffer.len() < data + 2 {
                    return Ok(None);
                }
                let answer = Answer { status, body };
                return Ok(Some((answer, data + 2, close)));
            }
            if buffer.len() < data + size + 2 {
                return Ok(None);
            }
            body.extend_from_slice(&buffer[data..data + size]);
            at = data + size + 2;
        }
    }
    let length = match length {
        Some(length) => length,
        // Without a length only "until close" remains, which keep-alive
        // clients cannot use; the servers benched here always send one.
        None if status == 204 || status == 304 => 0,
        None => return Err(bad("answer without content-length")),
    };
    if buffer.len() < body_start + length {
        return Ok(None);
    }
    let answer = Answer {
        status,
        body: buffer[body_start..body_start + length].to_vec(),
    };
    Ok(Some((answer, body_start + length, close)))
}

/// Standard base64 (with padding), as etcd's JSON gateway expects for keys
/// and values.
pub fn base64(data: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for group in data.chunks(3) {
        let b = [
            group[0],
            group.get(1).copied().unwrap_or(0),
            group.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= group.len() {
                out.push(TABLE[((n >> shift) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_answers_and_pipelined_rest() {
        let text = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1 503";
        let (answer, used, close) = parse_answer(text).unwrap().unwrap();
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body, b"{}");
        assert_eq!(&text[used..], b"HTTP/1.1 503");
        assert!(!close);
        assert_eq!(
            parse_answer(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab").unwrap(),
            None
        );
    }

    #[test]
    fn chunked_answers_and_close() {
        let text = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let (answer, used, close) = parse_answer(text).unwrap().unwrap();
        assert_eq!(answer.body, b"abcde");
        assert_eq!(used, text.len());
        assert!(close);
        assert_eq!(parse_answer(&text[..text.len() - 3]).unwrap(), None);
    }

    #[test]
    fn malformed_answers_are_errors() {
        assert!(parse_answer(b"SMTP 220 hi\r\n\r\n").is_err());
        assert!(parse_answer(b"HTTP/1.1 abc\r\n\r\n").is_err());
        assert!(parse_answer(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
        assert!(parse_answer(b"HTTP/1.1 200 OK\r\n\r\n").is_err());
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }
}
