//! A cluster run with `--shards 8` (not the default 16): customer keys in Redis carry the
//! tags of the 8 logical shards and no others, a takeover after a node dies serves every
//! customer and event, and a node started with another shard count refuses the data.

use std::collections::BTreeSet;
use std::time::Duration;

use doppel_proto::v1 as pb;
use doppel_proto::v1::ingest_client::IngestClient;
use doppel_store::testing::redis_harness::RedisServer;
use doppel_store::{RedisConfig, RedisStore};

use crate::calls::{
    connect, customer, router_node, shard_node, test_item, view, wait_until, with_timeout,
    write_through_router,
};
use crate::child::{DoppelProcess, free_addr};

const SHARDS: u32 = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cluster_of_eight_shards_keys_redis_by_them_and_takes_over() {
    let redis = RedisServer::standalone();
    let url = redis.url();
    let dir = tempfile::tempdir().expect("tempdir");
    let a = DoppelProcess::serve(
        "a",
        dir.path(),
        &shard_node(&url, "node-a", &free_addr(), dir.path(), SHARDS),
    );
    let b = DoppelProcess::serve(
        "b",
        dir.path(),
        &shard_node(&url, "node-b", &free_addr(), dir.path(), SHARDS),
    );
    let router_addr = free_addr();
    let router_process = DoppelProcess::serve(
        "router",
        dir.path(),
        &router_node(&url, &router_addr, SHARDS),
    );
    let mut config = RedisConfig::standalone(url.clone());
    config.logical_shards = SHARDS;
    let store = RedisStore::connect(config).await.expect("redis");
    wait_until(
        "both nodes own shards",
        Duration::from_secs(90),
        async || {
            let map = store.shard_map().await.unwrap_or_default();
            map.len() == SHARDS as usize && map.values().collect::<BTreeSet<_>>().len() == 2
        },
    )
    .await;

    let router = connect(&router_addr).await;
    let item = test_item();
    wait_until(
        "the router takes items",
        Duration::from_secs(60),
        async || {
            IngestClient::new(router.clone())
                .upsert_items(with_timeout(tokio_stream::iter(vec![item.clone()])))
                .await
                .is_ok()
        },
    )
    .await;
    let ids: Vec<String> = (0..200).map(|i| format!("c{i:03}")).collect();
    write_through_router(
        &router,
        ids.iter().map(|id| customer(id, "gold")).collect(),
        ids.iter().map(|id| view(id)).collect(),
    )
    .await;

    // Customer keys carry the 8 shards' tags and no other.
    let mut raw = redis::Client::open(url.as_str())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connection");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("doppel:{s*}:customer_ids")
        .query_async(&mut raw)
        .await
        .expect("keys");
    let tags: BTreeSet<String> = keys
        .iter()
        .map(|k| k[8..k.find('}').unwrap()].to_owned())
        .collect();
    let expected: BTreeSet<String> = (0..SHARDS).map(|s| format!("s{s:02}")).collect();
    assert_eq!(tags, expected, "customer keys per logical shard: {keys:?}");

    // node-a dies; node-b takes its shards over, reading them from their own keys.
    drop(a);
    wait_until(
        "node-b owns every shard",
        Duration::from_secs(60),
        async || {
            let map = store.shard_map().await.unwrap_or_default();
            map.len() == SHARDS as usize && map.values().all(|o| o == "node-b")
        },
    )
    .await;
    let mut client = IngestClient::new(router.clone());
    for id in &ids {
        let mut found = None;
        for _ in 0..50 {
            match client
                .get_customer(with_timeout(pb::GetCustomerRequest {
                    customer_id: id.clone(),
                }))
                .await
            {
                Ok(r) => {
                    found = Some(r.into_inner());
                    break;
                }
                Err(s) if s.code() == tonic::Code::Unavailable => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(s) => panic!(
                    "{id}: {s:?}\n{}\n{}",
                    b.log_tail(),
                    router_process.log_tail()
                ),
            }
        }
        let found = found.unwrap_or_else(|| {
            panic!(
                "{id} never served\n{}\n{}",
                b.log_tail(),
                router_process.log_tail()
            )
        });
        let tier = found
            .customer
            .as_ref()
            .and_then(|c| c.attributes.get("tier"));
        assert_eq!(tier.map(String::as_str), Some("gold"), "{id}");
        assert_eq!(found.event_count, 1, "{id}");
    }

    // A node started with the default 16 shards refuses this data.
    let mut wrong = DoppelProcess::serve(
        "wrong",
        dir.path(),
        &shard_node(&url, "node-w", &free_addr(), dir.path(), 16),
    );
    let status = wrong
        .wait_exit(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("a node with --shards 16 kept running\n{}", wrong.log_tail()));
    assert!(!status.success(), "{status:?}");
    let tail = wrong.log_tail();
    assert!(tail.contains("per-shard 8"), "{tail}");
    drop(b);
}
