//! The one paged reader of the store: every full scan (profiles at start-up, items, the
//! event log, a version's vectors) goes through [`read_pages`], so page size and cursor
//! handling are written once.

use std::future::Future;

use doppel_store::Store;
use doppel_types::{Customer, Entity, Event, Item};

use crate::error::Result;

/// Rows fetched per store page.
pub const PAGE: usize = 10_000;

/// Calls `fetch(cursor)` page after page (`None` first, then the cursor `key` gives of the
/// last row), handing each page to `each`, until a page comes back empty or `each` says
/// stop.
///
/// The next page is fetched while `each` works on the current one: the embedded store reads
/// on a blocking thread and Redis answers over the network, so reading and applying overlap
/// (a start-up reads every profile this way). A scan `each` stops may have read one page
/// more than it used.
pub async fn read_pages<T, K, F, Fut>(
    mut fetch: F,
    key: impl Fn(&T) -> K,
    mut each: impl FnMut(Vec<T>) -> bool,
) -> Result<()>
where
    F: FnMut(Option<K>) -> Fut,
    Fut: Future<Output = doppel_store::Result<Vec<T>>>,
{
    let mut page = fetch(None).await?;
    loop {
        // Only an empty page ends the scan: Redis leaves out of a page the records erased
        // between reading its ids and their values, so a short page is not the last.
        if page.is_empty() {
            each(page);
            return Ok(());
        }
        let cursor = page.last().map(&key);
        // `join!` polls the fetch first: it has started reading when `each` runs.
        let (next, go_on) = tokio::join!(fetch(cursor), async { each(page) });
        if !go_on {
            return Ok(());
        }
        page = next?;
    }
}

/// Every customer profile `keep` selects, a page at a time (handed over, so the profiles
/// can be moved into place).
pub async fn customers(
    store: &dyn Store,
    keep: &(dyn Fn(&str) -> bool + Sync),
    mut each: impl FnMut(Vec<Customer>),
) -> Result<()> {
    read_pages(
        |after: Option<String>| async move { store.scan_customers(after.as_deref(), PAGE).await },
        |c: &Customer| c.id.clone(),
        |mut page| {
            page.retain(|c| keep(&c.id));
            each(page);
            true
        },
    )
    .await
}

/// Every item.
pub async fn items(store: &dyn Store, mut each: impl FnMut(&Item)) -> Result<()> {
    read_pages(
        |after: Option<String>| async move { store.scan_items(after.as_deref(), PAGE).await },
        |i: &Item| i.id.clone(),
        |page| {
            page.iter().for_each(&mut each);
            true
        },
    )
    .await
}

/// Calls `f(seq, event)` for every event of the log after `from` up to `upto` (all when
/// `None`), in sequence order; returns the last sequence number seen (0 for none).
pub async fn events(
    store: &dyn Store,
    from: u64,
    upto: Option<u64>,
    f: &mut (dyn FnMut(u64, &Event) + Send),
) -> Result<u64> {
    let mut last = 0;
    read_pages(
        |after: Option<u64>| async move { store.scan_events(after.unwrap_or(from), PAGE).await },
        |(seq, _): &(u64, Event)| *seq,
        |page| {
            for (seq, event) in &page {
                if upto.is_some_and(|u| *seq > u) {
                    return false;
                }
                f(*seq, event);
                last = *seq;
            }
            true
        },
    )
    .await?;
    Ok(last)
}

/// Every vector of one entity of `version`, in id order.
pub async fn vectors(
    store: &dyn Store,
    version: &str,
    entity: Entity,
) -> Result<Vec<(String, Vec<f32>)>> {
    let mut rows = Vec::new();
    read_pages(
        |after: Option<String>| async move {
            store
                .scan_vectors(version, entity, after.as_deref(), PAGE)
                .await
        },
        |(id, _): &(String, Vec<f32>)| id.clone(),
        |page| {
            rows.extend(page);
            true
        },
    )
    .await?;
    Ok(rows)
}

/// Every customer profile of logical shard `shard` (of `shard_count`), a page at a time: a
/// store keyed by logical shard reads only that shard.
pub async fn shard_customers(
    store: &dyn Store,
    shard: u32,
    shard_count: u32,
    mut each: impl FnMut(Vec<Customer>),
) -> Result<()> {
    read_pages(
        |after: Option<String>| async move {
            store
                .scan_shard_customers(shard, shard_count, after.as_deref(), PAGE)
                .await
        },
        |c: &Customer| c.id.clone(),
        |page| {
            each(page);
            true
        },
    )
    .await
}

/// Calls `f(seq, event)` for every event of logical shard `shard`'s customers after
/// `from` up to `upto`, in sequence order.
pub async fn shard_events(
    store: &dyn Store,
    shard: u32,
    shard_count: u32,
    from: u64,
    upto: u64,
    f: &mut (dyn FnMut(u64, &Event) + Send),
) -> Result<()> {
    read_pages(
        |after: Option<u64>| async move {
            store
                .scan_shard_events(shard, shard_count, after.unwrap_or(from), PAGE)
                .await
        },
        |(seq, _): &(u64, Event)| *seq,
        |page| {
            for (seq, event) in &page {
                if *seq > upto {
                    return false;
                }
                f(*seq, event);
            }
            true
        },
    )
    .await
}

/// Every customer vector of logical shard `shard` in `version`, in id order.
pub async fn shard_vectors(
    store: &dyn Store,
    version: &str,
    shard: u32,
    shard_count: u32,
) -> Result<Vec<(String, Vec<f32>)>> {
    let mut rows = Vec::new();
    read_pages(
        |after: Option<String>| async move {
            store
                .scan_shard_vectors(version, shard, shard_count, after.as_deref(), PAGE)
                .await
        },
        |(id, _): &(String, Vec<f32>)| id.clone(),
        |page| {
            rows.extend(page);
            true
        },
    )
    .await?;
    Ok(rows)
}
