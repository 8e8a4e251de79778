//! Reaching a live lab's nodes: their addresses, and sockets or threads
//! opened inside a lab namespace (a socket made in the host's namespace cannot
//! reach lab addresses).

use super::{Lab, Target};
use crate::error::NetlabError;
use crate::netns::{self, NetnsThread};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

impl Lab {
    /// Address of a node.
    pub fn node_addr(&self, node: &str) -> Option<Ipv4Addr> {
        self.journal.plan.node(node).map(|n| n.addr)
    }

    /// `addr:peer_port` of a node (UDP heartbeats and TCP replication).
    pub fn peer_addr(&self, node: &str) -> Option<SocketAddr> {
        let port = self.journal.plan.ports.peer;
        self.node_addr(node).map(|a| SocketAddr::from((a, port)))
    }

    /// `addr:client_port` of a node.
    pub fn client_addr(&self, node: &str) -> Option<SocketAddr> {
        let port = self.journal.plan.ports.client;
        self.node_addr(node).map(|a| SocketAddr::from((a, port)))
    }

    /// The namespace of a target.
    ///
    /// # Errors
    /// Unknown node (with the valid names).
    pub fn netns_of(&self, target: &Target) -> Result<String, NetlabError> {
        match target {
            Target::Control => Ok(self.journal.plan.control_netns.clone()),
            Target::Node(node) => self
                .journal
                .plan
                .node(node)
                .map(|n| n.netns.clone())
                .ok_or_else(|| {
                    NetlabError::InvalidFault(format!(
                        "unknown node {node:?}; valid names: {}",
                        self.journal.topology.node_names().join(", ")
                    ))
                }),
        }
    }

    /// Runs `work` on a fresh thread inside the target's namespace.
    ///
    /// # Errors
    /// Unknown target or namespace entry failure.
    pub fn in_netns<T: Send>(
        &self,
        target: &Target,
        work: impl FnOnce() -> T + Send,
    ) -> Result<T, NetlabError> {
        let ns = self.netns_of(target)?;
        netns::in_netns(&ns, work).map_err(|e| NetlabError::io(format!("enter {ns}"), e))
    }

    /// A long-lived thread inside the target's namespace.
    ///
    /// # Errors
    /// Unknown target or namespace entry failure.
    pub fn netns_thread(&self, target: &Target) -> Result<NetnsThread, NetlabError> {
        let ns = self.netns_of(target)?;
        NetnsThread::start(&ns).map_err(|e| NetlabError::io(format!("enter {ns}"), e))
    }

    /// A TCP connection opened from inside `from`'s namespace.
    ///
    /// # Errors
    /// Connect failures (timeouts, refusals, unreachable).
    pub fn tcp_connect(
        &self,
        from: &Target,
        to: SocketAddr,
        timeout: Duration,
    ) -> io::Result<TcpStream> {
        self.in_netns(from, || TcpStream::connect_timeout(&to, timeout))
            .map_err(io::Error::other)?
    }

    /// A UDP socket bound inside `at`'s namespace.
    ///
    /// # Errors
    /// Bind failures.
    pub fn udp_bind(&self, at: &Target, addr: SocketAddr) -> io::Result<UdpSocket> {
        self.in_netns(at, || UdpSocket::bind(addr))
            .map_err(io::Error::other)?
    }

    /// A TCP listener bound inside `at`'s namespace.
    ///
    /// # Errors
    /// Bind failures.
    pub fn tcp_listen(&self, at: &Target, addr: SocketAddr) -> io::Result<TcpListener> {
        self.in_netns(at, || TcpListener::bind(addr))
            .map_err(io::Error::other)?
    }
}
