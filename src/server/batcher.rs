//! Micro-batching in front of inference: requests wait in a bounded queue;
//! worker threads (outside the async runtime) take whatever is waiting, up to
//! `max_batch` complaints, and score it with one model call. A full queue is
//! refused at once (the handler answers 503 with Retry-After), so load never
//! builds an unbounded backlog.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use tokio::sync::oneshot;

use crate::engine::{Complaint, Engine, Triage};
use crate::error::TriageError;
use crate::server::metrics::Metrics;

pub type Results = Vec<Result<Triage, TriageError>>;

struct Job {
    items: Vec<Complaint>,
    reply: oneshot::Sender<Results>,
}

/// Why a job was not accepted.
#[derive(Debug, PartialEq, Eq)]
pub enum SubmitError {
    /// The queue is full: retry shortly.
    Full,
    /// The service is shutting down.
    Closed,
}

pub struct Batcher {
    tx: Mutex<Option<SyncSender<Job>>>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl Batcher {
    pub fn start(
        engine: Arc<Engine>,
        metrics: Arc<Metrics>,
        workers: usize,
        capacity: usize,
        max_batch: usize,
    ) -> Self {
        let (tx, rx) = sync_channel::<Job>(capacity);
        let rx = Arc::new(Mutex::new(rx));
        let handles = (0..workers.max(1))
            .map(|i| {
                let (engine, metrics, rx) = (engine.clone(), metrics.clone(), rx.clone());
                std::thread::Builder::new()
                    .name(format!("inference-{i}"))
                    .spawn(move || worker(&engine, &metrics, &rx, max_batch))
                    .expect("spawn inference worker")
            })
            .collect();
        Self {
            tx: Mutex::new(Some(tx)),
            workers: Mutex::new(handles),
        }
    }

    /// Queue complaints for scoring; the receiver yields one result per item.
    pub fn submit(&self, items: Vec<Complaint>) -> Result<oneshot::Receiver<Results>, SubmitError> {
        let (reply, rx) = oneshot::channel();
        let guard = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        let tx = guard.as_ref().ok_or(SubmitError::Closed)?;
        match tx.try_send(Job { items, reply }) {
            Ok(()) => Ok(rx),
            Err(TrySendError::Full(_)) => Err(SubmitError::Full),
            Err(TrySendError::Disconnected(_)) => Err(SubmitError::Closed),
        }
    }

    /// Stop accepting work, let the workers finish what is queued, and join them.
    pub fn shutdown(&self) {
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        let handles: Vec<_> = self
            .workers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
            .collect();
        for h in handles {
            let _ = h.join();
        }
    }
}

fn worker(engine: &Engine, metrics: &Metrics, rx: &Mutex<Receiver<Job>>, max_batch: usize) {
    loop {
        let mut jobs = Vec::new();
        {
            let rx = rx.lock().unwrap_or_else(|p| p.into_inner());
            match rx.recv() {
                Ok(job) => jobs.push(job),
                Err(_) => return, // closed and drained
            }
            let mut n = jobs[0].items.len();
            while n < max_batch {
                match rx.try_recv() {
                    Ok(job) => {
                        n += job.items.len();
                        jobs.push(job);
                    }
                    Err(_) => break,
                }
            }
        }
        let sizes: Vec<usize> = jobs.iter().map(|j| j.items.len()).collect();
        let mut all = Vec::with_capacity(sizes.iter().sum());
        let mut replies = Vec::with_capacity(jobs.len());
        for job in jobs {
            all.extend(job.items);
            replies.push(job.reply);
        }
        let start = Instant::now();
        let mut results = engine.triage_batch(&all).into_iter();
        metrics.observe_inference(all.len(), start.elapsed());
        for (reply, n) in replies.into_iter().zip(sizes) {
            let part: Results = results.by_ref().take(n).collect();
            let _ = reply.send(part); // the caller may have timed out
        }
    }
}
