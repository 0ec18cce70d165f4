//! A shard node's [`Placement`]: the shards it holds (in the engine), the shards it is
//! handing off (fenced: writes refused), the event-log follower's progress (writes wait
//! for it, for read-your-writes), and counts of how shard takeovers were served. This is
//! cluster state, so it lives here, not in the node.
//!
//! # Fencing a paused owner
//!
//! A node can stop for longer than its lease (a SIGSTOP, a stall, a frozen VM) and wake up
//! still believing it holds shards another node has taken over. What it then stores is not
//! lost (it is in Redis, and events are in the log the new owner follows), but a profile
//! or erasure stored after the new owner's second pass would stay out of that owner's
//! memory. So a write is acknowledged only when this node's ownership of its shards is
//! confirmed *after* the write was stored ([`ShardPlacement::confirm_owned`]):
//!
//! * the new owner loads a shard, claims it in the shard map, and re-reads its profiles and
//!   erasures [`SECOND_PASS_AFTER`] later;
//! * so if a read of the map at time `r` still named this node, any claim came after `r`,
//!   and a write stored before `r + SECOND_PASS_AFTER` is read by the new owner's second
//!   pass;
//! * the [`ownership_guard`](crate::shard::ownership_guard) reads the map every
//!   [`GUARD_EVERY`](crate::shard::ownership_guard::GUARD_EVERY) and notes, per shard, when a
//!   read last named this node; a write stored within [`CONFIRM_WINDOW`] of that is
//!   confirmed at no cost (the usual case);
//! * otherwise (the guard is behind: this node was paused, or Redis is slow) the write is
//!   confirmed with one `HMGET` of the map; if the map names another node, the write is
//!   refused with UNAVAILABLE and not acknowledged (it was stored: the client's retry
//!   reaches the new owner, and event ids make retried events idempotent).
//!
//! Times are read from `CLOCK_BOOTTIME` ([`clock_now`]), which keeps counting while the
//! machine is suspended, unlike `Instant`.
//!
//! The guard also fences, before any write reaches the store, the held shards the map
//! gives to another node, so a node that wakes up refuses such writes within one guard
//! read, as the manager's hand-off does on its slower round.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use doppel_engine::Engine;
use doppel_node::{Error, Placement, Result};
use doppel_store::RedisStore;
use futures::future::BoxFuture;
use parking_lot::RwLock;
use tokio::sync::{Notify, watch};

use crate::shard::manager::SECOND_PASS_AFTER;

/// How long after a read of the shard map that named this node a write of that shard may
/// be acknowledged without reading the map again: the new owner's second pass comes
/// [`SECOND_PASS_AFTER`] after its claim, less a margin for the two nodes' clocks running
/// at slightly different rates.
pub const CONFIRM_WINDOW: Duration = SECOND_PASS_AFTER.saturating_sub(Duration::from_millis(500));

/// The time since boot, counting time the machine was suspended (`CLOCK_BOOTTIME`):
/// `Instant` (`CLOCK_MONOTONIC`) stops during a suspend, and a node frozen that way must
/// not find its last read of the shard map younger than it is.
pub fn clock_now() -> Duration {
    #[cfg(target_os = "linux")]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
        if unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) } == 0 {
            return Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
        }
    }
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed()
}

/// The placement of one shard node.
#[derive(Debug)]
pub struct ShardPlacement {
    /// The shard map's store, read to confirm ownership before a write is acknowledged.
    store: RedisStore,
    /// This node's id in the shard map.
    node_id: String,
    /// Shards being handed off; writes for their customers are refused.
    fenced: RwLock<HashSet<u32>>,
    /// Held shards the last read of the shard map gave to another node; writes refused.
    claimed_elsewhere: RwLock<HashSet<u32>>,
    /// Per shard, when the latest read of the shard map that named this node began.
    owned_at: RwLock<HashMap<u32, Duration>>,
    /// The last event sequence number the follower applied.
    applied_seq: watch::Sender<u64>,
    /// Wakes the follower (new events were appended through this node).
    kick: Notify,
    /// Shard takeovers served from a snapshot file (patched from the store).
    pub shards_from_snapshot: AtomicU32,
    /// Shard takeovers built from the store's vectors.
    pub shards_rebuilt: AtomicU32,
}

impl ShardPlacement {
    /// The placement of node `node_id`, confirming ownership in `store`'s shard map.
    pub fn new(store: RedisStore, node_id: String) -> Self {
        Self {
            store,
            node_id,
            fenced: RwLock::default(),
            claimed_elsewhere: RwLock::default(),
            owned_at: RwLock::default(),
            applied_seq: watch::Sender::new(0),
            kick: Notify::new(),
            shards_from_snapshot: AtomicU32::new(0),
            shards_rebuilt: AtomicU32::new(0),
        }
    }

    /// Refuses writes for the customers of `shard` (being handed off) or lets them through
    /// again.
    pub fn fence(&self, shard: u32, fenced: bool) {
        let mut set = self.fenced.write();
        if fenced {
            set.insert(shard);
        } else {
            set.remove(&shard);
        }
    }

