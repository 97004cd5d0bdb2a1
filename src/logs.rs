//! Buffered log output for the server.
//!
//! The server writes a line per request. Written straight to stderr, that is a `write(2)` per
//! request under stderr's lock, which two workers contend for: 3–4 % of a page's CPU in
//! profiles of the storefront and the product page. [`Buffered`] appends a line to a memory
//! buffer instead, and a background thread writes the buffer out every
//! [`Buffered::INTERVAL`] or as soon as it holds [`Buffered::SOON`] bytes. Warnings and errors
//! are written at once, after whatever is buffered, so nothing a person needs to see waits and
//! the order of lines is kept. The buffer never grows without bound: past [`Buffered::MAX`]
//! the writing thread writes it out itself. [`FlushGuard`] writes what is left when the server
//! stops.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

struct Pending {
    buf: Vec<u8>,
    closed: bool,
}

struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
    /// Held while writing out: whoever writes takes it before it takes the pending lines, so
    /// lines reach the sink in the order they were logged.
    sink: Mutex<Box<dyn Write + Send>>,
}

fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// Writes out the pending lines, then `more`.
    fn write_out(&self, more: &[u8]) -> io::Result<()> {
        let mut sink = lock(&self.sink);
        let pending = std::mem::take(&mut lock(&self.pending).buf);
        sink.write_all(&pending)?;
        sink.write_all(more)?;
        sink.flush()
    }
}

/// A `MakeWriter` for `tracing_subscriber` that buffers informational lines (see the module).
#[derive(Clone)]
pub struct Buffered {
    shared: Arc<Shared>,
}

/// Writes out what is buffered when dropped, and stops the background thread.
pub struct FlushGuard {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Buffered {
    /// The longest a line waits.
    pub const INTERVAL: Duration = Duration::from_millis(100);
    /// Buffered bytes that wake the background thread before the interval is over.
    pub const SOON: usize = 64 * 1024;
    /// Buffered bytes past which the logging thread writes them out itself.
    pub const MAX: usize = 1024 * 1024;

    /// A buffered writer over `sink` and the guard that flushes it at the end.
    pub fn new(sink: impl Write + Send + 'static) -> (Buffered, FlushGuard) {
        Self::every(Self::INTERVAL, sink)
    }

    /// [`Buffered::new`] writing out every `interval`.
    fn every(interval: Duration, sink: impl Write + Send + 'static) -> (Buffered, FlushGuard) {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending {
                buf: Vec::new(),
                closed: false,
            }),
            wake: Condvar::new(),
            sink: Mutex::new(Box::new(sink)),
        });
        let bg = shared.clone();
        let thread = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || loop {
                let closed = {
                    let p = lock(&bg.pending);
                    let (p, _) = bg
                        .wake
                        .wait_timeout_while(p, interval, |p| !p.closed && p.buf.len() < Self::SOON)
                        .unwrap_or_else(|e| e.into_inner());
                    p.closed
                };
                // Nowhere to report a failing stderr; the lines are dropped.
                let _ = bg.write_out(&[]);
                if closed {
                    return;
                }
            })
            .ok();
        (
            Buffered {
                shared: shared.clone(),
            },
            FlushGuard { shared, thread },
        )
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        lock(&self.shared.pending).closed = true;
        self.shared.wake.notify_all();
        match self.thread.take() {
            Some(t) => {
                let _ = t.join();
            }
            None => {
                let _ = self.shared.write_out(&[]);
            }
        }
    }
}

/// One event's writer: `tracing_subscriber` formats an event and writes it in one call.
pub struct LineWriter<'a> {
    shared: &'a Shared,
    urgent: bool,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        self.write_all(line)?;
        Ok(line.len())
    }

    fn write_all(&mut self, line: &[u8]) -> io::Result<()> {
        if !self.urgent {
            let mut p = lock(&self.shared.pending);
            // Nobody writes out after the guard is gone: write directly then.
            if !p.closed && p.buf.len() < Buffered::MAX {
                p.buf.extend_from_slice(line);
                if p.buf.len() >= Buffered::SOON {
                    self.shared.wake.notify_one();
                }
                return Ok(());
            }
        }
        self.shared.write_out(line)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Buffered {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> LineWriter<'a> {
        LineWriter {
            shared: &self.shared,
            urgent: true,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> LineWriter<'a> {
        LineWriter {
            shared: &self.shared,
            urgent: *meta.level() <= Level::WARN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            lock(&self.0).extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    impl Sink {
        fn text(&self) -> String {
            String::from_utf8(lock(&self.0).clone()).unwrap_or_default()
        }
    }

    fn logged_with(log: Buffered, f: impl FnOnce()) {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(log)
            .with_ansi(false)
            .without_time()
            .finish();
        tracing::subscriber::with_default(subscriber, f);
    }

    #[test]
    fn info_lines_wait_warnings_go_out_at_once_after_them_in_order() {
        // A background thread that never comes round during the test: what reaches the sink
        // was written by a warning or by the guard.
        let sink = Sink::default();
        let (log, guard) = Buffered::every(Duration::from_secs(3600), sink.clone());
        logged_with(log, || {
            tracing::info!("first");
            tracing::info!("second");
            assert!(sink.text().is_empty(), "info lines are buffered");
            tracing::warn!("third");
            let text = sink.text();
            let at = |s: &str| text.find(s).unwrap_or(usize::MAX);
            assert!(
                at("first") < at("second") && at("second") < at("third"),
                "{text}"
            );
            tracing::info!("fourth");
        });
        assert!(!sink.text().contains("fourth"));
        // The guard writes the rest when the server stops.
        drop(guard);
        assert!(sink.text().contains("fourth"));
        assert_eq!(sink.text().lines().count(), 4);
    }

    #[test]
    fn the_background_thread_writes_buffered_lines_out() {
        let sink = Sink::default();
        let (log, _guard) = Buffered::every(Duration::from_millis(10), sink.clone());
        logged_with(log, || tracing::info!("later"));
        for _ in 0..500 {
            if sink.text().contains("later") {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("not written out within 5 s");
    }
}
