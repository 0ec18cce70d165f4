//! Saved audiences under `{global}` (one slot, so scripts may touch every key): a hash of
//! info records and one of query bytes by id; per audience a sorted set of members scored
//! by rank and a hash of their scores. A write fills temporary keys, then one script checks
//! the limits, drops members erased meanwhile and renames them into place. Erasure is one
//! script that takes the customer out of every audience and remembers it for a day, so a
//! write that was computed before the erasure cannot bring it back. Sizes are the member
//! sets' cardinalities.

use doppel_types::{SavedAudienceInfo, SavedAudienceLimits, SavedAudienceWrite, SavedMember};
use redis::Cmd;

use super::RedisStore;
use super::connect::eval;
use super::layout::Tag;
use super::paging::hash_fields;
use crate::codec::{decode, encode};
use crate::error::{Error, Result};

/// Members and scores are written to temporary keys in chunks of this many.
const CHUNK: usize = 1_000;

/// KEYS: infos, queries, members, scores, tmp members, tmp scores, total, recent erasures.
/// ARGV: id, info bytes, query bytes ("" keeps the stored query), mode ("create" |
/// "replace"), max audiences, max members, computed since (ms). Returns the kept size, or
/// -1 (too many audiences), -2 (gone), -3 (too many members), -4 (id taken).
const COMMIT: &str = r"
local exists = redis.call('HEXISTS', KEYS[1], ARGV[1])
local function fail(code)
  redis.call('DEL', KEYS[5], KEYS[6])
  return code
end
if ARGV[4] == 'create' then
  if exists == 1 then return fail(-4) end
  if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[5]) then return fail(-1) end
elseif exists == 0 then
  return fail(-2)
end
for _, c in ipairs(redis.call('ZRANGEBYSCORE', KEYS[8], ARGV[7], '+inf')) do
  if redis.call('ZREM', KEYS[5], c) == 1 then redis.call('HDEL', KEYS[6], c) end
end
local old = redis.call('ZCARD', KEYS[3])
local new = redis.call('ZCARD', KEYS[5])
local total = tonumber(redis.call('GET', KEYS[7]) or '0')
if total - old + new > tonumber(ARGV[6]) then return fail(-3) end
redis.call('DEL', KEYS[3], KEYS[4])
if new > 0 then
  redis.call('RENAME', KEYS[5], KEYS[3])
  redis.call('RENAME', KEYS[6], KEYS[4])
  redis.call('PERSIST', KEYS[3])
  redis.call('PERSIST', KEYS[4])
else
  redis.call('DEL', KEYS[5], KEYS[6])
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[2], ARGV[1], ARGV[3]) end
redis.call('SET', KEYS[7], total - old + new)
return new
";

/// KEYS: infos, queries, members, scores, total. ARGV: id.
const DELETE: &str = r"
local existed = redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
local n = redis.call('ZCARD', KEYS[3])
redis.call('DEL', KEYS[3], KEYS[4])
if n > 0 then redis.call('DECRBY', KEYS[5], n) end
return existed
";

/// KEYS: infos, total, recent erasures. ARGV: customer, now (ms), members key prefix,
/// scores key prefix.
const ERASE: &str = r"
local removed = 0
for _, id in ipairs(redis.call('HKEYS', KEYS[1])) do
  if redis.call('ZREM', ARGV[3] .. id, ARGV[1]) == 1 then
    redis.call('HDEL', ARGV[4] .. id, ARGV[1])
    removed = removed + 1
  end
end
if removed > 0 then redis.call('DECRBY', KEYS[2], removed) end
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', tonumber(ARGV[2]) - 86400000)
return removed
";

/// KEYS: infos, queries. ARGV: id, expected query bytes, new query bytes.
const PUT_QUERY: &str = r"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1
";

/// Temporary keys expire after this long if a write dies before its commit (ms).
pub(super) const TMP_TTL_MS: u64 = 3_600_000;

/// A random nonce for temporary keys (two writers of one audience never share them).
pub(super) fn nonce() -> String {
    use std::hash::{BuildHasher, Hasher};
    let part = || {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        h.finish()
    };
    format!("{:016x}{:016x}", part(), part())
}

