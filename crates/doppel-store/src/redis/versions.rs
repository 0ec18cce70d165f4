//! Model-version metadata and context models (`{global}` hashes) and the active-version
//! pointer.

use doppel_types::{ContextModel, VersionInfo};

use super::RedisStore;
use super::connect::eval;
use super::vectors::drop_version_cmds;
use crate::codec::{decode, encode};
use crate::error::{Error, Result};

/// KEYS: versions hash, active pointer. ARGV: version. 1 if set, 0 if unknown.
const SET_ACTIVE: &str = r"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('SET', KEYS[2], ARGV[1])
return 1
";

/// KEYS: versions hash, active pointer, context models hash. ARGV: version. Drops the
/// metadata and the context model, and the pointer if it points there.
const DROP_METADATA: &str = r"
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
";

/// Inserts or replaces a version's metadata.
pub(super) async fn put_version(store: &RedisStore, info: VersionInfo) -> Result<()> {
    let mut cmd = redis::cmd("HSET");
    cmd.arg(store.layout.versions())
        .arg(&info.version)
        .arg(encode("version", &info)?);
    store.conn.query::<()>(&cmd).await
}

/// A version's metadata.
pub(super) async fn get_version(store: &RedisStore, version: &str) -> Result<Option<VersionInfo>> {
    let mut cmd = redis::cmd("HGET");
    cmd.arg(store.layout.versions()).arg(version);
    let bytes: Option<Vec<u8>> = store.conn.query(&cmd).await?;
    bytes.map(|b| decode("version", version, &b)).transpose()
}

/// All versions in name order.
pub(super) async fn list_versions(store: &RedisStore) -> Result<Vec<VersionInfo>> {
    let mut cmd = redis::cmd("HGETALL");
    cmd.arg(store.layout.versions());
    let mut all: Vec<(String, Vec<u8>)> = store.conn.query(&cmd).await?;
    all.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    all.iter()
        .map(|(name, bytes)| decode("version", name, bytes))
        .collect()
}

/// Drops the metadata (and the pointer if active) and the vectors under every tag: one
/// transaction on a standalone server; in a cluster one script per slot, so a failure can
/// leave part of it, and calling it again (unknown versions are fine) finishes the job.
pub(super) async fn delete_version(store: &RedisStore, version: &str) -> Result<()> {
    let layout = &store.layout;
    let mut metadata = eval(
        DROP_METADATA,
        &[
            layout.versions(),
            layout.active_version(),
            layout.context_models(),
        ],
    );
    metadata.arg(version);
    let mut cmds = vec![metadata];
    cmds.extend(drop_version_cmds(store, version));
    store.conn.exec_grouped(&cmds).await?;
    Ok(())
}

/// Points the active pointer at an existing version.
pub(super) async fn set_active_version(store: &RedisStore, version: &str) -> Result<()> {
    let layout = &store.layout;
    let mut cmd = eval(SET_ACTIVE, &[layout.versions(), layout.active_version()]);
    cmd.arg(version);
    let set: i64 = store.conn.query(&cmd).await?;
    if set == 1 {
        Ok(())
    } else {
        Err(Error::NotFound {
            what: "version",
            id: version.to_owned(),
        })
    }
}

/// The active version.
pub(super) async fn active_version(store: &RedisStore) -> Result<Option<String>> {
    let mut cmd = redis::cmd("GET");
    cmd.arg(store.layout.active_version());
    store.conn.query(&cmd).await
}

/// Stores a version's context model.
pub(super) async fn put_context_model(
    store: &RedisStore,
    version: &str,
    model: &ContextModel,
) -> Result<()> {
    let mut cmd = redis::cmd("HSET");
    cmd.arg(store.layout.context_models())
        .arg(version)
        .arg(encode("context model", model)?);
    store.conn.query::<()>(&cmd).await
}

/// A version's context model.
pub(super) async fn context_model(
    store: &RedisStore,
    version: &str,
) -> Result<Option<ContextModel>> {
    let mut cmd = redis::cmd("HGET");
    cmd.arg(store.layout.context_models()).arg(version);
    let bytes: Option<Vec<u8>> = store.conn.query(&cmd).await?;
    bytes
        .map(|b| decode("context model", version, &b))
        .transpose()
}
