//! Member roles as the lab observes them: each server's `ROLE` and the
//! view of the sentinel beside it (`SENTINEL MASTER`: the primary's address
//! and its configuration epoch). Redis has no terms; a primary's term is the
//! sentinel configuration epoch that named it primary, so a primary promoted
//! by a failover has a higher term than the one it replaced, and an old
//! primary cut off from the sentinels' majority keeps its older term.
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use redis::Value;

use super::{MASTER_NAME, connect, node_of, text};
use crate::etcd::MemberStatus;
use crate::status::NodeStatus;

/// What one server says of its role (`ROLE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// It accepts writes; its replication offset.
    Primary {
        /// `master_repl_offset`.
        offset: u64,
    },
    /// It replicates the server at `primary`; its processed offset.
    Replica {
        /// The primary it was told to follow.
        primary: IpAddr,
        /// The replication offset it processed.
        offset: u64,
    },
}

/// What a sentinel says of the monitored primary (`SENTINEL MASTER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentinelView {
    /// The primary it names.
    pub primary: SocketAddr,
    /// Its configuration epoch (bumped by every failover).
    pub config_epoch: u64,
    /// How many replicas of it the sentinel knows.
    pub replicas: u64,
    /// How many other sentinels it knows.
    pub other_sentinels: u64,
    /// It thinks the primary is down (`s_down` or `o_down` in its flags).
    pub primary_down: bool,
}

impl SentinelView {
    /// Whether the sentinel knows every other member of a `members`-strong
    /// cluster (replicas are found through the primary's INFO, every 10 s,
    /// and a sentinel that knows no replica cannot fail over).
    pub fn knows_everyone(&self, members: usize) -> bool {
        let others = members.saturating_sub(1) as u64;
        self.replicas >= others && self.other_sentinels >= others
    }
}

fn int(value: &Value) -> Option<u64> {
    match value {
        Value::Int(n) => u64::try_from(*n).ok(),
        other => text(other)?.parse().ok(),
    }
}

/// Parses a `ROLE` reply (`None`: a sentinel or something unexpected).
pub fn parse_role(reply: &Value) -> Option<Role> {
    let Value::Array(items) = reply else {
        return None;
    };
    match text(items.first()?)?.as_str() {
        "master" => Some(Role::Primary {
            offset: int(items.get(1)?)?,
        }),
        "slave" => Some(Role::Replica {
            primary: text(items.get(1)?)?.parse().ok()?,
            offset: items.get(4).and_then(int).unwrap_or(0),
        }),
        _ => None,
    }
}

/// Parses a `SENTINEL MASTER` reply (field, value, field, value, ...).
pub fn parse_sentinel_master(fields: &[String]) -> Option<SentinelView> {
    let field = |name: &str| {
        (fields.chunks(2))
            .find(|pair| pair[0] == name)
            .and_then(|pair| pair.get(1))
    };
    let ip: IpAddr = field("ip")?.parse().ok()?;
    let port: u16 = field("port")?.parse().ok()?;
    Some(SentinelView {
        primary: SocketAddr::new(ip, port),
        config_epoch: field("config-epoch")?.parse().ok()?,
        replicas: field("num-slaves")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
        other_sentinels: (field("num-other-sentinels"))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
        primary_down: field("flags").is_some_and(|flags| flags.contains("_down")),
    })
}

fn role(connection: &mut redis::Connection) -> Option<Role> {
    parse_role(&redis::cmd("ROLE").query::<Value>(connection).ok()?)
}

fn sentinel_view(connection: &mut redis::Connection) -> Option<SentinelView> {
    let fields: Vec<String> = redis::cmd("SENTINEL")
        .arg("MASTER")
        .arg(MASTER_NAME)
        .query(connection)
        .ok()?;
    parse_sentinel_master(&fields)
}

/// Asks over the kept connection in `slot` (connecting when there is
/// none); a failed question drops the connection.
fn ask<T>(
    slot: &mut Option<redis::Connection>,
    addr: SocketAddr,
    timeout: Duration,
    question: impl FnOnce(&mut redis::Connection) -> Option<T>,
) -> Option<T> {
    let mut connection = match slot.take() {
        Some(connection) => connection,
        None => connect(addr, timeout).ok()?,
    };
    let answer = question(&mut connection)?;
    *slot = Some(connection);
    Some(answer)
}

/// What the sentinel at `sentinel` says of the primary (one connection).
pub(super) fn sentinel_master(sentinel: SocketAddr, timeout: Duration) -> Option<SentinelView> {
    sentinel_view(&mut connect(sentinel, timeout).ok()?)
}

