//! One node's state: the durable store (source of truth) and the in-memory engine that
//! serves queries from it. Writes go to the store first and reach the engine only once
//! they are durable; at start the engine is rebuilt from the store.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use doppel_engine::{Engine, EngineConfig, LoadVersion, SnapshotRoot};
use doppel_store::Store;
use doppel_train::FoldInModel;
use doppel_types::{Entity, VersionInfo, VersionState};
use parking_lot::RwLock;
use tonic::Status;

use crate::status::{engine_status, store_status};

/// Rows fetched per store page during replay and version loads.
pub const REPLAY_PAGE: usize = 10_000;

/// How a node is set up.
#[derive(Clone, Debug, Default)]
pub struct NodeConfig {
    /// Engine settings (shards, HNSW parameters).
    pub engine: EngineConfig,
    /// Where version snapshots live (`<dir>/<version>/`); none: always build from the store.
    pub snapshot_dir: Option<std::path::PathBuf>,
    /// A shard node of a cluster: events reach the engine only through a follower of the
    /// event log (so each is applied exactly once, whichever node ingested it), and calls
    /// for customers of shards not held here are refused with UNAVAILABLE.
    pub cluster: bool,
    /// Retired or failed versions kept after an activation (0: keep all); older ones are
    /// deleted from the store.
    pub keep_versions: usize,
    /// How often a snapshot dropped by fold-in is written again (zero: the default,
    /// [`DEFAULT_SNAPSHOT_REFRESH`]).
    pub snapshot_refresh: std::time::Duration,
}

/// How often a single node rewrites snapshots that fold-in made stale.
pub const DEFAULT_SNAPSHOT_REFRESH: std::time::Duration = std::time::Duration::from_secs(30);

/// Progress of one version's index build, readable while it runs.
#[derive(Debug, Default)]
pub struct BuildProgress {
    /// Points to index.
    pub total: std::sync::atomic::AtomicU64,
    /// Points indexed so far.
    pub done: std::sync::atomic::AtomicU64,
}

impl doppel_index::Progress for BuildProgress {
    fn set_total(&self, total: u64) {
        self.total
            .store(total, std::sync::atomic::Ordering::Relaxed);
    }
    fn inc(&self, n: u64) {
        self.done.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The store and the engine of one node, shared by every service.
pub struct Node {
    /// Durable state.
    pub store: Arc<dyn Store>,
    /// In-memory serving state.
    pub engine: Arc<Engine>,
    /// Settings the node was opened with.
    pub config: NodeConfig,
    /// Fold-in state of each loaded trained version.
    pub fold_in: RwLock<HashMap<String, Arc<FoldInModel>>>,
    /// Held by the one training run allowed at a time.
    pub training: Arc<tokio::sync::Mutex<()>>,
    /// The last event sequence number the start-up replay applied.
    replayed_seq: std::sync::atomic::AtomicU64,
    /// Cluster: the last event sequence number the follower applied.
    applied_seq: tokio::sync::watch::Sender<u64>,
    /// Cluster: wakes the follower (new events were appended here).
    kick: tokio::sync::Notify,
    /// Cluster: shards being handed off; writes for their customers are refused.
    fenced: RwLock<std::collections::HashSet<u32>>,
    /// Builds in progress, by version.
    pub building: RwLock<HashMap<String, Arc<BuildProgress>>>,
    /// Cluster: shard takeovers served from a snapshot file (patched from the store).
    pub shards_from_snapshot: std::sync::atomic::AtomicU32,
    /// Cluster: shard takeovers built from the store's vectors.
    pub shards_rebuilt: std::sync::atomic::AtomicU32,
    /// One version load at a time (a router's prepare and the pointer follower may ask at
    /// once; builds also take the cores they are given one after another).
    loading: tokio::sync::Mutex<()>,
    /// Versions an import or a training run on this node is writing right now.
    writing: RwLock<std::collections::HashSet<String>>,
    /// Versions whose snapshot fold-in dropped, with a count of fold-ins since, so a
    /// rewrite that raced a fold-in is not kept.
    stale_snapshots: parking_lot::Mutex<HashMap<String, u64>>,
}

/// Held while an import or a training run writes a version; see [`Node::start_writing`].
pub struct WritingGuard<'a> {
    node: &'a Node,
    version: String,
}

impl Drop for WritingGuard<'_> {
    fn drop(&mut self) {
        self.node.writing.write().remove(&self.version);
    }
}

