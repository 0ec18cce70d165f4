//! [`DbHandle`]: the embedded store's database handle, swapped for a fresh one after an
//! I/O error.
//!
//! redb poisons a `Database` after any I/O error of its file (a full disk, a failed fsync):
//! from then on every read and write fails with "Previous I/O error occurred", even once
//! the disk has room again. Its commit protocol keeps the last committed transaction
//! intact, so the cure is to drop the handle and open the file again, which repairs it.
//!
//! ```text
//!            I/O error on an operation: log ERROR, health false
//!   Open ─────────────────────────────────────────────────────► Poisoned { fault }
//!    ▲                                                              │   ▲
//!    │ reopened: health true                     reopen due: next   │   │ failed:
//!    │                                           operation or the   │   │ backoff doubles
//!    └──────────────────────────────────────── background task ─────┴───┘
//! ```
//! While poisoned, operations fail fast with the fault that poisoned the handle (or the
//! error of the last reopen attempt), [`Error::DiskFull`] for a full disk. The old handle
//! holds the file's lock until its last in-flight operation lets go of it, so a reopen
//! waits for that. Reopening writes the file's header, so on a full disk it fails and
//! reads fail too until space is freed.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use redb::Database;
use tokio::sync::watch;

use crate::error::{Error, Result};

/// Wait before the second reopen attempt; doubled after each failed attempt.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// Longest wait between reopen attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How soon to look again when the poisoned handle is still in use.
const OLD_HANDLE_BUSY: Duration = Duration::from_millis(5);

/// Opens the database file (creating it if needed) on a fresh storage backend.
pub(super) type OpenDb = dyn Fn() -> Result<Database> + Send + Sync;

/// The current database, or why there is none.
pub(super) struct DbHandle {
    path: PathBuf,
    open: Box<OpenDb>,
    state: Mutex<State>,
    /// Held by whoever is reopening, so there is one attempt at a time.
    reopening: Mutex<()>,
    /// `true` while the database is open and not poisoned.
    healthy: watch::Sender<bool>,
}

enum State {
    Open(Arc<Database>),
    Poisoned(Poison),
}

struct Poison {
    /// What operations fail with until the reopen.
    fault: Error,
    /// The poisoned handle, until a reopen drops it: it holds the file's lock, so it
    /// must be gone before the file can be opened again.
    old: Option<Arc<Database>>,
    failed_attempts: u32,
    next_attempt: Instant,
}

impl DbHandle {
    /// Opens the database with `open`; `open` is called again for every reopen.
    pub(super) fn open(path: PathBuf, open: Box<OpenDb>) -> Result<Self> {
        let db = open().map_err(|e| e.at_path(&path))?;
        Ok(Self {
            path,
            open,
            state: Mutex::new(State::Open(Arc::new(db))),
            reopening: Mutex::new(()),
            healthy: watch::Sender::new(true),
        })
    }

    /// Path of the database file.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// `true` while the database is open and not poisoned.
    pub(super) fn health(&self) -> watch::Receiver<bool> {
        self.healthy.subscribe()
    }

    /// Runs `f` on the current database (blocking). An I/O error poisons the handle.
    pub(super) fn call<T>(self: &Arc<Self>, f: impl FnOnce(&Database) -> Result<T>) -> Result<T> {
        let db = self.current()?;
        match f(&db) {
            Err(e) if e.is_io() => Err(self.poison(&db, e.at_path(&self.path))),
            other => other,
        }
    }

    /// The open database; reopens it if it is poisoned and an attempt is due.
    fn current(&self) -> Result<Arc<Database>> {
        match &*self.state.lock() {
            State::Open(db) => return Ok(Arc::clone(db)),
            State::Poisoned(p) if Instant::now() < p.next_attempt => return Err(p.fault.clone()),
            State::Poisoned(_) => {}
        }
        self.try_reopen()
    }

