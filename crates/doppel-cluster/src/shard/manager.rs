//! The one task that keeps a shard node in step with the cluster, sequentially (so loading a
//! shard and following the event log never race):
//!
//! * **events** — every event of the log is applied exactly once, in sequence order: fully
//!   for customers of held shards (then folded in), to item popularity for the others.
//!   Seqs skipped by a scan may still commit (two appenders), so they are re-read for
//!   [`GAP_PATIENCE`]. A node the log's retention passed (paused past its lease) starts
//!   over from the event checkpoints instead (see `resync`);
//! * **membership** (every [`LEASE_RENEW_EVERY`]) — renew the lease, compute who should own
//!   each shard ([`desired_owner`] over the live nodes), take over the shards this node
//!   should own (load profiles, purchases and vectors, then claim them in the shard map),
//!   and hand off the shards someone else claimed: fence their writes at once, release them
//!   [`HANDOFF_DELAY`] later, when every router has re-read the map;
//! * **second pass** — a while after a claim, re-read the claimed shards' profiles and the
//!   erasure ledger, catching writes the previous owner accepted until it saw the claim;
//! * **the active-version pointer** — a node that missed an activation converges on it;
//! * **the contact policy** (every lease renewal) — a node that missed a change follows the
//!   stored one.
//!
//! ```text
//! shard s, old owner A, new owner B:
//!   B: hold s, load ─► ready ─► claim map[s]=B ─────────────► second pass
//!   routers:                        └─ re-read map (≤ 1 s) ─► send s to B
//!   A:                              └─ sees map[s]=B: fence writes ─(3 s)─► release s
//! ```

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use doppel_node::{Error, Node, Result};
use doppel_store::{MemberRecord, RedisStore, Store};
use doppel_types::shard::shard_of;
use tokio::sync::watch;

use crate::shard::assignment::desired_owner;
use crate::shard::placement::ShardPlacement;
use crate::{LEASE_RENEW_EVERY, LEASE_TTL};

mod checkpoints;
mod follow;
mod gaps;
mod resync;

use gaps::Gaps;

/// How often the event log and the pointer are polled (a local write wakes it sooner).
pub const POLL_EVERY: Duration = Duration::from_millis(250);
/// How long a skipped sequence number is waited for.
pub const GAP_PATIENCE: Duration = Duration::from_secs(10);
/// How long a node keeps serving reads of a shard another node claimed.
pub const HANDOFF_DELAY: Duration = Duration::from_secs(3);
/// How long after a claim the second pass runs.
pub const SECOND_PASS_AFTER: Duration = Duration::from_secs(3);
/// How long a starting node waits for the leases of nodes starting beside it.
pub const SETTLE: Duration = Duration::from_secs(2);
/// Rows read per store page.
const PAGE: usize = 5_000;
/// The state of one shard node's manager.
pub struct Manager {
    node: Arc<Node>,
    placement: Arc<ShardPlacement>,
    store: RedisStore,
    node_id: String,
    advertise: String,
    after: u64,
    /// Item counts hold every event up to this number already (set from the items
    /// checkpoint by a resync; 0: none), so the follower counts only the customer part of
    /// those.
    items_through: u64,
    gaps: Gaps,
    /// Held shards another node claimed, since when.
    handoffs: HashMap<u32, Instant>,
    /// Claimed shards and when their second pass is due.
    second_pass: Vec<(u32, Instant)>,
    /// Polls since event checkpoints were due but skipped numbers were still awaited.
    checkpoints_waiting: u64,
}

impl Manager {
    /// A manager for `node`, following the log after the start-up replay.
    pub fn new(
        node: Arc<Node>,
        placement: Arc<ShardPlacement>,
        store: RedisStore,
        node_id: String,
        advertise: String,
    ) -> Self {
        let after = node.replayed_seq();
        Self {
            node,
            placement,
            store,
            node_id,
            advertise,
            after,
            items_through: 0,
            gaps: Gaps::default(),
            handoffs: HashMap::new(),
            second_pass: Vec::new(),
            checkpoints_waiting: 0,
        }
    }

