//! [`EmbeddedStore`]: the store in one redb file (`doppel.redb`) under a data directory.
//!
//! redb is synchronous, so every operation runs on tokio's blocking pool. Every write
//! method is one redb write transaction committed with `Durability::Immediate` (fsync)
//! before it returns: an acknowledged write survives `kill -9`. redb serialises writers,
//! readers see the last committed snapshot.
//!
//! Layout: the transaction helpers live here; one file per concept — `profiles`
//! (customers, items), `events`, `erasure`, `vectors`, `versions` — each with sync
//! functions over a `&Database`; `store_impl` wires them into [`Store`](crate::Store).

mod erasure;
mod events;
mod profiles;
mod store_impl;
mod vectors;
mod versions;

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, Durability, ReadTransaction, ReadableDatabase, WriteTransaction};

use crate::error::Result;
use crate::keys;

/// File name of the database inside the data directory.
pub const DB_FILE_NAME: &str = "doppel.redb";

/// The durable embedded store. Cheap to clone (shares one database handle).
#[derive(Clone, Debug)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    path: PathBuf,
}

impl EmbeddedStore {
    /// Opens (creating if needed) `dir` and the database `dir/doppel.redb`, and creates any
    /// missing table. Blocking: call it before serving or from a blocking context.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(DB_FILE_NAME);
        let db = Database::create(&path)?;
        write(&db, |txn| {
            txn.open_table(keys::CUSTOMERS)?;
            txn.open_table(keys::ITEMS)?;
            txn.open_table(keys::EVENTS)?;
            txn.open_table(keys::CUSTOMER_EVENTS)?;
            txn.open_table(keys::ERASED)?;
            txn.open_table(keys::VECTORS)?;
            txn.open_table(keys::VECTOR_VERSIONS)?;
            txn.open_table(keys::VERSIONS)?;
            txn.open_table(keys::COUNTERS)?;
            txn.open_table(keys::SETTINGS)?;
            Ok(())
        })?;
        tracing::info!(store.path = %path.display(), "embedded store opened");
        Ok(Self {
            db: Arc::new(db),
            path,
        })
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the blocking pool with the database.
    async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || f(&db)).await?
    }
}

/// Runs `f` in one write transaction and commits it durably; an error aborts it.
pub(crate) fn write<T>(db: &Database, f: impl FnOnce(&WriteTransaction) -> Result<T>) -> Result<T> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    let out = f(&txn)?;
    txn.commit()?;
    Ok(out)
}

/// Runs `f` in one read transaction (a consistent snapshot).
pub(crate) fn read<T>(db: &Database, f: impl FnOnce(&ReadTransaction) -> Result<T>) -> Result<T> {
    let txn = db.begin_read()?;
    f(&txn)
}

/// The range bound "strictly after `after`", or everything.
pub(crate) fn after_bound(after: Option<&str>) -> Bound<&str> {
    after.map_or(Bound::Unbounded, Bound::Excluded)
}

/// Current time in ms since the Unix epoch (0 if the clock is before it).
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
