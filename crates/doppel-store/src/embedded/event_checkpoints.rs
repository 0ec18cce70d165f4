//! Checkpoints of what the event log built (see [`doppel_types::event_checkpoint`]): per
//! scope a postcard record of everything but the customers, and one row per customer, so
//! an erasure removes the customer's row and the rest of its shard's checkpoint stays.
//!
//! Puts are monotonic: a checkpoint older than the stored one (a lagging writer) is not
//! written; nor are customers in the erasure ledger (erased after the writer read them). A record from before the per-customer rows, customers included, is still read;
//! an erasure of one of its customers removes it whole, as it always did.

use doppel_types::{CheckpointScope, CustomerHistory, EventCheckpoint};
use redb::{Database, ReadableTable, Table, WriteTransaction};

use super::{read, write};
use crate::codec::{decode, encode};
use crate::error::Result;
use crate::keys::{
    COUNTERS, ERASED, EVENT_CHECKPOINT_CUSTOMERS, EVENT_CHECKPOINTS, EVENTS_COMPACTED_THROUGH,
};

/// Replaces the checkpoint of `scope` unless the stored one is newer; true if written.
pub(crate) fn put(
    db: &Database,
    scope: CheckpointScope,
    checkpoint: &EventCheckpoint,
) -> Result<bool> {
    let key = scope.key();
    let head = EventCheckpoint {
        customers: Vec::new(),
        ..checkpoint.clone()
    };
    write(db, |txn| {
        let mut heads = txn.open_table(EVENT_CHECKPOINTS)?;
        let stored = heads
            .get(key.as_str())?
            .map(|v| decode::<EventCheckpoint>("event checkpoint", &key, v.value()))
            .transpose()?;
        if stored.is_some_and(|s| s.through_seq > checkpoint.through_seq) {
            return Ok(false);
        }
        heads.insert(key.as_str(), encode("event checkpoint", &head)?.as_slice())?;
        let mut rows = txn.open_table(EVENT_CHECKPOINT_CUSTOMERS)?;
        clear_rows(&mut rows, &key)?;
        let ledger = txn.open_table(ERASED)?;
        for history in &checkpoint.customers {
            // A customer erased after the writer read its memory is not put back.
            if ledger.get(history.customer_id.as_str())?.is_some() {
                continue;
            }
            rows.insert(
                (key.as_str(), history.customer_id.as_str()),
                encode("checkpoint customer", history)?.as_slice(),
            )?;
        }
        Ok(true)
    })
}

/// Moves the checkpoint of `scope` forward to `through` when it is older (the writer knows
/// nothing in the scope changed since it was written); false when there is none or it is
/// as new.
pub(crate) fn advance(db: &Database, scope: CheckpointScope, through: u64) -> Result<bool> {
    let key = scope.key();
    write(db, |txn| {
        let mut heads = txn.open_table(EVENT_CHECKPOINTS)?;
        let Some(mut head) = heads
            .get(key.as_str())?
            .map(|v| decode::<EventCheckpoint>("event checkpoint", &key, v.value()))
            .transpose()?
        else {
            return Ok(false);
        };
        if head.through_seq >= through {
            return Ok(false);
        }
        head.through_seq = through;
        heads.insert(key.as_str(), encode("event checkpoint", &head)?.as_slice())?;
        Ok(true)
    })
}

/// Removes every customer row of the scope named `key`.
fn clear_rows(rows: &mut Table<(&str, &str), &[u8]>, key: &str) -> Result<()> {
    let mut ids = Vec::new();
    for entry in rows.range((key, "")..)? {
        let (row, _) = entry?;
        let (scope, id) = row.value();
        if scope != key {
            break;
        }
        ids.push(id.to_owned());
    }
    for id in ids {
        rows.remove((key, id.as_str()))?;
    }
    Ok(())
}

/// The checkpoint of `scope`, if one was written, its customers in id order (an erased
/// customer's row is gone).
pub(crate) fn get(db: &Database, scope: CheckpointScope) -> Result<Option<EventCheckpoint>> {
    let key = scope.key();
    read(db, |txn| {
        let Some(mut checkpoint) = txn
            .open_table(EVENT_CHECKPOINTS)?
            .get(key.as_str())?
            .map(|v| decode::<EventCheckpoint>("event checkpoint", &key, v.value()))
            .transpose()?
        else {
            return Ok(None);
        };
        let rows = txn.open_table(EVENT_CHECKPOINT_CUSTOMERS)?;
        for entry in rows.range((key.as_str(), "")..)? {
            let (row, value) = entry?;
            let (scope, id) = row.value();
            if scope != key {
                break;
            }
            checkpoint.customers.push(decode::<CustomerHistory>(
                "checkpoint customer",
                id,
                value.value(),
            )?);
        }
        checkpoint
            .customers
            .sort_by(|a, b| a.customer_id.cmp(&b.customer_id));
        Ok(Some(checkpoint))
    })
}

/// The sequence number of each of `scopes`' checkpoints (none: not written).
pub(crate) fn seqs(db: &Database, scopes: &[CheckpointScope]) -> Result<Vec<Option<u64>>> {
    read(db, |txn| {
        let table = txn.open_table(EVENT_CHECKPOINTS)?;
        scopes
            .iter()
            .map(|scope| {
                let key = scope.key();
                table
                    .get(key.as_str())?
                    .map(|v| {
                        decode::<EventCheckpoint>("event checkpoint", &key, v.value())
                            .map(|c| c.through_seq)
                    })
                    .transpose()
            })
            .collect()
    })
}

/// The newest sequence number event retention removed (0: none).
pub(crate) fn compacted_through(db: &Database) -> Result<u64> {
    read(db, |txn| {
        Ok(txn
            .open_table(COUNTERS)?
            .get(EVENTS_COMPACTED_THROUGH)?
            .map_or(0, |v| v.value()))
    })
}

/// Removes, inside an erasure, customer `id`'s row from every shard checkpoint holding it
/// (and a record from before the rows, customers included, whole).
pub(crate) fn erase_member(txn: &WriteTransaction, id: &str) -> Result<()> {
    let mut heads = txn.open_table(EVENT_CHECKPOINTS)?;
    let mut rows = txn.open_table(EVENT_CHECKPOINT_CUSTOMERS)?;
    let mut legacy = Vec::new();
    let mut holding = Vec::new();
    for entry in heads.iter()? {
        let (key, value) = entry?;
        let key = key.value().to_owned();
        if !CheckpointScope::from_key(&key).is_some_and(|s| s.holds_customer(id)) {
            continue;
        }
        let head: EventCheckpoint = decode("event checkpoint", &key, value.value())?;
        if head.customers.is_empty() {
            holding.push(key);
        } else {
            legacy.push(key);
        }
    }
    for key in holding {
        rows.remove((key.as_str(), id))?;
    }
    for key in legacy {
        heads.remove(key.as_str())?;
    }
    Ok(())
}
