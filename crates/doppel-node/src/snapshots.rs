//! Version snapshots on disk, so a restarting node loads its indexes instead of building
//! them: where they live ([`SnapshotRoot`] checks every path made from a version name),
//! writing and loading them, dropping them when fold-in changes vectors, and rewriting
//! the dropped ones in the background and at shutdown.

use std::sync::Arc;

use doppel_engine::SnapshotRoot;
use doppel_types::VersionInfo;

use crate::config::DEFAULT_SNAPSHOT_REFRESH;
use crate::error::{Result, blocking};
use crate::node::Node;

/// A snapshot being read ahead (see [`Node::read_snapshot_ahead`]).
pub(crate) struct ReadAhead {
    /// The version as it was when the read began.
    info: VersionInfo,
    reading: tokio::task::JoinHandle<doppel_engine::Result<doppel_engine::ReadSnapshot>>,
}

impl Node {
    /// Where a shard node keeps its snapshot of `shard` of `version` (none without a
    /// snapshot directory, or for a name that cannot be a directory).
    pub fn shard_snapshot_path(&self, version: &str, shard: u32) -> Option<std::path::PathBuf> {
        let root = self.snapshot_root()?;
        root.shard_dir(version, shard)
            .inspect_err(|e| tracing::warn!(error = %e, "no shard snapshot path"))
            .ok()
    }

    /// Writes a shard node's snapshot of one shard (best effort: a failure is logged).
    pub async fn save_shard_snapshot(&self, version: &str, shard: u32) {
        let Some(dir) = self.shard_snapshot_path(version, shard) else {
            return;
        };
        if let Some(parent) = dir.parent()
            && let Err(e) = std::fs::create_dir_all(parent)
        {
            tracing::warn!(shard, error = %e, "shard snapshot not written");
            return;
        }
        let (engine, name) = (Arc::clone(&self.engine), version.to_owned());
        let saved =
            tokio::task::spawn_blocking(move || engine.save_shard_snapshot(&name, shard, &dir))
                .await;
        match saved {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(shard, error = %e, "shard snapshot not written"),
            Err(e) => tracing::warn!(shard, error = %e, "shard snapshot task failed"),
        }
    }

    /// Deletes every snapshot of `version` (it was garbage-collected).
    pub fn remove_snapshots(&self, version: &str) {
        if let Some(path) = self.snapshot_path(version) {
            self.remove_snapshot_dir(&path);
        }
    }

    /// Deletes a snapshot directory; [`SnapshotRoot::remove`] refuses (and this logs)
    /// anything that is not strictly below the snapshot root.
    pub fn remove_snapshot_dir(&self, path: &std::path::Path) {
        if let Some(root) = self.snapshot_root()
            && let Err(e) = root.remove(path)
        {
            tracing::error!(path = %path.display(), error = %e, "snapshot not deleted");
        }
    }

    fn snapshot_root(&self) -> Option<SnapshotRoot> {
        self.config.snapshot_dir.clone().map(SnapshotRoot::new)
    }

    /// `<snapshot dir>/<version>`, checked to be one plain directory below the root.
    fn snapshot_path(&self, version: &str) -> Option<std::path::PathBuf> {
        self.snapshot_root()?
            .version_dir(version)
            .inspect_err(|e| tracing::warn!(error = %e, "no snapshot path"))
            .ok()
    }

    /// A starting single node: begins reading the snapshot files of `info`, the active
    /// version (most of a snapshot load, and it changes nothing), while the node reads its
    /// profiles; [`Self::load_snapshot`] of that version picks it up. Anything that goes
    /// wrong here only means the load reads the files itself.
    pub(crate) fn read_snapshot_ahead(&self, info: VersionInfo) {
        let Some(path) = self.snapshot_path(&info.version) else {
            return;
        };
        if !path.exists() {
            return;
        }
        let (engine, read_info) = (Arc::clone(&self.engine), info.clone());
        let reading = tokio::task::spawn_blocking(move || engine.read_snapshot(read_info, &path));
        *self.snapshot_read_ahead.lock() = Some(ReadAhead { info, reading });
    }

