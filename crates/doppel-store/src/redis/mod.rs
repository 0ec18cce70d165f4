//! [`RedisStore`]: the store in Redis, standalone or Redis Cluster — what the serving
//! cluster uses; it passes the same contract suite as the embedded store.
//!
//! # Atomicity
//!
//! Every key of one customer (profile, ledger entry, events, vectors in every version)
//! carries the hash tag of the customer's logical shard (`{s07}`, see [`layout`]), so one
//! Lua script over them is atomic, on a standalone server and in a cluster slot alike.
//! Each write groups its batch by shard and runs one script per shard:
//!
//! * standalone: all the batch's scripts run in one `MULTI`/`EXEC` — the whole batch is
//!   atomic, as the [`Store`](crate::Store) contract says;
//! * cluster: slots cannot share a transaction, so each shard's part is atomic on its own
//!   and a batch over several shards is not (a failure in the middle leaves the parts
//!   already run). Erasure of one customer is always one script, hence always atomic.
//!
//! Event sequence numbers come from one `INCRBY` on a `{global}` counter, before the
//! per-shard scripts write the events; a script drops events of customers erased in
//! between, which leaves a gap (allowed: erased events leave gaps anyway). Concurrent
//! appenders may commit their numbers out of order, so a reader tailing
//! [`scan_events`](crate::Store::scan_events) should re-read a short window behind its
//! cursor.
//!
//! # Durability
//!
//! An acknowledged write survives a Redis crash only with the append-only file on:
//! `appendonly yes` with `appendfsync everysec` (lose up to about two seconds: Redis postpones
//! the AOF write while a slow fsync runs, and still answers) or
//! `appendfsync always` (lose nothing, slower). [`flush`](crate::Store::flush) is a no-op:
//! the server, not the client, decides when the AOF is synced.
//!
//! # Errors
//!
//! A server that cannot be reached, times out, or reports `CLUSTERDOWN`/`TRYAGAIN`/
//! `LOADING` is [`Error::Unavailable`](crate::Error::Unavailable) (UNAVAILABLE at the gRPC
//! edge); the standalone connection reconnects in the background, so a later call succeeds
//! once the server is back.
//!
//! Layout: [`config`] ([`RedisConfig`]), `connect` (one connection enum for both
//! deployments, error mapping), [`layout`] (the keys), `paging` (id-ordered merges over
//! shards), one file per concept — `profiles` (customers, items), `events`, `erasure`,
//! `vectors`, `versions` — and `store_impl` wiring them into the trait; [`membership`]
//! (leases and the shard map of a serving cluster) is outside the trait.

mod audit_log;
pub mod config;
mod connect;
mod contact_policy;
mod erasure;
mod event_checkpoints;
mod events;
mod experiments;
pub mod layout;
pub mod membership;
mod paging;
mod profiles;
mod retention;
mod saved_audiences;
mod store_impl;
mod vectors;
mod versions;

pub use config::{RedisConfig, RedisTls, redacted_url};
pub use membership::MemberRecord;

use connect::Conn;
use layout::Layout;

use crate::error::Result;

/// The Redis store. Cheap to clone (shares one connection).
#[derive(Clone)]
pub struct RedisStore {
    conn: Conn,
    layout: Layout,
}

impl RedisStore {
    /// Connects to the server or cluster of `config`. Fails with
    /// [`Error::Unavailable`](crate::Error::Unavailable) if it cannot be reached and
    /// [`Error::Storage`](crate::Error::Storage) for a bad URL or data keyed for another
    /// number of logical shards ([`Self::check_key_layout`]).
    pub async fn connect(config: RedisConfig) -> Result<Self> {
        let conn = Conn::connect(&config).await?;
        tracing::info!(
            redis.url = %config::redacted_url(&config.url),
            redis.cluster = config.cluster,
            redis.key_prefix = %config.key_prefix,
            "redis store connected"
        );
        let store = Self {
            conn,
            layout: Layout::new(&config.key_prefix, config.logical_shards),
        };
        store.check_key_layout().await?;
        Ok(store)
    }

    /// The number of logical shards customer keys are tagged by.
    pub fn logical_shards(&self) -> u32 {
        self.layout.logical_shards()
    }

    /// Checks that the data in Redis is laid out for this store's logical shards, and
    /// marks a fresh (or compatible) deployment with `per-shard <count>`; see [`layout`].
    /// Data written before keys were per logical shard (no marker; customers under 16
    /// tags) is adopted when this store runs 16 shards, where the layouts coincide.
    /// Anything else is refused with [`Error::Storage`](crate::Error::Storage): customer
    /// keys would be looked for under the wrong tags.
    pub async fn check_key_layout(&self) -> Result<()> {
        let shards = self.layout.logical_shards();
        let wanted = format!("per-shard {shards}");
        let mut get = redis::cmd("GET");
        get.arg(self.layout.key_layout());
        let mut marker: Option<String> = self.conn.query(&get).await?;
        if marker.is_none() {
            self.refuse_legacy_layout(shards).await?;
            let mut set = redis::cmd("SET");
            set.arg(self.layout.key_layout()).arg(&wanted).arg("NX");
            self.conn.query::<Option<String>>(&set).await?;
            // Read again: another node may have marked it first.
            marker = self.conn.query(&get).await?;
        }
        match marker {
            Some(m) if m == wanted => Ok(()),
            Some(m) => Err(crate::Error::Storage(format!(
                "the Redis data under prefix `{}` is keyed for `{m}` logical shards; this node \
                 runs {shards} (--shards must match the data)",
                self.layout.prefix()
            ))),
            None => Err(crate::Error::Storage(
                "the Redis key layout marker vanished".into(),
            )),
        }
    }

    /// Refuses to adopt customers laid out under the 16 fixed tags of older versions
    /// when this store runs another shard count.
    async fn refuse_legacy_layout(&self, shards: u32) -> Result<()> {
        let old = doppel_types::shard::DEFAULT_SHARD_COUNT;
        if shards == old {
            return Ok(());
        }
        let legacy = Layout::new(self.layout.prefix(), old);
        // Profiles, the erasure ledger or the event log under any of the old tags.
        let exists: Vec<redis::Cmd> = legacy
            .shard_tags()
            .into_iter()
            .map(|tag| {
                let mut exists = redis::cmd("EXISTS");
                exists
                    .arg(legacy.customer_ids(tag))
                    .arg(legacy.erased(tag))
                    .arg(legacy.event_seqs(tag));
                exists
            })
            .collect();
        let counts: Vec<i64> = self.conn.query_each(&exists).await?;
        if counts.iter().any(|n| *n > 0) {
            return Err(crate::Error::Storage(format!(
                "this Redis holds customers (profiles, erasures or events) laid out by an older \
                 doppel under {old} fixed hash tags; keys are now per logical shard and this node runs {shards} shards: start \
                 it with --shards {old}, or load the data into an empty Redis"
            )));
        }
        Ok(())
    }
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match self.conn {
            Conn::Standalone(_) => "standalone",
            Conn::Cluster(_) => "cluster",
        };
        f.debug_struct("RedisStore")
            .field("mode", &mode)
            .field("layout", &self.layout)
            .finish()
    }
}
