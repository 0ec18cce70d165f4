//! The recent-popularity prior in the cluster: a version trained through the router with
//! the prior is built by every shard node from Redis (each rebuilds the item covariance the
//! offer query needs), and offers through the router lift the week's hit for customers of
//! both nodes, where the same data trained without the prior does not.

use doppel_proto::v1 as pb;
use doppel_proto::v1::recommendations_client::RecommendationsClient;
use doppel_store::testing::redis_harness::RedisServer;
use doppel_test_support::cluster::{TestRouter, TestShard};
use doppel_test_support::{small_base, upload_base};
use doppel_types::shard::shard_of;
use tonic::transport::Channel;

async fn offered(channel: &Channel, customer: &str, item: &str) -> bool {
    RecommendationsClient::new(channel.clone())
        .recommend_offers(pb::RecommendRequest {
            customer_id: customer.to_owned(),
            k: 10,
            ..Default::default()
        })
        .await
        .expect("recommend through the router")
        .into_inner()
        .offers
        .iter()
        .any(|o| o.item_id == item)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_node_serves_the_prior_of_a_version_trained_through_the_router() {
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
    let data = small_base();
    upload_base(&router.channel, &data).await;
    let hot = data.items[199].id.clone();
    let hit = doppel_test_support::recent_hit(&data, &hot);
    doppel_client::upload_events(router.channel.clone(), hit, |_| {})
        .await
        .expect("hit");

    let by_node = router.router.topology().shards_by_node();
    assert_eq!(by_node.len(), 2, "two nodes hold shards");
    let mut reach = Vec::new();
    for (version, weight) in [("plain", 0.0), ("prior", 6.4)] {
        doppel_client::train(
            router.channel.clone(),
            pb::TrainRequest {
                model_version: version.to_owned(),
                factors: Some(16),
                recent_popularity_weight: Some(weight),
                ..Default::default()
            },
            |_| {},
        )
        .await
        .expect("train through the router");
        doppel_client::activate(router.channel.clone(), version)
            .await
            .expect("activate");
        let mut per_node = Vec::new();
        for (_, held) in &by_node {
            let mut n = 0;
            for c in data
                .customers
                .iter()
                .filter(|c| c.consent.onsite_personalization)
                .filter(|c| held.contains(&shard_of(&c.id, 16)))
                .take(40)
            {
                n += usize::from(offered(&router.channel, &c.id, &hot).await);
            }
            per_node.push(n);
        }
        reach.push(per_node);
    }
    for (node, (plain, prior)) in reach[0].iter().zip(&reach[1]).enumerate() {
        assert!(
            *prior >= 20 && *prior > plain * 2,
            "node {node}: customers offered the hit of 40: plain {plain}, with the prior {prior}"
        );
    }
    drop(shards);
}