    fn record(&self) -> MemberRecord {
        MemberRecord {
            node_id: self.node_id.clone(),
            internal_addr: self.advertise.clone(),
            ready_shards: self.node.engine().held_shards(),
            applied_seq: self.position(),
        }
    }

    /// The follower's position as its lease gives it: not past a skipped number still
    /// awaited (it may commit, and be read, later).
    fn position(&self) -> u64 {
        self.gaps
            .missing
            .keys()
            .next()
            .map_or(self.after, |first| self.after.min(first.saturating_sub(1)))
    }

    /// Runs until `stop` turns true; sends `true` on `ready` once the first assignment is
    /// loaded. Drops the lease on the way out.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>, ready: watch::Sender<bool>) {
        if let Err(e) = self.store.renew_lease(&self.record(), &[], LEASE_TTL).await {
            tracing::warn!(error = %e, "first lease failed; retrying");
        }
        tokio::select! {
            () = tokio::time::sleep(SETTLE) => {}
            _ = stop.changed() => {}
        }
        let mut last_reconcile: Option<Instant> = None;
        let mut last_checkpoint = Instant::now();
        while !*stop.borrow() {
            if let Err(e) = self.poll_events().await {
                tracing::warn!(error = %e, "following the event log failed; retrying");
            }
            let every = self.node.config().event_checkpoint_every;
            if every.is_some_and(|every| last_checkpoint.elapsed() >= every)
                && self.checkpoint().await
            {
                last_checkpoint = Instant::now();
            }
            if last_reconcile.is_none_or(|t| t.elapsed() >= LEASE_RENEW_EVERY) {
                match self.reconcile().await {
                    Ok(()) => {
                        ready.send_if_modified(|r| !std::mem::replace(r, true));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "shard reconcile failed; retrying")
                    }
                }
                if let Err(e) = self.follow_policy().await {
                    tracing::warn!(error = %e, "following the contact policy or experiments failed; retrying");
                }
                last_reconcile = Some(Instant::now());
            }
            if let Err(e) = self.follow_pointer().await {
                tracing::warn!(error = %e, "following the active version failed; retrying");
            }
            tokio::select! {
                () = tokio::time::sleep(POLL_EVERY) => {}
                () = self.placement.kicked() => {}
                _ = stop.changed() => {}
            }
        }
        if self.node.config().event_checkpoint_every.is_some() {
            self.checkpoint().await;
        }
        if let Err(e) = self.store.drop_lease(&self.node_id).await {
            tracing::warn!(error = %e, "could not drop the lease; it expires by itself");
        }
    }

    async fn reconcile(&mut self) -> Result<()> {
        // Before any shard is claimed back: a node the removal passed holds stale ones.
        self.resync_if_compacted_past(self.position()).await?;
        let engine = self.node.engine();
        let shard_count = engine.config().shard_count;
        let members = self.store.live_members().await?;
        let map = self.store.shard_map().await?;
        let live: BTreeSet<String> = members
            .iter()
            .map(|m| m.node_id.clone())
            .chain(std::iter::once(self.node_id.clone()))
            .collect();
        let me = self.node_id.as_str();
        let desired = |s: u32| desired_owner(&live, s) == Some(me);

        let held: HashSet<u32> = engine.held_shards().into_iter().collect();
        let wanted: Vec<u32> = (0..shard_count)
            .filter(|s| desired(*s) && !held.contains(s))
            .collect();
        let wanted = self.takeover_ready(wanted).await?;
        if !wanted.is_empty()
            && let Err(e) = self.acquire(&wanted).await
        {
            // Half-loaded shards are let go, so the next round loads them whole.
            for shard in &wanted {
                if let Err(release) = engine.release_shard(*shard) {
                    tracing::warn!(shard, error = %release, "could not release a half-loaded shard");
                }
            }
            return Err(e);
        }
        let claims: Vec<u32> = engine
            .held_shards()
            .into_iter()
            .filter(|s| desired(*s) && map.get(s).map(String::as_str) != Some(me))
            .collect();
        // Shards held all along but claimed by another node meanwhile (this node was paused
        // past its lease, or slow): that node took writes this node's memory missed, so
        // their profiles and erasures are re-read before they are claimed back. Events need
        // nothing: the follower applies every event of a held shard (and if old events left
        // the log before it read them, it let every held shard go: see `resync`).
        let missed: Vec<u32> = claims
            .iter()
            .copied()
            .filter(|s| held.contains(s) && map.get(s).is_some_and(|o| o != me))
            .collect();
        if !missed.is_empty() {
            tracing::warn!(shards = ?missed, "held shards were claimed by another node meanwhile: reloading them before claiming them back");
            self.reload_profiles(&missed).await?;
        }
        let sent_at = crate::shard::placement::clock_now();
        self.store
            .renew_lease(&self.record(), &claims, LEASE_TTL)
            .await?;
        self.placement.note_claimed(&claims, sent_at);
        let now = Instant::now();
        if !claims.is_empty() {
            tracing::info!(shards = ?claims, "shards claimed");
            self.second_pass
                .extend(claims.iter().map(|s| (*s, now + SECOND_PASS_AFTER)));
        }

        // Hand off held shards another live node claimed.
        for shard in engine.held_shards() {
            let owner = map.get(&shard).map(String::as_str);
            let taken =
                owner.is_some_and(|o| o != me && live.contains(o)) && !claims.contains(&shard);
            if !taken {
                if self.handoffs.remove(&shard).is_some() {
                    self.placement.fence(shard, false);
                }
                continue;
            }
            let since = *self.handoffs.entry(shard).or_insert_with(|| {
                self.placement.fence(shard, true);
                tracing::info!(
                    shard,
                    to = owner.unwrap_or_default(),
                    "shard claimed by another node: writes fenced"
                );
                now
            });
            if now.duration_since(since) >= HANDOFF_DELAY {
                engine.release_shard(shard)?;
                self.placement.fence(shard, false);
                self.handoffs.remove(&shard);
                tracing::info!(shard, "shard released");
            }
        }

        let due: Vec<u32> = self
            .second_pass
            .iter()
            .filter(|(_, at)| *at <= now)
            .map(|(s, _)| *s)
            .collect();
        if !due.is_empty() {
            let held: Vec<u32> = due.into_iter().filter(|s| engine.owns_shard(*s)).collect();
            // Dropped from the list only once done: a failed reload is retried next round
            // (the fence of a paused owner relies on this pass).
            self.reload_profiles(&held).await?;
            self.second_pass.retain(|(_, at)| *at > now);
        }
        Ok(())
    }

    /// Takes over `shards`: from now on their events are applied fully; their profiles,
    /// past purchases and vectors (every loaded version) are loaded from the store.
    async fn acquire(&self, shards: &[u32]) -> Result<()> {
        let started = Instant::now();
        let engine = self.node.engine();
        for s in shards {
            engine.hold_shard(*s);
        }
        self.reload_profiles(shards).await?;
        // Events up to the cursor counted for popularity already; add the purchases and
        // impressions. Seqs still awaited as gaps are left to the gap re-read, which
        // applies them fully once they commit (else an impression would count twice).
        // Only these shards' events are read (their own keys in Redis).
        // A shard checkpoint (the previous owner's) stands in for the events up to its
        // number, when the cursor is past it and no skipped number up to it is awaited.
        let awaited = &self.gaps.missing;
        let after = self.after;
        let ledger = self.node.erasure_ledger().await?;
        let compacted = self.store.events_compacted_through().await?;
        for shard in shards {
            let usable =
                |through: u64| through <= after && awaited.range(..=through).next().is_none();
            let from = self
                .node
                .restore_shard_checkpoint(*shard, &usable, &ledger)
                .await?;
            if from < compacted {
                // The events before the checkpoint are gone: wait (the caller lets the
                // shards go and tries again next round) until this node's position passes
                // the checkpoint's, or no skipped number up to it is awaited.
                return Err(Error::Unavailable(format!(
                    "shard {shard} not taken over yet: the event log was compacted through \
                     {compacted}, and its checkpoint is not usable at this node's position \
                     {after} (newer, missing, or a skipped number up to it is awaited)"
                )));
            }
            self.node
                .for_each_shard_event(*shard, from, self.after, &mut |seq, event| {
                    if !awaited.contains_key(&seq) {
                        engine.record_customer_event(event);
                    }
                })
                .await?;
            // Removed while they were read (the checkpoint moved on meanwhile): try again.
            let now_compacted = self.store.events_compacted_through().await?;
            if now_compacted > from {
                return Err(Error::Unavailable(format!(
                    "shard {shard} not taken over yet: old events were removed (through \
                     {now_compacted}) while its events after {from} were read"
                )));
            }
            // Written again by this node, its new owner.
            self.node.note_shard_changed(*shard);
        }
        let mut customers = 0;
        for version in engine.loaded_versions() {
            for shard in shards {
                let rows = self.node.shard_vectors(&version, *shard).await?;
                customers += self.install(&version, *shard, rows).await?;
            }
        }
        tracing::info!(
            shards = ?shards,
            customers,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "shards loaded"
        );
        Ok(())
    }

    /// Installs one shard of `version` from the store's `rows`: from this node's snapshot of
    /// it when there is a good one (patched where the store changed since), else built; a
    /// fresh snapshot is written after a build or a patch.
    async fn install(
        &self,
        version: &str,
        shard: u32,
        rows: Vec<(String, Vec<f32>)>,
    ) -> Result<usize> {
        let engine = Arc::clone(self.node.engine());
        let snapshot = self
            .node
            .shard_snapshot_path(version, shard)
            .filter(|p| p.exists());
        if let Some(dir) = snapshot {
            let (engine, name, rows, path) = (
                Arc::clone(&engine),
                version.to_owned(),
                rows.clone(),
                dir.clone(),
            );
            let loaded = tokio::task::spawn_blocking(move || {
                engine.install_shard_from_snapshot(&name, shard, rows, &path)
            })
            .await
            .map_err(|e| Error::task("shard load", e))?;
            match loaded {
                Ok(done) => {
                    self.placement
                        .shards_from_snapshot
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::debug!(
                        shard,
                        patched = done.patched,
                        "shard loaded from its snapshot"
                    );
                    if done.patched > 0 {
                        self.node.save_shard_snapshot(version, shard).await;
                    }
                    return Ok(done.customers);
                }
                Err(e) => {
                    tracing::warn!(shard, path = %dir.display(), error = %e, "shard snapshot refused; rebuilding from the store");
                    self.node.remove_snapshot_dir(&dir);
                }
            }
        }
        let name = version.to_owned();
        let customers =
            tokio::task::spawn_blocking(move || engine.install_shard(&name, shard, rows))
                .await
                .map_err(|e| Error::task("shard build", e))??;
        self.placement
            .shards_rebuilt
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.node.save_shard_snapshot(version, shard).await;
        Ok(customers)
    }

    /// Re-reads the profiles of `shards`' customers, and applies erasures recorded since.
    async fn reload_profiles(&self, shards: &[u32]) -> Result<()> {
        if shards.is_empty() {
            return Ok(());
        }
        let engine = self.node.engine();
        let shard_count = engine.config().shard_count;
        let wanted: HashSet<u32> = shards.iter().copied().collect();
        let mine = |id: &str| wanted.contains(&shard_of(id, shard_count));
        self.node.reload_customers_of_shards(shards).await?;
        let erased = self.node.store().erased_customers().await?;
        for id in erased.iter().filter(|id| mine(id)) {
            engine.erase_customer(id);
        }
        Ok(())
    }

    async fn follow_policy(&self) -> Result<()> {
        if self.node.follow_contact_policy().await? {
            tracing::info!("followed the stored contact policy");
        }
        if self.node.follow_experiments().await? {
            tracing::info!("followed the stored experiments");
        }
        Ok(())
    }

    async fn follow_pointer(&self) -> Result<()> {
        if let Some(active) = self.node.follow_active_pointer().await? {
            tracing::info!(model.version = %active, "followed the active-version pointer");
        }
        Ok(())
    }
}
