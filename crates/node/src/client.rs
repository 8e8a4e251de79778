//! The HTTP/JSON client API: a listener, one task per connection, requests
//! forwarded to the driver over a bounded channel with a oneshot back.
//!
//! Response bodies (all JSON except `/metrics`):
//!
//! * write ok (200; `PUT`, `DELETE`, and `POST` = append the body to the
//!   key's list): `{"ok":true,"node":"n1","token":{"term":T,"index":I},"applied":bool}`
//!   — `applied` is false only for a compare-and-set whose comparison failed
//!   (the CAS was still committed at `token`, as a no-op).
//! * read ok (200): `{"ok":true,"node":"n1","key":K,"value":V|null,"index":I,"read":"linearizable"|"lease"|"stale"}`
//! * refused (503): `{"error":"not_leader"|"no_quorum"|"lease_expired"|"overloaded",
//!   "node":"n1","leader":NAME|null,"leader_client_addr":"ip:port"|null,"term":T,"status":{..}}`
//!   — the write was certainly not applied.
//! * unknown outcome (504): `{"error":"unknown","reason":"..",...same fields}` — the
//!   write may or may not have been applied (leadership lost in flight, or
//!   no answer within `client_timeout_ms`).
//! * bad request (400/404/405/413/431): `{"error":"bad_request","reason":".."}`.
//! * `GET /status` (200): see [`status_json`].
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use consensus::{ClientReply, ClientResponse, ReadMode, Rejection, Role};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::time::{Instant, timeout, timeout_at};

use crate::clock::mono_ns;
use crate::config::NodeConfig;
use crate::driver::{ClientCall, StatusView};
use crate::http::{self, HttpError, HttpLimits, Route};
use crate::metrics::{Gauges, Metrics};

/// Concurrent client connections; more are closed at once.
const MAX_CLIENT_CONNECTIONS: usize = 512;

/// Everything a connection handler needs, shared by all of them.
pub(crate) struct ClientApi {
    pub config: Arc<NodeConfig>,
    pub metrics: Arc<Metrics>,
    pub status: watch::Receiver<Arc<StatusView>>,
    pub to_driver: mpsc::Sender<ClientCall>,
    /// Session ids for writes that carry no `X-Client-Id`: each such write
    /// gets a fresh id (seq 1), so concurrent anonymous writes never look
    /// like retries of each other.
    anonymous_clients: AtomicU64,
}

impl ClientApi {
    pub(crate) fn new(
        config: Arc<NodeConfig>,
        metrics: Arc<Metrics>,
        status: watch::Receiver<Arc<StatusView>>,
        to_driver: mpsc::Sender<ClientCall>,
    ) -> ClientApi {
        // High bit set, then a per-process random-ish start: distinct from
        // small explicit client ids and from other nodes and restarts.
        let seed = crate::config::name_to_id(&format!(
            "{}/{}/{}",
            config.name,
            std::process::id(),
            mono_ns()
        ));
        ClientApi {
            config,
            metrics,
            status,
            to_driver,
            anonymous_clients: AtomicU64::new((seed >> 1) | (1 << 63)),
        }
    }

    fn limits(&self) -> HttpLimits {
        HttpLimits {
            max_header_bytes: self.config.limits.http_max_header_bytes,
            max_body_bytes: self.config.limits.http_max_body_bytes,
        }
    }
}

pub(crate) async fn run_listener(listener: TcpListener, api: Arc<ClientApi>) {
    let slots = Arc::new(Semaphore::new(MAX_CLIENT_CONNECTIONS));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "client accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let api = api.clone();
        tokio::spawn(async move {
            serve_connection(stream, &api).await;
            drop(permit);
        });
    }
}