/// Writes an audience (see `Store::put_saved_audience`).
pub(super) async fn put(
    store: &RedisStore,
    info: &SavedAudienceInfo,
    query: Option<&[u8]>,
    members: &[SavedMember],
    mode: SavedAudienceWrite,
    limits: SavedAudienceLimits,
) -> Result<SavedAudienceInfo> {
    let layout = &store.layout;
    let id = info.id.as_str();
    // A repeated member keeps its best rank.
    let mut seen = std::collections::HashSet::with_capacity(members.len());
    let members: Vec<&SavedMember> = members
        .iter()
        .filter(|m| seen.insert(m.customer_id.as_str()))
        .collect();
    // Members already in the erasure ledger are left out here; one erased from now on is
    // taken out by the commit (the erasure script remembers it).
    let fields: Vec<(Tag, String)> = members
        .iter()
        .map(|m| (layout.customer_tag(&m.customer_id), m.customer_id.clone()))
        .collect();
    let erased = hash_fields(&store.conn, &fields, |tag| layout.erased(tag)).await?;
    let kept: Vec<&SavedMember> = members
        .into_iter()
        .zip(erased)
        .filter(|(_, e)| e.is_none())
        .map(|(m, _)| m)
        .collect();
    let nonce = nonce();
    let tmp_members = layout.saved_audience_members(&format!("{id}:tmp:{nonce}"));
    let tmp_scores = layout.saved_audience_scores(&format!("{id}:tmp:{nonce}"));
    let mut cmds: Vec<Cmd> = Vec::new();
    for (c, chunk) in kept.chunks(CHUNK).enumerate() {
        let mut zadd = redis::cmd("ZADD");
        let mut hset = redis::cmd("HSET");
        zadd.arg(&tmp_members);
        hset.arg(&tmp_scores);
        for (i, m) in chunk.iter().enumerate() {
            zadd.arg((c * CHUNK + i) as u64).arg(&m.customer_id);
            hset.arg(&m.customer_id)
                .arg(m.score.to_le_bytes().as_slice());
        }
        cmds.push(zadd);
        cmds.push(hset);
        if c == 0 {
            for key in [&tmp_members, &tmp_scores] {
                let mut expire = redis::cmd("PEXPIRE");
                expire.arg(key).arg(TMP_TTL_MS);
                cmds.push(expire);
            }
        }
    }
    for cmd in &cmds {
        if let Err(e) = store.conn.query::<()>(cmd).await {
            let mut del = redis::cmd("DEL");
            del.arg(&tmp_members).arg(&tmp_scores);
            let _ = store.conn.query::<()>(&del).await;
            return Err(e);
        }
    }
    let keys = [
        layout.saved_audiences(),
        layout.saved_audience_queries(),
        layout.saved_audience_members(id),
        layout.saved_audience_scores(id),
        tmp_members,
        tmp_scores,
        layout.saved_members_total(),
        layout.recent_erasures(),
    ];
    let mut cmd = eval(COMMIT, &keys);
    cmd.arg(id)
        .arg(encode("saved audience", info)?)
        .arg(query.unwrap_or_default())
        .arg(match mode {
            SavedAudienceWrite::Create => "create",
            SavedAudienceWrite::Replace => "replace",
        })
        .arg(limits.max_audiences)
        .arg(limits.max_members)
        // Erasures from a second before the computation on (the ledger covers older ones).
        .arg(info.refreshed_ms.saturating_sub(1_000));
    let outcome: i64 = store.conn.query(&cmd).await?;
    match outcome {
        -1 => Err(Error::LimitExceeded {
            field: "name",
            reason: format!(
                "{} audiences are saved, the most this server keeps (--max-saved-audiences); \
                 delete one first",
                limits.max_audiences
            ),
        }),
        -2 => Err(Error::NotFound {
            what: "saved audience",
            id: id.to_owned(),
        }),
        -3 => Err(Error::LimitExceeded {
            field: "query",
            reason: format!(
                "{} members would bring the saved audiences over the {} this server keeps \
                 (--max-saved-members); ask for a smaller audience or delete one",
                kept.len(),
                limits.max_members
            ),
        }),
        -4 => Err(Error::Storage(format!("saved audience id {id} is taken"))),
        size => {
            let mut stored = info.clone();
            stored.size = size.max(0) as u64;
            if mode == SavedAudienceWrite::Replace
                && let Some(old) = self::info(store, id).await?
            {
                stored.created_ms = old.created_ms;
            }
            Ok(stored)
        }
    }
}

async fn with_size(
    store: &RedisStore,
    mut infos: Vec<SavedAudienceInfo>,
) -> Result<Vec<SavedAudienceInfo>> {
    let cmds: Vec<Cmd> = infos
        .iter()
        .map(|i| {
            let mut cmd = redis::cmd("ZCARD");
            cmd.arg(store.layout.saved_audience_members(&i.id));
            cmd
        })
        .collect();
    let sizes: Vec<u64> = store.conn.query_each(&cmds).await?;
    for (info, size) in infos.iter_mut().zip(sizes) {
        info.size = size;
    }
    Ok(infos)
}

