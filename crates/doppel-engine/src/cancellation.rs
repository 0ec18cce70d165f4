//! Cancelling a long query: the caller's handler holds a [`CancelOnDrop`] guard; when the
//! caller goes away (cancelled, deadline passed, connection lost) the handler is dropped,
//! the guard flips the flag, and the scans — running on the blocking pool, out of tokio's
//! reach — see it between blocks of rows and stop.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Rows scored between two looks at the flag.
pub const CHECK_EVERY_ROWS: usize = 1_024;

/// A shared "stop now" flag; the default is never cancelled.
#[derive(Clone, Debug, Default)]
pub struct Cancellation(Arc<AtomicBool>);

impl Cancellation {
    /// A fresh flag.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every holder to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// True once [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// A guard that cancels when dropped (hold it in the caller's future).
    pub fn guard(&self) -> CancelOnDrop {
        CancelOnDrop(self.clone())
    }
}

/// Cancels its flag when dropped.
#[derive(Debug)]
pub struct CancelOnDrop(Cancellation);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}
