//! Event checkpoints (see [`doppel_types::event_checkpoint`]): what the event log built in
//! the engine — item popularity, and per logical shard its customers' purchases and
//! impressions — written to the store now and then, so that a node starts (and takes a
//! shard over) from the checkpoints plus the events after them instead of the whole log.
//!
//! A checkpoint is exact at its sequence number `S`: every event up to `S` counted, none
//! after. How each node makes sure:
//! * **a single node** applies events as it stores them, so each logical shard has a gate:
//!   held shared while events or impressions of its customers are stored and applied (and
//!   while one is erased), exclusively while its checkpoint is taken. Under the exclusive
//!   gate the node stores the impressions it applied but had not stored yet, reads the
//!   log's last sequence number as `S`, copies the shard and writes it. The items
//!   checkpoint takes every gate for a moment (item counts are small).
//! * **a shard node** applies events only in its follower, in sequence order; the follower
//!   writes checkpoints at its position when no skipped sequence number is awaited. The
//!   gate still orders a checkpoint and an erasure.
//!
//! An erasure removes the customer's history from its shard's checkpoint in the store, in
//! the erasure's transaction, and a checkpoint written afterwards leaves out customers in
//! the erasure ledger (a writer may have read its memory before the erasure). A customer
//! re-imported after its erasure leaves the ledger, so a writer that read its memory
//! before the erasure and writes after the re-import would put its old history back; the
//! next round writes the shard from memory without it. Item
//! popularity keeps the weight of erased customers' past events (an aggregate, not
//! personal data), where a replay of the log would not.
//!
//! After each round, a node with `--event-retention-days` removes the events every
//! checkpoint holds and the window lets go (see [`crate::event_retention`]).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use doppel_types::CheckpointScope;
use doppel_types::shard::shard_of;
use tokio::sync::{RwLock, RwLockReadGuard};

use crate::error::Result;
use crate::node::Node;

/// How often a node writes the checkpoints that changed (`--event-checkpoint-every`).
pub const DEFAULT_EVENT_CHECKPOINT_EVERY: Duration = Duration::from_secs(300);

/// The gates of the logical shards and what changed since the last checkpoints.
pub(crate) struct CheckpointState {
    /// Per logical shard: shared while its customers' events are stored and applied or
    /// one is erased; exclusive while its checkpoint is taken and written.
    gates: Vec<RwLock<()>>,
    /// Per logical shard: changed since its last checkpoint (or never written).
    dirty: Vec<AtomicBool>,
    /// Item counts changed since the last items checkpoint.
    items_dirty: AtomicBool,
    /// Old events are being removed (see [`crate::event_retention`]).
    pub(crate) compacting: AtomicBool,
}

impl CheckpointState {
    pub(crate) fn new(shard_count: u32) -> Self {
        Self {
            gates: (0..shard_count).map(|_| RwLock::new(())).collect(),
            dirty: (0..shard_count).map(|_| AtomicBool::new(true)).collect(),
            items_dirty: AtomicBool::new(true),
            compacting: AtomicBool::new(false),
        }
    }
}

/// What one round of checkpoints wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckpointRound {
    /// Shard checkpoints written.
    pub shards: usize,
    /// Customers in them.
    pub customers: usize,
    /// Whether the items checkpoint was written.
    pub items: bool,
    /// Checkpoints of quiet scopes moved forward (with event retention).
    pub advanced: usize,
    /// Checkpoints not written because the store holds a newer one.
    pub refused: usize,
}

/// Where the start-up replay starts after restoring the checkpoints.
pub(crate) struct ReplayFrom {
    /// Events after this count for item popularity.
    pub(crate) items: u64,
    /// Per logical shard held here: events of its customers after this count for them
    /// (`None`: not held).
    pub(crate) shards: Vec<Option<u64>>,
}

impl ReplayFrom {
    /// The first sequence number any part of the replay needs, minus one.
    pub(crate) fn start(&self) -> u64 {
        self.shards
            .iter()
            .flatten()
            .copied()
            .fold(self.items, u64::min)
    }
}

impl Node {
    fn shard_count(&self) -> u32 {
        self.engine.config().shard_count
    }

