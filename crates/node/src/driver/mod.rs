//! The driver: the ONLY owner of the [`Replica`] (actor style).
//!
//! Everything reaches it over channels — peer messages from the transport
//! tasks, client calls from the HTTP handlers, ticks from a timer — and it
//! follows the numbered driver contract of `consensus/src/lib.rs`:
//!
//! 1. `select! { biased; shutdown, tick, peer, client }` picks one input (the
//!    order is fixed, so no hidden RNG decides it), then up to
//!    [`BATCH_LIMIT`] more inputs that are already queued are stepped too.
//! 2. All actions of the batch are executed in order: storage writes go to the
//!    page cache, `Send { after: None }`, replies and events go out at once,
//!    `Send { after: Some(seq) }` is held back.
//! 3. One fsync covers the whole batch (group commit); only then is
//!    `Input::Persisted` fed and the held sends released. With one client
//!    waiting (sequential writes, a follower) the fsync runs inline; with
//!    several, it runs on the fsync thread while the driver goes on
//!    stepping and appending, and the next fsync covers all that arrived
//!    meanwhile (pipelined group commit).
//! 4. Status is published on a `watch` channel for `/status` and `/metrics`
//!    (no lock is ever held across an `.await`).
//!
//! splitnode runs on one thread (a current-thread runtime): a write needs no
//! cross-thread wake-up between the HTTP task, the driver and the peer tasks.
//! Storage I/O is synchronous and, but for the handed-off fsyncs, blocks
//! that thread, so the driver yields at the three points where other tasks
//! have work that must not wait for the disk:
//! - before the group-commit fsync when an append was queued for a peer, so
//!   the peer tasks put it on the wire and the followers' fsyncs run
//!   alongside ours;
//! - before flushing the event log, so the HTTP tasks send their replies
//!   first;
//! - on every tick, then it drains the peer queue before stepping the tick,
//!   so heartbeats that arrived while the thread was blocked (a slow disk, a
//!   paused process) are seen before timeouts are judged; otherwise a
//!   leader stalled on its own disk would step down.
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use checker::EventKind;
use consensus::{
    Action, ClientReply, ClientRequest, ClientResponse, Event, Input, IoSeq, Message, NodeId,
    Outbound, Replica, RequestId, Status, Transport, Write,
};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::MissedTickBehavior;
use wire::Frame;

use crate::clock::{NodeClock, Stamp};
use crate::config::NodeConfig;
use crate::events::{self, EventLog};
use crate::failpoints::crash_point;
use crate::metrics::{Metrics, SendDrop};
use crate::storage::{Storage, StorageError};

mod commit;
use crate::transport::Inbound;
use commit::SyncThread;

/// Inputs stepped per batch before the batch's actions are executed.
pub(crate) const BATCH_LIMIT: usize = 256;

/// A client request on its way to the driver, with the channel for its reply.
pub(crate) struct ClientCall {
    pub request: ClientRequest,
    pub reply: oneshot::Sender<ClientReply>,
    /// CLOCK_MONOTONIC when the HTTP request was parsed.
    pub started_mono: u64,
}

/// What `/status` and `/metrics` read: the replica's status at `stamp`.
#[derive(Debug, Clone)]
pub(crate) struct StatusView {
    pub status: Status,
    pub stamp: Stamp,
}

struct Pending {
    reply: oneshot::Sender<ClientReply>,
    started_mono: u64,
    is_write: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("storage failed, stopping to stay safe: {0}")]
    Storage(#[from] StorageError),
    #[error("event log: {0}")]
    EventLog(#[from] std::io::Error),
    #[error("starting the fsync thread: {0}")]
    SyncThread(std::io::Error),
}

/// How a snapshot reached storage: received from the leader, or taken
/// locally of applied state.
#[derive(Debug, Clone, Copy)]
enum SnapshotOrigin {
    Installed,
    Compacted,
}

pub(crate) struct Driver {
    pub(crate) replica: Replica,
    pub(crate) storage: Storage,
    pub(crate) events: EventLog,
    pub(crate) clock: NodeClock,
    pub(crate) config: Arc<NodeConfig>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) udp: Arc<UdpSocket>,
    pub(crate) peer_queues: BTreeMap<NodeId, mpsc::Sender<Vec<u8>>>,
    pub(crate) status_tx: watch::Sender<Arc<StatusView>>,
    /// `--join-empty` on an empty directory: ignore vote requests until a
    /// leader has been followed, so a node that forgot its vote cannot hand
    /// out a second vote in a term it may already have voted in.
    pub(crate) withhold_votes: bool,
    pub(crate) state: DriverState,
}

