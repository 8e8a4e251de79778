//! Redis with Sentinel, through the `redis` crate's blocking API: a client
//! session that asks its own side's sentinel for the primary, as
//! applications do, and key-value operations with the lab's outcome rules;
//! member roles for the observer live in `status`.
//!
//! Outcome rules (a timeout is never a failure):
//! - no connection to the primary (refused, unreachable, timed out, the
//!   handshake failed): `fail`, the command never left;
//! - an error reply (`READONLY` from a demoted primary, `NOREPLICAS` under
//!   `min-replicas-to-write`, a type error): `fail`, Redis rejects a
//!   command before executing it, and the scripts below write last;
//! - a timeout or a broken connection after sending: `info`.
//!
//! Appends are `RPUSH` (each acknowledged append leaves its unique
//! element); reads return a list as its elements joined by spaces, like the
//! other clients; compare-and-set is a Lua script (atomic on the server).
mod status;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use redis::{Connection, RedisError, Value};

use crate::ops::{Outcome, Request};

pub use status::{
    Role, RoleWatch, SentinelView, node_statuses, parse_role, parse_sentinel_master, primary_of,
};

/// The name the sentinels monitor (`sentinel monitor splitlab ...` in
/// `lab/systems/redis.toml`).
pub const MASTER_NAME: &str = "splitlab";

/// How long a sentinel's answer is trusted before the session asks again
/// (real clients learn of a switch from the sentinel's `+switch-master`
/// message or an error; asking twice a second bounds the same delay).
pub const REFRESH: Duration = Duration::from_millis(500);

/// Reads any key: a list as its elements joined by spaces, a string as is,
/// absent as nil.
const READ_SCRIPT: &str = "local t = redis.call('TYPE', KEYS[1]).ok \
    if t == 'list' then return table.concat(redis.call('LRANGE', KEYS[1], 0, -1), ' ') end \
    if t == 'none' then return false end \
    return redis.call('GET', KEYS[1])";

/// Sets KEYS[1] to ARGV[3] when it holds ARGV[2] (ARGV[1] = 'present') or
/// is absent (ARGV[1] = 'absent'); 1 when it did, 0 otherwise.
const CAS_SCRIPT: &str = "local current = redis.call('GET', KEYS[1]) \
    if ARGV[1] == 'absent' then if current then return 0 end \
    elseif current ~= ARGV[2] then return 0 end \
    redis.call('SET', KEYS[1], ARGV[3]) return 1";

/// Connects to a Redis server (primary, replica or sentinel).
///
/// # Errors
/// The connection or its handshake failed within `timeout`.
pub fn connect(addr: SocketAddr, timeout: Duration) -> Result<Connection, RedisError> {
    let client = redis::Client::open(format!("redis://{addr}/"))?;
    let connection = client.get_connection_with_timeout(timeout)?;
    connection.set_read_timeout(Some(timeout))?;
    connection.set_write_timeout(Some(timeout))?;
    Ok(connection)
}

/// The command of one request.
fn command(request: &Request) -> redis::Cmd {
    match request {
        Request::Read { key } => redis::cmd("EVAL")
            .arg(READ_SCRIPT)
            .arg(1)
            .arg(key)
            .to_owned(),
        Request::Write { key, value } => redis::cmd("SET").arg(key).arg(value).to_owned(),
        Request::Append { key, element } => redis::cmd("RPUSH").arg(key).arg(element).to_owned(),
        Request::Cas {
            key,
            expected,
            value,
        } => redis::cmd("EVAL")
            .arg(CAS_SCRIPT)
            .arg(1)
            .arg(key)
            .arg(if expected.is_some() {
                "present"
            } else {
                "absent"
            })
            .arg(expected.as_deref().unwrap_or(""))
            .arg(value)
            .to_owned(),
    }
}