    /// Notes a read of the shard map that began at `read_at`: the shards it names this node
    /// for are confirmed owned as of then, and the `held` shards it gives to another node
    /// refuse writes until a later read names this node again.
    pub fn note_shard_map(&self, map: &BTreeMap<u32, String>, held: &[u32], read_at: Duration) {
        let mine = |owner: &String| owner == &self.node_id;
        let mut owned = self.owned_at.write();
        for (shard, _) in map.iter().filter(|(_, owner)| mine(owner)) {
            let at = owned.entry(*shard).or_insert(read_at);
            *at = (*at).max(read_at);
        }
        // A claim sent after this read began is newer than what the read says.
        owned.retain(|shard, at| map.get(shard).is_some_and(mine) || *at > read_at);
        let elsewhere: HashSet<u32> = held
            .iter()
            .copied()
            .filter(|shard| map.get(shard).is_some_and(|owner| !mine(owner)))
            .filter(|shard| !owned.contains_key(shard))
            .collect();
        drop(owned);
        let mut fenced = self.claimed_elsewhere.write();
        for shard in elsewhere.difference(&fenced) {
            tracing::info!(
                shard,
                owner = map.get(shard).map(String::as_str).unwrap_or_default(),
                "the shard map gives a held shard to another node: writes fenced"
            );
        }
        *fenced = elsewhere;
    }

    /// Notes that this node claimed `shards` in the map with a write sent at `sent_at`:
    /// they are its own as of then (no waiting for the guard's next read to take writes).
    pub fn note_claimed(&self, shards: &[u32], sent_at: Duration) {
        let mut owned = self.owned_at.write();
        let mut fenced = self.claimed_elsewhere.write();
        for shard in shards {
            fenced.remove(shard);
            let at = owned.entry(*shard).or_insert(sent_at);
            *at = (*at).max(sent_at);
        }
    }

    /// The shards of `shards` this node cannot vouch for without reading the map: no read
    /// within [`CONFIRM_WINDOW`] named this node for them.
    fn unconfirmed(&self, shards: &[u32], now: Duration) -> Vec<u32> {
        let owned = self.owned_at.read();
        shards
            .iter()
            .copied()
            .filter(|shard| {
                owned
                    .get(shard)
                    .is_none_or(|at| now.saturating_sub(*at) >= CONFIRM_WINDOW)
            })
            .collect()
    }

    /// The follower applied every event up to `seq`.
    pub fn mark_applied(&self, seq: u64) {
        self.applied_seq.send_if_modified(|applied| {
            let advanced = seq > *applied;
            *applied = (*applied).max(seq);
            advanced
        });
    }

    /// Resolves when new events were appended through this node.
    pub async fn kicked(&self) {
        self.kick.notified().await;
    }

    /// `(from snapshot, rebuilt)` shard takeovers so far.
    pub fn takeovers(&self) -> (u32, u32) {
        (
            self.shards_from_snapshot.load(Ordering::Relaxed),
            self.shards_rebuilt.load(Ordering::Relaxed),
        )
    }
}

impl Placement for ShardPlacement {
    fn check_holds(&self, engine: &Engine, id: &str, write: bool) -> Result<()> {
        let shard = doppel_types::shard::shard_of(id, engine.config().shard_count);
        if !engine.owns_shard(shard) {
            return Err(Error::Unavailable(format!(
                "shard {shard} (of customer `{id}`) is not held by this node; retry"
            )));
        }
        if write
            && (self.fenced.read().contains(&shard)
                || self.claimed_elsewhere.read().contains(&shard))
        {
            return Err(Error::Unavailable(format!(
                "shard {shard} (of customer `{id}`) is moving to another node; retry"
            )));
        }
        Ok(())
    }

    fn serves_everyone(&self) -> bool {
        false
    }

    fn follows_event_log(&self) -> bool {
        true
    }

    fn wait_applied(&self, seq: u64, patience: Duration) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            self.kick.notify_one();
            let mut applied = self.applied_seq.subscribe();
            tokio::time::timeout(patience, applied.wait_for(|a| *a >= seq))
                .await
                .is_ok_and(|r| r.is_ok())
        })
    }

    fn confirm_owned(&self, shards: Vec<u32>) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let unconfirmed = self.unconfirmed(&shards, clock_now());
            if unconfirmed.is_empty() {
                return Ok(());
            }
            let read_at = clock_now();
            let owners = self.store.shard_owners(&unconfirmed).await?;
            let mut owned = self.owned_at.write();
            for (shard, owner) in unconfirmed.into_iter().zip(owners) {
                if owner.as_deref() == Some(self.node_id.as_str()) {
                    owned.insert(shard, read_at);
                    continue;
                }
                drop(owned);
                // Refuse this shard's writes before they reach the store, until a read of
                // the map names this node again.
                self.claimed_elsewhere.write().insert(shard);
                let owner = owner.unwrap_or_else(|| "no node".into());
                tracing::warn!(
                    shard,
                    owner,
                    "a write was stored for a shard another node took over while this node was stalled: not acknowledged"
                );
                return Err(Error::Unavailable(format!(
                    "shard {shard} is now owned by {owner}: this node stalled past its lease; the write was stored but is not acknowledged here; retry"
                )));
            }
            Ok(())
        })
    }
}
