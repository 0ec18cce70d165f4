//! Saved audiences under `{global}`: a hash of postcard info records by id, and one
//! postcard member list per audience, written together by a script (one slot). Erasure
//! takes a customer out of every member list after the customer's own erasure script.

use doppel_types::{SavedAudienceInfo, SavedMember};

use super::RedisStore;
use super::connect::eval;
use crate::codec::{decode, encode};
use crate::error::Result;

/// KEYS: info hash, members key. ARGV: id, info bytes, member bytes.
const PUT: &str = r"
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[3])
return 1
";

/// KEYS: info hash, members key. ARGV: id, info bytes, member bytes. Writes only if the
/// audience still exists (a delete meanwhile wins).
const REPLACE_IF_PRESENT: &str = r"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[3])
return 1
";

/// KEYS: info hash, members key. ARGV: id.
const DELETE: &str = r"
local existed = redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
return existed
";

fn keys(store: &RedisStore, id: &str) -> [String; 2] {
    [
        store.layout.saved_audiences(),
        store.layout.saved_audience_members(id),
    ]
}

async fn write(
    store: &RedisStore,
    script: &str,
    info: &SavedAudienceInfo,
    members: &[SavedMember],
) -> Result<()> {
    let mut cmd = eval(script, &keys(store, &info.id));
    cmd.arg(&info.id)
        .arg(encode("saved audience", info)?)
        .arg(encode("saved audience members", &members)?);
    store.conn.query::<i64>(&cmd).await?;
    Ok(())
}

/// Saves (or replaces) an audience's info and members in one script.
pub(super) async fn put(
    store: &RedisStore,
    info: &SavedAudienceInfo,
    members: &[SavedMember],
) -> Result<()> {
    write(store, PUT, info, members).await
}

/// An audience's info.
pub(super) async fn info(store: &RedisStore, id: &str) -> Result<Option<SavedAudienceInfo>> {
    let mut cmd = redis::cmd("HGET");
    cmd.arg(store.layout.saved_audiences()).arg(id);
    let bytes: Option<Vec<u8>> = store.conn.query(&cmd).await?;
    bytes.map(|b| decode("saved audience", id, &b)).transpose()
}

/// Every audience's info, in id order.
pub(super) async fn infos(store: &RedisStore) -> Result<Vec<SavedAudienceInfo>> {
    let mut cmd = redis::cmd("HGETALL");
    cmd.arg(store.layout.saved_audiences());
    let mut entries: Vec<(String, Vec<u8>)> = store.conn.query(&cmd).await?;
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries
        .into_iter()
        .map(|(id, bytes)| decode("saved audience", &id, &bytes))
        .collect()
}

/// An audience's members, best first.
pub(super) async fn members(store: &RedisStore, id: &str) -> Result<Option<Vec<SavedMember>>> {
    let key = store.layout.saved_audience_members(id);
    let mut cmd = redis::cmd("GET");
    cmd.arg(&key);
    let bytes: Option<Vec<u8>> = store.conn.query(&cmd).await?;
    bytes
        .map(|b| decode("saved audience members", &key, &b))
        .transpose()
}

/// Deletes an audience; true if it existed.
pub(super) async fn delete(store: &RedisStore, id: &str) -> Result<bool> {
    let mut cmd = eval(DELETE, &keys(store, id));
    cmd.arg(id);
    let existed: i64 = store.conn.query(&cmd).await?;
    Ok(existed > 0)
}

/// Takes `customer` out of every saved audience (read, filter, write back if still there).
/// Reads every member list: erasures are rare and the lists are bounded by the server's
/// limits.
pub(super) async fn erase_member(store: &RedisStore, customer: &str) -> Result<()> {
    for mut info in infos(store).await? {
        let Some(list) = members(store, &info.id).await? else {
            continue;
        };
        if !list.iter().any(|m| m.customer_id == customer) {
            continue;
        }
        let kept: Vec<SavedMember> = list
            .into_iter()
            .filter(|m| m.customer_id != customer)
            .collect();
        info.size = kept.len() as u64;
        write(store, REPLACE_IF_PRESENT, &info, &kept).await?;
    }
    Ok(())
}
