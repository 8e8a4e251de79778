//! HTTP/1.1 request parsing and routing for the client API (pure, no I/O).
//!
//! Only what the API needs: bodies framed by `Content-Length` or by
//! `Transfer-Encoding: chunked` (which some clients send), keep-alive by
//! default on HTTP/1.1, bounded head and body sizes. Anything else is a
//! client error that the server answers with 4xx, counts, and closes the
//! connection on. Rooms: [`request`] (head and body framing), [`route`](mod@route)
//! (URL → [`Route`]), [`response`](mod@response) (serialising answers).
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

mod request;
mod response;
mod route;
#[cfg(test)]
mod tests;

pub(crate) use request::{HttpError, HttpLimits, parse_request};
pub(crate) use response::response;
pub(crate) use route::{Route, route};
