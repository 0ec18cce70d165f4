//! [`EmbeddedStore`]: the store in one redb file (`doppel.redb`) under a data directory.
//!
//! redb is synchronous, so every operation runs on tokio's blocking pool. Every write
//! method is one redb write transaction committed with `Durability::Immediate` (fsync)
//! before it returns: an acknowledged write survives `kill -9`. The one exception is
//! [`append_impressions`](crate::Store::append_impressions): committed without an fsync,
//! visible at once, and durable with the next durable commit or [`flush`](crate::Store::flush)
//! (which a node runs every 100 ms while impressions are pending). redb serialises writers,
//! readers see the last committed snapshot.
//!
//! Layout: the transaction helpers live here; one file per concept — `profiles`
//! (customers, items), `events` (rows encoded by `impression_runs`; batch rows of
//! recorded impressions found per customer through `batch_owners`), `erasure`,
//! `vectors`, `versions` — each with sync
//! functions over a `&Database`; `store_impl` wires them into [`Store`](crate::Store);
//! `reopen` holds the database handle and replaces it after an I/O error (redb refuses
//! every operation on a handle once one I/O error happened).

mod audit_log;
mod batch_owners;
mod contact_policy;
mod erasure;
mod event_checkpoints;
mod events;
mod experiments;
mod impression_runs;
mod profiles;
mod reopen;
mod retention;
mod saved_audiences;
mod store_impl;
mod vectors;
mod versions;

use std::fs::OpenOptions;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use redb::backends::FileBackend;
use redb::{
    Database, Durability, ReadTransaction, ReadableDatabase, StorageBackend, WriteTransaction,
};

use crate::error::{Error, Result};
use crate::keys;
use batch_owners::BatchOwners;
use reopen::DbHandle;

/// File name of the database inside the data directory.
pub const DB_FILE_NAME: &str = "doppel.redb";

/// The durable embedded store. Cheap to clone (shares one database handle).
///
/// After an I/O error (a full disk) the store fails fast, reports itself unhealthy
/// ([`Store::health`](crate::Store::health)) and reopens its database once it can: see
/// `reopen`.
#[derive(Clone)]
pub struct EmbeddedStore {
    handle: Arc<DbHandle>,
    /// Set by a lazy (non-durable) commit, cleared by the durable commit of `flush`.
    unflushed: Arc<AtomicBool>,
    /// The impression batch rows of each customer (kept out of `customer_events`), locked
    /// briefly; reloaded with every (re)open of the database.
    batch_owners: Arc<parking_lot::Mutex<BatchOwners>>,
    /// Held across an impression append (its commit and its note in `batch_owners`) and
    /// across an erasure, so an erasure never misses a batch committed but not yet noted.
    batch_writer: Arc<parking_lot::Mutex<()>>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("path", &self.path())
            .finish_non_exhaustive()
    }
}

impl EmbeddedStore {
    /// Opens (creating if needed) `dir` and the database `dir/doppel.redb`, and creates any
    /// missing table. Blocking: call it before serving or from a blocking context.
    pub fn open(dir: &Path) -> Result<Self> {
        Self::open_with_backend(dir, |path| {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)?;
            Ok(FileBackend::new(file)?)
        })
    }

    /// [`open`](Self::open) on the storage backend that `backend` makes for the database
    /// file. `backend` is called again each time the store reopens its database after an
    /// I/O error; tests use it to put a disk that fails on demand under the store.
    pub fn open_with_backend<B, F>(dir: &Path, backend: F) -> Result<Self>
    where
        B: StorageBackend,
        F: Fn(&Path) -> Result<B> + Send + Sync + 'static,
    {
        std::fs::create_dir_all(dir).map_err(|e| Error::from(e).at_path(dir))?;
        let path = dir.join(DB_FILE_NAME);
        let file = path.clone();
        let batch_owners = Arc::new(parking_lot::Mutex::new(BatchOwners::default()));
        let owners = Arc::clone(&batch_owners);
        let open = move || -> Result<Database> {
            let db = redb::Builder::new().create_with_backend(backend(&file)?)?;
            create_tables(&db)?;
            // A reopen after an I/O error can lose lazily committed batches (and reuse
            // their numbers): the owners are read again from what the file holds. No
            // operation runs on the database meanwhile, so none holds the lock.
            *owners.lock() = BatchOwners::load(&db)?;
            Ok(db)
        };
        let handle = Arc::new(DbHandle::open(path, Box::new(open))?);
        tracing::info!(store.path = %handle.path().display(), "embedded store opened");
        Ok(Self {
            handle,
            unflushed: Arc::new(AtomicBool::new(false)),
            batch_owners,
            batch_writer: Arc::new(parking_lot::Mutex::new(())),
        })
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        self.handle.path()
    }

    /// Runs `f` on the blocking pool with the database.
    async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T> + Send + 'static,
    {
        let handle = Arc::clone(&self.handle);
        tokio::task::spawn_blocking(move || handle.call(f)).await?
    }
}

/// Creates any missing table.
fn create_tables(db: &Database) -> Result<()> {
    write(db, |txn| {
        txn.open_table(keys::CUSTOMERS)?;
        txn.open_table(keys::ITEMS)?;
        txn.open_table(keys::EVENTS)?;
        txn.open_table(keys::CUSTOMER_EVENTS)?;
        txn.open_table(keys::CUSTOMER_EVENT_IDS)?;
        txn.open_table(keys::IMPRESSION_BATCHES)?;
        txn.open_table(keys::ERASED)?;
        txn.open_table(keys::VECTORS)?;
        txn.open_table(keys::VECTOR_VERSIONS)?;
        txn.open_table(keys::VERSIONS)?;
        txn.open_table(keys::COUNTERS)?;
        txn.open_table(keys::SETTINGS)?;
        txn.open_table(keys::POLICIES)?;
        txn.open_table(keys::CONTEXT_MODELS)?;
        txn.open_table(keys::AUDIT_EVENTS)?;
        txn.open_table(keys::EVENT_CHECKPOINTS)?;
        txn.open_table(keys::EVENT_CHECKPOINT_CUSTOMERS)?;
        txn.open_table(keys::SAVED_AUDIENCES)?;
        txn.open_table(keys::SAVED_AUDIENCE_QUERIES)?;
        txn.open_table(keys::SAVED_AUDIENCE_MEMBERS)?;
        txn.open_table(keys::SAVED_AUDIENCE_RANKS)?;
        Ok(())
    })
}

/// Runs `f` in one write transaction and commits it durably; an error aborts it.
pub(crate) fn write<T>(db: &Database, f: impl FnOnce(&WriteTransaction) -> Result<T>) -> Result<T> {
    write_with(db, Durability::Immediate, f)
}

/// [`write`] with another durability: `Durability::None` commits are visible at once but
/// reach the disk only with the next durable commit (see [`EmbeddedStore::flush`]).
pub(crate) fn write_with<T>(
    db: &Database,
    durability: Durability,
    f: impl FnOnce(&WriteTransaction) -> Result<T>,
) -> Result<T> {
    let mut txn = db.begin_write()?;
    txn.set_durability(durability)?;
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
    // The one clock (doppel_types::clock), as the unsigned ms the store records.
    u64::try_from(doppel_types::clock::now_ms()).unwrap_or(0)
}
