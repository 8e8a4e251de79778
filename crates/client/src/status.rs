//! Status and leader discovery: a node's `/status` document, what it says
//! about leadership, and the one agreement rule ("every node answered, one
//! claims leadership, and all name it in the same term") with a poller
//! that waits for it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::http::request;

/// What splitnode's `/status` says, reduced to what the lab needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    /// The node's name (as the caller knows it).
    pub node: String,
    /// `leader`, `follower`, `candidate`, ...
    pub role: String,
    /// Current term.
    pub term: u64,
    /// The leader it follows, if any.
    pub leader: Option<String>,
    /// Highest committed log index.
    pub commit_index: u64,
    /// Highest applied log index.
    pub applied_index: u64,
    /// Hash of the applied key-value state.
    pub state_hash: u64,
}

impl NodeStatus {
    /// The node's leadership view (splitnode names nodes by name).
    pub fn view(&self) -> LeaderView {
        LeaderView {
            node: self.node.clone(),
            id: self.node.clone(),
            claims_leader: self.role == "leader",
            leader: self.leader.clone(),
            term: Some(self.term),
        }
    }
}

/// Polls one node's `/status` (one connection, `Connection: close`).
pub fn status(addr: SocketAddr, node: &str, timeout: Duration) -> Option<NodeStatus> {
    let response = request(addr, "GET", "/status", &[], "", Instant::now() + timeout).ok()?;
    if response.status != 200 {
        return None;
    }
    parse_status(node, &response.json())
}

/// Parses a `/status` document of `node`; `None` without role or term.
pub fn parse_status(node: &str, body: &Value) -> Option<NodeStatus> {
    let number = |field: &str| body.get(field).and_then(Value::as_u64).unwrap_or(0);
    Some(NodeStatus {
        node: node.to_string(),
        role: body.get("role")?.as_str()?.to_string(),
        term: body.get("term")?.as_u64()?,
        leader: body
            .get("leader")
            .and_then(Value::as_str)
            .map(str::to_string),
        commit_index: number("commit_index"),
        applied_index: number("applied_index"),
        state_hash: number("state_hash"),
    })
}

/// Polls every node's `/status` in parallel (one thread per node, on the
/// caller's namespace); nodes that did not answer are left out.
pub fn poll_statuses(nodes: &[(String, SocketAddr)], timeout: Duration) -> Vec<NodeStatus> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = nodes
            .iter()
            .map(|(name, addr)| scope.spawn(move || status(*addr, name, timeout)))
            .collect();
        handles
            .into_iter()
            .filter_map(|handle| handle.join().ok().flatten())
            .collect()
    })
}

/// The leader with the highest term among the nodes that claim leadership
/// right now, with that term.
pub fn newest_leader(statuses: &[NodeStatus]) -> Option<(String, u64)> {
    statuses
        .iter()
        .filter(|status| status.role == "leader")
        .max_by_key(|status| status.term)
        .map(|status| (status.node.clone(), status.term))
}

/// What one node says about leadership, for any system (splitnode, etcd).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderView {
    /// The node's name in the lab.
    pub node: String,
    /// Its id as its peers name it (splitnode: the name; etcd: member id).
    pub id: String,
    /// The node believes it is the leader.
    pub claims_leader: bool,
    /// The leader it follows (same id space as `id`), if any.
    pub leader: Option<String>,
    /// Its term, when the system reports one.
    pub term: Option<u64>,
}

/// The agreed leader's view when all `expected` nodes answered, exactly
/// one claims leadership, and every node names it as leader in its term.
pub fn agreed_leader(expected: usize, views: &[LeaderView]) -> Option<&LeaderView> {
    if views.len() != expected {
        return None;
    }
    let mut claimants = views.iter().filter(|view| view.claims_leader);
    let leader = claimants.next()?;
    if claimants.next().is_some() {
        return None;
    }
    views
        .iter()
        .all(|view| view.leader.as_deref() == Some(leader.id.as_str()) && view.term == leader.term)
        .then_some(leader)
}