/// A string reply's text (`None` for nil or a non-string).
fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(text) => Some(text.clone()),
        Value::Okay => Some("OK".into()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The outcome of a reply to `request`.
fn reply_outcome(request: &Request, reply: &Value) -> Outcome {
    match request {
        Request::Read { .. } => Outcome::Ok {
            value: text(reply),
            token: None,
        },
        Request::Cas { .. } if !matches!(reply, Value::Int(1)) => Outcome::Fail {
            error: "cas: comparison failed".into(),
            leader: None,
        },
        _ => Outcome::Ok {
            value: None,
            token: None,
        },
    }
}

/// The outcome of an error after the command was sent: an error reply was
/// a rejection, anything else leaves the command's fate unknown.
fn error_outcome(error: &RedisError) -> Outcome {
    if error.code().is_some() {
        Outcome::Fail {
            error: error.to_string(),
            leader: None,
        }
    } else {
        Outcome::Info {
            error: error.to_string(),
        }
    }
}

/// Executes one request on the server at `addr` over a new connection (the
/// control namespace's final reads ask each node directly).
pub fn execute(addr: SocketAddr, request: &Request, timeout: Duration) -> Outcome {
    match connect(addr, timeout) {
        Err(error) => Outcome::Fail {
            error: format!("connect: {error}"),
            leader: None,
        },
        Ok(mut connection) => match command(request).query::<Value>(&mut connection) {
            Ok(reply) => reply_outcome(request, &reply),
            Err(error) => error_outcome(&error),
        },
    }
}

/// One workload client: its own side's sentinel, the primary that sentinel
/// last named (with the configuration epoch it named it in, when known),
/// and a kept connection to it.
pub struct SentinelSession {
    sentinel: SocketAddr,
    primary: Option<SocketAddr>,
    epoch: Option<u64>,
    asked_at: Option<Instant>,
    connection: Option<(SocketAddr, Connection)>,
}

impl SentinelSession {
    /// A session asking the sentinel at `sentinel`.
    pub fn new(sentinel: SocketAddr) -> SentinelSession {
        SentinelSession {
            sentinel,
            primary: None,
            epoch: None,
            asked_at: None,
            connection: None,
        }
    }

    /// The primary to send the next request to: the sentinel's answer,
    /// asked again once [`REFRESH`] has passed or after a request that did
    /// not succeed; the last answer while the sentinel does not answer.
    /// The sentinel's configuration epoch is asked too (`SENTINEL
    /// MASTER`), and kept only when that answer names the same primary.
    pub fn primary(&mut self, timeout: Duration) -> Option<SocketAddr> {
        let fresh = (self.asked_at).is_some_and(|at| at.elapsed() < REFRESH);
        if !fresh {
            self.asked_at = Some(Instant::now());
            if let Some(primary) = primary_of(self.sentinel, timeout) {
                let view = status::sentinel_master(self.sentinel, timeout);
                self.epoch = view
                    .filter(|view| view.primary == primary)
                    .map(|view| view.config_epoch);
                self.primary = Some(primary);
            }
        }
        self.primary
    }

    /// An acknowledged write sent to the primary the sentinel named carries
    /// the epoch it named it in as its token's term (index 0: Redis has no
    /// log index), so figures can tell the new primary's writes from the
    /// old one's.
    fn with_epoch(&self, request: &Request, outcome: Outcome) -> Outcome {
        match (outcome, request) {
            (
                Outcome::Ok { value, .. },
                Request::Write { .. } | Request::Append { .. } | Request::Cas { .. },
            ) if self.epoch.is_some() => Outcome::Ok {
                value,
                token: self.epoch.map(|epoch| (epoch, 0)),
            },
            (outcome, _) => outcome,
        }
    }

    /// Executes `request` on the server at `addr`, reusing the kept
    /// connection when it goes to the same server. After anything but
    /// `ok`, the connection is dropped and the sentinel asked again.
    pub fn execute(&mut self, addr: SocketAddr, request: &Request, timeout: Duration) -> Outcome {
        let kept = self.connection.take().filter(|(to, _)| *to == addr);
        let connection = match kept {
            Some((_, connection)) => Ok(connection),
            None => connect(addr, timeout),
        };
        let outcome = match connection {
            Err(error) => Outcome::Fail {
                error: format!("connect: {error}"),
                leader: None,
            },
            Ok(mut connection) => match command(request).query::<Value>(&mut connection) {
                Ok(reply) => {
                    self.connection = Some((addr, connection));
                    self.with_epoch(request, reply_outcome(request, &reply))
                }
                Err(error) => error_outcome(&error),
            },
        };
        if !matches!(outcome, Outcome::Ok { .. }) {
            self.connection = None;
            self.asked_at = None;
        }
        outcome
    }
}

/// The position of the node whose address has `ip` (Redis names servers by
/// IP).
pub fn node_of(nodes: &[(String, SocketAddr)], ip: IpAddr) -> Option<usize> {
    nodes.iter().position(|(_, addr)| addr.ip() == ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_become_outcomes() {
        let read = Request::Read { key: "a1".into() };
        let list = Value::BulkString(b"1-1 2-1".to_vec());
        assert!(matches!(
            reply_outcome(&read, &list),
            Outcome::Ok { value: Some(v), .. } if v == "1-1 2-1"
        ));
        assert!(matches!(
            reply_outcome(&read, &Value::Nil),
            Outcome::Ok { value: None, .. }
        ));
        let cas = Request::Cas {
            key: "k1".into(),
            expected: None,
            value: "1-2".into(),
        };
        assert!(matches!(
            reply_outcome(&cas, &Value::Int(1)),
            Outcome::Ok { .. }
        ));
        assert!(matches!(
            reply_outcome(&cas, &Value::Int(0)),
            Outcome::Fail { error, .. } if error.starts_with("cas")
        ));
    }

    #[test]
    fn error_replies_fail_and_broken_connections_are_unknown() {
        let readonly = redis::RedisError::from((
            redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly),
            "You can't write against a read only replica.",
        ));
        assert!(matches!(error_outcome(&readonly), Outcome::Fail { .. }));
        let broken = redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut));
        assert!(matches!(error_outcome(&broken), Outcome::Info { .. }));
    }

    #[test]
    fn nothing_listens_means_fail() {
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let write = Request::Append {
            key: "a1".into(),
            element: "1-1".into(),
        };
        let outcome = execute(addr, &write, Duration::from_millis(200));
        assert!(matches!(outcome, Outcome::Fail { .. }), "{outcome:?}");
        let mut session = SentinelSession::new(addr);
        assert_eq!(session.primary(Duration::from_millis(200)), None);
        let outcome = session.execute(addr, &write, Duration::from_millis(200));
        assert!(matches!(outcome, Outcome::Fail { .. }), "{outcome:?}");
    }
}
