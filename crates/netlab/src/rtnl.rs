//! The impure executor of plan steps, over rtnetlink. It owns a private
//! current-thread tokio runtime on a dedicated OS thread, so callers may be
//! synchronous code or async code on any runtime (no nested `block_on`), and
//! one netlink connection per namespace, each created on a thread that has
//! entered that namespace (a netlink socket belongs to its creator's netns).

use crate::netns::{self, in_netns};
use crate::plan::Step;
use futures_util::TryStreamExt;
use rtnetlink::packet_route::link::{InfoData, InfoVeth};
use rtnetlink::packet_route::route::RouteScope;
use rtnetlink::{Handle, LinkUnspec, LinkVeth, RouteMessageBuilder};
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::thread;

/// A failed step and why.
#[derive(Debug)]
pub struct StepFailure {
    /// The step (display form).
    pub step: String,
    /// The cause.
    pub source: io::Error,
}

enum Request {
    Steps(Vec<Step>, mpsc::Sender<Result<(), StepFailure>>),
    SetLink {
        netns: String,
        ifname: String,
        up: bool,
        reply: mpsc::Sender<io::Result<()>>,
    },
    Forget(String),
}

/// Handle to the executor thread. Dropping it stops the thread.
pub struct Rtnl {
    requests: Option<mpsc::Sender<Request>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Rtnl {
    /// Starts the executor thread.
    ///
    /// # Errors
    /// When the runtime cannot be built.
    pub fn start() -> io::Result<Rtnl> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (requests, queue) = mpsc::channel::<Request>();
        let thread = thread::Builder::new()
            .name("netlab-rtnl".into())
            .spawn(move || {
                let mut worker = Worker {
                    runtime,
                    handles: HashMap::new(),
                };
                for request in queue {
                    worker.serve(request);
                }
            })?;
        Ok(Rtnl {
            requests: Some(requests),
            thread: Some(thread),
        })
    }

    fn send(&self, request: Request) -> io::Result<()> {
        self.requests
            .as_ref()
            .ok_or_else(|| io::Error::other("rtnetlink executor stopped"))?
            .send(request)
            .map_err(|_| io::Error::other("rtnetlink executor stopped"))
    }

    /// Executes steps in order; stops at the first failure.
    ///
    /// # Errors
    /// The failed step with its cause.
    pub fn execute(&self, steps: Vec<Step>) -> Result<(), StepFailure> {
        let (tx, rx) = mpsc::channel();
        let describe = steps.first().map(ToString::to_string).unwrap_or_default();
        self.send(Request::Steps(steps, tx))
            .map_err(|source| StepFailure {
                step: describe.clone(),
                source,
            })?;
        rx.recv().unwrap_or_else(|_| {
            Err(StepFailure {
                step: describe,
                source: io::Error::other("rtnetlink executor died"),
            })
        })
    }

    /// Sets an interface up or down.
    ///
    /// # Errors
    /// When the interface is missing or the change is refused.
    pub fn set_link(&self, netns: &str, ifname: &str, up: bool) -> io::Result<()> {
        let (reply, rx) = mpsc::channel();
        self.send(Request::SetLink {
            netns: netns.into(),
            ifname: ifname.into(),
            up,
            reply,
        })?;
        rx.recv()
            .unwrap_or_else(|_| Err(io::Error::other("rtnetlink executor died")))
    }

    /// Drops the cached connection of a namespace (before deleting it).
    pub fn forget(&self, netns: &str) {
        let _ = self.send(Request::Forget(netns.into()));
    }
}

