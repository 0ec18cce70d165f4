//! The ownership guard of a shard node: reads the shard map every [`GUARD_EVERY`], on its
//! own task (the manager can be busy loading shards for a long time), and tells the
//! [`ShardPlacement`] which shards the map still names this node for (writes to them are
//! acknowledged without another read) and which held shards it gives to another node
//! (their writes are refused). See `placement` for why this fences a paused owner.

use std::sync::Arc;
use std::time::Duration;

use doppel_engine::Engine;
use doppel_store::RedisStore;
use tokio::sync::watch;

use crate::shard::placement::ShardPlacement;

/// How often the shard map is read: well inside [`CONFIRM_WINDOW`](crate::shard::placement::CONFIRM_WINDOW),
/// so a running node never reads it per write.
pub const GUARD_EVERY: Duration = Duration::from_millis(500);

/// Runs until `stop` turns true.
pub async fn run(
    store: RedisStore,
    engine: Arc<Engine>,
    placement: Arc<ShardPlacement>,
    mut stop: watch::Receiver<bool>,
) {
    while !*stop.borrow() {
        let read_at = crate::shard::placement::clock_now();
        match store.shard_map().await {
            Ok(map) => placement.note_shard_map(&map, &engine.held_shards(), read_at),
            Err(e) => tracing::debug!(error = %e, "ownership guard: shard map not read"),
        }
        tokio::select! {
            () = tokio::time::sleep(GUARD_EVERY) => {}
            _ = stop.changed() => {}
        }
    }
}
