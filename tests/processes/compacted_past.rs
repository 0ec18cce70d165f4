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
use doppel_store::Store;
use doppel_types::CheckpointScope;
use doppel_types::shard::shard_of;

use crate::calls::{test_item, view, wait_until, write_through_router};
use crate::two_shard_nodes::TwoShardNodes;

/// Logical shards (the default).
const SHARDS: u32 = 16;
/// The paused node's id.
const PAUSED: &str = "node-a";
/// The node that takes its shards over meanwhile.
const SURVIVOR: &str = "node-b";

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
    let cluster = TwoShardNodes::start(
        PAUSED,
        SURVIVOR,
        SHARDS,
        &[
            "--event-retention-days",
            "1",
            "--event-checkpoint-every",
            "1",
        ],
    )
    .await;
    let (a, store, router, ids) = (&cluster.a, &cluster.store, &cluster.router, &cluster.ids);
    let logs = || cluster.logs();
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
        router,
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
    write_through_router(router, vec![], a_ids.iter().map(|id| view(id)).collect()).await;
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
    drop(cluster);
}