/// The primary the sentinel at `sentinel` names
/// (`SENTINEL GET-MASTER-ADDR-BY-NAME`).
pub fn primary_of(sentinel: SocketAddr, timeout: Duration) -> Option<SocketAddr> {
    let mut connection = connect(sentinel, timeout).ok()?;
    let (ip, port): (String, u16) = redis::cmd("SENTINEL")
        .arg("GET-MASTER-ADDR-BY-NAME")
        .arg(MASTER_NAME)
        .query(&mut connection)
        .ok()?;
    Some(SocketAddr::new(ip.parse().ok()?, port))
}

/// The state digest of a server (`DEBUG DIGEST`, needs
/// `enable-debug-command`): equal datasets, equal digests. 0 when refused.
fn digest(addr: SocketAddr, timeout: Duration) -> u64 {
    let answer = connect(addr, timeout).ok().and_then(|mut connection| {
        redis::cmd("DEBUG")
            .arg("DIGEST")
            .query::<String>(&mut connection)
            .ok()
    });
    answer
        .and_then(|hex| u64::from_str_radix(hex.get(..16)?, 16).ok())
        .unwrap_or(0)
}

/// One server's role as a leadership status: member id = its position + 1,
/// leader = the id of the primary it follows (itself when primary; none
/// while its sentinel thinks that primary down: the failure was noticed),
/// term =
/// the epoch its sentinel named it primary in (`vouched`), else its
/// sentinel's epoch for a replica and `vouched` (0 if never) for a primary
/// its sentinel does not (yet, or any more) name.
fn leadership(
    nodes: &[(String, SocketAddr)],
    me: usize,
    role: Role,
    view: Option<SentinelView>,
    vouched: &mut Option<u64>,
) -> MemberStatus {
    let my_ip = nodes[me].1.ip();
    if let Some(view) = view
        && view.primary.ip() == my_ip
    {
        *vouched = Some(view.config_epoch);
    }
    let id_of = |ip: IpAddr| node_of(nodes, ip).map_or(0, |index| index as u64 + 1);
    let (leader, term, offset) = match role {
        Role::Primary { offset } => (me as u64 + 1, vouched.unwrap_or(0), offset),
        Role::Replica { primary, offset } => (
            if view.is_some_and(|v| v.primary_down && v.primary.ip() == primary) {
                0
            } else {
                id_of(primary)
            },
            view.map_or(vouched.unwrap_or(0), |v| v.config_epoch),
            offset,
        ),
    };
    MemberStatus {
        member_id: me as u64 + 1,
        leader,
        raft_term: term,
        raft_index: offset,
        applied_index: offset,
        revision: 0,
    }
}

/// Watches one member for the observer: its `ROLE` and its sentinel's
/// view, remembering the epoch its sentinel last named it primary in.
pub struct RoleWatch {
    nodes: Vec<(String, SocketAddr)>,
    me: usize,
    discovery_port: u16,
    vouched: Option<u64>,
    server: Option<redis::Connection>,
    sentinel: Option<redis::Connection>,
}

impl RoleWatch {
    /// Watches `nodes[me]` (client addresses; the sentinel listens on
    /// `discovery_port` at the same IP).
    pub fn new(nodes: Vec<(String, SocketAddr)>, me: usize, discovery_port: u16) -> RoleWatch {
        RoleWatch {
            nodes,
            me,
            discovery_port,
            vouched: None,
            server: None,
            sentinel: None,
        }
    }

    /// One poll (`None`: the server did not answer `ROLE`).
    pub fn poll(&mut self, timeout: Duration) -> Option<MemberStatus> {
        self.poll_with_view(timeout).map(|(status, _)| status)
    }

    /// One poll, with the sentinel's view when it answered.
    fn poll_with_view(
        &mut self,
        timeout: Duration,
    ) -> Option<(MemberStatus, Option<SentinelView>)> {
        let addr = self.nodes[self.me].1;
        let role = ask(&mut self.server, addr, timeout, role)?;
        let sentinel = SocketAddr::new(addr.ip(), self.discovery_port);
        let view = ask(&mut self.sentinel, sentinel, timeout, sentinel_view);
        let status = leadership(&self.nodes, self.me, role, view, &mut self.vouched);
        Some((status, view))
    }
}

