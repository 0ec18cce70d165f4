//! Event checkpoints in the cluster: shard nodes write their shards' checkpoints from the
//! follower, and a node taking a shard over starts from the previous owner's checkpoint
//! plus the events after it — ending in the state the whole log gives: the same offers
//! (bought items left out) and the same impression counts under the caps.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use doppel_proto::v1 as pb;
use doppel_proto::v1::frequency_cap::CapScope;
use doppel_proto::v1::ingest_client::IngestClient;
use doppel_proto::v1::policies_client::PoliciesClient;
use doppel_store::{RedisConfig, RedisStore, Store};
use doppel_test_support::cluster::TEST_SHARDS;
use doppel_types::CheckpointScope;
use tonic::transport::Channel;

use crate::fixture::{Cluster, loaded, loaded_configured, offer_ids};

async fn offers(channel: &Channel, customer: &str, record: bool) -> Vec<String> {
    offer_ids(channel, customer, 4, record).await
}

/// Per customer: offers (not recorded) and impression counts under the caps.
async fn state(channel: &Channel, customers: &[String]) -> Vec<(Vec<String>, Vec<String>)> {
    let mut out = Vec::new();
    for id in customers {
        let counts = IngestClient::new(channel.clone())
            .get_customer(pb::GetCustomerRequest {
                customer_id: id.clone(),
            })
            .await
            .expect("GetCustomer")
            .into_inner()
            .cap_counts
            .into_iter()
            .map(|c| format!("{} {}", c.key, c.impressions))
            .collect();
        out.push((offers(channel, id, false).await, counts));
    }
    out
}

/// Shows 60 buyers of the base offers, recorded as impressions; returns them.
async fn show_buyers(cluster: &Cluster) -> Vec<String> {
    let buyers: BTreeSet<&str> = cluster
        .data
        .events
        .iter()
        .map(|e| e.customer_id.as_str())
        .collect();
    let customers: Vec<String> = buyers.into_iter().take(60).map(str::to_owned).collect();
    for id in &customers {
        offers(&cluster.router.channel, id, true).await;
    }
    customers
}

/// The cluster's store, read directly.
async fn store_of(cluster: &Cluster) -> RedisStore {
    RedisStore::connect(RedisConfig {
        logical_shards: TEST_SHARDS,
        ..RedisConfig::standalone(cluster.redis.url())
    })
    .await
    .expect("redis")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_takeover_starts_from_the_previous_owners_checkpoint_and_ends_in_the_same_state() {
    let mut cluster = loaded(2).await;
    let channel = cluster.router.channel.clone();
    PoliciesClient::new(channel.clone())
        .set_contact_policy(pb::ContactPolicy {
            caps: vec![pb::FrequencyCap {
                scope: CapScope::Item as i32,
                attribute: String::new(),
                max_impressions: 3,
                window_seconds: 86_400,
            }],
        })
        .await
        .expect("SetContactPolicy");
    let customers = show_buyers(&cluster).await;
    // Every shard's checkpoint is written at or past the log's end so far.
    let store = store_of(&cluster).await;
    let written = store.last_event_seq().await.unwrap();
    let scope = |shard| CheckpointScope::Shard {
        shard,
        shard_count: TEST_SHARDS,
    };
    // Checkpoints wait for skipped sequence numbers (two nodes append) to commit or expire.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut behind = 0;
        for shard in 0..TEST_SHARDS {
            let through = store.event_checkpoint(scope(shard)).await.unwrap();
            if through.is_none_or(|c| c.through_seq < written) {
                behind += 1;
            }
        }
        if behind == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{behind} shard checkpoints not written"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The tail: impressions after the checkpoints, then node 1 dies before its next
    // round (every 3 s in the test harness) writes them into its checkpoints.
    for id in &customers {
        offers(&channel, id, true).await;
    }
    let end = store.last_event_seq().await.unwrap();
    let on_node_1: Vec<u32> = cluster
        .router
        .router
        .topology()
        .shards_by_node()
        .into_iter()
        .find(|(node, _)| node.node_id == "shard-1")
        .map(|(_, shards)| shards)
        .expect("node 1 serves shards");
    let mut behind = 0;
    for shard in &on_node_1 {
        let checkpoint = store.event_checkpoint(scope(*shard)).await.unwrap();
        behind += usize::from(checkpoint.is_some_and(|c| c.through_seq < end));
    }
    assert!(behind > 0, "the tail is not in node 1's checkpoints");
    let before = state(&channel, &customers).await;
    cluster.shards[1].take().expect("node 1").kill();
    cluster.wait_for_sole_survivor().await;
    let after = state(&channel, &customers).await;
    assert_eq!(after, before, "checkpoint plus the tail = the state before");
}

/// With `--event-retention-days 1`, the generated base's events (all older than a day)
/// leave the log once every shard's checkpoint holds them; a node taking a dead node's
/// shards over then has only the checkpoints for them, and still ends in the same state.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_takeover_after_old_events_left_the_log_ends_in_the_same_state() {
    let mut cluster = loaded_configured(
        doppel_store::testing::redis_harness::RedisServer::standalone(),
        2,
        doppel_test_support::small_base(),
        |config| config.event_retention = Some(Duration::from_secs(86_400)),
    )
    .await;
    let channel = cluster.router.channel.clone();
    let customers = show_buyers(&cluster).await;
    let store = store_of(&cluster).await;
    let loaded = cluster.data.events.len();
    let cutoff = doppel_types::clock::now_ms() - 86_400_000;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let log = store.scan_events(0, 1_000_000).await.unwrap();
        let old = log.iter().filter(|(_, e)| e.timestamp_ms < cutoff).count();
        if old == 0 {
            assert!(log.len() < loaded, "the base's events are gone");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{old} old events still in the log"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(store.events_compacted_through().await.unwrap() > 0);
    // Bought items are left out of offers: with the purchases' events gone, only the
    // checkpoints know them.
    let wide = |id: String| {
        let channel = channel.clone();
        async move { offer_ids(&channel, &id, 20, false).await }
    };
    let mut before = Vec::new();
    for id in &customers {
        before.push(wide(id.clone()).await);
    }
    cluster.shards[1].take().expect("node 1").kill();
    cluster.wait_for_sole_survivor().await;
    let mut after = Vec::new();
    for id in &customers {
        after.push(wide(id.clone()).await);
    }
    let changed: Vec<&String> = customers
        .iter()
        .zip(before.iter().zip(&after))
        .filter(|(_, (b, a))| b != a)
        .map(|(id, _)| id)
        .collect();
    assert!(
        changed.is_empty(),
        "checkpoints stand in for the removed events; offers changed for {changed:?}"
    );
}
