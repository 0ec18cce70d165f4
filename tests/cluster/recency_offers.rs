//! The recency shift in the cluster: a version trained through the router with a recency
//! weight moves the offers of customers on both shard nodes towards what they bought last,
//! read from the purchases each node's follower applies (no retrain).

use doppel_proto::v1 as pb;
use doppel_proto::v1::recommendations_client::RecommendationsClient;
use doppel_store::testing::redis_harness::RedisServer;
use doppel_test_support::cluster::{TEST_SHARDS, TestRouter, TestShard};
use doppel_test_support::{fresh_taste_purchases, offers_of_taste, small_base, upload_base};
use doppel_types::shard::shard_of;
use tonic::transport::Channel;

/// Customers per node whose newest purchases are planted.
const PER_NODE: usize = 8;

async fn offers(channel: &Channel, customer: &str) -> Vec<String> {
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
        .into_iter()
        .map(|o| o.item_id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn newest_purchases_pull_offers_on_every_node() {
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
    doppel_client::train(
        router.channel.clone(),
        pb::TrainRequest {
            model_version: "recent".to_owned(),
            factors: Some(16),
            recency_weight: Some(3.0),
            recent_popularity_weight: Some(0.0),
            ..Default::default()
        },
        |_| {},
    )
    .await
    .expect("train through the router");
    let info = doppel_proto::v1::model_admin_client::ModelAdminClient::new(router.channel.clone())
        .describe_version(pb::DescribeVersionRequest {
            model_version: "recent".to_owned(),
        })
        .await
        .expect("describe through the router")
        .into_inner();
    let params = info.info.map(|i| i.params).unwrap_or_default();
    assert_eq!(params.get("recency_weight").map(String::as_str), Some("3"));
    doppel_client::activate(router.channel.clone(), "recent")
        .await
        .expect("activate");

    let by_node = router.router.topology().shards_by_node();
    assert_eq!(by_node.len(), 2, "two nodes hold shards");
    let mut planted: Vec<Vec<(String, usize)>> = Vec::new();
    let mut events = Vec::new();
    for (_, held) in &by_node {
        let mut own = Vec::new();
        for c in data
            .customers
            .iter()
            .filter(|c| c.consent.onsite_personalization)
            .filter(|c| held.contains(&shard_of(&c.id, TEST_SHARDS)))
            .take(PER_NODE)
        {
            let shown = offers(&router.channel, &c.id).await;
            let newest = doppel_synth::REFERENCE_TIME_MS;
            if let Some((fresh, bought)) = fresh_taste_purchases(&data, &c.id, &shown, newest) {
                events.extend(bought);
                own.push((c.id.clone(), fresh));
            }
        }
        assert!(own.len() >= PER_NODE / 2, "{} planted", own.len());
        planted.push(own);
    }
    doppel_client::upload_events(router.channel.clone(), events, |_| {})
        .await
        .expect("new purchases through the router");

    // The followers apply the purchases asynchronously: wait until both nodes show them.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let mut per_node = Vec::new();
        for own in &planted {
            let mut count = 0;
            for (customer, fresh) in own {
                count += offers_of_taste(&data, &offers(&router.channel, customer).await, *fresh);
            }
            per_node.push((count, own.len()));
        }
        if per_node.iter().all(|(count, n)| *count >= 8 * n) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "offers in the newest purchases' taste per node (count, customers): {per_node:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    drop(shards);
}