async fn serve_connection(mut stream: TcpStream, api: &ClientApi) {
    let limits = api.limits();
    let idle = Duration::from_millis(api.config.limits.http_idle_timeout_ms);
    // A request that has started must arrive completely within this.
    let request_deadline = Duration::from_millis(api.config.limits.client_timeout_ms);
    let mut buffer: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    let mut deadline: Option<Instant> = None;
    loop {
        match http::parse_request(&buffer, limits) {
            Ok(Some((request, used))) => {
                buffer.drain(..used);
                deadline = None;
                api.metrics.http_requests.fetch_add(1, Ordering::Relaxed);
                let keep_alive = request.keep_alive;
                let authorized = api.config.client_token.as_ref().is_none_or(|token| {
                    token.admits(request.authorization.as_deref().map(str::as_bytes))
                });
                let (status, content_type, body) = match http::route(&request) {
                    _ if !authorized => {
                        api.metrics
                            .http_unauthorized
                            .fetch_add(1, Ordering::Relaxed);
                        json_answer(
                            401,
                            &json!({"error": "unauthorized", "reason": "send Authorization: Bearer <token>"}),
                        )
                    }
                    Ok(route) => handle(api, route).await,
                    Err(error) => {
                        api.metrics
                            .http_bad_requests
                            .fetch_add(1, Ordering::Relaxed);
                        error_response(&error)
                    }
                };
                let bytes = http::response(status, content_type, &body, keep_alive);
                if stream.write_all(&bytes).await.is_err() || !keep_alive {
                    return;
                }
                continue;
            }
            Ok(None) => {}
            Err(error) => {
                api.metrics
                    .http_bad_requests
                    .fetch_add(1, Ordering::Relaxed);
                let (status, content_type, body) = error_response(&error);
                let _ = stream
                    .write_all(&http::response(status, content_type, &body, false))
                    .await;
                return;
            }
        }
        if !buffer.is_empty() && deadline.is_none() {
            deadline = Some(Instant::now() + request_deadline);
        }
        let read = match deadline {
            Some(at) => timeout_at(at, stream.read(&mut chunk)).await,
            None => timeout(idle, stream.read(&mut chunk)).await,
        };
        match read {
            Ok(Ok(0)) | Ok(Err(_)) => {
                if !buffer.is_empty() {
                    api.metrics
                        .http_bad_requests
                        .fetch_add(1, Ordering::Relaxed);
                }
                return;
            }
            Ok(Ok(len)) => buffer.extend_from_slice(&chunk[..len]),
            Err(_elapsed) => {
                if deadline.is_some() {
                    api.metrics
                        .http_bad_requests
                        .fetch_add(1, Ordering::Relaxed);
                    let body =
                        json!({"error": "bad_request", "reason": "request not completed in time"});
                    let _ = stream
                        .write_all(&http::response(
                            408,
                            "application/json",
                            body.to_string().as_bytes(),
                            false,
                        ))
                        .await;
                }
                return;
            }
        }
    }
}

type Answer = (u16, &'static str, Vec<u8>);

fn json_answer(status: u16, value: &Value) -> Answer {
    (status, "application/json", value.to_string().into_bytes())
}

fn error_response(error: &HttpError) -> Answer {
    json_answer(
        error.status,
        &json!({"error": "bad_request", "reason": error.reason}),
    )
}

fn read_mode_name(mode: ReadMode) -> &'static str {
    match mode {
        ReadMode::Linearizable => "linearizable",
        ReadMode::Lease => "lease",
        ReadMode::Stale => "stale",
    }
}

async fn handle(api: &ClientApi, route: Route) -> Answer {
    let view = api.status.borrow().clone();
    match route {
        Route::Status => json_answer(200, &status_json(&api.config, &view)),
        Route::Metrics => {
            let status = &view.status;
            let gauges = Gauges {
                term: status.term,
                is_leader: status.role == Role::Leader,
                lease_remaining_ns: status.lease_remaining_ns,
                quorum_reachable: status.quorum_reachable,
                commit_index: status.commit_index,
                applied_index: status.applied_index,
                last_index: status.last_index,
            };
            (
                200,
                "text/plain; version=0.0.4",
                api.metrics.render(&gauges).into_bytes(),
            )
        }
        Route::Read { .. } | Route::Write { .. } => forward(api, route).await,
    }
}

