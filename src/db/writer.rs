//! Group commit for SQLite: one writer thread with its own connection runs the busiest writes
//! (cart, checkout) for all requests, several per transaction.
//!
//! With `synchronous=FULL` every SQLite commit is an `fsync` of the WAL, and every commit
//! writes each page it touched to the WAL again: an order touches ~25 pages (the orders table
//! and its indexes, lines, events, the checkout key, the cart, the SKU), most of them the same
//! right-most leaves as the order before. The writer takes every write waiting in its queue
//! (up to [`MAX_BATCH`]) and runs them in one `BEGIN IMMEDIATE … COMMIT`: one `fsync` and one
//! copy of each shared page per batch instead of per write. Batches form by themselves under
//! load (requests queue while the previous batch commits) and a lone request is a batch of one,
//! so nothing waits for a timer.
//!
//! Each job's own [`write_tx`](super::write_tx) becomes a savepoint inside the batch, so a job
//! that fails (a sold-out SKU rolls a checkout back) undoes only its own writes. A job's
//! result is handed back only after the batch's COMMIT returned: a request is never told
//! "done" for a write that a crash could still lose. If the COMMIT fails, every job of the
//! batch gets the error.
//!
//! The writer's connection is also the only one that writes those tables most of the time, so
//! its page cache stays warm (SQLite drops a connection's cache whenever another connection
//! wrote the file). PostgreSQL has no writer: [`crate::web::db_write`] runs the job on the
//! pool there, where concurrent transactions already commit in parallel.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;

use super::{write_tx, DbConn, Manager};
use crate::error::AppError;

/// Most jobs in one transaction. Under 16 concurrent buyers a batch holds ~5–16; the cap bounds
/// how long one transaction holds the write lock.
pub const MAX_BATCH: usize = 64;

/// Hands the COMMIT's outcome to the waiting request, with the job's own result.
type Deliver = Box<dyn FnOnce(Result<(), &AppError>) + Send>;
type Job = Box<dyn FnOnce(&mut DbConn) -> Deliver + Send>;

/// The queue into the writer thread. The thread ends when this is dropped.
pub struct Writer {
    queue: mpsc::Sender<Job>,
}

impl Writer {
    /// Opens the writer's connection and starts its thread.
    pub fn start(manager: Manager) -> Result<Writer, AppError> {
        let conn = manager
            .establish()
            .map_err(|e| AppError::Internal(format!("cannot open the writer connection: {e}")))?;
        let (queue, jobs) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(conn, manager, jobs))
            .map_err(AppError::internal)?;
        Ok(Writer { queue })
    }

    /// Runs `f` on the writer's connection inside a batch; returns its result once the batch
    /// has committed.
    pub async fn run<T, F>(&self, f: F) -> Result<T, AppError>
    where
        F: FnOnce(&mut DbConn) -> Result<T, AppError> + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |c| {
            let result = f(c);
            Box::new(move |commit: Result<(), &AppError>| {
                let outcome = match commit {
                    Ok(()) => result,
                    Err(e) => Err(AppError::Internal(format!("batch commit failed: {e}"))),
                };
                let _ = tx.send(outcome);
            })
        });
        self.queue
            .send(job)
            .map_err(|_| AppError::Internal("the writer thread has stopped".into()))?;
        rx.await
            .map_err(|_| AppError::Internal("the writer dropped a job (it panicked)".into()))?
    }
}

fn run(mut conn: DbConn, manager: Manager, jobs: mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut delivers: Vec<Deliver> = Vec::with_capacity(batch.len());
        let mut panicked = false;
        let outcome = write_tx(&mut conn, |c| {
            for job in batch {
                match catch_unwind(AssertUnwindSafe(|| job(c))) {
                    Ok(deliver) => delivers.push(deliver),
                    Err(_) => {
                        panicked = true;
                        return Err(AppError::Internal("a write job panicked".into()));
                    }
                }
            }
            Ok(())
        });
        if let Err(e) = &outcome {
            tracing::error!(error = %e, jobs = delivers.len(), "write batch rolled back");
        }
        for deliver in delivers {
            deliver(outcome.as_ref().map(|_| ()));
        }
        // A panic may have left the connection mid-savepoint: start again with a fresh one.
        if panicked
            || crate::per_backend!(&mut conn, |c| diesel::r2d2::R2D2Connection::is_broken(c))
        {
            match manager.establish() {
                Ok(fresh) => conn = fresh,
                Err(e) => {
                    tracing::error!(error = %e, "cannot reopen the writer connection");
                    std::thread::sleep(std::time::Duration::from_millis(200));
                }
            }
        }
    }
}
