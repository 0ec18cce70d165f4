//! The recency shift in the cluster: a version trained through the router with a recency
//! weight moves the offers of customers on both shard nodes towards what they bought last,
//! read from the purchases each node's follower applies (no retrain).

use doppel_proto::v1 as pb;
use doppel_store::testing::redis_harness::RedisServer;
use doppel_test_support::cluster::TEST_SHARDS;
use doppel_test_support::{fresh_taste_purchases, offers_of_taste};
use doppel_types::shard::shard_of;

use crate::fixture::{loaded_on, offer_ids};

/// Customers per node whose newest purchases are planted.
const PER_NODE: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn newest_purchases_pull_offers_on_every_node() {
    let cluster = loaded_on(RedisServer::standalone(), 2).await;
    let (router, data) = (&cluster.router, &cluster.data);
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
            let shown = offer_ids(&router.channel, &c.id, 10, false).await;
            let newest = doppel_synth::REFERENCE_TIME_MS;
            if let Some((fresh, bought)) = fresh_taste_purchases(data, &c.id, &shown, newest) {
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
                count += offers_of_taste(
                    data,
                    &offer_ids(&router.channel, customer, 10, false).await,
                    *fresh,
                );
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
}