    /// The shared gates of the shards of `customer_ids`, taken in shard order.
    pub(crate) async fn gate_customers<'a>(
        &self,
        customer_ids: impl IntoIterator<Item = &'a str>,
    ) -> Vec<RwLockReadGuard<'_, ()>> {
        let count = self.shard_count();
        let mut shards: Vec<u32> = customer_ids
            .into_iter()
            .map(|id| shard_of(id, count))
            .collect();
        shards.sort_unstable();
        shards.dedup();
        let mut guards = Vec::with_capacity(shards.len());
        for shard in shards {
            guards.push(self.checkpoints.gates[shard as usize].read().await);
        }
        guards
    }

    /// The gate of logical shard `shard`, exclusively (an erasure).
    pub(crate) async fn gate_shard_exclusive(
        &self,
        shard: u32,
    ) -> tokio::sync::RwLockWriteGuard<'_, ()> {
        self.checkpoints.gates[shard as usize].write().await
    }

    /// Notes that an event of `customer_id` was applied (its shard's checkpoint and the
    /// items checkpoint are out of date).
    pub(crate) fn note_applied(&self, customer_id: &str) {
        self.note_shard_changed(shard_of(customer_id, self.shard_count()));
        self.note_items_changed();
    }

    /// Notes that item counts changed since the items checkpoint.
    pub(crate) fn note_items_changed(&self) {
        self.checkpoints.items_dirty.store(true, Ordering::Relaxed);
    }

    /// Notes that logical shard `shard`'s checkpoint is out of date (an erasure, a
    /// takeover).
    pub fn note_shard_changed(&self, shard: u32) {
        if let Some(d) = self.checkpoints.dirty.get(shard as usize) {
            d.store(true, Ordering::Relaxed);
        }
    }

    /// Writes the checkpoints of the held shards and of the items that changed since
    /// their last one. `through`: on a shard node, the follower's position (every event
    /// up to it applied, none after, no skipped number awaited); `None` on a single node,
    /// which reads it from the store under each gate.
    pub async fn write_event_checkpoints(&self, through: Option<u64>) -> Result<CheckpointRound> {
        self.write_event_checkpoints_except(through, &[]).await
    }

    /// [`Self::write_event_checkpoints`], leaving out `skip` (held shards another node has
    /// claimed, which this node must no longer write for).
    pub async fn write_event_checkpoints_except(
        &self,
        through: Option<u64>,
        skip: &[u32],
    ) -> Result<CheckpointRound> {
        let started = Instant::now();
        let mut round = CheckpointRound::default();
        let count = self.shard_count();
        let roster = self.engine.shard_roster();
        if through.is_none() {
            // Most of what waits for the store goes now, before any gate is closed.
            self.store_applied_impressions().await?;
        }
        for shard in self.engine.held_shards() {
            if skip.contains(&shard) {
                continue;
            }
            let _gate = self.checkpoints.gates[shard as usize].write().await;
            let scope = CheckpointScope::Shard {
                shard,
                shard_count: count,
            };
            if !self.checkpoints.dirty[shard as usize].swap(false, Ordering::Relaxed) {
                // Quiet since its last checkpoint: with retention, it moves forward, so
                // it does not hold back the removal of every shard's old events.
                if self.config.event_retention.is_some() {
                    let seq = self.checkpoint_seq(through).await?;
                    round.advanced +=
                        usize::from(self.store.advance_event_checkpoint(scope, seq).await?);
                }
                continue;
            }
            let written = async {
                let seq = self.checkpoint_seq(through).await?;
                let mut checkpoint = self.engine.shard_histories(&roster, shard);
                checkpoint.through_seq = seq;
                let customers = checkpoint.customers.len();
                let written = self.store.put_event_checkpoint(scope, &checkpoint).await?;
                Ok::<_, crate::Error>(written.then_some(customers))
            }
            .await;
            match written {
                Ok(Some(customers)) => {
                    round.shards += 1;
                    round.customers += customers;
                }
                // Another node stored a newer one (it holds the shard now).
                Ok(None) => round.refused += 1,
                Err(e) => {
                    self.note_shard_changed(shard);
                    return Err(e);
                }
            }
        }
        let items_dirty = self.checkpoints.items_dirty.swap(false, Ordering::Relaxed);
        if items_dirty || self.config.event_retention.is_some() {
            let mut gates = Vec::new();
            if through.is_none() {
                for gate in &self.checkpoints.gates {
                    gates.push(gate.write().await);
                }
            }
            // Events applied while the gates were being taken make the items not quiet.
            let items_dirty =
                items_dirty || self.checkpoints.items_dirty.swap(false, Ordering::Relaxed);
            let written = async {
                let seq = self.checkpoint_seq(through).await?;
                if !items_dirty {
                    // Quiet (with retention): the stored checkpoint moves forward.
                    drop(gates);
                    let moved = self
                        .store
                        .advance_event_checkpoint(CheckpointScope::Items, seq)
                        .await?;
                    return Ok::<_, crate::Error>((false, moved));
                }
                let checkpoint = doppel_types::EventCheckpoint {
                    through_seq: seq,
                    items: self.engine.item_counts(),
                    ..Default::default()
                };
                drop(gates);
                let put = self
                    .store
                    .put_event_checkpoint(CheckpointScope::Items, &checkpoint)
                    .await?;
                Ok((true, put))
            }
            .await;
            match written {
                Ok((false, moved)) => round.advanced += usize::from(moved),
                Ok((true, put)) => {
                    round.items = put;
                    round.refused += usize::from(!put);
                }
                Err(e) => {
                    if items_dirty {
                        self.checkpoints.items_dirty.store(true, Ordering::Relaxed);
                    }
                    return Err(e);
                }
            }
        }
        if round.shards > 0 || round.items || round.refused > 0 {
            tracing::info!(
                shards = round.shards,
                customers = round.customers,
                items = round.items,
                advanced = round.advanced,
                refused = round.refused,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "event checkpoints written"
            );
        }
        Ok(round)
    }

    /// A single node writing event checkpoints: writes them every `every`, from a task that
    /// ends with the node. A shard node's follower writes its own.
    pub(crate) fn spawn_event_checkpoints(self: &std::sync::Arc<Self>) {
        let Some(every) = self.config.event_checkpoint_every else {
            return;
        };
        if self.placement.follows_event_log() {
            return;
        }
        self.spawn_every(every, |node| async move {
            if let Err(e) = node.write_event_checkpoints(None).await {
                tracing::warn!(error = %e, "event checkpoints not written; retrying at the next round");
                return;
            }
            node.spawn_compaction(None);
        });
    }

    /// A single node writing event checkpoints writes the changed ones as it stops, so the
    /// next start reads no event; a shard node's follower has written its own.
    pub async fn write_event_checkpoints_on_stop(&self) {
        if self.config.event_checkpoint_every.is_none() || self.placement.follows_event_log() {
            return;
        }
        if let Err(e) = self.write_event_checkpoints(None).await {
            tracing::error!(error = %e, "event checkpoints not written on the way out");
        }
    }

    /// The sequence number a checkpoint taken now is exact at: the follower's position,
    /// or (a single node, under the gates) the log's last once every impression applied
    /// so far is stored.
    async fn checkpoint_seq(&self, through: Option<u64>) -> Result<u64> {
        if let Some(seq) = through {
            return Ok(seq);
        }
        self.store_applied_impressions().await?;
        Ok(self.store.last_event_seq().await?)
    }

    /// Start-up: sets back the items checkpoint and those of the held shards; returns
    /// where the replay of the log starts for each.
    pub(crate) async fn restore_event_checkpoints(&self) -> Result<ReplayFrom> {
        let count = self.shard_count();
        let items = match self.read_checkpoint(CheckpointScope::Items).await? {
            Some(checkpoint) => {
                self.engine.restore_item_counts(&checkpoint.items);
                self.checkpoints.items_dirty.store(false, Ordering::Relaxed);
                checkpoint.through_seq
            }
            None => 0,
        };
        let mut shards = vec![None; count as usize];
        let ledger = self.erasure_ledger().await?;
        for shard in self.engine.held_shards() {
            let from = self
                .restore_shard_checkpoint(shard, &|_| true, &ledger)
                .await?;
            shards[shard as usize] = Some(from);
        }
        Ok(ReplayFrom { items, shards })
    }

    /// The checkpoint of `scope`; one that cannot be decoded (written by another version
    /// of doppel, or damaged) is reported and treated as missing, so the events are read
    /// from the start instead.
    async fn read_checkpoint(
        &self,
        scope: CheckpointScope,
    ) -> Result<Option<doppel_types::EventCheckpoint>> {
        match self.store.event_checkpoint(scope).await {
            Ok(checkpoint) => Ok(checkpoint),
            Err(e @ doppel_store::Error::Corrupt { .. }) => {
                tracing::warn!(scope = %scope.key(), error = %e, "event checkpoint unreadable; reading the events from the start");
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The store's erasure ledger, read once for the checkpoints a start or a takeover
    /// restores: the ledger, not only the erasures this process saw, so nothing erased
    /// comes back.
    pub async fn erasure_ledger(&self) -> Result<HashSet<String>> {
        Ok(self.store.erased_customers().await?.into_iter().collect())
    }

    /// Sets back logical shard `shard`'s checkpoint when there is one `usable` accepts
    /// (given its sequence number); returns that number, or 0 when none was restored (the
    /// shard's events are then read from the start).
    pub async fn restore_shard_checkpoint(
        &self,
        shard: u32,
        usable: &(dyn Fn(u64) -> bool + Sync),
        ledger: &HashSet<String>,
    ) -> Result<u64> {
        let scope = CheckpointScope::Shard {
            shard,
            shard_count: self.shard_count(),
        };
        let Some(checkpoint) = self.read_checkpoint(scope).await? else {
            return Ok(0);
        };
        if !usable(checkpoint.through_seq) {
            return Ok(0);
        }
        self.engine.restore_shard_histories(&checkpoint, ledger);
        self.checkpoints.dirty[shard as usize].store(false, Ordering::Relaxed);
        Ok(checkpoint.through_seq)
    }
}
