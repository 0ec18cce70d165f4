//! A shard node paused (SIGSTOP) past its lease while event retention removes old events it
//! had not read yet, then resumed. Counting on from its position would miss those events
//! for good; it must start over from the event checkpoints instead, so the customers it
//! owns again show the purchases whose events left the log before it read them.
//!
//! Node-a and node-b start with `--event-retention-days 1` and checkpoints every second.
//! Node-a is paused and node-b takes every shard; purchases two years old are then
//! recorded for customers of node-a's shards (a backfill), node-b checkpoints them and
//! removes them from the log; node-a resumes and takes its shards back.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use doppel_proto::v1 as pb;
use doppel_store::testing::redis_harness::RedisServer;
use doppel_store::{RedisConfig, RedisStore, Store};
use doppel_types::CheckpointScope;
use doppel_types::shard::shard_of;

use crate::calls::{
    connect, customer, router_node, shard_node, test_item, upsert_item_through_router, view,
    wait_until, write_through_router,
};
use crate::child::{DoppelProcess, free_addr};

/// Logical shards (the default).
const SHARDS: u32 = 16;
/// The paused node's id.
const PAUSED: &str = "node-a";
/// The node that takes its shards over meanwhile.
const SURVIVOR: &str = "node-b";

/// Shard node flags with event retention of a day and checkpoints every second.
fn retaining(args: Vec<String>) -> Vec<String> {
    let extra = [
        "--event-retention-days",
        "1",
        "--event-checkpoint-every",
        "1",
    ];
    args.into_iter().chain(extra.map(str::to_owned)).collect()
}

/// A purchase of the test item by `id`, long before the retention window.
fn old_purchase(id: &str) -> pb::Event {
    pb::Event {
        customer_id: id.to_owned(),
        item_id: test_item().id,
        r#type: pb::EventType::Purchase as i32,
        timestamp_ms: 1_700_000_000_000,
        quantity: 1,
        event_id: format!("backfill-{id}"),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_the_log_removal_passed_starts_over_from_the_checkpoints() {
    let redis = RedisServer::standalone();
    let url = redis.url();
    let dir = tempfile::tempdir().expect("tempdir");
    let router_addr = free_addr();
    let a = DoppelProcess::serve(
        "a",
        dir.path(),
        &retaining(shard_node(&url, PAUSED, &free_addr(), dir.path(), SHARDS)),
    );
    let b = DoppelProcess::serve(
        "b",
        dir.path(),
        &retaining(shard_node(&url, SURVIVOR, &free_addr(), dir.path(), SHARDS)),
    );
    let router_process = DoppelProcess::serve(
        "router",
        dir.path(),
        &router_node(&url, &router_addr, SHARDS),
    );
    let logs = || {
        format!(
            "{}\n{}\n{}",
            a.log_tail(),
            b.log_tail(),
            router_process.log_tail()
        )
    };
    let store = RedisStore::connect(RedisConfig::standalone(url.clone()))
        .await
        .expect("redis");
    wait_until(
        "both nodes own shards",
        Duration::from_secs(90),
        async || {
            let map = store.shard_map().await.unwrap_or_default();
            map.len() == SHARDS as usize
                && map.values().any(|o| o == PAUSED)
                && map.values().any(|o| o == SURVIVOR)
        },
    )
    .await;
    let router = connect(&router_addr).await;
    upsert_item_through_router(&router, test_item())
        .await
        .unwrap_or_else(|s| panic!("items through the router: {s:?}\n{}", logs()));
    let ids: Vec<String> = (0..256).map(|i| format!("c{i:03}")).collect();
    write_through_router(
        &router,
        ids.iter().map(|id| customer(id, "before")).collect(),
        vec![],
    )
    .await;
    let map = store.shard_map().await.expect("shard map");
    let a_ids: Vec<String> = ids
        .iter()
        .filter(|id| map.get(&shard_of(id, SHARDS)).map(String::as_str) == Some(PAUSED))
        .take(8)
        .cloned()
        .collect();
    assert!(a_ids.len() >= 4, "node-a owns customers: {a_ids:?}");

    // Node-a stops; node-b takes every shard, records the backfill, checkpoints it and
    // removes it from the log.
    a.pause();
    wait_until(
        "node-b owns every shard",
        Duration::from_secs(60),
        async || {
            let map = store.shard_map().await.unwrap_or_default();
            map.values().all(|owner| owner == SURVIVOR)
        },
    )
    .await;
    // Routers re-read the map within a second.
    tokio::time::sleep(Duration::from_secs(2)).await;
    write_through_router(
        &router,
        vec![],
        a_ids.iter().map(|id| old_purchase(id)).collect(),
    )
    .await;
    let written = store.last_event_seq().await.expect("last seq");
    let deadline = Instant::now() + Duration::from_secs(60);
    while store.events_compacted_through().await.expect("compacted") < written {
        assert!(
            Instant::now() < deadline,
            "node-b did not remove the backfill from the log\n{}",
            logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        store.scan_events(0, 1_000).await.expect("log").is_empty(),
        "the backfill left the log"
    );

    // Node-a resumes and takes its shards back from node-b (which lets them go
    // `HANDOFF_DELAY` after the claim, 3 s).
    a.resume();
    let shards: BTreeSet<u32> = a_ids.iter().map(|id| shard_of(id, SHARDS)).collect();
    wait_until(
        "node-a owns its shards again",
        Duration::from_secs(90),
        async || {
            let map = store.shard_map().await.unwrap_or_default();
            shards
                .iter()
                .all(|s| map.get(s).map(String::as_str) == Some(PAUSED))
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    // A fresh view of each customer makes node-a write its shards' checkpoints from its
    // memory: they must hold the purchases whose events left the log before it read them.
    write_through_router(&router, vec![], a_ids.iter().map(|id| view(id)).collect()).await;
    let viewed = store.last_event_seq().await.expect("last seq");
    let scope = |shard| CheckpointScope::Shard {
        shard,
        shard_count: SHARDS,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    for shard in &shards {
        let checkpoint = loop {
            let checkpoint = store
                .event_checkpoint(scope(*shard))
                .await
                .expect("checkpoint");
            match checkpoint {
                Some(c) if c.through_seq >= viewed => break c,
                _ => {
                    assert!(
                        Instant::now() < deadline,
                        "node-a did not checkpoint shard {shard}\n{}",
                        logs()
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        };
        for id in a_ids.iter().filter(|id| shard_of(id, SHARDS) == *shard) {
            let bought: Vec<&str> = checkpoint
                .customers
                .iter()
                .filter(|h| &h.customer_id == id)
                .flat_map(|h| &h.purchased)
                .filter_map(|&i| checkpoint.item_ids.get(i as usize))
                .map(String::as_str)
                .collect();
            assert_eq!(
                bought,
                [test_item().id.as_str()],
                "{id}: node-a's memory holds the purchase whose event left the log\n{}",
                logs()
            );
        }
    }
    drop((a, b));
}
