//! The call recorder: takes tool-call records off the request path and writes them in batches.
//!
//! [`CallRecorder::record`] never waits: it puts the record in a bounded buffer and returns. A
//! writer task drains the buffer in batches on a blocking thread. While the store is slow or
//! away, the writer keeps its batch and retries with growing waits, and the buffer keeps filling;
//! once the buffer is full, new records are dropped and counted ([`CallRecorder::dropped`]), so
//! memory stays bounded and tool calls never slow down. This module does not decide what is
//! recorded: the MCP method handlers do.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::configuration::RecorderSettings;
use crate::store::tool_calls::{self, NewToolCall};
use crate::store::Pool;

/// Hands records to the writer task; cheap to clone.
#[derive(Clone)]
pub struct CallRecorder {
    sender: mpsc::Sender<NewToolCall>,
    counters: Arc<Counters>,
}

/// What the recorder has done so far.
#[derive(Default)]
struct Counters {
    dropped: AtomicU64,
    written: AtomicU64,
}

/// Ends the writer task once every record handed over before has been written (or given up).
pub struct RecorderTask {
    handle: tokio::task::JoinHandle<()>,
}

impl RecorderTask {
    /// Waits until the writer has written what it holds, at most `deadline`.
    pub async fn finish(self, deadline: Duration) {
        if tokio::time::timeout(deadline, self.handle).await.is_err() {
            log::warn!("call recorder did not finish writing within {deadline:?}; records lost");
        }
    }
}

impl CallRecorder {
    /// Starts the writer task on the current runtime.
    pub fn start(pool: Pool, settings: &RecorderSettings) -> (CallRecorder, RecorderTask) {
        let (sender, receiver) = mpsc::channel(settings.buffer_size);
        let counters = Arc::new(Counters::default());
        let writer = Writer {
            pool,
            receiver,
            batch_size: settings.batch_size,
            flush_interval: settings.flush_interval(),
            max_retry_interval: settings.max_retry_interval(),
            counters: counters.clone(),
        };
        let handle = tokio::spawn(writer.run());
        (CallRecorder { sender, counters }, RecorderTask { handle })
    }

    /// Queues one record; never waits. Drops and counts it when the buffer is full.
    pub fn record(&self, call: NewToolCall) {
        if self.sender.try_send(call).is_err() {
            let before = self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            if before.is_power_of_two() || before == 0 {
                log::warn!(
                    "call record buffer is full; {} records dropped so far",
                    before + 1
                );
            }
        }
    }

    /// Records dropped because the buffer was full.
    pub fn dropped(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    /// Records written to the store.
    pub fn written(&self) -> u64 {
        self.counters.written.load(Ordering::Relaxed)
    }
}

/// The writer task's state.
struct Writer {
    pool: Pool,
    receiver: mpsc::Receiver<NewToolCall>,
    batch_size: usize,
    flush_interval: Duration,
    max_retry_interval: Duration,
    counters: Arc<Counters>,
}

impl Writer {
    async fn run(mut self) {
        let mut batch = Vec::with_capacity(self.batch_size);
        loop {
            if self.receiver.recv_many(&mut batch, self.batch_size).await == 0 {
                return;
            }
            // Give a partial batch a moment to fill, unless the senders are gone.
            if batch.len() < self.batch_size && !self.receiver.is_closed() {
                let deadline = tokio::time::sleep(self.flush_interval);
                tokio::pin!(deadline);
                while batch.len() < self.batch_size {
                    let room = self.batch_size - batch.len();
                    tokio::select! {
                        n = self.receiver.recv_many(&mut batch, room) => if n == 0 { break },
                        _ = &mut deadline => break,
                    }
                }
            }
            batch = self.write(batch).await;
        }
    }

    /// Writes `batch` until it succeeds; returns the emptied vector for reuse.
    async fn write(&self, batch: Vec<NewToolCall>) -> Vec<NewToolCall> {
        let mut wait = Duration::from_millis(100);
        let mut batch = batch;
        let mut failing = false;
        loop {
            let pool = self.pool.clone();
            let outcome = tokio::task::spawn_blocking(move || {
                let result = pool.get().map_err(|e| e.to_string()).and_then(|mut conn| {
                    tool_calls::insert(&mut conn, &batch).map_err(|e| e.to_string())
                });
                (result, batch)
            })
            .await;
            let Ok((result, returned)) = outcome else {
                log::error!("call recorder write task panicked; batch lost");
                return Vec::with_capacity(self.batch_size);
            };
            batch = returned;
            match result {
                Ok(written) => {
                    if failing {
                        log::info!("call records are written again");
                    }
                    self.counters
                        .written
                        .fetch_add(written as u64, Ordering::Relaxed);
                    batch.clear();
                    return batch;
                }
                Err(err) => {
                    if !failing {
                        log::warn!(
                            "call records not written ({} held): {err}; retrying",
                            batch.len()
                        );
                        failing = true;
                    }
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(self.max_retry_interval);
                }
            }
        }
    }
}
