//! One node's state: the durable store (source of truth), the in-memory engine that serves
//! queries from it, and where the node stands in the cluster ([`Placement`]). Writes go to
//! the store first and reach the engine only once they are durable; at start the engine
//! is rebuilt from the store.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use doppel_engine::Engine;
use doppel_store::Store;
use doppel_train::FoldInModel;
use doppel_types::Event;
use parking_lot::RwLock;

use crate::build_progress::BuildProgress;
use crate::config::NodeConfig;
use crate::error::Result;
use crate::placement::Placement;
use crate::store_pages;

/// The store and the engine of one node, shared by every service.
pub struct Node {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) engine: Arc<Engine>,
    pub(crate) config: NodeConfig,
    pub(crate) placement: Arc<dyn Placement>,
    /// Fold-in state of each loaded trained version.
    pub(crate) fold_in: RwLock<HashMap<String, Arc<FoldInModel>>>,
    /// Held by the one training run allowed at a time.
    pub(crate) training: Arc<tokio::sync::Mutex<()>>,
    /// The last event sequence number the start-up replay applied.
    replayed_seq: AtomicU64,
    /// Events the start-up replay read (after the event checkpoints).
    replayed_events: AtomicU64,
    /// Gates of the logical shards and what changed since the last event checkpoints.
    pub(crate) checkpoints: crate::event_checkpoints::CheckpointState,
    /// Builds in progress, by version.
    pub(crate) building: RwLock<HashMap<String, Arc<BuildProgress>>>,
    /// One version load at a time (a router's prepare and the pointer follower may ask at
    /// once; builds also take the cores they are given one after another).
    pub(crate) loading: tokio::sync::Mutex<()>,
    /// Held while the engine's active version is switched (an activation, a router's
    /// switch, the pointer follower), so a follower that read the store's pointer before an
    /// activation flipped it cannot switch the engine back afterwards.
    pub(crate) switching: tokio::sync::Mutex<()>,
    /// Versions an import or a training run on this node is writing right now.
    writing: RwLock<HashSet<String>>,
    /// Versions whose snapshot fold-in dropped, with a count of fold-ins since, so a
    /// rewrite that raced a fold-in is not kept.
    pub(crate) stale_snapshots: parking_lot::Mutex<HashMap<String, u64>>,
    /// The active version's snapshot, being read while a starting node reads its profiles
    /// (see `snapshots`).
    pub(crate) snapshot_read_ahead: parking_lot::Mutex<Option<crate::snapshots::ReadAhead>>,
    /// Striped per-customer lock of impression-recording offers (see `offers`).
    pub(crate) exposure_locks: Vec<tokio::sync::Mutex<()>>,
    /// Impressions waiting for the next group commit, and the policy-change lock (see
    /// `offers`).
    pub(crate) offers: crate::offers::OfferState,
    /// The running experiment as applied here (see `experiments`).
    pub(crate) experiments: crate::experiments::ExperimentState,
    /// Serving statistics per version while a canary runs.
    pub(crate) serving: crate::serving_stats::ServingState,
    /// The canary guard's reading of the log.
    pub(crate) canary_watch: crate::canary::CanaryWatch,
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
    /// A node over `store` with an empty engine (see `startup` for `open`).
    pub(crate) fn new(
        store: Arc<dyn Store>,
        config: NodeConfig,
        placement: Arc<dyn Placement>,
    ) -> Self {
        let engine = Arc::new(Engine::new(config.engine.clone()));
        let shard_count = config.engine.shard_count;
        Self {
            store,
            engine,
            config,
            placement,
            fold_in: RwLock::default(),
            training: Arc::default(),
            replayed_seq: AtomicU64::default(),
            replayed_events: AtomicU64::default(),
            checkpoints: crate::event_checkpoints::CheckpointState::new(shard_count),
            building: RwLock::default(),
            loading: tokio::sync::Mutex::new(()),
            switching: tokio::sync::Mutex::new(()),
            writing: RwLock::default(),
            stale_snapshots: parking_lot::Mutex::default(),
            snapshot_read_ahead: parking_lot::Mutex::default(),
            exposure_locks: (0..crate::offers::EXPOSURE_LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            offers: crate::offers::OfferState::default(),
            experiments: crate::experiments::ExperimentState::default(),
            serving: crate::serving_stats::ServingState::default(),
            canary_watch: crate::canary::CanaryWatch::default(),
        }
    }

    /// Runs `round` every `every` (the first a period after now) from a task that ends
    /// with the node: the snapshot refresher and the event checkpoints.
    pub(crate) fn spawn_every<F, Fut>(self: &Arc<Self>, every: std::time::Duration, round: F)
    where
        F: Fn(Arc<Node>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(node) = weak.upgrade() else { return };
                round(node).await;
            }
        });
    }

    /// The in-memory serving state (queries read it directly).
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The durable state.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The settings the node was opened with.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// Where the node stands in the cluster.
    pub fn placement(&self) -> &dyn Placement {
        self.placement.as_ref()
    }

    /// Refuses calls for customers not served here (see [`Placement::check_holds`]).
    pub fn check_holds(&self, customer_id: &str, write: bool) -> Result<()> {
        self.placement.check_holds(&self.engine, customer_id, write)
    }

    /// Before acknowledging a write of `customer_ids` that reached the store: checks that
    /// this node still owned their shards (see [`Placement::confirm_owned`]); free on a
    /// single node.
    pub(crate) async fn confirm_owned<'a>(
        &self,
        customer_ids: impl Iterator<Item = &'a str>,
    ) -> Result<()> {
        if self.placement.serves_everyone() {
            return Ok(());
        }
        let count = self.engine.config().shard_count;
        let shards: std::collections::BTreeSet<u32> = customer_ids
            .map(|id| doppel_types::shard::shard_of(id, count))
            .collect();
        self.placement
            .confirm_owned(shards.into_iter().collect())
            .await
    }

    /// Rebuilds the engine from the store: profiles and items, the event checkpoints, then
    /// the events after them (each part of an event only where its checkpoint is older).
    pub(crate) async fn replay(&self) -> Result<()> {
        self.reload_customers().await?;
        store_pages::items(self.store.as_ref(), |i| self.engine.upsert_item(i)).await?;
        let from = self.restore_event_checkpoints().await?;
        self.check_replayable(&from).await?;
        let count = self.engine.config().shard_count;
        let mut read = 0u64;
        let last = self
            .for_each_event(from.start(), None, &mut |seq, event| {
                read += 1;
                let shard = doppel_types::shard::shard_of(&event.customer_id, count);
                if from.shards[shard as usize].is_some_and(|after| seq > after) {
                    self.engine.record_customer_event(event);
                    self.note_shard_changed(shard);
                }
                if seq > from.items {
                    self.engine.record_foreign_event(event);
                    self.note_items_changed();
                }
            })
            .await?;
        // A shard node is not a member while it replays: old events it had still to read
        // may have been removed meanwhile.
        self.check_replayable(&from).await?;
        self.replayed_events.store(read, Ordering::Relaxed);
        self.replayed_seq
            .fetch_max(last.max(from.items), Ordering::Relaxed);
        Ok(())
    }

    /// Events the start-up replay read: those after the event checkpoints.
    pub fn replayed_events(&self) -> u64 {
        self.replayed_events.load(Ordering::Relaxed)
    }

    /// Re-reads the profiles of the customers held here (a shard node picks up segment
    /// attributes another node's training wrote). A shard node holding nothing yet skips it.
    pub async fn reload_customers(&self) -> Result<()> {
        let held = self.engine.held_shards();
        if held.is_empty() {
            return Ok(());
        }
        if self.placement.serves_everyone() {
            return self
                .reload_customers_where(&|id| self.engine.owns_customer(id))
                .await;
        }
        // A shard node (Redis keyed by logical shard): only the held shards' keys.
        self.reload_customers_of_shards(&held).await
    }

    /// Re-reads the profiles of the customers `keep` selects.
    pub async fn reload_customers_where(&self, keep: &(dyn Fn(&str) -> bool + Sync)) -> Result<()> {
        store_pages::customers(self.store.as_ref(), keep, |page| {
            self.engine.upsert_customers(page)
        })
        .await
    }

    /// Re-reads the profiles of the customers of logical shards `shards` (a takeover, or
    /// its second pass), reading only those shards where the store keys by shard.
    pub async fn reload_customers_of_shards(&self, shards: &[u32]) -> Result<()> {
        let count = self.engine.config().shard_count;
        for shard in shards {
            store_pages::shard_customers(self.store.as_ref(), *shard, count, |page| {
                self.engine.upsert_customers(page)
            })
            .await?;
        }
        Ok(())
    }

    /// Calls `f(seq, event)` for every event of logical shard `shard`'s customers after
    /// `from` up to `upto`, in sequence order.
    pub async fn for_each_shard_event(
        &self,
        shard: u32,
        from: u64,
        upto: u64,
        f: &mut (dyn FnMut(u64, &Event) + Send),
    ) -> Result<()> {
        let count = self.engine.config().shard_count;
        store_pages::shard_events(self.store.as_ref(), shard, count, from, upto, f).await
    }

    /// Calls `f(seq, event)` for every event of the log after `from` up to `upto` (all when
    /// `None`), in sequence order; returns the last sequence number seen (0 for none).
    pub async fn for_each_event(
        &self,
        from: u64,
        upto: Option<u64>,
        f: &mut (dyn FnMut(u64, &Event) + Send),
    ) -> Result<u64> {
        store_pages::events(self.store.as_ref(), from, upto, f).await
    }

    /// Applies an event from the log: fully for a customer held here, only to item
    /// popularity for one held by another shard node. True when the customer is held here.
    pub fn apply_event(&self, event: &Event) -> bool {
        let held = self.engine.owns_customer(&event.customer_id);
        if held {
            self.engine.record_event(event);
            self.note_applied(&event.customer_id);
        } else {
            self.engine.record_foreign_event(event);
            self.note_items_changed();
        }
        held
    }

    /// [`Self::apply_event`] without the item counts, which already hold the event (they
    /// were set from a newer items checkpoint): only a held customer's purchases and
    /// impressions. True when the customer is held here.
    pub fn apply_customer_event(&self, event: &Event) -> bool {
        let held = self.engine.owns_customer(&event.customer_id);
        if held {
            self.engine.record_customer_event(event);
            let count = self.engine.config().shard_count;
            self.note_shard_changed(doppel_types::shard::shard_of(&event.customer_id, count));
        }
        held
    }

    /// The last event sequence number the start-up replay applied.
    pub fn replayed_seq(&self) -> u64 {
        self.replayed_seq.load(Ordering::Relaxed)
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

    /// `(done, total)` points of `version`'s index build, when one is running.
    pub fn build_progress(&self, version: &str) -> Option<(u64, u64)> {
        self.building.read().get(version).map(|p| p.get())
    }
}