impl Node {
    /// Opens a node over `store`: replays profiles, items and events into a new engine and
    /// loads the active model version (if any). Returns once the node is caught up.
    pub async fn open(store: Arc<dyn Store>, config: NodeConfig) -> Result<Arc<Self>, Status> {
        let started = Instant::now();
        let engine = Arc::new(Engine::new(config.engine.clone()));
        let node = Arc::new(Self {
            store,
            engine,
            config,
            fold_in: RwLock::default(),
            training: Arc::default(),
            replayed_seq: Default::default(),
            applied_seq: tokio::sync::watch::Sender::new(0),
            kick: tokio::sync::Notify::new(),
            fenced: RwLock::default(),
            building: RwLock::default(),
            shards_from_snapshot: Default::default(),
            shards_rebuilt: Default::default(),
            loading: tokio::sync::Mutex::new(()),
            writing: RwLock::default(),
            stale_snapshots: parking_lot::Mutex::default(),
        });
        node.replay().await?;
        if !node.config.cluster && node.config.snapshot_dir.is_some() {
            spawn_snapshot_refresh(&node);
        }
        if !node.config.cluster {
            // A shard node shares the store with live nodes that may be importing or
            // training right now: only a single node knows an unfinished version is dead.
            crate::version_recovery::reconcile(&node).await?;
        }
        if let Some(active) = node.store.active_version().await.map_err(store_status)? {
            node.ensure_loaded(&active).await?;
            node.engine.activate(&active).map_err(engine_status)?;
        }
        tracing::info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            active.version = node.engine.active_version().unwrap_or_default(),
            "node caught up with the store"
        );
        Ok(node)
    }

    async fn replay(&self) -> Result<(), Status> {
        self.reload_customers().await?;
        let mut after: Option<String> = None;
        loop {
            let page = self
                .store
                .scan_items(after.as_deref(), REPLAY_PAGE)
                .await
                .map_err(store_status)?;
            page.iter().for_each(|i| self.engine.upsert_item(i));
            match page.last() {
                Some(last) if page.len() == REPLAY_PAGE => after = Some(last.id.clone()),
                _ => break,
            }
        }
        self.replay_events().await
    }

    /// Re-reads the profiles of the customers held here (a shard node picks up segment
    /// attributes another node's training wrote). A shard node holding nothing yet skips it.
    pub async fn reload_customers(&self) -> Result<(), Status> {
        if self.engine.held_shards().is_empty() {
            return Ok(());
        }
        self.reload_customers_where(&|id| self.engine.owns_customer(id))
            .await
    }

    /// Re-reads the profiles of the customers `keep` selects, in store pages.
    pub async fn reload_customers_where(
        &self,
        keep: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<(), Status> {
        let mut after: Option<String> = None;
        loop {
            let page = self
                .store
                .scan_customers(after.as_deref(), REPLAY_PAGE)
                .await
                .map_err(store_status)?;
            page.iter()
                .filter(|c| keep(&c.id))
                .for_each(|c| self.engine.upsert_customer(c));
            match page.last() {
                Some(last) if page.len() == REPLAY_PAGE => after = Some(last.id.clone()),
                _ => break,
            }
        }
        Ok(())
    }

    /// Calls `f(seq, event)` for every event of the log up to `upto` (all when `None`), in
    /// sequence order, in store pages; returns the last sequence number seen.
    pub async fn for_each_event(
        &self,
        upto: Option<u64>,
        f: &mut (dyn FnMut(u64, &doppel_types::Event) + Send),
    ) -> Result<u64, Status> {
        let mut after_seq = 0;
        loop {
            let page = self
                .store
                .scan_events(after_seq, REPLAY_PAGE)
                .await
                .map_err(store_status)?;
            for (seq, event) in &page {
                if upto.is_some_and(|u| *seq > u) {
                    return Ok(after_seq);
                }
                f(*seq, event);
                after_seq = *seq;
            }
            if page.len() < REPLAY_PAGE {
                return Ok(after_seq);
            }
        }
    }

    async fn replay_events(&self) -> Result<(), Status> {
        let last = self
            .for_each_event(None, &mut |_, event| {
                self.apply_event(event);
            })
            .await?;
        self.replayed_seq
            .fetch_max(last, std::sync::atomic::Ordering::Relaxed);
        self.mark_applied(last);
        Ok(())
    }

    /// Applies an event from the log: fully for a customer held here, only to item
    /// popularity for one held by another shard node. True when the customer is held here.
    pub fn apply_event(&self, event: &doppel_types::Event) -> bool {
        let held = self.engine.owns_customer(&event.customer_id);
        if held {
            self.engine.record_event(event);
        } else {
            self.engine.record_foreign_event(event);
        }
        held
    }

    /// The last event sequence number the start-up replay applied.
    pub fn replayed_seq(&self) -> u64 {
        self.replayed_seq.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Cluster: the follower applied every event up to `seq`.
    pub fn mark_applied(&self, seq: u64) {
        self.applied_seq.send_if_modified(|applied| {
            let advanced = seq > *applied;
            *applied = (*applied).max(seq);
            advanced
        });
    }

    /// Cluster: waits (at most `patience`) until the follower applied `seq`; false if it
    /// did not in time (the events are durable either way).
    pub async fn wait_applied(&self, seq: u64, patience: std::time::Duration) -> bool {
        self.kick.notify_one();
        let mut applied = self.applied_seq.subscribe();
        tokio::time::timeout(patience, applied.wait_for(|a| *a >= seq))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Cluster: resolves when new events were appended through this node.
    pub async fn kicked(&self) {
        self.kick.notified().await;
    }

    /// Cluster: refuses writes for the customers of `shard` (being handed off) or lets
    /// them through again.
    pub fn fence(&self, shard: u32, fenced: bool) {
        let mut set = self.fenced.write();
        if fenced {
            set.insert(shard);
        } else {
            set.remove(&shard);
        }
    }

    /// Cluster: UNAVAILABLE (the router retries on the new owner) when customer `id` is
    /// not held here, or (for writes) when its shard is being handed off.
    pub fn check_holds(&self, id: &str, write: bool) -> Result<(), Status> {
        if !self.config.cluster {
            return Ok(());
        }
        let shard = doppel_types::shard::shard_of(id, self.engine.config().shard_count);
        if !self.engine.owns_shard(shard) {
            return Err(Status::unavailable(format!(
                "shard {shard} (of customer `{id}`) is not held by this node; retry"
            )));
        }
        if write && self.fenced.read().contains(&shard) {
            return Err(Status::unavailable(format!(
                "shard {shard} (of customer `{id}`) is moving to another node; retry"
            )));
        }
        Ok(())
    }

    /// Claims `version` for an import or a training run on this node; `None` when one is
    /// already writing it. The claim ends when the guard is dropped.
    pub fn start_writing(&self, version: &str) -> Option<WritingGuard<'_>> {
        self.writing
            .write()
            .insert(version.to_owned())
            .then(|| WritingGuard {
                node: self,
                version: version.to_owned(),
            })
    }

    /// Is an import, a training run or an index build of `version` running here?
    pub fn is_working_on(&self, version: &str) -> bool {
        self.writing.read().contains(version) || self.building.read().contains_key(version)
    }

    /// Makes sure `version` is built in memory, loading its vectors from the store.
    pub async fn ensure_loaded(&self, version: &str) -> Result<VersionInfo, Status> {
        let info = self
            .store
            .get_version(version)
            .await
            .map_err(store_status)?
            .ok_or_else(|| Status::not_found(format!("model_version: `{version}` not found")))?;
        if matches!(info.state, VersionState::Failed | VersionState::Staging) {
            return Err(Status::failed_precondition(format!(
                "model_version: `{version}` is {:?}, not ready",
                info.state
            )));
        }
        if self.engine.loaded_versions().iter().any(|v| v == version) {
            return Ok(info);
        }
        let _one_load = self.loading.lock().await;
        if self.engine.loaded_versions().iter().any(|v| v == version) {
            return Ok(info);
        }
        let item_vectors = self.all_vectors(version, Entity::Item).await?;
        if let Some(model) = crate::training::fold_in_model(&info, &item_vectors) {
            self.fold_in
                .write()
                .insert(version.to_owned(), Arc::new(model));
        }
        // A shard node snapshots shard by shard, as it takes shards over.
        if !self.config.cluster && self.load_snapshot(&info).await? {
            return Ok(info);
        }
        let customer_vectors = self.all_vectors(version, Entity::Customer).await?;
        let engine = Arc::clone(&self.engine);
        let request = LoadVersion {
            info: info.clone(),
            customer_vectors,
            item_vectors,
        };
        let progress = Arc::new(BuildProgress::default());
        self.building
            .write()
            .insert(version.to_owned(), Arc::clone(&progress));
        let built =
            tokio::task::spawn_blocking(move || engine.load_version(request, progress.as_ref()))
                .await;
        self.building.write().remove(version);
        built
            .map_err(|e| Status::internal(format!("index build task: {e}")))?
            .map_err(engine_status)?;
        if self.config.cluster {
            for shard in self.engine.held_shards() {
                self.save_shard_snapshot(version, shard).await;
            }
        } else {
            self.save_snapshot(version).await;
        }
        Ok(info)
    }

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

    /// Loads `info` from its snapshot when there is a good one; a damaged or mismatched
    /// snapshot is logged, deleted, and the caller rebuilds from the store.
    async fn load_snapshot(&self, info: &VersionInfo) -> Result<bool, Status> {
        let Some(path) = self.snapshot_path(&info.version) else {
            return Ok(false);
        };
        if !path.exists() {
            return Ok(false);
        }
        let erased = self.store.erased_customers().await.map_err(store_status)?;
        let (engine, info, dir) = (Arc::clone(&self.engine), info.clone(), path.clone());
        let loaded = tokio::task::spawn_blocking(move || engine.load_snapshot(info, &dir, &erased))
            .await
            .map_err(|e| Status::internal(format!("snapshot load task: {e}")))?;
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
    async fn save_snapshot(&self, version: &str) {
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
        if self.config.cluster {
            return;
        }
        *self
            .stale_snapshots
            .lock()
            .entry(version.to_owned())
            .or_default() += 1;
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

    /// Every vector of one entity of `version`, in id order.
    pub async fn all_vectors(
        &self,
        version: &str,
        entity: Entity,
    ) -> Result<Vec<(String, Vec<f32>)>, Status> {
        let mut rows = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .store
                .scan_vectors(version, entity, after.as_deref(), REPLAY_PAGE)
                .await
                .map_err(store_status)?;
            let full = page.len() == REPLAY_PAGE;
            after = page.last().map(|(id, _)| id.clone());
            rows.extend(page);
            if !full {
                break;
            }
        }
        Ok(rows)
    }
}

/// Rewrites stale snapshots every [`NodeConfig::snapshot_refresh`] while the node lives.
fn spawn_snapshot_refresh(node: &Arc<Node>) {
    let every = match node.config.snapshot_refresh {
        std::time::Duration::ZERO => DEFAULT_SNAPSHOT_REFRESH,
        d => d,
    };
    let weak = Arc::downgrade(node);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(node) = weak.upgrade() else { return };
            node.refresh_snapshots().await;
        }
    });
}
