//! Recorders: take records (tool calls, feedback) off the request path and write them in batches.
//!
//! [`Recorder::record`] never waits: it puts the record in a bounded buffer and returns. A
//! writer task drains the buffer in batches on a blocking thread. While the store is slow or
//! away, the writer keeps its batch and retries with growing waits, and the buffer keeps filling;
//! once the buffer is full, new records are dropped and counted ([`Recorder::dropped`]), so
//! memory stays bounded and requests never slow down. Text the store cannot hold (NUL, which
//! PostgreSQL refuses) is scrubbed before writing; a batch the store answers but refuses for
//! some other content is written row by row, and only the rows it refuses are dropped and
//! counted, so one bad record never holds back the others. This module does not decide what is
//! recorded: the MCP method handlers and the feedback API do.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::configuration::RecorderSettings;
use crate::store::tool_calls::{self, NewToolCall};
use crate::store::{AnyConnection, Pool};

/// A row that a recorder writes.
pub trait Record: Send + 'static + Sized {
    /// What the log calls these records.
    const WHAT: &'static str;
    /// Inserts `rows` in one transaction.
    fn insert(conn: &mut AnyConnection, rows: &[Self]) -> diesel::QueryResult<usize>;
    /// Its text, made fit for every store ([`scrub`] on each field).
    fn scrub(&mut self);
}

/// `text` with each NUL (which PostgreSQL's text cannot hold) written as U+FFFD.
pub fn scrub(text: &mut String) {
    if text.contains('\0') {
        *text = text.replace('\0', "\u{FFFD}");
    }
}

impl Record for NewToolCall {
    const WHAT: &'static str = "call records";

    fn insert(conn: &mut AnyConnection, rows: &[Self]) -> diesel::QueryResult<usize> {
        tool_calls::insert(conn, rows)
    }

    fn scrub(&mut self) {
        scrub(&mut self.connector);
        scrub(&mut self.tool);
        scrub(&mut self.outcome);
        self.session_id.iter_mut().for_each(scrub);
        self.error_kind.iter_mut().for_each(scrub);
    }
}

/// The recorder of tool calls.
pub type CallRecorder = Recorder<NewToolCall>;

/// Hands records to the writer task; cheap to clone.
pub struct Recorder<T: Record> {
    sender: mpsc::Sender<T>,
    counters: Arc<Counters>,
}

impl<T: Record> Clone for Recorder<T> {
    fn clone(&self) -> Self {
        Recorder {
            sender: self.sender.clone(),
            counters: self.counters.clone(),
        }
    }
}

/// What the recorder has done so far.
#[derive(Default)]
struct Counters {
    dropped: AtomicU64,
    written: AtomicU64,
}

/// Ends the writer tasks once every record handed over before has been written (or given up).
pub struct RecorderTask {
    handles: Vec<tokio::task::JoinHandle<()>>,
}

impl RecorderTask {
    /// This task and `other`, finished together.
    pub fn and(mut self, other: RecorderTask) -> RecorderTask {
        self.handles.extend(other.handles);
        self
    }

    /// Waits until the writers have written what they hold, at most `deadline` in all.
    pub async fn finish(self, deadline: Duration) {
        let all = futures_util::future::join_all(self.handles);
        if tokio::time::timeout(deadline, all).await.is_err() {
            log::warn!("a recorder did not finish writing within {deadline:?}; records lost");
        }
    }
}

impl<T: Record> Recorder<T> {
    /// Starts the writer task on the current runtime.
    pub fn start(pool: Pool, settings: &RecorderSettings) -> (Recorder<T>, RecorderTask) {
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
        let handles = vec![handle];
        (Recorder { sender, counters }, RecorderTask { handles })
    }

    /// Queues one record; never waits. Drops and counts it when the buffer is full.
    pub fn record(&self, record: T) {
        if self.sender.try_send(record).is_err() {
            let before = self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            if before.is_power_of_two() || before == 0 {
                log::warn!("{} buffer is full; {} dropped so far", T::WHAT, before + 1);
            }
        }
    }

    /// Records dropped because the buffer was full or the store refused them.
    pub fn dropped(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    /// Records written to the store.
    pub fn written(&self) -> u64 {
        self.counters.written.load(Ordering::Relaxed)
    }
}

/// The writer task's state.
struct Writer<T: Record> {
    pool: Pool,
    receiver: mpsc::Receiver<T>,
    batch_size: usize,
    flush_interval: Duration,
    max_retry_interval: Duration,
    counters: Arc<Counters>,
}

impl<T: Record> Writer<T> {
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

