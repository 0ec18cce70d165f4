//! Checkpoints of what the event log built (see [`doppel_types::event_checkpoint`]), one
//! postcard record per scope.

use doppel_types::{CheckpointScope, EventCheckpoint};
use redb::{Database, ReadableTable, WriteTransaction};

use super::{read, write};
use crate::codec::decode;
use crate::error::Result;
use crate::keys::EVENT_CHECKPOINTS;

/// Replaces the checkpoint of `scope` with `bytes` (a postcard [`EventCheckpoint`]).
pub(crate) fn put(db: &Database, scope: CheckpointScope, bytes: &[u8]) -> Result<()> {
    write(db, |txn| {
        txn.open_table(EVENT_CHECKPOINTS)?
            .insert(scope.key().as_str(), bytes)?;
        Ok(())
    })
}

/// The checkpoint of `scope`, if one was written (and not removed by an erasure since).
pub(crate) fn get(db: &Database, scope: CheckpointScope) -> Result<Option<EventCheckpoint>> {
    let key = scope.key();
    read(db, |txn| {
        txn.open_table(EVENT_CHECKPOINTS)?
            .get(key.as_str())?
            .map(|v| decode("event checkpoint", &key, v.value()))
            .transpose()
    })
}

/// Removes, inside an erasure, every shard checkpoint holding customer `id`.
pub(crate) fn erase_member(txn: &WriteTransaction, id: &str) -> Result<()> {
    let mut table = txn.open_table(EVENT_CHECKPOINTS)?;
    let mut holding = Vec::new();
    for entry in table.iter()? {
        let (key, _) = entry?;
        let key = key.value().to_owned();
        if CheckpointScope::from_key(&key).is_some_and(|s| s.holds_customer(id)) {
            holding.push(key);
        }
    }
    for key in holding {
        table.remove(key.as_str())?;
    }
    Ok(())
}
