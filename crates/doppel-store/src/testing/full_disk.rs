//! A mock of a full data disk: a redb storage backend over the real database file that
//! fails every write, resize and fsync with `ENOSPC` while its [`FullDisk`] switch is on.
//!
//! Only the disk is mocked. Filling a real filesystem needs root (a loop device or a small
//! tmpfs mount), which tests here do not have; everything above the backend — redb, the
//! store's poison and reopen, the gRPC edge — is the real code.
//!
//! ```no_run
//! # fn main() -> doppel_store::Result<()> {
//! use doppel_store::testing::full_disk::FullDisk;
//! let disk = FullDisk::new();
//! let store = disk.open_store(std::path::Path::new("/tmp/data"))?;
//! disk.set_full(true); // writes now fail with Error::DiskFull
//! disk.set_full(false); // and succeed again, once the store has reopened itself
//! # Ok(()) }
//! ```

use std::fs::OpenOptions;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use redb::StorageBackend;
use redb::backends::FileBackend;

use crate::EmbeddedStore;
use crate::error::Result;

/// `ENOSPC` ("No space left on device") on Linux and macOS.
const ENOSPC: i32 = 28;

/// The switch shared by a test and every backend it made: on means the disk is full.
#[derive(Clone, Debug, Default)]
pub struct FullDisk {
    full: Arc<AtomicBool>,
}

impl FullDisk {
    /// A disk with room.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fills the disk (`true`) or frees space (`false`).
    pub fn set_full(&self, full: bool) {
        self.full.store(full, Ordering::SeqCst);
    }

    /// Is the disk full?
    pub fn is_full(&self) -> bool {
        self.full.load(Ordering::SeqCst)
    }

    /// The embedded store in `dir` on this disk (each reopen gets a backend on it too).
    pub fn open_store(&self, dir: &Path) -> Result<EmbeddedStore> {
        let disk = self.clone();
        EmbeddedStore::open_with_backend(dir, move |path| disk.backend(path))
    }

    /// A backend over the database file at `path` on this disk.
    pub fn backend(&self, path: &Path) -> Result<FullDiskBackend> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        Ok(FullDiskBackend {
            file: FileBackend::new(file)?,
            disk: self.clone(),
        })
    }

    fn check(&self) -> io::Result<()> {
        if self.is_full() {
            Err(io::Error::from_raw_os_error(ENOSPC))
        } else {
            Ok(())
        }
    }
}

/// redb's [`FileBackend`] with writes, resizes and fsyncs failing while the disk is full.
/// Reads always work.
#[derive(Debug)]
pub struct FullDiskBackend {
    file: FileBackend,
    disk: FullDisk,
}

impl StorageBackend for FullDiskBackend {
    fn len(&self) -> io::Result<u64> {
        self.file.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.file.read(offset, out)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.disk.check()?;
        self.file.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.disk.check()?;
        self.file.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.disk.check()?;
        self.file.write(offset, data)
    }

    fn close(&self) -> io::Result<()> {
        self.file.close()
    }
}
