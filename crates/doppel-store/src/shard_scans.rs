//! Scans limited to one logical shard, for a store that does not key customers by logical
//! shard (the embedded store, or Redis asked about another shard count): the whole scan,
//! page by page, keeping the shard's records. Only an empty page ends a scan (Redis leaves
//! records erased between two reads out of a page, so a short page is not the last). The [`Store`] methods
//! `scan_shard_customers`, `scan_shard_events` and `scan_shard_vectors` default to these.

use doppel_types::shard::{ShardId, shard_of};
use doppel_types::{Customer, Entity, Event};

use crate::error::Result;
use crate::store_trait::Store;

/// Up to `limit` customers of `shard` after `after`, in id order.
pub async fn customers<S: Store + ?Sized>(
    store: &S,
    shard: ShardId,
    shard_count: u32,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<Customer>> {
    let page = limit.max(1);
    let mut cursor = after.map(str::to_owned);
    let mut kept = Vec::new();
    while kept.len() < limit {
        let rows = store.scan_customers(cursor.as_deref(), page).await?;
        let Some(last) = rows.last() else { break };
        cursor = Some(last.id.clone());
        kept.extend(
            rows.into_iter()
                .filter(|c| shard_of(&c.id, shard_count) == shard),
        );
    }
    kept.truncate(limit);
    Ok(kept)
}

/// Up to `limit` events of `shard`'s customers with seqs > `after_seq`, in seq order.
pub async fn events<S: Store + ?Sized>(
    store: &S,
    shard: ShardId,
    shard_count: u32,
    after_seq: u64,
    limit: usize,
) -> Result<Vec<(u64, Event)>> {
    let page = limit.max(1);
    let mut cursor = after_seq;
    let mut kept = Vec::new();
    while kept.len() < limit {
        let rows = store.scan_events(cursor, page).await?;
        let Some((last, _)) = rows.last() else { break };
        cursor = *last;
        kept.extend(
            rows.into_iter()
                .filter(|(_, e)| shard_of(&e.customer_id, shard_count) == shard),
        );
    }
    kept.truncate(limit);
    Ok(kept)
}

/// Up to `limit` customer vectors of `shard` in `version` after `after`, in id order.
pub async fn vectors<S: Store + ?Sized>(
    store: &S,
    version: &str,
    shard: ShardId,
    shard_count: u32,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<(String, Vec<f32>)>> {
    let page = limit.max(1);
    let mut cursor = after.map(str::to_owned);
    let mut kept = Vec::new();
    while kept.len() < limit {
        let rows = store
            .scan_vectors(version, Entity::Customer, cursor.as_deref(), page)
            .await?;
        let Some((last, _)) = rows.last() else { break };
        cursor = Some(last.clone());
        kept.extend(
            rows.into_iter()
                .filter(|(id, _)| shard_of(id, shard_count) == shard),
        );
    }
    kept.truncate(limit);
    Ok(kept)
}
