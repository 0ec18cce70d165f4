//! Checkpoints of what the event log built (see [`doppel_types::event_checkpoint`]): a hash
//! per scope, a shard's under its own tag — `through`, `head` (everything but the
//! customers) and a `c:<id>` field per customer, so the erasure script of any of its
//! customers deletes that customer's field and the rest stays.
//!
//! A put writes a temporary hash and renames it over the checkpoint in one script, which
//! refuses a checkpoint older than the stored one and first drops the fields of customers
//! in the shard's erasure ledger (one erased after the writer read its memory). A
//! checkpoint older releases wrote (one value) is not read: the node replays the log
//! instead, and the next put deletes it.

use doppel_types::{CheckpointScope, CustomerHistory, EventCheckpoint};

use super::RedisStore;
use super::connect::eval;
use super::layout::Tag;
use super::saved_audiences::{TMP_TTL_MS, nonce};
use crate::codec::{decode, encode};
use crate::error::{Error, Result};

/// Customer fields per `HSET` and per `HSCAN` page.
const CHUNK: usize = 1_000;

/// Reads of a checkpoint retried when a put replaced it meanwhile.
const READ_ATTEMPTS: usize = 5;

/// KEYS: checkpoint, temporary hash, legacy key, then the shard's erasure ledger (none for
/// the items). ARGV: the new `through`. Returns 1 if renamed, 0 if the stored one is newer.
const COMMIT: &str = r"
local old = redis.call('HGET', KEYS[1], 'through')
if old and tonumber(old) > tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[2])
  return 0
end
if KEYS[4] then
  -- Over the smaller of the ledger and the checkpoint.
  if redis.call('HLEN', KEYS[4]) <= redis.call('HLEN', KEYS[2]) then
    for _, id in ipairs(redis.call('HKEYS', KEYS[4])) do
      redis.call('HDEL', KEYS[2], 'c:' .. id)
    end
  else
    for _, field in ipairs(redis.call('HKEYS', KEYS[2])) do
      if string.sub(field, 1, 2) == 'c:'
        and redis.call('HEXISTS', KEYS[4], string.sub(field, 3)) == 1 then
        redis.call('HDEL', KEYS[2], field)
      end
    end
  end
end
redis.call('RENAME', KEYS[2], KEYS[1])
redis.call('PERSIST', KEYS[1])
redis.call('DEL', KEYS[3])
return 1
";

/// KEYS: checkpoint. ARGV: a sequence number; `through` becomes it if older. Returns 1
/// if moved.
const ADVANCE: &str = r"
local old = redis.call('HGET', KEYS[1], 'through')
if old and tonumber(old) < tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'through', ARGV[1])
  return 1
end
return 0
";

/// The keys of `scope`: its checkpoint, its tag, and the key older releases used.
fn keys(store: &RedisStore, scope: CheckpointScope) -> Result<(String, Tag, String)> {
    let layout = &store.layout;
    match scope {
        CheckpointScope::Items => Ok((
            layout.items_event_checkpoint(),
            Tag::Global,
            layout.legacy_items_event_checkpoint(),
        )),
        CheckpointScope::Shard { shard, shard_count } => {
            if shard_count != layout.logical_shards() || shard >= shard_count {
                return Err(Error::Storage(format!(
                    "event checkpoint of shard {shard} of {shard_count}: this store keys \
                     customers by {} logical shards",
                    layout.logical_shards()
                )));
            }
            let tag = Tag::Shard(shard);
            Ok((
                layout.shard_event_checkpoint(tag),
                tag,
                layout.legacy_shard_event_checkpoint(tag),
            ))
        }
    }
}

