//! Checkpoints of what the event log built (see [`doppel_types::event_checkpoint`]): one
//! postcard value per scope, a shard's under its own tag so that the erasure script of
//! any of its customers deletes it.

use doppel_types::{CheckpointScope, EventCheckpoint};

use super::RedisStore;
use super::layout::Tag;
use crate::codec::{decode, encode};
use crate::error::{Error, Result};

/// The key of `scope`'s checkpoint.
fn key(store: &RedisStore, scope: CheckpointScope) -> Result<String> {
    let layout = &store.layout;
    match scope {
        CheckpointScope::Items => Ok(layout.items_event_checkpoint()),
        CheckpointScope::Shard { shard, shard_count } => {
            if shard_count != layout.logical_shards() || shard >= shard_count {
                return Err(Error::Storage(format!(
                    "event checkpoint of shard {shard} of {shard_count}: this store keys \
                     customers by {} logical shards",
                    layout.logical_shards()
                )));
            }
            Ok(layout.shard_event_checkpoint(Tag::Shard(shard)))
        }
    }
}

/// Replaces the checkpoint of `scope`.
pub(super) async fn put(
    store: &RedisStore,
    scope: CheckpointScope,
    checkpoint: &EventCheckpoint,
) -> Result<()> {
    let mut cmd = redis::cmd("SET");
    cmd.arg(key(store, scope)?)
        .arg(encode("event checkpoint", checkpoint)?);
    store.conn.query::<()>(&cmd).await
}

/// The checkpoint of `scope`, if one was written (and not deleted by an erasure since).
pub(super) async fn get(
    store: &RedisStore,
    scope: CheckpointScope,
) -> Result<Option<EventCheckpoint>> {
    let key = key(store, scope)?;
    let mut cmd = redis::cmd("GET");
    cmd.arg(&key);
    let bytes: Option<Vec<u8>> = store.conn.query(&cmd).await?;
    bytes
        .map(|b| decode("event checkpoint", &key, &b))
        .transpose()
}
