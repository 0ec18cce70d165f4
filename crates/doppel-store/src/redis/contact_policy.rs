//! The contact policy (frequency caps): one postcard value under `{global}`.

use doppel_types::ContactPolicy;

use super::RedisStore;
use crate::codec::{decode, encode};
use crate::error::Result;

/// Replaces the contact policy.
pub(super) async fn put_contact_policy(store: &RedisStore, policy: &ContactPolicy) -> Result<()> {
    let mut cmd = redis::cmd("SET");
    cmd.arg(store.layout.contact_policy())
        .arg(encode("contact policy", policy)?);
    store.conn.query::<()>(&cmd).await
}

/// The contact policy, if one was set.
pub(super) async fn contact_policy(store: &RedisStore) -> Result<Option<ContactPolicy>> {
    let key = store.layout.contact_policy();
    let mut cmd = redis::cmd("GET");
    cmd.arg(&key);
    let bytes: Option<Vec<u8>> = store.conn.query(&cmd).await?;
    bytes
        .map(|b| decode("contact policy", &key, &b))
        .transpose()
}