/// What the driver tracks between batches: client requests awaiting their
/// reply, sends held back until their entries are durable, the last leader
/// seen and the purge cadence.
pub(crate) struct DriverState {
    pending: HashMap<RequestId, Pending>,
    next_request: RequestId,
    held: Vec<Outbound>,
    durable: IoSeq,
    last_leader: Option<NodeId>,
    ticks_since_purge: u32,
    /// A frame went to a peer stream queue since the last fsync.
    streams_queued: bool,
    /// The highest write not yet covered by a started fsync.
    unsynced: Option<IoSeq>,
    /// The write an fsync running on the fsync thread will make durable.
    sync_in_flight: Option<IoSeq>,
}

impl DriverState {
    /// Nothing in flight; `leader` is the leader the replica starts with.
    pub(crate) fn new(leader: Option<NodeId>) -> DriverState {
        DriverState {
            pending: HashMap::new(),
            next_request: 1,
            held: Vec::new(),
            durable: IoSeq(0),
            last_leader: leader,
            ticks_since_purge: 0,
            streams_queued: false,
            unsynced: None,
            sync_in_flight: None,
        }
    }
}

impl Driver {
    /// Runs until `shutdown` resolves or storage fails.
    pub(crate) async fn run(
        mut self,
        mut peers: mpsc::Receiver<Inbound>,
        mut clients: mpsc::Receiver<ClientCall>,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), DriverError> {
        let tick_local = Duration::from_nanos(self.config.consensus_config().tick_interval_ns);
        let mut ticker = tokio::time::interval(self.clock.real_duration(tick_local));
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        let mut sync_thread =
            SyncThread::spawn(Arc::clone(&self.metrics)).map_err(DriverError::SyncThread)?;
        // The replica may have produced actions while being built.
        self.execute(&sync_thread).await?;
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                _ = ticker.tick() => {
                    // Let the socket tasks queue what arrived while this
                    // thread was blocked, and step it before the tick.
                    tokio::task::yield_now().await;
                    self.drain_peers(&mut peers);
                    self.on_tick();
                }
                Some((upto, result)) = sync_thread.done.recv() => self.on_synced(upto, result)?,
                Some(inbound) = peers.recv() => self.on_peer(inbound),
                Some(call) = clients.recv() => self.on_client(call),
            }
            // Group commit: whatever is already queued joins this batch.
            self.drain_peers(&mut peers);
            for _ in 0..BATCH_LIMIT {
                match clients.try_recv() {
                    Ok(call) => self.on_client(call),
                    Err(_) => break,
                }
            }
            self.execute(&sync_thread).await?;
        }
        if self.state.sync_in_flight.is_some()
            && let Some((upto, result)) = sync_thread.done.recv().await
        {
            self.on_synced(upto, result)?;
        }
        self.stop()
    }

    /// Steps up to [`BATCH_LIMIT`] peer messages that are already queued.
    fn drain_peers(&mut self, peers: &mut mpsc::Receiver<Inbound>) {
        for _ in 0..BATCH_LIMIT {
            match peers.try_recv() {
                Ok(inbound) => self.on_peer(inbound),
                Err(_) => break,
            }
        }
    }

    fn now(&self) -> Stamp {
        self.clock.now()
    }

    fn on_tick(&mut self) {
        let now = self.now().local_ns;
        self.replica.step(now, Input::Tick);
        self.state.ticks_since_purge += 1;
        if self.state.ticks_since_purge >= 100 {
            // HTTP handlers that timed out dropped their receivers.
            self.state.ticks_since_purge = 0;
            self.state
                .pending
                .retain(|_, pending| !pending.reply.is_closed());
        }
    }

    fn on_peer(&mut self, inbound: Inbound) {
        if self.withhold_votes
            && matches!(
                inbound.message,
                Message::Vote { .. } | Message::PreVote { .. }
            )
        {
            self.metrics.votes_withheld.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let now = self.now().local_ns;
        self.replica.step(
            now,
            Input::Message {
                from: inbound.from,
                term: inbound.term,
                message: inbound.message,
            },
        );
    }

    fn on_client(&mut self, call: ClientCall) {
        let id = self.state.next_request;
        self.state.next_request += 1;
        let is_write = matches!(call.request, ClientRequest::Write { .. });
        self.state.pending.insert(
            id,
            Pending {
                reply: call.reply,
                started_mono: call.started_mono,
                is_write,
            },
        );
        let now = self.now().local_ns;
        self.replica.step(
            now,
            Input::Client {
                id,
                request: call.request,
            },
        );
    }

    /// Executes every queued action (driver contract steps 1–6), with one
    /// fsync per round (or one handed off), until the replica has nothing
    /// more to say.
    async fn execute(&mut self, sync_thread: &SyncThread) -> Result<(), DriverError> {
        loop {
            let actions = self.replica.take_actions();
            let stepped = !actions.is_empty();
            let mut written: Option<IoSeq> = None;
            for action in actions {
                match action {
                    Action::Write(Write::Meta {
                        term,
                        voted_for,
                        seq,
                    }) => {
                        self.storage.persist_meta(term, voted_for)?;
                        written = written.max(Some(seq));
                    }
                    Action::Write(Write::Append {
                        truncate_after,
                        entries,
                        seq,
                    }) => {
                        self.storage.append(truncate_after, &entries)?;
                        written = written.max(Some(seq));
                    }
                    Action::Write(Write::InstallSnapshot { snapshot, seq }) => {
                        self.storage.install_snapshot(&snapshot)?;
                        written = written.max(Some(seq));
                        self.on_snapshot_stored(&snapshot, SnapshotOrigin::Installed)?;
                    }
                    Action::Write(Write::Compact { snapshot }) => {
                        self.storage.compact(&snapshot)?;
                        self.on_snapshot_stored(&snapshot, SnapshotOrigin::Compacted)?;
                    }
                    Action::Send(send) => {
                        if send.waits_for(self.state.durable) {
                            self.state.held.push(send);
                        } else {
                            self.transmit(send);
                        }
                    }
                    Action::Reply { id, reply } => self.reply(id, reply),
                    Action::Event(event) => self.record(&event)?,
                }
            }
            self.state.unsynced = self.state.unsynced.max(written);
            let persisted = self.sync_written(sync_thread).await?;
            if !self.state.held.is_empty() {
                let durable = self.state.durable;
                let (waiting, ready): (Vec<_>, Vec<_>) = self
                    .state
                    .held
                    .drain(..)
                    .partition(|send| send.waits_for(durable));
                self.state.held = waiting;
                for send in ready {
                    self.transmit(send);
                }
            }
            if !stepped && !persisted {
                break;
            }
        }
        // Replies are in their channels: the HTTP tasks send them before
        // the event log costs this thread a write.
        tokio::task::yield_now().await;
        self.events.flush()?;
        self.publish();
        Ok(())
    }

    /// Counts and logs a snapshot that is now durable.
    fn on_snapshot_stored(
        &mut self,
        snapshot: &wire::Snapshot,
        origin: SnapshotOrigin,
    ) -> Result<(), DriverError> {
        let (counter, kind) = match origin {
            SnapshotOrigin::Installed => (
                &self.metrics.snapshots_installed,
                EventKind::SnapshotInstalled {
                    last_index: snapshot.last_index,
                    bytes: snapshot.data.len() as u64,
                },
            ),
            SnapshotOrigin::Compacted => (
                &self.metrics.compactions,
                EventKind::Compacted {
                    last_index: snapshot.last_index,
                    bytes: snapshot.data.len() as u64,
                },
            ),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let term = self.replica.status().term;
        let stamp = self.now();
        self.events.record(stamp, term, kind)?;
        Ok(())
    }

    fn transmit(&mut self, send: Outbound) {
        let Outbound {
            to,
            term,
            message,
            transport,
            ..
        } = send;
        let Some(peer) = self.config.peer(to) else {
            tracing::warn!(to, "replica addressed a non-member; dropped");
            return;
        };
        if let Message::InstallSnapshot { chunk } = &message {
            // Every chunk (resent ones too) counts its bytes; a transfer
            // counts as sent, and is logged, when its final chunk goes out.
            let metrics = &self.metrics;
            metrics.snapshot_chunks_sent.fetch_add(1, Ordering::Relaxed);
            let bytes = chunk.data.len() as u64;
            metrics
                .snapshot_bytes_sent
                .fetch_add(bytes, Ordering::Relaxed);
            if chunk.done {
                metrics.snapshots_sent.fetch_add(1, Ordering::Relaxed);
                let kind = EventKind::SnapshotSent {
                    peer: peer.name.clone(),
                    last_index: chunk.last_index,
                    bytes: chunk.total_len,
                };
                let stamp = self.now();
                if let Err(error) = self.events.record(stamp, term, kind) {
                    tracing::warn!(%error, "event log: snapshot_sent not recorded");
                }
            }
        }
        let frame = Frame::new(self.config.cluster_id, self.config.id, to, term, message);
        // Keyed (MAC trailer, version 2) when a cluster key is configured.
        let mut bytes = Vec::new();
        wire::encode_keyed(&frame, self.config.cluster_key.as_ref(), &mut bytes);
        match transport {
            Transport::Datagram => {
                if bytes.len() > self.config.limits.max_datagram_bytes
                    || self.udp.try_send_to(&bytes, peer.addr).is_err()
                {
                    self.metrics.drop_send(SendDrop::Datagram);
                }
            }
            Transport::Stream => {
                let sent = self
                    .peer_queues
                    .get(&to)
                    .is_some_and(|queue| queue.try_send(bytes).is_ok());
                self.state.streams_queued |= sent;
                if !sent {
                    self.metrics.drop_send(SendDrop::QueueFull);
                }
            }
        }
    }

    fn reply(&mut self, id: RequestId, reply: ClientReply) {
        let Some(pending) = self.state.pending.remove(&id) else {
            return;
        };
        let metrics = &self.metrics;
        match (&reply, pending.is_write) {
            (ClientReply::Ok(ClientResponse::Written { .. }), _) => {
                metrics.writes_ok.fetch_add(1, Ordering::Relaxed);
                metrics.observe_write_latency(
                    crate::clock::mono_ns().saturating_sub(pending.started_mono),
                );
            }
            (ClientReply::Ok(_), _) => {
                metrics.reads_ok.fetch_add(1, Ordering::Relaxed);
            }
            (ClientReply::Rejected(_), true) => {
                metrics.writes_rejected.fetch_add(1, Ordering::Relaxed);
            }
            (ClientReply::Unknown { .. }, true) => {
                metrics.writes_unknown.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
        let acknowledged = matches!(reply, ClientReply::Ok(ClientResponse::Written { .. }));
        // The HTTP handler may have given up already; that is fine.
        let _ = pending.reply.send(reply);
        if acknowledged {
            crash_point!("commit-replied");
        }
    }

    fn name_of(&self, id: NodeId) -> String {
        self.config
            .member_name(id)
            .map_or_else(|| format!("#{id:x}"), str::to_owned)
    }

    fn record(&mut self, event: &Event) -> Result<(), DriverError> {
        let metrics = &self.metrics;
        match event {
            Event::ElectionStarted { .. } => {
                metrics.elections_started.fetch_add(1, Ordering::Relaxed);
            }
            Event::QuorumLost { .. } => {
                metrics.quorum_losses.fetch_add(1, Ordering::Relaxed);
            }
            Event::StaleTermRejected { .. } => {
                metrics
                    .stale_term_rejections
                    .fetch_add(1, Ordering::Relaxed);
            }
            Event::PreVoteRejected { .. } => {
                metrics.pre_vote_rejections.fetch_add(1, Ordering::Relaxed);
            }
            Event::BecameLeader { term } => {
                metrics.became_leader.fetch_add(1, Ordering::Relaxed);
                tracing::info!(term, "became leader");
            }
            Event::SteppedDown { term, reason } => {
                tracing::info!(term, reason = reason.name(), "stepped down");
            }
            _ => {}
        }
        let current_term = self.replica.status().term;
        let config = self.config.clone();
        let name_of = move |id: NodeId| {
            config
                .member_name(id)
                .map_or_else(|| format!("#{id:x}"), str::to_owned)
        };
        let (term, kind) = events::convert(event, current_term, &self.clock, &name_of);
        let stamp = self.now();
        self.events.record(stamp, term, kind)?;
        Ok(())
    }

    fn publish(&mut self) {
        let status = self.replica.status();
        if status.leader != self.state.last_leader {
            if status.leader.is_some() {
                self.metrics
                    .leadership_changes
                    .fetch_add(1, Ordering::Relaxed);
            }
            self.state.last_leader = status.leader;
        }
        if self.withhold_votes && status.leader.is_some_and(|leader| leader != self.config.id) {
            tracing::info!(
                leader = %self.name_of(status.leader.unwrap_or_default()),
                "following a leader after --join-empty; voting again"
            );
            self.withhold_votes = false;
        }
        let stamp = self.now();
        self.status_tx
            .send_replace(Arc::new(StatusView { status, stamp }));
    }

    /// Graceful stop: everything durable, a `final_state` line, logs flushed.
    fn stop(mut self) -> Result<(), DriverError> {
        self.storage.sync()?;
        let status = self.replica.status();
        let stamp = self.now();
        self.events.record(
            stamp,
            status.term,
            EventKind::FinalState {
                commit_index: status.commit_index,
                applied_index: status.applied_index,
                state_hash: status.state_hash,
            },
        )?;
        self.events.flush()?;
        for (_, pending) in self.state.pending.drain() {
            let _ = pending.reply.send(ClientReply::Unknown {
                reason: "node shutting down".into(),
            });
        }
        tracing::info!(
            term = status.term,
            role = status.role.name(),
            commit = status.commit_index,
            "stopped"
        );
        Ok(())
    }
}