async fn forward(api: &ClientApi, route: Route) -> Answer {
    let (read_key, read_mode) = match &route {
        Route::Read { key, mode } => (Some(key.clone()), Some(*mode)),
        _ => (None, None),
    };
    let (client, seq) = match &route {
        Route::Write {
            client: Some(client),
            seq: Some(seq),
            ..
        } => (*client, *seq),
        _ => (api.anonymous_clients.fetch_add(1, Ordering::Relaxed), 1),
    };
    let request = route
        .into_client_request(client, seq)
        .expect("reads and writes map to client requests");
    let (reply_tx, reply_rx) = oneshot::channel();
    let call = ClientCall {
        request,
        reply: reply_tx,
        started_mono: mono_ns(),
    };
    if api.to_driver.try_send(call).is_err() {
        return refusal(api, &Rejection::Overloaded);
    }
    let wait = Duration::from_millis(api.config.limits.client_timeout_ms);
    let reply = match timeout(wait, reply_rx).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(_)) => ClientReply::Unknown {
            reason: "node stopped before answering".into(),
        },
        Err(_) => ClientReply::Unknown {
            reason: format!(
                "no outcome within {} ms",
                api.config.limits.client_timeout_ms
            ),
        },
    };
    match reply {
        ClientReply::Ok(ClientResponse::Written { token, applied }) => json_answer(
            200,
            &json!({
                "ok": true,
                "node": api.config.name,
                "token": {"term": token.term, "index": token.index},
                "applied": applied,
            }),
        ),
        ClientReply::Ok(ClientResponse::Value { value, index }) => json_answer(
            200,
            &json!({
                "ok": true,
                "node": api.config.name,
                "key": read_key,
                "value": value,
                "index": index,
                "read": read_mode.map(read_mode_name),
            }),
        ),
        ClientReply::Rejected(rejection) => refusal(api, &rejection),
        ClientReply::Unknown { reason } => {
            let mut body = context(api, "unknown", None);
            body["reason"] = json!(reason);
            json_answer(504, &body)
        }
    }
}

fn refusal(api: &ClientApi, rejection: &Rejection) -> Answer {
    let hint = match rejection {
        Rejection::NotLeader { leader } => *leader,
        _ => None,
    };
    json_answer(503, &context(api, rejection.kind(), hint))
}

/// The fields shared by 503 and 504 answers.
fn context(api: &ClientApi, error: &str, hint: Option<u64>) -> Value {
    let view = api.status.borrow().clone();
    let leader = hint.or(view.status.leader);
    json!({
        "error": error,
        "node": api.config.name,
        "leader": leader.and_then(|id| api.config.member_name(id)),
        "leader_client_addr": leader
            .and_then(|id| api.config.member_client_addr(id))
            .map(|addr| addr.to_string()),
        "term": view.status.term,
        "status": status_json(&api.config, &view),
    })
}

/// The `/status` document:
///
/// ```json
/// {"id":"n1","node_id":123,"cluster":"c1","mode":"safe","role":"leader","term":3,
///  "voted_for":"n1","leader":"n1","leader_client_addr":"127.0.0.1:7000",
///  "lease_remaining_ns":120000000,"lease_remaining_ms":120.0,"quorum_reachable":true,
///  "peers":[{"id":"n2","addr":"127.0.0.2:7100","inbound_alive":true,"outbound_alive":true,"match_index":9}],
///  "first_index":1,"last_index":9,"commit_index":9,"applied_index":9,"state_hash":42,
///  "mono_ns":..,"local_ns":..}
/// ```
pub(crate) fn status_json(config: &NodeConfig, view: &StatusView) -> Value {
    let status = &view.status;
    let name = |id: u64| config.member_name(id).map(str::to_owned);
    let peers: Vec<Value> = status
        .peers
        .iter()
        .map(|peer| {
            json!({
                "id": name(peer.id),
                "addr": config.peer(peer.id).map(|p| p.addr.to_string()),
                "inbound_alive": peer.inbound_alive,
                "outbound_alive": peer.outbound_alive,
                "match_index": peer.match_index,
            })
        })
        .collect();
    json!({
        "id": config.name,
        "node_id": config.id,
        "cluster": config.cluster_name,
        "mode": status.mode.name(),
        "role": status.role.name(),
        "term": status.term,
        "voted_for": status.voted_for.and_then(name),
        "leader": status.leader.and_then(name),
        "leader_client_addr": status
            .leader
            .and_then(|id| config.member_client_addr(id))
            .map(|addr| addr.to_string()),
        "lease_remaining_ns": status.lease_remaining_ns,
        "lease_remaining_ms": status.lease_remaining_ns as f64 / 1e6,
        "quorum_reachable": status.quorum_reachable,
        "peers": peers,
        "first_index": status.first_index,
        "last_index": status.last_index,
        "commit_index": status.commit_index,
        "applied_index": status.applied_index,
        "state_hash": status.state_hash,
        "mono_ns": view.stamp.mono_ns,
        "local_ns": view.stamp.local_ns,
    })
}
