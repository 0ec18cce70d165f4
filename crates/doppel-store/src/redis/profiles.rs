//! Customer profiles (one hash and one id zset per shard) and items (the same under
//! `{global}`): upserts as one script per tag, gets, id-ordered paging.

use std::collections::BTreeMap;

use doppel_types::shard::ShardId;
use doppel_types::{Customer, Item};
use serde::de::DeserializeOwned;

use super::RedisStore;
use super::connect::eval;
use super::layout::Tag;
use super::paging::{hash_fields, merged_ids};
use crate::codec::{decode, encode};
use crate::error::Result;

/// KEYS: records hash, ids zset, [erasure ledger to clear]. ARGV: id, bytes, id, bytes...
const UPSERT: &str = r"
for i = 1, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  redis.call('ZADD', KEYS[2], 0, ARGV[i])
  if KEYS[3] then redis.call('HDEL', KEYS[3], ARGV[i]) end
end
return #ARGV / 2
";

/// Upserts customers, one script per shard, clearing their ledger entries.
pub(super) async fn upsert_customers(store: &RedisStore, customers: Vec<Customer>) -> Result<()> {
    let layout = &store.layout;
    let mut by_tag: BTreeMap<Tag, Vec<(String, Vec<u8>)>> = BTreeMap::new();
    for customer in &customers {
        by_tag
            .entry(layout.customer_tag(&customer.id))
            .or_default()
            .push((customer.id.clone(), encode("customer", customer)?));
    }
    let cmds: Vec<_> = by_tag
        .into_iter()
        .map(|(tag, records)| {
            let keys = [
                layout.customers(tag),
                layout.customer_ids(tag),
                layout.erased(tag),
            ];
            let mut cmd = eval(UPSERT, &keys);
            for (id, bytes) in records {
                cmd.arg(id).arg(bytes);
            }
            cmd
        })
        .collect();
    store.conn.exec_grouped(&cmds).await?;
    Ok(())
}

/// Upserts items in one script.
pub(super) async fn upsert_items(store: &RedisStore, items: Vec<Item>) -> Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    let layout = &store.layout;
    let mut cmd = eval(UPSERT, &[layout.items(), layout.item_ids()]);
    for item in &items {
        cmd.arg(&item.id).arg(encode("item", item)?);
    }
    store.conn.exec_grouped(&[cmd]).await?;
    Ok(())
}

/// A customer by id.
pub(super) async fn get_customer(store: &RedisStore, id: &str) -> Result<Option<Customer>> {
    let key = store.layout.customers(store.layout.customer_tag(id));
    get(store, key, "customer", id).await
}

/// Customers by id, one `HMGET` per shard, in input order.
pub(super) async fn get_customers(
    store: &RedisStore,
    ids: &[String],
) -> Result<Vec<Option<Customer>>> {
    let layout = &store.layout;
    let fields: Vec<(Tag, String)> = ids
        .iter()
        .map(|id| (layout.customer_tag(id), id.clone()))
        .collect();
    let values = hash_fields(&store.conn, &fields, |tag| layout.customers(tag)).await?;
    ids.iter()
        .zip(values)
        .map(|(id, bytes)| bytes.map(|b| decode("customer", id, &b)).transpose())
        .collect()
}

/// An item by id.
pub(super) async fn get_item(store: &RedisStore, id: &str) -> Result<Option<Item>> {
    get(store, store.layout.items(), "item", id).await
}

/// A page of customers after `after`, merged over the shards.
pub(super) async fn scan_customers(
    store: &RedisStore,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<Customer>> {
    scan_customers_under(store, &store.layout.shard_tags(), after, limit).await
}

/// A page of the customers of one logical shard after `after` (this store's shard count).
pub(super) async fn scan_shard_customers(
    store: &RedisStore,
    shard: ShardId,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<Customer>> {
    scan_customers_under(store, &[Tag::Shard(shard)], after, limit).await
}

/// A page of the customers under `tags` after `after`, merged in id order.
async fn scan_customers_under(
    store: &RedisStore,
    tags: &[Tag],
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<Customer>> {
    let layout = &store.layout;
    let zsets: Vec<_> = tags
        .iter()
        .map(|tag| (*tag, layout.customer_ids(*tag)))
        .collect();
    scan(
        store,
        &zsets,
        |tag| layout.customers(tag),
        "customer",
        after,
        limit,
    )
    .await
}

/// A page of items after `after`.
pub(super) async fn scan_items(
    store: &RedisStore,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<Item>> {
    let layout = &store.layout;
    let zsets = [(Tag::Global, layout.item_ids())];
    scan(store, &zsets, |_| layout.items(), "item", after, limit).await
}

async fn get<T: DeserializeOwned>(
    store: &RedisStore,
    hash: String,
    what: &'static str,
    id: &str,
) -> Result<Option<T>> {
    let mut cmd = redis::cmd("HGET");
    cmd.arg(hash).arg(id);
    let bytes: Option<Vec<u8>> = store.conn.query(&cmd).await?;
    bytes.map(|b| decode(what, id, &b)).transpose()
}

async fn scan<T: DeserializeOwned>(
    store: &RedisStore,
    zsets: &[(Tag, String)],
    hash_key: impl Fn(Tag) -> String,
    what: &'static str,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<T>> {
    let ids = merged_ids(&store.conn, zsets, after, limit).await?;
    let values = hash_fields(&store.conn, &ids, hash_key).await?;
    // A record erased between the two reads is skipped.
    ids.iter()
        .zip(values)
        .filter_map(|((_, id), bytes)| bytes.map(|b| decode(what, id, &b)))
        .collect()
}
