//! Erasure (right to be forgotten): one script over the customer's shard tag removes the
//! profile, every event and its recorded event ids, the customer's vector in every version,
//! its history in the shard's event checkpoint (and a checkpoint older releases wrote)
//! and writes the ledger entry — atomic on a standalone server and in a cluster slot alike.

use doppel_types::Entity;

use super::RedisStore;
use super::connect::eval;
use super::layout::Tag;
use crate::error::Result;

/// KEYS: customers hash, customer ids zset, events hash, event seqs zset, the customer's
/// events zset, customer vector versions set, ledger, the customer's event ids hash, the
/// shard's legacy event checkpoint, the shard's event checkpoint. ARGV: id, now (ms), vectors key
/// prefix, vector ids key prefix (a version completes each; same tag, so same slot).
/// Returns 1 if anything existed.
const ERASE: &str = r"
local id = ARGV[1]
local existed = redis.call('HDEL', KEYS[1], id)
redis.call('ZREM', KEYS[2], id)
for _, seq in ipairs(redis.call('ZRANGE', KEYS[5], 0, -1)) do
  existed = existed + redis.call('HDEL', KEYS[3], seq)
  redis.call('ZREM', KEYS[4], seq)
end
redis.call('DEL', KEYS[5], KEYS[8], KEYS[9])
redis.call('HDEL', KEYS[10], 'c:' .. id)
for _, version in ipairs(redis.call('SMEMBERS', KEYS[6])) do
  existed = existed + redis.call('HDEL', ARGV[3] .. version, id)
  redis.call('ZREM', ARGV[4] .. version, id)
end
redis.call('HSET', KEYS[7], id, ARGV[2])
if existed > 0 then return 1 end
return 0
";

/// Erases `id`; true if a profile, an event or a vector existed.
pub(super) async fn delete_customer(store: &RedisStore, id: &str) -> Result<bool> {
    let layout = &store.layout;
    let tag = layout.customer_tag(id);
    let keys = [
        layout.customers(tag),
        layout.customer_ids(tag),
        layout.events(tag),
        layout.event_seqs(tag),
        layout.customer_events(id),
        layout.vector_versions(tag, Entity::Customer),
        layout.erased(tag),
        layout.customer_event_ids(id),
        layout.legacy_shard_event_checkpoint(tag),
        layout.shard_event_checkpoint(tag),
    ];
    let mut cmd = eval(ERASE, &keys);
    cmd.arg(id)
        .arg(now_ms())
        .arg(layout.vectors_prefix(tag, Entity::Customer))
        .arg(layout.vector_ids_prefix(tag, Entity::Customer));
    let existed: i64 = store.conn.query(&cmd).await?;
    super::saved_audiences::erase_member(store, id).await?;
    Ok(existed == 1)
}

/// The ledger of every shard, in id order.
pub(super) async fn erased_customers(store: &RedisStore) -> Result<Vec<String>> {
    let layout = &store.layout;
    let cmds: Vec<_> = layout
        .shard_tags()
        .into_iter()
        .map(|tag: Tag| {
            let mut cmd = redis::cmd("HKEYS");
            cmd.arg(layout.erased(tag));
            cmd
        })
        .collect();
    let per_shard: Vec<Vec<String>> = store.conn.query_each(&cmds).await?;
    let mut ids: Vec<String> = per_shard.into_iter().flatten().collect();
    ids.sort_unstable();
    Ok(ids)
}

/// Is `id` in its shard's ledger?
pub(super) async fn is_erased(store: &RedisStore, id: &str) -> Result<bool> {
    let mut cmd = redis::cmd("HEXISTS");
    cmd.arg(store.layout.erased(store.layout.customer_tag(id)))
        .arg(id);
    store.conn.query(&cmd).await
}

/// Current time in ms since the Unix epoch (0 if the clock is before it).
fn now_ms() -> u64 {
    // The one clock (doppel_types::clock), as the unsigned ms the store records.
    u64::try_from(doppel_types::clock::now_ms()).unwrap_or(0)
}
