//! Context-aware offers in the cluster: a version trained through the router stores its
//! context model in Redis, every shard node loads it, and offers through the router follow
//! the context on both nodes while requests without one keep the plain ranking.

use std::collections::HashMap;

use doppel_proto::v1 as pb;
use doppel_proto::v1::recommendations_client::RecommendationsClient;
use doppel_store::testing::redis_harness::RedisServer;
use doppel_test_support::cluster::{TestRouter, TestShard};
use doppel_test_support::{planted_context_base, upload_train_activate};
use doppel_types::shard::shard_of;
use tonic::transport::Channel;

async fn offers(channel: &Channel, customer: &str, context: Option<pb::Context>) -> Vec<String> {
    let now = doppel_types::clock::now_ms();
    let evening = (now / 86_400_000 - 1) * 86_400_000 + 20 * 3_600_000;
    RecommendationsClient::new(channel.clone())
        .recommend_offers(pb::RecommendRequest {
            customer_id: customer.to_owned(),
            k: 10,
            timestamp_ms: if context.as_ref().is_some_and(|c| !c.device.is_empty()) {
                evening
            } else {
                0
            },
            context,
            ..Default::default()
        })
        .await
        .expect("recommend through the router")
        .into_inner()
        .offers
        .into_iter()
        .map(|o| o.item_id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_node_ranks_with_the_context_model_trained_through_the_router() {
    let redis = RedisServer::standalone();
    let url = redis.url();
    let dirs: Vec<_> = (0..2)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let mut shards = Vec::new();
    for (ordinal, dir) in dirs.iter().enumerate() {
        shards.push(TestShard::start(&url, ordinal as u32, dir.path()).await);
    }
    let router = TestRouter::start(&url).await;
    router.wait_for_nodes(2).await;
    let data = planted_context_base();
    upload_train_activate(&router.channel, &data, "ctx-1").await;

    let category: HashMap<&str, &str> = data
        .items
        .iter()
        .map(|i| (i.id.as_str(), i.category.as_str()))
        .collect();
    let mobile = pb::Context {
        channel: "app".into(),
        device: "mobile".into(),
        country: String::new(),
    };
    let topology = router.router.topology();
    let by_node = topology.shards_by_node();
    assert_eq!(by_node.len(), 2, "two nodes hold shards");
    for (node, held) in &by_node {
        let customers: Vec<&str> = data
            .customers
            .iter()
            .filter(|c| c.consent.onsite_personalization)
            .filter(|c| held.contains(&shard_of(&c.id, 16)))
            .take(10)
            .map(|c| c.id.as_str())
            .collect();
        let (mut plain, mut evening) = (0, 0);
        for customer in &customers {
            let a = offers(&router.channel, customer, None).await;
            let b = offers(&router.channel, customer, Some(pb::Context::default())).await;
            assert_eq!(a, b, "an empty context is no context");
            plain += a.iter().filter(|i| category[i.as_str()] == "cat01").count();
            let c = offers(&router.channel, customer, Some(mobile.clone())).await;
            evening += c.iter().filter(|i| category[i.as_str()] == "cat01").count();
        }
        assert!(
            evening > plain + 10,
            "node {}: evening-category offers {plain} plain, {evening} on mobile at 20:00",
            node.node_id
        );
    }
    drop(shards);
}
