//! The cluster the paused-node tests start from: two shard nodes and a router as child
//! processes on a fresh Redis, both nodes owning shards, one item and 256 customers
//! written through the router.

use std::time::Duration;

use doppel_store::testing::redis_harness::RedisServer;
use doppel_store::{RedisConfig, RedisStore};
use tonic::transport::Channel;

use crate::calls::{
    connect, customer, router_node, shard_node, test_item, upsert_item_through_router, wait_until,
    write_through_router,
};
use crate::child::{DoppelProcess, free_addr};

/// The running cluster; its processes are killed (and Redis stopped) on drop.
pub struct TwoShardNodes {
    /// The first shard node (the one the tests pause).
    pub a: DoppelProcess,
    /// Its internal (node-to-node) address.
    pub a_internal: String,
    /// The second shard node.
    pub b: DoppelProcess,
    /// The router.
    pub router_process: DoppelProcess,
    /// A channel to the router.
    pub router: Channel,
    /// The cluster's store, read directly.
    pub store: RedisStore,
    /// The customers written through the router (tier "before").
    pub ids: Vec<String>,
    /// Data dirs and logs of every process (fields drop in order: the processes first).
    pub dir: tempfile::TempDir,
    /// Kept for the nodes' lifetime.
    pub redis: RedisServer,
}

impl TwoShardNodes {
    /// Starts shard nodes `a_id` and `b_id` (each with `extra` flags) and a router, with
    /// `shards` logical shards, and waits until both nodes own shards.
    pub async fn start(a_id: &str, b_id: &str, shards: u32, extra: &[&str]) -> Self {
        let redis = RedisServer::standalone();
        let url = redis.url();
        let dir = tempfile::tempdir().expect("tempdir");
        let (a_internal, router_addr) = (free_addr(), free_addr());
        let node = |name: &str, id: &str, internal: &str| {
            let mut args = shard_node(&url, id, internal, dir.path(), shards);
            args.extend(extra.iter().map(|s| (*s).to_owned()));
            DoppelProcess::serve(name, dir.path(), &args)
        };
        let a = node("a", a_id, &a_internal);
        let b = node("b", b_id, &free_addr());
        let router_process = DoppelProcess::serve(
            "router",
            dir.path(),
            &router_node(&url, &router_addr, shards),
        );
        let store = RedisStore::connect(RedisConfig::standalone(url))
            .await
            .expect("redis");
        wait_until(
            "both nodes own shards",
            Duration::from_secs(90),
            async || {
                let map = store.shard_map().await.unwrap_or_default();
                map.len() == shards as usize
                    && map.values().any(|o| o == a_id)
                    && map.values().any(|o| o == b_id)
            },
        )
        .await;
        let router = connect(&router_addr).await;
        let cluster = Self {
            a,
            a_internal,
            b,
            router_process,
            router,
            store,
            ids: (0..256).map(|i| format!("c{i:03}")).collect(),
            dir,
            redis,
        };
        upsert_item_through_router(&cluster.router, test_item())
            .await
            .unwrap_or_else(|s| panic!("items through the router: {s:?}\n{}", cluster.logs()));
        write_through_router(
            &cluster.router,
            cluster
                .ids
                .iter()
                .map(|id| customer(id, "before"))
                .collect(),
            vec![],
        )
        .await;
        cluster
    }

    /// The last lines of every process's log, for a failure message.
    pub fn logs(&self) -> String {
        format!(
            "{}\n{}\n{}",
            self.a.log_tail(),
            self.b.log_tail(),
            self.router_process.log_tail()
        )
    }
}