/// Why [`wait_for_agreed_leader`] returned without a leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitError<E> {
    /// Polling itself failed (e.g. a namespace could not be entered).
    Poll(E),
    /// No agreement within the time limit; the last views seen.
    Timeout(Vec<LeaderView>),
}

/// Polls (`poll` returns the views of the nodes that answered) every
/// `interval` until [`agreed_leader`] holds for `expected` nodes, for at
/// most `within`.
///
/// # Errors
/// A failed poll, or [`WaitError::Timeout`] with the last views.
pub fn wait_for_agreed_leader<E>(
    expected: usize,
    within: Duration,
    interval: Duration,
    mut poll: impl FnMut() -> Result<Vec<LeaderView>, E>,
) -> Result<LeaderView, WaitError<E>> {
    let deadline = Instant::now() + within;
    loop {
        let views = poll().map_err(WaitError::Poll)?;
        if let Some(leader) = agreed_leader(expected, &views) {
            return Ok(leader.clone());
        }
        if Instant::now() >= deadline {
            return Err(WaitError::Timeout(views));
        }
        std::thread::sleep(interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn status_documents_parse() {
        let body = json!({"role":"leader","term":4,"leader":"n1","commit_index":7,"applied_index":7,"state_hash":99});
        let status = parse_status("n1", &body).unwrap();
        assert_eq!(status.role, "leader");
        assert_eq!(status.leader.as_deref(), Some("n1"));
        assert!(status.view().claims_leader);
        assert!(parse_status("n1", &json!({"term":1})).is_none());
    }

    fn view(node: &str, claims: bool, leader: Option<&str>, term: u64) -> LeaderView {
        LeaderView {
            node: node.into(),
            id: node.into(),
            claims_leader: claims,
            leader: leader.map(String::from),
            term: Some(term),
        }
    }

    #[test]
    fn agreement_needs_every_node_one_claimant_and_one_term() {
        let good = [
            view("n1", true, Some("n1"), 2),
            view("n2", false, Some("n1"), 2),
        ];
        assert_eq!(agreed_leader(2, &good).map(|v| v.node.as_str()), Some("n1"));
        assert!(agreed_leader(3, &good).is_none(), "a silent node");
        let lagging = [view("n1", true, Some("n1"), 2), view("n2", false, None, 2)];
        assert!(agreed_leader(2, &lagging).is_none());
        let two = [
            view("n1", true, Some("n1"), 2),
            view("n2", true, Some("n2"), 3),
        ];
        assert!(agreed_leader(2, &two).is_none());
        let stale_term = [
            view("n1", true, Some("n1"), 3),
            view("n2", false, Some("n1"), 2),
        ];
        assert!(agreed_leader(2, &stale_term).is_none());
    }

    #[test]
    fn newest_leader_prefers_the_higher_term() {
        let status = |node: &str, role: &str, term| NodeStatus {
            node: node.into(),
            role: role.into(),
            term,
            leader: None,
            commit_index: 0,
            applied_index: 0,
            state_hash: 0,
        };
        let statuses = [
            status("n1", "leader", 2),
            status("n2", "leader", 3),
            status("n3", "follower", 3),
        ];
        assert_eq!(newest_leader(&statuses), Some(("n2".into(), 3)));
        assert_eq!(newest_leader(&statuses[2..]), None);
    }

    #[test]
    fn waiting_returns_the_leader_or_the_last_views() {
        let mut polls = 0;
        let leader = wait_for_agreed_leader(1, Duration::from_secs(5), Duration::ZERO, || {
            polls += 1;
            Ok::<_, ()>(vec![view("n1", polls > 2, Some("n1"), 1)])
        });
        assert_eq!(leader.map(|v| v.node), Ok("n1".into()));
        let never = wait_for_agreed_leader(1, Duration::ZERO, Duration::ZERO, || {
            Ok::<_, ()>(vec![view("n1", false, None, 1)])
        });
        assert!(matches!(never, Err(WaitError::Timeout(views)) if views.len() == 1));
        let broken = wait_for_agreed_leader(1, Duration::ZERO, Duration::ZERO, || Err("no netns"));
        assert_eq!(broken, Err(WaitError::Poll("no netns")));
    }
}