impl Drop for Rtnl {
    fn drop(&mut self) {
        drop(self.requests.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Worker {
    runtime: tokio::runtime::Runtime,
    handles: HashMap<String, Handle>,
}

fn netlink_err(e: rtnetlink::Error) -> io::Error {
    match e {
        rtnetlink::Error::NetlinkError(message) => {
            let code = message.raw_code();
            io::Error::from_raw_os_error(-code)
        }
        other => io::Error::other(other.to_string()),
    }
}

impl Worker {
    fn serve(&mut self, request: Request) {
        match request {
            Request::Steps(steps, reply) => {
                let mut result = Ok(());
                for step in steps {
                    if let Err(source) = self.step(&step) {
                        result = Err(StepFailure {
                            step: step.to_string(),
                            source,
                        });
                        break;
                    }
                }
                let _ = reply.send(result);
            }
            Request::SetLink {
                netns,
                ifname,
                up,
                reply,
            } => {
                let result = self.set_link(&netns, &ifname, up);
                let _ = reply.send(result);
            }
            Request::Forget(netns) => {
                self.handles.remove(&netns);
            }
        }
    }

    fn handle(&mut self, netns: &str) -> io::Result<Handle> {
        if let Some(handle) = self.handles.get(netns) {
            return Ok(handle.clone());
        }
        let runtime = self.runtime.handle().clone();
        let (connection, handle, _) = in_netns(netns, move || {
            // TokioSocket::new needs a reactor in scope on this thread.
            let _entered = runtime.enter();
            rtnetlink::new_connection()
        })??;
        self.runtime.spawn(connection);
        self.handles.insert(netns.to_string(), handle.clone());
        Ok(handle)
    }

    /// The index of `ifname` in `netns`, with the handle for that namespace.
    fn link(&mut self, netns: &str, ifname: &str) -> io::Result<(u32, Handle)> {
        let handle = self.handle(netns)?;
        let name = ifname.to_string();
        let lookup = handle.clone();
        let found = self.runtime.block_on(async move {
            lookup
                .link()
                .get()
                .match_name(name)
                .execute()
                .try_next()
                .await
        });
        match found {
            Ok(Some(link)) => Ok((link.header.index, handle)),
            Ok(None) => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no interface {ifname} in {netns}"),
            )),
            Err(e) => Err(netlink_err(e)),
        }
    }

    fn set_link(&mut self, netns: &str, ifname: &str, up: bool) -> io::Result<()> {
        let (index, handle) = self.link(netns, ifname)?;
        let builder = LinkUnspec::new_with_index(index);
        let message = if up { builder.up() } else { builder.down() }.build();
        self.runtime
            .block_on(async move { handle.link().set(message).execute().await })
            .map_err(netlink_err)
    }

    fn step(&mut self, step: &Step) -> io::Result<()> {
        match step {
            Step::CreateNetns { netns } => netns::create_netns(netns),
            Step::LinkUp { netns, ifname } => self.set_link(netns, ifname, true),
            Step::AddAddress {
                netns,
                ifname,
                addr,
            } => {
                let (index, handle) = self.link(netns, ifname)?;
                let addr = IpAddr::V4(*addr);
                self.runtime
                    .block_on(async move { handle.address().add(index, addr, 32).execute().await })
                    .map_err(netlink_err)
            }
            Step::CreateVeth {
                netns_a,
                ifname_a,
                netns_b,
                ifname_b,
            } => {
                // Sent over namespace A's own socket: end A is born in A, and
                // IFLA_NET_NS_FD puts the peer straight into B. Nothing ever
                // appears in the host's namespace.
                let handle = self.handle(netns_a)?;
                let peer_ns = File::open(netns::netns_path(netns_b))?;
                let peer = LinkUnspec::new_with_name(ifname_b)
                    .setns_by_fd(peer_ns.as_raw_fd())
                    .build();
                let message = LinkVeth::new(ifname_a, ifname_b)
                    .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
                    .build();
                let result = self
                    .runtime
                    .block_on(async move { handle.link().add(message).execute().await })
                    .map_err(netlink_err);
                drop(peer_ns);
                result
            }
            Step::AddRoute {
                netns,
                dest,
                ifname,
                src,
            } => {
                let (index, handle) = self.link(netns, ifname)?;
                let message = RouteMessageBuilder::<Ipv4Addr>::new()
                    .destination_prefix(*dest, 32)
                    .output_interface(index)
                    .pref_source(*src)
                    .scope(RouteScope::Link)
                    .build();
                self.runtime
                    .block_on(async move { handle.route().add(message).replace().execute().await })
                    .map_err(netlink_err)
            }
        }
    }
}