    /// Writes `batch` until it is written or refused; returns the emptied vector for reuse.
    async fn write(&self, mut batch: Vec<T>) -> Vec<T> {
        batch.iter_mut().for_each(T::scrub);
        let mut wait = Duration::from_millis(100);
        let mut failing = false;
        loop {
            let pool = self.pool.clone();
            let outcome = tokio::task::spawn_blocking(move || {
                let result = pool.get().map_err(|e| e.to_string()).and_then(|mut conn| {
                    match T::insert(&mut conn, &batch) {
                        Ok(written) => Ok(Written::All(written)),
                        Err(e) if refused(&e, &mut conn) => Ok(one_by_one(&mut conn, &mut batch)),
                        Err(e) => Err(e.to_string()),
                    }
                });
                (result, batch)
            })
            .await;
            let Ok((result, returned)) = outcome else {
                log::error!("{} writer panicked; batch lost", T::WHAT);
                return Vec::with_capacity(self.batch_size);
            };
            batch = returned;
            let err = match result {
                Ok(Written::All(written)) => {
                    if failing {
                        log::info!("{} are written again", T::WHAT);
                    }
                    self.counters
                        .written
                        .fetch_add(written as u64, Ordering::Relaxed);
                    batch.clear();
                    return batch;
                }
                Ok(Written::Part { written, refused }) => {
                    self.counters
                        .written
                        .fetch_add(written as u64, Ordering::Relaxed);
                    self.counters
                        .dropped
                        .fetch_add(refused.len() as u64, Ordering::Relaxed);
                    for reason in &refused {
                        log::warn!(
                            "one of the {} was refused by the store and dropped: {reason}",
                            T::WHAT
                        );
                    }
                    if batch.is_empty() {
                        return batch;
                    }
                    "the store stopped answering".to_string()
                }
                Err(err) => err,
            };
            if !failing {
                log::warn!(
                    "{} not written ({} held): {err}; retrying",
                    T::WHAT,
                    batch.len()
                );
                failing = true;
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(self.max_retry_interval);
        }
    }
}

/// What a batch's write did.
enum Written {
    /// Every row went in, in one transaction.
    All(usize),
    /// Row by row: `written` went in and the store refused the rows of `refused` (their
    /// reasons); those left in the batch await the store.
    Part {
        written: usize,
        refused: Vec<String>,
    },
}

/// Words of the store's errors that are about the store's state, not the rows: a lock, a
/// timeout, a deadlock, a full disk, a shutdown. Such an error is waited out, never dropped.
const PASSING: [&str; 9] = [
    "lock", "busy", "timeout", "deadlock", "serializ", "terminat", "shut", "space", "memory",
];

/// Whether `err` is the store refusing what the rows hold (a constraint, or a value it cannot
/// take) while it still answers on `conn`, rather than the store being away or busy.
fn refused(err: &diesel::result::Error, conn: &mut AnyConnection) -> bool {
    use diesel::result::{DatabaseErrorKind as Kind, Error};
    use diesel::RunQueryDsl;
    let about_rows = match err {
        Error::DatabaseError(
            Kind::UniqueViolation
            | Kind::ForeignKeyViolation
            | Kind::NotNullViolation
            | Kind::CheckViolation,
            _,
        ) => true,
        Error::DatabaseError(Kind::Unknown, info) => {
            let message = info.message().to_ascii_lowercase();
            !PASSING.iter().any(|word| message.contains(word))
        }
        _ => false,
    };
    about_rows && diesel::sql_query("SELECT 1").execute(conn).is_ok()
}

/// Writes `batch` a row at a time, dropping each row the store refuses while it answers; stops
/// at the first row it cannot write because the store no longer answers, leaving that row and
/// the rest in `batch`.
fn one_by_one<T: Record>(conn: &mut AnyConnection, batch: &mut Vec<T>) -> Written {
    let (mut written, mut refused) = (0, Vec::new());
    let mut done = 0;
    for row in batch.iter() {
        match T::insert(conn, std::slice::from_ref(row)) {
            Ok(n) => written += n,
            Err(e) if self::refused(&e, conn) => refused.push(e.to_string()),
            Err(_) => break,
        }
        done += 1;
    }
    batch.drain(..done);
    Written::Part { written, refused }
}
