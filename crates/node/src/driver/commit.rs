//! Group commit: the fsync that makes a batch's writes durable, inline or
//! on the fsync thread, and feeding `Input::Persisted` when it is done
//! (driver contract step 3).
use std::sync::Arc;
use std::time::Instant;

use consensus::{Input, IoSeq};
use tokio::sync::mpsc;

use super::{Driver, DriverError};
use crate::metrics::Metrics;
use crate::storage::{StorageError, SyncJob};

/// The far end of the fsync thread: jobs in, completions out.
pub(super) struct SyncThread {
    jobs: std::sync::mpsc::Sender<(IoSeq, SyncJob)>,
    pub(super) done: mpsc::UnboundedReceiver<(IoSeq, Result<(), StorageError>)>,
}

impl SyncThread {
    /// A thread that runs each job's fsync, times it into `metrics` and
    /// reports it; it ends when the driver drops its sender.
    pub(super) fn spawn(metrics: Arc<Metrics>) -> std::io::Result<SyncThread> {
        let (jobs, job_rx) = std::sync::mpsc::channel::<(IoSeq, SyncJob)>();
        let (done_tx, done) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("fsync".into())
            .spawn(move || {
                for (upto, job) in job_rx {
                    if done_tx.send((upto, timed_run(job, &metrics))).is_err() {
                        break;
                    }
                }
            })?;
        Ok(SyncThread { jobs, done })
    }
}

/// Runs `job`'s fsyncs; a successful one counts into the fsync histogram.
fn timed_run(job: SyncJob, metrics: &Metrics) -> Result<(), StorageError> {
    let started = Instant::now();
    job.run()?;
    metrics.observe_fsync(started.elapsed().as_nanos() as u64);
    Ok(())
}

impl Driver {
    /// An fsync handed to the fsync thread finished: what it covered is
    /// durable.
    pub(super) fn on_synced(
        &mut self,
        upto: IoSeq,
        result: Result<(), StorageError>,
    ) -> Result<(), DriverError> {
        result?;
        self.state.sync_in_flight = None;
        self.mark_durable(upto);
        Ok(())
    }

    fn mark_durable(&mut self, upto: IoSeq) {
        self.state.durable = self.state.durable.max(upto);
        let now = self.now().local_ns;
        self.replica.step(
            now,
            Input::Persisted {
                upto: self.state.durable,
            },
        );
    }

    /// Makes the writes not yet covered durable: inline when at most one
    /// client waits (nothing to overlap the fsync with, and a hand-off
    /// would cost two thread wake-ups), else on the fsync thread, one job
    /// at a time. Returns true if it fed `Persisted` (new actions may wait).
    pub(super) async fn sync_written(
        &mut self,
        sync_thread: &SyncThread,
    ) -> Result<bool, DriverError> {
        let Some(upto) = self.state.unsynced else {
            return Ok(false);
        };
        if self.state.sync_in_flight.is_some() {
            // Its completion starts the next one.
            return Ok(false);
        }
        self.state.unsynced = None;
        let streams_queued = std::mem::take(&mut self.state.streams_queued);
        if self.state.pending.len() > 1 {
            let job = self.storage.begin_sync()?;
            if job.is_empty() {
                // Nothing left to flush (a snapshot write synced it already).
                self.mark_durable(upto);
                return Ok(true);
            }
            match sync_thread.jobs.send((upto, job)) {
                Ok(()) => {
                    self.state.sync_in_flight = Some(upto);
                    return Ok(false);
                }
                Err(std::sync::mpsc::SendError((_, job))) => {
                    // The fsync thread is gone (it panicked): flush here.
                    timed_run(job, &self.metrics)?;
                    self.mark_durable(upto);
                    return Ok(true);
                }
            }
        }
        if streams_queued {
            // The peer tasks write the append to the wire now, so the
            // followers' fsyncs overlap this one.
            tokio::task::yield_now().await;
        }
        let started = Instant::now();
        self.storage.sync()?;
        self.metrics
            .observe_fsync(started.elapsed().as_nanos() as u64);
        self.mark_durable(upto);
        Ok(true)
    }
}