    /// Loads `info` from its snapshot when there is a good one; a damaged or mismatched
    /// snapshot is logged, deleted, and the caller rebuilds from the store.
    pub(crate) async fn load_snapshot(&self, info: &VersionInfo) -> Result<bool> {
        let Some(path) = self.snapshot_path(&info.version) else {
            return Ok(false);
        };
        // Read ahead at start-up, for this very version as it is now: used as it is. Taken
        // only by this version's load (a resumed build's load must not discard it).
        let ahead = self
            .snapshot_read_ahead
            .lock()
            .take_if(|a| a.info.version == info.version);
        let read = match ahead {
            Some(a) if a.info == *info => match a.reading.await {
                Ok(read) => Some(read),
                Err(e) => return Err(crate::error::Error::task("snapshot read", e)),
            },
            _ => None,
        };
        if read.is_none() && !path.exists() {
            return Ok(false);
        }
        let erased = self.store.erased_customers().await?;
        let (engine, info, dir) = (Arc::clone(&self.engine), info.clone(), path.clone());
        let loaded = blocking("snapshot load", move || match read {
            Some(read) => read.and_then(|read| engine.install_snapshot(read, &erased)),
            None => engine.load_snapshot(info, &dir, &erased),
        })
        .await?;
        match loaded {
            Ok(summary) => {
                tracing::info!(
                    model.version = %summary.version,
                    customers = summary.customers,
                    seconds = summary.build_seconds,
                    "version loaded from its snapshot"
                );
                Ok(true)
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "snapshot refused; rebuilding from the store");
                self.remove_snapshot_dir(&path);
                Ok(false)
            }
        }
    }

    /// Writes `version`'s snapshot (best effort: a failure is logged, serving goes on).
    pub(crate) async fn save_snapshot(&self, version: &str) {
        let Some(path) = self.snapshot_path(version) else {
            return;
        };
        let (engine, name) = (Arc::clone(&self.engine), version.to_owned());
        let saved = tokio::task::spawn_blocking(move || engine.save_snapshot(&name, &path)).await;
        match saved {
            Ok(Ok(())) => tracing::info!(model.version = version, "snapshot written"),
            Ok(Err(e)) => {
                tracing::warn!(model.version = version, error = %e, "snapshot not written")
            }
            Err(e) => tracing::warn!(model.version = version, error = %e, "snapshot task failed"),
        }
    }

    /// Drops `version`'s snapshot: its vectors changed (fold-in), so a start before the
    /// next refresh rebuilds from the store; [`Node::refresh_snapshots`] writes a fresh
    /// one. (A shard node's shard snapshots are patched from the store when loaded, so
    /// they stay.)
    pub fn invalidate_snapshot(&self, version: &str) {
        if !self.placement.serves_everyone() {
            return;
        }
        let fold_ins = {
            let mut stale = self.stale_snapshots.lock();
            let n = stale.entry(version.to_owned()).or_default();
            *n += 1;
            *n
        };
        // Already stale: the directory is gone, or a refresh is writing it and will drop
        // it when it sees this fold-in. No disk work on every RecordEvents.
        if fold_ins > 1 {
            return;
        }
        if let Some(path) = self.snapshot_path(version) {
            self.remove_snapshot_dir(&path);
        }
    }

    /// Writes again the snapshots fold-in dropped, of versions still loaded. A fold-in
    /// during the write makes it stale again: it is dropped and retried next time.
    pub async fn refresh_snapshots(&self) {
        let stale: Vec<(String, u64)> = self
            .stale_snapshots
            .lock()
            .iter()
            .map(|(v, n)| (v.clone(), *n))
            .collect();
        let loaded = self.engine.loaded_versions();
        for (version, seen) in stale {
            if !loaded.contains(&version) {
                self.stale_snapshots.lock().remove(&version);
                continue;
            }
            let _one_load = self.loading.lock().await;
            self.save_snapshot(&version).await;
            let mut stale = self.stale_snapshots.lock();
            if stale.get(&version) == Some(&seen) {
                stale.remove(&version);
            } else if let Some(path) = self.snapshot_path(&version) {
                self.remove_snapshot_dir(&path);
            }
        }
    }
}

/// Rewrites stale snapshots every [`NodeConfig::snapshot_refresh`] while the node lives.
pub(crate) fn spawn_refresh(node: &Arc<Node>) {
    let every = match node.config.snapshot_refresh {
        std::time::Duration::ZERO => DEFAULT_SNAPSHOT_REFRESH,
        d => d,
    };
    node.spawn_every(every, |node| async move { node.refresh_snapshots().await });
}