/// Every answering member's status, polled in parallel on the caller's
/// namespace; the state hash is the server's `DEBUG DIGEST`. A member whose
/// sentinel does not yet know every other member names no leader, so the
/// lab's wait for a settled cluster also waits for Sentinel's discovery.
pub fn node_statuses(
    nodes: &[(String, SocketAddr)],
    discovery_port: u16,
    timeout: Duration,
) -> Vec<NodeStatus> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..nodes.len())
            .map(|me| {
                scope.spawn(move || {
                    let mut watch = RoleWatch::new(nodes.to_vec(), me, discovery_port);
                    let (status, view) = watch.poll_with_view(timeout)?;
                    let informed = view.is_some_and(|view| view.knows_everyone(nodes.len()));
                    let leader = (status.leader != 0 && informed)
                        .then(|| nodes.get(status.leader as usize - 1))
                        .flatten()
                        .map(|(name, _)| name.clone());
                    Some(NodeStatus {
                        node: nodes[me].0.clone(),
                        role: if status.leader == status.member_id {
                            "leader".into()
                        } else {
                            "follower".into()
                        },
                        term: status.raft_term,
                        leader,
                        commit_index: status.raft_index,
                        applied_index: status.applied_index,
                        state_hash: digest(nodes[me].1, timeout),
                    })
                })
            })
            .collect();
        (handles.into_iter())
            .filter_map(|handle| handle.join().ok().flatten())
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    fn nodes() -> Vec<(String, SocketAddr)> {
        (1..=3)
            .map(|i| (format!("n{i}"), format!("10.0.0.{i}:6379").parse().unwrap()))
            .collect()
    }

    #[test]
    fn role_replies_parse() {
        let primary = Value::Array(vec![bulk("master"), Value::Int(42), Value::Array(vec![])]);
        assert_eq!(parse_role(&primary), Some(Role::Primary { offset: 42 }));
        let replica = Value::Array(vec![
            bulk("slave"),
            bulk("10.0.0.1"),
            Value::Int(6379),
            bulk("connected"),
            Value::Int(40),
        ]);
        assert_eq!(
            parse_role(&replica),
            Some(Role::Replica {
                primary: "10.0.0.1".parse().unwrap(),
                offset: 40
            })
        );
        assert_eq!(parse_role(&Value::Array(vec![bulk("sentinel")])), None);
        let fields: Vec<String> = ["name", "splitlab", "ip", "10.0.0.2", "port", "6379"]
            .into_iter()
            .chain(["config-epoch", "3"])
            .map(String::from)
            .collect();
        assert_eq!(
            parse_sentinel_master(&fields),
            Some(SentinelView {
                primary: "10.0.0.2:6379".parse().unwrap(),
                config_epoch: 3,
                replicas: 0,
                other_sentinels: 0,
                primary_down: false,
            })
        );
        let counted: Vec<String> = (fields.iter().cloned())
            .chain(["num-slaves", "2", "num-other-sentinels", "2"].map(String::from))
            .collect();
        let view = parse_sentinel_master(&counted).unwrap();
        assert!(view.knows_everyone(3) && !view.knows_everyone(4));
        assert_eq!(parse_sentinel_master(&fields[..4]), None);
    }

    #[test]
    fn a_primary_keeps_the_epoch_its_sentinel_named_it_in() {
        let nodes = nodes();
        let view = |ip: u8, epoch| SentinelView {
            primary: format!("10.0.0.{ip}:6379").parse().unwrap(),
            config_epoch: epoch,
            replicas: 2,
            other_sentinels: 2,
            primary_down: false,
        };
        let primary = Role::Primary { offset: 7 };
        // n1 leads in epoch 0 ...
        let mut vouched = None;
        let first = leadership(&nodes, 0, primary, Some(view(1, 0)), &mut vouched);
        assert_eq!((first.member_id, first.leader, first.raft_term), (1, 1, 0));
        // ... and after the majority's failover its own sentinel names n2 in
        // epoch 1 while n1 still accepts writes: still epoch 0.
        let later = leadership(&nodes, 0, primary, Some(view(2, 1)), &mut vouched);
        assert_eq!((later.leader, later.raft_term), (1, 0));
        // n2, promoted before its sentinel names it: no epoch of its own yet.
        let mut n2 = None;
        let promoted = leadership(&nodes, 1, primary, Some(view(1, 0)), &mut n2);
        assert_eq!((promoted.leader, promoted.raft_term), (2, 0));
        let named = leadership(&nodes, 1, primary, Some(view(2, 1)), &mut n2);
        assert_eq!(named.raft_term, 1);
        // A replica follows the primary it was told to, in its sentinel's epoch.
        let replica = Role::Replica {
            primary: "10.0.0.2".parse().unwrap(),
            offset: 5,
        };
        let follower = leadership(&nodes, 2, replica, Some(view(2, 1)), &mut None);
        assert_eq!((follower.leader, follower.raft_term), (2, 1));
        // Its sentinel thinks that primary down: it follows no one.
        let down = SentinelView {
            primary_down: true,
            ..view(2, 1)
        };
        let noticed = leadership(&nodes, 2, replica, Some(down), &mut None);
        assert_eq!(noticed.leader, 0);
    }
}