/// Replaces the checkpoint of `scope` unless the stored one is newer; true if written.
pub(super) async fn put(
    store: &RedisStore,
    scope: CheckpointScope,
    checkpoint: &EventCheckpoint,
) -> Result<bool> {
    let (key, tag, legacy) = keys(store, scope)?;
    let tmp = format!("{key}:next:{}", nonce());
    let head = EventCheckpoint {
        customers: Vec::new(),
        ..checkpoint.clone()
    };
    let mut first = redis::cmd("HSET");
    first
        .arg(&tmp)
        .arg("through")
        .arg(checkpoint.through_seq)
        .arg("head")
        .arg(encode("event checkpoint", &head)?);
    let mut expire = redis::cmd("PEXPIRE");
    expire.arg(&tmp).arg(TMP_TTL_MS);
    let mut cmds = vec![first, expire];
    for chunk in checkpoint.customers.chunks(CHUNK) {
        let mut hset = redis::cmd("HSET");
        hset.arg(&tmp);
        for history in chunk {
            hset.arg(format!("c:{}", history.customer_id))
                .arg(encode("checkpoint customer", history)?);
        }
        cmds.push(hset);
    }
    for cmd in &cmds {
        if let Err(e) = store.conn.query::<()>(cmd).await {
            let mut del = redis::cmd("DEL");
            del.arg(&tmp);
            let _ = store.conn.query::<()>(&del).await;
            return Err(e);
        }
    }
    let mut commit_keys = vec![key, tmp, legacy];
    if let Tag::Shard(_) = tag {
        commit_keys.push(store.layout.erased(tag));
    }
    let mut cmd = eval(COMMIT, &commit_keys);
    cmd.arg(checkpoint.through_seq);
    let renamed: i64 = store.conn.query(&cmd).await?;
    Ok(renamed == 1)
}

/// The checkpoint of `scope`, if one was written, its customers in id order.
pub(super) async fn get(
    store: &RedisStore,
    scope: CheckpointScope,
) -> Result<Option<EventCheckpoint>> {
    let (key, _, _) = keys(store, scope)?;
    for _ in 0..READ_ATTEMPTS {
        let Some((through, head)) = read_head(store, &key).await? else {
            return Ok(None);
        };
        let mut checkpoint: EventCheckpoint = decode("event checkpoint", &key, &head)?;
        // `through` may have been moved forward since the head was written.
        checkpoint.through_seq = through;
        let mut cursor = 0u64;
        loop {
            let mut cmd = redis::cmd("HSCAN");
            cmd.arg(&key)
                .arg(cursor)
                .arg("MATCH")
                .arg("c:*")
                .arg("COUNT")
                .arg(CHUNK);
            let (next, fields): (u64, Vec<(String, Vec<u8>)>) = store.conn.query(&cmd).await?;
            for (field, bytes) in fields {
                checkpoint.customers.push(decode::<CustomerHistory>(
                    "checkpoint customer",
                    &field,
                    &bytes,
                )?);
            }
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        // A put renamed a newer checkpoint in while the fields were read: read it again.
        if read_head(store, &key).await?.map(|(t, _)| t) != Some(through) {
            continue;
        }
        checkpoint
            .customers
            .sort_by(|a, b| a.customer_id.cmp(&b.customer_id));
        // HSCAN may return a field twice.
        checkpoint
            .customers
            .dedup_by(|a, b| a.customer_id == b.customer_id);
        return Ok(Some(checkpoint));
    }
    Err(Error::Storage(format!(
        "event checkpoint `{key}` replaced {READ_ATTEMPTS} times while being read"
    )))
}

/// Moves the checkpoint of `scope` forward to `through` when it is older.
pub(super) async fn advance(
    store: &RedisStore,
    scope: CheckpointScope,
    through: u64,
) -> Result<bool> {
    let (key, _, _) = keys(store, scope)?;
    let mut cmd = eval(ADVANCE, &[key]);
    cmd.arg(through);
    let moved: i64 = store.conn.query(&cmd).await?;
    Ok(moved == 1)
}

/// The checkpoint's `through` and `head`, if it exists.
async fn read_head(store: &RedisStore, key: &str) -> Result<Option<(u64, Vec<u8>)>> {
    let mut cmd = redis::cmd("HMGET");
    cmd.arg(key).arg("through").arg("head");
    let (through, head): (Option<u64>, Option<Vec<u8>>) = store.conn.query(&cmd).await?;
    Ok(through.zip(head))
}

/// The sequence number of each of `scopes`' checkpoints (none: not written).
pub(super) async fn seqs(
    store: &RedisStore,
    scopes: &[CheckpointScope],
) -> Result<Vec<Option<u64>>> {
    let cmds = scopes
        .iter()
        .map(|scope| {
            let (key, _, _) = keys(store, *scope)?;
            let mut cmd = redis::cmd("HGET");
            cmd.arg(key).arg("through");
            Ok(cmd)
        })
        .collect::<Result<Vec<_>>>()?;
    store.conn.query_each(&cmds).await
}

/// The newest sequence number event retention removed (0: none).
pub(super) async fn compacted_through(store: &RedisStore) -> Result<u64> {
    let mut cmd = redis::cmd("GET");
    cmd.arg(store.layout.events_compacted_through());
    let through: Option<u64> = store.conn.query(&cmd).await?;
    Ok(through.unwrap_or(0))
}