    /// Marks `db` poisoned by `error` (once: later errors of the same handle return the
    /// first fault) and starts retrying in the background. Returns what the caller fails
    /// with.
    fn poison(self: &Arc<Self>, db: &Arc<Database>, error: Error) -> Error {
        let mut state = self.state.lock();
        match &*state {
            State::Open(current) if Arc::ptr_eq(current, db) => {}
            // Another operation poisoned it first (a reopen needs every operation on the
            // old handle to have ended, so this is the same handle).
            State::Poisoned(p) => return p.fault.clone(),
            // Cannot happen for the same reason; keep the caller's error.
            State::Open(_) => return error,
        }
        tracing::error!(
            store.path = %self.path.display(),
            error = %error,
            "embedded store I/O error: failing operations and reopening the database"
        );
        *state = State::Poisoned(Poison {
            fault: error.clone(),
            old: Some(Arc::clone(db)),
            failed_attempts: 0,
            next_attempt: Instant::now(),
        });
        drop(state);
        self.healthy.send_replace(false);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(retry_in_background(Arc::downgrade(self)));
        }
        error
    }

    /// One reopen attempt (blocking); the database if it is open afterwards.
    fn try_reopen(&self) -> Result<Arc<Database>> {
        let Some(_attempt) = self.reopening.try_lock() else {
            return self.fault_or_open();
        };
        let old = match &mut *self.state.lock() {
            State::Open(db) => return Ok(Arc::clone(db)),
            State::Poisoned(p) => match p.old.take().map(Arc::try_unwrap) {
                Some(Err(in_use)) => {
                    p.old = Some(in_use);
                    p.next_attempt = Instant::now() + OLD_HANDLE_BUSY;
                    return Err(p.fault.clone());
                }
                Some(Ok(old)) => Some(old),
                None => None,
            },
        };
        // Not under the state lock: closing and opening do I/O, and opening repairs the
        // file, which reads all of it. The old handle is dropped first: it holds the lock.
        drop(old);
        let opened = (self.open)();
        let mut state = self.state.lock();
        let State::Poisoned(p) = &mut *state else {
            unreachable!("only the holder of `reopening` leaves the poisoned state");
        };
        match opened {
            Ok(db) => {
                let db = Arc::new(db);
                tracing::info!(
                    store.path = %self.path.display(),
                    attempts = p.failed_attempts + 1,
                    "embedded store reopened after an I/O error"
                );
                *state = State::Open(Arc::clone(&db));
                drop(state);
                self.healthy.send_replace(true);
                Ok(db)
            }
            Err(e) => {
                p.fault = e.at_path(&self.path);
                p.failed_attempts += 1;
                p.next_attempt = Instant::now() + backoff(p.failed_attempts);
                tracing::debug!(
                    store.path = %self.path.display(),
                    error = %p.fault,
                    attempts = p.failed_attempts,
                    "embedded store could not be reopened yet"
                );
                Err(p.fault.clone())
            }
        }
    }

    fn fault_or_open(&self) -> Result<Arc<Database>> {
        match &*self.state.lock() {
            State::Open(db) => Ok(Arc::clone(db)),
            State::Poisoned(p) => Err(p.fault.clone()),
        }
    }

    /// How long until the next reopen attempt is due; `None` once the database is open.
    fn next_attempt_in(&self) -> Option<Duration> {
        match &*self.state.lock() {
            State::Open(_) => None,
            State::Poisoned(p) => Some(p.next_attempt.saturating_duration_since(Instant::now())),
        }
    }
}

/// Wait after `failed` failed reopen attempts.
fn backoff(failed: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1 << failed.saturating_sub(1).min(16))
        .min(MAX_BACKOFF)
}

/// Reopens the database without waiting for an operation to come by: with health
/// NOT_SERVING, traffic may not come back until the store does. Holds the store weakly, so
/// dropping the store ends it.
async fn retry_in_background(handle: Weak<DbHandle>) {
    loop {
        let Some(wait) = handle.upgrade().and_then(|h| h.next_attempt_in()) else {
            return;
        };
        tokio::time::sleep(wait).await;
        let Some(h) = handle.upgrade() else {
            return;
        };
        // A failed attempt set the next one's time; a panic ends the retries (the next
        // operation still tries).
        match tokio::task::spawn_blocking(move || h.try_reopen()).await {
            Ok(Ok(_)) | Err(_) => return,
            Ok(Err(_)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(backoff(1), FIRST_BACKOFF);
        assert_eq!(backoff(2), FIRST_BACKOFF * 2);
        assert_eq!(backoff(3), FIRST_BACKOFF * 4);
        assert_eq!(backoff(40), MAX_BACKOFF);
    }
}
