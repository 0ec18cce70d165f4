//! A shard node's [`Placement`]: the shards it holds (in the engine), the shards it is
//! handing off (fenced: writes refused), the event-log follower's progress (writes wait
//! for it, for read-your-writes), and counts of how shard takeovers were served. This is
//! cluster state, so it lives here, not in the node.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use doppel_engine::Engine;
use doppel_node::{Error, Placement, Result};
use futures::future::BoxFuture;
use parking_lot::RwLock;
use tokio::sync::{Notify, watch};

/// The placement of one shard node.
#[derive(Debug)]
pub struct ShardPlacement {
    /// Shards being handed off; writes for their customers are refused.
    fenced: RwLock<HashSet<u32>>,
    /// The last event sequence number the follower applied.
    applied_seq: watch::Sender<u64>,
    /// Wakes the follower (new events were appended through this node).
    kick: Notify,
    /// Shard takeovers served from a snapshot file (patched from the store).
    pub shards_from_snapshot: AtomicU32,
    /// Shard takeovers built from the store's vectors.
    pub shards_rebuilt: AtomicU32,
}

impl Default for ShardPlacement {
    fn default() -> Self {
        Self {
            fenced: RwLock::default(),
            applied_seq: watch::Sender::new(0),
            kick: Notify::new(),
            shards_from_snapshot: AtomicU32::new(0),
            shards_rebuilt: AtomicU32::new(0),
        }
    }
}

impl ShardPlacement {
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
        if write && self.fenced.read().contains(&shard) {
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
}