/// An audience's info.
pub(super) async fn info(store: &RedisStore, id: &str) -> Result<Option<SavedAudienceInfo>> {
    let mut cmd = redis::cmd("HGET");
    cmd.arg(store.layout.saved_audiences()).arg(id);
    let bytes: Option<Vec<u8>> = store.conn.query(&cmd).await?;
    let Some(bytes) = bytes else {
        return Ok(None);
    };
    let info = decode("saved audience", id, &bytes)?;
    Ok(with_size(store, vec![info]).await?.pop())
}

/// An audience's query bytes.
pub(super) async fn query(store: &RedisStore, id: &str) -> Result<Option<Vec<u8>>> {
    let mut cmd = redis::cmd("HGET");
    cmd.arg(store.layout.saved_audience_queries()).arg(id);
    store.conn.query(&cmd).await
}

/// Replaces an audience's query bytes if they still are `expected`; false when it is gone
/// or its query changed.
pub(super) async fn put_query(
    store: &RedisStore,
    id: &str,
    expected: &[u8],
    query: &[u8],
) -> Result<bool> {
    let keys = [
        store.layout.saved_audiences(),
        store.layout.saved_audience_queries(),
    ];
    let mut cmd = eval(PUT_QUERY, &keys);
    cmd.arg(id).arg(expected).arg(query);
    let done: i64 = store.conn.query(&cmd).await?;
    Ok(done == 1)
}

/// Every audience's info, in id order.
pub(super) async fn infos(store: &RedisStore) -> Result<Vec<SavedAudienceInfo>> {
    let mut cmd = redis::cmd("HGETALL");
    cmd.arg(store.layout.saved_audiences());
    let mut entries: Vec<(String, Vec<u8>)> = store.conn.query(&cmd).await?;
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let infos = entries
        .into_iter()
        .map(|(id, bytes)| decode("saved audience", &id, &bytes))
        .collect::<Result<Vec<_>>>()?;
    with_size(store, infos).await
}

/// Up to `limit` members after rank `after`; `None` when the audience is gone.
pub(super) async fn members(
    store: &RedisStore,
    id: &str,
    after: Option<u64>,
    limit: usize,
) -> Result<Option<Vec<(u64, SavedMember)>>> {
    let mut exists = redis::cmd("HEXISTS");
    exists.arg(store.layout.saved_audiences()).arg(id);
    if store.conn.query::<i64>(&exists).await? == 0 {
        return Ok(None);
    }
    let mut cmd = redis::cmd("ZRANGEBYSCORE");
    cmd.arg(store.layout.saved_audience_members(id))
        .arg(after.map_or_else(|| "0".to_owned(), |a| format!("({a}")))
        .arg("+inf")
        .arg("WITHSCORES")
        .arg("LIMIT")
        .arg(0)
        .arg(limit);
    let rows: Vec<(String, f64)> = store.conn.query(&cmd).await?;
    if rows.is_empty() {
        return Ok(Some(Vec::new()));
    }
    let mut hmget = redis::cmd("HMGET");
    hmget.arg(store.layout.saved_audience_scores(id));
    for (customer, _) in &rows {
        hmget.arg(customer);
    }
    let scores: Vec<Option<Vec<u8>>> = store.conn.query(&hmget).await?;
    Ok(Some(
        rows.into_iter()
            .zip(scores)
            .map(|((customer_id, rank), score)| {
                let score = score
                    .and_then(|b| <[u8; 4]>::try_from(b.as_slice()).ok())
                    .map_or(0.0, f32::from_le_bytes);
                (rank as u64, SavedMember { customer_id, score })
            })
            .collect(),
    ))
}

/// Deletes an audience; true if it existed.
pub(super) async fn delete(store: &RedisStore, id: &str) -> Result<bool> {
    let layout = &store.layout;
    let keys = [
        layout.saved_audiences(),
        layout.saved_audience_queries(),
        layout.saved_audience_members(id),
        layout.saved_audience_scores(id),
        layout.saved_members_total(),
    ];
    let mut cmd = eval(DELETE, &keys);
    cmd.arg(id);
    let existed: i64 = store.conn.query(&cmd).await?;
    Ok(existed > 0)
}

/// Takes `customer` out of every saved audience in one script, and remembers the erasure
/// for a day against writes computed before it.
pub(super) async fn erase_member(store: &RedisStore, customer: &str) -> Result<()> {
    let layout = &store.layout;
    let keys = [
        layout.saved_audiences(),
        layout.saved_members_total(),
        layout.recent_erasures(),
    ];
    let mut cmd = eval(ERASE, &keys);
    cmd.arg(customer)
        .arg(doppel_types::clock::now_ms())
        .arg(layout.saved_audience_members(""))
        .arg(layout.saved_audience_scores(""));
    store.conn.query::<i64>(&cmd).await?;
    Ok(())
}
