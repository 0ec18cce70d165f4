//! Vectors: per (tag, entity, version) a hash id → f32 bytes and a lex zset of ids.
//! Customer vectors live under their customer's shard tag (erasure reaches them in the
//! same script), item vectors under `{global}`.

use std::collections::BTreeMap;

use doppel_types::Entity;
use doppel_types::shard::ShardId;

use super::RedisStore;
use super::connect::{eval, parse};
use super::layout::Tag;
use super::paging::{hash_fields, merged_ids};
use crate::codec::{vector_from_bytes, vector_to_bytes};
use crate::error::Result;

/// KEYS: vectors hash, ids zset, vector versions set, [ledger to filter by].
/// ARGV: version, then id, bytes pairs. Returns the number stored.
const PUT: &str = r"
local stored = 0
for i = 2, #ARGV, 2 do
  local id = ARGV[i]
  if not KEYS[4] or redis.call('HEXISTS', KEYS[4], id) == 0 then
    redis.call('HSET', KEYS[1], id, ARGV[i + 1])
    redis.call('ZADD', KEYS[2], 0, id)
    stored = stored + 1
  end
end
if stored > 0 then redis.call('SADD', KEYS[3], ARGV[1]) end
return stored
";

/// KEYS: vectors hash, ids zset, vector versions set. ARGV: version.
const DROP_VERSION: &str = r"
redis.call('UNLINK', KEYS[1], KEYS[2])
redis.call('SREM', KEYS[3], ARGV[1])
return 1
";

/// Stores rows, one script per tag; customer rows of erased ids are dropped.
pub(super) async fn put_vectors(
    store: &RedisStore,
    version: &str,
    entity: Entity,
    rows: Vec<(String, Vec<f32>)>,
) -> Result<usize> {
    let layout = &store.layout;
    let mut by_tag: BTreeMap<Tag, Vec<(String, Vec<f32>)>> = BTreeMap::new();
    for (id, vector) in rows {
        by_tag
            .entry(layout.vector_tag(entity, &id))
            .or_default()
            .push((id, vector));
    }
    let cmds: Vec<_> = by_tag
        .into_iter()
        .map(|(tag, rows)| {
            let mut keys = vec![
                layout.vectors(tag, entity, version),
                layout.vector_ids(tag, entity, version),
                layout.vector_versions(tag, entity),
            ];
            if entity == Entity::Customer {
                keys.push(layout.erased(tag));
            }
            let mut cmd = eval(PUT, &keys);
            cmd.arg(version);
            for (id, vector) in rows {
                cmd.arg(id).arg(vector_to_bytes(&vector));
            }
            cmd
        })
        .collect();
    let mut stored = 0;
    for reply in store.conn.exec_grouped(&cmds).await? {
        stored += parse::<usize>(reply)?;
    }
    Ok(stored)
}

/// One vector.
pub(super) async fn get_vector(
    store: &RedisStore,
    version: &str,
    entity: Entity,
    id: &str,
) -> Result<Option<Vec<f32>>> {
    let layout = &store.layout;
    let mut cmd = redis::cmd("HGET");
    cmd.arg(layout.vectors(layout.vector_tag(entity, id), entity, version))
        .arg(id);
    let bytes: Option<Vec<u8>> = store.conn.query(&cmd).await?;
    bytes.map(|b| vector_from_bytes(id, &b)).transpose()
}

/// A page of one version's vectors of one entity, merged over the tags in id order.
pub(super) async fn scan_vectors(
    store: &RedisStore,
    version: &str,
    entity: Entity,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<(String, Vec<f32>)>> {
    let tags = store.layout.vector_tags(entity);
    scan_vectors_under(store, version, entity, &tags, after, limit).await
}

/// A page of one version's customer vectors of one logical shard, in id order.
pub(super) async fn scan_shard_vectors(
    store: &RedisStore,
    version: &str,
    shard: ShardId,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<(String, Vec<f32>)>> {
    let tags = [Tag::Shard(shard)];
    scan_vectors_under(store, version, Entity::Customer, &tags, after, limit).await
}

/// A page of one version's vectors of one entity under `tags`, merged in id order.
async fn scan_vectors_under(
    store: &RedisStore,
    version: &str,
    entity: Entity,
    tags: &[Tag],
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<(String, Vec<f32>)>> {
    let layout = &store.layout;
    let zsets: Vec<_> = tags
        .iter()
        .map(|tag| (*tag, layout.vector_ids(*tag, entity, version)))
        .collect();
    let ids = merged_ids(&store.conn, &zsets, after, limit).await?;
    let values = hash_fields(&store.conn, &ids, |tag| {
        layout.vectors(tag, entity, version)
    })
    .await?;
    ids.into_iter()
        .zip(values)
        .filter_map(|((_, id), bytes)| {
            bytes.map(|b| vector_from_bytes(&id, &b).map(|vector| (id, vector)))
        })
        .collect()
}

/// Scripts that drop every vector of `version` under every tag (both entities).
pub(super) fn drop_version_cmds(store: &RedisStore, version: &str) -> Vec<redis::Cmd> {
    let layout = &store.layout;
    let mut cmds = Vec::new();
    for entity in [Entity::Customer, Entity::Item] {
        for tag in layout.vector_tags(entity) {
            let keys = [
                layout.vectors(tag, entity, version),
                layout.vector_ids(tag, entity, version),
                layout.vector_versions(tag, entity),
            ];
            let mut cmd = eval(DROP_VERSION, &keys);
            cmd.arg(version);
            cmds.push(cmd);
        }
    }
    cmds
}
