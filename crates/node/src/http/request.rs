//! Parsing one HTTP/1.1 request from the front of a byte buffer: the head
//! through `httparse`, then the body framed by `Content-Length` or decoded
//! from `Transfer-Encoding: chunked`, within the configured size limits.

/// Most headers a request may carry.
const MAX_HEADERS: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    pub method: String,
    /// Percent-encoded path without the query.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub client_id: Option<u64>,
    pub request_seq: Option<u64>,
    pub keep_alive: bool,
    /// The `Authorization` header's value, checked against the bearer token.
    pub authorization: Option<String>,
    pub body: Vec<u8>,
}

/// A request the server refuses before routing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpError {
    pub status: u16,
    pub reason: String,
}

impl HttpError {
    pub(super) fn bad(reason: impl Into<String>) -> HttpError {
        HttpError {
            status: 400,
            reason: reason.into(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct HttpLimits {
    pub max_header_bytes: usize,
    pub max_body_bytes: usize,
}

/// Parses one request from the front of `buf`. `Ok(None)`: incomplete,
/// read more. On success also returns the number of bytes consumed.
pub(crate) fn parse_request(
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
    let mut chunked = false;
    let mut client_id = None;
    let mut request_seq = None;
    let mut authorization = None;
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
                if !value.eq_ignore_ascii_case("chunked") || chunked {
                    return Err(HttpError::bad(format!(
                        "Transfer-Encoding `{value}` is not supported; send chunked or Content-Length"
                    )));
                }
                chunked = true;
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
            "authorization" => authorization = Some(value.to_owned()),
            _ => {}
        }
    }
    let (body, used) = match (chunked, content_length) {
        (true, Some(_)) => {
            // Both framings at once is the classic request-smuggling shape.
            return Err(HttpError::bad(
                "Transfer-Encoding and Content-Length exclude each other",
            ));
        }
        (true, None) => match decode_chunked(&buf[head_len..], limits)? {
            Some((body, used)) => (body, used),
            None => return Ok(None),
        },
        (false, length) => {
            let body_len = length.unwrap_or(0);
            if body_len > limits.max_body_bytes {
                return Err(too_large(limits));
            }
            if buf.len() < head_len + body_len {
                return Ok(None);
            }
            (buf[head_len..head_len + body_len].to_vec(), body_len)
        }
    };
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
            authorization,
            body,
        },
        head_len + used,
    )))
}

fn too_large(limits: HttpLimits) -> HttpError {
    HttpError {
        status: 413,
        reason: format!("body exceeds {} bytes", limits.max_body_bytes),
    }
}

/// Decodes a chunked body from the front of `buf` (the bytes after the
/// head): chunks of `size (hex)[;extensions] CRLF data CRLF`, a zero-size
/// last chunk, optional trailer fields (ignored) and a final CRLF.
/// `Ok(None)`: incomplete, read more. On success returns the body and the
/// number of bytes consumed. The decoded body is bounded by
/// `max_body_bytes`; the chunk framing around it by `max_header_bytes`
/// more, so a stream of tiny chunks cannot grow the buffer without bound.
fn decode_chunked(buf: &[u8], limits: HttpLimits) -> Result<Option<(Vec<u8>, usize)>, HttpError> {
    let incomplete = || {
        if buf.len()
            > limits
                .max_body_bytes
                .saturating_add(limits.max_header_bytes)
        {
            Err(too_large(limits))
        } else {
            Ok(None)
        }
    };
    let mut body = Vec::new();
    let mut position = 0;
    loop {
        let (size_len, size) = match httparse::parse_chunk_size(&buf[position..]) {
            Ok(httparse::Status::Complete(parsed)) => parsed,
            Ok(httparse::Status::Partial) => return incomplete(),
            Err(httparse::InvalidChunkSize) => {
                return Err(HttpError::bad("invalid chunk size line"));
            }
        };
        position += size_len;
        if size == 0 {
            break;
        }
        let size = usize::try_from(size)
            .ok()
            .filter(|size| body.len().saturating_add(*size) <= limits.max_body_bytes)
            .ok_or_else(|| too_large(limits))?;
        let Some(data) = buf.get(position..position + size + 2) else {
            return incomplete();
        };
        if !data.ends_with(b"\r\n") {
            return Err(HttpError::bad("chunk data not followed by CRLF"));
        }
        body.extend_from_slice(&data[..size]);
        position += size + 2;
    }
    // Trailer fields until an empty line.
    loop {
        let rest = &buf[position..];
        let Some(line_end) = rest.windows(2).position(|pair| pair == b"\r\n") else {
            return incomplete();
        };
        position += line_end + 2;
        if line_end == 0 {
            return Ok(Some((body, position)));
        }
    }
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
pub(crate) fn percent_decode(text: &str, plus_is_space: bool) -> Result<String, HttpError> {
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
