//! The experiments: one postcard value under `{global}`, with its revision beside it so a
//! script can compare-and-set without decoding.

use doppel_types::ExperimentBook;

use super::RedisStore;
use super::connect::eval;
use crate::codec::{decode, encode};
use crate::error::Result;

/// KEYS: book, revision. ARGV: expected revision, new book, new revision.
const PUT: &str = r"
local stored = tonumber(redis.call('GET', KEYS[2]) or '0')
if stored ~= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[3])
return 1
";

/// The experiments (empty when never written).
pub(super) async fn experiments(store: &RedisStore) -> Result<ExperimentBook> {
    let key = store.layout.experiments();
    let mut cmd = redis::cmd("GET");
    cmd.arg(&key);
    let bytes: Option<Vec<u8>> = store.conn.query(&cmd).await?;
    Ok(bytes
        .map(|b| decode("experiments", &key, &b))
        .transpose()?
        .unwrap_or_default())
}

/// The stored revision (0 when none).
pub(super) async fn revision(store: &RedisStore) -> Result<u64> {
    let mut cmd = redis::cmd("GET");
    cmd.arg(store.layout.experiments_revision());
    let revision: Option<u64> = store.conn.query(&cmd).await?;
    Ok(revision.unwrap_or(0))
}

/// Writes `book` if the stored revision is `book.revision - 1`.
pub(super) async fn put_experiments(store: &RedisStore, book: &ExperimentBook) -> Result<bool> {
    let keys = [
        store.layout.experiments(),
        store.layout.experiments_revision(),
    ];
    let mut cmd = eval(PUT, &keys);
    cmd.arg(book.revision.saturating_sub(1))
        .arg(encode("experiments", book)?)
        .arg(book.revision);
    let done: i64 = store.conn.query(&cmd).await?;
    Ok(done == 1)
}
