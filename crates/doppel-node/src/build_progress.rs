//! Progress of one version's index build, readable while it runs.

use std::sync::atomic::{AtomicU64, Ordering};

/// Points indexed of the total, updated by the build.
#[derive(Debug, Default)]
pub struct BuildProgress {
    total: AtomicU64,
    done: AtomicU64,
}

impl BuildProgress {
    /// `(done, total)` so far.
    pub fn get(&self) -> (u64, u64) {
        (
            self.done.load(Ordering::Relaxed),
            self.total.load(Ordering::Relaxed),
        )
    }
}

impl doppel_index::Progress for BuildProgress {
    fn set_total(&self, total: u64) {
        self.total.store(total, Ordering::Relaxed);
    }
    fn inc(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
    }
}
