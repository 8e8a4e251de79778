//! Routing a parsed request to what it asks for ([`Route`]): key-value
//! reads and writes (with compare-and-set, list appends via `POST` and
//! exactly-once sessions),
//! `/status` and `/metrics`.
use consensus::{ClientRequest, KvOp, ReadMode};
use wire::LIST_SEPARATOR;

use super::request::{HttpError, Request, percent_decode};

/// Longest accepted key, in bytes.
pub(crate) const MAX_KEY_BYTES: usize = 1024;

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
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
    pub(crate) fn into_client_request(self, client: u64, seq: u64) -> Option<ClientRequest> {
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
pub(crate) fn route(request: &Request) -> Result<Route, HttpError> {
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
        "POST" => {
            reject_unknown_params(request, &[])?;
            let element = String::from_utf8(request.body.clone())
                .map_err(|_| HttpError::bad("element (the body) must be UTF-8"))?;
            if element.is_empty() || element.contains(LIST_SEPARATOR) {
                return Err(HttpError::bad(format!(
                    "element must be non-empty and free of {LIST_SEPARATOR:?}, the list separator"
                )));
            }
            Ok(Route::Write {
                op: KvOp::Append { key, element },
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
